//! `HealthCheck.status`, pure: the part that follows from the spec alone (so `kubectl get -o
//! yaml` shows exactly what gets injected), the pod counts and conditions that follow from the
//! selected pods' injection records, and the Events for condition transitions. The controller
//! only reads the pods and writes what this computes.

use std::collections::{BTreeMap, BTreeSet};

use healthcheck_spec::text::truncate_within;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, Time};
use kube::ResourceExt;
use kube::runtime::events::{Event, EventType};

use crate::api::{HealthCheck, HealthCheckStatus, Rollout};
use crate::inject::{declared_ports, injection_record};
use crate::probe_results::ProbeResults;
use crate::render::{docker, kubernetes};

pub const ACCEPTED: &str = "Accepted";
pub const READY: &str = "Ready";
pub const CONFLICT: &str = "Conflict";
pub const HEALTHY: &str = "Healthy";
/// Only with `rollout: Restart`.
pub const RESTART_FORBIDDEN: &str = "RestartForbidden";

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
        probe_roles: (!probes.is_empty()).then(|| {
            probes
                .iter()
                .map(|p| p.role.as_str())
                .collect::<Vec<_>>()
                .join(",")
        }),
        probes,
        dockerfile,
        ..HealthCheckStatus::default()
    }
}

/// What the pods a HealthCheck selects say about it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    pub matched: i32,
    pub up_to_date: i32,
    pub stale: i32,
    /// `pod/container` → the HealthCheck that won it.
    pub lost: BTreeMap<String, String>,
    /// Controllers (kind, name) of stale pods.
    pub stale_owners: BTreeSet<(String, String)>,
    /// `pod/container` → this HealthCheck's `servePort`, which that container declares (the
    /// webhook injects nothing from it into that pod).
    pub port_taken: BTreeMap<String, u16>,
    /// Selected pods that no HealthCheck injected anything into (e.g. admitted while the
    /// webhook was unreachable), by name.
    pub uninjected: Vec<String>,
    /// `rollout: Restart`: the restarts of these pods' owners that the apiserver forbade, each
    /// with its refusal; `None` when the restarts failed otherwise, so that nothing is known.
    pub restart_forbidden: Option<Vec<String>>,
}

/// The (kind, name) of the controller owning a pod, if any.
pub fn controller_owner(pod: &ObjectMeta) -> Option<(String, String)> {
    pod.owner_references
        .iter()
        .flatten()
        .find(|owner| owner.controller == Some(true))
        .map(|owner| (owner.kind.clone(), owner.name.clone()))
}

/// Counts from the selected pods' records: up to date when a container carries this
/// HealthCheck's current hash, stale when it carries an older one.
pub fn observe(
    health_check: &HealthCheck,
    current_hash: Option<&str>,
    pods: &[ObjectMeta],
) -> Observed {
    let name = health_check.name_any();
    let containers = &health_check.spec.containers;
    let mut observed = Observed::default();
    for pod in pods {
        observed.matched += 1;
        let record = injection_record(pod.annotations.as_ref().unwrap_or(&BTreeMap::new()));
        if record.is_empty() {
            observed
                .uninjected
                .push(pod.name.clone().unwrap_or_default());
        }
        let ours: Vec<_> = record.values().filter(|i| i.health_check == name).collect();
        if !ours.is_empty() {
            if ours.iter().all(|i| Some(i.hash.as_str()) == current_hash) {
                observed.up_to_date += 1;
            } else {
                observed.stale += 1;
                observed.stale_owners.extend(controller_owner(pod));
            }
        }
        for (container, injected) in &record {
            let targeted = containers.is_empty() || containers.contains(container);
            if targeted && injected.health_check != name {
                let pod_name = pod.name.as_deref().unwrap_or_default();
                observed.lost.insert(
                    format!("{pod_name}/{container}"),
                    injected.health_check.clone(),
                );
            }
        }
    }
    observed
}

