//! A small HTTP/1.1 server on one epoll event loop. No peer can hold anything another peer
//! needs: sockets are non-blocking, each request has one deadline for its whole exchange (head
//! and answer) rather than per read, per-connection state is bounded, and the number of open
//! connections is capped by closing the longest-open one. Every answer comes from the latest
//! results; no request starts a run, except for a role configured on demand, whose runs happen
//! on a thread of their own while the requests wait in the loop.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread;
use std::time::{Duration, Instant};

use super::config::Role;
use super::report::{answering, health_json, verdict};
use super::{App, metrics, page, scheduler};

/// The most of a request head we accept (the kubelet sends about 200 bytes).
const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Open connections at most (8 KiB of head each at worst). A new connection beyond this closes
/// the longest-open one, so a crowd of slow or idle peers cannot lock a new client out.
const MAX_CONNECTIONS: usize = 2048;
/// One deadline for a whole request: from the connection's accept (or its previous answer)
/// until its answer is written. A peer trickling bytes cannot hold a connection past it.
const REQUEST_DEADLINE: Duration = Duration::from_secs(5);
/// Requests answered on one connection before the others get their turn (pipelining).
const REQUESTS_PER_TURN: usize = 8;
/// Connections accepted per turn before the open ones get their turn (a flood).
const ACCEPTS_PER_TURN: usize = 256;
/// How long and how much unread input we drain before closing after a request we did not
/// read in full: closing with unread input would reset the connection and could destroy the
/// answer before the client reads it.
const LINGER: Duration = Duration::from_millis(500);
const MAX_LINGER_BYTES: usize = 64 * 1024;
const RUNNER_STACK: usize = 64 * 1024;

pub fn bind(listen: &str) -> Result<TcpListener, String> {
    TcpListener::bind(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))
}

/// A stop request that wakes the event loop, which otherwise sleeps until its next deadline
/// (with no connection open, until a connection or a finished run: no timer ticks while the
/// kubelet is between probes).
pub struct StopSignal {
    requested: AtomicBool,
    wake_fd: AtomicI32,
}

impl StopSignal {
    pub const fn new() -> Self {
        StopSignal {
            requested: AtomicBool::new(false),
            wake_fd: AtomicI32::new(-1),
        }
    }

    /// Async-signal-safe: an atomic store and a `write(2)` to a non-blocking socket.
    pub fn request(&self) {
        self.requested.store(true, Ordering::SeqCst);
        let fd = self.wake_fd.load(Ordering::SeqCst);
        if fd >= 0 {
            // SAFETY: one byte from a valid buffer; a closed or full socket only fails.
            unsafe { libc::write(fd, [1u8].as_ptr().cast(), 1) };
        }
    }

    fn is_requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }
}

impl Default for StopSignal {
    fn default() -> Self {
        Self::new()
    }
}

/// Serves until `stop` is requested, then stops accepting, finishes the requests in flight (for
/// at most one request deadline) and returns.
pub fn serve(
    listener: TcpListener,
    app: Arc<App>,
    stop: &'static StopSignal,
) -> Result<(), String> {
    let fail = |what: &str, e: io::Error| format!("cannot start the HTTP server: {what}: {e}");
    raise_open_files_limit();
    listener
        .set_nonblocking(true)
        .map_err(|e| fail("non-blocking listener", e))?;
    let (wake_reader, wake_writer) = UnixStream::pair().map_err(|e| fail("socketpair", e))?;
    for end in [&wake_reader, &wake_writer] {
        end.set_nonblocking(true)
            .map_err(|e| fail("non-blocking socketpair", e))?;
    }
    let epoll = Epoll::new().map_err(|e| fail("epoll", e))?;
    // Level-triggered: a listener left with connections to accept is reported again.
    epoll
        .add(listener.as_raw_fd(), libc::EPOLLIN as u32)
        .map_err(|e| fail("epoll", e))?;
    epoll
        .add(wake_reader.as_raw_fd(), libc::EPOLLIN as u32)
        .map_err(|e| fail("epoll", e))?;
    // Never closed: a signal may still write to it after the loop returned.
    let stop_wake = wake_writer.try_clone().map_err(|e| fail("socketpair", e))?;
    stop.wake_fd.store(
        std::os::fd::IntoRawFd::into_raw_fd(stop_wake),
        Ordering::SeqCst,
    );
    let (finished_sender, finished) = channel();
    let mut runners = Vec::new();
    for monitor in app.monitors.iter().filter(|m| m.config.on_demand) {
        let role = monitor.config.role;
        let wake = wake_writer.try_clone().map_err(|e| fail("socketpair", e))?;
        let runner = spawn_runner(Arc::clone(&app), role, finished_sender.clone(), wake)?;
        runners.push(runner);
    }
    Server {
        app,
        epoll,
        listener: Some(listener),
        wake: wake_reader,
        connections: HashMap::new(),
        runners,
        finished,
        stopping: None,
    }
    .run(stop);
    Ok(())
}

