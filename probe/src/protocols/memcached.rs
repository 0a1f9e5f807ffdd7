//! memcached: the text protocol's `version` command, healthy on `VERSION x.y.z`.

use super::Endpoint;
use crate::Outcome;
use crate::context::Context;

pub fn version(endpoint: &Endpoint, ctx: &Context) -> Outcome {
    let reply = endpoint.open(ctx).and_then(|mut stream| {
        stream.send(b"version\r\n")?;
        stream.read_line()
    });
    match reply {
        Ok(reply) if reply.starts_with("VERSION ") => Outcome::healthy(format!(
            "memcached {} answers on {endpoint}",
            reply.trim_start_matches("VERSION ")
        )),
        Ok(reply) => Outcome::unhealthy(format!(
            "memcached on {endpoint} answered `version` with: {reply}"
        )),
        Err(e) => Outcome::unhealthy(format!("memcached on {endpoint}: {e}")),
    }
}
