//! Dispatch: the one place a check or a command-line probe is turned into the code that runs
//! it. The top of the check layers ([`crate::context`] <- [`crate::protocols`] <-
//! [`crate::checks`] <- [`crate::profiles`] <- here): the composite kinds (`profile`,
//! `all_of`) are resolved here, so no lower layer reaches back up.

use healthcheck_spec::Check;

use crate::Outcome;
use crate::checks;
use crate::context::Context;
use crate::profiles;
use crate::protocols::amqp::{self, AmqpTarget};
use crate::protocols::mysql::{self, MysqlTarget};

/// Runs any check of the shared vocabulary.
pub fn run(check: &Check, ctx: &Context) -> Outcome {
    match check {
        Check::Profile(spec) => profiles::run(spec, ctx),
        Check::AllOf(checks) => all_of(checks, ctx),
        primitive => checks::run(primitive, ctx),
    }
}

/// Every member must pass; stops at the first failure so the message names it.
fn all_of(checks: &[Check], ctx: &Context) -> Outcome {
    let mut found = Vec::with_capacity(checks.len());
    for check in checks {
        let outcome = run(check, ctx);
        if !outcome.healthy {
            return outcome;
        }
        found.push(outcome.message);
    }
    Outcome::healthy(found.join("; "))
}

/// What one run checks: a check of the shared vocabulary, or a protocol handshake that only
/// the command line offers.
pub enum Probe {
    Check(Check),
    Mysql { target: MysqlTarget, galera: bool },
    Amqp(AmqpTarget),
}

impl Probe {
    pub fn kind(&self) -> &'static str {
        match self {
            Probe::Check(check) => check.kind(),
            Probe::Mysql { .. } => "mysql",
            Probe::Amqp(_) => "amqp",
        }
    }

    pub fn run(&self, ctx: &Context) -> Outcome {
        match self {
            Probe::Check(check) => run(check, ctx),
            Probe::Mysql {
                target,
                galera: false,
            } => mysql::select_one(target, ctx),
            Probe::Mysql {
                target,
                galera: true,
            } => mysql::galera_synced(target, ctx),
            Probe::Amqp(target) => amqp::handshake(target, ctx),
        }
    }
}
