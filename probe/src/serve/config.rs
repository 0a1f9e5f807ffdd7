//! The `serve` configuration ([`healthcheck_spec::serve::ServeConfig`], the file the operator
//! writes) validated into which check answers each probe role, on Docker's timing.

use std::path::Path;
use std::time::Duration;

use healthcheck_spec::Check;
use healthcheck_spec::docker::MIN_DURATION;
use healthcheck_spec::duration::DockerDuration;
use healthcheck_spec::serve::{self, ServeConfig, ServeProbe};

pub use healthcheck_spec::ProbeRole as Role;
pub use healthcheck_spec::serve::CONFIG_ENV;

use super::state::Timing;

/// The address `serve` listens on unless the config or `--listen` says otherwise.
pub fn default_listen() -> String {
    format!("0.0.0.0:{}", serve::DEFAULT_PORT)
}

/// YAML nested deeper than this is refused before parsing: the parser's time grows with the
/// square of the depth (10,000 levels take seconds).
const MAX_YAML_DEPTH: usize = 64;

/// An upper estimate of the YAML's nesting: flow brackets outside quotes plus block
/// indentation (two columns, or one `- `, per level).
fn nesting_depth(yaml: &str) -> usize {
    let (mut flow, mut deepest, mut quote) = (0usize, 0usize, None);
    for line in yaml.lines() {
        let block = (line.len() - line.trim_start_matches([' ', '-']).len()) / 2;
        for c in line.chars() {
            match (quote, c) {
                (None, '"' | '\'') => quote = Some(c),
                (Some(open), _) if c == open => quote = None,
                (None, '#') => break,
                (None, '[' | '{') => flow += 1,
                (None, ']' | '}') => flow = flow.saturating_sub(1),
                _ => {}
            }
            deepest = deepest.max(block + flow);
        }
    }
    deepest
}

/// A validated config.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub listen: String,
    /// At least one, each role at most once, in [`Role::ALL`] order.
    pub roles: Vec<RoleConfig>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RoleConfig {
    pub role: Role,
    pub check: Check,
    pub timing: Timing,
    /// Run at request time (single-flight, at most once per interval) instead of on a schedule.
    pub on_demand: bool,
    /// Profiles read the configuration under the root of the process tagged with this
    /// ([`healthcheck_spec::serve::ServeConfig::service_root`]).
    pub service_root: Option<String>,
}

impl Config {
    /// Parses and validates YAML; `source` names where it came from in messages.
    pub fn parse(yaml: &str, source: &str) -> Result<Config, String> {
        if nesting_depth(yaml) > MAX_YAML_DEPTH {
            return Err(format!(
                "{source}: nested deeper than {MAX_YAML_DEPTH} levels; a serve config needs a few"
            ));
        }
        // The check vocabulary's enums are single-key maps (`process: {...}`), not YAML tags.
        let raw: ServeConfig = serde_norway::with::singleton_map_recursive::deserialize(
            serde_norway::Deserializer::from_str(yaml),
        )
        .map_err(|e| format!("{source}: {e}"))?;
        if let Some(tag) = raw.service_root.as_deref() {
            serve::check_service_tag(tag).map_err(|e| format!("{source}: serviceRoot: {e}"))?;
        }
        let mut roles = Vec::new();
        for (role, raw_role) in raw.probes() {
            let at = format!("{}.check", role.as_str());
            healthcheck_spec::limits::validate(&raw_role.check, &at)
                .and_then(|()| crate::checks::compile_patterns(&raw_role.check))
                .map_err(|e| format!("{source}: {e}"))?;
            let timing =
                timing(raw_role).map_err(|e| format!("{source}: {}.{e}", role.as_str()))?;
            roles.push(RoleConfig {
                role,
                check: raw_role.check.clone(),
                timing,
                on_demand: raw_role.on_demand,
                service_root: raw.service_root.clone(),
            });
        }
        if roles.is_empty() {
            return Err(format!(
                "{source}: no role configured: give at least one of liveness, readiness, startup"
            ));
        }
        Ok(Config {
            listen: raw.listen.unwrap_or_else(default_listen),
            roles,
        })
    }

    /// The config from `file` if given, else from the inline YAML of [`CONFIG_ENV`].
    pub fn load(file: Option<&Path>, inline: Option<&str>) -> Result<Config, String> {
        match (file, inline) {
            (Some(path), _) => {
                let text = crate::config::read_text(path).map_err(|e| {
                    format!(
                        "cannot read config {}: {}",
                        path.display(),
                        crate::net::describe_io(&e)
                    )
                })?;
                Config::parse(&text, &path.display().to_string())
            }
            (None, Some(text)) if !text.trim().is_empty() => {
                Config::parse(text, &format!("${CONFIG_ENV}"))
            }
            (None, _) => Err(format!(
                "no config: give --config FILE or put the YAML in {CONFIG_ENV}"
            )),
        }
    }

