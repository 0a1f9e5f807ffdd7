//! `healthcheck status`: asks a running `serve` instead of running checks. With `--role` it
//! asks that role's probe endpoint (one line, the probe's own verdict); without, it prints
//! every role from `/health` and passes when all are healthy.

use std::collections::BTreeMap;

use healthcheck_spec::HttpCheck;

use super::config::Role;
use super::report::HealthDoc;
use crate::checks::{Context, http};
use crate::net::http::BodySink;

/// Where `serve` listens by default, seen from inside the pod.
pub const DEFAULT_URL: &str = "http://127.0.0.1:9180";

/// What to print and the exit code (0 passing, 1 otherwise).
pub fn run(base_url: &str, role: Option<Role>, ctx: &Context) -> (String, i32) {
    let base = base_url.trim_end_matches('/');
    match role {
        Some(role) => match fetch(&format!("{base}{}", role.path()), ctx) {
            Ok((status, body)) => {
                let line = body.lines().next().unwrap_or("").to_string();
                let code = i32::from(status != 200);
                (format!("{line}\n"), code)
            }
            Err(e) => (format!("{e}\n"), 1),
        },
        None => {
            match fetch(&format!("{base}/health"), ctx).and_then(|(_, body)| summarize(&body)) {
                Ok(done) => done,
                Err(e) => (format!("{e}\n"), 1),
            }
        }
    }
}

fn fetch(url: &str, ctx: &Context) -> Result<(u16, String), String> {
    let spec = HttpCheck {
        url: url.to_string(),
        ..HttpCheck::default()
    };
    let (_, exchange) = http::exchange(&spec, ctx, BodySink::Capture)
        .map_err(|e| format!("cannot ask serve at {url}: {e}"))?;
    if let Some(error) = exchange.error {
        return Err(format!("cannot ask serve at {url}: {error}"));
    }
    let status = exchange.status.unwrap_or_default();
    Ok((status, String::from_utf8_lossy(&exchange.body).into_owned()))
}

/// One line per role; passing when every role is healthy.
fn summarize(body: &str) -> Result<(String, i32), String> {
    let roles: BTreeMap<String, HealthDoc> = serde_json::from_str(body)
        .map_err(|e| format!("serve answered /health with something else: {e}"))?;
    let mut text = String::new();
    let mut all_healthy = !roles.is_empty();
    for (name, health) in &roles {
        all_healthy &= health.status == "healthy";
        text.push_str(&format!(
            "{name}: {} (failing streak {})",
            health.status, health.failing_streak
        ));
        match health.log.last() {
            Some(last) => text.push_str(&format!(
                "; last run ended {} with exit code {}: {}\n",
                last.end,
                last.exit_code,
                last.output.lines().next().unwrap_or("")
            )),
            None => text.push_str("; no run yet\n"),
        }
    }
    Ok((text, i32::from(!all_healthy)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarizes_each_role_and_passes_only_when_all_are_healthy() {
        let body = r#"{
          "liveness": {"Status": "healthy", "FailingStreak": 0, "Log": [
            {"Start": "s", "End": "2026-01-01T00:00:00Z", "ExitCode": 0, "Output": "healthy: ok\n"}]},
          "readiness": {"Status": "starting", "FailingStreak": 1, "Log": []}
        }"#;
        let (text, code) = summarize(body).unwrap();
        assert_eq!(
            text,
            "liveness: healthy (failing streak 0); last run ended 2026-01-01T00:00:00Z with exit code 0: healthy: ok\n\
             readiness: starting (failing streak 1); no run yet\n"
        );
        assert_eq!(code, 1);
        let (_, code) = summarize(&body.replace("starting", "healthy")).unwrap();
        assert_eq!(code, 0);
        assert!(
            summarize("{}").unwrap().1 == 1,
            "nothing configured is not healthy"
        );
        assert!(summarize("<html>").unwrap_err().contains("/health"));
    }
}
