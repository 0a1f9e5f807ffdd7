//! The probe's command-line grammar for one check, `healthcheck CHECK ARGS...`: what
//! [`Check::to_args`] renders, [`Check::from_args`] parses back. The probe binary flattens
//! [`CheckCommand`] into its own subcommands; the operator reads Dockerfile `HEALTHCHECK`
//! commands back with the same parser.

use clap::{Args, Parser, Subcommand};

use crate::{
    AND, Check, CommandCheck, FileCheck, HttpCheck, HttpMethod, ProcessCheck, ProcessPorts,
    ProfileCheck, SocketCheck, TcpCheck, TlsOptions,
};

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

impl Check {
    /// Parses one check's arguments (no binary name): `["tcp", "[::1]:80"]`; the inverse of
    /// [`Check::to_args`].
    pub fn from_args(args: &[String]) -> Result<Check, String> {
        OneCheck::try_parse_from(args)
            .map_err(|e| first_line(&e.to_string()))?
            .check
            .into_check()
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
                Check::from_args(&check.to_args()),
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
            let err = Check::from_args(&args(line)).unwrap_err();
            assert!(err.contains(why), "{line:?}: {err}");
        }
    }

    #[test]
    fn statuses_may_be_comma_separated() {
        let Check::Http(http) = Check::from_args(&args(&[
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
}
