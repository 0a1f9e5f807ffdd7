//! `rollout: Restart`: pods are immutable, so a workload whose pods carry stale probes gets its
//! pod template annotated with the new hash, which rolls it once per hash.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::json;
use tracing::info;

use crate::context::Context;
use crate::error::Error;

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
