//! Apache vhost files as TripleO's `get_url_from_vhost` read them: the first
//! `<VirtualHost host:port>`, `ServerName`, `SSLEngine on` → https, and the path of the first
//! `WSGIScriptAlias ` (exactly that directive, not `WSGIScriptAliasMatch`); an alias `/` stays
//! `/`, any other gets a trailing `/`. Directives are case-insensitive, as Apache's.
//!
//! Kolla's and Ubuntu's files carry their own `Listen [ADDRESS:]PORT` and a `<VirtualHost *:PORT>`
//! (TripleO's `Listen` lines live in `ports.conf`): for a wildcard vhost, the `Listen` of its port
//! says where it answers (its address, or loopback when it listens on every address).

use healthcheck_spec::address::bracket_ipv6;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Vhost {
    /// `host` of the first `<VirtualHost host:port>`.
    pub address: Option<String>,
    pub port: Option<u16>,
    pub server_name: Option<String>,
    pub ssl: bool,
    pub wsgi_alias: Option<String>,
    /// `Listen` directives, in order: address (if any) and port (`Listen 8088`,
    /// `Listen 10.0.0.1:8088`).
    pub listens: Vec<(Option<String>, u16)>,
}

impl Vhost {
    pub fn parse(text: &str) -> Vhost {
        let mut vhost = Vhost::default();
        for line in text.lines().map(str::trim) {
            if line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            let Some(directive) = words.next() else {
                continue;
            };
            let argument = words.next();
            match directive.to_ascii_lowercase().as_str() {
                "<virtualhost" if vhost.port.is_none() => {
                    let target = argument.unwrap_or("").trim_end_matches('>');
                    let (host, port) = split_address(target);
                    vhost.address = host.map(str::to_string);
                    vhost.port = port;
                }
                "servername" if vhost.server_name.is_none() => {
                    vhost.server_name = argument.map(strip_scheme_and_port);
                }
                "sslengine" => vhost.ssl = argument.is_some_and(|a| a.eq_ignore_ascii_case("on")),
                "wsgiscriptalias" if vhost.wsgi_alias.is_none() => {
                    vhost.wsgi_alias = argument.map(str::to_string)
                }
                "listen" => {
                    if let Some((host, Some(port))) = argument.map(split_address) {
                        vhost.listens.push((host.map(str::to_string), port));
                    }
                }
                _ => {}
            }
        }
        vhost
    }

    /// `proto://ServerName:port/alias/`, or why the file does not give one.
    pub fn url(&self) -> Result<String, String> {
        let port = self
            .port
            .ok_or("no `<VirtualHost host:port>` with a port")?;
        let wildcard = |address: &str| matches!(address, "*" | "_default_" | "0.0.0.0" | "::");
        let listen = self.listens.iter().find(|(_, p)| *p == port);
        let host = match (&self.address, listen, &self.server_name) {
            (Some(address), Some((listen_address, _)), _) if wildcard(address) => {
                match listen_address.as_deref() {
                    Some(address) if !wildcard(address) => address,
                    _ => "127.0.0.1",
                }
            }
            (_, _, Some(name)) => name.as_str(),
            // Without ServerName the vhost's own address is where it answers.
            (Some(address), _, None) if !wildcard(address) => address,
            _ => {
                return Err(
                    "no `ServerName`, no address in `<VirtualHost>` and no `Listen` for its port"
                        .to_string(),
                );
            }
        };
        let scheme = if self.ssl { "https" } else { "http" };
        let path = match self.wsgi_alias.as_deref() {
            None | Some("/") => "/".to_string(),
            Some(alias) => format!("/{}/", alias.trim_matches('/')),
        };
        Ok(format!("{scheme}://{}:{port}{path}", bracket_ipv6(host)))
    }
}

/// `host:port`, `[v6]:port`, `port` or `host` (Apache's address forms).
fn split_address(text: &str) -> (Option<&str>, Option<u16>) {
    if let Ok(port) = text.parse::<u16>() {
        return (None, Some(port));
    }
    if let Some(rest) = text.strip_prefix('[') {
        return match rest.split_once("]:") {
            Some((host, port)) => (Some(host), port.parse().ok()),
            None => (Some(rest.trim_end_matches(']')), None),
        };
    }
    match text.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (Some(host), port.parse().ok()),
        _ => (Some(text), None),
    }
}

