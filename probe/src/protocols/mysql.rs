//! PLACEHOLDER until the MySQL/MariaDB wire protocol lands: these items keep the signatures
//! the profiles are written against and report every check as not implemented.

use std::path::PathBuf;

use crate::Outcome;
use crate::checks::Context;

pub struct MysqlTarget {
    pub address: MysqlAddress,
    pub user: String,
    pub password: Option<String>,
}

pub enum MysqlAddress {
    Tcp { host: String, port: u16 },
    Unix(PathBuf),
}

/// Connects, authenticates, runs `SELECT 1`.
pub fn select_one(_target: &MysqlTarget, _ctx: &Context) -> Outcome {
    Outcome::unhealthy("mysql: protocol not yet implemented")
}

/// Connects, authenticates, reads `wsrep_local_state_comment`; healthy when `Synced`.
pub fn galera_synced(_target: &MysqlTarget, _ctx: &Context) -> Outcome {
    Outcome::unhealthy("mysql: protocol not yet implemented")
}
