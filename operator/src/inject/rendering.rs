//! Everything a HealthCheck injects, independent of the pod: the rendered probes, the `serve`
//! sidecar with its config, the binary installer, and their hash.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, EnvVar, Probe, ResourceRequirements, SecurityContext, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::record::stable_hash;
use crate::api::{DEFAULT_SERVE_PORT, HealthCheckSpec, Mode, ProbeRole, RenderedProbe};
use crate::error::Error;
use crate::render::{kubernetes, plan};
use healthcheck_spec::PROBE_BINARY;
use healthcheck_spec::serve::{self, ServeConfig, ServeProbe};
use healthcheck_spec::text::truncate_within;

/// The `emptyDir` holding the probe binary when `injectBinary` is set.
pub const BINARY_VOLUME: &str = "openstack-healthcheck-bin";
/// Where that volume is mounted (read-only in the probed containers).
pub const BINARY_DIR: &str = "/var/lib/openstack-healthcheck";
/// The empty volume whose mount at [`serve::service_marker`]`(<HealthCheck name>)` marks the
/// probed containers for a sidecar that reads their configuration (`mode: HTTP` with a
/// profile).
pub const SERVICE_MARKER_VOLUME: &str = "openstack-healthcheck-service";
/// The init container copying the binary into the volume.
pub const INSTALL_CONTAINER: &str = "healthcheck-install";
/// Name prefix of the `healthcheck serve` native sidecars (`mode: HTTP`).
pub const SERVE_CONTAINER_PREFIX: &str = "healthcheck-serve";

/// Operator settings that shape what gets injected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InjectConfig {
    /// Image shipping `/openstack/healthcheck` (and `cp`), for the install init container and
    /// the serve sidecar.
    pub probe_image: String,
}

/// Everything a HealthCheck injects, independent of the pod.
#[derive(Clone, Debug, PartialEq)]
pub struct Rendering {
    pub probes: Vec<RenderedProbe>,
    /// The native sidecar serving the probes (`mode: HTTP`).
    pub sidecar: Option<Container>,
    /// The port the sidecar listens on.
    pub serve_port: Option<u16>,
    /// `injectBinary` with exec probes: this init container copies the binary the probes run
    /// from [`BINARY_DIR`].
    pub installer: Option<Container>,
    /// The sidecar inspects the service's processes or sockets, or reads its configuration.
    pub share_process_namespace: bool,
    /// A profile runs in the sidecar: the probed containers get [`SERVICE_MARKER_VOLUME`]
    /// mounted at the marker of this tag, so that it finds their processes and reads the
    /// configuration under their root.
    pub service_tag: Option<String>,
    /// Stable hash of all of the above.
    pub hash: String,
}

/// The probes, sidecar and binary installation the spec of HealthCheck `name` asks for.
pub fn rendering(
    name: &str,
    spec: &HealthCheckSpec,
    config: &InjectConfig,
) -> Result<Rendering, Error> {
    let mut probes = kubernetes::probes(spec)?;
    let installer =
        (spec.inject_binary && spec.mode == Mode::Exec).then(|| install_container(config));
    if installer.is_some() {
        for rendered in &mut probes {
            relocate_binary(&mut rendered.probe);
        }
    }
    let (sidecar, serve_port, service_tag, share_process_namespace) = if spec.mode == Mode::Http {
        let port = spec.serve_port.unwrap_or(DEFAULT_SERVE_PORT);
        let checks = serve_checks(spec)?;
        let service_tag = checks
            .iter()
            .any(|(_, check, _)| reads_service_config(check))
            .then(|| name.to_string());
        let needs_processes = checks.iter().any(|(_, check, _)| inspects_processes(check));
        (
            Some(serve_sidecar(spec, service_tag.as_deref(), port, config)?),
            Some(port),
            service_tag.clone(),
            needs_processes || service_tag.is_some(),
        )
    } else {
        (None, None, None, false)
    };
    let hash = stable_hash(&serde_json::json!({
        "probes": probes,
        "sidecar": sidecar,
        "installer": installer,
        "shareProcessNamespace": share_process_namespace,
        "serviceTag": service_tag,
    }));
    Ok(Rendering {
        probes,
        sidecar,
        serve_port,
        installer,
        share_process_namespace,
        service_tag,
        hash,
    })
}

fn relocate_binary(probe: &mut Probe) {
    if let Some(first) = probe
        .exec
        .as_mut()
        .and_then(|exec| exec.command.as_mut())
        .and_then(|command| command.first_mut())
        .filter(|first| first.as_str() == PROBE_BINARY)
    {
        *first = format!("{BINARY_DIR}/healthcheck");
    }
}

