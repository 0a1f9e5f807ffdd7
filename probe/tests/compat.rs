//! The Kolla/TripleO helper names: `healthcheck install-compat DIR` creates them, and each
//! behaves as the script it replaces.

mod support;

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{Behaviour, HttpServer, SocketHolder, TempDir, binary, run, run_as};

fn install() -> (TempDir, impl Fn(&str) -> PathBuf) {
    let dir = TempDir::new("compat");
    let line = run(&["install-compat", dir.0.to_str().unwrap()]).stdout;
    assert!(line.starts_with("installed "), "{line}");
    let root = dir.0.clone();
    (dir, move |name: &str| root.join(name))
}

#[test]
fn install_compat_creates_every_helper_and_is_idempotent() {
    let (dir, path) = install();
    for name in [
        "healthcheck_curl",
        "healthcheck_port",
        "healthcheck_listen",
        "healthcheck_socket",
        "healthcheck_filemod",
    ] {
        assert_eq!(std::fs::read_link(path(name)).unwrap(), binary(), "{name}");
    }
    run(&["install-compat", dir.0.to_str().unwrap()])
        .stdout
        .starts_with("installed ")
        .then_some(())
        .unwrap();
    std::fs::remove_file(path("healthcheck_port")).unwrap();
    std::fs::write(path("healthcheck_port"), "#!/bin/sh\n").unwrap();
    let line = run(&["install-compat", dir.0.to_str().unwrap()])
        .unhealthy()
        .to_string();
    assert!(
        line.contains("is not a symlink; not overwriting it"),
        "{line}"
    );
}

#[test]
fn healthcheck_curl_prints_the_curl_write_out_line() {
    let (_dir, path) = install();
    let server = HttpServer::start(
        "127.0.0.1:0",
        Behaviour::Respond {
            status: 200,
            body: "hello".into(),
        },
    );
    let result = run_as(&path("healthcheck_curl"), &[&server.url("/")], &[]);
    assert_eq!(result.code, 0, "{result:?}");
    let pattern = regex_lite::Regex::new(&format!(
        r"^\n200 127\.0\.0\.1:{} \d+\.\d{{6}} seconds\n$",
        server.addr.port()
    ))
    .unwrap();
    assert!(pattern.is_match(&result.stdout), "{:?}", result.stdout);

    let failing = HttpServer::start(
        "127.0.0.1:0",
        Behaviour::Respond {
            status: 503,
            body: String::new(),
        },
    );
    let result = run_as(
        &path("healthcheck_curl"),
        &["-g", "-k", &failing.url("/")],
        &[],
    );
    assert_eq!(result.code, 1);
    assert!(
        result.stdout.starts_with("\n503 127.0.0.1:"),
        "{:?}",
        result.stdout
    );
    assert_eq!(
        result.stderr.trim(),
        "curl: (22) The requested URL returned error: 503"
    );

    let result = run_as(&path("healthcheck_curl"), &["http://127.0.0.1:1/"], &[]);
    assert_eq!(result.code, 1);
    assert!(
        result.stdout.starts_with("\n000 :0 "),
        "{:?}",
        result.stdout
    );
    assert!(
        result
            .stderr
            .starts_with("curl: (7) Failed to connect to 127.0.0.1 port 1 after "),
        "{:?}",
        result.stderr
    );
}

#[test]
fn healthcheck_curl_honours_the_tripleo_variables() {
    let (dir, path) = install();
    let server = HttpServer::start(
        "127.0.0.1:0",
        Behaviour::Respond {
            status: 200,
            body: "the body".into(),
        },
    );
    let body = dir.path("body.out");
    let env = [
        ("HEALTHCHECK_CURL_WRITE_OUT", "%{http_code}|%{remote_port}"),
        ("HEALTHCHECK_CURL_USER_AGENT", "ua-test"),
        ("HEALTHCHECK_CURL_OUTPUT", body.to_str().unwrap()),
    ];
    let result = run_as(
        &path("healthcheck_curl"),
        &["-u", "u:p", "-H", "X-T: 1", &server.url("/x")],
        &env,
    );
    assert_eq!(result.stdout, format!("200|{}", server.addr.port()));
    assert_eq!(std::fs::read_to_string(&body).unwrap(), "the body");
    let request = server.requests.lock().unwrap()[0].clone();
    assert!(
        request.contains("User-Agent: ua-test\r\n") && request.contains("X-T: 1\r\n"),
        "{request}"
    );

    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", silent.local_addr().unwrap());
    let result = run_as(
        &path("healthcheck_curl"),
        &[&url],
        &[("HEALTHCHECK_CURL_MAX_TIME", "0.3")],
    );
    assert_eq!(result.code, 1);
    assert!(result.stdout.starts_with("\n000 "), "{:?}", result.stdout);
    result.assert_within(Duration::from_millis(300));

    let result = run_as(&path("healthcheck_curl"), &[], &[]);
    assert_eq!(result.code, 1);
    assert_eq!(
        result.stderr.trim(),
        "healthcheck_curl: no parameter provided"
    );
}

