//! Service profiles end to end: a configuration tree under `HEALTHCHECK_CONFIG_ROOT`, a real
//! peer (Debian daemons, apache, processes holding real sockets), the static binary.

mod support;

use std::os::unix::fs::symlink;
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use healthcheck_probe::profiles::http_api::{self, Layouts};
use healthcheck_probe::profiles::{self, Run};
use support::daemons;
use support::{Behaviour, HttpServer, Run as ProbeRun, SocketHolder, TempDir, binary, run_as};
use test_support::free_port;

/// A configuration tree the profiles read instead of `/`.
struct Tree(TempDir);

impl Tree {
    fn new(name: &str) -> Tree {
        Tree(TempDir::new(name))
    }

    fn write(&self, path: &str, text: &str) -> &Tree {
        let host = self.0.path(path.trim_start_matches('/'));
        std::fs::create_dir_all(host.parent().unwrap()).unwrap();
        std::fs::write(host, text).unwrap();
        self
    }

    fn root(&self) -> String {
        self.0.0.to_string_lossy().into_owned()
    }

    fn profile(&self, name: &str, args: &[&str]) -> ProbeRun {
        let mut argv = vec!["profile", name];
        argv.extend(args);
        run_as(
            binary(),
            &argv,
            &[("HEALTHCHECK_CONFIG_ROOT", &self.root())],
        )
    }
}

/// Tests that start processes named after services, or depend on their absence, take turns:
/// one test's `nova-compute` must not change another's branch.
fn named_processes() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn vhost(port: u16, alias: &str) -> String {
    format!(
        "<VirtualHost 127.0.0.1:{port}>\n  ServerName 127.0.0.1\n  WSGIScriptAliasMatch ^/x /var/www/x\n  \
         WSGIScriptAlias {alias} \"/var/www/cgi-bin/app\"\n</VirtualHost>\n"
    )
}

#[test]
fn profiles_lists_every_spec_profile() {
    let out = support::run(&["profiles"]);
    assert_eq!(out.code, 0, "{out:?}");
    let names: Vec<&str> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(names, healthcheck_spec::PROFILES);
}

#[test]
fn unknown_profile_and_bad_arguments_are_clear() {
    let tree = Tree::new("unknown");
    let line = tree.profile("nova-bogus", &[]).unhealthy().to_string();
    assert!(line.contains("unknown profile `nova-bogus`"), "{line}");
    let line = tree.profile("keystone", &["5672"]).unhealthy().to_string();
    assert_eq!(line, "unhealthy: keystone: takes no arguments (got `5672`)");
    let line = tree
        .profile("nova-conductor", &["amqp"])
        .unhealthy()
        .to_string();
    assert!(
        line.contains("port argument `amqp` is not a port"),
        "{line}"
    );
}

#[test]
fn missing_config_is_one_clear_line() {
    let tree = Tree::new("missing");
    let line = tree.profile("redis", &[]).unhealthy().to_string();
    assert_eq!(
        line,
        format!(
            "unhealthy: redis: cannot read /etc/redis/redis.conf (as {}/etc/redis/redis.conf): no such file or directory",
            tree.root()
        )
    );
    tree.write("/etc/httpd/conf.d/10-keystone_wsgi.conf", "ServerName x\n");
    let line = tree.profile("keystone", &[]).unhealthy().to_string();
    assert!(line.contains("no `<VirtualHost host:port>`"), "{line}");
}

#[test]
fn redis_auth_ping_wrong_password_and_stopped() {
    let mut redis = daemons::redis(Some("s3cr3t"));
    let tree = Tree::new("redis");
    let port = redis.port;
    let conf =
        |password: &str| format!("bind 127.0.0.1 -::1\nport {port}\nrequirepass \"{password}\"\n");
    tree.write("/etc/redis/redis.conf", &conf("s3cr3t"));
    let line = tree.profile("redis", &[]).healthy().to_string();
    assert_eq!(
        line,
        format!(
            "healthy: redis: Redis server responded correctly on 127.0.0.1:{}.",
            redis.port
        )
    );
    tree.write("/etc/redis/redis.conf", &conf("wrong"));
    let line = tree.profile("redis", &[]).unhealthy().to_string();
    assert!(line.contains("AUTH: -WRONGPASS"), "{line}");
    tree.write("/etc/redis/redis.conf", &format!("port {}\n", redis.port));
    let line = tree.profile("redis", &[]).unhealthy().to_string();
    assert!(line.contains("-NOAUTH"), "{line}");
    tree.write(
        "/etc/redis/redis.conf",
        &format!("bind ::1\nport {port}\nrequirepass s3cr3t\n"),
    );
    let line = tree.profile("redis", &[]).healthy().to_string();
    assert!(line.contains(&format!("on [::1]:{port}.")), "{line}");
    redis.stop();
    tree.write("/etc/redis/redis.conf", &conf("s3cr3t"));
    let line = tree.profile("redis", &[]).unhealthy().to_string();
    assert!(line.contains("connection refused"), "{line}");
}

