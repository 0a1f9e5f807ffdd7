//! The HTTP-API profiles on Ubuntu's own packages: the files that say where each API listens,
//! read out of Ubuntu 22.04 (Yoga), 24.04 (Caracal) and 26.04 (2026.1) by
//! `scripts/ubuntu-layouts` and kept in `tests/ubuntu/` (versions and digests in its SOURCES).
//! Each case installs its packages' files into a configuration tree as dpkg and their postinst
//! would (Apache sites and confs enabled), then runs the profile inside a network namespace of
//! its own, where a real HTTP server listens on the port the package configures: healthy, naming
//! the file, while it listens; unhealthy, naming the same file, once it is gone.

mod support;

use std::collections::BTreeSet;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::{TempDir, binary};
use test_support::ensure_packages;

/// One profile on one release: the packages installed, the file its address must come from
/// and the port that file (or its defaults) gives.
struct Case {
    profile: &'static str,
    packages: &'static [&'static str],
    file: &'static str,
    port: u16,
}

const fn case(
    profile: &'static str,
    packages: &'static [&'static str],
    file: &'static str,
    port: u16,
) -> Case {
    Case {
        profile,
        packages,
        file,
        port,
    }
}

/// What every release ships the same way.
const EVERY_RELEASE: &[Case] = &[
    case(
        "keystone",
        &["keystone"],
        "/etc/apache2/sites-enabled/keystone.conf",
        5000,
    ),
    case(
        "placement-api",
        &["placement-api"],
        "/etc/apache2/sites-enabled/placement-api.conf",
        8778,
    ),
    case(
        "cinder-api",
        &["cinder-api"],
        "/etc/apache2/conf-enabled/cinder-wsgi.conf",
        8776,
    ),
    case(
        "aodh-api",
        &["aodh-api"],
        "/etc/apache2/sites-enabled/aodh-api.conf",
        8042,
    ),
    // Two vhosts (public 9311, admin 9312): the first is the API's.
    case(
        "barbican-api",
        &["barbican-api"],
        "/etc/apache2/conf-enabled/barbican-api.conf",
        9311,
    ),
    case(
        "gnocchi-api",
        &["gnocchi-api"],
        "/etc/apache2/sites-enabled/gnocchi-api.conf",
        8041,
    ),
    // The service's own server, started by an init script that sets no UWSGI_PORT.
    case(
        "glance-api",
        &["glance-api", "glance-common"],
        "/etc/glance/glance-api.conf",
        9292,
    ),
    case(
        "manila-api",
        &["manila-api", "manila-common"],
        "/etc/manila/manila.conf",
        8786,
    ),
    case(
        "octavia-api",
        &["octavia-api", "octavia-common"],
        "/etc/octavia/octavia.conf",
        9876,
    ),
    case(
        "ironic-api",
        &["ironic-api", "ironic-common"],
        "/etc/ironic/ironic.conf",
        6385,
    ),
];

/// Ubuntu 22.04 and 24.04: nova, heat and neutron run their own servers (nova's Apache site is
/// the separate nova-api-os-compute package).
const EVENTLET_RELEASES: &[Case] = &[
    case(
        "nova-api",
        &["nova-api", "nova-common"],
        "/etc/nova/nova.conf",
        8774,
    ),
    case(
        "nova-api",
        &["nova-api-os-compute", "nova-common"],
        "/etc/apache2/sites-enabled/nova-api-os-compute.conf",
        8774,
    ),
    case(
        "nova-metadata",
        &["nova-api-metadata", "nova-common"],
        "/etc/nova/nova.conf",
        8775,
    ),
    case(
        "heat-api",
        &["heat-api", "heat-common"],
        "/etc/heat/heat.conf",
        8004,
    ),
    case(
        "heat-api-cfn",
        &["heat-api-cfn", "heat-common"],
        "/etc/heat/heat.conf",
        8000,
    ),
    case(
        "neutron-api",
        &["neutron-server", "neutron-common"],
        "/etc/neutron/neutron.conf",
        9696,
    ),
];

/// Ubuntu 26.04: nova, heat and neutron moved under Apache.
const APACHE_RELEASE: &[Case] = &[
    case(
        "nova-api",
        &["nova-api", "nova-common"],
        "/etc/apache2/sites-enabled/nova-api.conf",
        8774,
    ),
    case(
        "nova-metadata",
        &["nova-api-metadata", "nova-common"],
        "/etc/apache2/sites-enabled/nova-api-metadata.conf",
        8775,
    ),
    case(
        "heat-api",
        &["heat-api", "heat-common"],
        "/etc/apache2/sites-enabled/heat-api.conf",
        8004,
    ),
    case(
        "heat-api-cfn",
        &["heat-api-cfn", "heat-common"],
        "/etc/apache2/sites-enabled/heat-api-cfn.conf",
        8000,
    ),
    case(
        "neutron-api",
        &["neutron-api", "neutron-common"],
        "/etc/apache2/sites-enabled/neutron-api.conf",
        9696,
    ),
];

/// Inside the namespace: loopback up, one HTTP server (Python's own) per port, every case's probe
/// run while they listen, the servers closed, every probe run again. Prints
/// `PHASE<TAB>INDEX<TAB>EXIT<TAB>LINE` per run.
const DRIVER: &str = r#"
import http.server, subprocess, sys, threading
binary, cases = sys.argv[1], sys.argv[2:]
cases = [cases[i:i + 3] for i in range(0, len(cases), 3)]
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
class Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
servers = [http.server.ThreadingHTTPServer(("127.0.0.1", port), Ok)
           for port in sorted({int(port) for _, _, port in cases})]
