//! Services that must hold a connection to RabbitMQ, Redis, MySQL or OVSDB (TripleO's
//! `healthcheck_port PROCESS PORT...`): positional arguments replace the default ports.

use healthcheck_spec::{Check, ProcessPorts};

use super::{Call, PortUse, Profile, RABBITMQ, REDIS, Run, ports_or, with_service};
use crate::Outcome;
use crate::config::parse_port;

const fn rabbit(name: &'static str, process: &'static str) -> Profile {
    Profile {
        name,
        summary: "the process has a socket on the RabbitMQ ports [PORT...] (5671,5672)",
        run: Run::Port(PortUse {
            process,
            ports: RABBITMQ,
            service: "RabbitMQ",
        }),
    }
}

const fn redis(name: &'static str, process: &'static str) -> Profile {
    Profile {
        name,
        summary: "the process has a socket on the Redis port [PORT...] (6379)",
        run: Run::Port(PortUse {
            process,
            ports: REDIS,
            service: "Redis",
        }),
    }
}

pub const PROFILES: &[Profile] = &[
    rabbit("aodh-listener", "aodh-listener"),
    rabbit("aodh-notifier", "aodh-notifier"),
    rabbit("barbican-keystone-listener", "barbican-keystone-listener"),
    rabbit("barbican-worker", "barbican-worker"),
    rabbit(
        "ceilometer-agent-notification",
        "ceilometer-agent-notification",
    ),
    rabbit("cinder-backup", "cinder-backup"),
    rabbit("cinder-scheduler", "cinder-scheduler"),
    rabbit("cinder-volume", "cinder-volume"),
    rabbit("heat-engine", "heat-engine"),
    rabbit("ironic-conductor", "ironic-conductor"),
    rabbit("ironic-neutron-agent", "ironic-neutron-agent"),
    rabbit("manila-scheduler", "manila-scheduler"),
    rabbit("manila-share", "manila-share"),
    rabbit("neutron-dhcp", "neutron-dhcp-agent"),
    rabbit("neutron-l3", "neutron-l3-agent"),
    rabbit("neutron-metadata", "neutron-metadata-agent"),
    rabbit("neutron-ovs-agent", "neutron-openvswitch-agent"),
    rabbit("neutron-sriov-agent", "neutron-sriov-nic-agent"),
    rabbit("nova-conductor", "nova-conductor"),
    rabbit("nova-ironic", "nova-compute"),
    rabbit("nova-scheduler", "nova-scheduler"),
    rabbit("octavia-worker", "octavia-worker"),
    redis("aodh-evaluator", "aodh-evaluator"),
    redis("gnocchi-metricd", "gnocchi-metricd"),
    redis("ceilometer-agent-central", "ceilometer-polling"),
    redis("ceilometer-agent-compute", "ceilometer-polling"),
    redis("ceilometer-agent-ipmi", "ceilometer-polling"),
    Profile {
        name: "octavia-health-manager",
        summary: "octavia-health-manager has a socket on the heartbeat port [PORT...] (UDP 5555)",
        run: Run::Port(PortUse {
            process: "octavia-health-manager",
            ports: &[5555],
            service: "heartbeat",
        }),
    },
    Profile {
        name: "octavia-housekeeping",
        summary: "octavia-housekeeping has a socket on the MySQL port [PORT...] (3306)",
        run: Run::Port(PortUse {
            process: "octavia-housekeeping",
            ports: &[3306],
            service: "MySQL",
        }),
    },
    Profile {
        name: "gnocchi-statsd",
        summary: "gnocchi-statsd has a socket on gnocchi.conf [statsd] port (UDP 8125)",
        run: Run::Custom(gnocchi_statsd),
    },
];

fn gnocchi_statsd(call: &Call) -> Result<Outcome, String> {
    const FILE: &str = "/etc/gnocchi/gnocchi.conf";
    let ports = if call.args.is_empty() {
        let ini = call.ctx.config.ini(FILE)?;
        vec![parse_port(
            ini.get_or("statsd", "port", "8125"),
            &format!("{FILE} [statsd] port"),
        )?]
    } else {
        ports_or(call.args, &[])?
    };
    let outcome = call.check(Check::Port(ProcessPorts {
        process: "gnocchi-statsd".to_string(),
        ports,
    }));
    Ok(with_service(outcome, "statsd"))
}
