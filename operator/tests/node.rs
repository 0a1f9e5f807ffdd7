//! The operator as a user runs it, on a real node (kube-controlplane's `Cluster`: kubelet,
//! containerd, kube-proxy): `kubectl apply -k deploy/overlays/rollout-restart` (`deploy/` with
//! the permissions of `rollout: Restart`) with the project's images, probes injected
//! by it and executed by the kubelet in every injection mode, and the operator's faults.
//!
//! One cluster for the whole binary (see `support`). Tests that break the operator on purpose
//! hold [`OPERATOR`] exclusively; the others share it, so they never see it broken.

mod support;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Instant;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, Pod, Secret};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use kube::api::{Api, ListParams, PostParams};
use kube_controlplane::image::Image;
use kube_controlplane::{Cluster, eventually};
use serde_json::{Value, json};
use tokio::sync::{RwLock, RwLockReadGuard};

use healthcheck_operator::inject::{
    BINARY_DIR, INJECTED_ANNOTATION, INSTALL_CONTAINER, sidecar_name,
};
use support::{
    InjectedNamespace, OPERATOR, OPERATOR_IMAGE, PROBE_IMAGE, REPLICAS, TLS_SECRET, is_ready,
    kubectl, lease_holder, operator_pods, wait_operator_ready,
};

/// Held for writing by tests that stop, delete or cut off the operator.
static OPERATOR_FAULTS: RwLock<()> = RwLock::const_new(());

/// busybox's httpd serving /www on :8080 (`/ready` and `/live` exist, `/missing` does not).
const WEB_IMAGE: &str = "localhost/openstack-healthcheck/test-web:1";
/// The same with the probe binary at `/openstack/healthcheck`, as the project's images carry it.
const WEB_PROBE_IMAGE: &str = "localhost/openstack-healthcheck/test-web-probe:1";
const PROBE: &str = "/openstack/healthcheck";
const READY_URL: &str = "http://127.0.0.1:8080/ready";
const MISSING_URL: &str = "http://127.0.0.1:8080/missing";

/// The shared cluster with the operator installed and the two service images imported.
async fn cluster() -> &'static Cluster {
    let cluster = support::cluster_with_operator().await;
    static IMAGES: OnceLock<()> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let web = |reference: &str| {
            Image::new(reference)
                .host_file("/bin/busybox", std::path::Path::new("/bin/busybox"))
                .unwrap()
                .symlink("/bin/sh", "busybox")
                .file("/www/ready", b"ok\n".to_vec(), 0o644)
                .file("/www/live", b"ok\n".to_vec(), 0o644)
                .entrypoint(&["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"])
        };
        cluster.load_image(&web(WEB_IMAGE)).unwrap();
        let with_probe = web(WEB_PROBE_IMAGE)
            .host_file(PROBE, &static_probe())
            .unwrap();
        cluster.load_image(&with_probe).unwrap();
    });
    cluster
}

/// The static probe binary the probe image carries (`scripts/build-probe`, cached).
fn static_probe() -> PathBuf {
    let output = std::process::Command::new("bash")
        .arg(support::repo_root().join("scripts/build-probe"))
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("run scripts/build-probe");
    assert!(output.status.success(), "scripts/build-probe failed");
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}

/// A HealthCheck spec probing the web server: readiness on `readiness_url`, liveness on /live.
fn web_check(app: &str, readiness_url: &str, extra: Value) -> Value {
    let mut spec = json!({
        "selector": {"matchLabels": {"app": app}},
        "check": {"http": {"url": readiness_url}},
        "probes": {
            "liveness": {"check": {"http": {"url": "http://127.0.0.1:8080/live"}}},
            "readiness": {},
        },
        "timing": {"interval": "2s", "timeout": "2s", "retries": 3},
    });
    for (key, value) in extra.as_object().unwrap() {
        spec[key] = value.clone();
    }
    spec
}

fn web_container(image: &str) -> Value {
    json!({"name": "web", "image": image, "imagePullPolicy": "Never"})
}

async fn create_pod(ns: &InjectedNamespace, name: &str, image: &str) -> Pod {
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "automountServiceAccountToken": false,
            "terminationGracePeriodSeconds": 1,
            "containers": [web_container(image)],
        },
    }))
    .unwrap();
    pods(ns).create(&PostParams::default(), &pod).await.unwrap()
}

