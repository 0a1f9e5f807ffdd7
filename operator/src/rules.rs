//! The validation rules of the `HealthCheck` API in Rust ([`validate`]): the twins of the CEL
//! rules in [`crate::api::cel`], with the same messages, so the offline CLI rejects what the
//! apiserver rejects; plus what only Rust can check.

use std::time::Duration;

use healthcheck_spec::address::split_host_port;
use healthcheck_spec::limits::{
    MAX_HEADER_CHARS, MAX_HEADERS, MAX_PATTERN_BYTES, MAX_TIMEOUT_SECONDS, MAX_URL_CHARS,
    MAX_USER_CHARS, validate_header,
};
use healthcheck_spec::url::Url;
use healthcheck_spec::{Check, HttpCheck, HttpMethod, PROFILES};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

use crate::api::cel::*;
use crate::api::{CheckSpec, HealthCheckSpec, Mode, ProbeRole, ProbeSpec, Timing};
use crate::error::Error;

/// The Rust side of every CEL rule, with the same messages, plus what only Rust can check.
pub fn validate(spec: &HealthCheckSpec) -> Result<(), Error> {
    if spec.profile.is_some() == spec.check.is_some() {
        return Err(Error::invalid("spec", PROFILE_XOR_CHECK.1));
    }
    if !spec.profile_args.is_empty() && spec.profile.is_none() {
        return Err(Error::invalid("spec", PROFILE_ARGS_NEED_PROFILE.1));
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
    let requirement_ok = |requirement: &LabelSelectorRequirement| {
        let values = requirement.values.as_ref().map_or(0, Vec::len);
        match requirement.operator.as_str() {
            "In" | "NotIn" => values > 0,
            "Exists" | "DoesNotExist" => values == 0,
            _ => false,
        }
    };
    if !selector
        .match_expressions
        .iter()
        .flatten()
        .all(requirement_ok)
    {
        return Err(Error::invalid(
            "spec.selector.matchExpressions",
            SELECTOR_REQUIREMENT.1,
        ));
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
    if timing
        .timeout
        .is_some_and(|d| d.0 > Duration::from_secs(MAX_TIMEOUT_SECONDS))
    {
        return Err(Error::invalid(
            format!("{field}.timeout"),
            timeout_limit_message(),
        ));
    }
    if timing
        .timeout_seconds
        .is_some_and(|s| u64::try_from(s).is_ok_and(|s| s > MAX_TIMEOUT_SECONDS))
    {
        return Err(Error::invalid(
            format!("{field}.timeoutSeconds"),
            format!("should be less than or equal to {MAX_TIMEOUT_SECONDS}"),
        ));
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

/// What the CEL rule on a check's URL accepts: an http(s) scheme, a host, no ASCII spaces or
/// control characters.
fn url_shape_ok(url: &str) -> bool {
    let bad = |c: char| c.is_ascii_whitespace() || c.is_ascii_control();
    url.split_once("://").is_some_and(|(scheme, rest)| {
        (scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https"))
            && rest.starts_with(|c: char| !matches!(c, '/' | '?' | '#') && !bad(c))
    }) && !url.contains(bad)
}

fn validate_http(field: &str, http: &HttpCheck) -> Result<(), Error> {
    let too_long = |text: &str, max: usize| text.chars().count() > max;
    if too_long(&http.url, MAX_URL_CHARS) {
        return Err(Error::invalid(
            format!("{field}.url"),
            format!("may not be more than {MAX_URL_CHARS} characters"),
        ));
    }
    if http.headers.len() > MAX_HEADERS {
        return Err(Error::invalid(
            format!("{field}.headers"),
            format!("should have at most {MAX_HEADERS} items"),
        ));
    }
    if http.headers.iter().any(|h| too_long(h, MAX_HEADER_CHARS)) {
        return Err(Error::invalid(
            format!("{field}.headers"),
            format!("may not be more than {MAX_HEADER_CHARS} characters"),
        ));
    }
    // The schema's maxLength before the CEL rule on bodyRegex: the apiserver skips the CEL
    // rules of an object that fails its schema.
    for (name, value, max) in [
        ("user", &http.user, MAX_USER_CHARS),
        ("bodyRegex", &http.body_regex, MAX_PATTERN_BYTES),
    ] {
        if value.as_deref().is_some_and(|v| too_long(v, max)) {
            return Err(Error::invalid(
                format!("{field}.{name}"),
                format!("may not be more than {max} characters"),
            ));
        }
    }
    if http
        .body_regex
        .as_deref()
        .is_some_and(|r| r.len() > MAX_PATTERN_BYTES)
    {
        return Err(Error::invalid(
            format!("{field}.bodyRegex"),
            body_regex_limit_message(),
        ));
    }
    if !url_shape_ok(&http.url) {
        return Err(Error::invalid(field, HTTP_URL.1));
    }
    if http.headers.iter().any(|h| validate_header(h).is_err()) {
        return Err(Error::invalid(format!("{field}.headers"), HTTP_HEADER.1));
    }
    // What only Rust checks: the URL the probe will request parses (host, port, IPv6).
    Url::parse(&http.url)
        .map(drop)
        .map_err(|err| Error::invalid(format!("{field}.url"), err.to_string()))
}

fn validate_leaf(field: &str, check: &Check) -> Result<(), Error> {
    let pattern_ok = |pattern: &str| !pattern.is_empty() && pattern.len() <= MAX_PATTERN_BYTES;
    match check {
        Check::Http(http) => validate_http(&format!("{field}.http"), http),
        Check::Process(p) if !pattern_ok(&p.pattern) => Err(Error::invalid(
            format!("{field}.process"),
            process_pattern_message(),
        )),
        Check::Port(p) | Check::Listen(p) if !pattern_ok(&p.process) => Err(Error::invalid(
            format!("{field}.{}", check.kind()),
            process_pattern_message(),
        )),
        Check::Socket(s) if !pattern_ok(&s.process) => Err(Error::invalid(
            format!("{field}.socket"),
            process_pattern_message(),
        )),
        Check::Tcp(tcp) if split_host_port(&tcp.address).is_err() => {
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