#[test]
fn port_listen_socket_and_filemod_keep_their_arguments() {
    let (dir, path) = install();
    let holder = SocketHolder::start(&["tcp-listen:127.0.0.1"]);
    let port = holder.ports[0].to_string();
    run_as(
        &path("healthcheck_port"),
        &[&holder.marker, "1", &port],
        &[],
    )
    .healthy();
    run_as(&path("healthcheck_listen"), &[&holder.marker, &port], &[]).healthy();
    let result = run_as(&path("healthcheck_listen"), &[&holder.marker], &[]);
    assert!(
        result
            .unhealthy()
            .contains("usage: healthcheck_listen PROCESS PORT"),
        "{result:?}"
    );
    let result = run_as(
        &path("healthcheck_socket"),
        &[&holder.marker, "/run/none.sock"],
        &[],
    );
    result.unhealthy();
    // The scripts test `[ -f ]`: a directory is as good as missing.
    let result = run_as(
        &path("healthcheck_filemod"),
        &[dir.0.to_str().unwrap(), "300"],
        &[],
    );
    assert_eq!(
        result.unhealthy(),
        format!(
            "unhealthy: {} does not exist for file modification check",
            dir.0.display()
        )
    );
    let missing = dir.path("object.recon");
    let result = run_as(
        &path("healthcheck_filemod"),
        &[missing.to_str().unwrap(), "300"],
        &[],
    );
    assert_eq!(
        result.unhealthy(),
        format!(
            "unhealthy: {} does not exist for file modification check",
            missing.display()
        )
    );
}

