//! The project's images, built offline by `scripts/build-images`, under a private dockerd and
//! under podman: each image's own HEALTHCHECK reaches the state it should. The probe sidecar's
//! (`healthcheck status`, asking its own serve) is healthy while the configured check passes and
//! unhealthy with that check's line when it fails; glance-api's (the glance-api profile) and the
//! Kolla snippet's (`healthcheck_curl`; each engine builds the snippet onto the loaded glance-api
//! image) are healthy once the real service answers, and so are the other Debian service images'
//! (keystone under Apache, heat-engine connected to RabbitMQ, MariaDB, RabbitMQ, memcached). The static operator runs `FROM scratch` and
//! renders what it renders on the host. Under podman, which does not stop a check at its
//! timeout, the probe's own deadline bounds a hung check.
//!
//! Under dockerd the images' intervals are shortened with `--health-interval` (command, timeout,
//! start period and retries stay the image's); podman has no timer without systemd, so the test
//! runs `podman healthcheck run` itself.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use engine_tests::{
    Dockerd, Podman, ScratchDir, image_archive, images, operator_binary, repo_root, run, run_ok,
    wait_for,
};
use serde_json::Value;

/// The sidecar's serve config: readiness is a TCP connect to `address`. The sidecar's own
/// listener passes; a closed port fails, and with it the image's HEALTHCHECK, which asks serve.
fn sidecar_env(address: &str) -> String {
    format!(
        r#"HEALTHCHECK_SERVE_CONFIG={{"readiness": {{"check": {{"tcp": {{"address": "{address}"}}}}, "interval": "1s"}}}}"#
    )
}
const LISTENING: &str = "127.0.0.1:9180";
const CLOSED: &str = "127.0.0.1:1";
/// What `healthcheck status` prints for each (docker keeps the trailing newline, podman not).
const LISTENING_LINE: &str =
    "readiness healthy: healthy: tcp 127.0.0.1:9180 connected to 127.0.0.1:9180";
const CLOSED_LINE: &str = "readiness unhealthy: unhealthy: tcp 127.0.0.1:1: \
     cannot connect to 127.0.0.1:1: connection refused";

const LIMIT: Duration = Duration::from_secs(180);

/// Every archive the test loads, built (or found in the layer cache) once per test process:
/// `services` holds glance-api and the other service images. The kolla image is not among them:
/// each engine builds it from the snippet itself.
fn archives() -> [PathBuf; 3] {
    ["probe", "operator", "services"].map(image_archive)
}

/// The service images besides glance-api that have a HEALTHCHECK of their own (redis has none:
/// it is the image for `injectBinary`), and the `run` options each needs: heat-engine joins
/// RabbitMQ's network namespace and reaches it on loopback, as containers of one pod would.
const SERVICES: [(&str, &[&str]); 5] = [
    ("rabbitmq", &[]),
    (
        "heat-engine",
        &[
            "--network",
            "container:rabbitmq",
            "-e",
            "OS_DEFAULT__TRANSPORT_URL=rabbit://guest:guest@127.0.0.1:5672/",
        ],
    ),
    ("keystone", &[]),
    ("mariadb", &[]),
    ("memcached", &[]),
];
/// keystone and heat-engine set up their databases first, both engines' services at once.
const SERVICE_LIMIT: Duration = Duration::from_secs(600);

/// The service's own check found it healthy, by its profile.
fn assert_service_output(engine: &str, service: &str, health: &Value) {
    let output = last_output(health);
    assert!(
        output.starts_with(&format!("healthy: {service}")),
        "{engine} {service}: {health}"
    );
    eprintln!("{engine} {service}: {}", output.trim_end());
}

/// `build` arguments applying the kolla snippet to the loaded glance-api image, in an empty
/// context (the snippet copies only from the probe image).
fn kolla_build_args(context: &ScratchDir) -> Vec<String> {
    let snippet = repo_root().join("deploy/containers/kolla-healthcheck.Dockerfile");
    [
        "build",
        "-q",
        "--network",
        "none",
        "-t",
        images::KOLLA_GLANCE_API,
        "-f",
        &snippet.to_string_lossy(),
        "--build-arg",
        &format!("PROBE_IMAGE={}", images::PROBE),
        "--build-arg",
        &format!("SERVICE_IMAGE={}", images::GLANCE_API),
        &context.path().to_string_lossy(),
    ]
    .map(String::from)
    .to_vec()
}

fn last_output(health: &Value) -> String {
    health["Log"]
        .as_array()
        .and_then(|log| log.last())
        .and_then(|entry| entry["Output"].as_str())
        .unwrap_or_else(|| panic!("no log entry: {health}"))
        .to_string()
}

