//! Every validation rule, through both of its implementations: the CRD's CEL rules (evaluated
//! client-side with kube's CEL engine against the generated schema, as the apiserver would) and
//! the Rust validation the offline CLI uses. Both must reject the same input with the same message.

use healthcheck_operator::api::HealthCheck;
use healthcheck_operator::{Error, rules};
use kube::CustomResourceExt;
use kube::core::cel::{
    CompiledSchema, ScopeContext, Validator, analyze_rule, compile_schema, estimate_rule_cost,
};
use serde_json::Value;

const VALID: &str = r#"
selector: { matchLabels: { app.kubernetes.io/name: nova-api } }
check: { http: { url: "http://127.0.0.1:8774/" } }
probes: { liveness: {}, readiness: {} }
"#;

fn object(spec_yaml: &str) -> Value {
    let spec: Value = serde_saphyr::from_str(spec_yaml).expect("fixture is YAML");
    serde_json::json!({
        "apiVersion": "healthcheck.openstack.org/v1beta1",
        "kind": "HealthCheck",
        "metadata": { "name": "fixture", "namespace": "default" },
        "spec": spec,
    })
}

thread_local! {
    /// The CRD's schema with its CEL rules compiled once per test thread.
    static COMPILED: CompiledSchema = {
        let crd = HealthCheck::crd();
        let schema = crd.spec.versions[0]
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .unwrap();
        compile_schema(&serde_json::to_value(schema).unwrap())
    };
}

/// The messages of the CEL rules that fail, as the apiserver would report them.
fn cel_messages(object: &Value) -> Vec<String> {
    COMPILED.with(
        |compiled| match Validator::new().validate_compiled(compiled, object, None) {
            Ok(()) => Vec::new(),
            Err(errors) => errors.into_vec().into_iter().map(|e| e.message).collect(),
        },
    )
}

/// The CLI's verdict: serde errors (malformed input) or the Rust rules.
fn rust_verdict(object: &Value) -> Result<(), String> {
    let hc: HealthCheck = serde_json::from_value(object.clone()).map_err(|e| e.to_string())?;
    rules::validate(&hc.spec).map_err(|e| match e {
        Error::InvalidSpec { message, .. } => message,
        other => other.to_string(),
    })
}

#[test]
fn valid_specs_pass_both() {
    for spec in [
        VALID,
        r#"
selector: { matchExpressions: [{ key: app, operator: In, values: [nova-conductor] }] }
profile: nova-conductor
profileArgs: ["5672"]
probes: { liveness: { timing: { interval: 1m, terminationGracePeriodSeconds: 10 } } }
timing: { interval: 1m30s, timeout: 24h, startPeriod: 2m, startInterval: 500ms, retries: 5, timeoutSeconds: 86400 }
"#,
        r#"
selector: { matchLabels: { app: cinder-volume } }
check:
  allOf:
    - port: { process: cinder-volume, ports: [5671, 5672] }
    - tcp: { address: "[fd00::1]:3306" }
    - file: { path: /var/lib/x, maxAgeSeconds: 60 }
probes:
  readiness: { timing: { successThreshold: 2 } }
  liveness: { check: { process: { pattern: cinder-volume } } }
timing: { startPeriod: 0s }
"#,
        r#"
selector: { matchLabels: { app: keystone } }
check: { http: { url: "HTTPS://keystone:5000/v3?x=1", headers: ["Host: keystone", "X-Empty:"], expectStatus: [], tls: { verify: false } } }
probes: { readiness: {}, startup: { check: { tcp: { address: "keystone:5000" } } } }
mode: Native
"#,
        r#"
selector:
  matchExpressions:
    - { key: tier, operator: Exists }
    - { key: canary, operator: DoesNotExist, values: [] }
    - { key: app, operator: NotIn, values: [nova-api] }
profile: nova-conductor
probes: { liveness: {} }
"#,
        r#"
selector: { matchLabels: { app: glance } }
profile: glance-api
probes: { readiness: {} }
mode: HTTP
servePort: 8080
existingProbes: Replace
"#,
    ] {
        let object = object(spec);
        assert_eq!(cel_messages(&object), Vec::<String>::new(), "{spec}");
        assert_eq!(rust_verdict(&object), Ok(()), "{spec}");
    }
}

