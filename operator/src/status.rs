//! The part of `HealthCheck.status` that follows from the spec alone, so `kubectl get -o yaml`
//! shows exactly what gets injected. Pod counts and `Ready` are the controller's to fill.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::api::{HealthCheck, HealthCheckStatus};
use crate::render::{docker, kubernetes};

pub const ACCEPTED: &str = "Accepted";

/// `observedGeneration`, the `Accepted` condition (with the validation message when the spec is
/// invalid), the probes and the Dockerfile line. `now` becomes the condition's
/// `lastTransitionTime`: keep the previous one when the condition's status did not change.
pub fn spec_status(health_check: &HealthCheck, now: Time) -> HealthCheckStatus {
    let spec = &health_check.spec;
    let generation = health_check.metadata.generation;
    let rendered = kubernetes::probes(spec)
        .and_then(|probes| Ok((probes, docker::healthcheck(spec)?.dockerfile_instruction())));
    let (accepted, reason, message, probes, dockerfile) = match rendered {
        Ok((probes, dockerfile)) => ("True", "Valid", String::new(), probes, Some(dockerfile)),
        Err(err) => ("False", "InvalidSpec", err.to_string(), Vec::new(), None),
    };
    HealthCheckStatus {
        observed_generation: generation,
        conditions: vec![Condition {
            type_: ACCEPTED.to_string(),
            status: accepted.to_string(),
            reason: reason.to_string(),
            message,
            last_transition_time: now,
            observed_generation: generation,
        }],
        probes,
        dockerfile,
        ..HealthCheckStatus::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ProbeRole;
    use k8s_openapi::jiff::Timestamp;

    fn health_check(spec_yaml: &str) -> HealthCheck {
        let mut hc = HealthCheck::new("nova-api", serde_saphyr::from_str(spec_yaml).unwrap());
        hc.metadata.generation = Some(4);
        hc
    }

    #[test]
    fn valid_spec_shows_probes_and_dockerfile() {
        let status = spec_status(
            &health_check(
                "selector: { matchLabels: { app: x } }\nprofile: nova-api\nprobes: { liveness: {}, readiness: {} }",
            ),
            Time(Timestamp::UNIX_EPOCH),
        );
        assert_eq!(status.observed_generation, Some(4));
        let roles: Vec<_> = status.probes.iter().map(|p| p.role).collect();
        assert_eq!(roles, [ProbeRole::Liveness, ProbeRole::Readiness]);
        assert_eq!(
            status.dockerfile.as_deref(),
            Some(
                r#"HEALTHCHECK --interval=30s --timeout=30s --retries=3 CMD ["/openstack/healthcheck", "--timeout", "27", "profile", "nova-api"]"#
            )
        );
        let accepted = &status.conditions[0];
        assert_eq!(
            (
                accepted.type_.as_str(),
                accepted.status.as_str(),
                accepted.reason.as_str()
            ),
            ("Accepted", "True", "Valid")
        );
    }

    #[test]
    fn invalid_spec_says_why_and_injects_nothing() {
        let status = spec_status(
            &health_check(
                "selector: { matchLabels: { app: x } }\nprofile: nova-api\nmode: Native\nprobes: { liveness: {} }",
            ),
            Time(Timestamp::UNIX_EPOCH),
        );
        let accepted = &status.conditions[0];
        assert_eq!(
            (accepted.status.as_str(), accepted.reason.as_str()),
            ("False", "InvalidSpec")
        );
        assert!(
            accepted.message.starts_with("spec: mode Native needs"),
            "{}",
            accepted.message
        );
        assert!(status.probes.is_empty() && status.dockerfile.is_none());
    }
}
