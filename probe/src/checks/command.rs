//! A program, run without a shell, decides by its exit status. It runs in its own process
//! group, which is killed at the deadline so no probe leaves processes behind (the kubelet does
//! not kill timed-out exec probes).

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::Duration;

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

/// How a command ended, with the first bytes of its stdout and stderr as one stream.
enum Ran {
    Exited { status: ExitStatus, output: Vec<u8> },
    NotStarted(String),
    Overran,
    WaitFailed(std::io::Error),
}

/// Runs the command with both output streams on one pipe (as Docker's exec shares one buffer
/// between them), keeping its first `keep` bytes and draining the rest so it never blocks.
fn execute(spec: &CommandCheck, ctx: &Context, keep: usize) -> Ran {
    let Some((program, args)) = spec.argv.split_first() else {
        return Ran::NotStarted("no program given".to_string());
    };
    let spawned = std::io::pipe().and_then(|(reader, writer)| {
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(writer.try_clone()?)
            .stderr(writer)
            .process_group(0)
            .spawn()?;
        // The Command (holding the writer's copies) is gone here: EOF when the child ends.
        Ok((child, reader))
    });
    let (mut child, mut reader) = match spawned {
        Ok(spawned) => spawned,
        Err(e) => return Ran::NotStarted(crate::net::describe_io(&e)),
    };
    // `serve` runs several checks at once: each run kills and forgets only its own group.
    let group = child.id() as i32;
    RUNNING_GROUP.store(group, Ordering::SeqCst);
    let output = Arc::new(Mutex::new(Vec::new()));
    let (closed, pipe_closed) = mpsc::channel();
    let collected = Arc::clone(&output);
    std::thread::spawn(move || {
        collect(&mut reader, &collected, keep);
        let _ = closed.send(());
    });
    let (exited, child_exited) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = exited.send(child.wait());
    });
    let result = child_exited.recv_timeout(ctx.deadline.remaining().unwrap_or_default());
    if result.is_err() {
        kill_group(group);
    } else {
        // The pipe closes when the command exits, unless a descendant that left its group
        // (setsid) still holds it: the verdict is the command's, so wait only briefly for the
        // output still in flight.
        let drain = ctx
            .deadline
            .remaining()
            .unwrap_or_default()
            .min(OUTPUT_DRAIN);
        let _ = pipe_closed.recv_timeout(drain);
    }
    let _ = RUNNING_GROUP.compare_exchange(group, 0, Ordering::SeqCst, Ordering::SeqCst);
    let output = std::mem::take(&mut *output.lock().unwrap_or_else(PoisonError::into_inner));
    match result {
        Err(_) => Ran::Overran,
        Ok(Ok(status)) => Ran::Exited { status, output },
        Ok(Err(e)) => Ran::WaitFailed(e),
    }
}

/// How long the output may still arrive after the command exited.
const OUTPUT_DRAIN: Duration = Duration::from_millis(200);

