//! A minimal HTTP/1.1 client: one request, `Connection: close`, every read and write bounded by
//! the run's deadline, the response head capped, and the body read only when it is needed.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::{ClientConfig, ClientConnection, StreamOwned};

use super::url::{Scheme, Url};
use super::{DeadlineStream, connect};
use crate::Deadline;

/// The most of a response head we read before calling the peer hostile.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The most of a body we keep for a `--body-regex` match.
pub const MAX_CAPTURED_BODY: usize = 1024 * 1024;

pub struct Request<'a> {
    pub url: &'a Url,
    pub method: &'a str,
    /// `Name: value` lines, already validated.
    pub headers: &'a [String],
    pub user_agent: &'a str,
    /// `user:password` for basic auth; overrides user info in the URL.
    pub basic_auth: Option<&'a str>,
    pub body: BodySink,
    pub tls: Option<Arc<ClientConfig>>,
    /// An HTTP proxy to go through (`host`, `port`), when proxies are enabled.
    pub proxy: Option<(String, u16)>,
    /// Where the exchange tells how far it got (for the deadline's report).
    pub progress: Option<&'a Progress<'a>>,
}

pub enum BodySink {
    /// Do not read the body at all: the status decides, the transfer is not paid for.
    Discard,
    /// Read the whole body and throw it away, under the deadline (curl's `-o /dev/null`).
    Drain,
    /// Keep up to [`MAX_CAPTURED_BODY`] bytes for matching.
    Capture,
    /// Write the whole body to a file, as `HEALTHCHECK_CURL_OUTPUT`.
    File(String),
}

/// What happened, in the terms curl's `--write-out` reports even on failure.
#[derive(Debug, Default)]
pub struct Exchange {
    pub remote: Option<SocketAddr>,
    pub status: Option<u16>,
    pub body: Vec<u8>,
    pub elapsed: Duration,
    pub error: Option<String>,
}

/// What an exchange has got so far, told to a listener at every step (so the report of a
/// deadline that interrupts the exchange can be rendered in advance).
pub struct Progress<'a> {
    snapshot: Cell<Snapshot>,
    listener: &'a dyn Fn(&Snapshot),
}

/// How far an exchange got: curl's terms for a timed-out transfer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub remote: Option<SocketAddr>,
    pub status: Option<u16>,
    /// Body bytes received so far.
    pub body_bytes: u64,
    /// The body's announced length (`Content-Length`), when there is one.
    pub body_length: Option<u64>,
}

impl<'a> Progress<'a> {
    pub fn new(listener: &'a dyn Fn(&Snapshot)) -> Progress<'a> {
        Progress {
            snapshot: Cell::default(),
            listener,
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        self.snapshot.get()
    }

    fn update(&self, change: impl FnOnce(&mut Snapshot)) {
        let mut snapshot = self.snapshot.get();
        change(&mut snapshot);
        self.snapshot.set(snapshot);
        (self.listener)(&snapshot);
    }
}

pub fn send(request: &Request, resolver: &super::Resolver, deadline: &Deadline) -> Exchange {
    let started = Instant::now();
    let mut exchange = Exchange::default();
    if let Err(e) = exchange_into(request, resolver, deadline, &mut exchange) {
        exchange.error = Some(e);
    }
    exchange.elapsed = started.elapsed();
    exchange
}

fn exchange_into(
    request: &Request,
    resolver: &super::Resolver,
    deadline: &Deadline,
    exchange: &mut Exchange,
) -> Result<(), String> {
    let url = request.url;
    let (host, port) = match &request.proxy {
        Some((host, port)) => (host.as_str(), *port),
        None => (url.host.as_str(), url.port),
    };
    let tcp = connect(resolver, host, port, deadline)?;
    exchange.remote = tcp.peer_addr().ok();
    let progress = |change: &dyn Fn(&mut Snapshot)| {
        if let Some(progress) = request.progress {
            progress.update(change);
        }
    };
    progress(&|s| s.remote = exchange.remote);
    let mut tcp = DeadlineStream::new(tcp, *deadline);
    let io_error = |what: &str, e: io::Error| match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
            format!("{} while {what}", deadline.expired_message())
        }
        _ => format!("{what} failed: {e}"),
    };

