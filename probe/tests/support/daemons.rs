//! Real service daemons from Debian packages, each started unprivileged-style on a free
//! loopback port in its own temporary directory and killed on drop. A missing package is
//! installed through `scripts/ensure-packages`; if that fails the test fails, saying why.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use test_support::{
    accepts_tcp, ensure_packages, free_port, http_get_within, search_path, wait_ready,
};

use super::TempDir;

pub struct Daemon {
    child: Option<Child>,
    pub port: u16,
    pub dir: TempDir,
    name: &'static str,
}

impl Daemon {
    /// Starts `argv` (stdout and stderr to `DIR/NAME.log`) and waits up to 30 s until `ready`
    /// says so of its port.
    fn start(
        name: &'static str,
        dir: TempDir,
        port: u16,
        argv: &[String],
        ready: impl Fn(u16) -> bool,
    ) -> Daemon {
        let log = dir.path(&format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(&argv[0])
            .args(&argv[1..])
            .current_dir(&dir.0)
            .env("PATH", search_path())
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({}): {e}", argv[0]));
        // Owned by the Daemon before the wait, so that a daemon which never gets ready is
        // stopped by the panic's unwinding.
        let mut daemon = Daemon {
            child: Some(child),
            port,
            dir,
            name,
        };
        let child = daemon.child.as_mut().unwrap();
        wait_ready(child, name, &log, Duration::from_secs(30), || ready(port));
        daemon
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path(&format!("{}.log", self.name))).unwrap_or_default()
    }

