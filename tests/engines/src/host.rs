//! What an engine leaves on the host and how it is removed: its directory, the mounts under
//! it, the processes started with it, and its cgroups.

use std::ffi::CString;
use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

/// A fresh directory under /tmp (short: engine sockets live in it), removed on drop after
/// everything mounted under it is unmounted.
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    pub fn new(prefix: &str) -> ScratchDir {
        let template = CString::new(format!("/tmp/{prefix}.XXXXXX")).expect("no NUL");
        let mut bytes = template.into_bytes_with_nul();
        // SAFETY: mkdtemp writes into the NUL-terminated buffer it is given, in place.
        let made = unsafe { libc::mkdtemp(bytes.as_mut_ptr().cast()) };
        assert!(
            !made.is_null(),
            "mkdtemp: {}",
            std::io::Error::last_os_error()
        );
        bytes.pop();
        ScratchDir {
            path: PathBuf::from(String::from_utf8(bytes).expect("ASCII template")),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        kill_processes_under(&self.path);
        unmount_under(&self.path);
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Mount points at or under `dir`, deepest first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut mounts: Vec<PathBuf> = text
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|point| PathBuf::from(point.replace("\\040", " ")))
        .filter(|point| point.starts_with(dir))
        .collect();
    mounts.sort_by_key(|point| std::cmp::Reverse(point.components().count()));
    mounts.dedup();
    mounts
}

/// Lazily unmounts everything under `dir` (overlays, shm, nsfs such as dockerd's
/// `EXEC_ROOT/netns/default`), deepest first.
pub fn unmount_under(dir: &Path) {
    for _ in 0..3 {
        let mounts = mounts_under(dir);
        if mounts.is_empty() {
            return;
        }
        for point in mounts {
            let Ok(path) = CString::new(point.as_os_str().as_encoded_bytes()) else {
                continue;
            };
            // SAFETY: umount2 only reads the NUL-terminated path.
            unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

/// Processes whose command line mentions `dir` (a daemon's containerd, shims, conmon).
pub fn processes_under(dir: &Path) -> Vec<i32> {
    let needle = dir.to_string_lossy().into_owned();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .map(|cmdline| String::from_utf8_lossy(&cmdline).contains(&needle))
                .unwrap_or(false)
        })
        .collect()
}

pub fn kill_processes_under(dir: &Path) {
    for pid in processes_under(dir) {
        // SAFETY: kill(2) on a pid found just now; no memory is involved.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    wait_gone(dir, Duration::from_secs(5));
}

fn wait_gone(dir: &Path, limit: Duration) {
    let started = Instant::now();
    while !processes_under(dir).is_empty() && started.elapsed() < limit {
        thread::sleep(Duration::from_millis(50));
    }
}

/// Sends SIGTERM to `pid` and waits up to `limit` for it to exit, then SIGKILL.
pub fn terminate(child: &mut std::process::Child, limit: Duration) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Removes the cgroup `name` (relative to each v1 controller and the unified hierarchy) and
/// everything under it, deepest first; cgroups only go away once empty.
pub fn remove_cgroup(name: &str) {
    let Ok(controllers) = fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for controller in controllers.flatten() {
        let root = controller.path().join(name);
        if root.is_dir() {
            let mut dirs = Vec::new();
            collect_dirs(&root, &mut dirs);
            dirs.sort_by_key(|dir| std::cmp::Reverse(dir.components().count()));
            for dir in dirs {
                let _ = fs::remove_dir(dir);
            }
        }
    }
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                collect_dirs(&entry.path(), out);
            }
        }
    }
}
