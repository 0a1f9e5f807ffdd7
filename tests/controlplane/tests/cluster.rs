//! Proves the harness against the real API: kubectl and kube-rs, CRD validation, the
//! Deployment → ReplicaSet → Pod chain and a mutating webhook called over TLS.

use std::convert::Infallible;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube_controlplane::certs::Ca;
use kube_controlplane::{eventually, namespace, shared};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const WIDGET_CRD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/widget-crd.yaml");

/// Runs a command, failing the test with its stderr unless it succeeds; returns stdout.
fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("running command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

#[tokio::test]
async fn kubectl_and_kube_rs_see_the_real_version() {
    let cp = shared();
    let version: serde_json::Value =
        serde_json::from_str(&run(cp.kubectl().args(["version", "-o", "json"]))).unwrap();
    let server = version["serverVersion"]["gitVersion"].as_str().unwrap();
    assert!(
        server.starts_with("v1.") && !server.contains("master"),
        "kube-apiserver reports {server}"
    );
    assert_eq!(version["clientVersion"]["gitVersion"], server);

    let client = cp.client().await.unwrap();
    let info = client.apiserver_version().await.unwrap();
    assert_eq!(info.git_version, server);
}

#[tokio::test]
async fn crd_applied_with_kubectl_is_established_and_validates() {
    let cp = shared();
    let ns = namespace().await;
    run(cp.kubectl().args(["apply", "-f", WIDGET_CRD]));
    cp.wait_crd_established("widgets.example.test").unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(ns.client.clone());
    let crd = crds.get("widgets.example.test").await.unwrap();
    let conditions = crd.status.unwrap().conditions.unwrap();
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    );

    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.test", "v1", "Widget"),
        "widgets",
    );
    let widgets: Api<DynamicObject> = Api::namespaced_with(ns.client.clone(), &ns.name, &ar);
    let good = DynamicObject::new("good", &ar).data(json!({"spec": {"replicas": 2}}));
    widgets.create(&PostParams::default(), &good).await.unwrap();

    let bad = DynamicObject::new("bad", &ar).data(json!({"spec": {"replicas": "many"}}));
    match widgets.create(&PostParams::default(), &bad).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{status:?}");
            assert!(
                status.message.contains("spec.replicas")
                    && status.message.contains("must be of type integer"),
                "unexpected message: {}",
                status.message
            );
        }
        other => panic!("schema violation was not rejected: {other:?}"),
    }

    // kubectl gets the same rejection from the apiserver.
    let mut kubectl = cp
        .kubectl()
        .args(["create", "-n", &ns.name, "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let manifest = json!({
        "apiVersion": "example.test/v1", "kind": "Widget",
        "metadata": {"name": "too-few"}, "spec": {"replicas": 0},
    });
    std::io::Write::write_all(
        kubectl.stdin.as_mut().unwrap(),
        manifest.to_string().as_bytes(),
    )
    .unwrap();
    let out = kubectl.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("spec.replicas") && stderr.contains("greater than or equal to 1"),
        "unexpected kubectl error: {stderr}"
    );
}

fn deployment(name: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                // Never pulled: there is no kubelet, pods stay Pending.
                "spec": {"containers": [{"name": "main", "image": "registry.invalid/none:1"}]},
            },
        },
    }))
    .unwrap()
}

#[tokio::test]
async fn deployment_creates_replicaset_and_pods() {
    let ns = namespace().await;
    let deployments: Api<Deployment> = Api::namespaced(ns.client.clone(), &ns.name);
    deployments
        .create(&PostParams::default(), &deployment("web"))
        .await
        .unwrap();

    let replicasets: Api<ReplicaSet> = Api::namespaced(ns.client.clone(), &ns.name);
    let rs = eventually("a ReplicaSet", || async {
        replicasets
            .list(&ListParams::default().labels("app=web"))
            .await
            .unwrap()
            .items
            .pop()
    })
    .await;
    let owner = &rs.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Deployment", "web")
    );

    let pods: Api<Pod> = Api::namespaced(ns.client.clone(), &ns.name);
    let pods = eventually("two pods", || async {
        let list = pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .unwrap();
        (list.items.len() == 2).then_some(list.items)
    })
    .await;
    for pod in pods {
        let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(owner.kind, "ReplicaSet");
        assert_eq!(Some(&owner.name), rs.metadata.name.as_ref());
        assert_eq!(pod.status.and_then(|s| s.phase).as_deref(), Some("Pending"));
    }
}

