//! The HTTP-API profiles against Debian's real OpenStack services (Zed), installed from the
//! packages and started as their own init scripts start them (`/etc/init.d/NAME show-args`),
//! on a free loopback port, with their stock configuration: sqlite through oslo.config's
//! `OS_<SECTION>__<KEY>` variables, and a copy of keystone's uWSGI ini without its apparmor
//! plugin (this kernel refuses it). The profiles read a configuration tree holding the stock
//! files with only the port changed. All services start once for this test binary.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use support::{TempDir, binary, run_as};
use test_support::{ensure_packages, free_port, spawn_daemon, wait_ready};

struct Service {
    name: &'static str,
    /// A command its package installs (to install the package when it is missing).
    command: &'static str,
    package: &'static str,
    /// `*-manage` steps the API needs before it answers `GET /`.
    setup: &'static [&'static [&'static str]],
    /// oslo.config overrides of its own, beyond [`oslo_env`].
    env: &'static [(&'static str, &'static str)],
}

/// neutron's migrations cannot run on sqlite (`No support for ALTER of constraints in SQLite
/// dialect`): its schema is created from its models instead, with the system's Python, which
/// has the package's modules.
const NEUTRON_SCHEMA: &str = "import os, sqlalchemy
from neutron.db.migration.models import head
head.get_metadata().create_all(sqlalchemy.create_engine(os.environ['OS_DATABASE__CONNECTION']))";

const SERVICES: &[Service] = &[
    Service {
        name: "keystone",
        command: "keystone-wsgi-public",
        package: "keystone",
        setup: &[
            &[
                "keystone-manage",
                "fernet_setup",
                "--keystone-user",
                "root",
                "--keystone-group",
                "root",
            ],
            &[
                "keystone-manage",
                "credential_setup",
                "--keystone-user",
                "root",
                "--keystone-group",
                "root",
            ],
        ],
        env: &[],
    },
    Service {
        name: "placement-api",
        command: "placement-api",
        package: "placement-api",
        setup: &[&["placement-manage", "db", "sync"]],
        env: &[],
    },
    Service {
        name: "heat-api",
        command: "heat-wsgi-api",
        package: "heat-api",
        setup: &[],
        env: &[],
    },
    Service {
        name: "glance-api",
        command: "glance-api",
        package: "glance-api",
        setup: &[],
        env: &[],
    },
    Service {
        name: "nova-api",
        command: "nova-api",
        package: "nova-api",
        // The API database, cell0's mapping (the application loads the cell mappings) and the
        // main database.
        setup: &[
            &["nova-manage", "api_db", "sync"],
            &["nova-manage", "cell_v2", "map_cell0"],
            &["nova-manage", "db", "sync"],
        ],
        env: &[],
    },
    Service {
        name: "neutron-api",
        command: "neutron-api",
        package: "neutron-api",
        setup: &[&["/usr/bin/python3", "-c", NEUTRON_SCHEMA]],
        // No nova to tell about ports (its client would need a keystone).
        env: &[
            ("OS_DEFAULT__NOTIFY_NOVA_ON_PORT_STATUS_CHANGES", "false"),
            ("OS_DEFAULT__NOTIFY_NOVA_ON_PORT_DATA_CHANGES", "false"),
        ],
    },
];

struct Running {
    name: &'static str,
    child: Child,
    port: u16,
    /// The configuration tree the profile reads.
    tree: TempDir,
}

/// oslo.config overrides pointing the stock configuration at the service's own directory.
fn oslo_env(dir: &Path) -> Vec<(String, String)> {
    let d = dir.display();
    [
        (
            "OS_DATABASE__CONNECTION",
            format!("sqlite:///{d}/db.sqlite"),
        ),
        (
            "OS_API_DATABASE__CONNECTION",
            format!("sqlite:///{d}/api.sqlite"),
        ),
        (
            "OS_PLACEMENT_DATABASE__CONNECTION",
            format!("sqlite:///{d}/db.sqlite"),
        ),
        (
            "OS_FERNET_TOKENS__KEY_REPOSITORY",
            format!("{d}/fernet-keys"),
        ),
        (
            "OS_CREDENTIAL__KEY_REPOSITORY",
            format!("{d}/credential-keys"),
        ),
    ]
    .map(|(k, v)| (k.to_string(), v))
    .to_vec()
}

fn copy_into(tree: &TempDir, path: &str, text: &str) {
    let host = tree.path(path.trim_start_matches('/'));
    std::fs::create_dir_all(host.parent().unwrap()).unwrap();
    std::fs::write(host, text).unwrap();
}

fn start(service: &Service) -> Running {
    ensure_packages(&[&format!("{}={}", service.command, service.package)]);
    let dir = std::env::temp_dir().join(format!(
        "healthcheck-debian-{}-{}",
        service.name,
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    for sub in ["fernet-keys", "credential-keys"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let mut env = oslo_env(&dir);
    env.extend(
        service
            .env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    for step in service.setup {
        let output = Command::new(step[0])
            .args(&step[1..])
            .envs(env.iter().cloned())
            .output()
            .unwrap_or_else(|e| panic!("{}: cannot run {step:?}: {e}", service.name));
        assert!(
            output.status.success(),
            "{}: {step:?}: {output:?}",
            service.name
        );
    }
    let port = free_port();
    let tree = TempDir::new(service.name);
    let init = format!("/etc/init.d/{}", service.name);
    let script = std::fs::read_to_string(&init).unwrap();
    let show_args = Command::new("sh")
        .args([&init, "show-args"])
        .output()
        .unwrap();
    let shown = String::from_utf8(show_args.stdout).unwrap();
    let line = shown.lines().last().unwrap_or("");
    // The application's own arguments come last, as one quoted word (neutron's config files).
    let (line, pyargv) = match line.split_once(" --pyargv ") {
        Some((head, quoted)) => (head, Some(quoted.trim().trim_matches('"'))),
        None => (line, None),
    };
    let args: Vec<&str> = line.split_whitespace().collect();
    let mut command;
    if service.name == "glance-api" {
        // Eventlet: glance-api.conf's bind options; the init script (uWSGI commented out)
        // is in the tree too, to be passed over.
        let conf = std::fs::read_to_string("/etc/glance/glance-api.conf").unwrap();
        let conf = conf.replacen(
            "[DEFAULT]\n",
            &format!("[DEFAULT]\nbind_host = 127.0.0.1\nbind_port = {port}\nworkers = 1\n"),
            1,
        );
        let copy = dir.join("glance-api.conf");
        std::fs::write(&copy, &conf).unwrap();
        copy_into(&tree, "/etc/glance/glance-api.conf", &conf);
        copy_into(&tree, &init, &script);
        command = Command::new("glance-api");
        command.arg(format!("--config-file={}", copy.display()));
    } else {
        // uWSGI: the init script's own command line, on loopback, with a copy of its ini
        // that runs one worker as this user and logs into the service's directory.
        let ini_at = args.iter().position(|a| *a == "--ini").expect("--ini");
        let ini = std::fs::read_to_string(args[ini_at + 1]).unwrap();
        let dropped = [
            "uid",
            "gid",
            "logto",
            "chdir",
            "apparmor-profile",
            "processes",
            "threads",
            "plugins",
        ];
        let mut copy: String = ini
            .lines()
            .filter(|l| !dropped.contains(&l.split('=').next().unwrap_or("").trim()))
            .map(|l| format!("{l}\n"))
            .collect();
        copy.push_str(&format!(
            "plugins = python3\nprocesses = 1\nthreads = 2\nchdir = {d}\nlogto = {d}/uwsgi.log\n",
            d = dir.display()
        ));
        let ini_copy = dir.join("uwsgi.ini");
        std::fs::write(&ini_copy, copy).unwrap();
        command = Command::new(args[0]);
        command.args(["--http-socket", &format!("127.0.0.1:{port}"), "--ini"]);
        command.arg(&ini_copy);
        if let Some(pyargv) = pyargv {
            command.args(["--pyargv", pyargv]);
        }
        let port_line = script
            .lines()
            .find(|l| l.starts_with("UWSGI_PORT="))
            .expect("UWSGI_PORT in the init script");
        copy_into(
            &tree,
            &init,
            &script.replacen(port_line, &format!("UWSGI_PORT={port}"), 1),
        );
    }
    let log = dir.join("service.log");
    let file = std::fs::File::create(&log).unwrap();
    command
        .envs(env)
        .current_dir(&dir)
        .stdout(file.try_clone().unwrap())
        .stderr(file);
    let mut child = spawn_daemon(command, &dir);
    let uwsgi_log = dir.join("uwsgi.log");
    let shown = if uwsgi_log.exists() || service.name != "glance-api" {
        uwsgi_log
    } else {
        log
    };
    wait_ready(
        &mut child,
        service.name,
        &shown,
        Duration::from_secs(240),
        || matches!(get_status(port), Some(s) if s < 400),
    );
    Running {
        name: service.name,
        child,
        port,
        tree,
    }
}

/// The status of `GET /`, or `None` when nothing answers. Only the status line is read: with
/// readiness from whole answers (test-support's `http_get`) the frozen check below was flaky,
/// a service answering right after SIGSTOP, before [`freeze`] waited for every process of the
/// group to be stopped.
fn get_status(port: u16) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

fn profile(service: &Running) -> support::Run {
    let root: PathBuf = service.tree.0.clone();
    run_as(
        binary(),
        &["profile", service.name],
        &[
            ("HEALTHCHECK_CONFIG_ROOT", root.to_str().unwrap()),
            ("HEALTHCHECK_CURL_MAX_TIME", "3"),
        ],
    )
}

fn signal(service: &Running, signal: i32) {
    // SAFETY: signalling the process group this test started for the service.
    let rc = unsafe { libc::kill(-(service.child.id() as i32), signal) };
    assert_eq!(rc, 0);
}

/// The state letter (`S`, `T`, …) of each process in the service's process group.
fn group_states(service: &Running) -> Vec<(u32, char)> {
    let group = service.child.id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| {
            let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `PID (COMM) STATE PPID PGRP …`: COMM may hold spaces, so split after its `)`.
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            let state = fields.first()?.chars().next()?;
            (fields.get(2) == Some(&group.as_str())).then_some((pid, state))
        })
        .collect()
}

/// SIGSTOP, until every process of the group is stopped: the signal takes effect as each
/// thread next runs, and a process forked meanwhile (a worker respawned by its master) is not
/// stopped by it.
fn freeze(service: &Running) {
    for _ in 0..100 {
        signal(service, libc::SIGSTOP);
        let states = group_states(service);
        if states.iter().all(|(_, state)| *state == 'T') {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{}: not every process stopped: {:?}",
        service.name,
        group_states(service)
    );
}

#[test]
fn http_api_profiles_on_debians_stock_services() {
    // Started side by side: their Python start-ups dominate this binary's time.
    let started: Vec<Running> = std::thread::scope(|scope| {
        let handles: Vec<_> = SERVICES
            .iter()
            .map(|s| scope.spawn(move || start(s)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for service in &started {
        let name = service.name;
        let port = service.port;
        let source = if name == "glance-api" {
            "/etc/glance/glance-api.conf".to_string()
        } else {
            format!("/etc/init.d/{name}")
        };
        let line = profile(service).healthy().to_string();
        assert!(
            line.starts_with(&format!("healthy: {name}: GET http://127.0.0.1:{port}/: "))
                && line.ends_with(&format!("(address from {source})")),
            "{line}"
        );
        // Frozen: the request times out, and the line says where the address came from.
        freeze(service);
        let run = profile(service);
        let frozen = group_states(service);
        signal(service, libc::SIGCONT);
        assert_eq!(
            run.code, 1,
            "{name} answered with its process group {frozen:?} stopped: {run:?}"
        );
        let line = run.unhealthy().to_string();
        // Either the request's own timeout (which names the URL and its file) or, when the
        // deadline's timer finishes first, `NAME: GET URL timed out after 3s`.
        let request = format!("unhealthy: {name}: GET http://127.0.0.1:{port}/");
        assert!(
            line.starts_with(&request)
                && line.contains("timed out")
                && (line.contains(&format!("(address from {source}"))
                    || line.ends_with("timed out after 3s")),
            "{line}"
        );
        // Thawed, it answers again (once it has dealt with what queued up meanwhile).
        let thawed = (0..20).any(|_| {
            std::thread::sleep(Duration::from_millis(250));
            profile(service).code == 0
        });
        assert!(
            thawed,
            "{name} not healthy after SIGCONT: {:?}",
            profile(service)
        );
    }
    for mut service in started {
        signal(&service, libc::SIGKILL);
        let _ = service.child.wait();
        // Stopped: refused, once the killed workers' sockets are gone (a reset before).
        let refused = format!("127.0.0.1:{}: connection refused", service.port);
        let stopped = (0..20).any(|_| {
            let run = profile(&service);
            std::thread::sleep(Duration::from_millis(250));
            run.code == 1 && run.stdout.contains(&refused)
        });
        assert!(stopped, "{}: {:?}", service.name, profile(&service));
    }
}
