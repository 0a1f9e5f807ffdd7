//! The `HealthCheck` custom resource (`healthcheck.openstack.org/v1beta1`): types only.
//!
//! Kubernetes structural schemas allow neither recursion nor serde's externally tagged enums, so
//! the check is a struct of optional members ([`CheckSpec`]) with a CEL "exactly one" rule, and
//! `allOf` nests one level of [`LeafCheck`]s. [`crate::render`] turns it into
//! [`healthcheck_spec::Check`].

use healthcheck_spec::{
    Check, CommandCheck, FileCheck, HttpCheck, ProcessCheck, ProcessPorts, SocketCheck, TcpCheck,
};
use k8s_openapi::api::core::v1::Probe;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::rules;
use healthcheck_spec::duration::DockerDuration;
use healthcheck_spec::serve;

/// Where `healthcheck serve` listens when `mode: HTTP` and `spec.servePort` is not set.
pub const DEFAULT_SERVE_PORT: u16 = serve::DEFAULT_PORT;

/// How one service's health is checked, once for every runtime.
// Printer columns repeat `type_ = ...` by nature.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "healthcheck.openstack.org",
    version = "v1beta1",
    kind = "HealthCheck",
    namespaced,
    status = "HealthCheckStatus",
    derive = "PartialEq",
    // Kuberhealthy's HealthCheck owns `hc`, `healthcheck` and `healthchecks`.
    shortname = "oshc",
    category = "openstack",
    doc = "How an OpenStack service's health is checked; the operator injects the matching Kubernetes probes.",
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.mode"),
    printcolumn(name = "Probes", type_ = "string", json_path = ".status.probes[*].role"),
    printcolumn(name = "Matched", type_ = "integer", json_path = ".status.matchedPods"),
    printcolumn(name = "Up-to-date", type_ = "integer", json_path = ".status.upToDatePods"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new(rules::PROFILE_XOR_CHECK.0).message(rules::PROFILE_XOR_CHECK.1),
    validation = Rule::new(rules::SHARED_SUCCESS_THRESHOLD.0).message(rules::SHARED_SUCCESS_THRESHOLD.1),
    validation = Rule::new(rules::SHARED_GRACE_PERIOD.0).message(rules::SHARED_GRACE_PERIOD.1),
    validation = Rule::new(rules::native_expressible()).message(rules::NATIVE_EXPRESSIBLE)
)]
pub struct HealthCheckSpec {
    /// The pods to probe.
    #[x_kube(validation = Rule::new(rules::SELECTOR_NOT_EMPTY.0).message(rules::SELECTOR_NOT_EMPTY.1))]
    pub selector: LabelSelector,

    /// Container names to probe; empty means every regular container (init containers never).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub containers: Vec<String>,

    /// A built-in service profile (`healthcheck profile NAME`). Exactly one of profile and check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = healthcheck_spec::PROFILES))]
    pub profile: Option<String>,

    /// The check, in the probe's vocabulary. Exactly one of profile and check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckSpec>,

    /// Which probes to inject; each may override the check and the timing.
    pub probes: Probes,

    /// Docker's timing vocabulary (and Kubernetes overrides), shared by every probe.
    #[serde(default, skip_serializing_if = "Timing::is_empty")]
    pub timing: Timing,

    /// How Kubernetes runs the check.
    #[serde(default)]
    pub mode: Mode,

    /// Port of the `healthcheck serve` sidecar, for `mode: HTTP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub serve_port: Option<u16>,

    /// What to do with a probe the pod's author already wrote.
    #[serde(default)]
    pub existing_probes: ExistingProbes,

    /// When several HealthChecks select the same container, the highest priority wins (ties: the
    /// first name in alphabetical order); the others report a `Conflict` condition.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub priority: i32,

    /// For images without `/openstack/healthcheck`: an init container copies the probe binary
    /// into a shared volume and exec probes run it from there.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inject_binary: bool,

    /// How pods created before the last change get the new probes.
    #[serde(default)]
    pub rollout: Rollout,
}

fn is_zero(value: &i32) -> bool {
    *value == 0
}

