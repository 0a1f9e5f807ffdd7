//! A TCP connection to an address is accepted.

use healthcheck_spec::TcpCheck;

use super::Context;
use crate::Outcome;
use crate::net::connect;

pub fn run(spec: &TcpCheck, ctx: &Context) -> Outcome {
    let (host, port) = match split_host_port(&spec.address) {
        Ok(parts) => parts,
        Err(e) => return Outcome::unhealthy(e),
    };
    match connect(&ctx.resolver, host, port, &ctx.deadline) {
        Ok(stream) => {
            let peer = stream
                .peer_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|_| spec.address.clone());
            Outcome::healthy(format!("tcp {} connected to {peer}", spec.address))
        }
        Err(e) => Outcome::unhealthy(format!("tcp {}: {e}", spec.address)),
    }
}

/// `host:port` or `[v6]:port`.
pub fn split_host_port(address: &str) -> Result<(&str, u16), String> {
    let bad = |why: &str| format!("invalid address `{address}`: {why}");
    let (host, port) = match address.strip_prefix('[') {
        Some(rest) => {
            let (host, port) = rest
                .split_once("]:")
                .ok_or_else(|| bad("expected [IPv6]:PORT"))?;
            (host, port)
        }
        None => {
            let (host, port) = address
                .rsplit_once(':')
                .ok_or_else(|| bad("expected HOST:PORT"))?;
            if host.contains(':') {
                return Err(bad("IPv6 addresses must be in brackets: [::1]:5672"));
            }
            (host, port)
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| bad("port must be 1-65535"))?;
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_ipv4_ipv6_and_names() {
        assert_eq!(
            split_host_port("127.0.0.1:5672").unwrap(),
            ("127.0.0.1", 5672)
        );
        assert_eq!(
            split_host_port("[fd00::1]:6379").unwrap(),
            ("fd00::1", 6379)
        );
        assert_eq!(
            split_host_port("redis.internal:6379").unwrap(),
            ("redis.internal", 6379)
        );
        for (bad, why) in [
            ("::1:80", "brackets"),
            ("h", "HOST:PORT"),
            ("h:0", "1-65535"),
            (":80", "no host"),
            ("[::1]80", "[IPv6]:PORT"),
        ] {
            let err = split_host_port(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