/// `ServerName https://api.example:443` → `api.example`; an IPv6 literal stays whole.
fn strip_scheme_and_port(name: &str) -> String {
    let name = name.split_once("://").map_or(name, |(_, rest)| rest);
    match split_address(name) {
        (Some(host), Some(_)) => host.to_string(),
        _ => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOVA_API: &str = r#"
# ************************************
# Vhost template in module puppetlabs-apache
<VirtualHost 172.17.1.10:8774>
  ServerName controller-0.internalapi.localdomain

  ## Vhost docroot
  DocumentRoot "/var/www/cgi-bin/nova"
  SSLEngine on
  WSGIScriptAliasMatch ^/foo /var/www/cgi-bin/foo
  WSGIScriptAlias /compute "/var/www/cgi-bin/nova/nova-api"
  WSGIScriptAlias / "/var/www/cgi-bin/nova/other"
</VirtualHost>
"#;

    #[test]
    fn tripleo_nova_api_vhost() {
        let vhost = Vhost::parse(NOVA_API);
        assert_eq!(
            vhost.url().unwrap(),
            "https://controller-0.internalapi.localdomain:8774/compute/"
        );
    }

    #[test]
    fn root_alias_plain_http_and_ipv6() {
        let vhost = Vhost::parse(
            "<VirtualHost [fd00:fd00::10]:5000>\nservername fd00:fd00::10\nSSLEngine off\nWSGIScriptAlias / /var/www/keystone\n</VirtualHost>",
        );
        assert_eq!(vhost.url().unwrap(), "http://[fd00:fd00::10]:5000/");
    }

    #[test]
    fn no_alias_and_no_server_name() {
        let vhost = Vhost::parse("<VirtualHost 127.0.0.1:8042>\n</VirtualHost>\n");
        assert_eq!(vhost.url().unwrap(), "http://127.0.0.1:8042/");
        let err = Vhost::parse("<VirtualHost *:80>\n").url().unwrap_err();
        assert!(err.contains("no `ServerName`"), "{err}");
        assert!(err.contains("no `Listen` for its port"), "{err}");
        let err = Vhost::parse("ServerName x\n").url().unwrap_err();
        assert!(err.contains("<VirtualHost host:port>"), "{err}");
    }

    #[test]
    fn listen_ports_and_server_name_forms() {
        let vhost = Vhost::parse(
            "Listen 8088\nListen 10.0.0.1:8089\nListen [::1]:8090\n<VirtualHost *:8088>\nServerName https://pxe.local:8088\n",
        );
        let ports: Vec<u16> = vhost.listens.iter().map(|(_, p)| *p).collect();
        assert_eq!(ports, [8088, 8089, 8090]);
        // A wildcard vhost answers where its port's `Listen` is: here every address.
        assert_eq!(vhost.url().unwrap(), "http://127.0.0.1:8088/");
        let vhost = Vhost::parse("<VirtualHost *:8088>\nServerName https://pxe.local:8088\n");
        assert_eq!(vhost.url().unwrap(), "http://pxe.local:8088/");
    }

    #[test]
    fn kolla_and_ubuntu_files_listen_themselves() {
        // Kolla's wsgi-keystone.conf (external TLS sets ServerName to the public URL).
        let kolla = "Listen 172.17.1.10:5000\nServerSignature Off\n<VirtualHost *:5000>\n    ServerName https://public.example:5000\n    WSGIScriptAlias / /var/lib/kolla/venv/bin/keystone-wsgi-public\n    SSLEngine on\n</VirtualHost>\n";
        assert_eq!(
            Vhost::parse(kolla).url().unwrap(),
            "https://172.17.1.10:5000/"
        );
        let kolla_v6 = "Listen [fd00::10]:8774\nListen [fd00::10]:8775\n<VirtualHost *:8774>\n</VirtualHost>\n<VirtualHost *:8775>\n";
        assert_eq!(
            Vhost::parse(kolla_v6).url().unwrap(),
            "http://[fd00::10]:8774/"
        );
        // Ubuntu's keystone.conf.
        let ubuntu = "Listen 5000\n\n<VirtualHost *:5000>\n    WSGIScriptAlias / /usr/bin/keystone-wsgi-public\n";
        assert_eq!(
            Vhost::parse(ubuntu).url().unwrap(),
            "http://127.0.0.1:5000/"
        );
    }
}
