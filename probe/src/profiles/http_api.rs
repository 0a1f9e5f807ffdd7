//! HTTP APIs: the URL comes from wherever the service's packaging keeps its listen address.
//! TripleO, Kolla, Debian and Ubuntu each keep it somewhere else (Apache vhosts under other
//! names and directories, uWSGI ini files, init scripts, the service's own INI), so each API
//! lists its files per layout, and [`Layouts::run`] takes the first that declares an address.

use super::{Call, IniUrl, Profile, Run, http_get, url, vhost};
use crate::Outcome;
use crate::config::apache::Vhost;
use crate::config::{ConfigRoot, parse_port, uwsgi};

/// Where one API's address may be written. Tried in this order, which is also the order of
/// precedence: the first file that exists and declares an address is used; a file that exists
/// but declares none (Debian's glance init script with uWSGI commented out, a uWSGI ini without
/// a socket) is passed over; a file that declares a broken one is an error.
pub struct Layouts {
    /// TripleO: puppet's vhost `/etc/httpd/conf.d/FILE` (TripleO's `get_url_from_vhost`).
    pub tripleo_vhost: Option<&'static str>,
    /// Kolla since its move to uWSGI: `[uwsgi] http`/`https` of these files.
    pub uwsgi_inis: &'static [&'static str],
    /// Kolla before uWSGI (`httpd/conf.d` on Rocky, `apache2/conf-enabled` on Debian/Ubuntu
    /// images) and Ubuntu's packages (`apache2/sites-enabled`, `conf-enabled`): Apache files
    /// by name, looked up in each of [`APACHE_DIRS`].
    pub apache_files: &'static [&'static str],
    /// Debian's packages: the openstack-pkg-tools init script `/etc/init.d/NAME` (uWSGI).
    pub debian_init: Option<&'static str>,
    /// The service's own INI (eventlet servers; TripleO reads it for glance and neutron).
    pub ini: Option<IniUrl>,
}

pub const APACHE_DIRS: [&str; 3] = [
    "/etc/httpd/conf.d",
    "/etc/apache2/conf-enabled",
    "/etc/apache2/sites-enabled",
];

const NO_FILES: Layouts = Layouts {
    tripleo_vhost: None,
    uwsgi_inis: &[],
    apache_files: &[],
    debian_init: None,
    ini: None,
};

/// An API's profile; `healthcheck profiles` describes it by its layouts' files
/// ([`Layouts::describe`]).
const fn api(name: &'static str, layouts: Layouts) -> Profile {
    Profile {
        name,
        summary: "",
        run: Run::Api(layouts),
    }
}

/// `[DEFAULT] bind_host`/`bind_port` of an eventlet API's own file, with TripleO's defaults.
const fn bind_ini(
    file: &'static str,
    section: &'static str,
    port_default: &'static str,
) -> Option<IniUrl> {
    listen_ini(file, section, "bind_host", "bind_port", port_default)
}

/// An eventlet API's own listen options; an unset host binds every address, so loopback.
const fn listen_ini(
    file: &'static str,
    section: &'static str,
    host_key: &'static str,
    port_key: &'static str,
    port_default: &'static str,
) -> Option<IniUrl> {
    Some(IniUrl {
        file,
        section,
        host_key,
        host_default: "127.0.0.1",
        port_key,
        port_default,
    })
}

pub const NOVA_API: Layouts = Layouts {
    tripleo_vhost: Some("10-nova_api_wsgi.conf"),
    uwsgi_inis: &["/etc/nova/nova-api-uwsgi.ini"],
    apache_files: &[
        "nova-api-wsgi.conf",
        "nova-api.conf",
        "nova-api-os-compute.conf",
    ],
    debian_init: Some("nova-api"),
    // Ubuntu's nova-api package before 26.04 runs eventlet (its init script sets no UWSGI_PORT).
    ini: listen_ini(
        "/etc/nova/nova.conf",
        "DEFAULT",
        "osapi_compute_listen",
        "osapi_compute_listen_port",
        "8774",
    ),
};

