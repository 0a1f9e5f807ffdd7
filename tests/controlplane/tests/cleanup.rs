//! The control plane never outlives its test process: not when a test panics (removed at exit)
//! and not when the process aborts or is killed (PDEATHSIG). Each case runs this test binary
//! again as a child that starts a control plane, reports it, and then dies.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use kube_controlplane::shared;

const MODE_ENV: &str = "KUBE_CONTROLPLANE_CLEANUP_MODE";
const CHILD_TEST: &str = "child_process_for_cleanup_tests";

/// Does nothing unless run as the child of one of the tests below.
#[test]
fn child_process_for_cleanup_tests() {
    let Ok(mode) = std::env::var(MODE_ENV) else {
        return;
    };
    let cp = shared();
    let pids: Vec<String> = cp.pids().iter().map(u32::to_string).collect();
    println!("\nCONTROLPLANE_PIDS={}", pids.join(" "));
    println!(
        "CONTROLPLANE_DIR={}",
        cp.kubeconfig().parent().unwrap().display()
    );
    std::io::stdout().flush().unwrap();
    match mode.as_str() {
        "abort" => std::process::abort(),
        _ => panic!("deliberate panic with a running control plane"),
    }
}

/// Runs the child in `mode`; returns the control plane's pids and directory.
fn run_child(mode: &str) -> (Vec<u32>, PathBuf) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
        .env(MODE_ENV, mode)
        .output()
        .unwrap();
    assert!(!out.status.success(), "the child should have died");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let field = |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| {
                panic!(
                    "child printed no {key}: {stdout}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })
            .to_string()
    };
    let pids = field("CONTROLPLANE_PIDS=")
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect::<Vec<u32>>();
    assert_eq!(
        pids.len(),
        3,
        "etcd, kube-apiserver, kube-controller-manager"
    );
    (pids, PathBuf::from(field("CONTROLPLANE_DIR=")))
}

fn assert_all_gone(pids: &[u32]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|&p| kube_controlplane::process_alive(p)) {
        assert!(
            Instant::now() < deadline,
            "control plane processes outlived the test process: {:?}",
            pids.iter()
                .filter(|&&p| kube_controlplane::process_alive(p))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn processes_and_files_are_removed_when_a_test_panics() {
    let (pids, dir) = run_child("panic");
    assert_all_gone(&pids);
    assert!(!dir.exists(), "{} was left behind", dir.display());
}

#[test]
fn processes_die_when_the_test_process_aborts() {
    let (pids, dir) = run_child("abort");
    assert_all_gone(&pids);
    // Nothing ran at exit to remove it (the next start would remove it as stale).
    std::fs::remove_dir_all(dir).unwrap();
}
