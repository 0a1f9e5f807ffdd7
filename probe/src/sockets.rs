//! The inet socket model both socket-table backends share: [`crate::sockdiag`] (netlink, the
//! kernel's binary records) and [`crate::procfs`] (the `/proc/net` text tables, the fallback and
//! the facade the checks call).

use std::net::SocketAddr;

/// An inet socket with an owner (inode ≠ 0): a netlink record or a row of
/// `/proc/PID/net/{tcp,tcp6,udp,udp6}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InetSocket {
    pub protocol: Protocol,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The kernel's `st` column (TCP states; for UDP 07 is unconnected, 01 connected).
    pub state: u8,
    pub inode: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    Tcp,
    Tcp6,
    Udp,
    Udp6,
}

impl Protocol {
    pub const ALL: [Protocol; 4] = [Protocol::Tcp, Protocol::Tcp6, Protocol::Udp, Protocol::Udp6];

    pub fn table(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Tcp6 => "tcp6",
            Protocol::Udp => "udp",
            Protocol::Udp6 => "udp6",
        }
    }

    pub fn is_tcp(self) -> bool {
        matches!(self, Protocol::Tcp | Protocol::Tcp6)
    }
}

pub const TCP_LISTEN: u8 = 0x0A;

/// Which sockets the kernel should send: those with a local (and, if `remote_too`, a remote)
/// port among `ports`. The netlink backend has the kernel apply it while walking its tables, so nothing
/// else is copied out.
#[derive(Clone, Copy, Debug)]
pub struct PortFilter<'a> {
    pub ports: &'a [u16],
    pub remote_too: bool,
}
