//! Real peers for the probe's tests: HTTP(S) servers and other fake peers with scripted
//! behaviour on loopback, processes holding real sockets, real daemons ([`daemons`] per test,
//! [`mariadb`] and [`rabbitmq`] per test binary), and a runner for the statically linked binary.

#![allow(dead_code)] // Each test file uses a different part of this module.

pub mod daemons;
pub mod mariadb;
pub mod rabbitmq;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// The binary under test: `HEALTHCHECK_BIN` if set, else the static build of `scripts/build-probe`,
/// so the tests exercise the artifact images ship.
pub fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        if let Some(path) = std::env::var_os("HEALTHCHECK_BIN") {
            return PathBuf::from(path);
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/build-probe");
        let output = Command::new("bash")
            .arg(&script)
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/build-probe");
        assert!(output.status.success(), "scripts/build-probe failed");
        PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
    })
}

#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    /// The one stdout line (asserting there is exactly one, at most 1 KiB).
    pub fn line(&self) -> &str {
        let lines: Vec<_> = self.stdout.lines().collect();
        assert_eq!(lines.len(), 1, "expected exactly one stdout line: {self:?}");
        assert!(self.stdout.len() <= 1025, "stdout over 1 KiB: {self:?}");
        lines[0]
    }

    pub fn healthy(&self) -> &str {
        assert_eq!(self.code, 0, "expected healthy: {self:?}");
        let line = self.line();
        assert!(line.starts_with("healthy: "), "{line}");
        line
    }

    /// Asserts the run ended within its deadline plus the 100 ms the contract allows. The
    /// measurement also contains spawning the process, which the deadline does not cover and
    /// which a loaded machine can stretch, so that gets 150 ms of its own.
    pub fn assert_within(&self, deadline: Duration) {
        let limit = deadline + Duration::from_millis(100 + 150);
        assert!(
            self.elapsed < limit,
            "took {:?}, more than {limit:?}: {self:?}",
            self.elapsed
        );
    }

    pub fn unhealthy(&self) -> &str {
        assert_eq!(self.code, 1, "expected unhealthy: {self:?}");
        let line = self.line();
        assert!(line.starts_with("unhealthy: "), "{line}");
        line
    }
}

/// Runs the binary (optionally under another name) with a clean environment plus `env`.
pub fn run_as(program: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let started = Instant::now();
    let output = Command::new(program)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run healthcheck");
    let code = output
        .status
        .code()
        .expect("healthcheck was killed by a signal");
    assert!(
        code == 0 || code == 1,
        "exit code {code} is neither 0 nor 1: {output:?}"
    );
    Run {
        code,
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
        elapsed: started.elapsed(),
    }
}

pub fn run(args: &[&str]) -> Run {
    run_as(binary(), args, &[])
}

/// How a test server answers each connection.
#[derive(Clone)]
pub enum Behaviour {
    /// A complete response with this status and body.
    Respond { status: u16, body: String },
    /// Accept and never send a byte.
    Hang,
    /// Send the status line one byte every 200 ms.
    Trickle,
    /// Send a complete head announcing a 1000-byte body, then the body one byte every 200 ms.
    TrickleBody,
    /// Read the request, then close without a byte of response (curl's "Empty reply").
    CloseAfterRequest,
    /// A 200 whose body is 1 GB (streamed until the client goes away).
    Huge,
    /// Close the connection at once, with a reset.
    Reset,
    /// Something that is not HTTP.
    Garbage,
    /// A blank line where the status line belongs, then a well-formed 200.
    BlankLineFirst,
    /// An HTTP/1.1 status line whose code is not a number.
    BadStatusCode,
}

/// An HTTP server on loopback that records each request head it receives.
pub struct HttpServer {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl HttpServer {
    pub fn start(bind: &str, behaviour: Behaviour) -> HttpServer {
        Self::start_with_tls(bind, behaviour, None)
    }

