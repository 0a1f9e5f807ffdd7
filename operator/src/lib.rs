//! The `HealthCheck` operator: the API types, their validation, and pure renderers from a
//! `HealthCheck` to Kubernetes probes and to Docker, Podman and kolla-ansible healthchecks.

pub mod api;
pub mod duration;
pub mod error;
pub mod import;
pub mod render;
pub mod rules;

pub use error::Error;

use kube::CustomResourceExt;

/// Where `crdgen` writes the CRD, relative to the repository root.
pub const CRD_PATH: &str = "crds/healthcheck.yaml";

/// The `HealthCheck` CustomResourceDefinition as YAML, exactly as committed in [`CRD_PATH`].
pub fn crd_yaml() -> Result<String, Error> {
    yaml(&api::HealthCheck::crd())
}

/// Serializes anything to YAML.
pub fn yaml<T: serde::Serialize>(value: &T) -> Result<String, Error> {
    serde_saphyr::to_string(value).map_err(|err| Error::Yaml(err.to_string()))
}
