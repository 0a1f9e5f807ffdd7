//! The exec-mode contract: one line, exit 0 or 1, the deadline, files, commands, composition,
//! and a binary that runs in an empty root with an empty environment.

mod support;

use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, SystemTime};

use support::{TempDir, binary, run, run_as};

#[test]
fn tcp_connects_over_ipv4_and_ipv6() {
    for bind in ["127.0.0.1:0", "[::1]:0"] {
        let listener = TcpListener::bind(bind).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let line = run(&["tcp", &addr]).healthy().to_string();
        assert!(line.contains(&format!("connected to {addr}")), "{line}");
    }
    let line = run(&["tcp", "127.0.0.1:1"]).unhealthy().to_string();
    assert!(line.contains("connection refused"), "{line}");
    let line = run(&["tcp", "::1:80"]).unhealthy().to_string();
    assert!(line.contains("must be in brackets"), "{line}");
}

#[test]
fn file_age_and_the_tripleo_missing_file_message() {
    let dir = TempDir::new("file");
    let fresh = dir.path("fresh");
    File::create(&fresh).unwrap();
    run(&["file", fresh.to_str().unwrap(), "60"]).healthy();
    let stale = dir.path("stale");
    File::create(&stale)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(600))
        .unwrap();
    let line = run(&["file", stale.to_str().unwrap(), "300"])
        .unhealthy()
        .to_string();
    assert!(
        line.contains("modified 600s ago, more than 300s") || line.contains("modified 601s ago"),
        "{line}"
    );
    let missing = dir.path("object.recon");
    let line = run(&["file", missing.to_str().unwrap(), "300"])
        .unhealthy()
        .to_string();
    assert_eq!(
        line,
        format!(
            "unhealthy: {} does not exist for file modification check",
            missing.display()
        )
    );
}

#[test]
fn command_exit_status_decides() {
    let line = run(&["command", "--", "sh", "-c", "echo all good; exit 0"])
        .healthy()
        .to_string();
    assert!(line.contains("exited 0: all good"), "{line}");
    let line = run(&["command", "--", "sh", "-c", "echo broken; exit 3"])
        .unhealthy()
        .to_string();
    assert!(line.contains("exited 3: broken"), "{line}");
    let line = run(&["command", "/nonexistent/program"])
        .unhealthy()
        .to_string();
    assert!(
        line.contains("could not start: no such file or directory"),
        "{line}"
    );
}

/// A command that outlives the deadline is killed with its whole process group.
#[test]
fn command_past_the_deadline_is_killed_with_its_children() {
    let dir = TempDir::new("cmd");
    let pidfile = dir.path("pid");
    let script = format!("sleep 300 & echo $! > {}; wait", pidfile.display());
    let result = run(&["--timeout", "0.5", "command", "--", "sh", "-c", &script]);
    let line = result.unhealthy();
    assert!(line.contains("timed out after 0.5s"), "{line}");
    result.assert_within(Duration::from_millis(500));
    let grandchild = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .to_string();
    std::thread::sleep(Duration::from_millis(100));
    let state = std::fs::read_to_string(format!("/proc/{grandchild}/stat")).unwrap_or_default();
    assert!(
        state.is_empty() || state.contains(") Z "),
        "sleep {grandchild} survived: {state}"
    );
}

#[test]
fn all_requires_every_member_and_names_the_failing_one() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let line = run(&["all", "tcp", &addr, "--and", "command", "--", "true"])
        .healthy()
        .to_string();
    assert!(
        line.contains("connected to") && line.contains("`true` exited 0"),
        "{line}"
    );
    let line = run(&["all", "tcp", &addr, "--and", "tcp", "127.0.0.1:1"])
        .unhealthy()
        .to_string();
    assert!(line.contains("tcp 127.0.0.1:1"), "{line}");
}

#[test]
fn exit_codes_are_only_ever_zero_or_one() {
    for args in [
        &[][..],
        &["bogus"],
        &["http"],
        &["--timeout", "zero", "tcp", "h:1"],
        &["file", "/x", "-5"],
    ] {
        let line = run(args).unhealthy().to_string();
        assert!(line.contains("invalid arguments"), "{args:?}: {line}");
    }
    let help = run(&["--help"]);
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("Usage: healthcheck"), "{help:?}");
    let bad_env = run_as(
        binary(),
        &["tcp", "127.0.0.1:1"],
        &[("HEALTHCHECK_CURL_MAX_TIME", "soon")],
    );
    assert!(
        bad_env.unhealthy().contains("HEALTHCHECK_CURL_MAX_TIME"),
        "{bad_env:?}"
    );
}

#[test]
fn the_tripleo_deadline_variable_bounds_the_run() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", silent.local_addr().unwrap());
    let result = run_as(
        binary(),
        &["http", &url],
        &[("HEALTHCHECK_CURL_MAX_TIME", "0.5")],
    );
    assert!(
        result.unhealthy().contains("timed out after 0.5s"),
        "{result:?}"
    );
    result.assert_within(Duration::from_millis(500));
}

/// The binary has no program interpreter (no dynamic loader) and no shared-library needs.
#[test]
fn binary_is_statically_linked() {
    let elf = std::fs::read(binary()).unwrap();
    assert_eq!(&elf[..4], b"\x7fELF");
    assert_eq!(elf[4], 2, "64-bit ELF expected");
    let u16_at = |at: usize| u16::from_le_bytes([elf[at], elf[at + 1]]) as usize;
    let u64_at = |at: usize| u64::from_le_bytes(elf[at..at + 8].try_into().unwrap()) as usize;
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    for i in 0..phnum {
        let p_type = u32::from_le_bytes(elf[phoff + i * phentsize..][..4].try_into().unwrap());
        assert_ne!(
            p_type, 3,
            "PT_INTERP found: the binary needs a dynamic loader"
        );
    }
}

/// In a root with nothing but the binary, and no environment, it still checks and resolves
/// `localhost`.
#[test]
fn runs_in_an_empty_root_with_an_empty_environment() {
    let root = TempDir::new("chroot");
    std::fs::copy(binary(), root.path("healthcheck")).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let in_chroot = |args: &[&str]| {
        let dir = root.0.clone();
        let mut command = Command::new("/healthcheck");
        command.args(args).env_clear();
        // SAFETY: chroot(2) and chdir(2) between fork and exec touch no shared state.
        unsafe {
            command.pre_exec(move || {
                let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
                if libc::chroot(path.as_ptr()) != 0 || libc::chdir(c"/".as_ptr()) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        command.output().expect("run in chroot (needs root)")
    };
    let output = in_chroot(&["tcp", &format!("localhost:{port}")]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(
        stdout.starts_with(&format!(
            "healthy: tcp localhost:{port} connected to 127.0.0.1:{port}"
        )),
        "{stdout}"
    );
    let output = in_chroot(&["file", "/healthcheck", "31536000"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
}

#[test]
fn debug_details_go_to_stderr_and_stdout_keeps_one_line() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let quiet = run(&["tcp", &addr]);
    quiet.healthy();
    assert_eq!(quiet.stderr, "");
    let verbose = run_as(binary(), &["tcp", &addr], &[("HEALTHCHECK_DEBUG", "1")]);
    verbose.healthy();
    assert!(
        verbose.stderr.contains(&format!("connected to {addr}")),
        "{verbose:?}"
    );
}
