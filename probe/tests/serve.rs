//! `healthcheck serve` end to end: the static binary, real backends on loopback, real HTTP.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use support::{Behaviour, HttpServer, TempDir, binary, run_as};

/// A running `serve`, stopped with SIGTERM on drop.
pub struct Serve {
    child: Child,
    pub addr: SocketAddr,
    _stderr: BufReader<ChildStderr>,
}

impl Serve {
    pub fn start(config: &str) -> Serve {
        let mut child = Command::new(binary())
            .arg("serve")
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HEALTHCHECK_SERVE_CONFIG", config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start healthcheck serve");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        let addr = line
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("serve did not start: {line:?}"));
        Serve {
            child,
            addr,
            _stderr: stderr,
        }
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        request(
            self.addr,
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        )
    }

    /// Polls `path` until `accept` holds, for up to 10 s.
    pub fn wait_for(&self, path: &str, accept: impl Fn(u16, &str) -> bool) -> (u16, String) {
        let started = Instant::now();
        loop {
            let (status, body) = self.get(path);
            if accept(status, &body) {
                return (status, body);
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{path} never reached the expected state; last {status}: {body}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn terminate(&mut self) -> Option<i32> {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        None
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.terminate();
        }
    }
}

/// Sends raw bytes, returns the status and body (read to EOF).
pub fn request(addr: SocketAddr, raw: &str) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(raw.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_string())
}

