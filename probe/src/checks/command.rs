//! A program, run without a shell, decides by its exit status. It runs in its own process
//! group, which is killed at the deadline so no probe leaves processes behind (the kubelet does
//! not kill timed-out exec probes).

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc;

use healthcheck_spec::CommandCheck;

use super::Context;
use crate::Outcome;

/// The process group of the running command, for [`kill_running_command`].
static RUNNING_GROUP: AtomicI32 = AtomicI32::new(0);

/// Kills the running command's process group, if any; safe to call from the watchdog.
pub fn kill_running_command() {
    kill_group(RUNNING_GROUP.swap(0, Ordering::SeqCst));
}

fn kill_group(group: i32) {
    if group > 0 {
        // SAFETY: kill(2) with a negative pid signals a process group; no memory is involved.
        unsafe { libc::kill(-group, libc::SIGKILL) };
    }
}

pub fn run(spec: &CommandCheck, ctx: &Context) -> Outcome {
    let Some((program, args)) = spec.argv.split_first() else {
        return Outcome::unhealthy("command: no program given");
    };
    let shown = spec.argv.join(" ");
    let mut child = match Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            return Outcome::unhealthy(format!(
                "command `{shown}` could not start: {}",
                crate::net::describe_io(&e)
            ));
        }
    };
    // `serve` runs several checks at once: each run kills and forgets only its own group.
    let group = child.id() as i32;
    RUNNING_GROUP.store(group, Ordering::SeqCst);
    let forget_group = || {
        let _ = RUNNING_GROUP.compare_exchange(group, 0, Ordering::SeqCst, Ordering::SeqCst);
    };
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        // Keep the first line for the message; drain the rest so the child never blocks.
        let mut output = Vec::new();
        let _ = stdout.by_ref().take(1024).read_to_end(&mut output);
        let _ = std::io::copy(&mut stdout, &mut std::io::sink());
        let _ = done.send((child.wait(), output));
    });
    let wait = ctx.deadline.remaining().unwrap_or_default();
    let result = finished.recv_timeout(wait);
    if result.is_err() {
        kill_group(group);
        forget_group();
        return Outcome::unhealthy(format!(
            "command `{shown}` {}",
            ctx.deadline.expired_message()
        ));
    }
    forget_group();
    let (status, output) = result.expect("checked above");
    let first_line = String::from_utf8_lossy(&output)
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let said = if first_line.is_empty() {
        String::new()
    } else {
        format!(": {first_line}")
    };
    match status {
        Ok(status) if status.success() => {
            Outcome::healthy(format!("command `{shown}` exited 0{said}"))
        }
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => Outcome::unhealthy(format!("command `{shown}` exited {code}{said}")),
            (_, Some(signal)) => {
                Outcome::unhealthy(format!("command `{shown}` killed by signal {signal}{said}"))
            }
            _ => Outcome::unhealthy(format!("command `{shown}` ended abnormally{said}")),
        },
        Err(e) => Outcome::unhealthy(format!("command `{shown}`: {e}")),
    }
}
