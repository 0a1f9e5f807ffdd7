//! deploy/ builds with kustomize (kubectl's) into exactly the expected objects, with
//! least-privilege RBAC and a webhook that fails open.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo_path(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir)
}

/// `kubectl kustomize DIR` (relative to the repository root) as JSON objects.
fn build(dir: &str) -> Vec<Value> {
    build_path(&repo_path(dir))
}

fn build_path(path: &Path) -> Vec<Value> {
    let dir = path.display();
    let kubectl = kube_controlplane::binaries_dir()
        .expect("kubectl from the control plane build (tests/controlplane/build.sh)")
        .join("kubectl");
    let output = Command::new(&kubectl)
        .arg("kustomize")
        .arg(path)
        .output()
        .expect("run kubectl kustomize");
    assert!(
        output.status.success(),
        "kubectl kustomize {dir}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .split("\n---\n")
        .map(|document| serde_saphyr::from_str(document).expect("kustomize output is YAML"))
        .collect()
}

fn kinds(objects: &[Value]) -> BTreeSet<String> {
    objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap().to_string())
        .collect()
}

fn find<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    find_named(objects, kind, None)
}

/// The object of `kind`, and of that name when given.
fn find_named<'a>(objects: &'a [Value], kind: &str, name: Option<&str>) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && name.is_none_or(|name| o["metadata"]["name"] == name))
        .unwrap_or_else(|| panic!("no {kind} {name:?}"))
}

