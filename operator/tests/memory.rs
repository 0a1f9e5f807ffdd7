//! The webhook's memory under concurrent reviews: the real operator process, in the memory limit
//! `deploy/` gives it (128Mi, as a v1 memory cgroup), against the local control plane, sent
//! reviews of the largest pod it works on (256 containers, just under 3 MiB) all at once over
//! TLS, as an apiserver does under a burst of creations. Every review is answered and counted
//! (probes injected, or `Overloaded`: 503 before its body is read, which the failure policy
//! admits) and the kernel never kills the operator. The same burst with the bound lifted is the control: it does kill it, so the burst
//! is large enough to show the bound at work.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};

use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use healthcheck_operator::api::HealthCheck;
use healthcheck_operator::webhook::{MAX_CONTAINERS, MAX_REVIEW_BYTES};
use support::local::{MemoryCgroup, Operator, free_port, install_crd};
use support::reviews::big_review;

/// `deploy/base/deployment.yaml`'s memory limit.
const MEMORY_LIMIT: u64 = 128 * 1024 * 1024;
/// Reviews in the burst: their bodies alone are more than the limit.
const BURST: usize = 96;

/// `BURST` concurrent POSTs of `review` to the webhook (curl, as a TLS client that skips
/// verification); each answer's HTTP status and body, or `None` when the connection closed
/// before an answer.
fn burst(port: u16, review: &Path, out: &Path) -> Vec<Option<(u16, String)>> {
    let url = format!("https://127.0.0.1:{port}/mutate");
    let clients: Vec<_> = (0..BURST)
        .map(|i| {
            let body = out.join(format!("answer-{i}"));
            let child = Command::new("curl")
                .args(["-sk", "--max-time", "60", "-w", "%{http_code}"])
                .args(["-H", "Content-Type: application/json", "--data-binary"])
                .arg(format!("@{}", review.display()))
                .arg("-o")
                .arg(&body)
                .arg(&url)
                .stdout(Stdio::piped())
                .stdin(Stdio::null())
                .spawn()
                .expect("run curl");
            (child, body)
        })
        .collect();
    clients
        .into_iter()
        .map(|(child, body)| {
            let output = child.wait_with_output().expect("wait for curl");
            let status: u16 = String::from_utf8_lossy(&output.stdout).parse().ok()?;
            (output.status.success() && status != 0)
                .then(|| (status, std::fs::read_to_string(&body).unwrap_or_default()))
        })
        .collect()
}

/// `_admissions_total` for `result` (not dry-run), from the operator's metrics.
fn admissions(metrics: &str, result: &str) -> usize {
    let prefix =
        format!("healthcheck_operator_admissions_total{{result=\"{result}\",dry_run=\"false\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map_or(0, |count| count.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_the_largest_reviews_stays_within_deploys_memory_limit() {
    let cp = kube_controlplane::shared();
    install_crd(cp);
    let services = kube_controlplane::namespace().await;
    let health_check = json!({
        "apiVersion": "healthcheck.openstack.org/v1beta1", "kind": "HealthCheck",
        "metadata": {"name": "nova-api"},
        "spec": {"selector": {"matchLabels": {"app": "nova-api"}}, "profile": "nova-api",
                 "probes": {"liveness": {}, "readiness": {}}},
    });
    Api::<HealthCheck>::namespaced(services.client.clone(), &services.name)
        .patch(
            "nova-api",
            &PatchParams::apply("memory-test").force(),
            &Patch::Apply(&health_check),
        )
        .await
        .expect("apply the HealthCheck");

    let work = tempfile::tempdir().unwrap();
    let mut review: Value = serde_json::from_str(&big_review(MAX_CONTAINERS, 0)).unwrap();
    review["request"]["namespace"] = json!(services.name);
    let padding = MAX_REVIEW_BYTES - 64 * 1024 - review.to_string().len();
    // In a container's environment: the pod's annotations are limited to 256 KiB.
    review["request"]["object"]["metadata"]["annotations"] = json!({});
    review["request"]["object"]["spec"]["containers"][0]["env"] =
        json!([{"name": "PADDING", "value": "x".repeat(padding)}]);
    let review_file = work.path().join("review.json");
    std::fs::write(&review_file, review.to_string()).unwrap();

    // Bounded (the default): every review answered, the operator alive, within its limit.
    let operator_ns = kube_controlplane::namespace().await;
    let cgroup = MemoryCgroup::create("bounded", MEMORY_LIMIT);
    let operator = Operator::start_with(
        cp,
        &operator_ns.name,
        "bounded",
        free_port(),
        work.path(),
        Some(&cgroup),
        &[],
    );
    support::local::wait_cached(&operator, 1).await;
    let answers = burst(operator.webhook_port, &review_file, work.path());
    let metrics = operator.metrics().unwrap_or_default();
    eprintln!(
        "bounded: max usage {} KiB of {} KiB, {} injected, {} overloaded",
        cgroup.max_usage_bytes() / 1024,
        MEMORY_LIMIT / 1024,
        admissions(&metrics, "Injected"),
        admissions(&metrics, "Overloaded"),
    );
    assert_eq!(cgroup.oom_kills(), 0, "{}", operator.log_text());
    // A review without room is answered 503 before its body is read; the client, still sending
    // it, may see the connection closed instead. Either way the failure policy admits the pod,
    // and the operator counted it.
    let mut injected_answers = 0;
    for answer in &answers {
        match answer {
            Some((200, body)) => {
                assert!(body.contains(r#""allowed":true"#), "{body:.300}");
                injected_answers += 1;
            }
            Some((503, _)) | None => {}
            Some((status, body)) => panic!("answered {status}: {body:.300}"),
        }
    }
    let injected = admissions(&metrics, "Injected");
    assert!(injected >= 1, "{metrics}");
    assert_eq!(injected, injected_answers, "{metrics}");
    assert_eq!(
        injected + admissions(&metrics, "Overloaded"),
        BURST,
        "each review counted once: {metrics}"
    );
    drop(operator);
    drop(cgroup);

    // The control: the same burst with the bound lifted takes the operator over its limit.
    let cgroup = MemoryCgroup::create("unbounded", MEMORY_LIMIT);
    let mut operator = Operator::start_with(
        cp,
        &operator_ns.name,
        "unbounded",
        free_port(),
        work.path(),
        Some(&cgroup),
        &["--review-room-mib", "100000"],
    );
    support::local::wait_cached(&operator, 1).await;
    let answers = burst(operator.webhook_port, &review_file, work.path());
    let killed = cgroup.oom_kills();
    let exited = operator.child.try_wait().unwrap();
    eprintln!(
        "unbounded: {killed} OOM kill(s), exit {exited:?}, {} of {BURST} answered",
        answers.iter().flatten().count()
    );
    assert!(
        killed >= 1 && exited.is_some(),
        "without the bound the burst was expected to exceed the limit (max usage {} KiB)",
        cgroup.max_usage_bytes() / 1024
    );
    operator.kill();
}
