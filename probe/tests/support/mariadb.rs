//! A private MariaDB server (Debian's mariadb-server) for the whole test binary: its own data
//! directory, a random loopback port and a Unix socket in a temp dir, real password users.

use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use test_support::{accepts_tcp, free_port, program, spawn_daemon, wait_ready};

/// A mysql_native_password user, for TCP and the Unix socket.
pub const USER: &str = "monitor";
pub const PASSWORD: &str = "s3cret pass";
/// A user whose plugin (ed25519) the probe does not speak.
pub const ED25519_USER: &str = "edward";

pub struct MariaDb {
    pub port: u16,
    pub socket: PathBuf,
}

pub fn mariadb() -> &'static MariaDb {
    static SERVER: OnceLock<MariaDb> = OnceLock::new();
    SERVER.get_or_init(start)
}

fn start() -> MariaDb {
    let dir = std::env::temp_dir().join(format!("healthcheck-mariadb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("data");
    // mariadbd refuses to run as root unless told to.
    // SAFETY: geteuid(2) takes no arguments and cannot fail.
    let as_root = unsafe { libc::geteuid() } == 0;
    let user_flag = as_root.then_some("--user=root");
    let install = Command::new(program("mariadb-install-db", "mariadb-server"))
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .args(user_flag)
        .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
        .stdout(Stdio::null())
        .output()
        .expect("run mariadb-install-db");
    assert!(
        install.status.success(),
        "mariadb-install-db failed: {}",
        String::from_utf8_lossy(&install.stderr)
    );
    let init = dir.join("init.sql");
    std::fs::write(
        &init,
        format!(
            "CREATE USER '{USER}'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('{PASSWORD}');\n\
             CREATE USER '{USER}'@'127.0.0.1' IDENTIFIED VIA mysql_native_password USING PASSWORD('{PASSWORD}');\n\
             INSTALL SONAME 'auth_ed25519';\n\
             CREATE USER '{ED25519_USER}'@'127.0.0.1' IDENTIFIED VIA ed25519 USING PASSWORD('{PASSWORD}');\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let socket = dir.join("mysqld.sock");
    let log = dir.join("error.log");
    let mut server = Command::new(program("mariadbd", "mariadb-server"));
    server
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--socket={}", socket.display()))
        .arg(format!("--port={port}"))
        .arg("--bind-address=127.0.0.1")
        .arg("--skip-name-resolve")
        .arg(format!("--pid-file={}", dir.join("mariadbd.pid").display()))
        .arg(format!("--log-error={}", log.display()))
        .arg(format!("--init-file={}", init.display()))
        .args(user_flag)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = spawn_daemon(server, &dir);
    wait_ready(
        &mut child,
        "mariadbd",
        &log,
        Duration::from_secs(60),
        || accepts_tcp(port) && UnixStream::connect(&socket).is_ok(),
    );
    MariaDb { port, socket }
}
