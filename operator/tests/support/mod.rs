//! The operator installed on a real node the way a user installs it: the project's images from
//! `scripts/build-images probe operator` imported into the node's containerd, then
//! `kubectl apply -k deploy/overlays/rollout-restart` exactly as the README says: `deploy/` plus
//! the permissions of `rollout: Restart`, which the tests exercise (the images carry the names
//! and tags `deploy/` uses, so no other overlay is needed; the kubelet finds them with the
//! default `IfNotPresent` policy and never pulls).
//!
//! In a test binary under `operator/tests/`:
//!
//! ```ignore
//! mod support;
//!
//! #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
//! async fn my_service_becomes_ready() {
//!     let cluster = support::cluster_with_operator().await; // shared, installed once per binary
//!     let ns = support::InjectedNamespace::create(cluster).await; // opted in; deleted on drop
//!     ns.kubectl(&["apply", "-f", "deploy/samples/redis.yaml"]); // paths from the repository root
//!     // ... create the service's pods: they get the probes injected.
//! }
//! ```
//!
//! [`install_operator`] returns once the operator really serves: CRD established, both replicas
//! Ready (their `/readyz` passes only with a synced HealthCheck cache), the `caBundle` written,
//! a Lease holder elected, and a dry-run pod in an opted-in namespace admitted with probes by the
//! apiserver calling the webhook through its Service.

#![allow(dead_code)] // Each test binary uses a different part of this module.

pub mod local;
pub mod reviews;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube_controlplane::image::project_archive;
use kube_controlplane::{Cluster, eventually, shared_cluster};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use healthcheck_operator::inject::INJECTED_ANNOTATION;
use healthcheck_operator::registration::INJECT_NAMESPACE_LABEL;

/// The namespace, Deployment, Service, Lease and webhook configuration of `deploy/`.
pub const OPERATOR: &str = "healthcheck-operator";
/// The images `deploy/` names, as `scripts/build-images` tags them.
pub const OPERATOR_IMAGE: &str = "ghcr.io/openstack-healthcheck/healthcheck-operator:0.1.0";
pub const PROBE_IMAGE: &str = "ghcr.io/openstack-healthcheck/probe:0.1.0";
/// The Secret holding the self-generated webhook CA and certificate.
pub const TLS_SECRET: &str = "healthcheck-operator-tls";
/// Replicas in `deploy/base/deployment.yaml`.
pub const REPLICAS: usize = 2;
/// Bound for the install to become ready on a loaded machine.
const READY_TIMEOUT: Duration = Duration::from_secs(180);

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("the repository root")
}

/// Archives printed by `scripts/build-images probe operator`.
pub struct Images {
    pub probe: PathBuf,
    pub operator: PathBuf,
    /// How long the build took in this process (seconds when cached).
    pub build_time: Duration,
}

/// Builds (or finds cached) the probe and operator images, once per test process.
pub fn images() -> &'static Images {
    static IMAGES: OnceLock<Images> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let started = Instant::now();
        let archive = |target| project_archive(target).unwrap_or_else(|e| panic!("{e:#}"));
        Images {
            probe: archive("probe"),
            operator: archive("operator"),
            build_time: started.elapsed(),
        }
    })
}

/// `kubectl ARGS` on `cluster` from the repository root; the output, or an error with it.
pub fn kubectl(cluster: &Cluster, args: &[&str]) -> Result<String> {
    let output = cluster
        .control_plane()
        .kubectl()
        .current_dir(repo_root())
        .args(args)
        .output()
        .context("run kubectl")?;
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    if !output.status.success() {
        bail!(
            "kubectl {}: {}{}",
            args.join(" "),
            text,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(text)
}

/// Imports the images, applies `deploy/overlays/rollout-restart` and waits until the operator serves (see the module
/// documentation). Returns how long that took from the import on.
pub async fn install_operator(cluster: &Cluster) -> Result<Duration> {
    let images = images();
    let started = Instant::now();
    cluster.import_image(&images.probe)?;
    cluster.import_image(&images.operator)?;
    kubectl(cluster, &["apply", "-k", "deploy/overlays/rollout-restart"])?;
    wait_operator_ready(cluster).await?;
    Ok(started.elapsed())
}

/// The shared cluster of this test binary with the operator installed (once; a failed install
/// fails every test with its reason).
pub async fn cluster_with_operator() -> &'static Cluster {
    static INSTALLED: OnceCell<Result<(), String>> = OnceCell::const_new();
    let cluster = shared_cluster();
    let installed = INSTALLED
        .get_or_init(|| async {
            match install_operator(cluster).await {
                Ok(took) => {
                    eprintln!(
                        "operator installed and ready in {:.1} s (image build {:.1} s)",
                        took.as_secs_f64(),
                        images().build_time.as_secs_f64()
                    );
                    Ok(())
                }
                Err(err) => Err(format!("{err:#}")),
            }
        })
        .await;
    if let Err(err) = installed {
        panic!("installing the operator failed: {err}");
    }
    cluster
}

/// The operator's pods that are not being deleted.
pub async fn operator_pods(client: &Client) -> Result<Vec<Pod>> {
    Ok(Api::<Pod>::namespaced(client.clone(), OPERATOR)
        .list(&ListParams::default().labels(&format!("app.kubernetes.io/name={OPERATOR}")))
        .await?
        .items
        .into_iter()
        .filter(|pod| pod.metadata.deletion_timestamp.is_none())
        .collect())
}

pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|status| status.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
}

