//! Built-in service profiles: one per TripleO `/openstack/healthcheck` script, each finding its
//! service's address in the service's own configuration and checking it natively.
//!
//! A profile is a row of data — a name, a summary and how it runs — in the table of its kind's
//! module. Most rows are declarative ([`Run::Api`], [`Run::Port`]); the ones
//! that branch on what runs in the container, or speak a protocol, point at a small function.

mod datastores;
pub mod http_api;
mod nova;
mod ovn;
mod rpc;
mod swift;
mod system;

use healthcheck_spec::{Check, HttpCheck, ProcessPorts, ProfileCheck};

use crate::Outcome;
use crate::checks;
use crate::config::parse_port;
use crate::context::Context;
use healthcheck_spec::address::bracket_ipv6;

pub struct Profile {
    pub name: &'static str,
    /// What it checks, for `healthcheck profiles`; an HTTP API's is made from its files
    /// ([`Profile::summary`]).
    pub summary: &'static str,
    pub run: Run,
}

impl Profile {
    /// The line `healthcheck profiles` gives it.
    pub fn summary(&self) -> std::borrow::Cow<'static, str> {
        match &self.run {
            Run::Api(layouts) => layouts.describe().into(),
            _ => self.summary.into(),
        }
    }
}

pub enum Run {
    /// GET an HTTP API's URL, from the first of its layouts' files that declares it.
    Api(http_api::Layouts),
    /// A process has a socket whose local or remote port is one of `ports`; positional
    /// arguments replace the ports (`/openstack/healthcheck 5672`).
    Port(PortUse),
    /// Anything else: a function of the invocation.
    Custom(fn(&Call) -> Result<Outcome, String>),
}

/// `http://HOST:PORT/` from two options of an oslo.config file, with defaults.
pub struct IniUrl {
    pub file: &'static str,
    pub section: &'static str,
    pub host_key: &'static str,
    pub host_default: &'static str,
    pub port_key: &'static str,
    pub port_default: &'static str,
}

pub struct PortUse {
    pub process: &'static str,
    pub ports: &'static [u16],
    /// What the ports are, for the message: `RabbitMQ`, `Redis`, …
    pub service: &'static str,
}

pub const RABBITMQ: &[u16] = &[5671, 5672];
pub const REDIS: &[u16] = &[6379];

/// One run of a profile: its name, positional arguments and the check context.
pub struct Call<'a> {
    pub name: &'a str,
    pub args: &'a [String],
    pub ctx: &'a Context,
}

impl Call<'_> {
    /// Fails when arguments were given to a profile that takes none.
    pub fn no_args(&self) -> Result<(), String> {
        match self.args {
            [] => Ok(()),
            args => Err(format!("takes no arguments (got `{}`)", args.join(" "))),
        }
    }

    /// The single optional argument, or `default`.
    pub fn optional_arg<'a>(&'a self, default: &'a str) -> Result<&'a str, String> {
        match self.args {
            [] => Ok(default),
            [one] => Ok(one),
            args => Err(format!(
                "takes at most one argument (got `{}`)",
                args.join(" ")
            )),
        }
    }

    pub fn check(&self, check: Check) -> Outcome {
        checks::run(&check, self.ctx)
    }

    pub fn running(&self, pattern: &str) -> bool {
        checks::is_running(pattern, self.ctx)
    }
}

/// Every profile, grouped by kind.
const GROUPS: &[&[Profile]] = &[
    http_api::PROFILES,
    nova::PROFILES,
    rpc::PROFILES,
    datastores::PROFILES,
    ovn::PROFILES,
    swift::PROFILES,
    system::PROFILES,
];

/// All profiles, sorted by name.
pub fn all() -> Vec<&'static Profile> {
    let mut all: Vec<_> = GROUPS.iter().flat_map(|group| group.iter()).collect();
    all.sort_by_key(|p| p.name);
    all
}

pub fn find(name: &str) -> Option<&'static Profile> {
    GROUPS
        .iter()
        .flat_map(|group| group.iter())
        .find(|p| p.name == name)
}

/// `healthcheck profiles`: one `NAME  SUMMARY` line per profile.
pub fn listing() -> String {
    let all = all();
    let width = all.iter().map(|p| p.name.len()).max().unwrap_or(0);
    all.iter()
        .map(|p| format!("{:width$}  {}\n", p.name, p.summary()))
        .collect()
}

/// Runs the profile; every message starts with its name (`nova-api: GET https://…: 200 …`).
pub fn run(spec: &ProfileCheck, ctx: &Context) -> Outcome {
    let Some(profile) = find(&spec.name) else {
        return Outcome::unhealthy(format!(
            "unknown profile `{}` (`healthcheck profiles` lists them)",
            spec.name
        ));
    };
    let call = Call {
        name: profile.name,
        args: &spec.args,
        ctx,
    };
    let outcome = match &profile.run {
        Run::Api(layouts) => layouts.run(&call),
        Run::Port(port_use) => port_use.run(&call),
        Run::Custom(function) => function(&call),
    };
    let outcome = outcome.unwrap_or_else(Outcome::unhealthy);
    Outcome {
        healthy: outcome.healthy,
        message: format!("{}: {}", profile.name, outcome.message),
    }
}

