//! The check vocabulary: what one health check is, independent of how it runs.
//!
//! The probe binary parses these from its command line and from `serve` configs; the operator
//! embeds them in the `HealthCheck` custom resource and renders them back to the probe's
//! command line with [`Check::to_args`]. The serde form is the YAML users write:
//!
//! ```yaml
//! allOf:
//!   - http: { url: "https://[fd00::1]:8774/", expectStatus: [200] }
//!   - port: { process: nova-conductor, ports: [5671, 5672] }
//! ```

#![forbid(unsafe_code)]

pub mod address;
pub mod args;
pub mod docker;
pub mod duration;
pub mod limits;
pub mod serve;
pub mod text;
pub mod url;

use serde::{Deserialize, Serialize};

/// Where the probe binary lives in every image.
pub const PROBE_BINARY: &str = "/openstack/healthcheck";

/// The Kubernetes probe a check answers; `healthcheck serve` has one endpoint per role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub enum ProbeRole {
    Liveness,
    Readiness,
    Startup,
}

impl ProbeRole {
    pub const ALL: [ProbeRole; 3] = [
        ProbeRole::Liveness,
        ProbeRole::Readiness,
        ProbeRole::Startup,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProbeRole::Liveness => "liveness",
            ProbeRole::Readiness => "readiness",
            ProbeRole::Startup => "startup",
        }
    }

    pub fn parse(name: &str) -> Option<ProbeRole> {
        ProbeRole::ALL
            .into_iter()
            .find(|role| role.as_str() == name)
    }

    /// The `healthcheck serve` endpoint that answers this probe.
    pub fn serve_path(self) -> &'static str {
        match self {
            ProbeRole::Liveness => serve::LIVENESS_PATH,
            ProbeRole::Readiness => serve::READINESS_PATH,
            ProbeRole::Startup => serve::STARTUP_PATH,
        }
    }
}

/// One check. `AllOf` is healthy when every member is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Check {
    Http(HttpCheck),
    Tcp(TcpCheck),
    Port(ProcessPorts),
    Listen(ProcessPorts),
    Socket(SocketCheck),
    File(FileCheck),
    Process(ProcessCheck),
    Command(CommandCheck),
    Profile(ProfileCheck),
    AllOf(Vec<Check>),
}

/// An HTTP(S) request whose status decides. Mirrors TripleO's `curl -g -k --fail` by default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpCheck {
    #[cfg_attr(feature = "schemars", schemars(length(max = limits::MAX_URL_CHARS)))]
    pub url: String,
    #[serde(default, skip_serializing_if = "is_default")]
    pub method: HttpMethod,
    /// Statuses counted as healthy; empty means any status below 400 (curl `--fail`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "schemars", schemars(inner(range(min = 100, max = 599))))]
    pub expect_status: Vec<u16>,
    /// Extra request headers, each `Name: value` as given to curl `-H`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(
        feature = "schemars",
        schemars(
            length(max = limits::MAX_HEADERS),
            inner(length(max = limits::MAX_HEADER_CHARS))
        )
    )]
    pub headers: Vec<String>,
    /// Basic auth as `USER:PASSWORD`, like curl `-u`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schemars", schemars(length(max = limits::MAX_USER_CHARS)))]
    pub user: Option<String>,
    /// A regular expression the response body must match (read up to a bounded size).
    // Bounded by `limits::MAX_PATTERN_BYTES`, which counts bytes as a schema's `maxLength`
    // cannot: the operator's CRD carries a rule for it. The `maxLength` in characters never
    // refuses what that rule accepts; it bounds the rule's estimated cost, without which the
    // CRD's rules together exceed the apiserver's budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schemars", schemars(length(max = limits::MAX_PATTERN_BYTES)))]
    pub body_regex: Option<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub tls: TlsOptions,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    #[default]
    Get,
    Head,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Head => "HEAD",
        }
    }
}

/// TLS settings. Verification is off unless asked for, like curl `-k` in the TripleO scripts:
/// internal endpoints use certificates the container often cannot verify.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsOptions {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub verify: bool,
    /// PEM CA bundle used for verification (implies `verify`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// PEM client certificate chain and its key, for mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
}

/// A TCP connection to `host:port` (IPv6 literals bracketed: `[::1]:5672`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpCheck {
    #[cfg_attr(feature = "schemars", schemars(length(max = 512)))]
    pub address: String,
}

