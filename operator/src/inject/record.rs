//! The record of what was injected, kept on the pod: which HealthCheck each container got and
//! the hash of what it got, so the controller can count up-to-date and stale pods.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Pod annotation: JSON map container name → [`Injected`].
pub const INJECTED_ANNOTATION: &str = "healthcheck.openstack.org/injected";
/// Pod label `"true"` on injected pods, so the controller can watch only those.
pub const INJECTED_LABEL: &str = "healthcheck.openstack.org/injected";

/// What one container got, recorded in [`INJECTED_ANNOTATION`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Injected {
    pub health_check: String,
    pub generation: i64,
    /// [`Rendering::hash`]: changes whenever what would be injected changes.
    pub hash: String,
}

/// Container name → what it got.
pub type InjectionRecord = BTreeMap<String, Injected>;

/// The record a pod carries; empty when it has none or it is unreadable.
pub fn injection_record(annotations: &BTreeMap<String, String>) -> InjectionRecord {
    annotations
        .get(INJECTED_ANNOTATION)
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default()
}

/// FNV-1a over the JSON text, as 16 hex digits: stable across processes and releases (serde_json
/// writes struct fields in declaration order and maps sorted).
pub(crate) fn stable_hash(value: &serde_json::Value) -> String {
    let hash = value
        .to_string()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    format!("{hash:016x}")
}
