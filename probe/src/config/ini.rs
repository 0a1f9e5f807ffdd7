//! oslo.config INI files: `[section]` headers, `key = value` or `key: value`, `#`/`;` comment
//! lines, indented continuation lines, quoted values, and `[DEFAULT]` as the fallback of every
//! section. A key given twice keeps its last value, as oslo.config does for single-valued options.

use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct Ini {
    sections: HashMap<String, HashMap<String, String>>,
}

pub const DEFAULT: &str = "DEFAULT";

impl Ini {
    pub fn parse(text: &str) -> Ini {
        let mut ini = Ini::default();
        let mut section = DEFAULT.to_string();
        // The key whose value an indented line continues.
        let mut last_key: Option<String> = None;
        for raw in text.lines() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if raw.starts_with([' ', '\t'])
                && let Some(key) = &last_key
                && let Some(value) = ini.sections.get_mut(&section).and_then(|v| v.get_mut(key))
            {
                value.push('\n');
                value.push_str(line);
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.trim().to_string();
                ini.sections.entry(section.clone()).or_default();
                last_key = None;
                continue;
            }
            let split = line.find(['=', ':']);
            let Some(at) = split else {
                last_key = None;
                continue;
            };
            let key = line[..at].trim().to_string();
            let value = unquote(line[at + 1..].trim()).to_string();
            ini.sections
                .entry(section.clone())
                .or_default()
                .insert(key.clone(), value);
            last_key = Some(key);
        }
        ini
    }

    /// `[section] key`, falling back to `[DEFAULT] key`; empty values count as unset, as
    /// crudini's output did in `get_config_val` (an empty host is never usable).
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        let lookup = |s: &str| {
            self.sections
                .get(s)
                .and_then(|values| values.get(key))
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        };
        lookup(section).or_else(|| lookup(DEFAULT))
    }

    pub fn has_section(&self, section: &str) -> bool {
        self.sections.contains_key(section)
    }

    /// [`Ini::get`] with a default, as TripleO's `get_config_val FILE SECTION KEY DEFAULT`.
    pub fn get_or<'a>(&'a self, section: &str, key: &str, default: &'a str) -> &'a str {
        self.get(section, key).unwrap_or(default)
    }

    /// `[section] key` as a port, `default` when unset; a bad value is reported as
    /// `FILE [section] key `text` is not a port`.
    pub fn port_or(
        &self,
        file: &str,
        section: &str,
        key: &str,
        default: &str,
    ) -> Result<u16, String> {
        super::parse_port(
            self.get_or(section, key, default),
            &format!("{file} [{section}] {key}"),
        )
    }

    /// A boolean option the way oslo.config reads one (`true`, `yes`, `on`, `1`).
    pub fn get_bool(&self, section: &str, key: &str) -> bool {
        self.get(section, key)
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "yes" | "on" | "1"))
    }
}

fn unquote(value: &str) -> &str {
    let bytes = value.as_bytes();
    if bytes.len() >= 2 && bytes[0] == bytes[bytes.len() - 1] && matches!(bytes[0], b'"' | b'\'') {
        &value[1..value.len() - 1]
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOVA: &str = "\
# a comment
[DEFAULT]
bind_host = 172.17.1.10
ssl_only=true
debug: false

[vnc]
; another comment
novncproxy_host = fd00::10
novncproxy_port = \"6081\"
[wsgi]
api_paste_config = /etc/nova/api-paste.ini
[database]
connection = mysql+pymysql://nova:secret@db/nova
  ?read_default_file=/etc/my.cnf
empty =
bind_host = 10.0.0.1
bind_host = 10.0.0.2
";

    #[test]
    fn sections_defaults_and_inheritance() {
        let ini = Ini::parse(NOVA);
        assert_eq!(ini.get("vnc", "novncproxy_host"), Some("fd00::10"));
        assert_eq!(ini.get("vnc", "novncproxy_port"), Some("6081"));
        assert_eq!(ini.get("vnc", "bind_host"), Some("172.17.1.10"));
        assert_eq!(ini.get("DEFAULT", "debug"), Some("false"));
        assert!(ini.get_bool("DEFAULT", "ssl_only") && !ini.get_bool("vnc", "debug"));
        assert_eq!(ini.get("nosuch", "bind_host"), Some("172.17.1.10"));
        assert_eq!(ini.get_or("vnc", "missing", "127.0.0.1"), "127.0.0.1");
    }

    #[test]
    fn continuation_lines_empty_values_and_repeats() {
        let ini = Ini::parse(NOVA);
        assert_eq!(
            ini.get("database", "connection"),
            Some("mysql+pymysql://nova:secret@db/nova\n?read_default_file=/etc/my.cnf")
        );
        assert_eq!(ini.get_or("database", "empty", "dflt"), "dflt");
        assert_eq!(ini.get("database", "bind_host"), Some("10.0.0.2"));
    }

    #[test]
    fn garbage_is_ignored_not_fatal() {
        let ini = Ini::parse("\u{feff}no separator here\n[unclosed\n  indented first\nk=v\n");
        assert_eq!(ini.get("DEFAULT", "k"), Some("v"));
    }
}
