//! Pure renderers: a `HealthCheckSpec` → Kubernetes probes, Dockerfile, docker, podman, kolla.
//!
//! Every renderer starts from the same [`plan`]: which probes, which check each runs, and the
//! timing each gets after inheritance and Docker's defaults.

pub mod docker;
pub mod kolla;
pub mod kubernetes;

use std::collections::BTreeMap;

use healthcheck_spec::Check;

use crate::api::{CheckSpec, HealthCheck, HealthCheckSpec, LeafCheck, ProbeRole, Timing};
use crate::error::Error;
use crate::rules;
use healthcheck_spec::duration::DockerDuration;

/// Where the probe binary lives in every image.
pub const PROBE_BINARY: &str = "/openstack/healthcheck";

/// Docker's defaults (moby `daemon/health.go`).
pub const DEFAULT_INTERVAL: DockerDuration = DockerDuration::from_secs(30);
pub const DEFAULT_TIMEOUT: DockerDuration = DockerDuration::from_secs(30);
pub const DEFAULT_START_PERIOD: DockerDuration = DockerDuration::from_secs(0);
pub const DEFAULT_START_INTERVAL: DockerDuration = DockerDuration::from_secs(5);
pub const DEFAULT_RETRIES: i32 = 3;

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

impl CheckSpec {
    /// The check in the probe's vocabulary; `None` unless exactly one member is set.
    pub fn to_check(&self) -> Option<Check> {
        let mut leaves = self.leaf_checks();
        match (&self.all_of, leaves.len()) {
            (None, 1) => leaves.pop(),
            (Some(members), 0) => members
                .iter()
                .map(|member| match member.leaf_checks().as_slice() {
                    [leaf] => Some(leaf.clone()),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
                .map(Check::AllOf),
            _ => None,
        }
    }

    /// The CRD form of a check; `None` when `allOf` nests (the CRD allows one level).
    pub fn from_check(check: Check) -> Option<CheckSpec> {
        match check {
            Check::AllOf(members) => Some(CheckSpec {
                all_of: Some(
                    members
                        .into_iter()
                        .map(LeafCheck::from_leaf_check)
                        .collect::<Option<_>>()?,
                ),
                ..CheckSpec::default()
            }),
            leaf => CheckSpec::from_leaf_check(leaf),
        }
    }
}

/// What one probe runs: a built-in profile or a check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeCheck {
    Profile(String),
    Check(Check),
}

impl ProbeCheck {
    /// The probe's arguments (after the binary's name and global options).
    pub fn to_args(&self) -> Vec<String> {
        match self {
            ProbeCheck::Profile(name) => vec!["profile".to_string(), name.clone()],
            ProbeCheck::Check(check) => check.to_args(),
        }
    }

    /// The full exec command: the probe with its own deadline inside the runtime's `timeout`,
    /// and the check.
    pub fn exec_command(&self, timeout: DockerDuration) -> Vec<String> {
        [PROBE_BINARY, "--timeout", &probe_deadline(timeout)]
            .into_iter()
            .map(String::from)
            .chain(self.to_args())
            .collect()
    }
}

impl Timing {
    /// `over`'s fields where set, else this one's.
    pub fn overlay(&self, over: &Timing) -> Timing {
        Timing {
            interval: over.interval.or(self.interval),
            timeout: over.timeout.or(self.timeout),
            start_period: over.start_period.or(self.start_period),
            start_interval: over.start_interval.or(self.start_interval),
            retries: over.retries.or(self.retries),
            period_seconds: over.period_seconds.or(self.period_seconds),
            timeout_seconds: over.timeout_seconds.or(self.timeout_seconds),
            failure_threshold: over.failure_threshold.or(self.failure_threshold),
            success_threshold: over.success_threshold.or(self.success_threshold),
            initial_delay_seconds: over.initial_delay_seconds.or(self.initial_delay_seconds),
            termination_grace_period_seconds: over
                .termination_grace_period_seconds
                .or(self.termination_grace_period_seconds),
        }
    }

    pub fn interval_or_default(&self) -> DockerDuration {
        self.interval.unwrap_or(DEFAULT_INTERVAL)
    }

    pub fn timeout_or_default(&self) -> DockerDuration {
        self.timeout.unwrap_or(DEFAULT_TIMEOUT)
    }

    pub fn start_period_or_default(&self) -> DockerDuration {
        self.start_period.unwrap_or(DEFAULT_START_PERIOD)
    }

    pub fn start_interval_or_default(&self) -> DockerDuration {
        self.start_interval.unwrap_or(DEFAULT_START_INTERVAL)
    }

    pub fn retries_or_default(&self) -> i32 {
        self.retries.unwrap_or(DEFAULT_RETRIES)
    }
}

/// One probe to inject, with everything inherited resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedProbe {
    pub role: ProbeRole,
    pub check: ProbeCheck,
    pub timing: Timing,
}

/// The spec's own check (profile or check), which probes inherit.
pub fn shared_check(spec: &HealthCheckSpec) -> Result<ProbeCheck, Error> {
    match (&spec.profile, &spec.check) {
        (Some(profile), None) => Ok(ProbeCheck::Profile(profile.clone())),
        (None, Some(check)) => check
            .to_check()
            .map(ProbeCheck::Check)
            .ok_or_else(|| Error::invalid("spec.check", rules::EXACTLY_ONE_CHECK)),
        _ => Err(Error::invalid("spec", rules::PROFILE_XOR_CHECK.1)),
    }
}

/// The probes to inject, after validation. A start period adds a startup probe running the
/// liveness check (else the readiness check) when none is named.
pub fn plan(spec: &HealthCheckSpec) -> Result<Vec<PlannedProbe>, Error> {
    rules::validate(spec)?;
    let shared = shared_check(spec)?;
    let mut planned: Vec<PlannedProbe> = spec
        .probes
        .roles()
        .map(|(role, probe)| PlannedProbe {
            role,
            check: probe
                .check
                .as_ref()
                .and_then(CheckSpec::to_check)
                .map_or_else(|| shared.clone(), ProbeCheck::Check),
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

/// `host:port` or `[v6]:port` → (host without brackets, port 1–65535).
pub fn split_host_port(address: &str) -> Option<(&str, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    let host = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.strip_suffix(']').filter(|v6| {
            v6.bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        })?,
        None if host.contains(':') || host.contains('[') || host.contains(']') => return None,
        None => host,
    };
    if host.is_empty() || host.contains('/') || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match port.parse() {
        Ok(0) | Err(_) => None,
        Ok(port) => Some((host, port)),
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

    #[test]
    fn host_port_accepts_names_v4_and_bracketed_v6() {
        assert_eq!(split_host_port("rabbit:5672"), Some(("rabbit", 5672)));
        assert_eq!(split_host_port("10.0.0.1:1"), Some(("10.0.0.1", 1)));
        assert_eq!(split_host_port("[fd00::1]:65535"), Some(("fd00::1", 65535)));
        for bad in [
            "rabbit",
            "rabbit:",
            ":80",
            "h:0",
            "h:65536",
            "fd00::1:80",
            "[::1]",
            "h:8o",
            "a/b:80",
        ] {
            assert_eq!(split_host_port(bad), None, "{bad}");
        }
    }
}
