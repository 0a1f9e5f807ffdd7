//! The HealthCheck controller, a thin loop: list the selected pods, [`crate::rollout`] for
//! `rollout: Restart` (stale pods, and pods admitted without probes), and write the status
//! [`crate::status`] computes when it changed (with Events on condition transitions).
//! Every replica runs it to keep caches warm; only the Lease holder writes.
//!
//! Pods are watched narrowly: metadata only, and only pods carrying [`INJECTED_LABEL`] (a
//! metadata watch still sees every status change, so the kubelet's verdicts trigger reconciles).
//! The pods a HealthCheck selects are listed by its selector when it reconciles. The kubelet's
//! probe failure Events (`reason=Unhealthy` on pods) are followed by a watch that keeps only
//! the newest per container ([`UnhealthyEvents`]); [`probe_results`] turns both into the
//! `Healthy` condition.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event as KubeletEvent, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, PartialObjectMeta, Patch, PatchParams};
use kube::core::Selector;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tracing::warn;

use crate::FIELD_MANAGER;
use crate::api::{HealthCheck, Rollout};
use crate::context::Context;
use crate::error::Error;
use crate::inject::{INJECTED_LABEL, injection_record, rendering};
use crate::probe_results::{UNHEALTHY_POD_EVENTS, UnhealthyEvents, probe_results};
use crate::rollout::{Restarts, restart_owners};
use crate::status::{HEALTHY, desired_status, observe, serve_port_taken, transitions};

/// Safety net for what no watch event announces (pods selected but never injected).
const RESYNC: Duration = Duration::from_secs(300);
/// While probes fail, how often the newest failure line is brought into status (the kubelet's
/// Events do not trigger reconciles; pod status changes do).
const UNHEALTHY_RESYNC: Duration = Duration::from_secs(30);
/// Retry for pods admitted without probes while the webhook is not reachable yet.
const UNREACHABLE_RETRY: Duration = Duration::from_secs(5);

/// What reconciles share: the context and the kubelet's newest probe failures.
pub struct Reconciler {
    pub ctx: Arc<Context>,
    pub unhealthy: Mutex<UnhealthyEvents>,
}

impl Reconciler {
    pub fn new(ctx: Arc<Context>) -> Self {
        Reconciler {
            ctx,
            unhealthy: Mutex::default(),
        }
    }

    fn unhealthy(&self) -> std::sync::MutexGuard<'_, UnhealthyEvents> {
        self.unhealthy.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Runs until `shutdown` resolves.
pub async fn run(ctx: Arc<Context>, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
    let client = ctx.client.clone();
    let reconciler = Arc::new(Reconciler::new(ctx));
    let events = follow_unhealthy_events(client.clone(), Arc::clone(&reconciler));
    let controller = controller(client, reconciler, shutdown);
    // The Event watch never ends by itself; the controller ends at shutdown.
    tokio::select! {
        () = controller => {}
        () = events => {}
    }
}

/// Feeds [`Reconciler::unhealthy`] from a watch of the kubelet's probe failure Events.
async fn follow_unhealthy_events(client: Client, reconciler: Arc<Reconciler>) {
    let api = Api::<KubeletEvent>::all(client);
    let config = watcher::Config::default().fields(UNHEALTHY_POD_EVENTS);
    let mut events = std::pin::pin!(watcher(api, config).default_backoff());
    while let Some(event) = events.next().await {
        match event {
            Ok(event) => reconciler.unhealthy().handle(event),
            Err(err) => {
                warn!(%err, "watching the kubelet's probe failure Events");
                reconciler.ctx.metrics.error("event_watch");
            }
        }
    }
}

async fn controller(
    client: Client,
    reconciler: Arc<Reconciler>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let pods = Api::<PartialObjectMeta<Pod>>::all(client.clone());
    let leader_gained = tokio_stream_from_watch(reconciler.ctx.leader.clone());
    Controller::new(Api::<HealthCheck>::all(client), watcher::Config::default())
        .watches(
            pods,
            watcher::Config::default().labels(INJECTED_LABEL),
            |pod| {
                let namespace = pod.namespace().unwrap_or_default();
                let annotations = pod.metadata.annotations.unwrap_or_default();
                injection_record(&annotations)
                    .into_values()
                    .map(|injected| injected.health_check)
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .map(move |name| ObjectRef::new(&name).within(&namespace))
            },
        )
        .reconcile_all_on(leader_gained)
        // Pods change status in bursts (containers start one by one): one reconcile per burst.
        .with_config(
            ControllerConfig::default()
                .concurrency(16)
                .debounce(Duration::from_secs(1)),
        )
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, reconciler)
        .for_each(|_| futures::future::ready(()))
        .await;
}

