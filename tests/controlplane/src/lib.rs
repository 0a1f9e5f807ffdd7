//! A real local Kubernetes control plane for tests: etcd, kube-apiserver and
//! kube-controller-manager as plain processes on random loopback ports, with certificates generated
//! in-process and an `admin` user in `system:masters`. Optionally a real node too ([`Cluster`]):
//! containerd, kubelet, kube-proxy and kube-scheduler, all inside a network namespace of its own.
//!
//! Tests share one control plane per test binary and take a fresh namespace each:
//!
//! ```no_run
//! # async fn demo() {
//! let ns = kube_controlplane::namespace().await;
//! let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(ns.client.clone(), &ns.name);
//! # }
//! ```
//!
//! The binaries come from `tests/controlplane/build.sh` (run automatically when
//! `KUBE_CONTROLPLANE_BIN` is unset; cached after the first build).

pub mod certs;
mod host;
pub mod image;
mod node;
mod process;

pub use node::{Cluster, NodeTimings, shared_cluster};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

use crate::certs::{Ca, CertKey};
use crate::host::{Forwarder, NetNs};
use crate::process::{Process, Slot, lock};
use test_support::free_port;

/// Environment variable naming the directory that holds the control plane binaries.
pub const BIN_ENV: &str = "KUBE_CONTROLPLANE_BIN";
/// Environment variable overriding the start timeout in seconds (default 60; 2-core machines are slow).
pub const START_TIMEOUT_ENV: &str = "KUBE_CONTROLPLANE_START_TIMEOUT";

const BINARIES: [&str; 4] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kubectl",
];
const SERVICE_CIDR: &str = "10.0.0.0/24";
/// The node's address inside its network namespace (198.18.0.0/15 is reserved for testing).
const NODE_IP: &str = "198.18.0.1";

/// Where the control plane binaries are: `$KUBE_CONTROLPLANE_BIN`, or whatever the build script
/// reports (it builds them on first use and reuses its cache afterwards).
pub fn binaries_dir() -> Result<PathBuf> {
    let dir = match std::env::var_os(BIN_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("build.sh");
            let out = Command::new(&script)
                .stderr(std::process::Stdio::inherit())
                .output()
                .with_context(|| format!("running {}", script.display()))?;
            if !out.status.success() {
                bail!(
                    "building the control plane failed ({}); run {} to see why (it needs Go and the Go module proxy)",
                    out.status,
                    script.display()
                );
            }
            let stdout = String::from_utf8_lossy(&out.stdout);
            PathBuf::from(stdout.lines().last().unwrap_or_default().trim())
        }
    };
    for bin in BINARIES {
        if !dir.join(bin).is_file() {
            bail!(
                "{} is missing from {} ({BIN_ENV}); run tests/controlplane/build.sh to build the control plane",
                bin,
                dir.display()
            );
        }
    }
    Ok(dir)
}

/// Certificates and keys, written into the control plane's directory.
struct Pki {
    serving_ca: PathBuf,
    serving: (PathBuf, PathBuf),
    client_ca: (PathBuf, PathBuf),
    admin: (PathBuf, PathBuf),
    controller_manager: (PathBuf, PathBuf),
    sa_key: PathBuf,
    sa_pub: PathBuf,
    /// Kept to issue the node's certificates.
    serving_issuer: Ca,
    client_issuer: Ca,
}

