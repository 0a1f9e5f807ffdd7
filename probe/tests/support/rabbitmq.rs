//! A private RabbitMQ broker (Debian's rabbitmq-server) for the whole test binary: its own
//! node name, Mnesia and log directories, Erlang cookie, epmd, AMQP and distribution ports.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use test_support::{accepts_tcp, free_port, program, spawn_daemon, wait_ready};

/// The default user, which RabbitMQ lets in over loopback only.
pub const USER: &str = "guest";
pub const PASSWORD: &str = "guest";
/// A user created with rabbitmqctl, allowed on [`VHOST`] only.
pub const APP_USER: &str = "openstack";
pub const APP_PASSWORD: &str = "app pass";
pub const VHOST: &str = "/openstack";

pub struct RabbitMq {
    pub port: u16,
}

pub fn rabbitmq() -> &'static RabbitMq {
    static BROKER: OnceLock<RabbitMq> = OnceLock::new();
    BROKER.get_or_init(start)
}

/// A program of rabbitmq-server, from RabbitMQ's own directory when it has one: the /usr/sbin
/// wrappers switch to the rabbitmq user, who cannot write the test's directories.
fn rabbitmq_program(name: &str) -> PathBuf {
    let found = program(name, "rabbitmq-server");
    let own = Path::new("/usr/lib/rabbitmq/bin").join(name);
    if own.is_file() { own } else { found }
}

fn start() -> RabbitMq {
    let dir = std::env::temp_dir().join(format!("healthcheck-rabbitmq-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let cookie = home.join(".erlang.cookie");
    std::fs::write(&cookie, format!("HEALTHCHECKTEST{}", std::process::id())).unwrap();
    std::fs::set_permissions(&cookie, std::fs::Permissions::from_mode(0o400)).unwrap();
    let plugins = dir.join("enabled_plugins");
    std::fs::write(&plugins, "[].\n").unwrap();
    let (port, dist_port, epmd_port) = (free_port(), free_port(), free_port());
    let node = format!("healthcheck-test-{}@localhost", std::process::id());
    let log = dir.join("server.log");
    // What the broker and rabbitmqctl share: the node, its cookie and its epmd.
    let node_env = [
        ("HOME", home.into_os_string()),
        ("ERL_EPMD_PORT", epmd_port.to_string().into()),
        ("RABBITMQ_NODENAME", node.into()),
    ];
    // A private epmd in the broker's process group, so nothing outlives the tests.
    let mut broker = Command::new("sh");
    broker
        .arg("-c")
        .arg(r#"epmd -port "$ERL_EPMD_PORT" & exec "$0""#)
        .arg(rabbitmq_program("rabbitmq-server"))
        .envs(node_env.iter().cloned())
        .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
        .env("RABBITMQ_NODE_PORT", port.to_string())
        .env("RABBITMQ_DIST_PORT", dist_port.to_string())
        .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
        .env("RABBITMQ_LOG_BASE", dir.join("log"))
        .env("RABBITMQ_PID_FILE", dir.join("rabbitmq.pid"))
        .env("RABBITMQ_ENABLED_PLUGINS_FILE", &plugins)
        .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq"))
        .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("server.err")).unwrap(),
        ));
    let mut child = spawn_daemon(broker, &dir);
    wait_ready(
        &mut child,
        "rabbitmq-server",
        &log,
        Duration::from_secs(90),
        || accepts_tcp(port),
    );
    let ctl = rabbitmq_program("rabbitmqctl");
    for args in [
        &["add_user", APP_USER, APP_PASSWORD][..],
        &["add_vhost", VHOST],
        &["set_permissions", "-p", VHOST, APP_USER, ".*", ".*", ".*"],
    ] {
        let output = Command::new(&ctl)
            .args(args)
            .envs(node_env.iter().cloned())
            .output()
            .expect("run rabbitmqctl");
        assert!(
            output.status.success(),
            "rabbitmqctl {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    RabbitMq { port }
}
