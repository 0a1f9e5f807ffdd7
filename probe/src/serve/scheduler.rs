//! The I/O side of the state machine: one executor thread per role runs its check, one
//! scheduler thread per role arms Docker's timer, and on-demand runs share the same executor.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use healthcheck_spec::Check;

use super::config::Role;
use super::state::{EXIT_CODE_ERROR, MAX_OUTPUT_BYTES};
use super::{Epoch, RoleMonitor};
use crate::checks;
use crate::config::ConfigRoot;
use crate::context::Context;
use crate::{Deadline, Outcome};

/// Checks do TLS handshakes and regex matching; generous for them, small next to a default 8 MiB.
const EXECUTOR_STACK: usize = 512 * 1024;
const SCHEDULER_STACK: usize = 64 * 1024;

/// One finished run as Docker's log records it: exit code and output.
type Recorded = (i32, String);

/// Runs one role's check on its own thread, so a run that overstays its timeout can be
/// reported at the timeout while the check winds down.
pub struct Executor {
    jobs: SyncSender<Deadline>,
    results: Receiver<Recorded>,
    timeout: Duration,
}

/// A `command` check is recorded as Docker records a `HEALTHCHECK CMD`: its own exit code and
/// output. Every other check as Docker records the probe binary running it: 0 or 1 and its
/// one line.
fn run_recorded(check: &Check, ctx: &Context) -> Recorded {
    if let Check::Command(spec) = check {
        return checks::command::run_as_engine(spec, ctx, MAX_OUTPUT_BYTES + 1);
    }
    let outcome = crate::dispatch::run(check, ctx);
    (outcome.exit_code(), format!("{}\n", outcome.line()))
}

/// The container's context; with a service root, configuration is read under the tagged
/// process's root, looked up at every run (the service may have restarted).
fn context(deadline: Deadline, service_root: Option<&str>) -> Result<Context, String> {
    let mut ctx = Context::from_env(deadline);
    if let Some(tag) = service_root {
        ctx.config = ConfigRoot::of_service(&ctx.procfs, tag)?;
    }
    Ok(ctx)
}

fn unhealthy(why: String) -> Recorded {
    let outcome = Outcome::unhealthy(why);
    (outcome.exit_code(), format!("{}\n", outcome.line()))
}

fn internal_error(what: &str) -> Recorded {
    unhealthy(format!("internal error: {what}"))
}