/// (spec, message): the message both implementations give.
const REJECTED_BY_CEL_AND_RUST: &[(&str, &str)] = &[
    (
        r#"
selector: { matchLabels: { app: a } }
probes: { liveness: {} }
"#,
        "set exactly one of profile and check",
    ),
    (
        r#"
selector: { matchLabels: { app: a } }
profile: nova-api
check: { process: { pattern: x } }
probes: { liveness: {} }
"#,
        "set exactly one of profile and check",
    ),
    (
        r#"
selector: { matchLabels: { app: a } }
check: { process: { pattern: x } }
profileArgs: ["5672"]
probes: { liveness: {} }
"#,
        "profileArgs needs profile",
    ),
    (
        r#"
selector: {}
profile: nova-api
probes: { liveness: {} }
"#,
        "selector must not be empty: an empty selector matches every pod in the namespace",
    ),
    (
        r#"
selector: { matchLabels: {} }
profile: nova-api
probes: { liveness: {} }
"#,
        "selector must not be empty: an empty selector matches every pod in the namespace",
    ),
    (
        r#"
selector: { matchExpressions: [{ key: app, operator: Exists, values: [nova] }] }
profile: nova-api
probes: { liveness: {} }
"#,
        "operator must be In or NotIn with one or more values, or Exists or DoesNotExist without values",
    ),
    (
        r#"
selector: { matchLabels: { app: a }, matchExpressions: [{ key: app, operator: Bogus }] }
profile: nova-api
probes: { liveness: {} }
"#,
        "operator must be In or NotIn with one or more values, or Exists or DoesNotExist without values",
    ),
    (
        r#"
selector: { matchExpressions: [{ key: tier, operator: Exists }, { key: app, operator: In, values: [] }] }
profile: nova-api
probes: { liveness: {} }
"#,
        "operator must be In or NotIn with one or more values, or Exists or DoesNotExist without values",
    ),
    (
        r#"
selector: { matchExpressions: [{ key: app, operator: NotIn }] }
profile: nova-api
probes: { liveness: {} }
"#,
        "operator must be In or NotIn with one or more values, or Exists or DoesNotExist without values",
    ),
    (
        r#"
selector: { matchLabels: { app: a } }
profile: nova-api
probes: {}
"#,
        "name at least one probe: liveness, readiness or startup",
    ),
    (
        r#"
selector: { matchLabels: { app: a } }
check: {}
probes: { liveness: {} }
"#,
        "set exactly one of http, tcp, port, listen, socket, file, process, command (or allOf, not nested)",
    ),
    (
        r#"
selector: { matchLabels: { app: a } }
check: { process: { pattern: x }, tcp: { address: "h:1" } }
probes: { liveness: {} }
"#,
        "set exactly one of http, tcp, port, listen, socket, file, process, command (or allOf, not nested)",
    ),
    (
        r#"
selector: { matchLabels: { app: a } }
check: { allOf: [ { process: { pattern: x }, file: { path: /f, maxAgeSeconds: 1 } } ] }
probes: { liveness: {} }
"#,
        "set exactly one of http, tcp, port, listen, socket, file, process, command (or allOf, not nested)",
    ),
    (
        r#"
selector: { matchLabels: { app: a } }
check: { tcp: { address: "rabbit" } }
probes: { liveness: {} }
"#,
        "address must be HOST:PORT with a port from 1 to 65535 (IPv6 in brackets, e.g. [::1]:5672)",
    ),
    (
        r#"
selector: { matchLabels: { app: a } }
check: { tcp: { address: "rabbit:70000" } }
probes: { liveness: {} }
"#,
        "address must be HOST:PORT with a port from 1 to 65535 (IPv6 in brackets, e.g. [::1]:5672)",
    ),
    (
        r#"
selector: { matchLabels: { app: a } }
check: { tcp: { address: "[:::::]:80" } }
probes: { liveness: {} }
"#,
        "address must be HOST:PORT with a port from 1 to 65535 (IPv6 in brackets, e.g. [::1]:5672)",
    ),
    (
        r#"
selector: { matchLabels: { app: a } }
check: { tcp: { address: "[127.0.0.1]:80" } }
probes: { liveness: {} }
"#,
        "address must be HOST:PORT with a port from 1 to 65535 (IPv6 in brackets, e.g. [::1]:5672)",
    ),
    (
        r#"
selector: { matchLabels: { app: a } }
check: { tcp: { address: "fd00::1:5672" } }
probes: { liveness: {} }
"#,
        "address must be HOST:PORT with a port from 1 to 65535 (IPv6 in brackets, e.g. [::1]:5672)",
    ),
    (
        r#"
selector: { matchLabels: { app: a } }
check: { http: { url: "http://nova api:8774/" } }
probes: { liveness: {} }
"#,
        "url must start with http:// or https:// and a host, without spaces or control characters",
    ),
    (
        r#"
selector: { matchLabels: { app: a } }
check: { http: { url: "" } }
probes: { liveness: {} }
"#,
        "url must start with http:// or https:// and a host, without spaces or control characters",
    ),
    (
        r#"
selector: { matchLabels: { app: a } }
check: { http: { url: "ftp://h/" } }
probes: { liveness: {} }
"#,
        "url must start with http:// or https:// and a host, without spaces or control characters",
    ),
    (
        r#"
selector: { matchLabels: { app: a } }
check: { allOf: [ { http: { url: "http:///x" } } ] }
probes: { liveness: {} }
"#,
        "url must start with http:// or https:// and a host, without spaces or control characters",
    ),
    (
        r#"
selector: { matchLabels: { app: a } }
check: { http: { url: "http://h/", headers: ["X-Ok: 1", "X: a\r\nInjected: 1"] } }
probes: { liveness: {} }
"#,
        "header must be `Name: value` with a token name and no line break",
    ),
    (
        r#"
selector: { matchLabels: { app: a } }
check: { http: { url: "http://h/", headers: ["no colon"] } }
probes: { liveness: {} }
"#,
        "header must be `Name: value` with a token name and no line break",
    ),
    (
        r#"
selector: { matchLabels: { app: a } }
check: { process: { pattern: "" } }
probes: { liveness: {} }
"#,
        "the process pattern must not be empty (it would match every process) and at most 1024 bytes",
    ),
    (
        r#"
selector: { matchLabels: { app: a } }
check: { port: { process: "", ports: [5672] } }
probes: { liveness: {} }
"#,
        "the process pattern must not be empty (it would match every process) and at most 1024 bytes",
    ),
    (
        r#"
selector: { matchLabels: { app: a } }
check: { tcp: { address: "h:1" } }
probes: { liveness: { check: { socket: { process: "", path: /run/x.sock } } } }
"#,
        "the process pattern must not be empty (it would match every process) and at most 1024 bytes",
    ),
    (
        r#"
selector: { matchLabels: { app: a } }
profile: nova-api
probes: { liveness: {} }
timing: { timeout: 30h }
"#,
        "must be at most 86400s, the longest timeout the probe takes",
    ),
    (
        r#"
selector: { matchLabels: { app: a } }
profile: nova-api
probes: { readiness: { timing: { timeout: 86401s } } }
"#,
        "must be at most 86400s, the longest timeout the probe takes",
    ),
    (
        r#"
selector: { matchLabels: { app: a } }
profile: nova-api
probes: { liveness: { timing: { successThreshold: 2 } } }
"#,
        "successThreshold must be 1 for liveness and startup probes",
    ),
    (
        r#"
selector: { matchLabels: { app: a } }
profile: nova-api
probes: { startup: { timing: { successThreshold: 3 } } }
"#,
        "successThreshold must be 1 for liveness and startup probes",
    ),
    (
        r#"
selector: { matchLabels: { app: a } }
profile: nova-api
probes: { readiness: { timing: { terminationGracePeriodSeconds: 5 } } }
"#,
        "terminationGracePeriodSeconds must not be set on the readiness probe",
    ),
    (
        r#"
selector: { matchLabels: { app: a } }
profile: nova-api
probes: { liveness: {}, readiness: {} }
timing: { successThreshold: 2 }
"#,
        "timing.successThreshold must be 1 when a liveness or startup probe is injected; set it under probes.readiness.timing",
    ),
    (
        r#"
selector: { matchLabels: { app: a } }
profile: nova-api
probes: { liveness: {}, readiness: {} }
timing: { terminationGracePeriodSeconds: 5 }
"#,
        "timing.terminationGracePeriodSeconds is not allowed when a readiness probe is injected; set it under probes.liveness.timing or probes.startup.timing",
    ),
    (
        r#"
selector: { matchLabels: { app: a } }
profile: nova-api
probes: { liveness: {} }
timing: { interval: 0s }
"#,
        "must be longer than 0s",
    ),
    (
        r#"
selector: { matchLabels: { app: a } }
profile: nova-api
probes: { liveness: { timing: { startInterval: 0ms } } }
"#,
        "must be longer than 0s",
    ),
    (
        r#"
selector: { matchLabels: { app: a } }
profile: nova-api
probes: { liveness: {} }
mode: Native
"#,
        "mode Native needs a single http check (GET, no expectStatus, user, bodyRegex or TLS options) or tcp check for every probe; use mode Exec or HTTP for profiles and other checks",
    ),
    (
        r#"
selector: { matchLabels: { app: a } }
check: { http: { url: "http://h/", expectStatus: [200] } }
probes: { liveness: {} }
mode: Native
"#,
        "mode Native needs a single http check (GET, no expectStatus, user, bodyRegex or TLS options) or tcp check for every probe; use mode Exec or HTTP for profiles and other checks",
    ),
    (
        r#"
selector: { matchLabels: { app: a } }
check: { tcp: { address: "h:1" } }
probes: { liveness: { check: { process: { pattern: x } } } }
mode: Native
"#,
        "mode Native needs a single http check (GET, no expectStatus, user, bodyRegex or TLS options) or tcp check for every probe; use mode Exec or HTTP for profiles and other checks",
    ),
    (
        r#"
selector: { matchLabels: { app: a } }
check: { http: { url: "https://h/", tls: { caFile: /ca.pem } } }
probes: { readiness: {} }
mode: Native
"#,
        "mode Native needs a single http check (GET, no expectStatus, user, bodyRegex or TLS options) or tcp check for every probe; use mode Exec or HTTP for profiles and other checks",
    ),
];

