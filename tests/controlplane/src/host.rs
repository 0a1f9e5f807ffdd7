//! What a node changes on the host, and how each change is undone: its network namespace, its
//! cgroup root under every v1 hierarchy, the mounts under its directory, the shims containerd
//! leaves running, the kubelet's log symlinks and the kernel sysctls the kubelet rewrites.
//!
//! Undoing is plain synchronous work on names recorded in the node's directory, so the same code
//! runs at a normal teardown, at exit, and for a node whose test process was killed.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("running {cmd:?} (is iproute2 installed?)"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// A network namespace `/run/netns/NAME` holding a `bridge` device with the node's address and a
/// default route on it. Deleted with [`delete_netns`].
pub struct NetNs {
    pub name: String,
    file: File,
}

impl NetNs {
    pub fn create(name: &str, bridge: &str, address_cidr: &str) -> Result<Self> {
        run(Command::new("ip").args(["netns", "add", name]))?;
        let setup = || -> Result<File> {
            let ip = |args: &[&str]| run(Command::new("ip").arg("-n").arg(name).args(args));
            ip(&["link", "set", "lo", "up"])?;
            // `dummy` devices are not available on every kernel; a bridge without ports is.
            ip(&["link", "add", bridge, "type", "bridge"])?;
            ip(&["addr", "add", address_cidr, "dev", bridge])?;
            ip(&["link", "set", bridge, "up"])?;
            ip(&["route", "add", "default", "dev", bridge])?;
            let path = format!("/run/netns/{name}");
            File::open(&path).with_context(|| format!("opening {path}"))
        };
        match setup() {
            Ok(file) => Ok(Self {
                name: name.to_string(),
                file,
            }),
            Err(e) => {
                delete_netns(name);
                Err(e)
            }
        }
    }

    /// The namespace's file descriptor, for `setns(2)` in a child before exec.
    pub fn fd(&self) -> i32 {
        self.file.as_raw_fd()
    }

    /// Runs `f` on a thread inside the namespace (e.g. a plain HTTP request to a server there).
    pub fn run_in<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let netns = Arc::clone(self);
        std::thread::spawn(move || -> Result<T> {
            netns.enter()?;
            Ok(f())
        })
        .join()
        .map_err(|_| anyhow::anyhow!("thread in the node's namespace panicked"))?
    }

    /// Enters the namespace on the calling thread only (sockets it creates live there).
    fn enter(&self) -> Result<()> {
        // SAFETY: setns on a valid namespace fd; CLONE_NEWNET affects only this thread.
        if unsafe { libc::setns(self.fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error()).context("setns into the node's netns");
        }
        Ok(())
    }
}

/// Deletes `/run/netns/NAME` if it exists; the namespace goes away with its last process.
pub fn delete_netns(name: &str) {
    if Path::new("/run/netns").join(name).exists() {
        let _ = Command::new("ip").args(["netns", "delete", name]).output();
    }
}

/// Forwards TCP connections accepted on a host loopback listener to `target` inside the
/// namespace, so clients outside it (tests, kubectl) reach the API server in it. Stops when the
/// returned guard is dropped.
pub struct Forwarder {
    stop: Arc<AtomicBool>,
    address: SocketAddr,
}

impl Forwarder {
    pub fn start(netns: &Arc<NetNs>, listen: SocketAddr, target: SocketAddr) -> Result<Self> {
        let listener =
            TcpListener::bind(listen).with_context(|| format!("listening on {listen}"))?;
        let address = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let netns = Arc::clone(netns);
        let stopped = Arc::clone(&stop);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("netns-forwarder".into())
            .spawn(move || {
                // The listener was bound before: it stays in the host's namespace; every
                // connection this thread opens from now on is made inside the node's.
                let _ = ready_tx.send(netns.enter().map_err(|e| format!("{e:#}")));
                for client in listener.incoming() {
                    if stopped.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    let Ok(server) = TcpStream::connect_timeout(&target, Duration::from_secs(5))
                    else {
                        continue;
                    };
                    pipe(client, server);
                }
            })?;
        ready_rx
            .recv()
            .context("forwarder thread died")?
            .map_err(anyhow::Error::msg)?;
        Ok(Self { stop, address })
    }
}

/// Copies both directions until either side closes.
fn pipe(a: TcpStream, b: TcpStream) {
    let _ = a.set_nodelay(true);
    let _ = b.set_nodelay(true);
    for (mut from, mut to) in [
        (a.try_clone(), b.try_clone()),
        (b.try_clone(), a.try_clone()),
    ]
    .into_iter()
    .filter_map(|(f, t)| Some((f.ok()?, t.ok()?)))
    {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = to.shutdown(std::net::Shutdown::Both);
            let _ = from.shutdown(std::net::Shutdown::Both);
        });
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_secs(1));
    }
}

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Every cgroup hierarchy mounted under /sys/fs/cgroup (v1 controllers, the named systemd one and
/// the hybrid unified one); the aliases like `cpu,cpuacct` are symlinks and skipped.
fn hierarchies() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(CGROUP_ROOT) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs
}