/// Peers that accept and stall, or answer with something else, end in a reason within the
/// deadline, never a hang.
#[test]
fn protocol_profiles_against_hostile_peers() {
    let tree = Tree::new("hostile");
    let root = tree.root();
    let env = [
        ("HEALTHCHECK_CONFIG_ROOT", root.as_str()),
        ("HEALTHCHECK_CURL_MAX_TIME", "1"),
    ];
    let hang = HttpServer::start("127.0.0.1:0", Behaviour::Hang);
    // Greets every connection with an SSH banner, whatever was sent.
    let garbage = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let garbage_port = garbage.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in garbage.incoming() {
            use std::io::Write;
            let _ = stream.and_then(|mut s| s.write_all(b"SSH-2.0-OpenSSH_9.2\r\n"));
        }
    });
    let configs = |port: u16| {
        tree.write("/etc/redis/redis.conf", &format!("port {port}\n"));
        tree.write("/etc/memcached.conf", &format!("-p {port}\n"));
    };
    configs(hang.addr.port());
    for profile in ["redis", "memcached"] {
        let out = run_as(binary(), &["profile", profile], &env);
        let line = out.unhealthy().to_string();
        assert!(
            line.contains("no reply before the deadline") || line.contains("timed out after 1s"),
            "{line}"
        );
        assert!(out.elapsed < std::time::Duration::from_secs(3), "{out:?}");
        let line = run_as(
            binary(),
            &[
                "profile",
                "ovn-dbs",
                &format!("tcp:127.0.0.1:{}", hang.addr.port()),
            ],
            &env,
        )
        .unhealthy()
        .to_string();
        assert!(
            line.contains("deadline") || line.contains("timed out"),
            "{line}"
        );
    }
    configs(garbage_port);
    let line = run_as(binary(), &["profile", "redis"], &env)
        .unhealthy()
        .to_string();
    assert_eq!(
        line,
        format!(
            "unhealthy: redis: Redis server does not respond correctly on 127.0.0.1:{garbage_port}: SSH-2.0-OpenSSH_9.2"
        )
    );
    let line = run_as(binary(), &["profile", "memcached"], &env)
        .unhealthy()
        .to_string();
    assert!(
        line.contains("answered `version` with: SSH-2.0-OpenSSH_9.2"),
        "{line}"
    );
}

/// The three ways to name a profile run the same check.
#[test]
fn profile_by_subcommand_argv0_and_environment() {
    let redis = daemons::redis(None);
    let tree = Tree::new("invoke");
    tree.write("/etc/redis/redis.conf", &format!("port {}\n", redis.port));
    let links = TempDir::new("links");
    let installed = support::run(&["install-compat", "--profiles", &links.0.to_string_lossy()]);
    assert_eq!(installed.code, 0, "{installed:?}");
    for name in healthcheck_spec::PROFILES {
        assert!(links.path(name).is_symlink(), "{name} not installed");
    }
    let by_name = links.path("redis");
    let openstack = links.path("healthcheck");
    symlink(binary(), &openstack).unwrap();
    let root = tree.root();
    let env = [("HEALTHCHECK_CONFIG_ROOT", root.as_str())];
    let subcommand = tree.profile("redis", &[]).healthy().to_string();
    let argv0 = run_as(&by_name, &[], &env).healthy().to_string();
    let with_env = run_as(
        &openstack,
        &[],
        &[
            ("HEALTHCHECK_CONFIG_ROOT", root.as_str()),
            ("HEALTHCHECK_PROFILE", "redis"),
        ],
    )
    .healthy()
    .to_string();
    assert_eq!(subcommand, argv0);
    assert_eq!(subcommand, with_env);
    // Profiles compose with other checks.
    let all = run_as(
        binary(),
        &[
            "all",
            "profile",
            "redis",
            "--and",
            "tcp",
            &format!("127.0.0.1:{}", redis.port),
        ],
        &env,
    );
    all.healthy();
}

#[test]
fn memcached_sysconfig_debian_conf_and_stopped() {
    let mut memcached = daemons::memcached();
    let tree = Tree::new("memcached");
    tree.write(
        "/etc/sysconfig/memcached",
        &format!(
            "PORT=\"{}\"\nUSER=\"memcached\"\nOPTIONS=\"-l 127.0.0.1 -U 0\"\n",
            memcached.port
        ),
    );
    let line = tree.profile("memcached", &[]).healthy().to_string();
    assert!(
        line.contains(&format!("answers on 127.0.0.1:{}", memcached.port)),
        "{line}"
    );
    let debian = Tree::new("memcached-debian");
    debian.write(
        "/etc/memcached.conf",
        &format!("# memcached\n-m 64\n-p {}\n-l 127.0.0.1\n", memcached.port),
    );
    debian.profile("memcached", &[]).healthy();
    memcached.stop();
    let line = tree.profile("memcached", &[]).unhealthy().to_string();
    assert!(line.contains("connection refused"), "{line}");
}