impl Pki {
    fn generate(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let write = |name: &str, pem: &str| -> Result<PathBuf> {
            let path = dir.join(name);
            std::fs::write(&path, pem).with_context(|| format!("writing {}", path.display()))?;
            Ok(path)
        };
        let pair = |name: &str, ck: &CertKey| -> Result<(PathBuf, PathBuf)> {
            Ok((
                write(&format!("{name}.crt"), &ck.cert_pem)?,
                write(&format!("{name}.key"), &ck.key_pem)?,
            ))
        };
        let serving_ca = Ca::new("kube-controlplane-serving-ca")?;
        let client_ca = Ca::new("kube-controlplane-client-ca")?;
        let serving = serving_ca.issue_server(&[
            "127.0.0.1",
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "10.0.0.1",
            NODE_IP,
        ])?;
        let (sa_key, sa_pub) = certs::service_account_key_pair()?;
        Ok(Self {
            serving_ca: write("serving-ca.crt", serving_ca.cert_pem())?,
            serving: pair("apiserver", &serving)?,
            client_ca: pair("client-ca", client_ca.cert_key())?,
            admin: pair(
                "admin",
                &client_ca.issue_client("admin", Some("system:masters"))?,
            )?,
            // In system:masters so all controllers can share this identity (see
            // --use-service-account-credentials below).
            controller_manager: pair(
                "controller-manager",
                &client_ca
                    .issue_client("system:kube-controller-manager", Some("system:masters"))?,
            )?,
            sa_key: write("sa.key", &sa_key)?,
            sa_pub: write("sa.pub", &sa_pub)?,
            serving_issuer: serving_ca,
            client_issuer: client_ca,
        })
    }
}

fn kubeconfig_json(server: &str, ca: &Path, user: &str, cert: &Path, key: &Path) -> String {
    // JSON is valid YAML, so kubectl and kube-rs read this without a YAML writer.
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": {"server": server, "certificate-authority": ca}}],
        "users": [{"name": user, "user": {"client-certificate": cert, "client-key": key}}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": user}}],
        "current-context": "local",
    })
    .to_string()
}

const DIR_PREFIX: &str = "kube-controlplane-";
const OWNER_FILE: &str = "owner.pid";

/// Removes what clusters of killed test processes left behind (directories, and for a node its
/// shims, pod processes, cgroups, mounts, network namespace, host sysctls). Every start does this
/// first; call it to clean up without starting a cluster.
pub fn remove_leftovers() {
    remove_stale_dirs();
}

/// Removes directories left by control planes whose process was killed (children die with it via
/// PDEATHSIG, but nothing else removes their files).
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(DIR_PREFIX) {
            continue;
        }
        let owner = std::fs::read_to_string(entry.path().join(OWNER_FILE));
        let Some(pid) = owner
            .ok()
            .and_then(|s| s.trim().parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        // SAFETY: signal 0 only checks whether the process exists.
        let gone = unsafe { libc::kill(pid, 0) } != 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone {
            node::remove_cluster_dir(&entry.path());
        }
    }
}

/// A control plane's directory: removed on drop, after undoing whatever a node recorded in it.
struct ClusterDir(PathBuf);

