//! The kernel's socket tables through `NETLINK_SOCK_DIAG`, as `ss` reads them: binary records
//! instead of the text of `/proc/net/{tcp,udp}`. On hosts (and `net: host` containers) with
//! tens of thousands of sockets, rendering that text dominates a port check.
//!
//! Netlink answers for the caller's own network namespace only, and SELinux may refuse it in
//! containers (TripleO's LP#1810512), so callers fall back to the procfs text tables.

use std::io;
use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use crate::sockets::{InetSocket, PortFilter, Protocol};

const NETLINK_SOCK_DIAG: libc::c_int = 4;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_HEADER_LEN: usize = 16;
/// `struct inet_diag_msg`: family, state, timer, retrans, sockid (48 bytes), expires, rqueue,
/// wqueue, uid, inode.
const INET_DIAG_MSG_LEN: usize = 72;
/// A stuck kernel answer should not exist; this only keeps a broken one from blocking.
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(2);

/// The inet sockets (TCP and UDP, IPv4 and IPv6) of this process's network namespace that pass
/// `filter` and `keep`. Rows without an owner (inode 0, e.g. TIME_WAIT) are left out.
pub fn inet_sockets(
    filter: PortFilter,
    keep: &dyn Fn(&InetSocket) -> bool,
) -> io::Result<Vec<InetSocket>> {
    // SAFETY: socket(2) with constant arguments; the descriptor is owned right away.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            NETLINK_SOCK_DIAG,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor nobody else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(raw) };
    set_receive_timeout(&socket)?;
    let mut sockets = Vec::new();
    let bytecode = port_bytecode(filter);
    for protocol in Protocol::ALL {
        dump(
            &socket,
            &request(protocol, &bytecode),
            protocol,
            keep,
            &mut sockets,
        )?;
    }
    Ok(sockets)
}

fn set_receive_timeout(socket: &OwnedFd) -> io::Result<()> {
    let timeout = libc::timeval {
        tv_sec: RECEIVE_TIMEOUT.as_secs() as libc::time_t,
        tv_usec: 0,
    };
    // SAFETY: a correctly sized timeval for SO_RCVTIMEO on an open socket.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&timeout as *const libc::timeval).cast(),
            size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn family_and_protocol(protocol: Protocol) -> (u8, u8) {
    match protocol {
        Protocol::Tcp => (libc::AF_INET as u8, libc::IPPROTO_TCP as u8),
        Protocol::Tcp6 => (libc::AF_INET6 as u8, libc::IPPROTO_TCP as u8),
        Protocol::Udp => (libc::AF_INET as u8, libc::IPPROTO_UDP as u8),
        Protocol::Udp6 => (libc::AF_INET6 as u8, libc::IPPROTO_UDP as u8),
    }
}

const INET_DIAG_REQ_BYTECODE: u16 = 1;
const INET_DIAG_BC_JMP: u8 = 1;
const INET_DIAG_BC_S_GE: u8 = 2;
const INET_DIAG_BC_S_LE: u8 = 3;
const INET_DIAG_BC_D_GE: u8 = 4;
const INET_DIAG_BC_D_LE: u8 = 5;

/// `inet_diag` filter bytecode accepting a socket when any `(end, port)` condition holds.
/// Each op is `{code, yes, no}`: jump `yes` bytes when the condition holds, `no` otherwise;
/// landing exactly on the end accepts, jumping past it rejects. Equality is GE + LE, which
/// every kernel has. Blocks are `GE, LE, JMP-to-end`, the last without the JMP, so that the
/// kernel's audit (which follows the `yes` chain) reaches every op.
fn port_bytecode(filter: PortFilter) -> Vec<u8> {
    let ends: &[(u8, u8)] = if filter.remote_too {
        &[
            (INET_DIAG_BC_S_GE, INET_DIAG_BC_S_LE),
            (INET_DIAG_BC_D_GE, INET_DIAG_BC_D_LE),
        ]
    } else {
        &[(INET_DIAG_BC_S_GE, INET_DIAG_BC_S_LE)]
    };
    let conditions: Vec<_> = filter
        .ports
        .iter()
        .flat_map(|&port| ends.iter().map(move |&end| (end, port)))
        .collect();
    let total = conditions.len() * 20 - 4;
    let mut code = Vec::with_capacity(total);
    let op = |code: &mut Vec<u8>, kind: u8, yes: u8, no: usize| {
        code.extend_from_slice(&[kind, yes]);
        code.extend_from_slice(&(no as u16).to_ne_bytes());
    };
    for (i, ((ge, le), port)) in conditions.iter().enumerate() {
        // On a failed comparison jump to the next block's start, which after the last block
        // is 4 bytes past the end: reject.
        op(&mut code, *ge, 8, 20);
        op(&mut code, 0, 0, *port as usize);
        op(&mut code, *le, 8, 12);
        op(&mut code, 0, 0, *port as usize);
        if i + 1 < conditions.len() {
            let remaining = total - code.len();
            op(&mut code, INET_DIAG_BC_JMP, 4, remaining);
        }
    }
    code
}

/// A dump request: `nlmsghdr` + `inet_diag_req_v2` for sockets in every state, plus the
/// filter bytecode as an attribute.
fn request(protocol: Protocol, bytecode: &[u8]) -> Vec<u8> {
    let (family, ip_protocol) = family_and_protocol(protocol);
    let attribute_length = 4 + bytecode.len();
    let length = NLMSG_HEADER_LEN + 56 + attribute_length;
    let mut message = Vec::with_capacity(length);
    message.extend_from_slice(&(length as u32).to_ne_bytes());
    message.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    message.extend_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16).to_ne_bytes());
    message.extend_from_slice(&sequence(protocol).to_ne_bytes());
    message.extend_from_slice(&0u32.to_ne_bytes());
    message.extend_from_slice(&[family, ip_protocol, 0, 0]);
    message.extend_from_slice(&u32::MAX.to_ne_bytes()); // idiag_states: all
    message.resize(NLMSG_HEADER_LEN + 56, 0); // inet_diag_sockid: unused for dumps
    message.extend_from_slice(&(attribute_length as u16).to_ne_bytes());
    message.extend_from_slice(&INET_DIAG_REQ_BYTECODE.to_ne_bytes());
    message.extend_from_slice(bytecode);
    message
}