#[test]
fn ovn_dbs_list_dbs_over_unix_sockets_and_tcp() {
    let tree = Tree::new("ovsdb");
    let nb = tree.0.path("run/ovn/ovnnb_db.sock");
    let sb = tree.0.path("run/ovn/ovnsb_db.sock");
    let mut server = daemons::ovsdb_server(&[nb.clone(), sb]);
    let line = tree.profile("ovn-dbs", &[]).healthy().to_string();
    assert!(
        line.contains("ovsdb-server on unix:") && line.contains("serves Open_vSwitch"),
        "{line}"
    );
    let tcp = format!("tcp:127.0.0.1:{}", server.port);
    let line = tree.profile("ovn-dbs", &[&tcp]).healthy().to_string();
    assert!(
        line.contains(&format!("127.0.0.1:{}", server.port)),
        "{line}"
    );
    std::fs::remove_file(&nb).unwrap();
    let line = tree.profile("ovn-dbs", &[]).unhealthy().to_string();
    assert!(line.contains("ovnnb_db.sock: no such file"), "{line}");
    server.stop();
    let line = tree.profile("ovn-dbs", &[&tcp]).unhealthy().to_string();
    assert!(line.contains("connection refused"), "{line}");
    let line = tree
        .profile("ovn-dbs", &["ssl:x:1"])
        .unhealthy()
        .to_string();
    assert!(line.contains("is not unix:PATH or tcp:HOST:PORT"), "{line}");
}

#[test]
fn etcd_health_and_stopped() {
    let mut etcd = daemons::etcd();
    let tree = Tree::new("etcd");
    tree.write(
        "/etc/etcd/etcd.conf",
        &format!(
            "#[Member]\nETCD_NAME=\"default\"\nETCD_LISTEN_CLIENT_URLS=\"http://127.0.0.1:{},http://127.0.0.1:1\"\n",
            etcd.port
        ),
    );
    let line = tree.profile("etcd", &[]).healthy().to_string();
    assert!(
        line.contains(&format!("http://127.0.0.1:{}/health: 200", etcd.port)),
        "{line}"
    );
    etcd.stop();
    tree.profile("etcd", &[]).unhealthy();
}

/// Each file of each HTTP API's layouts, as TripleO, Kolla, Debian and Ubuntu write it: what
/// `path` must say for the API to answer at `port` (`/` or the vhost's `/api/`).
fn layout_files(layouts: &Layouts, port: u16) -> Vec<(String, String)> {
    let mut files = Vec::new();
    if let Some(file) = layouts.tripleo_vhost {
        files.push((format!("/etc/httpd/conf.d/{file}"), vhost(port, "/api")));
    }
    for file in layouts.uwsgi_inis {
        // Kolla's service-uwsgi-config template.
        let text = format!(
            "[uwsgi]\nadd-header = Connection: close\nhttp = 127.0.0.1:{port}\nmaster = true\n"
        );
        files.push((file.to_string(), text));
    }
    for file in layouts.apache_files {
        // Kolla's and Ubuntu's form: their own Listen, a wildcard vhost.
        let text = format!(
            "Listen 127.0.0.1:{port}\nServerSignature Off\n<VirtualHost *:{port}>\n    WSGIScriptAlias / /usr/bin/app\n</VirtualHost>\n"
        );
        for dir in http_api::APACHE_DIRS {
            files.push((format!("{dir}/{file}"), text.clone()));
        }
    }
    if let Some(name) = layouts.debian_init {
        let text = format!(
            "#!/bin/sh\nPROJECT_NAME=x\nUWSGI_PORT={port}\n# The content after this line comes from openstack-pkg-tools\n\t\tUWSGI_PORT=${{RET}}\n"
        );
        files.push((format!("/etc/init.d/{name}"), text));
    }
    if let Some(ini) = &layouts.ini {
        let text = format!(
            "[{}]\n{} = 127.0.0.1\n{} = {port}\n",
            ini.section, ini.host_key, ini.port_key
        );
        files.push((ini.file.to_string(), text));
    }
    files
}

