//! Datastores and brokers: redis, memcached, MariaDB (and its clustercheck), RabbitMQ, etcd,
//! each checked by speaking its own protocol at the address its configuration gives.

use std::collections::HashMap;

use healthcheck_spec::{Check, HttpCheck, TlsOptions};

use super::{Call, Profile, Run, http_get, url};
use crate::Outcome;
use crate::config::ini::Ini;
use crate::config::{ConfigRoot, memcached, parse_port, rabbitmq_conf, redis_conf, shell_vars};
use crate::protocols::amqp::{self, AmqpTarget};
use crate::protocols::mysql::{self, MysqlAddress, MysqlTarget};
use crate::protocols::redis::{self, RedisTarget};
use crate::protocols::{Endpoint, memcached as memcached_protocol};

pub const PROFILES: &[Profile] = &[
    Profile {
        name: "redis",
        summary: "AUTH (requirepass) and PING at redis.conf bind:port, expecting +PONG",
        run: Run::Custom(redis),
    },
    Profile {
        name: "memcached",
        summary: "`version` at the notls/-l address and port of /etc/sysconfig/memcached (or /etc/memcached.conf)",
        run: Run::Custom(memcached),
    },
    Profile {
        name: "mariadb",
        summary: "[galera]: clustercheck's HTTP port when its socat runs; else log in and SELECT 1 (galera, or Kolla's MYSQL_USERNAME: wsrep state Synced)",
        run: Run::Custom(mariadb),
    },
    Profile {
        name: "rabbitmq",
        summary: "AMQP 0-9-1 handshake (authenticated with the configured default user) at the first TCP listener",
        run: Run::Custom(rabbitmq),
    },
    Profile {
        name: "etcd",
        summary: "GET the first ETCD_LISTEN_CLIENT_URLS of /etc/etcd/etcd.conf + /health, expecting \"health\":\"true\"",
        run: Run::Custom(etcd),
    },
];

fn redis(call: &Call) -> Result<Outcome, String> {
    call.no_args()?;
    const FILE: &str = "/etc/redis/redis.conf";
    let conf = redis_conf::parse(&call.ctx.config.read(FILE)?);
    let port = parse_port(&conf.port, &format!("{FILE} port"))?;
    let target = RedisTarget {
        endpoint: Endpoint::tcp(&conf.bind, port),
        password: conf.password,
    };
    Ok(redis::ping(&target, call.ctx))
}

fn memcached(call: &Call) -> Result<Outcome, String> {
    call.no_args()?;
    const SYSCONFIG: &str = "/etc/sysconfig/memcached";
    const DEBIAN: &str = "/etc/memcached.conf";
    let config = &call.ctx.config;
    let listener = if !config.exists(SYSCONFIG) && config.exists(DEBIAN) {
        memcached::from_debian_conf(&config.read(DEBIAN)?)
    } else {
        memcached::from_sysconfig(&shell_vars::parse(&config.read(SYSCONFIG)?))
    };
    let port = parse_port(&listener.port, "memcached port")?;
    Ok(memcached_protocol::version(
        &Endpoint::tcp(&listener.host, port),
        call.ctx,
    ))
}

const CLUSTERCHECK: &str = "/etc/sysconfig/clustercheck";

fn mariadb(call: &Call) -> Result<Outcome, String> {
    let galera = match call.args {
        [] => false,
        [mode] if mode == "galera" => true,
        args => return Err(format!("takes only `galera` (got `{}`)", args.join(" "))),
    };
    // The galera image also runs clustercheck, an HTTP responder spawned by socat.
    if call.running(r"socat.*\bclustercheck\b") {
        let vars = shell_vars::parse(&call.ctx.config.read(CLUSTERCHECK)?);
        let (host, port) = clustercheck_address(vars.get("TRIPLEO_SOCAT_BIND"), &hostname())?;
        return Ok(call.check(http_get(url("http", &host, port, "/"))));
    }
    let target = mysql_target(&call.ctx.config, call.ctx.env())?;
    let kolla = call.ctx.env().contains_key("MYSQL_USERNAME");
    Ok(if galera || kolla {
        mysql::galera_synced(&target, call.ctx)
    } else {
        mysql::select_one(&target, call.ctx)
    })
}

/// `tcp6-listen:9200,bind="[fd00::2]",reuseaddr,fork`: the port after `listen:`, the
/// address of `bind=`; defaults the host name and 9200.
fn clustercheck_address(bind: Option<&String>, hostname: &str) -> Result<(String, u16), String> {
    let Some(bind) = bind else {
        return Ok((hostname.to_string(), 9200));
    };
    let mut host = hostname.to_string();
    let mut port = 9200;
    for option in bind.split(',') {
        if let Some((_, p)) = option.split_once("listen:") {
            port = parse_port(p, &format!("{CLUSTERCHECK} TRIPLEO_SOCAT_BIND listen"))?;
        } else if let Some(address) = option.strip_prefix("bind=") {
            host = address.trim_matches(['"', '[', ']']).to_string();
        }
    }
    Ok((host, port))
}

