//! Shell variable files (`/etc/sysconfig/*`, `/etc/etcd/etcd.conf`, `rabbitmq-env.conf`):
//! `KEY=value`, optionally `export`ed, single- or double-quoted, `#` comments. Nothing is
//! expanded or executed: `$VAR` stays literal text.

use std::collections::HashMap;

pub fn parse(text: &str) -> HashMap<String, String> {
    let mut vars = HashMap::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let is_name = !key.is_empty()
            && !key.starts_with(|c: char| c.is_ascii_digit())
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if is_name {
            vars.insert(key.to_string(), value_of(value));
        }
    }
    vars
}

/// One shell word: quotes removed, an unquoted ` #` comment dropped.
fn value_of(text: &str) -> String {
    let mut value = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => value.extend(chars.by_ref().take_while(|&c| c != '\'')),
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => value.extend(chars.next()),
                        c => value.push(c),
                    }
                }
            }
            '\\' => value.extend(chars.next()),
            c if c.is_whitespace() => break,
            c => value.push(c),
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_quotes_comments_and_exports() {
        let vars = parse(
            "# memcached\nPORT=\"11211\"\nOPTIONS='-l 172.17.1.10,notls:172.17.1.10:11211 -U 0'\n\
             export ETCD_LISTEN_CLIENT_URLS=http://[fd00::1]:2379 # client\nNOT A VAR=1\nA=$B\n\
             TRIPLEO_SOCAT_BIND=\"tcp6-listen:9200,bind=\\\"[fd00::2]\\\",reuseaddr,fork\"\n",
        );
        assert_eq!(vars["PORT"], "11211");
        assert_eq!(
            vars["OPTIONS"],
            "-l 172.17.1.10,notls:172.17.1.10:11211 -U 0"
        );
        assert_eq!(vars["ETCD_LISTEN_CLIENT_URLS"], "http://[fd00::1]:2379");
        assert_eq!(vars["A"], "$B");
        assert_eq!(
            vars["TRIPLEO_SOCAT_BIND"],
            "tcp6-listen:9200,bind=\"[fd00::2]\",reuseaddr,fork"
        );
        assert!(!vars.contains_key("NOT A VAR"));
    }
}
