//! Hostile peers and hostile inputs against the real binary: each must end in one line and
//! exit 1 within the deadline, never a hang, an abort or unbounded memory.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use support::{Run, TempDir, binary, run, run_as};

/// Runs the binary in a private mount namespace whose `/etc/resolv.conf` names `nameserver`,
/// so the resolver asks a DNS server the test controls (the bind mount ends with the process).
fn run_with_nameserver(nameserver: &str, args: &[&str]) -> Run {
    let dir = TempDir::new("resolv");
    let resolv = dir.path("resolv.conf");
    std::fs::write(&resolv, format!("nameserver {nameserver}\n")).unwrap();
    let script = format!(
        "mount --bind {} /etc/resolv.conf && exec \"$0\" \"$@\"",
        resolv.display()
    );
    let mut full = vec!["-m", "--propagation", "private", "sh", "-c", &script];
    let bin = binary().to_str().unwrap();
    full.push(bin);
    full.extend_from_slice(args);
    run_as(std::path::Path::new("/usr/bin/unshare"), &full, &[])
}

/// A DNS server that answers each query with a 3-byte packet carrying the query's ID (once
/// a panic in the resolver) and then keeps sending wrong-ID datagrams every 300 ms, so a
/// receive loop that re-arms its wait per datagram never times out.
struct HostileDns {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl HostileDns {
    fn start(addr: &str) -> HostileDns {
        let socket = UdpSocket::bind(addr).expect("bind the hostile DNS server");
        socket
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let mut clients = Vec::new();
            let mut buf = [0u8; 512];
            while !flag.load(Ordering::SeqCst) {
                if let Ok((n, from)) = socket.recv_from(&mut buf)
                    && n >= 2
                {
                    let _ = socket.send_to(&[buf[0], buf[1], 0x80], from);
                    clients.push((from, [buf[0] ^ 0xff, buf[1]]));
                }
                for (client, wrong_id) in &clients {
                    let mut stray = wrong_id.to_vec();
                    stray.extend_from_slice(&[0x81, 0x80, 0, 0, 0, 0, 0, 0, 0, 0]);
                    let _ = socket.send_to(&stray, client);
                }
            }
        });
        HostileDns {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for HostileDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn a_hostile_dns_server_cannot_crash_or_hold_the_resolver() {
    let _dns = HostileDns::start("127.0.83.53:53");
    let run = run_with_nameserver(
        "127.0.83.53",
        &["--timeout", "3", "tcp", "service.invalid-zone:80"],
    );
    let line = run.unhealthy();
    assert!(
        line.contains("cannot resolve service.invalid-zone"),
        "{line}"
    );
    run.assert_within(Duration::from_secs(3));
}

/// A Unix listener at `path` whose accept backlog is full (as a stuck collectd leaves it):
/// a plain connect to it waits forever. Dropping it ends the waits.
struct FullBacklog {
    _listener: OwnedFd,
    _held: Vec<UnixStream>,
}

impl FullBacklog {
    fn at(path: &std::path::Path) -> FullBacklog {
        // SAFETY: plain socket calls on a descriptor owned at once.
        let listener = unsafe {
            let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
            assert!(fd >= 0);
            OwnedFd::from_raw_fd(fd)
        };
        // SAFETY: zeroed sockaddr_un is valid; filled within its bounds below.
        let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (slot, byte) in addr.sun_path.iter_mut().zip(path.to_str().unwrap().bytes()) {
            *slot = byte as libc::c_char;
        }
        // SAFETY: a valid sockaddr_un for the duration of the calls.
        unsafe {
            let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
            assert_eq!(
                libc::bind(listener.as_raw_fd(), (&raw const addr).cast(), len),
                0
            );
            assert_eq!(libc::listen(listener.as_raw_fd(), 0), 0);
        }
        // Connects no one accepts, each tried on a thread of its own, until one waits.
        let mut held = Vec::new();
        loop {
            let probe_path = path.to_path_buf();
            let (done, finished) = std::sync::mpsc::channel();
            thread::spawn(move || {
                let _ = done.send(UnixStream::connect(&probe_path));
            });
            match finished.recv_timeout(Duration::from_millis(300)) {
                Ok(Ok(stream)) => held.push(stream),
                Ok(Err(e)) => panic!("filling the backlog: {e}"),
                Err(_) => break,
            }
            assert!(held.len() < 1000, "the backlog never filled");
        }
        FullBacklog {
            _listener: listener,
            _held: held,
        }
    }
}

#[test]
fn a_unix_socket_with_a_full_backlog_times_out_within_the_deadline() {
    let dir = TempDir::new("backlog");
    let path = dir.path("full.sock");
    let _full = FullBacklog::at(&path);
    let started = Instant::now();
    let run = run(&[
        "--timeout",
        "2",
        "mysql",
        "-u",
        "monitor",
        path.to_str().unwrap(),
    ]);
    let line = run.unhealthy();
    assert!(line.contains("timed out"), "{line}");
    assert!(started.elapsed() < Duration::from_secs(4), "{run:?}");
}

/// `serve` has no watchdog: a check that ignores its deadline freezes its role for good.
/// Starts serve (through `launcher`, e.g. `unshare`) and waits until the readiness role has
/// failed three runs in a row, which only happens if every run ends at its timeout.
fn assert_serve_keeps_running(launcher: &[&str], config: &str, env: &[(&str, &str)]) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let bin = binary().to_str().unwrap();
    let mut args: Vec<&str> = launcher.to_vec();
    args.extend_from_slice(&[bin, "serve", "--listen", &listen]);
    struct Stop(std::process::Child);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _serve = Stop(
        Command::new(args[0])
            .args(&args[1..])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HEALTHCHECK_SERVE_CONFIG", config)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < Duration::from_secs(20) {
        if let Ok(mut stream) = std::net::TcpStream::connect(&listen) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = stream.write_all(b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n");
            last.clear();
            let _ = stream.read_to_string(&mut last);
            if let Some((_, body)) = last.split_once("\r\n\r\n")
                && let Ok(doc) = serde_json::from_str::<serde_json::Value>(body)
                && doc["readiness"]["FailingStreak"].as_u64().unwrap_or(0) >= 3
            {
                return;
            }
        }
        thread::sleep(Duration::from_millis(200));
    }
    panic!("the readiness role stopped running: {last}");
}

#[test]
fn serve_keeps_running_a_check_against_a_full_unix_backlog() {
    let root = TempDir::new("collectd-root");
    std::fs::create_dir_all(root.path("var/run")).unwrap();
    let _full = FullBacklog::at(&root.path("var/run/collectd-socket"));
    assert_serve_keeps_running(
        &[],
        "readiness: { check: { profile: { name: collectd } }, interval: 100ms, timeout: 1s }",
        &[("HEALTHCHECK_CONFIG_ROOT", root.0.to_str().unwrap())],
    );
}

#[test]
fn serve_keeps_running_a_check_against_a_hostile_dns_server() {
    let _dns = HostileDns::start("127.0.84.53:53");
    let dir = TempDir::new("resolv-serve");
    let resolv = dir.path("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.84.53\n").unwrap();
    let script = format!(
        "mount --bind {} /etc/resolv.conf && exec \"$0\" \"$@\"",
        resolv.display()
    );
    assert_serve_keeps_running(
        &[
            "/usr/bin/unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
        ],
        "readiness: { check: { tcp: { address: 'service.invalid-zone:80' } }, interval: 100ms, timeout: 1s }",
        &[],
    );
}

/// A MySQL server that logs anyone in and answers the query with 16 MiB rows until the client
/// goes away.
fn hostile_mysql() -> (std::net::SocketAddr, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let thread = thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let packet = |sequence: u8, payload: &[u8]| {
            let len = payload.len() as u32;
            let mut out = len.to_le_bytes()[..3].to_vec();
            out.push(sequence);
            out.extend_from_slice(payload);
            out
        };
        let mut greeting = vec![10];
        greeting.extend_from_slice(b"5.5.5-10.11.6-MariaDB\0");
        greeting.extend_from_slice(&7u32.to_le_bytes());
        greeting.extend_from_slice(b"abcdefgh\0");
        greeting.extend_from_slice(&0xF7FEu16.to_le_bytes());
        greeting.push(45);
        greeting.extend_from_slice(&2u16.to_le_bytes());
        greeting.extend_from_slice(&0x81BFu16.to_le_bytes());
        greeting.push(21);
        greeting.extend_from_slice(&[0; 10]);
        greeting.extend_from_slice(b"ijklmnopqrst\0");
        greeting.extend_from_slice(b"mysql_native_password\0");
        let read_packet = |stream: &mut std::net::TcpStream| {
            let mut header = [0u8; 4];
            stream.read_exact(&mut header).ok()?;
            let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
            let mut body = vec![0; len];
            stream.read_exact(&mut body).ok()
        };
        if stream.write_all(&packet(0, &greeting)).is_err() || read_packet(&mut stream).is_none() {
            return;
        }
        let _ = stream.write_all(&packet(2, &[0, 0, 0, 2, 0, 0, 0]));
        if read_packet(&mut stream).is_none() {
            return;
        }
        let mut column = Vec::new();
        for field in ["def", "", "", "", "1", ""] {
            column.push(field.len() as u8);
            column.extend_from_slice(field.as_bytes());
        }
        column.extend_from_slice(&[0x0c, 33, 0, 1, 0, 0, 0, 8, 0x81, 0, 0, 0]);
        let mut reply = packet(1, &[1]);
        reply.extend(packet(2, &column));
        if stream.write_all(&reply).is_err() {
            return;
        }
        let row_len = 0xFF_FFFE - 4;
        let mut row = vec![0xFD];
        row.extend_from_slice(&(row_len as u32).to_le_bytes()[..3]);
        row.resize(4 + row_len, b'x');
        for sequence in 3..=255u8 {
            if stream.write_all(&packet(sequence, &row)).is_err() {
                return;
            }
        }
    });
    (addr, thread)
}