/// `run` arguments rendering the glance-api sample (mounted read-only) with the operator image.
fn render_in_operator_image() -> Vec<String> {
    let sample = repo_root().join("deploy/samples/glance-api.yaml");
    let volume = format!("{}:/sample.yaml:ro", sample.display());
    [
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &volume,
        images::OPERATOR,
        "render",
        "-f",
        "/sample.yaml",
        "--to",
        "dockerfile",
    ]
    .map(String::from)
    .to_vec()
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// What `render --to dockerfile` prints for the glance-api sample, from the static operator
/// on the host (the same binary the image carries).
fn rendered_on_host() -> String {
    run_ok(
        Command::new(operator_binary())
            .args(["render", "-f"])
            .arg(repo_root().join("deploy/samples/glance-api.yaml"))
            .args(["--to", "dockerfile"]),
    )
}

/// The service answered the image's own check: the glance-api profile's line, and for the kolla
/// image curl's write-out line from `healthcheck_curl` (glance answers `GET /` with 300).
fn assert_glance_outputs(engine: &str, glance: &str, kolla: &str) {
    // The profile found the address in Debian's own glance-api.conf.
    assert!(
        glance.starts_with("healthy: glance-api: GET http://127.0.0.1:9292/: 300 ")
            && glance
                .trim_end()
                .ends_with("(address from /etc/glance/glance-api.conf)"),
        "{engine} glance-api: {glance:?}"
    );
    assert!(
        kolla
            .lines()
            .any(|line| line.starts_with("300 127.0.0.1:9292 ")),
        "{engine} kolla-glance-api: {kolla:?}"
    );
}

fn docker_health_is(dockerd: &Dockerd, name: &str, status: &str) -> Value {
    wait_for(LIMIT, &format!("{name} {status} under dockerd"), || {
        let health = dockerd.health(name);
        (health["Status"] == status).then_some(health)
    })
}

#[test]
fn each_image_reaches_its_healthchecks_state_under_dockerd() {
    let archives = archives();
    let dockerd = Dockerd::start();
    for archive in &archives {
        dockerd.load(archive);
    }
    let context = ScratchDir::new("ohc-kolla");
    let args = kolla_build_args(&context);
    dockerd.ok(&strs(&args));
    let start = |name: &str, interval: &str, extra: &[&str], image: &str| {
        let interval = format!("--health-interval={interval}");
        dockerd.run_detached(name, &[&[interval.as_str()], extra].concat(), image, &[]);
    };
    start(
        "sidecar",
        "1s",
        &["-e", &sidecar_env(LISTENING)],
        images::PROBE,
    );
    start("broken", "1s", &["-e", &sidecar_env(CLOSED)], images::PROBE);
    start("glance", "2s", &[], images::GLANCE_API);
    start("kolla", "2s", &[], images::KOLLA_GLANCE_API);
    for (service, options) in SERVICES {
        start(service, "2s", options, &images::service(service));
    }

    // The static operator in its FROM-scratch image renders exactly what it renders on the host.
    let rendered = dockerd.ok(&strs(&render_in_operator_image()));
    assert_eq!(rendered, rendered_on_host());
    assert!(rendered.starts_with("HEALTHCHECK "), "{rendered}");

    // The sidecar's HEALTHCHECK asks its own serve: healthy with readiness's line ...
    let health = docker_health_is(&dockerd, "sidecar", "healthy");
    let output = last_output(&health);
    assert_eq!(output.trim_end(), LISTENING_LINE, "{health}");
    // ... and unhealthy, with the failing check's line, when that check fails.
    let health = docker_health_is(&dockerd, "broken", "unhealthy");
    let output = last_output(&health);
    assert_eq!(output.trim_end(), CLOSED_LINE, "{health}");
    assert_eq!(
        health["Log"].as_array().unwrap().last().unwrap()["ExitCode"],
        1
    );

    let glance = last_output(&docker_health_is(&dockerd, "glance", "healthy"));
    let kolla = last_output(&docker_health_is(&dockerd, "kolla", "healthy"));
    assert_glance_outputs("dockerd", &glance, &kolla);
    for (service, _) in SERVICES {
        let health = wait_for(
            SERVICE_LIMIT,
            &format!("{service} healthy under dockerd"),
            || {
                let health = dockerd.health(service);
                (health["Status"] == "healthy").then_some(health)
            },
        );
        assert_service_output("dockerd", service, &health);
    }
}

/// Runs the container's HEALTHCHECK with `podman healthcheck run` until it exits `expect`
/// (podman 4.3 keeps no timer without systemd); the health podman recorded.
fn podman_check_until(podman: &Podman, name: &str, passes: bool) -> Value {
    podman_check_within(LIMIT, podman, name, passes)
}

fn podman_check_within(limit: Duration, podman: &Podman, name: &str, passes: bool) -> Value {
    wait_for(limit, &format!("{name}'s check to pass={passes}"), || {
        let ran = run(&mut podman.podman(&["healthcheck", "run", name]));
        (ran.status.success() == passes).then(|| podman.health(name))
    })
}

#[test]
fn each_image_reaches_its_healthchecks_state_under_podman() {
    let archives = archives();
    let podman = Podman::new();
    for archive in &archives {
        podman.load(archive);
    }
    let context = ScratchDir::new("ohc-kolla");
    let mut args = kolla_build_args(&context);
    // podman keeps a HEALTHCHECK only in Docker's image format, not in its default OCI one.
    args.splice(1..1, ["--pull=never".into(), "--format=docker".into()]);
    podman.ok(&strs(&args));
    podman.run_detached(
        "sidecar",
        &["-e", &sidecar_env(LISTENING)],
        images::PROBE,
        &[],
    );
    podman.run_detached("broken", &["-e", &sidecar_env(CLOSED)], images::PROBE, &[]);
    podman.run_detached("glance", &[], images::GLANCE_API, &[]);
    podman.run_detached("kolla", &[], images::KOLLA_GLANCE_API, &[]);
    for (service, options) in SERVICES {
        podman.run_detached(service, options, &images::service(service), &[]);
    }

    let rendered = podman.ok(&strs(&render_in_operator_image()));
    assert_eq!(rendered, rendered_on_host());

    let health = podman_check_until(&podman, "sidecar", true);
    assert_eq!(health["Status"], "healthy", "{health}");
    let output = last_output(&health);
    assert_eq!(output.trim_end(), LISTENING_LINE, "{health}");
    // Past the image's 5 s start period, three failures in a row: unhealthy.
    let broken = wait_for(LIMIT, "broken unhealthy under podman", || {
        let health = podman_check_until(&podman, "broken", false);
        (health["Status"] == "unhealthy").then_some(health)
    });
    let output = last_output(&broken);
    assert_eq!(output.trim_end(), CLOSED_LINE, "{broken}");

    let glance = podman_check_until(&podman, "glance", true);
    let kolla = podman_check_until(&podman, "kolla", true);
    assert_eq!(glance["Status"], "healthy", "{glance}");
    assert_eq!(kolla["Status"], "healthy", "{kolla}");
    assert_glance_outputs("podman", &last_output(&glance), &last_output(&kolla));
    for (service, _) in SERVICES {
        let health = podman_check_within(SERVICE_LIMIT, &podman, service, true);
        assert_eq!(health["Status"], "healthy", "{service}: {health}");
        assert_service_output("podman", service, &health);
    }

    // podman 4.3 lets a check outlive --health-timeout: only the probe's --timeout ends it.
    podman.run_detached(
        "hung",
        &[
            "--health-cmd",
            r#"["/openstack/healthcheck", "--timeout", "2", "command", "--", "/bin/sleep", "60"]"#,
            "--health-timeout=1s",
            "--entrypoint",
            "/bin/sleep",
        ],
        images::PROBE,
        &["600"],
    );
    let started = Instant::now();
    let ran = run(&mut podman.podman(&["healthcheck", "run", "hung"]));
    let took = started.elapsed();
    assert!(!ran.status.success(), "a hung check is unhealthy");
    // Far below the 60 s the command would take: the probe's 2 s deadline ended it.
    assert!(took < Duration::from_secs(30), "took {took:?}");
    // podman notices the overrun only once the check has ended (-1), and keeps the probe's line.
    let health = podman.health("hung");
    let last = health["Log"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["ExitCode"], -1, "{health}");
    assert_eq!(
        last["Output"], "unhealthy: command `/bin/sleep 60` timed out after 2s",
        "{health}"
    );
    // Nothing of the hung check is left running in the container.
    let processes = podman.ok(&[
        "exec",
        "hung",
        "/bin/sh",
        "-c",
        "for f in /proc/[0-9]*/cmdline; do cat $f; echo; done",
    ]);
    // (`/bin/sleep 600`, the container itself, is the one sleep left.)
    assert!(!processes.contains("/bin/sleep\x0060\x00"), "{processes:?}");
}
