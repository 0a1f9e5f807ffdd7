//! RabbitMQ's configuration: `rabbitmq.conf` (the sysctl-like `key = value` format: the first
//! TCP listener `listeners.tcp.default = 5672` or `listeners.tcp.1 = 172.17.1.10:5672`, the
//! default user, password and vhost) and the classic Erlang-term `rabbitmq.config` TripleO
//! writes (`{tcp_listeners, [{"172.17.1.10", 5672}]}`, `{default_user, <<"guest">>}`).

use regex_lite::Regex;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct RabbitConf {
    /// `5672` or `host:port` / `[v6]:port` as written.
    pub listener: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub vhost: Option<String>,
}

pub fn parse(text: &str) -> RabbitConf {
    let mut conf = RabbitConf::default();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim().to_string());
        match key {
            "default_user" => conf.user = Some(value),
            "default_pass" => conf.password = Some(value),
            "default_vhost" => conf.vhost = Some(value),
            key if key.starts_with("listeners.tcp.") && conf.listener.is_none() => {
                conf.listener = Some(value)
            }
            _ => {}
        }
    }
    conf
}

/// The same settings from an Erlang-term `rabbitmq.config`, found by pattern rather than a full
/// Erlang parser: these tuples have one fixed shape.
pub fn parse_erlang(text: &str) -> RabbitConf {
    let capture = |pattern: &str| {
        Regex::new(pattern)
            .expect("constant pattern")
            .captures(text)
            .map(|c| {
                c.iter()
                    .skip(1)
                    .flatten()
                    .map(|m| m.as_str().to_string())
                    .collect::<Vec<_>>()
            })
    };
    let binary = |key: &str| {
        capture(&format!(r#"\{{\s*{key}\s*,\s*<<"([^"]*)">>"#)).and_then(|mut v| v.pop())
    };
    RabbitConf {
        listener: capture(r#"\{\s*tcp_listeners\s*,\s*\[\s*(?:\{\s*"([^"]+)"\s*,\s*(\d+)|(\d+))"#)
            .map(|parts| match parts.as_slice() {
                [host, port] => format!("{}:{port}", healthcheck_spec::address::bracket_ipv6(host)),
                [port] => port.clone(),
                _ => String::new(),
            }),
        user: binary("default_user"),
        password: binary("default_pass"),
        vhost: binary("default_vhost"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_and_credentials() {
        let conf = parse(
            "# comment\nlisteners.tcp.1 = 172.17.1.10:5672\nlisteners.tcp.2 = [fd00::1]:5672\n\
             default_user = guest\ndefault_pass = p=w\nloopback_users.guest = false\n",
        );
        assert_eq!(conf.listener.as_deref(), Some("172.17.1.10:5672"));
        assert_eq!(conf.user.as_deref(), Some("guest"));
        assert_eq!(conf.password.as_deref(), Some("p=w"));
        assert_eq!(conf.vhost, None);
    }

    #[test]
    fn erlang_terms() {
        let conf = parse_erlang(
            "[\n  {rabbit, [\n    {tcp_listeners, [{\"fd00::1\", 5672}]},\n    {default_user, <<\"guest\">>},\n    {default_pass, <<\"s3cr3t\">>}\n  ]}\n].\n",
        );
        assert_eq!(conf.listener.as_deref(), Some("[fd00::1]:5672"));
        assert_eq!(conf.user.as_deref(), Some("guest"));
        assert_eq!(conf.password.as_deref(), Some("s3cr3t"));
        assert_eq!(
            parse_erlang("[{rabbit, [{tcp_listeners, [5673]}]}].")
                .listener
                .as_deref(),
            Some("5673")
        );
    }
}
