//! End to end on a real local control plane (etcd, kube-apiserver, kube-controller-manager from
//! `kube-controlplane`): the operator runs as local processes, its webhook registered by URL.
//! There is no kubelet, so pods stay Pending, which is all admission needs.
//!
//! One test walks the whole story in order, because the operators it starts serve every
//! opted-in namespace of the shared control plane.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use kube_controlplane::{ControlPlane, TestNamespace};
use serde_json::{Value, json};

use healthcheck_operator::api::HealthCheck;
use healthcheck_operator::inject::{INJECTED_ANNOTATION, MAX_ANNOTATIONS_BYTES, injection_record};
use support::local::{Operator, WAIT, free_port, http_get, install_crd};
use support::repo_root;

/// Until `operator`'s webhook cache holds every HealthCheck of the cluster.
async fn caught_up(operator: &Operator, client: &Client) {
    let all = Api::<HealthCheck>::all(client.clone());
    eventually(
        &format!("the webhook cache of operator {}", operator.identity),
        || async {
            let total = all.list(&ListParams::default()).await.ok()?.items.len();
            (operator.cached() == Some(total)).then_some(())
        },
    )
    .await;
}

/// Progress on stderr: the test takes a while.
fn step(what: &str) {
    eprintln!("e2e: {what}");
}

async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    step(&format!("waiting for {what}"));
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn kubectl(cp: &ControlPlane, args: &[&str]) -> (bool, String) {
    let output = cp.kubectl().args(args).output().expect("run kubectl");
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

async fn opt_in(client: &Client, namespace: &str) {
    Api::<Namespace>::all(client.clone())
        .patch(
            namespace,
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"labels": {"healthcheck.openstack.org/inject": "enabled"}}}),
            ),
        )
        .await
        .unwrap();
}

async fn apply_health_check(ns: &TestNamespace, name: &str, spec: Value) {
    let health_checks = Api::<HealthCheck>::namespaced(ns.client.clone(), &ns.name);
    let object = json!({
        "apiVersion": "healthcheck.openstack.org/v1beta1", "kind": "HealthCheck",
        "metadata": {"name": name}, "spec": spec,
    });
    health_checks
        .patch(
            name,
            &PatchParams::apply("e2e").force(),
            &Patch::Apply(&object),
        )
        .await
        .unwrap_or_else(|err| panic!("apply HealthCheck {name}: {err}"));
}

/// Applies the HealthCheck and waits until the operator reports it `Accepted`.
async fn apply_accepted(ns: &TestNamespace, name: &str, spec: Value) {
    apply_health_check(ns, name, spec).await;
    wait_accepted(ns, name).await;
}

async fn wait_accepted(ns: &TestNamespace, name: &str) {
    status_where(ns, name, "accepted", |s| {
        condition(s, "Accepted")["status"] == "True"
    })
    .await;
}

async fn create_deployment(ns: &TestNamespace, name: &str, replicas: i32, container: Value) {
    let deployment: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            // Pending pods never become available; Recreate still rolls them.
            "strategy": {"type": "Recreate"},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}},
        },
    }))
    .unwrap();
    Api::<Deployment>::namespaced(ns.client.clone(), &ns.name)
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap_or_else(|err| panic!("create Deployment {name}: {err}"));
}

/// A bare pod of `app` with an annotation `padding` of `padding` bytes, as the apiserver stored it.
async fn create_pod(ns: &TestNamespace, name: &str, app: &str, padding: usize) -> Pod {
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": app}, "annotations": {"padding": "x".repeat(padding)}},
        "spec": {"containers": [{"name": "api", "image": "nova-api:1"}]},
    }))
    .unwrap();
    Api::<Pod>::namespaced(ns.client.clone(), &ns.name)
        .create(&PostParams::default(), &pod)
        .await
        .unwrap_or_else(|err| panic!("create Pod {name}: {err}"))
}

/// The live pods of an app, once there are `count` of them.
async fn pods(ns: &TestNamespace, app: &str, count: usize) -> Vec<Pod> {
    let api = Api::<Pod>::namespaced(ns.client.clone(), &ns.name);
    eventually(&format!("{count} pods of {app} in {}", ns.name), || {
        let api = api.clone();
        async move {
            let pods: Vec<Pod> = api
                .list(&ListParams::default().labels(&format!("app={app}")))
                .await
                .ok()?
                .items
                .into_iter()
                .filter(|pod| pod.metadata.deletion_timestamp.is_none())
                .collect();
            (pods.len() == count).then_some(pods)
        }
    })
    .await
}