#[test]
fn a_mysql_server_answering_with_huge_rows_is_refused_at_a_bounded_size() {
    let (addr, server) = hostile_mysql();
    let run = run(&[
        "--timeout",
        "10",
        "mysql",
        "-u",
        "monitor",
        &addr.to_string(),
    ]);
    let line = run.unhealthy();
    assert!(
        line.contains("more than the") && line.contains("1 MiB"),
        "{line}"
    );
    server.join().unwrap();
}

/// A config file that is a device, or far too big, is one line, not the probe's memory.
#[test]
fn config_reads_are_bounded() {
    let root = TempDir::new("config-root");
    std::fs::create_dir_all(root.path("etc")).unwrap();
    let conf = root.path("etc/memcached.conf");
    std::os::unix::fs::symlink("/dev/zero", &conf).unwrap();
    let env = [("HEALTHCHECK_CONFIG_ROOT", root.0.to_str().unwrap())];
    let run = run_as(binary(), &["profile", "memcached"], &env);
    let line = run.unhealthy();
    assert!(line.contains("not a regular file"), "{line}");
    std::fs::remove_file(&conf).unwrap();
    let mut big = std::fs::File::create(&conf).unwrap();
    big.write_all(&vec![b'#'; 100 * 1024 * 1024]).unwrap();
    drop(big);
    let run = run_as(binary(), &["profile", "memcached"], &env);
    let line = run.unhealthy();
    assert!(line.contains("larger than 1 MiB"), "{line}");
}

