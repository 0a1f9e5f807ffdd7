//! The operator's MutatingWebhookConfiguration: built here for local runs (webhook registered
//! by URL), and its `caBundle` kept current by server-side apply in every mode but cert-manager.

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use kube::api::{Api, ObjectMeta, Patch, PatchParams};
use serde_json::json;

use crate::FIELD_MANAGER;
use crate::error::Error;
use crate::webhook::MUTATE_PATH;

/// The one webhook in the configuration.
pub const WEBHOOK_NAME: &str = "inject.healthcheck.openstack.org";
/// Namespaces opt in with this label set to `enabled`.
pub const INJECT_NAMESPACE_LABEL: &str = "healthcheck.openstack.org/inject";
/// The operator's own pods carry this label and are never mutated.
pub const OPERATOR_POD_LABEL: (&str, &str) = ("app.kubernetes.io/name", "healthcheck-operator");

/// The whole configuration, calling `url` (local runs; in a cluster deploy/ declares it).
pub fn webhook_configuration(
    name: &str,
    url: &str,
    ca_bundle: &str,
) -> MutatingWebhookConfiguration {
    MutatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..ObjectMeta::default()
        },
        webhooks: Some(vec![MutatingWebhook {
            name: WEBHOOK_NAME.to_string(),
            admission_review_versions: vec!["v1".to_string()],
            client_config: WebhookClientConfig {
                url: Some(format!("{}{MUTATE_PATH}", url.trim_end_matches('/'))),
                ca_bundle: Some(ByteString(ca_bundle.as_bytes().to_vec())),
                service: None,
            },
            // A broken webhook must never block pod creation.
            failure_policy: Some("Ignore".to_string()),
            side_effects: "None".to_string(),
            timeout_seconds: Some(5),
            reinvocation_policy: Some("IfNeeded".to_string()),
            match_policy: Some("Equivalent".to_string()),
            namespace_selector: Some(LabelSelector {
                match_expressions: Some(vec![
                    requirement(INJECT_NAMESPACE_LABEL, "In", &["enabled"]),
                    requirement("kubernetes.io/metadata.name", "NotIn", &["kube-system"]),
                ]),
                match_labels: None,
            }),
            object_selector: Some(LabelSelector {
                match_expressions: Some(vec![requirement(
                    OPERATOR_POD_LABEL.0,
                    "NotIn",
                    &[OPERATOR_POD_LABEL.1],
                )]),
                match_labels: None,
            }),
            rules: Some(vec![RuleWithOperations {
                api_groups: Some(vec![String::new()]),
                api_versions: Some(vec!["v1".to_string()]),
                operations: Some(vec!["CREATE".to_string()]),
                resources: Some(vec!["pods".to_string()]),
                scope: Some("Namespaced".to_string()),
            }]),
            match_conditions: None,
        }]),
    }
}

fn requirement(key: &str, operator: &str, values: &[&str]) -> LabelSelectorRequirement {
    LabelSelectorRequirement {
        key: key.to_string(),
        operator: operator.to_string(),
        values: Some(values.iter().map(|v| v.to_string()).collect()),
    }
}

fn kube_error(context: String) -> impl FnOnce(kube::Error) -> Error {
    move |source| Error::Kube { context, source }
}

/// Registers the whole configuration (local runs).
pub async fn apply_configuration(
    api: &Api<MutatingWebhookConfiguration>,
    configuration: &MutatingWebhookConfiguration,
) -> Result<(), Error> {
    let name = configuration.metadata.name.clone().unwrap_or_default();
    let mut object =
        serde_json::to_value(configuration).map_err(|err| Error::Tls(err.to_string()))?;
    object["apiVersion"] = json!("admissionregistration.k8s.io/v1");
    object["kind"] = json!("MutatingWebhookConfiguration");
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&object),
    )
    .await
    .map_err(kube_error(format!(
        "apply MutatingWebhookConfiguration {name}"
    )))?;
    Ok(())
}

/// Sets only `caBundle` of our webhook in a configuration deploy/ declared.
pub async fn apply_ca_bundle(
    api: &Api<MutatingWebhookConfiguration>,
    name: &str,
    ca_bundle: &str,
) -> Result<(), Error> {
    let patch = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [{
            "name": WEBHOOK_NAME,
            "clientConfig": {"caBundle": ByteString(ca_bundle.as_bytes().to_vec())},
        }],
    });
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(kube_error(format!(
        "apply caBundle to MutatingWebhookConfiguration {name}"
    )))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn local_registration_is_opt_in_and_fails_open() {
        let configuration = webhook_configuration("hc", "https://127.0.0.1:8443/", "PEM");
        let value = serde_json::to_value(&configuration).unwrap();
        let webhook = &value["webhooks"][0];
        assert_eq!(
            webhook["clientConfig"]["url"],
            "https://127.0.0.1:8443/mutate"
        );
        assert_eq!(
            webhook["clientConfig"]["caBundle"], "UEVN",
            "base64 of the PEM"
        );
        assert_eq!(webhook["failurePolicy"], "Ignore");
        assert_eq!(webhook["sideEffects"], "None");
        assert!(webhook["timeoutSeconds"].as_i64().unwrap() <= 5);
        assert_eq!(
            webhook["namespaceSelector"]["matchExpressions"][0],
            json!({"key": INJECT_NAMESPACE_LABEL, "operator": "In", "values": ["enabled"]})
        );
        assert_eq!(webhook["rules"][0]["operations"], json!(["CREATE"]));
        assert_eq!(
            webhook["objectSelector"]["matchExpressions"][0]["values"],
            json!(["healthcheck-operator"])
        );
        assert_eq!(webhook["reinvocationPolicy"], Value::from("IfNeeded"));
    }
}
