//! The small part of URL syntax a health check needs: scheme, optional user info, host
//! (bracketed IPv6 literals included, so no curl `-g` is needed), port, path and query.
//! One parser, so the probe requests exactly what the operator renders for Kubernetes.

use std::fmt;

use crate::address::bracket_ipv6;

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

/// Why a URL was rejected; displayed as `invalid URL `TEXT`: why`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlError {
    pub text: String,
    pub problem: UrlProblem,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UrlProblem {
    NoScheme,
    Scheme(String),
    Whitespace,
    UnclosedBracket,
    NotIpv6(String),
    JunkAfterBracket,
    UnbracketedIpv6,
    NoHost,
    Port(String),
}

impl fmt::Display for UrlProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlProblem::NoScheme => write!(f, "expected http:// or https://"),
            UrlProblem::Scheme(s) => write!(f, "scheme `{s}` is not http or https"),
            UrlProblem::Whitespace => write!(f, "contains whitespace or control characters"),
            UrlProblem::UnclosedBracket => write!(f, "unclosed `[` in host"),
            UrlProblem::NotIpv6(host) => write!(f, "`{host}` is not an IPv6 address"),
            UrlProblem::JunkAfterBracket => write!(f, "junk after `]`"),
            UrlProblem::UnbracketedIpv6 => {
                write!(f, "IPv6 addresses must be in brackets: http://[::1]:80/")
            }
            UrlProblem::NoHost => write!(f, "no host"),
            UrlProblem::Port(p) => write!(f, "port `{p}` is not 1-65535"),
        }
    }
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid URL `{}`: {}", self.text, self.problem)
    }
}

impl std::error::Error for UrlError {}

impl From<UrlError> for String {
    fn from(error: UrlError) -> String {
        error.to_string()
    }
}

impl Url {
    pub fn parse(text: &str) -> Result<Url, UrlError> {
        let bad = |problem: UrlProblem| UrlError {
            text: text.to_string(),
            problem,
        };
        let (scheme, rest) = match text.split_once("://") {
            Some((s, rest)) if s.eq_ignore_ascii_case("http") => (Scheme::Http, rest),
            Some((s, rest)) if s.eq_ignore_ascii_case("https") => (Scheme::Https, rest),
            Some((s, _)) => return Err(bad(UrlProblem::Scheme(s.to_string()))),
            None => return Err(bad(UrlProblem::NoScheme)),
        };
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad(UrlProblem::Whitespace));
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
                .ok_or_else(|| bad(UrlProblem::UnclosedBracket))?;
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad(UrlProblem::NotIpv6(host.to_string())));
            }
            match after {
                "" => (host, None),
                _ => (
                    host,
                    Some(
                        after
                            .strip_prefix(':')
                            .ok_or_else(|| bad(UrlProblem::JunkAfterBracket))?,
                    ),
                ),
            }
        } else {
            match host_port.split_once(':') {
                Some((host, port)) if !port.contains(':') => (host, Some(port)),
                Some(_) => return Err(bad(UrlProblem::UnbracketedIpv6)),
                None => (host_port, None),
            }
        };
        if host.is_empty() {
            return Err(bad(UrlProblem::NoHost));
        }
        let port = match port_text {
            None | Some("") => scheme.default_port(),
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| bad(UrlProblem::Port(p.to_string())))?,
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
        bracket_ipv6(&self.host)
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
        let fragment = Url::parse("http://h#x").unwrap();
        assert_eq!(
            (fragment.host.as_str(), fragment.target.as_str()),
            ("h", "/")
        );
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
            let err = Url::parse(text).unwrap_err().to_string();
            assert!(err.contains(why), "{text}: {err}");
        }
    }
}
