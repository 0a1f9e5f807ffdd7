//! Reading `/proc` directly: processes by full command line, their socket inodes, and the
//! kernel's socket tables. This replaces pgrep, lsof, ss and the awk/find pipelines TripleO used.

use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString};
use std::fs;
use std::io::{self, BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use regex_lite::Regex;

use crate::sockets::{InetSocket, PortFilter, Protocol};

/// Where procfs is mounted; a parameter so tests can feed a fixture tree.
#[derive(Clone, Debug)]
pub struct Procfs {
    root: PathBuf,
}

impl Default for Procfs {
    fn default() -> Self {
        Procfs {
            root: PathBuf::from("/proc"),
        }
    }
}

/// A process whose command line matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    pub cmdline: String,
}

/// What [`Procfs::tagged_process`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tagged {
    pub pid: Option<u32>,
    /// Roots that could not be looked into for lack of permission.
    pub unreadable: usize,
}

impl Procfs {
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Procfs { root: root.into() }
    }

    /// Processes whose full command line (arguments joined by spaces, as `pgrep -f` sees it)
    /// matches `pattern`. This process and its ancestors are left out: their command lines
    /// contain the pattern itself (`sh -c "healthcheck process nova"`).
    pub fn matching_processes(&self, pattern: &Regex) -> io::Result<Vec<Process>> {
        let mut found = Vec::new();
        for pid in self.other_pids()? {
            // A process may exit between readdir and read: that is not an error.
            let Some(cmdline) = self.cmdline(pid) else {
                continue;
            };
            if pattern.is_match(&cmdline) {
                found.push(Process { pid, cmdline });
            }
        }
        Ok(found)
    }

    /// The oldest (lowest) pid, this process and its ancestors left out, whose root
    /// (`/proc/PID/root`) holds the absolute path `marker`. Roots this process may not look into
    /// (another user's process, or one that changed its credentials, without ptrace access) are
    /// counted, so that a miss can say why.
    pub fn tagged_process(&self, marker: &str) -> io::Result<Tagged> {
        let mut unreadable = 0;
        let relative = marker.trim_start_matches('/');
        for pid in self.other_pids()? {
            match fs::symlink_metadata(self.pid_path(pid, "root").join(relative)) {
                Ok(_) => {
                    return Ok(Tagged {
                        pid: Some(pid),
                        unreadable,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => unreadable += 1,
                // No marker, or exited meanwhile.
                Err(_) => {}
            }
        }
        Ok(Tagged {
            pid: None,
            unreadable,
        })
    }

    /// Every pid but this process's and its ancestors', in ascending order.
    fn other_pids(&self) -> io::Result<Vec<u32>> {
        let own = self.own_lineage();
        let mut pids = Vec::new();
        for entry in fs::read_dir(&self.root)? {
            if let Some(pid) = entry?
                .file_name()
                .to_str()
                .and_then(|name| name.parse::<u32>().ok())
                .filter(|pid| !own.contains(pid))
            {
                pids.push(pid);
            }
        }
        pids.sort_unstable();
        Ok(pids)
    }

    /// The command line, or for kernel threads and zombies (empty cmdline) the `comm` name,
    /// as pgrep falls back to it.
    fn cmdline(&self, pid: u32) -> Option<String> {
        let raw = fs::read(self.pid_path(pid, "cmdline")).ok()?;
        let args: Vec<_> = raw
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(String::from_utf8_lossy)
            .collect();
        if args.is_empty() {
            let comm = fs::read_to_string(self.pid_path(pid, "comm")).ok()?;
            return Some(comm.trim_end().to_string());
        }
        Some(args.join(" "))
    }

    fn own_lineage(&self) -> HashSet<u32> {
        let mut lineage = HashSet::new();
        let mut pid = std::process::id();
        // Bounded walk: a pid namespace's init has ppid 0.
        while pid > 0 && lineage.insert(pid) && lineage.len() < 256 {
            pid = self.parent(pid).unwrap_or(0);
        }
        lineage
    }

    fn parent(&self, pid: u32) -> Option<u32> {
        let stat = fs::read_to_string(self.pid_path(pid, "stat")).ok()?;
        // `pid (comm) state ppid …`; comm may contain spaces and parentheses.
        let after_comm = &stat[stat.rfind(')')? + 1..];
        after_comm.split_whitespace().nth(1)?.parse().ok()
    }

    /// The first socket `pid` holds open (`/proc/PID/fd/N -> socket:[INODE]`) whose inode is
    /// `wanted`. A busy service holds thousands of descriptors and one `readlink` each is the
    /// whole cost, so links are read relative to the open directory, large tables are split
    /// across cores, and the scan stops at the first hit.
    pub fn find_socket(
        &self,
        pid: u32,
        wanted: impl Fn(u64) -> bool + Sync,
    ) -> io::Result<Option<u64>> {
        let path = CString::new(
            self.pid_path(pid, "fd")
                .into_os_string()
                .into_encoded_bytes(),
        )
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: opendir on a NUL-terminated path; the handle is closed by `Dir`'s Drop.
        let dir = Dir(unsafe { libc::opendir(path.as_ptr()) });
        if dir.0.is_null() {
            return Err(io::Error::last_os_error());
        }
        let mut fds = Vec::new();
        loop {
            // SAFETY: readdir on a valid stream; the entry is only read before the next call.
            let entry = unsafe { libc::readdir64(dir.0) };
            if entry.is_null() {
                break;
            }
            // SAFETY: d_name is NUL-terminated within the entry.
            let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) };
            if let Some(fd) = name.to_str().ok().and_then(|n| n.parse::<u32>().ok()) {
                fds.push(fd);
            }
        }
        // SAFETY: `dir.0` is a valid, open directory stream for the rest of this function.
        let dir_fd = unsafe { libc::dirfd(dir.0) };
        let found = AtomicBool::new(false);
        let scan = |fds: &[u32]| -> Option<u64> {
            let mut name = [0u8; 16];
            let mut target = [0u8; 64];
            for fd in fds {
                if found.load(Ordering::Relaxed) {
                    return None;
                }
                let digits = format_fd(*fd, &mut name);
                // SAFETY: `digits` is NUL-terminated; readlinkat writes at most `target.len()` bytes.
                let len = unsafe {
                    libc::readlinkat(
                        dir_fd,
                        digits.as_ptr(),
                        target.as_mut_ptr().cast(),
                        target.len(),
                    )
                };
                // A descriptor closed meanwhile is simply gone.
                let Ok(len) = usize::try_from(len) else {
                    continue;
                };
                if let Some(inode) = parse_socket_link(&target[..len]).filter(|&i| wanted(i)) {
                    found.store(true, Ordering::Relaxed);
                    return Some(inode);
                }
            }
            None
        };
        let workers = if fds.len() < PARALLEL_SCAN_MIN_FDS {
            1
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
        };
        if workers == 1 {
            return Ok(scan(&fds));
        }
        Ok(std::thread::scope(|scope| {
            let chunks: Vec<_> = fds
                .chunks(fds.len().div_ceil(workers))
                .map(|chunk| scope.spawn(|| scan(chunk)))
                .collect();
            chunks
                .into_iter()
                .filter_map(|worker| worker.join().ok().flatten())
                .next()
        }))
    }

    /// An identity for the network namespace of `pid`, so tables are read once per namespace.
    pub fn net_namespace(&self, pid: u32) -> Option<PathBuf> {
        fs::read_link(self.pid_path(pid, "ns/net")).ok()
    }

    fn shares_our_net_namespace(&self, pid: u32) -> bool {
        let ours = fs::read_link(self.root.join("self/ns/net")).ok();
        ours.is_some() && self.net_namespace(pid) == ours
    }

    /// The inet sockets visible in the network namespace of `pid` for which `keep` is true.
    pub fn inet_sockets(
        &self,
        pid: u32,
        filter: PortFilter,
        keep: impl Fn(&InetSocket) -> bool,
    ) -> io::Result<Vec<InetSocket>> {
        if self.shares_our_net_namespace(pid) {
            // Refused (SELinux) or unsupported: the text tables give the same answer, slower.
            if let Ok(sockets) = crate::sockdiag::inet_sockets(filter, &keep) {
                return Ok(sockets);
            }
        }
        let mut sockets = Vec::new();
        for protocol in Protocol::ALL {
            let path = self.pid_path(pid, &format!("net/{}", protocol.table()));
            let lines = match proc_lines(&path) {
                Ok(lines) => lines,
                // Kernels without IPv6 have no tcp6/udp6.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for line in lines.skip(1) {
                if let Some(socket) = parse_inet_line(protocol, &line?).filter(|s| keep(s)) {
                    sockets.push(socket);
                }
            }
        }
        Ok(sockets)
    }

    /// Inodes of the Unix sockets bound to `path` in the network namespace of `pid`.
    pub fn unix_socket_inodes(&self, pid: u32, path: &str) -> io::Result<HashSet<u64>> {
        let mut inodes = HashSet::new();
        for line in proc_lines(&self.pid_path(pid, "net/unix"))?.skip(1) {
            if let Some((inode, _)) = parse_unix_line(&line?).filter(|(_, p)| *p == path) {
                inodes.insert(inode);
            }
        }
        Ok(inodes)
    }

    fn pid_path(&self, pid: u32, rest: &str) -> PathBuf {
        self.root.join(pid.to_string()).join(rest)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// Below this many descriptors a second thread costs more than it saves.
const PARALLEL_SCAN_MIN_FDS: usize = 2048;

/// `fd` as a NUL-terminated decimal name, without allocating.
fn format_fd(fd: u32, buf: &mut [u8; 16]) -> &CStr {
    let mut digits = [0u8; 10];
    let mut n = fd;
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        buf[i] = digits[len - 1 - i];
    }
    buf[len] = 0;
    CStr::from_bytes_with_nul(&buf[..=len]).expect("one NUL at the end")
}

struct Dir(*mut libc::DIR);

impl Drop for Dir {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the stream was opened by opendir and is closed once.
            unsafe { libc::closedir(self.0) };
        }
    }
}