/// A process (full command line matched by a regular expression, like `pgrep -f`) and ports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProcessPorts {
    pub process: String,
    #[cfg_attr(feature = "schemars", schemars(length(min = 1), inner(range(min = 1))))]
    pub ports: Vec<u16>,
}

/// A process holding a Unix socket path open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SocketCheck {
    pub process: String,
    pub path: String,
}

/// A file that exists and was modified at most `max_age_seconds` ago.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileCheck {
    pub path: String,
    pub max_age_seconds: u64,
}

/// A running process whose full command line matches `pattern`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProcessCheck {
    pub pattern: String,
}

/// A program run without a shell; exit status 0 is healthy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommandCheck {
    #[cfg_attr(feature = "schemars", schemars(length(min = 1)))]
    pub argv: Vec<String>,
}

/// A built-in service profile (one of [`PROFILES`]) with its TripleO-style positional arguments,
/// e.g. `{name: nova-conductor, args: ["5672"]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileCheck {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
}

/// The built-in service profiles, one per TripleO service check script (`healthcheck profile NAME`).
/// The operator accepts exactly these names; the probe implements them.
pub const PROFILES: &[&str] = &[
    "aodh-api",
    "aodh-evaluator",
    "aodh-listener",
    "aodh-notifier",
    "barbican-api",
    "barbican-keystone-listener",
    "barbican-worker",
    "ceilometer-agent-central",
    "ceilometer-agent-compute",
    "ceilometer-agent-ipmi",
    "ceilometer-agent-notification",
    "cinder-api",
    "cinder-backup",
    "cinder-scheduler",
    "cinder-volume",
    "collectd",
    "cron",
    "etcd",
    "frr",
    "glance-api",
    "gnocchi-api",
    "gnocchi-metricd",
    "gnocchi-statsd",
    "heat-api",
    "heat-api-cfn",
    "heat-engine",
    "horizon",
    "ironic-api",
    "ironic-conductor",
    "ironic-inspector",
    "ironic-neutron-agent",
    "ironic-pxe",
    "iscsid",
    "keystone",
    "manila-api",
    "manila-scheduler",
    "manila-share",
    "mariadb",
    "memcached",
    "multipathd",
    "neutron-api",
    "neutron-dhcp",
    "neutron-l3",
    "neutron-metadata",
    "neutron-ovs-agent",
    "neutron-sriov-agent",
    "nova-api",
    "nova-compute",
    "nova-conductor",
    "nova-ironic",
    "nova-libvirt",
    "nova-metadata",
    "nova-scheduler",
    "nova-vnc-proxy",
    "octavia-api",
    "octavia-health-manager",
    "octavia-housekeeping",
    "octavia-worker",
    "ovn-bgp-agent",
    "ovn-controller",
    "ovn-dbs",
    "ovn-metadata",
    "placement-api",
    "qdrouterd",
    "rabbitmq",
    "redis",
    "swift-account-server",
    "swift-container-server",
    "swift-object-server",
    "swift-proxy",
    "swift-rsync",
];

/// The token that separates the members of an `all` check on the command line.
pub const AND: &str = "--and";

