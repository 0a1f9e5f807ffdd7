//! Bounds on what a check may say, enforced by the probe and mirrored by the CRD, so a check
//! that could never run (or could take the probe down) is refused where it is written.

use crate::{Check, PROFILES};

/// The longest regular expression accepted (process patterns, `bodyRegex`): room for any
/// real `pgrep -f` alternation, small enough that matching stays cheap.
pub const MAX_PATTERN_BYTES: usize = 1024;
/// The most memory a compiled regular expression may take (the regex engine's size limit).
pub const MAX_COMPILED_PATTERN_BYTES: usize = 1024 * 1024;
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
        Check::Http(h) => match &h.body_regex {
            Some(regex) if regex.len() > MAX_PATTERN_BYTES => Err(format!(
                "{at}.http.bodyRegex: {} bytes, more than the {MAX_PATTERN_BYTES} allowed",
                regex.len()
            )),
            _ => Ok(()),
        },
        Check::Command(c) if c.argv.is_empty() => Err(format!(
            "{at}.command.argv: empty; give the program and its arguments"
        )),
        Check::Profile(p) if !PROFILES.contains(&p.name.as_str()) => {
            Err(format!("{at}.profile.name: unknown profile `{}`", p.name))
        }
        Check::Tcp(_) | Check::File(_) | Check::Command(_) | Check::Profile(_) => Ok(()),
    }
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
}
