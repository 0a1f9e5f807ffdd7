//! A private dockerd (Debian's docker.io 20.10): its own data-root, exec-root, socket, pidfile,
//! cgroup parent and an empty config file, no networking of its own (`--bridge=none`, so
//! containers use `--network none` or `host`). Debian's client at /usr/bin/docker talks to it
//! (a /usr/local/bin/docker may be another version, client only).

use std::fs;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::host::{self, ScratchDir};
use crate::{ensure_packages, run, run_ok, wait_for};

const DOCKER_CLIENT: &str = "/usr/bin/docker";

pub struct Dockerd {
    daemon: Option<Child>,
    cgroup: String,
    dir: ScratchDir,
    /// Whether this daemon's containerd created [`SHIM_RUN_DIRS`] (removed with it, once empty).
    created_shim_dirs: bool,
}

/// containerd 1.6 puts its shims' sockets in /run/containerd/s whatever its own root is.
const SHIM_RUN_DIRS: [&str; 2] = ["/run/containerd/s", "/run/containerd"];

impl Dockerd {
    pub fn start() -> Dockerd {
        ensure_packages(&["dockerd=docker.io", "runc=runc"]);
        let created_shim_dirs = !Path::new(SHIM_RUN_DIRS[1]).exists();
        let dir = ScratchDir::new("ohc-docker");
        let path = dir.path().to_path_buf();
        fs::write(path.join("daemon.json"), "{}\n").expect("write daemon.json");
        fs::create_dir_all(path.join("client")).expect("client config dir");
        let cgroup = path.file_name().unwrap().to_string_lossy().into_owned();
        let log = fs::File::create(path.join("dockerd.log")).expect("dockerd log");
        let daemon = Command::new("/usr/sbin/dockerd")
            .args(["--iptables=false", "--ip6tables=false", "--bridge=none"])
            .arg(format!("--data-root={}", path.join("data").display()))
            .arg(format!("--exec-root={}", path.join("exec").display()))
            .arg(format!(
                "--host=unix://{}",
                path.join("docker.sock").display()
            ))
            .arg(format!("--pidfile={}", path.join("docker.pid").display()))
            .arg(format!(
                "--config-file={}",
                path.join("daemon.json").display()
            ))
            .arg(format!("--cgroup-parent=/{cgroup}"))
            .args(["--default-ulimit", "nofile=20000:20000"])
            .args(["--default-ulimit", "nproc=32768:32768"])
            .args(["--log-level=warn"])
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONFIG")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        let dockerd = Dockerd {
            daemon: Some(daemon),
            cgroup,
            dir,
            created_shim_dirs,
        };
        wait_for(Duration::from_secs(60), "dockerd to answer", || {
            run(&mut dockerd.docker(&["version"]))
                .status
                .success()
                .then_some(())
        });
        dockerd
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Debian's docker client bound to this daemon, with an empty client configuration.
    pub fn docker(&self, args: &[&str]) -> Command {
        let mut command = Command::new(DOCKER_CLIENT);
        command
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .env("DOCKER_CONFIG", self.dir().join("client"))
            .env("DOCKER_BUILDKIT", "0")
            .arg(format!(
                "--host=unix://{}",
                self.dir().join("docker.sock").display()
            ))
            .args(args);
        command
    }

    /// Runs the client, panicking when it fails; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        run_ok(&mut self.docker(args))
    }

    /// `docker load -i ARCHIVE`.
    /// Starts container `name` detached ([`crate::run_detached_args`]).
    pub fn run_detached(&self, name: &str, extra: &[&str], image: &str, args: &[&str]) {
        self.ok(&crate::run_detached_args(name, extra, image, args));
    }

    pub fn load(&self, archive: &Path) {
        self.ok(&["load", "-i", &archive.to_string_lossy()]);
    }

    /// `.State.Health` of a container, from the Engine API (cheaper than a client per poll).
    pub fn health(&self, container: &str) -> Value {
        let inspect = self.api_get(&format!("/containers/{container}/json"));
        inspect["State"]["Health"].clone()
    }

    /// `GET path` on the daemon's socket, HTTP/1.0 with 10 s deadlines, the JSON body.
    pub fn api_get(&self, path: &str) -> Value {
        let socket = self.dir().join("docker.sock");
        let mut stream = UnixStream::connect(&socket).expect("connect to dockerd");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(stream, "GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n").expect("send");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .expect("read the answer");
        let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP answer");
        assert!(
            head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
            "{path}: {head}"
        );
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
    }

    /// Builds `context` (a directory holding a `Dockerfile`) as `tag`.
    pub fn build(&self, tag: &str, context: &Path) {
        self.ok(&["build", "-q", "-t", tag, &context.to_string_lossy()]);
    }

    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(self.dir().join("dockerd.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    pub fn data_path(&self) -> PathBuf {
        self.dir().join("data")
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if let Ok(ids) = self.docker(&["ps", "-aq"]).output() {
            let ids = String::from_utf8_lossy(&ids.stdout).into_owned();
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(ids);
                let _ = run(&mut self.docker(&args));
            }
        }
        if let Some(mut daemon) = self.daemon.take() {
            host::terminate(&mut daemon, Duration::from_secs(20));
        }
        // The ScratchDir (dropped next) kills what is left (containerd, shims) and unmounts
        // EXEC_ROOT/netns/default and any overlay.
        host::kill_processes_under(self.dir.path());
        host::unmount_under(self.dir.path());
        host::remove_cgroup(&self.cgroup);
        // The shims of the removed containers took their sockets with them; remove_dir leaves
        // a directory that something else still uses.
        if self.created_shim_dirs {
            for dir in SHIM_RUN_DIRS {
                let _ = fs::remove_dir(dir);
            }
        }
    }
}
