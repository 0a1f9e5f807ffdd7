//! `host:port` and IPv6 bracketing, once for the probe's checks and the operator's validation
//! and renderers (the CRD's CEL rule for `tcp.address` accepts the same language).

/// `host:port` or `[v6]:port` → (host without brackets, port 1–65535).
pub fn split_host_port(address: &str) -> Result<(&str, u16), String> {
    let bad = |why: &str| format!("invalid address `{address}`: {why}");
    let (host, port) = match address.strip_prefix('[') {
        Some(rest) => {
            let (host, port) = rest
                .split_once("]:")
                .ok_or_else(|| bad("expected [IPv6]:PORT"))?;
            match host.parse::<std::net::Ipv6Addr>() {
                Err(_) => return Err(bad("only an IPv6 address goes in brackets")),
                // As Kubernetes' own IP parsing (the CRD's rule) refuses them.
                Ok(ip) if ip.to_ipv4_mapped().is_some() => {
                    return Err(bad(
                        "an IPv4-mapped IPv6 address; write the IPv4 address without brackets",
                    ));
                }
                Ok(_) => {}
            }
            (host, port)
        }
        None => {
            let (host, port) = address
                .rsplit_once(':')
                .ok_or_else(|| bad("expected HOST:PORT"))?;
            if host.contains(':') {
                return Err(bad("IPv6 addresses must be in brackets: [::1]:5672"));
            }
            if host.contains(['[', ']', '/']) {
                return Err(bad("a host name has no `[`, `]` or `/`"));
            }
            (host, port)
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = Some(port)
        .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|p| p.parse::<u16>().ok())
        .filter(|&p| p > 0)
        .ok_or_else(|| bad("port must be 1-65535"))?;
    Ok((host, port))
}

/// Brackets an IPv6 literal for a URL or `host:port`, as TripleO's `wrap_ipv6`.
pub fn bracket_ipv6(host: &str) -> String {
    if host.contains(':') && !host.ends_with(']') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// `host:port`, the host bracketed when it is an IPv6 literal.
pub fn join_host_port(host: &str, port: u16) -> String {
    format!("{}:{port}", bracket_ipv6(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_ipv4_ipv6_and_names() {
        for (address, host, port) in [
            ("127.0.0.1:5672", "127.0.0.1", 5672),
            ("[fd00::1]:6379", "fd00::1", 6379),
            ("redis.internal:6379", "redis.internal", 6379),
            ("rabbit:5672", "rabbit", 5672),
            ("10.0.0.1:1", "10.0.0.1", 1),
            ("[fd00::1]:65535", "fd00::1", 65535),
        ] {
            assert_eq!(split_host_port(address), Ok((host, port)), "{address}");
        }
        for (bad, why) in [
            ("::1:80", "brackets"),
            ("fd00::1:80", "brackets"),
            ("h", "HOST:PORT"),
            ("rabbit", "HOST:PORT"),
            ("h:0", "1-65535"),
            ("h:65536", "1-65535"),
            ("h:8o", "1-65535"),
            ("h:+80", "1-65535"),
            ("rabbit:", "1-65535"),
            (":80", "no host"),
            ("[::1]80", "[IPv6]:PORT"),
            ("[::1]", "[IPv6]:PORT"),
            ("[zz]:80", "only an IPv6 address"),
            ("[:::::]:80", "only an IPv6 address"),
            ("[127.0.0.1]:80", "only an IPv6 address"),
            ("[::ffff:10.0.0.1]:80", "IPv4-mapped"),
            ("a/b:80", "no `[`, `]` or `/`"),
            ("a]:80", "no `[`, `]` or `/`"),
        ] {
            let err = split_host_port(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn brackets_only_bare_ipv6() {
        assert_eq!(bracket_ipv6("fd00::1"), "[fd00::1]");
        assert_eq!(bracket_ipv6("[fd00::1]"), "[fd00::1]");
        assert_eq!(bracket_ipv6("172.17.1.10"), "172.17.1.10");
        assert_eq!(
            bracket_ipv6("controller-0.internalapi"),
            "controller-0.internalapi"
        );
        assert_eq!(join_host_port("::1", 3306), "[::1]:3306");
        assert_eq!(join_host_port("db", 3306), "db:3306");
    }
}
