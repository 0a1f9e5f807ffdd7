//! A real node for the local control plane: a private containerd (own root, state, socket and
//! config), the kubelet, kube-proxy in iptables mode, kube-scheduler and a CNI bridge, all of them
//! and the control plane inside one network namespace created for the cluster.
//!
//! Layout inside the namespace: the node address [`NODE_IP`] on a bridge device, pods on the CNI
//! bridge in [`POD_CIDR`], Services in [`SERVICE_CIDR`]. From the host only the API server is
//! reachable, through a forwarder on a loopback port (the one in [`ControlPlane::kubeconfig`]).
//!
//! Everything the node changes on the host is written to `node.json` in the cluster's directory
//! before it is changed, so [`remove_cluster_dir`] undoes it at teardown, at exit, and for a
//! cluster whose test process was killed (the next cluster start finds its directory).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::host::{self, NetNs};
use crate::image::Image;
use crate::process::{Process, Slot, lock};
use crate::{
    ClusterDir, ControlPlane, DIR_PREFIX, NODE_IP, OWNER_FILE, SERVICE_CIDR, binaries_dir,
    kubeconfig_json, start_timeout, wait_for,
};

/// The node's name, as registered by the kubelet.
pub const NODE_NAME: &str = "kube-controlplane-node";
/// Pod addresses, on the CNI bridge inside the cluster's namespace.
pub const POD_CIDR: &str = "10.244.0.0/24";
/// The sandbox image every pod starts with, built from `pause/` and imported at start.
pub const PAUSE_IMAGE: &str = "localhost/kube-controlplane/pause:1";

const NODE_BINARIES: [&str; 4] = ["kubelet", "kube-proxy", "kube-scheduler", "pause"];
const RECORD_FILE: &str = "node.json";
const BRIDGE: &str = "node0";

/// What a node changed on the host, recorded before changing it.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    netns: String,
    cgroup_root: String,
    containerd_socket: PathBuf,
    pod_logs_dir: PathBuf,
    cni_network: String,
}

