//! What the endpoints say: the probe verdict per role and the `docker inspect`-shaped JSON.

use std::time::{SystemTime, UNIX_EPOCH};

use std::collections::BTreeMap;

use serde::Serialize;

use super::config::Role;
use super::state::{Health, Status};
use super::{App, Epoch, RoleMonitor};

/// A probe endpoint's verdict: 200 when `ok`, else 503; `line` is the one-line body.
#[derive(Debug, PartialEq, Eq)]
pub struct Verdict {
    pub ok: bool,
    pub line: String,
}

/// The monitor answering `role`'s probe: the startup probe falls back to liveness (it passes
/// once the container was healthy once, which is what a startup probe waits for).
pub fn answering(app: &App, role: Role) -> Option<(&RoleMonitor, &'static str)> {
    match (app.monitor(role), role) {
        (Some(monitor), _) => Some((monitor, "")),
        (None, Role::Startup) => app.monitor(Role::Liveness).map(|m| (m, " (from liveness)")),
        (None, _) => None,
    }
}

/// Liveness passes unless unhealthy (Docker's `starting` is not a failure, and a liveness probe
/// must not kill a starting container); readiness only when healthy; startup once healthy once.
pub fn verdict(role: Role, health: &Health, note: &str) -> Verdict {
    let ok = match role {
        Role::Liveness => health.status() != Status::Unhealthy,
        Role::Readiness => health.status() == Status::Healthy,
        Role::Startup => health.ever_healthy(),
    };
    let last = health
        .last()
        .map_or("no result yet", |entry| entry.output.trim());
    Verdict {
        ok,
        line: format!(
            "{}{note} {}: {}",
            role.as_str(),
            health.status().as_str(),
            first_line(last)
        ),
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

/// `docker inspect`'s `.State.Health`, field for field and in its order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthDoc {
    pub status: String,
    pub failing_streak: u32,
    pub log: Vec<LogDoc>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LogDoc {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

/// `GET /health`: each configured role (by name) as `docker inspect`'s `.State.Health`.
pub fn health_json(app: &App) -> String {
    let roles: BTreeMap<&str, HealthDoc> = app
        .monitors
        .iter()
        .map(|monitor| {
            let doc = monitor.read(|state| health_doc(&app.epoch, &state.health));
            (monitor.config.role.as_str(), doc)
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&roles).unwrap_or_default();
    text.push('\n');
    text
}

fn health_doc(epoch: &Epoch, health: &Health) -> HealthDoc {
    HealthDoc {
        status: health.status().as_str().to_string(),
        failing_streak: health.failing_streak(),
        log: health
            .log()
            .iter()
            .map(|entry| LogDoc {
                start: rfc3339(epoch.wall(entry.start)),
                end: rfc3339(epoch.wall(entry.end)),
                exit_code: entry.exit_code,
                output: entry.output.clone(),
            })
            .collect(),
    }
}

/// UTC as Go's `time.RFC3339Nano` prints Docker's timestamps: the fraction's trailing zeros
/// trimmed, no fraction at all on a whole second.
pub fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    let nanos = format!("{:09}", since.subsec_nanos());
    let fraction = nanos.trim_end_matches('0');
    let dot = if fraction.is_empty() { "" } else { "." };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}{dot}{fraction}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
    )
}

/// Howard Hinnant's days-to-civil: days since 1970-01-01 to (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::serve::state::Timing;

    #[test]
    fn formats_go_rfc3339_nano_in_utc() {
        let at = |secs: u64, nanos: u32| UNIX_EPOCH + Duration::new(secs, nanos);
        assert_eq!(rfc3339(at(0, 0)), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(at(0, 120_000_000)), "1970-01-01T00:00:00.12Z");
        assert_eq!(
            rfc3339(at(951_782_400, 5)),
            "2000-02-29T00:00:00.000000005Z"
        );
        assert_eq!(
            rfc3339(at(1_795_000_000, 123_456_789)),
            "2026-11-18T11:06:40.123456789Z"
        );
    }

    fn health_after(codes: &[i32]) -> Health {
        let mut health = Health::new(Timing {
            retries: 2,
            ..Timing::default()
        });
        for (i, &code) in codes.iter().enumerate() {
            let start = Duration::from_secs(i as u64);
            health.on_result(start, start, code, &format!("run {i}\nsecond line\n"));
        }
        health
    }

    #[test]
    fn starting_is_alive_but_not_ready_nor_started() {
        let health = health_after(&[1]);
        assert!(verdict(Role::Liveness, &health, "").ok);
        assert!(!verdict(Role::Readiness, &health, "").ok);
        assert!(!verdict(Role::Startup, &health, "").ok);
        assert_eq!(
            verdict(Role::Readiness, &health, "").line,
            "readiness starting: run 0"
        );
        assert_eq!(
            verdict(Role::Liveness, &health_after(&[]), "").line,
            "liveness starting: no result yet"
        );
    }

    #[test]
    fn healthy_passes_everything_and_unhealthy_fails_everything_but_startup() {
        let healthy = health_after(&[0]);
        for role in Role::ALL {
            assert!(verdict(role, &healthy, "").ok, "{role:?}");
        }
        let unhealthy = health_after(&[0, 1, 1]);
        assert_eq!(unhealthy.status(), Status::Unhealthy);
        assert!(!verdict(Role::Liveness, &unhealthy, "").ok);
        assert!(!verdict(Role::Readiness, &unhealthy, "").ok);
        assert!(
            verdict(Role::Startup, &unhealthy, " (from liveness)").ok,
            "healthy once"
        );
        assert_eq!(
            verdict(Role::Startup, &unhealthy, " (from liveness)").line,
            "startup (from liveness) unhealthy: run 2"
        );
    }

    #[test]
    fn health_is_shaped_like_docker_inspect() {
        let epoch = Epoch::now();
        let doc = health_doc(&epoch, &health_after(&[0, 1]));
        let text = serde_json::to_string(&doc).unwrap();
        let start = rfc3339(epoch.wall(Duration::from_secs(1)));
        assert!(
            text.starts_with(r#"{"Status":"healthy","FailingStreak":1,"Log":[{"Start":"#),
            "{text}"
        );
        assert!(
            text.ends_with(&format!(
                r#"{{"Start":"{start}","End":"{start}","ExitCode":1,"Output":"run 1\nsecond line\n"}}]}}"#
            )),
            "{text}"
        );
    }
}