fn liveness(pod: &Pod) -> Option<Value> {
    let container = &pod.spec.as_ref()?.containers[0];
    container
        .liveness_probe
        .as_ref()
        .map(|probe| serde_json::to_value(probe).unwrap())
}

fn readiness(pod: &Pod) -> Option<Value> {
    let container = &pod.spec.as_ref()?.containers[0];
    container
        .readiness_probe
        .as_ref()
        .map(|probe| serde_json::to_value(probe).unwrap())
}

async fn status(ns: &TestNamespace, name: &str) -> Value {
    let health_check = Api::<HealthCheck>::namespaced(ns.client.clone(), &ns.name)
        .get(name)
        .await
        .unwrap();
    serde_json::to_value(health_check.status).unwrap()
}

/// Waits for a status matching `check`.
async fn status_where(
    ns: &TestNamespace,
    name: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    eventually(&format!("HealthCheck {name}: {what}"), || async {
        let status = status(ns, name).await;
        check(&status).then_some(status)
    })
    .await
}

/// The note of the first Event about HealthCheck `name` whose note starts with `prefix`.
async fn event_note(ns: &TestNamespace, name: &str, prefix: &str) -> String {
    let api = Api::<Event>::namespaced(ns.client.clone(), &ns.name);
    eventually(&format!("an Event about {name}: {prefix}..."), || async {
        api.list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .filter(|event| {
                event
                    .regarding
                    .as_ref()
                    .is_some_and(|r| r.name.as_deref() == Some(name))
            })
            .find_map(|event| event.note.filter(|note| note.starts_with(prefix)))
    })
    .await
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|conditions| conditions.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}

const NOVA: &str = r#"{"selector": {"matchLabels": {"app": "nova"}}, "profile": "nova-api",
    "probes": {"liveness": {}, "readiness": {}}, "rollout": "Restart"}"#;

