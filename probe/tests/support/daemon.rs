//! Real daemons for protocol tests, started once per test binary and never outliving it, and
//! fake peers that misbehave on purpose.

#![allow(dead_code)] // Each test file uses a different part of this module.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Once};
use std::thread;
use std::time::{Duration, Instant};

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

/// Starts `command` as the leader of a new process group. The group (everything the daemon
/// spawned) is killed and `dir` removed when this test binary exits, also after failed tests;
/// a watchdog in the group kills it should this binary be killed instead.
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

/// A program from a Debian package (installed if missing, as for the per-test daemons), found in
/// the system directories or on PATH. RabbitMQ's own directory comes first: the /usr/sbin
/// wrappers switch to the rabbitmq user, who cannot write the test's directories.
pub fn program(name: &str, package: &str) -> PathBuf {
    crate::support::daemons::ensure(name, package);
    let path = std::env::var("PATH").unwrap_or_default();
    ["/usr/lib/rabbitmq/bin", "/usr/sbin", "/usr/bin"]
        .into_iter()
        .chain(path.split(':'))
        .map(|dir| Path::new(dir).join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is missing: install the Debian package {package} (scripts/test does)")
        })
}

pub use crate::support::daemons::free_port;

/// Waits until `ready` holds, failing with the daemon's log if it exits or takes too long.
pub fn wait_until(
    child: &mut Child,
    what: &str,
    log: &Path,
    limit: Duration,
    ready: impl Fn() -> bool,
) {
    let started = Instant::now();
    while !ready() {
        let log_tail = || {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let lines: Vec<_> = text.lines().collect();
            lines[lines.len().saturating_sub(30)..].join("\n")
        };
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "{what} exited ({status}) before it was ready:\n{}",
                log_tail()
            );
        }
        if started.elapsed() > limit {
            panic!("{what} was not ready after {limit:?}:\n{}", log_tail());
        }
        thread::sleep(Duration::from_millis(100));
    }
}

pub fn accepts_tcp(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// What a fake peer does after its opening bytes.
#[derive(Clone, Copy)]
pub enum Then {
    Close,
    Hang,
}

/// A loopback TCP server that, on every connection, plays `replies`: for each, reads what the
/// client sent (waiting up to 200 ms), then sends the reply; then closes or hangs. Returns its
/// port.
pub fn fake_peer(replies: &[&[u8]], then: Then) -> u16 {
    let replies: Arc<Vec<Vec<u8>>> = Arc::new(replies.iter().map(|r| r.to_vec()).collect());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let replies = replies.clone();
            thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
                for reply in replies.iter() {
                    // Reading the client's message first also makes a close a clean FIN.
                    let _ = stream.read(&mut [0u8; 4096]);
                    let _ = stream.write_all(reply);
                }
                if let Then::Hang = then {
                    // Keep reading so the client's writes never block, and never answer.
                    let _ = stream.set_read_timeout(None);
                    let mut sink = [0u8; 1024];
                    while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
                }
            });
        }
    });
    port
}
