//! The mutating admission webhook: a thin axum shell around [`crate::inject::inject`], plus
//! the plain-HTTP health and metrics endpoints.
//!
//! Whatever goes wrong on our side, the pod is admitted unchanged: a missing probe beats a pod
//! that cannot be created.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use serde::Deserialize;
use serde::de::IgnoredAny;
use tracing::{debug, info, warn};

use crate::error::Error;
use crate::index::SharedIndex;
use crate::inject::{MAX_ANNOTATIONS_BYTES, inject};
use crate::metrics::{AdmissionResult, Metrics};

/// Where the apiserver sends pod admissions.
pub const MUTATE_PATH: &str = "/mutate";

/// The largest review worked on: the apiserver's own default limit on an object (3 MiB).
pub const MAX_REVIEW_BYTES: usize = 3 * 1024 * 1024;
/// The most containers (init containers included) a reviewed pod may have. Each costs the
/// injection some 10 KB; real pods have a handful.
pub const MAX_CONTAINERS: usize = 256;
/// Bodies up to this are read, so that reviews over [`MAX_REVIEW_BYTES`] are still answered
/// (admitted unchanged) rather than refused by the HTTP layer.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// What the webhook and the health endpoints share.
pub struct Webhook {
    pub index: Arc<SharedIndex>,
    pub metrics: Arc<Metrics>,
}

/// `POST /mutate` (TLS port).
pub fn router(webhook: Arc<Webhook>) -> Router {
    Router::new()
        .route(MUTATE_PATH, post(mutate))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
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

async fn mutate(
    State(webhook): State<Arc<Webhook>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let body = match body {
        Ok(body) => body,
        // Not read, so there is no uid to answer: the apiserver's failurePolicy admits the pod
        // without probes. That must not pass unseen.
        Err(rejection) => {
            let too_large = rejection.status() == StatusCode::PAYLOAD_TOO_LARGE;
            warn!(
                %rejection,
                max_bytes = MAX_BODY_BYTES,
                "admission review not read; the pod is admitted without probes by the failurePolicy"
            );
            webhook.metrics.error(if too_large {
                "review_over_body_limit"
            } else {
                "unreadable_review"
            });
            return rejection.into_response();
        }
    };
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
        if let Some(oversized) = self.admit_oversized(body)? {
            return Ok(oversized);
        }
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
        if injection.annotations_full {
            warn!(
                namespace,
                pod = pod_name,
                max_bytes = MAX_ANNOTATIONS_BYTES,
                "the injected record would push the pod's annotations over the limit; admitting the pod unchanged"
            );
            return (AdmissionResult::AnnotationsFull, response);
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

    /// A review over the bounds, answered from its shape alone (no pod is built): admitted
    /// unchanged, counted as `TooLarge` and logged. `None` within the bounds, and for reviews
    /// whose shape cannot be read (the full reading reports those).
    fn admit_oversized(
        &self,
        body: &[u8],
    ) -> Result<Option<AdmissionReview<DynamicObject>>, Error> {
        let shape: Option<AdmissionRequest<PodShape>> =
            serde_json::from_slice::<AdmissionReview<PodShape>>(body)
                .ok()
                .and_then(|review| review.try_into().ok());
        let request = match shape {
            Some(request) => request,
            None if body.len() > MAX_REVIEW_BYTES => {
                return Err(Error::Admission(format!(
                    "an unreadable review of {} bytes",
                    body.len()
                )));
            }
            None => return Ok(None),
        };
        let containers = request.object.as_ref().map_or(0, PodShape::containers);
        if body.len() <= MAX_REVIEW_BYTES && containers <= MAX_CONTAINERS {
            return Ok(None);
        }
        let pod = request.object.as_ref().map(|pod| &pod.metadata);
        warn!(
            namespace = request.namespace.as_deref().unwrap_or_default(),
            pod = pod
                .and_then(|m| m.name.as_deref().or(m.generate_name.as_deref()))
                .unwrap_or_default(),
            bytes = body.len(),
            containers,
            max_bytes = MAX_REVIEW_BYTES,
            max_containers = MAX_CONTAINERS,
            "review over the webhook's bounds; admitting the pod unchanged"
        );
        self.metrics
            .admission(AdmissionResult::TooLarge, request.dry_run);
        Ok(Some(AdmissionResponse::from(&request).into_review()))
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

/// A pod as far as the bounds need it: its metadata and how many containers it has (counted
/// without reading them).
#[derive(Clone, Debug, Deserialize)]
struct PodShape {
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: PodSpecShape,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodSpecShape {
    #[serde(default)]
    containers: Vec<IgnoredAny>,
    #[serde(default)]
    init_containers: Vec<IgnoredAny>,
    #[serde(default)]
    ephemeral_containers: Vec<IgnoredAny>,
}

impl PodShape {
    fn containers(&self) -> usize {
        let spec = &self.spec;
        spec.containers.len() + spec.init_containers.len() + spec.ephemeral_containers.len()
    }
}

impl Resource for PodShape {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(dt: &()) -> Cow<'_, str> {
        Pod::kind(dt)
    }

    fn group(dt: &()) -> Cow<'_, str> {
        Pod::group(dt)
    }

    fn version(dt: &()) -> Cow<'_, str> {
        Pod::version(dt)
    }

    fn plural(dt: &()) -> Cow<'_, str> {
        Pod::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
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
