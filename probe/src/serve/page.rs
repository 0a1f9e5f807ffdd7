//! `GET /`: a small status page for humans, plain HTML (refreshes itself, no script).

use std::fmt::Write;

use healthcheck_spec::Check;
use healthcheck_spec::duration::DockerDuration;

use super::App;
use super::config::RoleConfig;
use super::report::{rfc3339, verdict};
use super::state::Health;

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}\
td.time{white-space:nowrap}td.output{font-family:monospace;white-space:pre-wrap;overflow-wrap:anywhere}.status{padding:.1em .4em;border-radius:.3em;color:#fff}\
.status-healthy{background:#2a7d2a}.status-starting{background:#a67c00}.status-unhealthy{background:#b22}";

pub fn render(app: &App) -> String {
    let mut html = String::with_capacity(8192);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"5\"><title>healthcheck serve</title>\
         <style>{STYLE}</style></head><body><h1>healthcheck serve</h1>\n"
    );
    for monitor in &app.monitors {
        monitor.read(|state| role_section(&mut html, app, &monitor.config, &state.health));
    }
    html.push_str(
        "<p>Also: <a href=\"/health\">/health</a> (JSON) · <a href=\"/metrics\">/metrics</a></p>\
         </body></html>\n",
    );
    html
}

fn role_section(html: &mut String, app: &App, config: &RoleConfig, health: &Health) {
    let role = config.role.as_str();
    let status = health.status().as_str();
    let timing = &config.timing;
    let answer = if verdict(config.role, health, "").ok {
        "200"
    } else {
        "503"
    };
    let _ = write!(
        html,
        "<section class=\"role\" id=\"{role}\"><h2>{role} \
         <span class=\"status status-{status}\">{status}</span></h2>\n\
         <p>check: {} · {} · interval {} · timeout {} · start period {} · start interval {} · \
         retries {} · failing streak <span class=\"streak\">{}</span> · \
         <a href=\"{path}\">{path}</a> answers {answer}</p>\n\
         <table><tr><th>Start</th><th>End</th><th>Exit code</th><th>Output</th></tr>\n",
        escape(&describe(&config.check)),
        if config.on_demand {
            "on demand"
        } else {
            "scheduled"
        },
        DockerDuration(timing.interval),
        DockerDuration(timing.timeout),
        DockerDuration(timing.start_period),
        DockerDuration(timing.start_interval),
        timing.retries,
        health.failing_streak(),
        path = config.role.serve_path(),
    );
    if health.log().is_empty() {
        html.push_str("<tr><td colspan=\"4\">no result yet</td></tr>\n");
    }
    for entry in health.log().iter().rev() {
        let _ = writeln!(
            html,
            "<tr><td class=\"time\">{}</td><td class=\"time\">{}</td><td>{}</td><td class=\"output\">{}</td></tr>",
            rfc3339(app.epoch.wall(entry.start)),
            rfc3339(app.epoch.wall(entry.end)),
            entry.exit_code,
            escape(entry.output.trim_end())
        );
    }
    html.push_str("</table></section>\n");
}

/// The check's kinds only: arguments may carry credentials (basic auth, headers).
fn describe(check: &Check) -> String {
    match check {
        Check::AllOf(members) => format!(
            "all of ({})",
            members.iter().map(describe).collect::<Vec<_>>().join(", ")
        ),
        other => other.kind().to_string(),
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use healthcheck_spec::{HttpCheck, ProcessCheck};

    #[test]
    fn escapes_markup_and_hides_check_arguments() {
        assert_eq!(
            escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
        let check = Check::AllOf(vec![
            Check::Http(HttpCheck {
                url: "http://h/".into(),
                user: Some("admin:secret".into()),
                ..HttpCheck::default()
            }),
            Check::Process(ProcessCheck {
                pattern: "x".into(),
            }),
        ]);
        assert_eq!(describe(&check), "all of (http, process)");
    }
}
