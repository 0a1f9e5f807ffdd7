//! A TCP connection to an address is accepted.

use healthcheck_spec::TcpCheck;
use healthcheck_spec::address::split_host_port;

use super::Context;
use crate::Outcome;
use crate::net::connect;

pub fn run(spec: &TcpCheck, ctx: &Context) -> Outcome {
    let (host, port) = match split_host_port(&spec.address) {
        Ok(parts) => parts,
        Err(e) => return Outcome::unhealthy(e),
    };
    match connect(&ctx.resolver, host, port, &ctx.deadline) {
        Ok(stream) => {
            let peer = stream
                .peer_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|_| spec.address.clone());
            Outcome::healthy(format!("tcp {} connected to {peer}", spec.address))
        }
        Err(e) => Outcome::unhealthy(format!("tcp {}: {e}", spec.address)),
    }
}
