//! Service configuration discovery: pure parsers for the formats OpenStack services use, and
//! the one place that reads their files, under `HEALTHCHECK_CONFIG_ROOT` (default `/`).

pub mod apache;
pub mod ini;
pub mod memcached;
pub mod qdrouterd;
pub mod rabbitmq_conf;
pub mod redis_conf;
pub mod shell_vars;
pub mod uwsgi;

use std::path::{Path, PathBuf};

/// Where absolute configuration paths are looked up, so tests and operators can point the
/// profiles at a tree: `/etc/nova/nova.conf` is read as `ROOT/etc/nova/nova.conf`.
#[derive(Clone, Debug)]
pub struct ConfigRoot(PathBuf);

impl Default for ConfigRoot {
    fn default() -> Self {
        ConfigRoot(PathBuf::from("/"))
    }
}

impl ConfigRoot {
    pub fn at(root: impl Into<PathBuf>) -> Self {
        ConfigRoot(root.into())
    }

    /// `HEALTHCHECK_CONFIG_ROOT`, or `/` when unset or empty.
    pub fn from_env() -> Self {
        match std::env::var_os("HEALTHCHECK_CONFIG_ROOT") {
            Some(root) if !root.is_empty() => ConfigRoot::at(root),
            _ => ConfigRoot::default(),
        }
    }

    /// The host path of the absolute path `path`.
    pub fn path(&self, path: &str) -> PathBuf {
        self.0.join(path.trim_start_matches('/'))
    }

    pub fn exists(&self, path: &str) -> bool {
        self.path(path).exists()
    }

    /// The file's text, or one line saying which file could not be read and why.
    pub fn read(&self, path: &str) -> Result<String, String> {
        let host_path = self.path(path);
        read_text(&host_path).map_err(|e| {
            format!(
                "cannot read {}: {}",
                self.describe(path, &host_path),
                crate::net::describe_io(&e)
            )
        })
    }

    /// Reads an oslo.config INI file.
    pub fn ini(&self, path: &str) -> Result<ini::Ini, String> {
        Ok(ini::Ini::parse(&self.read(path)?))
    }

    fn describe(&self, path: &str, host_path: &Path) -> String {
        if self.0 == Path::new("/") {
            path.to_string()
        } else {
            format!("{path} (as {})", host_path.display())
        }
    }
}

/// The most of a configuration file read: real ones are a few KiB, and a file that is a
/// symlink to `/dev/zero` or hundreds of MB would otherwise take the probe's memory and time.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// A configuration file's text: a regular file (not a device or FIFO, which may never end
/// or never open) of at most [`MAX_CONFIG_BYTES`], in UTF-8.
pub fn read_text(path: &Path) -> std::io::Result<String> {
    use std::io::{Error, ErrorKind, Read};
    if !std::fs::metadata(path)?.is_file() {
        return Err(Error::new(ErrorKind::InvalidInput, "not a regular file"));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(Error::new(
            ErrorKind::InvalidData,
            format!("larger than {} MiB", MAX_CONFIG_BYTES >> 20),
        ));
    }
    String::from_utf8(bytes).map_err(|_| Error::new(ErrorKind::InvalidData, "not UTF-8 text"))
}

/// A port number from configuration text, with the setting's name in the error.
pub fn parse_port(text: &str, what: &str) -> Result<u16, String> {
    text.trim()
        .parse::<u16>()
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| format!("{what} `{text}` is not a port (1-65535)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_under_the_root() {
        let root = ConfigRoot::at("/tmp/tree");
        assert_eq!(
            root.path("/etc/nova/nova.conf"),
            Path::new("/tmp/tree/etc/nova/nova.conf")
        );
        let err = root.read("/etc/nova/nova.conf").unwrap_err();
        assert!(
            err.starts_with(
                "cannot read /etc/nova/nova.conf (as /tmp/tree/etc/nova/nova.conf): no such file"
            ),
            "{err}"
        );
    }

    #[test]
    fn ports_are_checked() {
        assert_eq!(parse_port(" 8774 ", "bind_port"), Ok(8774));
        assert!(
            parse_port("0", "bind_port")
                .unwrap_err()
                .contains("bind_port `0`")
        );
        assert!(parse_port("http", "port").is_err());
    }
}
