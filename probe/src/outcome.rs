//! What a check found: healthy or not, and one line that says why.

use healthcheck_spec::text::truncate_within;
use std::fmt;

/// The most a message may take on stdout: Kubernetes events keep 1 KiB, Docker 4 KiB.
pub const MAX_MESSAGE_BYTES: usize = 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub healthy: bool,
    pub message: String,
}

impl Outcome {
    pub fn healthy(message: impl Into<String>) -> Self {
        Outcome {
            healthy: true,
            message: message.into(),
        }
    }

    pub fn unhealthy(message: impl Into<String>) -> Self {
        Outcome {
            healthy: false,
            message: message.into(),
        }
    }

    /// The process exit status: 0 healthy, 1 otherwise (Docker reserves 2).
    pub fn exit_code(&self) -> i32 {
        if self.healthy { 0 } else { 1 }
    }

    /// The single stdout line: newlines folded, cut to [`MAX_MESSAGE_BYTES`] on a char boundary.
    pub fn line(&self) -> String {
        let status = if self.healthy { "healthy" } else { "unhealthy" };
        one_line(&format!("{status}: {}", self.message))
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line())
    }
}

/// Folds control characters to spaces and bounds the length, so a hostile peer's text can
/// neither add lines to the health log nor flood it.
pub fn one_line(text: &str) -> String {
    let mut line: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if line.len() > MAX_MESSAGE_BYTES {
        truncate_within(&mut line, MAX_MESSAGE_BYTES - 3);
        line.push_str("...");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_is_prefixed_folded_and_bounded() {
        assert_eq!(Outcome::healthy("a\nb\r\tc").line(), "healthy: a b  c");
        let long = Outcome::unhealthy("é".repeat(2000)).line();
        assert!(long.len() <= MAX_MESSAGE_BYTES, "{}", long.len());
        assert!(long.starts_with("unhealthy: é") && long.ends_with("..."));
    }

    #[test]
    fn exit_codes_are_zero_or_one() {
        assert_eq!(Outcome::healthy("x").exit_code(), 0);
        assert_eq!(Outcome::unhealthy("x").exit_code(), 1);
    }
}
