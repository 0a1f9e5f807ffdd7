//! podman (Debian's 4.3) with a private configuration: its own containers.conf (runc, the
//! ulimits this host allows, cgroupfs, file events), storage, registries and temporary
//! directory, and no DOCKER_* variables (podman 4.3 reads DOCKER_CONFIG). There is no systemd
//! here, so health checks never run on their own: tests drive them with `podman healthcheck run`.

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::host::{self, ScratchDir};
use crate::{ensure_packages, run, run_ok};

pub struct Podman {
    cgroup: String,
    dir: ScratchDir,
}

impl Podman {
    pub fn new() -> Podman {
        ensure_packages(&["podman=podman", "runc=runc", "newuidmap=uidmap"]);
        let dir = ScratchDir::new("ohc-podman");
        let path = dir.path();
        let cgroup = path.file_name().unwrap().to_string_lossy().into_owned();
        fs::write(
            path.join("containers.conf"),
            format!(
                "[containers]\n\
                 default_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n\
                 [engine]\n\
                 runtime = \"runc\"\n\
                 cgroup_manager = \"cgroupfs\"\n\
                 events_logger = \"file\"\n\
                 tmp_dir = \"{0}/tmp\"\n\
                 [network]\n\
                 network_config_dir = \"{0}/networks\"\n",
                path.display()
            ),
        )
        .expect("write containers.conf");
        fs::write(
            path.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"overlay\"\ngraphroot = \"{0}/storage\"\nrunroot = \"{0}/run\"\n",
                path.display()
            ),
        )
        .expect("write storage.conf");
        fs::write(
            path.join("registries.conf"),
            "unqualified-search-registries = []\n",
        )
        .expect("write registries.conf");
        Podman { cgroup, dir }
    }

    pub fn podman(&self, args: &[&str]) -> Command {
        let path = self.dir.path();
        let mut command = Command::new("/usr/bin/podman");
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("DOCKER_") {
                command.env_remove(name);
            }
        }
        command
            .env("CONTAINERS_CONF", path.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", path.join("storage.conf"))
            .env("CONTAINERS_REGISTRIES_CONF", path.join("registries.conf"))
            .args(args);
        command
    }

    pub fn ok(&self, args: &[&str]) -> String {
        run_ok(&mut self.podman(args))
    }

    pub fn load(&self, archive: &Path) {
        self.ok(&["load", "-q", "-i", &archive.to_string_lossy()]);
    }

    /// `podman run -d` in this instance's cgroup parent, without networking of its own unless
    /// `extra` gives a `--network` (such as `container:NAME`).
    pub fn run_detached(&self, name: &str, extra: &[&str], image: &str, args: &[&str]) {
        let cgroup_parent = format!("--cgroup-parent=/{}", self.cgroup);
        let extra = [&[cgroup_parent.as_str()], extra].concat();
        self.ok(&crate::run_detached_args(name, &extra, image, args));
    }

    /// The container's health as podman records it.
    pub fn health(&self, container: &str) -> Value {
        let text = self.ok(&["inspect", "--format", "{{json .State.Health}}", container]);
        serde_json::from_str(text.trim()).expect("podman inspect prints JSON")
    }
}

impl Default for Podman {
    fn default() -> Self {
        Podman::new()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = run(&mut self.podman(&["rm", "-af", "-t", "0"]));
        host::kill_processes_under(self.dir.path());
        host::unmount_under(self.dir.path());
        host::remove_cgroup(&self.cgroup);
    }
}
