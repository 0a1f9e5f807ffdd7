//! `port`, `listen`, `socket` and `process` against real processes holding real sockets.

mod support;

use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Duration;

use support::{SocketHolder, TempDir, run};

#[test]
fn port_matches_a_connected_socket_by_remote_port_ipv4_and_ipv6() {
    for host in ["127.0.0.1", "::1"] {
        let listener = TcpListener::bind((host, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let spec = format!("tcp-connect:{host}:{port}");
        let holder = SocketHolder::start(&[&spec]);
        let line = run(&["port", &holder.marker, &port.to_string(), "1"])
            .healthy()
            .to_string();
        assert!(line.contains(&format!("(pid {})", holder.pid())), "{line}");
        assert!(line.contains(&format!(":{port}")), "{line}");
        let line = run(&["port", &holder.marker, "1", "2"])
            .unhealthy()
            .to_string();
        assert_eq!(
            line,
            format!(
                "unhealthy: no process matching `{}` has a socket on 1,2",
                holder.marker
            )
        );
    }
}

#[test]
fn port_and_listen_see_udp_sockets() {
    let holder = SocketHolder::start(&["udp-bind:::1", "udp-bind:127.0.0.1"]);
    for port in &holder.ports {
        run(&["port", &holder.marker, &port.to_string()]).healthy();
        let line = run(&["listen", &holder.marker, &port.to_string()])
            .healthy()
            .to_string();
        assert!(line.contains("listens on udp"), "{line}");
    }
}

#[test]
fn listen_needs_a_listening_socket_not_a_connection() {
    let holder = SocketHolder::start(&["tcp-listen:::1", "tcp-listen:127.0.0.1"]);
    for port in &holder.ports {
        let line = run(&["listen", &holder.marker, &port.to_string()])
            .healthy()
            .to_string();
        assert!(line.contains("listens on tcp"), "{line}");
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let client = SocketHolder::start(&[&format!("tcp-connect:127.0.0.1:{port}")]);
    run(&["port", &client.marker, &port.to_string()]).healthy();
    let line = run(&["listen", &client.marker, &port.to_string()])
        .unhealthy()
        .to_string();
    assert!(
        line.contains(&format!(
            "no process matching `{}` listens on {port}",
            client.marker
        )),
        "{line}"
    );
}

/// TripleO's regex matched TIME_WAIT rows (inode 0) against any socket inode containing a 0.
#[test]
fn time_wait_sockets_never_count() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // The side that closes first keeps the TIME_WAIT row: here, the client.
    let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (server_side, _) = listener.accept().unwrap();
    client.shutdown(Shutdown::Both).unwrap();
    drop(client);
    std::thread::sleep(Duration::from_millis(100));
    drop(server_side);
    drop(listener);
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let hex_port = format!(":{port:04X} ");
    assert!(
        table
            .lines()
            .any(|l| l.contains(&hex_port) && l.split_whitespace().nth(3) == Some("06")),
        "no TIME_WAIT row for port {port}"
    );
    // A process with plenty of sockets whose inodes contain zeros, none on that port.
    let holder = SocketHolder::start(&[
        "tcp-listen:127.0.0.1",
        "tcp-listen:127.0.0.1",
        "udp-bind:127.0.0.1",
        "tcp-listen:::1",
    ]);
    run(&["port", &holder.marker, &port.to_string()]).unhealthy();
}

#[test]
fn process_patterns_match_full_command_lines_beyond_15_characters() {
    let holder = SocketHolder::start(&[]);
    // The marker appears only in the arguments, far past comm's 15 characters.
    let line = run(&["process", &format!("python3 -c .* {}", holder.marker)])
        .healthy()
        .to_string();
    assert!(line.contains(&holder.pid().to_string()), "{line}");
    let line = run(&["process", "no-such-process-anywhere-xyz"])
        .unhealthy()
        .to_string();
    assert_eq!(
        line,
        "unhealthy: no process matches `no-such-process-anywhere-xyz`"
    );
    let line = run(&["process", "(unclosed"]).unhealthy().to_string();
    assert!(line.contains("invalid process pattern"), "{line}");
}

#[test]
fn socket_matches_the_process_holding_a_unix_socket_path() {
    let dir = TempDir::new("unix");
    let path = dir.path("virtlogd-sock");
    let path = path.to_str().unwrap();
    let holder = SocketHolder::start(&[&format!("unix-listen:{path}")]);
    let line = run(&["socket", &holder.marker, path]).healthy().to_string();
    assert!(line.contains(&format!("holds {path}")), "{line}");
    let other = dir.path("other-sock");
    let line = run(&["socket", &holder.marker, other.to_str().unwrap()])
        .unhealthy()
        .to_string();
    assert!(line.contains("holds Unix socket"), "{line}");
    let line = run(&["socket", "no-such-process-xyz", path])
        .unhealthy()
        .to_string();
    assert!(line.contains("no process matches"), "{line}");
}

#[test]
fn port_arguments_are_validated() {
    let line = run(&["port", "x", "http"]).unhealthy().to_string();
    assert!(
        line.contains("invalid arguments") && line.contains("not a port"),
        "{line}"
    );
}
