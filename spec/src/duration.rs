//! Durations in Docker's (Go's) notation: `30s`, `1m30s`, `500ms`.

use std::{borrow::Cow, fmt, str::FromStr, time::Duration};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// What a duration string must look like; also the CRD's CEL check, so both reject the same input.
pub const DURATION_PATTERN: &str = "^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$";
pub const DURATION_MESSAGE: &str = "must be a duration such as 30s, 1m30s or 500ms";

/// A non-negative duration written as Docker's `--interval` and friends accept it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct DockerDuration(pub Duration);

impl DockerDuration {
    pub const fn from_secs(secs: u64) -> Self {
        DockerDuration(Duration::from_secs(secs))
    }

    pub const fn from_millis(millis: u64) -> Self {
        DockerDuration(Duration::from_millis(millis))
    }

    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// Whole seconds, rounded up: Kubernetes probe fields only take integers.
    pub fn ceil_secs(self) -> u64 {
        self.0.as_secs() + u64::from(self.0.subsec_nanos() > 0)
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct ParseDurationError(String);

impl fmt::Display for ParseDurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid duration {:?}: {DURATION_MESSAGE}", self.0)
    }
}

impl std::error::Error for ParseDurationError {}

impl FromStr for DockerDuration {
    type Err = ParseDurationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || ParseDurationError(text.to_string());
        if text.is_empty() {
            return Err(error());
        }
        let mut total = Duration::ZERO;
        let mut rest = text;
        while !rest.is_empty() {
            let number_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(error)?;
            let (number, tail) = rest.split_at(number_len);
            let unit_len = tail
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(tail.len());
            let (unit, tail) = tail.split_at(unit_len);
            let unit_nanos: u64 = match unit {
                "ns" => 1,
                "us" | "µs" => 1_000,
                "ms" => 1_000_000,
                "s" => 1_000_000_000,
                "m" => 60_000_000_000,
                "h" => 3_600_000_000_000,
                _ => return Err(error()),
            };
            total += parse_scaled(number, unit_nanos).ok_or_else(error)?;
            rest = tail;
        }
        Ok(DockerDuration(total))
    }
}

/// `number × unit_nanos` in exact integer arithmetic (no float rounding: `0.1s` is 100ms).
fn parse_scaled(number: &str, unit_nanos: u64) -> Option<Duration> {
    let (whole, fraction) = match number.split_once('.') {
        Some((_, "")) | Some(("", _)) => return None,
        Some(parts) => parts,
        None => (number, ""),
    };
    if whole.is_empty() {
        return None;
    }
    let parse = |digits: &str| -> Option<u128> {
        if digits.is_empty() {
            Some(0)
        } else if digits.bytes().all(|b| b.is_ascii_digit()) {
            digits.parse().ok()
        } else {
            None
        }
    };
    let fraction = &fraction[..fraction.len().min(18)];
    let scale = 10u128.pow(fraction.len() as u32);
    let nanos = parse(whole)?.checked_mul(unit_nanos.into())?
        + parse(fraction)? * u128::from(unit_nanos) / scale;
    Some(Duration::from_nanos(u64::try_from(nanos).ok()?))
}

impl fmt::Display for DockerDuration {
    /// The shortest exact Go notation: `1h30m`, `45s`, `1m0.5s` is written `60500ms`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.is_zero() {
            return f.write_str("0s");
        }
        if d.subsec_nanos() == 0 {
            let secs = d.as_secs();
            let (hours, minutes, seconds) = (secs / 3600, secs / 60 % 60, secs % 60);
            for (value, unit) in [(hours, "h"), (minutes, "m"), (seconds, "s")] {
                if value > 0 {
                    write!(f, "{value}{unit}")?;
                }
            }
            return Ok(());
        }
        let nanos = d.as_nanos();
        match (nanos % 1_000_000, nanos % 1_000) {
            (0, _) => write!(f, "{}ms", nanos / 1_000_000),
            (_, 0) => write!(f, "{}us", nanos / 1_000),
            _ => write!(f, "{nanos}ns"),
        }
    }
}

impl Serialize for DockerDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DockerDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

#[cfg(feature = "schemars")]
impl schemars::JsonSchema for DockerDuration {
    fn schema_name() -> Cow<'static, str> {
        "DockerDuration".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "maxLength": 32,
            "x-kubernetes-validations": [
                {"rule": format!("self.matches('{DURATION_PATTERN}')"), "message": DURATION_MESSAGE}
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_go_notation() {
        for (text, expected) in [
            ("30s", Duration::from_secs(30)),
            ("1m30s", Duration::from_secs(90)),
            ("500ms", Duration::from_millis(500)),
            ("1.5s", Duration::from_millis(1500)),
            ("0.1s", Duration::from_millis(100)),
            ("2h", Duration::from_secs(7200)),
            ("10us", Duration::from_micros(10)),
            ("10µs", Duration::from_micros(10)),
            ("7ns", Duration::from_nanos(7)),
            ("0s", Duration::ZERO),
        ] {
            assert_eq!(text.parse(), Ok(DockerDuration(expected)), "{text}");
        }
    }

    #[test]
    fn rejects_malformed_text_with_a_hint() {
        for text in [
            "", "30", "s", "-5s", "5 s", "1.2.3s", "5sec", "1d", ".s", ".5s", "5.s",
        ] {
            let err = text.parse::<DockerDuration>().unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "invalid duration {text:?}: must be a duration such as 30s, 1m30s or 500ms"
                )
            );
        }
    }

    #[test]
    fn displays_the_shortest_exact_form() {
        for (duration, text) in [
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(3600), "1h"),
            (Duration::from_secs(3605), "1h5s"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_micros(3), "3us"),
            (Duration::from_nanos(3), "3ns"),
            (Duration::ZERO, "0s"),
        ] {
            assert_eq!(DockerDuration(duration).to_string(), text);
        }
    }

    #[test]
    fn ceil_secs_rounds_up() {
        assert_eq!(DockerDuration::from_millis(1).ceil_secs(), 1);
        assert_eq!(DockerDuration::from_millis(1000).ceil_secs(), 1);
        assert_eq!(DockerDuration::from_millis(1001).ceil_secs(), 2);
        assert_eq!(DockerDuration::from_secs(0).ceil_secs(), 0);
    }

    proptest! {
        #[test]
        fn display_parses_back(nanos in 0u64..10_000_000_000_000) {
            let duration = DockerDuration(Duration::from_nanos(nanos));
            prop_assert_eq!(duration.to_string().parse(), Ok(duration));
        }
    }
}
