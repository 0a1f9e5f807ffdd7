//! What a check runs in: the deadline, `/proc`, name resolution, proxies, service configuration
//! and the environment. The bottom of the check layers: protocols, check primitives and profiles
//! all take a [`Context`]; it depends on none of them.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::Deadline;
use crate::config::ConfigRoot;
use crate::net::Resolver;
use crate::net::proxy::ProxyEnv;
use crate::procfs::Procfs;

/// The default `User-Agent`, as `HEALTHCHECK_CURL_USER_AGENT`'s.
pub const DEFAULT_USER_AGENT: &str = "curl-healthcheck";

/// Everything a check may consult besides its own spec.
pub struct Context {
    pub deadline: Deadline,
    pub procfs: Procfs,
    pub resolver: Resolver,
    pub user_agent: String,
    pub proxy: ProxyEnv,
    /// Where service configuration files are read (`HEALTHCHECK_CONFIG_ROOT`).
    pub config: ConfigRoot,
    /// The environment, for settings services take from it (Kolla's `MYSQL_USERNAME`); copied
    /// on first use, which most checks never make.
    env: OnceLock<HashMap<String, String>>,
}

impl Context {
    /// The context a container gives: `/proc`, `/etc/hosts`, `/etc/resolv.conf` and the
    /// TripleO environment variables.
    pub fn from_env(deadline: Deadline) -> Self {
        Context {
            deadline,
            procfs: Procfs::default(),
            resolver: Resolver::system(),
            user_agent: std::env::var("HEALTHCHECK_CURL_USER_AGENT")
                .unwrap_or_else(|_| DEFAULT_USER_AGENT.to_string()),
            proxy: ProxyEnv::from_env(),
            config: ConfigRoot::from_env(),
            env: OnceLock::new(),
        }
    }

    pub fn env(&self) -> &HashMap<String, String> {
        self.env.get_or_init(|| std::env::vars().collect())
    }
}
