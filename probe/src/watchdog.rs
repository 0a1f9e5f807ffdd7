//! The exec-mode guarantee: one result and an exit by the deadline, whatever a peer or a
//! blocking system call does. A timer aimed at the main thread raises `SIGALRM` at the deadline
//! (plus a short grace); the handler writes the timeout report, rendered in advance and kept up
//! to date by the check, and exits. A timer instead of a watchdog thread: a second thread was a
//! tenth of an exec check's time (BENCHMARKS.md, "Probe exec mode"). The report is claimed once:
//! whichever side claims it first is the only output, never both, never interleaved.

use std::io::Write;
use std::ptr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use crate::checks::kill_running_command;

/// `true` once a side has claimed the one report.
static REPORTED: AtomicBool = AtomicBool::new(false);
/// The report the deadline writes; null until armed.
static TIMEOUT_REPORT: AtomicPtr<Report> = AtomicPtr::new(ptr::null_mut());
/// The thread the timer signals, the only one that frees a replaced report.
static MAIN_THREAD: OnceLock<ThreadId> = OnceLock::new();

/// The run's label and the deadline's own words (`timed out after 9s`), for the default report.
static RUN_LABEL: OnceLock<(String, String)> = OnceLock::new();

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

/// When the deadline's report is written, for a report that says how long the run took.
pub fn fires_at(deadline: Instant) -> Instant {
    deadline + GRACE
}

/// Arms the deadline from the calling (main) thread: at [`fires_at`]`(deadline)` the running
/// command is killed and `timeout_report` (or its latest [`set_timeout_report`]) is written.
/// Without a timer there is no deadline, so failing to arm one is the run's result.
pub fn arm(deadline: Instant, timeout_report: Report) {
    let _ = MAIN_THREAD.set(std::thread::current().id());
    set_timeout_report(timeout_report);
    if let Err(e) = start_timer(fires_at(deadline).saturating_duration_since(Instant::now())) {
        report_and_exit(
            &format!(
                "{}\n",
                crate::Outcome::unhealthy(format!("cannot arm the run's deadline: {e}")).line()
            ),
            1,
        );
    }
}

/// Arms the deadline with the default report, `unhealthy: LABEL timed out after …`, which
/// [`doing`] keeps naming the step the check is in.
pub fn arm_labelled(deadline: Instant, label: &str, expired: String) {
    arm(deadline, labelled_report(label, &expired, None));
    let _ = RUN_LABEL.set((label.to_string(), expired));
}

/// Names the step the check is in (`GET http://localhost:5000/`) in the deadline's default
/// report, so that a hang says what hung: `unhealthy: keystone: GET http://localhost:5000/
/// timed out after 9s`. Nothing without [`arm_labelled`] (serve, or a check with its own report).
pub fn doing(step: &str) {
    if let Some((label, expired)) = RUN_LABEL.get() {
        set_timeout_report(labelled_report(label, expired, Some(step)));
    }
}

fn labelled_report(label: &str, expired: &str, step: Option<&str>) -> Report {
    let message = match step {
        Some(step) => format!("{label}: {step} {expired}"),
        None => format!("{label} {expired}"),
    };
    Report::stdout(
        format!("{}\n", crate::Outcome::unhealthy(message).line()),
        1,
    )
}

/// Replaces the report the deadline writes (a check that can say how far it got).
pub fn set_timeout_report(report: Report) {
    let old = TIMEOUT_REPORT.swap(Box::into_raw(Box::new(report)), Ordering::SeqCst);
    let on_main = MAIN_THREAD.get() == Some(&std::thread::current().id());
    // The handler runs on the main thread only, so on it no handler is reading `old` now.
    // Elsewhere one may be, and the old report is left allocated.
    if !old.is_null() && on_main {
        // SAFETY: `old` came from Box::into_raw above and is no longer reachable.
        drop(unsafe { Box::from_raw(old) });
    }
}

/// Starts a one-shot timer that signals the calling thread after `wait`.
fn start_timer(wait: Duration) -> std::io::Result<()> {
    let last_os_error = |result: libc::c_int| {
        if result == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    // SAFETY: plain system calls on zeroed or fully initialised C structs; the handler only
    // uses async-signal-safe operations (atomics, write, kill, _exit).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_deadline as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        last_os_error(libc::sigaction(libc::SIGALRM, &action, ptr::null_mut()))?;
        // A signal mask is inherited across exec: a parent that blocked SIGALRM must not
        // disarm the deadline.
        let mut alarm: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut alarm);
        libc::sigaddset(&mut alarm, libc::SIGALRM);
        match libc::pthread_sigmask(libc::SIG_UNBLOCK, &alarm, ptr::null_mut()) {
            0 => {}
            e => return Err(std::io::Error::from_raw_os_error(e)),
        }
        let mut event: libc::sigevent = std::mem::zeroed();
        event.sigev_notify = libc::SIGEV_THREAD_ID;
        event.sigev_signo = libc::SIGALRM;
        event.sigev_notify_thread_id = libc::gettid();
        let mut timer: libc::timer_t = ptr::null_mut();
        last_os_error(libc::timer_create(
            libc::CLOCK_MONOTONIC,
            &mut event,
            &mut timer,
        ))?;
        let mut when: libc::itimerspec = std::mem::zeroed();
        // A zero value disarms a timer: a deadline already past fires at once instead.
        let wait = wait.max(Duration::from_nanos(1));
        when.it_value.tv_sec = wait.as_secs() as libc::time_t;
        when.it_value.tv_nsec = wait.subsec_nanos().into();
        last_os_error(libc::timer_settime(timer, 0, &when, ptr::null_mut()))
    }
}

extern "C" fn on_deadline(_signal: libc::c_int) {
    if REPORTED.swap(true, Ordering::SeqCst) {
        // The check claimed the report first and is writing it.
        return;
    }
    kill_running_command();
    // SAFETY: set by `arm` before the timer starts, freed only by the thread this runs on.
    let report = unsafe { &*TIMEOUT_REPORT.load(Ordering::SeqCst) };
    write_all(libc::STDERR_FILENO, report.stderr.as_bytes());
    write_all(libc::STDOUT_FILENO, report.stdout.as_bytes());
    // SAFETY: _exit is async-signal-safe; nothing is buffered, the report was written directly.
    unsafe { libc::_exit(report.code) }
}

/// write(2) until done or failed: what a signal handler may use.
fn write_all(fd: libc::c_int, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is a valid buffer of its length.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n > 0 {
            bytes = &bytes[n as usize..];
        } else if n == 0
            || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
        {
            return;
        }
    }
}

/// Writes `output` to stdout unless something was already reported, then exits with `code`.
pub fn report_and_exit(output: &str, code: i32) -> ! {
    finish(Report::stdout(output.to_string(), code))
}

/// Writes the report unless another side claimed the report first, then exits with its code.
pub fn finish(report: Report) -> ! {
    if REPORTED.swap(true, Ordering::SeqCst) {
        // Another thread (a panic's report) claimed it and exits the process with its own code.
        loop {
            std::thread::park();
        }
    }
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(report.stderr.as_bytes());
    let _ = stderr.flush();
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(report.stdout.as_bytes());
    let _ = stdout.flush();
    std::process::exit(report.code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_report_names_the_step_that_hung() {
        let report = |step| labelled_report("keystone", "timed out after 9s", step).stdout;
        assert_eq!(report(None), "unhealthy: keystone timed out after 9s\n");
        assert_eq!(
            report(Some("GET http://localhost:5000/")),
            "unhealthy: keystone: GET http://localhost:5000/ timed out after 9s\n"
        );
    }
}
