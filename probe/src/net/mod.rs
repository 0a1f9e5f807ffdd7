//! Networking with a deadline: name resolution, TCP connect, TLS, HTTP, proxies.

pub mod http;
pub mod proxy;
pub mod resolve;
pub mod tls;
pub use healthcheck_spec::url;

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::Duration;

pub use resolve::Resolver;

use crate::Deadline;

/// Resolves `host` and connects to the first address that accepts, giving each remaining
/// address an equal share of the time left so one black-holed address cannot use it all.
pub fn connect(
    resolver: &Resolver,
    host: &str,
    port: u16,
    deadline: &Deadline,
) -> Result<TcpStream, String> {
    let addrs = resolver
        .resolve(host, port, deadline)
        .map_err(|e| format!("cannot resolve {host}: {e}"))?;
    crate::debug!("{host} resolved to {addrs:?}");
    let mut errors = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        let share = match deadline.remaining() {
            Ok(left) => left / (addrs.len() - i) as u32,
            Err(e) => {
                errors.push(format!("{addr}: {e}"));
                break;
            }
        };
        match TcpStream::connect_timeout(addr, share) {
            Ok(stream) => {
                crate::debug!("connected to {addr}");
                // Health checks send one small request; do not wait for Nagle.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e)
                if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::WouldBlock =>
            {
                errors.push(format!("{addr}: connect timed out"));
            }
            Err(e) => errors.push(format!("{addr}: {}", describe_io(&e))),
        }
    }
    Err(format!("cannot connect to {}", errors.join(", ")))
}

/// Connects to a Unix stream socket within the deadline: a listener whose accept backlog is
/// full makes a plain connect wait forever, and the kernel bounds that wait by the socket's
/// send timeout. `name` is a filesystem path, or an abstract name when `abstract_name`.
pub fn connect_unix(
    name: &[u8],
    abstract_name: bool,
    deadline: &Deadline,
) -> io::Result<UnixStream> {
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: zeroed sockaddr_un is a valid (empty) address.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let offset = usize::from(abstract_name);
    // A path needs room for its terminating NUL; an abstract name for its leading one.
    if name.len() + 1 > addr.sun_path.len() || name.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "socket name too long or holds NUL",
        ));
    }
    for (slot, byte) in addr.sun_path[offset..].iter_mut().zip(name) {
        *slot = *byte as libc::c_char;
    }
    // Either way one NUL besides the name: a path's terminator or an abstract name's lead.
    let path_len = name.len() + 1;
    let len = std::mem::offset_of!(libc::sockaddr_un, sun_path) + path_len;
    // SAFETY: plain syscall; the descriptor is owned at once.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nobody else owns.
    let stream = UnixStream::from(unsafe { OwnedFd::from_raw_fd(fd) });
    stream.set_write_timeout(Some(deadline.remaining()?))?;
    // SAFETY: `addr` is a valid sockaddr_un of `len` bytes.
    let connected = unsafe { libc::connect(fd, (&raw const addr).cast(), len as libc::socklen_t) };
    if connected != 0 {
        let error = io::Error::last_os_error();
        return Err(match error.kind() {
            io::ErrorKind::WouldBlock => io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "connect timed out (the listener does not accept: backlog full?) after {}",
                    crate::deadline::format_seconds(deadline.total())
                ),
            ),
            _ => error,
        });
    }
    Ok(stream)
}

/// `connection refused` rather than `Connection refused (os error 111)`.
pub fn describe_io(error: &io::Error) -> String {
    let text = error.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text.to_string(),
    }
}

/// A stream socket whose every read and write waits at most until the deadline, so a peer
/// that accepts and never answers, or trickles one byte at a time, cannot hold the run.
pub struct DeadlineStream<S: TimeoutSocket = TcpStream> {
    inner: S,
    deadline: Deadline,
}

impl<S: TimeoutSocket> DeadlineStream<S> {
    pub fn new(inner: S, deadline: Deadline) -> Self {
        DeadlineStream { inner, deadline }
    }

    /// Bounds the following reads and writes by another deadline (a shorter grace).
    pub fn set_deadline(&mut self, deadline: Deadline) {
        self.deadline = deadline;
    }
}

/// A blocking stream socket with per-operation timeouts: TCP or Unix.
pub trait TimeoutSocket: Read + Write {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
}

impl TimeoutSocket for TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
    }
}

impl TimeoutSocket for UnixStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        UnixStream::set_read_timeout(self, timeout)
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        UnixStream::set_write_timeout(self, timeout)
    }
}

impl<S: TimeoutSocket> Read for DeadlineStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner
            .set_read_timeout(Some(self.deadline.remaining()?))?;
        self.inner.read(buf)
    }
}

impl<S: TimeoutSocket> Write for DeadlineStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner
            .set_write_timeout(Some(self.deadline.remaining()?))?;
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