    /// Stops the daemon now (for "stopped daemon" outcomes); drop does the same. SIGTERM
    /// first, so a daemon with workers (apache2) takes them down, then SIGKILL after 5 s.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: signalling our own child, which has not been reaped yet.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

fn args(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// redis-server on 127.0.0.1 and ::1, with `requirepass` when a password is given.
pub fn redis(password: Option<&str>) -> Daemon {
    ensure_packages(&["redis-server=redis-server"]);
    let dir = TempDir::new("redis");
    let port = free_port();
    let mut argv = args(&[
        "redis-server",
        "--bind",
        "127.0.0.1",
        "::1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]);
    argv.extend(args(&[
        "--port",
        &port.to_string(),
        "--dir",
        &dir.0.to_string_lossy(),
    ]));
    if let Some(password) = password {
        argv.extend(args(&["--requirepass", password]));
    }
    Daemon::start("redis", dir, port, &argv, accepts_tcp)
}

/// memcached on 127.0.0.1 (TCP only).
pub fn memcached() -> Daemon {
    ensure_packages(&["memcached=memcached"]);
    let dir = TempDir::new("memcached");
    let port = free_port();
    let argv = args(&[
        "memcached",
        "-l",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-U",
        "0",
        "-u",
        "nobody",
    ]);
    Daemon::start("memcached", dir, port, &argv, accepts_tcp)
}

/// ovsdb-server with a fresh Open_vSwitch database, on TCP and on the given Unix socket paths.
pub fn ovsdb_server(sockets: &[PathBuf]) -> Daemon {
    ensure_packages(&["ovsdb-server=openvswitch-switch"]);
    let dir = TempDir::new("ovsdb");
    let db = dir.path("conf.db");
    let schema = "/usr/share/openvswitch/vswitch.ovsschema";
    let status = Command::new("ovsdb-tool")
        .env("PATH", search_path())
        .args(["create", &db.to_string_lossy(), schema])
        .status()
        .expect("run ovsdb-tool");
    assert!(status.success(), "ovsdb-tool create failed");
    let port = free_port();
    let mut argv = args(&["ovsdb-server", &db.to_string_lossy()]);
    argv.push(format!("--remote=ptcp:{port}:127.0.0.1"));
    for socket in sockets {
        std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
        argv.push(format!("--remote=punix:{}", socket.display()));
    }
    argv.push(format!("--unixctl={}", dir.path("ovsdb.ctl").display()));
    argv.push(format!("--pidfile={}", dir.path("ovsdb.pid").display()));
    let sockets = sockets.to_vec();
    Daemon::start("ovsdb-server", dir, port, &argv, move |port| {
        accepts_tcp(port) && sockets.iter().all(|s| s.exists())
    })
}

/// apache2 from a generated minimal configuration serving `DIR/www` (where the caller puts
/// files with [`Daemon::serve_page`]) on 127.0.0.1:PORT; over TLS (mod_ssl, a self-signed
/// certificate) when `tls` is set.
pub fn apache(tls: bool) -> Daemon {
    ensure_packages(&["apache2=apache2"]);
    let dir = TempDir::new("apache");
    let port = free_port();
    let www = dir.path("www");
    std::fs::create_dir_all(&www).unwrap();
    let modules = "/usr/lib/apache2/modules";
    // SAFETY: geteuid(2) takes no arguments and cannot fail.
    let root_user = if unsafe { libc::geteuid() } == 0 {
        "User nobody\nGroup nogroup\n"
    } else {
        ""
    };
    let ssl = if tls {
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        std::fs::write(dir.path("cert.pem"), certified.cert.pem()).unwrap();
        std::fs::write(dir.path("key.pem"), certified.signing_key.serialize_pem()).unwrap();
        format!(
            "  SSLEngine on\n  SSLCertificateFile {dir}/cert.pem\n  SSLCertificateKeyFile {dir}/key.pem\n",
            dir = dir.0.display()
        )
    } else {
        String::new()
    };
    let ssl_modules = if tls {
        format!(
            "LoadModule socache_shmcb_module {modules}/mod_socache_shmcb.so\n\
             LoadModule ssl_module {modules}/mod_ssl.so\n"
        )
    } else {
        String::new()
    };
    let config = format!(
        "ServerRoot {dir}\nDefaultRuntimeDir {dir}\nPidFile {dir}/apache.pid\nErrorLog {dir}/error.log\n\
         LoadModule mpm_event_module {modules}/mod_mpm_event.so\n\
         LoadModule authz_core_module {modules}/mod_authz_core.so\n\
         LoadModule dir_module {modules}/mod_dir.so\n{ssl_modules}\
         {root_user}Listen 127.0.0.1:{port}\nServerName 127.0.0.1\n\
         <VirtualHost 127.0.0.1:{port}>\n  DocumentRoot {www}\n  DirectoryIndex index.html\n{ssl}\
           <Directory {www}>\n    Require all granted\n  </Directory>\n</VirtualHost>\n",
        dir = dir.0.display(),
        www = www.display(),
    );
    let conf = dir.path("httpd.conf");
    std::fs::write(&conf, config).unwrap();
    // Readable by the unprivileged worker user.
    let _ = Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(&dir.0)
        .status();
    let argv = args(&["apache2", "-f", &conf.to_string_lossy(), "-DFOREGROUND"]);
    Daemon::start("apache2", dir, port, &argv, accepts_tcp)
}

impl Daemon {
    /// Puts `index.html` under `path` of the apache document root.
    pub fn serve_page(&self, path: &str) {
        let dir = self.dir.path("www").join(path.trim_matches('/'));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("index.html"), "ok\n").unwrap();
        let _ = Command::new("chmod")
            .args(["-R", "a+rX"])
            .arg(&self.dir.0)
            .status();
    }
}

/// A single-member etcd on 127.0.0.1.
pub fn etcd() -> Daemon {
    ensure_packages(&["etcd=etcd-server"]);
    let dir = TempDir::new("etcd");
    let port = free_port();
    let peer = free_port();
    let client = format!("http://127.0.0.1:{port}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let argv = args(&[
        "etcd",
        "--name",
        "default",
        "--data-dir",
        &dir.path("data").to_string_lossy(),
        "--listen-client-urls",
        &client,
        "--advertise-client-urls",
        &client,
        "--listen-peer-urls",
        &peer_url,
        "--initial-advertise-peer-urls",
        &peer_url,
        "--initial-cluster",
        &format!("default={peer_url}"),
    ]);
    Daemon::start("etcd", dir, port, &argv, |port| {
        // Ready once a leader is elected: /health says true.
        let health = http_get_within(
            SocketAddr::from(([127, 0, 0, 1], port)),
            "/health",
            Duration::from_secs(2),
        );
        health.is_ok_and(|(_, body)| body.contains("\"true\""))
    })
}

/// collectd with only the unixsock plugin, its socket at `socket`.
pub fn collectd(socket: &Path) -> Daemon {
    ensure_packages(&["collectd=collectd-core"]);
    let dir = TempDir::new("collectd");
    std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
    let config = format!(
        "Hostname \"test\"\nBaseDir \"{dir}\"\nPIDFile \"{dir}/collectd.pid\"\nInterval 10\n\
         LoadPlugin unixsock\n<Plugin unixsock>\n  SocketFile \"{socket}\"\n</Plugin>\n",
        dir = dir.0.display(),
        socket = socket.display()
    );
    let conf = dir.path("collectd.conf");
    std::fs::write(&conf, config).unwrap();
    let argv = args(&["collectd", "-f", "-C", &conf.to_string_lossy()]);
    let socket = socket.to_path_buf();
    Daemon::start("collectd", dir, 0, &argv, move |_| socket.exists())
}