/// `group/resource` (just `resource` in the core group) → verbs, over every rule of a role.
fn verbs(role: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let mut verbs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for rule in role["rules"].as_array().unwrap() {
        for group in rule["apiGroups"].as_array().unwrap() {
            for resource in rule["resources"].as_array().unwrap() {
                let resource = resource.as_str().unwrap();
                let key = match group.as_str().unwrap() {
                    "" => resource.to_string(),
                    group => format!("{group}/{resource}"),
                };
                let entry = verbs.entry(key).or_default();
                for verb in rule["verbs"].as_array().unwrap() {
                    entry.insert(verb.as_str().unwrap().to_string());
                }
            }
        }
    }
    verbs
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn base_has_every_object_with_least_privilege() {
    let objects = build("deploy");
    assert_eq!(
        kinds(&objects),
        set(&[
            "ClusterRole",
            "ClusterRoleBinding",
            "CustomResourceDefinition",
            "Deployment",
            "MutatingWebhookConfiguration",
            "Namespace",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount",
        ])
    );
    let cluster = verbs(find(&objects, "ClusterRole"));
    let expected: BTreeMap<String, BTreeSet<String>> = [
        (
            "healthcheck.openstack.org/healthchecks",
            &["get", "list", "watch"][..],
        ),
        ("healthcheck.openstack.org/healthchecks/status", &["patch"]),
        ("pods", &["get", "list", "watch"]),
        ("namespaces", &["get"]),
        // The kubelet's probe failures (read), the operator's own Events (written).
        ("events", &["list", "watch"]),
        ("events.k8s.io/events", &["create", "patch"]),
        (
            "admissionregistration.k8s.io/mutatingwebhookconfigurations",
            &["patch"],
        ),
    ]
    .into_iter()
    .map(|(resource, verbs)| (resource.to_string(), set(verbs)))
    .collect();
    assert_eq!(cluster, expected);
    assert!(
        !cluster.keys().any(|resource| resource.starts_with("apps/")),
        "the base restarts no workloads: {cluster:?}"
    );
    let namespaced = verbs(find(&objects, "Role"));
    assert_eq!(namespaced["secrets"], set(&["create", "get", "update"]));
    assert_eq!(
        namespaced["coordination.k8s.io/leases"],
        set(&["create", "get", "update"])
    );
    assert_eq!(
        namespaced["discovery.k8s.io/endpointslices"],
        set(&["list"])
    );
    for object in &objects {
        let namespaced = !matches!(
            object["kind"].as_str().unwrap(),
            "ClusterRole"
                | "ClusterRoleBinding"
                | "CustomResourceDefinition"
                | "MutatingWebhookConfiguration"
                | "Namespace"
        );
        if namespaced {
            assert_eq!(
                object["metadata"]["namespace"], "healthcheck-operator",
                "{}",
                object["kind"]
            );
        }
    }

    let webhook = &find(&objects, "MutatingWebhookConfiguration")["webhooks"][0];
    assert_eq!(webhook["failurePolicy"], "Ignore");
    assert_eq!(webhook["sideEffects"], "None");
    assert!(webhook["timeoutSeconds"].as_i64().unwrap() <= 5);
    assert_eq!(
        webhook["clientConfig"]["service"]["namespace"],
        "healthcheck-operator"
    );
    let selector = webhook["namespaceSelector"]["matchExpressions"].to_string();
    for needle in [
        "healthcheck.openstack.org/inject",
        "enabled",
        "kube-system",
        "healthcheck-operator",
    ] {
        assert!(
            selector.contains(needle),
            "{needle} missing from {selector}"
        );
    }

    let deployment = find(&objects, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let container = &pod["containers"][0];
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(container["resources"]["limits"]["memory"].is_string());
}

#[test]
fn cert_manager_overlay_serves_its_certificate() {
    let objects = build("deploy/overlays/cert-manager");
    let kinds = kinds(&objects);
    assert!(
        kinds.contains("Certificate") && kinds.contains("Issuer"),
        "{kinds:?}"
    );
    let webhook = find(&objects, "MutatingWebhookConfiguration");
    assert_eq!(
        webhook["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        "healthcheck-operator/healthcheck-operator-webhook"
    );
    let container = &find(&objects, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    assert!(
        container["args"].to_string().contains("--tls-dir=/tls"),
        "{}",
        container["args"]
    );
}

/// The opt-in permissions of `rollout: Restart`: exactly the apps verbs the base leaves out, in a
/// ClusterRole of their own bound to the operator's ServiceAccount; the rest of the install is
/// the base's.
#[test]
fn rollout_restart_overlay_adds_exactly_the_restart_permissions() {
    const RESTART: &str = "healthcheck-operator-rollout-restart";
    let base = build("deploy");
    let objects = build("deploy/overlays/rollout-restart");
    let restart_role = |objects: &[Value]| verbs(find_named(objects, "ClusterRole", Some(RESTART)));
    let expected: BTreeMap<String, BTreeSet<String>> = [
        ("apps/replicasets", &["get"][..]),
        ("apps/deployments", &["get", "patch"]),
        ("apps/statefulsets", &["get", "patch"]),
        ("apps/daemonsets", &["get", "patch"]),
    ]
    .into_iter()
    .map(|(resource, verbs)| (resource.to_string(), set(verbs)))
    .collect();
    assert_eq!(restart_role(&objects), expected);
    let binding = find_named(&objects, "ClusterRoleBinding", Some(RESTART));
    assert_eq!(binding["roleRef"]["name"], RESTART);
    assert_eq!(
        binding["subjects"],
        serde_json::json!([{"kind": "ServiceAccount", "name": "healthcheck-operator",
                            "namespace": "healthcheck-operator"}])
    );
    let added: Vec<&Value> = objects.iter().filter(|o| !base.contains(o)).collect();
    assert_eq!(added.len(), 2, "only the role and its binding: {added:#?}");

    // The component goes with the cert-manager overlay too, as the docs show, in a
    // kustomization of the user's own (kustomize takes only relative roots).
    let combined = tempfile::tempdir().unwrap();
    let root = combined.path().canonicalize().unwrap();
    let relative = |dir: &str| {
        let up = "../".repeat(root.components().count() - 1);
        let target = repo_path(dir).canonicalize().unwrap();
        format!("{up}{}", target.strip_prefix("/").unwrap().display())
    };
    std::fs::write(
        root.join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [{}]\ncomponents: [{}]\n",
            relative("deploy/overlays/cert-manager"),
            relative("deploy/components/rollout-restart")
        ),
    )
    .unwrap();
    let combined = build_path(&root);
    assert_eq!(restart_role(&combined), expected);
    assert!(kinds(&combined).contains("Certificate"));
}
