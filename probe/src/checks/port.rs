//! A matching process owns an inet socket on one of the ports (`port`: local or remote port,
//! any state; `listen`: a listening TCP socket or a bound UDP socket).
//!
//! Socket inodes come from `/proc/PID/fd` and are compared exactly with the inode column of
//! the process's own network namespace tables, never by text: inode 0 (TIME_WAIT) never
//! matches, and `1234` never matches `51234`.

use std::collections::{HashMap, HashSet};
use std::io;

use healthcheck_spec::ProcessPorts;

use super::{Context, processes_matching, unreadable_note};
use crate::Outcome;
use crate::procfs::by_namespace;
use crate::sockets::PortFilter;
use crate::sockets::{InetSocket, TCP_LISTEN};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Port,
    Listen,
}

impl Mode {
    fn matches(self, socket: &InetSocket, ports: &HashSet<u16>) -> bool {
        match self {
            Mode::Port => {
                ports.contains(&socket.local.port()) || ports.contains(&socket.remote.port())
            }
            Mode::Listen => {
                ports.contains(&socket.local.port())
                    && (!socket.protocol.is_tcp() || socket.state == TCP_LISTEN)
            }
        }
    }

    fn describe(self, socket: &InetSocket) -> String {
        let protocol = socket.protocol.table();
        match self {
            Mode::Listen => format!("listens on {protocol} {}", socket.local),
            Mode::Port => format!("has {protocol} {} -> {}", socket.local, socket.remote),
        }
    }
}

pub fn run(spec: &ProcessPorts, mode: Mode, ctx: &Context) -> Outcome {
    let port_list = spec
        .ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",");
    if spec.ports.is_empty() {
        return Outcome::unhealthy("no ports given");
    }
    let processes = match processes_matching(&spec.process, ctx) {
        Ok(found) => found,
        Err(outcome) => return outcome,
    };
    let ports: HashSet<u16> = spec.ports.iter().copied().collect();
    let mut unreadable = Vec::new();
    for group in by_namespace(&ctx.procfs, &processes).values() {
        let filter = PortFilter {
            ports: &spec.ports,
            remote_too: mode == Mode::Port,
        };
        let sockets = match ctx
            .procfs
            .inet_sockets(group[0].pid, filter, |s| mode.matches(s, &ports))
        {
            Ok(sockets) => sockets,
            Err(e) => {
                return Outcome::unhealthy(format!(
                    "cannot read the socket tables of pid {}: {}",
                    group[0].pid,
                    crate::net::describe_io(&e)
                ));
            }
        };
        crate::debug!(
            "{} socket(s) on {port_list} in the network namespace of pid {}",
            sockets.len(),
            group[0].pid
        );
        for socket in &sockets {
            crate::debug!(
                "  {} {} -> {} inode {}",
                socket.protocol.table(),
                socket.local,
                socket.remote,
                socket.inode
            );
        }
        if sockets.is_empty() {
            continue;
        }
        let by_inode: HashMap<u64, &InetSocket> = sockets.iter().map(|s| (s.inode, s)).collect();
        for process in group {
            match ctx
                .procfs
                .find_socket(process.pid, |inode| by_inode.contains_key(&inode))
            {
                Ok(Some(inode)) => {
                    return Outcome::healthy(format!(
                        "`{}` (pid {}) {}",
                        spec.process,
                        process.pid,
                        mode.describe(by_inode[&inode])
                    ));
                }
                Ok(None) => {}
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => unreadable.push(*process),
                // The process exited meanwhile.
                Err(_) => {}
            }
        }
    }
    let verb = match mode {
        Mode::Port => "has a socket on",
        Mode::Listen => "listens on",
    };
    let mut message = format!("no process matching `{}` {verb} {port_list}", spec.process);
    message.push_str(&unreadable_note(&unreadable));
    Outcome::unhealthy(message)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::Deadline;
    use crate::procfs::Procfs;

    const HEADER: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

    /// A /proc tree with one `nova-conductor` process holding `fds` and a tcp table `rows`.
    fn fixture(name: &str, fds: &[&str], rows: &[&str]) -> (std::path::PathBuf, Context) {
        let root =
            std::env::temp_dir().join(format!("healthcheck-procfs-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let pid = root.join("4242");
        for dir in ["fd", "ns", "net"] {
            std::fs::create_dir_all(pid.join(dir)).unwrap();
        }
        std::fs::write(
            pid.join("cmdline"),
            "/usr/bin/python3\0/usr/bin/nova-conductor\0",
        )
        .unwrap();
        symlink("net:[4026531840]", pid.join("ns/net")).unwrap();
        for (n, target) in fds.iter().enumerate() {
            symlink(target, pid.join("fd").join(n.to_string())).unwrap();
        }
        std::fs::write(pid.join("net/tcp"), format!("{HEADER}{}", rows.join("\n"))).unwrap();
        let mut ctx = Context::from_env(Deadline::after(Duration::from_secs(5)));
        ctx.procfs = Procfs::at(&root);
        (root, ctx)
    }

    fn row(remote_port: u16, state: &str, inode: u64) -> String {
        format!(
            "   0: 0100007F:C350 0100007F:{remote_port:04X} {state} 00000000:00000000 00:00000000 00000000  1000        0 {inode} 1 0 20 4 30 10 -1"
        )
    }

    fn check(ctx: &Context) -> Outcome {
        let spec = ProcessPorts {
            process: "nova-conductor".into(),
            ports: vec![5672],
        };
        run(&spec, Mode::Port, ctx)
    }

    fn cleanup(root: &Path) {
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn inode_1234_does_not_match_socket_51234() {
        let (root, ctx) = fixture(
            "suffix",
            &["socket:[51234]", "/dev/null"],
            &[&row(5672, "01", 1234)],
        );
        assert!(!check(&ctx).healthy, "{:?}", check(&ctx));
        cleanup(&root);
        let (root, ctx) = fixture(
            "exact",
            &["socket:[51234]", "socket:[1234]"],
            &[&row(5672, "01", 1234)],
        );
        let outcome = check(&ctx);
        assert!(outcome.healthy, "{outcome:?}");
        assert_eq!(
            outcome.message,
            "`nova-conductor` (pid 4242) has tcp 127.0.0.1:50000 -> 127.0.0.1:5672"
        );
        cleanup(&root);
    }

    #[test]
    fn time_wait_rows_with_inode_zero_match_nothing() {
        let (root, ctx) = fixture(
            "timewait",
            &["socket:[10]", "socket:[100]"],
            &[&row(5672, "06", 0)],
        );
        let outcome = check(&ctx);
        assert_eq!(
            outcome,
            Outcome::unhealthy("no process matching `nova-conductor` has a socket on 5672")
        );
        cleanup(&root);
    }
}