/// A connection count in the thousands needs more descriptors than a container's usual soft
/// limit of 1024; the soft limit may be raised up to the hard one without privileges.
fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: get/setrlimit on a valid, owned struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// The thread running an on-demand role's check when asked; it reports each finished (or
/// skipped, because fresh) run back to the loop, which answers the connections waiting.
struct Runner {
    role: Role,
    requests: Sender<()>,
    busy: bool,
    waiting: Vec<RawFd>,
}

fn spawn_runner(
    app: Arc<App>,
    role: Role,
    finished: Sender<Role>,
    mut wake: UnixStream,
) -> Result<Runner, String> {
    let (requests, asked) = channel::<()>();
    thread::Builder::new()
        .name(format!("on-demand-{}", role.as_str()))
        .stack_size(RUNNER_STACK)
        .spawn(move || {
            for () in asked {
                if let Some(monitor) = app.monitor(role) {
                    scheduler::run_on_demand(&app.epoch, monitor);
                }
                if finished.send(role).is_err() {
                    return;
                }
                // A full socket buffer already holds a wake-up.
                let _ = wake.write(&[1]);
            }
        })
        .map_err(|e| format!("cannot start the {} on-demand thread: {e}", role.as_str()))?;
    Ok(Runner {
        role,
        requests,
        busy: false,
        waiting: Vec::new(),
    })
}

struct Epoll(OwnedFd);

impl Epoll {
    fn new() -> io::Result<Epoll> {
        // SAFETY: plain syscall; the descriptor is owned from here on.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor nobody else owns.
        Ok(Epoll(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn add(&self, fd: RawFd, events: u32) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events,
            u64: fd as u64,
        };
        // SAFETY: a valid epoll descriptor and event for the duration of the call.
        match unsafe { libc::epoll_ctl(self.0.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) } {
            0 => Ok(()),
            _ => Err(io::Error::last_os_error()),
        }
    }

    fn remove(&self, fd: RawFd) {
        // SAFETY: as in `add`; a null event is allowed for EPOLL_CTL_DEL.
        unsafe {
            libc::epoll_ctl(
                self.0.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd,
                std::ptr::null_mut(),
            )
        };
    }

    /// The descriptors ready within `timeout`, rounded up to the millisecond so a deadline is
    /// never woken for too early (`None`: until one is; none on EINTR).
    fn wait(
        &self,
        events: &mut [libc::epoll_event],
        timeout: Option<Duration>,
    ) -> impl Iterator<Item = RawFd> {
        let timeout_ms = timeout.map_or(-1, |t| {
            libc::c_int::try_from(t.as_nanos().div_ceil(1_000_000)).unwrap_or(libc::c_int::MAX)
        });
        // SAFETY: `events` is valid for `events.len()` entries.
        let n = unsafe {
            libc::epoll_wait(
                self.0.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as libc::c_int,
                timeout_ms,
            )
        };
        events[..n.max(0) as usize].iter().map(|e| e.u64 as RawFd)
    }
}

/// Where a connection is in its current request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Reading a request head (or idle between keep-alive requests).
    Reading,
    /// The answer to `role`'s probe waits for an on-demand run of the `monitor` role.
    Waiting {
        role: Role,
        monitor: Role,
        head_only: bool,
        then: Then,
    },
    Writing(Then),
    /// Answered and half-closed; draining what the peer still sends.
    Lingering,
}

/// What follows a written answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Then {
    KeepAlive,
    Close,
    Linger,
}