    pub fn start_with_tls(
        bind: &str,
        behaviour: Behaviour,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> HttpServer {
        let listener = TcpListener::bind(bind).expect("bind test server");
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (behaviour, recorded, tls) = (behaviour.clone(), recorded.clone(), tls.clone());
                thread::spawn(move || match tls {
                    Some(config) => {
                        let connection = rustls::ServerConnection::new(config).unwrap();
                        serve(
                            rustls::StreamOwned::new(connection, stream),
                            &behaviour,
                            &recorded,
                        );
                    }
                    None => {
                        if let Behaviour::Reset = behaviour {
                            let _ = socket_reset(&stream);
                            return;
                        }
                        serve(stream, &behaviour, &recorded)
                    }
                });
            }
        });
        HttpServer { addr, requests }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

fn socket_reset(stream: &TcpStream) -> std::io::Result<()> {
    // SO_LINGER 0 makes close() send RST instead of FIN.
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    let fd = std::os::fd::AsRawFd::as_raw_fd(stream);
    // SAFETY: setsockopt with a correctly sized linger struct on an open socket.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as u32,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn serve<S: Read + Write>(mut stream: S, behaviour: &Behaviour, recorded: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(&mut stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    recorded.lock().unwrap().push(head);
    match behaviour {
        Behaviour::Respond { status, body } => {
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.flush();
        }
        Behaviour::Hang => thread::sleep(Duration::from_secs(60)),
        Behaviour::Trickle => {
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: yes\r\n"
                .iter()
                .cycle()
                .take(300)
            {
                if stream
                    .write_all(&[*byte])
                    .and_then(|_| stream.flush())
                    .is_err()
                {
                    return;
                }
                thread::sleep(Duration::from_millis(200));
            }
        }
        Behaviour::TrickleBody => {
            let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
            for _ in 0..1000 {
                if stream.write_all(b"x").and_then(|_| stream.flush()).is_err() {
                    return;
                }
                thread::sleep(Duration::from_millis(200));
            }
        }
        Behaviour::CloseAfterRequest => {}
        Behaviour::Huge => {
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n"
            );
            let chunk = vec![b'x'; 64 * 1024];
            for _ in 0..(1_000_000_000 / chunk.len()) {
                if stream.write_all(&chunk).is_err() {
                    return;
                }
            }
        }
        Behaviour::Reset => {}
        Behaviour::Garbage => {
            let _ = stream.write_all(b"SSH-2.0-OpenSSH_9.2\r\n");
        }
        Behaviour::BlankLineFirst => {
            let _ = stream.write_all(b"\r\nHTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        }
        Behaviour::BadStatusCode => {
            let _ = stream.write_all(b"HTTP/1.1 abc OK\r\ncontent-length: 0\r\n\r\n");
        }
    }
}

/// What a fake peer does after its opening bytes.
#[derive(Clone, Copy)]
pub enum Then {
    Close,
    Hang,
}

/// A loopback TCP server that, on every connection, plays `replies`: for each, reads what the
/// client sent (waiting up to 200 ms), then sends the reply; then closes or hangs. Returns its
/// port.
pub fn fake_peer(replies: &[&[u8]], then: Then) -> u16 {
    let replies: Arc<Vec<Vec<u8>>> = Arc::new(replies.iter().map(|r| r.to_vec()).collect());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let replies = replies.clone();
            thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
                for reply in replies.iter() {
                    // Reading the client's message first also makes a close a clean FIN.
                    let _ = stream.read(&mut [0u8; 4096]);
                    let _ = stream.write_all(reply);
                }
                if let Then::Hang = then {
                    // Keep reading so the client's writes never block, and never answer.
                    let _ = stream.set_read_timeout(None);
                    let mut sink = [0u8; 1024];
                    while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
                }
            });
        }
    });
    port
}

/// A CA and a `localhost`/127.0.0.1/::1 server certificate it signed.
pub struct TestPki {
    pub ca_pem: String,
    pub server: Arc<rustls::ServerConfig>,
}

pub fn test_pki() -> TestPki {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_params =
        CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into(), "::1".into()]).unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone(), ca.der().clone()], key)
        .unwrap();
    TestPki {
        ca_pem: ca.pem(),
        server: Arc::new(server),
    }
}

/// A real process (python3) holding sockets, with a unique marker in its command line.
/// Specs: `tcp-listen:HOST` (any port), `tcp-listen-port:HOST:PORT`, `tcp-connect:HOST:PORT`,
/// `udp-bind:HOST`, `unix-listen:PATH`.
/// The ports it bound are reported back in [`SocketHolder::ports`].
pub struct SocketHolder {
    child: Child,
    pub marker: String,
    pub ports: Vec<u16>,
}

const HOLDER_SCRIPT: &str = r#"
import socket, sys, time
held, ports = [], []
for spec in sys.argv[2:]:
    kind, _, where = spec.partition(":")
    if kind == "tcp-listen-port":
        host, _, port = where.rpartition(":")
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((host, int(port))); s.listen(); ports.append(int(port))
    elif kind == "tcp-listen":
        family = socket.AF_INET6 if ":" in where else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM); s.bind((where, 0)); s.listen(); ports.append(s.getsockname()[1])
    elif kind == "tcp-connect":
        host, _, port = where.rpartition(":")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM); s.connect((host.strip("[]"), int(port))); ports.append(s.getsockname()[1])
    elif kind == "udp-bind":
        family = socket.AF_INET6 if ":" in where else socket.AF_INET
        s = socket.socket(family, socket.SOCK_DGRAM); s.bind((where, 0)); ports.append(s.getsockname()[1])
    elif kind == "unix-listen":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.bind(where); s.listen(); ports.append(0)
    held.append(s)
print("ready", *ports, flush=True)
time.sleep(600)
"#;

impl SocketHolder {
    pub fn start(specs: &[&str]) -> SocketHolder {
        Self::start_as("holder", specs)
    }

    /// A holder whose command line contains `name` (e.g. `nova-compute`), for checks that
    /// look for a service's process by name.
    pub fn start_as(name: &str, specs: &[&str]) -> SocketHolder {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let marker = format!(
            "{name}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(HOLDER_SCRIPT)
            .arg(&marker)
            .args(specs)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 is needed to hold test sockets");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let mut words = line.split_whitespace();
        assert_eq!(words.next(), Some("ready"), "socket holder failed: {line}");
        let ports = words.map(|p| p.parse().unwrap()).collect();
        SocketHolder {
            child,
            marker,
            ports,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for SocketHolder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!(
            "healthcheck-test-{}-{name}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
