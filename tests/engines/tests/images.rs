//! The project's images, built offline by `scripts/build-images`, under a private dockerd and
//! under podman: each image's own HEALTHCHECK reaches `healthy`, the static operator starts
//! `FROM scratch`, and under podman (which does not enforce a healthcheck's timeout) the probe's
//! own deadline bounds a hung check.

use std::time::{Duration, Instant};

use engine_tests::{Dockerd, Podman, image_archive, images, repo_root, run, wait_for};
use serde_json::Value;

/// A serve config whose one role passes while the sidecar's binary is there.
const SIDECAR_CONFIG: &str =
    r#"{"liveness": {"check": {"file": {"path": "/openstack/healthcheck"}}, "interval": "1s"}}"#;

fn docker_status(dockerd: &Dockerd, name: &str) -> Option<Value> {
    let health = dockerd.health(name);
    (health["Status"] == "healthy").then_some(health)
}

/// Waits until dockerd reports the container healthy; the image's own check, with its interval
/// shortened to `interval` (the image's command and other timings are kept).
fn healthy_under_dockerd(
    dockerd: &Dockerd,
    name: &str,
    interval: &str,
    image: &str,
    args: &[&str],
) -> Value {
    let interval = format!("--health-interval={interval}");
    let mut all = vec!["run", "-d", "--name", name, "--network", "none", &interval];
    all.extend(args);
    all.push(image);
    dockerd.ok(&all);
    wait_for(
        Duration::from_secs(120),
        &format!("{name} healthy under dockerd"),
        || docker_status(dockerd, name),
    )
}

/// `podman healthcheck run` until it passes (podman has no timer without systemd).
fn healthy_under_podman(podman: &Podman, name: &str) -> Value {
    wait_for(
        Duration::from_secs(120),
        &format!("{name} healthy under podman"),
        || {
            run(&mut podman.podman(&["healthcheck", "run", name]))
                .status
                .success()
                .then(|| podman.health(name))
        },
    )
}

#[test]
fn the_probe_and_operator_images_work_under_dockerd() {
    let dockerd = Dockerd::start();
    dockerd.load(&image_archive("probe"));
    dockerd.load(&image_archive("operator"));

    let env = format!("HEALTHCHECK_SERVE_CONFIG={SIDECAR_CONFIG}");
    let health = healthy_under_dockerd(&dockerd, "sidecar", "1s", images::PROBE, &["-e", &env]);
    let output = health["Log"].as_array().unwrap().last().unwrap()["Output"].clone();
    assert!(
        output.as_str().unwrap().starts_with("liveness healthy: "),
        "{health}"
    );

    // The init container's copy: busybox's static `cp` in the image.
    let copied = dockerd.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--tmpfs",
        "/tmp",
        "--entrypoint",
        "/bin/sh",
        images::PROBE,
        "-c",
        "cp /openstack/healthcheck /tmp/h && /tmp/h file /tmp/h",
    ]);
    assert!(copied.starts_with("healthy: "), "{copied}");

    // The static operator starts in its FROM-scratch image and renders what the host one does.
    let sample = repo_root().join("deploy/samples/glance-api.yaml");
    let volume = format!("{}:/sample.yaml:ro", sample.display());
    let rendered = dockerd.ok(&[
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
    ]);
    assert!(
        rendered.starts_with("HEALTHCHECK ") && rendered.contains("\"profile\", \"glance-api\""),
        "{rendered}"
    );
}

#[test]
fn the_probe_image_is_healthy_under_podman_and_its_deadline_bounds_a_hung_check() {
    let podman = Podman::new();
    podman.load(&image_archive("probe"));
    let env = format!("HEALTHCHECK_SERVE_CONFIG={SIDECAR_CONFIG}");
    podman.run_detached("sidecar", &["-e", &env], images::PROBE, &[]);
    let health = healthy_under_podman(&podman, "sidecar");
    assert_eq!(health["Status"], "healthy", "{health}");

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
    let result = run(&mut podman.podman(&["healthcheck", "run", "hung"]));
    let took = started.elapsed();
    assert!(!result.status.success(), "a hung check is unhealthy");
    assert!(
        took < Duration::from_secs(20),
        "bounded by the probe's 2 s deadline: {took:?}"
    );
    let health = podman.health("hung");
    let last = health["Log"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["ExitCode"], 1, "{health}");
    let output = last["Output"].as_str().unwrap();
    assert!(output.contains("timed out after 2s"), "{output}");
}

#[test]
fn the_debian_glance_api_images_are_healthy_under_dockerd_and_podman() {
    let dockerd = Dockerd::start();
    let tripleo_style = image_archive("glance-api");
    let kolla = image_archive("kolla-glance-api");
    dockerd.load(&tripleo_style);
    dockerd.load(&kolla);
    // The HEALTHCHECK `render --to dockerfile` prints: the glance-api profile reads bind_host
    // and bind_port from Debian's own /etc/glance/glance-api.conf.
    let health = healthy_under_dockerd(&dockerd, "glance", "2s", images::GLANCE_API, &[]);
    let output = health["Log"].as_array().unwrap().last().unwrap()["Output"].clone();
    assert!(
        output.as_str().unwrap().starts_with("healthy: "),
        "{health}"
    );
    // The kolla snippet's `healthcheck_curl`, a symlink to the probe, as kolla-ansible calls it.
    let health = healthy_under_dockerd(
        &dockerd,
        "kolla-glance",
        "2s",
        images::KOLLA_GLANCE_API,
        &[],
    );
    let output = health["Log"].as_array().unwrap().last().unwrap()["Output"].clone();
    assert!(output.as_str().unwrap().contains(" 300 "), "{health}");
    drop(dockerd);

    let podman = Podman::new();
    podman.load(&tripleo_style);
    podman.run_detached("glance", &[], images::GLANCE_API, &[]);
    let health = healthy_under_podman(&podman, "glance");
    assert_eq!(health["Status"], "healthy", "{health}");
}
