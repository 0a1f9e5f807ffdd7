//! Run statistics per role and their Prometheus text exposition, rendered by hand.

use std::fmt::Write;
use std::time::Duration;

use super::config::Role;
use super::state::{EXIT_CODE_ERROR, Health, Status};

/// Upper bounds (seconds) of the run duration histogram.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
];

/// Counters since start; fixed size whatever the uptime.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunStats {
    pub successes: u64,
    pub failures: u64,
    /// Runs that exceeded the timeout or could not run (exit code -1), also counted as failures.
    pub errors: u64,
    /// Per bucket, not cumulative (made cumulative when rendered).
    buckets: [u64; BUCKETS.len()],
    over_last_bucket: u64,
    sum_seconds: f64,
}

impl RunStats {
    pub fn record(&mut self, duration: Duration, exit_code: i32) {
        if exit_code == 0 {
            self.successes += 1;
        } else {
            self.failures += 1;
        }
        if exit_code == EXIT_CODE_ERROR {
            self.errors += 1;
        }
        let secs = duration.as_secs_f64();
        self.sum_seconds += secs;
        match BUCKETS.iter().position(|&bound| secs <= bound) {
            Some(i) => self.buckets[i] += 1,
            None => self.over_last_bucket += 1,
        }
    }

    pub fn runs(&self) -> u64 {
        self.successes + self.failures
    }
}

/// What one role contributes to `/metrics`.
pub struct RoleMetrics<'a> {
    pub role: Role,
    pub health: &'a Health,
    pub stats: &'a RunStats,
}

/// The Prometheus text format (version 0.0.4) for all configured roles.
pub fn render(roles: &[RoleMetrics]) -> String {
    let mut out = String::with_capacity(4096);
    let mut family =
        |name: &str, kind: &str, help: &str, sample: &dyn Fn(&mut String, &RoleMetrics)| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for role in roles {
                sample(&mut out, role);
            }
        };
    family(
        "healthcheck_status",
        "gauge",
        "1 for the role's current Docker health status (starting, healthy, unhealthy).",
        &|out, m| {
            for status in [Status::Starting, Status::Healthy, Status::Unhealthy] {
                let value = u8::from(m.health.status() == status);
                let _ = writeln!(
                    out,
                    "healthcheck_status{{role=\"{}\",status=\"{}\"}} {value}",
                    m.role.as_str(),
                    status.as_str()
                );
            }
        },
    );
    family(
        "healthcheck_last_exit_code",
        "gauge",
        "Exit code of the latest run: 0 healthy, 1 unhealthy, -1 timed out or could not run.",
        &|out, m| {
            if let Some(last) = m.health.last() {
                let _ = writeln!(
                    out,
                    "healthcheck_last_exit_code{{role=\"{}\"}} {}",
                    m.role.as_str(),
                    last.exit_code
                );
            }
        },
    );
    family(
        "healthcheck_failing_streak",
        "gauge",
        "Consecutive failures counted by Docker's rules (FailingStreak).",
        &|out, m| {
            let _ = writeln!(
                out,
                "healthcheck_failing_streak{{role=\"{}\"}} {}",
                m.role.as_str(),
                m.health.failing_streak()
            );
        },
    );
    family(
        "healthcheck_runs_total",
        "counter",
        "Check runs by result; error runs (timeout, could not run) are also failures.",
        &|out, m| {
            for (result, count) in [
                ("success", m.stats.successes),
                ("failure", m.stats.failures),
                ("error", m.stats.errors),
            ] {
                let _ = writeln!(
                    out,
                    "healthcheck_runs_total{{role=\"{}\",result=\"{result}\"}} {count}",
                    m.role.as_str()
                );
            }
        },
    );
    family(
        "healthcheck_run_duration_seconds",
        "histogram",
        "Wall time of each check run.",
        &|out, m| {
            let role = m.role.as_str();
            let mut cumulative = 0;
            for (bound, count) in BUCKETS.iter().zip(m.stats.buckets) {
                cumulative += count;
                let _ = writeln!(
                    out,
                    "healthcheck_run_duration_seconds_bucket{{role=\"{role}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let runs = m.stats.runs();
            let _ = writeln!(
                out,
                "healthcheck_run_duration_seconds_bucket{{role=\"{role}\",le=\"+Inf\"}} {runs}\n\
                 healthcheck_run_duration_seconds_sum{{role=\"{role}\"}} {}\n\
                 healthcheck_run_duration_seconds_count{{role=\"{role}\"}} {runs}",
                m.stats.sum_seconds
            );
        },
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::state::Timing;

    #[test]
    fn renders_every_family_per_role() {
        let mut health = Health::new(Timing::default());
        let mut stats = RunStats::default();
        for (millis, code) in [(2, 0), (40, 1), (31_000, -1)] {
            let duration = Duration::from_millis(millis);
            health.on_result(Duration::ZERO, duration, code, "x");
            stats.record(duration, code);
        }
        let idle = Health::new(Timing::default());
        let text = render(&[
            RoleMetrics {
                role: Role::Readiness,
                health: &health,
                stats: &stats,
            },
            RoleMetrics {
                role: Role::Startup,
                health: &idle,
                stats: &RunStats::default(),
            },
        ]);
        for line in [
            "# TYPE healthcheck_status gauge",
            "healthcheck_status{role=\"readiness\",status=\"starting\"} 0",
            "healthcheck_status{role=\"readiness\",status=\"unhealthy\"} 0",
            "healthcheck_status{role=\"readiness\",status=\"healthy\"} 1",
            "healthcheck_status{role=\"startup\",status=\"starting\"} 1",
            "healthcheck_last_exit_code{role=\"readiness\"} -1",
            "healthcheck_failing_streak{role=\"readiness\"} 2",
            "healthcheck_runs_total{role=\"readiness\",result=\"success\"} 1",
            "healthcheck_runs_total{role=\"readiness\",result=\"failure\"} 2",
            "healthcheck_runs_total{role=\"readiness\",result=\"error\"} 1",
            "healthcheck_run_duration_seconds_bucket{role=\"readiness\",le=\"0.001\"} 0",
            "healthcheck_run_duration_seconds_bucket{role=\"readiness\",le=\"0.0025\"} 1",
            "healthcheck_run_duration_seconds_bucket{role=\"readiness\",le=\"0.05\"} 2",
            "healthcheck_run_duration_seconds_bucket{role=\"readiness\",le=\"30\"} 2",
            "healthcheck_run_duration_seconds_bucket{role=\"readiness\",le=\"+Inf\"} 3",
            "healthcheck_run_duration_seconds_sum{role=\"readiness\"} 31.042",
            "healthcheck_run_duration_seconds_count{role=\"readiness\"} 3",
            "healthcheck_run_duration_seconds_count{role=\"startup\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(!text.contains("healthcheck_last_exit_code{role=\"startup\"}"));
        assert_eq!(text.matches("# TYPE").count(), 5);
    }
}
