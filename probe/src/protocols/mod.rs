//! Native clients for the wire protocols of the services OpenStack depends on: just enough of
//! each to prove the service answers and accepts the check's credentials, bounded against a
//! hostile or broken peer (every length checked, every wait under the run's deadline).

pub mod amqp;
pub mod mysql;

use std::io::{self, Read};

use crate::Deadline;
use crate::net::describe_io;

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

/// Text from a peer, lossily decoded (it only ever ends up in a message).
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
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
