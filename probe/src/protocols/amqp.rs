//! The AMQP 0-9-1 connection handshake (RabbitMQ): protocol header, Connection.Start,
//! Start-Ok with PLAIN credentials, Tune/Tune-Ok, Open/Open-Ok, then a clean Close.

use std::io::{BufReader, Read, Write};
use std::time::Duration;

use super::{Cursor, describe_failure, read_bounded, text};
use crate::context::Context;
use crate::net::{DeadlineStream, connect};
use crate::{Deadline, Outcome};

pub struct AmqpTarget {
    pub host: String,
    pub port: u16,
    pub credentials: Option<(String, String)>,
    pub vhost: String,
}

/// AMQP 0-9-1 handshake up to Connection.OpenOk (authenticated with PLAIN when credentials
/// are given; without credentials: protocol header + Connection.Start received proves a live
/// broker), then a clean Connection.Close.
pub fn handshake(target: &AmqpTarget, ctx: &crate::context::Context) -> Outcome {
    let address = healthcheck_spec::address::join_host_port(&target.host, target.port);
    match converse(target, ctx) {
        Ok(found) => Outcome::healthy(format!("amqp {address}: {found}")),
        Err(e) => Outcome::unhealthy(format!("amqp {address}: {e}")),
    }
}

const PROTOCOL_HEADER: &[u8; 8] = b"AMQP\x00\x00\x09\x01";
const FRAME_METHOD: u8 = 1;
const FRAME_HEARTBEAT: u8 = 8;
const FRAME_END: u8 = 0xCE;
/// The largest frame this client accepts and offers in Tune-Ok (RabbitMQ's default).
const MAX_FRAME: u32 = 128 * 1024;
/// Nesting of field tables and arrays a peer may send.
const MAX_TABLE_DEPTH: usize = 8;
/// How long the goodbye may take once the broker has proven healthy.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

const REPLY_SUCCESS: u16 = 200;
const ACCESS_REFUSED: u16 = 403;

fn converse(target: &AmqpTarget, ctx: &Context) -> Result<String, String> {
    let tcp = connect(&ctx.resolver, &target.host, target.port, &ctx.deadline)?;
    let mut conn = Connection {
        stream: BufReader::new(DeadlineStream::new(tcp, ctx.deadline)),
        deadline: ctx.deadline,
    };
    conn.send(PROTOCOL_HEADER, "sending the protocol header")?;
    let (properties, mechanisms) = match conn.method("waiting for Connection.Start")? {
        Method::Start {
            version: (0, 9),
            server_properties,
            mechanisms,
        } => (server_properties, mechanisms),
        Method::Start {
            version: (major, minor),
            ..
        } => {
            return Err(format!(
                "the broker offers AMQP {major}-{minor} in Connection.Start, not 0-9"
            ));
        }
        other => return Err(unexpected(&other, "Connection.Start")),
    };
    let server = server_name(&properties);
    let Some((user, password)) = &target.credentials else {
        // A Start-Ok cannot be skipped to reach Close: dropping the socket is all there is.
        return Ok(format!(
            "{server} speaks AMQP 0-9-1 (Connection.Start received; no credentials given)"
        ));
    };
    if !mechanisms.split(' ').any(|m| m == "PLAIN") {
        return Err(format!(
            "the broker does not offer PLAIN authentication (it offers: {mechanisms})"
        ));
    }
    conn.send_method(&start_ok(user, password), "sending Connection.Start-Ok")?;
    let authenticating = format!("authenticating as {user}");
    let tune = match conn.method(&authenticating) {
        Ok(Method::Tune(tune)) => tune,
        Ok(Method::Close(close)) => return Err(conn.refused(&close, &authenticating)),
        Ok(other) => return Err(unexpected(&other, "Connection.Tune")),
        // RabbitMQ's answer to a bad login from a client without authentication_failure_close.
        Err(e) if e.starts_with("connection closed") => {
            return Err(format!(
                "authentication failed (ACCESS_REFUSED): the broker closed the connection after Start-Ok as {user}"
            ));
        }
        Err(e) => return Err(e),
    };
    conn.send_method(&tune_ok(&tune), "sending Connection.Tune-Ok")?;
    conn.send_method(&open(&target.vhost), "sending Connection.Open")?;
    let opening = format!("opening vhost {}", target.vhost);
    match conn.method(&opening)? {
        Method::OpenOk => {}
        Method::Close(close) => return Err(conn.refused(&close, &opening)),
        other => return Err(unexpected(&other, "Connection.Open-Ok")),
    }
    conn.goodbye();
    Ok(format!(
        "authenticated as {user}, vhost {} open ({server})",
        target.vhost
    ))
}

