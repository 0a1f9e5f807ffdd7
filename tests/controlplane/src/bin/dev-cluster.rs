//! Runs the local control plane in the foreground until SIGINT or SIGTERM, for development
//! (`scripts/dev-cluster up` starts it in the background).
//!
//! Usage: dev-cluster KUBECONFIG_OUT
//! Once the control plane is ready, its admin kubeconfig is copied to KUBECONFIG_OUT; it is
//! removed again on shutdown, together with all processes and data.

use std::path::PathBuf;

use anyhow::{Context, Result};
use kube_controlplane::ControlPlane;
use tokio::signal::unix::{SignalKind, signal};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let out: PathBuf = std::env::args_os()
        .nth(1)
        .context("usage: dev-cluster KUBECONFIG_OUT")?
        .into();
    let mut term = signal(SignalKind::terminate())?;
    let cp = ControlPlane::start().await?;
    let t = cp.startup_timings();
    eprintln!(
        "dev-cluster: ready: etcd at {:.1}s, kube-apiserver at {:.1}s, kube-controller-manager at {:.1}s (binaries in {})",
        t.etcd.as_secs_f64(),
        t.apiserver.as_secs_f64(),
        t.controller_manager.as_secs_f64(),
        cp.bin_dir().display()
    );
    // Written last and atomically: its presence tells scripts/dev-cluster that the cluster is up.
    let tmp = out.with_extension("tmp");
    std::fs::copy(cp.kubeconfig(), &tmp)?;
    std::fs::rename(&tmp, &out)?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    let _ = std::fs::remove_file(&out);
    drop(cp);
    eprintln!("dev-cluster: stopped");
    Ok(())
}