fn spec(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn exec_command(probe: &Option<Value>) -> Value {
    probe
        .as_ref()
        .map_or(Value::Null, |probe| probe["exec"]["command"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_end_to_end() {
    let cp = kube_controlplane::shared();
    install_crd(cp);

    let logs = tempfile::tempdir().unwrap();
    let operator_ns = kube_controlplane::namespace().await;
    let webhook_port = free_port();
    // Each replica registers its own URL; `a`, started last, is the one in use.
    let mut b = Operator::start(cp, &operator_ns.name, "b", free_port(), logs.path());
    let mut a = Operator::start(cp, &operator_ns.name, "a", webhook_port, logs.path());
    let leader = eventually("exactly one leader", || async {
        match (a.is_leader(), b.is_leader()) {
            (true, false) => Some("a"),
            (false, true) => Some("b"),
            _ => None,
        }
    })
    .await;

    // Invalid HealthChecks never reach the operator: the apiserver rejects them.
    let opted = kube_controlplane::namespace().await;
    opt_in(&opted.client, &opted.name).await;
    let invalid = repo_root()
        .join("target")
        .join("e2e-invalid-healthcheck.yaml");
    std::fs::write(
        &invalid,
        "apiVersion: healthcheck.openstack.org/v1beta1\nkind: HealthCheck\nmetadata: { name: bad }\nspec:\n  selector: { matchLabels: { app: x } }\n  profile: nova-api\n  mode: Native\n  probes: { liveness: {} }\n",
    )
    .unwrap();
    let (ok, out) = kubectl(
        cp,
        &[
            "apply",
            "-n",
            &opted.name,
            "-f",
            &invalid.display().to_string(),
        ],
    );
    assert!(!ok && out.contains("mode Native needs"), "{out}");

    // Opted-in namespace: probes injected into the Deployment's pods; status counts them.
    let plain = kube_controlplane::namespace().await;
    for ns in [&opted, &plain] {
        apply_health_check(ns, "nova", spec(NOVA)).await;
    }
    wait_accepted(&opted, "nova").await;
    for ns in [&opted, &plain] {
        create_deployment(ns, "nova", 2, json!({"name": "api", "image": "nova-api:1"})).await;
    }
    let injected = pods(&opted, "nova", 2).await;
    for pod in &injected {
        assert_eq!(
            exec_command(&liveness(pod)),
            json!([
                "/openstack/healthcheck",
                "--timeout",
                "27",
                "profile",
                "nova-api"
            ]),
            "{}",
            a.log_text()
        );
        assert!(readiness(pod).is_some());
        let record = injection_record(pod.metadata.annotations.as_ref().unwrap());
        assert_eq!(record["api"].health_check, "nova");
    }
    // Namespace without the label: untouched.
    for pod in pods(&plain, "nova", 2).await {
        assert!(liveness(&pod).is_none() && !pod.annotations().contains_key(INJECTED_ANNOTATION));
    }
    let counted = status_where(&opted, "nova", "2 up-to-date pods", |s| {
        s["upToDatePods"] == 2
    })
    .await;
    assert_eq!(counted["matchedPods"], 2);
    assert_eq!(condition(&counted, "Ready")["status"], "True");

    // A URL with credentials cannot be a Native httpGet: the spec is not accepted and the
    // reason quotes the URL, here long and multi-byte, so its Event note is cut to 1000 bytes
    // (cutting between a character's bytes once panicked the controller). One HealthCheck per
    // alignment of the cut against the 3-byte `€`s: each gets its status and a cut note, a
    // HealthCheck after them gets its status, and both replicas stay up and ready.
    for lead in ["", "a", "aa"] {
        let name = format!("multibyte{}", lead.len());
        let url = format!("http://{lead}{}@x/", "€".repeat(400));
        apply_health_check(
            &opted,
            &name,
            json!({"selector": {"matchLabels": {"app": "multibyte"}}, "mode": "Native",
                   "check": {"http": {"url": url}}, "probes": {"liveness": {}}}),
        )
        .await;
        let rejected = status_where(&opted, &name, "not accepted", |s| {
            condition(s, "Accepted")["status"] == "False"
        })
        .await;
        let message = condition(&rejected, "Accepted")["message"]
            .as_str()
            .unwrap();
        assert!(
            message.contains(&url) && message.ends_with("carries credentials"),
            "{message}"
        );
        let note = event_note(&opted, &name, "Accepted False: ").await;
        assert!(
            note.len() <= 1000 && note.ends_with('€'),
            "{} bytes: {note}",
            note.len()
        );
    }
    apply_accepted(
        &opted,
        "after-multibyte",
        spec(r#"{"selector": {"matchLabels": {"app": "multibyte"}}, "profile": "nova-api", "probes": {"liveness": {}}}"#),
    )
    .await;
    for operator in [&mut a, &mut b] {
        operator.assert_up_and_ready();
    }

    // A pod whose annotations leave no room for the injection record: created as it is, without
    // probes (patched, the apiserver would refuse it), and counted by the webhook in use.
    apply_accepted(
        &opted,
        "crowded",
        spec(r#"{"selector": {"matchLabels": {"app": "crowded"}}, "profile": "nova-api", "probes": {"liveness": {}}}"#),
    )
    .await;
    caught_up(&a, &opted.client).await;
    let roomy = create_pod(&opted, "roomy", "crowded", 1024).await;
    assert!(liveness(&roomy).is_some(), "{}", a.log_text());
    let crowded = create_pod(
        &opted,
        "crowded",
        "crowded",
        MAX_ANNOTATIONS_BYTES - "padding".len() - 16,
    )
    .await;
    assert!(
        liveness(&crowded).is_none() && !crowded.annotations().contains_key(INJECTED_ANNOTATION),
        "{:?}",
        crowded.spec
    );
    let (_, metrics) = http_get(a.health_port, "/metrics").unwrap();
    assert!(
        metrics.contains("admissions_total{result=\"AnnotationsFull\",dry_run=\"false\"}"),
        "{metrics}"
    );

    // existingProbes: Keep leaves the author's liveness probe and adds the readiness probe.
    apply_accepted(
        &opted,
        "keep",
        spec(r#"{"selector": {"matchLabels": {"app": "keep"}}, "profile": "nova-api", "existingProbes": "Keep",
                 "probes": {"liveness": {}, "readiness": {}}}"#),
    )
    .await;
    let authored = json!({"tcpSocket": {"port": 8774}, "periodSeconds": 7});
    create_deployment(
        &opted,
        "keep",
        1,
        json!({"name": "api", "image": "nova-api:1", "livenessProbe": authored}),
    )
    .await;
    let kept = &pods(&opted, "keep", 1).await[0];
    assert_eq!(liveness(kept).unwrap()["tcpSocket"], authored["tcpSocket"]);
    assert_eq!(exec_command(&readiness(kept))[4], "nova-api");

    // Update with rollout: Restart → pods are stale, the Deployment rolls, new pods get the
    // new probes, status converges.
    let mut updated = spec(NOVA);
    updated["timing"] = json!({"interval": "10s"});
    apply_health_check(&opted, "nova", updated.clone()).await;
    eventually("new pods with periodSeconds 10", || async {
        let pods = pods(&opted, "nova", 2).await;
        pods.iter()
            .all(|pod| liveness(pod).is_some_and(|probe| probe["periodSeconds"] == 10))
            .then_some(())
    })
    .await;
    let converged = status_where(&opted, "nova", "converged after the rollout", |s| {
        s["upToDatePods"] == 2 && s["stalePods"] == 0 && s["observedGeneration"] == 2
    })
    .await;
    // The operators run with the admin's credentials here: nothing was forbidden.
    assert_eq!(
        condition(&converged, "RestartForbidden")["reason"],
        "NotForbidden",
        "{converged}"
    );

    // A second HealthCheck on the same pods, lower priority: it reports the conflict.
    apply_health_check(
        &opted,
        "nova-generic",
        spec(
            r#"{"selector": {"matchLabels": {"app": "nova"}}, "priority": -1,
                 "check": {"process": {"pattern": "nova"}}, "probes": {"liveness": {}}}"#,
        ),
    )
    .await;
    let lost = status_where(&opted, "nova-generic", "Conflict", |s| {
        condition(s, "Conflict")["status"] == "True"
    })
    .await;
    assert!(
        condition(&lost, "Conflict")["message"]
            .as_str()
            .unwrap()
            .contains("/api by nova"),
        "{lost}"
    );

    // rollout: Manual (the "keep" HealthCheck) → stale pods are reported, not restarted.
    apply_health_check(
        &opted,
        "keep",
        spec(r#"{"selector": {"matchLabels": {"app": "keep"}}, "profile": "nova-api", "existingProbes": "Keep",
                 "probes": {"readiness": {"timing": {"retries": 5}}}}"#),
    )
    .await;
    let stale = status_where(&opted, "keep", "1 stale pod", |s| s["stalePods"] == 1).await;
    assert_eq!(condition(&stale, "Ready")["reason"], "StalePods");
    assert!(
        condition(&stale, "RestartForbidden").is_null(),
        "only rollout: Restart reports restarts: {stale}"
    );
    assert_eq!(
        pods(&opted, "keep", 1).await[0].name_any(),
        kept.name_any(),
        "not restarted"
    );

    // The leader killed without notice: the other replica takes over and finishes new work.
    let (survivor, killed_port) = if leader == "a" {
        a.kill();
        (&b, webhook_port)
    } else {
        b.kill();
        (&a, b.webhook_port)
    };
    eventually("the survivor leads", || async {
        survivor.is_leader().then_some(())
    })
    .await;
    updated["timing"] = json!({"interval": "20s"});
    apply_health_check(&opted, "nova", updated).await;
    status_where(&opted, "nova", "converged under the new leader", |s| {
        s["observedGeneration"] == 3 && s["upToDatePods"] == 2 && s["stalePods"] == 0
    })
    .await;
    // Restarted: still exactly one leader.
    let restarted = Operator::start(cp, &operator_ns.name, "restarted", killed_port, logs.path());
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        survivor.is_leader() && !restarted.is_leader(),
        "one leader after a restart"
    );

    // The apiserver restarted mid-run: the operator recovers (watches resume, webhook serves).
    cp.restart_apiserver()
        .await
        .expect("restart kube-apiserver");
    let opted = TestNamespace {
        client: cp.client().await.unwrap(),
        name: opted.name.clone(),
    };
    apply_health_check(
        &opted,
        "glance",
        spec(r#"{"selector": {"matchLabels": {"app": "glance"}}, "check": {"tcp": {"address": "127.0.0.1:9292"}},
                 "probes": {"liveness": {}}}"#),
    )
    .await;
    status_where(&opted, "glance", "accepted after the restart", |s| {
        condition(s, "Accepted")["status"] == "True"
    })
    .await;
    // The webhook in use is whichever replica registered last: the restarted one. Its watch
    // resumes with backoff after the outage; pods admitted before that get nothing.
    caught_up(&restarted, &opted.client).await;
    create_deployment(
        &opted,
        "glance",
        1,
        json!({"name": "api", "image": "glance-api:1"}),
    )
    .await;
    let glance = &pods(&opted, "glance", 1).await[0];
    assert_eq!(
        exec_command(&liveness(glance))[3],
        "tcp",
        "{}",
        restarted.log_text()
    );

    // Every webhook down: pods are still created (failurePolicy: Ignore), just without probes.
    drop(restarted);
    drop(a);
    drop(b);
    apply_health_check(&opted, "swift", spec(r#"{"selector": {"matchLabels": {"app": "swift"}}, "profile": "nova-api", "probes": {"liveness": {}}}"#)).await;
    create_deployment(
        &opted,
        "swift",
        1,
        json!({"name": "api", "image": "swift:1"}),
    )
    .await;
    assert!(liveness(&pods(&opted, "swift", 1).await[0]).is_none());
}
