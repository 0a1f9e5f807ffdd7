//! `healthcheck mysql` against a real MariaDB server (TCP and Unix socket), and against peers
//! that are not MySQL servers.

mod support;

use std::time::Duration;

use support::mariadb::{ED25519_USER, PASSWORD, USER, mariadb};
use support::{Then, binary, fake_peer, run, run_as};
use test_support::free_port;

fn tcp_address() -> String {
    format!("127.0.0.1:{}", mariadb().port)
}

#[test]
fn correct_password_over_tcp_and_the_unix_socket() {
    let tcp = tcp_address();
    let run = run_as(
        binary(),
        &[
            "mysql",
            "--user",
            USER,
            "--password-env",
            "DB_PASSWORD",
            &tcp,
        ],
        &[("DB_PASSWORD", PASSWORD)],
    );
    assert_eq!(
        run.healthy(),
        format!("healthy: mysql {tcp}: authenticated as {USER}, SELECT 1 ok")
    );
    let socket = mariadb().socket.to_str().unwrap().to_string();
    let line = run_as(
        binary(),
        &["mysql", "-u", USER, "--password", PASSWORD, &socket],
        &[],
    )
    .healthy()
    .to_string();
    assert_eq!(
        line,
        format!("healthy: mysql {socket}: authenticated as {USER}, SELECT 1 ok")
    );
}

#[test]
fn wrong_password_is_access_denied() {
    let line = run(&["mysql", "-u", USER, "--password", "wrong", &tcp_address()])
        .unhealthy()
        .to_string();
    assert!(
        line.contains(&format!("Access denied for user '{USER}'@'127.0.0.1'"))
            && line.contains("error 1045"),
        "{line}"
    );
    let line = run(&["mysql", "-u", "nobody", &tcp_address()])
        .unhealthy()
        .to_string();
    assert!(line.contains("(using password: NO) (error 1045"), "{line}");
}

#[test]
fn unset_password_variable_is_a_clear_argument_error() {
    let line = run(&[
        "mysql",
        "-u",
        USER,
        "--password-env",
        "NOT_SET",
        "127.0.0.1:1",
    ])
    .unhealthy()
    .to_string();
    assert!(
        line.contains("environment variable NOT_SET is not set"),
        "{line}"
    );
}

#[test]
fn unsupported_auth_plugin_is_named() {
    // The server switches the login to ed25519 for this user.
    let line = run(&[
        "mysql",
        "-u",
        ED25519_USER,
        "--password",
        PASSWORD,
        &tcp_address(),
    ])
    .unhealthy()
    .to_string();
    assert!(
        line.contains("authentication plugin client_ed25519, which is not supported"),
        "{line}"
    );
}

#[test]
fn galera_check_on_a_server_without_wsrep_is_not_synced() {
    let line = run(&[
        "mysql",
        "-u",
        USER,
        "--password",
        PASSWORD,
        "--galera",
        &tcp_address(),
    ])
    .unhealthy()
    .to_string();
    assert_eq!(
        line,
        format!(
            "unhealthy: mysql {}: MariaDB Galera Cluster Node is NOT synced: the server reports \
             no wsrep_local_state_comment (not a Galera node, or wsrep is off)",
            tcp_address()
        )
    );
}

#[test]
fn no_server_is_connection_refused() {
    let address = format!("127.0.0.1:{}", free_port());
    let line = run(&["mysql", "-u", USER, &address])
        .unhealthy()
        .to_string();
    assert!(line.ends_with("connection refused"), "{line}");
    let line = run(&["mysql", "-u", USER, "/nonexistent/mysqld.sock"])
        .unhealthy()
        .to_string();
    assert!(
        line.contains("cannot connect: no such file or directory"),
        "{line}"
    );
}

