//! AdmissionReview fixtures, shaped as the apiserver sends them.

use serde_json::{Value, json};

/// A file of `operator/tests/fixtures/`.
pub fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"))
}

/// `pod-create.json` (a nova-api pod in `openstack`) with its pod's container repeated to
/// `containers` and an annotation of `padding` bytes.
pub fn big_review(containers: usize, padding: usize) -> String {
    let mut review: Value = serde_json::from_str(&fixture("pod-create.json")).unwrap();
    let pod = &mut review["request"]["object"];
    let template = pod["spec"]["containers"][0].clone();
    pod["spec"]["containers"] = (0..containers)
        .map(|i| {
            let mut container = template.clone();
            container["name"] = json!(format!("c{i}"));
            container
        })
        .collect();
    pod["metadata"]["annotations"] = json!({ "padding": "x".repeat(padding) });
    review.to_string()
}