/// A procfs table, line by line: socket tables can be megabytes, and only matching rows are kept.
fn proc_lines(path: &Path) -> io::Result<std::io::Lines<BufReader<fs::File>>> {
    Ok(BufReader::with_capacity(64 * 1024, fs::File::open(path)?).lines())
}

/// `socket:[12345]` → 12345. Anything else (files, pipes, `anon_inode:`) → None.
/// Exact parsing is what avoids TripleO's unanchored-regex bug (`1234` matching `socket:[51234]`).
pub fn parse_socket_link(target: &[u8]) -> Option<u64> {
    let digits = target.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// A row of a `/proc/net/{tcp,tcp6,udp,udp6}` table; `None` for the header and inode-0 rows:
/// sockets in TIME_WAIT belong to no process, and matching them was TripleO's false "healthy".
pub fn parse_inet_line(protocol: Protocol, line: &str) -> Option<InetSocket> {
    let mut fields = line.split_ascii_whitespace();
    let _slot = fields.next()?;
    let local = parse_endpoint(fields.next()?)?;
    let remote = parse_endpoint(fields.next()?)?;
    let state = u8::from_str_radix(fields.next()?, 16).ok()?;
    // tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
    let inode: u64 = fields.nth(5)?.parse().ok()?;
    (inode != 0).then_some(InetSocket {
        protocol,
        local,
        remote,
        state,
        inode,
    })
}

/// `0100007F:1628` → 127.0.0.1:5672. The kernel prints each 32-bit word of the address in
/// host byte order.
fn parse_endpoint(field: &str) -> Option<SocketAddr> {
    let (address, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let mut bytes = [0u8; 16];
    let words = address.len() / 8;
    if !(words == 1 || words == 4) || address.len() % 8 != 0 {
        return None;
    }
    for i in 0..words {
        let word = u32::from_str_radix(&address[i * 8..i * 8 + 8], 16).ok()?;
        bytes[i * 4..i * 4 + 4].copy_from_slice(&word.to_ne_bytes());
    }
    let ip: IpAddr = if words == 1 {
        Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).into()
    } else {
        Ipv6Addr::from(bytes).into()
    };
    Some(SocketAddr::new(ip, port))
}

/// `(inode, path)` of a bound Unix socket's row in `/proc/net/unix`.
pub fn parse_unix_line(line: &str) -> Option<(u64, &str)> {
    // Num RefCount Protocol Flags Type St Inode Path (the path may contain spaces).
    let mut rest = line.trim_start();
    let mut inode = None;
    for field in 0..7 {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        if field == 6 {
            inode = rest[..end].parse().ok();
        }
        rest = rest[end..].trim_start();
    }
    Some((inode?, rest)).filter(|(_, path)| !path.is_empty())
}

/// Groups processes by network namespace so each namespace's tables are parsed once.
pub fn by_namespace<'a>(
    procfs: &Procfs,
    processes: &'a [Process],
) -> HashMap<Option<PathBuf>, Vec<&'a Process>> {
    let mut groups: HashMap<_, Vec<_>> = HashMap::new();
    for process in processes {
        groups
            .entry(procfs.net_namespace(process.pid))
            .or_default()
            .push(process);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sockets::TCP_LISTEN;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1628 00000000:0000 0A 00000000:00000000 00:00000000 00000000   107        0 51234 1 0000000000000000 100 0 0 10 0
   1: 0100007F:C350 0100007F:1628 06 00000000:00000000 03:000015C1 00000000     0        0 0 3 0000000000000000
   2: 0100007F:C351 0100007F:1628 01 00000000:00000000 00:00000000 00000000  1000        0 1234 1 0000000000000000 20 4 30 10 -1
";

    #[test]
    fn inet_table_skips_header_and_time_wait_inode_zero() {
        let rows: Vec<_> = TCP
            .lines()
            .filter_map(|l| parse_inet_line(Protocol::Tcp, l))
            .collect();
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!(rows[0].local.port(), 5672);
        assert_eq!(rows[0].state, TCP_LISTEN);
        assert_eq!(rows[0].inode, 51234);
        assert_eq!(rows[1].remote.port(), 5672);
        assert_eq!(rows[1].inode, 1234);
        assert_eq!(rows[1].local.to_string(), "127.0.0.1:50001");
    }

    #[test]
    fn fd_names_format_without_allocating() {
        let mut buf = [0u8; 16];
        assert_eq!(format_fd(0, &mut buf).to_bytes(), b"0");
        assert_eq!(format_fd(4_294_967_295, &mut buf).to_bytes(), b"4294967295");
    }

    /// The parallel scan finds a socket wherever it sits among thousands of descriptors.
    #[test]
    fn finds_a_socket_among_many_descriptors() {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;
        // SAFETY: get/setrlimit with a valid struct; raising the soft limit up to the hard one.
        unsafe {
            let mut limit = std::mem::zeroed::<libc::rlimit>();
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
        let files: Vec<_> = (0..PARALLEL_SCAN_MIN_FDS + 100)
            .map(|_| fs::File::open("/dev/null").unwrap())
            .collect();
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let inode = fs::metadata(format!("/proc/self/fd/{}", socket.as_raw_fd()))
            .unwrap()
            .ino();
        let procfs = Procfs::default();
        assert_eq!(
            procfs
                .find_socket(std::process::id(), |i| i == inode)
                .unwrap(),
            Some(inode)
        );
        assert_eq!(
            procfs
                .find_socket(std::process::id(), |i| i == u64::MAX)
                .unwrap(),
            None
        );
        drop(files);
    }

    #[test]
    fn socket_links_parse_exactly() {
        assert_eq!(parse_socket_link(b"socket:[51234]"), Some(51234));
        assert_eq!(parse_socket_link(b"socket:[51234]x"), None);
        assert_eq!(parse_socket_link(b"pipe:[1234]"), None);
        assert_eq!(parse_socket_link(b"/var/log/x socket:[1]"), None);
    }

    #[test]
    fn unix_table_keeps_paths_with_spaces() {
        let text = "Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 27716 /run/libvirt/virtlogd-sock
0000000000000000: 00000003 00000000 00000000 0001 03 27718
0000000000000000: 00000002 00000000 00010000 0001 01 27720 /tmp/a b
";
        let rows: Vec<_> = text.lines().filter_map(parse_unix_line).collect();
        assert_eq!(
            rows,
            [(27716, "/run/libvirt/virtlogd-sock"), (27720, "/tmp/a b")]
        );
    }

    #[test]
    fn ipv6_addresses_decode() {
        let line = "   0: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 77 1";
        let socket = parse_inet_line(Protocol::Tcp6, line).unwrap();
        assert_eq!(socket.local.to_string(), "[::1]:80");
        assert_eq!(socket.inode, 77);
    }
}
