//! The webhook's HTTP shell, driven with `Router::oneshot` on AdmissionReview fixtures shaped
//! as the apiserver sends them (a ReplicaSet's pod: `generateName`, no name).

mod support;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use healthcheck_operator::api::HealthCheck;
use healthcheck_operator::index::{Feed, SharedIndex};
use healthcheck_operator::inject::{INJECTED_ANNOTATION, InjectConfig};
use healthcheck_operator::metrics::Metrics;
use healthcheck_operator::webhook::{DEFAULT_REVIEW_ROOM_BYTES, Webhook, health_router, router};
use http_body_util::BodyExt;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionResponse, AdmissionReview};
use kube::runtime::watcher::Event;
use serde_json::{Value, json};
use support::reviews::{big_review, fixture};
use tower::ServiceExt;

fn health_check(name: &str, spec: &str) -> HealthCheck {
    let mut hc = HealthCheck::new(name, serde_saphyr::from_str(spec).unwrap());
    hc.metadata.namespace = Some("openstack".to_string());
    hc.metadata.generation = Some(1);
    hc
}

const NOVA_API: &str = "selector: { matchLabels: { app: nova-api } }\ncontainers: [nova-api]\nprofile: nova-api\nprobes: { liveness: {}, readiness: {} }";

fn webhook(health_checks: Vec<HealthCheck>, synced: bool) -> Arc<Webhook> {
    let index = SharedIndex::default();
    if synced {
        relist(&index, health_checks);
    }
    Arc::new(Webhook::new(
        Arc::new(index),
        Arc::new(Metrics::default()),
        DEFAULT_REVIEW_ROOM_BYTES,
    ))
}

fn relist(index: &SharedIndex, health_checks: Vec<HealthCheck>) {
    let mut feed = Feed::new(InjectConfig {
        probe_image: "probe:test".to_string(),
    });
    index.handle(&mut feed, Event::Init);
    for hc in health_checks {
        index.handle(&mut feed, Event::InitApply(hc));
    }
    index.handle(&mut feed, Event::InitDone);
}

async fn call(
    router: axum::Router,
    method: &str,
    uri: &str,
    body: String,
) -> (StatusCode, Vec<u8>) {
    let response = router
        .oneshot(
            Request::builder()
                .method(method)
                .uri(uri)
                .header("content-type", "application/json")
                // As the apiserver sends it: the webhook takes room for the body it declares.
                .header("content-length", body.len())
                .body(Body::from(body))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, body)
}

/// The webhook's answer to the review `body`: always 200, allowed, for the review's uid.
async fn answer(webhook: &Arc<Webhook>, body: String) -> AdmissionResponse {
    let (status, body) = call(router(webhook.clone()), "POST", "/mutate", body).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let review: AdmissionReview<DynamicObject> = serde_json::from_slice(&body).unwrap();
    let response = review.response.expect("a response");
    assert_eq!(response.uid, "705ab4f5-6393-11e8-b7cc-42010a800002");
    assert!(response.allowed, "never denies");
    response
}

async fn admit(webhook: &Arc<Webhook>, fixture_name: &str) -> AdmissionResponse {
    answer(webhook, fixture(fixture_name)).await
}

/// The fixture's pod with the response's patch applied.
fn patched(fixture_name: &str, response: &AdmissionResponse) -> Value {
    let review: Value = serde_json::from_str(&fixture(fixture_name)).unwrap();
    let mut pod = review["request"]["object"].clone();
    let patch: json_patch::Patch =
        serde_json::from_slice(response.patch.as_ref().expect("a patch")).unwrap();
    json_patch::patch(&mut pod, &patch).unwrap();
    pod
}

