//! The `Healthy` condition against the real light control plane (`kube-controlplane`: etcd,
//! kube-apiserver, kube-controller-manager; no kubelet). The controller runs in-process, as the
//! operator runs it; the test plays the kubelet: it sets the pods' Ready status through the
//! status subresource and writes `Unhealthy` Events as the kubelet does. Then `kubectl wait
//! --for=condition=Healthy` and `kubectl get oshc` see what users see.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube_controlplane::{ControlPlane, TestNamespace};
use serde_json::{Value, json};

use healthcheck_operator::api::HealthCheck;
use healthcheck_operator::context::Context;
use healthcheck_operator::controller;
use healthcheck_operator::inject::{INJECTED_ANNOTATION, INJECTED_LABEL, InjectConfig, rendering};
use healthcheck_operator::metrics::Metrics;

const WAIT: Duration = Duration::from_secs(60);
const PROBE_IMAGE: &str = "probe:health";

fn kubectl(cp: &ControlPlane, args: &[&str]) -> (bool, String) {
    let output = cp.kubectl().args(args).output().expect("run kubectl");
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

/// `kubectl wait --for=condition=CONDITION oshc TARGET -n NS --timeout=SECONDSs`, TARGET being
/// `--all` or `oshc/NAME`.
fn kubectl_wait(
    cp: &ControlPlane,
    ns: &TestNamespace,
    condition: &str,
    target: &str,
    seconds: u32,
) -> (bool, String) {
    let condition = format!("--for=condition={condition}");
    let timeout = format!("--timeout={seconds}s");
    let kind = if target == "--all" { "oshc" } else { "" };
    let args: Vec<&str> = ["wait", &condition, kind, target, "-n", &ns.name, &timeout]
        .into_iter()
        .filter(|arg| !arg.is_empty())
        .collect();
    kubectl(cp, &args)
}

fn inject_config() -> InjectConfig {
    InjectConfig {
        probe_image: PROBE_IMAGE.to_string(),
    }
}

fn nova() -> Value {
    json!({
        "apiVersion": "healthcheck.openstack.org/v1beta1", "kind": "HealthCheck",
        "metadata": {"name": "nova"},
        "spec": {"selector": {"matchLabels": {"app": "nova"}}, "profile": "nova-api",
                 "probes": {"liveness": {}, "readiness": {}}},
    })
}

/// A pod as the webhook leaves it: the record of nova's current probes on `api`.
async fn create_pod(ns: &TestNamespace, name: &str) {
    let health_check: HealthCheck = serde_json::from_value(nova()).unwrap();
    let hash = rendering("nova", &health_check.spec, &inject_config())
        .unwrap()
        .hash;
    let record = json!({"api": {"healthCheck": "nova", "generation": 1, "hash": hash}});
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "nova", INJECTED_LABEL: "true"},
                     "annotations": {INJECTED_ANNOTATION: record.to_string()}},
        "spec": {"containers": [{"name": "api", "image": "nova-api"}]},
    }))
    .unwrap();
    Api::<Pod>::namespaced(ns.client.clone(), &ns.name)
        .create(&PostParams::default(), &pod)
        .await
        .unwrap_or_else(|err| panic!("create pod {name}: {err}"));
}

/// What the kubelet writes: the pod Running, its container started at `started`, Ready or not.
async fn set_ready(ns: &TestNamespace, name: &str, ready: bool, started: &Timestamp) {
    let status = if ready { "True" } else { "False" };
    let now = Timestamp::now().to_string();
    let patch = json!({"status": {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": status, "lastTransitionTime": now}],
        "containerStatuses": [{"name": "api", "image": "nova-api", "imageID": "", "restartCount": 0,
            "ready": ready, "started": true, "state": {"running": {"startedAt": started.to_string()}}}],
    }});
    Api::<Pod>::namespaced(ns.client.clone(), &ns.name)
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_or_else(|err| panic!("set the status of pod {name}: {err}"));
}

/// The kubelet's Event for a failed probe (`pkg/kubelet/prober`: reason Unhealthy, the
/// container's field path, `<Role> probe failed: <output>`).
async fn probe_failed(ns: &TestNamespace, pod: &str, message: &str) {
    let uid = Api::<Pod>::namespaced(ns.client.clone(), &ns.name)
        .get(pod)
        .await
        .unwrap()
        .metadata
        .uid;
    let now = Timestamp::now().to_string();
    let event: Event = serde_json::from_value(json!({
        "metadata": {"generateName": format!("{pod}.")},
        "involvedObject": {"kind": "Pod", "apiVersion": "v1", "namespace": ns.name, "name": pod,
                           "uid": uid, "fieldPath": "spec.containers{api}"},
        "reason": "Unhealthy", "type": "Warning", "message": message,
        "source": {"component": "kubelet", "host": "node"},
        "firstTimestamp": now, "lastTimestamp": now, "count": 1,
    }))
    .unwrap();
    Api::<Event>::namespaced(ns.client.clone(), &ns.name)
        .create(&PostParams::default(), &event)
        .await
        .unwrap_or_else(|err| panic!("create the Unhealthy Event: {err}"));
}

async fn status(ns: &TestNamespace) -> Value {
    let health_check = Api::<HealthCheck>::namespaced(ns.client.clone(), &ns.name)
        .get("nova")
        .await
        .unwrap();
    serde_json::to_value(health_check.status).unwrap()
}

fn healthy(status: &Value) -> (String, String, String) {
    let condition = status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Healthy"))
        .cloned()
        .unwrap_or(Value::Null);
    let text = |key: &str| condition[key].as_str().unwrap_or_default().to_string();
    (text("status"), text("reason"), text("message"))
}

