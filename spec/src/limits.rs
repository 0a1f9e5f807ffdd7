//! Bounds on what a check may say, enforced by the probe and mirrored by the CRD, so a check
//! that could never run (or could take the probe down) is refused where it is written.

use crate::{Check, PROFILES};

/// The longest regular expression accepted (process patterns, `bodyRegex`): room for any
/// real `pgrep -f` alternation, small enough that matching stays cheap.
pub const MAX_PATTERN_BYTES: usize = 1024;
/// The most memory a compiled regular expression may take (the regex engine's size limit).
pub const MAX_COMPILED_PATTERN_BYTES: usize = 1024 * 1024;
/// The longest timeout the probe takes (`--timeout`, a check's `timeout`): one day.
pub const MAX_TIMEOUT_SECONDS: u64 = 86_400;
/// The longest URL, header and header list a check may carry (characters): far beyond any
/// real health endpoint, small enough that the CRD's rules on them stay within the apiserver's
/// cost budget.
pub const MAX_URL_CHARS: usize = 2048;
pub const MAX_HEADER_CHARS: usize = 1024;
pub const MAX_HEADERS: usize = 16;
/// The longest basic-auth `USER:PASSWORD` (characters): the credentials travel as one request
/// header, so they get a header's bound.
pub const MAX_USER_CHARS: usize = MAX_HEADER_CHARS;
/// How deep `allOf` may nest.
pub const MAX_ALL_OF_DEPTH: usize = 8;

/// The first problem that makes `check` unrunnable or meaningless, with its path from
/// `at` (e.g. `readiness.check.allOf[1].process.pattern`).
pub fn validate(check: &Check, at: &str) -> Result<(), String> {
    validate_at(check, at, 0)
}

fn validate_at(check: &Check, at: &str, depth: usize) -> Result<(), String> {
    let pattern = |pattern: &str, field: &str| {
        if pattern.is_empty() {
            Err(format!(
                "{at}.{field}: an empty pattern matches every process"
            ))
        } else if pattern.len() > MAX_PATTERN_BYTES {
            Err(format!(
                "{at}.{field}: the pattern is {} bytes, more than the {MAX_PATTERN_BYTES} allowed",
                pattern.len()
            ))
        } else {
            Ok(())
        }
    };
    match check {
        Check::AllOf(members) => {
            if members.is_empty() {
                return Err(format!(
                    "{at}.allOf: no checks (an empty allOf would always be healthy)"
                ));
            }
            if depth >= MAX_ALL_OF_DEPTH {
                return Err(format!(
                    "{at}.allOf: nested deeper than {MAX_ALL_OF_DEPTH} levels"
                ));
            }
            members.iter().enumerate().try_for_each(|(i, member)| {
                validate_at(member, &format!("{at}.allOf[{i}]"), depth + 1)
            })
        }
        Check::Process(p) => pattern(&p.pattern, "process.pattern"),
        Check::Port(p) => pattern(&p.process, "port.process"),
        Check::Listen(p) => pattern(&p.process, "listen.process"),
        Check::Socket(s) => pattern(&s.process, "socket.process"),
        Check::Http(h) => {
            h.headers
                .iter()
                .try_for_each(|header| validate_header(header))
                .map_err(|why| format!("{at}.http.headers: {why}"))?;
            match &h.body_regex {
                Some(regex) if regex.len() > MAX_PATTERN_BYTES => Err(format!(
                    "{at}.http.bodyRegex: {} bytes, more than the {MAX_PATTERN_BYTES} allowed",
                    regex.len()
                )),
                _ => Ok(()),
            }
        }
        Check::Command(c) if c.argv.is_empty() => Err(format!(
            "{at}.command.argv: empty; give the program and its arguments"
        )),
        Check::Profile(p) if !PROFILES.contains(&p.name.as_str()) => {
            Err(format!("{at}.profile.name: unknown profile `{}`", p.name))
        }
        Check::Tcp(_) | Check::File(_) | Check::Command(_) | Check::Profile(_) => Ok(()),
    }
}

/// `Name: value`, with a token name and no line breaks (no header injection).
pub fn validate_header(header: &str) -> Result<(), String> {
    let (name, value) = header
        .split_once(':')
        .ok_or_else(|| format!("header `{header}` is not `Name: value`"))?;
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return Err(format!("header name `{name}` is not a valid token"));
    }
    if value.contains(['\r', '\n']) {
        return Err(format!("header `{name}` contains a line break"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CommandCheck, ProcessCheck, ProfileCheck};

    #[test]
    fn unrunnable_checks_are_refused_with_their_path() {
        let process = |pattern: &str| {
            Check::Process(ProcessCheck {
                pattern: pattern.into(),
            })
        };
        assert!(validate(&process("nova-api"), "c").is_ok());
        let long = validate(&process(&"(a|b)".repeat(300)), "c").unwrap_err();
        assert!(
            long.starts_with("c.process.pattern: the pattern is 1500 bytes"),
            "{long}"
        );
        assert!(validate(&process(""), "c").is_err());
        let nested = Check::AllOf(vec![Check::AllOf(vec![])]);
        assert_eq!(
            validate(&nested, "liveness.check").unwrap_err(),
            "liveness.check.allOf[0].allOf: no checks (an empty allOf would always be healthy)"
        );
        let argv = Check::Command(CommandCheck { argv: vec![] });
        assert!(
            validate(&argv, "c")
                .unwrap_err()
                .contains("command.argv: empty")
        );
        let profile = Check::Profile(ProfileCheck {
            name: "nova-apii".into(),
            args: vec![],
        });
        assert!(
            validate(&profile, "c")
                .unwrap_err()
                .contains("unknown profile `nova-apii`")
        );
        let mut deep = process("x");
        for _ in 0..=MAX_ALL_OF_DEPTH {
            deep = Check::AllOf(vec![deep]);
        }
        assert!(validate(&deep, "c").unwrap_err().contains("nested deeper"));
    }

    #[test]
    fn headers_must_be_well_formed() {
        assert!(validate_header("X-Auth-Token: abc").is_ok());
        assert!(validate_header("Accept:").is_ok());
        assert!(
            validate_header("no colon")
                .unwrap_err()
                .contains("not `Name: value`")
        );
        assert!(
            validate_header("Bad Name: x")
                .unwrap_err()
                .contains("not a valid token")
        );
        assert!(
            validate_header("X: a\r\nInjected: 1")
                .unwrap_err()
                .contains("line break")
        );
        let http = Check::Http(
            serde_json::from_value(
                serde_json::json!({"url": "http://h/", "headers": ["X: a\nB: c"]}),
            )
            .unwrap(),
        );
        assert_eq!(
            validate(&http, "c").unwrap_err(),
            "c.http.headers: header `X` contains a line break"
        );
    }
}