/// Undoes what the node recorded in `dir` (if it had one), then removes the directory.
pub(crate) fn remove_cluster_dir(dir: &Path) {
    if let Ok(text) = std::fs::read_to_string(dir.join(RECORD_FILE))
        && let Ok(record) = serde_json::from_str::<Record>(&text)
        && let Err(e) = undo(dir, &record)
    {
        eprintln!("kube-controlplane: cleaning up {}: {e:#}", dir.display());
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn undo(dir: &Path, record: &Record) -> Result<()> {
    host::kill_shims(&record.containerd_socket.to_string_lossy());
    let cgroups = host::remove_cgroup_root(&record.cgroup_root);
    let mounts = host::unmount_under(dir);
    host::remove_container_log_links(&record.pod_logs_dir);
    remove_cni_cache(&record.cni_network);
    host::delete_netns(&record.netns);
    let sysctls = host::restore_host_state(|| other_nodes_running(dir));
    cgroups.and(mounts).and(sysctls)
}

/// libcni caches each attachment's result under /var/lib/cni/results as NETWORK-ID-IFNAME.
fn remove_cni_cache(network: &str) {
    let Ok(entries) = std::fs::read_dir("/var/lib/cni/results") else {
        return;
    };
    for entry in entries.flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(&format!("{network}-"))
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether a node other than the one in `dir` is running on this host (any test process).
fn other_nodes_running(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let path = entry.path();
        path != dir
            && entry.file_name().to_string_lossy().starts_with(DIR_PREFIX)
            && path.join(RECORD_FILE).exists()
            && std::fs::read_to_string(path.join(OWNER_FILE))
                .ok()
                .and_then(|s| s.trim().parse::<libc::pid_t>().ok())
                // SAFETY: signal 0 only checks whether the process exists.
                .is_some_and(|pid| unsafe { libc::kill(pid, 0) } == 0)
    })
}

/// Installs what the node runs from Debian, if missing (the scripts' one installer).
fn ensure_packages() -> Result<()> {
    test_support::install_missing(&[
        "containerd=containerd",
        "runc=runc",
        "/usr/lib/cni/bridge=containernetworking-plugins",
        "iptables=iptables",
        "conntrack=conntrack",
        "ip=iproute2",
    ])
    .context("installing the node's Debian packages")
}

/// How long a [`Cluster`] took to start, measured from the start of [`Cluster::start`] (binaries
/// located).
#[derive(Clone, Copy, Debug, Default)]
pub struct NodeTimings {
    /// The control plane is usable (default ServiceAccount created).
    pub control_plane: Duration,
    /// The node reports `Ready`.
    pub node_ready: Duration,
    /// A pod connected to the `kubernetes` Service: the cluster is ready for tests.
    pub ready: Duration,
}

/// A control plane with a real node. Dropping it stops every process and undoes every change
/// on the host.
pub struct Cluster {
    // Declared in stop order: the node's processes, then the control plane and its directory
    // (whose removal undoes the node's host changes).
    kubelet: Slot,
    kube_proxy: Slot,
    scheduler: Slot,
    containerd: Slot,
    cp: ControlPlane,
    node_dir: PathBuf,
    containerd_socket: PathBuf,
    timings: NodeTimings,
}

impl Cluster {
    /// Starts the control plane and a node in a fresh network namespace, and waits until the node
    /// is `Ready`, the `default` ServiceAccount exists and a pod reaches the `kubernetes` Service.
    pub async fn start() -> Result<Self> {
        let bin = binaries_dir()?;
        for name in NODE_BINARIES {
            if !bin.join(name).is_file() {
                bail!(
                    "{name} is missing from {}; run tests/controlplane/build.sh",
                    bin.display()
                );
            }
        }
        ensure_packages()?;
        let started = Instant::now();
        let dir = ClusterDir::create()?;
        let node_dir = dir.path().join("node");
        std::fs::create_dir_all(&node_dir)?;
        static SEQUENCE: AtomicU32 = AtomicU32::new(0);
        // Unique on the host: two clusters never share a namespace, cgroup or CNI network.
        let name = format!(
            "kcp-{}-{}",
            std::process::id(),
            SEQUENCE.fetch_add(1, Ordering::SeqCst)
        );
        let record = Record {
            netns: name.clone(),
            cgroup_root: name.clone(),
            containerd_socket: node_dir.join("containerd.sock"),
            pod_logs_dir: node_dir.join("pod-logs"),
            cni_network: name.clone(),
        };
        std::fs::write(
            dir.path().join(RECORD_FILE),
            serde_json::to_string(&record)?,
        )?;
        // From here on, dropping `dir` (on any error) undoes what was done.
        let netns = Arc::new(NetNs::create(&name, BRIDGE, &format!("{NODE_IP}/24"))?);
        host::create_cgroup_root(&record.cgroup_root)?;
        host::record_host_state()?;
        let cp = ControlPlane::start_in(bin, started, dir, Some(netns)).await?;
        let mut cluster = Self {
            kubelet: Slot::default(),
            kube_proxy: Slot::default(),
            scheduler: Slot::default(),
            containerd: Slot::default(),
            containerd_socket: record.containerd_socket.clone(),
            cp,
            node_dir,
            timings: NodeTimings::default(),
        };
        cluster.timings.control_plane = started.elapsed();
        let deadline = Instant::now() + start_timeout();
        cluster.start_node(&record, deadline).await?;
        cluster.timings.node_ready = started.elapsed();
        cluster.check_service_reachable(deadline).await?;
        cluster.timings.ready = started.elapsed();
        Ok(cluster)
    }

    /// The control plane (client, kubeconfig, kubectl).
    pub fn control_plane(&self) -> &ControlPlane {
        &self.cp
    }

    pub fn timings(&self) -> NodeTimings {
        self.timings
    }

    /// The network namespace everything runs in (`/run/netns/NAME`).
    pub fn netns_name(&self) -> &str {
        &self
            .cp
            .netns
            .as_ref()
            .expect("a cluster has a namespace")
            .name
    }

    /// The cgroup (under every hierarchy) that holds all pods of this node.
    pub fn cgroup_root(&self) -> String {
        format!("/{}", self.netns_name())
    }

    /// The directory holding all of this cluster's files and mounts.
    pub fn dir(&self) -> &Path {
        self.cp.dir.path()
    }

    /// The sockets its containerd's shims listen on in [`host::SHIM_SOCKET_DIR`], for tests of
    /// what teardown leaves.
    pub fn shim_sockets(&self) -> Vec<PathBuf> {
        host::shim_sockets(&self.containerd_socket.to_string_lossy())
    }

    /// Process ids of every component this cluster started (control plane and node).
    pub fn pids(&self) -> Vec<u32> {
        let mut pids = self.cp.pids();
        pids.extend(
            [
                &self.kubelet,
                &self.kube_proxy,
                &self.scheduler,
                &self.containerd,
            ]
            .into_iter()
            .filter_map(|slot| lock(slot).as_ref().map(Process::id)),
        );
        pids
    }

    /// The node's private containerd socket (for `ctr --address`).
    pub fn containerd_socket(&self) -> &Path {
        &self.containerd_socket
    }

    /// Imports an image archive (`docker save` or OCI layout tar) into the node's containerd, so
    /// pods using its exact name with `imagePullPolicy: IfNotPresent` or `Never` start without a
    /// registry.
    pub fn import_image(&self, archive: &Path) -> Result<()> {
        let out = Command::new("ctr")
            .arg(format!("--address={}", self.containerd_socket.display()))
            .args(["--namespace=k8s.io", "images", "import"])
            .arg(archive)
            .output()
            .context("running ctr (from the containerd package)")?;
        if !out.status.success() {
            bail!(
                "ctr images import {} failed: {}",
                archive.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// Writes `image` as an archive and imports it.
    pub fn load_image(&self, image: &Image) -> Result<()> {
        let archive = self.node_dir.join("image.tar");
        image.write_archive(&archive)?;
        let result = self.import_image(&archive);
        let _ = std::fs::remove_file(&archive);
        result.with_context(|| format!("importing {}", image.reference()))
    }

    fn spawn(&self, name: &str, cmd: Command) -> Result<Process> {
        self.cp.spawn(name, cmd)
    }

    fn write(&self, name: &str, contents: &str) -> Result<PathBuf> {
        let path = self.node_dir.join(name);
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// A kubeconfig for a node component: client certificate for `user` in `group`, the API
    /// server at the node address.
    fn component_kubeconfig(&self, name: &str, user: &str, group: Option<&str>) -> Result<PathBuf> {
        let cert = self.cp.pki.client_issuer.issue_client(user, group)?;
        let crt = self.write(&format!("{name}.crt"), &cert.cert_pem)?;
        let key = self.write(&format!("{name}.key"), &cert.key_pem)?;
        let server = format!("https://{NODE_IP}:{}", self.cp.apiserver_port);
        self.write(
            &format!("{name}.kubeconfig"),
            &kubeconfig_json(&server, &self.cp.pki.serving_ca, user, &crt, &key),
        )
    }

    async fn start_node(&mut self, record: &Record, deadline: Instant) -> Result<()> {
        self.start_containerd(record, deadline).await?;
        let pause = Image::new(PAUSE_IMAGE)
            .host_file("/pause", &self.cp.bin.join("pause"))?
            .entrypoint(&["/pause"]);
        self.load_image(&pause)?;
        self.start_scheduler()?;
        self.start_kube_proxy()?;
        self.start_kubelet(record)?;
        let client = self.cp.client().await?;
        wait_for(deadline, &self.kubelet, "the node to be Ready", || {
            let nodes: Api<Node> = Api::all(client.clone());
            async move {
                let node = nodes.get_opt(NODE_NAME).await?;
                Ok(node
                    .and_then(|n| n.status?.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True"))
            }
        })
        .await
    }

    async fn start_containerd(&self, record: &Record, deadline: Instant) -> Result<()> {
        let d = self.node_dir.display();
        let cni_dir = self.node_dir.join("cni");
        std::fs::create_dir_all(&cni_dir)?;
        // Written before containerd starts: containerd 1.6 does not notice a config added later,
        // and without one the node never becomes Ready (even for hostNetwork pods).
        std::fs::write(
            cni_dir.join("10-bridge.conflist"),
            json!({
                "cniVersion": "0.4.0",
                "name": record.cni_network,
                "plugins": [{
                    "type": "bridge",
                    "bridge": "cni0",
                    "isGateway": true,
                    "hairpinMode": true,
                    "ipam": {
                        "type": "host-local",
                        "dataDir": self.node_dir.join("cni-ipam"),
                        "ranges": [[{"subnet": POD_CIDR}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                    },
                }],
            })
            .to_string(),
        )?;
        let socket = record.containerd_socket.display();
        let config = format!(
            r#"version = 2
root = "{d}/containerd/root"
state = "{d}/containerd/state"
# The opt plugin would create /opt/containerd; the other snapshotters are not used.
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = "{socket}"
[ttrpc]
  address = ""
[debug]
  address = ""
[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
  # runc cannot lower oom_score_adj below the caller's (no CAP_SYS_RESOURCE): without this every
  # sandbox fails.
  restrict_oom_score_adj = true
  # Pod network namespaces under the state dir, not /run/netns: removed with the node.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni}"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        Root = "{d}/runc"
        SystemdCgroup = false
"#,
            cni = cni_dir.display(),
        );
        let config = self.write("containerd.toml", &config)?;
        let mut cmd = Command::new("containerd");
        cmd.arg(format!("--config={}", config.display()));
        *lock(&self.containerd) = Some(self.spawn("containerd", cmd)?);
        let socket = record.containerd_socket.clone();
        wait_for(deadline, &self.containerd, "the containerd socket", || {
            let ready = std::os::unix::net::UnixStream::connect(&socket).is_ok();
            async move { Ok(ready) }
        })
        .await
    }

    fn start_scheduler(&self) -> Result<()> {
        let kubeconfig = self.component_kubeconfig("scheduler", "system:kube-scheduler", None)?;
        let config = self.write(
            "scheduler.json",
            &json!({
                "apiVersion": "kubescheduler.config.k8s.io/v1",
                "kind": "KubeSchedulerConfiguration",
                "clientConnection": {"kubeconfig": kubeconfig},
                "leaderElection": {"leaderElect": false},
            })
            .to_string(),
        )?;
        let mut cmd = Command::new(self.cp.bin.join("kube-scheduler"));
        cmd.arg(format!("--config={}", config.display()))
            .arg(format!(
                "--authentication-kubeconfig={}",
                kubeconfig.display()
            ))
            .arg(format!(
                "--authorization-kubeconfig={}",
                kubeconfig.display()
            ))
            .arg("--bind-address=127.0.0.1");
        *lock(&self.scheduler) = Some(self.spawn("kube-scheduler", cmd)?);
        Ok(())
    }

    fn start_kube_proxy(&self) -> Result<()> {
        let kubeconfig = self.component_kubeconfig("kube-proxy", "system:kube-proxy", None)?;
        let config = self.write(
            "kube-proxy.json",
            &json!({
                "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
                "kind": "KubeProxyConfiguration",
                "clientConnection": {"kubeconfig": kubeconfig},
                "mode": "iptables",
                "hostnameOverride": NODE_NAME,
                "clusterCIDR": POD_CIDR,
                "healthzBindAddress": "127.0.0.1:10256",
                "metricsBindAddress": "127.0.0.1:10249",
                // 0: leave the host-wide conntrack settings alone.
                "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
                // Pod → Service → pod on the same bridge needs the reply to come back through
                // the bridge's address (no br_netfilter assumed).
                "iptables": {"masqueradeAll": true},
                // It cannot lower its own oom_score_adj here.
                "oomScoreAdj": 0,
            })
            .to_string(),
        )?;
        let mut cmd = Command::new(self.cp.bin.join("kube-proxy"));
        cmd.arg(format!("--config={}", config.display()));
        *lock(&self.kube_proxy) = Some(self.spawn("kube-proxy", cmd)?);
        Ok(())
    }

    fn start_kubelet(&self, record: &Record) -> Result<()> {
        let kubeconfig = self.component_kubeconfig(
            "kubelet",
            &format!("system:node:{NODE_NAME}"),
            Some("system:nodes"),
        )?;
        let serving = self
            .cp
            .pki
            .serving_issuer
            .issue_server(&[NODE_IP, NODE_NAME])?;
        let serving_crt = self.write("kubelet-serving.crt", &serving.cert_pem)?;
        let serving_key = self.write("kubelet-serving.key", &serving.key_pem)?;
        let endpoint = format!("unix://{}", record.containerd_socket.display());
        let config = self.write(
            "kubelet.json",
            &json!({
                "apiVersion": "kubelet.config.k8s.io/v1beta1",
                "kind": "KubeletConfiguration",
                // The machine runs cgroups v1 (hybrid).
                "failCgroupV1": false,
                "cgroupDriver": "cgroupfs",
                // Its own root: two nodes (in one test binary or two test runs) never share
                // kubepods cgroups, and teardown removes exactly this node's.
                "cgroupRoot": format!("/{}", record.cgroup_root),
                "containerRuntimeEndpoint": endpoint,
                "imageServiceEndpoint": endpoint,
                "address": NODE_IP,
                "healthzBindAddress": "127.0.0.1",
                "readOnlyPort": 0,
                "tlsCertFile": serving_crt,
                "tlsPrivateKeyFile": serving_key,
                "authentication": {
                    "anonymous": {"enabled": false},
                    "webhook": {"enabled": true},
                    "x509": {"clientCAFile": self.cp.pki.client_ca.0},
                },
                "authorization": {"mode": "Webhook"},
                "rotateCertificates": false,
                "podLogsDir": record.pod_logs_dir,
                "volumePluginDir": self.node_dir.join("volume-plugins"),
                "failSwapOn": false,
                // A busy shared disk must not evict the test pods or collect the imported images.
                "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
                "imageGCHighThresholdPercent": 100,
                "imageGCLowThresholdPercent": 99,
            })
            .to_string(),
        )?;
        let mut cmd = Command::new(self.cp.bin.join("kubelet"));
        cmd.arg(format!("--config={}", config.display()))
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .arg(format!(
                "--root-dir={}",
                self.node_dir.join("kubelet").display()
            ))
            .arg(format!(
                "--cert-dir={}",
                self.node_dir.join("kubelet-pki").display()
            ))
            .arg(format!("--hostname-override={NODE_NAME}"))
            // The kubelet rejects a loopback node IP; this one lives in the namespace.
            .arg(format!("--node-ip={NODE_IP}"));
        *lock(&self.kubelet) = Some(self.spawn("kubelet", cmd)?);
        Ok(())
    }

    /// Ready means a pod can reach the `kubernetes` Service: a pod on the pod network connects to
    /// its ClusterIP (kube-proxy's rules, the CNI bridge and the API server's endpoint at once).
    async fn check_service_reachable(&self, deadline: Instant) -> Result<()> {
        let client = self.cp.client().await?;
        let pods: Api<Pod> = Api::namespaced(client, "default");
        let service_ip = SERVICE_CIDR.replace(".0/24", ".1");
        let pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "kube-controlplane-service-check"},
            "spec": {
                "restartPolicy": "OnFailure",
                "automountServiceAccountToken": false,
                "terminationGracePeriodSeconds": 0,
                "containers": [{
                    "name": "connect",
                    "image": PAUSE_IMAGE,
                    "imagePullPolicy": "Never",
                    "command": ["/pause", "connect", format!("{service_ip}:443")],
                }],
            },
        }))?;
        pods.create(&PostParams::default(), &pod).await?;
        wait_for(
            deadline,
            &self.kubelet,
            "a pod to reach the kubernetes Service",
            || {
                let pods = pods.clone();
                async move {
                    let phase = pods
                        .get("kube-controlplane-service-check")
                        .await?
                        .status
                        .and_then(|s| s.phase);
                    Ok(phase.as_deref() == Some("Succeeded"))
                }
            },
        )
        .await?;
        pods.delete("kube-controlplane-service-check", &DeleteParams::default())
            .await?;
        Ok(())
    }

    /// A new admin client (see [`ControlPlane::client`]).
    pub async fn client(&self) -> Result<Client> {
        self.cp.client().await
    }

    /// Kills every process and undoes every host change (the shared cluster at exit).
    fn kill_all(&self) {
        for slot in [
            &self.kubelet,
            &self.kube_proxy,
            &self.scheduler,
            &self.containerd,
        ] {
            lock(slot).take();
        }
        self.cp.kill_all();
    }
}

static SHARED: OnceLock<Result<Cluster, String>> = OnceLock::new();

extern "C" fn stop_shared() {
    if let Some(Ok(cluster)) = SHARED.get() {
        cluster.kill_all();
    }
}

/// The cluster with a node shared by all tests of this test binary, started on first use and
/// stopped when the process exits. Panics with the start-up error.
pub fn shared_cluster() -> &'static Cluster {
    crate::shared_start(
        &SHARED,
        Cluster::start,
        stop_shared,
        "local cluster with a node",
    )
}
