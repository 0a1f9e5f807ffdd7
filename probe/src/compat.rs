//! Drop-in replacements for the Kolla/TripleO helper scripts, selected by the name the binary
//! is invoked under (a symlink): same arguments, same exit codes, and for `healthcheck_curl`
//! the same curl `--write-out` line on stdout.

use std::path::Path;
use std::time::{Duration, Instant};

use healthcheck_spec::{Check, FileCheck, HttpCheck, HttpMethod, ProcessPorts, SocketCheck};

use crate::checks::http::{exchange, status_expected};
use crate::context::Context;
use crate::net::http::{BodySink, Exchange, Progress, Snapshot};
use crate::net::url::Url;
use crate::watchdog::{self, Report};

/// The helper names, as Kolla installs them in `/usr/local/bin`.
pub const NAMES: [&str; 5] = [
    "healthcheck_curl",
    "healthcheck_port",
    "healthcheck_listen",
    "healthcheck_socket",
    "healthcheck_filemod",
];

/// curl's write-out default in the TripleO/Kolla scripts.
pub const DEFAULT_WRITE_OUT: &str =
    "\\n%{http_code} %{remote_ip}:%{remote_port} %{time_total} seconds\\n";

/// What a compat name asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Invocation {
    /// `healthcheck_curl`: a request reported in curl's write-out format.
    Curl(HttpCheck),
    /// The other helpers: a plain check.
    Check(Check),
}

/// Parses the arguments of helper `name`; `Err` is the usage message (exit 1, as the scripts).
pub fn parse(name: &str, args: &[String]) -> Result<Invocation, String> {
    let usage = |shape: &str| format!("usage: {name} {shape}");
    let process_ports = |args: &[String]| -> Result<ProcessPorts, String> {
        let (process, ports) = args
            .split_first()
            .filter(|(_, p)| !p.is_empty())
            .ok_or_else(|| usage("PROCESS PORT [PORT...]"))?;
        let ports = ports
            .iter()
            .map(|p| {
                p.parse::<u16>()
                    .ok()
                    .filter(|&p| p > 0)
                    .ok_or_else(|| format!("{name}: `{p}` is not a port (1-65535)"))
            })
            .collect::<Result<_, _>>()?;
        Ok(ProcessPorts {
            process: process.clone(),
            ports,
        })
    };
    match name {
        "healthcheck_curl" => parse_curl_args(args).map(Invocation::Curl),
        "healthcheck_port" => Ok(Invocation::Check(Check::Port(process_ports(args)?))),
        "healthcheck_listen" => Ok(Invocation::Check(Check::Listen(process_ports(args)?))),
        "healthcheck_socket" => match args {
            [process, path] => Ok(Invocation::Check(Check::Socket(SocketCheck {
                process: process.clone(),
                path: path.clone(),
            }))),
            _ => Err(usage("PROCESS SOCKET_PATH")),
        },
        "healthcheck_filemod" => match args {
            [path, seconds] => {
                let max_age_seconds = seconds
                    .parse()
                    .map_err(|_| format!("{name}: `{seconds}` is not a number of seconds"))?;
                Ok(Invocation::Check(Check::File(FileCheck {
                    path: path.clone(),
                    max_age_seconds,
                })))
            }
            _ => Err(usage("PATH MAX_AGE_SECONDS")),
        },
        _ => Err(format!("`{name}` is not a compat helper name")),
    }
}

