//! What `healthcheck serve` and the operator's `mode: HTTP` sidecar must agree on: the port, the
//! endpoints, and the configuration the operator writes and `serve` reads.
//!
//! ```yaml
//! listen: "0.0.0.0:9180"
//! liveness:
//!   check: { process: { pattern: nova-api } }
//!   interval: 30s
//! readiness: { check: { http: { url: "http://127.0.0.1:8774/" } }, interval: 10s }
//! ```

use serde::{Deserialize, Serialize};

use crate::duration::DockerDuration;
use crate::{Check, ProbeRole};

/// The port `serve` listens on unless configured otherwise.
pub const DEFAULT_PORT: u16 = 9180;
/// The endpoints answering the liveness, readiness and startup probes.
pub const LIVENESS_PATH: &str = "/livez";
pub const READINESS_PATH: &str = "/readyz";
pub const STARTUP_PATH: &str = "/startupz";
/// The environment variable that may carry the whole config inline.
pub const CONFIG_ENV: &str = "HEALTHCHECK_SERVE_CONFIG";
/// Where the service containers carry their marker for [`ServeConfig::service_root`]: the
/// operator mounts an empty volume at `SERVICE_MARKER_DIR/<HealthCheck name>` in the probed
/// containers. A mount, unlike an environment variable, cannot be overwritten by the process
/// (redis-server and Python's `setproctitle` write their title over the environment block).
pub const SERVICE_MARKER_DIR: &str = "/run/openstack-healthcheck/service";

/// The marker path of service `tag` ([`SERVICE_MARKER_DIR`]`/tag`).
pub fn service_marker(tag: &str) -> String {
    format!("{SERVICE_MARKER_DIR}/{tag}")
}

/// Why `tag` cannot name a service marker: it must be one path component (the operator uses
/// the HealthCheck's name, a DNS subdomain).
pub fn check_service_tag(tag: &str) -> Result<(), String> {
    if tag.is_empty() || tag == "." || tag == ".." || tag.contains(['/', '\0']) {
        return Err(format!(
            "`{tag}` is not a service name: give one path component, as the operator's \
             HealthCheck name (the marker is {SERVICE_MARKER_DIR}/<name>)"
        ));
    }
    Ok(())
}

/// The whole configuration file, as written. Unset timing takes Docker's defaults when `serve`
/// validates it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServeConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// Profiles read the service's configuration under `/proc/PID/root` of the oldest process
    /// whose root holds [`service_marker`]`(<this>)`, not in the sidecar's own filesystem (the
    /// pod shares its process namespace; the sidecar needs ptrace access to that process).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_root: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness: Option<ServeProbe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<ServeProbe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup: Option<ServeProbe>,
}

impl ServeConfig {
    /// The configured probes, in [`ProbeRole::ALL`] order.
    pub fn probes(&self) -> impl Iterator<Item = (ProbeRole, &ServeProbe)> {
        [
            (ProbeRole::Liveness, &self.liveness),
            (ProbeRole::Readiness, &self.readiness),
            (ProbeRole::Startup, &self.startup),
        ]
        .into_iter()
        .filter_map(|(role, probe)| probe.as_ref().map(|probe| (role, probe)))
    }

    /// The slot of one role.
    pub fn probe_mut(&mut self, role: ProbeRole) -> &mut Option<ServeProbe> {
        match role {
            ProbeRole::Liveness => &mut self.liveness,
            ProbeRole::Readiness => &mut self.readiness,
            ProbeRole::Startup => &mut self.startup,
        }
    }
}

/// One role's check on Docker's timing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServeProbe {
    pub check: Check,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<DockerDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DockerDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<DockerDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<DockerDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// Run at request time (single-flight, at most once per interval) instead of on a schedule.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub on_demand: bool,
}