/// The Lease holder, if any.
pub async fn lease_holder(client: &Client) -> Result<Option<String>> {
    Ok(Api::<Lease>::namespaced(client.clone(), OPERATOR)
        .get_opt(OPERATOR)
        .await?
        .and_then(|lease| lease.spec?.holder_identity)
        .filter(|holder| !holder.is_empty()))
}

/// Waits until the operator serves as [`install_operator`] promises (also after a fault).
pub async fn wait_operator_ready(cluster: &Cluster) -> Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let client = cluster.client().await?;
    loop {
        let last = match operator_state(cluster, &client).await {
            Ok(None) => return Ok(()),
            Ok(Some(waiting)) => waiting,
            Err(err) => format!("{err:#}"),
        };
        if Instant::now() > deadline {
            let pods = kubectl(cluster, &["get", "pods", "-n", OPERATOR, "-o", "wide"])
                .unwrap_or_else(|e| e.to_string());
            let logs = kubectl(
                cluster,
                &[
                    "logs",
                    "-n",
                    OPERATOR,
                    "-l",
                    "app.kubernetes.io/name=healthcheck-operator",
                    "--tail=20",
                    "--prefix",
                ],
            )
            .unwrap_or_else(|e| e.to_string());
            bail!(
                "the operator is not ready after {READY_TIMEOUT:?}: {last}\n{pods}\n{logs}\n{}",
                cluster.control_plane().apiserver_log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `None` when ready, else what is still missing.
async fn operator_state(cluster: &Cluster, client: &Client) -> Result<Option<String>> {
    if kubectl(
        cluster,
        &[
            "wait",
            "--for=condition=established",
            "--timeout=1s",
            "crd/healthchecks.healthcheck.openstack.org",
        ],
    )
    .is_err()
    {
        return Ok(Some("the CRD is not established".into()));
    }
    let deployment = Api::<Deployment>::namespaced(client.clone(), OPERATOR)
        .get(OPERATOR)
        .await?;
    let status = deployment.status.unwrap_or_default();
    let current = status.observed_generation == deployment.metadata.generation;
    let pods = operator_pods(client).await?;
    let ready = pods.iter().filter(|pod| is_ready(pod)).count();
    if !current || status.updated_replicas != Some(REPLICAS as i32) || ready != REPLICAS {
        return Ok(Some(format!(
            "{ready} of {} operator pods Ready (want {REPLICAS}, all updated)",
            pods.len()
        )));
    }
    let configuration = Api::<MutatingWebhookConfiguration>::all(client.clone())
        .get(OPERATOR)
        .await?;
    let ca_bundle = configuration
        .webhooks
        .unwrap_or_default()
        .first()
        .and_then(|webhook| webhook.client_config.ca_bundle.clone());
    if ca_bundle.is_none_or(|bundle| bundle.0.is_empty()) {
        return Ok(Some("no caBundle in the webhook configuration".into()));
    }
    let names: Vec<_> = pods
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    match lease_holder(client).await? {
        Some(holder) if names.contains(&holder) => {}
        holder => {
            return Ok(Some(format!(
                "Lease holder {holder:?} is not one of {names:?}"
            )));
        }
    }
    if !admits_with_probes(cluster).await? {
        return Ok(Some(
            "a dry-run pod in an opted-in namespace got no probes".into(),
        ));
    }
    Ok(None)
}

/// A dry-run pod create in an opted-in namespace carries the injection record: the apiserver
/// reached the webhook through its Service with the caBundle's CA, and the replica that answered
/// had the HealthCheck in its cache.
async fn admits_with_probes(cluster: &Cluster) -> Result<bool> {
    static PROBE_NAMESPACE: OnceCell<String> = OnceCell::const_new();
    let client = cluster.client().await?;
    let namespace = PROBE_NAMESPACE
        .get_or_try_init(|| async {
            let name = format!("{OPERATOR}-install-check");
            let namespaces = Api::<Namespace>::all(client.clone());
            let object = json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": name, "labels": {INJECT_NAMESPACE_LABEL: "enabled"}},
            });
            namespaces
                .patch(
                    &name,
                    &PatchParams::apply("tests").force(),
                    &Patch::Apply(&object),
                )
                .await?;
            apply_health_check(
                &client,
                &name,
                "install-check",
                json!({
                    "selector": {"matchLabels": {"app": "install-check"}},
                    "check": {"tcp": {"address": "127.0.0.1:1"}},
                    "probes": {"liveness": {}},
                }),
            )
            .await?;
            anyhow::Ok(name)
        })
        .await?;
    Ok(dry_run_pod(&client, namespace, ("app", "install-check"))
        .await?
        .metadata
        .annotations
        .is_some_and(|annotations| annotations.contains_key(INJECTED_ANNOTATION)))
}

/// The pod a dry-run create of a minimal pod with the one label `(key, value)` returns (what
/// admission made of it; nothing is stored).
pub async fn dry_run_pod(
    client: &Client,
    namespace: &str,
    (key, value): (&str, &str),
) -> Result<Pod> {
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"generateName": format!("{value}-"), "labels": {key: value}},
        "spec": {"containers": [{"name": "main", "image": PROBE_IMAGE}]},
    }))?;
    Ok(Api::<Pod>::namespaced(client.clone(), namespace)
        .create(
            &PostParams {
                dry_run: true,
                ..PostParams::default()
            },
            &pod,
        )
        .await?)
}

