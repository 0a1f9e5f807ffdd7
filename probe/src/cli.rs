//! The command line: `healthcheck [--timeout SECS] CHECK ARGS...`. The check's grammar is the
//! shared vocabulary's ([`healthcheck_spec::args`]); this adds the binary's own subcommands.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use healthcheck_spec::ProbeRole;
use healthcheck_spec::address::split_host_port;
use healthcheck_spec::args::CheckCommand;

use crate::deadline::{DEFAULT_TIMEOUT, parse_seconds};
use crate::dispatch::Probe;
use crate::protocols::amqp::AmqpTarget;
use crate::protocols::mysql::{MysqlAddress, MysqlTarget};

#[derive(Debug, Parser)]
#[command(
    name = "healthcheck",
    version,
    about = "Checks an OpenStack service's health: prints one line, exits 0 (healthy) or 1 (unhealthy).",
    after_help = "Environment: HEALTHCHECK_CURL_MAX_TIME (default deadline), HEALTHCHECK_CURL_USER_AGENT, \
                  HEALTHCHECK_USE_PROXY (proxies are ignored unless set to non-zero), HEALTHCHECK_DEBUG, \
                  HEALTHCHECK_PROFILE (run that profile; all arguments are its arguments), \
                  HEALTHCHECK_CONFIG_ROOT (where profiles read service configuration, default /)."
)]
pub struct Cli {
    /// Deadline for the whole run, in seconds [default: $HEALTHCHECK_CURL_MAX_TIME or 10]
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub timeout: Option<Duration>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    #[command(flatten)]
    Check(CheckCommand),
    /// Create the Kolla/TripleO helper names (healthcheck_curl, healthcheck_port, …) as
    /// symlinks to this binary in DIR
    InstallCompat {
        dir: PathBuf,
        /// Also create one symlink per service profile (`nova-api`, …), as TripleO installed
        /// its per-service scripts
        #[arg(long = "profiles")]
        with_profiles: bool,
    },
    /// List the built-in service profiles
    Profiles,
    /// Log in to MySQL/MariaDB at HOST:PORT or a Unix socket path and run `SELECT 1`
    /// (with --galera: require wsrep_local_state_comment `Synced`)
    Mysql(MysqlArgs),
    /// AMQP 0-9-1 handshake with HOST:PORT: up to Connection.Open-Ok with credentials,
    /// up to Connection.Start without
    Amqp(AmqpArgs),
    /// Run the checks of a config in-process on Docker's schedule and answer probes over HTTP
    /// (/livez /readyz /startupz /health /metrics /)
    Serve(ServeArgs),
    /// Ask a running `serve` for its probes' answers; exit 0 when every configured role's
    /// probe (or, with --role, that role's) passes
    Status(StatusArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: the config's `listen`, else 0.0.0.0:9180]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// YAML config file [default: the YAML in $HEALTHCHECK_SERVE_CONFIG]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Base URL of the serve instance
    #[arg(long, default_value = crate::serve::status::DEFAULT_URL)]
    pub url: String,
    /// Ask only this role's probe: liveness, readiness or startup
    #[arg(long, value_parser = parse_role)]
    pub role: Option<ProbeRole>,
}

#[derive(Debug, Args)]
pub struct MysqlArgs {
    /// HOST:PORT, [IPv6]:PORT, or the path of the server's Unix socket
    pub address: String,
    /// The user to log in as
    #[arg(long, short = 'u')]
    pub user: String,
    #[command(flatten)]
    pub password: PasswordArgs,
    /// Require a synced Galera node instead of running `SELECT 1`
    #[arg(long)]
    pub galera: bool,
}

#[derive(Debug, Args)]
pub struct AmqpArgs {
    /// HOST:PORT or [IPv6]:PORT
    pub address: String,
    /// Authenticate (PLAIN) as USER and open --vhost
    #[arg(long, short = 'u')]
    pub user: Option<String>,
    #[command(flatten)]
    pub password: PasswordArgs,
    /// The virtual host to open
    #[arg(long, default_value = "/")]
    pub vhost: String,
}

/// A password, preferably by the name of the environment variable holding it, so that it
/// does not show in the process list.
#[derive(Debug, Args)]
pub struct PasswordArgs {
    /// The password (visible in the process list: prefer --password-env)
    #[arg(long, conflicts_with = "password_env")]
    pub password: Option<String>,
    /// The environment variable holding the password
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,
}

impl PasswordArgs {
    fn resolve(&self) -> Result<Option<String>, String> {
        match (&self.password, &self.password_env) {
            (Some(password), _) => Ok(Some(password.clone())),
            (None, Some(var)) => std::env::var(var)
                .map(Some)
                .map_err(|_| format!("--password-env: environment variable {var} is not set")),
            (None, None) => Ok(None),
        }
    }
}

impl MysqlArgs {
    pub fn into_probe(self) -> Result<Probe, String> {
        let address = if self.address.contains('/') {
            MysqlAddress::Unix(PathBuf::from(&self.address))
        } else {
            let (host, port) = split_host_port(&self.address)?;
            MysqlAddress::Tcp {
                host: host.to_string(),
                port,
            }
        };
        Ok(Probe::Mysql {
            target: MysqlTarget {
                address,
                user: self.user,
                password: self.password.resolve()?,
            },
            galera: self.galera,
        })
    }
}

impl AmqpArgs {
    pub fn into_probe(self) -> Result<Probe, String> {
        let (host, port) = split_host_port(&self.address)?;
        let password = self.password.resolve()?;
        let credentials = match (self.user, password) {
            (Some(user), Some(password)) => Some((user, password)),
            (Some(_), None) => return Err("--user needs --password or --password-env".into()),
            (None, Some(_)) => return Err("a password needs --user".into()),
            (None, None) => None,
        };
        Ok(Probe::Amqp(AmqpTarget {
            host: host.to_string(),
            port,
            credentials,
            vhost: self.vhost,
        }))
    }
}

/// The run deadline: `--timeout`, else `HEALTHCHECK_CURL_MAX_TIME`, else 10 s.
pub fn deadline_from(flag: Option<Duration>, env_value: Option<&str>) -> Result<Duration, String> {
    match (flag, env_value) {
        (Some(timeout), _) => Ok(timeout),
        (None, Some(text)) => {
            parse_seconds(text).map_err(|e| format!("HEALTHCHECK_CURL_MAX_TIME: {e}"))
        }
        (None, None) => Ok(DEFAULT_TIMEOUT),
    }
}

fn parse_role(text: &str) -> Result<ProbeRole, String> {
    ProbeRole::parse(text).ok_or_else(|| format!("`{text}` is not liveness, readiness or startup"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use healthcheck_spec::args::first_line;

    #[test]
    fn deadline_precedence_flag_env_default() {
        let flag = Some(Duration::from_secs(3));
        assert_eq!(deadline_from(flag, Some("5")), Ok(Duration::from_secs(3)));
        assert_eq!(deadline_from(None, Some("5")), Ok(Duration::from_secs(5)));
        assert_eq!(deadline_from(None, None), Ok(DEFAULT_TIMEOUT));
        assert!(
            deadline_from(None, Some("ten"))
                .unwrap_err()
                .starts_with("HEALTHCHECK_CURL_MAX_TIME: ")
        );
    }

    fn probe(line: &[&str]) -> Result<Probe, String> {
        let cli = Cli::try_parse_from(std::iter::once("healthcheck").chain(line.iter().copied()))
            .map_err(|e| first_line(&e.to_string()))?;
        match cli.command {
            Command::Mysql(args) => args.into_probe(),
            Command::Amqp(args) => args.into_probe(),
            _ => panic!("not a protocol probe"),
        }
    }

    #[test]
    fn protocol_probes_parse_addresses_and_passwords() {
        let Ok(Probe::Mysql { target, galera }) =
            probe(&["mysql", "-u", "m", "--galera", "/run/mysqld/mysqld.sock"])
        else {
            panic!("not mysql");
        };
        assert!(galera && target.password.is_none());
        assert_eq!(target.address.to_string(), "/run/mysqld/mysqld.sock");
        let Ok(Probe::Mysql { target, .. }) =
            probe(&["mysql", "-u", "m", "--password", "p", "[::1]:3306"])
        else {
            panic!("not mysql");
        };
        assert_eq!(target.address.to_string(), "[::1]:3306");
        assert_eq!(target.password.as_deref(), Some("p"));

        let Ok(Probe::Amqp(target)) = probe(&["amqp", "rabbit:5672"]) else {
            panic!("not amqp");
        };
        assert!(target.credentials.is_none() && target.vhost == "/");
        for (line, why) in [
            (
                &["amqp", "-u", "guest", "h:5672"][..],
                "--user needs --password",
            ),
            (
                &["amqp", "--password", "x", "h:5672"],
                "a password needs --user",
            ),
            (&["amqp", "h"], "expected HOST:PORT"),
            (
                &[
                    "mysql",
                    "-u",
                    "m",
                    "--password-env",
                    "HC_UNSET_VARIABLE",
                    "h:1",
                ],
                "HC_UNSET_VARIABLE is not set",
            ),
            (
                &[
                    "mysql",
                    "-u",
                    "m",
                    "--password",
                    "a",
                    "--password-env",
                    "V",
                    "h:1",
                ],
                "cannot be used with",
            ),
        ] {
            let err = probe(line).err().unwrap();
            assert!(err.contains(why), "{line:?}: {err}");
        }
    }
}
