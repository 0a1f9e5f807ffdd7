//! The MySQL/MariaDB client protocol, enough to log in and run one text query: handshake v10,
//! `mysql_native_password` and the `caching_sha2_password` fast path (with auth switches
//! between them), `COM_QUERY` and its text result set.

use std::fmt;
use std::io::{BufReader, Read, Write};
use std::path::PathBuf;

use healthcheck_spec::address::join_host_port;
use ring::digest;

use super::{Cursor, describe_failure, read_bounded, text};
use crate::context::Context;
use crate::net::{DeadlineStream, connect, connect_unix, describe_io};
use crate::{Deadline, Outcome};

pub struct MysqlTarget {
    pub address: MysqlAddress,
    pub user: String,
    pub password: Option<String>,
}

pub enum MysqlAddress {
    Tcp { host: String, port: u16 },
    Unix(PathBuf),
}

impl fmt::Display for MysqlAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MysqlAddress::Tcp { host, port } => f.write_str(&join_host_port(host, *port)),
            MysqlAddress::Unix(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Connects, authenticates, runs `SELECT 1`.
pub fn select_one(target: &MysqlTarget, ctx: &crate::context::Context) -> Outcome {
    let prefix = format!("mysql {}", target.address);
    match query(target, ctx, "SELECT 1") {
        Ok(result) if result.rows == [vec![Some("1".to_string())]] => Outcome::healthy(format!(
            "{prefix}: authenticated as {}, SELECT 1 ok",
            target.user
        )),
        Ok(result) => Outcome::unhealthy(format!(
            "{prefix}: SELECT 1 returned {:?} instead of 1",
            result.rows
        )),
        Err(e) => Outcome::unhealthy(format!("{prefix}: {e}")),
    }
}

/// Connects, authenticates, reads `SHOW STATUS LIKE 'wsrep_local_state_comment'`; healthy
/// when `Synced`, with Kolla's messages.
pub fn galera_synced(target: &MysqlTarget, ctx: &crate::context::Context) -> Outcome {
    let prefix = format!("mysql {}", target.address);
    match query(target, ctx, "SHOW STATUS LIKE 'wsrep_local_state_comment'") {
        Ok(result) => {
            let verdict = galera_verdict(&result);
            Outcome {
                healthy: verdict.healthy,
                message: format!("{prefix}: {}", verdict.message),
            }
        }
        Err(e) => Outcome::unhealthy(format!("{prefix}: {e}")),
    }
}

fn galera_verdict(result: &ResultSet) -> Outcome {
    const NOT_SYNCED: &str = "MariaDB Galera Cluster Node is NOT synced";
    match result.rows.first().and_then(|row| row.get(1)) {
        Some(Some(state)) if state == "Synced" => {
            Outcome::healthy("MariaDB Galera Cluster Node is synced.")
        }
        Some(Some(state)) => {
            Outcome::unhealthy(format!("{NOT_SYNCED} (wsrep_local_state_comment: {state})"))
        }
        _ => Outcome::unhealthy(format!(
            "{NOT_SYNCED}: the server reports no wsrep_local_state_comment \
             (not a Galera node, or wsrep is off)"
        )),
    }
}

/// Logs in and runs one query, over TCP or a Unix socket.
fn query(target: &MysqlTarget, ctx: &Context, sql: &str) -> Result<ResultSet, String> {
    let password = target.password.as_deref().unwrap_or("").as_bytes();
    match &target.address {
        MysqlAddress::Tcp { host, port } => {
            let tcp = connect(&ctx.resolver, host, *port, &ctx.deadline)?;
            let stream = DeadlineStream::new(tcp, ctx.deadline);
            Session::login(stream, ctx.deadline, &target.user, password, false)?.query(sql)
        }
        MysqlAddress::Unix(path) => {
            let unix = connect_unix(path.as_os_str().as_encoded_bytes(), false, &ctx.deadline)
                .map_err(|e| format!("cannot connect: {}", describe_io(&e)))?;
            let stream = DeadlineStream::new(unix, ctx.deadline);
            Session::login(stream, ctx.deadline, &target.user, password, true)?.query(sql)
        }
    }
}

// Capability flags (protocol documentation: "Capabilities Flags").
const CLIENT_LONG_PASSWORD: u32 = 1;
const CLIENT_PROTOCOL_41: u32 = 0x200;
const CLIENT_TRANSACTIONS: u32 = 0x2000;
const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
const CLIENT_PLUGIN_AUTH: u32 = 0x8_0000;
const CLIENT_DEPRECATE_EOF: u32 = 0x100_0000;

/// What the client asks for; the session uses what the server also offers.
const CLIENT_WANTED: u32 = CLIENT_LONG_PASSWORD
    | CLIENT_PROTOCOL_41
    | CLIENT_TRANSACTIONS
    | CLIENT_SECURE_CONNECTION
    | CLIENT_PLUGIN_AUTH
    | CLIENT_DEPRECATE_EOF;

/// 0xFFFFFF announces a payload continued in the next packet: nothing this client reads is
/// that large, so a packet of 16 MiB or more is refused as hostile.
const MAX_PACKET: usize = 0xFF_FFFF - 1;
/// A greeting or an authentication exchange fits in far less.
const MAX_AUTH_PACKET: usize = 16 * 1024;
/// `utf8_general_ci`, which every server since 4.1 knows.
const CHARSET_UTF8: u8 = 33;
/// Result sets this client accepts (it only runs one-row queries).
const MAX_COLUMNS: u64 = 64;
const MAX_ROWS: usize = 1024;
/// Bytes of result packets in all: rows of 16 MiB each would otherwise take gigabytes.
const MAX_RESULT_BYTES: usize = 1024 * 1024;
/// Auth switches and extra rounds before the server must have decided.
const MAX_AUTH_ROUNDS: usize = 4;

/// Packet framing: 3-byte little-endian length, a sequence number, the payload. Reads are
/// buffered: a server's reply (several packets) then takes one receive, not two per packet.
struct Packets<S> {
    stream: BufReader<S>,
    deadline: Deadline,
    sequence: u8,
}

impl<S: Read + Write> Packets<S> {
    fn read(&mut self, max: usize, during: &str) -> Result<Vec<u8>, String> {
        let mut header = [0u8; 4];
        self.stream
            .read_exact(&mut header)
            .map_err(|e| describe_failure(&e, during, &self.deadline))?;
        let (len, sequence) = parse_header(header);
        if sequence != self.sequence {
            return Err(format!(
                "not a MySQL server, or a broken one: packet {sequence} arrived while {during}, expected packet {}",
                self.sequence
            ));
        }
        if len > max {
            return Err(format!(
                "the server sent a {len}-byte packet while {during}, more than the {max} allowed"
            ));
        }
        let payload = read_bounded(&mut self.stream, len)
            .map_err(|e| describe_failure(&e, during, &self.deadline))?;
        self.sequence = sequence.wrapping_add(1);
        Ok(payload)
    }

    fn write(&mut self, payload: &[u8], during: &str) -> Result<(), String> {
        let stream = self.stream.get_mut();
        stream
            .write_all(&frame(self.sequence, payload))
            .and_then(|_| stream.flush())
            .map_err(|e| describe_failure(&e, during, &self.deadline))?;
        self.sequence = self.sequence.wrapping_add(1);
        Ok(())
    }
}

fn parse_header(header: [u8; 4]) -> (usize, u8) {
    let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
    (len, header[3])
}

fn frame(sequence: u8, payload: &[u8]) -> Vec<u8> {
    debug_assert!(payload.len() <= MAX_PACKET);
    let len = (payload.len() as u32).to_le_bytes();
    let mut packet = Vec::with_capacity(4 + payload.len());
    packet.extend_from_slice(&[len[0], len[1], len[2], sequence]);
    packet.extend_from_slice(payload);
    packet
}

/// An authenticated connection.
struct Session<S> {
    packets: Packets<S>,
    capabilities: u32,
}

impl<S: Read + Write> Session<S> {
    /// `local`: the transport is a Unix socket, which the server trusts with a cleartext password.
    fn login(
        stream: S,
        deadline: Deadline,
        user: &str,
        password: &[u8],
        local: bool,
    ) -> Result<Self, String> {
        let mut packets = Packets {
            stream: BufReader::new(stream),
            deadline,
            sequence: 0,
        };
        let greeting = parse_greeting(&packets.read(MAX_AUTH_PACKET, "reading the greeting")?)?;
        let capabilities = greeting.capabilities & CLIENT_WANTED;
        // A server that does not know the default plugin's name, or offers one this client
        // lacks, gets a native-password answer: it switches to the user's plugin if needed.
        let mut auth = Auth {
            plugin: Plugin::named(&greeting.plugin).unwrap_or(Plugin::NativePassword),
            nonce: greeting.scramble,
            local,
        };
        let response = handshake_response(
            capabilities,
            user,
            &auth.plugin.scramble(password, &auth.nonce),
            auth.plugin.name(),
        );
        packets.write(&response, "sending the login")?;
        for _ in 0..MAX_AUTH_ROUNDS {
            let reply = packets.read(MAX_AUTH_PACKET, "authenticating")?;
            match auth.step(&reply, password)? {
                AuthStep::Done => {
                    return Ok(Session {
                        packets,
                        capabilities,
                    });
                }
                AuthStep::Reply(data) => packets.write(&data, "authenticating")?,
                AuthStep::Wait => {}
            }
        }
        Err(format!(
            "the server did not decide on the login after {MAX_AUTH_ROUNDS} rounds"
        ))
    }

    /// `COM_QUERY` and its text result set, then `COM_QUIT`.
    fn query(mut self, sql: &str) -> Result<ResultSet, String> {
        self.packets.sequence = 0;
        let mut command = vec![0x03];
        command.extend_from_slice(sql.as_bytes());
        self.packets.write(&command, "sending the query")?;
        let mut reader = ResultSetReader::new(self.capabilities & CLIENT_DEPRECATE_EOF != 0);
        let mut budget = MAX_RESULT_BYTES;
        let result = loop {
            let packet = self
                .packets
                .read(budget, "reading the result (1 MiB at most in all)")?;
            budget -= packet.len();
            if let Some(result) = reader.feed(&packet)? {
                break result;
            }
        };
        self.packets.sequence = 0;
        // Saying goodbye spares the server an "aborted connection" warning; its failure is not
        // the service's.
        let _ = self.packets.write(&[0x01], "quitting");
        Ok(result)
    }
}

pub(crate) struct Greeting {
    capabilities: u32,
    scramble: Vec<u8>,
    plugin: String,
}

pub(crate) fn parse_greeting(packet: &[u8]) -> Result<Greeting, String> {
    let mut c = Cursor::new(packet, "greeting");
    match c.u8()? {
        10 => {}
        0xFF => {
            return Err(format!(
                "the server refused the connection: {}",
                ServerError::parse(packet)?
            ));
        }
        9 => {
            return Err(
                "the server speaks protocol version 9 (MySQL before 3.21), which is not supported"
                    .into(),
            );
        }
        other => {
            return Err(format!(
                "not a MySQL server: its greeting starts with byte {other:#04x}, not protocol version 10"
            ));
        }
    }
    c.until_nul(); // server version
    c.take(4)?; // connection id
    let mut scramble = c.take(8)?.to_vec();
    c.take(1)?; // filler
    let mut capabilities = u16::from_le_bytes(c.array()?) as u32;
    let mut plugin = String::new();
    if !c.is_empty() {
        c.take(1)?; // character set
        c.take(2)?; // status flags
        capabilities |= (u16::from_le_bytes(c.array()?) as u32) << 16;
        let scramble_len = c.u8()? as usize;
        c.take(10)?; // reserved (MariaDB keeps extended capabilities in the last 4)
        if capabilities & CLIENT_SECURE_CONNECTION != 0 {
            let part2 = scramble_len.saturating_sub(8).max(13);
            scramble.extend_from_slice(c.take(part2)?);
        }
        if capabilities & CLIENT_PLUGIN_AUTH != 0 {
            plugin = text(c.until_nul());
        }
    }
    if capabilities & CLIENT_PROTOCOL_41 == 0 || capabilities & CLIENT_SECURE_CONNECTION == 0 {
        return Err("the server lacks the 4.1 protocol (CLIENT_PROTOCOL_41 and CLIENT_SECURE_CONNECTION), which is required".into());
    }
    Ok(Greeting {
        capabilities,
        scramble: nonce(&scramble).to_vec(),
        plugin,
    })
}

/// The 20-byte nonce of a scramble (servers append a NUL).
fn nonce(scramble: &[u8]) -> &[u8] {
    let scramble = scramble.strip_suffix(&[0]).unwrap_or(scramble);
    &scramble[..scramble.len().min(20)]
}

fn handshake_response(capabilities: u32, user: &str, auth: &[u8], plugin: &str) -> Vec<u8> {
    let mut packet = Vec::with_capacity(64 + user.len());
    packet.extend_from_slice(&capabilities.to_le_bytes());
    packet.extend_from_slice(&(MAX_PACKET as u32).to_le_bytes());
    packet.push(CHARSET_UTF8);
    packet.extend_from_slice(&[0; 23]);
    packet.extend_from_slice(user.as_bytes());
    packet.push(0);
    // Scrambles are at most 32 bytes: a one-byte length reads the same as a length-encoded one.
    packet.push(auth.len() as u8);
    packet.extend_from_slice(auth);
    if capabilities & CLIENT_PLUGIN_AUTH != 0 {
        packet.extend_from_slice(plugin.as_bytes());
        packet.push(0);
    }
    packet
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Plugin {
    NativePassword,
    CachingSha2Password,
}

impl Plugin {
    fn named(name: &str) -> Option<Plugin> {
        match name {
            "mysql_native_password" => Some(Plugin::NativePassword),
            "caching_sha2_password" => Some(Plugin::CachingSha2Password),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Plugin::NativePassword => "mysql_native_password",
            Plugin::CachingSha2Password => "caching_sha2_password",
        }
    }

    /// The proof of the password for this nonce; empty for an empty password.
    fn scramble(self, password: &[u8], nonce: &[u8]) -> Vec<u8> {
        if password.is_empty() {
            return Vec::new();
        }
        match self {
            // SHA1(password) XOR SHA1(nonce + SHA1(SHA1(password)))
            Plugin::NativePassword => {
                let algorithm = &digest::SHA1_FOR_LEGACY_USE_ONLY;
                let hashed = digest::digest(algorithm, password);
                let double = digest::digest(algorithm, hashed.as_ref());
                let mask = digest_of(algorithm, &[nonce, double.as_ref()]);
                xor(hashed.as_ref(), &mask)
            }
            // SHA256(password) XOR SHA256(SHA256(SHA256(password)) + nonce)
            Plugin::CachingSha2Password => {
                let algorithm = &digest::SHA256;
                let hashed = digest::digest(algorithm, password);
                let double = digest::digest(algorithm, hashed.as_ref());
                let mask = digest_of(algorithm, &[double.as_ref(), nonce]);
                xor(hashed.as_ref(), &mask)
            }
        }
    }
}

fn digest_of(algorithm: &'static digest::Algorithm, parts: &[&[u8]]) -> Vec<u8> {
    let mut context = digest::Context::new(algorithm);
    for part in parts {
        context.update(part);
    }
    context.finish().as_ref().to_vec()
}

fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

/// Where the login stands: the plugin in use and its nonce, over which transport.
struct Auth {
    plugin: Plugin,
    nonce: Vec<u8>,
    local: bool,
}

#[derive(Debug, PartialEq)]
enum AuthStep {
    Done,
    Reply(Vec<u8>),
    Wait,
}

impl Auth {
    /// Reacts to one server packet during login.
    fn step(&mut self, packet: &[u8], password: &[u8]) -> Result<AuthStep, String> {
        match packet.first() {
            Some(0x00) => Ok(AuthStep::Done),
            Some(0xFF) => Err(format!(
                "authentication failed: {}",
                ServerError::parse(packet)?
            )),
            Some(0xFE) if packet.len() == 1 => Err(
                "the server asks for the pre-4.1 password scheme (mysql_old_password), which is not supported"
                    .into(),
            ),
            Some(0xFE) => {
                let mut c = Cursor::new(&packet[1..], "auth switch request");
                let name = text(c.until_nul());
                self.plugin = Plugin::named(&name).ok_or_else(|| {
                    format!(
                        "the server asks for authentication plugin {name}, which is not supported \
                         (supported: mysql_native_password, caching_sha2_password)"
                    )
                })?;
                self.nonce = nonce(c.rest()).to_vec();
                Ok(AuthStep::Reply(self.plugin.scramble(password, &self.nonce)))
            }
            Some(0x01) if self.plugin == Plugin::CachingSha2Password => match packet.get(1) {
                // Fast authentication succeeded: an OK packet follows.
                Some(3) => Ok(AuthStep::Wait),
                // Full authentication: the server accepts the password itself over a Unix socket.
                Some(4) if self.local => Ok(AuthStep::Reply([password, &[0]].concat())),
                Some(4) => Err(
                    "caching_sha2_password asks for full authentication (the user is not in the \
                     server's cache), which over TCP needs TLS or the server's RSA key: not \
                     supported; check over the Unix socket, log in once with another client, or \
                     use mysql_native_password"
                        .into(),
                ),
                other => Err(format!(
                    "unexpected caching_sha2_password state {other:?} from the server"
                )),
            },
            Some(other) => Err(format!(
                "unexpected packet {other:#04x} from the server during {} authentication",
                self.plugin.name()
            )),
            None => Err("empty packet from the server during authentication".into()),
        }
    }
}

/// An ERR packet: `0xFF`, code, optional `#` + SQL state, message.
#[derive(Debug, PartialEq)]
struct ServerError {
    code: u16,
    state: Option<String>,
    message: String,
}

impl ServerError {
    fn parse(packet: &[u8]) -> Result<ServerError, String> {
        let mut c = Cursor::new(packet, "error packet");
        c.u8()?;
        let code = u16::from_le_bytes(c.array()?);
        let mut rest = c.rest();
        let mut state = None;
        if let Some(after) = rest.strip_prefix(b"#")
            && after.len() >= 5
        {
            state = Some(text(&after[..5]));
            rest = &after[5..];
        }
        Ok(ServerError {
            code,
            state,
            message: text(rest),
        })
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.state {
            Some(state) => write!(
                f,
                "{} (error {}, SQLSTATE {state})",
                self.message, self.code
            ),
            None => write!(f, "{} (error {})", self.message, self.code),
        }
    }
}

/// A text result set: column names and rows of nullable values.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct ResultSet {
    columns: Vec<String>,
    rows: Vec<Vec<Option<String>>>,
}

/// Consumes a query's response packet by packet.
pub(crate) struct ResultSetReader {
    deprecate_eof: bool,
    columns_left: Option<u64>,
    columns_ended: bool,
    result: ResultSet,
}

impl ResultSetReader {
    pub(crate) fn new(deprecate_eof: bool) -> Self {
        ResultSetReader {
            deprecate_eof,
            columns_left: None,
            columns_ended: false,
            result: ResultSet::default(),
        }
    }

    /// The finished result set once its last packet is fed.
    pub(crate) fn feed(&mut self, packet: &[u8]) -> Result<Option<ResultSet>, String> {
        if packet.first() == Some(&0xFF) {
            return Err(format!("query failed: {}", ServerError::parse(packet)?));
        }
        let mut c = Cursor::new(packet, "result packet");
        match self.columns_left {
            None => {
                match packet.first() {
                    Some(0x00) => return Err("the query returned no result set".into()),
                    Some(0xFB) => {
                        return Err("the server asked to read a local file; refused".into());
                    }
                    _ => {}
                }
                let count = lenenc_int(&mut c)?.ok_or("the column count is NULL")?;
                if count == 0 || count > MAX_COLUMNS {
                    return Err(format!(
                        "the result has {count} columns; expected 1 to {MAX_COLUMNS}"
                    ));
                }
                self.columns_left = Some(count);
            }
            Some(left) if left > 0 => {
                // catalog, schema, table, org_table, name, ...
                for _ in 0..4 {
                    lenenc_bytes(&mut c)?;
                }
                let name = lenenc_bytes(&mut c)?.ok_or("a column has no name")?;
                self.result.columns.push(text(name));
                self.columns_left = Some(left - 1);
            }
            Some(_) if !self.deprecate_eof && !self.columns_ended => {
                if !is_terminator(packet) {
                    return Err("the column definitions do not end with an EOF packet".into());
                }
                self.columns_ended = true;
            }
            Some(_) => {
                // 16 MiB packets are refused, so a row cannot start with 0xFE (an 8-byte length).
                if is_terminator(packet) {
                    return Ok(Some(std::mem::take(&mut self.result)));
                }
                if self.result.rows.len() == MAX_ROWS {
                    return Err(format!("the result has more than {MAX_ROWS} rows"));
                }
                let row = (0..self.result.columns.len())
                    .map(|_| Ok(lenenc_bytes(&mut c)?.map(text)))
                    .collect::<Result<Vec<_>, String>>()?;
                self.result.rows.push(row);
            }
        }
        Ok(None)
    }
}

/// EOF (or, with CLIENT_DEPRECATE_EOF, an OK with the 0xFE header).
fn is_terminator(packet: &[u8]) -> bool {
    packet.first() == Some(&0xFE)
}

/// A length-encoded integer; `None` is SQL NULL (0xFB).
fn lenenc_int(c: &mut Cursor) -> Result<Option<u64>, String> {
    let first = c.u8()?;
    let width = match first {
        0..=0xFA => return Ok(Some(first as u64)),
        0xFB => return Ok(None),
        0xFC => 2,
        0xFD => 3,
        0xFE => 8,
        0xFF => return Err("invalid length-encoded integer 0xFF".into()),
    };
    let mut bytes = [0u8; 8];
    bytes[..width].copy_from_slice(c.take(width)?);
    Ok(Some(u64::from_le_bytes(bytes)))
}

fn lenenc_bytes<'a>(c: &mut Cursor<'a>) -> Result<Option<&'a [u8]>, String> {
    match lenenc_int(c)? {
        None => Ok(None),
        Some(len) => {
            let len = usize::try_from(len).map_err(|_| "length out of range".to_string())?;
            Ok(Some(c.take(len)?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    const NONCE: &[u8; 20] = b"abcdefghijklmnopqrst";

    /// Vectors computed independently (Python hashlib) from the published formulas.
    #[test]
    fn scrambles_match_known_vectors() {
        assert_eq!(
            hex(&Plugin::NativePassword.scramble(b"secret", NONCE)),
            NATIVE_VECTOR
        );
        assert_eq!(
            hex(&Plugin::CachingSha2Password.scramble(b"secret", NONCE)),
            SHA2_VECTOR
        );
        assert!(Plugin::NativePassword.scramble(b"", NONCE).is_empty());
    }

    const NATIVE_VECTOR: &str = "8817c50fa779daef010ee7577825b0847df9842e";
    const SHA2_VECTOR: &str = "c76e2898612a4cf042c77fa8c4702c4c64c0c2c557c53c4d75595aaa6abae809";

    #[test]
    fn frames_and_headers_round_trip() {
        let packet = frame(3, b"\x03SELECT 1");
        assert_eq!(&packet[..4], &[9, 0, 0, 3]);
        assert_eq!(parse_header(packet[..4].try_into().unwrap()), (9, 3));
        assert_eq!(parse_header([0xFF, 0xFF, 0xFF, 0]), (0xFF_FFFF, 0));
    }

    fn packets(input: &[u8]) -> Packets<std::io::Cursor<Vec<u8>>> {
        Packets {
            stream: BufReader::new(std::io::Cursor::new(input.to_vec())),
            deadline: Deadline::after(std::time::Duration::from_secs(5)),
            sequence: 0,
        }
    }

    #[test]
    fn hostile_framing_is_refused() {
        let err = packets(b"SSH-2.0-OpenSSH_9.2\r\n")
            .read(MAX_AUTH_PACKET, "reading the greeting")
            .unwrap_err();
        assert!(err.starts_with("not a MySQL server"), "{err}");
        let err = packets(&[0xFF, 0xFF, 0xFF, 0])
            .read(MAX_PACKET, "reading the result")
            .unwrap_err();
        assert!(err.contains("more than the 16777214 allowed"), "{err}");
        let err = packets(&[10, 0, 0, 0, 1, 2])
            .read(MAX_PACKET, "reading the result")
            .unwrap_err();
        assert_eq!(
            err,
            "connection closed by the server while reading the result"
        );
    }

    /// A MariaDB 10.11 greeting as captured on the wire.
    fn mariadb_greeting() -> Vec<u8> {
        let mut g = vec![10];
        g.extend_from_slice(b"5.5.5-10.11.6-MariaDB-0+deb12u1\0");
        g.extend_from_slice(&7u32.to_le_bytes());
        g.extend_from_slice(b"abcdefgh\0");
        g.extend_from_slice(&0xF7FEu16.to_le_bytes());
        g.push(45);
        g.extend_from_slice(&2u16.to_le_bytes());
        g.extend_from_slice(&0x81BFu16.to_le_bytes());
        g.push(21);
        g.extend_from_slice(&[0; 6]);
        g.extend_from_slice(&[0x1D, 0, 0, 0]);
        g.extend_from_slice(b"ijklmnopqrst\0");
        g.extend_from_slice(b"mysql_native_password\0");
        g
    }

    #[test]
    fn parses_a_v10_greeting_and_rejects_others() {
        let greeting = parse_greeting(&mariadb_greeting()).unwrap();
        assert_eq!(greeting.scramble, NONCE);
        assert_eq!(greeting.plugin, "mysql_native_password");
        assert_ne!(greeting.capabilities & CLIENT_PLUGIN_AUTH, 0);
        assert_ne!(greeting.capabilities & CLIENT_DEPRECATE_EOF, 0);

        let err = parse_greeting(b"\x09").err().unwrap();
        assert!(err.contains("protocol version 9"), "{err}");
        let mut refused = vec![0xFF];
        refused.extend_from_slice(&1040u16.to_le_bytes());
        refused.extend_from_slice(b"Too many connections");
        assert_eq!(
            parse_greeting(&refused).err().unwrap(),
            "the server refused the connection: Too many connections (error 1040)"
        );
        let truncated = &mariadb_greeting()[..40];
        assert!(
            parse_greeting(truncated)
                .err()
                .unwrap()
                .starts_with("truncated greeting")
        );
    }

    #[test]
    fn handshake_response_layout() {
        let caps = CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH;
        let packet = handshake_response(caps, "monitor", &[1, 2, 3], "mysql_native_password");
        assert_eq!(&packet[..4], &caps.to_le_bytes());
        assert_eq!(packet[8], CHARSET_UTF8);
        assert_eq!(&packet[32..40], b"monitor\0");
        assert_eq!(&packet[40..44], &[3, 1, 2, 3]);
        assert_eq!(&packet[44..], b"mysql_native_password\0");
    }

    fn auth(plugin: Plugin) -> Auth {
        Auth {
            plugin,
            nonce: NONCE.to_vec(),
            local: false,
        }
    }

    #[test]
    fn auth_switches_to_native_password() {
        let mut a = auth(Plugin::CachingSha2Password);
        let mut switch = vec![0xFE];
        switch.extend_from_slice(b"mysql_native_password\0abcdefghijklmnopqrst\0");
        assert_eq!(
            a.step(&switch, b"secret").unwrap(),
            AuthStep::Reply(Plugin::NativePassword.scramble(b"secret", NONCE))
        );
        assert_eq!(a.plugin, Plugin::NativePassword);
        assert_eq!(a.step(&[0, 0, 0, 2, 0], b"secret").unwrap(), AuthStep::Done);
    }

    #[test]
    fn caching_sha2_fast_path_and_its_limits() {
        let mut a = auth(Plugin::CachingSha2Password);
        assert_eq!(a.step(&[1, 3], b"secret").unwrap(), AuthStep::Wait);
        let mut local = Auth {
            local: true,
            ..auth(Plugin::CachingSha2Password)
        };
        assert_eq!(
            local.step(&[1, 4], b"secret").unwrap(),
            AuthStep::Reply(b"secret\0".to_vec())
        );
        let err = a.step(&[1, 4], b"secret").unwrap_err();
        assert!(
            err.contains("full authentication") && err.contains("TLS"),
            "{err}"
        );
        let err = auth(Plugin::NativePassword)
            .step(&[1, 4], b"x")
            .unwrap_err();
        assert!(err.contains("unexpected packet 0x01"), "{err}");
    }

    #[test]
    fn unsupported_plugins_are_named() {
        for plugin in ["client_ed25519", "auth_gssapi_client"] {
            let mut switch = vec![0xFE];
            switch.extend_from_slice(plugin.as_bytes());
            switch.extend_from_slice(b"\0data");
            let err = auth(Plugin::NativePassword)
                .step(&switch, b"x")
                .unwrap_err();
            assert!(
                err.contains(plugin) && err.contains("not supported"),
                "{err}"
            );
        }
        let err = auth(Plugin::NativePassword)
            .step(&[0xFE], b"x")
            .unwrap_err();
        assert!(err.contains("mysql_old_password"), "{err}");
    }

    #[test]
    fn error_packets_decode() {
        let mut packet = vec![0xFF];
        packet.extend_from_slice(&1045u16.to_le_bytes());
        packet.extend_from_slice(
            b"#28000Access denied for user 'x'@'localhost' (using password: YES)",
        );
        let err = auth(Plugin::NativePassword)
            .step(&packet, b"x")
            .unwrap_err();
        assert_eq!(
            err,
            "authentication failed: Access denied for user 'x'@'localhost' (using password: YES) (error 1045, SQLSTATE 28000)"
        );
    }

    fn lenenc_str(s: &str) -> Vec<u8> {
        let mut v = vec![s.len() as u8];
        v.extend_from_slice(s.as_bytes());
        v
    }

    fn column(name: &str) -> Vec<u8> {
        let mut v = Vec::new();
        for part in ["def", "", "", "", name, ""] {
            v.extend(lenenc_str(part));
        }
        v.extend_from_slice(&[0x0C, 0x3F, 0, 1, 0, 0, 0, 8, 0x81, 0, 0, 0, 0]);
        v
    }

    fn read_all(deprecate_eof: bool, packets: &[Vec<u8>]) -> Result<ResultSet, String> {
        let mut reader = ResultSetReader::new(deprecate_eof);
        for (i, packet) in packets.iter().enumerate() {
            if let Some(result) = reader.feed(packet)? {
                assert_eq!(i, packets.len() - 1, "finished early");
                return Ok(result);
            }
        }
        panic!("not finished");
    }

    #[test]
    fn text_result_sets_with_and_without_eof() {
        let eof = vec![0xFE, 0, 0, 2, 0];
        let with_eof = [
            vec![1],
            column("1"),
            eof.clone(),
            lenenc_str("1"),
            eof.clone(),
        ];
        let expected = ResultSet {
            columns: vec!["1".into()],
            rows: vec![vec![Some("1".into())]],
        };
        assert_eq!(read_all(false, &with_eof).unwrap(), expected);
        let ok_terminated = [
            vec![1],
            column("1"),
            lenenc_str("1"),
            vec![0xFE, 0, 0, 2, 0, 0, 0],
        ];
        assert_eq!(read_all(true, &ok_terminated).unwrap(), expected);

        let status = [
            vec![2],
            column("Variable_name"),
            column("Value"),
            [lenenc_str("wsrep_local_state_comment"), vec![0xFB]].concat(),
            eof.clone(),
        ];
        let result = read_all(true, &status).unwrap();
        assert_eq!(
            result.rows,
            [vec![Some("wsrep_local_state_comment".into()), None]]
        );
        assert!(!galera_verdict(&result).healthy);
    }

    #[test]
    fn result_set_errors() {
        let mut error = vec![0xFF];
        error.extend_from_slice(&1064u16.to_le_bytes());
        error.extend_from_slice(b"#42000You have an error");
        let err = read_all(true, &[error]).unwrap_err();
        assert!(
            err.starts_with("query failed: You have an error (error 1064"),
            "{err}"
        );
        assert!(
            read_all(true, &[vec![0xFB, b'/']])
                .unwrap_err()
                .contains("local file")
        );
        assert!(
            read_all(true, &[vec![0xFC, 0xFF, 0xFF]])
                .unwrap_err()
                .contains("65535 columns")
        );
        // A row announcing more bytes than it holds.
        let err =
            read_all(true, &[vec![1], column("1"), vec![0xFC, 0xFF, 0xFF, b'1']]).unwrap_err();
        assert!(err.starts_with("truncated result packet"), "{err}");
    }

    #[test]
    fn galera_verdicts_use_kollas_words() {
        let status = |value: &str| ResultSet {
            columns: vec!["Variable_name".into(), "Value".into()],
            rows: vec![vec![
                Some("wsrep_local_state_comment".into()),
                Some(value.into()),
            ]],
        };
        assert_eq!(
            galera_verdict(&status("Synced")),
            Outcome::healthy("MariaDB Galera Cluster Node is synced.")
        );
        assert_eq!(
            galera_verdict(&status("Donor/Desynced")).message,
            "MariaDB Galera Cluster Node is NOT synced (wsrep_local_state_comment: Donor/Desynced)"
        );
        let missing = galera_verdict(&ResultSet::default());
        assert!(!missing.healthy && missing.message.contains("no wsrep_local_state_comment"));
    }
}
