//! The mutating admission webhook: a thin axum shell around [`crate::inject::inject`], plus
//! the plain-HTTP health and metrics endpoints.
//!
//! Whatever goes wrong on our side, the pod is admitted unchanged: a missing probe beats a pod
//! that cannot be created.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use serde::Deserialize;
use serde::de::IgnoredAny;
use tokio::sync::{Semaphore, SemaphorePermit};
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
/// The default bound on the reviews in work at once, their bodies being read included: see
/// [`ReviewRoom`]. Under `deploy/`'s 128 MiB limit it leaves room for the HealthCheck cache
/// (BENCHMARKS.md, "Webhook memory under concurrent reviews").
pub const DEFAULT_REVIEW_ROOM_BYTES: usize = 24 * 1024 * 1024;
/// The least room that still lets a review of any size be read.
pub const MIN_REVIEW_ROOM_BYTES: usize = MAX_BODY_BYTES;
/// How long a review waits for room before it is answered `503`, well within the webhook's
/// `timeoutSeconds: 5`; the `failurePolicy: Ignore` then admits the pod unchanged.
const ROOM_WAIT: Duration = Duration::from_secs(2);

/// What the webhook and the health endpoints share.
pub struct Webhook {
    pub index: Arc<SharedIndex>,
    pub metrics: Arc<Metrics>,
    room: ReviewRoom,
}

/// The memory of the reviews' bodies, read or being read, bounded together: a review takes room
/// for its body before reading it (as much as [`MAX_BODY_BYTES`] when it declares no length)
/// and keeps it until it is answered. Working on a review costs a few times its body and at most
/// [`MAX_CONTAINERS`] containers' injection, and only as many are worked on at once as the
/// runtime has workers. Counted in KiB, the semaphore's unit.
struct ReviewRoom {
    kib: Semaphore,
    capacity_kib: u32,
}

impl ReviewRoom {
    fn new(bytes: usize) -> Self {
        let capacity_kib = Self::kib(bytes).min(Semaphore::MAX_PERMITS as u32);
        ReviewRoom {
            kib: Semaphore::new(capacity_kib as usize),
            capacity_kib,
        }
    }

    fn kib(bytes: usize) -> u32 {
        u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX)
    }

    /// Room for `bytes` (all the room, at most, so that one review of any size can be worked
    /// on alone), waiting up to `wait`; `None` when none came free.
    async fn reserve(&self, bytes: usize, wait: Duration) -> Option<SemaphorePermit<'_>> {
        let kib = Self::kib(bytes).min(self.capacity_kib);
        tokio::time::timeout(wait, self.kib.acquire_many(kib))
            .await
            .ok()?
            .ok()
    }
}

impl Webhook {
    /// `room_bytes` bounds the memory of the reviews in work at once
    /// ([`DEFAULT_REVIEW_ROOM_BYTES`] unless the operator's limit says otherwise); less than
    /// [`MIN_REVIEW_ROOM_BYTES`] counts as that.
    pub fn new(index: Arc<SharedIndex>, metrics: Arc<Metrics>, room_bytes: usize) -> Self {
        Webhook {
            index,
            metrics,
            room: ReviewRoom::new(room_bytes.max(MIN_REVIEW_ROOM_BYTES)),
        }
    }
}

/// `POST /mutate` (TLS port).
pub fn router(webhook: Arc<Webhook>) -> Router {
    Router::new()
        .route(MUTATE_PATH, post(mutate))
        // The body is read by the handler, within its room and limit.
        .layer(DefaultBodyLimit::disable())
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

async fn mutate(State(webhook): State<Arc<Webhook>>, request: Request) -> Response {
    let started = Instant::now();
    let response = webhook.mutate(request).await;
    webhook
        .metrics
        .admission_seconds
        .observe(started.elapsed().as_secs_f64());
    response
}

impl Webhook {
    /// Reads the body within its room and limit, then answers it. A `413` or `503` here comes
    /// before any uid is known: the `failurePolicy: Ignore` admits the pod unchanged.
    async fn mutate(&self, request: Request) -> Response {
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|length| length.to_str().ok()?.parse::<usize>().ok());
        if let Some(bytes) = declared.filter(|bytes| *bytes > MAX_BODY_BYTES) {
            return self.refuse_too_large(bytes);
        }
        let body_bytes = declared.unwrap_or(MAX_BODY_BYTES);
        let Some(_room) = self.room.reserve(body_bytes, ROOM_WAIT).await else {
            warn!(
                bytes = body_bytes,
                wait = ?ROOM_WAIT,
                "no room for another review; answering 503, the failure policy admits the pod unchanged"
            );
            self.metrics.admission(AdmissionResult::Overloaded, false);
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "the webhook is at its bound on reviews in work\n",
            )
                .into_response();
        };
        let body = match Limited::new(request.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
        {
            Ok(body) => body.to_bytes(),
            // Over the limit without declaring it.
            Err(err) if err.is::<LengthLimitError>() => {
                return self.refuse_too_large(MAX_BODY_BYTES + 1);
            }
            Err(err) => {
                warn!(%err, "cannot read the review's body");
                self.metrics.error("unreadable_review");
                return (StatusCode::BAD_REQUEST, err.to_string()).into_response();
            }
        };
        match self.admit(&body) {
            Ok(review) => axum::Json(review).into_response(),
            Err(err) => {
                warn!(%err, "unreadable admission review");
                self.metrics.error("unreadable_review");
                (StatusCode::BAD_REQUEST, err.to_string()).into_response()
            }
        }
    }

    /// `at_least`: the body's declared length, or one more than the limit when it was cut off.
    fn refuse_too_large(&self, at_least: usize) -> Response {
        warn!(
            bytes = at_least,
            max_bytes = MAX_BODY_BYTES,
            "review body over the limit; answering 413, the failure policy admits the pod unchanged"
        );
        self.metrics.admission(AdmissionResult::TooLarge, false);
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "a review of {at_least} bytes or more is over the webhook's {MAX_BODY_BYTES}\n"
            ),
        )
            .into_response()
    }

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
