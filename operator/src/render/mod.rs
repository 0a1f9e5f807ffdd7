//! Pure renderers: a `HealthCheckSpec` → Kubernetes probes, Dockerfile, docker, podman, kolla.
//!
//! Every renderer starts from the same [`plan`]: which probes, which check each runs, and the
//! timing each gets after inheritance and Docker's defaults.

pub mod docker;
pub mod kolla;
pub mod kubernetes;

use std::collections::BTreeMap;

use healthcheck_spec::Check;

use crate::api::{CheckSpec, HealthCheck, HealthCheckSpec, ProbeRole, Timing};
use crate::error::Error;
use crate::rules;
use healthcheck_spec::PROBE_BINARY;
use healthcheck_spec::duration::DockerDuration;

/// What `healthcheck-operator render --to` produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `livenessProbe`/`readinessProbe`/`startupProbe` for a container spec (YAML).
    Kubernetes,
    /// A Dockerfile `HEALTHCHECK` instruction.
    Dockerfile,
    /// `docker run` / `docker create` flags.
    DockerRun,
    /// `podman run` / `podman create` flags.
    Podman,
    /// A kolla-ansible `<service>_healthcheck` variable named after the HealthCheck (YAML).
    Kolla,
}

/// A `HealthCheck` in one runtime's notation, ready to print.
pub fn render(health_check: &HealthCheck, format: Format) -> Result<String, Error> {
    let spec = &health_check.spec;
    let flags = |args: Vec<String>| {
        let words: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
        words.join(" ") + "\n"
    };
    match format {
        Format::Kubernetes => {
            let probes: BTreeMap<String, _> = kubernetes::probes(spec)?
                .into_iter()
                .map(|rendered| (format!("{}Probe", rendered.role.as_str()), rendered.probe))
                .collect();
            crate::yaml(&probes)
        }
        Format::Dockerfile => Ok(docker::healthcheck(spec)?.dockerfile_instruction() + "\n"),
        Format::DockerRun => Ok(flags(docker::healthcheck(spec)?.docker_run_args())),
        Format::Podman => Ok(flags(docker::podman_args(spec)?)),
        Format::Kolla => {
            let service = health_check.metadata.name.as_deref().ok_or_else(|| {
                Error::invalid("metadata.name", "names the kolla-ansible variable; set it")
            })?;
            crate::yaml(&kolla::variable(spec, service)?)
        }
    }
}

/// The full exec command: the probe with its own deadline inside the runtime's `timeout`, and
/// the check.
pub fn exec_command(check: &Check, timeout: DockerDuration) -> Vec<String> {
    [PROBE_BINARY, "--timeout", &probe_deadline(timeout)]
        .into_iter()
        .map(String::from)
        .chain(check.to_args())
        .collect()
}

/// One probe to inject, with everything inherited resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedProbe {
    pub role: ProbeRole,
    pub check: Check,
    pub timing: Timing,
}

/// The probes to inject, after validation. A start period adds a startup probe running the
/// liveness check (else the readiness check) when none is named.
pub fn plan(spec: &HealthCheckSpec) -> Result<Vec<PlannedProbe>, Error> {
    rules::validate(spec)?;
    let shared = spec.shared_check()?;
    let mut planned: Vec<PlannedProbe> = spec
        .probes
        .roles()
        .map(|(role, probe)| PlannedProbe {
            role,
            check: probe
                .check
                .as_ref()
                .and_then(CheckSpec::to_check)
                .unwrap_or_else(|| shared.clone()),
            timing: spec.timing.overlay(&probe.timing),
        })
        .collect();
    let has_startup = planned.iter().any(|p| p.role == ProbeRole::Startup);
    if !has_startup
        && !spec.timing.start_period_or_default().is_zero()
        && let Some(first) = planned.first()
    {
        planned.push(PlannedProbe {
            role: ProbeRole::Startup,
            check: first.check.clone(),
            // A shared successThreshold is only allowed for readiness; startup needs 1.
            timing: Timing {
                success_threshold: None,
                ..spec.timing.clone()
            },
        });
    }
    Ok(planned)
}

/// The probe's `--timeout`: 90% of the runtime's timeout, in seconds to the millisecond, so the
/// probe gives up and says why before the runtime kills it (the kubelet does not promise to kill
/// a timed-out exec, and its own message says nothing about the service).
pub fn probe_deadline(timeout: DockerDuration) -> String {
    let millis = (timeout.0.as_millis() * 9 / 10).max(1);
    let (secs, fraction) = (millis / 1000, millis % 1000);
    if fraction == 0 {
        secs.to_string()
    } else {
        format!("{secs}.{fraction:03}")
            .trim_end_matches('0')
            .to_string()
    }
}

/// Attempts a startup check gets: enough checks every `period` to cover `start_period`, then
/// the usual `retries` (`ceil(start_period / period) + retries`).
pub fn startup_attempts(start_period: DockerDuration, period: DockerDuration, retries: i32) -> i32 {
    let checks = start_period
        .0
        .as_nanos()
        .div_ceil(period.0.as_nanos().max(1));
    i32::try_from(checks)
        .unwrap_or(i32::MAX)
        .saturating_add(retries)
}

/// One word for a POSIX shell: as is when safe, else single-quoted.
pub fn shell_quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quote_leaves_plain_words_alone() {
        assert_eq!(
            shell_quote("/openstack/healthcheck"),
            "/openstack/healthcheck"
        );
        assert_eq!(shell_quote("http://[::1]:80/"), "'http://[::1]:80/'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn probe_deadline_leaves_a_tenth_of_the_timeout() {
        let d = DockerDuration::from_millis;
        assert_eq!(probe_deadline(d(30_000)), "27");
        assert_eq!(probe_deadline(d(1000)), "0.9");
        assert_eq!(probe_deadline(d(1500)), "1.35");
        assert_eq!(probe_deadline(d(5000)), "4.5");
        assert_eq!(probe_deadline(d(1)), "0.001");
    }

    #[test]
    fn startup_attempts_round_up_then_add_retries() {
        let d = DockerDuration::from_millis;
        assert_eq!(startup_attempts(d(0), d(5000), 3), 3);
        assert_eq!(startup_attempts(d(10_000), d(5000), 3), 5);
        assert_eq!(startup_attempts(d(10_001), d(5000), 3), 6);
        assert_eq!(startup_attempts(d(60_000), d(500), 3), 123);
    }
}