impl ClusterDir {
    /// Removes what dead test processes left, then creates a fresh directory owned by this one.
    fn create() -> Result<Self> {
        remove_stale_dirs();
        let dir = tempfile::Builder::new()
            .prefix(DIR_PREFIX)
            .tempdir()?
            .keep();
        std::fs::write(dir.join(OWNER_FILE), std::process::id().to_string())?;
        Ok(Self(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ClusterDir {
    fn drop(&mut self) {
        node::remove_cluster_dir(&self.0);
    }
}

fn start_timeout() -> Duration {
    let secs = std::env::var(START_TIMEOUT_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    Duration::from_secs(secs)
}

/// A running control plane. Dropping it stops every process and removes its directory.
pub struct ControlPlane {
    bin: PathBuf,
    etcd_url: String,
    apiserver_port: u16,
    pki: Pki,
    kubeconfig: PathBuf,
    /// With a node: the namespace everything runs in, and the forwarder that makes the API
    /// server reachable on host loopback at the same port.
    netns: Option<Arc<NetNs>>,
    _forwarder: Option<Forwarder>,
    // Declared in stop order: dependents first, etcd last, the directory after all of them.
    controller_manager: Slot,
    apiserver: Slot,
    etcd: Slot,
    dir: ClusterDir,
    timings: StartupTimings,
}

/// Time from the start of [`ControlPlane::start`] (binaries located) until each component was ready.
#[derive(Clone, Copy, Debug, Default)]
pub struct StartupTimings {
    /// etcd answers `/health`.
    pub etcd: Duration,
    /// kube-apiserver answers `/readyz` and the `default` namespace exists.
    pub apiserver: Duration,
    /// kube-controller-manager has created the `default` ServiceAccount: fully usable.
    pub controller_manager: Duration,
}

impl ControlPlane {
    /// Starts etcd, kube-apiserver and kube-controller-manager and waits until the API answers
    /// `/readyz`, the `default` namespace exists and the controller manager has created its
    /// `default` ServiceAccount.
    pub async fn start() -> Result<Self> {
        let bin = binaries_dir()?;
        Self::start_in(bin, Instant::now(), ClusterDir::create()?, None).await
    }

    /// Starts the control plane in `dir`, inside `netns` when given (the node's cluster).
    async fn start_in(
        bin: PathBuf,
        started: Instant,
        dir: ClusterDir,
        netns: Option<Arc<NetNs>>,
    ) -> Result<Self> {
        let pki = Pki::generate(&dir.path().join("pki"))?;
        let apiserver_port = free_port();
        let server = format!("https://127.0.0.1:{apiserver_port}");
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            kubeconfig_json(
                &server,
                &pki.serving_ca,
                "admin",
                &pki.admin.0,
                &pki.admin.1,
            ),
        )?;
        std::fs::write(
            dir.path().join("controller-manager.kubeconfig"),
            kubeconfig_json(
                &server,
                &pki.serving_ca,
                "system:kube-controller-manager",
                &pki.controller_manager.0,
                &pki.controller_manager.1,
            ),
        )?;
        let etcd_url = format!("http://127.0.0.1:{}", free_port());
        let forwarder = match &netns {
            Some(netns) => Some(Forwarder::start(
                netns,
                ([127, 0, 0, 1], apiserver_port).into(),
                (NODE_IP.parse::<std::net::IpAddr>()?, apiserver_port).into(),
            )?),
            None => None,
        };
        let mut cp = Self {
            bin,
            etcd_url,
            apiserver_port,
            pki,
            kubeconfig,
            netns,
            _forwarder: forwarder,
            controller_manager: Slot::default(),
            apiserver: Slot::default(),
            etcd: Slot::default(),
            dir,
            timings: StartupTimings::default(),
        };
        let deadline = Instant::now() + start_timeout();
        cp.start_etcd(deadline).await?;
        cp.timings.etcd = started.elapsed();
        cp.start_apiserver_until(deadline).await?;
        cp.timings.apiserver = started.elapsed();
        cp.start_controller_manager()?;
        let client = cp.client().await?;
        wait_for(
            deadline,
            &cp.controller_manager,
            "the default ServiceAccount",
            || {
                let sa: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
                async move { Ok(sa.get_opt("default").await?.is_some()) }
            },
        )
        .await?;
        cp.timings.controller_manager = started.elapsed();
        Ok(cp)
    }

    /// How long start-up took, for benchmarks.
    pub fn startup_timings(&self) -> StartupTimings {
        self.timings
    }

    async fn start_etcd(&self, deadline: Instant) -> Result<()> {
        let peer = format!("http://127.0.0.1:{}", free_port());
        let mut cmd = Command::new(self.bin.join("etcd"));
        cmd.arg("--name=default")
            .arg(format!(
                "--data-dir={}",
                self.dir.path().join("etcd").display()
            ))
            .arg(format!("--listen-client-urls={}", self.etcd_url))
            .arg(format!("--advertise-client-urls={}", self.etcd_url))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=default={peer}"))
            // Test data is thrown away anyway; fsync dominates start-up and write latency.
            .arg("--unsafe-no-fsync=true")
            .arg("--log-level=warn");
        *lock(&self.etcd) = Some(self.spawn("etcd", cmd)?);
        let address: SocketAddr = self
            .etcd_url
            .trim_start_matches("http://")
            .parse()
            .context("etcd's client URL")?;
        wait_for(deadline, &self.etcd, "etcd /health", || {
            let netns = self.netns.clone();
            async move {
                match netns {
                    Some(netns) => netns.run_in(move || etcd_healthy(address)),
                    None => Ok(etcd_healthy(address)),
                }
            }
        })
        .await
    }

    /// Starts kube-apiserver on the same port and etcd data as before and waits for `/readyz`.
    pub async fn start_apiserver(&self) -> Result<()> {
        self.start_apiserver_until(Instant::now() + start_timeout())
            .await
    }

    /// Stops kube-apiserver; etcd and its data stay.
    pub fn stop_apiserver(&self) {
        lock(&self.apiserver).take();
    }

    /// Stops and starts kube-apiserver on the same etcd data, as a fault test would.
    pub async fn restart_apiserver(&self) -> Result<()> {
        self.stop_apiserver();
        self.start_apiserver().await
    }

    async fn start_apiserver_until(&self, deadline: Instant) -> Result<()> {
        let pki = &self.pki;
        let port = self.apiserver_port;
        let mut cmd = Command::new(self.bin.join("kube-apiserver"));
        cmd.arg(format!("--etcd-servers={}", self.etcd_url))
            .arg(format!("--secure-port={port}"))
            .arg(format!(
                "--cert-dir={}",
                self.dir.path().join("pki").display()
            ))
            .arg(format!("--tls-cert-file={}", pki.serving.0.display()))
            .arg(format!(
                "--tls-private-key-file={}",
                pki.serving.1.display()
            ))
            .arg(format!("--client-ca-file={}", pki.client_ca.0.display()))
            .arg(format!("--service-account-issuer=https://127.0.0.1:{port}"))
            .arg(format!(
                "--service-account-key-file={}",
                pki.sa_pub.display()
            ))
            .arg(format!(
                "--service-account-signing-key-file={}",
                pki.sa_key.display()
            ))
            .arg(format!("--service-cluster-ip-range={SERVICE_CIDR}"))
            .arg("--allow-privileged=true");
        if self.netns.is_some() {
            // Inside the node's namespace: every address there is the cluster's own. The
            // `kubernetes` Service gets the node address as its endpoint, and exec/logs reach
            // the kubelet there.
            cmd.arg("--bind-address=0.0.0.0")
                .arg(format!("--advertise-address={NODE_IP}"))
                .arg("--authorization-mode=Node,RBAC")
                .arg("--enable-admission-plugins=NodeRestriction")
                .arg("--kubelet-preferred-address-types=InternalIP")
                .arg(format!(
                    "--kubelet-client-certificate={}",
                    pki.admin.0.display()
                ))
                .arg(format!("--kubelet-client-key={}", pki.admin.1.display()));
        } else {
            cmd.arg("--bind-address=127.0.0.1")
                // Without it the apiserver looks for a default route, which sandboxes may lack.
                .arg("--advertise-address=127.0.0.1")
                .arg("--authorization-mode=RBAC")
                // Loopback addresses are not valid endpoints for the `kubernetes` Service.
                .arg("--endpoint-reconciler-type=none");
        }
        *lock(&self.apiserver) = Some(self.spawn("kube-apiserver", cmd)?);
        let client = self.client().await?;
        wait_for(deadline, &self.apiserver, "kube-apiserver /readyz", || {
            let client = client.clone();
            async move {
                let req = http::Request::get("/readyz").body(Vec::new())?;
                Ok(client.request_text(req).await.is_ok_and(|s| s == "ok"))
            }
        })
        .await?;
        wait_for(deadline, &self.apiserver, "the default namespace", || {
            let ns: Api<Namespace> = Api::all(client.clone());
            async move { Ok(ns.get_opt("default").await?.is_some()) }
        })
        .await
    }

    fn start_controller_manager(&self) -> Result<()> {
        let pki = &self.pki;
        let kubeconfig = self.dir.path().join("controller-manager.kubeconfig");
        let mut cmd = Command::new(self.bin.join("kube-controller-manager"));
        cmd.arg(format!("--kubeconfig={}", kubeconfig.display()))
            // No metrics/health endpoint: nothing scrapes it, and parallel runs would need ports.
            .arg("--secure-port=0")
            .arg("--leader-elect=false")
            // One identity for all controllers: a token per controller service account costs
            // about 5 s of start-up on 2 cores; only the requester recorded in audit and admission
            // requests differs.
            .arg("--use-service-account-credentials=false")
            .arg(format!(
                "--service-account-private-key-file={}",
                pki.sa_key.display()
            ))
            .arg(format!("--root-ca-file={}", pki.serving_ca.display()))
            .arg(format!(
                "--cluster-signing-cert-file={}",
                pki.client_ca.0.display()
            ))
            .arg(format!(
                "--cluster-signing-key-file={}",
                pki.client_ca.1.display()
            ))
            .arg(format!("--service-cluster-ip-range={SERVICE_CIDR}"));
        *lock(&self.controller_manager) = Some(self.spawn("kube-controller-manager", cmd)?);
        Ok(())
    }

    /// Starts a component (in the node's namespace, if any), logging to `DIR/NAME.log`.
    fn spawn(&self, name: &str, cmd: Command) -> Result<Process> {
        Process::spawn(
            name,
            cmd,
            &self.dir.path().join(format!("{name}.log")),
            self.netns.as_ref().map(|n| n.fd()),
        )
    }

    /// A new client for the `admin` user (`system:masters`). Create one per test: a client's
    /// connections belong to the tokio runtime that made it.
    pub async fn client(&self) -> Result<Client> {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig)?;
        let config =
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
        Ok(Client::try_from(config)?)
    }

    /// The admin kubeconfig (for kubectl, or an operator started as a separate process).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The directory holding etcd, kube-apiserver, kube-controller-manager and kubectl.
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    /// A `kubectl` command already pointed at this control plane.
    pub fn kubectl(&self) -> Command {
        let mut cmd = Command::new(self.bin.join("kubectl"));
        cmd.env("KUBECONFIG", &self.kubeconfig);
        cmd
    }

    /// Waits (at most 60 s) until the CustomResourceDefinition `name` is Established.
    /// `kubectl wait --for=condition=Established` is not enough right after the CRD was created:
    /// while the apiserver still shows `status.conditions: null`, kubectl 1.36 fails at once
    /// (".status.conditions accessor error") instead of waiting.
    pub fn wait_crd_established(&self, name: &str) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let jsonpath = r#"jsonpath={.status.conditions[?(@.type=="Established")].status}"#;
        loop {
            let out = self
                .kubectl()
                .args(["get", "crd", name, "-o", jsonpath])
                .output()
                .map_err(|e| format!("kubectl: {e}"))?;
            if out.status.success() && out.stdout == b"True" {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "CRD {name} not Established within 60 s: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Process ids of the running components (tests check they never outlive the test process).
    pub fn pids(&self) -> Vec<u32> {
        [&self.etcd, &self.apiserver, &self.controller_manager]
            .into_iter()
            .filter_map(|slot| lock(slot).as_ref().map(Process::id))
            .collect()
    }

    /// The end of kube-apiserver's log, for diagnosing a failed test.
    pub fn apiserver_log_tail(&self) -> String {
        lock(&self.apiserver)
            .as_ref()
            .map(Process::log_tail)
            .unwrap_or_default()
    }

    /// Creates a fresh namespace (server-generated name) and waits for its `default`
    /// ServiceAccount, so pods can be created in it right away.
    pub async fn test_namespace(&self) -> Result<TestNamespace> {
        let client = self.client().await?;
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let ns = Namespace {
            metadata: ObjectMeta {
                generate_name: Some("test-".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let name = namespaces
            .create(&PostParams::default(), &ns)
            .await?
            .metadata
            .name
            .context("created namespace has no name")?;
        let deadline = Instant::now() + start_timeout();
        wait_for(
            deadline,
            &self.controller_manager,
            "the default ServiceAccount",
            || {
                let sa: Api<ServiceAccount> = Api::namespaced(client.clone(), &name);
                async move { Ok(sa.get_opt("default").await?.is_some()) }
            },
        )
        .await?;
        Ok(TestNamespace { client, name })
    }

    /// Kills every process (used at exit for the shared control plane, which is never dropped).
    fn kill_all(&self) {
        lock(&self.controller_manager).take();
        lock(&self.apiserver).take();
        lock(&self.etcd).take();
        node::remove_cluster_dir(self.dir.path());
    }
}

/// A fresh namespace on the shared control plane and a client for it.
pub struct TestNamespace {
    pub client: Client,
    pub name: String,
}

/// Polls `ready` every 100 ms until it returns true, failing early if the watched process exits.
async fn wait_for<F, Fut>(deadline: Instant, process: &Slot, what: &str, mut ready: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    let mut last_error = None;
    loop {
        if let Some(p) = lock(process).as_mut() {
            p.check_running()?;
        }
        match ready().await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last_error = Some(e),
        }
        if Instant::now() > deadline {
            let tail = lock(process).as_ref().map(Process::log_tail);
            bail!(
                "timed out waiting for {what} (last error: {}; raise {START_TIMEOUT_ENV} on slow machines)\n{}",
                last_error.map_or("none".into(), |e| format!("{e:#}")),
                tail.unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether etcd's `/health` answers 200; blocking is fine for a loopback round trip with short
/// deadlines.
fn etcd_healthy(address: SocketAddr) -> bool {
    test_support::http_get_within(address, "/health", Duration::from_secs(2))
        .is_ok_and(|(status, _)| status == 200)
}

static SHARED: OnceLock<Result<ControlPlane, String>> = OnceLock::new();

extern "C" fn stop_shared() {
    if let Some(Ok(cp)) = SHARED.get() {
        cp.kill_all();
    }
}

/// The control plane shared by all tests of this test binary, started on first use and stopped
/// when the process exits. Panics with the start-up error, so a broken build fails every test.
pub fn shared() -> &'static ControlPlane {
    shared_start(
        &SHARED,
        ControlPlane::start,
        stop_shared,
        "local control plane",
    )
}

/// Starts the shared `T` in `cell` once, on a runtime of its own (tests each run on their own,
/// and those go away), registering `stop` to run at exit; panics with the start-up error, so a
/// broken build fails every test.
fn shared_start<T, Fut>(
    cell: &'static OnceLock<Result<T, String>>,
    start: fn() -> Fut,
    stop: extern "C" fn(),
    what: &str,
) -> &'static T
where
    T: Send + Sync + 'static,
    Fut: Future<Output = Result<T>>,
{
    let result = cell.get_or_init(|| {
        let started = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(anyhow::Error::from)
                        .and_then(|rt| rt.block_on(start()))
                })
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("{what} start-up panicked")))
        });
        // SAFETY: registering a plain extern "C" function; statics are never dropped, so this is
        // how the shared processes and files are removed at a normal exit.
        unsafe { libc::atexit(stop) };
        started.map_err(|e| format!("{e:#}"))
    });
    match result {
        Ok(value) => value,
        Err(e) => panic!("{what} failed to start: {e}"),
    }
}

/// Whether `pid` is a live process (zombies waiting for their parent count as dead), for tests
/// that check what outlives what.
pub fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// Messages of the kubelet's `Unhealthy` Events (failed probes, with the probe's output) for the
/// pod `pod` in namespace `ns`; panics if the API cannot list them.
pub async fn unhealthy_events(client: &Client, ns: &str, pod: &str) -> Vec<String> {
    Api::<k8s_openapi::api::core::v1::Event>::namespaced(client.clone(), ns)
        .list(
            &kube::api::ListParams::default()
                .fields(&format!("involvedObject.name={pod},reason=Unhealthy")),
        )
        .await
        .expect("listing the pod's Unhealthy Events")
        .items
        .into_iter()
        .filter_map(|e| e.message)
        .collect()
}

/// A fresh namespace on the shared control plane; panics if the control plane is unusable.
pub async fn namespace() -> TestNamespace {
    shared()
        .test_namespace()
        .await
        .expect("creating a test namespace")
}

/// Polls `check` every 200 ms until it returns `Some`; panics naming `what` after 120 s, a
/// generous bound for a loaded machine. Tests wait on conditions with it, never on fixed times.
pub async fn eventually<T, Fut>(what: &str, mut check: impl FnMut() -> Fut) -> T
where
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
