//! Host-level helpers TripleO ran in containers: cron, collectd, iscsid, multipathd and the
//! qdrouterd messaging router.

use super::{Call, Profile, Run};
use crate::Outcome;
use crate::config::{parse_port, qdrouterd};
use crate::protocols::{Endpoint, collectd, multipathd};

pub const PROFILES: &[Profile] = &[
    Profile {
        name: "cron",
        summary: "[USER]: the user's crontab in /var/spool/cron has at least 2 entries (root)",
        run: Run::Custom(cron),
    },
    Profile {
        name: "collectd",
        summary: "collectd's unixsock answers LISTVAL on /var/run/collectd-socket",
        run: Run::Custom(collectd_check),
    },
    Profile {
        name: "iscsid",
        summary: "iscsid accepts a connection on its abstract socket ISCSIADM_ABSTRACT_NAMESPACE",
        run: Run::Custom(iscsid),
    },
    Profile {
        name: "multipathd",
        summary: "multipathd answers `show status` on its control socket",
        run: Run::Custom(multipathd_check),
    },
    Profile {
        name: "qdrouterd",
        summary: "the first listener of qdrouterd.conf answers the AMQP 1.0 protocol header",
        run: Run::Custom(qdrouterd_check),
    },
];

/// TripleO's `cron USER`: at least two lines that are not comments (a crontab the deployment
/// filled, not an empty one).
fn cron(call: &Call) -> Result<Outcome, String> {
    let user = call.optional_arg("root")?;
    if user.is_empty() || user.contains('/') {
        return Err(format!("`{user}` is not a user name"));
    }
    let path = format!("/var/spool/cron/{user}");
    let jobs = cron_jobs(&call.ctx.config.read(&path)?);
    Ok(if jobs > 0 {
        Outcome::healthy(format!("{path} has {jobs} job(s)"))
    } else {
        Outcome::unhealthy(format!("{path} has no job"))
    })
}

/// The job lines of a crontab: not blank, not a comment, not an environment assignment.
/// TripleO's script wanted "at least 2 lines not starting with #" to mean "puppet's
/// environment line plus one job", but also counted blank lines, so a lone trailing blank
/// line made an empty crontab healthy and a job-only crontab unhealthy; counting the jobs
/// is what the check was for.
fn cron_jobs(crontab: &str) -> usize {
    crontab
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter(|line| !is_assignment(line))
        .count()
}

/// `NAME=value` (cron's environment settings); a job line starts with a time field or `@`.
fn is_assignment(line: &str) -> bool {
    line.split_once('=').is_some_and(|(name, _)| {
        let name = name.trim();
        !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit())
    })
}

fn collectd_check(call: &Call) -> Result<Outcome, String> {
    call.no_args()?;
    let socket = call.ctx.config.path("/var/run/collectd-socket");
    Ok(collectd::listval(&Endpoint::Unix(socket), call.ctx))
}

/// `socat - ABSTRACT-CONNECT:ISCSIADM_ABSTRACT_NAMESPACE </dev/null`: iscsid accepts.
fn iscsid(call: &Call) -> Result<Outcome, String> {
    call.no_args()?;
    let endpoint = Endpoint::Abstract("ISCSIADM_ABSTRACT_NAMESPACE".to_string());
    Ok(match endpoint.open(call.ctx) {
        Ok(_) => Outcome::healthy(format!("iscsid accepts connections on {endpoint}")),
        Err(e) => Outcome::unhealthy(e),
    })
}

fn multipathd_check(call: &Call) -> Result<Outcome, String> {
    call.no_args()?;
    let endpoint = Endpoint::Abstract(multipathd::SOCKET.to_string());
    Ok(multipathd::show_status(&endpoint, call.ctx))
}

/// An AMQP 1.0 peer answers a SASL protocol header with its own protocol header.
fn qdrouterd_check(call: &Call) -> Result<Outcome, String> {
    call.no_args()?;
    const FILE: &str = "/etc/qpid-dispatch/qdrouterd.conf";
    let listener = qdrouterd::first_listener(&call.ctx.config.read(FILE)?)
        .ok_or_else(|| format!("{FILE}: no `listener` block"))?;
    if listener.ssl_profile.is_some() {
        return Err(format!(
            "{FILE}: the first listener uses an sslProfile, which this check does not speak yet"
        ));
    }
    let host = listener.host.as_deref().unwrap_or("127.0.0.1");
    let host = if host == "0.0.0.0" { "127.0.0.1" } else { host };
    let port = parse_port(
        listener.port.as_deref().unwrap_or("5672"),
        "qdrouterd listener port",
    )?;
    let endpoint = Endpoint::tcp(host, port);
    let header = endpoint.open(call.ctx).and_then(|mut stream| {
        stream.send(b"AMQP\x03\x01\x00\x00")?;
        stream.read_until(|bytes| bytes.len() >= 8)
    });
    Ok(match header {
        Ok(bytes) if bytes.starts_with(b"AMQP") => {
            Outcome::healthy(format!("qdrouterd answers AMQP 1.0 on {endpoint}"))
        }
        Ok(bytes) => Outcome::unhealthy(format!(
            "{endpoint} answered the AMQP header with {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(16)])
        )),
        Err(e) => Outcome::unhealthy(format!("qdrouterd on {endpoint}: {e}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crontab_jobs_are_counted_not_lines() {
        let puppet = "# HEADER: This file was autogenerated by puppet.\n# Puppet Name: nova-manage db archive_deleted_rows\nPATH=/bin:/usr/bin:/usr/sbin SHELL=/bin/sh\n1 0 * * * nova-manage db archive_deleted_rows\n";
        assert_eq!(cron_jobs(puppet), 1);
        // One entry and a trailing blank line (TripleO: healthy), one entry alone (TripleO:
        // unhealthy): both have one job.
        assert_eq!(cron_jobs("0 * * * * true\n\n"), 1);
        assert_eq!(cron_jobs("@hourly true\n"), 1);
        // Environment lines and blank lines only: nothing will ever run.
        assert_eq!(cron_jobs("PATH=/bin\nSHELL=/bin/sh\n\n"), 0);
        assert_eq!(cron_jobs("# only comments\n   \n"), 0);
    }
}