/// A real web server (python3's http.server) serving a directory, so a check of
/// `/ready` is healthy while the file exists.
struct FileServer {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl FileServer {
    fn start() -> FileServer {
        let dir = TempDir::new("serve-backend");
        let mut child = Command::new("python3")
            .args([
                "-u",
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                "0",
                "--directory",
            ])
            .arg(&dir.0)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 is required (scripts/test installs it)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
        let port = line
            .split(" port ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("python3 http.server did not start: {line:?}"));
        FileServer { child, port, dir }
    }

    fn set_ready(&self, ready: bool) {
        let path = self.dir.path("ready");
        if ready {
            std::fs::write(path, "ok").unwrap();
        } else {
            std::fs::remove_file(path).unwrap();
        }
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn health(serve: &Serve) -> serde_json::Value {
    let (status, body) = serve.get("/health");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn status_command(serve: &Serve, extra: &[&str]) -> support::Run {
    let url = serve.url();
    let mut args = vec!["status", "--url", &url];
    args.extend_from_slice(extra);
    run_as(binary(), &args, &[])
}

#[test]
fn probes_follow_a_real_backend_toggled_healthy_and_unhealthy() {
    let backend = FileServer::start();
    let check = format!(
        "{{ http: {{ url: \"http://127.0.0.1:{}/ready\" }} }}",
        backend.port
    );
    let serve = Serve::start(&format!(
        "listen: 127.0.0.1:0\n\
         liveness: {{ check: {check}, interval: 100ms, retries: 2 }}\n\
         readiness: {{ check: {check}, interval: 100ms, retries: 2 }}\n"
    ));
    // Missing file: 404, two failures make both roles unhealthy. The roles run on their own
    // schedules, so one may reach its second failure before the other.
    serve.wait_for("/livez", |status, _| status == 503);
    let (status, body) =
        serve.wait_for("/readyz", |_, body| !body.starts_with("readiness starting"));
    assert_eq!(status, 503);
    assert!(
        body.starts_with("readiness unhealthy: unhealthy: GET "),
        "{body}"
    );
    assert!(
        body.contains(": 404 ") && body.ends_with('\n') && body.lines().count() == 1,
        "{body}"
    );
    assert_eq!(serve.get("/startupz").0, 503, "never healthy yet");
    let doc = health(&serve);
    assert_eq!(doc["readiness"]["Status"], "unhealthy");
    assert!(doc["readiness"]["FailingStreak"].as_u64().unwrap() >= 2);
    let unhealthy = status_command(&serve, &[]);
    assert_eq!(unhealthy.code, 1, "{unhealthy:?}");
    assert!(
        unhealthy.stdout.contains("\nreadiness unhealthy: "),
        "{unhealthy:?}"
    );
    assert_eq!(unhealthy.stdout.lines().count(), 3, "{unhealthy:?}");

    backend.set_ready(true);
    serve.wait_for("/readyz", |status, _| status == 200);
    serve.wait_for("/livez", |status, _| status == 200);
    let (status, body) = serve.get("/startupz");
    assert_eq!(status, 200);
    assert!(
        body.starts_with("startup (from liveness) healthy: healthy: GET "),
        "{body}"
    );
    let doc = health(&serve);
    assert_eq!(doc["liveness"]["Status"], "healthy");
    assert_eq!(doc["liveness"]["FailingStreak"], 0);
    let last = doc["liveness"]["Log"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["ExitCode"], 0);
    assert!(last["Start"].as_str().unwrap() <= last["End"].as_str().unwrap());
    let healthy = status_command(&serve, &[]);
    assert_eq!(healthy.code, 0, "{healthy:?}");
    let role = status_command(&serve, &["--role", "readiness"]);
    assert_eq!(role.code, 0, "{role:?}");
    assert!(role.stdout.starts_with("readiness healthy: "), "{role:?}");

    backend.set_ready(false);
    serve.wait_for("/readyz", |status, _| status == 503);
    assert_eq!(serve.get("/startupz").0, 200, "started once is started");
    // The log stays the newest five, however long it runs.
    thread::sleep(Duration::from_millis(800));
    let doc = health(&serve);
    assert_eq!(doc["readiness"]["Log"].as_array().unwrap().len(), 5);
}

#[test]
fn starting_is_alive_but_not_ready_and_missing_roles_say_so() {
    let serve = Serve::start(
        "listen: 127.0.0.1:0\n\
         liveness: { check: { tcp: { address: '127.0.0.1:1' } }, interval: 50ms, startPeriod: 1m, startInterval: 50ms, retries: 1 }\n",
    );
    serve.wait_for("/health", |_, body| {
        body.matches("\"ExitCode\"").count() >= 2
    });
    let doc = health(&serve);
    assert_eq!(doc["liveness"]["Status"], "starting");
    assert_eq!(
        doc["liveness"]["FailingStreak"], 0,
        "inside the start period"
    );
    assert!(doc["liveness"]["Log"].as_array().unwrap().len() >= 2);
    let (status, body) = serve.get("/livez");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.starts_with("liveness starting: unhealthy: tcp 127.0.0.1:1"),
        "{body}"
    );
    assert_eq!(serve.get("/startupz").0, 503);
    let (status, body) = serve.get("/readyz");
    assert_eq!(status, 404);
    assert_eq!(
        body,
        "readiness is not configured: add a `readiness:` role to the serve config\n"
    );
    let run = status_command(&serve, &["--role", "readiness"]);
    assert_eq!(run.code, 1, "{run:?}");
}

#[test]
fn a_run_past_its_timeout_is_docker_s_exit_code_minus_one() {
    let backend = HttpServer::start("127.0.0.1:0", Behaviour::Hang);
    let serve = Serve::start(&format!(
        "listen: 127.0.0.1:0\n\
         readiness: {{ check: {{ http: {{ url: '{}' }} }}, interval: 50ms, timeout: 200ms, retries: 1 }}\n",
        backend.url("/")
    ));
    serve.wait_for("/health", |_, body| body.contains("\"ExitCode\": -1"));
    let doc = health(&serve);
    let entry = &doc["readiness"]["Log"][0];
    assert_eq!(entry["Output"], "Health check exceeded timeout (200ms)");
    assert_eq!(doc["readiness"]["Status"], "unhealthy");
    let (_, metrics) = serve.get("/metrics");
    assert!(
        metrics.contains("healthcheck_last_exit_code{role=\"readiness\"} -1"),
        "{metrics}"
    );
}

/// Counts the runs that hit a real backend while many clients ask at once.
#[test]
fn concurrent_requests_never_start_extra_runs() {
    let backend = HttpServer::start(
        "127.0.0.1:0",
        Behaviour::Respond {
            status: 200,
            body: "ok".into(),
        },
    );
    let serve = Arc::new(Serve::start(&format!(
        "listen: 127.0.0.1:0\nreadiness: {{ check: {{ http: {{ url: '{}' }} }}, interval: 400ms }}\n",
        backend.url("/")
    )));
    serve.wait_for("/readyz", |status, _| status == 200);
    let before = backend.requests.lock().unwrap().len();
    let started = Instant::now();
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let serve = Arc::clone(&serve);
            thread::spawn(move || {
                for _ in 0..100 {
                    assert_eq!(serve.get("/readyz").0, 200);
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    let runs = backend.requests.lock().unwrap().len() - before;
    let allowed = (started.elapsed().as_millis() / 400) as usize + 1;
    assert!(
        runs <= allowed,
        "{runs} runs for 800 requests in {:?}",
        started.elapsed()
    );
}

#[test]
fn on_demand_runs_once_for_concurrent_requests_and_at_most_once_per_interval() {
    let backend = HttpServer::start(
        "127.0.0.1:0",
        Behaviour::Respond {
            status: 200,
            body: "ok".into(),
        },
    );
    let serve = Arc::new(Serve::start(&format!(
        "listen: 127.0.0.1:0\nreadiness: {{ check: {{ http: {{ url: '{}' }} }}, interval: 3s, onDemand: true }}\n",
        backend.url("/")
    )));
    thread::sleep(Duration::from_millis(300));
    assert_eq!(
        backend.requests.lock().unwrap().len(),
        0,
        "no run before a request"
    );
    let clients: Vec<_> = (0..16)
        .map(|_| {
            let serve = Arc::clone(&serve);
            thread::spawn(move || serve.get("/readyz"))
        })
        .collect();
    for client in clients {
        let (status, body) = client.join().unwrap();
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(backend.requests.lock().unwrap().len(), 1, "single flight");
    assert_eq!(serve.get("/readyz").0, 200);
    assert_eq!(
        backend.requests.lock().unwrap().len(),
        1,
        "within the interval"
    );
    thread::sleep(Duration::from_millis(3100));
    assert_eq!(serve.get("/readyz").0, 200);
    assert_eq!(
        backend.requests.lock().unwrap().len(),
        2,
        "after the interval"
    );
}

#[test]
fn hostile_requests_get_clear_errors() {
    let serve = Serve::start(
        "listen: 127.0.0.1:0\nliveness: { check: { process: { pattern: . } }, interval: 1h }\n",
    );
    let (status, _) = request(
        serve.addr,
        &format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(9000)),
    );
    assert_eq!(status, 431);
    let (status, body) = request(serve.addr, "SSH-2.0-OpenSSH_9.2\r\n\r\n");
    assert_eq!((status, body.as_str()), (400, "malformed request line\n"));
    let (status, body) = request(
        serve.addr,
        "POST /livez HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(status, 405, "{body}");
    let (status, body) = serve.get("/nope");
    assert_eq!(status, 404);
    assert!(
        body.contains("/livez /readyz /startupz /health /metrics /"),
        "{body}"
    );
    // HEAD: same head, no body.
    let raw = "HEAD /livez HTTP/1.1\r\nConnection: close\r\n\r\n";
    let mut stream = TcpStream::connect(serve.addr).unwrap();
    stream.write_all(raw.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.ends_with("\r\n\r\n"), "{response}");
    // Keep-alive: two requests on one connection.
    let mut stream = TcpStream::connect(serve.addr).unwrap();
    stream
        .write_all(b"GET /livez HTTP/1.1\r\n\r\nGET /livez HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert_eq!(response.matches("HTTP/1.1 200 OK").count(), 2, "{response}");
}

#[test]
fn sigterm_stops_serving_and_exits_zero() {
    let mut serve = Serve::start(
        "listen: 127.0.0.1:0\nliveness: { check: { process: { pattern: . } }, interval: 1h }\n",
    );
    assert_eq!(serve.get("/livez").0, 200);
    let started = Instant::now();
    assert_eq!(serve.terminate(), Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(TcpStream::connect(serve.addr).is_err(), "still accepting");
}

#[test]
fn bad_configs_fail_at_start_with_the_reason() {
    let dir = TempDir::new("serve-config");
    let file = dir.path("serve.yaml");
    std::fs::write(
        &file,
        "liveness: { check: { process: { pattern: x } }, retry: 2 }\n",
    )
    .unwrap();
    for (args, env, expected) in [
        (
            vec!["serve", "--config", file.to_str().unwrap()],
            vec![],
            "unknown field `retry`",
        ),
        (
            vec!["serve"],
            vec![],
            "no config: give --config FILE or put the YAML in HEALTHCHECK_SERVE_CONFIG",
        ),
        (
            vec!["serve", "--config", "/nonexistent/serve.yaml"],
            vec![],
            "cannot read config /nonexistent/serve.yaml",
        ),
        (
            vec!["serve", "--listen", "127.0.0.1:99999"],
            vec![(
                "HEALTHCHECK_SERVE_CONFIG",
                "startup: { check: { process: { pattern: x } } }",
            )],
            "cannot listen on 127.0.0.1:99999",
        ),
    ] {
        let output = Command::new(binary())
            .args(&args)
            .env_clear()
            .envs(env)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{args:?}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    assert!(Path::new(&file).exists());
}

/// The status page as a browser renders it: headless Chromium loads `/` and dumps its DOM.
#[test]
fn status_page_renders_in_headless_chromium() {
    let serve = Serve::start(
        "listen: 127.0.0.1:0\n\
         liveness: { check: { process: { pattern: . } }, interval: 50ms }\n\
         readiness: { check: { command: { argv: [sh, -c, 'echo \"<b>bold</b>\"; exit 1'] } }, interval: 50ms, retries: 1 }\n",
    );
    serve.wait_for("/readyz", |status, body| {
        status == 503 && body.contains("unhealthy:")
    });
    serve.wait_for("/livez", |status, body| {
        status == 200 && body.contains("healthy:")
    });
    let profile = TempDir::new("chromium-profile");
    let output = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.0.display()))
        .arg("--dump-dom")
        .arg(format!("{}/", serve.url()))
        .output()
        .unwrap_or_else(|e| {
            panic!("chromium is required (scripts/test installs the Debian package): {e}")
        });
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && !dom.is_empty(),
        "chromium failed: {output:?}"
    );
    assert!(dom.contains("<title>healthcheck serve</title>"), "{dom}");
    for (role, status) in [("liveness", "healthy"), ("readiness", "unhealthy")] {
        let section = dom
            .split(&format!("<section class=\"role\" id=\"{role}\">"))
            .nth(1)
            .unwrap_or_else(|| panic!("no {role} section in {dom}"));
        let section = section.split("</section>").next().unwrap();
        assert!(
            section.contains(&format!(
                "<span class=\"status status-{status}\">{status}</span>"
            )),
            "{role}: {section}"
        );
        assert!(section.matches("<tr>").count() >= 2, "a log row: {section}");
    }
    assert!(dom.contains("/readyz</a> answers 503"), "{dom}");
    // Check output is text, never markup.
    assert!(dom.contains("&lt;b&gt;bold&lt;/b&gt;"), "{dom}");
    assert!(!dom.contains("<b>bold</b>"), "{dom}");
}

/// Hostile peers on the pod network, each shape on its own connections, kept up by one thread
/// until dropped: slowloris heads at a byte per 200 ms, POST bodies trickled the same way, and
/// `/readyz` requests held pending on an on-demand role.
struct Attack {
    stop: Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<thread::JoinHandle<usize>>,
}

impl Attack {
    fn start(addr: SocketAddr, slow_heads: usize, slow_bodies: usize, pending: usize) -> Attack {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let shapes = [
            (slow_heads, "GET /livez HTTP/1.1\r\nX-Slow: "),
            (
                slow_bodies,
                "POST /livez HTTP/1.1\r\nContent-Length: 100000\r\n\r\n",
            ),
            (pending, "GET /readyz HTTP/1.1\r\n\r\n"),
        ];
        let threads = shapes
            .into_iter()
            .filter(|(count, _)| *count > 0)
            .map(|(count, opening)| {
                let stop = Arc::clone(&stop);
                thread::spawn(move || trickle(addr, count, opening, &stop))
            })
            .collect();
        Attack { stop, threads }
    }

    /// Stops the attack; per shape, how many times the server answered or closed an
    /// attacking connection.
    fn finish(mut self) -> Vec<usize> {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.threads.drain(..).map(|t| t.join().unwrap()).collect()
    }
}

impl Drop for Attack {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Keeps `count` connections open, each sending `opening` and then one byte per 200 ms;
/// reopens any the server closes and counts those.
fn trickle(
    addr: SocketAddr,
    count: usize,
    opening: &str,
    stop: &std::sync::atomic::AtomicBool,
) -> usize {
    let open = || {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
        stream.write_all(opening.as_bytes()).ok()?;
        stream.set_nonblocking(true).ok()?;
        Some(stream)
    };
    let mut streams: Vec<Option<TcpStream>> = (0..count).map(|_| open()).collect();
    let mut closed_by_server = 0;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        for slot in &mut streams {
            let mut sink = [0u8; 1024];
            let gone = match slot {
                Some(stream) => {
                    stream.read(&mut sink).is_ok()
                        || stream
                            .write(b"a")
                            .is_err_and(|e| e.kind() != std::io::ErrorKind::WouldBlock)
                }
                None => true,
            };
            if gone {
                closed_by_server += usize::from(slot.is_some());
                *slot = open();
            }
        }
        thread::sleep(Duration::from_millis(200));
    }
    closed_by_server
}

/// A good client's `/livez`, which must be answered within `within` (the kubelet's timeout).
fn livez_within(addr: SocketAddr, within: Duration) -> u16 {
    let mut stream = TcpStream::connect_timeout(&addr, within).expect("connect to serve");
    stream.set_read_timeout(Some(within)).unwrap();
    stream
        .write_all(b"GET /livez HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .unwrap_or_else(|e| panic!("/livez not answered within {within:?}: {e}"));
    response
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"))
}

/// Slow heads, trickled bodies and requests pending on an on-demand role, 16 of each (as many
/// as serve once had workers), must not keep a good client's `/livez` waiting; the server
/// closes the slow peers at its request deadline.
#[test]
fn slow_peers_cannot_starve_the_liveness_probe() {
    let serve = Serve::start(
        "listen: 127.0.0.1:0\n\
         liveness: { check: { process: { pattern: . } }, interval: 1h }\n\
         readiness: { check: { command: { argv: [sleep, '3'] } }, interval: 1ms, timeout: 20s, onDemand: true }\n",
    );
    let attack = Attack::start(serve.addr, 16, 16, 16);
    thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(7) {
        assert_eq!(livez_within(serve.addr, Duration::from_secs(2)), 200);
        thread::sleep(Duration::from_millis(100));
    }
    let ended = attack.finish();
    // Each slow head is cut at the 5 s request deadline, each trickled body answered and
    // closed within the linger, each pending request answered when its run ended.
    assert!(
        ended.iter().all(|&n| n >= 16),
        "attacking connections ended: {ended:?}"
    );
}

/// Thousands of idle connections (more than any queue) do not lock a new client out.
#[test]
fn a_connection_flood_cannot_lock_out_the_liveness_probe() {
    let serve = Serve::start(
        "listen: 127.0.0.1:0\nliveness: { check: { process: { pattern: . } }, interval: 1h }\n",
    );
    let mut flood = Vec::new();
    for _ in 0..4000 {
        match TcpStream::connect_timeout(&serve.addr, Duration::from_secs(2)) {
            Ok(stream) => flood.push(stream),
            Err(e) => panic!("connection {} of the flood: {e}", flood.len()),
        }
    }
    for _ in 0..20 {
        assert_eq!(livez_within(serve.addr, Duration::from_secs(2)), 200);
    }
    drop(flood);
}

/// RFC 9112's rules for what a server must reject or understand, over a real socket.
#[test]
fn request_parsing_follows_rfc_9112() {
    let serve = Serve::start(
        "listen: 127.0.0.1:0\nliveness: { check: { process: { pattern: . } }, interval: 1h }\n",
    );
    // Whitespace before a colon would let a body be served as a second request.
    let (status, body) = request(
        serve.addr,
        "POST /livez HTTP/1.1\r\nContent-Length : 26\r\n\r\nGET /nope HTTP/1.1\r\n\r\n",
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("before the colon"), "{body}");
    let (status, body) = request(serve.addr, "GET /livez HTTP/1.1\nConnection: close\n\n");
    assert_eq!(status, 200, "bare LF: {body}");
    let (status, body) = request(
        serve.addr,
        &format!(
            "GET http://{}/livez HTTP/1.1\r\nConnection: close\r\n\r\n",
            serve.addr
        ),
    );
    assert_eq!(status, 200, "absolute form: {body}");
    // A request refused unread is still answered, not reset.
    for _ in 0..20 {
        let (status, _) = request(
            serve.addr,
            &format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(70_000)),
        );
        assert_eq!(status, 431);
    }
}

/// docs/serve.md promises arguments are never shown: a command's credentials stay hidden on
/// every unauthenticated endpoint.
#[test]
fn command_credentials_are_not_shown() {
    let serve = Serve::start(
        "listen: 127.0.0.1:0\n\
         liveness: { check: { command: { argv: [sh, -c, 'exit 1', sh, --password=S3CRET, 'mysql://u:S3CRET@db/'] } }, interval: 50ms, retries: 1 }\n",
    );
    // The endpoints carry the command's own output, as Docker records it, never its arguments.
    serve.wait_for("/livez", |status, _| status == 503);
    for path in ["/livez", "/health", "/", "/metrics"] {
        let (_, body) = serve.get(path);
        assert!(!body.contains("S3CRET"), "{path}: {body}");
    }
}

/// A process in a root of its own, as a container's is: a static busybox `sleep` chrooted into
/// `root`, which holds the service marker of `tag` as the operator's mount puts it there, and
/// with an empty environment (what a service that writes its title over it leaves); killed on
/// drop.
struct ChrootedService(Child);

impl ChrootedService {
    fn start(root: &Path, tag: &str) -> ChrootedService {
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::copy("/bin/busybox", root.join("bin/busybox"))
            .expect("/bin/busybox (busybox-static) is required");
        let marker = healthcheck_spec::serve::service_marker(tag);
        std::fs::create_dir_all(root.join(marker.trim_start_matches('/'))).unwrap();
        let child = Command::new("/usr/sbin/chroot")
            .arg(root)
            .args(["/bin/busybox", "sleep", "600"])
            .env_clear()
            .stdin(Stdio::null())
            .spawn()
            .expect("chroot (coreutils) as root");
        let mut service = ChrootedService(child);
        // Up once its root is the new one (just after the chroot).
        let seen = format!("/proc/{}/root{marker}", service.0.id());
        let started = Instant::now();
        while !Path::new(&seen).exists() {
            if let Some(status) = service.0.try_wait().unwrap() {
                panic!("the chrooted service exited: {status}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "no marker at {seen}"
            );
            thread::sleep(Duration::from_millis(10));
        }
        service
    }
}

impl Drop for ChrootedService {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `mode: HTTP` with a profile: the service's config file exists only under the root of the
/// tagged process, and `serve` reads it through `/proc/PID/root`, as the operator's sidecar does
/// in a pod sharing its process namespace.
#[test]
fn a_profile_reads_the_service_config_through_the_tagged_process_root() {
    let api = HttpServer::start(
        "127.0.0.1:0",
        Behaviour::Respond {
            status: 200,
            body: "keystone".into(),
        },
    );
    let root = TempDir::new("service-root");
    let vhost_dir = root.path("etc/httpd/conf.d");
    std::fs::create_dir_all(&vhost_dir).unwrap();
    std::fs::write(
        vhost_dir.join("10-keystone_wsgi.conf"),
        format!(
            "<VirtualHost 127.0.0.1:{port}>\n  ServerName 127.0.0.1\n  WSGIScriptAlias / \"/var/www/cgi-bin/keystone/keystone-public\"\n</VirtualHost>\n",
            port = api.addr.port()
        ),
    )
    .unwrap();
    assert!(
        !Path::new("/etc/httpd/conf.d/10-keystone_wsgi.conf").exists(),
        "the host must not have the file the test puts in the service's root"
    );
    let tag = format!("keystone-{}", std::process::id());
    // serve first: it may take the static build's time to start, longer than a sleep lasts.
    let serve = Serve::start(&format!(
        "listen: 127.0.0.1:0\nserviceRoot: {tag}\n\
         readiness: {{ check: {{ profile: {{ name: keystone }} }}, interval: 100ms, retries: 1 }}\n"
    ));
    let mut service = ChrootedService::start(&root.0, &tag);
    let (_, body) = serve.wait_for("/readyz", |status, _| status == 200);
    assert!(
        body.contains(&format!("GET http://127.0.0.1:{}/", api.addr.port()))
            && body.contains("address from /etc/httpd/conf.d/10-keystone_wsgi.conf"),
        "{body}"
    );
    // The service gone (a restart in progress): no root to read, and the probe says why.
    let _ = service.0.kill();
    let _ = service.0.wait();
    let (_, body) = serve.wait_for("/readyz", |status, _| status == 503);
    assert!(
        body.contains(&format!(
            "no process has /run/openstack-healthcheck/service/{tag} in its root"
        )),
        "{body}"
    );
}