#[test]
fn invalid_specs_are_rejected_by_both_with_the_same_message() {
    for (spec, message) in REJECTED_BY_CEL_AND_RUST {
        let object = object(spec);
        assert_eq!(cel_messages(&object), [*message], "CEL on {spec}");
        assert_eq!(
            rust_verdict(&object),
            Err(message.to_string()),
            "Rust on {spec}"
        );
    }
}

/// Patterns at and just over the probe's limit, which counts bytes: (spec, the message both
/// implementations give, `None` when accepted). Multi-byte characters show the count is bytes.
/// (An ASCII `bodyRegex` over it fails the schema's maxLength first: see [`schema_limits`].)
fn pattern_limits() -> Vec<(String, Option<String>)> {
    let limit = healthcheck_spec::limits::MAX_PATTERN_BYTES;
    let spec = |check: String| {
        format!(
            "{{ selector: {{ matchLabels: {{ a: b }} }}, check: {{ {check} }}, probes: {{ liveness: {{}} }} }}"
        )
    };
    let process = |pattern: &str| spec(format!("process: {{ pattern: {pattern:?} }}"));
    let body_regex = |regex: &str| {
        spec(format!(
            "http: {{ url: \"http://h/\", bodyRegex: {regex:?} }}"
        ))
    };
    let process_message = Some(format!(
        "the process pattern must not be empty (it would match every process) and at most {limit} bytes"
    ));
    let body_regex_message = Some(format!(
        "bodyRegex must be at most {limit} bytes, the longest pattern the probe takes"
    ));
    let at_limit = "a".repeat(limit);
    // Fewer characters than the limit, more bytes.
    let multi_byte = "€".repeat(limit / 3 + 1);
    vec![
        (process(&at_limit), None),
        (process(&"a".repeat(limit + 1)), process_message.clone()),
        (process(&multi_byte), process_message),
        (body_regex(&at_limit), None),
        (body_regex(&multi_byte), body_regex_message),
    ]
}

