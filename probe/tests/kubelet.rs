//! The probe as the kubelet runs it: the project's probe image on a real node (containerd, runc,
//! kubelet), next to a real HTTP service in the same pod. Asserts on what the kubelet reports:
//! pod conditions, restart counts and Events.

mod support;

use std::process::Output;
use std::sync::OnceLock;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use kube::api::{Api, PostParams};
use kube_controlplane::image::{Image, project_archive};
use kube_controlplane::{Cluster, TestNamespace, eventually, shared_cluster};
use serde_json::json;

const PROBE_IMAGE: &str = "ghcr.io/openstack-healthcheck/probe:0.1.0";
const HTTPD_IMAGE: &str = "localhost/openstack-healthcheck/test-httpd:1";
const PROBE: &str = "/openstack/healthcheck";

/// The shared cluster with the probe image and a busybox httpd image imported (once).
fn cluster() -> &'static Cluster {
    static IMAGES: OnceLock<()> = OnceLock::new();
    let cluster = shared_cluster();
    IMAGES.get_or_init(|| {
        // The project's probe image as users get it (scripts/build-images).
        cluster
            .import_image(&project_archive("probe").unwrap())
            .unwrap();
        test_support::ensure_packages(&["/bin/busybox=busybox-static"]);
        // A real HTTP server: busybox's httpd serving /www; deleting a file there breaks the
        // endpoint, and a container restart (fresh writable layer) brings it back.
        let httpd = Image::new(HTTPD_IMAGE)
            .host_file("/bin/busybox", std::path::Path::new("/bin/busybox"))
            .unwrap()
            .symlink("/bin/sh", "busybox")
            .file("/www/live", b"ok\n".to_vec(), 0o644)
            .file("/www/ready", b"ok\n".to_vec(), 0o644)
            .entrypoint(&[
                "/bin/busybox",
                "httpd",
                "-f",
                "-p",
                "127.0.0.1:8080",
                "-h",
                "/www",
            ]);
        cluster.load_image(&httpd).unwrap();
    });
    cluster
}

/// A pod with the httpd container and a `probe` container from the probe image running
/// `healthcheck serve` (readiness: the httpd's /ready), with the given probes on `probe`.
fn web_pod(probes: serde_json::Value) -> Pod {
    let mut probe = json!({
        "name": "probe",
        "image": PROBE_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "args": ["serve"],
        "env": [{"name": "HEALTHCHECK_SERVE_CONFIG", "value": concat!(
            "listen: \"0.0.0.0:9180\"\n",
            "readiness:\n",
            "  check: { http: { url: \"http://127.0.0.1:8080/ready\" } }\n",
            "  interval: 1s\n  timeout: 1s\n  retries: 1\n",
        )}],
    });
    for (key, value) in probes.as_object().unwrap() {
        probe[key] = value.clone();
    }
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web"},
        "spec": {
            "automountServiceAccountToken": false,
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {"name": "httpd", "image": HTTPD_IMAGE, "imagePullPolicy": "Never"},
                probe,
            ],
        },
    }))
    .unwrap()
}

struct Web {
    ns: TestNamespace,
    pods: Api<Pod>,
}

impl Web {
    async fn create(pod: Pod) -> Self {
        let cluster = cluster();
        let ns = cluster.control_plane().test_namespace().await.unwrap();
        let pods: Api<Pod> = Api::namespaced(ns.client.clone(), &ns.name);
        pods.create(&PostParams::default(), &pod).await.unwrap();
        Self { ns, pods }
    }

    async fn pod(&self) -> Pod {
        self.pods.get("web").await.unwrap()
    }

    async fn probe_status(&self) -> Option<ContainerStatus> {
        self.pod()
            .await
            .status?
            .container_statuses?
            .into_iter()
            .find(|c| c.name == "probe")
    }

    async fn ready(&self) -> bool {
        self.pod()
            .await
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    }

    async fn restarts(&self) -> i32 {
        self.probe_status().await.map_or(0, |s| s.restart_count)
    }

    /// Messages of the kubelet's `Unhealthy` Events for the pod.
    async fn unhealthy_events(&self) -> Vec<String> {
        kube_controlplane::unhealthy_events(&self.ns.client, &self.ns.name, "web").await
    }

    /// `kubectl exec` in one of the pod's containers.
    fn exec(&self, container: &str, command: &[&str]) -> Output {
        cluster()
            .control_plane()
            .kubectl()
            .args(["exec", "-n", &self.ns.name, "web", "-c", container, "--"])
            .args(command)
            .output()
            .unwrap()
    }