/// One `()` each time this replica becomes the leader.
fn tokio_stream_from_watch(
    leader: tokio::sync::watch::Receiver<bool>,
) -> impl futures::Stream<Item = ()> + Send + 'static {
    futures::stream::unfold(leader, |mut leader| async move {
        loop {
            leader.changed().await.ok()?;
            if *leader.borrow_and_update() {
                return Some(((), leader));
            }
        }
    })
}

pub fn error_policy(_: Arc<HealthCheck>, err: &Error, reconciler: Arc<Reconciler>) -> Action {
    warn!(%err, "reconcile failed");
    reconciler.ctx.metrics.error("reconcile");
    Action::requeue(Duration::from_secs(10))
}

/// One HealthCheck: its pods listed, stale pods rolled, its status written when it changed.
pub async fn reconcile(
    health_check: Arc<HealthCheck>,
    reconciler: Arc<Reconciler>,
) -> Result<Action, Error> {
    let ctx = &reconciler.ctx;
    ctx.metrics.reconciles.inc();
    if !*ctx.leader.borrow() {
        // The leader writes; reconcile_all_on brings us back if we become it.
        return Ok(Action::await_change());
    }
    let namespace = health_check.namespace().unwrap_or_default();
    let name = health_check.name_any();
    let kube_error = |context: String| move |source| Error::Kube { context, source };
    let pods: Vec<Pod> = match Selector::try_from(health_check.spec.selector.clone()) {
        Ok(selector) if !selector.selects_all() => {
            Api::<Pod>::namespaced(ctx.client.clone(), &namespace)
                .list(&ListParams::default().labels(&selector.to_string()))
                .await
                .map_err(kube_error(format!(
                    "list pods of HealthCheck {namespace}/{name}"
                )))?
                .items
        }
        _ => Vec::new(),
    };
    let rendered = rendering(&name, &health_check.spec, &ctx.inject);
    let current_hash = rendered.as_ref().ok().map(|r| r.hash.clone());
    let metadata: Vec<_> = pods.iter().map(|pod| pod.metadata.clone()).collect();
    let mut observed = observe(&health_check, current_hash.as_deref(), &metadata);
    observed.port_taken =
        serve_port_taken(rendered.as_ref().ok().and_then(|r| r.serve_port), &pods);
    // Restarts before the status, so that it says when one is forbidden. A restart that failed
    // otherwise fails the reconcile, but only after the status is written.
    let restarts = match (health_check.spec.rollout, &current_hash) {
        (Rollout::Restart, Some(hash)) => {
            restart_owners(ctx, &health_check, &namespace, &observed, hash).await
        }
        _ => Ok(Restarts::default()),
    };
    observed.restart_forbidden = restarts.as_ref().ok().map(|r| r.forbidden.clone());
    let events = reconciler.unhealthy().for_pods(&pods);
    let results = probe_results(&name, &pods, &events);
    let not_injectable = rendered.as_ref().err().map(ToString::to_string);
    let desired = desired_status(
        &health_check,
        &observed,
        &results,
        health_check.status.as_ref(),
        not_injectable.as_deref(),
        Time(Timestamp::now()),
    );
    if health_check.status.as_ref() != Some(&desired) {
        let api = Api::<HealthCheck>::namespaced(ctx.client.clone(), &namespace);
        let patch = json!({
            "apiVersion": HealthCheck::api_version(&()),
            "kind": HealthCheck::kind(&()),
            "status": desired,
        });
        api.patch_status(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .map_err(kube_error(format!(
            "write status of HealthCheck {namespace}/{name}"
        )))?;
        ctx.metrics.status_writes.inc();
        let reference = health_check.object_ref(&());
        for event in transitions(health_check.status.as_ref(), &desired) {
            if let Err(err) = ctx.recorder.publish(&event, &reference).await {
                warn!(%err, "cannot publish an Event");
                ctx.metrics.error("event");
            }
        }
    }
    let unreachable = restarts?.webhook_unreachable;
    let healthy = desired
        .conditions
        .iter()
        .any(|c| c.type_ == HEALTHY && c.status == "True");
    Ok(Action::requeue(if unreachable {
        UNREACHABLE_RETRY
    } else if results.probed > 0 && !healthy {
        UNHEALTHY_RESYNC
    } else {
        RESYNC
    }))
}

#[cfg(test)]
mod tests {
    //! Reconcile I/O against a mocked API server: the exact requests, in order, and no others.

    use super::*;
    use crate::inject::{INJECTED_ANNOTATION, InjectConfig};
    use crate::metrics::{ErrorLabels, Metrics};
    use crate::probe_results::UNHEALTHY;
    use crate::status::RESTART_FORBIDDEN;
    use http::{Request, Response};
    use kube::client::Body;
    use tower_test::mock::{self, Handle};

    const PROBE_IMAGE: &str = "probe:test";

    fn health_check(status: Option<crate::api::HealthCheckStatus>) -> HealthCheck {
        let mut hc = HealthCheck::new(
            "nova",
            serde_saphyr::from_str(
                "selector: { matchLabels: { app: nova } }\nprofile: nova-api\nprobes: { liveness: {}, readiness: {} }",
            )
            .unwrap(),
        );
        hc.metadata.namespace = Some("ns".to_string());
        hc.metadata.generation = Some(1);
        hc.metadata.uid = Some("hc-uid".to_string());
        hc.status = status;
        hc
    }

    fn reconciler(client: Client) -> Arc<Reconciler> {
        let (leader, leader_rx) = tokio::sync::watch::channel(true);
        std::mem::forget(leader);
        Arc::new(Reconciler::new(Arc::new(Context::new(
            client,
            "test",
            Arc::new(Metrics::default()),
            leader_rx,
            InjectConfig {
                probe_image: PROBE_IMAGE.to_string(),
            },
        ))))
    }

    /// A pod carrying the current probes, Ready or not.
    fn pod(ready: bool) -> serde_json::Value {
        let hash = rendering(
            "nova",
            &health_check(None).spec,
            &InjectConfig {
                probe_image: PROBE_IMAGE.to_string(),
            },
        )
        .unwrap()
        .hash;
        let record = json!({"api": {"healthCheck": "nova", "generation": 1, "hash": hash}});
        json!({
            "metadata": {"name": "nova-1", "namespace": "ns", "uid": "pod-uid",
                         "labels": {"app": "nova"},
                         "annotations": {INJECTED_ANNOTATION: record.to_string()}},
            "status": {
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
                "containerStatuses": [{"name": "api", "image": "nova", "imageID": "", "restartCount": 0,
                    "ready": ready, "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}],
            },
        })
    }

    async fn expect(
        handle: &mut Handle<Request<Body>, Response<Body>>,
        method: &str,
        path: &str,
    ) -> (serde_json::Value, mock::SendResponse<Response<Body>>) {
        let (request, send) = tokio::time::timeout(Duration::from_secs(5), handle.next_request())
            .await
            .unwrap_or_else(|_| panic!("no {method} {path}"))
            .expect("the client is gone");
        assert_eq!(request.method().as_str(), method);
        let uri = request.uri().to_string();
        assert!(uri.starts_with(path), "{method} {uri}, expected {path}");
        let body = request.into_body().collect_bytes().await.unwrap();
        let body = if body.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&body).unwrap()
        };
        (body, send)
    }

    fn respond(send: mock::SendResponse<Response<Body>>, body: serde_json::Value) {
        send.send_response(
            Response::builder()
                .body(Body::from(serde_json::to_vec(&body).unwrap()))
                .unwrap(),
        );
    }

    const PODS: &str = "/api/v1/namespaces/ns/pods?&labelSelector=app%3Dnova";
    const STATUS: &str =
        "/apis/healthcheck.openstack.org/v1beta1/namespaces/ns/healthchecks/nova/status?";

    fn pod_list(pods: Vec<serde_json::Value>) -> serde_json::Value {
        json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": pods})
    }

    fn healthy(status: &serde_json::Value) -> (&str, &str) {
        let condition = status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == HEALTHY)
            .unwrap();
        (
            condition["status"].as_str().unwrap(),
            condition["reason"].as_str().unwrap(),
        )
    }

    #[tokio::test]
    async fn status_is_written_once_and_not_again_when_nothing_changed() {
        let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
        let reconciler = reconciler(Client::new(service, "default"));
        let server = tokio::spawn(async move {
            let (_, send) = expect(&mut handle, "GET", PODS).await;
            respond(send, pod_list(vec![pod(true)]));
            let (patch, send) = expect(&mut handle, "PATCH", STATUS).await;
            let status = patch["status"].clone();
            assert_eq!(healthy(&status), ("True", "ProbesPassing"));
            assert_eq!(
                (status["readyPods"].clone(), status["failingPods"].clone()),
                (json!(1), json!(0))
            );
            assert_eq!(status["probeRoles"], "liveness,readiness");
            respond(
                send,
                json!({"apiVersion": "healthcheck.openstack.org/v1beta1", "kind": "HealthCheck",
                "metadata": {"name": "nova", "namespace": "ns"}, "spec": serde_json::to_value(&health_check(None).spec).unwrap(), "status": status.clone()}),
            );
            // The second reconcile, with that status: pods listed, nothing written.
            let (_, send) = expect(&mut handle, "GET", PODS).await;
            respond(send, pod_list(vec![pod(true)]));
            let extra =
                tokio::time::timeout(Duration::from_millis(500), handle.next_request()).await;
            assert!(extra.is_err(), "an unchanged status is not written again");
            status
        });
        let action = reconcile(Arc::new(health_check(None)), Arc::clone(&reconciler))
            .await
            .unwrap();
        assert_eq!(action, Action::requeue(RESYNC));
        let previous = {
            let hc = health_check(None);
            let pods: Vec<Pod> = vec![serde_json::from_value(pod(true)).unwrap()];
            let metadata: Vec<_> = pods.iter().map(|p| p.metadata.clone()).collect();
            let hash = rendering("nova", &hc.spec, &reconciler.ctx.inject)
                .unwrap()
                .hash;
            desired_status(
                &hc,
                &observe(&hc, Some(&hash), &metadata),
                &probe_results("nova", &pods, &[]),
                None,
                None,
                Time(Timestamp::now()),
            )
        };
        let action = reconcile(
            Arc::new(health_check(Some(previous))),
            Arc::clone(&reconciler),
        )
        .await
        .unwrap();
        assert_eq!(action, Action::requeue(RESYNC));
        server.await.unwrap();
        assert_eq!(reconciler.ctx.metrics.status_writes.get(), 1);
    }

    /// What the apiserver answers a request the operator's RBAC does not allow.
    fn forbidden(send: mock::SendResponse<Response<Body>>, message: &str) {
        let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": message, "reason": "Forbidden", "code": 403});
        send.send_response(
            Response::builder()
                .status(403)
                .body(Body::from(serde_json::to_vec(&status).unwrap()))
                .unwrap(),
        );
    }

    /// The narrow install (no deploy/components/rollout-restart): the restart of a stale pod's
    /// StatefulSet is forbidden. The status says so once, with a Warning; the reconcile succeeds
    /// (no error requeue), and the next one tries the one request again and writes nothing.
    #[tokio::test]
    async fn a_forbidden_restart_is_reported_in_status_once_and_not_retried_as_an_error() {
        let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
        let reconciler = reconciler(Client::new(service, "default"));
        let restarting = |status| {
            let mut hc = health_check(status);
            hc.spec.rollout = Rollout::Restart;
            hc
        };
        let mut stale = pod(true);
        stale["metadata"]["annotations"][INJECTED_ANNOTATION] =
            json!({"api": {"healthCheck": "nova", "generation": 1, "hash": "old"}})
                .to_string()
                .into();
        stale["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1",
            "kind": "StatefulSet", "name": "nova", "uid": "sts-uid", "controller": true}]);
        const STATEFUL_SET: &str = "/apis/apps/v1/namespaces/ns/statefulsets/nova";
        let denied = r#"statefulsets.apps "nova" is forbidden: User "system:serviceaccount:healthcheck-operator:healthcheck-operator" cannot get resource "statefulsets" in API group "apps" in the namespace "ns""#;

        let pods = pod_list(vec![stale]);
        let first = tokio::spawn(async move {
            let (_, send) = expect(&mut handle, "GET", PODS).await;
            respond(send, pods.clone());
            let (_, send) = expect(&mut handle, "GET", STATEFUL_SET).await;
            forbidden(send, denied);
            let (patch, send) = expect(&mut handle, "PATCH", STATUS).await;
            let status = patch["status"].clone();
            let restart = status["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["type"] == RESTART_FORBIDDEN)
                .unwrap();
            assert_eq!(
                (restart["status"].as_str(), restart["reason"].as_str()),
                (Some("True"), Some("Forbidden"))
            );
            let message = restart["message"].as_str().unwrap();
            assert!(
                message.contains("kubectl apply -k deploy/overlays/rollout-restart")
                    && message.ends_with(&format!("; denied: read StatefulSet ns/nova: {denied}")),
                "{message}"
            );
            respond(
                send,
                json!({"apiVersion": "healthcheck.openstack.org/v1beta1", "kind": "HealthCheck",
                "metadata": {"name": "nova", "namespace": "ns"}, "spec": serde_json::to_value(&restarting(None).spec).unwrap(), "status": status.clone()}),
            );
            // News on a new object: the stale pods (Normal) and the forbidden restart (Warning).
            let mut events = Vec::new();
            for _ in 0..2 {
                let (event, send) = expect(
                    &mut handle,
                    "POST",
                    "/apis/events.k8s.io/v1/namespaces/ns/events?",
                )
                .await;
                events.push((event["reason"].clone(), event["type"].clone()));
                respond(send, event);
            }
            assert_eq!(
                events,
                [
                    (json!("StalePods"), json!("Normal")),
                    (json!("Forbidden"), json!("Warning"))
                ]
            );
            let extra =
                tokio::time::timeout(Duration::from_millis(500), handle.next_request()).await;
            assert!(extra.is_err(), "nothing else");
            (handle, pods, status)
        });
        let action = reconcile(Arc::new(restarting(None)), Arc::clone(&reconciler))
            .await
            .expect("a forbidden restart does not fail the reconcile");
        assert_eq!(action, Action::requeue(RESYNC));
        let (mut handle, pods, status) = first.await.unwrap();

        let second = tokio::spawn(async move {
            let (_, send) = expect(&mut handle, "GET", PODS).await;
            respond(send, pods);
            let (_, send) = expect(&mut handle, "GET", STATEFUL_SET).await;
            forbidden(send, denied);
            let extra =
                tokio::time::timeout(Duration::from_millis(500), handle.next_request()).await;
            assert!(extra.is_err(), "the same status is not written again");
        });
        let previous = serde_json::from_value(status).unwrap();
        let action = reconcile(
            Arc::new(restarting(Some(previous))),
            Arc::clone(&reconciler),
        )
        .await
        .unwrap();
        assert_eq!(action, Action::requeue(RESYNC));
        second.await.unwrap();
        let forbidden_count = reconciler
            .ctx
            .metrics
            .errors
            .get_or_create(&ErrorLabels {
                kind: "restart_forbidden".to_string(),
            })
            .get();
        assert_eq!(forbidden_count, 2, "one refusal per reconcile");
        assert_eq!(reconciler.ctx.metrics.status_writes.get(), 1);
    }

    #[tokio::test]
    async fn a_failing_probe_turns_healthy_false_with_the_kubelet_line_and_one_event() {
        let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
        let reconciler = reconciler(Client::new(service, "default"));
        // The kubelet's Event, as the watch delivered it.
        let event: KubeletEvent = serde_json::from_value(json!({
            "metadata": {"name": "nova-1.abc", "namespace": "ns"},
            "involvedObject": {"kind": "Pod", "namespace": "ns", "name": "nova-1", "uid": "pod-uid",
                               "fieldPath": "spec.containers{api}"},
            "reason": UNHEALTHY, "type": "Warning", "count": 3,
            "message": "Readiness probe failed: nova-api: GET http://127.0.0.1:8774/: 503 Service Unavailable (3ms)\n",
            "lastTimestamp": "2026-01-01T00:01:00Z",
        }))
        .unwrap();
        reconciler.unhealthy().handle(watcher::Event::Apply(event));
        let server = tokio::spawn(async move {
            let (_, send) = expect(&mut handle, "GET", PODS).await;
            respond(send, pod_list(vec![pod(false)]));
            let (patch, send) = expect(&mut handle, "PATCH", STATUS).await;
            let status = &patch["status"];
            assert_eq!(healthy(status), ("False", "ProbesFailing"));
            assert_eq!(status["failingPods"], 1);
            assert_eq!(
                status["lastProbeFailure"],
                json!({"pod": "nova-1", "container": "api", "probe": "readiness",
                       "message": "nova-api: GET http://127.0.0.1:8774/: 503 Service Unavailable (3ms)",
                       "time": "2026-01-01T00:01:00Z", "count": 3})
            );
            respond(
                send,
                json!({"apiVersion": "healthcheck.openstack.org/v1beta1", "kind": "HealthCheck",
                "metadata": {"name": "nova", "namespace": "ns"}, "spec": serde_json::to_value(&health_check(None).spec).unwrap(), "status": status.clone()}),
            );
            // Healthy False on a new object is news: one Warning Event.
            let (event, send) = expect(
                &mut handle,
                "POST",
                "/apis/events.k8s.io/v1/namespaces/ns/events?",
            )
            .await;
            assert_eq!(
                (event["reason"].as_str(), event["type"].as_str()),
                (Some("ProbesFailing"), Some("Warning"))
            );
            assert!(
                event["note"]
                    .as_str()
                    .unwrap()
                    .contains("nova-1/api readiness: nova-api: GET"),
                "{event}"
            );
            respond(send, event.clone());
            let extra =
                tokio::time::timeout(Duration::from_millis(500), handle.next_request()).await;
            assert!(extra.is_err(), "nothing else");
        });
        let action = reconcile(Arc::new(health_check(None)), Arc::clone(&reconciler))
            .await
            .unwrap();
        assert_eq!(
            action,
            Action::requeue(UNHEALTHY_RESYNC),
            "failing: back soon, not in a loop"
        );
        server.await.unwrap();
    }
}
