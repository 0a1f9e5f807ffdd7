//! Docker's health state machine (moby `daemon/health.go`), pure: times are offsets from the
//! moment monitoring started, so tests drive it with a scripted clock.

use std::collections::VecDeque;
use std::time::Duration;

use healthcheck_spec::text::truncate_within;

/// Docker keeps the newest 5 results.
pub const MAX_LOG_ENTRIES: usize = 5;
/// Docker keeps the first 4096 bytes of a result's output and appends `...`.
pub const MAX_OUTPUT_BYTES: usize = 4096;
/// The exit code Docker records for a probe that timed out or could not run.
pub const EXIT_CODE_ERROR: i32 = -1;

/// Docker's per-check timing, with Docker's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub start_interval: Duration,
    pub retries: u32,
}

impl Default for Timing {
    fn default() -> Self {
        use healthcheck_spec::docker;
        Timing {
            interval: docker::DEFAULT_INTERVAL.0,
            timeout: docker::DEFAULT_TIMEOUT.0,
            start_period: docker::DEFAULT_START_PERIOD.0,
            start_interval: docker::DEFAULT_START_INTERVAL.0,
            retries: docker::DEFAULT_RETRIES,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Starting,
    Healthy,
    Unhealthy,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Starting => "starting",
            Status::Healthy => "healthy",
            Status::Unhealthy => "unhealthy",
        }
    }
}

/// One finished run, as Docker's `HealthcheckResult`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub start: Duration,
    pub end: Duration,
    pub exit_code: i32,
    pub output: String,
}

/// `Health` of one monitored check: status, failing streak and the last results.
#[derive(Clone, Debug)]
pub struct Health {
    timing: Timing,
    status: Status,
    failing_streak: u32,
    ever_healthy: bool,
    log: VecDeque<LogEntry>,
}

impl Health {
    /// The state at container start: `starting`, streak 0, no log.
    pub fn new(timing: Timing) -> Self {
        Health {
            timing,
            status: Status::Starting,
            failing_streak: 0,
            ever_healthy: false,
            log: VecDeque::with_capacity(MAX_LOG_ENTRIES),
        }
    }

    pub fn status(&self) -> Status {
        self.status
    }

    pub fn failing_streak(&self) -> u32 {
        self.failing_streak
    }

    /// Whether any run has succeeded since start (what a startup probe waits for).
    pub fn ever_healthy(&self) -> bool {
        self.ever_healthy
    }

    /// Oldest first, at most [`MAX_LOG_ENTRIES`].
    pub fn log(&self) -> &VecDeque<LogEntry> {
        &self.log
    }

    pub fn last(&self) -> Option<&LogEntry> {
        self.log.back()
    }

    /// Records a run that started and ended at the given offsets (`handleProbeResult`).
    pub fn on_result(&mut self, start: Duration, end: Duration, exit_code: i32, output: &str) {
        if self.log.len() == MAX_LOG_ENTRIES {
            self.log.pop_front();
        }
        self.log.push_back(LogEntry {
            start,
            end,
            exit_code,
            output: truncate_output(output),
        });
        if exit_code == 0 {
            self.failing_streak = 0;
            self.status = Status::Healthy;
            self.ever_healthy = true;
            return;
        }
        // Failures inside the start period do not count while still starting.
        if self.status == Status::Starting && start < self.timing.start_period {
            return;
        }
        self.failing_streak += 1;
        if self.failing_streak >= self.timing.retries {
            self.status = Status::Unhealthy;
        }
    }

    /// Records a run that exceeded the timeout, as Docker words it.
    pub fn on_timeout(&mut self, start: Duration, end: Duration) {
        let output = format!(
            "Health check exceeded timeout ({})",
            healthcheck_spec::duration::DockerDuration(self.timing.timeout)
        );
        self.on_result(start, end, EXIT_CODE_ERROR, &output);
    }

    /// How long to wait after a run (or the start) at offset `now`, as moby's `getInterval`
    /// (Docker 25+): the start interval while starting inside the start period, else the
    /// interval. Docker 20.10 has no start interval: `startInterval` = `interval` gives its timing.
    pub fn next_delay(&self, now: Duration) -> Duration {
        if self.status == Status::Starting && now < self.timing.start_period {
            return self.timing.start_interval;
        }
        self.timing.interval
    }

    /// When the first run happens: one delay after start, with no jitter (as Docker).
    pub fn first_run_at(&self) -> Duration {
        self.next_delay(Duration::ZERO)
    }
}

