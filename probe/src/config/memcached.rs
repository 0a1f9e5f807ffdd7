//! memcached's listen address from its options: TripleO's `/etc/sysconfig/memcached`
//! (`PORT=`, `OPTIONS="-l ip,notls:ip:port ..."`) or Debian's `/etc/memcached.conf` (one
//! option per line). A `notls:` listener wins: it is the one a plain client can talk to.

use std::collections::HashMap;

#[derive(Debug, PartialEq, Eq)]
pub struct Listener {
    pub host: String,
    pub port: String,
}

/// From option words (`-l`, `-lX`, `--listen=X`, `-p`, `--port=`), with `default_port`
/// from elsewhere (`PORT=`).
pub fn from_options(words: &[&str], default_port: &str) -> Listener {
    let mut listens: Vec<String> = Vec::new();
    let mut port = default_port.to_string();
    let mut iter = words.iter();
    while let Some(word) = iter.next() {
        let mut value_of = |flag: &str, long: &str| -> Option<String> {
            if *word == flag || *word == long {
                iter.next().map(|w| w.to_string())
            } else if let Some(v) = word.strip_prefix(&format!("{long}=")) {
                Some(v.to_string())
            } else {
                word.strip_prefix(flag)
                    .filter(|v| !v.is_empty() && !flag.starts_with("--"))
                    .map(str::to_string)
            }
        };
        if let Some(list) = value_of("-l", "--listen") {
            listens.extend(list.split(',').map(str::to_string));
        } else if let Some(p) = value_of("-p", "--port") {
            port = p;
        }
    }
    if let Some(notls) = listens.iter().find_map(|l| l.strip_prefix("notls:")) {
        // `notls:ADDR:PORT`, ADDR possibly a bracketed or bare IPv6 literal.
        if let Some((host, p)) = notls.rsplit_once(':') {
            return Listener {
                host: host.trim_matches(['[', ']']).to_string(),
                port: p.to_string(),
            };
        }
    }
    let host = listens
        .iter()
        .find(|l| !l.is_empty())
        .map(|l| l.trim_matches(['[', ']']).to_string())
        .unwrap_or_else(|| "127.0.0.1".to_string());
    Listener { host, port }
}

/// TripleO's sysconfig form.
pub fn from_sysconfig(vars: &HashMap<String, String>) -> Listener {
    let options = vars.get("OPTIONS").map(String::as_str).unwrap_or("");
    let words: Vec<&str> = options.split_whitespace().collect();
    from_options(&words, vars.get("PORT").map_or("11211", String::as_str))
}

/// Debian's `/etc/memcached.conf`: one option per line, `#` comments.
pub fn from_debian_conf(text: &str) -> Listener {
    let words: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .flat_map(str::split_whitespace)
        .collect();
    from_options(&words, "11211")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn tripleo_sysconfig_with_and_without_tls() {
        let plain = from_sysconfig(&vars(&[
            ("PORT", "11212"),
            ("OPTIONS", "-l 172.17.1.10 -U 0"),
        ]));
        assert_eq!(
            plain,
            Listener {
                host: "172.17.1.10".into(),
                port: "11212".into()
            }
        );
        let tls = from_sysconfig(&vars(&[
            ("PORT", "11211"),
            (
                "OPTIONS",
                "-l [fd00::1]:11211,notls:[fd00::1]:11311 -Z -o ssl_chain_cert=x",
            ),
        ]));
        assert_eq!(
            tls,
            Listener {
                host: "fd00::1".into(),
                port: "11311".into()
            }
        );
        assert_eq!(
            from_sysconfig(&vars(&[])),
            Listener {
                host: "127.0.0.1".into(),
                port: "11211".into()
            }
        );
    }

    #[test]
    fn debian_conf_and_option_spellings() {
        let conf = from_debian_conf("# Default\n-m 64\n-p 11999\n-u memcache\n-l 127.0.0.2\n");
        assert_eq!(
            conf,
            Listener {
                host: "127.0.0.2".into(),
                port: "11999".into()
            }
        );
        let long = from_options(&["--listen=::1", "--port=1234"], "11211");
        assert_eq!(
            long,
            Listener {
                host: "::1".into(),
                port: "1234".into()
            }
        );
        let glued = from_options(&["-l10.0.0.1", "-p99"], "11211");
        assert_eq!(
            glued,
            Listener {
                host: "10.0.0.1".into(),
                port: "99".into()
            }
        );
    }
}
