//! `HealthCheckSpec` → a kolla-ansible `<service>_healthcheck` variable.
//!
//! kolla-ansible wants whole seconds and all five keys (`kolla_container_worker.parse_healthcheck`);
//! a list `test` is used as is (`CMD`, exec form), a string would become `CMD-SHELL`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::api::HealthCheckSpec;
use crate::error::Error;
use crate::render::docker::healthcheck;

#[derive(Debug, PartialEq, Serialize)]
pub struct KollaHealthcheck {
    pub interval: u64,
    pub retries: i32,
    pub start_period: u64,
    pub test: Vec<String>,
    pub timeout: u64,
}

/// `{service}_healthcheck` (dashes become underscores, as kolla-ansible names variables).
pub fn variable(
    spec: &HealthCheckSpec,
    service: &str,
) -> Result<BTreeMap<String, KollaHealthcheck>, Error> {
    let hc = healthcheck(spec)?;
    let test = std::iter::once("CMD".to_string())
        .chain(hc.command)
        .collect();
    let name = format!("{}_healthcheck", service.replace('-', "_"));
    Ok(BTreeMap::from([(
        name,
        KollaHealthcheck {
            interval: hc.interval.ceil_secs().max(1),
            retries: hc.retries,
            start_period: hc.start_period.ceil_secs(),
            test,
            timeout: hc.timeout.ceil_secs().max(1),
        },
    )]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_seconds_and_an_exec_form_test() {
        let spec: HealthCheckSpec = serde_saphyr::from_str(
            "selector: { matchLabels: { app: x } }\nprofile: nova-scheduler\nprobes: { liveness: {} }\ntiming: { retries: 8, interval: 2500ms, startPeriod: 5s }",
        )
        .unwrap();
        let variable = variable(&spec, "nova-scheduler").unwrap();
        assert_eq!(
            crate::yaml(&variable).unwrap(),
            "nova_scheduler_healthcheck:\n  interval: 3\n  retries: 8\n  start_period: 5\n  test:\n  - CMD\n  - /openstack/healthcheck\n  - --timeout\n  - \"27\"\n  - profile\n  - nova-scheduler\n  timeout: 30\n"
        );
    }
}
