//! The `HealthCheck` custom resource (`healthcheck.openstack.org/v1beta1`): types only.
//!
//! Kubernetes structural schemas allow neither recursion nor serde's externally tagged enums, so
//! the check is a struct of optional members ([`CheckSpec`]) with a CEL "exactly one" rule, and
//! `allOf` nests one level of [`LeafCheck`]s. This module also maps the resource to and from
//! [`healthcheck_spec::Check`] and resolves its timing; [`cel`] holds its CEL rules.

pub mod cel;

pub use healthcheck_spec::ProbeRole;
use healthcheck_spec::docker::{
    DEFAULT_INTERVAL, DEFAULT_START_INTERVAL, DEFAULT_START_PERIOD, DEFAULT_TIMEOUT,
};
use healthcheck_spec::{
    Check, CommandCheck, FileCheck, HttpCheck, ProcessCheck, ProcessPorts, ProfileCheck,
    SocketCheck, TcpCheck,
};
use k8s_openapi::api::core::v1::Probe;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::Error;
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
    printcolumn(name = "Probes", type_ = "string", json_path = ".status.probeRoles"),
    printcolumn(name = "Matched", type_ = "integer", json_path = ".status.matchedPods"),
    printcolumn(name = "Up-to-date", type_ = "integer", json_path = ".status.upToDatePods"),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.readyPods"),
    printcolumn(name = "Failing", type_ = "integer", json_path = ".status.failingPods"),
    printcolumn(name = "Healthy", type_ = "string", json_path = ".status.conditions[?(@.type==\"Healthy\")].status"),
    printcolumn(name = "Last-Failure", type_ = "string", json_path = ".status.lastProbeFailure.message", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new(cel::PROFILE_XOR_CHECK.0).message(cel::PROFILE_XOR_CHECK.1),
    validation = Rule::new(cel::SHARED_SUCCESS_THRESHOLD.0).message(cel::SHARED_SUCCESS_THRESHOLD.1),
    validation = Rule::new(cel::SHARED_GRACE_PERIOD.0).message(cel::SHARED_GRACE_PERIOD.1),
    validation = Rule::new(cel::native_expressible()).message(cel::NATIVE_EXPRESSIBLE),
    validation = Rule::new(cel::PROFILE_ARGS_NEED_PROFILE.0).message(cel::PROFILE_ARGS_NEED_PROFILE.1)
)]
pub struct HealthCheckSpec {
    /// The pods to probe.
    #[x_kube(validation = Rule::new(cel::SELECTOR_NOT_EMPTY.0).message(cel::SELECTOR_NOT_EMPTY.1))]
    #[schemars(schema_with = "selector_schema")]
    pub selector: LabelSelector,

    /// Container names to probe; empty means every regular container (init containers never).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub containers: Vec<String>,

    /// A built-in service profile (`healthcheck profile NAME`). Exactly one of profile and check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = healthcheck_spec::PROFILES))]
    pub profile: Option<String>,