impl Check {
    /// The probe's command-line arguments for this check (what follows the binary's name).
    /// `healthcheck` parses them back to an equal `Check`.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        self.push_args(&mut args);
        args
    }

    fn push_args(&self, args: &mut Vec<String>) {
        let mut push = |items: &[&str]| args.extend(items.iter().map(|s| s.to_string()));
        match self {
            Check::Http(http) => {
                push(&["http", &http.url]);
                if http.method != HttpMethod::Get {
                    push(&["--method", http.method.as_str()]);
                }
                for status in &http.expect_status {
                    push(&["--status", &status.to_string()]);
                }
                for header in &http.headers {
                    push(&["--header", header]);
                }
                if let Some(user) = &http.user {
                    push(&["--user", user]);
                }
                if let Some(regex) = &http.body_regex {
                    push(&["--body-regex", regex]);
                }
                if http.tls.verify {
                    push(&["--verify"]);
                }
                for (flag, value) in [
                    ("--cacert", &http.tls.ca_file),
                    ("--cert", &http.tls.cert_file),
                    ("--key", &http.tls.key_file),
                ] {
                    if let Some(value) = value {
                        push(&[flag, value]);
                    }
                }
            }
            Check::Tcp(tcp) => push(&["tcp", &tcp.address]),
            Check::Port(p) | Check::Listen(p) => {
                let kind = if matches!(self, Check::Port(_)) {
                    "port"
                } else {
                    "listen"
                };
                push(&[kind, &p.process]);
                args.extend(p.ports.iter().map(u16::to_string));
            }
            Check::Socket(s) => push(&["socket", &s.process, &s.path]),
            Check::File(f) => push(&["file", &f.path, &f.max_age_seconds.to_string()]),
            Check::Process(p) => push(&["process", &p.pattern]),
            Check::Command(c) => {
                push(&["command", "--"]);
                args.extend(c.argv.iter().cloned());
            }
            Check::Profile(p) => {
                push(&["profile", &p.name]);
                args.extend(p.args.iter().cloned());
            }
            Check::AllOf(checks) => {
                args.push("all".to_string());
                for (i, check) in checks.iter().enumerate() {
                    if i > 0 {
                        args.push(AND.to_string());
                    }
                    check.push_args(args);
                }
            }
        }
    }

    /// A short name for messages and metrics: `http`, `port`, `all`, …
    pub fn kind(&self) -> &'static str {
        match self {
            Check::Http(_) => "http",
            Check::Tcp(_) => "tcp",
            Check::Port(_) => "port",
            Check::Listen(_) => "listen",
            Check::Socket(_) => "socket",
            Check::File(_) => "file",
            Check::Process(_) => "process",
            Check::Command(_) => "command",
            Check::Profile(_) => "profile",
            Check::AllOf(_) => "all",
        }
    }
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_shape_is_externally_tagged_camel_case() {
        let check: Check = serde_json::from_str(
            r#"{"allOf":[{"http":{"url":"http://[::1]:8774/","expectStatus":[200]}},
                         {"port":{"process":"nova-conductor","ports":[5671,5672]}}]}"#,
        )
        .unwrap();
        let Check::AllOf(members) = &check else {
            panic!("not allOf: {check:?}")
        };
        assert_eq!(members.len(), 2);
        assert_eq!(
            members[1],
            Check::Port(ProcessPorts {
                process: "nova-conductor".into(),
                ports: vec![5671, 5672]
            })
        );
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = serde_json::from_str::<Check>(r#"{"http":{"url":"http://x/","expect":[200]}}"#)
            .unwrap_err();
        assert!(err.to_string().contains("unknown field `expect`"), "{err}");
    }

    #[test]
    fn args_render_every_http_option() {
        let check = Check::Http(HttpCheck {
            url: "https://h/".into(),
            method: HttpMethod::Head,
            expect_status: vec![200, 204],
            headers: vec!["X-A: b".into()],
            user: Some("u:p".into()),
            body_regex: Some("ok".into()),
            tls: TlsOptions {
                verify: true,
                ca_file: Some("/ca".into()),
                cert_file: Some("/c".into()),
                key_file: Some("/k".into()),
            },
        });
        assert_eq!(
            check.to_args(),
            [
                "http",
                "https://h/",
                "--method",
                "HEAD",
                "--status",
                "200",
                "--status",
                "204",
                "--header",
                "X-A: b",
                "--user",
                "u:p",
                "--body-regex",
                "ok",
                "--verify",
                "--cacert",
                "/ca",
                "--cert",
                "/c",
                "--key",
                "/k"
            ]
        );
    }

    #[test]
    fn profiles_are_sorted_and_unique() {
        assert!(PROFILES.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn profile_renders_name_then_arguments() {
        let check: Check =
            serde_json::from_str(r#"{"profile":{"name":"nova-conductor","args":["5672"]}}"#)
                .unwrap();
        assert_eq!(check.to_args(), ["profile", "nova-conductor", "5672"]);
        let bare: Check = serde_json::from_str(r#"{"profile":{"name":"redis"}}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&bare).unwrap(),
            r#"{"profile":{"name":"redis"}}"#
        );
    }

    #[test]
    fn all_of_members_are_separated_by_and() {
        let check = Check::AllOf(vec![
            Check::Tcp(TcpCheck {
                address: "[::1]:80".into(),
            }),
            Check::Command(CommandCheck {
                argv: vec!["true".into()],
            }),
        ]);
        assert_eq!(
            check.to_args(),
            ["all", "tcp", "[::1]:80", "--and", "command", "--", "true"]
        );
    }
}