fn unexpected(method: &Method, expected: &str) -> String {
    let sent = match method {
        Method::Start { .. } => "Connection.Start".to_string(),
        Method::Tune(_) => "Connection.Tune".to_string(),
        Method::OpenOk => "Connection.Open-Ok".to_string(),
        Method::Close(close) => format!("Connection.Close ({}; reply {})", close.text, close.code),
        Method::CloseOk => "Connection.Close-Ok".to_string(),
        Method::Other(class, method) => format!("method {class}.{method}"),
    };
    format!("the broker sent {sent} instead of {expected}")
}

/// `RabbitMQ 3.10.8`, from the Start's server properties.
fn server_name(properties: &Table) -> String {
    let field = |name: &str| {
        properties.iter().find_map(|(key, value)| match value {
            FieldValue::LongString(bytes) if key == name => Some(text(bytes)),
            _ => None,
        })
    };
    match (field("product"), field("version")) {
        (Some(product), Some(version)) => format!("{product} {version}"),
        (Some(product), None) => product,
        _ => "the broker".to_string(),
    }
}

/// Reads are buffered: a broker's reply then takes one receive, not two per frame.
struct Connection<S: crate::net::TimeoutSocket> {
    stream: BufReader<DeadlineStream<S>>,
    deadline: Deadline,
}

impl<S: crate::net::TimeoutSocket> Connection<S> {
    fn send(&mut self, bytes: &[u8], during: &str) -> Result<(), String> {
        let stream = self.stream.get_mut();
        stream
            .write_all(bytes)
            .and_then(|_| stream.flush())
            .map_err(|e| describe_failure(&e, during, &self.deadline))
    }

    fn send_method(&mut self, payload: &[u8], during: &str) -> Result<(), String> {
        self.send(&frame(FRAME_METHOD, 0, payload), during)
    }

    /// The next method frame on channel 0, skipping heartbeats.
    fn method(&mut self, during: &str) -> Result<Method, String> {
        loop {
            let mut header = [0u8; 7];
            self.stream
                .read_exact(&mut header)
                .map_err(|e| describe_failure(&e, during, &self.deadline))?;
            if header.starts_with(b"AMQP") {
                let mut last = [0u8; 1];
                self.stream
                    .read_exact(&mut last)
                    .map_err(|e| describe_failure(&e, during, &self.deadline))?;
                return Err(version_mismatch(&header[4..], last[0]));
            }
            let (kind, channel, size) = parse_frame_header(header)?;
            let mut body = read_bounded(&mut self.stream, size as usize + 1)
                .map_err(|e| describe_failure(&e, during, &self.deadline))?;
            if body.pop() != Some(FRAME_END) {
                return Err(
                    "a frame does not end with 0xCE: not an AMQP 0-9-1 broker, or a broken one"
                        .into(),
                );
            }
            match (kind, channel) {
                (FRAME_HEARTBEAT, _) => continue,
                (FRAME_METHOD, 0) => return Method::decode(&body),
                _ => {
                    return Err(format!(
                        "unexpected frame type {kind} on channel {channel} while {during}"
                    ));
                }
            }
        }
    }

    /// The broker's Connection.Close, acknowledged, as an error message.
    fn refused(&mut self, close: &Close, during: &str) -> String {
        let _ = self.send_method(
            &method_payload(CLOSE_OK, &[]),
            "sending Connection.Close-Ok",
        );
        let what = if close.code == ACCESS_REFUSED {
            "authentication failed"
        } else {
            "the broker refused"
        };
        format!(
            "{what} ({}; reply {}) while {during}",
            close.text, close.code
        )
    }