    pub fn role(&self, role: Role) -> Option<&RoleConfig> {
        self.roles.iter().find(|r| r.role == role)
    }
}

/// Docker's rules: an unset or zero duration takes the default; others must be at least 1 ms;
/// retries 0 means the default 3.
fn timing(raw: &ServeProbe) -> Result<Timing, String> {
    let defaults = Timing::default();
    let pick = |field: &str, value: Option<DockerDuration>, default: Duration| match value {
        None => Ok(default),
        Some(DockerDuration(d)) if d.is_zero() => Ok(default),
        Some(DockerDuration(d)) if d < MIN_DURATION.0 => Err(format!(
            "{field}: {} is below the minimum of 1ms (0 means the default)",
            DockerDuration(d)
        )),
        Some(DockerDuration(d)) => Ok(d),
    };
    Ok(Timing {
        interval: pick("interval", raw.interval, defaults.interval)?,
        timeout: pick("timeout", raw.timeout, defaults.timeout)?,
        start_period: pick("startPeriod", raw.start_period, defaults.start_period)?,
        start_interval: pick("startInterval", raw.start_interval, defaults.start_interval)?,
        retries: match raw.retries {
            None | Some(0) => defaults.retries,
            Some(n) => n,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use healthcheck_spec::ProcessCheck;

    #[test]
    fn parses_roles_with_docker_defaults() {
        let config = Config::parse(
            "liveness:\n  check: { process: { pattern: nova-api } }\nreadiness:\n  check: { tcp: { address: '[::1]:8774' } }\n  interval: 1m30s\n  timeout: 500ms\n  startPeriod: 1m\n  startInterval: 2s\n  retries: 5\n  onDemand: true\n",
            "test",
        )
        .unwrap();
        assert_eq!(config.listen, "0.0.0.0:9180");
        assert_eq!(config.roles.len(), 2);
        let liveness = config.role(Role::Liveness).unwrap();
        assert_eq!(
            liveness.check,
            Check::Process(ProcessCheck {
                pattern: "nova-api".into()
            })
        );
        assert_eq!(liveness.timing, Timing::default());
        assert!(!liveness.on_demand);
        let readiness = config.role(Role::Readiness).unwrap();
        assert_eq!(
            readiness.timing,
            Timing {
                interval: Duration::from_secs(90),
                timeout: Duration::from_millis(500),
                start_period: Duration::from_secs(60),
                start_interval: Duration::from_secs(2),
                retries: 5,
            }
        );
        assert!(readiness.on_demand);
        assert!(config.role(Role::Startup).is_none());
    }

    #[test]
    fn a_service_root_reaches_every_role() {
        let yaml = "serviceRoot: nova\nliveness: { check: { profile: { name: nova-api } } }\nreadiness: { check: { profile: { name: nova-api } } }";
        let config = Config::parse(yaml, "test").unwrap();
        assert!(
            config
                .roles
                .iter()
                .all(|r| r.service_root.as_deref() == Some("nova"))
        );
        for bad in ["''", "..", "a/b"] {
            let err =
                Config::parse(&yaml.replace("nova\n", &format!("{bad}\n")), "test").unwrap_err();
            assert!(
                err.starts_with("test: serviceRoot: `") && err.contains("one path component"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn zero_means_the_default_as_in_docker() {
        let config = Config::parse(
            "listen: '127.0.0.1:1'\nstartup: { check: { process: { pattern: x } }, interval: 0s, retries: 0 }",
            "test",
        )
        .unwrap();
        assert_eq!(config.listen, "127.0.0.1:1");
        assert_eq!(config.roles[0].timing, Timing::default());
    }

    #[test]
    fn bad_configs_say_where_and_why() {
        for (yaml, expected) in [
            ("", "no role configured"),
            ("listen: x", "no role configured"),
            (
                "liveness: { check: { process: { pattern: x } }, intervall: 1s }",
                "intervall",
            ),
            ("readyness: {}", "readyness"),
            ("liveness: { check: { proces: { pattern: x } } }", "proces"),
            (
                "liveness: { check: { process: { pattern: x } }, interval: 5 }",
                "30s, 1m30s",
            ),
            (
                "liveness: { check: { process: { pattern: x } }, timeout: 10us }",
                "liveness.timeout: 10us is below the minimum of 1ms",
            ),
            ("liveness: { interval: 1s }", "check"),
            ("liveness: [", ""),
        ] {
            let err = Config::parse(yaml, "cfg.yaml").unwrap_err();
            assert!(err.starts_with("cfg.yaml: "), "{err}");
            assert!(err.contains(expected), "{yaml}: {err}");
        }
    }
}