for server in servers:
    threading.Thread(target=server.serve_forever, daemon=True).start()
def run_all(phase):
    for index, (root, profile, _) in enumerate(cases):
        run = subprocess.run([binary, "profile", profile], capture_output=True, text=True, timeout=60,
                             env={"PATH": "/usr/bin:/bin", "HEALTHCHECK_CONFIG_ROOT": root})
        print(f"{phase}\t{index}\t{run.returncode}\t{run.stdout.strip()}", flush=True)
run_all("listening")
for server in servers:
    server.shutdown()
    server.server_close()
run_all("stopped")
"#;

/// Debian's Python: its standard library is all the driver needs.
const PYTHON: &str = "/usr/bin/python3";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ubuntu")
}

/// Copies `from` into `to`, files and directories.
fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The configuration tree of `packages` on `release`: their files where dpkg puts them, and each
/// Apache file enabled as `a2ensite`/`a2enconf` (the postinst's `enabled-by`) links it.
fn install(release: &str, packages: &[&str], root: &Path) {
    for package in packages {
        let dir = fixtures().join(release).join(package);
        assert!(dir.is_dir(), "no files of {release}'s {package} in {dir:?}");
        let files = dir.join("etc");
        let etc = root.join("etc");
        std::fs::create_dir_all(&etc).unwrap();
        copy_tree(&files, &etc);
        let Ok(verb) = std::fs::read_to_string(dir.join("enabled-by")) else {
            continue;
        };
        let kind = match verb.trim() {
            "ensite" => "sites",
            "enconf" => "conf",
            other => panic!("{release}'s {package}: unknown enabled-by `{other}`"),
        };
        let enabled = etc.join(format!("apache2/{kind}-enabled"));
        std::fs::create_dir_all(&enabled).unwrap();
        // This package's own Apache files, not every one the tree holds.
        for conf in std::fs::read_dir(files.join(format!("apache2/{kind}-available"))).unwrap() {
            let name = conf.unwrap().file_name();
            symlink(
                Path::new(&format!("../{kind}-available")).join(&name),
                enabled.join(&name),
            )
            .unwrap();
        }
    }
}

fn check_release(release: &str, cases: &[&Case]) {
    let trees: Vec<TempDir> = cases
        .iter()
        .map(|case| {
            let tree = TempDir::new(&format!("ubuntu-{release}-{}", case.profile));
            install(release, case.packages, &tree.0);
            tree
        })
        .collect();
    let mut args = vec![
        "-n".to_string(),
        PYTHON.to_string(),
        "-c".to_string(),
        DRIVER.to_string(),
        binary().to_string_lossy().into_owned(),
    ];
    for (case, tree) in cases.iter().zip(&trees) {
        args.push(tree.0.to_string_lossy().into_owned());
        args.push(case.profile.to_string());
        args.push(case.port.to_string());
    }
    let output = Command::new("/usr/bin/unshare")
        .args(&args)
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .output()
        .expect("run unshare");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{release}: the driver failed: {output:?}"
    );
    let runs: Vec<(&str, usize, i32, &str)> = stdout
        .lines()
        .map(|line| {
            let mut fields = line.splitn(4, '\t');
            let mut next = || fields.next().unwrap_or_default();
            (
                next(),
                next().parse().unwrap(),
                next().parse().unwrap(),
                next(),
            )
        })
        .collect();
    assert_eq!(runs.len(), 2 * cases.len(), "{release}: {stdout}");
    for (phase, index, code, line) in runs {
        let case = cases[index];
        let what = format!(
            "{release} {} {:?}: {phase}: {line}",
            case.profile, case.packages
        );
        let url = format!("http://127.0.0.1:{}/", case.port);
        assert!(line.contains(&url), "{what}: not {url}");
        if phase == "listening" {
            assert_eq!(code, 0, "{what}");
            assert!(
                line.ends_with(&format!("(address from {})", case.file)),
                "{what}"
            );
        } else {
            assert_eq!(code, 1, "{what}");
            assert!(line.contains("cannot connect"), "{what}");
            assert!(
                line.contains(&format!("(address from {}", case.file)),
                "{what}"
            );
        }
    }
}

/// Every package whose files were read is used by a case, so a refreshed set of files that adds
/// one (or a release) fails here until it is tested.
#[test]
fn every_read_package_is_tested() {
    for (release, cases) in releases() {
        let used: BTreeSet<String> = cases
            .iter()
            .flat_map(|case| case.packages.iter().map(|package| package.to_string()))
            .collect();
        let read: BTreeSet<String> = std::fs::read_dir(fixtures().join(release))
            .unwrap_or_else(|e| panic!("{release}: {e}"))
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(read, used, "{release}");
    }
    let mut read: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.file_type().unwrap().is_dir())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    read.sort();
    assert_eq!(read, releases().map(|(release, _)| release));
}

fn releases() -> [(&'static str, Vec<&'static Case>); 3] {
    let with = |extra: &'static [Case]| EVERY_RELEASE.iter().chain(extra).collect::<Vec<_>>();
    [
        ("jammy", with(EVENTLET_RELEASES)),
        ("noble", with(EVENTLET_RELEASES)),
        ("resolute", with(APACHE_RELEASE)),
    ]
}

#[test]
fn http_api_profiles_on_ubuntu_packages() {
    ensure_packages(&[
        &format!("{PYTHON}=python3"),
        "unshare=util-linux",
        "ip=iproute2",
    ]);
    for (release, cases) in releases() {
        check_release(release, &cases);
    }
}