/// Creates or updates a HealthCheck (server-side apply).
pub async fn apply_health_check(
    client: &Client,
    namespace: &str,
    name: &str,
    spec: Value,
) -> Result<()> {
    let object = json!({
        "apiVersion": "healthcheck.openstack.org/v1beta1", "kind": "HealthCheck",
        "metadata": {"name": name}, "spec": spec,
    });
    Api::<healthcheck_operator::api::HealthCheck>::namespaced(client.clone(), namespace)
        .patch(
            name,
            &PatchParams::apply("tests").force(),
            &Patch::Apply(&object),
        )
        .await
        .with_context(|| format!("apply HealthCheck {namespace}/{name}"))?;
    Ok(())
}

/// A fresh namespace opted in to injection; deleted (without waiting) when dropped, also when
/// the test panics.
pub struct InjectedNamespace {
    pub client: Client,
    pub name: String,
    kubectl: PathBuf,
    kubeconfig: PathBuf,
}

impl InjectedNamespace {
    pub async fn create(cluster: &Cluster) -> Self {
        let ns = cluster
            .control_plane()
            .test_namespace()
            .await
            .expect("a test namespace");
        Api::<Namespace>::all(ns.client.clone())
            .patch(
                &ns.name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {INJECT_NAMESPACE_LABEL: "enabled"}}})),
            )
            .await
            .expect("opt the namespace in");
        Self {
            client: ns.client,
            name: ns.name,
            kubectl: cluster.control_plane().bin_dir().join("kubectl"),
            kubeconfig: cluster.control_plane().kubeconfig().to_path_buf(),
        }
    }

    /// `kubectl -n NAME ARGS` from the repository root; panics with the output on failure.
    pub fn kubectl(&self, args: &[&str]) -> String {
        self.try_kubectl(args)
            .unwrap_or_else(|err| panic!("{err:#}"))
    }

    /// `kubectl -n NAME ARGS` from the repository root: its output, or an error with it.
    pub fn try_kubectl(&self, args: &[&str]) -> Result<String> {
        let output = Command::new(&self.kubectl)
            .env("KUBECONFIG", &self.kubeconfig)
            .current_dir(repo_root())
            .args(["-n", &self.name])
            .args(args)
            .output()
            .context("run kubectl")?;
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        if !output.status.success() {
            bail!(
                "kubectl -n {} {}: {stdout}{}",
                self.name,
                args.join(" "),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(stdout)
    }

    pub async fn apply_health_check(&self, name: &str, spec: Value) {
        apply_health_check(&self.client, &self.name, name, spec)
            .await
            .unwrap();
    }

    /// Waits until a dry-run pod with the label `(key, value)` gets probes: the webhook's cache
    /// holds the HealthCheck selecting it.
    pub async fn wait_cached(&self, label: (&str, &str)) {
        eventually(
            &format!(
                "the webhook to know the HealthCheck of {}={}",
                label.0, label.1
            ),
            || async {
                let pod = dry_run_pod(&self.client, &self.name, label).await.ok()?;
                pod.metadata
                    .annotations?
                    .contains_key(INJECTED_ANNOTATION)
                    .then_some(())
            },
        )
        .await;
    }
}

impl Drop for InjectedNamespace {
    fn drop(&mut self) {
        let _ = Command::new(&self.kubectl)
            .env("KUBECONFIG", &self.kubeconfig)
            .args(["delete", "namespace", &self.name, "--wait=false"])
            .output();
    }
}
