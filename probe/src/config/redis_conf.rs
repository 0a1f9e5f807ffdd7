//! `redis.conf`: `directive arg...` lines; the first `bind` address, `port` and
//! `requirepass` are what a client needs. A directive given twice keeps its last value.

#[derive(Debug, PartialEq, Eq)]
pub struct RedisConf {
    pub bind: String,
    pub port: String,
    pub password: Option<String>,
}

pub fn parse(text: &str) -> RedisConf {
    let mut conf = RedisConf {
        bind: "127.0.0.1".to_string(),
        port: "6379".to_string(),
        password: None,
    };
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') {
            continue;
        }
        let Some((directive, rest)) = line.split_once(char::is_whitespace) else {
            continue;
        };
        let rest = rest.trim();
        match directive.to_ascii_lowercase().as_str() {
            "bind" => {
                // `bind 127.0.0.1 -::1`: a leading `-` marks an optional address.
                if let Some(first) = rest.split_whitespace().next() {
                    conf.bind = first.trim_start_matches('-').to_string();
                }
            }
            "port" => conf.port = rest.to_string(),
            "requirepass" => conf.password = Some(unquote(rest).to_string()),
            _ => {}
        }
    }
    conf
}

fn unquote(text: &str) -> &str {
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_port_and_password() {
        let conf = parse(
            "# bind 0.0.0.0\nbind fd00::5 127.0.0.1\nport 16379\nrequirepass \"s3cr3t pass\"\nport 16380\n",
        );
        assert_eq!(
            conf,
            RedisConf {
                bind: "fd00::5".into(),
                port: "16380".into(),
                password: Some("s3cr3t pass".into())
            }
        );
        let defaults = parse("save 900 1\n");
        assert_eq!(
            (defaults.bind.as_str(), defaults.port.as_str()),
            ("127.0.0.1", "6379")
        );
        assert_eq!(defaults.password, None);
        assert_eq!(parse("bind -::1 127.0.0.1\n").bind, "::1");
    }
}
