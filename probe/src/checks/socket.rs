//! A matching process holds a Unix socket bound to a path open (e.g. virtlogd on
//! `/run/libvirt/virtlogd-sock`), found via `/proc/PID/net/unix` and `/proc/PID/fd`.

use std::io;

use healthcheck_spec::SocketCheck;

use super::{Context, processes_matching, unreadable_note};
use crate::Outcome;
use crate::procfs::by_namespace;

pub fn run(spec: &SocketCheck, ctx: &Context) -> Outcome {
    let processes = match processes_matching(&spec.process, ctx) {
        Ok(found) => found,
        Err(outcome) => return outcome,
    };
    let mut unreadable = Vec::new();
    for group in by_namespace(&ctx.procfs, &processes).values() {
        let bound = match ctx.procfs.unix_socket_inodes(group[0].pid, &spec.path) {
            Ok(bound) => bound,
            Err(e) => {
                return Outcome::unhealthy(format!(
                    "cannot read the Unix socket table: {}",
                    crate::net::describe_io(&e)
                ));
            }
        };
        if bound.is_empty() {
            continue;
        }
        for process in group {
            match ctx
                .procfs
                .find_socket(process.pid, |inode| bound.contains(&inode))
            {
                Ok(Some(_)) => {
                    return Outcome::healthy(format!(
                        "`{}` (pid {}) holds {}",
                        spec.process, process.pid, spec.path
                    ));
                }
                Ok(None) => {}
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => unreadable.push(*process),
                Err(_) => {}
            }
        }
    }
    let mut message = format!(
        "no process matching `{}` holds Unix socket {}",
        spec.process, spec.path
    );
    message.push_str(&unreadable_note(&unreadable));
    Outcome::unhealthy(message)
}