async fn create_deployment(ns: &InjectedNamespace, name: &str, image: &str) {
    let deployment: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "automountServiceAccountToken": false,
                    "terminationGracePeriodSeconds": 1,
                    "containers": [web_container(image)],
                },
            },
        },
    }))
    .unwrap();
    Api::<Deployment>::namespaced(ns.client.clone(), &ns.name)
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
}

fn pods(ns: &InjectedNamespace) -> Api<Pod> {
    Api::namespaced(ns.client.clone(), &ns.name)
}

/// The one live pod of `app` once it satisfies `check`.
async fn pod_where(
    ns: &InjectedNamespace,
    app: &str,
    what: &str,
    check: impl Fn(&Pod) -> bool,
) -> Pod {
    eventually(&format!("pod {app}: {what}"), || async {
        let list = pods(ns)
            .list(&ListParams::default().labels(&format!("app={app}")))
            .await
            .ok()?
            .items;
        let live: Vec<Pod> = list
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        match live.as_slice() {
            [pod] if check(pod) => Some(pod.clone()),
            _ => None,
        }
    })
    .await
}

fn main_container(pod: &Pod) -> &Container {
    &pod.spec.as_ref().unwrap().containers[0]
}

fn readiness_command(pod: &Pod) -> Vec<String> {
    main_container(pod)
        .readiness_probe
        .as_ref()
        .and_then(|probe| probe.exec.as_ref()?.command.clone())
        .unwrap_or_default()
}

fn injected(pod: &Pod) -> bool {
    pod.annotations().contains_key(INJECTED_ANNOTATION)
}

/// Running with every container started, but not Ready: only a probe holds it back.
fn running_not_ready(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    let running = status
        .and_then(|s| s.container_statuses.as_ref())
        .is_some_and(|statuses| {
            !statuses.is_empty()
                && statuses
                    .iter()
                    .all(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()))
        });
    running && !is_ready(pod)
}

async fn unhealthy_event_where(ns: &InjectedNamespace, pod: &str, check: impl Fn(&str) -> bool) {
    eventually(&format!("an Unhealthy Event of {pod}"), || async {
        let events = kube_controlplane::unhealthy_events(&ns.client, &ns.name, pod).await;
        events.iter().any(|m| check(m)).then_some(())
    })
    .await;
}

/// `GET` through the apiserver's pod proxy: the apiserver, inside the cluster's network, asks
/// the pod directly.
fn pod_proxy_get(cluster: &Cluster, namespace: &str, pod: &str, port: u16, path: &str) -> String {
    kubectl(
        cluster,
        &[
            "get",
            "--raw",
            &format!("/api/v1/namespaces/{namespace}/pods/{pod}:{port}/proxy{path}"),
        ],
    )
    .unwrap_or_else(|err| panic!("{err:#}"))
}

/// Processes on this host whose executable is `name`, in the node's cgroup.
fn node_processes(cluster: &Cluster, name: &str) -> Vec<u32> {
    let cgroup = format!("{}/", cluster.cgroup_root());
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
            exe.file_name().is_some_and(|f| f == name)
                && std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
                    .is_ok_and(|text| text.contains(&cgroup))
        })
        .collect()
}