struct Connection {
    stream: TcpStream,
    opened: Instant,
    deadline: Instant,
    phase: Phase,
    input: Vec<u8>,
    output: Vec<u8>,
    written: usize,
    drained: usize,
}

/// What one turn on a connection ended with.
#[derive(PartialEq, Eq)]
enum Turn {
    /// Waits for the socket (or a run).
    Blocked,
    /// Has more to do, after the others had their turn.
    Yielded,
    Close,
}

struct Server {
    app: Arc<App>,
    epoll: Epoll,
    listener: Option<TcpListener>,
    wake: UnixStream,
    connections: HashMap<RawFd, Connection>,
    runners: Vec<Runner>,
    finished: Receiver<Role>,
    stopping: Option<Instant>,
}

impl Server {
    fn run(mut self, stop: &StopSignal) {
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
        let mut again = Vec::new();
        loop {
            if stop.is_requested() && self.stopping.is_none() {
                self.stop_accepting();
            }
            if let Some(since) = self.stopping
                && (self.connections.is_empty() || since.elapsed() > REQUEST_DEADLINE)
            {
                return;
            }
            let next_deadline = self.next_deadline();
            let timeout = if again.is_empty() {
                next_deadline.map(|at| at.saturating_duration_since(Instant::now()))
            } else {
                Some(Duration::ZERO)
            };
            let mut ready = std::mem::take(&mut again);
            let listener = self.listener.as_ref().map(AsRawFd::as_raw_fd);
            let woken: Vec<_> = self.epoll.wait(&mut events, timeout).collect();
            for fd in woken {
                if Some(fd) == listener {
                    self.accept(&mut ready);
                } else if fd == self.wake.as_raw_fd() {
                    self.answer_finished_runs(&mut ready);
                } else {
                    ready.push(fd);
                }
            }
            ready.sort_unstable();
            ready.dedup();
            for fd in ready {
                match self.turn(fd) {
                    Turn::Blocked => {}
                    Turn::Yielded => again.push(fd),
                    Turn::Close => self.close(fd),
                }
            }
            if next_deadline.is_some_and(|at| at <= Instant::now()) {
                self.close_overdue();
            }
        }
    }

    /// The earliest connection deadline, or the end of the grace period while stopping.
    fn next_deadline(&self) -> Option<Instant> {
        let connections = self.connections.values().map(|c| c.deadline).min();
        let stopping = self.stopping.map(|since| since + REQUEST_DEADLINE);
        connections.into_iter().chain(stopping).min()
    }

    fn stop_accepting(&mut self) {
        self.stopping = Some(Instant::now());
        if let Some(listener) = self.listener.take() {
            self.epoll.remove(listener.as_raw_fd());
        }
        let idle: Vec<_> = self
            .connections
            .iter()
            .filter(|(_, c)| c.phase == Phase::Reading && c.input.is_empty())
            .map(|(fd, _)| *fd)
            .collect();
        for fd in idle {
            self.close(fd);
        }
    }

