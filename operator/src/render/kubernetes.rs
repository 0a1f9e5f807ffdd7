//! `HealthCheckSpec` → Kubernetes `Probe`s (the mapping table is in docs/healthcheck-api.md).

use healthcheck_spec::{Check, HttpCheck};
use k8s_openapi::api::core::v1::{ExecAction, HTTPGetAction, HTTPHeader, Probe, TCPSocketAction};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::api::{DEFAULT_SERVE_PORT, HealthCheckSpec, Mode, ProbeRole, RenderedProbe};
use crate::error::Error;
use crate::render::{PlannedProbe, ProbeCheck, plan, split_host_port};
use crate::rules;

/// The probes to inject into each selected container, liveness, readiness, startup.
pub fn probes(spec: &HealthCheckSpec) -> Result<Vec<RenderedProbe>, Error> {
    plan(spec)?
        .iter()
        .map(|planned| {
            Ok(RenderedProbe {
                role: planned.role,
                probe: probe(spec, planned)?,
            })
        })
        .collect()
}

fn probe(spec: &HealthCheckSpec, planned: &PlannedProbe) -> Result<Probe, Error> {
    let timing = &planned.timing;
    let timeout_seconds = timing
        .timeout_seconds
        .unwrap_or_else(|| seconds_at_least_one(timing.timeout_or_default().ceil_secs()));
    let retries = timing.retries_or_default();
    let (period_seconds, failure_threshold) = if planned.role == ProbeRole::Startup {
        // The start period is the startup probe's budget on top of the usual retries.
        let period = timing.period_seconds.unwrap_or_else(|| {
            seconds_at_least_one(timing.start_interval_or_default().ceil_secs())
        });
        let start_period = timing.start_period_or_default().0;
        let attempts = start_period
            .as_nanos()
            .div_ceil(u128::from(period.unsigned_abs()) * 1_000_000_000);
        let derived = i32::try_from(attempts)
            .unwrap_or(i32::MAX)
            .saturating_add(retries);
        (period, timing.failure_threshold.unwrap_or(derived))
    } else {
        let period = timing
            .period_seconds
            .unwrap_or_else(|| seconds_at_least_one(timing.interval_or_default().ceil_secs()));
        (period, timing.failure_threshold.unwrap_or(retries))
    };
    let mut probe = Probe {
        period_seconds: Some(period_seconds),
        timeout_seconds: Some(timeout_seconds),
        failure_threshold: Some(failure_threshold),
        success_threshold: Some(timing.success_threshold.unwrap_or(1)),
        initial_delay_seconds: timing.initial_delay_seconds,
        termination_grace_period_seconds: timing.termination_grace_period_seconds,
        ..Probe::default()
    };
    match spec.mode {
        Mode::Exec => {
            probe.exec = Some(ExecAction {
                command: Some(
                    planned
                        .check
                        .exec_command(timeout_seconds.unsigned_abs().into()),
                ),
            })
        }
        Mode::Http => {
            probe.http_get = Some(HTTPGetAction {
                path: Some(format!("/{}", planned.role.as_str())),
                port: IntOrString::Int(spec.serve_port.unwrap_or(DEFAULT_SERVE_PORT).into()),
                ..HTTPGetAction::default()
            })
        }
        Mode::Native => match &planned.check {
            ProbeCheck::Check(Check::Http(http))
                if rules::native_ok(&Check::Http(http.clone())) =>
            {
                probe.http_get = Some(http_get(http)?)
            }
            ProbeCheck::Check(Check::Tcp(tcp)) => {
                let (host, port) = split_host_port(&tcp.address)
                    .ok_or_else(|| Error::invalid("spec", rules::TCP_ADDRESS.1))?;
                probe.tcp_socket = Some(TCPSocketAction {
                    host: remote_host(host),
                    port: IntOrString::Int(port.into()),
                })
            }
            _ => return Err(Error::invalid("spec", rules::NATIVE_EXPRESSIBLE)),
        },
    }
    Ok(probe)
}

fn seconds_at_least_one(secs: u64) -> i32 {
    i32::try_from(secs.max(1)).unwrap_or(i32::MAX)
}

/// The kubelet probes from the node, so a loopback host means "the pod's IP" (host unset).
fn remote_host(host: &str) -> Option<String> {
    let loopback = host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback());
    (!loopback).then(|| host.to_string())
}

/// An `http(s)://host[:port][/path]` URL as a Kubernetes `httpGet`.
fn http_get(http: &HttpCheck) -> Result<HTTPGetAction, Error> {
    let invalid = |why: &str| {
        Error::invalid(
            "spec",
            format!("{}: url {:?} {why}", rules::NATIVE_EXPRESSIBLE, http.url),
        )
    };
    let (scheme, rest) = http
        .url
        .split_once("://")
        .ok_or_else(|| invalid("has no scheme"))?;
    let (scheme, default_port) = match scheme.to_ascii_lowercase().as_str() {
        "http" => ("HTTP", 80),
        "https" => ("HTTPS", 443),
        _ => return Err(invalid("is neither http nor https")),
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if authority.contains('@') {
        return Err(invalid("carries credentials"));
    }
    let (host, port) = if authority.ends_with(']') || !authority.contains(':') {
        (
            authority.trim_start_matches('[').trim_end_matches(']'),
            default_port,
        )
    } else {
        split_host_port(authority).ok_or_else(|| invalid("has an invalid host or port"))?
    };
    if host.is_empty() {
        return Err(invalid("has no host"));
    }
    let headers = http
        .headers
        .iter()
        .map(|header| {
            let (name, value) = header
                .split_once(':')
                .ok_or_else(|| invalid("has a header without ':'"))?;
            Ok(HTTPHeader {
                name: name.trim().to_string(),
                value: value.trim().to_string(),
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(HTTPGetAction {
        host: remote_host(host),
        path: Some(if path.is_empty() { "/" } else { path }.to_string()),
        port: IntOrString::Int(port.into()),
        scheme: Some(scheme.to_string()),
        http_headers: (!headers.is_empty()).then_some(headers),
    })
}
