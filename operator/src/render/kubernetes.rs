//! `HealthCheckSpec` → Kubernetes `Probe`s (the mapping table is in docs/healthcheck-api.md).

use healthcheck_spec::{Check, HttpCheck};
use k8s_openapi::api::core::v1::{ExecAction, HTTPGetAction, HTTPHeader, Probe, TCPSocketAction};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::api::cel;
use crate::api::{DEFAULT_SERVE_PORT, HealthCheckSpec, Mode, ProbeRole, RenderedProbe};
use crate::error::Error;
use crate::render::{PlannedProbe, exec_command, plan, startup_attempts};
use crate::rules;
use healthcheck_spec::address::split_host_port;
use healthcheck_spec::duration::DockerDuration;
use healthcheck_spec::url::{Scheme, Url};

/// The probes to inject into each selected container, liveness, readiness, startup.
pub fn probes(spec: &HealthCheckSpec) -> Result<Vec<RenderedProbe>, Error> {
    plan(spec)?
        .iter()
        .map(|planned| {
            Ok(RenderedProbe {
                role: planned.role,
                probe: probe(spec, planned)?,
            })
        })
        .collect()
}

fn probe(spec: &HealthCheckSpec, planned: &PlannedProbe) -> Result<Probe, Error> {
    let timing = &planned.timing;
    let timeout_seconds = timing
        .timeout_seconds
        .unwrap_or_else(|| seconds_at_least_one(timing.timeout_or_default().ceil_secs()));
    let retries = timing.retries_or_default();
    let (period_seconds, failure_threshold) = if planned.role == ProbeRole::Startup {
        // The start period is the startup probe's budget on top of the usual retries.
        let period = timing.period_seconds.unwrap_or_else(|| {
            seconds_at_least_one(timing.start_interval_or_default().ceil_secs())
        });
        let derived = startup_attempts(
            timing.start_period_or_default(),
            DockerDuration::from_secs(period.unsigned_abs().into()),
            retries,
        );
        (period, timing.failure_threshold.unwrap_or(derived))
    } else {
        let period = timing
            .period_seconds
            .unwrap_or_else(|| seconds_at_least_one(timing.interval_or_default().ceil_secs()));
        (period, timing.failure_threshold.unwrap_or(retries))
    };
    let mut probe = Probe {
        period_seconds: Some(period_seconds),
        timeout_seconds: Some(timeout_seconds),
        failure_threshold: Some(failure_threshold),
        success_threshold: Some(timing.success_threshold.unwrap_or(1)),
        initial_delay_seconds: timing.initial_delay_seconds,
        termination_grace_period_seconds: timing.termination_grace_period_seconds,
        ..Probe::default()
    };
    match spec.mode {
        Mode::Exec => {
            probe.exec = Some(ExecAction {
                command: Some(exec_command(
                    &planned.check,
                    DockerDuration::from_secs(timeout_seconds.unsigned_abs().into()),
                )),
            })
        }
        Mode::Http => {
            probe.http_get = Some(HTTPGetAction {
                path: Some(planned.role.serve_path().to_string()),
                port: IntOrString::Int(spec.serve_port.unwrap_or(DEFAULT_SERVE_PORT).into()),
                ..HTTPGetAction::default()
            })
        }
        Mode::Native => match &planned.check {
            check @ Check::Http(http) if rules::native_ok(check) => {
                probe.http_get = Some(http_get(http)?)
            }
            Check::Tcp(tcp) => {
                let (host, port) = split_host_port(&tcp.address)
                    .map_err(|_| Error::invalid("spec", cel::TCP_ADDRESS.1))?;
                probe.tcp_socket = Some(TCPSocketAction {
                    host: remote_host(host),
                    port: IntOrString::Int(port.into()),
                })
            }
            _ => return Err(Error::invalid("spec", cel::NATIVE_EXPRESSIBLE)),
        },
    }
    Ok(probe)
}

fn seconds_at_least_one(secs: u64) -> i32 {
    i32::try_from(secs.max(1)).unwrap_or(i32::MAX)
}

/// The kubelet probes from the node, so a loopback host means "the pod's IP" (host unset).
fn remote_host(host: &str) -> Option<String> {
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    (!loopback).then(|| host.to_string())
}

