//! PLACEHOLDER until the AMQP 0-9-1 client lands: keeps the signature the rabbitmq profile is
//! written against and reports the check as not implemented.

use crate::Outcome;
use crate::checks::Context;

pub struct AmqpTarget {
    pub host: String,
    pub port: u16,
    pub credentials: Option<(String, String)>,
    pub vhost: String,
}

/// AMQP 0-9-1 handshake up to Connection.OpenOk (authenticated when credentials are given).
pub fn handshake(_target: &AmqpTarget, _ctx: &Context) -> Outcome {
    Outcome::unhealthy("amqp: protocol not yet implemented")
}
