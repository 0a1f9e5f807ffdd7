//! An HTTP(S) request whose status (and optionally body) decides, as TripleO's
//! `healthcheck_curl`: healthy below 400 unless other statuses are expected, TLS unverified
//! unless asked, proxies ignored unless enabled, bounded by the run's deadline.

use healthcheck_spec::HttpCheck;
use healthcheck_spec::limits::validate_header;
use regex_lite::Regex;

use super::Context;
use crate::Outcome;
use crate::net::http::{BodySink, Exchange, Progress, Request, send};
use crate::net::tls;
use crate::net::url::{Scheme, Url};

/// Runs the request. `sink` says what to do with the body when no regex needs it; `progress`,
/// when given, is told how far it got.
pub fn exchange(
    spec: &HttpCheck,
    ctx: &Context,
    sink: BodySink,
    progress: Option<&Progress<'_>>,
) -> Result<(Url, Exchange), String> {
    let url = Url::parse(&spec.url)?;
    for header in &spec.headers {
        validate_header(header)?;
    }
    let tls = match url.scheme {
        Scheme::Https => Some(tls::client_config(&spec.tls)?),
        Scheme::Http => None,
    };
    let body = if spec.body_regex.is_some() {
        BodySink::Capture
    } else {
        sink
    };
    let request = Request {
        url: &url,
        method: spec.method.as_str(),
        headers: &spec.headers,
        user_agent: &ctx.user_agent,
        basic_auth: spec.user.as_deref(),
        body,
        tls,
        proxy: ctx.proxy.proxy_for(&url)?,
        progress,
    };
    let exchange = send(&request, &ctx.resolver, &ctx.deadline);
    Ok((url, exchange))
}

pub fn run(spec: &HttpCheck, ctx: &Context) -> Outcome {
    let regex = match spec.body_regex.as_deref().map(body_regex).transpose() {
        Ok(regex) => regex,
        Err(e) => return Outcome::unhealthy(e),
    };
    crate::watchdog::doing(&format!("{} {}", spec.method.as_str(), spec.url));
    let (url, exchange) = match exchange(spec, ctx, BodySink::Discard, None) {
        Ok(done) => done,
        Err(e) => return Outcome::unhealthy(e),
    };
    judge(spec, &url, &exchange, regex.as_ref())
}

pub fn body_regex(pattern: &str) -> Result<Regex, String> {
    super::bounded_regex(pattern, "body regex", false)
}

fn judge(spec: &HttpCheck, url: &Url, exchange: &Exchange, regex: Option<&Regex>) -> Outcome {
    let method = spec.method.as_str();
    let Some(status) = exchange.status.filter(|_| exchange.error.is_none()) else {
        let error = exchange.error.as_deref().unwrap_or("no response");
        return Outcome::unhealthy(format!("{method} {url}: {error}"));
    };
    // The curl write-out words, so existing log parsers keep working.
    let found = format!(
        "{status} {} {:.3} seconds",
        exchange.remote.map(|a| a.to_string()).unwrap_or_default(),
        exchange.elapsed.as_secs_f64()
    );
    if !status_expected(status, &spec.expect_status) {
        let expected = if spec.expect_status.is_empty() {
            "below 400".to_string()
        } else {
            spec.expect_status
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(" or ")
        };
        return Outcome::unhealthy(format!(
            "{method} {url}: {found} (expected status {expected})"
        ));
    }
    if let Some(regex) = regex {
        let body = String::from_utf8_lossy(&exchange.body);
        if !regex.is_match(&body) {
            return Outcome::unhealthy(format!(
                "{method} {url}: {found}, body does not match `{}`",
                regex.as_str()
            ));
        }
    }
    Outcome::healthy(format!("{method} {url}: {found}"))
}

/// curl `--fail` semantics unless explicit statuses are given.
pub fn status_expected(status: u16, expected: &[u16]) -> bool {
    if expected.is_empty() {
        status < 400
    } else {
        expected.contains(&status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_semantics_by_default_exact_list_otherwise() {
        assert!(
            status_expected(200, &[]) && status_expected(302, &[]) && status_expected(399, &[])
        );
        assert!(!status_expected(400, &[]) && !status_expected(503, &[]));
        assert!(status_expected(503, &[503]) && !status_expected(200, &[204]));
    }
}