/// An `http(s)://host[:port][/path]` URL as a Kubernetes `httpGet`, parsed as the probe parses
/// it (so `http://h#x` requests host `h`, path `/`).
fn http_get(http: &HttpCheck) -> Result<HTTPGetAction, Error> {
    let invalid = |why: &str| {
        Error::invalid(
            "spec",
            format!("{}: url {:?} {why}", cel::NATIVE_EXPRESSIBLE, http.url),
        )
    };
    // The rules parsed it already; this keeps the reason should they ever not.
    let url = Url::parse(&http.url).map_err(|err| invalid(&err.problem.to_string()))?;
    if url.user_info.is_some() {
        return Err(invalid("carries credentials"));
    }
    let headers = http
        .headers
        .iter()
        .map(|header| {
            let (name, value) = header
                .split_once(':')
                .ok_or_else(|| invalid("has a header without ':'"))?;
            Ok(HTTPHeader {
                name: name.trim().to_string(),
                value: value.trim().to_string(),
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(HTTPGetAction {
        host: remote_host(&url.host),
        path: Some(url.target),
        port: IntOrString::Int(url.port.into()),
        scheme: Some(
            match url.scheme {
                Scheme::Http => "HTTP",
                Scheme::Https => "HTTPS",
            }
            .to_string(),
        ),
        http_headers: (!headers.is_empty()).then_some(headers),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn spec(yaml: &str) -> HealthCheckSpec {
        serde_saphyr::from_str(yaml).expect("fixture is a valid spec")
    }

    /// The rendered probes as JSON, keyed by role.
    fn render(yaml: &str) -> Value {
        let probes = probes(&spec(yaml)).expect("renders");
        Value::Object(
            probes
                .into_iter()
                .map(|p| {
                    (
                        p.role.as_str().to_string(),
                        serde_json::to_value(p.probe).unwrap(),
                    )
                })
                .collect(),
        )
    }

    const SELECT: &str = "selector: { matchLabels: { app: x } }\n";

    #[test]
    fn docker_defaults_become_explicit_kubernetes_fields() {
        let rendered = render(&format!(
            "{SELECT}check: {{ process: {{ pattern: nova-conductor }} }}\nprobes: {{ liveness: {{}} }}"
        ));
        assert_eq!(
            rendered,
            json!({"liveness": {
                "exec": {"command": ["/openstack/healthcheck", "--timeout", "27", "process", "nova-conductor"]},
                "periodSeconds": 30, "timeoutSeconds": 30, "failureThreshold": 3, "successThreshold": 1
            }})
        );
    }

    #[test]
    fn table_of_timings() {
        // (timing YAML, role, expected (period, timeout, failure))
        let cases: &[(&str, &str, (i32, i32, i32))] = &[
            ("{}", "liveness", (30, 30, 3)),
            (
                "{ interval: 1500ms, timeout: 100ms }",
                "liveness",
                (2, 1, 3),
            ),
            ("{ interval: 1ns, timeout: 1s }", "liveness", (1, 1, 3)),
            ("{ interval: 1m30s, retries: 5 }", "readiness", (90, 30, 5)),
            ("{ startPeriod: 2m }", "startup", (5, 30, 27)),
            (
                "{ startPeriod: 7s, startInterval: 5s }",
                "startup",
                (5, 30, 5),
            ),
            (
                "{ startPeriod: 10s, startInterval: 5s, retries: 1 }",
                "startup",
                (5, 30, 3),
            ),
            (
                "{ startPeriod: 1m, startInterval: 500ms }",
                "startup",
                (1, 30, 63),
            ),
            (
                "{ startPeriod: 1m, startInterval: 1500ms }",
                "startup",
                (2, 30, 33),
            ),
            (
                "{ startPeriod: 1m, periodSeconds: 10 }",
                "startup",
                (10, 30, 9),
            ),
            (
                "{ startPeriod: 1m, failureThreshold: 7 }",
                "startup",
                (5, 30, 7),
            ),
            (
                "{ periodSeconds: 7, timeoutSeconds: 2, failureThreshold: 9 }",
                "liveness",
                (7, 2, 9),
            ),
        ];
        for (timing, role, (period, timeout, failure)) in cases {
            let rendered = render(&format!(
                "{SELECT}profile: nova-api\nprobes: {{ liveness: {{}}, readiness: {{}} }}\ntiming: {timing}"
            ));
            let probe = &rendered[role];
            assert_eq!(
                (
                    &probe["periodSeconds"],
                    &probe["timeoutSeconds"],
                    &probe["failureThreshold"]
                ),
                (&json!(period), &json!(timeout), &json!(failure)),
                "{timing} {role}: {probe}"
            );
            assert_eq!(
                probe["exec"]["command"][2],
                json!(crate::render::probe_deadline(DockerDuration::from_secs(
                    timeout.unsigned_abs().into()
                ))),
                "the probe's own deadline follows timeoutSeconds"
            );
        }
    }

    #[test]
    fn no_startup_probe_without_start_period_or_request() {
        let rendered = render(&format!(
            "{SELECT}profile: nova-api\nprobes: {{ liveness: {{}}, readiness: {{}} }}"
        ));
        assert!(rendered.get("startup").is_none(), "{rendered}");
    }

    #[test]
    fn derived_startup_runs_the_liveness_check_else_readiness() {
        let rendered = render(&format!(
            "{SELECT}profile: nova-api\ntiming: {{ startPeriod: 10s }}\nprobes:\n  readiness: {{}}\n  liveness: {{ check: {{ process: {{ pattern: httpd }} }} }}"
        ));
        assert_eq!(rendered["startup"]["exec"], rendered["liveness"]["exec"]);
        assert_eq!(rendered["startup"]["successThreshold"], json!(1));
        let rendered = render(&format!(
            "{SELECT}profile: nova-api\ntiming: {{ startPeriod: 10s, successThreshold: 2 }}\nprobes: {{ readiness: {{}} }}"
        ));
        assert_eq!(rendered["startup"]["exec"], rendered["readiness"]["exec"]);
        assert_eq!(rendered["readiness"]["successThreshold"], json!(2));
        assert_eq!(rendered["startup"]["successThreshold"], json!(1));
    }

    #[test]
    fn probe_overrides_check_and_timing_field_by_field() {
        let rendered = render(&format!(
            r#"{SELECT}check: {{ http: {{ url: "http://127.0.0.1:8774/" }} }}
timing: {{ interval: 10s, timeout: 5s }}
probes:
  liveness:
    check: {{ process: {{ pattern: nova-api }} }}
    timing: {{ interval: 1m, terminationGracePeriodSeconds: 20, initialDelaySeconds: 3 }}
  readiness:
    timing: {{ successThreshold: 2 }}
"#
        ));
        assert_eq!(
            rendered,
            json!({
                "liveness": {
                    "exec": {"command": ["/openstack/healthcheck", "--timeout", "4.5", "process", "nova-api"]},
                    "periodSeconds": 60, "timeoutSeconds": 5, "failureThreshold": 3, "successThreshold": 1,
                    "initialDelaySeconds": 3, "terminationGracePeriodSeconds": 20
                },
                "readiness": {
                    "exec": {"command": ["/openstack/healthcheck", "--timeout", "4.5", "http", "http://127.0.0.1:8774/"]},
                    "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3, "successThreshold": 2
                }
            })
        );
    }

    #[test]
    fn http_mode_asks_the_serve_sidecar_one_path_per_probe() {
        let rendered = render(&format!(
            "{SELECT}profile: nova-api\nmode: HTTP\ntiming: {{ startPeriod: 5s }}\nprobes: {{ liveness: {{}}, readiness: {{}} }}"
        ));
        for (role, path) in [
            ("liveness", "/livez"),
            ("readiness", "/readyz"),
            ("startup", "/startupz"),
        ] {
            assert_eq!(
                rendered[role]["httpGet"],
                json!({"path": path, "port": DEFAULT_SERVE_PORT}),
                "{role}"
            );
            assert!(rendered[role].get("exec").is_none());
        }
        let rendered = render(&format!(
            "{SELECT}profile: nova-api\nmode: HTTP\nservePort: 8080\nprobes: {{ readiness: {{}} }}"
        ));
        assert_eq!(rendered["readiness"]["httpGet"]["port"], json!(8080));
    }

    #[test]
    fn native_mode_table() {
        let cases = [
            (
                r#"http: { url: "https://keystone:5000/v3", headers: ["Host: keystone.example"] }"#,
                json!({"httpGet": {"host": "keystone", "port": 5000, "path": "/v3", "scheme": "HTTPS",
                                   "httpHeaders": [{"name": "Host", "value": "keystone.example"}]}}),
            ),
            (
                r#"http: { url: "http://127.0.0.1:8774/" }"#,
                json!({"httpGet": {"port": 8774, "path": "/", "scheme": "HTTP"}}),
            ),
            (
                r#"http: { url: "http://[::1]" }"#,
                json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}}),
            ),
            (
                r#"http: { url: "HTTPS://localhost/healthcheck?x=1" }"#,
                json!({"httpGet": {"port": 443, "path": "/healthcheck?x=1", "scheme": "HTTPS"}}),
            ),
            (
                r#"http: { url: "http://h?ping" }"#,
                json!({"httpGet": {"host": "h", "port": 80, "path": "/?ping", "scheme": "HTTP"}}),
            ),
            (
                // The fragment is not part of the request, as the probe parses it.
                r#"http: { url: "http://h#x" }"#,
                json!({"httpGet": {"host": "h", "port": 80, "path": "/", "scheme": "HTTP"}}),
            ),
            (
                r#"tcp: { address: "127.0.0.1:5672" }"#,
                json!({"tcpSocket": {"port": 5672}}),
            ),
            (
                r#"tcp: { address: "[fd00::2]:3306" }"#,
                json!({"tcpSocket": {"host": "fd00::2", "port": 3306}}),
            ),
        ];
        for (check, handler) in cases {
            let rendered = render(&format!(
                "{SELECT}check: {{ {check} }}\nmode: Native\nprobes: {{ readiness: {{}} }}"
            ));
            let mut readiness = rendered["readiness"].clone();
            for timing in [
                "periodSeconds",
                "timeoutSeconds",
                "failureThreshold",
                "successThreshold",
            ] {
                readiness.as_object_mut().unwrap().remove(timing);
            }
            assert_eq!(readiness, handler, "{check}");
        }
    }

    #[test]
    fn native_mode_rejects_urls_kubernetes_cannot_request() {
        let native = |url: &str| {
            probes(&spec(&format!(
                "{SELECT}check: {{ http: {{ url: {url:?} }} }}\nmode: Native\nprobes: {{ liveness: {{}} }}"
            )))
            .unwrap_err()
            .to_string()
        };
        assert_eq!(
            native("http://u:p@h/"),
            format!(
                "spec: {}: url \"http://u:p@h/\" carries credentials",
                cel::NATIVE_EXPRESSIBLE
            )
        );
        // Every mode's rules reject the others first.
        for url in ["ftp://h/", "h:80/", "http:///x"] {
            assert_eq!(
                native(url),
                format!("spec.check.http: {}", cel::HTTP_URL.1),
                "{url}"
            );
        }
        assert_eq!(
            native("http://h:0/"),
            "spec.check.http.url: invalid URL `http://h:0/`: port `0` is not 1-65535"
        );
    }

    #[test]
    fn profiles_run_through_the_probe() {
        let rendered = render(&format!(
            "{SELECT}profile: heat-engine\nprobes: {{ liveness: {{}} }}"
        ));
        assert_eq!(
            rendered["liveness"]["exec"]["command"],
            json!([
                "/openstack/healthcheck",
                "--timeout",
                "27",
                "profile",
                "heat-engine"
            ])
        );
    }

    #[test]
    fn all_of_becomes_one_probe_invocation() {
        let rendered = render(&format!(
            "{SELECT}check: {{ allOf: [ {{ process: {{ pattern: a }} }}, {{ listen: {{ process: b, ports: [80, 443] }} }} ] }}\nprobes: {{ liveness: {{}} }}"
        ));
        assert_eq!(
            rendered["liveness"]["exec"]["command"],
            json!([
                "/openstack/healthcheck",
                "--timeout",
                "27",
                "all",
                "process",
                "a",
                "--and",
                "listen",
                "b",
                "80",
                "443"
            ])
        );
    }

    #[test]
    fn invalid_specs_do_not_render() {
        let err = probes(&spec(&format!("{SELECT}probes: {{ liveness: {{}} }}"))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "spec: set exactly one of profile and check"
        );
    }

    fn duration(millis: u64) -> DockerDuration {
        DockerDuration::from_millis(millis)
    }

    proptest! {
        /// Kubernetes never probes more often, nor gives up sooner, than Docker would.
        #[test]
        fn mapping_invariants(
            interval in 1u64..600_000,
            timeout in 1u64..120_000,
            start_period in 0u64..1_200_000,
            start_interval in 1u64..60_000,
            retries in 1i32..20,
        ) {
            let mut spec = spec(&format!("{SELECT}profile: nova-api\nprobes: {{ liveness: {{}}, readiness: {{}} }}"));
            spec.timing.interval = Some(duration(interval));
            spec.timing.timeout = Some(duration(timeout));
            spec.timing.start_period = Some(duration(start_period));
            spec.timing.start_interval = Some(duration(start_interval));
            spec.timing.retries = Some(retries);
            let rendered = probes(&spec).unwrap();
            prop_assert_eq!(rendered.len(), if start_period > 0 { 3 } else { 2 });
            for RenderedProbe { role, probe } in rendered {
                let period = i64::from(probe.period_seconds.unwrap());
                let timeout_seconds = i64::from(probe.timeout_seconds.unwrap());
                let failures = i64::from(probe.failure_threshold.unwrap());
                prop_assert!(period >= 1 && timeout_seconds >= 1);
                prop_assert!(timeout_seconds * 1000 >= timeout as i64 && (timeout_seconds - 1) * 1000 < timeout.max(1000) as i64);
                prop_assert_eq!(probe.success_threshold, Some(1));
                if role == ProbeRole::Startup {
                    prop_assert!(period * 1000 >= start_interval as i64 && (period - 1) * 1000 < start_interval.max(1000) as i64);
                    // The budget covers the whole start period plus the usual retries.
                    prop_assert!(failures * period * 1000 >= start_period as i64 + i64::from(retries) * period * 1000);
                    prop_assert!((failures - 1) * period * 1000 < start_period as i64 + i64::from(retries) * period * 1000);
                } else {
                    prop_assert!(period * 1000 >= interval as i64 && (period - 1) * 1000 < interval.max(1000) as i64);
                    prop_assert_eq!(failures, i64::from(retries));
                }
            }
        }
    }
}
