//! The operator as local processes against the local control plane (no kubelet): its webhook
//! registered by URL on a loopback port, optionally inside a v1 memory cgroup with the limit
//! `deploy/` sets.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kube_controlplane::ControlPlane;

/// Bound for an operator to become ready, and for the waits of the tests.
pub const WAIT: Duration = Duration::from_secs(60);

pub use test_support::free_port;

/// A plain HTTP GET on loopback: (answered 200, body).
pub fn http_get(port: u16, path: &str) -> Option<(bool, String)> {
    test_support::http_get(SocketAddr::from(([127, 0, 0, 1], port)), path)
        .ok()
        .map(|(status, body)| (status == 200, body))
}

/// A v1 memory cgroup of its own, removed on drop (once its processes are gone).
pub struct MemoryCgroup {
    pub path: PathBuf,
}

impl MemoryCgroup {
    /// Needs root and the v1 memory controller, which the test machines have.
    pub fn create(name: &str, limit_bytes: u64) -> Self {
        let path = PathBuf::from(format!(
            "/sys/fs/cgroup/memory/healthcheck-test-{name}-{}",
            std::process::id()
        ));
        std::fs::create_dir(&path).unwrap_or_else(|err| {
            panic!(
                "create the memory cgroup {}: {err} (needs root and cgroup v1's memory controller)",
                path.display()
            )
        });
        let cgroup = MemoryCgroup { path };
        std::fs::write(
            cgroup.path.join("memory.limit_in_bytes"),
            limit_bytes.to_string(),
        )
        .expect("set the cgroup's memory limit");
        cgroup
    }

    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.path.join(file)).unwrap_or_default()
    }

    /// The most memory the cgroup's processes took together.
    pub fn max_usage_bytes(&self) -> u64 {
        self.read("memory.max_usage_in_bytes")
            .trim()
            .parse()
            .unwrap_or(0)
    }

    /// Processes the kernel killed for the limit.
    pub fn oom_kills(&self) -> u64 {
        self.read("memory.oom_control")
            .lines()
            .find_map(|line| line.strip_prefix("oom_kill "))
            .and_then(|count| count.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        // The kernel empties it once the killed processes are reaped.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.path).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("could not remove the cgroup {}", self.path.display());
    }
}

/// One operator replica as a local process.
pub struct Operator {
    pub identity: String,
    pub child: Child,
    pub webhook_port: u16,
    pub health_port: u16,
    log: PathBuf,
}

impl Operator {
    pub fn start(
        cp: &ControlPlane,
        namespace: &str,
        identity: &str,
        webhook_port: u16,
        logs: &Path,
    ) -> Self {
        Self::start_with(cp, namespace, identity, webhook_port, logs, None, &[])
    }

    /// Started inside `cgroup` when given (it joins before `exec`, so all its memory counts),
    /// with `extra_args` after the usual ones.
    pub fn start_with(
        cp: &ControlPlane,
        namespace: &str,
        identity: &str,
        webhook_port: u16,
        logs: &Path,
        cgroup: Option<&MemoryCgroup>,
        extra_args: &[&str],
    ) -> Self {
        let health_port = free_port();
        let log = logs.join(format!("{identity}.log"));
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let binary = env!("CARGO_BIN_EXE_healthcheck-operator");
        let mut command = match cgroup {
            Some(cgroup) => {
                let mut shell = Command::new("sh");
                shell
                    .arg("-c")
                    .arg(r#"echo $$ > "$0/cgroup.procs" && exec "$@""#)
                    .arg(&cgroup.path)
                    .arg(binary);
                shell
            }
            None => Command::new(binary),
        };
        let child = command
            .args(["run", "--namespace", namespace, "--identity", identity])
            .arg(format!("--webhook-address=127.0.0.1:{webhook_port}"))
            .arg(format!("--health-address=127.0.0.1:{health_port}"))
            .arg(format!("--webhook-url=https://127.0.0.1:{webhook_port}"))
            .args(["--probe-image", "probe:e2e"])
            .args(extra_args)
            .env("KUBECONFIG", cp.kubeconfig())
            .env("RUST_LOG", "info,kube=warn")
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .stdin(Stdio::null())
            .spawn()
            .expect("start the operator");
        let mut operator = Operator {
            identity: identity.to_string(),
            child,
            webhook_port,
            health_port,
            log,
        };
        operator.wait_ready();
        operator
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "operator {} exited ({status}):\n{}",
                    self.identity,
                    self.log_text()
                );
            }
            if http_get(self.health_port, "/readyz").is_some_and(|(ok, _)| ok) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "operator {} not ready within {WAIT:?}:\n{}",
            self.identity,
            self.log_text()
        );
    }

    /// Panics with the log unless the process runs and `/readyz` answers 200.
    pub fn assert_up_and_ready(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "operator {} exited ({status}):\n{}",
                self.identity,
                self.log_text()
            );
        }
        assert!(
            http_get(self.health_port, "/readyz").is_some_and(|(ok, _)| ok),
            "operator {} not ready:\n{}",
            self.identity,
            self.log_text()
        );
    }

    pub fn metrics(&self) -> Option<String> {
        http_get(self.health_port, "/metrics").map(|(_, body)| body)
    }

    pub fn is_leader(&self) -> bool {
        self.metrics().is_some_and(|body| {
            body.lines()
                .any(|line| line == "healthcheck_operator_leader 1")
        })
    }

    /// HealthChecks in this replica's webhook cache.
    pub fn cached(&self) -> Option<usize> {
        self.metrics()?
            .lines()
            .find_map(|line| line.strip_prefix("healthcheck_operator_health_checks "))?
            .trim()
            .parse()
            .ok()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no Lease release, no graceful anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `kubectl apply -f crds/`, once it is established.
pub fn install_crd(cp: &ControlPlane) {
    let crds = super::repo_root().join("crds");
    let output = cp
        .kubectl()
        .args(["apply", "-f"])
        .arg(&crds)
        .output()
        .expect("run kubectl");
    assert!(
        output.status.success(),
        "kubectl apply -f crds/: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    cp.wait_crd_established("healthchecks.healthcheck.openstack.org")
        .unwrap();
}

/// Until `operator`'s webhook cache holds `count` HealthCheck(s).
pub async fn wait_cached(operator: &Operator, count: usize) {
    kube_controlplane::eventually(
        &format!("{count} HealthCheck(s) in {}'s cache", operator.identity),
        || async { (operator.cached() == Some(count)).then_some(()) },
    )
    .await;
}
