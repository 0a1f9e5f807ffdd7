//! The CLI works offline, and bad input gets a clear message and a non-zero exit, never a panic.

use std::io::Write;
use std::process::{Command, Output, Stdio};

const HEALTH_CHECK: &str = r#"apiVersion: healthcheck.openstack.org/v1beta1
kind: HealthCheck
metadata:
  name: nova-api
spec:
  selector: { matchLabels: { app.kubernetes.io/name: nova-api } }
  check: { http: { url: "http://127.0.0.1:8774/" } }
  probes: { liveness: {}, readiness: {} }
  timing: { interval: 10s, startPeriod: 1m }
"#;

fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_healthcheck-operator"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that fails before reading its input closes the pipe early.
    if let Err(err) = child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe, "{err}");
    }
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn renders_every_format() {
    let render = |to| stdout(&run(&["render", "-f", "-", "--to", to], HEALTH_CHECK));
    let kubernetes = render("kubernetes");
    for probe in ["livenessProbe:", "readinessProbe:", "startupProbe:"] {
        assert!(kubernetes.contains(probe), "{kubernetes}");
    }
    // Docker's default start interval is left out: Docker 20.10 and buildah reject the flag.
    assert_eq!(
        render("dockerfile"),
        "HEALTHCHECK --interval=10s --timeout=30s --start-period=1m --retries=3 CMD [\"/openstack/healthcheck\", \"--timeout\", \"27\", \"http\", \"http://127.0.0.1:8774/\"]\n"
    );
    assert!(render("docker-run").starts_with("'--health-cmd=/openstack/healthcheck --timeout 27 http http://127.0.0.1:8774/' --health-interval=10s"));
    assert!(render("podman").starts_with("'--health-cmd=[\"/openstack/healthcheck\""));
    assert!(render("kolla").starts_with("nova_api_healthcheck:\n  interval: 10\n"));
}

#[test]
fn bad_input_fails_with_a_message() {
    for (input, message) in [
        (
            "apiVersion: v1\nkind: Pod\n",
            "expected apiVersion: healthcheck.openstack.org/v1beta1 and kind: HealthCheck",
        ),
        (
            &HEALTH_CHECK.replace("10s", "10"),
            "invalid duration \"10\": must be a duration such as 30s, 1m30s or 500ms",
        ),
        (
            &HEALTH_CHECK.replace("probes:", "probez:"),
            "unknown field `probez`",
        ),
        (
            &HEALTH_CHECK.replace("  check:", "  profile: nova-api\n  check:"),
            "spec: set exactly one of profile and check",
        ),
        ("{ not yaml", "not a valid HealthCheck"),
    ] {
        let output = run(&["render", "-f", "-", "--to", "kubernetes"], input);
        assert_eq!(output.status.code(), Some(1), "{input}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains(message), "{stderr}");
    }
    let nameless = HEALTH_CHECK.replace("  name: nova-api\n", "  namespace: openstack\n");
    let output = run(&["render", "-f", "-", "--to", "kolla"], &nameless);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("metadata.name: names the kolla-ansible variable"),
        "{stderr}"
    );
}

#[test]
fn imports_a_dockerfile() {
    let imported = stdout(&run(
        &["import-dockerfile", "-", "--name", "nova-conductor"],
        "FROM base\nHEALTHCHECK --retries=5 CMD [\"/openstack/healthcheck\", \"port\", \"nova-conductor\", \"5672\"]\n",
    ));
    let rendered = stdout(&run(
        &["render", "-f", "-", "--to", "dockerfile"],
        &imported,
    ));
    // A zero start period is left out too: buildah rejects `--start-period=0s`.
    assert_eq!(
        rendered,
        "HEALTHCHECK --interval=30s --timeout=30s --retries=5 CMD [\"/openstack/healthcheck\", \"--timeout\", \"27\", \"port\", \"nova-conductor\", \"5672\"]\n"
    );
    let output = run(
        &["import-dockerfile", "-", "--name", "x"],
        "FROM base\nHEALTHCHECK NONE\n",
    );
    assert_eq!(output.status.code(), Some(1));
    // Docker takes a 30h timeout; a HealthCheck cannot hold it (the probe's limit is 86400 s).
    let output = run(
        &["import-dockerfile", "-", "--name", "x"],
        "FROM base\nHEALTHCHECK --timeout=30h CMD [\"/bin/true\"]\n",
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("-: spec.timing.timeout: must be at most 86400s"),
        "{stderr}"
    );
    let output = run(&["import-dockerfile", "-"], "FROM base\n");
    assert!(
        String::from_utf8(output.stderr)
            .unwrap()
            .contains("pass --name")
    );
}