/// The selected pods that declare `serve_port` in a container, as [`Observed::port_taken`].
pub fn serve_port_taken(serve_port: Option<u16>, pods: &[Pod]) -> BTreeMap<String, u16> {
    let Some(port) = serve_port else {
        return BTreeMap::new();
    };
    pods.iter()
        .filter_map(|pod| {
            let container = declared_ports(pod).get(&port).copied()?;
            let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
            Some((format!("{pod_name}/{container}"), port))
        })
        .collect()
}

/// The whole status; conditions whose status did not change keep their transition time.
/// `results` is what the kubelet reports about the probes; `not_injectable` is why the webhook
/// cannot inject a spec the apiserver accepted.
pub fn desired_status(
    health_check: &HealthCheck,
    observed: &Observed,
    results: &ProbeResults,
    previous: Option<&HealthCheckStatus>,
    not_injectable: Option<&str>,
    now: Time,
) -> HealthCheckStatus {
    let mut status = spec_status(health_check, now.clone());
    if let Some(reason) = not_injectable
        && let Some(accepted) = status
            .conditions
            .iter_mut()
            .find(|c| c.type_ == ACCEPTED && c.status == "True")
    {
        accepted.status = "False".to_string();
        accepted.reason = "NotInjectable".to_string();
        accepted.message = reason.to_string();
    }
    let generation = health_check.metadata.generation;
    let accepted = status
        .conditions
        .iter()
        .any(|c| c.type_ == ACCEPTED && c.status == "True");
    let condition = |type_: &str, ok: bool, reason: &str, message: String| Condition {
        type_: type_.to_string(),
        status: if ok { "True" } else { "False" }.to_string(),
        reason: reason.to_string(),
        message,
        last_transition_time: now.clone(),
        observed_generation: generation,
    };
    let counts = format!(
        "{} of {} selected pods carry the current probes, {} older ones",
        observed.up_to_date, observed.matched, observed.stale
    );
    status.conditions.push(match (accepted, observed.stale) {
        (false, _) => condition(
            READY,
            false,
            "InvalidSpec",
            "the spec is not accepted".to_string(),
        ),
        (true, 0) => condition(READY, true, "UpToDate", counts),
        (true, _) => condition(READY, false, "StalePods", counts),
    });
    let first_five = |entries: Vec<String>| {
        let more = entries.len().saturating_sub(5);
        let mut shown: Vec<String> = entries.into_iter().take(5).collect();
        if more > 0 {
            shown.push(format!("and {more} more"));
        }
        shown.join(", ")
    };
    status.conditions.push(
        match (observed.lost.is_empty(), observed.port_taken.is_empty()) {
            (true, true) => condition(CONFLICT, false, "NoConflict", String::new()),
            (_, false) => condition(
                CONFLICT,
                true,
                "ServePortTaken",
                format!(
                    "containers declaring the servePort; nothing is injected into their pods (choose another servePort): {}",
                    first_five(
                        observed
                            .port_taken
                            .iter()
                            .map(|(container, port)| format!("{container} ({port})"))
                            .collect()
                    )
                ),
            ),
            (false, true) => condition(
                CONFLICT,
                true,
                "OutrankedByOtherHealthCheck",
                format!(
                    "containers injected by another HealthCheck (higher priority or earlier name): {}",
                    first_five(
                        observed
                            .lost
                            .iter()
                            .map(|(container, winner)| format!("{container} by {winner}"))
                            .collect()
                    )
                ),
            ),
        },
    );
    status
        .conditions
        .push(healthy(accepted, results, condition));
    if health_check.spec.rollout == Rollout::Restart {
        let known = observed.restart_forbidden.as_ref().map(|forbidden| {
            if forbidden.is_empty() {
                condition(RESTART_FORBIDDEN, false, "NotForbidden", String::new())
            } else {
                condition(
                    RESTART_FORBIDDEN,
                    true,
                    "Forbidden",
                    format!(
                        "rollout: Restart needs the permissions of deploy/components/rollout-restart \
                         (kubectl apply -k deploy/overlays/rollout-restart, or a RoleBinding to the \
                         ClusterRole healthcheck-operator-rollout-restart in this namespace); denied: {}",
                        first_five(forbidden.clone())
                    ),
                )
            }
        });
        let previous_condition = || {
            previous?
                .conditions
                .iter()
                .find(|c| c.type_ == RESTART_FORBIDDEN)
                .cloned()
        };
        status.conditions.push(
            known.or_else(previous_condition).unwrap_or_else(|| {
                condition(RESTART_FORBIDDEN, false, "NotForbidden", String::new())
            }),
        );
    }
    if let Some(previous) = previous {
        for condition in &mut status.conditions {
            if let Some(old) = previous
                .conditions
                .iter()
                .find(|old| old.type_ == condition.type_ && old.status == condition.status)
            {
                condition.last_transition_time = old.last_transition_time.clone();
            }
        }
    }
    status.matched_pods = Some(observed.matched);
    status.up_to_date_pods = Some(observed.up_to_date);
    status.stale_pods = Some(observed.stale);
    status.ready_pods = Some(results.ready);
    status.failing_pods = Some(results.failing);
    status.last_probe_failure = results.last_failure.clone();
    status
}