impl Executor {
    /// `service_root`: the tag of the process whose root holds the service's configuration.
    pub fn spawn(
        role: Role,
        check: Check,
        timeout: Duration,
        service_root: Option<String>,
    ) -> Result<Executor, String> {
        let (jobs, job_queue) = sync_channel::<Deadline>(1);
        let (result_sender, results) = sync_channel(1);
        thread::Builder::new()
            .name(format!("check-{}", role.as_str()))
            .stack_size(EXECUTOR_STACK)
            .spawn(move || {
                for deadline in job_queue {
                    let recorded = catch_unwind(AssertUnwindSafe(|| {
                        match context(deadline, service_root.as_deref()) {
                            Ok(ctx) => run_recorded(&check, &ctx),
                            Err(why) => unhealthy(why),
                        }
                    }))
                    .unwrap_or_else(|_| internal_error("the check panicked"));
                    if result_sender.send(recorded).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| format!("cannot start the {} check thread: {e}", role.as_str()))?;
        Ok(Executor {
            jobs,
            results,
            timeout,
        })
    }

    /// One run bounded by the timeout: `None` if it did not finish in time.
    fn run(&mut self) -> Option<Recorded> {
        if self.jobs.send(Deadline::after(self.timeout)).is_err() {
            return Some(internal_error("the check thread is gone"));
        }
        match self.results.recv_timeout(self.timeout) {
            Ok(recorded) => Some(recorded),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(internal_error("the check thread is gone")),
        }
    }

    /// Waits for a timed-out run to end, as Docker waits for a timed-out probe to exit, so
    /// runs never pile up.
    fn wait_idle(&mut self) {
        let _ = self.results.recv();
    }
}

/// Runs the role's check once (waiting for any run in flight first) and records the result.
fn run_once(epoch: &Epoch, monitor: &RoleMonitor, executor: &mut Executor) {
    let started = Instant::now();
    let outcome = executor.run();
    let ended = Instant::now();
    let took = ended - started;
    let (start, end) = (epoch.offset(started), epoch.offset(ended));
    let timeout = monitor.config.timing.timeout;
    match outcome {
        Some((code, output)) if took < timeout => {
            monitor.update(|state| {
                state.health.on_result(start, end, code, &output);
                state.stats.record(took, code);
            });
        }
        finished => {
            monitor.update(|state| {
                state.health.on_timeout(start, end);
                state.stats.record(took, EXIT_CODE_ERROR);
            });
            if finished.is_none() {
                executor.wait_idle();
            }
        }
    }
}

/// On-demand mode: runs the check now unless a run started less than one interval ago; a
/// request arriving during a run waits for that run instead of starting another.
pub fn run_on_demand(epoch: &Epoch, monitor: &RoleMonitor) {
    let mut executor = monitor.executor.lock().unwrap_or_else(|e| e.into_inner());
    let now = epoch.offset(Instant::now());
    let interval = monitor.config.timing.interval;
    let fresh = monitor.read(|state| {
        state
            .health
            .last()
            .is_some_and(|last| now < last.start + interval)
    });
    if !fresh {
        run_once(epoch, monitor, &mut executor);
    }
}

/// Starts the scheduler thread of a role that runs on Docker's timer.
pub fn spawn(
    epoch: Epoch,
    monitor: Arc<RoleMonitor>,
    shutdown: Arc<Shutdown>,
) -> Result<(), String> {
    let role = monitor.config.role;
    thread::Builder::new()
        .name(format!("schedule-{}", role.as_str()))
        .stack_size(SCHEDULER_STACK)
        .spawn(move || schedule(&epoch, &monitor, &shutdown))
        .map(drop)
        .map_err(|e| format!("cannot start the {} scheduler: {e}", role.as_str()))
}

/// Docker's monitor loop: the timer is re-armed only after each run ends.
fn schedule(epoch: &Epoch, monitor: &RoleMonitor, shutdown: &Shutdown) {
    let mut next = monitor.read(|state| state.health.first_run_at());
    loop {
        if shutdown.sleep_until(epoch.instant(next)) {
            return;
        }
        {
            let mut executor = monitor.executor.lock().unwrap_or_else(|e| e.into_inner());
            run_once(epoch, monitor, &mut executor);
        }
        let (done, delay) = monitor.read(|state| {
            let now = epoch.offset(Instant::now());
            // A startup probe is not asked again once it passed: no point running it.
            let done = monitor.config.role == Role::Startup && state.health.ever_healthy();
            (done, now + state.health.next_delay(now))
        });
        if done {
            return;
        }
        next = delay;
    }
}

/// Wakes sleeping schedulers when the server stops.
#[derive(Default)]
pub struct Shutdown {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Shutdown {
    pub fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.wake.notify_all();
    }

    /// Sleeps until `at`; true if stopped meanwhile.
    fn sleep_until(&self, at: Instant) -> bool {
        let mut stopped = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if *stopped {
                return true;
            }
            let left = at.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            stopped = self
                .wake
                .wait_timeout(stopped, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::config::RoleConfig;
    use crate::serve::state::{LogEntry, Timing};
    use healthcheck_spec::CommandCheck;

    fn monitor(argv: &[&str], timing: Timing) -> Arc<RoleMonitor> {
        let config = RoleConfig {
            role: Role::Liveness,
            check: Check::Command(CommandCheck {
                argv: argv.iter().map(|a| a.to_string()).collect(),
            }),
            timing,
            on_demand: false,
            service_root: None,
        };
        Arc::new(RoleMonitor::new(config).unwrap())
    }

    /// Schedules `monitor` until it has `runs` results.
    fn schedule_runs(monitor: &Arc<RoleMonitor>, runs: usize) -> Vec<LogEntry> {
        let shutdown = Arc::new(Shutdown::default());
        spawn(Epoch::now(), Arc::clone(monitor), Arc::clone(&shutdown)).unwrap();
        let started = Instant::now();
        while monitor.read(|state| state.health.log().len()) < runs {
            assert!(started.elapsed() < Duration::from_secs(20), "too few runs");
            thread::sleep(Duration::from_millis(10));
        }
        shutdown.stop();
        monitor.snapshot().health.log().iter().cloned().collect()
    }

    #[test]
    fn the_interval_runs_from_the_end_of_one_run_to_the_start_of_the_next() {
        let interval = Duration::from_millis(150);
        let timing = Timing {
            interval,
            ..Timing::default()
        };
        let log = schedule_runs(&monitor(&["sleep", "0.1"], timing), 3);
        assert!(
            log[0].start >= interval,
            "first run one interval after start"
        );
        for pair in log.windows(2) {
            assert!(pair[0].end - pair[0].start >= Duration::from_millis(100));
            assert!(pair[1].start >= pair[0].end + interval, "{pair:?}");
        }
        assert!(log.iter().all(|entry| entry.exit_code == 0));
    }

    #[test]
    fn a_run_reaching_the_timeout_is_a_docker_timeout() {
        let timing = Timing {
            interval: Duration::from_millis(10),
            timeout: Duration::from_millis(200),
            retries: 1,
            ..Timing::default()
        };
        let monitor = monitor(&["sleep", "5"], timing);
        let log = schedule_runs(&monitor, 2);
        for entry in &log {
            assert_eq!(entry.exit_code, EXIT_CODE_ERROR);
            assert_eq!(entry.output, "Health check exceeded timeout (200ms)");
            let took = entry.end - entry.start;
            assert!(
                took >= Duration::from_millis(200) && took < Duration::from_secs(4),
                "{took:?}"
            );
        }
        let state = monitor.snapshot();
        assert_eq!(state.stats.errors, state.stats.runs());
    }

    #[test]
    fn a_command_is_recorded_with_its_exit_code_and_both_streams_cut_at_4096_bytes() {
        let timing = Timing {
            interval: Duration::from_millis(10),
            ..Timing::default()
        };
        let script =
            "head -c 3000 /dev/zero | tr '\\0' o; head -c 3000 /dev/zero | tr '\\0' e >&2; exit 3";
        let log = schedule_runs(&monitor(&["sh", "-c", script], timing), 1);
        assert_eq!(log[0].exit_code, 3);
        assert_eq!(
            log[0].output,
            format!("{}{}...", "o".repeat(3000), "e".repeat(1096))
        );
        let log = schedule_runs(&monitor(&["sh", "-c", "echo one; echo two >&2"], timing), 1);
        assert_eq!(
            (log[0].exit_code, log[0].output.as_str()),
            (0, "one\ntwo\n")
        );
        let log = schedule_runs(&monitor(&["sh", "-c", "kill -9 $$"], timing), 1);
        assert_eq!(
            log[0].exit_code, 137,
            "128 + SIGKILL, as the runtime reports it"
        );
    }

    #[test]
    fn a_service_root_is_looked_up_at_every_run() {
        let tag = format!("absent-{}", std::process::id());
        let monitor = Arc::new(
            RoleMonitor::new(RoleConfig {
                role: Role::Readiness,
                check: Check::Profile(healthcheck_spec::ProfileCheck {
                    name: "keystone".to_string(),
                    args: Vec::new(),
                }),
                timing: Timing {
                    interval: Duration::from_millis(10),
                    ..Timing::default()
                },
                on_demand: false,
                service_root: Some(tag.clone()),
            })
            .unwrap(),
        );
        let log = schedule_runs(&monitor, 2);
        for entry in log {
            assert_eq!(entry.exit_code, 1);
            assert!(
                entry.output.starts_with(&format!(
                    "unhealthy: no process has /run/openstack-healthcheck/service/{tag} in its root"
                )),
                "{}",
                entry.output
            );
        }
    }

    #[test]
    fn shutdown_wakes_a_sleeper() {
        let shutdown = Arc::new(Shutdown::default());
        let sleeper = Arc::clone(&shutdown);
        let started = Instant::now();
        let handle =
            thread::spawn(move || sleeper.sleep_until(Instant::now() + Duration::from_secs(30)));
        thread::sleep(Duration::from_millis(20));
        shutdown.stop();
        assert!(handle.join().unwrap());
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(!Shutdown::default().sleep_until(Instant::now()));
    }
}