    let mut stream: Box<dyn ReadWrite> = match (url.scheme, &request.tls) {
        (Scheme::Https, Some(config)) => {
            if request.proxy.is_some() {
                establish_tunnel(&mut tcp, url)
                    .map_err(|e| io_error("opening the proxy tunnel", e))?;
            }
            let name = super::tls::server_name(&url.host)?;
            let mut connection = ClientConnection::new(config.clone(), name)
                .map_err(|e| format!("TLS setup failed: {e}"))?;
            while connection.is_handshaking() {
                connection
                    .complete_io(&mut tcp)
                    .map_err(|e| io_error("TLS handshake", e))?;
            }
            Box::new(StreamOwned::new(connection, tcp))
        }
        (Scheme::Https, None) => return Err("https needs a TLS configuration".into()),
        (Scheme::Http, _) => Box::new(tcp),
    };

    let head = request_head(request);
    crate::debug!("request: {}", head.lines().next().unwrap_or(""));
    stream
        .write_all(head.as_bytes())
        .map_err(|e| io_error("sending the request", e))?;
    stream
        .flush()
        .map_err(|e| io_error("sending the request", e))?;

    let mut reader = BufReader::new(stream);
    let response = read_head(&mut reader).map_err(|e| io_error("reading the response", e))?;
    exchange.status = Some(response.status);
    crate::debug!("response status {}", response.status);
    let has_body = request.method != "HEAD" && !matches!(response.status, 204 | 304);
    progress(&|s| {
        s.status = Some(response.status);
        s.body_length = response
            .content_length
            .filter(|_| has_body && !response.chunked);
    });
    if !has_body {
        return Ok(());
    }
    let mut body = Counting {
        inner: body_reader(&mut reader, &response),
        bytes: 0,
        progress: request.progress,
    };
    match &request.body {
        BodySink::Discard => return Ok(()),
        BodySink::Drain => io::copy(&mut body, &mut io::sink()).map(drop),
        BodySink::Capture => (&mut body)
            .take(MAX_CAPTURED_BODY as u64)
            .read_to_end(&mut exchange.body)
            .map(drop),
        BodySink::File(path) => {
            let mut file =
                File::create(path).map_err(|e| format!("cannot write body to {path}: {e}"))?;
            io::copy(&mut body, &mut file).map(drop)
        }
    }
    .map_err(|e| io_error("reading the body", e))?;
    let complete =
        matches!(&request.body, BodySink::Capture) && body.bytes >= MAX_CAPTURED_BODY as u64;
    match response.content_length.filter(|_| !response.chunked) {
        Some(length) if body.bytes < length && !complete => Err(format!(
            "transfer closed with {} bytes remaining to read",
            length - body.bytes
        )),
        _ => Ok(()),
    }
}

/// Counts the body bytes read, into the progress too.
struct Counting<'a, R> {
    inner: R,
    bytes: u64,
    progress: Option<&'a Progress<'a>>,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        if let Some(progress) = self.progress.filter(|_| n > 0) {
            progress.update(|s| s.body_bytes = self.bytes);
        }
        Ok(n)
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