    fn accept(&mut self, ready: &mut Vec<RawFd>) {
        for _ in 0..ACCEPTS_PER_TURN {
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok((stream, _)) => {
                    if let Some(fd) = self.admit(stream) {
                        ready.push(fd);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // Out of descriptors: make room, or wait for the next turn.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    if !self.close_longest_open() {
                        return;
                    }
                }
                // An aborted handshake: keep serving the others.
                Err(_) => {}
            }
        }
    }

    fn admit(&mut self, stream: TcpStream) -> Option<RawFd> {
        if self.connections.len() >= MAX_CONNECTIONS {
            self.close_longest_open();
        }
        stream.set_nonblocking(true).ok()?;
        let _ = stream.set_nodelay(true);
        let fd = stream.as_raw_fd();
        // Edge-triggered: every turn works until the socket would block.
        let events = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;
        self.epoll.add(fd, events).ok()?;
        let now = Instant::now();
        self.connections.insert(
            fd,
            Connection {
                stream,
                opened: now,
                deadline: now + REQUEST_DEADLINE,
                phase: Phase::Reading,
                input: Vec::new(),
                output: Vec::new(),
                written: 0,
                drained: 0,
            },
        );
        Some(fd)
    }

    fn close_longest_open(&mut self) -> bool {
        let oldest = self
            .connections
            .iter()
            .min_by_key(|(_, c)| c.opened)
            .map(|(fd, _)| *fd);
        oldest.map(|fd| self.close(fd)).is_some()
    }

    fn close(&mut self, fd: RawFd) {
        // Dropping the stream closes it, which also takes it out of the epoll set.
        self.connections.remove(&fd);
    }

    /// Closes the connections past their deadline; a half-received request is told why.
    fn close_overdue(&mut self) {
        let now = Instant::now();
        let overdue: Vec<_> = self
            .connections
            .iter()
            .filter(|(_, c)| c.deadline <= now)
            .map(|(fd, _)| *fd)
            .collect();
        for fd in overdue {
            if let Some(connection) = self.connections.get_mut(&fd)
                && connection.phase == Phase::Reading
                && !connection.input.is_empty()
            {
                let answer = Response::text(408, "request not received in time\n");
                let _ = connection.stream.write(&answer.bytes(false, true));
            }
            self.close(fd);
        }
    }

    fn answer_finished_runs(&mut self, ready: &mut Vec<RawFd>) {
        let mut signal = [0u8; 64];
        while matches!((&self.wake).read(&mut signal), Ok(n) if n > 0) {}
        while let Ok(monitor) = self.finished.try_recv() {
            let Some(runner) = self.runners.iter_mut().find(|r| r.role == monitor) else {
                continue;
            };
            runner.busy = false;
            for fd in std::mem::take(&mut runner.waiting) {
                let Some(connection) = self.connections.get_mut(&fd) else {
                    continue;
                };
                if let Phase::Waiting {
                    role,
                    monitor: waited,
                    head_only,
                    then,
                } = connection.phase
                    && waited == monitor
                {
                    let answer = probe(&self.app, role);
                    connection.respond(&answer, head_only, then);
                    ready.push(fd);
                }
            }
        }
    }

    /// Works on one connection until it would block, yields or is done.
    fn turn(&mut self, fd: RawFd) -> Turn {
        let stopping = self.stopping.is_some();
        let Some(connection) = self.connections.get_mut(&fd) else {
            return Turn::Blocked;
        };
        let mut answered = 0;
        loop {
            let step = match connection.phase {
                Phase::Reading => {
                    if answered == REQUESTS_PER_TURN {
                        return Turn::Yielded;
                    }
                    match connection.next_request(&self.app, stopping) {
                        Some(Ok(wait)) => {
                            answered += 1;
                            if let Some(monitor) = wait {
                                self.wait_for_run(monitor, fd);
                                return Turn::Blocked;
                            }
                            Ok(())
                        }
                        Some(Err(turn)) => return turn,
                        None => connection.read_more(),
                    }
                }
                Phase::Waiting { .. } => return Turn::Blocked,
                Phase::Writing(then) => connection.write_more(then, stopping),
                Phase::Lingering => connection.drain(),
            };
            if let Err(turn) = step {
                return turn;
            }
        }
    }

    fn wait_for_run(&mut self, monitor: Role, fd: RawFd) {
        if let Some(runner) = self.runners.iter_mut().find(|r| r.role == monitor) {
            runner.waiting.push(fd);
            if !runner.busy {
                runner.busy = runner.requests.send(()).is_ok();
            }
        }
    }
}

