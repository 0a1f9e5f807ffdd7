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
use crate::procfs::{InetSocket, TCP_LISTEN, by_namespace, format_address};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Port,
    Listen,
}

impl Mode {
    fn matches(self, socket: &InetSocket, ports: &HashSet<u16>) -> bool {
        match self {
            Mode::Port => ports.contains(&socket.local.port) || ports.contains(&socket.remote.port),
            Mode::Listen => {
                ports.contains(&socket.local.port)
                    && (!socket.protocol.is_tcp() || socket.state == TCP_LISTEN)
            }
        }
    }

    fn describe(self, socket: &InetSocket) -> String {
        let protocol = socket.protocol.table();
        match self {
            Mode::Listen => format!("listens on {protocol} {}", format_address(&socket.local)),
            Mode::Port => format!(
                "has {protocol} {} -> {}",
                format_address(&socket.local),
                format_address(&socket.remote)
            ),
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
        let sockets = match ctx
            .procfs
            .inet_sockets(group[0].pid, |s| mode.matches(s, &ports))
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
        if sockets.is_empty() {
            continue;
        }
        let by_inode: HashMap<u64, &InetSocket> = sockets.iter().map(|s| (s.inode, s)).collect();
        for process in group {
            match ctx.procfs.socket_inodes(process.pid) {
                Ok(inodes) => {
                    if let Some(socket) = inodes.iter().find_map(|inode| by_inode.get(inode)) {
                        return Outcome::healthy(format!(
                            "`{}` (pid {}) {}",
                            spec.process,
                            process.pid,
                            mode.describe(socket)
                        ));
                    }
                }
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
