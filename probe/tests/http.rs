//! `healthcheck http` against real HTTP and HTTPS servers on loopback.

mod support;

use std::time::Duration;

use support::{Behaviour, HttpServer, TempDir, run, test_pki};

fn respond(status: u16, body: &str) -> Behaviour {
    Behaviour::Respond {
        status,
        body: body.into(),
    }
}

#[test]
fn status_below_400_is_healthy_like_curl_fail() {
    for (status, healthy) in [
        (200, true),
        (204, true),
        (302, true),
        (399, true),
        (400, false),
        (404, false),
        (503, false),
    ] {
        let server = HttpServer::start("127.0.0.1:0", respond(status, "x"));
        let result = run(&["http", &server.url("/healthcheck")]);
        let line = if healthy {
            result.healthy()
        } else {
            result.unhealthy()
        };
        let expected = format!(
            "GET {}: {status} {} ",
            server.url("/healthcheck"),
            server.addr
        );
        assert!(line.contains(&expected), "{line} / {expected}");
    }
}

#[test]
fn expected_statuses_replace_the_default() {
    let server = HttpServer::start("127.0.0.1:0", respond(503, ""));
    run(&["http", &server.url("/"), "--status", "503"]).healthy();
    let line = run(&["http", &server.url("/"), "--status", "200,204"])
        .unhealthy()
        .to_string();
    assert!(line.contains("(expected status 200 or 204)"), "{line}");
}

#[test]
fn sends_user_agent_headers_and_basic_auth() {
    let server = HttpServer::start("127.0.0.1:0", respond(200, ""));
    run(&[
        "http",
        &server.url("/v3?x=1"),
        "-H",
        "X-Auth-Token: t0k",
        "--user",
        "admin:s3cret",
    ])
    .healthy();
    let url = format!("http://admin:p%40ss@{}/", server.addr);
    run(&["http", &url, "--method", "HEAD"]).healthy();
    let requests = server.requests.lock().unwrap();
    assert!(
        requests[0].starts_with("GET /v3?x=1 HTTP/1.1\r\n"),
        "{}",
        requests[0]
    );
    assert!(
        requests[0].contains("User-Agent: curl-healthcheck\r\n"),
        "{}",
        requests[0]
    );
    assert!(
        requests[0].contains("X-Auth-Token: t0k\r\n"),
        "{}",
        requests[0]
    );
    assert!(
        requests[0].contains("Authorization: Basic YWRtaW46czNjcmV0\r\n"),
        "{}",
        requests[0]
    );
    assert!(
        requests[1].starts_with("HEAD / HTTP/1.1\r\n"),
        "{}",
        requests[1]
    );
    // admin:p@ss, decoded from the URL's user info.
    assert!(
        requests[1].contains("Authorization: Basic YWRtaW46cEBzcw==\r\n"),
        "{}",
        requests[1]
    );
}

#[test]
fn user_agent_follows_the_tripleo_variable() {
    let server = HttpServer::start("127.0.0.1:0", respond(200, ""));
    support::run_as(
        support::binary(),
        &["http", &server.url("/")],
        &[("HEALTHCHECK_CURL_USER_AGENT", "probe/1")],
    )
    .healthy();
    assert!(server.requests.lock().unwrap()[0].contains("User-Agent: probe/1\r\n"));
}