/// Creates the node's own cgroup root `/NAME` in every hierarchy (the kubelet requires it to
/// exist), with cpuset's CPUs and memory nodes copied from the parent so children can run.
pub fn create_cgroup_root(name: &str) -> Result<()> {
    for hierarchy in hierarchies() {
        let dir = hierarchy.join(name);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        for knob in ["cpuset.cpus", "cpuset.mems"] {
            if let Ok(value) = std::fs::read_to_string(hierarchy.join(knob)) {
                std::fs::write(dir.join(knob), value.trim())
                    .with_context(|| format!("writing {}", dir.join(knob).display()))?;
            }
        }
    }
    Ok(())
}

/// The pids in the node's cgroups (any hierarchy: `pids` or `memory` holds them all).
fn cgroup_pids(name: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    for hierarchy in hierarchies() {
        let mut stack = vec![hierarchy.join(name)];
        while let Some(dir) = stack.pop() {
            if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
                pids.extend(procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
            }
            if let Ok(entries) = std::fs::read_dir(&dir) {
                stack.extend(
                    entries
                        .flatten()
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                        .map(|e| e.path()),
                );
            }
        }
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Kills every process in the node's cgroups (the pods' containers), then removes the cgroups,
/// deepest first. Retries for a few seconds while killed processes are still being reaped.
pub fn remove_cgroup_root(name: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        for pid in cgroup_pids(name) {
            // SAFETY: plain kill(2) of a pid read from the node's own cgroups.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let mut left = Vec::new();
        for hierarchy in hierarchies() {
            let root = hierarchy.join(name);
            if root.exists() {
                remove_dirs_deepest_first(&root);
                if root.exists() {
                    left.push(root);
                }
            }
        }
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("cgroups left behind (still busy): {left:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn remove_dirs_deepest_first(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_dirs_deepest_first(&entry.path());
            }
        }
    }
    // cgroup directories are removed with rmdir even though they list control files.
    let _ = std::fs::remove_dir(dir);
}

/// Mount points at or below `dir` in this mount namespace, deepest (latest) first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut mounts: Vec<PathBuf> = info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape_mount_path)
        .filter(|p| p.starts_with(dir))
        .collect();
    mounts.reverse();
    mounts.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    mounts
}

/// mountinfo writes space, tab, newline and backslash as `\ooo` octal escapes.
fn unescape_mount_path(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 4 <= bytes.len()
            && let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 4])
                .ok()
                .and_then(|o| u8::from_str_radix(o, 8).ok())
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// Lazily unmounts everything mounted below `dir` (overlay rootfs, shm, volumes, pod network
/// namespaces, the kubelet's bind mount of its root onto itself), deepest first.
pub fn unmount_under(dir: &Path) -> Result<()> {
    for _ in 0..5 {
        let mounts = mounts_under(dir);
        if mounts.is_empty() {
            return Ok(());
        }
        for mount in mounts {
            let Ok(path) = std::ffi::CString::new(mount.as_os_str().as_encoded_bytes()) else {
                continue;
            };
            // SAFETY: umount2 with a valid NUL-terminated path.
            unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
        }
    }
    let left = mounts_under(dir);
    if left.is_empty() {
        Ok(())
    } else {
        bail!("mounts left behind: {left:?}")
    }
}

/// Pids of processes whose command line contains `needle` (e.g. the shims started for a
/// private containerd carry its socket path in `-address`).
pub fn pids_with_arg(needle: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
                cmdline
                    .split(|&b| b == 0)
                    .any(|arg| arg == needle.as_bytes())
            })
        })
        .collect()
}

/// Kills the processes whose command line has `needle` as one argument, and waits (briefly) for
/// them to be gone.
fn kill_processes_with_arg(needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let pids = pids_with_arg(needle);
        if pids.is_empty() || Instant::now() > deadline {
            return;
        }
        for pid in pids {
            // SAFETY: plain kill(2).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Where containerd 1.6 puts every shim's socket, whatever containerd's own state directory.
pub const SHIM_SOCKET_DIR: &str = "/run/containerd/s";

/// Kills the shims of the containerd whose socket is `containerd_socket` (they carry it in
/// `-address`; they are not containerd's children), and removes the sockets they listened on
/// in [`SHIM_SOCKET_DIR`]: a killed shim leaves its socket there.
pub fn kill_shims(containerd_socket: &str) {
    let sockets = shim_sockets(containerd_socket);
    kill_processes_with_arg(containerd_socket);
    for socket in sockets {
        let _ = std::fs::remove_file(socket);
    }
}

/// The sockets in [`SHIM_SOCKET_DIR`] of the shims of the containerd at `containerd_socket`.
pub fn shim_sockets(containerd_socket: &str) -> Vec<PathBuf> {
    let mut sockets: Vec<PathBuf> = pids_with_arg(containerd_socket)
        .into_iter()
        .flat_map(shim_sockets_of)
        .collect();
    // A shim holds its listening socket and accepted connections: one path, several inodes.
    sockets.sort();
    sockets.dedup();
    sockets
}

/// The Unix sockets in [`SHIM_SOCKET_DIR`] that process `pid` holds open: its fds'
/// `socket:[INODE]` links matched with the Unix socket table of its network namespace.
fn shim_sockets_of(pid: i32) -> Vec<PathBuf> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|fd| {
            let link = std::fs::read_link(fd.path()).ok()?;
            let link = link.to_str()?;
            Some(
                link.strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_string(),
            )
        })
        .collect();
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/unix")).unwrap_or_default();
    unix_socket_paths(&table, &inodes, Path::new(SHIM_SOCKET_DIR))
}