/// Every HTTP API profile finds its service on each layout alone, in one order of precedence
/// when several are there, and names the file it used and, when nothing declares an address,
/// every file it tried.
#[test]
fn http_api_profiles_find_their_service_on_every_layout() {
    let apache = daemons::apache(false);
    apache.serve_page("/");
    apache.serve_page("/api");
    let port = apache.port;
    let apis: Vec<_> = profiles::all()
        .into_iter()
        .filter_map(|p| match &p.run {
            Run::Api(layouts) => Some((p.name, layouts)),
            _ => None,
        })
        .collect();
    assert!(apis.len() >= 14, "{}", apis.len());
    for (name, layouts) in apis {
        let files = layout_files(layouts, port);
        assert!(files.len() >= 3, "{name}: {files:?}");
        for (path, text) in &files {
            let tree = Tree::new("layout");
            tree.write(path, text);
            let line = tree.profile(name, &[]).healthy().to_string();
            assert!(
                line.contains(&format!("GET http://127.0.0.1:{port}/"))
                    && line.ends_with(&format!("(address from {path})")),
                "{name}: {line}"
            );
        }
        // All of them at once: the first wins; a broken one takes its place and says so.
        let tree = Tree::new("precedence");
        for (path, text) in &files {
            tree.write(path, text);
        }
        let (first, _) = &files[0];
        let line = tree.profile(name, &[]).healthy().to_string();
        assert!(line.ends_with(&format!("(address from {first})")), "{line}");
        let (second, second_text) = &files[1];
        tree.write(second, &second_text.replace(&port.to_string(), "1"));
        std::fs::remove_file(tree.0.path(first.trim_start_matches('/'))).unwrap();
        let line = tree.profile(name, &[]).unhealthy().to_string();
        assert!(
            line.contains(":1/: cannot connect")
                && line.ends_with(&format!("(address from {second}; tried before: {first})")),
            "{line}"
        );
        // Nothing anywhere: every file tried is named.
        let line = Tree::new("nothing")
            .profile(name, &[])
            .unhealthy()
            .to_string();
        assert!(line.contains("no listen address found"), "{line}");
        for (path, _) in &files {
            assert!(line.contains(path.as_str()), "{path} not in {line}");
        }
    }
    // Debian's init scripts: passed over without UWSGI_PORT (glance's is commented out), https
    // when the ssl key and certificate exist, the bind config read when all four are set.
    let tree = Tree::new("debian");
    tree.write(
        "/etc/init.d/glance-api",
        "PROJECT_NAME=glance\n#UWSGI_PORT=9292\n",
    );
    tree.write(
        "/etc/glance/glance-api.conf",
        &format!("[DEFAULT]\nbind_host = 127.0.0.1\nbind_port = {port}\n"),
    );
    let line = tree.profile("glance-api", &[]).healthy().to_string();
    assert!(
        line.ends_with("(address from /etc/glance/glance-api.conf)"),
        "{line}"
    );
    tree.write("/etc/glance/glance-api.conf", "[DEFAULT]\nbind_port = 1\n");
    let line = tree.profile("glance-api", &[]).unhealthy().to_string();
    assert!(
        line.contains(
            "tried before: /etc/glance/glance-api-uwsgi.ini, /etc/init.d/glance-api (no UWSGI_PORT)"
        ),
        "{line}"
    );
    tree.write(
        "/etc/init.d/keystone",
        "PROJECT_NAME=keystone\nUWSGI_PORT=1\nUWSGI_BIND_IP=10.9.9.9\n",
    );
    tree.write("/etc/keystone/ssl/private/keystone.pem", "key");
    tree.write("/etc/keystone/ssl/public/keystone.crt", "cert");
    let line = tree.profile("keystone", &[]).unhealthy().to_string();
    assert!(line.contains("GET https://127.0.0.1:1/"), "{line}");
    std::fs::remove_dir_all(tree.0.path("etc/keystone/ssl")).unwrap();
    tree.write(
        "/etc/init.d/keystone",
        "UWSGI_PORT=1\nUWSGI_BIND_CONFIG_FILE=/etc/keystone/keystone.conf\nUWSGI_BIND_CONFIG_SECTION=DEFAULT\n\
         UWSGI_BIND_CONFIG_IP_DIRECTIVE=bind_host\nUWSGI_BIND_CONFIG_PORT_DIRECTIVE=bind_port\n",
    );
    tree.write(
        "/etc/keystone/keystone.conf",
        &format!("[DEFAULT]\nbind_host = 127.0.0.1\nbind_port = {port}\n"),
    );
    tree.profile("keystone", &[]).healthy();
}

