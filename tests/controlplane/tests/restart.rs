//! kube-apiserver can be stopped and restarted on the same etcd data mid-test. A test binary of
//! its own, because the restart would disturb tests sharing the control plane.

use std::collections::BTreeMap;
use std::time::Instant;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, PostParams};
use kube_controlplane::{namespace, shared};

#[tokio::test]
async fn apiserver_restarts_on_the_same_etcd_data() {
    let ns = namespace().await;
    let configmaps: Api<ConfigMap> = Api::namespaced(ns.client.clone(), &ns.name);
    let data = BTreeMap::from([("key".to_string(), "value".to_string())]);
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("survivor".into()),
            ..Default::default()
        },
        data: Some(data.clone()),
        ..Default::default()
    };
    configmaps
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();

    shared().stop_apiserver();
    assert!(
        configmaps.get("survivor").await.is_err(),
        "the API still answers with kube-apiserver stopped"
    );

    let started = Instant::now();
    shared().start_apiserver().await.unwrap();
    eprintln!(
        "kube-apiserver restarted in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    // The same client reconnects and the object survived in etcd.
    let cm = configmaps.get("survivor").await.unwrap();
    assert_eq!(cm.data, Some(data));
}