    fn exec_ok(&self, container: &str, command: &[&str]) {
        let out = self.exec(container, command);
        assert!(
            out.status.success(),
            "{command:?} in {container}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A probe line with its elapsed time (the number before `seconds`) replaced by `N`.
fn without_elapsed(line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    let mut kept = Vec::with_capacity(words.len());
    for (i, word) in words.iter().enumerate() {
        let elapsed = words.get(i + 1) == Some(&"seconds") && word.parse::<f64>().is_ok();
        kept.push(if elapsed { "N" } else { word });
    }
    kept.join(" ")
}

#[tokio::test]
async fn exec_liveness_probe_restarts_the_container_with_the_probes_message() {
    let live = ["--timeout", "2", "http", "http://127.0.0.1:8080/live"];
    let mut command = vec![PROBE];
    command.extend(live);
    let web = Web::create(web_pod(json!({
        "livenessProbe": {"exec": {"command": command}, "periodSeconds": 1, "timeoutSeconds": 3, "failureThreshold": 2},
    })))
    .await;
    eventually("the pod to be Ready", || async {
        web.ready().await.then_some(())
    })
    .await;
    // Healthy: several liveness periods pass without a restart or a failure Event.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(web.restarts().await, 0);
    assert!(web.ready().await);
    assert_eq!(web.unhealthy_events().await, Vec::<String>::new());

    web.exec_ok("httpd", &["/bin/busybox", "rm", "/www/live"]);
    // What the probe says about the broken service, run by hand in the same container.
    let out = web.exec("probe", &command);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the probe reports unhealthy with 1"
    );
    let line = String::from_utf8(out.stdout).unwrap();
    assert!(
        line.starts_with("unhealthy: ") && line.contains("404"),
        "{line}"
    );

    // The line carries the request's elapsed time, which differs from run to run.
    let expected = format!("Liveness probe failed: {}", without_elapsed(&line));
    eventually("the kubelet's Event with the probe's line", || async {
        let events = web.unhealthy_events().await;
        events
            .iter()
            .any(|m| without_elapsed(m) == expected)
            .then_some(())
    })
    .await;
    eventually("the probe container to be restarted", || async {
        (web.restarts().await >= 1).then_some(())
    })
    .await;
}

#[tokio::test]
async fn http_readiness_probe_against_serve_flips_ready_both_ways() {
    let web = Web::create(web_pod(json!({
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": 9180}, "periodSeconds": 1, "failureThreshold": 1},
    })))
    .await;
    eventually("the pod to be Ready", || async {
        web.ready().await.then_some(())
    })
    .await;
    web.exec_ok("httpd", &["/bin/busybox", "rm", "/www/ready"]);
    eventually("the pod to be not Ready", || async {
        (!web.ready().await).then_some(())
    })
    .await;
    let events = web.unhealthy_events().await;
    assert!(
        events.iter().any(
            |m| m.starts_with("Readiness probe failed: HTTP probe failed with statuscode: 503")
        ),
        "{events:?}"
    );
    web.exec_ok("httpd", &["/bin/sh", "-c", "echo ok > /www/ready"]);
    eventually("the pod to be Ready again", || async {
        web.ready().await.then_some(())
    })
    .await;
    assert_eq!(
        web.restarts().await,
        0,
        "readiness never restarts a container"
    );
}

#[tokio::test]
async fn startup_probe_holds_the_liveness_probe_back() {
    let web = Web::create(web_pod(json!({
        "startupProbe": {"exec": {"command": [PROBE, "http", "http://127.0.0.1:8080/started"]}, "periodSeconds": 1, "failureThreshold": 120},
        "livenessProbe": {"exec": {"command": [PROBE, "http", "http://127.0.0.1:8080/missing"]}, "periodSeconds": 1, "failureThreshold": 1},
    })))
    .await;
    eventually("a failed startup probe", || async {
        let events = web.unhealthy_events().await;
        events
            .iter()
            .any(|m| m.starts_with("Startup probe failed: unhealthy: "))
            .then_some(())
    })
    .await;
    // While the startup probe fails, the (always failing) liveness probe is not run.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let status = web.probe_status().await.unwrap();
    assert_eq!(status.started, Some(false));
    assert_eq!(status.restart_count, 0);
    let events = web.unhealthy_events().await;
    assert!(
        !events.iter().any(|m| m.starts_with("Liveness")),
        "{events:?}"
    );

    web.exec_ok("httpd", &["/bin/sh", "-c", "echo ok > /www/started"]);
    eventually(
        "liveness to run once started, and restart the container",
        || async { (web.restarts().await >= 1).then_some(()) },
    )
    .await;
    let events = web.unhealthy_events().await;
    assert!(
        events
            .iter()
            .any(|m| m.starts_with("Liveness probe failed: unhealthy: ") && m.contains("404")),
        "{events:?}"
    );
}
