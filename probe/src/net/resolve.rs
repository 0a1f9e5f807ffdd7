//! Name resolution without libc's NSS: a statically linked binary cannot rely on glibc's
//! dlopen-ed resolver modules, which are absent or of another version in the images it runs in.
//! Order: IP literal, then the hosts file, then DNS over UDP from resolv.conf (search list and
//! `ndots` honoured), all within the run's deadline.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use crate::Deadline;

const QTYPE_A: u16 = 1;
const QTYPE_AAAA: u16 = 28;
/// Per-query wait, so a dead first nameserver leaves time for the next one.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone, Debug)]
pub struct Resolver {
    /// Set on the first name that needs it: a check of an IP literal reads no file.
    config: OnceLock<Config>,
}

#[derive(Clone, Debug)]
struct Config {
    hosts_text: String,
    nameservers: Vec<SocketAddr>,
    search: Vec<String>,
    ndots: usize,
}

impl Resolver {
    /// The system configuration: `/etc/hosts` and `/etc/resolv.conf`, either may be missing.
    pub fn system() -> Resolver {
        Resolver {
            config: OnceLock::new(),
        }
    }

    pub fn from_config(hosts_text: String, resolv_conf: &str) -> Resolver {
        Resolver {
            config: Config::parse(hosts_text, resolv_conf).into(),
        }
    }

    fn config(&self) -> &Config {
        self.config.get_or_init(|| {
            let read = |path: &str| crate::config::read_text(Path::new(path)).unwrap_or_default();
            Config::parse(read("/etc/hosts"), &read("/etc/resolv.conf"))
        })
    }

    pub fn resolve(
        &self,
        host: &str,
        port: u16,
        deadline: &Deadline,
    ) -> io::Result<Vec<SocketAddr>> {
        let ips = self.lookup(host, deadline)?;
        Ok(ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect())
    }

    fn lookup(&self, host: &str, deadline: &Deadline) -> io::Result<Vec<IpAddr>> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        let from_hosts = hosts_lookup(&self.config().hosts_text, &name);
        if !from_hosts.is_empty() {
            return Ok(from_hosts);
        }
        // RFC 6761: localhost is loopback even where no hosts file says so (empty images).
        if name == "localhost" || name.ends_with(".localhost") {
            return Ok(vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()]);
        }
        let mut last_error = None;
        for candidate in self.candidates(host) {
            match self.query_all(&candidate, deadline) {
                Ok(ips) if !ips.is_empty() => return Ok(ips),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::TimedOut && deadline.remaining().is_err() => {
                    return Err(e);
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("could not resolve host `{host}`"),
            )
        }))
    }

    /// Names to try, in resolv.conf order: a trailing dot means absolute; fewer than `ndots`
    /// dots means the search list first.
    fn candidates(&self, host: &str) -> Vec<String> {
        if let Some(absolute) = host.strip_suffix('.') {
            return vec![absolute.to_string()];
        }
        let config = self.config();
        let searched = config
            .search
            .iter()
            .map(|domain| format!("{host}.{domain}"));
        if host.matches('.').count() >= config.ndots {
            std::iter::once(host.to_string()).chain(searched).collect()
        } else {
            searched.chain(std::iter::once(host.to_string())).collect()
        }
    }

    fn query_all(&self, name: &str, deadline: &Deadline) -> io::Result<Vec<IpAddr>> {
        let mut ips = Vec::new();
        for qtype in [QTYPE_A, QTYPE_AAAA] {
            ips.extend(self.query(name, qtype, deadline)?);
        }
        Ok(ips)
    }

    fn query(&self, name: &str, qtype: u16, deadline: &Deadline) -> io::Result<Vec<IpAddr>> {
        let id = (std::process::id() as u16) ^ (qtype << 8) ^ name.len() as u16;
        let request = encode_query(id, name, qtype)?;
        let mut last_error = io::Error::new(io::ErrorKind::NotFound, "no nameserver answered");
        for server in &self.config().nameservers {
            let wait = deadline.remaining()?.min(QUERY_TIMEOUT);
            let bind: SocketAddr = match server {
                SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
                SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
            };
            let attempt = (|| {
                let socket = UdpSocket::bind(bind)?;
                socket.connect(server)?;
                socket.send(&request)?;
                // One wait for the answer however many stray datagrams arrive meanwhile.
                let until = std::time::Instant::now() + wait;
                let mut buf = [0u8; 1500];
                loop {
                    let left = until.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return Err(io::Error::new(io::ErrorKind::TimedOut, "no answer"));
                    }
                    socket.set_read_timeout(Some(left))?;
                    let n = socket.recv(&mut buf).map_err(|e| match e.kind() {
                        io::ErrorKind::WouldBlock => {
                            io::Error::new(io::ErrorKind::TimedOut, "no answer")
                        }
                        _ => e,
                    })?;
                    // Ignore stray datagrams that are not our answer.
                    if let Some(ips) = decode_answer(&buf[..n], id) {
                        return ips;
                    }
                }
            })();
            match attempt {
                Ok(ips) => return Ok(ips),
                Err(e) => {
                    let text = format!("nameserver {server}: {}", super::describe_io(&e));
                    last_error = io::Error::new(e.kind(), text);
                }
            }
        }
        Err(last_error)
    }
}

