//! The small part of URL syntax a health check needs: scheme, optional user info, host
//! (bracketed IPv6 literals included, so no curl `-g` is needed), port, path and query.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub scheme: Scheme,
    /// `user:password` from `http://user:password@host/`, still percent-encoded.
    pub user_info: Option<String>,
    /// The host without brackets: `::1`, `127.0.0.1`, `nova.example`.
    pub host: String,
    pub port: u16,
    /// Path and query as sent in the request line; never empty.
    pub target: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Url {
    pub fn parse(text: &str) -> Result<Url, String> {
        let bad = |why: &str| format!("invalid URL `{text}`: {why}");
        let (scheme, rest) = match text.split_once("://") {
            Some((s, rest)) if s.eq_ignore_ascii_case("http") => (Scheme::Http, rest),
            Some((s, rest)) if s.eq_ignore_ascii_case("https") => (Scheme::Https, rest),
            Some((s, _)) => return Err(bad(&format!("scheme `{s}` is not http or https"))),
            None => return Err(bad("expected http:// or https://")),
        };
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("contains whitespace or control characters"));
        }
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let (user_info, host_port) = match authority.rsplit_once('@') {
            Some((user, host_port)) => (Some(user.to_string()), host_port),
            None => (None, authority),
        };
        let (host, port_text) = if let Some(bracketed) = host_port.strip_prefix('[') {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| bad("unclosed `[` in host"))?;
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad(&format!("`{host}` is not an IPv6 address")));
            }
            match after {
                "" => (host, None),
                _ => (
                    host,
                    Some(
                        after
                            .strip_prefix(':')
                            .ok_or_else(|| bad("junk after `]`"))?,
                    ),
                ),
            }
        } else {
            match host_port.split_once(':') {
                Some((host, port)) if !port.contains(':') => (host, Some(port)),
                Some(_) => return Err(bad("IPv6 addresses must be in brackets: http://[::1]:80/")),
                None => (host_port, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port_text {
            None | Some("") => scheme.default_port(),
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| bad(&format!("port `{p}` is not 1-65535")))?,
        };
        let tail = tail.split('#').next().unwrap_or("");
        let target = if tail.starts_with('/') {
            tail.to_string()
        } else {
            format!("/{tail}")
        };
        Ok(Url {
            scheme,
            user_info,
            host: host.to_string(),
            port,
            target,
        })
    }

    /// The `Host` header value: brackets around IPv6, port only when not the default.
    pub fn host_header(&self) -> String {
        let host = self.bracketed_host();
        if self.port == self.scheme.default_port() {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    pub fn bracketed_host(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }
}

impl Scheme {
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

impl fmt::Display for Url {
    /// The URL without user info, safe for messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}:{}{}",
            self.scheme.as_str(),
            self.bracketed_host(),
            self.port,
            self.target
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_tripleo_configs_produce() {
        let url = Url::parse("https://[fd00:fd00::10]:13774/v2.1/?x=1#frag").unwrap();
        assert_eq!(url.scheme, Scheme::Https);
        assert_eq!(url.host, "fd00:fd00::10");
        assert_eq!(url.port, 13774);
        assert_eq!(url.target, "/v2.1/?x=1");
        assert_eq!(url.host_header(), "[fd00:fd00::10]:13774");

        let url = Url::parse("http://admin:s%40cret@controller-0.internalapi:8774").unwrap();
        assert_eq!(url.user_info.as_deref(), Some("admin:s%40cret"));
        assert_eq!(
            (url.host.as_str(), url.port, url.target.as_str()),
            ("controller-0.internalapi", 8774, "/")
        );
        assert_eq!(url.to_string(), "http://controller-0.internalapi:8774/");

        assert_eq!(Url::parse("HTTP://h?q").unwrap().target, "/?q");
        assert_eq!(Url::parse("https://h/").unwrap().host_header(), "h");
    }

    #[test]
    fn rejects_what_curl_would_misread() {
        for (text, why) in [
            ("ftp://h/", "scheme `ftp`"),
            ("h:80/", "expected http://"),
            ("http://::1/", "IPv6 addresses must be in brackets"),
            ("http://[::1/", "unclosed"),
            ("http://[zz]/", "not an IPv6 address"),
            ("http://h:0/", "port `0`"),
            ("http://h:99999/", "port `99999`"),
            ("http:///x", "no host"),
            ("http://h/a b", "whitespace"),
        ] {
            let err = Url::parse(text).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
        }
    }
}
