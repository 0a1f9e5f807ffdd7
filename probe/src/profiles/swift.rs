//! Swift: the proxy and the account/container/object images, each of which runs the server,
//! its replicator, or (object) rsync in different containers.

use std::time::{SystemTime, UNIX_EPOCH};

use healthcheck_spec::{Check, ProcessPorts};

use super::{Call, Profile, Run, http_get, url};
use crate::Outcome;

pub const PROFILES: &[Profile] = &[
    Profile {
        name: "swift-proxy",
        summary: "when swift-proxy-server runs and its pipeline has healthcheck: GET http://bind_ip:bind_port/healthcheck (8080)",
        run: Run::Custom(|call| server(call, "proxy", "8080")),
    },
    Profile {
        name: "swift-account-server",
        summary: "the account server's /healthcheck (6002), or its replicator's last run within its interval",
        run: Run::Custom(|call| server_or_replicator(call, "account", "6002")),
    },
    Profile {
        name: "swift-container-server",
        summary: "the container server's /healthcheck (6001), or its replicator's last run within its interval",
        run: Run::Custom(|call| server_or_replicator(call, "container", "6001")),
    },
    Profile {
        name: "swift-object-server",
        summary: "the object server's /healthcheck (6000), its replicator's last run within its interval, or rsync listening on 873",
        run: Run::Custom(|call| server_or_replicator(call, "object", "6000")),
    },
    Profile {
        name: "swift-rsync",
        summary: "rsync listens on 873",
        run: Run::Custom(rsync),
    },
];

/// `swift-KIND-server`'s `/healthcheck` when it runs here and its pipeline has the middleware.
fn server(call: &Call, kind: &str, default_port: &str) -> Result<Outcome, String> {
    call.no_args()?;
    let process = format!("swift-{kind}-server");
    if !call.running(&process) {
        return Ok(Outcome::healthy(format!(
            "no {process} process in this container: nothing to check"
        )));
    }
    let file = format!("/etc/swift/{kind}-server.conf");
    let ini = call.ctx.config.ini(&file)?;
    let pipeline = ini.get("pipeline:main", "pipeline").unwrap_or("");
    if !pipeline.split_whitespace().any(|f| f == "healthcheck") {
        // TripleO's words, and its exit 0: the deployment chose not to have the endpoint.
        return Ok(Outcome::healthy("healthcheck is not available"));
    }
    let host = ini.get_or("DEFAULT", "bind_ip", "127.0.0.1");
    let port = ini.port_or(&file, "DEFAULT", "bind_port", default_port)?;
    Ok(call.check(http_get(url("http", host, port, "/healthcheck"))))
}

fn server_or_replicator(call: &Call, kind: &str, default_port: &str) -> Result<Outcome, String> {
    if call.running(&format!("swift-{kind}-server")) {
        return server(call, kind, default_port);
    }
    call.no_args()?;
    if call.running(&format!("swift-{kind}-replicator")) {
        return replicator(call, kind);
    }
    if kind == "object" && call.running("rsync") {
        return rsync(call);
    }
    Ok(Outcome::healthy(format!(
        "no swift {kind} server, replicator or rsync process in this container: nothing to check"
    )))
}

/// TripleO's `check_swift_interval`: the recon cache's last replication is at most
/// `[KIND-replicator] interval` (300) seconds old.
fn replicator(call: &Call, kind: &str) -> Result<Outcome, String> {
    let conf = format!("/etc/swift/{kind}-server.conf");
    let cache = format!("/var/cache/swift/{kind}.recon");
    let ini = call.ctx.config.ini(&conf)?;
    let section = format!("{kind}-replicator");
    let interval: u64 = ini
        .get_or(&section, "interval", "300")
        .parse()
        .map_err(|_| format!("{conf} [{section}] interval is not a number of seconds"))?;
    let recon: serde_json::Value = serde_json::from_str(&call.ctx.config.read(&cache)?)
        .map_err(|e| format!("{cache} is not JSON: {e}"))?;
    let last = ["replication_last", &format!("{kind}_replication_last")]
        .iter()
        .find_map(|key| recon.get(key).and_then(serde_json::Value::as_f64))
        .ok_or_else(|| format!("{cache} has no replication_last"))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let age = (now - last).max(0.0) as u64;
    Ok(if age > interval {
        Outcome::unhealthy(format!(
            "Last replication run did not finish within interval of {interval} seconds (last run {age} seconds ago)."
        ))
    } else {
        Outcome::healthy(format!(
            "last replication run {age} seconds ago, within the interval of {interval} seconds"
        ))
    })
}

fn rsync(call: &Call) -> Result<Outcome, String> {
    call.no_args()?;
    let outcome = call.check(Check::Listen(ProcessPorts {
        process: "rsync".to_string(),
        ports: vec![873],
    }));
    Ok(if outcome.healthy {
        outcome
    } else {
        Outcome::unhealthy(format!(
            "There is no rsync process, listening on port(s) 873, running in the container. ({})",
            outcome.message
        ))
    })
}
