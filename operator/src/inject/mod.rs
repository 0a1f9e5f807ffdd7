//! Pure injection: a Pod × the HealthChecks of its namespace → a JSON patch and a record of
//! what was injected. No I/O; the webhook is a thin shell around [`inject`].
//!
//! The patch is the diff between the pod and a mutated copy, so injecting into a pod that
//! already carries the same probes yields an empty patch (safe under `reinvocationPolicy:
//! IfNeeded`).
//!
//! Submodules: [`record`] (what a pod carries), [`rendering`] (what a HealthCheck injects); this
//! module assigns containers to HealthChecks (priority, conflicts) and builds the patch.

mod record;
mod rendering;

pub(crate) use record::stable_hash;
pub use record::{
    INJECTED_ANNOTATION, INJECTED_LABEL, Injected, InjectionRecord, injection_record,
};
pub use rendering::{
    BINARY_DIR, BINARY_VOLUME, INSTALL_CONTAINER, InjectConfig, Rendering, SERVE_CONTAINER_PREFIX,
    SERVICE_MARKER_VOLUME, rendering, serve_config, sidecar_name,
};

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use healthcheck_spec::serve::service_marker;
use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, Pod, PodSecurityContext, PodSpec, Volume, VolumeMount,
};
use kube::core::{Selector, SelectorExt};
use kube::{Resource, ResourceExt};

use crate::api::{ExistingProbes, HealthCheck, ProbeRole, RenderedProbe};

/// A HealthCheck prepared for admission: parsed selector and rendering done once, not per pod.
#[derive(Clone, Debug)]
pub struct PreparedHealthCheck {
    pub name: String,
    pub generation: i64,
    pub priority: i32,
    pub containers: Vec<String>,
    pub existing_probes: ExistingProbes,
    pub selector: Option<Selector>,
    /// `Err` with the reason when the spec cannot be rendered (the pod is then left alone).
    pub rendering: Result<Rendering, String>,
}

impl PreparedHealthCheck {
    pub fn new(health_check: &HealthCheck, config: &InjectConfig) -> Self {
        let spec = &health_check.spec;
        let selector = Selector::try_from(spec.selector.clone()).ok();
        PreparedHealthCheck {
            name: health_check.name_any(),
            generation: health_check.meta().generation.unwrap_or_default(),
            priority: spec.priority,
            containers: spec.containers.clone(),
            existing_probes: spec.existing_probes,
            rendering: match &selector {
                Some(_) => {
                    rendering(&health_check.name_any(), spec, config).map_err(|err| err.to_string())
                }
                None => Err("spec.selector: not a valid label selector".to_string()),
            },
            selector,
        }
    }

    /// The selector matches these labels (an unparsable selector matches nothing).
    pub fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        self.selector
            .as_ref()
            .is_some_and(|selector| !selector.selects_all() && selector.matches(labels))
    }

    /// This HealthCheck probes the container of that name.
    pub fn targets(&self, container: &str) -> bool {
        self.containers.is_empty() || self.containers.iter().any(|name| name == container)
    }

    /// Sort key: higher priority first, then the first name.
    fn rank(&self) -> (i32, &str) {
        (-self.priority, &self.name)
    }
}

/// A HealthCheck that selects a container but lost it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    pub container: String,
    pub loser: String,
    pub winner: String,
}

/// A `mode: HTTP` HealthCheck whose `servePort` a container of the pod already declares: its
/// sidecar could not listen there, or its probes would ask the service instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortClash {
    pub health_check: String,
    pub container: String,
    pub port: u16,
}

/// The ports the pod's containers (init containers included) declare, with the first container
/// declaring each.
pub fn declared_ports(pod: &Pod) -> BTreeMap<u16, &str> {
    let mut declared = BTreeMap::new();
    let Some(spec) = pod.spec.as_ref() else {
        return declared;
    };
    for container in spec
        .init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
    {
        for port in container.ports.iter().flatten() {
            if let Ok(number) = u16::try_from(port.container_port) {
                declared.entry(number).or_insert(container.name.as_str());
            }
        }
    }
    declared
}