/// `Healthy`: true when every pod carrying these probes is Ready; unknown while none does (so
/// that `kubectl wait --for=condition=Healthy` waits for the pods to come).
fn healthy(
    accepted: bool,
    results: &ProbeResults,
    condition: impl Fn(&str, bool, &str, String) -> Condition,
) -> Condition {
    let counts = format!(
        "{} of {} probed pods Ready, {} failing their probes",
        results.ready, results.probed, results.failing
    );
    if !accepted {
        return condition(
            HEALTHY,
            false,
            "NotAccepted",
            "the spec is not accepted".to_string(),
        );
    }
    if results.probed == 0 {
        return Condition {
            status: "Unknown".to_string(),
            ..condition(
                HEALTHY,
                false,
                "NoProbedPods",
                "no selected pod carries these probes yet".to_string(),
            )
        };
    }
    if results.failing > 0 {
        let mut failing: Vec<&str> = results
            .failing_containers
            .iter()
            .take(5)
            .map(String::as_str)
            .collect();
        let more = results.failing_containers.len().saturating_sub(5);
        let more = format!("and {more} more");
        if results.failing_containers.len() > 5 {
            failing.push(&more);
        }
        let last = results.last_failure.as_ref().map_or(String::new(), |last| {
            let probe = last.probe.map_or("probe", |role| role.as_str());
            format!(
                "; last failure: {}/{} {probe}: {}",
                last.pod, last.container, last.message
            )
        });
        return condition(
            HEALTHY,
            false,
            "ProbesFailing",
            format!("{counts} ({}){last}", failing.join(", ")),
        );
    }
    if results.ready < results.probed {
        return condition(HEALTHY, false, "PodsNotReady", counts);
    }
    condition(HEALTHY, true, "ProbesPassing", counts)
}

