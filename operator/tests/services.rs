//! Debian 12's real OpenStack services on the real node: the images `scripts/build-images
//! services` builds, run as `deploy/examples/openstack-services.yaml` has them, with the
//! HealthChecks of `deploy/samples/`. The operator injects the probes, the kubelet runs them, the
//! pods become Ready because they pass, and the HealthChecks report it; a hung keystone is
//! reported with the probe's own line, and recovers. redis also runs in HTTP mode with its
//! profile: the serve sidecar reads redis's config through the shared process namespace.

mod support;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ListParams, PostParams};
use kube_controlplane::eventually;
use kube_controlplane::image::project_archive;
use serde_json::{Value, json};

use healthcheck_operator::api::HealthCheck;
use support::{InjectedNamespace, is_ready};

/// The services of the example, each with the sample HealthCheck of its name.
const SERVICES: [&str; 7] = [
    "rabbitmq",
    "heat-engine",
    "keystone",
    "glance-api",
    "mariadb",
    "memcached",
    "redis",
];
const NAME_LABEL: &str = "app.kubernetes.io/name";
/// keystone bootstraps for a minute on an idle host and several on a loaded one; the samples'
/// start periods (5 min) allow for that, and so does this bound.
const HEALTHY_TIMEOUT: &str = "--timeout=600s";

/// `deploy/examples/signal-apache.sh SIGNAL` in the keystone container (as scripts/demo runs it).
fn signal_keystone(ns: &InjectedNamespace, signal: &str) {
    let script = include_str!("../../deploy/examples/signal-apache.sh");
    ns.kubectl(&[
        "exec",
        "deploy/keystone",
        "-c",
        "keystone",
        "--",
        "sh",
        "-c",
        script,
        "sh",
        signal,
    ]);
}

async fn health_check(ns: &InjectedNamespace, name: &str) -> Option<Value> {
    let api = Api::<HealthCheck>::namespaced(ns.client.clone(), &ns.name);
    serde_json::to_value(api.get(name).await.ok()?.status).ok()
}

/// What the namespace's pods, HealthChecks and Events say, for a failure message.
fn describe(ns: &InjectedNamespace) -> String {
    [
        &["get", "pods", "-o", "wide"][..],
        &["get", "healthchecks", "-o", "wide"],
        &["get", "events", "--sort-by=.lastTimestamp"],
    ]
    .iter()
    .map(|args| {
        ns.try_kubectl(args)
            .unwrap_or_else(|err| format!("{err:#}"))
    })
    .collect::<Vec<_>>()
    .join("\n")
}