/// How the kubelet runs the check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Mode {
    /// `exec` of `/openstack/healthcheck` with the check as arguments.
    #[default]
    Exec,
    /// `httpGet` to the `healthcheck serve` sidecar, one path per probe (`/livez`, `/readyz`,
    /// `/startupz`).
    #[serde(rename = "HTTP")]
    Http,
    /// Kubernetes' own `httpGet`/`tcpSocket`: no process forked; only for checks it can express.
    Native,
}

/// Pods are immutable: probes reach a pod when it is created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Rollout {
    /// Stale pods keep their probes until something else recreates them.
    #[default]
    Manual,
    /// Restart the Deployments, StatefulSets and DaemonSets that own stale pods.
    Restart,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ExistingProbes {
    /// Never overwrite a probe the pod's author wrote.
    #[default]
    Keep,
    Replace,
}

/// The probes to inject. At least one.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new(rules::SOME_PROBE.0).message(rules::SOME_PROBE.1))]
pub struct Probes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(rules::SUCCESS_THRESHOLD_ONE.0).message(rules::SUCCESS_THRESHOLD_ONE.1))]
    pub liveness: Option<ProbeSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(rules::NO_READINESS_GRACE_PERIOD.0).message(rules::NO_READINESS_GRACE_PERIOD.1))]
    pub readiness: Option<ProbeSpec>,
    /// Injected also without this entry when `timing.startPeriod` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(rules::SUCCESS_THRESHOLD_ONE.0).message(rules::SUCCESS_THRESHOLD_ONE.1))]
    pub startup: Option<ProbeSpec>,
}

/// One probe; `{}` takes the check and timing of the spec.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProbeSpec {
    /// Replaces the spec's check or profile for this probe (e.g. a cheap liveness).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckSpec>,
    /// Overrides the spec's timing, field by field.
    #[serde(default, skip_serializing_if = "Timing::is_empty")]
    pub timing: Timing,
}

/// Docker's timing vocabulary with Docker's defaults, plus explicit Kubernetes overrides.
/// Unset fields inherit (probe → spec → Docker default).
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Timing {
    /// Time between checks (Docker default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(rules::positive_duration()).message(rules::POSITIVE_DURATION))]
    pub interval: Option<DockerDuration>,
    /// Time one check may take (Docker default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(rules::positive_duration()).message(rules::POSITIVE_DURATION))]
    pub timeout: Option<DockerDuration>,
    /// Start-up grace (Docker default 0s); becomes a startup probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<DockerDuration>,
    /// Time between checks during the start period (Docker default 5s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(rules::positive_duration()).message(rules::POSITIVE_DURATION))]
    pub start_interval: Option<DockerDuration>,
    /// Consecutive failures before unhealthy (Docker default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub retries: Option<i32>,

    /// Kubernetes `periodSeconds`, instead of the one derived from `interval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub period_seconds: Option<i32>,
    /// Kubernetes `timeoutSeconds`, instead of the one derived from `timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub timeout_seconds: Option<i32>,
    /// Kubernetes `failureThreshold`, instead of the one derived from `retries`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub failure_threshold: Option<i32>,
    /// Kubernetes `successThreshold`; must be 1 for liveness and startup probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub success_threshold: Option<i32>,
    /// Kubernetes `initialDelaySeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub initial_delay_seconds: Option<i32>,
    /// Kubernetes probe-level `terminationGracePeriodSeconds`; not allowed on readiness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub termination_grace_period_seconds: Option<i64>,
}

impl Probes {
    /// The probes that are named, in liveness, readiness, startup order.
    pub fn roles(&self) -> impl Iterator<Item = (ProbeRole, &ProbeSpec)> {
        [
            (ProbeRole::Liveness, &self.liveness),
            (ProbeRole::Readiness, &self.readiness),
            (ProbeRole::Startup, &self.startup),
        ]
        .into_iter()
        .filter_map(|(role, probe)| probe.as_ref().map(|probe| (role, probe)))
    }
}

impl Timing {
    pub fn is_empty(&self) -> bool {
        *self == Timing::default()
    }
}

