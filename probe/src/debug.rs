//! `HEALTHCHECK_DEBUG`: when set to anything but `0`, checks describe their steps on stderr
//! (addresses tried, processes matched, sockets seen), as TripleO's debug mode showed its
//! pgrep/lsof output. Stdout keeps its one line either way.

use std::sync::OnceLock;

pub fn enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED
        .get_or_init(|| std::env::var("HEALTHCHECK_DEBUG").is_ok_and(|v| !v.is_empty() && v != "0"))
}

/// `debug!("format", args)`: one line on stderr when debugging is enabled.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => {
        if $crate::debug::enabled() {
            eprintln!("healthcheck: {}", format_args!($($arg)*));
        }
    };
}