    /// Connection.Close and its Close-Ok, within a short grace: the broker has already proven
    /// healthy, so a slow goodbye must not turn the verdict.
    fn goodbye(&mut self) {
        if let Ok(left) = self.deadline.remaining() {
            self.deadline = Deadline::after(left.min(CLOSE_GRACE));
            self.stream.get_mut().set_deadline(self.deadline);
        }
        let close = close_payload(REPLY_SUCCESS, "Goodbye");
        if self.send_method(&close, "closing").is_ok() {
            while let Ok(method) = self.method("closing") {
                if matches!(method, Method::CloseOk | Method::Close(_)) {
                    break;
                }
            }
        }
    }
}

fn version_mismatch(version: &[u8], last: u8) -> String {
    format!(
        "the broker does not speak AMQP 0-9-1: it answered with protocol header AMQP {} {} {} {}",
        version[0], version[1], version[2], last
    )
}

/// Type, channel and payload size of a frame header; refuses what no 0-9-1 peer sends.
fn parse_frame_header(header: [u8; 7]) -> Result<(u8, u16, u32), String> {
    let kind = header[0];
    let channel = u16::from_be_bytes([header[1], header[2]]);
    let size = u32::from_be_bytes([header[3], header[4], header[5], header[6]]);
    if !matches!(kind, 1..=3 | FRAME_HEARTBEAT) {
        return Err(format!(
            "not an AMQP 0-9-1 broker: it sent {:?} where a frame header belongs",
            String::from_utf8_lossy(&header)
        ));
    }
    if size > MAX_FRAME {
        return Err(format!(
            "the broker sent a {size}-byte frame, more than the {MAX_FRAME} allowed"
        ));
    }
    Ok((kind, channel, size))
}

fn frame(kind: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(8 + payload.len());
    frame.push(kind);
    frame.extend_from_slice(&channel.to_be_bytes());
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(payload);
    frame.push(FRAME_END);
    frame
}

// (class, method) ids of the connection class.
const START: (u16, u16) = (10, 10);
const START_OK: (u16, u16) = (10, 11);
const TUNE: (u16, u16) = (10, 30);
const TUNE_OK: (u16, u16) = (10, 31);
const OPEN: (u16, u16) = (10, 40);
const OPEN_OK: (u16, u16) = (10, 41);
const CLOSE: (u16, u16) = (10, 50);
const CLOSE_OK: (u16, u16) = (10, 51);

#[derive(Debug, PartialEq)]
enum Method {
    Start {
        version: (u8, u8),
        server_properties: Table,
        mechanisms: String,
    },
    Tune(Tune),
    OpenOk,
    Close(Close),
    CloseOk,
    Other(u16, u16),
}

#[derive(Debug, PartialEq)]
struct Tune {
    channel_max: u16,
    frame_max: u32,
    heartbeat: u16,
}

#[derive(Debug, PartialEq)]
struct Close {
    code: u16,
    text: String,
}

impl Method {
    fn decode(payload: &[u8]) -> Result<Method, String> {
        let mut c = Cursor::new(payload, "method frame");
        let id = (
            u16::from_be_bytes(c.array()?),
            u16::from_be_bytes(c.array()?),
        );
        Ok(match id {
            START => {
                let version = (c.u8()?, c.u8()?);
                let server_properties = decode_table(&mut c, 0)?;
                let mechanisms = text(long_string(&mut c)?);
                long_string(&mut c)?; // locales
                Method::Start {
                    version,
                    server_properties,
                    mechanisms,
                }
            }
            TUNE => Method::Tune(Tune {
                channel_max: u16::from_be_bytes(c.array()?),
                frame_max: u32::from_be_bytes(c.array()?),
                heartbeat: u16::from_be_bytes(c.array()?),
            }),
            OPEN_OK => Method::OpenOk,
            CLOSE => Method::Close(Close {
                code: u16::from_be_bytes(c.array()?),
                text: text(short_string(&mut c)?),
            }),
            CLOSE_OK => Method::CloseOk,
            (class, method) => Method::Other(class, method),
        })
    }
}