fn request_head(request: &Request) -> String {
    let url = request.url;
    // Through a plain-HTTP proxy the request line carries the absolute URL.
    let target = match (&request.proxy, url.scheme) {
        (Some(_), Scheme::Http) => format!("http://{}{}", url.host_header(), url.target),
        _ => url.target.clone(),
    };
    let mut head = format!(
        "{} {target} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {}\r\nAccept: */*\r\n",
        request.method,
        url.host_header(),
        request.user_agent
    );
    let credentials = request
        .basic_auth
        .map(str::to_string)
        .or_else(|| url.user_info.as_deref().map(percent_decode));
    if let Some(credentials) = credentials {
        head.push_str(&format!(
            "Authorization: Basic {}\r\n",
            base64(credentials.as_bytes())
        ));
    }
    for header in request.headers {
        head.push_str(header);
        head.push_str("\r\n");
    }
    head.push_str("Connection: close\r\n\r\n");
    head
}

fn establish_tunnel(tcp: &mut DeadlineStream, url: &Url) -> io::Result<()> {
    let authority = format!("{}:{}", url.bracketed_host(), url.port);
    write!(
        tcp,
        "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n"
    )?;
    // Read byte by byte so nothing of the TLS stream that follows is consumed.
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > MAX_HEAD_BYTES || tcp.read(&mut byte)? == 0 {
            return Err(io::Error::other(
                "proxy closed the connection during CONNECT",
            ));
        }
        head.push(byte[0]);
    }
    let status = parse_status_line(&String::from_utf8_lossy(&head))?;
    if status / 100 != 2 {
        return Err(io::Error::other(format!(
            "proxy refused CONNECT with status {status}"
        )));
    }
    Ok(())
}

struct ResponseHead {
    status: u16,
    content_length: Option<u64>,
    chunked: bool,
}

/// Reads status line and headers, skipping interim 1xx responses.
fn read_head(reader: &mut impl BufRead) -> io::Result<ResponseHead> {
    loop {
        let mut total = 0;
        let mut lines = Vec::new();
        loop {
            let mut line = Vec::new();
            let n = reader
                .by_ref()
                .take((MAX_HEAD_BYTES - total + 1) as u64)
                .read_until(b'\n', &mut line)?;
            total += n;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    if lines.is_empty() {
                        "the peer closed the connection without a response"
                    } else {
                        "the peer closed the connection in the headers"
                    },
                ));
            }
            if total > MAX_HEAD_BYTES {
                return Err(io::Error::other("response headers exceed 64 KiB"));
            }
            let line = String::from_utf8_lossy(&line).trim_end().to_string();
            if lines.is_empty() {
                // Judge the status line at once: a non-HTTP peer may never send a blank line,
                // or send one first.
                parse_status_line(&line)?;
            }
            if line.is_empty() {
                break;
            }
            lines.push(line);
        }
        let status = parse_status_line(&lines[0])?;
        if (100..200).contains(&status) {
            continue;
        }
        let mut head = ResponseHead {
            status,
            content_length: None,
            chunked: false,
        };
        for line in &lines[1..] {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                head.content_length = value.parse().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                head.chunked = value.to_ascii_lowercase().contains("chunked");
            }
        }
        return Ok(head);
    }
}

fn parse_status_line(line: &str) -> io::Result<u16> {
    let line = line.lines().next().unwrap_or("");
    let mut words = line.split_whitespace();
    match (
        words.next(),
        words.next().and_then(|c| c.parse::<u16>().ok()),
    ) {
        (Some(version), Some(code))
            if version.starts_with("HTTP/") && (100..1000).contains(&code) =>
        {
            Ok(code)
        }
        _ if line.trim().is_empty() => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not an HTTP response: a blank line where the status line belongs",
        )),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "not an HTTP response: `{}`",
                crate::outcome::one_line(&line.chars().take(60).collect::<String>())
            ),
        )),
    }
}