/// Events for conditions that changed status (a new object's healthy defaults are not news).
pub fn transitions(
    previous: Option<&HealthCheckStatus>,
    desired: &HealthCheckStatus,
) -> Vec<Event> {
    desired
        .conditions
        .iter()
        .filter(|condition| {
            let before =
                previous.and_then(|p| p.conditions.iter().find(|old| old.type_ == condition.type_));
            match before {
                Some(old) => old.status != condition.status,
                // A new object: only bad news (Unknown is not news).
                None => match condition.type_.as_str() {
                    CONFLICT | RESTART_FORBIDDEN => condition.status == "True",
                    _ => condition.status == "False",
                },
            }
        })
        .map(|condition| {
            // Stale pods after a change are expected; a rejected spec or a lost container is not.
            let warning = match condition.type_.as_str() {
                CONFLICT | RESTART_FORBIDDEN => condition.status == "True",
                ACCEPTED | HEALTHY => condition.status == "False",
                _ => false,
            };
            let mut note = format!(
                "{} {}: {}",
                condition.type_, condition.status, condition.message
            );
            // Event notes are limited to 1 KiB.
            truncate_within(&mut note, 1000);
            Event {
                type_: if warning {
                    EventType::Warning
                } else {
                    EventType::Normal
                },
                reason: condition.reason.clone(),
                note: Some(note),
                action: "Reconcile".to_string(),
                secondary: None,
            }
        })
        .collect()
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

    #[test]
    fn an_invalid_selector_that_got_past_the_apiserver_is_not_accepted() {
        for requirement in [
            "{ key: app, operator: Exists, values: [x] }",
            "{ key: app, operator: Bogus }",
            "{ key: app, operator: In, values: [] }",
        ] {
            let status = spec_status(
                &health_check(&format!(
                    "selector: {{ matchExpressions: [{requirement}] }}\nprofile: nova-api\nprobes: {{ liveness: {{}} }}"
                )),
                Time(Timestamp::UNIX_EPOCH),
            );
            let accepted = &status.conditions[0];
            assert_eq!(
                (accepted.status.as_str(), accepted.message.as_str()),
                (
                    "False",
                    "spec.selector.matchExpressions: operator must be In or NotIn with one or more values, or Exists or DoesNotExist without values"
                ),
                "{requirement}"
            );
        }
    }
    use crate::inject::{INJECTED_ANNOTATION, InjectConfig, rendering};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn nova(spec_extra: &str) -> HealthCheck {
        let mut hc = HealthCheck::new(
            "nova",
            serde_saphyr::from_str(&format!(
                "selector: {{ matchLabels: {{ app: nova }} }}\nprofile: nova-api\nprobes: {{ liveness: {{}} }}\n{spec_extra}"
            ))
            .unwrap(),
        );
        hc.metadata.generation = Some(2);
        hc
    }

    fn pod(name: &str, record: &str, owner: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_string()),
            annotations: (!record.is_empty())
                .then(|| BTreeMap::from([(INJECTED_ANNOTATION.to_string(), record.to_string())])),
            owner_references: Some(vec![OwnerReference {
                kind: "ReplicaSet".to_string(),
                name: owner.to_string(),
                controller: Some(true),
                ..OwnerReference::default()
            }]),
            ..ObjectMeta::default()
        }
    }

    fn entry(container: &str, health_check: &str, hash: &str) -> String {
        format!(
            r#"{{"{container}":{{"healthCheck":"{health_check}","generation":1,"hash":"{hash}"}}}}"#
        )
    }

    fn time(second: i64) -> Time {
        Time(Timestamp::from_second(second).unwrap())
    }

    fn condition<'a>(status: &'a HealthCheckStatus, type_: &str) -> &'a Condition {
        status.conditions.iter().find(|c| c.type_ == type_).unwrap()
    }

    #[test]
    fn counts_come_from_the_records() {
        let pods = [
            pod("fresh", &entry("api", "nova", "new"), "rs-2"),
            pod("old", &entry("api", "nova", "old"), "rs-1"),
            pod("untouched", "", "rs-1"),
            pod("lost", &entry("api", "winner", "w"), "rs-2"),
        ];
        let observed = observe(&nova(""), Some("new"), &pods);
        assert_eq!(
            (observed.matched, observed.up_to_date, observed.stale),
            (4, 1, 1)
        );
        assert_eq!(
            observed.lost,
            BTreeMap::from([("lost/api".to_string(), "winner".to_string())])
        );
        assert_eq!(
            observed.stale_owners,
            BTreeSet::from([("ReplicaSet".to_string(), "rs-1".to_string())])
        );
        assert_eq!(observed.uninjected, ["untouched"]);
        // A HealthCheck restricted to other containers did not lose "api".
        let observed = observe(&nova("containers: [log]"), Some("new"), &pods);
        assert!(observed.lost.is_empty());
    }

    #[test]
    fn unchanged_observations_give_an_identical_status() {
        let hc = nova("");
        let observed = Observed {
            matched: 3,
            up_to_date: 3,
            ..Observed::default()
        };
        let first = desired_status(
            &hc,
            &observed,
            &ProbeResults::default(),
            None,
            None,
            time(100),
        );
        let second = desired_status(
            &hc,
            &observed,
            &ProbeResults::default(),
            Some(&first),
            None,
            time(200),
        );
        assert_eq!(first, second, "no write when nothing changed");
        assert_eq!(condition(&first, READY).status, "True");
        assert_eq!(condition(&first, CONFLICT).status, "False");
        assert_eq!(first.matched_pods, Some(3));
        assert!(
            transitions(None, &first).is_empty(),
            "healthy defaults are not news"
        );
        assert!(transitions(Some(&first), &second).is_empty());
    }

    #[test]
    fn a_pod_declaring_the_serve_port_is_a_conflict() {
        let pods: Vec<Pod> = serde_json::from_value(serde_json::json!([
            {"metadata": {"name": "a"}, "spec": {"containers": [
                {"name": "api", "ports": [{"containerPort": 9180}]}]}},
            {"metadata": {"name": "b"}, "spec": {"containers": [
                {"name": "api", "ports": [{"containerPort": 8774}]}]}},
        ]))
        .unwrap();
        assert!(
            serve_port_taken(None, &pods).is_empty(),
            "no sidecar, no clash"
        );
        let observed = Observed {
            matched: 2,
            port_taken: serve_port_taken(Some(9180), &pods),
            ..Observed::default()
        };
        assert_eq!(
            observed.port_taken,
            BTreeMap::from([("a/api".to_string(), 9180)])
        );
        let status = desired_status(
            &nova(""),
            &observed,
            &ProbeResults::default(),
            None,
            None,
            time(100),
        );
        let conflict = condition(&status, CONFLICT);
        assert_eq!(
            (conflict.status.as_str(), conflict.reason.as_str()),
            ("True", "ServePortTaken")
        );
        assert!(
            conflict.message.ends_with(": a/api (9180)"),
            "{}",
            conflict.message
        );
        let events = transitions(None, &status);
        assert!(
            events
                .iter()
                .any(|e| e.reason == "ServePortTaken" && e.type_ == EventType::Warning)
        );
    }

    #[test]
    fn stale_pods_and_conflicts_flip_conditions_and_make_events() {
        let hc = nova("");
        let before = desired_status(
            &hc,
            &Observed {
                matched: 2,
                up_to_date: 2,
                ..Observed::default()
            },
            &ProbeResults::default(),
            None,
            None,
            time(100),
        );
        let observed = Observed {
            matched: 2,
            up_to_date: 1,
            stale: 1,
            lost: BTreeMap::from([("p/api".to_string(), "winner".to_string())]),
            ..Observed::default()
        };
        let after = desired_status(
            &hc,
            &observed,
            &ProbeResults::default(),
            Some(&before),
            None,
            time(200),
        );
        let ready = condition(&after, READY);
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "StalePods")
        );
        assert_eq!(ready.last_transition_time, time(200));
        assert_eq!(
            condition(&after, ACCEPTED).last_transition_time,
            time(100),
            "unchanged keeps its time"
        );
        let conflict = condition(&after, CONFLICT);
        assert_eq!(conflict.status, "True");
        assert!(
            conflict.message.ends_with("p/api by winner"),
            "{}",
            conflict.message
        );
        let events = transitions(Some(&before), &after);
        let reasons: Vec<_> = events
            .iter()
            .map(|e| (e.reason.as_str(), e.type_ == EventType::Warning))
            .collect();
        assert_eq!(
            reasons,
            [("StalePods", false), ("OutrankedByOtherHealthCheck", true)]
        );
    }

    #[test]
    fn specs_the_webhook_cannot_inject_are_not_accepted() {
        let hc = nova("");
        let status = desired_status(
            &hc,
            &Observed::default(),
            &ProbeResults::default(),
            None,
            Some("no profiles in HTTP"),
            time(1),
        );
        let accepted = condition(&status, ACCEPTED);
        assert_eq!(
            (
                accepted.status.as_str(),
                accepted.reason.as_str(),
                accepted.message.as_str()
            ),
            ("False", "NotInjectable", "no profiles in HTTP")
        );
        assert_eq!(condition(&status, READY).reason, "InvalidSpec");
    }

    #[test]
    fn a_forbidden_restart_is_a_warning_naming_the_overlay_until_it_is_granted() {
        let hc = nova("rollout: Restart");
        let denied = r#"restart Deployment ns/nova: deployments.apps "nova" is forbidden: User "system:serviceaccount:healthcheck-operator:healthcheck-operator" cannot patch resource "deployments" in API group "apps" in the namespace "ns": Forbidden"#;
        let observed = |forbidden: Option<Vec<String>>| Observed {
            matched: 1,
            stale: 1,
            restart_forbidden: forbidden,
            ..Observed::default()
        };
        let restart_events = |previous, desired| {
            transitions(previous, desired)
                .into_iter()
                .filter(|e| e.note.as_deref().unwrap().starts_with(RESTART_FORBIDDEN))
                .map(|e| (e.reason, e.type_ == EventType::Warning))
                .collect::<Vec<_>>()
        };
        let status = |forbidden, previous, at| {
            desired_status(
                &hc,
                &observed(forbidden),
                &ProbeResults::default(),
                previous,
                None,
                time(at),
            )
        };

        let permitted = status(Some(Vec::new()), None, 50);
        assert_eq!(
            condition(&permitted, RESTART_FORBIDDEN).reason,
            "NotForbidden"
        );
        assert!(
            restart_events(None, &permitted).is_empty(),
            "not news on a new object"
        );

        let forbidden = status(Some(vec![denied.to_string()]), None, 100);
        let restart = condition(&forbidden, RESTART_FORBIDDEN);
        assert_eq!(
            (restart.status.as_str(), restart.reason.as_str()),
            ("True", "Forbidden")
        );
        assert!(
            restart
                .message
                .contains("kubectl apply -k deploy/overlays/rollout-restart"),
            "{}",
            restart.message
        );
        assert!(restart.message.ends_with(denied), "{}", restart.message);
        assert_eq!(
            restart_events(None, &forbidden),
            [("Forbidden".to_string(), true)]
        );

        // The restarts failed for another reason: nothing new is known, nothing changes.
        let unknown = status(None, Some(&forbidden), 200);
        assert_eq!(condition(&unknown, RESTART_FORBIDDEN), restart);
        assert!(restart_events(Some(&forbidden), &unknown).is_empty());

        let granted = status(Some(Vec::new()), Some(&forbidden), 300);
        let restart = condition(&granted, RESTART_FORBIDDEN);
        assert_eq!(
            (
                restart.status.as_str(),
                restart.last_transition_time.clone()
            ),
            ("False", time(300))
        );
        assert_eq!(
            restart_events(Some(&forbidden), &granted),
            [("NotForbidden".to_string(), false)]
        );

        let manual = desired_status(
            &nova(""),
            &observed(Some(vec![denied.to_string()])),
            &ProbeResults::default(),
            None,
            None,
            time(1),
        );
        assert!(
            manual
                .conditions
                .iter()
                .all(|c| c.type_ != RESTART_FORBIDDEN),
            "rollout: Manual restarts nothing"
        );
    }

    #[test]
    fn event_notes_are_cut_to_1000_bytes_between_characters() {
        // A multi-byte URL in the reason once split a `€` and killed the controller.
        let url = format!("http://{}@x/", "€".repeat(400));
        let hc = nova("");
        let status = desired_status(
            &hc,
            &Observed::default(),
            &ProbeResults::default(),
            None,
            Some(&url),
            time(1),
        );
        let events = transitions(None, &status);
        let note = events[0].note.as_deref().unwrap();
        assert!(note.len() <= 1000 && note.len() > 990, "{}", note.len());
        assert!(note.starts_with("Accepted False: http://€€") && note.ends_with('€'));
    }

    #[test]
    fn invalid_specs_are_not_ready() {
        let hc = nova("mode: Native");
        let status = desired_status(
            &hc,
            &Observed::default(),
            &ProbeResults::default(),
            None,
            None,
            time(1),
        );
        assert_eq!(condition(&status, ACCEPTED).status, "False");
        assert_eq!(condition(&status, READY).reason, "InvalidSpec");
        let events = transitions(None, &status);
        assert_eq!(
            events.len(),
            3,
            "Accepted False, Ready False and Healthy False are news"
        );
    }

    fn results(probed: i32, ready: i32, failing: &[&str]) -> ProbeResults {
        ProbeResults {
            probed,
            ready,
            failing: i32::try_from(failing.len()).unwrap(),
            failing_containers: failing.iter().map(|c| c.to_string()).collect(),
            last_failure: (!failing.is_empty()).then(|| crate::api::ProbeFailure {
                pod: "p1".to_string(),
                container: "api".to_string(),
                probe: Some(ProbeRole::Readiness),
                message: "unhealthy: GET http://127.0.0.1:5000/: 503".to_string(),
                time: Some(time(150)),
                count: Some(3),
            }),
        }
    }

    #[test]
    fn healthy_follows_the_kubelet_and_waits_for_pods() {
        let hc = nova("");
        let observed = Observed::default();
        let status = |results: &ProbeResults, previous: Option<&HealthCheckStatus>, at| {
            desired_status(&hc, &observed, results, previous, None, time(at))
        };
        let none = status(&results(0, 0, &[]), None, 100);
        let healthy = condition(&none, HEALTHY);
        assert_eq!(
            (healthy.status.as_str(), healthy.reason.as_str()),
            ("Unknown", "NoProbedPods"),
            "kubectl wait keeps waiting"
        );
        assert_eq!(healthy.observed_generation, Some(2));
        let passing = status(&results(2, 2, &[]), Some(&none), 200);
        let healthy = condition(&passing, HEALTHY);
        assert_eq!(
            (
                healthy.status.as_str(),
                healthy.reason.as_str(),
                healthy.message.as_str()
            ),
            (
                "True",
                "ProbesPassing",
                "2 of 2 probed pods Ready, 0 failing their probes"
            )
        );
        assert_eq!(
            (passing.ready_pods, passing.failing_pods),
            (Some(2), Some(0))
        );
        let events = transitions(Some(&none), &passing);
        assert_eq!(events.len(), 1);
        assert_eq!(
            (events[0].reason.as_str(), &events[0].type_),
            ("ProbesPassing", &EventType::Normal)
        );

        let failing = status(&results(2, 1, &["p1/api"]), Some(&passing), 300);
        let healthy = condition(&failing, HEALTHY);
        assert_eq!(
            (healthy.status.as_str(), healthy.reason.as_str()),
            ("False", "ProbesFailing")
        );
        assert_eq!(
            healthy.message,
            "1 of 2 probed pods Ready, 1 failing their probes (p1/api); last failure: p1/api readiness: unhealthy: GET http://127.0.0.1:5000/: 503"
        );
        assert_eq!(healthy.last_transition_time, time(300));
        assert_eq!(failing.failing_pods, Some(1));
        assert_eq!(failing.last_probe_failure.as_ref().unwrap().count, Some(3));
        let events = transitions(Some(&passing), &failing);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].type_, EventType::Warning);
        assert!(
            events[0]
                .note
                .as_deref()
                .unwrap()
                .starts_with("Healthy False: 1 of 2")
        );

        let starting = status(&results(2, 1, &[]), Some(&failing), 400);
        assert_eq!(condition(&starting, HEALTHY).reason, "PodsNotReady");
        assert_eq!(
            condition(&starting, HEALTHY).last_transition_time,
            time(300),
            "still False"
        );

        let invalid = desired_status(
            &nova("mode: Native"),
            &observed,
            &results(2, 2, &[]),
            None,
            None,
            time(1),
        );
        assert_eq!(condition(&invalid, HEALTHY).reason, "NotAccepted");
    }

    #[test]
    fn every_probe_role_is_listed_for_kubectl() {
        let status = spec_status(
            &health_check(
                "selector: { matchLabels: { app: x } }\nprofile: nova-api\ntiming: { startPeriod: 1m }\nprobes: { liveness: {}, readiness: {} }",
            ),
            Time(Timestamp::UNIX_EPOCH),
        );
        assert_eq!(
            status.probe_roles.as_deref(),
            Some("liveness,readiness,startup")
        );
    }

    #[test]
    fn current_hash_matches_what_the_webhook_records() {
        let hc = nova("");
        let config = InjectConfig {
            probe_image: "p".to_string(),
        };
        let prepared = crate::inject::PreparedHealthCheck::new(&hc, &config);
        assert_eq!(
            rendering("nova", &hc.spec, &config).unwrap().hash,
            prepared.rendering.unwrap().hash
        );
    }
}
