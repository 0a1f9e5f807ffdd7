//! `HealthCheckSpec` → Dockerfile `HEALTHCHECK`, `docker run --health-*` and podman flags.
//!
//! Docker has one healthcheck per container: it runs the spec's own check (profile or check)
//! with the spec's Docker timing. Per-probe overrides and Kubernetes-only fields do not apply.

use crate::api::{HealthCheckSpec, ProbeRole};
use crate::error::Error;
use crate::render::{exec_command, plan, shell_quote, startup_attempts};
use healthcheck_spec::docker::DEFAULT_START_INTERVAL;
use healthcheck_spec::duration::DockerDuration;

/// A Docker healthcheck: the exec-form command and Docker's five timing options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DockerHealthcheck {
    pub command: Vec<String>,
    pub interval: DockerDuration,
    pub timeout: DockerDuration,
    pub start_period: DockerDuration,
    pub start_interval: DockerDuration,
    pub retries: i32,
}

/// The spec's healthcheck for Docker and Podman.
pub fn healthcheck(spec: &HealthCheckSpec) -> Result<DockerHealthcheck, Error> {
    plan(spec)?;
    let timing = &spec.timing;
    Ok(DockerHealthcheck {
        command: exec_command(&spec.shared_check()?, timing.timeout_or_default()),
        interval: timing.interval_or_default(),
        timeout: timing.timeout_or_default(),
        start_period: timing.start_period_or_default(),
        start_interval: timing.start_interval_or_default(),
        retries: timing.retries_or_default(),
    })
}

/// What `render --to docker-run` says besides the flags (on stderr, so the flags stay usable in
/// `$(…)`): Docker runs any `--health-cmd` through `/bin/sh -c`, even a JSON array.
pub const DOCKER_RUN_NEEDS_A_SHELL: &str = "note: docker run stores --health-cmd as CMD-SHELL \
(run by /bin/sh -c, even when given a JSON array): in an image without /bin/sh every check fails \
with exit code -1. There, bake the exec-form HEALTHCHECK of `render --to dockerfile` into the \
image, or use podman (`render --to podman`), whose --health-cmd takes the exec form.";

/// A JSON array of strings, as Dockerfile exec form and podman's `--health-cmd` take it.
fn json_array(words: &[String]) -> String {
    let words: Vec<String> = words
        .iter()
        .map(|w| serde_json::to_string(w).expect("strings serialize"))
        .collect();
    format!("[{}]", words.join(", "))
}

impl DockerHealthcheck {
    /// `HEALTHCHECK --interval=… CMD ["/openstack/healthcheck", …]`: exec form (no shell in the
    /// image needed). Every option is spelled out but those that would change nothing: a zero
    /// start period (buildah 1.28 rejects `--start-period=0s`) and an unneeded start interval.
    pub fn dockerfile_instruction(&self) -> String {
        let mut options = format!("--interval={} --timeout={}", self.interval, self.timeout);
        if !self.start_period.is_zero() {
            options.push_str(&format!(" --start-period={}", self.start_period));
        }
        if self.start_interval_needed() {
            options.push_str(&format!(" --start-interval={}", self.start_interval));
        }
        format!(
            "HEALTHCHECK {options} --retries={} CMD {}",
            self.retries,
            json_array(&self.command)
        )
    }

    /// Whether the start interval matters: only inside a start period, and only when it is not
    /// Docker's own default. Docker before 25 and buildah 1.28 (Debian 12's engines) reject the
    /// option, so it is left out whenever it would change nothing.
    fn start_interval_needed(&self) -> bool {
        !self.start_period.is_zero() && self.start_interval != DEFAULT_START_INTERVAL
    }

    fn timing_flags(&self) -> Vec<String> {
        vec![
            format!("--health-interval={}", self.interval),
            format!("--health-timeout={}", self.timeout),
            format!("--health-start-period={}", self.start_period),
            format!("--health-retries={}", self.retries),
        ]
    }

    /// `docker run` arguments. Docker stores `--health-cmd` as `CMD-SHELL`, so this one form
    /// needs `/bin/sh` in the image ([`DOCKER_RUN_NEEDS_A_SHELL`]).
    pub fn docker_run_args(&self) -> Vec<String> {
        let command: Vec<String> = self.command.iter().map(|w| shell_quote(w)).collect();
        let mut args = vec![format!("--health-cmd={}", command.join(" "))];
        args.extend(self.timing_flags());
        if self.start_interval_needed() {
            args.push(format!("--health-start-interval={}", self.start_interval));
        }
        args
    }
}

