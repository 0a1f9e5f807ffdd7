//! HTTP APIs: the URL comes from the service's Apache vhost or its own INI file.

use super::{Call, IniUrl, Profile, Run, http_get, url, vhost};
use crate::Outcome;

const fn vhost_api(name: &'static str, summary: &'static str, file: &'static str) -> Profile {
    Profile {
        name,
        summary,
        run: Run::Vhost(file),
    }
}

const fn bind_api(
    name: &'static str,
    summary: &'static str,
    file: &'static str,
    port_default: &'static str,
) -> Profile {
    Profile {
        name,
        summary,
        run: Run::IniUrl(IniUrl {
            file,
            section: "DEFAULT",
            host_key: "bind_host",
            host_default: "127.0.0.1",
            port_key: "bind_port",
            port_default,
        }),
    }
}

pub const PROFILES: &[Profile] = &[
    vhost_api(
        "aodh-api",
        "GET the vhost URL of 10-aodh_wsgi.conf",
        "10-aodh_wsgi.conf",
    ),
    vhost_api(
        "barbican-api",
        "GET the vhost URL of 10-barbican_wsgi_main.conf",
        "10-barbican_wsgi_main.conf",
    ),
    vhost_api(
        "cinder-api",
        "GET the vhost URL of 10-cinder_wsgi.conf",
        "10-cinder_wsgi.conf",
    ),
    vhost_api(
        "gnocchi-api",
        "GET the vhost URL of 10-gnocchi_wsgi.conf",
        "10-gnocchi_wsgi.conf",
    ),
    vhost_api(
        "heat-api",
        "GET the vhost URL of 10-heat_api_wsgi.conf",
        "10-heat_api_wsgi.conf",
    ),
    vhost_api(
        "heat-api-cfn",
        "GET the vhost URL of 10-heat_api_cfn_wsgi.conf",
        "10-heat_api_cfn_wsgi.conf",
    ),
    vhost_api(
        "ironic-api",
        "GET the vhost URL of 10-ironic_wsgi.conf",
        "10-ironic_wsgi.conf",
    ),
    vhost_api(
        "keystone",
        "GET the vhost URL of 10-keystone_wsgi.conf",
        "10-keystone_wsgi.conf",
    ),
    vhost_api(
        "manila-api",
        "GET the vhost URL of 10-manila_wsgi.conf",
        "10-manila_wsgi.conf",
    ),
    vhost_api(
        "octavia-api",
        "GET the vhost URL of 10-octavia_wsgi.conf",
        "10-octavia_wsgi.conf",
    ),
    vhost_api(
        "placement-api",
        "GET the vhost URL of 10-placement_wsgi.conf",
        "10-placement_wsgi.conf",
    ),
    Profile {
        name: "horizon",
        summary: "GET the vhost URL of 10-horizon_vhost.conf, else of 10-horizon_ssl_vhost.conf",
        run: Run::Custom(horizon),
    },
    bind_api(
        "glance-api",
        "GET http://bind_host:bind_port/ from glance-api.conf [DEFAULT] (127.0.0.1:9292)",
        "/etc/glance/glance-api.conf",
        "9292",
    ),
    bind_api(
        "neutron-api",
        "GET http://bind_host:bind_port/ from neutron.conf [DEFAULT] (127.0.0.1:9696)",
        "/etc/neutron/neutron.conf",
        "9696",
    ),
    Profile {
        name: "ironic-inspector",
        summary: "healthy in the dnsmasq container; else GET inspector.conf listen_address:listen_port",
        run: Run::Custom(ironic_inspector),
    },
    Profile {
        name: "ironic-pxe",
        summary: "when /run_command runs httpd: GET http://[DEFAULT] my_ip:Listen port/ of 10-ipxe_vhost.conf",
        run: Run::Custom(ironic_pxe),
    },
];

/// The plain vhost first; TripleO tries the TLS one only when that check fails.
fn horizon(call: &Call) -> Result<Outcome, String> {
    let plain = vhost(call, "10-horizon_vhost.conf");
    match plain {
        Ok(outcome) if outcome.healthy => Ok(outcome),
        plain => {
            let ssl = vhost(call, "10-horizon_ssl_vhost.conf");
            match (plain, ssl) {
                (_, Ok(ssl)) if ssl.healthy => Ok(ssl),
                (Ok(plain), _) => Ok(plain),
                (Err(_), ssl) => ssl,
            }
        }
    }
}

/// One image runs both ironic-inspector and its dnsmasq; the dnsmasq container has nothing to
/// check since its DHCP check was removed (rhbz#1961237).
fn ironic_inspector(call: &Call) -> Result<Outcome, String> {
    call.no_args()?;
    if call.running("dnsmasq") {
        return Ok(Outcome::healthy(
            "dnsmasq container: nothing to check (TripleO dropped its DHCP port check)",
        ));
    }
    const FILE: &str = "/etc/ironic-inspector/inspector.conf";
    let ini = call.ctx.config.ini(FILE)?;
    let host = ini.get_or("DEFAULT", "listen_address", "127.0.0.1");
    let port = ini.port_or(FILE, "DEFAULT", "listen_port", "5050")?;
    Ok(call.check(http_get(url("http", host, port, "/"))))
}

/// Only the httpd container of ironic-pxe has a check (its tftp check needed a curl with tftp).
fn ironic_pxe(call: &Call) -> Result<Outcome, String> {
    call.no_args()?;
    const RUN_COMMAND: &str = "/run_command";
    const VHOST: &str = "/etc/httpd/conf.d/10-ipxe_vhost.conf";
    let command = call.ctx.config.read(RUN_COMMAND)?;
    if !command.contains("/httpd ") {
        return Ok(Outcome::healthy(format!(
            "{RUN_COMMAND} does not run httpd: nothing to check"
        )));
    }
    let ini = call.ctx.config.ini("/etc/ironic/ironic.conf")?;
    let host = ini.get_or("DEFAULT", "my_ip", "127.0.0.1");
    let vhost = crate::config::apache::Vhost::parse(&call.ctx.config.read(VHOST)?);
    let port = *vhost
        .listen_ports
        .first()
        .ok_or_else(|| format!("{VHOST}: no `Listen` directive"))?;
    Ok(call.check(http_get(url("http", host, port, "/"))))
}