/// Reads the pipe to its end, keeping the first `keep` bytes and discarding the rest so the
/// command never blocks on a full pipe.
fn collect(reader: &mut impl Read, output: &Mutex<Vec<u8>>, keep: usize) {
    let mut buffer = [0u8; 4096];
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => return,
            Ok(n) => {
                let mut output = output.lock().unwrap_or_else(PoisonError::into_inner);
                let room = keep.saturating_sub(output.len());
                output.extend_from_slice(&buffer[..n.min(room)]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// The exec-mode verdict: healthy on exit 0, with the first line of the command's output.
pub fn run(spec: &CommandCheck, ctx: &Context) -> Outcome {
    let shown = redacted(&spec.argv);
    let (status, output) = match execute(spec, ctx, 1024) {
        Ran::Exited { status, output } => (status, output),
        Ran::NotStarted(why) if spec.argv.is_empty() => {
            return Outcome::unhealthy(format!("command: {why}"));
        }
        Ran::NotStarted(why) => {
            return Outcome::unhealthy(format!("command `{shown}` could not start: {why}"));
        }
        Ran::Overran => {
            return Outcome::unhealthy(format!(
                "command `{shown}` {}",
                ctx.deadline.expired_message()
            ));
        }
        Ran::WaitFailed(e) => return Outcome::unhealthy(format!("command `{shown}`: {e}")),
    };
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
    if status.success() {
        return Outcome::healthy(format!("command `{shown}` exited 0{said}"));
    }
    match (status.code(), status.signal()) {
        (Some(code), _) => Outcome::unhealthy(format!("command `{shown}` exited {code}{said}")),
        (_, Some(signal)) => {
            Outcome::unhealthy(format!("command `{shown}` killed by signal {signal}{said}"))
        }
        _ => Outcome::unhealthy(format!("command `{shown}` ended abnormally{said}")),
    }
}

/// What Docker records for a `HEALTHCHECK CMD` it runs itself: the command's real exit code
/// (128 + the signal when killed, as the runtime reports it) and its stdout and stderr
/// verbatim, at most `keep` bytes of them. A command that cannot start gets Docker's −1 and the
/// reason; one that overruns the deadline is reported by the caller's timeout.
pub fn run_as_engine(spec: &CommandCheck, ctx: &Context, keep: usize) -> (i32, String) {
    match execute(spec, ctx, keep) {
        Ran::Exited { status, output } => {
            let code = status
                .code()
                .or_else(|| status.signal().map(|signal| 128 + signal))
                .unwrap_or(-1);
            (code, String::from_utf8_lossy(&output).into_owned())
        }
        Ran::NotStarted(why) => (-1, format!("command could not start: {why}")),
        Ran::Overran => (-1, ctx.deadline.expired_message()),
        Ran::WaitFailed(e) => (-1, e.to_string()),
    }
}

/// The command line as messages show it, with credentials masked: the value of an option
/// or `KEY=value` whose name says password, secret, token or key, the value following such
/// a bare option, and the password of a URL (`scheme://user:***@host`).
fn redacted(argv: &[String]) -> String {
    let sensitive = |name: &str| {
        let name = name.trim_start_matches('-').to_ascii_lowercase();
        ["pass", "secret", "token", "key", "credential", "auth"]
            .iter()
            .any(|word| name.contains(word))
    };
    let mut shown = Vec::with_capacity(argv.len());
    let mut hide_next = false;
    for arg in argv {
        if std::mem::take(&mut hide_next) {
            shown.push("***".to_string());
            continue;
        }
        if let Some((name, _)) = arg.split_once('=')
            && sensitive(name)
        {
            shown.push(format!("{name}=***"));
        } else if arg.starts_with('-') && sensitive(arg) {
            hide_next = true;
            shown.push(arg.clone());
        } else {
            shown.push(url_password_masked(arg));
        }
    }
    shown.join(" ")
}

fn url_password_masked(arg: &str) -> String {
    let Some(scheme_end) = arg.find("://") else {
        return arg.to_string();
    };
    let authority_start = scheme_end + 3;
    let authority_end = arg[authority_start..]
        .find('/')
        .map_or(arg.len(), |i| authority_start + i);
    match arg[authority_start..authority_end].rfind('@') {
        Some(at) => match arg[authority_start..authority_start + at].find(':') {
            Some(colon) => format!(
                "{}***{}",
                &arg[..authority_start + colon + 1],
                &arg[authority_start + at..]
            ),
            None => arg.to_string(),
        },
        None => arg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_masked_in_the_shown_command_line() {
        let argv = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        assert_eq!(
            redacted(&argv(&[
                "mysql",
                "--password=S3CRET",
                "-u",
                "root",
                "--token",
                "T0K"
            ])),
            "mysql --password=*** -u root --token ***"
        );
        assert_eq!(
            redacted(&argv(&[
                "curl",
                "http://admin:S3CRET@db:80/x",
                "OS_PASSWORD=p",
                "a=b"
            ])),
            "curl http://admin:***@db:80/x OS_PASSWORD=*** a=b"
        );
        assert_eq!(redacted(&argv(&["true"])), "true");
    }
}
