//! The HealthCheck controller, a thin loop: list the selected pods, write the status
//! [`crate::status`] computes when it changed (with Events on condition transitions), and
//! [`crate::rollout`] for `rollout: Restart`. Every replica runs it to keep caches warm; only
//! the Lease holder writes.
//!
//! Pods are watched narrowly: metadata only, and only pods carrying [`INJECTED_LABEL`]. The
//! pods a HealthCheck selects are listed (metadata only, by its selector) when it reconciles.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, PartialObjectMeta, Patch, PatchParams};
use kube::core::Selector;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::warn;

use crate::FIELD_MANAGER;
use crate::api::{HealthCheck, Rollout};
use crate::context::Context;
use crate::error::Error;
use crate::inject::{INJECTED_LABEL, injection_record, rendering};
use crate::rollout::restart_owner;
use crate::status::{desired_status, observe, transitions};

/// Safety net for what no watch event announces (pods selected but never injected).
const RESYNC: Duration = Duration::from_secs(300);

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
    let rendered = rendering(&name, &health_check.spec, &ctx.inject);
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
