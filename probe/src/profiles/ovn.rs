//! OVN: agents connected to the southbound DB, the OVSDB servers themselves, BGP helpers.

use healthcheck_spec::{Check, ProcessCheck};

use super::{Call, PortUse, Profile, Run};
use crate::Outcome;
use crate::config::parse_port;
use crate::protocols::{Endpoint, ovsdb};

const OVN_SB: &[u16] = &[6642];

pub const PROFILES: &[Profile] = &[
    Profile {
        name: "ovn-controller",
        summary: "ovn-controller has a socket on the OVN southbound DB port [PORT...] (6642)",
        run: Run::Port(PortUse {
            process: "ovn-controller",
            ports: OVN_SB,
            service: "OVN southbound DB",
        }),
    },
    Profile {
        name: "ovn-metadata",
        summary: "the OVN metadata agent has a socket on the OVN southbound DB port [PORT...] (6642)",
        run: Run::Port(PortUse {
            process: "(networking|neutron)-ovn-metadata-agent",
            ports: OVN_SB,
            service: "OVN southbound DB",
        }),
    },
    Profile {
        name: "ovn-dbs",
        summary: "OVSDB list_dbs answers on [unix:PATH|tcp:HOST:PORT...] (the NB and SB sockets in /run/ovn)",
        run: Run::Custom(ovn_dbs),
    },
    Profile {
        name: "ovn-bgp-agent",
        summary: "an ovn-bgp-agent process runs",
        run: Run::Custom(ovn_bgp_agent),
    },
    Profile {
        name: "frr",
        summary: "a watchfrr process runs",
        run: Run::Custom(frr),
    },
];

const DEFAULT_DBS: &[&str] = &["unix:/run/ovn/ovnnb_db.sock", "unix:/run/ovn/ovnsb_db.sock"];

/// Every server must answer; the message lists what each serves.
fn ovn_dbs(call: &Call) -> Result<Outcome, String> {
    let targets: Vec<&str> = if call.args.is_empty() {
        DEFAULT_DBS.to_vec()
    } else {
        call.args.iter().map(String::as_str).collect()
    };
    let mut found = Vec::new();
    for target in targets {
        let outcome = ovsdb::check(&endpoint(call, target)?, call.ctx);
        if !outcome.healthy {
            return Ok(outcome);
        }
        found.push(outcome.message);
    }
    Ok(Outcome::healthy(found.join("; ")))
}

/// OVSDB's own remote notation: `unix:PATH` (under the config root), `tcp:HOST:PORT`.
fn endpoint(call: &Call, target: &str) -> Result<Endpoint, String> {
    if let Some(path) = target.strip_prefix("unix:") {
        return Ok(Endpoint::Unix(call.ctx.config.path(path)));
    }
    let address = target
        .strip_prefix("tcp:")
        .ok_or_else(|| format!("`{target}` is not unix:PATH or tcp:HOST:PORT"))?;
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| format!("`{target}` is not tcp:HOST:PORT"))?;
    Ok(Endpoint::tcp(host, parse_port(port, "OVSDB port")?))
}

fn ovn_bgp_agent(call: &Call) -> Result<Outcome, String> {
    process(
        call,
        "ovn-bgp-agent",
        "There is no ovn-bgp-agent process running in the container",
    )
}

fn frr(call: &Call) -> Result<Outcome, String> {
    process(call, "watchfrr", "No watch frr running")
}

/// A process runs; on failure TripleO's words.
fn process(call: &Call, pattern: &str, missing: &str) -> Result<Outcome, String> {
    call.no_args()?;
    let outcome = call.check(Check::Process(ProcessCheck {
        pattern: pattern.to_string(),
    }));
    Ok(if outcome.healthy {
        outcome
    } else {
        Outcome::unhealthy(missing)
    })
}