    /// The profile's positional arguments, as TripleO's per-service script took them
    /// (`nova-conductor` with `["5672"]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub profile_args: Vec<String>,

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
#[x_kube(validation = Rule::new(cel::SOME_PROBE.0).message(cel::SOME_PROBE.1))]
pub struct Probes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(cel::SUCCESS_THRESHOLD_ONE.0).message(cel::SUCCESS_THRESHOLD_ONE.1))]
    pub liveness: Option<ProbeSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(cel::NO_READINESS_GRACE_PERIOD.0).message(cel::NO_READINESS_GRACE_PERIOD.1))]
    pub readiness: Option<ProbeSpec>,
    /// Injected also without this entry when `timing.startPeriod` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(cel::SUCCESS_THRESHOLD_ONE.0).message(cel::SUCCESS_THRESHOLD_ONE.1))]
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
    #[x_kube(validation = Rule::new(cel::positive_duration()).message(cel::POSITIVE_DURATION))]
    pub interval: Option<DockerDuration>,
    /// Time one check may take (Docker default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(
        validation = Rule::new(cel::positive_duration()).message(cel::POSITIVE_DURATION),
        validation = Rule::new(cel::timeout_within_limit()).message(cel::timeout_limit_message().as_str())
    )]
    pub timeout: Option<DockerDuration>,
    /// Start-up grace (Docker default 0s); becomes a startup probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<DockerDuration>,
    /// Time between checks during the start period (Docker default 5s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(cel::positive_duration()).message(cel::POSITIVE_DURATION))]
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
    #[schemars(range(min = 1, max = healthcheck_spec::limits::MAX_TIMEOUT_SECONDS))]
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

    /// `over`'s fields where set, else this one's.
    pub fn overlay(&self, over: &Timing) -> Timing {
        Timing {
            interval: over.interval.or(self.interval),
            timeout: over.timeout.or(self.timeout),
            start_period: over.start_period.or(self.start_period),
            start_interval: over.start_interval.or(self.start_interval),
            retries: over.retries.or(self.retries),
            period_seconds: over.period_seconds.or(self.period_seconds),
            timeout_seconds: over.timeout_seconds.or(self.timeout_seconds),
            failure_threshold: over.failure_threshold.or(self.failure_threshold),
            success_threshold: over.success_threshold.or(self.success_threshold),
            initial_delay_seconds: over.initial_delay_seconds.or(self.initial_delay_seconds),
            termination_grace_period_seconds: over
                .termination_grace_period_seconds
                .or(self.termination_grace_period_seconds),
        }
    }

    pub fn interval_or_default(&self) -> DockerDuration {
        self.interval.unwrap_or(DEFAULT_INTERVAL)
    }

    pub fn timeout_or_default(&self) -> DockerDuration {
        self.timeout.unwrap_or(DEFAULT_TIMEOUT)
    }

    pub fn start_period_or_default(&self) -> DockerDuration {
        self.start_period.unwrap_or(DEFAULT_START_PERIOD)
    }

    pub fn start_interval_or_default(&self) -> DockerDuration {
        self.start_interval.unwrap_or(DEFAULT_START_INTERVAL)
    }

    pub fn retries_or_default(&self) -> i32 {
        // Docker's default is 3: the cast is exact.
        self.retries
            .unwrap_or(healthcheck_spec::docker::DEFAULT_RETRIES as i32)
    }
}

impl HealthCheckSpec {
    /// The spec's own check (a profile with its arguments, or the check), which probes inherit.
    pub fn shared_check(&self) -> Result<Check, Error> {
        match (&self.profile, &self.check) {
            (Some(profile), None) => Ok(Check::Profile(ProfileCheck {
                name: profile.clone(),
                args: self.profile_args.clone(),
            })),
            (None, Some(check)) => check
                .to_check()
                .ok_or_else(|| Error::invalid("spec.check", cel::EXACTLY_ONE_CHECK)),
            _ => Err(Error::invalid("spec", cel::PROFILE_XOR_CHECK.1)),
        }
    }
}