impl Config {
    fn parse(hosts_text: String, resolv_conf: &str) -> Config {
        let mut config = Config {
            hosts_text,
            nameservers: Vec::new(),
            search: Vec::new(),
            ndots: 1,
        };
        for line in resolv_conf.lines() {
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    // Zone ids (`fe80::1%eth0`) are not supported by std parsing; skip those.
                    if let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) {
                        config.nameservers.push(SocketAddr::new(ip, 53));
                    }
                }
                Some("search") | Some("domain") => {
                    config.search = words.map(|w| w.trim_end_matches('.').to_string()).collect();
                }
                Some("options") => {
                    for option in words {
                        if let Some(n) = option.strip_prefix("ndots:").and_then(|n| n.parse().ok())
                        {
                            config.ndots = n;
                        }
                    }
                }
                _ => {}
            }
        }
        if config.nameservers.is_empty() {
            config
                .nameservers
                .push(SocketAddr::from((Ipv4Addr::LOCALHOST, 53)));
        }
        config
    }
}

fn hosts_lookup(hosts_text: &str, name: &str) -> Vec<IpAddr> {
    hosts_text
        .lines()
        .filter_map(|line| {
            let mut words = line.split('#').next()?.split_whitespace();
            let ip = words.next()?.parse::<IpAddr>().ok()?;
            words
                .any(|alias| alias.eq_ignore_ascii_case(name))
                .then_some(ip)
        })
        .collect()
}

fn encode_query(id: u16, name: &str, qtype: u16) -> io::Result<Vec<u8>> {
    let invalid = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid host name `{name}`"),
        )
    };
    let mut packet = Vec::with_capacity(32 + name.len());
    packet.extend_from_slice(&id.to_be_bytes());
    packet.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD; one question
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(invalid());
        }
        packet.push(label.len() as u8);
        packet.extend_from_slice(label.as_bytes());
    }
    if packet.len() > 12 + 255 {
        return Err(invalid());
    }
    packet.push(0);
    packet.extend_from_slice(&qtype.to_be_bytes());
    packet.extend_from_slice(&1u16.to_be_bytes()); // class IN
    Ok(packet)
}

