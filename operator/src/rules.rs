//! The validation rules of the `HealthCheck` API in Rust ([`validate`]): the twins of the CEL
//! rules in [`crate::api::cel`], with the same messages, so the offline CLI rejects what the
//! apiserver rejects; plus what only Rust can check.

use healthcheck_spec::address::split_host_port;
use healthcheck_spec::{Check, HttpMethod, PROFILES};
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