/// What [`inject`] decided.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Injection {
    /// Empty when the pod already is as it should be, or nothing selects it.
    pub patch: json_patch::Patch,
    /// What each container got (also written to the pod's annotation).
    pub record: InjectionRecord,
    pub conflicts: Vec<Conflict>,
    /// HealthChecks that select the pod but whose `servePort` it declares: nothing injected
    /// from them.
    pub port_clashes: Vec<PortClash>,
    /// HealthChecks that select the pod but cannot be rendered, with the reason.
    pub invalid: Vec<(String, String)>,
    /// The record would push the pod's annotations over the apiserver's total limit: the patch
    /// is empty and the pod is admitted unchanged.
    pub annotations_full: bool,
}

/// The apiserver's limit on a pod's annotations: the sum of key and value bytes.
pub const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

/// Annotation size as the apiserver counts it: key plus value bytes, summed.
fn annotations_bytes(annotations: &BTreeMap<String, String>) -> usize {
    annotations.iter().map(|(k, v)| k.len() + v.len()).sum()
}

/// The patch that sets the probes of the winning HealthCheck on each selected container.
pub fn inject(pod: &Pod, health_checks: &[Arc<PreparedHealthCheck>]) -> Injection {
    let empty = BTreeMap::new();
    let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
    let mut injection = Injection::default();
    let declared = declared_ports(pod);
    let mut selecting: Vec<(&PreparedHealthCheck, &Rendering)> = Vec::new();
    for hc in health_checks.iter().filter(|hc| hc.selects(labels)) {
        match &hc.rendering {
            Ok(rendering) => match rendering
                .serve_port
                .and_then(|port| Some((port, *declared.get(&port)?)))
            {
                Some((port, container)) => injection.port_clashes.push(PortClash {
                    health_check: hc.name.clone(),
                    container: container.to_string(),
                    port,
                }),
                None => selecting.push((hc, rendering)),
            },
            Err(reason) => injection.invalid.push((hc.name.clone(), reason.clone())),
        }
    }
    let Some(spec) = pod.spec.as_ref().filter(|_| !selecting.is_empty()) else {
        return injection;
    };
    // Winner per container; each sidecar port goes to the best-ranked HealthCheck using it.
    selecting.sort_by(|(a, _), (b, _)| a.rank().cmp(&b.rank()));
    let mut port_owner: BTreeMap<u16, &str> = BTreeMap::new();
    let mut assignments: Vec<(usize, &PreparedHealthCheck, &Rendering)> = Vec::new();
    for (index, container) in spec.containers.iter().enumerate() {
        let mut winner: Option<(&PreparedHealthCheck, &Rendering)> = None;
        for &(hc, rendering) in selecting
            .iter()
            .filter(|(hc, _)| hc.targets(&container.name))
        {
            let port_taken_by = rendering
                .serve_port
                .and_then(|port| port_owner.get(&port).copied())
                .filter(|owner| *owner != hc.name);
            let beaten_by = match (winner, port_taken_by) {
                (Some((won, _)), _) => &won.name,
                (None, Some(owner)) => owner,
                (None, None) => {
                    if let Some(port) = rendering.serve_port {
                        port_owner.insert(port, &hc.name);
                    }
                    winner = Some((hc, rendering));
                    continue;
                }
            };
            injection.conflicts.push(Conflict {
                container: container.name.clone(),
                loser: hc.name.clone(),
                winner: beaten_by.to_string(),
            });
        }
        if let Some((hc, rendering)) = winner {
            assignments.push((index, hc, rendering));
        }
    }

    let mut mutated = pod.clone();
    let mutated_spec = mutated.spec.get_or_insert_with(Default::default);
    let mut sidecars: BTreeSet<&str> = BTreeSet::new();
    let mut installer = None;
    let mut marked = false;
    for (index, hc, rendering) in assignments {
        let container = &mut mutated_spec.containers[index];
        if !set_probes(container, &rendering.probes, hc.existing_probes) {
            continue;
        }
        injection.record.insert(
            container.name.clone(),
            Injected {
                health_check: hc.name.clone(),
                generation: hc.generation,
                hash: rendering.hash.clone(),
            },
        );
        if let Some(container_spec) = &rendering.installer {
            installer = Some(container_spec);
            add_read_only_mount(container, BINARY_VOLUME, BINARY_DIR);
        }
        if let Some(tag) = &rendering.service_tag {
            add_read_only_mount(container, SERVICE_MARKER_VOLUME, &service_marker(tag));
            marked = true;
        }
        let service_user = run_as(container, mutated_spec.security_context.as_ref());
        if let Some(sidecar) = &rendering.sidecar
            && sidecars.insert(&hc.name)
        {
            let name = sidecar_name(&hc.name);
            let init = mutated_spec.init_containers.get_or_insert_with(Vec::new);
            if !init.iter().any(|c| c.name == name) {
                let mut sidecar = Container {
                    name,
                    ..sidecar.clone()
                };
                if rendering.share_process_namespace {
                    // Another container's /proc/PID/{root,environ,fd} are readable with its uid
                    // and gid.
                    let security = sidecar
                        .security_context
                        .get_or_insert_with(Default::default);
                    (security.run_as_user, security.run_as_group) = service_user;
                }
                init.push(sidecar);
            }
            if rendering.share_process_namespace {
                mutated_spec.share_process_namespace = Some(true);
            }
        }
    }
    if marked {
        add_empty_dir(mutated_spec, SERVICE_MARKER_VOLUME);
    }
    if let Some(installer) = installer {
        add_empty_dir(mutated_spec, BINARY_VOLUME);
        let init = mutated_spec.init_containers.get_or_insert_with(Vec::new);
        if !init.iter().any(|c| c.name == INSTALL_CONTAINER) {
            // First, so the binary is in place before any sidecar or container starts.
            init.insert(0, installer.clone());
        }
    }
    if !injection.record.is_empty() {
        let metadata = &mut mutated.metadata;
        metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(INJECTED_LABEL.to_string(), "true".to_string());
        let annotations = metadata.annotations.get_or_insert_with(BTreeMap::new);
        annotations.insert(
            INJECTED_ANNOTATION.to_string(),
            serde_json::to_string(&injection.record).unwrap_or_default(),
        );
        if annotations_bytes(annotations) > MAX_ANNOTATIONS_BYTES {
            injection.annotations_full = true;
            return injection;
        }
    }
    injection.patch = diff(pod, &mutated);
    injection
}

