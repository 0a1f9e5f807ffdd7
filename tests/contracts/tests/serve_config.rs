//! The `mode: HTTP` sidecar's config, as the operator writes it, read by `healthcheck serve`'s
//! own parser: every planned probe arrives with its check, its timing and the service root.

use std::time::Duration;

use healthcheck_operator::api::HealthCheckSpec;
use healthcheck_operator::inject::serve_config;
use healthcheck_operator::render::plan;
use healthcheck_probe::serve::config::Config;

fn spec(yaml: &str) -> HealthCheckSpec {
    serde_saphyr::from_str(&format!(
        "selector: {{ matchLabels: {{ app: nova }} }}\nmode: HTTP\n{yaml}"
    ))
    .unwrap()
}

/// Reads what the operator writes and compares it with the operator's own plan, field by field.
fn served_as_planned(spec: &HealthCheckSpec, service_tag: Option<&str>) -> Config {
    let served = Config::parse(&serve_config(spec, service_tag).unwrap(), "operator").unwrap();
    let planned = plan(spec).unwrap();
    assert_eq!(served.roles.len(), planned.len());
    for (served, planned) in served.roles.iter().zip(&planned) {
        assert_eq!(served.role, planned.role);
        assert_eq!(served.check, planned.check, "{:?}", planned.role);
        let timing = &planned.timing;
        assert_eq!(
            (
                served.timing.interval,
                served.timing.timeout,
                served.timing.start_period,
                served.timing.start_interval,
                i32::try_from(served.timing.retries).unwrap(),
            ),
            (
                timing.interval_or_default().0,
                timing.timeout_or_default().0,
                timing.start_period_or_default().0,
                timing.start_interval_or_default().0,
                timing.retries_or_default(),
            ),
            "{:?}",
            planned.role
        );
        assert!(!served.on_demand);
        assert_eq!(served.service_root.as_deref(), service_tag);
    }
    served
}

#[test]
fn serve_reads_the_checks_and_timing_the_operator_writes() {
    let spec = spec(
        "check: { allOf: [ { http: { url: \"http://[::1]:8774/\", expectStatus: [200] } }, { port: { process: nova-api, ports: [8774] } } ] }\n\
         timing: { interval: 10s, timeout: 3s, startPeriod: 1m, startInterval: 2s, retries: 5 }\n\
         probes: { liveness: { timing: { interval: 1m, retries: 2 } }, readiness: { check: { tcp: { address: \"[::1]:5672\" } } } }",
    );
    let served = served_as_planned(&spec, None);
    assert_eq!(
        served.roles.len(),
        3,
        "liveness, readiness and the startup probe"
    );
    assert_eq!(served.roles[0].timing.interval, Duration::from_secs(60));
    assert_eq!(served.roles[0].timing.retries, 2);
}

#[test]
fn serve_reads_a_profile_through_the_service_root() {
    let spec = spec(
        "profile: nova-conductor\nprofileArgs: [\"5672\"]\nprobes: { liveness: {}, readiness: {} }",
    );
    let served = served_as_planned(&spec, Some("nova"));
    assert!(served.roles.iter().all(|r| matches!(
        &r.check,
        healthcheck_spec::Check::Profile(p) if p.name == "nova-conductor" && p.args == ["5672"]
    )));
}