/// The curl options the scripts' callers pass. Options the scripts themselves always set
/// (`-g -k -q -s -S --fail`) are accepted and need nothing: they are our defaults.
fn parse_curl_args(args: &[String]) -> Result<HttpCheck, String> {
    if args.is_empty() {
        // The TripleO script's exact message.
        return Err("healthcheck_curl: no parameter provided".into());
    }
    let mut check = HttpCheck::default();
    let mut url = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| {
            args.next()
                .cloned()
                .ok_or_else(|| format!("healthcheck_curl: option {flag} needs a value"))
        };
        match arg.as_str() {
            "-g" | "--globoff" | "-k" | "--insecure" | "-q" | "--disable" | "-s" | "--silent"
            | "-S" | "--show-error" | "-f" | "--fail" => {}
            "-u" | "--user" => check.user = Some(value(arg)?),
            "-H" | "--header" => check.headers.push(value(arg)?),
            "-I" | "--head" => check.method = HttpMethod::Head,
            "--cacert" => {
                check.tls.ca_file = Some(value(arg)?);
                check.tls.verify = true;
            }
            "-E" | "--cert" => check.tls.cert_file = Some(value(arg)?),
            "--key" => check.tls.key_file = Some(value(arg)?),
            flag if flag.starts_with("-u") && flag.len() > 2 => {
                check.user = Some(flag[2..].to_string())
            }
            flag if flag.starts_with("-H") && flag.len() > 2 => {
                check.headers.push(flag[2..].to_string())
            }
            flag if flag.starts_with('-') => {
                return Err(format!("healthcheck_curl: unsupported curl option {flag}"));
            }
            positional if url.is_none() => url = Some(positional.to_string()),
            extra => {
                return Err(format!(
                    "healthcheck_curl: more than one URL given (`{extra}`)"
                ));
            }
        }
    }
    check.url = url.ok_or("healthcheck_curl: no URL given")?;
    Ok(check)
}

/// Runs a `healthcheck_curl` invocation as curl `-o FILE --fail` does: the body is read (into
/// `output_file`, or drained for `/dev/null`) under the deadline, and the report is curl's:
/// the write-out text on stdout, curl's error line on stderr, exit 0 when a status below 400
/// arrived and the transfer completed. `started` is when the run began (curl's `time_total`).
/// Arms the run's deadline with the report of how far the request got, kept up to date.
pub fn run_curl(
    check: &HttpCheck,
    ctx: &Context,
    write_out: &str,
    output_file: &str,
    started: Instant,
) -> Report {
    let sink = if output_file == "/dev/null" {
        BodySink::Drain
    } else {
        BodySink::File(output_file.to_string())
    };
    // Rendered at every step, as the deadline would find it: the elapsed time is the one it
    // fires at.
    let fired = watchdog::fires_at(ctx.deadline.instant()).saturating_duration_since(started);
    let deadline_report = |progress: &Snapshot| timed_out(write_out, &check.url, progress, fired);
    watchdog::arm(
        ctx.deadline.instant(),
        deadline_report(&Snapshot::default()),
    );
    let on_progress = |progress: &Snapshot| watchdog::set_timeout_report(deadline_report(progress));
    let progress = Progress::new(&on_progress);
    let (url, exchange) = match exchange(check, ctx, sink, Some(&progress)) {
        Ok((url, exchange)) => (Some(url), exchange),
        Err(e) => (
            None,
            Exchange {
                error: Some(e),
                ..Exchange::default()
            },
        ),
    };
    let error = match (exchange.status, &exchange.error) {
        // One builder for both sides of the deadline, so the report is the same either way.
        (_, Some(error)) if error.contains("timed out") => {
            return timed_out(
                write_out,
                &check.url,
                &progress.snapshot(),
                started.elapsed(),
            );
        }
        (_, Some(error)) => Some(curl_error(error, url.as_ref(), &exchange)),
        (Some(status), None) if !status_expected(status, &[]) => {
            Some(format!("(22) The requested URL returned error: {status}"))
        }
        _ => None,
    };
    Report {
        stdout: write_out_text(write_out, &exchange, &check.url),
        code: i32::from(error.is_some()),
        stderr: error.map(|e| format!("curl: {e}\n")).unwrap_or_default(),
    }
}