/// Every vhost profile against a real apache2, plus the branching HTTP ones.
#[test]
fn http_api_profiles_against_apache() {
    let _turn = named_processes();
    let mut apache = daemons::apache(false);
    apache.serve_page("/");
    apache.serve_page("/api");
    let port = apache.port;
    let tree = Tree::new("apache");
    let vhost_profiles: Vec<_> = profiles::all()
        .into_iter()
        .filter_map(|p| match &p.run {
            Run::Api(layouts) => layouts.tripleo_vhost.map(|file| (p.name, file)),
            _ => None,
        })
        .collect();
    assert!(vhost_profiles.len() >= 12, "{vhost_profiles:?}");
    for (name, file) in &vhost_profiles {
        tree.write(&format!("/etc/httpd/conf.d/{file}"), &vhost(port, "/api"));
        let line = tree.profile(name, &[]).healthy().to_string();
        assert!(
            line.starts_with(&format!(
                "healthy: {name}: GET http://127.0.0.1:{port}/api/: 200 127.0.0.1:{port} "
            )) && line.ends_with(&format!("(address from /etc/httpd/conf.d/{file})")),
            "{line}"
        );
    }
    // A missing page is a 404: unhealthy, with the status.
    tree.write(
        "/etc/httpd/conf.d/10-keystone_wsgi.conf",
        &vhost(port, "/missing"),
    );
    let line = tree.profile("keystone", &[]).unhealthy().to_string();
    assert!(
        line.contains(": 404 ") && line.contains("expected status below 400"),
        "{line}"
    );

    // nova-api: the metadata vhost when nova_metadata runs, the API vhost otherwise.
    tree.write(
        "/etc/httpd/conf.d/10-nova_api_wsgi.conf",
        &vhost(port, "/api"),
    );
    tree.write(
        "/etc/httpd/conf.d/10-nova_metadata_wsgi.conf",
        &vhost(port, "/missing"),
    );
    tree.profile("nova-api", &[]).healthy();
    {
        let _metadata = SocketHolder::start_as("nova_metadata", &[]);
        let line = tree.profile("nova-api", &[]).unhealthy().to_string();
        assert!(line.contains("/missing/"), "{line}");
    }

    // horizon: the TLS vhost is tried when the plain one fails.
    tree.write(
        "/etc/httpd/conf.d/10-horizon_vhost.conf",
        &vhost(port, "/missing"),
    );
    tree.write(
        "/etc/httpd/conf.d/10-horizon_ssl_vhost.conf",
        &vhost(port, "/api"),
    );
    tree.profile("horizon", &[]).healthy();
    tree.write(
        "/etc/httpd/conf.d/10-horizon_ssl_vhost.conf",
        &vhost(port, "/missing"),
    );
    tree.profile("horizon", &[]).unhealthy();

    // INI-configured APIs (apache stands in for the eventlet servers).
    let bind = format!("[DEFAULT]\nbind_host = 127.0.0.1\nbind_port = {port}\n");
    tree.write("/etc/glance/glance-api.conf", &bind);
    tree.write("/etc/neutron/neutron.conf", &bind);
    for name in ["glance-api", "neutron-api"] {
        let line = tree.profile(name, &[]).healthy().to_string();
        assert!(
            line.contains(&format!("GET http://127.0.0.1:{port}/: 200")),
            "{line}"
        );
    }
    tree.write(
        "/etc/nova/nova.conf",
        &format!("[DEFAULT]\nssl_only = false\n[vnc]\nnovncproxy_host = 127.0.0.1\nnovncproxy_port = {port}\n"),
    );
    tree.profile("nova-vnc-proxy", &[]).healthy();
    tree.write(
        "/etc/ironic-inspector/inspector.conf",
        &format!("[DEFAULT]\nlisten_address = 127.0.0.1\nlisten_port = {port}\n"),
    );
    tree.profile("ironic-inspector", &[]).healthy();
    {
        let _dnsmasq = SocketHolder::start_as("dnsmasq", &[]);
        tree.write(
            "/etc/ironic-inspector/inspector.conf",
            "[DEFAULT]\nlisten_port = 1\n",
        );
        let line = tree.profile("ironic-inspector", &[]).healthy().to_string();
        assert!(line.contains("dnsmasq container"), "{line}");
    }
    tree.write("/run_command", "/usr/sbin/httpd -DFOREGROUND ");
    tree.write("/etc/ironic/ironic.conf", "[DEFAULT]\nmy_ip = 127.0.0.1\n");
    tree.write(
        "/etc/httpd/conf.d/10-ipxe_vhost.conf",
        &format!("Listen {port}\n<VirtualHost *:{port}>\n</VirtualHost>\n"),
    );
    tree.profile("ironic-pxe", &[]).healthy();
    tree.write("/run_command", "/usr/sbin/in.tftpd --foreground");
    let line = tree.profile("ironic-pxe", &[]).healthy().to_string();
    assert!(line.contains("nothing to check"), "{line}");

    apache.stop();
    let line = tree.profile("glance-api", &[]).unhealthy().to_string();
    assert!(line.contains("connection refused"), "{line}");
}

/// `SSLEngine on` in the vhost makes the profile speak TLS to a real mod_ssl (certificate not
/// verified, as TripleO's `curl -k`).
#[test]
fn vhost_with_ssl_engine_on_is_checked_over_tls() {
    let apache = daemons::apache(true);
    apache.serve_page("/identity");
    let tree = Tree::new("apache-tls");
    let vhost = vhost(apache.port, "/identity").replace(
        "  ServerName 127.0.0.1\n",
        "  ServerName 127.0.0.1\n  SSLEngine on\n",
    );
    tree.write("/etc/httpd/conf.d/10-keystone_wsgi.conf", &vhost);
    let line = tree.profile("keystone", &[]).healthy().to_string();
    assert!(
        line.contains(&format!(
            "GET https://127.0.0.1:{}/identity/: 200",
            apache.port
        )),
        "{line}"
    );
    // Plain HTTP to the TLS port is not healthy.
    tree.write(
        "/etc/httpd/conf.d/10-keystone_wsgi.conf",
        &vhost.replace("SSLEngine on", "SSLEngine off"),
    );
    let line = tree.profile("keystone", &[]).unhealthy().to_string();
    assert!(line.contains(": 400 "), "{line}");
}

/// A process name that matches a profile's process pattern.
fn process_name(pattern: &str) -> String {
    pattern.replace("(networking|neutron)", "neutron")
}

