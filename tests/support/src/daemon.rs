//! Daemons for tests from Debian packages: installed when missing, found where Debian puts them,
//! started as their own process group that never outlives the test binary, and waited for.

use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, Once};
use std::time::Duration;

/// The caller's PATH followed by the system directories, root's sbin ones included: Debian puts
/// daemons there, and a test's PATH (an unprivileged user's, or CI's) often lacks them.
pub fn search_path() -> String {
    let path = std::env::var("PATH").unwrap_or_default();
    format!("{path}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
}

/// Installs the Debian packages of `pairs` (`COMMAND=PACKAGE`) whose command is missing, through
/// the repository's `scripts/ensure-packages` (a test machine may be new). Panics when that
/// fails, naming what the test needs.
pub fn ensure_packages(pairs: &[&str]) {
    install_missing(pairs).unwrap_or_else(|e| {
        panic!("the Debian packages {pairs:?} (COMMAND=PACKAGE) are needed by this test and could not be installed: {e}")
    });
}

/// [`ensure_packages`] for harnesses that report errors instead of panicking.
pub fn install_missing(pairs: &[&str]) -> io::Result<()> {
    // One installation at a time in this binary: tests running in parallel that need the same
    // package would otherwise both start apt-get for it.
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/ensure-packages");
    let status = Command::new("bash")
        .arg(&script)
        .args(pairs)
        .env("PATH", search_path())
        .status()?;
    if !status.success() {
        return Err(io::Error::other(format!(
            "scripts/ensure-packages {pairs:?} failed ({status})"
        )));
    }
    Ok(())
}

/// A program from a Debian package (installed if missing), found in the system directories or on
/// PATH.
pub fn program(name: &str, package: &str) -> PathBuf {
    ensure_packages(&[&format!("{name}={package}")]);
    let path = std::env::var("PATH").unwrap_or_default();
    ["/usr/sbin", "/usr/bin"]
        .into_iter()
        .chain(path.split(':'))
        .map(|dir| Path::new(dir).join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is missing: install the Debian package {package} (scripts/test does)")
        })
}

/// Process groups to kill and directories to remove when the test binary exits.
static CLEANUP: Mutex<Vec<(i32, PathBuf)>> = Mutex::new(Vec::new());

extern "C" fn clean_up_at_exit() {
    let Ok(daemons) = CLEANUP.lock() else { return };
    for (group, dir) in daemons.iter() {
        // SAFETY: signalling a process group this binary created, then reaping its leader.
        unsafe {
            libc::kill(-group, libc::SIGKILL);
            libc::waitpid(*group, std::ptr::null_mut(), 0);
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Starts `command` as the leader of a new process group, for a daemon that serves the whole
/// test binary. The group (everything the daemon spawned) is killed and `dir` removed when this
/// test binary exits, also after failed tests; a watchdog in the group kills it should this
/// binary be killed instead.
pub fn spawn_daemon(mut command: Command, dir: &Path) -> Child {
    static AT_EXIT: Once = Once::new();
    // SAFETY: registering a plain extern "C" function without captured state.
    AT_EXIT.call_once(|| unsafe {
        libc::atexit(clean_up_at_exit);
    });
    let child = command
        .process_group(0)
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let group = child.id() as i32;
    CLEANUP.lock().unwrap().push((group, dir.to_path_buf()));
    // Never waited for: it dies with the group, after this binary has gone.
    #[allow(clippy::zombie_processes)]
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "while kill -0 {} 2>/dev/null; do sleep 1; done; kill -KILL 0",
            std::process::id()
        ))
        .process_group(group)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the daemon watchdog");
    child
}

/// Waits until `ready` holds, polling every 100 ms; panics with the last lines of `log` if the
/// daemon `child` exits first or is not ready within `limit`.
pub fn wait_ready(
    child: &mut Child,
    what: &str,
    log: &Path,
    limit: Duration,
    ready: impl Fn() -> bool,
) {
    let log_tail = || {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<_> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    };
    // `Some(None)`: ready; `Some(Some(status))`: exited.
    let outcome: Option<Option<ExitStatus>> = crate::poll(limit, || {
        if ready() {
            return Some(None);
        }
        child.try_wait().unwrap().map(Some)
    });
    match outcome {
        Some(None) => {}
        Some(Some(status)) => panic!(
            "{what} exited ({status}) before it was ready:\n{}",
            log_tail()
        ),
        None => panic!("{what} was not ready after {limit:?}:\n{}", log_tail()),
    }
}