pub const NOVA_METADATA: Layouts = Layouts {
    tripleo_vhost: Some("10-nova_metadata_wsgi.conf"),
    uwsgi_inis: &["/etc/nova/nova-metadata-uwsgi.ini"],
    apache_files: &["nova-metadata-wsgi.conf", "nova-api-metadata.conf"],
    debian_init: Some("nova-api-metadata"),
    ini: listen_ini(
        "/etc/nova/nova.conf",
        "DEFAULT",
        "metadata_listen",
        "metadata_listen_port",
        "8775",
    ),
};

pub const PROFILES: &[Profile] = &[
    api(
        "aodh-api",
        Layouts {
            tripleo_vhost: Some("10-aodh_wsgi.conf"),
            uwsgi_inis: &["/etc/aodh/aodh-api-uwsgi.ini"],
            apache_files: &["wsgi-aodh.conf", "aodh-api.conf"],
            debian_init: Some("aodh-api"),
            ..NO_FILES
        },
    ),
    api(
        "barbican-api",
        Layouts {
            tripleo_vhost: Some("10-barbican_wsgi_main.conf"),
            uwsgi_inis: &[
                "/etc/barbican/barbican-api-uwsgi.ini",
                "/etc/barbican/vassals/barbican-api.ini",
            ],
            apache_files: &["barbican-api.conf"],
            debian_init: Some("barbican-api"),
            ..NO_FILES
        },
    ),
    api(
        "cinder-api",
        Layouts {
            tripleo_vhost: Some("10-cinder_wsgi.conf"),
            uwsgi_inis: &["/etc/cinder/cinder-api-uwsgi.ini"],
            apache_files: &["cinder-wsgi.conf"],
            debian_init: Some("cinder-api"),
            ..NO_FILES
        },
    ),
    api(
        "gnocchi-api",
        Layouts {
            tripleo_vhost: Some("10-gnocchi_wsgi.conf"),
            uwsgi_inis: &["/etc/gnocchi/gnocchi-api-uwsgi.ini"],
            apache_files: &["wsgi-gnocchi.conf", "gnocchi-api.conf"],
            debian_init: Some("gnocchi-api"),
            ..NO_FILES
        },
    ),
    api(
        "heat-api",
        Layouts {
            tripleo_vhost: Some("10-heat_api_wsgi.conf"),
            uwsgi_inis: &["/etc/heat/heat-api-uwsgi.ini"],
            apache_files: &["wsgi-heat-api.conf", "heat-api.conf"],
            debian_init: Some("heat-api"),
            ini: bind_ini("/etc/heat/heat.conf", "heat_api", "8004"),
        },
    ),
    api(
        "heat-api-cfn",
        Layouts {
            tripleo_vhost: Some("10-heat_api_cfn_wsgi.conf"),
            uwsgi_inis: &["/etc/heat/heat-api-cfn-uwsgi.ini"],
            apache_files: &["wsgi-heat-api-cfn.conf", "heat-api-cfn.conf"],
            debian_init: Some("heat-api-cfn"),
            ini: bind_ini("/etc/heat/heat.conf", "heat_api_cfn", "8000"),
        },
    ),
    api(
        "ironic-api",
        Layouts {
            tripleo_vhost: Some("10-ironic_wsgi.conf"),
            uwsgi_inis: &["/etc/ironic/ironic-api-uwsgi.ini"],
            apache_files: &["ironic-api-wsgi.conf"],
            debian_init: Some("ironic-api"),
            ini: listen_ini("/etc/ironic/ironic.conf", "api", "host_ip", "port", "6385"),
        },
    ),
    api(
        "keystone",
        Layouts {
            tripleo_vhost: Some("10-keystone_wsgi.conf"),
            uwsgi_inis: &["/etc/keystone/keystone-api-uwsgi.ini"],
            apache_files: &["wsgi-keystone.conf", "keystone.conf"],
            debian_init: Some("keystone"),
            ..NO_FILES
        },
    ),
    api(
        "manila-api",
        Layouts {
            tripleo_vhost: Some("10-manila_wsgi.conf"),
            uwsgi_inis: &["/etc/manila/manila-api-uwsgi.ini"],
            debian_init: Some("manila-api"),
            ini: listen_ini(
                "/etc/manila/manila.conf",
                "DEFAULT",
                "osapi_share_listen",
                "osapi_share_listen_port",
                "8786",
            ),
            ..NO_FILES
        },
    ),
    api(
        "octavia-api",
        Layouts {
            tripleo_vhost: Some("10-octavia_wsgi.conf"),
            uwsgi_inis: &["/etc/octavia/octavia-api-uwsgi.ini"],
            apache_files: &["octavia-wsgi.conf", "octavia-api.conf"],
            debian_init: Some("octavia-api"),
            ini: bind_ini("/etc/octavia/octavia.conf", "api_settings", "9876"),
        },
    ),
    api(
        "placement-api",
        Layouts {
            tripleo_vhost: Some("10-placement_wsgi.conf"),
            uwsgi_inis: &["/etc/placement/placement-api-uwsgi.ini"],
            apache_files: &["00-placement-api.conf", "placement-api.conf"],
            debian_init: Some("placement-api"),
            ..NO_FILES
        },
    ),
    Profile {
        name: "horizon",
        summary: "GET the vhost URL of 10-horizon_vhost.conf, else of 10-horizon_ssl_vhost.conf",
        run: Run::Custom(horizon),
    },
    api(
        "glance-api",
        Layouts {
            uwsgi_inis: &["/etc/glance/glance-api-uwsgi.ini"],
            debian_init: Some("glance-api"),
            ini: bind_ini("/etc/glance/glance-api.conf", "DEFAULT", "9292"),
            ..NO_FILES
        },
    ),
    api(
        "neutron-api",
        Layouts {
            uwsgi_inis: &["/etc/neutron/neutron-server-uwsgi.ini"],
            apache_files: &["neutron-api.conf"],
            debian_init: Some("neutron-api"),
            ini: bind_ini("/etc/neutron/neutron.conf", "DEFAULT", "9696"),
            ..NO_FILES
        },
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

/// How one file answered "where does the API listen?".
enum Found {
    Url(String),
    /// The file is missing, or declares no address: why, for the message.
    PassedOver(&'static str),
}

/// The address a layout's file declares: the URL, that file, and the files passed over before it.
struct Located {
    url: String,
    path: String,
    tried: Vec<String>,
}

impl Layouts {
    /// The files, in their order of precedence, as `healthcheck profiles` lists them: `GET the
    /// API's URL: vhost 10-keystone_wsgi.conf, keystone-api-uwsgi.ini, …`.
    pub fn describe(&self) -> String {
        let vhost = self.tripleo_vhost.map(|file| format!("vhost {file}"));
        // `/etc/SERVICE/` is implied: `vassals/barbican-api.ini`.
        let uwsgi = self
            .uwsgi_inis
            .iter()
            .map(|path| path.splitn(4, '/').nth(3).unwrap_or(path).to_string());
        let apache = self.apache_files.iter().map(|file| file.to_string());
        let init = self.debian_init.map(|name| format!("/etc/init.d/{name}"));
        let ini = self.ini.as_ref().map(|ini| {
            let file = ini.file.rsplit('/').next().unwrap_or(ini.file);
            format!(
                "{file} [{}] {}:{} ({}:{})",
                ini.section, ini.host_key, ini.port_key, ini.host_default, ini.port_default
            )
        });
        let files: Vec<String> = vhost
            .into_iter()
            .chain(uwsgi)
            .chain(apache)
            .chain(init)
            .chain(ini)
            .collect();
        format!("GET the API's URL: {}", files.join(", "))
    }

    /// GET the URL from the first file that declares one; the message names that file (and,
    /// when unhealthy, every file tried before it).
    pub fn run(&self, call: &Call) -> Result<Outcome, String> {
        call.no_args()?;
        let Located { url, path, tried } = self.locate(&call.ctx.config)?;
        let outcome = call.check(http_get(url));
        let source = if outcome.healthy || tried.is_empty() {
            format!("address from {path}")
        } else {
            format!("address from {path}; tried before: {}", tried.join(", "))
        };
        Ok(Outcome {
            message: format!("{} ({source})", outcome.message),
            ..outcome
        })
    }

    /// The URL of the first file that declares one, or every file tried.
    fn locate(&self, config: &ConfigRoot) -> Result<Located, String> {
        let mut tried = Vec::new();
        for (path, kind) in self.candidates() {
            let found = if config.exists(&path) {
                kind.find(&path, config)?
            } else {
                Found::PassedOver("missing")
            };
            match found {
                Found::Url(url) => return Ok(Located { url, path, tried }),
                Found::PassedOver("missing") => tried.push(path),
                Found::PassedOver(why) => tried.push(format!("{path} ({why})")),
            }
        }
        Err(format!(
            "no listen address found in the TripleO, Kolla, Debian or Ubuntu layout; tried {}",
            tried.join(", ")
        ))
    }

    /// Every file in the order of precedence.
    fn candidates(&self) -> Vec<(String, Kind<'_>)> {
        let vhost = self
            .tripleo_vhost
            .map(|file| (format!("{}/{file}", super::VHOST_DIR), Kind::Apache));
        let uwsgi = self
            .uwsgi_inis
            .iter()
            .map(|f| (f.to_string(), Kind::UwsgiIni));
        let apache = self.apache_files.iter().flat_map(|file| {
            APACHE_DIRS
                .iter()
                .map(move |dir| (format!("{dir}/{file}"), Kind::Apache))
        });
        let init = self
            .debian_init
            .map(|name| (format!("/etc/init.d/{name}"), Kind::DebianInit(name)));
        let ini = self
            .ini
            .as_ref()
            .map(|ini| (ini.file.to_string(), Kind::Ini(ini)));
        vhost
            .into_iter()
            .chain(uwsgi)
            .chain(apache)
            .chain(init)
            .chain(ini)
            .collect()
    }
}

enum Kind<'a> {
    Apache,
    UwsgiIni,
    DebianInit(&'a str),
    Ini(&'a IniUrl),
}

impl Kind<'_> {
    fn find(&self, path: &str, config: &ConfigRoot) -> Result<Found, String> {
        let text = config.read(path)?;
        Ok(match self {
            Kind::Apache => Found::Url(
                Vhost::parse(&text)
                    .url()
                    .map_err(|e| format!("{path}: {e}"))?,
            ),
            Kind::UwsgiIni => match uwsgi::ini_socket(&crate::config::ini::Ini::parse(&text)) {
                None => Found::PassedOver("no http or https socket"),
                Some(socket) => Found::Url(socket_url(&socket, path)?),
            },
            Kind::DebianInit(name) => debian_init(&uwsgi::init_script(&text), name, path, config)?,
            Kind::Ini(ini) => {
                let ini_file = crate::config::ini::Ini::parse(&text);
                let host = ini_file.get_or(ini.section, ini.host_key, ini.host_default);
                let port =
                    ini_file.port_or(ini.file, ini.section, ini.port_key, ini.port_default)?;
                Found::Url(url("http", host, port, "/"))
            }
        })
    }
}

fn socket_url(socket: &uwsgi::Socket, path: &str) -> Result<String, String> {
    let port = parse_port(&socket.port, &format!("{path}: uWSGI port"))?;
    // An empty host binds every address: loopback reaches it.
    let host = if socket.host.is_empty() {
        "127.0.0.1"
    } else {
        &socket.host
    };
    Ok(url(
        if socket.https { "https" } else { "http" },
        host,
        port,
        "/",
    ))
}

/// The socket the init script gives uWSGI: `UWSGI_PORT` on every address, unless its
/// `UWSGI_BIND_CONFIG_*` name the INI options to read; https when the script finds a key in
/// `/etc/PROJECT/ssl/private` and a certificate in `ssl/public` (or puppet's CA file).
fn debian_init(
    script: &uwsgi::InitScript,
    name: &str,
    path: &str,
    config: &ConfigRoot,
) -> Result<Found, String> {
    let Some(mut port) = script.port.clone() else {
        return Ok(Found::PassedOver("no UWSGI_PORT"));
    };
    let mut host = script.bind_ip.clone().unwrap_or_default();
    if let Some([file, section, ip_key, port_key]) = &script.bind_config
        && let Ok(ini) = config.ini(file)
    {
        host = ini.get_or(section, ip_key, &host).to_string();
        port = ini.get_or(section, port_key, &port).to_string();
    }
    let project = script.project.as_deref().unwrap_or(name);
    let has = |dir: &str, suffix: &str| {
        std::fs::read_dir(config.path(&format!("/etc/{project}/ssl/{dir}"))).is_ok_and(|entries| {
            entries.flatten().any(|e| {
                e.file_type().is_ok_and(|t| t.is_file())
                    && e.file_name()
                        .to_string_lossy()
                        .to_ascii_lowercase()
                        .ends_with(suffix)
            })
        })
    };
    let https = has("private", ".pem")
        && (config.exists("/usr/local/share/ca-certificates/puppet_openstack.crt")
            || has("public", ".crt"));
    let socket = uwsgi::Socket { https, host, port };
    Ok(Found::Url(socket_url(&socket, path)?))
}

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
    let (_, port) = *vhost
        .listens
        .first()
        .ok_or_else(|| format!("{VHOST}: no `Listen` directive"))?;
    Ok(call.check(http_get(url("http", host, port, "/"))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profiles::ConfigTree;

    fn locate(tree: &ConfigTree, layouts: &Layouts) -> Result<(String, String), String> {
        layouts
            .locate(&tree.root())
            .map(|found| (found.url, found.path))
    }

    fn layouts(name: &str) -> &'static Layouts {
        match PROFILES.iter().find(|p| p.name == name).map(|p| &p.run) {
            Some(Run::Api(layouts)) => layouts,
            _ => panic!("{name} is not an HTTP-API profile"),
        }
    }

    /// An Apache file as the packages write them: its own `Listen` and a wildcard vhost.
    fn site(port: u16, script: &str) -> String {
        format!(
            "Listen {port}\n<VirtualHost *:{port}>\n    WSGIScriptAlias / /usr/bin/{script}\n</VirtualHost>\n"
        )
    }

    #[test]
    fn ubuntu_nova_sites() {
        for (file, port, layouts) in [
            ("nova-api.conf", 8774, &NOVA_API),
            ("nova-api-os-compute.conf", 8774, &NOVA_API),
            ("nova-api-metadata.conf", 8775, &NOVA_METADATA),
        ] {
            let path = format!("/etc/apache2/sites-enabled/{file}");
            let tree = ConfigTree::new(file, &[(&path, &site(port, "nova-api-wsgi"))]);
            assert_eq!(
                locate(&tree, layouts),
                Ok((format!("http://127.0.0.1:{port}/"), path))
            );
        }
    }

    #[test]
    fn heat_site_files() {
        for (profile, file, port) in [
            ("heat-api", "heat-api.conf", 8004),
            ("heat-api-cfn", "heat-api-cfn.conf", 8000),
        ] {
            let path = format!("/etc/apache2/sites-enabled/{file}");
            // The site file is what binds, ahead of heat.conf's eventlet options.
            let tree = ConfigTree::new(
                file,
                &[
                    (&path, &site(port, "heat-wsgi-api")),
                    ("/etc/heat/heat.conf", "[heat_api]\nbind_port = 1\n"),
                ],
            );
            assert_eq!(
                locate(&tree, layouts(profile)),
                Ok((format!("http://127.0.0.1:{port}/"), path))
            );
        }
    }

    #[test]
    fn kolla_apache_files_in_their_distribution_directory() {
        for (profile, path, port) in [
            (
                "keystone",
                "/etc/apache2/conf-enabled/wsgi-keystone.conf",
                5000,
            ),
            (
                "placement-api",
                "/etc/httpd/conf.d/00-placement-api.conf",
                8778,
            ),
            (
                "heat-api",
                "/etc/apache2/conf-enabled/wsgi-heat-api.conf",
                8004,
            ),
            ("cinder-api", "/etc/httpd/conf.d/cinder-wsgi.conf", 8776),
        ] {
            let tree = ConfigTree::new(profile, &[(path, &site(port, "wsgi"))]);
            assert_eq!(
                locate(&tree, layouts(profile)),
                Ok((format!("http://127.0.0.1:{port}/"), path.to_string()))
            );
        }
    }

    #[test]
    fn kolla_uwsgi_ini_comes_before_an_apache_site() {
        let tree = ConfigTree::new(
            "precedence",
            &[
                (
                    "/etc/keystone/keystone-api-uwsgi.ini",
                    "[uwsgi]\nhttp = 192.0.2.7:5000\n",
                ),
                ("/etc/apache2/sites-enabled/keystone.conf", &site(5001, "k")),
            ],
        );
        assert_eq!(
            locate(&tree, layouts("keystone")),
            Ok((
                "http://192.0.2.7:5000/".to_string(),
                "/etc/keystone/keystone-api-uwsgi.ini".to_string()
            ))
        );
    }

    #[test]
    fn manila_eventlet_listen_options() {
        let tree = ConfigTree::new(
            "manila",
            &[(
                "/etc/manila/manila.conf",
                "[DEFAULT]\nosapi_share_listen = 192.0.2.9\n",
            )],
        );
        assert_eq!(
            locate(&tree, layouts("manila-api")),
            Ok((
                "http://192.0.2.9:8786/".to_string(),
                "/etc/manila/manila.conf".to_string()
            ))
        );
        let empty = ConfigTree::new("manila-none", &[]);
        let error = locate(&empty, layouts("manila-api")).unwrap_err();
        assert!(
            error.contains("/etc/manila/manila.conf") && error.contains("/etc/init.d/manila-api"),
            "{error}"
        );
    }

    /// Ubuntu's packages of these APIs run the service's own server from an openstack-pkg-tools
    /// init script that sets no `UWSGI_PORT`: the address is the service's listen options.
    #[test]
    fn ubuntu_eventlet_apis_read_their_own_listen_options() {
        for (profile, layouts, ini, text, url) in [
            (
                "nova-api",
                &NOVA_API,
                "/etc/nova/nova.conf",
                "[DEFAULT]\nosapi_compute_listen_port = 18774\n",
                "http://127.0.0.1:18774/",
            ),
            (
                "nova-metadata",
                &NOVA_METADATA,
                "/etc/nova/nova.conf",
                "[DEFAULT]\nmetadata_listen = 192.0.2.5\n",
                "http://192.0.2.5:8775/",
            ),
            (
                "octavia-api",
                layouts("octavia-api"),
                "/etc/octavia/octavia.conf",
                "[api_settings]\n",
                "http://127.0.0.1:9876/",
            ),
            (
                "ironic-api",
                layouts("ironic-api"),
                "/etc/ironic/ironic.conf",
                "[api]\nhost_ip = 192.0.2.6\nport = 16385\n",
                "http://192.0.2.6:16385/",
            ),
        ] {
            let init = format!("/etc/init.d/{}", layouts.debian_init.unwrap());
            let tree = ConfigTree::new(
                profile,
                &[(&init, "#!/bin/sh\nPROJECT_NAME=x\nNAME=y\n"), (ini, text)],
            );
            assert_eq!(
                locate(&tree, layouts),
                Ok((url.to_string(), ini.to_string())),
                "{profile}"
            );
        }
    }
}
