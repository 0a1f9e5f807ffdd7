//! The CEL rules of the `HealthCheck` API (`x-kubernetes-validations`), so the apiserver rejects
//! bad objects; each with the message it reports. [`crate::rules`] holds their Rust twins, which
//! report the same messages, so the offline CLI rejects the same input; the tests run every
//! invalid fixture through both.

use healthcheck_spec::duration::DURATION_PATTERN;
use healthcheck_spec::limits::{MAX_PATTERN_BYTES, MAX_TIMEOUT_SECONDS};

/// A CEL rule and the message the apiserver returns when it fails.
pub type CelRule = (&'static str, &'static str);

pub const PROFILE_XOR_CHECK: CelRule = (
    "has(self.profile) != has(self.check)",
    "set exactly one of profile and check",
);

pub const PROFILE_ARGS_NEED_PROFILE: CelRule = (
    "!has(self.profileArgs) || size(self.profileArgs) == 0 || has(self.profile)",
    "profileArgs needs profile",
);

pub const SELECTOR_NOT_EMPTY: CelRule = (
    "(has(self.matchLabels) && size(self.matchLabels) > 0) || (has(self.matchExpressions) && size(self.matchExpressions) > 0)",
    "selector must not be empty: an empty selector matches every pod in the namespace",
);

/// On each `matchExpressions` item.
pub const SELECTOR_REQUIREMENT: CelRule = (
    "(self.operator == 'In' || self.operator == 'NotIn') ? (has(self.values) && size(self.values) > 0) : ((self.operator == 'Exists' || self.operator == 'DoesNotExist') && (!has(self.values) || size(self.values) == 0))",
    "operator must be In or NotIn with one or more values, or Exists or DoesNotExist without values",
);

pub const SOME_PROBE: CelRule = (
    "has(self.liveness) || has(self.readiness) || has(self.startup)",
    "name at least one probe: liveness, readiness or startup",
);

pub const SUCCESS_THRESHOLD_ONE: CelRule = (
    "!has(self.timing) || !has(self.timing.successThreshold) || self.timing.successThreshold == 1",
    "successThreshold must be 1 for liveness and startup probes",
);

pub const NO_READINESS_GRACE_PERIOD: CelRule = (
    "!has(self.timing) || !has(self.timing.terminationGracePeriodSeconds)",
    "terminationGracePeriodSeconds must not be set on the readiness probe",
);

pub const SHARED_SUCCESS_THRESHOLD: CelRule = (
    "!has(self.timing) || !has(self.timing.successThreshold) || self.timing.successThreshold == 1 || !(has(self.probes.liveness) || has(self.probes.startup))",
    "timing.successThreshold must be 1 when a liveness or startup probe is injected; set it under probes.readiness.timing",
);

pub const SHARED_GRACE_PERIOD: CelRule = (
    "!has(self.timing) || !has(self.timing.terminationGracePeriodSeconds) || !has(self.probes.readiness)",
    "timing.terminationGracePeriodSeconds is not allowed when a readiness probe is injected; set it under probes.liveness.timing or probes.startup.timing",
);

pub const POSITIVE_DURATION: &str = "must be longer than 0s";

/// Malformed text is reported by the duration type's own rule, so this one skips it.
pub fn positive_duration() -> String {
    format!("!self.matches('{DURATION_PATTERN}') || duration(self) > duration('0s')")
}

pub fn timeout_within_limit() -> String {
    format!(
        "!self.matches('{DURATION_PATTERN}') || duration(self) <= duration('{MAX_TIMEOUT_SECONDS}s')"
    )
}

pub fn timeout_limit_message() -> String {
    format!("must be at most {MAX_TIMEOUT_SECONDS}s, the longest timeout the probe takes")
}

pub const HTTP_URL: CelRule = (
    "self.url.matches('^[Hh][Tt][Tt][Pp][Ss]?://[^/?#[:space:][:cntrl:]][^[:space:][:cntrl:]]*$')",
    "url must start with http:// or https:// and a host, without spaces or control characters",
);