fn condition<'a>(status: &'a Value, kind: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == kind))
        .unwrap_or(&Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debian_services_become_ready_behind_their_injected_probes_and_a_hung_keystone_is_reported()
{
    let cluster = support::cluster_with_operator().await;
    let archive = project_archive("services").unwrap_or_else(|e| panic!("{e:#}"));
    cluster.import_image(&archive).unwrap();
    let ns = InjectedNamespace::create(cluster).await;
    for service in SERVICES {
        ns.kubectl(&["apply", "-f", &format!("deploy/samples/{service}.yaml")]);
    }
    // The example's redis image has no probe of its own; keystone is probed every 10 s so that
    // its hang below shows within a minute instead of the sample's three.
    ns.kubectl(&[
        "patch",
        "healthcheck",
        "redis",
        "--type=merge",
        "-p",
        r#"{"spec":{"injectBinary":true}}"#,
    ]);
    ns.kubectl(&[
        "patch",
        "healthcheck",
        "keystone",
        "--type=merge",
        "-p",
        r#"{"spec":{"timing":{"interval":"10s","timeout":"10s"}}}"#,
    ]);
    for service in SERVICES {
        ns.wait_cached((NAME_LABEL, service)).await;
    }
    ns.kubectl(&["apply", "-f", "deploy/examples/openstack-services.yaml"]);

    // What a CI job waiting for a whole cloud runs.
    if let Err(err) = ns.try_kubectl(&[
        "wait",
        "--for=condition=Healthy",
        "healthcheck",
        "--all",
        HEALTHY_TIMEOUT,
    ]) {
        panic!("{err:#}\n{}", describe(&ns));
    }
    let pods = Api::<Pod>::namespaced(ns.client.clone(), &ns.name)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    for service in SERVICES {
        let pod = pods
            .iter()
            .find(|pod| pod.labels().get(NAME_LABEL).map(String::as_str) == Some(service))
            .unwrap_or_else(|| panic!("no pod of {service}"));
        assert!(is_ready(pod), "{service} is Healthy, so its pod is Ready");
        let container = &pod.spec.as_ref().unwrap().containers[0];
        assert!(
            container
                .liveness_probe
                .as_ref()
                .and_then(|p| p.exec.as_ref())
                .is_some(),
            "{service}: the injected exec liveness probe: {container:?}"
        );
        let status = health_check(&ns, service).await.unwrap();
        assert_eq!(status["readyPods"], 1, "{service}: {status:#}");
        assert_eq!(status["failingPods"], 0, "{service}: {status:#}");
    }
    let columns = ns.kubectl(&["get", "healthchecks", "-o", "wide"]);
    eprintln!("{columns}");
    for service in SERVICES {
        let row = columns
            .lines()
            .find(|line| line.starts_with(&format!("{service} ")))
            .unwrap_or_else(|| panic!("no row for {service}: {columns}"));
        assert!(row.contains("True"), "{service} Healthy: {row}");
    }

    signal_keystone(&ns, "STOP");
    let hung = eventually("keystone's HealthCheck to report the hang", || async {
        let status = health_check(&ns, "keystone").await?;
        (condition(&status, "Healthy")["status"] == "False").then_some(status)
    })
    .await;
    let failure = &hung["lastProbeFailure"];
    let message = failure["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(":5000"),
        "the probe's line names keystone's URL from its vhost: {hung:#}"
    );
    assert_eq!(failure["container"], "keystone", "{hung:#}");
    assert!(
        failure["probe"] == "readiness" || failure["probe"] == "liveness",
        "the newest failure is the hang's, not one from the bootstrap: {hung:#}"
    );
    assert_eq!(hung["readyPods"], 0, "{hung:#}");
    eprintln!("keystone hung: {message}");

    signal_keystone(&ns, "CONT");
    eventually("keystone's HealthCheck to recover", || async {
        let status = health_check(&ns, "keystone").await?;
        (condition(&status, "Healthy")["status"] == "True" && status["readyPods"] == 1)
            .then_some(())
    })
    .await;
    redis_in_http_mode_reads_its_config_through_the_shared_process_namespace(&ns).await;
}

/// HTTP mode with a profile, executed by the kubelet: the `healthcheck serve` sidecar reads
/// redis's own redis.conf through `/proc/PID/root` of the redis process (shareProcessNamespace)
/// and PINGs the address it gives. The pod states the uid and gid the image's `USER redis` has,
/// which the sidecar needs to read that process's root (docs/operator.md).
async fn redis_in_http_mode_reads_its_config_through_the_shared_process_namespace(
    ns: &InjectedNamespace,
) {
    let id = |flag: &str| {
        ns.kubectl(&["exec", "deploy/redis", "-c", "redis", "--", "id", flag])
            .trim()
            .parse::<i64>()
            .expect("a numeric id")
    };
    let (uid, gid) = (id("-u"), id("-g"));
    ns.apply_health_check(
        "redis-http",
        json!({
            "selector": {"matchLabels": {NAME_LABEL: "redis-http"}},
            "profile": "redis",
            "mode": "HTTP",
            "probes": {"liveness": {}, "readiness": {}},
            "timing": {"interval": "5s", "timeout": "5s"},
        }),
    )
    .await;
    ns.wait_cached((NAME_LABEL, "redis-http")).await;
    let deployment: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "redis-http"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {NAME_LABEL: "redis-http"}},
            "template": {
                "metadata": {"labels": {NAME_LABEL: "redis-http"}},
                "spec": {
                    "securityContext": {"runAsUser": uid, "runAsGroup": gid},
                    "containers": [{"name": "redis", "image": "localhost/openstack-healthcheck/redis:0.1.0"}],
                },
            },
        },
    }))
    .unwrap();
    Api::<Deployment>::namespaced(ns.client.clone(), &ns.name)
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    if let Err(err) = ns.try_kubectl(&[
        "wait",
        "--for=condition=Healthy",
        "healthcheck/redis-http",
        "--timeout=300s",
    ]) {
        panic!("{err:#}\n{}", describe(ns));
    }
    let pod = Api::<Pod>::namespaced(ns.client.clone(), &ns.name)
        .list(&ListParams::default().labels(&format!("{NAME_LABEL}=redis-http")))
        .await
        .unwrap()
        .items
        .remove(0);
    let spec = pod.spec.as_ref().unwrap();
    assert_eq!(spec.share_process_namespace, Some(true));
    let redis = spec.containers.iter().find(|c| c.name == "redis").unwrap();
    let readiness = redis
        .readiness_probe
        .as_ref()
        .and_then(|p| p.http_get.as_ref());
    assert_eq!(
        readiness.map(|get| get.path.as_deref()),
        Some(Some("/readyz")),
        "{redis:?}"
    );
    let mounts = redis.volume_mounts.as_deref().unwrap_or_default();
    assert!(
        mounts
            .iter()
            .any(|m| m.mount_path == "/run/openstack-healthcheck/service/redis-http"),
        "the service marker: {mounts:?}"
    );
    let sidecars: Vec<_> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(sidecars, ["healthcheck-serve-redis-http"], "{spec:?}");
    assert!(is_ready(&pod));
    // What the kubelet's httpGet got: the sidecar's line, from redis's own config (the probe
    // image has no /etc/redis/redis.conf).
    let readyz = ns.kubectl(&[
        "get",
        "--raw",
        &format!(
            "/api/v1/namespaces/{}/pods/{}:9180/proxy/readyz",
            ns.name,
            pod.name_any()
        ),
    ]);
    assert!(
        readyz.starts_with("readiness healthy: healthy: redis: "),
        "{readyz}"
    );
}
