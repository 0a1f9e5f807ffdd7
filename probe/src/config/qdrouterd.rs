//! `qdrouterd.conf`: `name { key: value ... }` blocks; the first `listener` block gives the
//! host, port and whether it uses an `sslProfile`.

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Listener {
    pub host: Option<String>,
    pub port: Option<String>,
    pub ssl_profile: Option<String>,
}

pub fn first_listener(text: &str) -> Option<Listener> {
    let mut in_listener = false;
    let mut listener = Listener::default();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if !in_listener {
            if let Some(name) = line.strip_suffix('{') {
                in_listener = name.trim() == "listener";
            }
            continue;
        }
        if line.starts_with('}') {
            return Some(listener);
        }
        if let Some((key, value)) = line.split_once(':') {
            let value = Some(value.trim().to_string());
            match key.trim() {
                "host" => listener.host = value,
                "port" => listener.port = value,
                "sslProfile" => listener.ssl_profile = value,
                _ => {}
            }
        }
    }
    in_listener.then_some(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_listener_block() {
        let text = "router {\n    mode: edge\n}\nlistener {\n    host: fd00::1\n    port: 31459\n    role: normal\n}\nlistener {\n    host: 0.0.0.0\n    port: 5668\n}\n";
        assert_eq!(
            first_listener(text),
            Some(Listener {
                host: Some("fd00::1".into()),
                port: Some("31459".into()),
                ssl_profile: None
            })
        );
        assert_eq!(first_listener("router {\n}\n"), None);
    }
}