/// `podman run` arguments: the exec-form command as JSON (no shell), and, when the spec names a
/// startup probe, podman's startup healthcheck with the same budget as Kubernetes'.
pub fn podman_args(spec: &HealthCheckSpec) -> Result<Vec<String>, Error> {
    let healthcheck = healthcheck(spec)?;
    let mut args = vec![format!("--health-cmd={}", json_array(&healthcheck.command))];
    args.extend(healthcheck.timing_flags());
    if spec.probes.startup.is_some()
        && let Some(startup) = plan(spec)?
            .into_iter()
            .find(|p| p.role == ProbeRole::Startup)
    {
        let timing = &startup.timing;
        let timeout = timing.timeout_or_default();
        args.extend([
            format!(
                "--health-startup-cmd={}",
                json_array(&exec_command(&startup.check, timeout))
            ),
            format!(
                "--health-startup-interval={}",
                timing.start_interval_or_default()
            ),
            format!("--health-startup-timeout={timeout}"),
            format!(
                "--health-startup-retries={}",
                startup_attempts(
                    timing.start_period_or_default(),
                    timing.start_interval_or_default(),
                    timing.retries_or_default()
                )
            ),
        ]);
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> HealthCheckSpec {
        serde_saphyr::from_str(yaml).expect("fixture is a valid spec")
    }

    const SELECT: &str = "selector: { matchLabels: { app: x } }\n";

    #[test]
    fn dockerfile_spells_out_the_options_that_change_something() {
        let hc = healthcheck(&spec(&format!(
            "{SELECT}check: {{ http: {{ url: \"http://[::1]:8774/\" }} }}\nprobes: {{ liveness: {{}} }}"
        )))
        .unwrap();
        assert_eq!(
            hc.dockerfile_instruction(),
            r#"HEALTHCHECK --interval=30s --timeout=30s --retries=3 CMD ["/openstack/healthcheck", "--timeout", "27", "http", "http://[::1]:8774/"]"#
        );
    }

    #[test]
    fn dockerfile_keeps_docker_durations_exact() {
        let hc = healthcheck(&spec(&format!(
            "{SELECT}profile: mariadb\nprobes: {{ liveness: {{ timing: {{ interval: 1h }} }} }}\ntiming: {{ interval: 1m30s, timeout: 1500ms, startPeriod: 2m, startInterval: 250ms, retries: 8, periodSeconds: 3 }}"
        )))
        .unwrap();
        assert_eq!(
            hc.dockerfile_instruction(),
            r#"HEALTHCHECK --interval=1m30s --timeout=1500ms --start-period=2m --start-interval=250ms --retries=8 CMD ["/openstack/healthcheck", "--timeout", "1.35", "profile", "mariadb"]"#
        );
    }

    #[test]
    fn docker_run_quotes_the_shell_command() {
        let hc = healthcheck(&spec(&format!(
            "{SELECT}check: {{ command: {{ argv: [mysql, -e, \"select 1\"] }} }}\nprobes: {{ liveness: {{}} }}"
        )))
        .unwrap();
        assert_eq!(
            hc.docker_run_args(),
            [
                "--health-cmd=/openstack/healthcheck --timeout 27 command -- mysql -e 'select 1'",
                "--health-interval=30s",
                "--health-timeout=30s",
                "--health-start-period=0s",
                "--health-retries=3",
            ]
        );
    }

    #[test]
    fn a_start_interval_is_rendered_only_where_it_changes_something() {
        let rendered = |timing: &str| {
            let hc = healthcheck(&spec(&format!(
                "{SELECT}profile: keystone\ntiming: {{ {timing} }}\nprobes: {{ liveness: {{}} }}"
            )))
            .unwrap();
            (hc.dockerfile_instruction(), hc.docker_run_args().join(" "))
        };
        for timing in [
            "startInterval: 2s",
            "startPeriod: 1m",
            "startPeriod: 1m, startInterval: 5s",
        ] {
            let (dockerfile, run) = rendered(timing);
            assert!(
                !dockerfile.contains("start-interval"),
                "{timing}: {dockerfile}"
            );
            assert!(!run.contains("start-interval"), "{timing}: {run}");
        }
        let (dockerfile, run) = rendered("startPeriod: 1m, startInterval: 2s");
        assert!(dockerfile.contains(" --start-interval=2s "), "{dockerfile}");
        assert!(run.contains("--health-start-interval=2s"), "{run}");
    }

    #[test]
    fn podman_uses_json_exec_form_and_a_startup_check_when_asked() {
        let args = podman_args(&spec(&format!(
            "{SELECT}profile: nova-compute\ntiming: {{ startPeriod: 1m, timeout: 10s }}\nprobes:\n  liveness: {{}}\n  startup: {{ check: {{ process: {{ pattern: nova-compute }} }} }}"
        )))
        .unwrap();
        assert_eq!(
            args,
            [
                r#"--health-cmd=["/openstack/healthcheck", "--timeout", "9", "profile", "nova-compute"]"#,
                "--health-interval=30s",
                "--health-timeout=10s",
                "--health-start-period=1m",
                "--health-retries=3",
                r#"--health-startup-cmd=["/openstack/healthcheck", "--timeout", "9", "process", "nova-compute"]"#,
                "--health-startup-interval=5s",
                "--health-startup-timeout=10s",
                "--health-startup-retries=15",
            ]
        );
        let args = podman_args(&spec(&format!(
            "{SELECT}profile: nova-compute\ntiming: {{ startPeriod: 1m }}\nprobes: {{ liveness: {{}} }}"
        )))
        .unwrap();
        assert_eq!(
            args.len(),
            5,
            "the start period alone is Docker's, no startup check: {args:?}"
        );
    }
}