/// Who and where to log in: Kolla's `MYSQL_USERNAME`/`MYSQL_PASSWORD`, else the `[client]`
/// and `[mysql]` groups of the option files the mysql client reads, later files winning.
fn mysql_target(root: &ConfigRoot, env: &HashMap<String, String>) -> Result<MysqlTarget, String> {
    let home = env.get("HOME").map_or("/root", String::as_str);
    let user_file = format!("{}/.my.cnf", home.trim_end_matches('/'));
    let mut options: HashMap<&str, String> = HashMap::new();
    for file in ["/etc/my.cnf", "/etc/mysql/my.cnf", &user_file] {
        if !root.exists(file) {
            continue;
        }
        let ini = Ini::parse(&root.read(file)?);
        for key in ["user", "password", "host", "port", "socket"] {
            for group in ["client", "mysql"] {
                if let Some(value) = ini.get(group, key).filter(|_| ini.has_section(group)) {
                    options.insert(key, value.to_string());
                }
            }
        }
    }
    if let Some(user) = env.get("MYSQL_USERNAME") {
        options.insert("user", user.clone());
        if let Some(password) = env.get("MYSQL_PASSWORD") {
            options.insert("password", password.clone());
        }
    }
    let host = options.get("host").filter(|h| *h != "localhost");
    let address = match host {
        Some(host) => MysqlAddress::Tcp {
            host: host.clone(),
            port: match options.get("port") {
                Some(port) => parse_port(port, "mysql option `port`")?,
                None => 3306,
            },
        },
        None => MysqlAddress::Unix(match options.get("socket") {
            Some(socket) => root.path(socket),
            None => ["/var/lib/mysql/mysql.sock", "/run/mysqld/mysqld.sock"]
                .iter()
                .map(|p| root.path(p))
                .find(|p| p.exists())
                .unwrap_or_else(|| root.path("/var/lib/mysql/mysql.sock")),
        }),
    };
    Ok(MysqlTarget {
        address,
        user: options.remove("user").unwrap_or_else(|| "root".to_string()),
        password: options.remove("password"),
    })
}

fn rabbitmq(call: &Call) -> Result<Outcome, String> {
    call.no_args()?;
    Ok(amqp::handshake(&amqp_target(&call.ctx.config)?, call.ctx))
}

/// `rabbitmq.conf`, else the Erlang-term `rabbitmq.config`; `rabbitmq-env.conf`'s
/// `NODE_IP_ADDRESS`/`NODE_PORT` override the listener, as they do for the server.
fn amqp_target(root: &ConfigRoot) -> Result<AmqpTarget, String> {
    const CONF: &str = "/etc/rabbitmq/rabbitmq.conf";
    const CONFIG: &str = "/etc/rabbitmq/rabbitmq.config";
    const ENV: &str = "/etc/rabbitmq/rabbitmq-env.conf";
    let conf = if root.exists(CONF) {
        rabbitmq_conf::parse(&root.read(CONF)?)
    } else if root.exists(CONFIG) {
        rabbitmq_conf::parse_erlang(&root.read(CONFIG)?)
    } else {
        rabbitmq_conf::RabbitConf::default()
    };
    let (mut host, mut port) = match conf.listener.as_deref() {
        None => ("127.0.0.1".to_string(), "5672".to_string()),
        Some(listener) => match listener.rsplit_once(':') {
            Some((host, port)) => (host.trim_matches(['[', ']']).to_string(), port.to_string()),
            None => ("127.0.0.1".to_string(), listener.to_string()),
        },
    };
    if root.exists(ENV) {
        let vars = shell_vars::parse(&root.read(ENV)?);
        if let Some(ip) = vars.get("NODE_IP_ADDRESS").filter(|ip| !ip.is_empty()) {
            host = ip.clone();
        }
        if let Some(p) = vars.get("NODE_PORT") {
            port = p.clone();
        }
    }
    if host == "0.0.0.0" || host == "::" {
        host = "127.0.0.1".to_string();
    }
    Ok(AmqpTarget {
        host,
        port: parse_port(&port, "rabbitmq listener port")?,
        credentials: conf.user.zip(conf.password),
        vhost: conf.vhost.unwrap_or_else(|| "/".to_string()),
    })
}