async fn status_where(ns: &TestNamespace, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let status = status(ns).await;
        if check(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; status: {status:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Stops the in-process controller when the test ends, also when it panics.
struct Stop(Option<tokio::sync::oneshot::Sender<()>>);

impl Drop for Stop {
    fn drop(&mut self) {
        if let Some(stop) = self.0.take() {
            let _ = stop.send(());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_follows_the_kubelets_verdicts_and_kubectl_waits_for_it() {
    let cp = kube_controlplane::shared();
    let crd = env!("CARGO_MANIFEST_DIR").to_string() + "/../crds/healthcheck.yaml";
    let (ok, out) = kubectl(cp, &["apply", "--server-side", "-f", &crd]);
    assert!(ok, "{out}");
    cp.wait_crd_established("healthchecks.healthcheck.openstack.org")
        .unwrap();
    let ns = cp.test_namespace().await.unwrap();
    Api::<HealthCheck>::namespaced(ns.client.clone(), &ns.name)
        .patch(
            "nova",
            &PatchParams::apply("health-test").force(),
            &Patch::Apply(&nova()),
        )
        .await
        .unwrap();

    let (leader, leader_rx) = tokio::sync::watch::channel(true);
    let ctx = Arc::new(Context::new(
        ns.client.clone(),
        "health-test",
        Arc::new(Metrics::default()),
        leader_rx,
        inject_config(),
    ));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let _stop = Stop(Some(stop_tx));
    let controller = tokio::spawn(controller::run(Arc::clone(&ctx), async move {
        let _ = stop_rx.await;
    }));

    let status = status_where(&ns, "no probed pods yet", |s| {
        healthy(s).1 == "NoProbedPods"
    })
    .await;
    assert_eq!(healthy(&status).0, "Unknown", "kubectl wait keeps waiting");
    let (ok, out) = kubectl_wait(cp, &ns, "Healthy", "--all", 2);
    assert!(!ok, "no pods: not healthy yet: {out}");

    let started = Timestamp::now();
    for pod in ["nova-0", "nova-1"] {
        create_pod(&ns, pod).await;
        set_ready(&ns, pod, true, &started).await;
    }
    let status = status_where(&ns, "Healthy True", |s| healthy(s).0 == "True").await;
    assert_eq!(
        healthy(&status),
        (
            "True".to_string(),
            "ProbesPassing".to_string(),
            "2 of 2 probed pods Ready, 0 failing their probes".to_string()
        )
    );
    assert_eq!(
        (status["readyPods"].clone(), status["failingPods"].clone()),
        (json!(2), json!(0))
    );
    let (ok, out) = kubectl_wait(cp, &ns, "Healthy", "--all", 30);
    assert!(ok, "{out}");
    assert!(
        out.contains("healthcheck.openstack.org/nova condition met"),
        "{out}"
    );
    let (ok, table) = kubectl(cp, &["get", "oshc", "-n", &ns.name]);
    assert!(ok, "{table}");
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "MODE",
            "PROBES",
            "MATCHED",
            "UP-TO-DATE",
            "READY",
            "FAILING",
            "HEALTHY",
            "AGE"
        ]
    );
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        &row[..8],
        [
            "nova",
            "Exec",
            "liveness,readiness",
            "2",
            "2",
            "2",
            "0",
            "True"
        ]
    );

    // nova-0's readiness probe fails: the kubelet reports it, then marks the pod not Ready.
    let line = "nova-api: GET http://127.0.0.1:8774/: 503 Service Unavailable (4ms)";
    probe_failed(&ns, "nova-0", &format!("Readiness probe failed: {line}\n")).await;
    set_ready(&ns, "nova-0", false, &started).await;
    let status = status_where(&ns, "Healthy False", |s| healthy(s).0 == "False").await;
    let (_, reason, message) = healthy(&status);
    assert_eq!(reason, "ProbesFailing");
    assert!(
        message.starts_with("1 of 2 probed pods Ready, 1 failing their probes (nova-0/api)")
            && message.ends_with(&format!("nova-0/api readiness: {line}")),
        "{message}"
    );
    assert_eq!(status["failingPods"], 1);
    assert_eq!(status["lastProbeFailure"]["message"], line);
    assert_eq!(status["lastProbeFailure"]["probe"], "readiness");
    let (ok, out) = kubectl_wait(cp, &ns, "Healthy=false", "oshc/nova", 10);
    assert!(ok, "{out}");
    let (ok, wide) = kubectl(cp, &["get", "oshc", "nova", "-n", &ns.name, "-o", "wide"]);
    assert!(
        ok && wide.contains("LAST-FAILURE") && wide.contains(line),
        "{wide}"
    );
    // The HealthCheck's own Event says so too.
    let events =
        Api::<k8s_openapi::api::events::v1::Event>::namespaced(ns.client.clone(), &ns.name)
            .list(&Default::default())
            .await
            .unwrap();
    assert!(
        events
            .items
            .iter()
            .any(
                |e| e.regarding.as_ref().and_then(|r| r.kind.as_deref()) == Some("HealthCheck")
                    && e.reason.as_deref() == Some("ProbesFailing")
            ),
        "no ProbesFailing Event on the HealthCheck"
    );

    // Repaired: Ready again, Healthy again; the last failure stays on record.
    set_ready(&ns, "nova-0", true, &started).await;
    let status = status_where(&ns, "Healthy True again", |s| healthy(s).0 == "True").await;
    assert_eq!(status["failingPods"], 0);
    assert_eq!(status["lastProbeFailure"]["message"], line);
    let (ok, out) = kubectl_wait(cp, &ns, "Healthy", "--all", 10);
    assert!(ok, "{out}");

    drop(_stop);
    drop(leader);
    tokio::time::timeout(Duration::from_secs(10), controller)
        .await
        .expect("the controller stops at shutdown")
        .unwrap();
}
