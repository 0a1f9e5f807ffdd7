//! Operator benchmark against a running (local) control plane; `bench/operator` sets it up.
//!
//! 1. 1,000 HealthChecks in an opted-in namespace, then the operator (a separate process).
//! 2. Webhook: 200 concurrent pod creations through the apiserver; p50/p99 from the
//!    operator's own admission histogram (measured at the webhook).
//! 3. Scale: 5,000 pods in all; operator RSS; time until every HealthCheck's status has
//!    converged after a bulk change of all 1,000.
//!
//! Usage: bench OPERATOR_BINARY (KUBECONFIG set).

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use healthcheck_operator::api::HealthCheck;
use test_support::{free_port, http_get};

const HEALTH_CHECKS: usize = 1000;
const BURST: usize = 200;
const PODS: usize = 5000;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The body of `GET /metrics` from the operator's health server; empty when it does not answer.
fn metrics_body(health: SocketAddr) -> String {
    http_get(health, "/metrics")
        .map(|(_, body)| body)
        .unwrap_or_default()
}

/// Cumulative admission-latency buckets (upper bound in seconds, count).
fn buckets(metrics: &str) -> Vec<(f64, u64)> {
    metrics
        .lines()
        .filter_map(|line| {
            line.strip_prefix("healthcheck_operator_admission_duration_seconds_bucket{le=\"")
        })
        .filter_map(|rest| {
            let (bound, count) = rest.split_once("\"} ")?;
            let bound = if bound == "+Inf" {
                f64::INFINITY
            } else {
                bound.parse().ok()?
            };
            Some((bound, count.trim().parse().ok()?))
        })
        .collect()
}

/// The bucket bound under which `q` of the admissions between two scrapes fell.
fn quantile(before: &[(f64, u64)], after: &[(f64, u64)], q: f64) -> f64 {
    let deltas: Vec<(f64, u64)> = after
        .iter()
        .zip(before)
        .map(|((bound, a), (_, b))| (*bound, a - b))
        .collect();
    let total = deltas.last().map_or(0, |(_, n)| *n);
    let rank = (q * total as f64).ceil() as u64;
    deltas
        .iter()
        .find(|(_, n)| *n >= rank)
        .map_or(f64::INFINITY, |(bound, _)| *bound)
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| {
            line.strip_prefix(field)?
                .trim()
                .strip_suffix(" kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

fn step(what: &str) {
    eprintln!("bench: {what}");
}

async fn namespace(client: &Client, prefix: &str, opted_in: bool) -> Result<String> {
    let labels = if opted_in {
        json!({"healthcheck.openstack.org/inject": "enabled"})
    } else {
        json!({})
    };
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"generateName": prefix, "labels": labels}}))?;
    let created = Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    let name = created.name_any();
    // Pods need the namespace's default ServiceAccount.
    let accounts =
        Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(client.clone(), &name);
    while accounts.get_opt("default").await?.is_none() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(name)
}

fn health_check(i: usize, interval: &str) -> serde_json::Value {
    json!({
        "apiVersion": "healthcheck.openstack.org/v1beta1", "kind": "HealthCheck",
        "metadata": {"name": format!("svc-{i:04}")},
        "spec": {
            "selector": {"matchLabels": {"app": format!("svc-{i:04}")}},
            "profile": "nova-api",
            "timing": {"interval": interval},
            "probes": {"liveness": {}, "readiness": {}},
        },
    })
}

async fn apply_health_checks(api: &Api<HealthCheck>, interval: &str) -> Result<()> {
    let results: Vec<_> = stream::iter(0..HEALTH_CHECKS)
        .map(|i| {
            let api = api.clone();
            let object = health_check(i, interval);
            async move {
                api.patch(
                    &format!("svc-{i:04}"),
                    &PatchParams::apply("bench").force(),
                    &Patch::Apply(&object),
                )
                .await
            }
        })
        .buffer_unordered(50)
        .collect()
        .await;
    for result in results {
        result?;
    }
    Ok(())
}

