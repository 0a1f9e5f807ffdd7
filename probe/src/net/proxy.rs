//! Proxy selection. Proxies are ignored unless `HEALTHCHECK_USE_PROXY` is set to something other
//! than `0`, as TripleO decided after operators' `no_proxy` settings broke checks (rhbz#2121349).
//! When enabled, `no_proxy` entries may be host suffixes, `*`, IP addresses or CIDR ranges —
//! the CIDR form curl could not parse, which is why TripleO grew a python fallback.

use std::net::IpAddr;

use super::url::{Scheme, Url};

/// The variables that matter, read once from the environment.
#[derive(Clone, Debug, Default)]
pub struct ProxyEnv {
    pub enabled: bool,
    pub http_proxy: Option<String>,
    pub https_proxy: Option<String>,
    pub no_proxy: Option<String>,
}

impl ProxyEnv {
    pub fn from_env() -> Self {
        let var = |lower: &str, upper: &str| {
            std::env::var(lower)
                .or_else(|_| std::env::var(upper))
                .ok()
                .filter(|v| !v.is_empty())
        };
        ProxyEnv {
            enabled: std::env::var("HEALTHCHECK_USE_PROXY")
                .is_ok_and(|v| !v.is_empty() && v != "0"),
            http_proxy: var("http_proxy", "HTTP_PROXY"),
            https_proxy: var("https_proxy", "HTTPS_PROXY"),
            no_proxy: var("no_proxy", "NO_PROXY"),
        }
    }

    /// The proxy `(host, port)` to use for `url`, if any.
    pub fn proxy_for(&self, url: &Url) -> Result<Option<(String, u16)>, String> {
        if !self.enabled {
            return Ok(None);
        }
        let proxy = match url.scheme {
            Scheme::Http => &self.http_proxy,
            Scheme::Https => &self.https_proxy,
        };
        let Some(proxy) = proxy else { return Ok(None) };
        if self
            .no_proxy
            .as_deref()
            .is_some_and(|list| bypasses(list, &url.host))
        {
            return Ok(None);
        }
        let with_scheme = if proxy.contains("://") {
            proxy.clone()
        } else {
            format!("http://{proxy}")
        };
        let parsed = Url::parse(&with_scheme).map_err(|e| format!("bad proxy setting: {e}"))?;
        if parsed.scheme != Scheme::Http {
            return Err(format!(
                "proxy `{proxy}`: only http:// proxies are supported"
            ));
        }
        // curl's default proxy port when none is given.
        let port = if with_scheme
            .trim_end_matches('/')
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            parsed.port
        } else {
            1080
        };
        Ok(Some((parsed.host, port)))
    }
}

fn bypasses(no_proxy: &str, host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let host_ip = host.parse::<IpAddr>().ok();
    no_proxy
        .split([',', ' '])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            let entry = entry.trim_start_matches('[').trim_end_matches(']');
            if let (Some(ip), Some((net, bits))) = (host_ip, entry.split_once('/')) {
                return in_cidr(ip, net, bits);
            }
            if let (Some(ip), Ok(exact)) = (host_ip, entry.parse::<IpAddr>()) {
                return ip == exact;
            }
            let suffix = entry.trim_start_matches('.').to_ascii_lowercase();
            host == suffix || host.ends_with(&format!(".{suffix}"))
        })
}

fn in_cidr(ip: IpAddr, net: &str, bits: &str) -> bool {
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(no_proxy: &str) -> ProxyEnv {
        ProxyEnv {
            enabled: true,
            http_proxy: Some("proxy.example:3128".into()),
            https_proxy: Some("http://[fd00::1]".into()),
            no_proxy: Some(no_proxy.into()),
        }
    }

    fn via(env: &ProxyEnv, url: &str) -> Option<(String, u16)> {
        env.proxy_for(&Url::parse(url).unwrap()).unwrap()
    }

    #[test]
    fn ignored_unless_enabled() {
        let disabled = ProxyEnv {
            enabled: false,
            ..env("")
        };
        assert_eq!(via(&disabled, "http://10.0.0.1/"), None);
    }

    #[test]
    fn chooses_per_scheme_with_default_port() {
        let env = env("");
        assert_eq!(
            via(&env, "http://api/"),
            Some(("proxy.example".into(), 3128))
        );
        assert_eq!(via(&env, "https://api/"), Some(("fd00::1".into(), 1080)));
    }

    #[test]
    fn no_proxy_understands_cidr_suffixes_and_ips() {
        let env = env("localhost, .internalapi.localdomain,172.17.0.0/16,fd00::/8,192.0.2.9");
        for bypassed in [
            "http://localhost/",
            "http://controller-0.internalapi.localdomain/",
            "http://172.17.1.10:8774/",
            "http://[fd00::10]/",
            "http://192.0.2.9/",
        ] {
            assert_eq!(via(&env, bypassed), None, "{bypassed}");
        }
        for proxied in [
            "http://172.18.0.1/",
            "http://internalapi.localdomain.evil/",
            "http://192.0.2.90/",
        ] {
            assert!(via(&env, proxied).is_some(), "{proxied}");
        }
    }
}
