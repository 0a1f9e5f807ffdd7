//! The exec-mode guarantee: one result and an exit by the deadline, whatever a peer or a
//! blocking system call does. A watchdog thread reports the timeout and exits if the check has
//! not reported in time. A result (stderr text, stdout text, exit code) is written whole under
//! one lock, so whichever of the two sides takes it first is the only output: never both, never
//! interleaved.

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::checks::kill_running_command;

/// Held while the one report is written; `true` once it has been.
static REPORTED: Mutex<bool> = Mutex::new(false);

/// Time the check gets after the deadline to report its own, more specific, timeout.
const GRACE: Duration = Duration::from_millis(30);

/// Everything a run prints, and how it exits.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub stdout: String,
    /// Written before `stdout` (curl's order); empty for nothing.
    pub stderr: String,
    pub code: i32,
}

impl Report {
    pub fn stdout(stdout: String, code: i32) -> Report {
        Report {
            stdout,
            stderr: String::new(),
            code,
        }
    }
}

/// Starts the watchdog: at `deadline` (plus a short grace) it builds the timeout report with
/// `timeout_report`, at that moment (so it can say how far the check got), and exits with it.
pub fn arm(deadline: Instant, timeout_report: impl FnOnce() -> Report + Send + 'static) {
    std::thread::spawn(move || {
        let wake = deadline + GRACE;
        while let Some(left) = wake
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        {
            std::thread::sleep(left);
        }
        kill_running_command();
        finish(timeout_report());
    });
}

/// Writes `output` to stdout unless something was already reported, then exits with `code`.
pub fn report_and_exit(output: &str, code: i32) -> ! {
    finish(Report::stdout(output.to_string(), code))
}

/// Writes the report unless another one was already written, then exits with its code.
pub fn finish(report: Report) -> ! {
    // A poisoned lock still guards the flag: a panic elsewhere must not silence the report.
    let mut reported = REPORTED.lock().unwrap_or_else(|p| p.into_inner());
    if !*reported {
        *reported = true;
        let mut stderr = std::io::stderr().lock();
        let _ = stderr.write_all(report.stderr.as_bytes());
        let _ = stderr.flush();
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(report.stdout.as_bytes());
        let _ = stdout.flush();
    }
    std::process::exit(report.code)
}
