//! A small HTTP/1.1 server on std threads: one accept loop, a bounded pool of workers, bounded
//! request heads, read/write timeouts, keep-alive while nobody waits. Every answer comes from
//! the latest results; no request starts a run (except a role configured on demand).

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::config::Role;
use super::report::{answering, health_json, verdict};
use super::{App, metrics, page, scheduler};

/// The most of a request head we accept (the kubelet sends about 200 bytes).
const MAX_HEAD_BYTES: usize = 8 * 1024;
const WORKERS: usize = 16;
/// Connections accepted but not yet picked up by a worker; beyond this we answer 503 at once.
const QUEUE: usize = 128;
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the accept loop looks at the stop flag.
const STOP_POLL_MILLIS: i32 = 200;
const WORKER_STACK: usize = 128 * 1024;
/// How long and how much unread input we drain before closing after a bad request.
const LINGER: Duration = Duration::from_millis(500);
const MAX_LINGER_BYTES: u64 = 64 * 1024;

pub fn bind(listen: &str) -> Result<TcpListener, String> {
    TcpListener::bind(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))
}

/// Serves until `stop` is set, then stops accepting, lets the workers finish the requests in
/// flight and returns.
pub fn serve(
    listener: TcpListener,
    app: Arc<App>,
    stop: &'static AtomicBool,
) -> Result<(), String> {
    let (queue, connections) = sync_channel::<TcpStream>(QUEUE);
    let connections = Arc::new(Mutex::new(connections));
    let waiting = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::with_capacity(WORKERS);
    for i in 0..WORKERS {
        let (app, connections, waiting) = (
            Arc::clone(&app),
            Arc::clone(&connections),
            Arc::clone(&waiting),
        );
        workers.push(
            thread::Builder::new()
                .name(format!("http-{i}"))
                .stack_size(WORKER_STACK)
                .spawn(move || work(&app, &connections, &waiting, stop))
                .map_err(|e| format!("cannot start an HTTP worker: {e}"))?,
        );
    }
    while !stop.load(Ordering::SeqCst) {
        if !readable(&listener) {
            continue;
        }
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            // Aborted handshakes, fd exhaustion: keep serving the others.
            Err(_) => continue,
        };
        waiting.fetch_add(1, Ordering::SeqCst);
        if let Err(TrySendError::Full(mut stream)) = queue.try_send(stream) {
            waiting.fetch_sub(1, Ordering::SeqCst);
            let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
            let _ = stream
                .write_all(&Response::text(503, "busy: too many connections\n").bytes(false, true));
        }
    }
    drop(queue);
    for worker in workers {
        let _ = worker.join();
    }
    Ok(())
}

/// Waits up to [`STOP_POLL_MILLIS`] for a connection to accept.
fn readable(listener: &TcpListener) -> bool {
    let mut fd = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe { libc::poll(&mut fd, 1, STOP_POLL_MILLIS) > 0 }
}

fn work(
    app: &App,
    connections: &Mutex<Receiver<TcpStream>>,
    waiting: &AtomicUsize,
    stop: &AtomicBool,
) {
    loop {
        let next = connections.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok(stream) = next else { return };
        waiting.fetch_sub(1, Ordering::SeqCst);
        // Keep a connection open only while no other connection waits for a worker.
        // A bug in one request must not shrink the pool.
        let _ = catch_unwind(AssertUnwindSafe(|| {
            converse(app, stream, &|| {
                waiting.load(Ordering::SeqCst) == 0 && !stop.load(Ordering::SeqCst)
            })
        }));
    }
}

/// Answers the requests of one connection.
fn converse(app: &App, mut stream: TcpStream, may_keep_alive: &dyn Fn() -> bool) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.set_nodelay(true)?;
    let mut buffer = vec![0u8; MAX_HEAD_BYTES];
    let mut filled = 0;
    loop {
        let head_len = loop {
            if let Some(end) = find_head_end(&buffer[..filled]) {
                break end;
            }
            if filled == buffer.len() {
                let response = Response::text(431, "request head too large\n");
                stream.write_all(&response.bytes(false, true))?;
                return linger(stream);
            }
            let read = stream.read(&mut buffer[filled..])?;
            if read == 0 {
                return Ok(());
            }
            filled += read;
        };
        let request = parse_head(&buffer[..head_len]);
        let response = match &request {
            Ok(request) => route(app, request.method, request.path),
            Err(message) => Response::text(400, *message),
        };
        let keep_alive =
            matches!(&request, Ok(r) if r.keep_alive && !r.has_body) && may_keep_alive();
        let head_only = matches!(&request, Ok(r) if r.method == "HEAD");
        stream.write_all(&response.bytes(head_only, !keep_alive))?;
        if !matches!(&request, Ok(r) if !r.has_body) {
            return linger(stream);
        }
        if !keep_alive {
            return Ok(());
        }
        buffer.copy_within(head_len..filled, 0);
        filled -= head_len;
    }
}

/// Closes after an answer to a request we did not read in full: closing with unread input
/// would reset the connection and could destroy the answer before the client reads it.
fn linger(mut stream: TcpStream) -> io::Result<()> {
    stream.shutdown(std::net::Shutdown::Write)?;
    stream.set_read_timeout(Some(LINGER))?;
    let _ = io::copy(&mut (&mut stream).take(MAX_LINGER_BYTES), &mut io::sink());
    Ok(())
}