fn sequence(protocol: Protocol) -> u32 {
    protocol as u32 + 1
}

fn dump(
    socket: &OwnedFd,
    message: &[u8],
    protocol: Protocol,
    keep: &dyn Fn(&InetSocket) -> bool,
    sockets: &mut Vec<InetSocket>,
) -> io::Result<()> {
    let sequence = sequence(protocol);
    // SAFETY: a zeroed sockaddr_nl addressed to the kernel (pid 0).
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: sends `message` from a live buffer to a correctly sized address.
    let sent = unsafe {
        libc::sendto(
            socket.as_raw_fd(),
            message.as_ptr().cast(),
            message.len(),
            0,
            (&kernel as *const libc::sockaddr_nl).cast(),
            size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        // SAFETY: receives into a live buffer of the given length.
        let received = unsafe {
            libc::recv(
                socket.as_raw_fd(),
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                0,
            )
        };
        let Ok(received) = usize::try_from(received) else {
            return Err(io::Error::last_os_error());
        };
        if received == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "sock_diag closed",
            ));
        }
        if parse_messages(&buffer[..received], protocol, sequence, keep, sockets)? {
            return Ok(());
        }
    }
}

/// Parses one datagram of the dump; `Ok(true)` once the dump is done.
fn parse_messages(
    mut data: &[u8],
    protocol: Protocol,
    sequence: u32,
    keep: &dyn Fn(&InetSocket) -> bool,
    sockets: &mut Vec<InetSocket>,
) -> io::Result<bool> {
    let malformed = || io::Error::new(io::ErrorKind::InvalidData, "malformed sock_diag message");
    while data.len() >= NLMSG_HEADER_LEN {
        let length = u32::from_ne_bytes(data[0..4].try_into().unwrap()) as usize;
        let kind = u16::from_ne_bytes(data[4..6].try_into().unwrap());
        let message_sequence = u32::from_ne_bytes(data[8..12].try_into().unwrap());
        if length < NLMSG_HEADER_LEN || length > data.len() {
            return Err(malformed());
        }
        let payload = &data[NLMSG_HEADER_LEN..length];
        if message_sequence == sequence {
            match kind {
                NLMSG_DONE => return Ok(true),
                NLMSG_ERROR => {
                    let code = i32::from_ne_bytes(
                        payload.get(0..4).ok_or_else(malformed)?.try_into().unwrap(),
                    );
                    return Err(io::Error::from_raw_os_error(-code));
                }
                SOCK_DIAG_BY_FAMILY => {
                    if let Some(socket) = parse_inet_diag_msg(protocol, payload).filter(|s| keep(s))
                    {
                        sockets.push(socket);
                    }
                }
                _ => {}
            }
        }
        data = &data[length.next_multiple_of(4).min(data.len())..];
    }
    Ok(false)
}

