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
    let shown = redacted(&spec.argv);
    let mut child = match Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        // Through a pipe rather than inherited: a daemonized grandchild must not hold the
        // probe's own stderr open (and its reader waiting) after the probe has exited.
        .stderr(Stdio::piped())
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
    let mut stderr = child.stderr.take().expect("stderr is piped");
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::stderr()));
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