fn body_reader<'a, R: BufRead + 'a>(reader: &'a mut R, head: &ResponseHead) -> Box<dyn Read + 'a> {
    if head.chunked {
        Box::new(Chunked::new(reader))
    } else if let Some(length) = head.content_length {
        Box::new(reader.take(length))
    } else {
        Box::new(reader)
    }
}

/// `Transfer-Encoding: chunked` decoding (trailers are ignored).
struct Chunked<R> {
    inner: R,
    left_in_chunk: u64,
    /// A chunk's data has been read and its closing CRLF has not.
    after_chunk: bool,
    done: bool,
}

impl<R: BufRead> Chunked<R> {
    fn new(inner: R) -> Self {
        Chunked {
            inner,
            left_in_chunk: 0,
            after_chunk: false,
            done: false,
        }
    }

    fn line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        self.inner.by_ref().take(1024).read_line(&mut line)?;
        Ok(line)
    }
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left_in_chunk == 0 {
            if self.after_chunk {
                self.line()?;
            }
            let line = self.line()?;
            let size_text = line.trim().split(';').next().unwrap_or("");
            self.left_in_chunk = u64::from_str_radix(size_text, 16).map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidData, "malformed chunked body")
            })?;
            self.after_chunk = true;
            if self.left_in_chunk == 0 {
                self.done = true;
                return Ok(0);
            }
        }
        let want = buf.len().min(self.left_in_chunk as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "chunked body ended early",
            ));
        }
        self.left_in_chunk -= n as u64;
        Ok(n)
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("admin:s@cret", "YWRtaW46c0BjcmV0"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
        assert_eq!(percent_decode("s%40cret%zz"), "s@cret%zz");
    }

    #[test]
    fn head_parsing_skips_interim_responses_and_reads_framing() {
        let raw = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 503 Service Unavailable\r\ncontent-length: 12\r\nTransfer-Encoding: gzip, chunked\r\n\r\nbody";
        let head = read_head(&mut raw.as_bytes()).unwrap();
        assert_eq!(
            (head.status, head.content_length, head.chunked),
            (503, Some(12), true)
        );
    }

    #[test]
    fn non_http_and_oversized_heads_are_errors() {
        let err = read_head(&mut &b"SSH-2.0-OpenSSH_9.2\r\n\r\n"[..])
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .contains("not an HTTP response: `SSH-2.0-OpenSSH_9.2`"),
            "{err}"
        );
        let huge = format!(
            "HTTP/1.1 200 OK\r\nX: {}\r\n\r\n",
            "a".repeat(MAX_HEAD_BYTES)
        );
        let err = read_head(&mut huge.as_bytes()).err().unwrap();
        assert!(err.to_string().contains("exceed 64 KiB"), "{err}");
        let err = read_head(&mut &b""[..]).err().unwrap();
        assert!(err.to_string().contains("without a response"), "{err}");
        // A blank line where the status line should be (found by fuzzing: it was an index
        // out of bounds).
        for blank in ["\r\nHTTP/1.1 200 OK\r\n\r\n", "\t\n"] {
            let err = read_head(&mut blank.as_bytes()).err().unwrap();
            assert!(
                err.to_string()
                    .contains("a blank line where the status line belongs"),
                "{err}"
            );
        }
    }

    #[test]
    fn chunked_bodies_decode() {
        let mut raw = &b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\n\r\n"[..];
        let mut body = String::new();
        Chunked::new(&mut raw).read_to_string(&mut body).unwrap();
        assert_eq!(body, "Wikipedia");
    }

    proptest::proptest! {
        #![proptest_config(crate::fuzz::config())]

        /// A server's response: any bytes, and a status line followed by header-like text, read
        /// as the client reads it (head, then the body by its framing).
        #[test]
        fn fuzz_responses_never_panic(raw in crate::fuzz::bytes(), text in crate::fuzz::config_text()) {
            let framed = format!(
                "HTTP/1.1 200 OK\r\n{text}\r\nTransfer-Encoding: chunked\r\n\r\n{text}"
            );
            for input in [&raw[..], framed.as_bytes()] {
                let mut reader = input;
                if let Ok(head) = read_head(&mut reader) {
                    let _ = body_reader(&mut reader, &head).read_to_end(&mut Vec::new());
                }
            }
        }
    }
}