/// Every "process has a socket on PORT" profile, with a real process holding a real connection
/// (the port given as the TripleO positional argument), and without one.
#[test]
fn port_profiles_see_a_real_connection() {
    let _turn = named_processes();
    let tree = Tree::new("ports");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let port_profiles: Vec<_> = profiles::all()
        .into_iter()
        .filter_map(|p| match &p.run {
            Run::Port(port_use) => Some((p.name, port_use.process, port_use.service)),
            _ => None,
        })
        .collect();
    assert!(port_profiles.len() >= 30, "{port_profiles:?}");
    for (name, process, service) in &port_profiles {
        // Without the holder: nothing of that name here (or, on a busy machine, nothing of
        // that name connected to this test's port).
        let line = tree.profile(name, &[&port]).unhealthy().to_string();
        assert!(
            line.starts_with(&format!(
                "unhealthy: {name}: no process matches `{process}`"
            )) || line.starts_with(&format!(
                "unhealthy: {name}: no process matching `{process}` has a socket on {port} ("
            )),
            "{line}"
        );
        let holder = SocketHolder::start_as(
            &process_name(process),
            &[&format!("tcp-connect:127.0.0.1:{port}")],
        );
        let line = tree.profile(name, &[&port]).healthy().to_string();
        assert!(
            line.contains(&format!("(pid {}) has tcp", holder.pid()))
                && line.ends_with(&format!("({service})")),
            "{line}"
        );
        let line = tree.profile(name, &["1"]).unhealthy().to_string();
        assert!(line.contains("has a socket on 1 ("), "{line}");
    }
}

#[test]
fn nova_compute_or_migration_target() {
    let _turn = named_processes();
    let tree = Tree::new("compute");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let line = tree
        .profile("nova-compute", &[&port])
        .unhealthy()
        .to_string();
    assert!(
        line.contains("no sshd process listening on port 2022"),
        "{line}"
    );
    {
        let _compute =
            SocketHolder::start_as("nova-compute", &[&format!("tcp-connect:127.0.0.1:{port}")]);
        tree.profile("nova-compute", &[&port]).healthy();
        tree.profile("nova-compute", &["1"]).unhealthy();
    }
    let _sshd = SocketHolder::start_as("sshd", &["tcp-listen-port:127.0.0.1:2022"]);
    let line = tree.profile("nova-compute", &[]).healthy().to_string();
    assert!(line.contains("listens on tcp 127.0.0.1:2022"), "{line}");
}

#[test]
fn gnocchi_statsd_port_from_config() {
    let _turn = named_processes();
    let tree = Tree::new("statsd");
    let statsd = SocketHolder::start_as("gnocchi-statsd", &["udp-bind:127.0.0.1"]);
    tree.write(
        "/etc/gnocchi/gnocchi.conf",
        &format!("[DEFAULT]\n[statsd]\nport = {}\n", statsd.ports[0]),
    );
    let line = tree.profile("gnocchi-statsd", &[]).healthy().to_string();
    assert!(line.contains("has udp"), "{line}");
    tree.write("/etc/gnocchi/gnocchi.conf", "[statsd]\nport = 1\n");
    tree.profile("gnocchi-statsd", &[]).unhealthy();
}

#[test]
fn nova_libvirt_daemons_hold_their_sockets() {
    let _turn = named_processes();
    let tree = Tree::new("libvirt");
    std::fs::create_dir_all(tree.0.path("run/libvirt")).unwrap();
    let virtlogd_sock = tree.0.path("run/libvirt/virtlogd-sock");
    let line = tree
        .profile("nova-libvirt", &["virtlogd"])
        .unhealthy()
        .to_string();
    assert!(line.contains("no process matches `virtlogd`"), "{line}");
    let _virtlogd = SocketHolder::start_as(
        "virtlogd",
        &[&format!("unix-listen:{}", virtlogd_sock.display())],
    );
    let line = tree
        .profile("nova-libvirt", &["virtlogd"])
        .healthy()
        .to_string();
    assert!(
        line.contains("holds") && line.contains("virtlogd-sock"),
        "{line}"
    );
    let libvirt_sock = tree.0.path("run/libvirt/libvirt-sock");
    let _libvirtd = SocketHolder::start_as(
        "libvirtd",
        &[&format!("unix-listen:{}", libvirt_sock.display())],
    );
    tree.profile("nova-libvirt", &[]).healthy();
    tree.profile("nova-libvirt", &["libvirtd"]).healthy();
    let line = tree
        .profile("nova-libvirt", &["qemu"])
        .unhealthy()
        .to_string();
    assert!(line.contains("unknown libvirt daemon `qemu`"), "{line}");
}

