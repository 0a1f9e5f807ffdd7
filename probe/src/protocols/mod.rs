//! Small native clients for the services the profiles check: each connects with the run's
//! deadline, speaks just enough of the protocol to know the service answers, and returns an
//! [`Outcome`](crate::Outcome).

pub mod amqp;
pub mod collectd;
pub mod memcached;
pub mod multipathd;
pub mod mysql;
pub mod ovsdb;
pub mod redis;

use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use crate::Deadline;
use crate::context::Context;
use crate::net::{DeadlineStream, connect, connect_unix, describe_io};
use healthcheck_spec::address::join_host_port;

/// The most any reply line or message may take: health replies are tiny, and a hostile peer
/// must not make the probe buffer without bound.
pub const MAX_REPLY_BYTES: usize = 64 * 1024;

/// Where a service listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Tcp {
        host: String,
        port: u16,
    },
    Unix(PathBuf),
    /// A Linux abstract Unix socket name (without the leading NUL).
    Abstract(String),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp { host, port } => write!(f, "{}", join_host_port(host, *port)),
            Endpoint::Unix(path) => write!(f, "unix:{}", path.display()),
            Endpoint::Abstract(name) => write!(f, "unix:@{name}"),
        }
    }
}

/// A connected stream whose reads and writes are bounded by the run's deadline.
pub enum Stream {
    Tcp(DeadlineStream<TcpStream>),
    Unix(DeadlineStream<UnixStream>),
}

impl Endpoint {
    pub fn tcp(host: &str, port: u16) -> Endpoint {
        Endpoint::Tcp {
            host: host.trim_matches(['[', ']']).to_string(),
            port,
        }
    }

    /// Connects within the run's deadline, also to a Unix listener whose backlog is full.
    pub fn open(&self, ctx: &Context) -> Result<Stream, String> {
        let deadline = ctx.deadline;
        let unix = |result: io::Result<UnixStream>| {
            result
                .map(|s| Stream::Unix(DeadlineStream::new(s, deadline)))
                .map_err(|e| format!("cannot connect to {self}: {}", describe_io(&e)))
        };
        match self {
            Endpoint::Tcp { host, port } => connect(&ctx.resolver, host, *port, &deadline)
                .map(|s| Stream::Tcp(DeadlineStream::new(s, deadline))),
            Endpoint::Unix(path) => unix(connect_unix(
                path.as_os_str().as_encoded_bytes(),
                false,
                &deadline,
            )),
            Endpoint::Abstract(name) => unix(connect_unix(name.as_bytes(), true, &deadline)),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Unix(s) => s.flush(),
        }
    }
}

impl Stream {
    /// Sends `request` whole.
    pub fn send(&mut self, request: &[u8]) -> Result<(), String> {
        self.write_all(request)
            .and_then(|_| self.flush())
            .map_err(|e| format!("cannot send: {}", describe_io(&e)))
    }

    /// Reads one `\n`-terminated line (without `\r\n`), at most [`MAX_REPLY_BYTES`].
    pub fn read_line(&mut self) -> Result<String, String> {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            match self.read(&mut byte) {
                Ok(0) => {
                    return Err(if line.is_empty() {
                        "connection closed without a reply".to_string()
                    } else {
                        format!("connection closed mid-reply: {}", text(&line))
                    });
                }
                Ok(_) if byte[0] == b'\n' => break,
                Ok(_) if line.len() >= MAX_REPLY_BYTES => {
                    return Err(format!("reply line longer than {MAX_REPLY_BYTES} bytes"));
                }
                Ok(_) => line.push(byte[0]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(read_error(&e)),
            }
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(text(&line))
    }

    /// Reads until `complete` says the bytes so far hold a whole reply (bounded).
    pub fn read_until(
        &mut self,
        mut complete: impl FnMut(&[u8]) -> bool,
    ) -> Result<Vec<u8>, String> {
        let mut reply = Vec::new();
        let mut chunk = [0u8; 4096];
        while !complete(&reply) {
            if reply.len() >= MAX_REPLY_BYTES {
                return Err(format!("reply longer than {MAX_REPLY_BYTES} bytes"));
            }
            match self.read(&mut chunk) {
                Ok(0) if reply.is_empty() => {
                    return Err("connection closed without a reply".to_string());
                }
                Ok(0) => return Err(format!("connection closed mid-reply: {}", text(&reply))),
                Ok(n) => reply.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(read_error(&e)),
            }
        }
        Ok(reply)
    }
}

fn read_error(e: &io::Error) -> String {
    if matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    ) {
        "no reply before the deadline".to_string()
    } else {
        format!("cannot read the reply: {}", describe_io(e))
    }
}

/// Text from a peer, lossily decoded (it only ever ends up in a message).
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Reads exactly `len` bytes, growing the buffer only as bytes arrive, so a length announced
/// by the peer is never allocated up front.
fn read_bounded(stream: &mut impl Read, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(len.min(4096));
    stream.take(len as u64).read_to_end(&mut buf)?;
    if buf.len() < len {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(buf)
}

/// An I/O failure as an operator reads it: what was happening, and why it stopped.
fn describe_failure(error: &io::Error, during: &str, deadline: &Deadline) -> String {
    match error.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
            format!("{} while {during}", deadline.expired_message())
        }
        io::ErrorKind::UnexpectedEof => format!("connection closed by the server while {during}"),
        _ => format!("{} while {during}", describe_io(error)),
    }
}

/// A cursor over a received message; every read is checked against what is left.
struct Cursor<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Cursor { bytes, what }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.bytes.len() {
            return Err(format!(
                "truncated {}: needs {n} more bytes, {} left",
                self.what,
                self.bytes.len()
            ));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        Ok(self.take(N)?.try_into().expect("took N bytes"))
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }

    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Bytes up to a NUL (consumed), or to the end when there is none.
    fn until_nul(&mut self) -> &'a [u8] {
        match self.bytes.iter().position(|&b| b == 0) {
            Some(at) => {
                let text = &self.bytes[..at];
                self.bytes = &self.bytes[at + 1..];
                text
            }
            None => self.rest(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_refuses_to_read_past_the_end() {
        let mut c = Cursor::new(b"ab\0cd", "packet");
        assert_eq!(c.until_nul(), b"ab");
        assert_eq!(c.u8().unwrap(), b'c');
        assert_eq!(
            c.take(2).unwrap_err(),
            "truncated packet: needs 2 more bytes, 1 left"
        );
        assert_eq!(c.until_nul(), b"d");
        assert!(c.is_empty());
    }

    #[test]
    fn bounded_read_fails_on_short_input_without_preallocating() {
        let mut short: &[u8] = b"abc";
        let err = read_bounded(&mut short, usize::MAX / 2).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let mut exact: &[u8] = b"abcd";
        assert_eq!(read_bounded(&mut exact, 3).unwrap(), b"abc");
    }
}
