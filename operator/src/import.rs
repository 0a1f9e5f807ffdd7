//! Dockerfile `HEALTHCHECK` → the check and Docker timing of a `HealthCheckSpec`, so existing
//! images can be imported.
//!
//! Follows Docker: only the last `HEALTHCHECK` of the final stage counts; options are
//! `--name=value`; a zero duration or `--retries=0` means Docker's default; a `CMD` that is not a
//! valid JSON array is shell form. A command that runs `/openstack/healthcheck` with a check is
//! read back into that check; any other command becomes a `command` check (shell form through
//! `/bin/sh -c`, as Kubernetes has no shell form). The probe's own `--timeout` must be the one
//! the HealthCheck derives from Docker's timeout; another deadline keeps the whole command as it
//! is, so nothing the image ran is lost.

use std::collections::BTreeMap;

use healthcheck_spec::{Check, CommandCheck, PROBE_BINARY};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::api::{CheckSpec, HealthCheckSpec, ProbeSpec, Probes, Timing};
use crate::error::Error;
use crate::render::probe_deadline;
use healthcheck_spec::duration::DockerDuration;

/// What a Dockerfile says about health.
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)] // made once per import; boxing would only add noise
pub enum Imported {
    /// No `HEALTHCHECK` in the final stage: the base image's applies.
    Absent,
    /// `HEALTHCHECK NONE`: checks disabled.
    Disabled,
    Healthcheck {
        check: Check,
        timing: Timing,
    },
}

/// The last `HEALTHCHECK` of the Dockerfile's final stage.
pub fn import_dockerfile(dockerfile: &str) -> Result<Imported, Error> {
    let mut found = Imported::Absent;
    for (line, instruction) in logical_lines(dockerfile) {
        let (keyword, rest) = instruction
            .split_once(char::is_whitespace)
            .unwrap_or((instruction.as_str(), ""));
        if keyword.eq_ignore_ascii_case("FROM") {
            found = Imported::Absent;
        } else if keyword.eq_ignore_ascii_case("HEALTHCHECK") {
            found = parse_healthcheck(rest.trim())
                .map_err(|message| Error::Dockerfile { line, message })?;
        }
    }
    Ok(found)
}

/// Instructions with continuation lines joined and comments dropped, each with its first line
/// number (1-based).
fn logical_lines(dockerfile: &str) -> Vec<(usize, String)> {
    let mut instructions = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (index, raw) in dockerfile.lines().enumerate() {
        let trimmed = raw.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_none()) {
            continue;
        }
        let (text, continues) = match trimmed.strip_suffix('\\') {
            Some(text) => (text, true),
            None => (trimmed, false),
        };
        let (_, joined) = current.get_or_insert_with(|| (index + 1, String::new()));
        if !joined.is_empty() {
            joined.push(' ');
        }
        joined.push_str(text.trim());
        if !continues {
            instructions.extend(current.take());
        }
    }
    instructions.extend(current);
    instructions
}

fn parse_healthcheck(text: &str) -> Result<Imported, String> {
    let mut timing = Timing::default();
    let mut rest = text;
    while let Some(option) = rest.strip_prefix("--") {
        let (option, tail) = option
            .split_once(char::is_whitespace)
            .unwrap_or((option, ""));
        rest = tail.trim_start();
        let (name, value) = option
            .split_once('=')
            .ok_or_else(|| format!("HEALTHCHECK option --{option} needs a value (--{option}=…)"))?;
        match name {
            "interval" => timing.interval = docker_duration(name, value)?,
            "timeout" => timing.timeout = docker_duration(name, value)?,
            "start-period" => timing.start_period = docker_duration(name, value)?,
            "start-interval" => timing.start_interval = docker_duration(name, value)?,
            "retries" => {
                let retries: i32 = value
                    .parse()
                    .map_err(|_| format!("--retries={value} is not a number"))?;
                if retries < 0 {
                    return Err("--retries cannot be negative".to_string());
                }
                timing.retries = (retries > 0).then_some(retries);
            }
            _ => return Err(format!("unknown HEALTHCHECK option --{name}")),
        }
    }
    let (kind, command) = rest
        .split_once(char::is_whitespace)
        .map_or((rest, ""), |(kind, command)| (kind, command.trim()));
    if kind.eq_ignore_ascii_case("NONE") {
        return if command.is_empty() && timing.is_empty() {
            Ok(Imported::Disabled)
        } else {
            Err("HEALTHCHECK NONE takes no options or arguments".to_string())
        };
    }
    if !kind.eq_ignore_ascii_case("CMD") {
        return Err(format!(
            "expected HEALTHCHECK [OPTIONS] CMD command or HEALTHCHECK NONE, found {kind:?}"
        ));
    }
    if command.is_empty() {
        return Err("HEALTHCHECK CMD needs a command".to_string());
    }
    let (check, timing) = match serde_json::from_str::<Vec<String>>(command) {
        Ok(argv) if argv.is_empty() => return Err("HEALTHCHECK CMD [] is empty".to_string()),
        Ok(argv) => check_from_argv(argv, &timing),
        Err(_) => check_from_shell(command, &timing),
    }?;
    Ok(Imported::Healthcheck { check, timing })
}