#[test]
fn swift_servers_replicators_and_rsync() {
    let _turn = named_processes();
    let tree = Tree::new("swift");
    let server = HttpServer::start(
        "127.0.0.1:0",
        Behaviour::Respond {
            status: 200,
            body: "OK".into(),
        },
    );
    let conf = |pipeline: &str| {
        format!(
            "[DEFAULT]\nbind_ip = 127.0.0.1\nbind_port = {}\n[pipeline:main]\npipeline = {pipeline}\n",
            server.addr.port()
        )
    };
    let line = tree.profile("swift-proxy", &[]).healthy().to_string();
    assert!(line.contains("no swift-proxy-server process"), "{line}");
    {
        let _proxy = SocketHolder::start_as("swift-proxy-server", &[]);
        tree.write(
            "/etc/swift/proxy-server.conf",
            &conf("catch_errors healthcheck proxy-server"),
        );
        let line = tree.profile("swift-proxy", &[]).healthy().to_string();
        assert!(line.contains("/healthcheck: 200"), "{line}");
        assert!(
            server
                .requests
                .lock()
                .unwrap()
                .iter()
                .any(|r| r.starts_with("GET /healthcheck "))
        );
        tree.write(
            "/etc/swift/proxy-server.conf",
            &conf("catch_errors proxy-server"),
        );
        let line = tree.profile("swift-proxy", &[]).healthy().to_string();
        assert_eq!(line, "healthy: swift-proxy: healthcheck is not available");
    }
    for kind in ["account", "container", "object"] {
        let name = format!("swift-{kind}-server");
        tree.write(
            &format!("/etc/swift/{kind}-server.conf"),
            &conf("healthcheck server"),
        );
        {
            let _server = SocketHolder::start_as(&name, &[]);
            tree.profile(&name, &[]).healthy();
        }
        let _replicator = SocketHolder::start_as(&format!("swift-{kind}-replicator"), &[]);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let recon = format!("/var/cache/swift/{kind}.recon");
        tree.write(&recon, &format!("{{\"replication_last\": {}}}", now - 10));
        tree.profile(&name, &[]).healthy();
        tree.write(
            &recon,
            &format!("{{\"{kind}_replication_last\": {}.5}}", now - 1000),
        );
        let line = tree.profile(&name, &[]).unhealthy().to_string();
        assert!(
            line.contains("Last replication run did not finish within interval of 300 seconds"),
            "{line}"
        );
    }
    let line = tree.profile("swift-rsync", &[]).unhealthy().to_string();
    assert!(
        line.contains("There is no rsync process, listening on port(s) 873"),
        "{line}"
    );
    let _rsync = SocketHolder::start_as("rsync", &["tcp-listen-port:127.0.0.1:873"]);
    tree.profile("swift-rsync", &[]).healthy();
    tree.profile("swift-object-server", &[]).healthy();
}

#[test]
fn mariadb_clustercheck_branch() {
    let _turn = named_processes();
    let tree = Tree::new("clustercheck");
    let server = HttpServer::start(
        "127.0.0.1:0",
        Behaviour::Respond {
            status: 200,
            body: "Galera cluster node is synced.".into(),
        },
    );
    tree.write(
        "/etc/sysconfig/clustercheck",
        &format!(
            "TRIPLEO_SOCAT_BIND='tcp4-listen:{},bind=\"127.0.0.1\",reuseaddr,fork,nodelay'\n",
            server.addr.port()
        ),
    );
    let _socat = SocketHolder::start_as("socat clustercheck", &[]);
    let line = tree.profile("mariadb", &[]).healthy().to_string();
    assert!(
        line.contains(&format!(
            "GET http://127.0.0.1:{}/: 200",
            server.addr.port()
        )),
        "{line}"
    );
    let line = tree
        .profile("mariadb", &["tripleo"])
        .unhealthy()
        .to_string();
    assert!(line.contains("takes only `galera`"), "{line}");
}

#[test]
fn cron_counts_crontab_jobs() {
    let tree = Tree::new("cron");
    tree.write(
        "/var/spool/cron/nova",
        "# HEADER\nPATH=/bin:/usr/bin\n1 0 * * * nova-manage db archive_deleted_rows\n",
    );
    let line = tree.profile("cron", &["nova"]).healthy().to_string();
    assert!(line.contains("/var/spool/cron/nova has 1 job(s)"), "{line}");
    // One job and a trailing blank line, and one job alone: both are a crontab with a job.
    tree.write(
        "/var/spool/cron/heat",
        "0 * * * * heat-manage purge_deleted\n\n",
    );
    tree.profile("cron", &["heat"]).healthy();
    tree.write(
        "/var/spool/cron/heat",
        "0 * * * * heat-manage purge_deleted\n",
    );
    tree.profile("cron", &["heat"]).healthy();
    // Comments, blank lines and environment settings only: nothing will run.
    tree.write("/var/spool/cron/root", "# nothing\nSHELL=/bin/sh\n\n");
    let line = tree.profile("cron", &[]).unhealthy().to_string();
    assert!(line.contains("/var/spool/cron/root has no job"), "{line}");
    tree.profile("cron", &["keystone"]).unhealthy();
    tree.profile("cron", &["../etc/passwd"]).unhealthy();
}

#[test]
fn collectd_unixsock_listval() {
    let tree = Tree::new("collectd");
    let socket = tree.0.path("var/run/collectd-socket");
    let mut collectd = daemons::collectd(&socket);
    let line = tree.profile("collectd", &[]).healthy().to_string();
    assert!(line.contains("Values found"), "{line}");
    collectd.stop();
    let _ = std::fs::remove_file(&socket);
    tree.profile("collectd", &[]).unhealthy();
}