/// Labels every pod it is asked about with `webhook=called`, counting the calls.
async fn mutate(
    req: Request<Incoming>,
    calls: Arc<AtomicUsize>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let review: AdmissionReview<DynamicObject> = serde_json::from_slice(&body).unwrap();
    let request: AdmissionRequest<DynamicObject> = review.try_into().unwrap();
    calls.fetch_add(1, Ordering::SeqCst);
    let patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "add", "path": "/metadata/labels/webhook", "value": "called"}
    ]))
    .unwrap();
    let review = AdmissionResponse::from(&request)
        .with_patch(patch)
        .unwrap()
        .into_review();
    Ok(Response::new(Full::new(
        serde_json::to_vec(&review).unwrap().into(),
    )))
}

/// Serves `mutate` over TLS on a random loopback port; returns the port.
async fn start_webhook(ca: &Ca, calls: Arc<AtomicUsize>) -> u16 {
    let leaf = ca.issue_server(&["127.0.0.1", "localhost"]).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from_pem_slice(leaf.cert_pem.as_bytes()).unwrap()],
        PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap(),
    )
    .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let (acceptor, calls) = (acceptor.clone(), calls.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(move |req| mutate(req, calls.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    port
}

#[tokio::test]
async fn mutating_webhook_is_called_over_tls_for_pod_creation() {
    let ns = namespace().await;
    let ca = Ca::new("test-webhook-ca").unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let port = start_webhook(&ca, calls.clone()).await;

    let mut config: MutatingWebhookConfiguration = serde_json::from_value(json!({
        "metadata": {"name": format!("label-pods-{}", ns.name)},
        "webhooks": [{
            "name": "label-pods.example.test",
            "clientConfig": {"url": format!("https://127.0.0.1:{port}/mutate")},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
            // Only this test's namespace, so other tests' pods are left alone.
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns.name}},
            "failurePolicy": "Fail",
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 5,
        }],
    }))
    .unwrap();
    config.webhooks.as_mut().unwrap()[0].client_config.ca_bundle =
        Some(ByteString(ca.cert_pem().as_bytes().to_vec()));
    let configs: Api<MutatingWebhookConfiguration> = Api::all(ns.client.clone());
    configs
        .create(&PostParams::default(), &config)
        .await
        .unwrap();

    // The apiserver picks up webhook configurations through an informer: retry a dry run.
    let pods: Api<Pod> = Api::namespaced(ns.client.clone(), &ns.name);
    let probe: Pod = serde_json::from_value(json!({
        "metadata": {"name": "probe", "labels": {"app": "probe"}},
        "spec": {"containers": [{"name": "main", "image": "registry.invalid/none:1"}]},
    }))
    .unwrap();
    let dry_run = PostParams {
        dry_run: true,
        ..Default::default()
    };
    eventually("the webhook to take effect", || async {
        let pod = pods.create(&dry_run, &probe).await.unwrap();
        pod.metadata
            .labels
            .is_some_and(|l| l.get("webhook").map(String::as_str) == Some("called"))
            .then_some(())
    })
    .await;

    // Pods created by the ReplicaSet controller (generateName, no name) go through it too.
    let deployments: Api<Deployment> = Api::namespaced(ns.client.clone(), &ns.name);
    deployments
        .create(&PostParams::default(), &deployment("hooked"))
        .await
        .unwrap();
    eventually("labelled ReplicaSet pods", || async {
        let list = pods
            .list(&ListParams::default().labels("app=hooked,webhook=called"))
            .await
            .unwrap();
        (list.items.len() == 2).then_some(())
    })
    .await;
    assert!(calls.load(Ordering::SeqCst) >= 3);

    configs
        .delete(&config.metadata.name.unwrap(), &DeleteParams::default())
        .await
        .unwrap();
}
