//! The same check with the same timings, run by a private dockerd (the container's own
//! `HEALTHCHECK`) and by `healthcheck serve` (the container's main process), on one timeline:
//! healthy → broken → unhealthy → repaired, a hang past the timeout, and a command exiting 3
//! with more than 4 KiB on stdout and stderr. Both watch the same files, toggled by the test.
//!
//! Compared exactly: the sequence of statuses (and the failing streak at each change, and while
//! `starting`), the sequence of distinct results (`ExitCode`, `Output`), how the log grows to 5
//! entries, and the timestamp format. Not compared: the run times themselves, which differ by
//! Docker's exec overhead (tens of ms per run) and by when each monitor started; instead each
//! side must leave at least one interval between a run's end and the next run's start.

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use engine_tests::{Dockerd, ScratchDir, free_port, http_get, probe_binary, wait_for};
use serde_json::{Value, json};

/// The check both run: its result is decided by which files exist in /state.
const CHECK: &str = "if [ -e /state/hang ]; then sleep 5; fi; \
     if [ -e /state/loud ]; then head -c 3000 /dev/zero | tr '\\0' o; sleep 0.2; \
     head -c 3000 /dev/zero | tr '\\0' e >&2; exit 3; fi; \
     if [ -e /state/broken ]; then echo broken; exit 1; fi; echo ok";

/// What one side (dockerd or serve) was seen doing, from polls every 100 ms.
#[derive(Default, Debug)]
struct Timeline {
    /// (Status, FailingStreak) at each status change, and at each streak change while starting.
    states: Vec<(String, u64)>,
    /// Distinct consecutive (ExitCode, Output) of the runs, in order.
    results: Vec<(i64, String)>,
    /// Distinct consecutive lengths of the log.
    log_lengths: Vec<usize>,
    /// Every run as logged: (Start, End).
    runs: Vec<(String, String)>,
}

impl Timeline {
    fn observe(&mut self, health: &Value) {
        let status = health["Status"].as_str().expect("Status").to_string();
        let streak = health["FailingStreak"].as_u64().expect("FailingStreak");
        let changed = match self.states.last() {
            None => true,
            Some((last, last_streak)) => {
                *last != status || (status == "starting" && *last_streak != streak)
            }
        };
        if changed {
            self.states.push((status, streak));
        }
        let log = health["Log"].as_array().cloned().unwrap_or_default();
        if self.log_lengths.last() != Some(&log.len()) {
            self.log_lengths.push(log.len());
        }
        for entry in log {
            let start = entry["Start"].as_str().expect("Start").to_string();
            if self.runs.iter().any(|(seen, _)| *seen == start) {
                continue;
            }
            let end = entry["End"].as_str().expect("End").to_string();
            self.runs.push((start, end));
            let result = (
                entry["ExitCode"].as_i64().expect("ExitCode"),
                entry["Output"].as_str().expect("Output").to_string(),
            );
            if self.results.last() != Some(&result) {
                self.results.push(result);
            }
        }
    }

    fn status(&self) -> &str {
        self.states.last().map_or("", |(status, _)| status)
    }
}

/// Seconds since the epoch of an RFC 3339 UTC timestamp, checking it is Go's `RFC3339Nano`
/// (fraction without trailing zeros).
fn seconds(stamp: &str) -> f64 {
    let body = stamp
        .strip_suffix('Z')
        .unwrap_or_else(|| panic!("not UTC: {stamp}"));
    let (date, time) = body.split_once('T').expect("a T");
    let (clock, fraction) = time.split_once('.').unwrap_or((time, ""));
    assert!(
        fraction.len() <= 9 && !fraction.ends_with('0'),
        "not RFC3339Nano (trailing zeros): {stamp}"
    );
    let numbers = |text: &str, sep: char| -> Vec<f64> {
        text.split(sep)
            .map(|n| n.parse().expect("a number"))
            .collect()
    };
    let (d, c) = (numbers(date, '-'), numbers(clock, ':'));
    let day = d[0] * 372.0 + d[1] * 31.0 + d[2];
    let fraction: f64 = format!("0.{fraction}0").parse().expect("fraction");
    day * 86_400.0 + c[0] * 3600.0 + c[1] * 60.0 + c[2] + fraction
}