async fn metrics_text(webhook: &Arc<Webhook>) -> String {
    let (status, body) = call(
        health_router(webhook.clone()),
        "GET",
        "/metrics",
        String::new(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    String::from_utf8(body).unwrap()
}

#[tokio::test]
async fn pod_create_gets_the_probes_as_a_json_patch() {
    let webhook = webhook(vec![health_check("nova-api", NOVA_API)], true);
    let response = admit(&webhook, "pod-create.json").await;
    let serialized = serde_json::to_value(&response).unwrap();
    assert_eq!(serialized["patchType"], "JSONPatch");
    let pod = patched("pod-create.json", &response);
    let api = &pod["spec"]["containers"][0];
    assert_eq!(
        api["livenessProbe"]["exec"]["command"],
        json!([
            "/openstack/healthcheck",
            "--timeout",
            "27",
            "profile",
            "nova-api"
        ])
    );
    assert!(api["readinessProbe"]["exec"].is_object());
    assert!(
        pod["spec"]["containers"][1].get("livenessProbe").is_none(),
        "log is not targeted"
    );
    let record: Value = serde_json::from_str(
        pod["metadata"]["annotations"][INJECTED_ANNOTATION]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(record["nova-api"]["healthCheck"], "nova-api");
    assert_eq!(record["nova-api"]["generation"], 1);
    // Unknown-to-us fields the apiserver sent survive (the patch touches only what changed).
    assert_eq!(
        pod["metadata"]["managedFields"][0]["manager"],
        "kube-controller-manager"
    );
    assert!(metrics_text(&webhook).await.contains(
        "healthcheck_operator_admissions_total{result=\"Injected\",dry_run=\"false\"} 1"
    ));
}

#[tokio::test]
async fn dry_run_is_answered_the_same_and_counted_apart() {
    let webhook = webhook(vec![health_check("nova-api", NOVA_API)], true);
    let wet = admit(&webhook, "pod-create.json").await;
    let dry = admit(&webhook, "pod-create-dry-run.json").await;
    assert_eq!(wet.patch, dry.patch);
    let text = metrics_text(&webhook).await;
    assert!(
        text.contains("result=\"Injected\",dry_run=\"true\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn updates_and_unselected_pods_pass_unchanged() {
    let webhook = webhook(vec![health_check("nova-api", NOVA_API)], true);
    for fixture_name in ["pod-update.json", "pod-create-unselected.json"] {
        let response = admit(&webhook, fixture_name).await;
        assert!(response.patch.is_none(), "{fixture_name}");
    }
    assert!(
        metrics_text(&webhook)
            .await
            .contains("result=\"Ignored\",dry_run=\"false\"} 2")
    );
}

#[tokio::test]
async fn our_errors_admit_unchanged_and_are_counted() {
    let webhook = webhook(vec![health_check("nova-api", NOVA_API)], true);
    let response = admit(&webhook, "pod-create-unreadable.json").await;
    assert!(response.patch.is_none());
    assert!(
        metrics_text(&webhook)
            .await
            .contains("result=\"Error\",dry_run=\"false\"} 1")
    );

    // Not even an AdmissionReview: nothing to answer; the apiserver's failurePolicy decides.
    let (status, body) = call(router(webhook.clone()), "POST", "/mutate", "{".to_string()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).starts_with("not an AdmissionReview"));
    assert!(
        metrics_text(&webhook)
            .await
            .contains("errors_total{kind=\"unreadable_review\"} 1")
    );
}

#[tokio::test]
async fn until_synced_pods_pass_unchanged_and_readiness_fails() {
    let webhook = webhook(vec![], false);
    let response = admit(&webhook, "pod-create.json").await;
    assert!(response.patch.is_none());
    let (status, _) = call(
        health_router(webhook.clone()),
        "GET",
        "/readyz",
        String::new(),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _) = call(
        health_router(webhook.clone()),
        "GET",
        "/healthz",
        String::new(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    relist(&webhook.index, vec![health_check("nova-api", NOVA_API)]);
    let (status, _) = call(
        health_router(webhook.clone()),
        "GET",
        "/readyz",
        String::new(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(admit(&webhook, "pod-create.json").await.patch.is_some());
    assert!(
        metrics_text(&webhook)
            .await
            .contains("result=\"NotReady\",dry_run=\"false\"} 1")
    );
}

#[tokio::test]
async fn conflicts_are_warned_to_the_creator() {
    let webhook = webhook(
        vec![
            health_check("nova-api", NOVA_API),
            health_check(
                "a-generic",
                &NOVA_API.replace("profile: nova-api", "check: { process: { pattern: nova } }"),
            ),
        ],
        true,
    );
    let response = admit(&webhook, "pod-create.json").await;
    assert_eq!(
        response.warnings,
        Some(vec![
            "HealthCheck nova-api also selects container nova-api; a-generic wins".to_string()
        ])
    );
    let pod = patched("pod-create.json", &response);
    assert_eq!(
        pod["spec"]["containers"][0]["livenessProbe"]["exec"]["command"][3],
        "process"
    );
}

#[tokio::test]
async fn other_paths_and_methods_are_not_found() {
    let webhook = webhook(vec![], true);
    let (status, _) = call(
        router(webhook.clone()),
        "POST",
        "/validate",
        fixture("pod-create.json"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(router(webhook), "GET", "/mutate", String::new()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_serve_port_the_pod_declares_is_warned_and_nothing_is_injected() {
    let webhook = webhook(
        vec![health_check(
            "nova-api",
            &NOVA_API.replace(
                "profile: nova-api",
                "profile: nova-api\nmode: HTTP\nservePort: 8774",
            ),
        )],
        true,
    );
    let response = admit(&webhook, "pod-create.json").await;
    assert!(response.patch.is_none(), "{:?}", response.patch);
    assert_eq!(
        response.warnings,
        Some(vec![
            "HealthCheck nova-api: container nova-api declares its servePort 8774; nothing injected from it (choose another servePort)".to_string()
        ])
    );
    assert!(
        metrics_text(&webhook)
            .await
            .contains("healthcheck_operator_conflicts_total 1")
    );
}

/// NOVA_API for every container of the pod.
fn nova_api_everywhere() -> HealthCheck {
    health_check(
        "nova-api",
        &NOVA_API.replace("containers: [nova-api]\n", ""),
    )
}

#[tokio::test]
async fn reviews_over_the_bounds_are_admitted_unchanged_and_counted() {
    use healthcheck_operator::webhook::{MAX_BODY_BYTES, MAX_CONTAINERS, MAX_REVIEW_BYTES};
    let webhook = webhook(vec![nova_api_everywhere()], true);
    // At the bound: injected.
    let within = answer(&webhook, big_review(MAX_CONTAINERS, 0)).await;
    assert!(within.patch.is_some());
    // Over it, by containers (the 12,000) or by bytes: unchanged, never refused.
    for body in [
        big_review(MAX_CONTAINERS + 1, 0),
        big_review(12_000, 0),
        big_review(1, MAX_REVIEW_BYTES),
    ] {
        assert!(answer(&webhook, body).await.patch.is_none());
    }
    assert!(
        metrics_text(&webhook)
            .await
            .contains("result=\"TooLarge\",dry_run=\"false\"} 3"),
        "{}",
        metrics_text(&webhook).await
    );
    // Beyond what is read at all, declared or not: refused before the pod is read, counted,
    // and the apiserver's failurePolicy (Ignore) admits the pod.
    let (status, _) = call(
        router(webhook.clone()),
        "POST",
        "/mutate",
        big_review(1, MAX_BODY_BYTES),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // The same without a declared length: cut off at the limit.
    let undeclared = Request::post("/mutate")
        .body(Body::from(big_review(1, MAX_BODY_BYTES)))
        .unwrap();
    let response = router(webhook.clone()).oneshot(undeclared).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let metrics = metrics_text(&webhook).await;
    assert!(
        metrics.contains("result=\"TooLarge\",dry_run=\"false\"} 5"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_pod_without_room_for_the_injection_record_is_admitted_unchanged_and_counted() {
    use healthcheck_operator::inject::MAX_ANNOTATIONS_BYTES;
    let webhook = webhook(vec![nova_api_everywhere()], true);
    // 255 KiB of annotations leave room for the record: injected.
    let roomy = answer(&webhook, big_review(1, 255 * 1024)).await;
    assert!(roomy.patch.is_some());
    // A pod the apiserver accepts as it is (16 bytes under the limit), but not with the
    // record: admitted as it is rather than patched into a pod the apiserver would refuse.
    let full = answer(
        &webhook,
        big_review(1, MAX_ANNOTATIONS_BYTES - "padding".len() - 16),
    )
    .await;
    assert!(full.patch.is_none(), "{:?}", full.patch);
    let text = metrics_text(&webhook).await;
    for line in [
        "healthcheck_operator_admissions_total{result=\"AnnotationsFull\",dry_run=\"false\"} 1",
        "healthcheck_operator_admissions_total{result=\"Injected\",dry_run=\"false\"} 1",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
}

/// A request that declares `bytes` of body and never sends them, holding their room.
fn stalled_review(bytes: usize) -> Request<Body> {
    Request::post("/mutate")
        .header("content-length", bytes.to_string())
        .body(Body::from_stream(futures::stream::pending::<
            Result<axum::body::Bytes, std::io::Error>,
        >()))
        .unwrap()
}

#[tokio::test]
async fn reviews_beyond_the_room_for_work_at_once_are_answered_503_and_counted() {
    use healthcheck_operator::webhook::MIN_REVIEW_ROOM_BYTES;
    let index = SharedIndex::default();
    relist(&index, vec![health_check("nova-api", NOVA_API)]);
    // The least room: one body of the largest size.
    let webhook = Arc::new(Webhook::new(
        Arc::new(index),
        Arc::new(Metrics::default()),
        MIN_REVIEW_ROOM_BYTES,
    ));
    // A client that declared the largest body and sends nothing holds all the room.
    let stalled =
        tokio::spawn(router(webhook.clone()).oneshot(stalled_review(MIN_REVIEW_ROOM_BYTES)));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    // Another review finds no room within the wait: 503 before its body is read, which the
    // failure policy admits unchanged.
    let (status, _) = call(
        router(webhook.clone()),
        "POST",
        "/mutate",
        fixture("pod-create.json"),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let metrics = metrics_text(&webhook).await;
    assert!(
        metrics.contains("result=\"Overloaded\",dry_run=\"false\"} 1"),
        "{metrics}"
    );
    // The stalled client gone, its room is free again: the same review gets its probes.
    stalled.abort();
    let _ = stalled.await;
    let response = admit(&webhook, "pod-create.json").await;
    assert!(response.patch.is_some());
}