/// Docker's duration option: 0 means the default, anything else at least 1ms.
fn docker_duration(name: &str, value: &str) -> Result<Option<DockerDuration>, String> {
    let duration: DockerDuration = value.parse().map_err(|err| format!("--{name}: {err}"))?;
    if duration.is_zero() {
        Ok(None)
    } else if duration < DockerDuration::from_millis(1) {
        Err(format!("--{name}={value} cannot be less than 1ms"))
    } else {
        Ok(Some(duration))
    }
}

fn check_from_argv(argv: Vec<String>, timing: &Timing) -> Result<(Check, Timing), String> {
    if argv[0] == PROBE_BINARY {
        if argv.len() == 1 {
            return Err(format!(
                "{PROBE_BINARY} without arguments runs the image's own per-service script; \
                 write the HealthCheck with spec.profile set to that service instead"
            ));
        }
        if let Some(found) = probe_check(&argv[1..], timing) {
            return Ok(found);
        }
    }
    Ok((Check::Command(CommandCheck { argv }), timing.clone()))
}

/// Shell form: plain words are the same as exec form; anything else needs the shell.
fn check_from_shell(command: &str, timing: &Timing) -> Result<(Check, Timing), String> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c) || c == ' ';
    if command.chars().all(plain) {
        return check_from_argv(
            command.split_whitespace().map(String::from).collect(),
            timing,
        );
    }
    let argv = ["/bin/sh", "-c", command].map(String::from).to_vec();
    Ok((Check::Command(CommandCheck { argv }), timing.clone()))
}

/// The probe's command line (after the binary's name) back into its check and the timing that
/// renders that very command: an optional `--timeout SECS`, then a check the resource can hold
/// (a profile only at the top). The probe's deadline is kept: when the HEALTHCHECK sets no
/// timeout, the timeout becomes the shortest one that derives it; when its timeout derives
/// another deadline, `None` (the two cannot both be kept).
pub fn probe_check(args: &[String], timing: &Timing) -> Option<(Check, Timing)> {
    let mut timing = timing.clone();
    let seconds = |text: &str| format!("{text}s").parse::<DockerDuration>().ok();
    let check_args = match args {
        [flag, secs, rest @ ..] if flag == "--timeout" => {
            let deadline = seconds(secs)?;
            if seconds(&probe_deadline(timing.timeout_or_default()))? != deadline {
                if timing.timeout.is_some() || deadline < DockerDuration::from_millis(1) {
                    return None;
                }
                timing.timeout = Some(timeout_for_deadline(deadline));
            }
            rest
        }
        all => all,
    };
    let check = Check::from_args(check_args).ok()?;
    (matches!(check, Check::Profile(_)) || CheckSpec::from_check(check.clone()).is_some())
        .then_some((check, timing))
}

/// The shortest runtime timeout whose [`probe_deadline`] is `deadline` (its inverse, to the
/// millisecond).
fn timeout_for_deadline(deadline: DockerDuration) -> DockerDuration {
    let millis = (deadline.0.as_millis() * 10).div_ceil(9);
    DockerDuration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
}