fn image_context(dir: &Path) {
    let root = dir.join("rootfs");
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::create_dir_all(root.join("openstack")).unwrap();
    fs::copy(probe_binary(), root.join("openstack/healthcheck")).expect("copy the probe");
    fs::copy("/bin/busybox", root.join("bin/busybox")).expect("copy busybox-static");
    for applet in ["sh", "sleep", "head", "tr", "[", "test"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    let argv = json!(["/bin/sh", "-c", CHECK]);
    let serve = json!({"liveness": {
        "check": {"command": {"argv": argv}},
        "interval": "1s", "timeout": "1s", "startPeriod": "3s",
        // Docker 20.10 has no start interval: the interval applies throughout.
        "startInterval": "1s", "retries": 3,
    }});
    fs::write(root.join("serve.yaml"), serve.to_string()).unwrap();
    fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM scratch\nCOPY rootfs/ /\n\
             HEALTHCHECK --interval=1s --timeout=1s --start-period=3s --retries=3 CMD {argv}\n\
             ENTRYPOINT [\"/openstack/healthcheck\", \"serve\", \"--config\", \"/serve.yaml\"]\n"
        ),
    )
    .unwrap();
}

#[test]
fn serve_follows_dockers_health_state_machine_run_for_run() {
    engine_tests::ensure_packages(&["busybox=busybox-static"]);
    let dockerd = Dockerd::start();
    let work = ScratchDir::new("ohc-parity");
    image_context(work.path());
    dockerd.build("parity:test", work.path());
    let state = work.path().join("state");
    fs::create_dir(&state).unwrap();
    fs::write(state.join("broken"), "").unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let volume = format!("{}:/state", state.display());
    dockerd.ok(&[
        "run",
        "-d",
        "--name",
        "parity",
        "--network",
        "host",
        "-v",
        &volume,
        "parity:test",
        "--listen",
        &listen,
    ]);
    let addr: SocketAddr = listen.parse().unwrap();
    let serve_health = || -> Option<Value> {
        let (status, body) = http_get(addr, "/health").ok()?;
        assert_eq!(status, 200, "{body}");
        let doc: Value = serde_json::from_str(&body).expect("JSON");
        Some(doc["liveness"].clone())
    };
    wait_for(Duration::from_secs(10), "serve to listen", serve_health);

    let (mut docker, mut serve) = (Timeline::default(), Timeline::default());
    let mut phase = |what: &str, change: &dyn Fn(), until: &str| {
        change();
        wait_for(Duration::from_secs(40), what, || {
            docker.observe(&dockerd.health("parity"));
            serve.observe(&serve_health().expect("serve answers"));
            (docker.status() == until && serve.status() == until).then_some(())
        });
    };
    let touch = |name: &str| fs::write(state.join(name), "").unwrap();
    let remove = |name: &str| fs::remove_file(state.join(name)).unwrap();
    phase("broken from the start: unhealthy", &|| {}, "unhealthy");
    phase("repaired: healthy", &|| remove("broken"), "healthy");
    phase("hung: unhealthy", &|| touch("hang"), "unhealthy");
    phase("unhung: healthy", &|| remove("hang"), "healthy");
    phase("exit 3: unhealthy", &|| touch("loud"), "unhealthy");
    phase("quiet again: healthy", &|| remove("loud"), "healthy");

    let context = format!("docker: {docker:#?}\nserve: {serve:#?}");
    let expected_states: Vec<(String, u64)> = [
        // The two runs inside the start period do not count; the third run is past it.
        ("starting", 0),
        ("starting", 1),
        ("starting", 2),
        ("unhealthy", 3),
        ("healthy", 0),
        ("unhealthy", 3),
        ("healthy", 0),
        ("unhealthy", 3),
        ("healthy", 0),
    ]
    .iter()
    .map(|(status, streak)| (status.to_string(), *streak))
    .collect();
    assert_eq!(docker.states, expected_states, "{context}");
    assert_eq!(serve.states, docker.states, "{context}");

    let ok = (0, "ok\n".to_string());
    let loud = format!("{}{}...", "o".repeat(3000), "e".repeat(4096 - 3000));
    let expected_results = vec![
        (1, "broken\n".to_string()),
        ok.clone(),
        (-1, "Health check exceeded timeout (1s)".to_string()),
        ok.clone(),
        (3, loud),
        ok,
    ];
    assert_eq!(docker.results, expected_results, "{context}");
    assert_eq!(serve.results, docker.results, "{context}");
    assert_eq!(docker.log_lengths, [0, 1, 2, 3, 4, 5], "{context}");
    assert_eq!(serve.log_lengths, docker.log_lengths, "{context}");

    for (side, timeline) in [("docker", &docker), ("serve", &serve)] {
        for pair in timeline.runs.windows(2) {
            let gap = seconds(&pair[1].0) - seconds(&pair[0].1);
            assert!(
                gap >= 0.995,
                "{side}: next run {gap}s after the last ended: {pair:?}"
            );
        }
        for (start, end) in &timeline.runs {
            let took = seconds(end) - seconds(start);
            assert!(
                took < 1.5,
                "{side}: a run took {took}s, past the 1s timeout: {start}"
            );
        }
    }
}