/// The report of a run whose deadline passed after `elapsed`, from how far it got, in curl's
/// words: `(28) Operation timed out after 2001 milliseconds with 5 bytes received`.
fn timed_out(write_out: &str, url: &str, progress: &Snapshot, elapsed: Duration) -> Report {
    let ms = elapsed.as_millis();
    let received = progress.body_bytes;
    let message = match (progress.remote, progress.body_length) {
        (None, _) => format!("Connection timed out after {ms} milliseconds"),
        (Some(_), Some(length)) => format!(
            "Operation timed out after {ms} milliseconds with {received} out of {length} bytes received"
        ),
        (Some(_), None) => {
            format!("Operation timed out after {ms} milliseconds with {received} bytes received")
        }
    };
    let exchange = Exchange {
        remote: progress.remote,
        status: progress.status,
        elapsed,
        ..Exchange::default()
    };
    Report {
        stdout: write_out_text(write_out, &exchange, url),
        stderr: format!("curl: (28) {message}\n"),
        code: 1,
    }
}

/// curl's exit code and words for the failures our messages describe, so log parsers see
/// familiar text.
fn curl_error(error: &str, url: Option<&Url>, exchange: &Exchange) -> String {
    if error.contains("cannot resolve") {
        let host = url.map_or("", |u| u.host.as_str());
        format!("(6) Could not resolve host: {host}")
    } else if error.contains("cannot connect") {
        let (host, port) = url.map_or(("", 0), |u| (u.host.as_str(), u.port));
        format!(
            "(7) Failed to connect to {host} port {port} after {} ms: Couldn't connect to server",
            exchange.elapsed.as_millis()
        )
    } else if error.contains("without a response") {
        "(52) Empty reply from server".to_string()
    } else if error.contains("not an HTTP response: `HTTP/") {
        "(1) Unsupported HTTP version in response".to_string()
    } else if error.contains("not an HTTP response") {
        // curl reads a reply without an HTTP/ status line as HTTP/0.9, which it refuses.
        "(1) Received HTTP/0.9 when not allowed".to_string()
    } else if error.contains("transfer closed") {
        format!("(18) {error}")
    } else if error.contains("TLS") {
        format!("(35) {error}")
    } else if error.contains("invalid URL") {
        format!("(3) {error}")
    } else {
        format!("(56) {error}")
    }
}

/// Expands curl's `--write-out` format: `%{http_code}` (000 without a response),
/// `%{remote_ip}`, `%{remote_port}`, `%{time_total}`, `%{url_effective}`, `%%`, and the
/// `\n` `\r` `\t` `\\` escapes. Unknown variables expand to nothing, as in curl.
pub fn write_out_text(format: &str, exchange: &Exchange, url: &str) -> String {
    let mut out = String::with_capacity(format.len() + 64);
    let mut rest = format;
    while let Some(c) = rest.chars().next() {
        if let Some((name, tail)) = rest
            .strip_prefix("%{")
            .and_then(|after| after.split_once('}'))
        {
            out.push_str(&variable(name, exchange, url));
            rest = tail;
            continue;
        }
        // Pushed a character at a time, with no allocation: the deadline's report is rendered
        // again at every step of the request.
        let (expansion, consumed) = match (c, rest[c.len_utf8()..].chars().next()) {
            ('%', Some('%')) => ('%', 2),
            ('\\', Some('n')) => ('\n', 2),
            ('\\', Some('r')) => ('\r', 2),
            ('\\', Some('t')) => ('\t', 2),
            ('\\', Some('\\')) => ('\\', 2),
            (c, _) => (c, c.len_utf8()),
        };
        out.push(expansion);
        rest = &rest[consumed..];
    }
    out
}

fn variable(name: &str, exchange: &Exchange, url: &str) -> String {
    match name {
        "http_code" | "response_code" => format!("{:03}", exchange.status.unwrap_or(0)),
        "remote_ip" => exchange
            .remote
            .map(|a| a.ip().to_string())
            .unwrap_or_default(),
        // curl prints 0 when it connected nowhere.
        "remote_port" => exchange.remote.map_or(0, |a| a.port()).to_string(),
        "time_total" => format!("{:.6}", exchange.elapsed.as_secs_f64()),
        "url_effective" | "url" => url.to_string(),
        _ => String::new(),
    }
}

