//! The node: pods reach Running, a second cluster in the same process does not collide with the
//! first, and teardown leaves nothing behind — also when the test process is killed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use kube_controlplane::Cluster;
use serde_json::json;

const MODE_ENV: &str = "KUBE_CONTROLPLANE_NODE_CHILD";
const CHILD_TEST: &str = "child_process_for_the_kill_test";
const PAUSE_IMAGE: &str = "localhost/kube-controlplane/pause:1";

/// Creates a pod running the sandbox image in a fresh namespace and waits until it is Running;
/// returns its IP.
async fn run_pod(client: &Client) -> String {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = namespaces
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    generate_name: Some("node-test-".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .metadata
        .name
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "sleeper"},
        "spec": {
            "automountServiceAccountToken": false,
            "containers": [{"name": "sleeper", "image": PAUSE_IMAGE, "imagePullPolicy": "Never"}],
        },
    }))
    .unwrap();
    // The default ServiceAccount of a new namespace appears a moment after it.
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Err(e) = pods.create(&PostParams::default(), &pod).await {
        assert!(Instant::now() < deadline, "creating the pod: {e}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    loop {
        let status = pods
            .get("sleeper")
            .await
            .unwrap()
            .status
            .unwrap_or_default();
        if status.phase.as_deref() == Some("Running") {
            return status.pod_ip.expect("a running pod has an IP");
        }
        assert!(Instant::now() < deadline, "pod not Running: {status:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What a cluster is made of on the host, to check after teardown.
struct Footprint {
    dir: PathBuf,
    netns: String,
    cgroup_root: String,
    pids: Vec<u32>,
    /// containerd 1.6 puts these outside the cluster's directory.
    shim_sockets: Vec<PathBuf>,
}

impl Footprint {
    fn of(cluster: &Cluster) -> Self {
        Self {
            dir: cluster.dir().to_path_buf(),
            netns: cluster.netns_name().to_string(),
            cgroup_root: cluster.cgroup_root(),
            pids: cluster.pids(),
            shim_sockets: cluster.shim_sockets(),
        }
    }

    /// Everything of this cluster still present on the host.
    fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        if self.dir.exists() {
            left.push(format!("directory {}", self.dir.display()));
        }
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let dir = self.dir.to_string_lossy();
        left.extend(
            mountinfo
                .lines()
                .filter(|l| l.contains(dir.as_ref()))
                .map(|l| format!("mount {l}")),
        );
        if Path::new("/run/netns").join(&self.netns).exists() {
            left.push(format!("network namespace {}", self.netns));
        }
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            let cgroup = hierarchy
                .path()
                .join(self.cgroup_root.trim_start_matches('/'));
            if cgroup.exists() {
                left.push(format!("cgroup {}", cgroup.display()));
            }
        }
        for pid in &self.pids {
            if kube_controlplane::process_alive(*pid) {
                left.push(format!("process {pid}"));
            }
        }
        for socket in self.shim_sockets.iter().filter(|s| s.exists()) {
            left.push(format!("shim socket {}", socket.display()));
        }
        // Shims and anything else started with a path inside the cluster's directory.
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline"))
                && String::from_utf8_lossy(&cmdline).contains(dir.as_ref())
            {
                left.push(format!(
                    "process {}: {}",
                    entry.file_name().to_string_lossy(),
                    String::from_utf8_lossy(&cmdline).replace('\0', " ")
                ));
            }
        }
        left
    }

    /// Waits (a few seconds: killed processes are reaped asynchronously) until nothing is left.
    fn assert_gone(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = self.leftovers();
            if left.is_empty() {
                return;
            }
            assert!(Instant::now() < deadline, "left behind: {left:#?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn kubelet_sysctls() -> Vec<String> {
    [
        "vm/overcommit_memory",
        "kernel/panic",
        "kernel/panic_on_oops",
    ]
    .iter()
    .map(|k| std::fs::read_to_string(Path::new("/proc/sys").join(k)).unwrap())
    .collect()
}

#[tokio::test]
async fn two_clusters_run_pods_side_by_side_and_teardown_leaves_nothing() {
    let sysctls_before = kubelet_sysctls();
    let first = Cluster::start().await.unwrap();
    let first_client = first.client().await.unwrap();
    run_pod(&first_client).await;

    let second = Cluster::start().await.unwrap();
    assert_ne!(first.netns_name(), second.netns_name());
    assert_ne!(first.cgroup_root(), second.cgroup_root());
    run_pod(&second.client().await.unwrap()).await;
    let second_footprint = Footprint::of(&second);
    assert!(
        !second_footprint.shim_sockets.is_empty(),
        "the pod's shim has its socket"
    );
    drop(second);
    second_footprint.assert_gone();

    // The first cluster did not notice: its node still runs new pods.
    run_pod(&first_client).await;
    let first_footprint = Footprint::of(&first);
    drop(first);
    first_footprint.assert_gone();
    // The kubelet rewrote these host sysctls; the last node on the host puts them back (another
    // test process's node may still be running, then it does).
    if !std::env::temp_dir()
        .join("kube-controlplane-host-state")
        .exists()
    {
        assert_eq!(kubelet_sysctls(), sysctls_before);
    }
}

/// Does nothing unless run as the child of the test below: starts a cluster with a pod, prints
/// its footprint and aborts (no destructor, no exit handler runs).
#[tokio::test]
async fn child_process_for_the_kill_test() {
    if std::env::var_os(MODE_ENV).is_none() {
        return;
    }
    let cluster = Cluster::start().await.unwrap();
    run_pod(&cluster.client().await.unwrap()).await;
    let f = Footprint::of(&cluster);
    assert!(!f.shim_sockets.is_empty(), "the pod's shim has its socket");
    let pids: Vec<String> = f.pids.iter().map(u32::to_string).collect();
    let sockets: Vec<String> = f
        .shim_sockets
        .iter()
        .map(|s| s.display().to_string())
        .collect();
    println!(
        "\nFOOTPRINT={}|{}|{}|{}|{}",
        f.dir.display(),
        f.netns,
        f.cgroup_root,
        pids.join(","),
        sockets.join(",")
    );
    std::io::stdout().flush().unwrap();
    std::process::abort();
}

#[test]
fn a_killed_test_process_leaves_nothing_after_the_next_start() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
        .env(MODE_ENV, "abort")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("FOOTPRINT="))
        .unwrap_or_else(|| {
            panic!(
                "child printed no footprint: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let fields: Vec<&str> = line.split('|').collect();
    let footprint = Footprint {
        dir: PathBuf::from(fields[0]),
        netns: fields[1].to_string(),
        cgroup_root: fields[2].to_string(),
        pids: fields[3].split(',').map(|p| p.parse().unwrap()).collect(),
        shim_sockets: fields[4].split(',').map(PathBuf::from).collect(),
    };
    // The components die with the process that started them (PDEATHSIG)...
    let deadline = Instant::now() + Duration::from_secs(10);
    while footprint
        .pids
        .iter()
        .any(|&p| kube_controlplane::process_alive(p))
    {
        assert!(
            Instant::now() < deadline,
            "components outlived the test process"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // ...but the pod's container and its shim do not, nor the mounts, cgroups and namespace:
    // the next cluster start (or this call) removes them.
    assert!(
        !footprint.leftovers().is_empty(),
        "expected the killed cluster's pod to be left for cleanup"
    );
    kube_controlplane::remove_leftovers();
    footprint.assert_gone();
}