#[test]
fn ovn_bgp_agent_and_frr_processes() {
    let _turn = named_processes();
    let tree = Tree::new("bgp");
    let line = tree.profile("frr", &[]).unhealthy().to_string();
    assert_eq!(line, "unhealthy: frr: No watch frr running");
    let line = tree.profile("ovn-bgp-agent", &[]).unhealthy().to_string();
    assert_eq!(
        line,
        "unhealthy: ovn-bgp-agent: There is no ovn-bgp-agent process running in the container"
    );
    let _watchfrr = SocketHolder::start_as("watchfrr", &[]);
    let _agent = SocketHolder::start_as("ovn-bgp-agent", &[]);
    tree.profile("frr", &[]).healthy();
    tree.profile("ovn-bgp-agent", &[]).healthy();
}

/// qdrouterd is not packaged in Debian 12: a scripted AMQP 1.0 peer stands in.
#[test]
fn qdrouterd_against_a_scripted_peer() {
    let tree = Tree::new("scripted");
    let amqp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = amqp.local_addr().unwrap().port();
    tree.write(
        "/etc/qpid-dispatch/qdrouterd.conf",
        &format!("router {{\n    mode: interior\n}}\nlistener {{\n    host: 127.0.0.1\n    port: {port}\n    role: normal\n}}\n"),
    );
    let peer = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut stream, _) = amqp.accept().unwrap();
        let mut header = [0u8; 8];
        stream.read_exact(&mut header).unwrap();
        stream.write_all(&header).unwrap();
        header
    });
    let line = tree.profile("qdrouterd", &[]).healthy().to_string();
    assert!(line.contains("answers AMQP 1.0"), "{line}");
    assert_eq!(&peer.join().unwrap(), b"AMQP\x03\x01\x00\x00");
    tree.write(
        "/etc/qpid-dispatch/qdrouterd.conf",
        &format!("listener {{\n    port: {}\n}}\n", free_port()),
    );
    tree.profile("qdrouterd", &[]).unhealthy();
    tree.write(
        "/etc/qpid-dispatch/qdrouterd.conf",
        "listener {\n    port: 5671\n    sslProfile: tls\n}\n",
    );
    let line = tree.profile("qdrouterd", &[]).unhealthy().to_string();
    assert!(line.contains("sslProfile"), "{line}");
}

/// A python3 process serving a Linux abstract Unix socket with `handler` (python code using
/// `conn`), until dropped.
struct AbstractPeer(std::process::Child);

impl AbstractPeer {
    fn start(name: &str, handler: &str) -> AbstractPeer {
        use std::io::BufRead;
        let script = format!(
            "import socket, struct, sys\n\
             s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n\
             s.bind('\\0' + sys.argv[1]); s.listen()\n\
             print('ready', flush=True)\n\
             while True:\n    conn, _ = s.accept()\n{}\n    conn.close()\n",
            handler
                .lines()
                .map(|l| format!("    {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        let mut child = std::process::Command::new("python3")
            .args(["-c", &script, name])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 is needed for the scripted peers");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "abstract peer {name} failed");
        AbstractPeer(child)
    }
}

impl Drop for AbstractPeer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// iscsid needs the kernel's iSCSI netlink and multipathd device-mapper, neither of which a
/// container has: python peers speak their control-socket protocols on the same abstract names.
#[test]
fn iscsid_and_multipathd_control_sockets() {
    static ABSTRACT_NAMES: Mutex<()> = Mutex::new(());
    let _turn = ABSTRACT_NAMES.lock().unwrap_or_else(|e| e.into_inner());
    let tree = Tree::new("abstract");
    let line = tree.profile("iscsid", &[]).unhealthy().to_string();
    assert!(
        line.contains("unix:@ISCSIADM_ABSTRACT_NAMESPACE: connection refused"),
        "{line}"
    );
    {
        let _iscsid = AbstractPeer::start("ISCSIADM_ABSTRACT_NAMESPACE", "pass");
        tree.profile("iscsid", &[]).healthy();
    }
    let multipathd = "/org/kernel/linux/storage/multipathd";
    tree.profile("multipathd", &[]).unhealthy();
    let reply = |text: &str| {
        format!(
            "n = struct.unpack('=Q', conn.recv(8))[0]\n\
             cmd = conn.recv(n)\n\
             out = (b'{text}\\n' if cmd == b'show status\\0' else b'fail\\n') + b'\\0'\n\
             conn.sendall(struct.pack('=Q', len(out)) + out)"
        )
    };
    {
        let _daemon = AbstractPeer::start(multipathd, &reply("path checker states:\\nup 2"));
        let line = tree.profile("multipathd", &[]).healthy().to_string();
        assert_eq!(
            line,
            "healthy: multipathd: multipathd on unix:@/org/kernel/linux/storage/multipathd: path checker states:"
        );
    }
    let _failing = AbstractPeer::start(multipathd, &reply("fail"));
    tree.profile("multipathd", &[]).unhealthy();
}