fn method_payload(id: (u16, u16), arguments: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(4 + arguments.len());
    payload.extend_from_slice(&id.0.to_be_bytes());
    payload.extend_from_slice(&id.1.to_be_bytes());
    payload.extend_from_slice(arguments);
    payload
}

fn start_ok(user: &str, password: &str) -> Vec<u8> {
    let properties: Table = vec![
        ("product".into(), long_text("openstack-healthcheck")),
        ("version".into(), long_text(env!("CARGO_PKG_VERSION"))),
        (
            "capabilities".into(),
            // Ask for a Connection.Close naming the refusal instead of a silently closed socket.
            FieldValue::Table(vec![(
                "authentication_failure_close".into(),
                FieldValue::Bool(true),
            )]),
        ),
    ];
    let mut arguments = Vec::new();
    encode_table(&mut arguments, &properties);
    put_short_string(&mut arguments, b"PLAIN");
    put_long_string(&mut arguments, format!("\0{user}\0{password}").as_bytes());
    put_short_string(&mut arguments, b"en_US");
    method_payload(START_OK, &arguments)
}

fn tune_ok(tune: &Tune) -> Vec<u8> {
    // 0 means "no limit" from the broker; this client keeps its own.
    let frame_max = match tune.frame_max {
        0 => MAX_FRAME,
        max => max.min(MAX_FRAME),
    };
    let mut arguments = Vec::new();
    arguments.extend_from_slice(&tune.channel_max.to_be_bytes());
    arguments.extend_from_slice(&frame_max.to_be_bytes());
    // No heartbeats: the connection lives for one check.
    arguments.extend_from_slice(&0u16.to_be_bytes());
    method_payload(TUNE_OK, &arguments)
}

fn open(vhost: &str) -> Vec<u8> {
    let mut arguments = Vec::new();
    put_short_string(&mut arguments, vhost.as_bytes());
    put_short_string(&mut arguments, b""); // reserved (capabilities)
    arguments.push(0); // reserved (insist)
    method_payload(OPEN, &arguments)
}

fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut arguments = Vec::new();
    arguments.extend_from_slice(&code.to_be_bytes());
    put_short_string(&mut arguments, reason.as_bytes());
    arguments.extend_from_slice(&[0, 0, 0, 0]); // no failing class/method
    method_payload(CLOSE, &arguments)
}

/// A field table: ordered name/value pairs.
type Table = Vec<(String, FieldValue)>;

/// Field values as RabbitMQ encodes them (its errata of the 0-9-1 type letters).
#[derive(Clone, Debug, PartialEq)]
enum FieldValue {
    Bool(bool),
    I8(i8),
    U8(u8),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    F32(f32),
    F64(f64),
    Decimal(u8, u32),
    LongString(Vec<u8>),
    Bytes(Vec<u8>),
    Array(Vec<FieldValue>),
    Timestamp(u64),
    Table(Table),
    Void,
}

fn long_text(value: &str) -> FieldValue {
    FieldValue::LongString(value.as_bytes().to_vec())
}

fn short_string<'a>(c: &mut Cursor<'a>) -> Result<&'a [u8], String> {
    let len = c.u8()? as usize;
    c.take(len)
}

fn long_string<'a>(c: &mut Cursor<'a>) -> Result<&'a [u8], String> {
    let len = u32::from_be_bytes(c.array()?) as usize;
    c.take(len)
}

fn decode_table(c: &mut Cursor, depth: usize) -> Result<Table, String> {
    let mut fields = Cursor::new(long_string(c)?, "field table");
    let mut table = Vec::new();
    while !fields.is_empty() {
        let name = text(short_string(&mut fields)?);
        table.push((name, decode_value(&mut fields, depth)?));
    }
    Ok(table)
}

