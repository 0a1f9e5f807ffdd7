//! The check primitives, one module per kind.

pub mod command;
mod file;
pub mod http;
mod port;
mod process;
mod socket;
mod tcp;

pub use command::kill_running_command;
use healthcheck_spec::{Check, limits};
use regex_lite::{Regex, RegexBuilder};

use crate::Outcome;
use crate::context::Context;
use crate::procfs::Process;

/// Runs a primitive check. The composite kinds (`profile`, `all_of`) run checks of their own and
/// are the dispatcher's ([`crate::dispatch::run`]), so this layer never reaches up to the
/// profiles.
pub fn run(check: &Check, ctx: &Context) -> Outcome {
    match check {
        Check::Http(spec) => http::run(spec, ctx),
        Check::Tcp(spec) => tcp::run(spec, ctx),
        Check::Port(spec) => port::run(spec, port::Mode::Port, ctx),
        Check::Listen(spec) => port::run(spec, port::Mode::Listen, ctx),
        Check::Socket(spec) => socket::run(spec, ctx),
        Check::File(spec) => file::run(spec),
        Check::Process(spec) => process::run(spec, ctx),
        Check::Command(spec) => command::run(spec, ctx),
        Check::Profile(_) | Check::AllOf(_) => Outcome::unhealthy(format!(
            "a `{}` check is not a primitive check",
            check.kind()
        )),
    }
}

/// Whether any process (other than this one) has a command line matching `pattern`, as the
/// TripleO scripts' `pgrep -f` branch tests.
pub fn is_running(pattern: &str, ctx: &Context) -> bool {
    processes_matching(pattern, ctx).is_ok()
}

/// The processes whose full command line matches `pattern`, or the outcome explaining why
/// there are none.
fn processes_matching(pattern: &str, ctx: &Context) -> Result<Vec<Process>, Outcome> {
    let regex = process_pattern(pattern).map_err(Outcome::unhealthy)?;
    let found = ctx.procfs.matching_processes(&regex).map_err(|e| {
        Outcome::unhealthy(format!(
            "cannot list processes in {}: {e}",
            ctx.procfs.root().display()
        ))
    })?;
    if found.is_empty() {
        return Err(Outcome::unhealthy(format!(
            "no process matches `{pattern}`"
        )));
    }
    Ok(found)
}

/// A process pattern compiled as `pgrep -f` reads it (POSIX regexec lets `.` match the
/// newlines of command lines), within the size bounds of [`limits`].
pub fn process_pattern(pattern: &str) -> Result<Regex, String> {
    bounded_regex(pattern, "process pattern", true)
}

/// Compiles `pattern` within [`limits`]: a long or explosive pattern is an error message,
/// never an allocation that aborts the probe.
pub fn bounded_regex(pattern: &str, what: &str, dot_all: bool) -> Result<Regex, String> {
    let shown = || match pattern.char_indices().nth(80) {
        Some((at, _)) => format!("{}...", &pattern[..at]),
        None => pattern.to_string(),
    };
    if pattern.len() > limits::MAX_PATTERN_BYTES {
        return Err(format!(
            "invalid {what} `{}`: {} bytes, more than the {} allowed",
            shown(),
            pattern.len(),
            limits::MAX_PATTERN_BYTES
        ));
    }
    RegexBuilder::new(pattern)
        .dot_matches_new_line(dot_all)
        .size_limit(limits::MAX_COMPILED_PATTERN_BYTES)
        .build()
        .map_err(|e| format!("invalid {what} `{}`: {e}", shown()))
}

/// Every pattern of `check` compiles within bounds (so `serve` can refuse it at start).
pub fn compile_patterns(check: &Check) -> Result<(), String> {
    match check {
        Check::AllOf(members) => members.iter().try_for_each(compile_patterns),
        Check::Process(p) => process_pattern(&p.pattern).map(drop),
        Check::Port(p) | Check::Listen(p) => process_pattern(&p.process).map(drop),
        Check::Socket(s) => process_pattern(&s.process).map(drop),
        Check::Http(h) => h
            .body_regex
            .as_deref()
            .map_or(Ok(()), |r| http::body_regex(r).map(drop)),
        Check::Tcp(_) | Check::File(_) | Check::Command(_) | Check::Profile(_) => Ok(()),
    }
}

fn pid_list(processes: &[&Process]) -> String {
    processes
        .iter()
        .map(|p| p.pid.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Turns a silent "unhealthy" into an actionable one when `/proc/PID/fd` could not be read:
/// the check must run as the service's user (TripleO's sudo/--user root saga).
fn unreadable_note(unreadable: &[&Process]) -> String {
    if unreadable.is_empty() {
        return String::new();
    }
    format!(
        " (cannot read the open files of pid {}: permission denied; run the check as the service's user)",
        pid_list(unreadable)
    )
}
