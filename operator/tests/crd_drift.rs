//! The committed CRD must be exactly what the types generate.

use std::path::Path;

use healthcheck_operator::{CRD_PATH, crd_yaml};

#[test]
fn committed_crd_matches_the_types() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(CRD_PATH);
    let committed = std::fs::read_to_string(&path).expect("crds/healthcheck.yaml is committed");
    assert!(
        committed == crd_yaml().unwrap(),
        "{CRD_PATH} is stale: regenerate it with `cargo run -p healthcheck-operator -- crdgen`"
    );
}