async fn create_pods(
    api: &Api<Pod>,
    range: std::ops::Range<usize>,
    concurrency: usize,
) -> Result<usize> {
    let results: Vec<_> = stream::iter(range)
        .map(|i| {
            let api = api.clone();
            async move {
                let pod: Pod = serde_json::from_value(json!({
                    "metadata": {"name": format!("pod-{i:05}"), "labels": {"app": format!("svc-{:04}", i % HEALTH_CHECKS)}},
                    "spec": {"containers": [{"name": "api", "image": "nova-api:bench"}]},
                }))
                .unwrap();
                api.create(&PostParams::default(), &pod).await
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut injected = 0;
    for result in results {
        let pod = result?;
        injected += usize::from(
            pod.spec
                .and_then(|s| s.containers[0].liveness_probe.clone())
                .is_some(),
        );
    }
    Ok(injected)
}

/// Seconds until every HealthCheck reports its generation with `check` true for its status.
async fn converge(
    api: &Api<HealthCheck>,
    started: Instant,
    check: impl Fn(&HealthCheck) -> bool,
) -> Result<f64> {
    loop {
        let list = api.list(&ListParams::default()).await?;
        let done = list.items.iter().filter(|hc| {
            hc.status.as_ref().and_then(|s| s.observed_generation) == hc.metadata.generation
                && check(hc)
        });
        if done.count() == HEALTH_CHECKS {
            return Ok(started.elapsed().as_secs_f64());
        }
        if started.elapsed() > Duration::from_secs(600) {
            return Err("no convergence within 10 minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

struct Operator(Child);

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let operator_binary = std::env::args()
        .nth(1)
        .ok_or("usage: bench OPERATOR_BINARY")?;
    let client = Client::try_default().await?;
    let operator_ns = namespace(&client, "bench-operator-", false).await?;
    let ns = namespace(&client, "bench-", true).await?;
    let health_checks = Api::<HealthCheck>::namespaced(client.clone(), &ns);
    let pods = Api::<Pod>::namespaced(client.clone(), &ns);

    step(&format!("creating {HEALTH_CHECKS} HealthChecks in {ns}"));
    apply_health_checks(&health_checks, "30s").await?;

    step("starting the operator");
    let (webhook_port, health_port) = (free_port(), free_port());
    let log = std::env::temp_dir().join("healthcheck-operator-bench.log");
    let operator = Operator(
        Command::new(&operator_binary)
            .args(["run", "--namespace", &operator_ns, "--identity", "bench"])
            .arg(format!("--webhook-address=127.0.0.1:{webhook_port}"))
            .arg(format!("--health-address=127.0.0.1:{health_port}"))
            .arg(format!("--webhook-url=https://127.0.0.1:{webhook_port}"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log)?)
            .stderr(std::fs::File::create(&log)?)
            .spawn()?,
    );
    let pid = operator.0.id();
    let health = SocketAddr::from(([127, 0, 0, 1], health_port));
    while !matches!(http_get(health, "/readyz"), Ok((200, _))) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    step("waiting for the initial status of every HealthCheck");
    converge(&health_checks, Instant::now(), |_| true).await?;

    step(&format!("{BURST} concurrent pod creations"));
    let before = buckets(&metrics_body(health));
    let started = Instant::now();
    let injected = create_pods(&pods, 0..BURST, BURST).await?;
    let burst_seconds = started.elapsed().as_secs_f64();
    let after = buckets(&metrics_body(health));
    let (p50, p99) = (
        quantile(&before, &after, 0.5),
        quantile(&before, &after, 0.99),
    );

    step(&format!("creating pods up to {PODS}"));
    create_pods(&pods, BURST..PODS, 100).await?;
    let per_hc = (PODS / HEALTH_CHECKS) as i32;
    converge(&health_checks, Instant::now(), |hc| {
        hc.status.as_ref().and_then(|s| s.up_to_date_pods) == Some(per_hc)
    })
    .await?;
    let rss_settled = rss_kib(pid, "VmRSS:");

    step(&format!("bulk change of all {HEALTH_CHECKS} HealthChecks"));
    let started = Instant::now();
    apply_health_checks(&health_checks, "10s").await?;
    let applied = started.elapsed().as_secs_f64();
    let converged = converge(&health_checks, started, |hc| {
        hc.status.as_ref().and_then(|s| s.stale_pods) == Some(per_hc)
    })
    .await?;
    let rss_peak = rss_kib(pid, "VmHWM:");
    drop(operator);

    println!("| metric | value |");
    println!("|---|---|");
    println!(
        "| admission latency at the webhook, {BURST} concurrent creations, {HEALTH_CHECKS} HealthChecks cached: p50 | ≤ {:.2} ms |",
        p50 * 1000.0
    );
    println!("| same, p99 | ≤ {:.2} ms |", p99 * 1000.0);
    println!(
        "| pods injected in the burst | {injected} of {BURST} (burst took {burst_seconds:.1} s through the apiserver) |"
    );
    println!(
        "| operator RSS with {HEALTH_CHECKS} HealthChecks and {PODS} pods | {} MiB (peak {} MiB) |",
        rss_settled / 1024,
        rss_peak / 1024
    );
    println!(
        "| status of all {HEALTH_CHECKS} HealthChecks converged after a bulk change | {converged:.1} s from the first write ({applied:.1} s to send all {HEALTH_CHECKS} changes) |"
    );
    for namespace in [ns, operator_ns] {
        Api::<Namespace>::all(client.clone())
            .delete(&namespace, &Default::default())
            .await?;
    }
    Ok(())
}
