//! The validation rules of the `HealthCheck` API.
//!
//! Each rule exists twice on purpose: as CEL in the CRD (`x-kubernetes-validations`), so the
//! apiserver rejects bad objects, and in Rust ([`validate`]), so the offline CLI rejects the same
//! input. Both report the same message; the tests run every invalid fixture through both.

use healthcheck_spec::{Check, HttpMethod, PROFILES};

use crate::api::{CheckSpec, HealthCheckSpec, Mode, ProbeRole, ProbeSpec, Timing};
use crate::error::Error;
use healthcheck_spec::duration::DURATION_PATTERN;

/// A CEL rule and the message the apiserver returns when it fails.
pub type CelRule = (&'static str, &'static str);

pub const PROFILE_XOR_CHECK: CelRule = (
    "has(self.profile) != has(self.check)",
    "set exactly one of profile and check",
);

pub const SELECTOR_NOT_EMPTY: CelRule = (
    "(has(self.matchLabels) && size(self.matchLabels) > 0) || (has(self.matchExpressions) && size(self.matchExpressions) > 0)",
    "selector must not be empty: an empty selector matches every pod in the namespace",
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

pub const TCP_ADDRESS: CelRule = (
    r"self.address.matches('^(\\[[0-9A-Fa-f:.]+\\]|[^:\\[\\]/]+):[0-9]{1,5}$') && int(self.address.substring(self.address.lastIndexOf(':') + 1)) >= 1 && int(self.address.substring(self.address.lastIndexOf(':') + 1)) <= 65535",
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

/// The Rust side of every rule above, with the same messages, plus what only Rust can check.
pub fn validate(spec: &HealthCheckSpec) -> Result<(), Error> {
    if spec.profile.is_some() == spec.check.is_some() {
        return Err(Error::invalid("spec", PROFILE_XOR_CHECK.1));
    }
    if let Some(profile) = &spec.profile
        && !PROFILES.contains(&profile.as_str())
    {
        return Err(Error::invalid(
            "spec.profile",
            format!(
                "unknown profile {profile:?}; the built-in profiles are: {}",
                PROFILES.join(", ")
            ),
        ));
    }
    let selector = &spec.selector;
    let labels = selector
        .match_labels
        .as_ref()
        .is_some_and(|m| !m.is_empty());
    let expressions = selector
        .match_expressions
        .as_ref()
        .is_some_and(|e| !e.is_empty());
    if !labels && !expressions {
        return Err(Error::invalid("spec.selector", SELECTOR_NOT_EMPTY.1));
    }
    let probes = &spec.probes;
    if probes.liveness.is_none() && probes.readiness.is_none() && probes.startup.is_none() {
        return Err(Error::invalid("spec.probes", SOME_PROBE.1));
    }
    validate_timing("spec.timing", &spec.timing)?;
    if spec.timing.success_threshold.is_some_and(|n| n != 1)
        && (probes.liveness.is_some() || probes.startup.is_some())
    {
        return Err(Error::invalid("spec", SHARED_SUCCESS_THRESHOLD.1));
    }
    if spec.timing.termination_grace_period_seconds.is_some() && probes.readiness.is_some() {
        return Err(Error::invalid("spec", SHARED_GRACE_PERIOD.1));
    }
    if let Some(check) = &spec.check {
        validate_check("spec.check", check)?;
    }
    for (role, probe) in probes.roles() {
        validate_probe(role, probe)?;
    }
    if spec.mode == Mode::Native
        && !probes.roles().all(|(_, probe)| {
            probe
                .check
                .as_ref()
                .or(spec.check.as_ref())
                .and_then(CheckSpec::to_check)
                .is_some_and(|check| native_ok(&check))
        })
    {
        return Err(Error::invalid("spec", NATIVE_EXPRESSIBLE));
    }
    Ok(())
}

fn validate_probe(role: ProbeRole, probe: &ProbeSpec) -> Result<(), Error> {
    let field = format!("spec.probes.{}", role.as_str());
    validate_timing(&format!("{field}.timing"), &probe.timing)?;
    if role != ProbeRole::Readiness && probe.timing.success_threshold.is_some_and(|n| n != 1) {
        return Err(Error::invalid(field, SUCCESS_THRESHOLD_ONE.1));
    }
    if role == ProbeRole::Readiness && probe.timing.termination_grace_period_seconds.is_some() {
        return Err(Error::invalid(field, NO_READINESS_GRACE_PERIOD.1));
    }
    if let Some(check) = &probe.check {
        validate_check(&format!("{field}.check"), check)?;
    }
    Ok(())
}

fn validate_timing(field: &str, timing: &Timing) -> Result<(), Error> {
    for (name, value) in [
        ("interval", timing.interval),
        ("timeout", timing.timeout),
        ("startInterval", timing.start_interval),
    ] {
        if value.is_some_and(|d| d.is_zero()) {
            return Err(Error::invalid(format!("{field}.{name}"), POSITIVE_DURATION));
        }
    }
    let at_least = |name: &str, value: Option<i64>, min: i64| match value {
        Some(v) if v < min => Err(Error::invalid(
            format!("{field}.{name}"),
            format!("should be greater than or equal to {min}"),
        )),
        _ => Ok(()),
    };
    at_least("retries", timing.retries.map(i64::from), 1)?;
    at_least("periodSeconds", timing.period_seconds.map(i64::from), 1)?;
    at_least("timeoutSeconds", timing.timeout_seconds.map(i64::from), 1)?;
    at_least(
        "failureThreshold",
        timing.failure_threshold.map(i64::from),
        1,
    )?;
    at_least(
        "successThreshold",
        timing.success_threshold.map(i64::from),
        1,
    )?;
    at_least(
        "initialDelaySeconds",
        timing.initial_delay_seconds.map(i64::from),
        0,
    )?;
    at_least(
        "terminationGracePeriodSeconds",
        timing.termination_grace_period_seconds,
        1,
    )
}

fn validate_check(field: &str, check: &CheckSpec) -> Result<(), Error> {
    let leaves = check.leaf_checks();
    match (&check.all_of, leaves.as_slice()) {
        (None, [leaf]) => validate_leaf(field, leaf),
        (Some(members), []) => {
            if members.is_empty() {
                return Err(Error::invalid(
                    format!("{field}.allOf"),
                    "should have at least 1 items",
                ));
            }
            for (i, member) in members.iter().enumerate() {
                let field = format!("{field}.allOf[{i}]");
                match member.leaf_checks().as_slice() {
                    [leaf] => validate_leaf(&field, leaf)?,
                    _ => return Err(Error::invalid(field, EXACTLY_ONE_CHECK)),
                }
            }
            Ok(())
        }
        _ => Err(Error::invalid(field, EXACTLY_ONE_CHECK)),
    }
}

fn validate_leaf(field: &str, check: &Check) -> Result<(), Error> {
    match check {
        Check::Tcp(tcp) if crate::render::split_host_port(&tcp.address).is_none() => {
            Err(Error::invalid(format!("{field}.tcp"), TCP_ADDRESS.1))
        }
        Check::Port(p) | Check::Listen(p) if p.ports.is_empty() || p.ports.contains(&0) => {
            Err(Error::invalid(
                format!("{field}.{}.ports", check.kind()),
                "list one or more ports from 1 to 65535",
            ))
        }
        _ => Ok(()),
    }
}

/// Whether Kubernetes can run this check itself (`httpGet` or `tcpSocket`).
pub fn native_ok(check: &Check) -> bool {
    match check {
        Check::Tcp(_) => true,
        Check::Http(http) => {
            http.method == HttpMethod::Get
                && http.expect_status.is_empty()
                && http.user.is_none()
                && http.body_regex.is_none()
                && http.tls == Default::default()
        }
        _ => false,
    }
}