fn decode_value(c: &mut Cursor, depth: usize) -> Result<FieldValue, String> {
    if depth >= MAX_TABLE_DEPTH {
        return Err(format!("field tables nested deeper than {MAX_TABLE_DEPTH}"));
    }
    Ok(match c.u8()? {
        b't' => FieldValue::Bool(c.u8()? != 0),
        b'b' => FieldValue::I8(i8::from_be_bytes(c.array()?)),
        b'B' => FieldValue::U8(c.u8()?),
        b's' => FieldValue::I16(i16::from_be_bytes(c.array()?)),
        b'u' => FieldValue::U16(u16::from_be_bytes(c.array()?)),
        b'I' => FieldValue::I32(i32::from_be_bytes(c.array()?)),
        b'i' => FieldValue::U32(u32::from_be_bytes(c.array()?)),
        b'l' => FieldValue::I64(i64::from_be_bytes(c.array()?)),
        b'f' => FieldValue::F32(f32::from_be_bytes(c.array()?)),
        b'd' => FieldValue::F64(f64::from_be_bytes(c.array()?)),
        b'D' => FieldValue::Decimal(c.u8()?, u32::from_be_bytes(c.array()?)),
        b'S' => FieldValue::LongString(long_string(c)?.to_vec()),
        b'x' => FieldValue::Bytes(long_string(c)?.to_vec()),
        b'A' => {
            let mut items = Cursor::new(long_string(c)?, "field array");
            let mut array = Vec::new();
            while !items.is_empty() {
                array.push(decode_value(&mut items, depth + 1)?);
            }
            FieldValue::Array(array)
        }
        b'T' => FieldValue::Timestamp(u64::from_be_bytes(c.array()?)),
        b'F' => FieldValue::Table(decode_table(c, depth + 1)?),
        b'V' => FieldValue::Void,
        other => return Err(format!("unknown field type {:?}", other as char)),
    })
}

fn put_short_string(out: &mut Vec<u8>, value: &[u8]) {
    // Short strings hold at most 255 bytes; longer input (a vhost name) is cut, and the
    // broker then names the vhost it did not find.
    let value = &value[..value.len().min(255)];
    out.push(value.len() as u8);
    out.extend_from_slice(value);
}

fn put_long_string(out: &mut Vec<u8>, value: &[u8]) {
    out.extend_from_slice(&(value.len() as u32).to_be_bytes());
    out.extend_from_slice(value);
}

fn encode_table(out: &mut Vec<u8>, table: &Table) {
    let mut fields = Vec::new();
    for (name, value) in table {
        put_short_string(&mut fields, name.as_bytes());
        encode_value(&mut fields, value);
    }
    put_long_string(out, &fields);
}

fn encode_value(out: &mut Vec<u8>, value: &FieldValue) {
    match value {
        FieldValue::Bool(v) => out.extend_from_slice(&[b't', *v as u8]),
        FieldValue::I8(v) => out.extend_from_slice(&[b'b', *v as u8]),
        FieldValue::U8(v) => out.extend_from_slice(&[b'B', *v]),
        FieldValue::I16(v) => tagged(out, b's', &v.to_be_bytes()),
        FieldValue::U16(v) => tagged(out, b'u', &v.to_be_bytes()),
        FieldValue::I32(v) => tagged(out, b'I', &v.to_be_bytes()),
        FieldValue::U32(v) => tagged(out, b'i', &v.to_be_bytes()),
        FieldValue::I64(v) => tagged(out, b'l', &v.to_be_bytes()),
        FieldValue::F32(v) => tagged(out, b'f', &v.to_be_bytes()),
        FieldValue::F64(v) => tagged(out, b'd', &v.to_be_bytes()),
        FieldValue::Decimal(scale, v) => {
            out.extend_from_slice(&[b'D', *scale]);
            out.extend_from_slice(&v.to_be_bytes());
        }
        FieldValue::LongString(v) => {
            out.push(b'S');
            put_long_string(out, v);
        }
        FieldValue::Bytes(v) => {
            out.push(b'x');
            put_long_string(out, v);
        }
        FieldValue::Array(items) => {
            let mut encoded = Vec::new();
            for item in items {
                encode_value(&mut encoded, item);
            }
            out.push(b'A');
            put_long_string(out, &encoded);
        }
        FieldValue::Timestamp(v) => tagged(out, b'T', &v.to_be_bytes()),
        FieldValue::Table(table) => {
            out.push(b'F');
            encode_table(out, table);
        }
        FieldValue::Void => out.push(b'V'),
    }
}

