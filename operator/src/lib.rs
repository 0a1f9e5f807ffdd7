//! The `HealthCheck` operator: the API types, their validation, and pure renderers from a
//! `HealthCheck` to Kubernetes probes and to Docker, Podman and kolla-ansible healthchecks.

#![forbid(unsafe_code)]

pub mod api;
pub mod context;
pub mod controller;
pub mod error;
pub mod import;
pub mod index;
pub mod inject;
pub mod leader;
pub mod metrics;
pub mod probe_results;
pub mod registration;
pub mod render;
pub mod rollout;
pub mod rules;
pub mod run;
pub mod status;
pub mod supervisor;
pub mod tls;
pub mod webhook;

pub use error::Error;

use kube::{CustomResourceExt, Resource};

use crate::api::HealthCheck;

/// The server-side-apply field manager of everything the operator writes.
pub const FIELD_MANAGER: &str = "healthcheck-operator";

/// Where `crdgen` writes the CRD, relative to the repository root.
pub const CRD_PATH: &str = "crds/healthcheck.yaml";
/// The same CRD inside deploy/base/ (kustomize loads nothing outside its directory):
/// `healthcheck-operator crdgen -o deploy/base/healthcheck-crd.yaml`.
pub const DEPLOY_CRD_PATH: &str = "deploy/base/healthcheck-crd.yaml";

/// The `HealthCheck` CustomResourceDefinition as YAML, exactly as committed in [`CRD_PATH`].
pub fn crd_yaml() -> Result<String, Error> {
    yaml(&api::HealthCheck::crd())
}

/// Serializes anything to YAML.
pub fn yaml<T: serde::Serialize>(value: &T) -> Result<String, Error> {
    serde_saphyr::to_string(value).map_err(|err| Error::Yaml(err.to_string()))
}

/// A `HealthCheck` from YAML, validated; `origin` names the input in messages.
pub fn parse_health_check(yaml_text: &str, origin: &str) -> Result<HealthCheck, Error> {
    let parse_error = |message: String| Error::Parse {
        path: origin.to_string(),
        message,
    };
    let types: kube::core::TypeMeta =
        serde_saphyr::from_str(yaml_text).map_err(|err| parse_error(err.to_string()))?;
    let expected = (HealthCheck::api_version(&()), HealthCheck::kind(&()));
    if (types.api_version.as_str(), types.kind.as_str()) != (&*expected.0, &*expected.1) {
        return Err(parse_error(format!(
            "expected apiVersion: {} and kind: {}, found apiVersion: {} and kind: {}",
            expected.0, expected.1, types.api_version, types.kind
        )));
    }
    let health_check: HealthCheck =
        serde_saphyr::from_str(yaml_text).map_err(|err| parse_error(err.to_string()))?;
    rules::validate(&health_check.spec)?;
    Ok(health_check)
}