impl Connection {
    /// Takes the next complete request head from the input and prepares its answer: `None`
    /// when no complete head is buffered yet, `Some(Ok(Some(role)))` when the answer waits for
    /// an on-demand run of `role`.
    fn next_request(&mut self, app: &App, stopping: bool) -> Option<Result<Option<Role>, Turn>> {
        // RFC 9112 section 2.2: ignore empty lines before a request line.
        let blank = self
            .input
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        self.input.drain(..blank);
        let Some(head_len) = find_head_end(&self.input) else {
            if self.input.len() >= MAX_HEAD_BYTES {
                let answer = Response::text(431, "request head too large\n");
                self.respond(&answer, false, Then::Linger);
                return Some(Ok(None));
            }
            return None;
        };
        let request = parse_head(&self.input[..head_len]);
        let (answer, head_only, then) = match &request {
            Ok(request) => {
                let then = if request.has_body {
                    Then::Linger
                } else if request.keep_alive && !stopping {
                    Then::KeepAlive
                } else {
                    Then::Close
                };
                let head_only = request.method == "HEAD";
                if let Some((role, monitor)) = on_demand(app, request.method, request.path) {
                    self.phase = Phase::Waiting {
                        role,
                        monitor,
                        head_only,
                        then,
                    };
                    // The answer may take a whole run (bounded by its timeout).
                    self.deadline = Instant::now()
                        + app
                            .monitor(monitor)
                            .map_or(Duration::ZERO, |m| m.config.timing.timeout)
                        + REQUEST_DEADLINE;
                    self.input.drain(..head_len);
                    return Some(Ok(Some(monitor)));
                }
                (route(app, request.method, request.path), head_only, then)
            }
            Err(message) => (Response::text(400, *message), false, Then::Linger),
        };
        self.input.drain(..head_len);
        self.respond(&answer, head_only, then);
        Some(Ok(None))
    }

    fn respond(&mut self, answer: &Response, head_only: bool, then: Then) {
        self.output = answer.bytes(head_only, then != Then::KeepAlive);
        self.written = 0;
        self.phase = Phase::Writing(then);
    }

    fn read_more(&mut self) -> Result<(), Turn> {
        let mut chunk = [0u8; 4096];
        let room = (MAX_HEAD_BYTES - self.input.len()).min(chunk.len());
        match self.stream.read(&mut chunk[..room]) {
            Ok(0) => Err(Turn::Close),
            Ok(n) => {
                self.input.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e) => Err(blocked_or_closed(&e)),
        }
    }

    fn write_more(&mut self, then: Then, stopping: bool) -> Result<(), Turn> {
        match self.stream.write(&self.output[self.written..]) {
            Ok(n) => self.written += n,
            Err(e) => return Err(blocked_or_closed(&e)),
        }
        if self.written < self.output.len() {
            return Ok(());
        }
        self.output = Vec::new();
        match then {
            Then::KeepAlive if !stopping => {
                self.phase = Phase::Reading;
                self.deadline = Instant::now() + REQUEST_DEADLINE;
                self.input
                    .shrink_to(MAX_HEAD_BYTES.min(self.input.len().max(512)));
                Ok(())
            }
            Then::KeepAlive | Then::Close => Err(Turn::Close),
            Then::Linger => {
                self.stream
                    .shutdown(Shutdown::Write)
                    .map_err(|_| Turn::Close)?;
                self.input = Vec::new();
                self.phase = Phase::Lingering;
                self.deadline = self.deadline.min(Instant::now() + LINGER);
                Ok(())
            }
        }
    }

    fn drain(&mut self) -> Result<(), Turn> {
        let mut chunk = [0u8; 4096];
        match self.stream.read(&mut chunk) {
            Ok(0) => Err(Turn::Close),
            Ok(n) => {
                self.drained += n;
                if self.drained > MAX_LINGER_BYTES {
                    return Err(Turn::Close);
                }
                Ok(())
            }
            Err(e) => Err(blocked_or_closed(&e)),
        }
    }
}

fn blocked_or_closed(error: &io::Error) -> Turn {
    match error.kind() {
        io::ErrorKind::WouldBlock => Turn::Blocked,
        // Retried at once by the caller's loop.
        io::ErrorKind::Interrupted => Turn::Yielded,
        _ => Turn::Close,
    }
}

/// The length of the head through its empty line, if complete; a bare LF ends a line as CRLF
/// does (RFC 9112 section 2.2).
pub(crate) fn find_head_end(bytes: &[u8]) -> Option<usize> {
    bytes.iter().enumerate().find_map(|(i, &b)| {
        if b != b'\n' {
            return None;
        }
        match &bytes[i + 1..] {
            [b'\n', ..] => Some(i + 2),
            [b'\r', b'\n', ..] => Some(i + 3),
            _ => None,
        }
    })
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RequestHead<'a> {
    method: &'a str,
    path: &'a str,
    keep_alive: bool,
    has_body: bool,
}