/// A process/port/listen/socket check looks at the service's processes, which a sidecar sees
/// only in a shared process namespace.
fn inspects_processes(check: &healthcheck_spec::Check) -> bool {
    use healthcheck_spec::Check;
    match check {
        Check::Process(_) | Check::Port(_) | Check::Listen(_) | Check::Socket(_) => true,
        Check::AllOf(members) => members.iter().any(inspects_processes),
        _ => false,
    }
}

/// A profile finds its endpoints in the service's own config files, which the sidecar reads
/// under the service process's root.
fn reads_service_config(check: &healthcheck_spec::Check) -> bool {
    use healthcheck_spec::Check;
    match check {
        Check::Profile(_) => true,
        Check::AllOf(members) => members.iter().any(reads_service_config),
        _ => false,
    }
}

/// The planned probes as `healthcheck serve` runs them.
fn serve_checks(
    spec: &HealthCheckSpec,
) -> Result<Vec<(ProbeRole, healthcheck_spec::Check, crate::api::Timing)>, Error> {
    Ok(plan(spec)?
        .into_iter()
        .map(|planned| (planned.role, planned.check, planned.timing))
        .collect())
}

/// The `HEALTHCHECK_SERVE_CONFIG` YAML `healthcheck serve` reads: each probe's check with its
/// timing resolved (Docker's defaults written out, so the sidecar runs what the status shows).
/// `service_tag`: profiles read the configuration under the root of the processes carrying it.
pub fn serve_config(spec: &HealthCheckSpec, service_tag: Option<&str>) -> Result<String, Error> {
    let mut config = ServeConfig {
        service_root: service_tag.map(str::to_string),
        ..ServeConfig::default()
    };
    for (role, check, timing) in serve_checks(spec)? {
        *config.probe_mut(role) = Some(ServeProbe {
            check,
            interval: Some(timing.interval_or_default()),
            timeout: Some(timing.timeout_or_default()),
            start_period: Some(timing.start_period_or_default()),
            start_interval: Some(timing.start_interval_or_default()),
            retries: u32::try_from(timing.retries_or_default()).ok(),
            on_demand: false,
        });
    }
    crate::yaml(&config)
}

fn serve_sidecar(
    spec: &HealthCheckSpec,
    service_tag: Option<&str>,
    port: u16,
    config: &InjectConfig,
) -> Result<Container, Error> {
    Ok(Container {
        name: String::new(), // named per HealthCheck in `inject`
        image: Some(config.probe_image.clone()),
        command: Some(vec![
            PROBE_BINARY.to_string(),
            "serve".to_string(),
            "--listen".to_string(),
            format!("0.0.0.0:{port}"),
        ]),
        env: Some(vec![EnvVar {
            name: serve::CONFIG_ENV.to_string(),
            value: Some(serve_config(spec, service_tag)?),
            value_from: None,
        }]),
        restart_policy: Some("Always".to_string()),
        resources: Some(small_resources()),
        security_context: Some(locked_down()),
        ..Container::default()
    })
}

fn small_resources() -> ResourceRequirements {
    let quantities = |cpu: &str, memory: &str| {
        BTreeMap::from([
            ("cpu".to_string(), Quantity(cpu.to_string())),
            ("memory".to_string(), Quantity(memory.to_string())),
        ])
    };
    ResourceRequirements {
        requests: Some(quantities("10m", "16Mi")),
        limits: Some(quantities("100m", "64Mi")),
        ..ResourceRequirements::default()
    }
}

fn locked_down() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        ..SecurityContext::default()
    }
}

fn install_container(config: &InjectConfig) -> Container {
    Container {
        name: INSTALL_CONTAINER.to_string(),
        image: Some(config.probe_image.clone()),
        command: Some(vec![
            "cp".to_string(),
            PROBE_BINARY.to_string(),
            format!("{BINARY_DIR}/healthcheck"),
        ]),
        volume_mounts: Some(vec![VolumeMount {
            name: BINARY_VOLUME.to_string(),
            mount_path: BINARY_DIR.to_string(),
            ..VolumeMount::default()
        }]),
        resources: Some(small_resources()),
        security_context: Some(locked_down()),
        ..Container::default()
    }
}

/// `healthcheck-serve-<name>` when that is a valid container name; otherwise (a `.`, or over
/// 63 characters) cut and suffixed with a hash of the HealthCheck's name, so that `api.x` and
/// `api-x`, or two long names sharing a prefix, never get one sidecar.
pub fn sidecar_name(health_check: &str) -> String {
    let plain = format!("{SERVE_CONTAINER_PREFIX}-{health_check}");
    if plain.len() <= 63 && !plain.contains('.') {
        return plain;
    }
    let hash = stable_hash(&serde_json::Value::from(health_check));
    let mut name = plain.replace('.', "-");
    truncate_within(&mut name, 63 - 9);
    format!("{}-{}", name.trim_end_matches('-'), &hash[..8])
}