/// The A/AAAA records of a response to query `id`: `None` when the packet is not that
/// response, `Some(Err)` for a server failure, `Some(Ok(empty))` for "no such name".
pub(crate) fn decode_answer(packet: &[u8], id: u16) -> Option<io::Result<Vec<IpAddr>>> {
    let u16_at = |at: usize| {
        packet
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let flags = u16_at(2)?;
    if u16_at(0)? != id || flags & 0x8000 == 0 {
        return None;
    }
    match flags & 0x0f {
        0 | 3 => {}
        rcode => {
            return Some(Err(io::Error::other(format!(
                "nameserver failed with rcode {rcode}"
            ))));
        }
    }
    let (questions, answers) = (u16_at(4)?, u16_at(6)?);
    let mut at = 12;
    for _ in 0..questions {
        at = skip_name(packet, at)? + 4;
    }
    let mut ips = Vec::new();
    for _ in 0..answers {
        at = skip_name(packet, at)?;
        let (rtype, len) = (u16_at(at)?, u16_at(at + 8)? as usize);
        let data = packet.get(at + 10..at + 10 + len)?;
        match (rtype, len) {
            (QTYPE_A, 4) => ips.push(IpAddr::from(<[u8; 4]>::try_from(data).ok()?)),
            (QTYPE_AAAA, 16) => ips.push(IpAddr::from(<[u8; 16]>::try_from(data).ok()?)),
            _ => {}
        }
        at += 10 + len;
    }
    Some(Ok(ips))
}

/// The offset after a (possibly compressed) name.
fn skip_name(packet: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *packet.get(at)?;
        match len {
            0 => return Some(at + 1),
            l if l & 0xc0 == 0xc0 => return Some(at + 2),
            l => at += 1 + l as usize,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    #[test]
    fn hosts_file_wins_and_comments_are_ignored() {
        let resolver = Resolver::from_config(
            "127.0.0.1 localhost\n# 10.0.0.1 ctl\nfd00::10 Controller-0.internalapi ctl0 # x\n"
                .into(),
            "",
        );
        let deadline = Deadline::after(Duration::from_secs(1));
        assert_eq!(
            resolver
                .resolve("controller-0.INTERNALAPI.", 8774, &deadline)
                .unwrap(),
            ["[fd00::10]:8774".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(
            resolver.resolve("::1", 5, &deadline).unwrap()[0].to_string(),
            "[::1]:5"
        );
        let empty = Resolver::from_config(String::new(), "");
        assert_eq!(
            empty.resolve("localhost", 1, &deadline).unwrap()[0].to_string(),
            "127.0.0.1:1"
        );
    }

    #[test]
    fn resolv_conf_search_and_ndots_order_candidates() {
        let resolver = Resolver::from_config(
            String::new(),
            "nameserver 10.0.0.2\nsearch ns.svc.cluster.local svc.cluster.local\noptions ndots:5 timeout:1\n",
        );
        assert_eq!(
            resolver.config().nameservers,
            ["10.0.0.2:53".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(
            resolver.candidates("keystone"),
            [
                "keystone.ns.svc.cluster.local",
                "keystone.svc.cluster.local",
                "keystone"
            ]
        );
        assert_eq!(resolver.candidates("a.b."), ["a.b"]);
    }

    /// A real UDP nameserver on loopback that answers A queries for `api.test` with a
    /// compressed answer and NXDOMAIN for everything else.
    fn spawn_nameserver() -> SocketAddr {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok((n, peer)) = socket.recv_from(&mut buf) {
                let query = &buf[..n];
                let qtype = u16::from_be_bytes([query[n - 4], query[n - 3]]);
                let known = query[12..].starts_with(b"\x03api\x04test\x00");
                let mut reply = query.to_vec();
                reply[2] |= 0x80;
                if !known {
                    reply[3] = 3;
                } else if qtype == QTYPE_A {
                    reply[7] = 1;
                    reply.extend_from_slice(&[
                        0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 7,
                    ]);
                }
                socket.send_to(&reply, peer).unwrap();
            }
        });
        addr
    }

    #[test]
    fn queries_a_real_udp_nameserver() {
        let mut resolver = Resolver::from_config(String::new(), "search test\n");
        resolver.config.get_mut().unwrap().nameservers = vec![spawn_nameserver()];
        let deadline = Deadline::after(Duration::from_secs(2));
        assert_eq!(
            resolver.resolve("api", 80, &deadline).unwrap(),
            ["192.0.2.7:80".parse::<SocketAddr>().unwrap()]
        );
        let err = resolver
            .resolve("missing.example", 80, &deadline)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("could not resolve host `missing.example`"),
            "{err}"
        );
    }

    #[test]
    fn a_silent_nameserver_is_bounded_by_the_deadline() {
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut resolver = Resolver::from_config(String::new(), "");
        resolver.config.get_mut().unwrap().nameservers = vec![silent.local_addr().unwrap()];
        let deadline = Deadline::after(Duration::from_millis(200));
        let started = std::time::Instant::now();
        let err = resolver.resolve("api.test", 80, &deadline).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    proptest::proptest! {
        #![proptest_config(crate::fuzz::config())]

        /// `/etc/hosts` and `/etc/resolv.conf` as the container has them.
        #[test]
        fn fuzz_resolver_files_never_panic(hosts in crate::fuzz::config_text(), resolv in crate::fuzz::config_text(), name in "[a-z.]{0,12}") {
            let keyed = format!("nameserver {resolv}\nsearch {resolv}\noptions ndots:{resolv} timeout:{resolv}\n");
            for resolv_conf in [&resolv, &keyed] {
                let _ = Resolver::from_config(hosts.clone(), resolv_conf).candidates(&name);
            }
            let _ = hosts_lookup(&hosts, &name);
        }
    }
}