/// Parses a request head as RFC 9112 asks of a server: lines end in CRLF or a bare LF, a bare
/// CR, a space before a header's colon, line folding or an invalid `Content-Length` is a 400,
/// and the absolute form of a request target names its path as the origin form does.
pub(crate) fn parse_head(head: &[u8]) -> Result<RequestHead<'_>, &'static str> {
    let text = std::str::from_utf8(head).map_err(|_| "request head is not UTF-8\n")?;
    let mut lines = text
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line));
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("malformed request line\n");
    };
    if !is_token(method) {
        return Err("malformed request line\n");
    }
    let path = target_path(target).ok_or("malformed request target\n")?;
    let mut keep_alive = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Err("unsupported HTTP version\n"),
    };
    let mut has_body = false;
    for line in lines.filter(|l| !l.is_empty()) {
        if line.contains('\r') {
            return Err("bare CR in the request head\n");
        }
        if line.starts_with([' ', '\t']) {
            return Err("obsolete line folding in a header\n");
        }
        let (name, value) = line.split_once(':').ok_or("malformed header line\n")?;
        if !is_token(name) {
            return Err("malformed header name (no space is allowed before the colon)\n");
        }
        let value = value.trim_matches([' ', '\t']);
        if name.eq_ignore_ascii_case("connection") {
            keep_alive = if keep_alive {
                !value.eq_ignore_ascii_case("close")
            } else {
                value.eq_ignore_ascii_case("keep-alive")
            };
        } else if name.eq_ignore_ascii_case("content-length") {
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err("invalid Content-Length\n");
            }
            // We never read bodies: close after answering rather than misread the next request.
            has_body |= value.bytes().any(|b| b != b'0');
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            has_body = true;
        }
    }
    Ok(RequestHead {
        method,
        path,
        keep_alive,
        has_body,
    })
}

/// RFC 9110's `token`: what a method and a header name are made of.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The path of an origin-form (`/livez?x`) or absolute-form (`http://host:9180/livez`)
/// request target; `*` stays itself.
fn target_path(target: &str) -> Option<&str> {
    let scheme_end = target.find("://");
    let path = match scheme_end {
        _ if target.starts_with('/') || target == "*" => target,
        Some(at)
            if ["http", "https"]
                .iter()
                .any(|s| target[..at].eq_ignore_ascii_case(s)) =>
        {
            let rest = &target[at + 3..];
            rest.find(['/', '?']).map_or("", |i| &rest[i..])
        }
        _ => return None,
    };
    let path = path.split_once('?').map_or(path, |(path, _)| path);
    Some(if path.is_empty() { "/" } else { path })
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
            408 => "Request Timeout",
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

/// The on-demand role a probe request must wait for a run of (with the role asked, which
/// differs when the startup probe is answered by liveness).
fn on_demand(app: &App, method: &str, path: &str) -> Option<(Role, Role)> {
    if method != "GET" && method != "HEAD" {
        return None;
    }
    let role = Role::ALL
        .into_iter()
        .find(|role| role.serve_path() == path)?;
    let (monitor, _) = answering(app, role)?;
    monitor
        .config
        .on_demand
        .then_some((role, monitor.config.role))
}

/// A probe's answer from the latest result.
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
            // RFC 9112: no whitespace between a header's name and its colon.
            b"POST / HTTP/1.1\r\nContent-Length : 5\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"GET livez HTTP/1.1\r\n\r\n",
            b"GET ftp://x/livez HTTP/1.1\r\n\r\n",
        ] {
            assert!(parse_head(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bare_lf_and_absolute_form_are_understood() {
        let head = parse_head(b"GET /livez HTTP/1.1\nHost: a\n\n").unwrap();
        assert_eq!((head.method, head.path), ("GET", "/livez"));
        let head = parse_head(b"GET http://pod:9180/readyz?x HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(head.path, "/readyz");
        assert_eq!(
            parse_head(b"GET HTTP://pod:9180 HTTP/1.1\r\n\r\n")
                .unwrap()
                .path,
            "/"
        );
        let head = parse_head(b"GET / HTTP/1.1\r\nContent-Length: 000\r\n\r\n").unwrap();
        assert!(!head.has_body);
    }

    #[test]
    fn finds_the_end_of_a_head() {
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nrest"), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\n\nrest"), Some(16));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nA: b\n\r\n"), Some(23));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n"), None);
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r"), None);
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
