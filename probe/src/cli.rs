//! The command line: `healthcheck [--timeout SECS] CHECK ARGS...`, parsed into the shared
//! check vocabulary. `healthcheck_spec::Check::to_args` renders exactly what this parses.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use healthcheck_spec::{
    AND, Check, CommandCheck, FileCheck, HttpCheck, HttpMethod, ProcessCheck, ProcessPorts,
    ProfileCheck, SocketCheck, TcpCheck, TlsOptions,
};

use crate::Outcome;
use crate::checks::{self, Context, split_host_port};
use crate::deadline::{DEFAULT_TIMEOUT, parse_seconds};
use crate::protocols::amqp::{self, AmqpTarget};
use crate::protocols::mysql::{self, MysqlAddress, MysqlTarget};

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

/// What one run checks: a check of the shared vocabulary, or a protocol handshake that only
/// the command line offers.
pub enum Probe {
    Check(Check),
    Mysql { target: MysqlTarget, galera: bool },
    Amqp(AmqpTarget),
}

impl Probe {
    pub fn kind(&self) -> &'static str {
        match self {
            Probe::Check(check) => check.kind(),
            Probe::Mysql { .. } => "mysql",
            Probe::Amqp(_) => "amqp",
        }
    }

    pub fn run(&self, ctx: &Context) -> Outcome {
        match self {
            Probe::Check(check) => checks::run(check, ctx),
            Probe::Mysql {
                target,
                galera: false,
            } => mysql::select_one(target, ctx),
            Probe::Mysql {
                target,
                galera: true,
            } => mysql::galera_synced(target, ctx),
            Probe::Amqp(target) => amqp::handshake(target, ctx),
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

#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// GET (or HEAD) a URL; healthy below status 400 unless --status is given
    Http(HttpArgs),
    /// Connect to HOST:PORT ([IPv6]:PORT)
    Tcp { address: String },
    /// A process (full command line regex, like pgrep -f) has a TCP/UDP socket whose local or
    /// remote port is one of PORTS
    Port {
        #[arg(allow_hyphen_values = true)]
        process: String,
        #[arg(required = true, value_parser = port_number)]
        ports: Vec<u16>,
    },
    /// A process listens on one of PORTS (TCP LISTEN, or a bound UDP socket)
    Listen {
        #[arg(allow_hyphen_values = true)]
        process: String,
        #[arg(required = true, value_parser = port_number)]
        ports: Vec<u16>,
    },
    /// A process holds the Unix socket bound at PATH open
    Socket {
        #[arg(allow_hyphen_values = true)]
        process: String,
        path: String,
    },
    /// PATH exists and was modified at most MAX_AGE seconds ago
    File { path: String, max_age: u64 },
    /// A process whose full command line matches PATTERN is running
    Process {
        #[arg(allow_hyphen_values = true)]
        pattern: String,
    },
    /// Run a program (no shell) and use its exit status; put `--` before its arguments
    Command {
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        argv: Vec<String>,
    },
    /// A built-in service profile with its TripleO arguments: `profile nova-conductor 5672`
    /// (`healthcheck profiles` lists them)
    Profile {
        name: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// All checks must pass: `all http URL --and port nova 5672`
    All {
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        checks: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct HttpArgs {
    pub url: String,
    /// GET or HEAD
    #[arg(long, default_value = "GET", value_parser = parse_method)]
    pub method: HttpMethod,
    /// A healthy status; repeat or comma-separate [default: any below 400]
    #[arg(long = "status", value_name = "CODE", value_delimiter = ',', value_parser = clap::value_parser!(u16).range(100..1000))]
    pub statuses: Vec<u16>,
    /// A request header `Name: value`; repeatable
    #[arg(long = "header", short = 'H', value_name = "HEADER")]
    pub headers: Vec<String>,
    /// Basic auth credentials USER:PASSWORD
    #[arg(long, short = 'u')]
    pub user: Option<String>,
    /// A regular expression the response body must match
    #[arg(long)]
    pub body_regex: Option<String>,
    /// Verify the server certificate (against --cacert or the system roots)
    #[arg(long)]
    pub verify: bool,
    /// PEM CA bundle to verify against (implies --verify)
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<String>,
    /// PEM client certificate (with --key) for mutual TLS
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<String>,
    /// PEM private key of --cert
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<String>,
}

/// Parses the arguments of one check, as they appear after `healthcheck` or between `--and`s.
#[derive(Debug, Parser)]
#[command(name = "healthcheck", no_binary_name = true)]
struct OneCheck {
    #[command(subcommand)]
    check: CheckCommand,
}

impl CheckCommand {
    pub fn into_check(self) -> Result<Check, String> {
        Ok(match self {
            CheckCommand::Http(http) => Check::Http(HttpCheck {
                url: http.url,
                method: http.method,
                expect_status: http.statuses,
                headers: http.headers,
                user: http.user,
                body_regex: http.body_regex,
                tls: TlsOptions {
                    verify: http.verify,
                    ca_file: http.cacert,
                    cert_file: http.cert,
                    key_file: http.key,
                },
            }),
            CheckCommand::Tcp { address } => Check::Tcp(TcpCheck { address }),
            CheckCommand::Port { process, ports } => Check::Port(ProcessPorts { process, ports }),
            CheckCommand::Listen { process, ports } => {
                Check::Listen(ProcessPorts { process, ports })
            }
            CheckCommand::Socket { process, path } => Check::Socket(SocketCheck { process, path }),
            CheckCommand::File { path, max_age } => Check::File(FileCheck {
                path,
                max_age_seconds: max_age,
            }),
            CheckCommand::Process { pattern } => Check::Process(ProcessCheck { pattern }),
            CheckCommand::Profile { name, args } => Check::Profile(ProfileCheck { name, args }),
            CheckCommand::Command { argv } => {
                // `command -- prog args`: clap keeps a leading `--` in trailing arguments.
                let argv = match argv.split_first() {
                    Some((first, rest)) if first == "--" => rest.to_vec(),
                    _ => argv,
                };
                if argv.is_empty() {
                    return Err("command: no program given".into());
                }
                Check::Command(CommandCheck { argv })
            }
            CheckCommand::All { checks } => {
                let members = checks
                    .split(|arg| arg == AND)
                    .map(|member| {
                        if member.is_empty() {
                            return Err("all: empty check between `--and`s".to_string());
                        }
                        OneCheck::try_parse_from(member)
                            .map_err(|e| {
                                format!(
                                    "all: `{}`: {}",
                                    member.join(" "),
                                    first_line(&e.to_string())
                                )
                            })?
                            .check
                            .into_check()
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Check::AllOf(members)
            }
        })
    }
}

/// Parses one check's arguments (no binary name): `["tcp", "[::1]:80"]`.
pub fn parse_check(args: &[String]) -> Result<Check, String> {
    OneCheck::try_parse_from(args)
        .map_err(|e| first_line(&e.to_string()))?
        .check
        .into_check()
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

/// A clap error as one line: its text up to the usage block, lines joined.
pub fn first_line(text: &str) -> String {
    text.lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .trim_start_matches("error: ")
        .to_string()
}

fn port_number(text: &str) -> Result<u16, String> {
    text.parse::<u16>()
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| format!("`{text}` is not a port (1-65535)"))
}

fn parse_method(text: &str) -> Result<HttpMethod, String> {
    match text.to_ascii_uppercase().as_str() {
        "GET" => Ok(HttpMethod::Get),
        "HEAD" => Ok(HttpMethod::Head),
        _ => Err(format!("`{text}` is not GET or HEAD")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use healthcheck_spec::{CommandCheck, HttpCheck};

    fn args(line: &[&str]) -> Vec<String> {
        line.iter().map(|s| s.to_string()).collect()
    }

    /// Every check the spec can express parses back from its own rendering.
    #[test]
    fn spec_args_round_trip() {
        let checks = [
            Check::Http(HttpCheck {
                url: "https://[::1]:8443/v3".into(),
                method: HttpMethod::Head,
                expect_status: vec![200, 300],
                headers: vec!["X-A: b c".into()],
                user: Some("u:p".into()),
                body_regex: Some("^--ok".into()),
                tls: TlsOptions {
                    verify: true,
                    ca_file: Some("/ca".into()),
                    cert_file: Some("/c".into()),
                    key_file: Some("/k".into()),
                },
            }),
            Check::Tcp(TcpCheck {
                address: "[::1]:5672".into(),
            }),
            Check::Port(ProcessPorts {
                process: "nova-conductor".into(),
                ports: vec![5671, 5672],
            }),
            Check::Listen(ProcessPorts {
                process: "^/usr/sbin/sshd".into(),
                ports: vec![2022],
            }),
            Check::Socket(SocketCheck {
                process: "virtlogd".into(),
                path: "/run/libvirt/virtlogd-sock".into(),
            }),
            Check::File(FileCheck {
                path: "/var/cache/swift/object.recon".into(),
                max_age_seconds: 300,
            }),
            Check::Process(ProcessCheck {
                pattern: "-v".into(),
            }),
            Check::Command(CommandCheck {
                argv: args(&["/bin/test", "-e", "/x"]),
            }),
            Check::Profile(ProfileCheck {
                name: "nova-libvirt".into(),
                args: args(&["virtlogd"]),
            }),
            Check::Profile(ProfileCheck {
                name: "redis".into(),
                args: vec![],
            }),
            Check::AllOf(vec![
                Check::Tcp(TcpCheck {
                    address: "h:1".into(),
                }),
                Check::Profile(ProfileCheck {
                    name: "nova-conductor".into(),
                    args: args(&["5672"]),
                }),
                Check::Command(CommandCheck {
                    argv: args(&["true", "--flag"]),
                }),
            ]),
        ];
        for check in checks {
            assert_eq!(
                parse_check(&check.to_args()),
                Ok(check.clone()),
                "{:?}",
                check.to_args()
            );
        }
    }

    #[test]
    fn bad_arguments_say_what_is_wrong() {
        for (line, why) in [
            (&["port", "nova"][..], "required"),
            (&["port", "nova", "0"], "not a port"),
            (&["port", "nova", "70000"], "not a port"),
            (&["http", "http://h/", "--status", "42"], "42"),
            (
                &["http", "http://h/", "--method", "POST"],
                "not GET or HEAD",
            ),
            (&["http", "http://h/", "--cert", "c"], "--key"),
            (&["file", "/x", "soon"], "invalid value"),
            (&["all", "tcp", "h:1", "--and"], "empty check"),
            (
                &["all", "tcp", "h:1", "--and", "bogus"],
                "unrecognized subcommand",
            ),
            (&["command", "--"], "<ARGV>"),
            (&["frobnicate"], "unrecognized subcommand"),
        ] {
            let err = parse_check(&args(line)).unwrap_err();
            assert!(err.contains(why), "{line:?}: {err}");
        }
    }

    #[test]
    fn statuses_may_be_comma_separated() {
        let Check::Http(http) = parse_check(&args(&[
            "http",
            "http://h/",
            "--status",
            "200,204",
            "--status",
            "301",
        ]))
        .unwrap() else {
            panic!("not http")
        };
        assert_eq!(http.expect_status, [200, 204, 301]);
    }

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