/// Declares a check struct once with every leaf member, plus `extra` fields, so the top-level
/// check and the `allOf` members cannot drift apart.
macro_rules! check_struct {
    ($(#[$attr:meta])* $name:ident { $($extra:tt)* }) => {
        #[derive(KubeSchema, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
        $(#[$attr])*
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct $name {
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub http: Option<HttpCheck>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[x_kube(validation = Rule::new(rules::TCP_ADDRESS.0).message(rules::TCP_ADDRESS.1))]
            pub tcp: Option<TcpCheck>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub port: Option<ProcessPorts>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub listen: Option<ProcessPorts>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub socket: Option<SocketCheck>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub file: Option<FileCheck>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub process: Option<ProcessCheck>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub command: Option<CommandCheck>,
            $($extra)*
        }

        impl $name {
            /// The leaf members that are set, in the probe's vocabulary (`allOf` not included).
            pub fn leaf_checks(&self) -> Vec<Check> {
                [
                    self.http.clone().map(Check::Http),
                    self.tcp.clone().map(Check::Tcp),
                    self.port.clone().map(Check::Port),
                    self.listen.clone().map(Check::Listen),
                    self.socket.clone().map(Check::Socket),
                    self.file.clone().map(Check::File),
                    self.process.clone().map(Check::Process),
                    self.command.clone().map(Check::Command),
                ]
                .into_iter()
                .flatten()
                .collect()
            }

            /// The struct with `check` as its one member; `None` for `allOf` and for a profile
            /// (the resource names a profile in its own `profile` field).
            pub fn from_leaf_check(check: Check) -> Option<Self> {
                let mut spec = Self::default();
                match check {
                    Check::Http(c) => spec.http = Some(c),
                    Check::Tcp(c) => spec.tcp = Some(c),
                    Check::Port(c) => spec.port = Some(c),
                    Check::Listen(c) => spec.listen = Some(c),
                    Check::Socket(c) => spec.socket = Some(c),
                    Check::File(c) => spec.file = Some(c),
                    Check::Process(c) => spec.process = Some(c),
                    Check::Command(c) => spec.command = Some(c),
                    Check::AllOf(_) | Check::Profile(_) => return None,
                }
                Some(spec)
            }
        }
    };
}

check_struct!(
    /// One check: set exactly one member.
    #[x_kube(validation = Rule::new(rules::exactly_one_check(true)).message(rules::EXACTLY_ONE_CHECK))]
    CheckSpec {
        /// Healthy when every member is.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(min = 1, max = 16))]
        pub all_of: Option<Vec<LeafCheck>>,
    }
);

check_struct!(
    /// A member of `allOf`: one check that is not itself `allOf`.
    #[x_kube(validation = Rule::new(rules::exactly_one_check(false)).message(rules::EXACTLY_ONE_CHECK))]
    LeafCheck {}
);

/// What the operator observed and what it injects.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Accepted` (false with the reason when the spec is invalid) and `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched_pods: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up_to_date_pods: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_pods: Option<i32>,
    /// The probes injected into each selected container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<RenderedProbe>,
    /// The same check as a Dockerfile `HEALTHCHECK` instruction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RenderedProbe {
    pub role: ProbeRole,
    pub probe: Probe,
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
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

    /// The `healthcheck serve` endpoint that answers this probe.
    pub fn serve_path(self) -> &'static str {
        match self {
            ProbeRole::Liveness => serve::LIVENESS_PATH,
            ProbeRole::Readiness => serve::READINESS_PATH,
            ProbeRole::Startup => serve::STARTUP_PATH,
        }
    }
}

/// Conditions are a map keyed by `type` for server-side apply.
fn conditions_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "items": {
            "type": "object",
            "properties": {
                "lastTransitionTime": { "format": "date-time", "type": "string" },
                "message": { "type": "string" },
                "observedGeneration": { "type": "integer", "format": "int64", "minimum": 0 },
                "reason": { "type": "string" },
                "status": { "type": "string" },
                "type": { "type": "string" }
            },
            "required": ["lastTransitionTime", "message", "reason", "status", "type"]
        },
    })
}