#[test]
fn patterns_over_the_probes_limit_in_bytes_are_rejected_by_both() {
    for (spec, message) in pattern_limits() {
        let object = object(&spec);
        let expected: Vec<String> = message.into_iter().collect();
        assert_eq!(
            cel_messages(&object),
            expected,
            "CEL on a {}-byte spec",
            spec.len()
        );
        assert_eq!(
            rust_verdict(&object).err(),
            expected.first().cloned(),
            "Rust on a {}-byte spec",
            spec.len()
        );
    }
}

#[test]
fn malformed_durations_are_rejected_by_both() {
    for duration in ["30", "5 s", "1d", "-1s", "1.s"] {
        let object = object(&format!(
            "{{ selector: {{ matchLabels: {{ a: b }} }}, profile: nova-api, probes: {{ liveness: {{}} }}, timing: {{ timeout: {duration:?} }} }}"
        ));
        assert_eq!(
            cel_messages(&object),
            ["must be a duration such as 30s, 1m30s or 500ms"],
            "{duration}"
        );
        let err = rust_verdict(&object).unwrap_err();
        assert!(
            err.contains(&format!(
                "invalid duration {duration:?}: must be a duration such as 30s, 1m30s or 500ms"
            )),
            "{err}"
        );
    }
}

/// Rules the apiserver enforces through the OpenAPI schema (enum, minimum), not CEL.
#[test]
fn schema_rules_have_rust_twins() {
    for (spec, message) in [
        (
            "{ selector: { matchLabels: { a: b } }, profile: nova-apy, probes: { liveness: {} } }",
            "unknown profile \"nova-apy\"; the built-in profiles are: aodh-api,",
        ),
        (
            "{ selector: { matchLabels: { a: b } }, profile: nova-api, probes: { liveness: {} }, timing: { retries: 0 } }",
            "should be greater than or equal to 1",
        ),
        (
            "{ selector: { matchLabels: { a: b } }, check: { port: { process: p, ports: [0] } }, probes: { liveness: {} } }",
            "list one or more ports from 1 to 65535",
        ),
        (
            "{ selector: { matchLabels: { a: b } }, check: { port: { process: p, ports: [] } }, probes: { liveness: {} } }",
            "list one or more ports from 1 to 65535",
        ),
        (
            "{ selector: { matchLabels: { a: b } }, profile: nova-api, probes: { liveness: {} }, mode: exec }",
            "unknown variant `exec`, expected one of `Exec`, `HTTP`, `Native`",
        ),
        (
            "{ selector: { matchLabels: { a: b } }, profile: nova-api, probes: { liveness: {} }, interval: 5s }",
            "unknown field `interval`",
        ),
    ] {
        let err = rust_verdict(&object(spec)).unwrap_err();
        assert!(err.contains(message), "{spec}: {err}");
    }
}

