//! The HealthCheck controller: status from the pods' injection records, Events on condition
//! transitions, and `rollout: Restart`. Every replica runs it to keep caches warm; only the
//! Lease holder writes.
//!
//! Pods are watched narrowly: metadata only, and only pods carrying [`INJECTED_LABEL`]. The
//! pods a HealthCheck selects are listed (metadata only, by its selector) when it reconciles.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{
    Api, ApiResource, DynamicObject, ListParams, PartialObjectMeta, Patch, PatchParams,
};
use kube::core::Selector;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::{info, warn};

use crate::api::{HealthCheck, HealthCheckStatus, Rollout};
use crate::context::Context;
use crate::error::Error;
use crate::inject::{INJECTED_LABEL, injection_record, rendering};
use crate::registration::FIELD_MANAGER;
use crate::status::{ACCEPTED, spec_status};

pub const READY: &str = "Ready";
pub const CONFLICT: &str = "Conflict";
/// Pod-template annotation prefix `rollout: Restart` sets to the probes' hash.
pub const ROLLOUT_ANNOTATION_PREFIX: &str = "probes.healthcheck.openstack.org/";
/// Safety net for what no watch event announces (pods selected but never injected).
const RESYNC: Duration = Duration::from_secs(300);

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
        let ours: Vec<_> = record.values().filter(|i| i.health_check == name).collect();
        if !ours.is_empty() {
            if ours.iter().all(|i| Some(i.hash.as_str()) == current_hash) {
                observed.up_to_date += 1;
            } else {
                observed.stale += 1;
                if let Some(owner) = pod
                    .owner_references
                    .iter()
                    .flatten()
                    .find(|owner| owner.controller == Some(true))
                {
                    observed
                        .stale_owners
                        .insert((owner.kind.clone(), owner.name.clone()));
                }
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

/// The whole status; conditions whose status did not change keep their transition time.
/// `not_injectable` is why the webhook cannot inject a spec the apiserver accepted.
pub fn desired_status(
    health_check: &HealthCheck,
    observed: &Observed,
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
    status.conditions.push(if observed.lost.is_empty() {
        condition(CONFLICT, false, "NoConflict", String::new())
    } else {
        let mut lost: Vec<String> = observed
            .lost
            .iter()
            .take(5)
            .map(|(container, winner)| format!("{container} by {winner}"))
            .collect();
        if observed.lost.len() > 5 {
            lost.push(format!("and {} more", observed.lost.len() - 5));
        }
        condition(
            CONFLICT,
            true,
            "OutrankedByOtherHealthCheck",
            format!(
                "containers injected by another HealthCheck (higher priority or earlier name): {}",
                lost.join(", ")
            ),
        )
    });
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
    status
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
                None => {
                    let healthy = (condition.type_ == CONFLICT) == (condition.status == "False");
                    !healthy
                }
            }
        })
        .map(|condition| {
            // Stale pods after a change are expected; a rejected spec or a lost container is not.
            let warning = match condition.type_.as_str() {
                CONFLICT => condition.status == "True",
                ACCEPTED => condition.status == "False",
                _ => false,
            };
            let mut note = format!(
                "{} {}: {}",
                condition.type_, condition.status, condition.message
            );
            // Event notes are limited to 1 KiB.
            note.truncate(1000);
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

/// The annotation key `rollout: Restart` sets on owning workloads' pod templates.
pub fn rollout_annotation(health_check: &str) -> String {
    let name = if health_check.len() <= 63 {
        health_check.to_string()
    } else {
        // Annotation names are at most 63 characters.
        format!(
            "{}-{}",
            &health_check[..46],
            &crate::inject::stable_hash(&json!(health_check))
        )
    };
    format!("{ROLLOUT_ANNOTATION_PREFIX}{name}")
}

/// Runs until `shutdown` resolves.
pub async fn run(ctx: Arc<Context>, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
    let client = ctx.client.clone();
    let pods = Api::<PartialObjectMeta<Pod>>::all(client.clone());
    let leader_gained = tokio_stream_from_watch(ctx.leader.clone());
    Controller::new(Api::<HealthCheck>::all(client), watcher::Config::default())
        .watches(
            pods,
            watcher::Config::default().labels(INJECTED_LABEL),
            |pod| {
                let namespace = pod.namespace().unwrap_or_default();
                let annotations = pod.metadata.annotations.unwrap_or_default();
                injection_record(&annotations)
                    .into_values()
                    .map(|injected| injected.health_check)
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .map(move |name| ObjectRef::new(&name).within(&namespace))
            },
        )
        .reconcile_all_on(leader_gained)
        .with_config(ControllerConfig::default().concurrency(16))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
}

/// One `()` each time this replica becomes the leader.
fn tokio_stream_from_watch(
    leader: tokio::sync::watch::Receiver<bool>,
) -> impl futures::Stream<Item = ()> + Send + 'static {
    futures::stream::unfold(leader, |mut leader| async move {
        loop {
            leader.changed().await.ok()?;
            if *leader.borrow_and_update() {
                return Some(((), leader));
            }
        }
    })
}

fn error_policy(_: Arc<HealthCheck>, err: &Error, ctx: Arc<Context>) -> Action {
    warn!(%err, "reconcile failed");
    ctx.metrics.error("reconcile");
    Action::requeue(Duration::from_secs(10))
}

async fn reconcile(health_check: Arc<HealthCheck>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.metrics.reconciles.inc();
    if !*ctx.leader.borrow() {
        // The leader writes; reconcile_all_on brings us back if we become it.
        return Ok(Action::await_change());
    }
    let namespace = health_check.namespace().unwrap_or_default();
    let name = health_check.name_any();
    let kube_error = |context: String| move |source| Error::Kube { context, source };
    let pods = match Selector::try_from(health_check.spec.selector.clone()) {
        Ok(selector) if !selector.selects_all() => {
            Api::<Pod>::namespaced(ctx.client.clone(), &namespace)
                .list_metadata(&ListParams::default().labels(&selector.to_string()))
                .await
                .map_err(kube_error(format!(
                    "list pods of HealthCheck {namespace}/{name}"
                )))?
                .items
                .into_iter()
                .map(|pod| pod.metadata)
                .collect()
        }
        _ => Vec::new(),
    };
    let rendered = rendering(&health_check.spec, &ctx.inject);
    let current_hash = rendered.as_ref().ok().map(|r| r.hash.clone());
    let observed = observe(&health_check, current_hash.as_deref(), &pods);
    let not_injectable = rendered.as_ref().err().map(ToString::to_string);
    let desired = desired_status(
        &health_check,
        &observed,
        health_check.status.as_ref(),
        not_injectable.as_deref(),
        Time(Timestamp::now()),
    );
    if health_check.status.as_ref() != Some(&desired) {
        let api = Api::<HealthCheck>::namespaced(ctx.client.clone(), &namespace);
        let patch = json!({
            "apiVersion": HealthCheck::api_version(&()),
            "kind": HealthCheck::kind(&()),
            "status": desired,
        });
        api.patch_status(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .map_err(kube_error(format!(
            "write status of HealthCheck {namespace}/{name}"
        )))?;
        ctx.metrics.status_writes.inc();
        let reference = health_check.object_ref(&());
        for event in transitions(health_check.status.as_ref(), &desired) {
            if let Err(err) = ctx.recorder.publish(&event, &reference).await {
                warn!(%err, "cannot publish an Event");
                ctx.metrics.error("event");
            }
        }
    }
    if health_check.spec.rollout == Rollout::Restart
        && let Some(hash) = &current_hash
    {
        for (kind, owner) in &observed.stale_owners {
            restart_owner(&ctx, &namespace, kind, owner, &name, hash).await?;
        }
    }
    Ok(Action::requeue(RESYNC))
}

/// Sets the pod template's rollout annotation to the new hash (once: the same hash is a no-op),
/// which rolls the workload. A ReplicaSet is followed to its Deployment.
async fn restart_owner(
    ctx: &Context,
    namespace: &str,
    kind: &str,
    name: &str,
    health_check: &str,
    hash: &str,
) -> Result<(), Error> {
    let kube_error = |context: String| move |source| Error::Kube { context, source };
    let (resource, workload) = match kind {
        "ReplicaSet" => {
            let replica_set = Api::<ReplicaSet>::namespaced(ctx.client.clone(), namespace)
                .get_metadata_opt(name)
                .await
                .map_err(kube_error(format!("read ReplicaSet {namespace}/{name}")))?;
            let deployment = replica_set.and_then(|rs| {
                rs.metadata
                    .owner_references?
                    .into_iter()
                    .find(|o| o.controller == Some(true) && o.kind == "Deployment")
            });
            match deployment {
                Some(owner) => (ApiResource::erase::<Deployment>(&()), owner.name),
                None => return Ok(()),
            }
        }
        "StatefulSet" => (ApiResource::erase::<StatefulSet>(&()), name.to_string()),
        "DaemonSet" => (ApiResource::erase::<DaemonSet>(&()), name.to_string()),
        _ => return Ok(()),
    };
    let api = Api::<DynamicObject>::namespaced_with(ctx.client.clone(), namespace, &resource);
    let key = rollout_annotation(health_check);
    let Some(object) = api.get_opt(&workload).await.map_err(kube_error(format!(
        "read {} {namespace}/{workload}",
        resource.kind
    )))?
    else {
        return Ok(());
    };
    if object.data["spec"]["template"]["metadata"]["annotations"][&key] == json!(hash) {
        return Ok(());
    }
    let patch = json!({"spec": {"template": {"metadata": {"annotations": {key: hash}}}}});
    api.patch(&workload, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(kube_error(format!(
            "restart {} {namespace}/{workload}",
            resource.kind
        )))?;
    ctx.metrics.rollouts.inc();
    info!(
        namespace,
        kind = resource.kind,
        workload,
        health_check,
        "restarted onto the new probes"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inject::{INJECTED_ANNOTATION, InjectConfig};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn health_check(spec_extra: &str) -> HealthCheck {
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
        let observed = observe(&health_check(""), Some("new"), &pods);
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
        // A HealthCheck restricted to other containers did not lose "api".
        let observed = observe(&health_check("containers: [log]"), Some("new"), &pods);
        assert!(observed.lost.is_empty());
    }

    #[test]
    fn unchanged_observations_give_an_identical_status() {
        let hc = health_check("");
        let observed = Observed {
            matched: 3,
            up_to_date: 3,
            ..Observed::default()
        };
        let first = desired_status(&hc, &observed, None, None, time(100));
        let second = desired_status(&hc, &observed, Some(&first), None, time(200));
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
    fn stale_pods_and_conflicts_flip_conditions_and_make_events() {
        let hc = health_check("");
        let before = desired_status(
            &hc,
            &Observed {
                matched: 2,
                up_to_date: 2,
                ..Observed::default()
            },
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
        let after = desired_status(&hc, &observed, Some(&before), None, time(200));
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
        let hc = health_check("");
        let status = desired_status(
            &hc,
            &Observed::default(),
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
    fn invalid_specs_are_not_ready() {
        let hc = health_check("mode: Native");
        let status = desired_status(&hc, &Observed::default(), None, None, time(1));
        assert_eq!(condition(&status, ACCEPTED).status, "False");
        assert_eq!(condition(&status, READY).reason, "InvalidSpec");
        let events = transitions(None, &status);
        assert_eq!(events.len(), 2, "Accepted False and Ready False are news");
    }

    #[test]
    fn current_hash_matches_what_the_webhook_records() {
        let hc = health_check("");
        let config = InjectConfig {
            probe_image: "p".to_string(),
        };
        let prepared = crate::inject::PreparedHealthCheck::new(&hc, &config);
        assert_eq!(
            rendering(&hc.spec, &config).unwrap().hash,
            prepared.rendering.unwrap().hash
        );
    }

    #[test]
    fn rollout_annotations_are_valid_names() {
        assert_eq!(
            rollout_annotation("nova"),
            "probes.healthcheck.openstack.org/nova"
        );
        let long = rollout_annotation(&"n".repeat(200));
        let name = long.strip_prefix(ROLLOUT_ANNOTATION_PREFIX).unwrap();
        assert!(name.len() <= 63, "{name}");
    }
}
