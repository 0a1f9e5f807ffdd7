//! Runs the local cluster in the foreground until SIGINT or SIGTERM, for development
//! (`scripts/dev-cluster up` starts it in the background).
//!
//! Usage: dev-cluster [--no-node] KUBECONFIG_OUT
//! By default the control plane and a node (containerd, kubelet, kube-proxy, kube-scheduler) in a
//! network namespace of their own; `--no-node` starts only etcd, kube-apiserver and
//! kube-controller-manager on loopback. Once ready, the admin kubeconfig is copied to
//! KUBECONFIG_OUT; it is removed again on shutdown, together with all processes and data.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use kube_controlplane::{Cluster, ControlPlane};
use tokio::signal::unix::{SignalKind, signal};

enum Running {
    Light(Box<ControlPlane>),
    WithNode(Box<Cluster>),
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let no_node = args.first().is_some_and(|a| a == "--no-node");
    if no_node {
        args.remove(0);
    }
    let [out] = args.as_slice() else {
        bail!("usage: dev-cluster [--no-node] KUBECONFIG_OUT");
    };
    let out = PathBuf::from(out);
    let mut term = signal(SignalKind::terminate())?;
    let running = if no_node {
        let cp = ControlPlane::start().await?;
        let t = cp.startup_timings();
        eprintln!(
            "dev-cluster: ready: etcd at {:.1}s, kube-apiserver at {:.1}s, kube-controller-manager at {:.1}s (binaries in {})",
            t.etcd.as_secs_f64(),
            t.apiserver.as_secs_f64(),
            t.controller_manager.as_secs_f64(),
            cp.bin_dir().display()
        );
        Running::Light(Box::new(cp))
    } else {
        let cluster = Cluster::start().await?;
        let t = cluster.timings();
        eprintln!(
            "dev-cluster: ready: control plane at {:.1}s, node Ready at {:.1}s, a pod reached the kubernetes Service at {:.1}s (network namespace {}, binaries in {})",
            t.control_plane.as_secs_f64(),
            t.node_ready.as_secs_f64(),
            t.ready.as_secs_f64(),
            cluster.netns_name(),
            cluster.control_plane().bin_dir().display()
        );
        Running::WithNode(Box::new(cluster))
    };
    // `scripts/dev-cluster import` finds the node's containerd beside the kubeconfig.
    let socket_link = out.with_file_name("containerd.sock");
    let _ = std::fs::remove_file(&socket_link);
    let kubeconfig = match &running {
        Running::Light(cp) => cp.kubeconfig(),
        Running::WithNode(cluster) => {
            std::os::unix::fs::symlink(cluster.containerd_socket(), &socket_link)?;
            cluster.control_plane().kubeconfig()
        }
    };
    // Written last and atomically: its presence tells scripts/dev-cluster that the cluster is up.
    let tmp = out.with_extension("tmp");
    std::fs::copy(kubeconfig, &tmp).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &out)?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(&socket_link);
    let stopping = std::time::Instant::now();
    drop(running);
    eprintln!(
        "dev-cluster: stopped in {:.1}s",
        stopping.elapsed().as_secs_f64()
    );
    Ok(())
}