#[test]
fn schema_lists_exactly_the_built_in_profiles() {
    let crd = serde_json::to_value(HealthCheck::crd()).unwrap();
    let profile = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["profile"];
    assert_eq!(
        profile["enum"],
        serde_json::json!(healthcheck_spec::PROFILES)
    );
}

#[test]
fn short_names_avoid_kuberhealthy() {
    let names = HealthCheck::crd().spec.names;
    let short_names = names.short_names.unwrap_or_default();
    for taken in ["hc", "healthcheck", "healthchecks"] {
        assert!(!short_names.iter().any(|n| n == taken), "{taken}");
    }
    assert_eq!(HealthCheck::crd().spec.group, "healthcheck.openstack.org");
}

#[test]
fn samples_cover_every_profile_and_pass_both() {
    let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/samples");
    for profile in healthcheck_spec::PROFILES {
        let path = samples.join(format!("{profile}.yaml"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("{path:?} exists"));
        let health_check = healthcheck_operator::parse_health_check(&text, profile).unwrap();
        assert_eq!(health_check.spec.profile.as_deref(), Some(*profile));
        assert_eq!(health_check.metadata.name.as_deref(), Some(*profile));
        let object: Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(cel_messages(&object), Vec::<String>::new(), "{profile}");
    }
    let count = std::fs::read_dir(&samples).unwrap().count();
    assert_eq!(
        count,
        healthcheck_spec::PROFILES.len(),
        "one sample per profile, no strays"
    );
}

/// Every schema node with CEL rules, depth first.
fn nodes_with_rules<'a>(node: &'a Value, found: &mut Vec<&'a Value>) {
    if node.get("x-kubernetes-validations").is_some() {
        found.push(node);
    }
    for children in [&node["properties"], &node["additionalProperties"]] {
        if let Some(children) = children.as_object() {
            children
                .values()
                .for_each(|child| nodes_with_rules(child, found));
        }
    }
    if node.get("items").is_some() {
        nodes_with_rules(&node["items"], found);
    }
}