fn parse_inet_diag_msg(protocol: Protocol, payload: &[u8]) -> Option<InetSocket> {
    if payload.len() < INET_DIAG_MSG_LEN {
        return None;
    }
    let state = payload[1];
    let port = |at: usize| u16::from_be_bytes([payload[at], payload[at + 1]]);
    let address = |at: usize| -> IpAddr {
        let bytes: [u8; 16] = payload[at..at + 16].try_into().unwrap();
        if payload[0] == libc::AF_INET as u8 {
            Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).into()
        } else {
            Ipv6Addr::from(bytes).into()
        }
    };
    let local = SocketAddr::new(address(8), port(4));
    let remote = SocketAddr::new(address(24), port(6));
    let inode = u32::from_ne_bytes(payload[68..72].try_into().unwrap()) as u64;
    (inode != 0).then_some(InetSocket {
        protocol,
        local,
        remote,
        state,
        inode,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sockets::TCP_LISTEN;
    use std::net::{TcpListener, UdpSocket};
    use std::os::unix::fs::MetadataExt;

    fn inode_of(fd: &impl AsRawFd) -> u64 {
        std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .unwrap()
            .ino()
    }

    /// The kernel's own answer, cross-checked against the inode procfs gives the same socket.
    #[test]
    fn finds_real_tcp_and_udp_sockets_of_both_families() {
        let tcp4 = TcpListener::bind("127.0.0.1:0").unwrap();
        let udp6 = UdpSocket::bind("[::1]:0").unwrap();
        let wanted = [
            (tcp4.local_addr().unwrap(), inode_of(&tcp4)),
            (udp6.local_addr().unwrap(), inode_of(&udp6)),
        ];
        let ports = [wanted[0].0.port(), wanted[1].0.port()];
        let filter = PortFilter {
            ports: &ports,
            remote_too: true,
        };
        let found =
            inet_sockets(filter, &|s| wanted.iter().any(|(addr, _)| s.local == *addr)).unwrap();
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(
            (found[0].protocol, found[0].inode, found[0].state),
            (Protocol::Tcp, wanted[0].1, TCP_LISTEN)
        );
        assert_eq!(
            (found[1].protocol, found[1].inode),
            (Protocol::Udp6, wanted[1].1)
        );
    }

    /// The kernel sends only sockets on the filtered ports (and audits the bytecode: a
    /// malformed program would make the request fail with EINVAL).
    #[test]
    fn the_port_filter_runs_in_the_kernel() {
        let listeners: Vec<_> = (0..3)
            .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let ports: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        let client = std::net::TcpStream::connect(("127.0.0.1", ports[2])).unwrap();
        // The accepted side of the client's connection is still queued: no file, inode 0.
        for (wanted, remote_too, expected) in [
            (&ports[..1], false, 1),
            (&ports[..2], false, 2),
            (&ports[2..], false, 1), // the listener
            (&ports[2..], true, 2),  // and the client, whose remote port matches
        ] {
            let found = inet_sockets(
                PortFilter {
                    ports: wanted,
                    remote_too,
                },
                &|_| true,
            )
            .unwrap();
            assert_eq!(
                found.len(),
                expected,
                "{wanted:?} remote_too={remote_too}: {found:?}"
            );
        }
        drop(client);
    }

    #[test]
    fn kernel_errors_and_truncation_are_reported() {
        let mut error = vec![0u8; 20];
        error[0..4].copy_from_slice(&20u32.to_ne_bytes());
        error[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        error[8..12].copy_from_slice(&7u32.to_ne_bytes());
        error[16..20].copy_from_slice(&(-libc::EACCES).to_ne_bytes());
        let err = parse_messages(&error, Protocol::Tcp, 7, &|_| true, &mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        error[0..4].copy_from_slice(&400u32.to_ne_bytes());
        let err = parse_messages(&error, Protocol::Tcp, 7, &|_| true, &mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