fn tagged(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    out.push(tag);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_type() -> Table {
        vec![
            ("bool".into(), FieldValue::Bool(true)),
            ("i8".into(), FieldValue::I8(-2)),
            ("u8".into(), FieldValue::U8(200)),
            ("i16".into(), FieldValue::I16(-300)),
            ("u16".into(), FieldValue::U16(60000)),
            ("i32".into(), FieldValue::I32(-70000)),
            ("u32".into(), FieldValue::U32(4_000_000_000)),
            ("i64".into(), FieldValue::I64(-1 << 40)),
            ("f32".into(), FieldValue::F32(1.5)),
            ("f64".into(), FieldValue::F64(-2.25)),
            ("decimal".into(), FieldValue::Decimal(2, 12345)),
            ("string".into(), long_text("RabbitMQ")),
            ("bytes".into(), FieldValue::Bytes(vec![0, 255])),
            (
                "array".into(),
                FieldValue::Array(vec![FieldValue::Void, long_text("x")]),
            ),
            ("timestamp".into(), FieldValue::Timestamp(1_700_000_000)),
            (
                "table".into(),
                FieldValue::Table(vec![("inner".into(), FieldValue::Bool(false))]),
            ),
        ]
    }

    #[test]
    fn field_tables_round_trip() {
        let mut encoded = Vec::new();
        encode_table(&mut encoded, &every_type());
        let mut c = Cursor::new(&encoded, "test");
        assert_eq!(decode_table(&mut c, 0).unwrap(), every_type());
        assert!(c.is_empty());
    }

    #[test]
    fn hostile_tables_are_refused() {
        // A table announcing more bytes than the frame holds.
        let mut c = Cursor::new(&[0, 0, 0x10, 0, b'a'], "method frame");
        assert!(
            decode_table(&mut c, 0)
                .unwrap_err()
                .starts_with("truncated method frame")
        );
        // A long string inside the table announcing 4 GiB.
        let mut fields = vec![1, b'k', b'S', 0xFF, 0xFF, 0xFF, 0xFF];
        let mut table = (fields.len() as u32).to_be_bytes().to_vec();
        table.append(&mut fields);
        let err = decode_table(&mut Cursor::new(&table, "m"), 0).unwrap_err();
        assert!(err.starts_with("truncated field table"), "{err}");
        // Nesting beyond the limit.
        let mut nested = FieldValue::Void;
        for _ in 0..=MAX_TABLE_DEPTH {
            nested = FieldValue::Table(vec![("n".into(), nested)]);
        }
        let mut encoded = Vec::new();
        encode_table(&mut encoded, &vec![("n".into(), nested)]);
        let err = decode_table(&mut Cursor::new(&encoded, "m"), 0).unwrap_err();
        assert!(err.contains("nested deeper"), "{err}");
        let err = decode_value(&mut Cursor::new(b"Z", "m"), 0).unwrap_err();
        assert_eq!(err, "unknown field type 'Z'");
    }

    fn start_frame_payload() -> Vec<u8> {
        let mut arguments = vec![0, 9];
        encode_table(
            &mut arguments,
            &vec![
                ("product".into(), long_text("RabbitMQ")),
                ("version".into(), long_text("3.10.8")),
            ],
        );
        put_long_string(&mut arguments, b"AMQPLAIN PLAIN");
        put_long_string(&mut arguments, b"en_US");
        method_payload(START, &arguments)
    }

    #[test]
    fn decodes_start_tune_and_close() {
        let Method::Start {
            version,
            server_properties,
            mechanisms,
        } = Method::decode(&start_frame_payload()).unwrap()
        else {
            panic!("not a Start");
        };
        assert_eq!(version, (0, 9));
        assert_eq!(server_name(&server_properties), "RabbitMQ 3.10.8");
        assert_eq!(mechanisms, "AMQPLAIN PLAIN");

        let tune = method_payload(TUNE, &[0x07, 0xFF, 0, 2, 0, 0, 0, 60]);
        assert_eq!(
            Method::decode(&tune).unwrap(),
            Method::Tune(Tune {
                channel_max: 2047,
                frame_max: 131072,
                heartbeat: 60
            })
        );
        let close = close_payload(403, "ACCESS_REFUSED - Login was refused");
        assert_eq!(
            Method::decode(&close).unwrap(),
            Method::Close(Close {
                code: 403,
                text: "ACCESS_REFUSED - Login was refused".into()
            })
        );
        assert!(
            Method::decode(&[0, 10])
                .unwrap_err()
                .starts_with("truncated")
        );
    }

    #[test]
    fn start_ok_carries_plain_credentials() {
        let payload = start_ok("guest", "pa ss");
        let mut c = Cursor::new(&payload, "t");
        assert_eq!(c.take(4).unwrap(), &[0, 10, 0, 11]);
        let properties = decode_table(&mut c, 0).unwrap();
        assert_eq!(
            server_name(&properties),
            format!("openstack-healthcheck {}", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(short_string(&mut c).unwrap(), b"PLAIN");
        assert_eq!(long_string(&mut c).unwrap(), b"\0guest\0pa ss");
        assert_eq!(short_string(&mut c).unwrap(), b"en_US");
        assert!(c.is_empty());
    }

    #[test]
    fn tune_ok_keeps_frames_bounded_and_heartbeats_off() {
        for (offered, agreed) in [(0, MAX_FRAME), (4096, 4096), (1 << 30, MAX_FRAME)] {
            let payload = tune_ok(&Tune {
                channel_max: 2047,
                frame_max: offered,
                heartbeat: 60,
            });
            assert_eq!(&payload[4..6], &2047u16.to_be_bytes());
            assert_eq!(&payload[6..10], &agreed.to_be_bytes());
            assert_eq!(&payload[10..], &[0, 0]);
        }
    }

    #[test]
    fn frames_and_their_headers() {
        let bytes = frame(FRAME_METHOD, 0, &open("/"));
        assert_eq!(&bytes[..7], &[1, 0, 0, 0, 0, 0, 8]);
        assert_eq!(&bytes[7..15], &[0, 10, 0, 40, 1, b'/', 0, 0]);
        assert_eq!(bytes[15], FRAME_END);
        assert_eq!(
            parse_frame_header(bytes[..7].try_into().unwrap()).unwrap(),
            (1, 0, 8)
        );
        let err = parse_frame_header(*b"SSH-2.0").unwrap_err();
        assert!(err.starts_with("not an AMQP 0-9-1 broker"), "{err}");
        let err = parse_frame_header([1, 0, 0, 0x7F, 0, 0, 0]).unwrap_err();
        assert!(err.contains("more than the 131072 allowed"), "{err}");
        assert_eq!(
            version_mismatch(&[0, 1, 0], 0),
            "the broker does not speak AMQP 0-9-1: it answered with protocol header AMQP 0 1 0 0"
        );
    }

    proptest::proptest! {
        #![proptest_config(crate::fuzz::config())]

        /// A broker's method frames: any payload, most behind the id of a method the client
        /// reads, so that the arguments' decoding (tables nested in tables) is reached.
        #[test]
        fn fuzz_method_frames_never_panic(
            id in proptest::sample::select(vec![START, TUNE, OPEN_OK, CLOSE, CLOSE_OK, (0, 0)]),
            arguments in crate::fuzz::bytes(),
        ) {
            let _ = Method::decode(&arguments);
            let _ = Method::decode(&method_payload(id, &arguments));
        }
    }
}
