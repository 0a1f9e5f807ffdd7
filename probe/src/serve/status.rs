//! `healthcheck status`: asks a running `serve` instead of running checks, through the same
//! probe endpoints the kubelet asks, so it passes exactly when they answer 200.

use healthcheck_spec::HttpCheck;

use super::config::Role;
use crate::checks::http;
use crate::context::Context;
use crate::net::http::BodySink;

/// Where `serve` listens by default, seen from inside the pod (a literal for clap's default;
/// a test keeps it on `healthcheck_spec::serve::DEFAULT_PORT`).
pub const DEFAULT_URL: &str = "http://127.0.0.1:9180";

/// What to print and the exit code: 0 when every asked role passes, else 1. Without `role`,
/// every configured role is asked (roles `serve` does not have are skipped).
pub fn run(base_url: &str, role: Option<Role>, ctx: &Context) -> (String, i32) {
    let base = base_url.trim_end_matches('/');
    let roles = role.map_or(Role::ALL.to_vec(), |role| vec![role]);
    let mut answers = Vec::new();
    for role in roles {
        match fetch(&format!("{base}{}", role.serve_path()), ctx) {
            Ok(answer) => answers.push((role, answer)),
            Err(e) => return (format!("{e}\n"), 1),
        }
    }
    summarize(&answers, role.is_some())
}

/// One line per answering role; a 404 (role not configured) counts only when asked for.
fn summarize(answers: &[(Role, (u16, String))], asked_one: bool) -> (String, i32) {
    let mut text = String::new();
    let mut passing = false;
    let mut failing = false;
    for (role, (status, body)) in answers {
        if *status == 404 && !asked_one {
            continue;
        }
        let line = body.lines().next().unwrap_or("");
        if *status == 404 || line.is_empty() {
            text.push_str(&format!("{}: {status} {line}\n", role.as_str()));
        } else {
            text.push_str(&format!("{line}\n"));
        }
        if *status == 200 {
            passing = true;
        } else {
            failing = true;
        }
    }
    if text.is_empty() {
        text.push_str("serve has no role configured\n");
    }
    (text, i32::from(failing || !passing))
}

fn fetch(url: &str, ctx: &Context) -> Result<(u16, String), String> {
    let spec = HttpCheck {
        url: url.to_string(),
        ..HttpCheck::default()
    };
    let (_, exchange) = http::exchange(&spec, ctx, BodySink::Capture, None)
        .map_err(|e| format!("cannot ask serve at {url}: {e}"))?;
    if let Some(error) = exchange.error {
        return Err(format!("cannot ask serve at {url}: {error}"));
    }
    let status = exchange.status.unwrap_or_default();
    Ok((status, String::from_utf8_lossy(&exchange.body).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> (u16, String) {
        (status, body.to_string())
    }

    #[test]
    fn the_default_url_uses_the_default_port() {
        let port = healthcheck_spec::serve::DEFAULT_PORT;
        assert_eq!(DEFAULT_URL, format!("http://127.0.0.1:{port}"));
    }

    #[test]
    fn passes_only_when_every_configured_role_passes() {
        let answers = [
            (
                Role::Liveness,
                answer(200, "liveness healthy: healthy: ok\n"),
            ),
            (
                Role::Readiness,
                answer(503, "readiness starting: no result yet\n"),
            ),
            (Role::Startup, answer(404, "startup is not configured\n")),
        ];
        let (text, code) = summarize(&answers, false);
        assert_eq!(
            text,
            "liveness healthy: healthy: ok\nreadiness starting: no result yet\n"
        );
        assert_eq!(code, 1);
        let (_, code) = summarize(&answers[..1], false);
        assert_eq!(code, 0);
    }

    #[test]
    fn an_unconfigured_role_fails_when_asked_for_and_nothing_configured_fails() {
        let (text, code) = summarize(
            &[(Role::Startup, answer(404, "startup is not configured\n"))],
            true,
        );
        assert_eq!(
            (text.as_str(), code),
            ("startup: 404 startup is not configured\n", 1)
        );
        let (text, code) = summarize(&[(Role::Startup, answer(404, "x"))], false);
        assert_eq!((text.as_str(), code), ("serve has no role configured\n", 1));
    }
}
