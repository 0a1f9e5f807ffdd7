//! Runs the local control plane in the foreground until SIGINT or SIGTERM, for development
//! (`scripts/dev-cluster up` starts it in the background).
//!
//! Usage: dev-cluster KUBECONFIG_OUT
//! Once the control plane is ready, its admin kubeconfig is copied to KUBECONFIG_OUT; it is
//! removed again on shutdown, together with all processes and data.

use std::path::PathBuf;
use std::time::Instant;

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
    let started = Instant::now();
    let cp = ControlPlane::start().await?;
    eprintln!(
        "dev-cluster: ready in {:.1}s (binaries in {})",
        started.elapsed().as_secs_f64(),
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