/// From a `/proc/PID/net/unix` table (`Num RefCount Protocol Flags Type St Inode Path`), the
/// paths under `dir` of the sockets whose inode is one of `inodes`.
fn unix_socket_paths(table: &str, inodes: &[String], dir: &Path) -> Vec<PathBuf> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (inode, path) = (fields.get(6)?, Path::new(fields.get(7)?));
            (inodes.iter().any(|i| i == inode) && path.starts_with(dir)).then(|| path.to_path_buf())
        })
        .collect()
}

/// The kubelet links every container log into /var/log/containers; removes the links that point
/// into `logs_dir` (the node's private pod log directory).
pub fn remove_container_log_links(logs_dir: &Path) {
    let Ok(entries) = std::fs::read_dir("/var/log/containers") else {
        return;
    };
    for entry in entries.flatten() {
        if std::fs::read_link(entry.path()).is_ok_and(|target| target.starts_with(logs_dir)) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Host-wide sysctls the kubelet sets at start (it exits instead if told to protect them).
pub const KUBELET_SYSCTLS: [&str; 3] = [
    "vm/overcommit_memory",
    "kernel/panic",
    "kernel/panic_on_oops",
];

/// Host-wide paths the node's components create whatever they are told: the kubelet's device
/// plugin socket and container log links, libcni's result cache, containerd 1.6's shim sockets.
pub const HOST_PATHS: [&str; 4] = [
    "/var/lib/kubelet",
    "/var/log/containers",
    "/var/lib/cni",
    "/run/containerd",
];

fn host_record() -> PathBuf {
    std::env::temp_dir().join("kube-controlplane-host-state")
}

/// Runs `f` holding an exclusive lock shared by every node on the host.
fn with_host_lock<T>(f: impl FnOnce() -> T) -> Result<T> {
    // The temporary directory itself is the lock: no lock file is left behind.
    let lock = File::open(std::env::temp_dir())?;
    // SAFETY: flock on an open fd; released when `lock` is closed.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(std::io::Error::last_os_error()).context("locking the host state record");
    }
    Ok(f())
}

/// Records the host's sysctl values and which [`HOST_PATHS`] are absent, before the first node on
/// the host starts (later nodes find them recorded, possibly already changed by a running node).
pub fn record_host_state() -> Result<()> {
    with_host_lock(|| -> Result<()> {
        if host_record().exists() {
            return Ok(());
        }
        let mut text = String::new();
        for key in KUBELET_SYSCTLS {
            let value = std::fs::read_to_string(Path::new("/proc/sys").join(key))
                .with_context(|| format!("reading sysctl {key}"))?;
            text.push_str(&format!("sysctl {key}={}\n", value.trim()));
        }
        for path in HOST_PATHS {
            if !Path::new(path).exists() {
                text.push_str(&format!("created {path}\n"));
            }
        }
        std::fs::write(host_record(), text)?;
        Ok(())
    })?
}

/// Restores the recorded sysctls and removes the paths that did not exist, unless
/// `others_running` says another node still runs.
pub fn restore_host_state(others_running: impl FnOnce() -> bool) -> Result<()> {
    with_host_lock(|| -> Result<()> {
        let Ok(text) = std::fs::read_to_string(host_record()) else {
            return Ok(());
        };
        if others_running() {
            return Ok(());
        }
        for line in text.lines() {
            if let Some((key, value)) = line.strip_prefix("sysctl ").and_then(|l| l.split_once('='))
            {
                std::fs::write(Path::new("/proc/sys").join(key), value)
                    .with_context(|| format!("restoring sysctl {key}"))?;
            } else if let Some(path) = line.strip_prefix("created ") {
                let _ = std::fs::remove_dir_all(path);
            }
        }
        std::fs::remove_file(host_record())?;
        Ok(())
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shims_sockets_are_found_by_inode_under_the_shim_directory() {
        let table = "Num       RefCount Protocol Flags    Type St Inode Path\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 4242 /run/containerd/s/ab12\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 4243 /run/containerd/s/cd34\n\
            0000000000000000: 00000003 00000000 00000000 0001 03 4244\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 4245 /tmp/other.sock\n";
        let inodes = ["4242", "4244", "4245"].map(String::from);
        assert_eq!(
            unix_socket_paths(table, &inodes, Path::new(SHIM_SOCKET_DIR)),
            [PathBuf::from("/run/containerd/s/ab12")]
        );
    }

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(
            unescape_mount_path(r"/tmp/a\040b\134c"),
            PathBuf::from("/tmp/a b\\c")
        );
        assert_eq!(unescape_mount_path("/plain"), PathBuf::from("/plain"));
    }
}
