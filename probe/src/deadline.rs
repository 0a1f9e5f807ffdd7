//! One deadline for the whole run: every blocking step asks it how long it may wait.

use std::io;
use std::time::{Duration, Instant};

/// The default run deadline, as TripleO's `HEALTHCHECK_CURL_MAX_TIME`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    at: Instant,
    total: Duration,
}

impl Deadline {
    pub fn after(total: Duration) -> Self {
        Deadline {
            at: Instant::now() + total,
            total,
        }
    }

    pub fn instant(&self) -> Instant {
        self.at
    }

    pub fn total(&self) -> Duration {
        self.total
    }

    /// Time left, or a `TimedOut` error once it has passed (never a zero timeout, which
    /// std treats as "block forever" or rejects).
    pub fn remaining(&self) -> io::Result<Duration> {
        let left = self.at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                self.expired_message(),
            ))
        } else {
            Ok(left)
        }
    }

    pub fn expired_message(&self) -> String {
        format!("timed out after {}", format_seconds(self.total))
    }
}

/// `10s`, `0.5s`: how a duration reads in messages.
pub fn format_seconds(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs.fract() == 0.0 {
        format!("{secs:.0}s")
    } else {
        format!("{secs}s")
    }
}

/// Parses a timeout in seconds as curl's `--max-time` takes it: `10`, `2.5`.
pub fn parse_seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    let max = healthcheck_spec::limits::MAX_TIMEOUT_SECONDS;
    if !(secs.is_finite() && secs > 0.0 && secs <= max as f64) {
        return Err(format!(
            "`{text}` must be more than 0 and at most {max} seconds"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_curl_style_seconds() {
        assert_eq!(parse_seconds("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_seconds(" 0.25 ").unwrap(), Duration::from_millis(250));
        for bad in ["0", "-1", "abc", "", "nan", "inf", "1e9"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn remaining_fails_once_expired() {
        let deadline = Deadline::after(Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(5));
        let err = deadline.remaining().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(err.to_string(), "timed out after 0.001s");
    }

    #[test]
    fn formats_whole_and_fractional_seconds() {
        assert_eq!(format_seconds(Duration::from_secs(10)), "10s");
        assert_eq!(format_seconds(Duration::from_millis(1500)), "1.5s");
    }
}
