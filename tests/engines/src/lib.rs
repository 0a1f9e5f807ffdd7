//! Real container engines for tests: a private dockerd and podman with a private
//! configuration, each torn down (processes, mounts, cgroups, files) when dropped, also when a
//! test panics; and the project's images, built offline by `scripts/build-images`.

mod docker;
mod host;
mod podman;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

pub use docker::Dockerd;
pub use host::ScratchDir;
pub use podman::Podman;
// The workspace's shared test plumbing, re-exported for the engine tests.
pub use test_support::{ensure_packages, free_port, http_get, wait_for};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs a project script and returns its last stdout line (the path it prints).
fn script_path(script: &str, args: &[&str]) -> Vec<PathBuf> {
    let output = Command::new("bash")
        .arg(repo_root().join(script))
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    assert!(output.status.success(), "{script} {args:?} failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(PathBuf::from)
        .collect()
}

/// The static probe binary: `HEALTHCHECK_BIN` if set, else `scripts/build-probe`'s.
pub fn probe_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| match std::env::var_os("HEALTHCHECK_BIN") {
        Some(path) => PathBuf::from(path),
        None => script_path("scripts/build-probe", &[]).remove(0),
    })
}

/// The static operator binary, `scripts/build-operator`'s.
pub fn operator_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| script_path("scripts/build-operator", &[]).remove(0))
}

/// The archive of one `scripts/build-images` target (built once per test process).
pub fn image_archive(target: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    built
        .entry(target.to_string())
        .or_insert_with(|| script_path("scripts/build-images", &[target]).remove(0))
        .clone()
}

/// The image names of `scripts/build-images`' targets.
pub mod images {
    pub const PROBE: &str = "ghcr.io/openstack-healthcheck/probe:0.1.0";
    pub const OPERATOR: &str = "ghcr.io/openstack-healthcheck/healthcheck-operator:0.1.0";
    pub const GLANCE_API: &str = "localhost/openstack-healthcheck/glance-api:0.1.0";
    pub const KOLLA_GLANCE_API: &str = "localhost/openstack-healthcheck/kolla-glance-api:0.1.0";

    /// One of the service images of the `services` target (`keystone`, `mariadb` ...).
    pub fn service(name: &str) -> String {
        format!("localhost/openstack-healthcheck/{name}:0.1.0")
    }
}

/// Runs a command to completion, panicking with its output when it fails.
/// `run -d --name NAME [--network none] EXTRA... IMAGE ARGS...`, the same for docker and podman:
/// a test container gets no network unless `extra` gives one (`--network container:rabbitmq`).
pub fn run_detached_args<'a>(
    name: &'a str,
    extra: &[&'a str],
    image: &'a str,
    args: &[&'a str],
) -> Vec<&'a str> {
    let mut all = vec!["run", "-d", "--name", name];
    if !extra.contains(&"--network") {
        all.extend(["--network", "none"]);
    }
    all.extend(extra);
    all.push(image);
    all.extend(args);
    all
}

pub fn run_ok(command: &mut Command) -> String {
    let output = run(command);
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn run(command: &mut Command) -> Output {
    command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {command:?}: {e}"))
}