fn etcd(call: &Call) -> Result<Outcome, String> {
    call.no_args()?;
    const FILE: &str = "/etc/etcd/etcd.conf";
    let vars = shell_vars::parse(&call.ctx.config.read(FILE)?);
    let first = vars
        .get("ETCD_LISTEN_CLIENT_URLS")
        .and_then(|urls| urls.split(',').map(str::trim).find(|u| !u.is_empty()))
        .unwrap_or("http://127.0.0.1:2379");
    // A wildcard listen address is reached on loopback.
    let base = first
        .replace("//0.0.0.0:", "//127.0.0.1:")
        .replace("//[::]:", "//[::1]:");
    // With client certificate auth, present the member's own certificate, as etcdctl did.
    let client_cert = vars
        .get("ETCD_CLIENT_CERT_AUTH")
        .is_some_and(|v| v == "true");
    let file = |key: &str| {
        vars.get(key)
            .filter(|_| client_cert)
            .map(|path| call.ctx.config.path(path).to_string_lossy().into_owned())
    };
    Ok(call.check(Check::Http(HttpCheck {
        url: format!("{}/health", base.trim_end_matches('/')),
        body_regex: Some(r#""health"\s*:\s*"true""#.to_string()),
        tls: TlsOptions {
            cert_file: file("ETCD_CERT_FILE"),
            key_file: file("ETCD_KEY_FILE"),
            ..TlsOptions::default()
        },
        ..HttpCheck::default()
    })))
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into the buffer we own.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".to_string();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profiles::ConfigTree;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn clustercheck_bind_forms() {
        let bind = |s: &str| clustercheck_address(Some(&s.to_string()), "ctl0");
        assert_eq!(
            bind(r#"tcp6-listen:9201,bind="[fd00::2]",reuseaddr,fork"#),
            Ok(("fd00::2".to_string(), 9201))
        );
        assert_eq!(
            bind("tcp4-listen:9200,bind=172.17.1.10,reuseaddr"),
            Ok(("172.17.1.10".to_string(), 9200))
        );
        assert_eq!(
            clustercheck_address(None, "ctl0"),
            Ok(("ctl0".to_string(), 9200))
        );
        assert!(
            bind("tcp-listen:x")
                .unwrap_err()
                .contains("TRIPLEO_SOCAT_BIND")
        );
    }

    #[test]
    fn mysql_options_files_then_kolla_env() {
        let tree = ConfigTree::new(
            "mycnf",
            &[
                (
                    "/etc/my.cnf",
                    "[mysqld]\nuser=mysql\n[client]\nuser=clustercheck\nhost=172.17.1.10\nport=3307\n!includedir /etc/my.cnf.d\n",
                ),
                (
                    "/root/.my.cnf",
                    "[client]\nuser=root\npassword=\"s3cr3t\"\n",
                ),
            ],
        );
        let root = tree.root();
        let target = mysql_target(&root, &env(&[])).unwrap();
        assert_eq!(
            (target.user.as_str(), target.password.as_deref()),
            ("root", Some("s3cr3t"))
        );
        assert!(
            matches!(target.address, MysqlAddress::Tcp { ref host, port: 3307 } if host == "172.17.1.10")
        );
        let kolla = mysql_target(
            &root,
            &env(&[("MYSQL_USERNAME", "monitor"), ("MYSQL_PASSWORD", "pw")]),
        )
        .unwrap();
        assert_eq!(
            (kolla.user.as_str(), kolla.password.as_deref()),
            ("monitor", Some("pw"))
        );
    }

    #[test]
    fn mysql_defaults_to_the_local_socket() {
        let tree = ConfigTree::new("mysock", &[("/run/mysqld/mysqld.sock", "")]);
        let root = tree.root();
        let target = mysql_target(&root, &env(&[("HOME", "/nonexistent")])).unwrap();
        assert_eq!((target.user.as_str(), target.password), ("root", None));
        assert!(
            matches!(target.address, MysqlAddress::Unix(ref p) if p == &root.path("/run/mysqld/mysqld.sock"))
        );
    }

    #[test]
    fn amqp_listener_credentials_and_env_override() {
        let tree = ConfigTree::new(
            "rabbit",
            &[(
                "/etc/rabbitmq/rabbitmq.conf",
                "listeners.tcp.1 = [fd00::1]:5673\ndefault_user = guest\ndefault_pass = pw\n",
            )],
        );
        let root = tree.root();
        let target = amqp_target(&root).unwrap();
        assert_eq!((target.host.as_str(), target.port), ("fd00::1", 5673));
        assert_eq!(
            target.credentials,
            Some(("guest".to_string(), "pw".to_string()))
        );
        assert_eq!(target.vhost, "/");
        std::fs::write(
            root.path("/etc/rabbitmq/rabbitmq-env.conf"),
            "NODE_PORT=5674\nNODE_IP_ADDRESS=0.0.0.0\n",
        )
        .unwrap();
        let target = amqp_target(&root).unwrap();
        assert_eq!((target.host.as_str(), target.port), ("127.0.0.1", 5674));
        drop(tree);
        let tree = ConfigTree::new("rabbit-none", &[]);
        let root = tree.root();
        let target = amqp_target(&root).unwrap();
        assert_eq!(
            (target.host.as_str(), target.port, target.credentials),
            ("127.0.0.1", 5672, None)
        );
    }
}