/// A `HealthCheckSpec` for an imported healthcheck: pods labelled
/// `app.kubernetes.io/name: <service>`, checked by a liveness probe (Docker's "unhealthy").
/// Validated as the apiserver and `render` validate it, so that what Docker took but a
/// HealthCheck cannot hold (a timeout over the probe's limit, say) is an import error rather
/// than a HealthCheck that fails later.
pub fn to_spec(check: Check, timing: Timing, service: &str) -> Result<HealthCheckSpec, Error> {
    let (profile, profile_args, check) = match check {
        Check::Profile(profile) => (Some(profile.name), profile.args, None),
        check => {
            let spec = CheckSpec::from_check(check).ok_or_else(|| {
                Error::invalid("check", "allOf members cannot be allOf or a profile")
            })?;
            (None, Vec::new(), Some(spec))
        }
    };
    let spec = HealthCheckSpec {
        selector: LabelSelector {
            match_labels: Some(BTreeMap::from([(
                "app.kubernetes.io/name".to_string(),
                service.to_string(),
            )])),
            ..LabelSelector::default()
        },
        containers: Vec::new(),
        profile,
        profile_args,
        check,
        probes: Probes {
            liveness: Some(ProbeSpec::default()),
            ..Probes::default()
        },
        timing,
        mode: Default::default(),
        serve_port: None,
        priority: 0,
        inject_binary: false,
        rollout: Default::default(),
        existing_probes: Default::default(),
    };
    crate::rules::validate(&spec)?;
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::docker::healthcheck;
    use crate::render::exec_command;
    use healthcheck_spec::{
        FileCheck, HttpCheck, HttpMethod, ProcessCheck, ProcessPorts, ProfileCheck, SocketCheck,
        TcpCheck,
    };
    use proptest::prelude::*;

    fn imported(dockerfile: &str) -> Imported {
        import_dockerfile(dockerfile).unwrap()
    }

    fn command(argv: &[&str]) -> Check {
        Check::Command(CommandCheck {
            argv: argv.iter().map(|s| s.to_string()).collect(),
        })
    }

    fn profile(name: &str, args: &[&str]) -> Check {
        Check::Profile(ProfileCheck {
            name: name.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
        })
    }

    #[test]
    fn options_defaults_and_forms() {
        let cases = [
            (
                "HEALTHCHECK CMD curl -f http://localhost/ || exit 1",
                command(&["/bin/sh", "-c", "curl -f http://localhost/ || exit 1"]),
                Timing::default(),
            ),
            (
                r#"HEALTHCHECK --interval=5m --timeout=3s CMD ["curl", "-f", "http://localhost/"]"#,
                command(&["curl", "-f", "http://localhost/"]),
                Timing {
                    interval: Some(DockerDuration::from_secs(300)),
                    timeout: Some(DockerDuration::from_secs(3)),
                    ..Timing::default()
                },
            ),
            (
                "healthcheck --start-period=1m --start-interval=2s --retries=5 cmd /usr/bin/check --quick",
                command(&["/usr/bin/check", "--quick"]),
                Timing {
                    start_period: Some(DockerDuration::from_secs(60)),
                    start_interval: Some(DockerDuration::from_secs(2)),
                    retries: Some(5),
                    ..Timing::default()
                },
            ),
            (
                "HEALTHCHECK --interval=0s --retries=0 --start-period=0s CMD [\"true\"]",
                command(&["true"]),
                Timing::default(),
            ),
            (
                "HEALTHCHECK CMD [not json",
                command(&["/bin/sh", "-c", "[not json"]),
                Timing::default(),
            ),
        ];
        for (dockerfile, check, timing) in cases {
            assert_eq!(
                imported(dockerfile),
                Imported::Healthcheck { check, timing },
                "{dockerfile}"
            );
        }
    }

    #[test]
    fn probe_commands_are_read_back_into_checks() {
        for (dockerfile, check) in [
            (
                r#"HEALTHCHECK CMD ["/openstack/healthcheck", "--timeout", "10", "port", "nova-conductor", "5671", "5672"]"#,
                Check::Port(ProcessPorts {
                    process: "nova-conductor".into(),
                    ports: vec![5671, 5672],
                }),
            ),
            (
                "HEALTHCHECK CMD /openstack/healthcheck profile heat-api",
                profile("heat-api", &[]),
            ),
            (
                // TripleO's per-service scripts take positional arguments.
                "HEALTHCHECK CMD /openstack/healthcheck --timeout 27 profile nova-conductor 5672",
                profile("nova-conductor", &["5672"]),
            ),
            (
                r#"HEALTHCHECK --timeout=10s CMD ["/openstack/healthcheck", "--timeout", "9", "tcp", "h:1"]"#,
                Check::Tcp(TcpCheck {
                    address: "h:1".into(),
                }),
            ),
            (
                // A deadline the HEALTHCHECK's timeout does not derive (9): kept by keeping the
                // command whole.
                r#"HEALTHCHECK --timeout=10s CMD ["/openstack/healthcheck", "--timeout", "5", "tcp", "h:1"]"#,
                command(&["/openstack/healthcheck", "--timeout", "5", "tcp", "h:1"]),
            ),
            (
                // The resource holds a profile only at the top level.
                r#"HEALTHCHECK CMD ["/openstack/healthcheck", "all", "profile", "redis", "--and", "tcp", "h:1"]"#,
                command(&[
                    "/openstack/healthcheck",
                    "all",
                    "profile",
                    "redis",
                    "--and",
                    "tcp",
                    "h:1",
                ]),
            ),
            (
                "HEALTHCHECK CMD /openstack/healthcheck tcp [::1]:5672",
                command(&["/bin/sh", "-c", "/openstack/healthcheck tcp [::1]:5672"]),
            ),
            (
                r#"HEALTHCHECK CMD ["/openstack/healthcheck", "frobnicate"]"#,
                command(&["/openstack/healthcheck", "frobnicate"]),
            ),
        ] {
            let Imported::Healthcheck { check: got, .. } = imported(dockerfile) else {
                panic!("{dockerfile}")
            };
            assert_eq!(got, check, "{dockerfile}");
        }
    }

    /// The probe's own `--timeout` survives an import: without a HEALTHCHECK timeout, it sets the
    /// timeout that renders it again.
    #[test]
    fn the_probe_deadline_is_kept() {
        for (secs, timeout_millis) in [("10", 11_112), ("5", 5_556), ("27", 30_000), ("0.9", 1000)]
        {
            let dockerfile = format!(
                r#"HEALTHCHECK CMD ["/openstack/healthcheck", "--timeout", "{secs}", "tcp", "h:1"]"#
            );
            let Imported::Healthcheck { check, timing } = imported(&dockerfile) else {
                panic!("{dockerfile}")
            };
            assert!(matches!(check, Check::Tcp(_)), "{dockerfile}");
            let timeout = DockerDuration::from_millis(timeout_millis);
            if secs != "27" {
                assert_eq!(timing.timeout, Some(timeout), "{dockerfile}");
            }
            assert_eq!(probe_deadline(timeout), secs);
            let spec = to_spec(check, timing, "svc").unwrap();
            let line = healthcheck(&spec).unwrap().dockerfile_instruction();
            assert!(
                line.contains(&format!(r#""--timeout", "{secs}", "tcp""#)),
                "{line}"
            );
        }
    }

    #[test]
    fn only_the_last_healthcheck_of_the_final_stage_counts() {
        let dockerfile = "FROM a AS build\nHEALTHCHECK CMD [\"x\"]\nFROM b\n# HEALTHCHECK CMD [\"comment\"]\nHEALTHCHECK CMD [\"first\"]\nHEALTHCHECK --interval=10s \\\n  CMD [\"second\", \\\n       \"arg\"]\nUSER 1000\n";
        assert_eq!(
            imported(dockerfile),
            Imported::Healthcheck {
                check: command(&["second", "arg"]),
                timing: Timing {
                    interval: Some(DockerDuration::from_secs(10)),
                    ..Timing::default()
                }
            }
        );
        assert_eq!(
            imported("FROM a\nHEALTHCHECK CMD [\"x\"]\nFROM b\n"),
            Imported::Absent
        );
        assert_eq!(imported("FROM a\nHEALTHCHECK NONE\n"), Imported::Disabled);
    }

    #[test]
    fn errors_name_the_line_and_the_problem() {
        for (dockerfile, message) in [
            (
                "FROM a\n\nHEALTHCHECK --interval=5 CMD [\"x\"]",
                "line 3: --interval: invalid duration \"5\": must be a duration such as 30s, 1m30s or 500ms",
            ),
            (
                "HEALTHCHECK --interval 5s CMD [\"x\"]",
                "line 1: HEALTHCHECK option --interval needs a value (--interval=…)",
            ),
            (
                "HEALTHCHECK --timeout=100us CMD [\"x\"]",
                "line 1: --timeout=100us cannot be less than 1ms",
            ),
            (
                "HEALTHCHECK --retries=-1 CMD [\"x\"]",
                "line 1: --retries cannot be negative",
            ),
            (
                "HEALTHCHECK --retries=x CMD [\"x\"]",
                "line 1: --retries=x is not a number",
            ),
            (
                "HEALTHCHECK --nope=1 CMD [\"x\"]",
                "line 1: unknown HEALTHCHECK option --nope",
            ),
            (
                "HEALTHCHECK --interval=1s NONE",
                "line 1: HEALTHCHECK NONE takes no options or arguments",
            ),
            (
                "HEALTHCHECK RUN x",
                "line 1: expected HEALTHCHECK [OPTIONS] CMD command or HEALTHCHECK NONE, found \"RUN\"",
            ),
            ("HEALTHCHECK CMD", "line 1: HEALTHCHECK CMD needs a command"),
            ("HEALTHCHECK CMD []", "line 1: HEALTHCHECK CMD [] is empty"),
            (
                "HEALTHCHECK CMD-SHELL /openstack/healthcheck",
                "line 1: expected HEALTHCHECK [OPTIONS] CMD command or HEALTHCHECK NONE, found \"CMD-SHELL\"",
            ),
            (
                "HEALTHCHECK CMD /openstack/healthcheck",
                "line 1: /openstack/healthcheck without arguments runs the image's own per-service script; write the HealthCheck with spec.profile set to that service instead",
            ),
        ] {
            assert_eq!(
                import_dockerfile(dockerfile).unwrap_err().to_string(),
                message,
                "{dockerfile}"
            );
        }
    }

    #[test]
    fn dockerfile_round_trips_through_the_spec() {
        for spec_yaml in [
            "profile: nova-api",
            "profile: nova-conductor\nprofileArgs: [\"5672\"]",
            "profile: nova-api\ntiming: { timeout: 5s }",
            "check: { allOf: [ { process: { pattern: a } }, { file: { path: /f, maxAgeSeconds: 9 } } ] }\ntiming: { interval: 1m30s, timeout: 1500ms, startPeriod: 2m, startInterval: 250ms, retries: 8 }",
            "check: { http: { url: \"https://[fd00::1]:8774/\", method: HEAD, expectStatus: [200, 204], headers: [\"X: y\"], user: \"u:p\", bodyRegex: \"ok$\", tls: { verify: true, caFile: /ca } } }",
            "check: { command: { argv: [\"sh\", \"-c\", \"exit 0\"] } }",
        ] {
            let spec: HealthCheckSpec = serde_saphyr::from_str(&format!(
                "selector: {{ matchLabels: {{ app.kubernetes.io/name: svc }} }}\nprobes: {{ liveness: {{}} }}\n{spec_yaml}"
            ))
            .unwrap();
            let line = healthcheck(&spec).unwrap().dockerfile_instruction();
            let Imported::Healthcheck { check, timing } = imported(&line) else {
                panic!("{line}")
            };
            let imported_spec = to_spec(check, timing, "svc").unwrap();
            assert_eq!(
                healthcheck(&imported_spec)
                    .unwrap()
                    .dockerfile_instruction(),
                line
            );
            assert_eq!(imported_spec.check, spec.check, "{line}");
            assert_eq!(imported_spec.profile, spec.profile, "{line}");
            assert_eq!(imported_spec.profile_args, spec.profile_args, "{line}");
        }
    }

    fn word() -> impl Strategy<Value = String> {
        // The probe (clap) reads a value starting with `-` as an option.
        "[a-z0-9/:._-]{1,12}".prop_filter("not a flag", |w| !w.starts_with('-'))
    }

    fn leaf() -> impl Strategy<Value = Check> {
        let ports = proptest::collection::vec(1u16.., 1..4);
        prop_oneof![
            (
                word(),
                proptest::collection::vec(100u16..600, 0..3),
                proptest::collection::vec(word(), 0..2),
                proptest::option::of(word()),
                any::<bool>()
            )
                .prop_map(|(url, expect_status, headers, user, head)| Check::Http(
                    HttpCheck {
                        url,
                        method: if head {
                            HttpMethod::Head
                        } else {
                            HttpMethod::Get
                        },
                        expect_status,
                        headers,
                        user,
                        ..HttpCheck::default()
                    }
                )),
            word().prop_map(|address| Check::Tcp(TcpCheck { address })),
            (word(), ports.clone())
                .prop_map(|(process, ports)| Check::Port(ProcessPorts { process, ports })),
            (word(), ports)
                .prop_map(|(process, ports)| Check::Listen(ProcessPorts { process, ports })),
            (word(), word())
                .prop_map(|(process, path)| Check::Socket(SocketCheck { process, path })),
            (word(), any::<u64>()).prop_map(|(path, max_age_seconds)| Check::File(FileCheck {
                path,
                max_age_seconds
            })),
            word().prop_map(|pattern| Check::Process(ProcessCheck { pattern })),
            proptest::collection::vec(word(), 1..4)
                .prop_map(|argv| Check::Command(CommandCheck { argv })),
        ]
    }

    proptest! {
        #[test]
        fn probe_args_parse_back(check in prop_oneof![
            leaf(),
            proptest::collection::vec(leaf(), 1..4).prop_map(Check::AllOf),
        ]) {
            let timing = Timing { timeout: Some(DockerDuration::from_secs(5)), ..Timing::default() };
            let argv = exec_command(&check, timing.timeout_or_default());
            prop_assert_eq!(probe_check(&argv[1..], &timing), Some((check, timing)));
        }
    }
}