/// Sets each rendered probe unless `Keep` protects a different one the author wrote; true when
/// the container ends up with at least one of the rendered probes.
fn set_probes(
    container: &mut Container,
    probes: &[RenderedProbe],
    existing: ExistingProbes,
) -> bool {
    let mut carries_ours = false;
    for rendered in probes {
        let slot = match rendered.role {
            ProbeRole::Liveness => &mut container.liveness_probe,
            ProbeRole::Readiness => &mut container.readiness_probe,
            ProbeRole::Startup => &mut container.startup_probe,
        };
        let authored = slot.as_ref().is_some_and(|probe| *probe != rendered.probe);
        if authored && existing == ExistingProbes::Keep {
            continue;
        }
        *slot = Some(rendered.probe.clone());
        carries_ours = true;
    }
    carries_ours
}

/// The uid and gid the container runs as, where the pod states them (container over pod).
fn run_as(container: &Container, pod: Option<&PodSecurityContext>) -> (Option<i64>, Option<i64>) {
    let own = container.security_context.as_ref();
    (
        own.and_then(|s| s.run_as_user)
            .or_else(|| pod.and_then(|p| p.run_as_user)),
        own.and_then(|s| s.run_as_group)
            .or_else(|| pod.and_then(|p| p.run_as_group)),
    )
}