/// On each item of `http.headers`.
pub const HTTP_HEADER: CelRule = (
    r#"self.matches("^[-!#$%&'*+.^_`|~0-9A-Za-z]+:[^\r\n]*$")"#,
    "header must be `Name: value` with a token name and no line break",
);

/// On a member whose `field` is a process pattern (`process.pattern`, `port.process`, ...):
/// not empty, and within the probe's size limit in bytes.
pub fn process_pattern(field: &str) -> String {
    format!("self.{field} != '' && size(bytes(self.{field})) <= {MAX_PATTERN_BYTES}")
}

pub fn process_pattern_message() -> String {
    format!(
        "the process pattern must not be empty (it would match every process) and at most {MAX_PATTERN_BYTES} bytes"
    )
}

/// On `http.bodyRegex`: within the probe's size limit for patterns, in bytes as the probe
/// counts them.
pub fn body_regex_within_limit() -> String {
    format!("size(bytes(self)) <= {MAX_PATTERN_BYTES}")
}

pub fn body_regex_limit_message() -> String {
    format!(
        "bodyRegex must be at most {MAX_PATTERN_BYTES} bytes, the longest pattern the probe takes"
    )
}

pub const TCP_ADDRESS: CelRule = (
    r"self.address.matches('^(\\[[0-9A-Fa-f:.]+\\]|[^:\\[\\]/]+):[0-9]{1,5}$') && int(self.address.substring(self.address.lastIndexOf(':') + 1)) >= 1 && int(self.address.substring(self.address.lastIndexOf(':') + 1)) <= 65535 && (!self.address.startsWith('[') || (isIP(self.address.substring(1, self.address.indexOf(']'))) && ip(self.address.substring(1, self.address.indexOf(']'))).family() == 6))",
    "address must be HOST:PORT with a port from 1 to 65535 (IPv6 in brackets, e.g. [::1]:5672)",
);

/// The members of a check, in the order the CRD lists them.
const CHECK_MEMBERS: [&str; 8] = [
    "http", "tcp", "port", "listen", "socket", "file", "process", "command",
];

pub const EXACTLY_ONE_CHECK: &str = "set exactly one of http, tcp, port, listen, socket, file, process, command (or allOf, not nested)";

pub fn exactly_one_check(with_all_of: bool) -> String {
    let members = CHECK_MEMBERS
        .iter()
        .copied()
        .chain(with_all_of.then_some("allOf"))
        .map(|member| format!("(has(self.{member}) ? 1 : 0)"))
        .collect::<Vec<_>>();
    format!("{} == 1", members.join(" + "))
}

pub const NATIVE_EXPRESSIBLE: &str = "mode Native needs a single http check (GET, no expectStatus, user, bodyRegex or TLS options) or tcp check for every probe; use mode Exec or HTTP for profiles and other checks";

pub fn native_expressible() -> String {
    let expressible = |c: &str| {
        format!(
            "(has({c}.tcp) || (has({c}.http) && (!has({c}.http.method) || {c}.http.method == 'GET') \
             && (!has({c}.http.expectStatus) || size({c}.http.expectStatus) == 0) && !has({c}.http.user) && !has({c}.http.bodyRegex) \
             && (!has({c}.http.tls) || ((!has({c}.http.tls.verify) || !{c}.http.tls.verify) \
             && !has({c}.http.tls.caFile) && !has({c}.http.tls.certFile) && !has({c}.http.tls.keyFile)))))"
        )
    };
    let role = |role: &str| {
        let probe = format!("self.probes.{role}");
        format!(
            "(!has({probe}) || (has({probe}.check) ? {} : (has(self.check) && {})))",
            expressible(&format!("{probe}.check")),
            expressible("self.check")
        )
    };
    format!(
        "!has(self.mode) || self.mode != 'Native' || ({} && {} && {})",
        role("liveness"),
        role("readiness"),
        role("startup")
    )
}