/// Creates the compat names as symlinks to `target` in `dir`, replacing stale links.
pub fn install(dir: &Path, target: &Path, names: &[&str]) -> Result<Vec<String>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut created = Vec::new();
    for name in names {
        let link = dir.join(name);
        match std::fs::symlink_metadata(&link) {
            Ok(meta) if meta.file_type().is_symlink() => {
                std::fs::remove_file(&link)
                    .map_err(|e| format!("cannot replace {}: {e}", link.display()))?;
            }
            Ok(_) => {
                return Err(format!(
                    "{} exists and is not a symlink; not overwriting it",
                    link.display()
                ));
            }
            Err(_) => {}
        }
        std::os::unix::fs::symlink(target, &link)
            .map_err(|e| format!("cannot create {}: {e}", link.display()))?;
        created.push(link.display().to_string());
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn args(line: &[&str]) -> Vec<String> {
        line.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn curl_arguments_as_the_tripleo_scripts_pass_them() {
        let Invocation::Curl(check) = parse(
            "healthcheck_curl",
            &args(&[
                "-g",
                "-k",
                "-u",
                "admin:pw",
                "-H",
                "X-A: 1",
                "-HX-B: 2",
                "http://[::1]:8080/",
            ]),
        )
        .unwrap() else {
            panic!("not curl")
        };
        assert_eq!(check.url, "http://[::1]:8080/");
        assert_eq!(check.user.as_deref(), Some("admin:pw"));
        assert_eq!(check.headers, ["X-A: 1", "X-B: 2"]);
        assert_eq!(
            parse("healthcheck_curl", &[]).unwrap_err(),
            "healthcheck_curl: no parameter provided"
        );
        assert!(
            parse("healthcheck_curl", &args(&["--data", "x", "http://h/"]))
                .unwrap_err()
                .contains("unsupported curl option --data")
        );
        assert!(
            parse("healthcheck_curl", &args(&["http://a/", "http://b/"]))
                .unwrap_err()
                .contains("more than one URL")
        );
    }

    #[test]
    fn helpers_keep_their_positional_arguments() {
        assert_eq!(
            parse("healthcheck_port", &args(&["nova-compute", "5671", "5672"])).unwrap(),
            Invocation::Check(Check::Port(ProcessPorts {
                process: "nova-compute".into(),
                ports: vec![5671, 5672]
            }))
        );
        assert!(
            parse("healthcheck_listen", &args(&["sshd"]))
                .unwrap_err()
                .contains("usage: healthcheck_listen PROCESS PORT")
        );
        assert!(
            parse("healthcheck_port", &args(&["x", "http"]))
                .unwrap_err()
                .contains("`http` is not a port")
        );
        assert!(parse("healthcheck_socket", &args(&["virtlogd"])).is_err());
        assert_eq!(
            parse("healthcheck_filemod", &args(&["/f", "60"])).unwrap(),
            Invocation::Check(Check::File(FileCheck {
                path: "/f".into(),
                max_age_seconds: 60
            }))
        );
    }

    #[test]
    fn write_out_expands_like_curl() {
        let exchange = Exchange {
            remote: Some("[::1]:8774".parse().unwrap()),
            status: Some(200),
            elapsed: Duration::from_micros(4_321),
            ..Exchange::default()
        };
        assert_eq!(
            write_out_text(DEFAULT_WRITE_OUT, &exchange, "u"),
            "\n200 ::1:8774 0.004321 seconds\n"
        );
        assert_eq!(
            write_out_text(
                "%{http_code} %{remote_ip}:%{remote_port}",
                &Exchange::default(),
                "u"
            ),
            "000 :0"
        );
        assert_eq!(
            write_out_text(
                "100%% %{bogus}%{url_effective}\\t%{",
                &exchange,
                "http://x/"
            ),
            "100% http://x/\t%{"
        );
    }
}