/// The length of the head through its blank line, if complete.
fn find_head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
}

#[derive(Debug, PartialEq, Eq)]
struct RequestHead<'a> {
    method: &'a str,
    path: &'a str,
    keep_alive: bool,
    has_body: bool,
}

fn parse_head(head: &[u8]) -> Result<RequestHead<'_>, &'static str> {
    let text = std::str::from_utf8(head).map_err(|_| "request head is not UTF-8\n")?;
    let mut lines = text.split("\r\n");
    let mut parts = lines.next().unwrap_or("").split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("malformed request line\n");
    };
    let mut keep_alive = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Err("unsupported HTTP version\n"),
    };
    let mut has_body = false;
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').ok_or("malformed header line\n")?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("connection") {
            keep_alive = if keep_alive {
                !value.eq_ignore_ascii_case("close")
            } else {
                value.eq_ignore_ascii_case("keep-alive")
            };
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            || (name.eq_ignore_ascii_case("content-length") && value != "0")
        {
            // We never read bodies: close after answering rather than misread the next request.
            has_body = true;
        }
    }
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    Ok(RequestHead {
        method,
        path,
        keep_alive,
        has_body,
    })
}

#[derive(Debug)]
pub struct Response {
    status: u16,
    content_type: &'static str,
    body: String,
}

impl Response {
    fn text(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }

    fn bytes(&self, head_only: bool, close: bool) -> Vec<u8> {
        let reason = match self.status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            431 => "Request Header Fields Too Large",
            _ => "Service Unavailable",
        };
        let mut out = format!(
            "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n{}{}\r\n",
            self.status,
            self.content_type,
            self.body.len(),
            if self.status == 405 { "Allow: GET, HEAD\r\n" } else { "" },
            if close { "Connection: close\r\n" } else { "" },
        )
        .into_bytes();
        if !head_only {
            out.extend_from_slice(self.body.as_bytes());
        }
        out
    }
}

fn route(app: &App, method: &str, path: &str) -> Response {
    if method != "GET" && method != "HEAD" {
        return Response::text(405, format!("{method} not allowed: use GET or HEAD\n"));
    }
    if let Some(role) = Role::ALL.into_iter().find(|role| role.serve_path() == path) {
        return probe(app, role);
    }
    match path {
        "/health" => Response {
            status: 200,
            content_type: "application/json",
            body: health_json(app),
        },
        "/metrics" => {
            let states: Vec<_> = app
                .monitors
                .iter()
                .map(|m| (m.config.role, m.snapshot()))
                .collect();
            let roles: Vec<_> = states
                .iter()
                .map(|(role, state)| metrics::RoleMetrics {
                    role: *role,
                    health: &state.health,
                    stats: &state.stats,
                })
                .collect();
            Response {
                status: 200,
                content_type: "text/plain; version=0.0.4; charset=utf-8",
                body: metrics::render(&roles),
            }
        }
        "/" => Response {
            status: 200,
            content_type: "text/html; charset=utf-8",
            body: page::render(app),
        },
        _ => Response::text(
            404,
            format!("no such endpoint {path}: try /livez /readyz /startupz /health /metrics /\n"),
        ),
    }
}

fn probe(app: &App, role: Role) -> Response {
    let Some((monitor, note)) = answering(app, role) else {
        return Response::text(
            404,
            format!(
                "{} is not configured: add a `{}:` role to the serve config\n",
                role.as_str(),
                role.as_str()
            ),
        );
    };
    if monitor.config.on_demand {
        scheduler::run_on_demand(&app.epoch, monitor);
    }
    let verdict = monitor.read(|state| verdict(role, &state.health, note));
    let mut body = verdict.line;
    body.push('\n');
    Response::text(if verdict.ok { 200 } else { 503 }, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_request_heads() {
        let head = parse_head(b"GET /readyz?x=1 HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        assert_eq!(
            head,
            RequestHead {
                method: "GET",
                path: "/readyz",
                keep_alive: true,
                has_body: false
            }
        );
        let head = parse_head(b"HEAD / HTTP/1.1\r\nConnection: Close\r\n\r\n").unwrap();
        assert!(!head.keep_alive);
        let head = parse_head(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        assert!(!head.keep_alive);
        let head = parse_head(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").unwrap();
        assert!(head.keep_alive);
        let head = parse_head(b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n").unwrap();
        assert!(head.has_body);
        for bad in [
            &b"GET /\r\n\r\n"[..],
            b"GET / HTTP/2\r\n\r\n",
            b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
            b"GET  / HTTP/1.1\r\n\r\n",
            b"\xff / HTTP/1.1\r\n\r\n",
        ] {
            assert!(parse_head(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn finds_the_end_of_a_head() {
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nrest"), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n"), None);
    }

    #[test]
    fn responses_carry_length_and_connection() {
        let response = Response::text(503, "x\n");
        let text = String::from_utf8(response.bytes(false, true)).unwrap();
        assert!(text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
        assert!(text.contains("Content-Length: 2\r\n") && text.contains("Connection: close\r\n"));
        assert!(text.ends_with("\r\n\r\nx\n"));
        let head = String::from_utf8(response.bytes(true, false)).unwrap();
        assert!(head.ends_with("Content-Length: 2\r\nCache-Control: no-store\r\n\r\n"));
    }
}
