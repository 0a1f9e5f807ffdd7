//! Where a uWSGI-run API listens: Kolla's `[uwsgi]` ini (`http = HOST:PORT`, or
//! `https = HOST:PORT,CERT,KEY`), and Debian's openstack-pkg-tools init scripts
//! (`UWSGI_PORT`, the optional `UWSGI_BIND_CONFIG_*` pointing at the service's own INI; the
//! script starts `--https-socket` when `/etc/PROJECT/ssl/private/*.pem` and
//! `ssl/public/*.crt` exist).

use super::ini::Ini;

/// A socket a uWSGI server serves HTTP on.
#[derive(Debug, PartialEq, Eq)]
pub struct Socket {
    pub https: bool,
    /// Empty when uWSGI binds every address (`:5000`).
    pub host: String,
    pub port: String,
}

/// The first HTTP(S) socket of a `[uwsgi]` ini, `None` when it declares none (it then only
/// holds the application: the socket comes from the command line).
pub fn ini_socket(ini: &Ini) -> Option<Socket> {
    ["https", "https-socket", "http", "http-socket"]
        .into_iter()
        .find_map(|key| Some((key, ini.get("uwsgi", key)?)))
        .map(|(key, value)| {
            // `https` takes `ADDRESS,CERT,KEY[,...]`.
            let address = value.split(',').next().unwrap_or("").trim();
            let (host, port) = split_address(address);
            Socket {
                https: key.starts_with("https"),
                host: host.to_string(),
                port: port.to_string(),
            }
        })
}

/// `host:port`, `[v6]:port`, `:port`.
fn split_address(address: &str) -> (&str, &str) {
    match address.rsplit_once(':') {
        Some((host, port)) => (host.trim_start_matches('[').trim_end_matches(']'), port),
        None => ("", address),
    }
}

/// The settings an openstack-pkg-tools init script gives its uWSGI server.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct InitScript {
    pub project: Option<String>,
    pub port: Option<String>,
    pub bind_ip: Option<String>,
    /// `UWSGI_BIND_CONFIG_FILE`, `_SECTION`, `_IP_DIRECTIVE`, `_PORT_DIRECTIVE`, when all set:
    /// the script then reads the address from that INI (its own values are the fallback).
    pub bind_config: Option<[String; 4]>,
}

/// Marks the start of the shared part of the scripts; only the lines above it are the
/// service's settings (below, the variables are reassigned at run time).
const TEMPLATE_MARKER: &str = "# The content after this line comes from openstack-pkg-tools";

pub fn init_script(text: &str) -> InitScript {
    let header = text.split(TEMPLATE_MARKER).next().unwrap_or(text);
    let vars = super::shell_vars::parse(header);
    let var = |name: &str| vars.get(name).filter(|v| !v.is_empty()).cloned();
    let bind_config = match [
        "UWSGI_BIND_CONFIG_FILE",
        "UWSGI_BIND_CONFIG_SECTION",
        "UWSGI_BIND_CONFIG_IP_DIRECTIVE",
        "UWSGI_BIND_CONFIG_PORT_DIRECTIVE",
    ]
    .map(var)
    {
        [Some(file), Some(section), Some(ip), Some(port)] => Some([file, section, ip, port]),
        _ => None,
    };
    InitScript {
        project: var("PROJECT_NAME"),
        port: var("UWSGI_PORT"),
        // The script drops UWSGI_BIND_IP unless it comes from the bind config.
        bind_ip: var("UWSGI_BIND_IP").filter(|_| bind_config.is_some()),
        bind_config,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kolla_uwsgi_sockets() {
        let socket = |text: &str| ini_socket(&Ini::parse(text));
        assert_eq!(
            socket("[uwsgi]\nhttp = 172.17.1.10:5000\nmaster = true\n"),
            Some(Socket {
                https: false,
                host: "172.17.1.10".into(),
                port: "5000".into()
            })
        );
        assert_eq!(
            socket(
                "[uwsgi]\nhttps = [fd00::5]:8774,/etc/nova/certs/nova-cert.pem,/etc/nova/certs/nova-key.pem\n"
            ),
            Some(Socket {
                https: true,
                host: "fd00::5".into(),
                port: "8774".into()
            })
        );
        assert_eq!(socket("[uwsgi]\nhttp-socket = :9696\n").unwrap().host, "");
        assert_eq!(
            socket("[uwsgi]\nmodule = keystone.wsgi.api:application\n"),
            None
        );
    }

    #[test]
    fn debian_init_script_header_only() {
        let script = "#!/bin/sh\nDESC=\"OpenStack Keystone API\"\nPROJECT_NAME=keystone\nUWSGI_PORT=5000\n\
            UWSGI_INI_PATH=/etc/keystone/keystone-uwsgi.ini\n#!/bin/sh\n\
            # The content after this line comes from openstack-pkg-tools\n\
            \t\tUWSGI_BIND_IP=${RET}\n\t\tUWSGI_PORT=${RET}\n";
        assert_eq!(
            init_script(script),
            InitScript {
                project: Some("keystone".into()),
                port: Some("5000".into()),
                bind_ip: None,
                bind_config: None
            }
        );
        // glance-api: uwsgi commented out.
        assert_eq!(
            init_script("PROJECT_NAME=glance\n#UWSGI_PORT=9292\n").port,
            None
        );
        let bound = init_script(
            "UWSGI_PORT=8080\nUWSGI_BIND_IP=10.0.0.1\nUWSGI_BIND_CONFIG_FILE=/etc/swift/proxy-server.conf\n\
             UWSGI_BIND_CONFIG_SECTION=DEFAULT\nUWSGI_BIND_CONFIG_IP_DIRECTIVE=bind_ip\nUWSGI_BIND_CONFIG_PORT_DIRECTIVE=bind_port\n",
        );
        assert_eq!(bound.bind_ip.as_deref(), Some("10.0.0.1"));
        assert_eq!(bound.bind_config.unwrap()[2], "bind_ip");
    }
}
