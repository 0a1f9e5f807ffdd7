//! `/openstack/healthcheck`: the checks behind the probe binary, usable as a library by the
//! binary's exec mode and its HTTP mode (`serve`).

pub mod checks;
pub mod cli;
pub mod compat;
pub mod config;
pub mod context;
pub mod deadline;
pub mod debug;
pub mod dispatch;
pub mod net;
pub mod outcome;
pub mod procfs;
pub mod profiles;
pub mod protocols;
pub mod serve;
pub mod sockdiag;
pub mod sockets;
pub mod watchdog;

#[cfg(test)]
mod fuzz;

pub use deadline::Deadline;
pub use outcome::Outcome;
