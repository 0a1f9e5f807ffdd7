//! What the workspace's test harnesses share, so that each exists once: loopback ports and a
//! deadline-bounded HTTP GET ([`net`]), polling until something holds, the fuzzing
//! configuration ([`fuzz_config`]), and daemons started for a test binary that never outlive it,
//! with the Debian packages they come from ([`daemon`]).

pub mod daemon;
pub mod net;

use std::thread;
use std::time::{Duration, Instant};

pub use daemon::{
    ensure_packages, install_missing, program, search_path, spawn_daemon, wait_ready,
};
pub use net::{accepts_tcp, free_port, http_get, http_get_within};

/// The configuration of every fuzz test: a fixed seed, so that a failure reproduces, and
/// `HEALTHCHECK_FUZZ_CASES` cases per parser (500 unless set: short for CI; README.md gives a
/// longer run).
pub fn fuzz_config() -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases: std::env::var("HEALTHCHECK_FUZZ_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(500),
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x15_15_15),
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    }
}

/// How often [`poll`] asks again: short against the seconds a daemon takes to start, long enough
/// not to load the machine the daemon is starting on.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Calls `probe` every 100 ms until it returns `Some`; `None` once `limit` has passed without.
pub fn poll<T>(limit: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let started = Instant::now();
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if started.elapsed() >= limit {
            return None;
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// Polls `probe` every 100 ms until it returns `Some`, or panics after `limit` naming `what`.
pub fn wait_for<T>(limit: Duration, what: &str, probe: impl FnMut() -> Option<T>) -> T {
    poll(limit, probe).unwrap_or_else(|| panic!("timed out after {limit:?} waiting for {what}"))
}
