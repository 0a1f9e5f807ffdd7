//! The RBAC of `deploy/` as the real kube-apiserver enforces it (`kube-controlplane`: etcd,
//! kube-apiserver, kube-controller-manager; no kubelet). The controller reconciles in-process as
//! the operator's ServiceAccount (the admin impersonating it), bound by `deploy/base/rbac.yaml`
//! alone and then also by `deploy/components/rollout-restart/`.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use kube_controlplane::{ControlPlane, eventually};
use serde_json::{Value, json};

use healthcheck_operator::api::HealthCheck;
use healthcheck_operator::context::Context;
use healthcheck_operator::controller::{Reconciler, reconcile};
use healthcheck_operator::inject::{InjectConfig, rendering};
use healthcheck_operator::metrics::Metrics;
use healthcheck_operator::registration::INJECT_NAMESPACE_LABEL;
use healthcheck_operator::rollout::rollout_annotation;

/// Where `deploy/` binds its roles.
const OPERATOR: &str = "healthcheck-operator";
const SERVICE_ACCOUNT: &str = "system:serviceaccount:healthcheck-operator:healthcheck-operator";

fn kubectl(cp: &ControlPlane, args: &[&str]) {
    let output = cp
        .kubectl()
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .args(args)
        .output()
        .expect("run kubectl");
    assert!(
        output.status.success(),
        "kubectl {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A client that the apiserver authorizes as the operator's ServiceAccount.
async fn operator_client(cp: &ControlPlane) -> Client {
    let kubeconfig = Kubeconfig::read_from(cp.kubeconfig()).unwrap();
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    config.auth_info.impersonate = Some(SERVICE_ACCOUNT.to_string());
    Client::try_from(config).unwrap()
}

fn condition(health_check: &HealthCheck, type_: &str) -> Value {
    let status = serde_json::to_value(health_check.status.as_ref()).unwrap();
    status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == type_))
        .cloned()
        .unwrap_or(Value::Null)
}

/// Without the component a restart is refused: `RestartForbidden` says so with the apiserver's
/// words and a Warning Event, the reconcile still succeeds. Once the component's ClusterRole is
/// bound, the next reconcile restarts the Deployment and clears the condition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_restart_needs_the_component_and_says_so_until_granted() {
    let cp = kube_controlplane::shared();
    kubectl(
        cp,
        &["apply", "--server-side", "-f", "crds/healthcheck.yaml"],
    );
    cp.wait_crd_established("healthchecks.healthcheck.openstack.org")
        .unwrap();
    let admin = cp.client().await.unwrap();
    Api::<Namespace>::all(admin.clone())
        .patch(
            OPERATOR,
            &PatchParams::apply("rbac-test"),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": OPERATOR}})),
        )
        .await
        .unwrap();
    kubectl(
        cp,
        &["apply", "-n", OPERATOR, "-f", "deploy/base/rbac.yaml"],
    );

    let ns = cp.test_namespace().await.unwrap();
    Api::<Namespace>::all(admin.clone())
        .patch(
            &ns.name,
            &PatchParams::apply("rbac-test"),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns.name, "labels": {INJECT_NAMESPACE_LABEL: "enabled"}}})),
        )
        .await
        .unwrap();
    let health_checks = Api::<HealthCheck>::namespaced(admin.clone(), &ns.name);
    health_checks
        .patch(
            "nova",
            &PatchParams::apply("rbac-test"),
            &Patch::Apply(json!({
                "apiVersion": "healthcheck.openstack.org/v1beta1", "kind": "HealthCheck",
                "metadata": {"name": "nova"},
                "spec": {"selector": {"matchLabels": {"app": "nova"}}, "profile": "nova-api",
                         "probes": {"liveness": {}}, "rollout": "Restart"},
            })),
        )
        .await
        .unwrap();
    // No webhook runs here: its pod is admitted without probes, as while the operator is down.
    let deployments = Api::<Deployment>::namespaced(admin.clone(), &ns.name);
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "nova"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "nova"}},
                 "template": {"metadata": {"labels": {"app": "nova"}},
                              "spec": {"containers": [{"name": "api", "image": "nova-api:1"}]}}},
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let pods = Api::<Pod>::namespaced(admin.clone(), &ns.name);
    eventually("the Deployment's pod", || async {
        let list = pods.list(&ListParams::default()).await.ok()?;
        (!list.items.is_empty()).then_some(())
    })
    .await;

    let (_leader, leader_rx) = tokio::sync::watch::channel(true);
    let inject = InjectConfig {
        probe_image: "probe:rbac".to_string(),
    };
    let hash = rendering(
        "nova",
        &health_checks.get("nova").await.unwrap().spec,
        &inject,
    )
    .unwrap()
    .hash;
    let reconciler = Arc::new(Reconciler::new(Arc::new(Context::new(
        operator_client(cp).await,
        "rbac-test",
        Arc::new(Metrics::default()),
        leader_rx,
        inject,
    ))));
    let reconcile_once = || async {
        let health_check = health_checks.get("nova").await.unwrap();
        reconcile(Arc::new(health_check), Arc::clone(&reconciler))
            .await
            .expect("the reconcile succeeds")
    };

    reconcile_once().await;
    let forbidden = condition(
        &health_checks.get("nova").await.unwrap(),
        "RestartForbidden",
    );
    assert_eq!(
        (forbidden["status"].as_str(), forbidden["reason"].as_str()),
        (Some("True"), Some("Forbidden")),
        "{forbidden}"
    );
    let message = forbidden["message"].as_str().unwrap();
    assert!(
        message.contains("kubectl apply -k deploy/overlays/rollout-restart")
            && message.contains(&format!(
                r#"User "{SERVICE_ACCOUNT}" cannot get resource "replicasets""#
            )),
        "{message}"
    );
    let events = Api::<Event>::namespaced(admin.clone(), &ns.name)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(
        events
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("Forbidden")
                && e.type_.as_deref() == Some("Warning")
                && e.note
                    .as_deref()
                    .is_some_and(|n| n.contains("deploy/overlays/rollout-restart"))),
        "{:?}",
        events.items
    );
    let key = rollout_annotation("nova");
    let template_annotation = || async {
        let deployment = deployments.get("nova").await.unwrap();
        deployment
            .spec?
            .template
            .metadata?
            .annotations?
            .get(&key)
            .cloned()
    };
    assert_eq!(template_annotation().await, None, "nothing restarted");

    kubectl(
        cp,
        &[
            "apply",
            "-f",
            "deploy/components/rollout-restart/clusterrole.yaml",
            "-f",
            "deploy/components/rollout-restart/clusterrolebinding.yaml",
        ],
    );
    // RBAC reaches the apiserver's authorizer through its informers: a moment later.
    eventually("the Deployment restarted onto the probes", || async {
        reconcile_once().await;
        (template_annotation().await.as_deref() == Some(hash.as_str())).then_some(())
    })
    .await;
    let permitted = condition(
        &health_checks.get("nova").await.unwrap(),
        "RestartForbidden",
    );
    assert_eq!(
        (permitted["status"].as_str(), permitted["reason"].as_str()),
        (Some("False"), Some("NotForbidden")),
        "{permitted}"
    );
}
