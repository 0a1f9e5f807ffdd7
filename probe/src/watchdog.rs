//! The exec-mode guarantee: one line on stdout and an exit by the deadline, whatever a peer or
//! a blocking system call does. A watchdog thread prints the timeout line and exits if the
//! check has not reported in time; whichever of the two reports first is the only output.

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::checks::kill_running_command;

/// Held while the one report is written; `true` once it has been.
static REPORTED: Mutex<bool> = Mutex::new(false);

/// Time the check gets after the deadline to report its own, more specific, timeout.
const GRACE: Duration = Duration::from_millis(30);

/// Starts the watchdog: at `deadline` (plus a short grace) it writes `timeout_output` and exits 1.
pub fn arm(deadline: Instant, timeout_output: String) {
    std::thread::spawn(move || {
        let wake = deadline + GRACE;
        while let Some(left) = wake
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        {
            std::thread::sleep(left);
        }
        kill_running_command();
        report_and_exit(&timeout_output, 1);
    });
}

/// Writes `output` to stdout unless something was already reported, then exits with `code`.
pub fn report_and_exit(output: &str, code: i32) -> ! {
    // A poisoned lock still guards the flag: a panic elsewhere must not silence the report.
    let mut reported = REPORTED.lock().unwrap_or_else(|p| p.into_inner());
    if !*reported {
        *reported = true;
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(output.as_bytes());
        let _ = stdout.flush();
    }
    std::process::exit(code)
}
