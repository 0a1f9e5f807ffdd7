//! The committed CRDs must be exactly what the types generate.

use std::path::Path;

use healthcheck_operator::{CRD_PATH, DEPLOY_CRD_PATH, crd_yaml};

#[test]
fn committed_crds_match_the_types() {
    for relative in [CRD_PATH, DEPLOY_CRD_PATH] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(relative);
        let committed = std::fs::read_to_string(&path).expect("the CRD is committed");
        assert!(
            committed == crd_yaml().unwrap(),
            "{relative} is stale: regenerate it with `cargo run -p healthcheck-operator -- crdgen -o {relative}`"
        );
    }
}