/// TripleO's `healthcheck_curl` command line, run with Debian's real curl: what the drop-in
/// must print. `|| return 1` folds curl's code to 1.
fn real_healthcheck_curl(url: &str, max_time: &str) -> (i32, String, String) {
    test_support::ensure_packages(&["curl=curl"]);
    let output = std::process::Command::new("curl")
        .args(["-g", "-k", "-q", "-s", "-S", "--fail", "-o", "/dev/null"])
        .args(["--max-time", max_time, "--user-agent", "curl-healthcheck"])
        .args(["--write-out", DEFAULT_WRITE_OUT, url])
        .env_clear()
        .output()
        .expect("run curl");
    (
        i32::from(!output.status.success()),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

const DEFAULT_WRITE_OUT: &str =
    "\\n%{http_code} %{remote_ip}:%{remote_port} %{time_total} seconds\\n";

/// Times and byte counts vary between runs; everything else must be equal.
fn normalized(text: &str) -> String {
    let text = regex_lite::Regex::new(r"\d+\.\d{6} seconds")
        .unwrap()
        .replace_all(text, "T seconds");
    let text = regex_lite::Regex::new(r"after \d+ m")
        .unwrap()
        .replace_all(&text, "after N m");
    regex_lite::Regex::new(r"with \d+ ")
        .unwrap()
        .replace_all(&text, "with N ")
        .into_owned()
}

#[test]
fn healthcheck_curl_says_what_real_curl_says() {
    let (_dir, path) = install();
    let refused = format!("http://127.0.0.1:{}/", test_support::free_port());
    let servers = [
        Behaviour::Respond {
            status: 200,
            body: "hello".into(),
        },
        Behaviour::Respond {
            status: 503,
            body: "down".into(),
        },
        Behaviour::CloseAfterRequest,
        Behaviour::Hang,
        Behaviour::TrickleBody,
        Behaviour::Garbage,
        Behaviour::BlankLineFirst,
        Behaviour::BadStatusCode,
    ]
    .map(|behaviour| HttpServer::start("127.0.0.1:0", behaviour));
    let mut urls: Vec<String> = servers.iter().map(|s| s.url("/")).collect();
    urls.push(refused);
    for url in &urls {
        let (code, stdout, stderr) = real_healthcheck_curl(url, "1");
        let ours = run_as(
            &path("healthcheck_curl"),
            &[url],
            &[("HEALTHCHECK_CURL_MAX_TIME", "1")],
        );
        assert_eq!(
            (
                ours.code,
                normalized(&ours.stdout),
                normalized(&ours.stderr)
            ),
            (code, normalized(&stdout), normalized(&stderr)),
            "{url}: ours {ours:?}"
        );
    }
}

/// The deadline is met by either the request's own timeout or the watchdog; under load either
/// can finish first, and the result must be one whole, consistent curl report either way.
#[test]
fn healthcheck_curl_reports_one_whole_timeout_under_load() {
    let (_dir, path) = install();
    let hang = HttpServer::start("127.0.0.1:0", Behaviour::Hang);
    let url = hang.url("/");
    let runs: Vec<_> = (0..16)
        .map(|_| {
            let (program, url) = (path("healthcheck_curl"), url.clone());
            std::thread::spawn(move || {
                run_as(&program, &[&url], &[("HEALTHCHECK_CURL_MAX_TIME", "0.3")])
            })
        })
        .collect();
    let stdout = format!(
        r"^\n000 127\.0\.0\.1:{} \d+\.\d{{6}} seconds\n$",
        hang.addr.port()
    );
    let stdout = regex_lite::Regex::new(&stdout).unwrap();
    let stderr = regex_lite::Regex::new(
        r"^curl: \(28\) Operation timed out after \d+ milliseconds with 0 bytes received\n$",
    )
    .unwrap();
    for run in runs {
        let run = run.join().unwrap();
        assert_eq!(run.code, 1, "{run:?}");
        assert!(stdout.is_match(&run.stdout), "{run:?}");
        assert!(stderr.is_match(&run.stderr), "{run:?}");
    }
}

/// A system call no timeout bounds (opening a FIFO nobody reads, as `HEALTHCHECK_CURL_OUTPUT`)
/// holds the run: the deadline still ends it with curl's report of how far the request got, even
/// when the parent blocked the signal the deadline uses (a signal mask survives exec).
#[test]
fn healthcheck_curl_held_in_a_system_call_reports_how_far_it_got_at_the_deadline() {
    let (dir, path) = install();
    let server = HttpServer::start(
        "127.0.0.1:0",
        Behaviour::Respond {
            status: 200,
            body: "the body".into(),
        },
    );
    let fifo = dir.path("fifo");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    let mut command = Command::new(path("healthcheck_curl"));
    command
        .arg(server.url("/"))
        .env_clear()
        .env("HEALTHCHECK_CURL_MAX_TIME", "0.3")
        .env("HEALTHCHECK_CURL_OUTPUT", &fifo)
        .stdin(Stdio::null());
    // SAFETY: sigprocmask(2) between fork and exec touches no shared state.
    unsafe {
        command.pre_exec(|| {
            let mut alarm: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut alarm);
            libc::sigaddset(&mut alarm, libc::SIGALRM);
            libc::sigprocmask(libc::SIG_BLOCK, &alarm, std::ptr::null_mut());
            Ok(())
        });
    }
    let started = Instant::now();
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A lost deadline would hold the FIFO open for good: fail instead of hanging.
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(5) {
            child.kill().unwrap();
            panic!("the deadline did not end a run held in open(2)");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let elapsed = started.elapsed();
    let output = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let line = format!(
        r"^\n200 127\.0\.0\.1:{} 0\.3\d{{5}} seconds\n$",
        server.addr.port()
    );
    assert!(
        regex_lite::Regex::new(&line).unwrap().is_match(&stdout),
        "{stdout:?}"
    );
    assert!(
        regex_lite::Regex::new(
            r"^curl: \(28\) Operation timed out after 3\d\d milliseconds with 0 out of 8 bytes received\n$"
        )
        .unwrap()
        .is_match(&stderr),
        "{stderr:?}"
    );
    // The deadline, its grace, and spawning on a loaded machine.
    assert!(
        elapsed < Duration::from_millis(300 + 100 + 150),
        "{elapsed:?}"
    );
}