fn add_empty_dir(spec: &mut PodSpec, name: &str) {
    let volumes = spec.volumes.get_or_insert_with(Vec::new);
    if !volumes.iter().any(|v| v.name == name) {
        volumes.push(Volume {
            name: name.to_string(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        });
    }
}

fn add_read_only_mount(container: &mut Container, volume: &str, path: &str) {
    let mounts = container.volume_mounts.get_or_insert_with(Vec::new);
    if !mounts.iter().any(|m| m.mount_path == path) {
        mounts.push(VolumeMount {
            name: volume.to_string(),
            mount_path: path.to_string(),
            read_only: Some(true),
            ..VolumeMount::default()
        });
    }
}

fn diff(before: &Pod, after: &Pod) -> json_patch::Patch {
    match (serde_json::to_value(before), serde_json::to_value(after)) {
        (Ok(before), Ok(after)) => json_patch::diff(&before, &after),
        // A typed Pod always serializes; an empty patch admits it unchanged.
        _ => json_patch::Patch(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use healthcheck_spec::PROBE_BINARY;
    use healthcheck_spec::serve;
    use serde_json::{Value, json};

    fn config() -> InjectConfig {
        InjectConfig {
            probe_image: "registry.example/openstack-healthcheck:1".to_string(),
        }
    }

    /// A prepared HealthCheck from its spec YAML (without the selector, which is `app: nova`).
    fn hc(name: &str, spec: &str) -> Arc<PreparedHealthCheck> {
        let spec = format!("selector: {{ matchLabels: {{ app: nova }} }}\n{spec}");
        let mut health_check = HealthCheck::new(name, serde_saphyr::from_str(&spec).unwrap());
        health_check.metadata.generation = Some(3);
        Arc::new(PreparedHealthCheck::new(&health_check, &config()))
    }

    const LIVENESS: &str = "profile: nova-api\nprobes: { liveness: {} }";

    fn pod(labels: Value, containers: Value) -> Pod {
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"generateName": "nova-", "labels": labels},
            "spec": {"containers": containers}
        }))
        .unwrap()
    }

    fn nova_pod() -> Pod {
        pod(
            json!({"app": "nova"}),
            json!([{"name": "api", "image": "nova"}, {"name": "log", "image": "busybox"}]),
        )
    }

    /// The pod after the patch, as JSON.
    fn patched(pod: &Pod, injection: &Injection) -> Value {
        let mut value = serde_json::to_value(pod).unwrap();
        json_patch::patch(&mut value, &injection.patch).unwrap();
        value
    }

    /// Injects, applies the patch, and checks a second admission changes nothing.
    fn inject_twice(pod: &Pod, health_checks: &[Arc<PreparedHealthCheck>]) -> (Injection, Value) {
        let injection = inject(pod, health_checks);
        let after = patched(pod, &injection);
        let again = inject(
            &serde_json::from_value(after.clone()).unwrap(),
            health_checks,
        );
        assert!(
            again.patch.0.is_empty(),
            "not idempotent: {:?}",
            again.patch
        );
        assert_eq!(again.record, injection.record);
        (injection, after)
    }

    fn rendered_liveness(health_check: &PreparedHealthCheck) -> Value {
        serde_json::to_value(&health_check.rendering.as_ref().unwrap().probes[0].probe).unwrap()
    }

    #[test]
    fn unselected_pods_are_left_alone() {
        let health_checks = [hc("nova", LIVENESS)];
        for labels in [json!({"app": "glance"}), json!({}), Value::Null] {
            let injection = inject(&pod(labels, json!([{"name": "api"}])), &health_checks);
            assert_eq!(injection, Injection::default());
        }
        assert_eq!(inject(&nova_pod(), &[]), Injection::default());
    }

    #[test]
    fn every_container_gets_the_probes_and_the_pod_a_record() {
        let nova = hc("nova", LIVENESS);
        let (injection, after) = inject_twice(&nova_pod(), std::slice::from_ref(&nova));
        for container in after["spec"]["containers"].as_array().unwrap() {
            assert_eq!(container["livenessProbe"], rendered_liveness(&nova));
            assert!(container.get("readinessProbe").is_none());
        }
        let hash = nova.rendering.as_ref().unwrap().hash.clone();
        let expected = Injected {
            health_check: "nova".into(),
            generation: 3,
            hash,
        };
        assert_eq!(
            injection.record,
            BTreeMap::from([("api".into(), expected.clone()), ("log".into(), expected)])
        );
        assert_eq!(after["metadata"]["labels"][INJECTED_LABEL], "true");
        let annotations: BTreeMap<String, String> =
            serde_json::from_value(after["metadata"]["annotations"].clone()).unwrap();
        assert_eq!(injection_record(&annotations), injection.record);
        assert!(after["spec"].get("initContainers").is_none());
    }

    #[test]
    fn containers_restricts_the_targets() {
        let health_checks = [hc(
            "nova",
            &format!("containers: [api, absent]\n{LIVENESS}"),
        )];
        let (injection, after) = inject_twice(&nova_pod(), &health_checks);
        assert_eq!(injection.record.keys().collect::<Vec<_>>(), ["api"]);
        assert!(
            after["spec"]["containers"][1]
                .get("livenessProbe")
                .is_none()
        );
    }

    #[test]
    fn existing_probes_table() {
        let authored = json!({"tcpSocket": {"port": 8774}, "periodSeconds": 7});
        let spec = "profile: nova-api\nprobes: { liveness: {}, readiness: {} }";
        // (existingProbes, authored probes, liveness after, readiness injected, recorded)
        let cases = [
            (
                "Keep",
                json!({"livenessProbe": authored}),
                Some(authored.clone()),
                true,
                true,
            ),
            (
                "Replace",
                json!({"livenessProbe": authored}),
                None,
                true,
                true,
            ),
            (
                "Keep",
                json!({"livenessProbe": authored, "readinessProbe": authored}),
                Some(authored.clone()),
                false,
                false,
            ),
            ("Keep", json!({}), None, true, true),
        ];
        for (policy, probes, liveness_after, readiness_injected, recorded) in cases {
            let nova = hc("nova", &format!("existingProbes: {policy}\n{spec}"));
            let mut container = json!({"name": "api"});
            container
                .as_object_mut()
                .unwrap()
                .extend(probes.as_object().unwrap().clone());
            let pod = pod(json!({"app": "nova"}), json!([container]));
            let (injection, after) = inject_twice(&pod, std::slice::from_ref(&nova));
            let api = &after["spec"]["containers"][0];
            let ours = nova.rendering.as_ref().unwrap();
            let our = |i: usize| serde_json::to_value(&ours.probes[i].probe).unwrap();
            assert_eq!(
                api["livenessProbe"],
                liveness_after.unwrap_or_else(|| our(0)),
                "{policy} {probes}"
            );
            assert_eq!(
                api["readinessProbe"] == our(1),
                readiness_injected,
                "{policy} {probes}"
            );
            assert_eq!(!injection.record.is_empty(), recorded, "{policy} {probes}");
            if !recorded {
                assert!(injection.patch.0.is_empty());
            }
        }
    }

    #[test]
    fn conflicts_go_to_priority_then_name() {
        /// (HealthChecks as (name, priority), expected winner, expected losers)
        type Case<'a> = (&'a [(&'a str, i32)], &'a str, &'a [&'a str]);
        let cases: &[Case] = &[
            (&[("b", 0), ("a", 0)], "a", &["b"]),
            (&[("a", 0), ("b", 1)], "b", &["a"]),
            (&[("c", -1), ("b", 0), ("a", 0)], "a", &["b", "c"]),
            (&[("only", 0)], "only", &[]),
        ];
        for (health_checks, winner, losers) in cases {
            let prepared: Vec<_> = health_checks
                .iter()
                .map(|(name, priority)| hc(name, &format!("priority: {priority}\n{LIVENESS}")))
                .collect();
            let pod = pod(json!({"app": "nova"}), json!([{"name": "api"}]));
            let (injection, _) = inject_twice(&pod, &prepared);
            assert_eq!(injection.record["api"].health_check, *winner);
            let expected: Vec<Conflict> = losers
                .iter()
                .map(|loser| Conflict {
                    container: "api".into(),
                    loser: loser.to_string(),
                    winner: winner.to_string(),
                })
                .collect();
            assert_eq!(injection.conflicts, expected, "{health_checks:?}");
        }
    }

    #[test]
    fn a_serve_port_the_pod_declares_is_a_clash_and_injects_nothing_from_that_health_check() {
        let health_checks = [
            hc(
                "serve",
                "check: { process: { pattern: nova-api } }\nmode: HTTP\nservePort: 8774\ncontainers: [api]\nprobes: { liveness: {} }",
            ),
            hc("exec", &format!("containers: [log]\n{LIVENESS}")),
        ];
        let pod = pod(
            json!({"app": "nova"}),
            json!([
                {"name": "api", "image": "nova"},
                {"name": "log", "image": "busybox", "ports": [{"containerPort": 8774}]}
            ]),
        );
        let (injection, after) = inject_twice(&pod, &health_checks);
        assert_eq!(
            injection.port_clashes,
            [PortClash {
                health_check: "serve".into(),
                container: "log".into(),
                port: 8774
            }]
        );
        assert!(after["spec"].get("initContainers").is_none(), "no sidecar");
        assert!(
            after["spec"]["containers"][0]
                .get("livenessProbe")
                .is_none()
        );
        assert_eq!(injection.record.len(), 1);
        assert_eq!(injection.record["log"].health_check, "exec");

        let elsewhere = hc(
            "serve",
            "check: { process: { pattern: nova-api } }\nmode: HTTP\nservePort: 9200\ncontainers: [api]\nprobes: { liveness: {} }",
        );
        let (injection, _) = inject_twice(&pod, &[elsewhere]);
        assert!(injection.port_clashes.is_empty());
        assert_eq!(injection.record["api"].health_check, "serve");
    }

    #[test]
    fn disjoint_containers_do_not_conflict() {
        let health_checks = [
            hc("api", &format!("containers: [api]\n{LIVENESS}")),
            hc("log", &format!("containers: [log]\n{LIVENESS}")),
        ];
        let (injection, _) = inject_twice(&nova_pod(), &health_checks);
        assert!(injection.conflicts.is_empty());
        assert_eq!(injection.record["api"].health_check, "api");
        assert_eq!(injection.record["log"].health_check, "log");
    }

    #[test]
    fn inject_binary_adds_an_installer_and_a_read_only_volume() {
        let health_checks = [hc(
            "nova",
            &format!("injectBinary: true\ncontainers: [api]\n{LIVENESS}"),
        )];
        let mut pod = nova_pod();
        pod.spec.as_mut().unwrap().init_containers = Some(vec![
            serde_json::from_value(json!({"name": "db-sync", "image": "nova"})).unwrap(),
        ]);
        let (_, after) = inject_twice(&pod, &health_checks);
        let init = &after["spec"]["initContainers"];
        assert_eq!(init[0]["name"], INSTALL_CONTAINER, "installer runs first");
        assert_eq!(init[0]["image"], config().probe_image);
        assert_eq!(
            init[0]["command"],
            json!(["cp", PROBE_BINARY, format!("{BINARY_DIR}/healthcheck")])
        );
        assert_eq!(init[1]["name"], "db-sync");
        assert_eq!(
            after["spec"]["volumes"],
            json!([{"name": BINARY_VOLUME, "emptyDir": {}}])
        );
        let api = &after["spec"]["containers"][0];
        assert_eq!(
            api["volumeMounts"],
            json!([{"name": BINARY_VOLUME, "mountPath": BINARY_DIR, "readOnly": true}])
        );
        assert_eq!(
            api["livenessProbe"]["exec"]["command"][0],
            format!("{BINARY_DIR}/healthcheck")
        );
        assert!(after["spec"]["containers"][1].get("volumeMounts").is_none());
    }

    #[test]
    fn http_mode_adds_one_native_sidecar_with_its_config() {
        let health_checks = [hc(
            "nova",
            "check: { process: { pattern: nova-api } }\nmode: HTTP\nservePort: 9200\nprobes: { liveness: {}, readiness: {} }",
        )];
        let (_, after) = inject_twice(&nova_pod(), &health_checks);
        let init = after["spec"]["initContainers"].as_array().unwrap();
        assert_eq!(init.len(), 1, "one sidecar for both containers");
        let sidecar = &init[0];
        assert_eq!(sidecar["name"], "healthcheck-serve-nova");
        assert_eq!(sidecar["restartPolicy"], "Always");
        assert_eq!(
            sidecar["command"],
            json!([PROBE_BINARY, "serve", "--listen", "0.0.0.0:9200"])
        );
        assert_eq!(sidecar["env"][0]["name"], serve::CONFIG_ENV);
        let served: Value =
            serde_saphyr::from_str(sidecar["env"][0]["value"].as_str().unwrap()).unwrap();
        assert_eq!(
            served["liveness"],
            json!({"check": {"process": {"pattern": "nova-api"}}, "interval": "30s", "timeout": "30s",
                   "startPeriod": "0s", "startInterval": "5s", "retries": 3})
        );
        assert!(served.get("readiness").is_some() && served.get("startup").is_none());
        assert_eq!(after["spec"]["shareProcessNamespace"], true);
        assert_eq!(
            after["spec"]["containers"][0]["readinessProbe"]["httpGet"],
            json!({"path": "/readyz", "port": 9200})
        );
    }

    #[test]
    fn http_check_sidecar_keeps_its_own_process_namespace() {
        let health_checks = [hc(
            "nova",
            "check: { http: { url: \"http://127.0.0.1:8774/\" } }\nmode: HTTP\nprobes: { liveness: {} }",
        )];
        let (_, after) = inject_twice(&nova_pod(), &health_checks);
        assert!(after["spec"].get("shareProcessNamespace").is_none());
    }

    #[test]
    fn two_sidecars_on_one_port_conflict() {
        let http = "mode: HTTP\ncheck: { process: { pattern: nova } }\nprobes: { liveness: {} }";
        let health_checks = [
            hc("a", &format!("containers: [api]\n{http}")),
            hc("b", &format!("containers: [log]\n{http}")),
        ];
        let (injection, after) = inject_twice(&nova_pod(), &health_checks);
        assert_eq!(injection.record.keys().collect::<Vec<_>>(), ["api"]);
        assert_eq!(
            injection.conflicts,
            [Conflict {
                container: "log".into(),
                loser: "b".into(),
                winner: "a".into()
            }]
        );
        assert_eq!(after["spec"]["initContainers"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn http_mode_with_a_profile_reads_the_service_through_its_process() {
        let nova = hc(
            "nova",
            "mode: HTTP\nprofile: nova-api\ncontainers: [api]\nprobes: { liveness: {} }",
        );
        let mut pod = nova_pod();
        pod.spec.as_mut().unwrap().security_context =
            Some(serde_json::from_value(json!({"runAsUser": 42436, "runAsGroup": 42436})).unwrap());
        let (_, after) = inject_twice(&pod, std::slice::from_ref(&nova));
        assert_eq!(after["spec"]["shareProcessNamespace"], true);
        let api = &after["spec"]["containers"][0];
        assert_eq!(
            api["volumeMounts"],
            json!([{
                "name": SERVICE_MARKER_VOLUME,
                "mountPath": "/run/openstack-healthcheck/service/nova",
                "readOnly": true,
            }])
        );
        assert!(api.get("env").is_none(), "{api}");
        assert!(
            after["spec"]["containers"][1].get("volumeMounts").is_none(),
            "not probed"
        );
        assert_eq!(
            after["spec"]["volumes"],
            json!([{"name": SERVICE_MARKER_VOLUME, "emptyDir": {}}])
        );
        let sidecar = &after["spec"]["initContainers"][0];
        assert_eq!(
            (
                &sidecar["securityContext"]["runAsUser"],
                &sidecar["securityContext"]["runAsGroup"]
            ),
            (&json!(42436), &json!(42436)),
            "the service's uid, for ptrace access to its /proc/PID/root"
        );
        let served: Value =
            serde_saphyr::from_str(sidecar["env"][0]["value"].as_str().unwrap()).unwrap();
        assert_eq!(served["serviceRoot"], "nova");
        assert_eq!(
            served["liveness"]["check"],
            json!({"profile": {"name": "nova-api"}})
        );

        // A container's own securityContext wins over the pod's; unstated, the image's user.
        let mut pod = nova_pod();
        pod.spec.as_mut().unwrap().containers[0].security_context =
            Some(serde_json::from_value(json!({"runAsUser": 0})).unwrap());
        let (_, after) = inject_twice(&pod, std::slice::from_ref(&nova));
        let security = &after["spec"]["initContainers"][0]["securityContext"];
        assert_eq!(security["runAsUser"], 0);
        assert!(security.get("runAsGroup").is_none());
        let (_, after) = inject_twice(&nova_pod(), &[nova]);
        assert!(
            after["spec"]["initContainers"][0]["securityContext"]
                .get("runAsUser")
                .is_none()
        );
    }

    #[test]
    fn checks_in_http_mode_tag_no_container() {
        let (_, after) = inject_twice(
            &nova_pod(),
            &[hc(
                "nova",
                "mode: HTTP\ncheck: { process: { pattern: nova } }\nprobes: { liveness: {} }",
            )],
        );
        assert!(after["spec"]["containers"][0].get("env").is_none());
        let served: Value = serde_saphyr::from_str(
            after["spec"]["initContainers"][0]["env"][0]["value"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert!(served.get("serviceRoot").is_none());
    }

    #[test]
    fn invalid_health_checks_are_reported_and_inject_nothing() {
        let health_checks = [hc(
            "broken",
            "profile: nova-api\nmode: Native\nprobes: { liveness: {} }",
        )];
        let injection = inject(&nova_pod(), &health_checks);
        assert!(injection.patch.0.is_empty() && injection.record.is_empty());
        assert_eq!(injection.invalid.len(), 1);
        assert_eq!(injection.invalid[0].0, "broken");
    }

    #[test]
    fn match_expressions_select() {
        let mut health_check = HealthCheck::new(
            "nova",
            serde_saphyr::from_str(&format!(
                "selector: {{ matchExpressions: [{{ key: app, operator: In, values: [nova, placement] }}, {{ key: canary, operator: DoesNotExist }}] }}\n{LIVENESS}"
            ))
            .unwrap(),
        );
        health_check.metadata.generation = Some(1);
        let prepared = [Arc::new(PreparedHealthCheck::new(&health_check, &config()))];
        let selected = |labels: Value| {
            !inject(&pod(labels, json!([{"name": "api"}])), &prepared)
                .record
                .is_empty()
        };
        assert!(selected(json!({"app": "placement"})));
        assert!(!selected(json!({"app": "placement", "canary": "yes"})));
        assert!(!selected(json!({"app": "glance"})));
    }

    #[test]
    fn a_pod_whose_annotations_cannot_hold_the_record_is_left_unchanged() {
        let checks = [hc("nova", LIVENESS)];
        let with_filler = |bytes: usize| {
            let mut pod = nova_pod();
            pod.metadata.annotations =
                Some(BTreeMap::from([("filler".to_string(), "x".repeat(bytes))]));
            pod
        };
        let roomy = inject(&with_filler(1024), &checks);
        assert!(!roomy.annotations_full);
        assert!(!roomy.patch.0.is_empty());
        let full = inject(
            &with_filler(MAX_ANNOTATIONS_BYTES - "filler".len()),
            &checks,
        );
        assert!(full.annotations_full);
        assert!(full.patch.0.is_empty());
        assert!(!full.record.is_empty());
    }

    #[test]
    fn hash_follows_what_is_injected_not_the_generation() {
        let hash = |name: &str, spec: &str| hc(name, spec).rendering.as_ref().unwrap().hash.clone();
        assert_eq!(hash("a", LIVENESS), hash("b", LIVENESS));
        assert_eq!(hash("a", LIVENESS).len(), 16);
        assert_ne!(
            hash("a", LIVENESS),
            hash("a", "profile: nova-api\nprobes: { readiness: {} }")
        );
        assert_ne!(
            hash("a", LIVENESS),
            hash("a", &format!("injectBinary: true\n{LIVENESS}"))
        );
        assert_eq!(
            hash("a", LIVENESS),
            hash("a", &format!("priority: 5\n{LIVENESS}"))
        );
    }

    #[test]
    fn sidecar_names_are_valid_container_names() {
        assert_eq!(sidecar_name("nova"), "healthcheck-serve-nova");
        let long = sidecar_name(&"x.".repeat(100));
        assert!(
            long.len() <= 63 && !long.ends_with('-') && !long.contains('.'),
            "{long}"
        );
        assert_ne!(sidecar_name("api.x"), sidecar_name("api-x"));
        let prefix = "a".repeat(45);
        let (first, second) = (format!("{prefix}-one"), format!("{prefix}-two"));
        assert_ne!(sidecar_name(&first), sidecar_name(&second));
        assert!(sidecar_name(&first).len() <= 63);
    }

    #[test]
    fn unreadable_records_are_empty() {
        let annotations =
            |text: &str| BTreeMap::from([(INJECTED_ANNOTATION.to_string(), text.to_string())]);
        assert!(injection_record(&annotations("not json")).is_empty());
        assert!(injection_record(&BTreeMap::new()).is_empty());
        assert_eq!(
            injection_record(&annotations(
                r#"{"api":{"healthCheck":"n","generation":2,"hash":"h"}}"#
            ))["api"]
                .generation,
            2
        );
    }
}
