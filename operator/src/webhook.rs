//! The mutating admission webhook: a thin axum shell around [`crate::inject::inject`], plus
//! the plain-HTTP health and metrics endpoints.
//!
//! Whatever goes wrong on our side, the pod is admitted unchanged: a missing probe beats a pod
//! that cannot be created.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use k8s_openapi::api::core::v1::Pod;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use tracing::{debug, info, warn};

use crate::error::Error;
use crate::index::SharedIndex;
use crate::inject::inject;
use crate::metrics::{AdmissionResult, Metrics};

/// Where the apiserver sends pod admissions.
pub const MUTATE_PATH: &str = "/mutate";

/// What the webhook and the health endpoints share.
pub struct Webhook {
    pub index: Arc<SharedIndex>,
    pub metrics: Arc<Metrics>,
}

/// `POST /mutate` (TLS port).
pub fn router(webhook: Arc<Webhook>) -> Router {
    Router::new()
        .route(MUTATE_PATH, post(mutate))
        .with_state(webhook)
}

/// `/healthz`, `/readyz` (200 once the HealthCheck cache is synced) and `/metrics` (plain HTTP).
pub fn health_router(webhook: Arc<Webhook>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .with_state(webhook)
}

async fn ready(State(webhook): State<Arc<Webhook>>) -> Response {
    if webhook.synced() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "HealthCheck cache not synced yet\n",
        )
            .into_response()
    }
}

async fn metrics(State(webhook): State<Arc<Webhook>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        webhook.metrics.encode(),
    )
        .into_response()
}

async fn mutate(State(webhook): State<Arc<Webhook>>, body: Bytes) -> Response {
    let started = Instant::now();
    let response = match webhook.admit(&body) {
        Ok(review) => axum::Json(review).into_response(),
        Err(err) => {
            warn!(%err, "unreadable admission review");
            webhook.metrics.error("unreadable_review");
            (StatusCode::BAD_REQUEST, err.to_string()).into_response()
        }
    };
    webhook
        .metrics
        .admission_seconds
        .observe(started.elapsed().as_secs_f64());
    response
}

impl Webhook {
    fn synced(&self) -> bool {
        self.index.read().is_synced()
    }

    /// The review's answer; `Err` only when the body is not an AdmissionReview at all (then
    /// there is no uid to answer, and the apiserver applies the failure policy).
    pub fn admit(&self, body: &[u8]) -> Result<AdmissionReview<DynamicObject>, Error> {
        let request: AdmissionRequest<Pod> =
            match serde_json::from_slice::<AdmissionReview<Pod>>(body)
                .map_err(|err| err.to_string())
                .and_then(|review| review.try_into().map_err(|_| "no request".to_string()))
            {
                Ok(request) => request,
                Err(why) => return self.admit_unreadable_pod(body, &why),
            };
        let (result, response) = self.decide(&request);
        self.metrics.admission(result, request.dry_run);
        Ok(response.into_review())
    }

    fn decide(&self, request: &AdmissionRequest<Pod>) -> (AdmissionResult, AdmissionResponse) {
        let mut response = AdmissionResponse::from(request);
        let pod = match &request.object {
            Some(pod) if request.operation == Operation::Create => pod,
            _ => return (AdmissionResult::Ignored, response),
        };
        let namespace = request.namespace.as_deref().unwrap_or_default();
        let health_checks = {
            let index = self.index.read();
            if !index.is_synced() {
                return (AdmissionResult::NotReady, response);
            }
            index.in_namespace(namespace)
        };
        let pod_name = pod
            .metadata
            .name
            .as_deref()
            .or(pod.metadata.generate_name.as_deref())
            .unwrap_or_default();
        let injection = inject(pod, &health_checks);
        for conflict in &injection.conflicts {
            self.metrics.conflicts.inc();
            info!(
                namespace,
                pod = pod_name,
                container = conflict.container,
                loser = conflict.loser,
                winner = conflict.winner,
                "HealthChecks conflict; the winner's probes are injected"
            );
        }
        for clash in &injection.port_clashes {
            self.metrics.conflicts.inc();
            warn!(
                namespace,
                pod = pod_name,
                health_check = clash.health_check,
                container = clash.container,
                port = clash.port,
                "the pod declares the HealthCheck's servePort; nothing injected from it"
            );
        }
        for (health_check, reason) in &injection.invalid {
            warn!(
                namespace,
                pod = pod_name,
                health_check,
                reason,
                "HealthCheck selects the pod but is invalid; nothing injected from it"
            );
        }
        let warnings: Vec<String> = injection
            .conflicts
            .iter()
            .map(|c| {
                format!(
                    "HealthCheck {} also selects container {}; {} wins",
                    c.loser, c.container, c.winner
                )
            })
            .chain(injection.port_clashes.iter().map(|clash| {
                format!(
                    "HealthCheck {}: container {} declares its servePort {}; nothing injected from it (choose another servePort)",
                    clash.health_check, clash.container, clash.port
                )
            }))
            .collect();
        if !warnings.is_empty() {
            response.warnings = Some(warnings);
        }
        if injection.patch.0.is_empty() {
            let result = if injection.record.is_empty() {
                AdmissionResult::Ignored
            } else {
                AdmissionResult::Unchanged
            };
            debug!(namespace, pod = pod_name, ?result, "admitted unchanged");
            return (result, response);
        }
        let record = injection.record.clone();
        match response.clone().with_patch(injection.patch) {
            Ok(patched) => {
                info!(namespace, pod = pod_name, dry_run = request.dry_run, record = ?record, "probes injected");
                (AdmissionResult::Injected, patched)
            }
            Err(err) => {
                warn!(namespace, pod = pod_name, %err, "cannot serialize the patch; admitting unchanged");
                (AdmissionResult::Error, response)
            }
        }
    }

    /// A review whose object is not a Pod we can read: admit it unchanged, and say so.
    fn admit_unreadable_pod(
        &self,
        body: &[u8],
        why: &str,
    ) -> Result<AdmissionReview<DynamicObject>, Error> {
        let review: AdmissionReview<DynamicObject> =
            serde_json::from_slice(body).map_err(|err| Error::Admission(err.to_string()))?;
        let request: AdmissionRequest<DynamicObject> = review
            .try_into()
            .map_err(|_| Error::Admission("the review has no request".to_string()))?;
        warn!(
            uid = request.uid,
            why, "cannot read the pod; admitting unchanged"
        );
        self.metrics
            .admission(AdmissionResult::Error, request.dry_run);
        Ok(AdmissionResponse::from(&request).into_review())
    }
}

/// Serves `router` over TLS until `handle` shuts it down; `config` can be reloaded meanwhile.
pub async fn serve_tls(
    address: SocketAddr,
    router: Router,
    config: axum_server::tls_rustls::RustlsConfig,
    handle: axum_server::Handle<SocketAddr>,
) -> Result<(), Error> {
    axum_server::bind_rustls(address, config)
        .handle(handle)
        .serve(router.into_make_service())
        .await
        .map_err(|source| Error::Serve { address, source })
}

/// Serves `router` over plain HTTP until `handle` shuts it down.
pub async fn serve_plain(
    address: SocketAddr,
    router: Router,
    handle: axum_server::Handle<SocketAddr>,
) -> Result<(), Error> {
    axum_server::bind(address)
        .handle(handle)
        .serve(router.into_make_service())
        .await
        .map_err(|source| Error::Serve { address, source })
}
