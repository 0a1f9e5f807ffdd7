//! `rollout: Restart`: pods are immutable, so a workload whose pods carry stale probes gets its
//! pod template annotated with the new hash, which rolls it once per hash.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::json;
use tracing::{info, warn};

use crate::api::HealthCheck;
use crate::context::Context;
use crate::error::Error;
use crate::inject::{PreparedHealthCheck, inject};
use crate::registration::INJECT_NAMESPACE_LABEL;
use crate::status::{Observed, controller_owner};

/// Pod-template annotation prefix `rollout: Restart` sets to the probes' hash.
pub const ROLLOUT_ANNOTATION_PREFIX: &str = "probes.healthcheck.openstack.org/";
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

/// What one reconcile's restarts came to.
#[derive(Debug, Default)]
pub struct Restarts {
    /// The webhook is not reachable yet: the owners of pods admitted without probes wait.
    pub webhook_unreachable: bool,
    /// The restarts the operator's RBAC forbids, each with the apiserver's refusal.
    pub forbidden: Vec<String>,
}

/// Restarts the owners of `observed`'s stale pods and of its selected pods admitted without
/// probes. A forbidden restart (an install without deploy/components/rollout-restart) is
/// collected for the status rather than failing the reconcile: retrying cannot grant it, and the
/// other owners may still be allowed (a role granting some kinds only).
pub async fn restart_owners(
    ctx: &Context,
    health_check: &HealthCheck,
    namespace: &str,
    observed: &Observed,
    hash: &str,
) -> Result<Restarts, Error> {
    let name = health_check.name_any();
    let mut restarts = Restarts::default();
    let mut owners = observed.stale_owners.clone();
    match uninjected_owners(ctx, health_check, namespace, &observed.uninjected).await? {
        Some(uninjected) => owners.extend(uninjected),
        // Until the webhook is reachable again.
        None => restarts.webhook_unreachable = true,
    }
    for (kind, owner) in &owners {
        let Err(err) = restart_owner(ctx, namespace, kind, owner, &name, hash).await else {
            continue;
        };
        let Some(denied) = err.forbidden() else {
            return Err(err);
        };
        warn!(%denied, "rollout: Restart is not permitted");
        ctx.metrics.error("restart_forbidden");
        restarts.forbidden.push(denied);
    }
    Ok(restarts)
}

/// Sets the pod template's rollout annotation to the new hash (once: the same hash is a no-op),
/// which rolls the workload. A ReplicaSet is followed to its Deployment.
pub async fn restart_owner(
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

/// How long the webhook's Service must have had a ready endpoint before pods are restarted to
/// get probes from it: kube-proxy programs a new endpoint within a second or two.
const SERVICE_SETTLE: Duration = Duration::from_secs(5);

/// Whether the apiserver reaches the webhook now: registered by URL (this process serves it), or
/// its Service has had a ready endpoint for [`SERVICE_SETTLE`].
async fn webhook_reachable(ctx: &Context) -> Result<bool, Error> {
    let Some(service) = &ctx.webhook_service else {
        return Ok(true);
    };
    let slices = Api::<EndpointSlice>::namespaced(ctx.client.clone(), &service.namespace)
        .list(
            &ListParams::default().labels(&format!("kubernetes.io/service-name={}", service.name)),
        )
        .await
        .map_err(|source| Error::Kube {
            context: format!("list EndpointSlices of Service {}", service.name),
            source,
        })?;
    let ready = slices
        .items
        .iter()
        .flat_map(|slice| &slice.endpoints)
        .any(|endpoint| endpoint.conditions.as_ref().and_then(|c| c.ready) == Some(true));
    let mut since = service
        .ready_since
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let now = Instant::now();
    if !ready {
        *since = None;
        return Ok(false);
    }
    Ok(now.duration_since(*since.get_or_insert(now)) >= SERVICE_SETTLE)
}

/// The controllers of `pods` (selected by `health_check`, carrying no injection at all) that
/// the webhook would now give probes: pods admitted while it was unreachable, which a restart
/// brings under the probes. Pods it would leave alone (an opted-out namespace, probes of their
/// own kept by `existingProbes: Keep`, other containers) are not restarted. `None` while the
/// webhook is not reachable yet: a restart now would admit the pods without probes again.
pub async fn uninjected_owners(
    ctx: &Context,
    health_check: &HealthCheck,
    namespace: &str,
    pods: &[String],
) -> Result<Option<BTreeSet<(String, String)>>, Error> {
    let kube_error = |context: String| move |source| Error::Kube { context, source };
    let mut owners = BTreeSet::new();
    if pods.is_empty() || namespace == "kube-system" {
        return Ok(Some(owners));
    }
    let opted_in = Api::<Namespace>::all(ctx.client.clone())
        .get_metadata_opt(namespace)
        .await
        .map_err(kube_error(format!("read Namespace {namespace}")))?
        .is_some_and(|ns| {
            ns.labels().get(INJECT_NAMESPACE_LABEL).map(String::as_str) == Some("enabled")
        });
    if !opted_in {
        return Ok(Some(owners));
    }
    let prepared = [Arc::new(PreparedHealthCheck::new(
        health_check,
        &ctx.inject,
    ))];
    let api = Api::<Pod>::namespaced(ctx.client.clone(), namespace);
    for name in pods {
        let pod = api
            .get_opt(name)
            .await
            .map_err(kube_error(format!("read Pod {namespace}/{name}")))?;
        if let Some(pod) = pod
            && !inject(&pod, &prepared).record.is_empty()
        {
            owners.extend(controller_owner(&pod.metadata));
        }
    }
    if !owners.is_empty() && !webhook_reachable(ctx).await? {
        return Ok(None);
    }
    Ok(Some(owners))
}

#[cfg(test)]
mod tests {
    use super::*;

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
