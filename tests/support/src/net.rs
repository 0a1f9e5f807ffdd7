//! Loopback ports and a plain HTTP GET, for tests that wait for a server or read its answers.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind a loopback port")
        .port()
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub fn accepts_tcp(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// `GET path` over HTTP/1.0 with 5 s deadlines: the status code and body.
pub fn http_get(addr: SocketAddr, path: &str) -> io::Result<(u16, String)> {
    http_get_within(addr, path, Duration::from_secs(5))
}

/// `GET path` over HTTP/1.0, connecting, writing and each read bounded by `deadline`: the status
/// code and body. HTTP/1.0 makes the server close the connection after its answer, so the body
/// is everything up to the end of the stream, without parsing lengths or chunks.
pub fn http_get_within(
    addr: SocketAddr,
    path: &str,
    deadline: Duration,
) -> io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, deadline)?;
    stream.set_read_timeout(Some(deadline))?;
    stream.set_write_timeout(Some(deadline))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| io::Error::other(format!("not an HTTP response: {response:?}")))?;
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .to_string();
    Ok((status, body))
}