pub const VHOST_DIR: &str = "/etc/httpd/conf.d";

/// GET the URL the vhost file describes.
pub fn vhost(call: &Call, file: &str) -> Result<Outcome, String> {
    call.no_args()?;
    Ok(call.check(http_get(vhost_url(call, file)?)))
}

fn vhost_url(call: &Call, file: &str) -> Result<String, String> {
    let path = format!("{VHOST_DIR}/{file}");
    let text = call.ctx.config.read(&path)?;
    crate::config::apache::Vhost::parse(&text)
        .url()
        .map_err(|e| format!("{path}: {e}"))
}

/// A plain GET healthy below 400, TLS unverified: TripleO's `healthcheck_curl URL`.
pub fn http_get(url: String) -> Check {
    Check::Http(HttpCheck {
        url,
        ..HttpCheck::default()
    })
}

/// `scheme://host:port/` with the host bracketed when it is IPv6.
pub fn url(scheme: &str, host: &str, port: u16, path: &str) -> String {
    format!("{scheme}://{}:{port}{path}", bracket_ipv6(host))
}

impl PortUse {
    fn run(&self, call: &Call) -> Result<Outcome, String> {
        let ports = ports_or(call.args, self.ports)?;
        let outcome = call.check(Check::Port(ProcessPorts {
            process: self.process.to_string(),
            ports,
        }));
        Ok(with_service(outcome, self.service))
    }
}

/// Positional port arguments, or `default` when none are given.
pub fn ports_or(args: &[String], default: &[u16]) -> Result<Vec<u16>, String> {
    if args.is_empty() {
        return Ok(default.to_vec());
    }
    args.iter()
        .map(|arg| parse_port(arg, "port argument"))
        .collect()
}

/// Appends what the ports are: `… has a socket on 5671,5672 (RabbitMQ)`.
pub fn with_service(outcome: Outcome, service: &str) -> Outcome {
    Outcome {
        message: format!("{} ({service})", outcome.message),
        ..outcome
    }
}

/// A configuration tree for the profiles' unit tests, under the temporary directory and removed
/// when dropped (also when the test panics). `name` must be unique among the tests.
#[cfg(test)]
pub(crate) struct ConfigTree(std::path::PathBuf);

#[cfg(test)]
impl ConfigTree {
    pub(crate) fn new(name: &str, files: &[(&str, &str)]) -> ConfigTree {
        let dir = std::env::temp_dir().join(format!(
            "healthcheck-profiles-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let tree = ConfigTree(dir);
        let root = tree.root();
        for (path, text) in files {
            let host = root.path(path);
            std::fs::create_dir_all(host.parent().unwrap()).unwrap();
            std::fs::write(host, text).unwrap();
        }
        tree
    }

    pub(crate) fn root(&self) -> crate::config::ConfigRoot {
        crate::config::ConfigRoot::at(&self.0)
    }
}

#[cfg(test)]
impl Drop for ConfigTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names_are_the_spec_profiles() {
        let names: Vec<&str> = all().iter().map(|p| p.name).collect();
        assert_eq!(names, healthcheck_spec::PROFILES);
    }

    #[test]
    fn listing_has_a_line_per_profile() {
        assert_eq!(listing().lines().count(), healthcheck_spec::PROFILES.len());
        assert!(listing().contains("nova-api"));
        for profile in all() {
            assert!(!profile.summary().is_empty(), "{}", profile.name);
        }
        // An API's line comes from its files, in their order of precedence.
        assert!(listing().lines().any(|line| line.split_whitespace().collect::<Vec<_>>().join(" ")
            == "heat-api GET the API's URL: vhost 10-heat_api_wsgi.conf, heat-api-uwsgi.ini, wsgi-heat-api.conf, heat-api.conf, /etc/init.d/heat-api, heat.conf [heat_api] bind_host:bind_port (127.0.0.1:8004)"));
        assert!(
            listing()
                .contains("barbican-api-uwsgi.ini, vassals/barbican-api.ini, barbican-api.conf")
        );
    }

    #[test]
    fn port_arguments_replace_the_defaults() {
        assert_eq!(ports_or(&[], RABBITMQ), Ok(vec![5671, 5672]));
        assert_eq!(ports_or(&["5672".to_string()], RABBITMQ), Ok(vec![5672]));
        assert!(
            ports_or(&["amqp".to_string()], RABBITMQ)
                .unwrap_err()
                .contains("port argument `amqp`")
        );
    }
}
