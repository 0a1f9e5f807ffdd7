//! multipathd's control socket (abstract `@/org/kernel/linux/storage/multipathd`): a command
//! framed as a native-endian `size_t` length plus the NUL-terminated text, answered the same
//! way; `show status` answers when the daemon's main loop runs.

use super::Endpoint;
use crate::Outcome;
use crate::context::Context;

pub const SOCKET: &str = "/org/kernel/linux/storage/multipathd";

pub fn show_status(endpoint: &Endpoint, ctx: &Context) -> Outcome {
    match exchange(endpoint, ctx, "show status") {
        Ok(reply) if !reply.starts_with("fail") => Outcome::healthy(format!(
            "multipathd on {endpoint}: {}",
            reply.lines().next().unwrap_or("").trim()
        )),
        Ok(reply) => Outcome::unhealthy(format!("multipathd on {endpoint}: {reply}")),
        Err(e) => Outcome::unhealthy(format!("multipathd on {endpoint}: {e}")),
    }
}

fn exchange(endpoint: &Endpoint, ctx: &Context, command: &str) -> Result<String, String> {
    let mut stream = endpoint.open(ctx)?;
    stream.send(&frame(command))?;
    const LEN: usize = std::mem::size_of::<usize>();
    let reply = stream.read_until(|bytes| {
        bytes.len() >= LEN && bytes.len() >= LEN + declared_length(bytes).min(1 << 20)
    })?;
    let text = &reply[LEN..];
    Ok(String::from_utf8_lossy(text)
        .trim_end_matches('\0')
        .to_string())
}

fn frame(command: &str) -> Vec<u8> {
    let mut out = (command.len() + 1).to_ne_bytes().to_vec();
    out.extend_from_slice(command.as_bytes());
    out.push(0);
    out
}

fn declared_length(bytes: &[u8]) -> usize {
    let mut len = [0u8; std::mem::size_of::<usize>()];
    let size = len.len();
    len.copy_from_slice(&bytes[..size]);
    usize::from_ne_bytes(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_length_prefixed_and_nul_terminated() {
        let framed = frame("show status");
        assert_eq!(declared_length(&framed), 12);
        assert_eq!(&framed[8..], b"show status\0");
    }
}
