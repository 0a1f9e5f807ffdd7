//! `healthcheck amqp` against a real RabbitMQ broker, and against peers that are not one.

mod support;

use std::time::Duration;

use support::rabbitmq::{APP_PASSWORD, APP_USER, PASSWORD, USER, VHOST, rabbitmq};
use support::{Then, binary, fake_peer, run, run_as};
use test_support::free_port;

fn address() -> String {
    format!("127.0.0.1:{}", rabbitmq().port)
}

#[test]
fn guest_over_loopback_opens_the_default_vhost() {
    let address = address();
    let line = run_as(
        binary(),
        &[
            "amqp",
            "--user",
            USER,
            "--password-env",
            "AMQP_PASSWORD",
            &address,
        ],
        &[("AMQP_PASSWORD", PASSWORD)],
    )
    .healthy()
    .to_string();
    assert!(
        line.starts_with(&format!(
            "healthy: amqp {address}: authenticated as guest, vhost / open (RabbitMQ "
        )),
        "{line}"
    );
}

#[test]
fn an_application_user_opens_its_vhost_only() {
    let address = address();
    let app = |vhost: &str| {
        run_as(
            binary(),
            &[
                "amqp",
                "-u",
                APP_USER,
                "--password-env",
                "PW",
                "--vhost",
                vhost,
                &address,
            ],
            &[("PW", APP_PASSWORD)],
        )
    };
    let line = app(VHOST).healthy().to_string();
    assert!(
        line.contains(&format!("authenticated as {APP_USER}, vhost {VHOST} open")),
        "{line}"
    );
    let line = app("/").unhealthy().to_string();
    assert!(
        line.contains("NOT_ALLOWED - access to vhost '/' refused for user 'openstack'"),
        "{line}"
    );
}

#[test]
fn wrong_password_is_access_refused() {
    let line = run(&["amqp", "-u", USER, "--password", "wrong", &address()])
        .unhealthy()
        .to_string();
    assert!(
        line.contains("authentication failed (ACCESS_REFUSED - Login was refused")
            && line.contains("reply 403"),
        "{line}"
    );
}

#[test]
fn unknown_vhost_is_not_allowed() {
    let line = run(&[
        "amqp",
        "-u",
        USER,
        "--password",
        PASSWORD,
        "--vhost",
        "/missing",
        &address(),
    ])
    .unhealthy()
    .to_string();
    assert!(
        line.contains(
            "NOT_ALLOWED - vhost /missing not found; reply 530) while opening vhost /missing"
        ),
        "{line}"
    );
}

#[test]
fn without_credentials_connection_start_proves_a_broker() {
    let line = run(&["amqp", &address()]).healthy().to_string();
    assert!(
        line.contains("speaks AMQP 0-9-1 (Connection.Start received; no credentials given)")
            && line.contains("RabbitMQ"),
        "{line}"
    );
    let line = run(&["amqp", "-u", USER, &address()])
        .unhealthy()
        .to_string();
    assert!(
        line.contains("--user needs --password or --password-env"),
        "{line}"
    );
}

#[test]
fn no_broker_is_connection_refused() {
    let address = format!("127.0.0.1:{}", free_port());
    let line = run(&["amqp", &address]).unhealthy().to_string();
    assert!(line.ends_with("connection refused"), "{line}");
}

#[test]
fn peers_that_are_not_amqp_0_9_1_fail_clearly_and_in_time() {
    let ssh = fake_peer(&[b"SSH-2.0-OpenSSH_9.2p1\r\n"], Then::Hang);
    let line = run(&["amqp", &format!("127.0.0.1:{ssh}")])
        .unhealthy()
        .to_string();
    assert!(line.contains("not an AMQP 0-9-1 broker"), "{line}");

    // An AMQP 1.0 broker answers with its own protocol header and closes.
    let amqp1 = fake_peer(&[b"AMQP\x00\x01\x00\x00"], Then::Close);
    let line = run(&["amqp", &format!("127.0.0.1:{amqp1}")])
        .unhealthy()
        .to_string();
    assert!(
        line.ends_with("it answered with protocol header AMQP 0 1 0 0"),
        "{line}"
    );

    // A method frame announcing 2 GiB.
    let huge = fake_peer(&[b"\x01\x00\x00\x7f\xff\xff\xff"], Then::Hang);
    let line = run(&["amqp", &format!("127.0.0.1:{huge}")])
        .unhealthy()
        .to_string();
    assert!(
        line.contains("-byte frame, more than the 131072 allowed"),
        "{line}"
    );

    for then in [Then::Hang, Then::Close] {
        let silent = fake_peer(&[b""], then);
        let run_ = run(&["--timeout", "1", "amqp", &format!("127.0.0.1:{silent}")]);
        let line = run_.unhealthy();
        match then {
            Then::Hang => assert!(line.contains("timed out after 1s"), "{line}"),
            Then::Close => assert!(
                line.contains("connection closed by the server while waiting for Connection.Start"),
                "{line}"
            ),
        }
        assert!(run_.elapsed < Duration::from_secs(3), "{run_:?}");
    }
}

/// A minimal Connection.Start: version 0-9, no server properties, PLAIN only.
fn start_frame() -> Vec<u8> {
    let mut payload = vec![0, 10, 0, 10, 0, 9, 0, 0, 0, 0];
    payload.extend_from_slice(&[0, 0, 0, 5]);
    payload.extend_from_slice(b"PLAIN");
    payload.extend_from_slice(&[0, 0, 0, 5]);
    payload.extend_from_slice(b"en_US");
    let mut frame = vec![1, 0, 0];
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(&payload);
    frame.push(0xCE);
    frame
}

#[test]
fn a_broker_dropping_the_connection_after_start_ok_refused_the_login() {
    // What RabbitMQ does to clients that do not ask for authentication_failure_close.
    let port = fake_peer(&[&start_frame(), b""], Then::Close);
    let address = format!("127.0.0.1:{port}");
    let line = run(&["amqp", "-u", "guest", "--password", "x", &address])
        .unhealthy()
        .to_string();
    assert!(
        line.ends_with(
            "authentication failed (ACCESS_REFUSED): the broker closed the connection after Start-Ok as guest"
        ),
        "{line}"
    );
    let line = run(&["amqp", &address]).healthy().to_string();
    assert!(
        line.ends_with(
            "the broker speaks AMQP 0-9-1 (Connection.Start received; no credentials given)"
        ),
        "{line}"
    );
}
