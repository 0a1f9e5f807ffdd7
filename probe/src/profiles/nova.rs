//! Nova: one image serves several containers, so some profiles pick their check by what runs.

use healthcheck_spec::{Check, ProcessPorts, SocketCheck};

use super::http_api::{NOVA_API, NOVA_METADATA};
use super::{Call, Profile, RABBITMQ, Run, http_get, ports_or, url, with_service};
use crate::Outcome;

pub const PROFILES: &[Profile] = &[
    Profile {
        name: "nova-api",
        // Its files as NOVA_API describes them (a test keeps the two equal).
        summary: "when nova_metadata runs, as nova-metadata; else GET the API's URL: vhost 10-nova_api_wsgi.conf, nova-api-uwsgi.ini, nova-api-wsgi.conf, nova-api.conf, nova-api-os-compute.conf, /etc/init.d/nova-api, nova.conf [DEFAULT] osapi_compute_listen:osapi_compute_listen_port (127.0.0.1:8774)",
        run: Run::Custom(nova_api),
    },
    Profile {
        name: "nova-metadata",
        summary: "",
        run: Run::Api(NOVA_METADATA),
    },
    Profile {
        name: "nova-vnc-proxy",
        summary: "GET nova.conf [vnc] novncproxy_host:novncproxy_port (https when [DEFAULT] ssl_only)",
        run: Run::Custom(nova_vnc_proxy),
    },
    Profile {
        name: "nova-compute",
        summary: "nova-compute has a socket on the RabbitMQ ports [PORT...]; in the migration target container, sshd listens on 2022",
        run: Run::Custom(nova_compute),
    },
    Profile {
        name: "nova-libvirt",
        summary: "[virtlogd|libvirtd]: the daemon holds its Unix socket in /run/libvirt",
        run: Run::Custom(nova_libvirt),
    },
];

/// The nova-api image also runs nova_metadata (LP#1797514).
fn nova_api(call: &Call) -> Result<Outcome, String> {
    if call.running("nova_metadata") {
        NOVA_METADATA.run(call)
    } else {
        NOVA_API.run(call)
    }
}

fn nova_vnc_proxy(call: &Call) -> Result<Outcome, String> {
    call.no_args()?;
    const FILE: &str = "/etc/nova/nova.conf";
    let ini = call.ctx.config.ini(FILE)?;
    let host = ini.get_or("vnc", "novncproxy_host", "127.0.0.1");
    let port = ini.port_or(FILE, "vnc", "novncproxy_port", "6080")?;
    let scheme = if ini.get_bool("DEFAULT", "ssl_only") {
        "https"
    } else {
        "http"
    };
    Ok(call.check(http_get(url(scheme, host, port, "/"))))
}

/// The same image runs nova-compute and the migration target's sshd.
fn nova_compute(call: &Call) -> Result<Outcome, String> {
    if call.running("nova-compute") {
        let ports = ports_or(call.args, RABBITMQ)?;
        let outcome = call.check(Check::Port(ProcessPorts {
            process: "nova-compute".to_string(),
            ports,
        }));
        return Ok(with_service(outcome, "RabbitMQ"));
    }
    let outcome = call.check(Check::Listen(ProcessPorts {
        process: "sshd".to_string(),
        ports: vec![2022],
    }));
    Ok(if outcome.healthy {
        outcome
    } else {
        Outcome::unhealthy(format!(
            "no nova-compute process, and no sshd process listening on port 2022 (migration target): {}",
            outcome.message
        ))
    })
}

const LIBVIRT_RUN: &str = "/run/libvirt";

/// THT passes the daemon's name; TripleO ran `virsh version --daemon` for libvirtd, which
/// needs the daemon's socket to answer: here the daemon must hold it.
fn nova_libvirt(call: &Call) -> Result<Outcome, String> {
    let daemon = call.optional_arg("libvirtd")?;
    let socket = match daemon {
        "virtlogd" => "virtlogd-sock",
        "libvirtd" => "libvirt-sock",
        other => {
            return Err(format!(
                "unknown libvirt daemon `{other}` (virtlogd or libvirtd)"
            ));
        }
    };
    let path = call.ctx.config.path(&format!("{LIBVIRT_RUN}/{socket}"));
    Ok(call.check(Check::Socket(SocketCheck {
        process: daemon.to_string(),
        path: path.to_string_lossy().into_owned(),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nova_api_lists_the_files_it_reads() {
        let summary = PROFILES[0].summary();
        assert!(summary.ends_with(&NOVA_API.describe()), "{summary}");
    }
}