fn process_uid(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The mount options of the process's `/`.
fn root_mount_options(pid: u32) -> String {
    let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    mountinfo
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|fields| fields.get(4) == Some(&"/"))
        .map(|fields| fields[5].to_string())
        .unwrap_or_default()
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(name))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_k_deploy_runs_two_locked_down_replicas_serving_through_the_service() {
    let cluster = cluster().await;
    let _serving = OPERATOR_FAULTS.read().await;
    let client = cluster.client().await.unwrap();

    // Both replicas run the project's image, are Ready through /readyz, and the Lease names one.
    let operator_pods = operator_pods(&client).await.unwrap();
    assert_eq!(operator_pods.len(), REPLICAS);
    let names: Vec<String> = operator_pods.iter().map(|p| p.name_any()).collect();
    for pod in &operator_pods {
        assert!(is_ready(pod), "{} is Ready", pod.name_any());
        let container = main_container(pod);
        assert_eq!(container.image.as_deref(), Some(OPERATOR_IMAGE));
        let readiness = container.readiness_probe.as_ref().unwrap();
        assert_eq!(
            readiness.http_get.as_ref().unwrap().path.as_deref(),
            Some("/readyz")
        );
        let readyz = pod_proxy_get(cluster, OPERATOR, &pod.name_any(), 8080, "/readyz");
        assert!(!readyz.is_empty(), "/readyz answers 200 with a body");
    }
    let holder = lease_holder(&client).await.unwrap().unwrap();
    assert!(names.contains(&holder), "{holder} is one of {names:?}");

    // The processes the kubelet started: not root, on a read-only root filesystem.
    let processes = node_processes(cluster, "healthcheck-operator");
    assert_eq!(processes.len(), REPLICAS, "{processes:?}");
    for pid in processes {
        assert_eq!(process_uid(pid), 65532, "operator pid {pid} runs as 65532");
        let options = root_mount_options(pid);
        assert!(
            options.split(',').any(|o| o == "ro"),
            "operator pid {pid} has a read-only root: {options}"
        );
    }

    // The webhook is registered by Service (never by URL) and trusts the CA the operator made.
    let configuration = Api::<MutatingWebhookConfiguration>::all(client.clone())
        .get(OPERATOR)
        .await
        .unwrap();
    let client_config = &configuration.webhooks.as_ref().unwrap()[0].client_config;
    let service = client_config
        .service
        .as_ref()
        .expect("registered by Service");
    assert_eq!(
        (service.name.as_str(), service.namespace.as_str()),
        (OPERATOR, OPERATOR)
    );
    assert!(client_config.url.is_none());
    let secret = Api::<Secret>::namespaced(client.clone(), OPERATOR)
        .get(TLS_SECRET)
        .await
        .unwrap();
    let ca = &secret.data.as_ref().unwrap()["ca.crt"].0;
    assert!(ca.starts_with(b"-----BEGIN CERTIFICATE-----"));
    assert_eq!(
        client_config.ca_bundle.as_ref().map(|b| &b.0),
        Some(ca),
        "the caBundle is the Secret's CA"
    );
    assert!(
        secret.metadata.annotations.unwrap()["healthcheck.openstack.org/sans"]
            .split(',')
            .any(|name| name == "healthcheck-operator.healthcheck-operator.svc"),
        "the certificate names the Service"
    );

    // The Service has both replicas as ready endpoints, and admissions reach them: a dry-run pod
    // in an opted-in namespace gets probes, and the replicas count the requests they answered.
    let slices = Api::<EndpointSlice>::namespaced(client.clone(), OPERATOR)
        .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={OPERATOR}")))
        .await
        .unwrap();
    let ready_endpoints = slices
        .items
        .iter()
        .flat_map(|slice| &slice.endpoints)
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
        .count();
    assert_eq!(ready_endpoints, REPLICAS);
    let admissions = || {
        names
            .iter()
            .map(|pod| {
                let text = pod_proxy_get(cluster, OPERATOR, pod, 8080, "/metrics");
                metric(&text, "healthcheck_operator_admissions_total")
            })
            .sum::<f64>()
    };
    let before = admissions();
    let ns = InjectedNamespace::create(cluster).await;
    ns.apply_health_check("web", web_check("web", READY_URL, json!({})))
        .await;
    let pod = eventually("a dry-run pod with probes", || async {
        let pod = support::dry_run_pod(&ns.client, &ns.name, ("app", "web"))
            .await
            .ok()?;
        injected(&pod).then_some(pod)
    })
    .await;
    assert_eq!(readiness_command(&pod)[0], PROBE);
    assert!(
        admissions() > before,
        "the operator pods answered the admission"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_probes_from_the_image_pass_and_a_broken_one_keeps_its_pod_not_ready() {
    let (_, _serving, ns) = serving_with(&[
        ("web", web_check("web", READY_URL, json!({}))),
        ("broken", web_check("broken", MISSING_URL, json!({}))),
    ])
    .await;
    let web = create_pod(&ns, "web", WEB_PROBE_IMAGE).await;
    let broken = create_pod(&ns, "broken", WEB_PROBE_IMAGE).await;
    for (pod, url) in [(&web, READY_URL), (&broken, MISSING_URL)] {
        let command = readiness_command(pod);
        assert_eq!(command[0], PROBE, "{command:?}");
        assert!(command.contains(&url.to_string()), "{command:?}");
        assert!(main_container(pod).liveness_probe.is_some());
    }
    pod_where(&ns, "web", "Ready", is_ready).await;
    pod_where(&ns, "broken", "Running but not Ready", running_not_ready).await;
    // The kubelet ran the injected command: its Event carries the probe's own line.
    unhealthy_event_where(&ns, "broken", |m| {
        m.starts_with("Readiness probe failed: unhealthy: ") && m.contains("404")
    })
    .await;
}

/// An injected liveness probe that fails: the kubelet restarts the container, and its Event
/// carries the probe's line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_injected_liveness_probe_restarts_the_container() {
    let dead_liveness = json!({
        "probes": {"liveness": {"check": {"http": {"url": MISSING_URL}}}},
    });
    let (_, _serving, ns) =
        serving_with(&[("dead", web_check("dead", READY_URL, dead_liveness))]).await;
    create_pod(&ns, "dead", WEB_PROBE_IMAGE).await;
    pod_where(&ns, "dead", "restarted by the kubelet", |pod| {
        pod.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .is_some_and(|statuses| statuses.iter().any(|c| c.restart_count >= 1))
    })
    .await;
    unhealthy_event_where(&ns, "dead", |m| {
        m.starts_with("Liveness probe failed: unhealthy: ") && m.contains("404")
    })
    .await;
}

/// The serving operator (shared with the other non-fault tests), and a fresh opted-in namespace
/// with these HealthChecks in the webhook's cache.
async fn serving_with(
    health_checks: &[(&str, Value)],
) -> (
    &'static Cluster,
    RwLockReadGuard<'static, ()>,
    InjectedNamespace,
) {
    let cluster = cluster().await;
    let serving = OPERATOR_FAULTS.read().await;
    let ns = InjectedNamespace::create(cluster).await;
    for (name, spec) in health_checks {
        ns.apply_health_check(name, spec.clone()).await;
    }
    for (name, _) in health_checks {
        ns.wait_cached(("app", name)).await;
    }
    (cluster, serving, ns)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inject_binary_runs_the_probes_from_the_read_only_volume_in_an_image_without_it() {
    let (cluster, _serving, ns) = serving_with(&[(
        "web",
        web_check("web", READY_URL, json!({"injectBinary": true})),
    )])
    .await;
    let pod = create_pod(&ns, "web", WEB_IMAGE).await;
    let spec = pod.spec.as_ref().unwrap();
    let installer = &spec.init_containers.as_ref().unwrap()[0];
    assert_eq!(installer.name, INSTALL_CONTAINER);
    assert_eq!(installer.image.as_deref(), Some(PROBE_IMAGE));
    let binary = format!("{BINARY_DIR}/healthcheck");
    assert_eq!(readiness_command(&pod)[0], binary);
    let mount = main_container(&pod)
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.mount_path == BINARY_DIR)
        .unwrap();
    assert_eq!(mount.read_only, Some(true));

    let pod = pod_where(&ns, "web", "Ready", is_ready).await;
    let init = &pod
        .status
        .as_ref()
        .unwrap()
        .init_container_statuses
        .as_ref()
        .unwrap()[0];
    let terminated = init.state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!(
        terminated.exit_code, 0,
        "{INSTALL_CONTAINER} copied the binary"
    );

    // The image itself has no probe; the copied one runs and the volume cannot be written.
    let exec = |command: &[&str]| {
        let mut args = vec!["exec", "web", "-c", "web", "--"];
        args.extend(command);
        cluster
            .control_plane()
            .kubectl()
            .args(["-n", &ns.name])
            .args(&args)
            .output()
            .unwrap()
    };
    assert!(!exec(&["/bin/busybox", "ls", PROBE]).status.success());
    let run = exec(&[&binary, "http", READY_URL]);
    assert!(run.status.success());
    assert!(String::from_utf8_lossy(&run.stdout).starts_with("healthy: "));
    let write = exec(&["/bin/sh", "-c", &format!("echo x > {BINARY_DIR}/x")]);
    assert!(!write.status.success());
    assert!(
        String::from_utf8_lossy(&write.stderr).contains("Read-only file system"),
        "{}",
        String::from_utf8_lossy(&write.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_mode_sidecar_answers_the_kubelets_probes_with_the_operators_config() {
    let http = json!({"mode": "HTTP"});
    let (cluster, _serving, ns) = serving_with(&[
        ("web", web_check("web", READY_URL, http.clone())),
        ("broken", web_check("broken", MISSING_URL, http)),
    ])
    .await;
    let web = create_pod(&ns, "web", WEB_IMAGE).await;
    create_pod(&ns, "broken", WEB_IMAGE).await;
    let sidecar = web
        .spec
        .as_ref()
        .unwrap()
        .init_containers
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.name == sidecar_name("web"))
        .expect("the serve sidecar");
    assert_eq!(sidecar.restart_policy.as_deref(), Some("Always"));
    assert_eq!(sidecar.image.as_deref(), Some(PROBE_IMAGE));
    let readiness = main_container(&web).readiness_probe.as_ref().unwrap();
    let http_get = readiness.http_get.as_ref().expect("an httpGet probe");
    assert_eq!(http_get.path.as_deref(), Some("/readyz"));

    let web = pod_where(&ns, "web", "Ready", is_ready).await;
    // The sidecar's verdict is the check the operator configured.
    let port = healthcheck_operator::api::DEFAULT_SERVE_PORT;
    let readyz = pod_proxy_get(cluster, &ns.name, &web.name_any(), port, "/readyz");
    assert!(readyz.contains("/ready"), "{readyz}");
    pod_where(&ns, "broken", "Running but not Ready", running_not_ready).await;
    unhealthy_event_where(&ns, "broken", |m| {
        m.starts_with("Readiness probe failed: HTTP probe failed with statuscode: 503")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_restart_replaces_pods_with_the_updated_probes_and_they_pass() {
    let restart = json!({"rollout": "Restart"});
    let (_, _serving, ns) =
        serving_with(&[("roll", web_check("roll", READY_URL, restart.clone()))]).await;
    create_deployment(&ns, "roll", WEB_PROBE_IMAGE).await;
    let first = pod_where(&ns, "roll", "Ready with the first probes", |pod| {
        is_ready(pod) && readiness_command(pod).contains(&READY_URL.to_string())
    })
    .await;
    let live_url = "http://127.0.0.1:8080/live";
    ns.apply_health_check("roll", web_check("roll", live_url, restart))
        .await;
    let second = pod_where(&ns, "roll", "replaced, Ready with the new probes", |pod| {
        is_ready(pod) && readiness_command(pod).contains(&live_url.to_string())
    })
    .await;
    assert_ne!(first.uid(), second.uid());
}

/// Deletes the Lease holder's pod: a live replica takes the Lease, and the Deployment brings
/// the replica count back. Which replica wins is a race the operator leaves open on purpose:
/// the survivor and the Deployment's replacement both poll the released Lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_leaders_pod_hands_the_lease_to_a_live_replica() {
    let cluster = cluster().await;
    let _fault = OPERATOR_FAULTS.write().await;
    let _restore = Restore(cluster);
    let client = cluster.client().await.unwrap();
    let holder = lease_holder(&client).await.unwrap().unwrap();
    let survivor = operator_pods(&client)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name_any())
        .find(|name| *name != holder)
        .unwrap();
    let deleted = Instant::now();
    kubectl(
        cluster,
        &["delete", "pod", "-n", OPERATOR, &holder, "--wait=false"],
    )
    .unwrap();
    let new_holder = eventually("a live replica to hold the Lease", || async {
        let now = lease_holder(&client).await.ok()??;
        let live = operator_pods(&client).await.ok()?;
        (now != holder && live.iter().any(|pod| pod.name_any() == now)).then_some(now)
    })
    .await;
    eprintln!(
        "leader pod deleted: {} held the Lease after {:.1} s",
        if new_holder == survivor {
            "the surviving replica"
        } else {
            "the Deployment's replacement"
        },
        deleted.elapsed().as_secs_f64()
    );
    wait_operator_ready(cluster).await.unwrap();
    // The new leader writes: a fresh HealthCheck gets its status.
    let ns = InjectedNamespace::create(cluster).await;
    ns.apply_health_check("web", web_check("web", READY_URL, json!({})))
        .await;
    wait_status(&ns, "web").await;
}

async fn wait_status(ns: &InjectedNamespace, name: &str) -> Value {
    let api =
        Api::<healthcheck_operator::api::HealthCheck>::namespaced(ns.client.clone(), &ns.name);
    eventually(&format!("a status on HealthCheck {name}"), || async {
        let status = serde_json::to_value(api.get(name).await.ok()?.status?).ok()?;
        status["conditions"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
            .then_some(status)
    })
    .await
}

/// `kubectl scale` of the operator's Deployment.
fn scale_operator(cluster: &Cluster, replicas: usize) -> anyhow::Result<String> {
    let replicas = format!("--replicas={replicas}");
    kubectl(
        cluster,
        &["scale", "deployment", "-n", OPERATOR, OPERATOR, &replicas],
    )
}

/// Puts the operator back as `deploy/` has it when a fault test ends (also on panic).
struct Restore(&'static Cluster);

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = scale_operator(self.0, REPLICAS);
    }
}

/// Every operator pod gone: pods are still created (fail-open) without probes; once the
/// operator is back, `rollout: Restart` replaces them with probed pods, `Manual` leaves them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_operator_down_pods_are_admitted_and_get_probes_once_it_is_back() {
    let cluster = cluster().await;
    let _fault = OPERATOR_FAULTS.write().await;
    let _restore = Restore(cluster);
    let client = cluster.client().await.unwrap();
    let ns = InjectedNamespace::create(cluster).await;
    ns.apply_health_check(
        "restart",
        web_check("restart", READY_URL, json!({"rollout": "Restart"})),
    )
    .await;
    ns.apply_health_check("manual", web_check("manual", READY_URL, json!({})))
        .await;
    ns.wait_cached(("app", "restart")).await;
    ns.wait_cached(("app", "manual")).await;

    scale_operator(cluster, 0).unwrap();
    eventually("every operator pod to be gone", || async {
        let all = Api::<Pod>::namespaced(client.clone(), OPERATOR)
            .list(&ListParams::default())
            .await
            .ok()?;
        all.items.is_empty().then_some(())
    })
    .await;
    let asked = Instant::now();
    let dry_run = support::dry_run_pod(&ns.client, &ns.name, ("app", "restart"))
        .await
        .expect("admitted with the webhook down");
    eprintln!(
        "operator down: a pod create was admitted in {:.2} s",
        asked.elapsed().as_secs_f64()
    );
    assert!(!injected(&dry_run));
    create_deployment(&ns, "restart", WEB_PROBE_IMAGE).await;
    create_deployment(&ns, "manual", WEB_PROBE_IMAGE).await;
    let unprobed = |pod: &Pod| {
        is_ready(pod) && !injected(pod) && main_container(pod).readiness_probe.is_none()
    };
    pod_where(&ns, "restart", "Ready without probes", unprobed).await;
    let manual = pod_where(&ns, "manual", "Ready without probes", unprobed).await;

    scale_operator(cluster, REPLICAS).unwrap();
    wait_operator_ready(cluster).await.unwrap();
    pod_where(
        &ns,
        "restart",
        "replaced by a Ready pod with probes",
        |pod| is_ready(pod) && injected(pod) && readiness_command(pod)[..1] == [PROBE.to_string()],
    )
    .await;
    let still = pod_where(&ns, "manual", "still there", |_| true).await;
    assert_eq!(
        still.uid(),
        manual.uid(),
        "rollout: Manual restarts nothing"
    );
    assert!(!injected(&still));
}

/// kube-apiserver stopped and started on the same etcd: the operator keeps or regains its
/// Lease, admits with probes again, and its controller writes status again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_recovers_from_an_apiserver_restart() {
    let cluster = cluster().await;
    let _fault = OPERATOR_FAULTS.write().await;
    let _restore = Restore(cluster);
    let restarted = Instant::now();
    cluster.control_plane().restart_apiserver().await.unwrap();
    wait_operator_ready(cluster).await.unwrap();
    eprintln!(
        "apiserver restart: the operator served again {:.1} s after the restart began",
        restarted.elapsed().as_secs_f64()
    );
    let client = cluster.client().await.unwrap();
    let restarts: i32 = operator_pods(&client)
        .await
        .unwrap()
        .iter()
        .flat_map(|pod| pod.status.as_ref()?.container_statuses.clone())
        .flatten()
        .map(|c| c.restart_count)
        .sum();
    eprintln!("apiserver restart: operator container restarts so far: {restarts}");
    let ns = InjectedNamespace::create(cluster).await;
    ns.apply_health_check("web", web_check("web", READY_URL, json!({})))
        .await;
    wait_status(&ns, "web").await;
    ns.wait_cached(("app", "web")).await;
}