/// The static checks the apiserver makes when the CRD is created: rules compile, use only
/// variables in scope, and stay within the cost budget on bounded input.
#[test]
fn every_rule_compiles_in_scope_and_within_budget() {
    let crd = serde_json::to_value(HealthCheck::crd()).unwrap();
    let root = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let mut nodes = Vec::new();
    nodes_with_rules(root, &mut nodes);
    assert!(nodes.len() > 10, "found {} nodes with rules", nodes.len());
    for node in nodes {
        let compiled = compile_schema(node);
        assert!(
            !compiled.has_errors(),
            "{:?}",
            compiled.compilation_errors()
        );
        for rule in node["x-kubernetes-validations"].as_array().unwrap() {
            let rule = rule["rule"].as_str().unwrap();
            let mut warnings = analyze_rule(rule, &compiled, ScopeContext::CrdValidation);
            warnings.extend(estimate_rule_cost(rule, &compiled));
            assert!(warnings.is_empty(), "{rule}: {warnings:?}");
        }
    }
}

/// `kubectl ARGS` with `input` on standard input.
fn kubectl(args: &[&str], input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = kube_controlplane::shared()
        .kubectl()
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl from the local control plane");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// The same fixtures against a real apiserver (server-side dry run, nothing is stored): the
/// CEL rules are the apiserver's own verdicts, with the same messages.
#[test]
fn apiserver_agrees() {
    let crd = healthcheck_operator::crd_yaml().unwrap();
    let applied = kubectl(&["apply", "--server-side", "-f", "-"], &crd);
    assert!(applied.status.success(), "{applied:?}");
    kube_controlplane::shared()
        .wait_crd_established("healthchecks.healthcheck.openstack.org")
        .unwrap();
    let create = |spec: &str| {
        kubectl(
            &["create", "--dry-run=server", "-f", "-"],
            &object(spec).to_string(),
        )
    };
    let valid = create(VALID);
    assert!(valid.status.success(), "{valid:?}");
    for (spec, message) in REJECTED_BY_CEL_AND_RUST {
        let rejected = create(spec);
        let stderr = String::from_utf8_lossy(&rejected.stderr);
        assert!(
            !rejected.status.success() && stderr.contains(message),
            "{spec}: {stderr}"
        );
    }
    for (spec, message) in pattern_limits() {
        let verdict = create(&spec);
        let stderr = String::from_utf8_lossy(&verdict.stderr);
        match message {
            None => assert!(
                verdict.status.success(),
                "{}-byte spec: {stderr}",
                spec.len()
            ),
            Some(message) => assert!(
                !verdict.status.success() && stderr.contains(&message),
                "{}-byte spec: {stderr}",
                spec.len()
            ),
        }
    }
    for (spec, apiserver, rust) in schema_limits() {
        let rejected = create(&spec);
        let stderr = String::from_utf8_lossy(&rejected.stderr);
        assert!(
            !rejected.status.success() && stderr.contains(apiserver),
            "{spec}: {stderr}"
        );
        let err = rust_verdict(&object(&spec)).unwrap_err();
        assert!(err.contains(rust), "{spec}: {err}");
    }
}

/// Limits the OpenAPI schema enforces (maximum, maxItems, maxLength): (spec, the apiserver's
/// message, the CLI's).
fn schema_limits() -> Vec<(String, &'static str, &'static str)> {
    let http = |http: &str| {
        format!(
            "{{ selector: {{ matchLabels: {{ a: b }} }}, check: {{ http: {http} }}, probes: {{ liveness: {{}} }} }}"
        )
    };
    let headers: Vec<String> = (0..17).map(|i| format!("\"X-{i}: 1\"")).collect();
    vec![
        (
            "{ selector: { matchLabels: { a: b } }, profile: nova-api, probes: { liveness: { timing: { timeoutSeconds: 100000 } } } }".to_string(),
            "should be less than or equal to 86400",
            "should be less than or equal to 86400",
        ),
        (
            http(&format!("{{ url: \"http://h/{}\" }}", "a".repeat(2048))),
            "may not be more than 2048",
            "may not be more than 2048 characters",
        ),
        (
            http(&format!("{{ url: \"http://h/\", headers: [{}] }}", headers.join(", "))),
            "must have at most 16 items",
            "should have at most 16 items",
        ),
        (
            http(&format!("{{ url: \"http://h/\", headers: [\"X: {}\"] }}", "a".repeat(1024))),
            "may not be more than 1024",
            "may not be more than 1024 characters",
        ),
        (
            http(&format!("{{ url: \"http://h/\", user: \"{}\" }}", "u".repeat(1025))),
            "may not be more than 1024",
            "may not be more than 1024 characters",
        ),
        (
            http(&format!("{{ url: \"http://h/\", bodyRegex: \"{}\" }}", "a".repeat(1025))),
            "may not be more than 1024",
            "may not be more than 1024 characters",
        ),
    ]
}

mod differential {
    //! Random specs through both implementations: they must accept the same specs, and the
    //! Rust message must be one of the apiserver's.

    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn check() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(json!({"tcp": {"address": "rabbit:5672"}})),
            Just(json!({"tcp": {"address": "rabbit"}})),
            Just(json!({"tcp": {"address": "[::ffff:10.0.0.1]:5672"}})),
            Just(json!({"tcp": {"address": "[1:2:3:4:5:6:7:8:9]:1"}})),
            Just(json!({"http": {"url": "http://127.0.0.1:8774/"}})),
            Just(json!({"http": {"url": "http://h/", "expectStatus": [200]}})),
            Just(json!({"http": {"url": "https://h/", "tls": {"caFile": "/ca"}}})),
            Just(json!({"http": {"url": "https://h/", "method": "HEAD"}})),
            Just(json!({"process": {"pattern": "nova"}})),
            Just(json!({"allOf": [{"process": {"pattern": "a"}}, {"tcp": {"address": "h:1"}}]})),
            Just(json!({"allOf": [{"process": {"pattern": "a"}, "tcp": {"address": "h:1"}}]})),
            Just(json!({"allOf": [{"tcp": {"address": "h:0"}}]})),
            Just(json!({})),
            Just(json!({"process": {"pattern": "a"}, "file": {"path": "/f", "maxAgeSeconds": 1}})),
        ]
    }

    fn timing() -> impl Strategy<Value = Option<Value>> {
        proptest::option::of(prop_oneof![
            Just(json!({})),
            Just(json!({"successThreshold": 1})),
            Just(json!({"successThreshold": 2})),
            Just(json!({"terminationGracePeriodSeconds": 5})),
            Just(json!({"interval": "0s"})),
            Just(json!({"startPeriod": "10s", "timeout": "1m"})),
            Just(json!({"startInterval": "1x"})),
        ])
    }

    fn probe() -> impl Strategy<Value = Option<Value>> {
        proptest::option::of((proptest::option::of(check()), timing()).prop_map(
            |(check, timing)| {
                let mut probe = json!({});
                if let Some(check) = check {
                    probe["check"] = check;
                }
                if let Some(timing) = timing {
                    probe["timing"] = timing;
                }
                probe
            },
        ))
    }

    fn spec() -> impl Strategy<Value = Value> {
        (
            prop_oneof![
                Just(json!({"matchLabels": {"a": "b"}})),
                Just(json!({})),
                Just(json!({"matchLabels": {}})),
                Just(json!({"matchExpressions": [{"key": "a", "operator": "Exists"}]})),
                Just(json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["b"]}]})),
                Just(json!({"matchExpressions": [{"key": "a", "operator": "In", "values": ["b"]}, {"key": "c", "operator": "DoesNotExist"}]})),
                Just(json!({"matchLabels": {"a": "b"}, "matchExpressions": [{"key": "a", "operator": "In", "values": []}]})),
            ],
            any::<bool>(),
            proptest::option::of(check()),
            (probe(), probe(), probe()),
            timing(),
            proptest::option::of(prop_oneof![Just("Exec"), Just("HTTP"), Just("Native")]),
        )
            .prop_map(
                |(selector, profile, check, (liveness, readiness, startup), timing, mode)| {
                    let mut spec = json!({"selector": selector, "probes": {}});
                    if profile {
                        spec["profile"] = json!("nova-api");
                    }
                    if let Some(check) = check {
                        spec["check"] = check;
                    }
                    for (role, probe) in [
                        ("liveness", liveness),
                        ("readiness", readiness),
                        ("startup", startup),
                    ] {
                        if let Some(probe) = probe {
                            spec["probes"][role] = probe;
                        }
                    }
                    if let Some(timing) = timing {
                        spec["timing"] = timing;
                    }
                    if let Some(mode) = mode {
                        spec["mode"] = json!(mode);
                    }
                    spec
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn cel_and_rust_agree(spec in spec()) {
            let object = object(&spec.to_string());
            let cel = cel_messages(&object);
            match rust_verdict(&object) {
                Ok(()) => prop_assert!(cel.is_empty(), "Rust accepts, CEL says {:?}: {}", cel, spec),
                Err(message) => prop_assert!(
                    cel.iter().any(|m| message.contains(m.as_str())),
                    "Rust says {:?}, CEL says {:?}: {}", message, cel, spec
                ),
            }
        }
    }
}
