//! Child processes that never outlive the process that started them.
//!
//! Every child gets `PR_SET_PDEATHSIG(SIGKILL)`. The kernel sends that signal when the *thread*
//! that forked the child exits, not the process, and test threads come and go; so all children
//! are forked by one spawner thread that lives until the process exits. `Drop` kills and reaps
//! the child for the orderly paths (test end, panic unwinding, dev-cluster shutdown).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::OnceLock;
use std::sync::mpsc::{Sender, channel};

use anyhow::{Context, Result, bail};

type SpawnRequest = (Command, Sender<io::Result<Child>>);

fn spawner() -> &'static Mutex<Sender<SpawnRequest>> {
    static SPAWNER: OnceLock<Mutex<Sender<SpawnRequest>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("controlplane-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("cannot start the control plane spawner thread");
        Mutex::new(tx)
    })
}

/// A running child process whose stdout and stderr go to a log file.
pub struct Process {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Starts `command`; with `netns` (an open `/run/netns/NAME`) the child enters that network
    /// namespace before exec. The mount namespace stays the host's, so cgroup mounts remain
    /// visible (unlike `ip netns exec`).
    pub fn spawn(name: &str, mut command: Command, log: &Path, netns: Option<i32>) -> Result<Self> {
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        command
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        let parent = std::process::id();
        // SAFETY: only async-signal-safe libc calls between fork and exec.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // The parent may have died between fork and prctl; then nobody would kill us.
                if libc::getppid() as u32 != parent {
                    libc::_exit(1);
                }
                if let Some(fd) = netns
                    && libc::setns(fd, libc::CLONE_NEWNET) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let (tx, rx) = channel();
        spawner()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send((command, tx))
            .context("control plane spawner thread is gone")?;
        let child = rx
            .recv()
            .context("control plane spawner thread is gone")?
            .with_context(|| format!("starting {name}"))?;
        Ok(Self {
            name: name.to_string(),
            child,
            log: log.to_path_buf(),
        })
    }

    /// Fails with the end of the log if the process has exited.
    pub fn check_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited ({status}); last log lines from {}:\n{}",
                self.name,
                self.log.display(),
                log_tail(&self.log)
            );
        }
        Ok(())
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A process slot that can be emptied and refilled (e.g. restarting kube-apiserver).
pub type Slot = Mutex<Option<Process>>;

pub fn lock(slot: &Slot) -> std::sync::MutexGuard<'_, Option<Process>> {
    // A test that panicked while holding the lock must not stop cleanup.
    slot.lock().unwrap_or_else(|e| e.into_inner())
}

fn log_tail(path: &Path) -> String {
    const TAIL: u64 = 4096;
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(TAIL)));
    let mut buf = Vec::new();
    let _ = file.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}