#[test]
fn body_regex_must_match() {
    let server = HttpServer::start("127.0.0.1:0", respond(200, r#"{"status": "pass"}"#));
    run(&[
        "http",
        &server.url("/"),
        "--body-regex",
        r#""status": "pass""#,
    ])
    .healthy();
    let line = run(&["http", &server.url("/"), "--body-regex", "^OK$"])
        .unhealthy()
        .to_string();
    assert!(line.contains("body does not match `^OK$`"), "{line}");
    let line = run(&["http", &server.url("/"), "--body-regex", "("])
        .unhealthy()
        .to_string();
    assert!(line.contains("invalid body regex"), "{line}");
}

#[test]
fn ipv6_literal_urls_need_no_globbing_flag() {
    let server = HttpServer::start("[::1]:0", respond(200, ""));
    let url = format!("http://[::1]:{}/", server.addr.port());
    let line = run(&["http", &url]).healthy().to_string();
    assert!(
        line.contains(&format!("200 [::1]:{}", server.addr.port())),
        "{line}"
    );
    assert!(
        server.requests.lock().unwrap()[0]
            .contains(&format!("Host: [::1]:{}\r\n", server.addr.port()))
    );
}

#[test]
fn https_is_unverified_by_default_and_verified_on_request() {
    let pki = test_pki();
    let server =
        HttpServer::start_with_tls("127.0.0.1:0", respond(200, "ok"), Some(pki.server.clone()));
    let url = format!("https://localhost:{}/", server.addr.port());
    run(&["http", &url]).healthy();
    let line = run(&["http", &url, "--verify"]).unhealthy().to_string();
    assert!(
        line.contains("TLS handshake failed") || line.contains("certificate"),
        "{line}"
    );
    let dir = TempDir::new("ca");
    let ca = dir.path("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    run(&["http", &url, "--cacert", ca.to_str().unwrap()]).healthy();
    let ipv6 = HttpServer::start_with_tls("[::1]:0", respond(200, ""), Some(pki.server));
    run(&[
        "http",
        &format!("https://[::1]:{}/", ipv6.addr.port()),
        "--cacert",
        ca.to_str().unwrap(),
    ])
    .healthy();
}

#[test]
fn bad_tls_inputs_are_explained() {
    let line = run(&[
        "http",
        "https://127.0.0.1:1/",
        "--cacert",
        "/nonexistent/ca.pem",
    ])
    .unhealthy()
    .to_string();
    assert!(
        line.contains("cannot read CA bundle /nonexistent/ca.pem"),
        "{line}"
    );
    let server = HttpServer::start("127.0.0.1:0", respond(200, ""));
    let line = run(&["http", &format!("https://{}/", server.addr)])
        .unhealthy()
        .to_string();
    assert!(line.contains("TLS handshake"), "{line}");
}

#[test]
fn refused_reset_and_garbage_are_unhealthy_with_reasons() {
    let line = run(&["http", "http://127.0.0.1:1/"])
        .unhealthy()
        .to_string();
    assert!(
        line.contains("cannot connect to 127.0.0.1:1: connection refused"),
        "{line}"
    );
    let reset = HttpServer::start("127.0.0.1:0", Behaviour::Reset);
    let line = run(&["http", &reset.url("/")]).unhealthy().to_string();
    // The reset may also arrive before the connect completes, on a loaded machine.
    assert!(
        line.contains("reading the response")
            || line.contains("sending the request")
            || line.contains("connection reset by peer"),
        "{line}"
    );
    let garbage = HttpServer::start("127.0.0.1:0", Behaviour::Garbage);
    let line = run(&["http", &garbage.url("/")]).unhealthy().to_string();
    assert!(
        line.contains("not an HTTP response: `SSH-2.0-OpenSSH_9.2`"),
        "{line}"
    );
    // Found by fuzzing the response parser: this was an internal error (a panic) before.
    let blank = HttpServer::start("127.0.0.1:0", Behaviour::BlankLineFirst);
    let line = run(&["http", &blank.url("/")]).unhealthy().to_string();
    assert!(
        line.contains("reading the response failed: not an HTTP response: a blank line where the status line belongs"),
        "{line}"
    );
    let line = run(&["http", "http://[::1/"]).unhealthy().to_string();
    assert!(line.contains("invalid URL"), "{line}");
}

/// The whole run ends by the deadline (plus at most 100 ms) whatever the peer does.
#[test]
fn hostile_peers_cannot_outlast_the_deadline() {
    for behaviour in [Behaviour::Hang, Behaviour::Trickle] {
        let url = HttpServer::start("127.0.0.1:0", behaviour).url("/");
        for extra in [&[][..], &["--body-regex", "never-there"]] {
            let mut args = vec!["--timeout", "1", "http", url.as_str()];
            args.extend_from_slice(extra);
            let result = run(&args);
            let line = result.unhealthy();
            result.assert_within(Duration::from_secs(1));
            assert!(line.contains("timed out after 1s"), "{line}");
        }
    }
}

/// A body is read only for a regex, and then at most 1 MiB of it, within the deadline.
#[test]
fn huge_bodies_are_not_read_unless_needed() {
    let server = HttpServer::start("127.0.0.1:0", Behaviour::Huge);
    let result = run(&["--timeout", "2", "http", &server.url("/")]);
    result.healthy();
    let result = run(&[
        "--timeout",
        "2",
        "http",
        &server.url("/"),
        "--body-regex",
        "never-there",
    ]);
    assert!(
        result.unhealthy().contains("body does not match"),
        "{result:?}"
    );
}

#[test]
fn proxies_are_ignored_unless_enabled() {
    let target = HttpServer::start("127.0.0.1:0", respond(200, ""));
    let proxy = HttpServer::start("127.0.0.1:0", respond(502, ""));
    let proxy_env = format!("http://{}", proxy.addr);
    let env = [("http_proxy", proxy_env.as_str())];
    support::run_as(support::binary(), &["http", &target.url("/")], &env).healthy();
    assert!(proxy.requests.lock().unwrap().is_empty());
    let enabled = [
        ("http_proxy", proxy_env.as_str()),
        ("HEALTHCHECK_USE_PROXY", "1"),
    ];
    support::run_as(support::binary(), &["http", &target.url("/x")], &enabled).unhealthy();
    let seen = proxy.requests.lock().unwrap();
    assert!(
        seen[0].starts_with(&format!("GET {} HTTP/1.1", target.url("/x"))),
        "{}",
        seen[0]
    );
    let bypass = [
        ("http_proxy", proxy_env.as_str()),
        ("HEALTHCHECK_USE_PROXY", "1"),
        ("no_proxy", "127.0.0.0/8"),
    ];
    support::run_as(support::binary(), &["http", &target.url("/")], &bypass).healthy();
}