impl CheckSpec {
    /// The check in the probe's vocabulary; `None` unless exactly one member is set.
    pub fn to_check(&self) -> Option<Check> {
        let mut leaves = self.leaf_checks();
        match (&self.all_of, leaves.len()) {
            (None, 1) => leaves.pop(),
            (Some(members), 0) => members
                .iter()
                .map(|member| match member.leaf_checks().as_slice() {
                    [leaf] => Some(leaf.clone()),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
                .map(Check::AllOf),
            _ => None,
        }
    }

    /// The CRD form of a check; `None` for a profile (the resource names it in `profile`) and
    /// when `allOf` nests (the CRD allows one level).
    pub fn from_check(check: Check) -> Option<CheckSpec> {
        match check {
            Check::AllOf(members) => Some(CheckSpec {
                all_of: Some(
                    members
                        .into_iter()
                        .map(LeafCheck::from_leaf_check)
                        .collect::<Option<_>>()?,
                ),
                ..CheckSpec::default()
            }),
            leaf => CheckSpec::from_leaf_check(leaf),
        }
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
            #[x_kube(validation = Rule::new(cel::HTTP_URL.0).message(cel::HTTP_URL.1))]
            #[schemars(schema_with = "http_check_schema")]
            pub http: Option<HttpCheck>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[x_kube(validation = Rule::new(cel::TCP_ADDRESS.0).message(cel::TCP_ADDRESS.1))]
            pub tcp: Option<TcpCheck>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[x_kube(validation = Rule::new(cel::process_pattern("process")).message(cel::process_pattern_message().as_str()))]
            pub port: Option<ProcessPorts>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[x_kube(validation = Rule::new(cel::process_pattern("process")).message(cel::process_pattern_message().as_str()))]
            pub listen: Option<ProcessPorts>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[x_kube(validation = Rule::new(cel::process_pattern("process")).message(cel::process_pattern_message().as_str()))]
            pub socket: Option<SocketCheck>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub file: Option<FileCheck>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[x_kube(validation = Rule::new(cel::process_pattern("pattern")).message(cel::process_pattern_message().as_str()))]
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
    #[x_kube(validation = Rule::new(cel::exactly_one_check(true)).message(cel::EXACTLY_ONE_CHECK))]
    CheckSpec {
        /// Healthy when every member is.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(min = 1, max = 16))]
        pub all_of: Option<Vec<LeafCheck>>,
    }
);

check_struct!(
    /// A member of `allOf`: one check that is not itself `allOf`.
    #[x_kube(validation = Rule::new(cel::exactly_one_check(false)).message(cel::EXACTLY_ONE_CHECK))]
    LeafCheck {}
);

/// What the operator observed and what it injects.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Accepted` (false with the reason when the spec is invalid), `Ready` (the selected pods
    /// carry the current probes), `Conflict`, and `Healthy` (the kubelet finds every probed pod
    /// Ready: `kubectl wait --for=condition=Healthy`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched_pods: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up_to_date_pods: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_pods: Option<i32>,
    /// Pods carrying these probes whose `Ready` condition is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_pods: Option<i32>,
    /// Pods carrying these probes with a container the kubelet finds failing them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_pods: Option<i32>,
    /// The newest probe failure the kubelet reported for these probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_probe_failure: Option<ProbeFailure>,
    /// The injected probes' roles, comma-separated (`liveness,readiness`), for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_roles: Option<String>,
    /// The probes injected into each selected container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<RenderedProbe>,
    /// The same check as a Dockerfile `HEALTHCHECK` instruction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
}

/// A probe failure as the kubelet reported it in an `Unhealthy` Event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProbeFailure {
    pub pod: String,
    pub container: String,
    /// Which probe failed, from the kubelet's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbeRole>,
    /// The probe's output, first line (exec probes: the probe's own line; `httpGet`: the
    /// status code the kubelet saw).
    pub message: String,
    /// When the kubelet last reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Time>,
    /// How many times the kubelet reported it in that Event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<i32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RenderedProbe {
    pub role: ProbeRole,
    pub probe: Probe,
}

/// Kubernetes' LabelSelector, with the rule its own validation applies to each requirement
/// (a CRD's schema does not carry it).
fn selector_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = generator.subschema_for::<LabelSelector>();
    if let Some(requirement) = schema
        .pointer_mut("/properties/matchExpressions/items")
        .and_then(serde_json::Value::as_object_mut)
    {
        requirement.insert(
            "x-kubernetes-validations".to_string(),
            serde_json::json!([{
                "rule": cel::SELECTOR_REQUIREMENT.0,
                "message": cel::SELECTOR_REQUIREMENT.1,
            }]),
        );
    }
    schema
}

/// The probe's HttpCheck, with the rule each header must pass (a rule on the list would need a
/// comprehension; one on each item reports the item's path) and the byte bound of `bodyRegex`
/// (on the field itself, so the apiserver reports its path).
fn http_check_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = generator.subschema_for::<Option<HttpCheck>>();
    for (pointer, rule, message) in [
        (
            "/properties/headers/items",
            cel::HTTP_HEADER.0.to_string(),
            cel::HTTP_HEADER.1.to_string(),
        ),
        (
            "/properties/bodyRegex",
            cel::body_regex_within_limit(),
            cel::body_regex_limit_message(),
        ),
    ] {
        if let Some(node) = schema
            .pointer_mut(pointer)
            .and_then(serde_json::Value::as_object_mut)
        {
            node.insert(
                "x-kubernetes-validations".to_string(),
                serde_json::json!([{ "rule": rule, "message": message }]),
            );
        }
    }
    schema
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