/// `(a|b)` twenty thousand times once asked for 38 GB and aborted the probe.
#[test]
fn explosive_patterns_are_refused_with_a_message() {
    let pattern = "(a|b)".repeat(20_000);
    let line = run(&["process", &pattern]).unhealthy().to_string();
    assert!(line.contains("more than the 1024 allowed"), "{line}");
    let pattern = "a{1000}".repeat(100);
    let line = run(&["process", &pattern]).unhealthy().to_string();
    assert!(line.contains("size limit"), "{line}");
}

/// A daemonized grandchild of a command check must not keep the probe's stderr open.
#[test]
fn a_command_s_daemonized_grandchild_does_not_hold_the_probe_s_stderr() {
    let dir = TempDir::new("grandchild");
    let pid_file = dir.path("pid");
    let script = format!(
        "setsid sh -c 'echo $$ > {}; exec sleep 8' >/dev/null & sleep 0.2; exit 0",
        pid_file.display()
    );
    let run = run(&["command", "--", "sh", "-c", &script]);
    let grandchild: i32 = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(0);
    if grandchild > 0 {
        // SAFETY: kill(2) on the sleep this test started.
        unsafe { libc::kill(grandchild, libc::SIGKILL) };
    }
    run.healthy();
    assert!(
        run.elapsed < Duration::from_secs(4),
        "the probe's output stayed open for {:?}",
        run.elapsed
    );
}

/// Checks that could never mean anything are refused when serve starts, with their path.
#[test]
fn serve_refuses_meaningless_checks_at_start() {
    let deep = format!(
        "liveness: {{ check: {} }}",
        "[".repeat(20_000) + &"]".repeat(20_000)
    );
    for (config, expected) in [
        (
            "liveness: { check: { allOf: [] } }".to_string(),
            "liveness.check.allOf: no checks",
        ),
        (
            "liveness: { check: { command: { argv: [] } } }".to_string(),
            "liveness.check.command.argv: empty",
        ),
        (
            "readiness: { check: { profile: { name: nova-apii } } }".to_string(),
            "unknown profile `nova-apii`",
        ),
        (
            "liveness: { check: { process: { pattern: 'nova-(api' } } }".to_string(),
            "invalid process pattern `nova-(api`",
        ),
        (
            format!(
                "liveness: {{ check: {{ process: {{ pattern: '{}' }} }} }}",
                "(a|b)".repeat(20_000)
            ),
            "more than the 1024 allowed",
        ),
        (deep, "nested deeper than 64 levels"),
    ] {
        let started = Instant::now();
        let output = Command::new(binary())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env_clear()
            .env("HEALTHCHECK_SERVE_CONFIG", &config)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(expected), "{expected}: {stderr}");
        assert!(started.elapsed() < Duration::from_secs(5), "{expected}");
    }
}