#[test]
fn peers_that_are_not_mysql_fail_clearly_and_in_time() {
    let ssh = fake_peer(&[b"SSH-2.0-OpenSSH_9.2p1\r\n"], Then::Hang);
    let run_ = run(&[
        "--timeout",
        "2",
        "mysql",
        "-u",
        USER,
        &format!("127.0.0.1:{ssh}"),
    ]);
    let line = run_.unhealthy();
    assert!(line.contains("not a MySQL server"), "{line}");
    assert!(run_.elapsed < Duration::from_secs(1), "{run_:?}");

    // A header announcing a 16 MiB greeting.
    let huge = fake_peer(&[b"\xff\xff\xff\x00"], Then::Hang);
    let line = run(&["mysql", "-u", USER, &format!("127.0.0.1:{huge}")])
        .unhealthy()
        .to_string();
    assert!(
        line.contains("-byte packet while reading the greeting"),
        "{line}"
    );

    for then in [Then::Hang, Then::Close] {
        let silent = fake_peer(&[b""], then);
        let run_ = run(&[
            "--timeout",
            "1",
            "mysql",
            "-u",
            USER,
            &format!("127.0.0.1:{silent}"),
        ]);
        let line = run_.unhealthy();
        match then {
            Then::Hang => assert!(line.contains("timed out after 1s"), "{line}"),
            Then::Close => assert!(
                line.contains("connection closed by the server while reading the greeting"),
                "{line}"
            ),
        }
        assert!(run_.elapsed < Duration::from_secs(3), "{run_:?}");
    }
}

/// A MySQL 8 style greeting with `plugin` as the default and CLIENT_DEPRECATE_EOF.
fn greeting(plugin: &str) -> Vec<u8> {
    let mut g = vec![10];
    g.extend_from_slice(b"8.0.36\0");
    g.extend_from_slice(&[1, 0, 0, 0]);
    g.extend_from_slice(b"abcdefgh\0");
    g.extend_from_slice(&0xA201u16.to_le_bytes()); // 4.1, secure connection, transactions
    g.push(255);
    g.extend_from_slice(&[2, 0]);
    g.extend_from_slice(&0x0108u16.to_le_bytes()); // plugin auth, deprecate EOF
    g.push(21);
    g.extend_from_slice(&[0; 10]);
    g.extend_from_slice(b"ijklmnopqrst\0");
    g.extend_from_slice(plugin.as_bytes());
    g.push(0);
    packet(0, &g)
}

fn packet(sequence: u8, payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u32).to_le_bytes();
    [&[len[0], len[1], len[2], sequence][..], payload].concat()
}

#[test]
fn caching_sha2_fast_path_over_the_wire() {
    let auth_ok = [packet(2, &[1, 3]), packet(3, &[0, 0, 0, 2, 0, 0, 0])].concat();
    let column =
        b"\x03def\x00\x00\x00\x011\x00\x0c\x3f\x00\x01\x00\x00\x00\x08\x81\x00\x00\x00\x00";
    let result = [
        packet(1, &[1]),
        packet(2, column),
        packet(3, b"\x011"),
        packet(4, &[0xFE, 0, 0, 2, 0, 0, 0]),
    ]
    .concat();
    let port = fake_peer(
        &[&greeting("caching_sha2_password"), &auth_ok, &result],
        Then::Close,
    );
    let line = run(&[
        "mysql",
        "-u",
        "app",
        "--password",
        "p",
        &format!("127.0.0.1:{port}"),
    ])
    .healthy()
    .to_string();
    assert!(
        line.ends_with("authenticated as app, SELECT 1 ok"),
        "{line}"
    );

    let port = fake_peer(
        &[&greeting("caching_sha2_password"), &packet(2, &[1, 4])],
        Then::Hang,
    );
    let line = run(&[
        "mysql",
        "-u",
        "app",
        "--password",
        "p",
        &format!("127.0.0.1:{port}"),
    ])
    .unhealthy()
    .to_string();
    assert!(
        line.contains("caching_sha2_password asks for full authentication"),
        "{line}"
    );
}
