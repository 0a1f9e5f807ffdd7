//! Redis: RESP `AUTH` (when a password is configured) then `PING`, healthy on `+PONG`, with
//! TripleO's messages.

use super::Endpoint;
use crate::Outcome;
use crate::context::Context;

pub struct RedisTarget {
    pub endpoint: Endpoint,
    pub password: Option<String>,
}

pub fn ping(target: &RedisTarget, ctx: &Context) -> Outcome {
    match exchange(target, ctx) {
        Ok(()) => Outcome::healthy(format!(
            "Redis server responded correctly on {}.",
            target.endpoint
        )),
        Err(reply) => Outcome::unhealthy(format!(
            "Redis server does not respond correctly on {}: {reply}",
            target.endpoint
        )),
    }
}

fn exchange(target: &RedisTarget, ctx: &Context) -> Result<(), String> {
    let mut stream = target.endpoint.open(ctx)?;
    let mut request = Vec::new();
    if let Some(password) = &target.password {
        request.extend(command(&[b"AUTH", password.as_bytes()]));
    }
    request.extend(command(&[b"PING"]));
    stream.send(&request)?;
    if target.password.is_some() {
        let reply = stream.read_line()?;
        if reply != "+OK" {
            return Err(format!("AUTH: {reply}"));
        }
    }
    match stream.read_line()? {
        reply if reply == "+PONG" => Ok(()),
        reply => Err(reply),
    }
}

/// A RESP array of bulk strings: binary-safe, so a password with spaces or CRLF stays whole.
pub fn command(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", parts.len()).into_bytes();
    for part in parts {
        out.extend(format!("${}\r\n", part.len()).into_bytes());
        out.extend_from_slice(part);
        out.extend(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp_bulk_strings() {
        assert_eq!(
            command(&[b"AUTH", b"a b\r\n"]),
            b"*2\r\n$4\r\nAUTH\r\n$5\r\na b\r\n\r\n"
        );
    }
}