/// The first [`MAX_OUTPUT_BYTES`] bytes (at a character boundary), then `...` if cut.
fn truncate_output(output: &str) -> String {
    let mut kept = output.to_string();
    if truncate_within(&mut kept, MAX_OUTPUT_BYTES) {
        kept.push_str("...");
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    fn timing(retries: u32, start_period: u64) -> Timing {
        Timing {
            retries,
            start_period: s(start_period),
            ..Timing::default()
        }
    }

    /// Feeds results one second long, starting at the given offsets.
    fn feed(health: &mut Health, runs: &[(u64, i32)]) {
        for &(start, code) in runs {
            health.on_result(s(start), s(start + 1), code, "out");
        }
    }

    #[test]
    fn starts_starting_with_no_streak() {
        let health = Health::new(Timing::default());
        assert_eq!(health.status(), Status::Starting);
        assert_eq!(health.failing_streak(), 0);
        assert!(health.log().is_empty() && !health.ever_healthy());
    }

    #[test]
    fn becomes_unhealthy_after_retries_consecutive_failures() {
        let mut health = Health::new(timing(3, 0));
        feed(&mut health, &[(30, 1), (61, 1)]);
        assert_eq!(health.status(), Status::Starting);
        assert_eq!(health.failing_streak(), 2);
        feed(&mut health, &[(92, 1)]);
        assert_eq!(health.status(), Status::Unhealthy);
        assert_eq!(health.failing_streak(), 3);
        feed(&mut health, &[(123, 1)]);
        assert_eq!(health.failing_streak(), 4);
    }

    #[test]
    fn any_success_resets_the_streak_and_is_healthy() {
        let mut health = Health::new(timing(2, 0));
        feed(&mut health, &[(30, 1), (61, 1)]);
        assert_eq!(health.status(), Status::Unhealthy);
        feed(&mut health, &[(92, 0)]);
        assert_eq!(health.status(), Status::Healthy);
        assert_eq!(health.failing_streak(), 0);
        assert!(health.ever_healthy());
        feed(&mut health, &[(123, 1)]);
        assert_eq!(
            health.status(),
            Status::Healthy,
            "one failure of two retries"
        );
        assert_eq!(health.failing_streak(), 1);
    }

    #[test]
    fn failures_inside_the_start_period_do_not_count_while_starting() {
        let mut health = Health::new(timing(1, 60));
        feed(&mut health, &[(5, 1), (11, -1), (59, 1)]);
        assert_eq!(health.status(), Status::Starting);
        assert_eq!(health.failing_streak(), 0);
        assert_eq!(health.log().len(), 3, "still logged");
        // Judged by the run's start: a run starting at the period's end counts.
        feed(&mut health, &[(60, 1)]);
        assert_eq!(health.status(), Status::Unhealthy);
    }

    #[test]
    fn the_first_success_ends_the_start_period() {
        let mut health = Health::new(timing(1, 60));
        feed(&mut health, &[(5, 0), (10, 1)]);
        assert_eq!(
            health.status(),
            Status::Unhealthy,
            "counted inside the period"
        );
        assert_eq!(health.failing_streak(), 1);
    }

    #[test]
    fn timeouts_are_failures_with_exit_code_minus_one() {
        let mut health = Health::new(Timing {
            retries: 1,
            timeout: Duration::from_millis(1500),
            ..Timing::default()
        });
        health.on_timeout(s(30), s(31));
        let entry = health.last().unwrap();
        assert_eq!(entry.exit_code, -1);
        assert_eq!(entry.output, "Health check exceeded timeout (1500ms)");
        assert_eq!((entry.start, entry.end), (s(30), s(31)));
        assert_eq!(health.status(), Status::Unhealthy);
    }

    #[test]
    fn keeps_the_newest_five_results_oldest_first() {
        let mut health = Health::new(Timing::default());
        feed(
            &mut health,
            &[(1, 0), (2, 1), (3, 0), (4, 1), (5, 0), (6, 1), (7, 0)],
        );
        let starts: Vec<_> = health.log().iter().map(|e| e.start.as_secs()).collect();
        assert_eq!(starts, [3, 4, 5, 6, 7]);
        for i in 0..1000 {
            feed(&mut health, &[(i, 0)]);
        }
        assert_eq!(health.log().len(), MAX_LOG_ENTRIES);
    }

    #[test]
    fn output_is_cut_at_4096_bytes_on_a_char_boundary() {
        let mut health = Health::new(Timing::default());
        health.on_result(s(0), s(1), 1, &"x".repeat(5000));
        let output = &health.last().unwrap().output;
        assert_eq!(output.len(), 4096 + 3);
        assert!(output.ends_with("x..."));
        health.on_result(s(0), s(1), 1, &format!("x{}", "é".repeat(3000)));
        let output = &health.last().unwrap().output;
        assert!(output.len() <= 4096 + 3 && output.ends_with("é..."));
        health.on_result(s(0), s(1), 0, &"y".repeat(4096));
        assert_eq!(
            health.last().unwrap().output.len(),
            4096,
            "exactly the limit is kept whole"
        );
    }

    #[test]
    fn interval_without_a_start_period() {
        let mut health = Health::new(timing(3, 0));
        assert_eq!(health.next_delay(s(0)), s(30));
        feed(&mut health, &[(30, 0)]);
        assert_eq!(health.next_delay(s(31)), s(30));
    }

    #[test]
    fn start_interval_inside_the_start_period_while_starting() {
        let mut health = Health::new(timing(3, 12));
        assert_eq!(health.next_delay(s(0)), s(5));
        assert_eq!(health.next_delay(s(6)), s(5));
        // As moby's getInterval: the start interval even when the period ends before the tick.
        assert_eq!(health.next_delay(s(9)), s(5));
        assert_eq!(health.next_delay(s(12)), s(30), "period over");
        feed(&mut health, &[(5, 0)]);
        assert_eq!(
            health.next_delay(s(6)),
            s(30),
            "healthy: no longer starting"
        );
    }

    #[test]
    fn first_run_is_one_delay_after_start_without_jitter() {
        let health = Health::new(timing(3, 0));
        assert_eq!(health.first_run_at(), s(30));
        let health = Health::new(timing(3, 60));
        assert_eq!(health.first_run_at(), s(5));
    }
}
