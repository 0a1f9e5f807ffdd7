//! Fuzzing of the operator's parsers of untrusted input: AdmissionReviews (what the apiserver
//! relays from any pod author), HealthCheck YAML and Dockerfiles given to the CLI, with the
//! workspace's fuzzing configuration (`test_support::fuzz_config`: a fixed seed,
//! `HEALTHCHECK_FUZZ_CASES` cases per parser).

mod support;

use std::sync::Arc;

use healthcheck_operator::api::HealthCheck;
use healthcheck_operator::import::{Imported, import_dockerfile, to_spec};
use healthcheck_operator::index::{Feed, SharedIndex};
use healthcheck_operator::inject::InjectConfig;
use healthcheck_operator::metrics::Metrics;
use healthcheck_operator::render::{Format, render};
use healthcheck_operator::webhook::{DEFAULT_REVIEW_ROOM_BYTES, Webhook};
use healthcheck_operator::{parse_health_check, yaml};
use kube::runtime::watcher::Event;
use proptest::prelude::*;
use serde_json::Value;
use support::reviews::fixture;

/// Text made of the words the parsers split on and arbitrary characters, up to a few KiB.
fn text(words: Vec<&'static str>) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            prop::sample::select(words).prop_map(String::from),
            "[ -~]{0,12}",
            any::<char>().prop_map(String::from),
        ],
        0..200,
    )
    .prop_map(|parts| parts.concat())
}

const DOCKERFILE_SYNTAX: &[&str] = &[
    "\n",
    " ",
    "\\\n",
    "# ",
    "FROM base\n",
    "HEALTHCHECK ",
    "healthcheck ",
    "NONE",
    "CMD ",
    "--interval=",
    "--timeout=",
    "--start-period=",
    "--start-interval=",
    "--retries=",
    "30s",
    "0",
    "1ms",
    "30h",
    "[\"",
    "\", \"",
    "\"]",
    "'",
    "$(",
    ";",
];

/// The words of a `HEALTHCHECK`'s command: the probe's arguments and others.
const ARGV_WORDS: &[&str] = &[
    "/openstack/healthcheck",
    "--timeout",
    "27",
    "profile",
    "nova-api",
    "http",
    "http://",
    "http://localhost:5000/v3",
    "[::1]:80",
    "127.0.0.1:3306",
    "/var/run/x.sock",
    "60",
    "nova-api.*",
    "tcp",
    "port",
    "listen",
    "socket",
    "file",
    "process",
    "command",
    "all-of",
    "--",
    "/bin/true",
];

const YAML_WORDS: &[&str] = &[
    "\n",
    "  ",
    ": ",
    "- ",
    "{ ",
    " }",
    "[",
    "]",
    ", ",
    "'",
    "\"",
    "&a ",
    "*a",
    "!!str ",
    "apiVersion: healthcheck.openstack.org/v1alpha1\nkind: HealthCheck\nmetadata: { name: x }\nspec:\n",
    "  selector: { matchLabels: { app: x } }\n",
    "  profile: nova-api\n",
    "  probes: { liveness: {}, readiness: {} }\n",
    "matchExpressions",
    "operator",
    "Exists",
    "check",
    "http",
    "url",
    "tcp",
    "address",
    "process",
    "pattern",
    "timing",
    "interval",
    "timeout",
    "30h",
    "1ns",
    "mode",
    "HTTP",
    "Native",
    "servePort",
    "containers",
    "allOf",
    "headers",
    "bodyRegex",
];

/// A Dockerfile whose last instruction is a well-formed `HEALTHCHECK`: options with values of
/// any kind, and an exec- or shell-form command of the probe's and other words.
fn healthcheck_dockerfile() -> impl Strategy<Value = String> {
    let option = (
        prop::sample::select(
            &[
                "interval",
                "timeout",
                "start-period",
                "start-interval",
                "retries",
            ][..],
        ),
        prop_oneof![
            prop::sample::select(
                &[
                    "0", "1ms", "500ms", "30s", "1m30s", "30h", "90000s", "3", "-1"
                ][..]
            )
            .prop_map(String::from),
            "[0-9]{1,7}(ns|ms|s|m|h)?",
        ],
    )
        .prop_map(|(name, value)| format!("--{name}={value} "));
    let argv = prop::collection::vec(prop::sample::select(ARGV_WORDS), 1..7);
    (
        prop::collection::vec(option, 0..4),
        any::<bool>(),
        argv,
        any::<bool>(),
    )
        .prop_map(|(options, runs_the_probe, mut argv, exec_form)| {
            if runs_the_probe {
                argv.insert(0, "/openstack/healthcheck");
            }
            let command = if exec_form {
                serde_json::to_string(&argv).unwrap()
            } else {
                argv.join(" ")
            };
            format!("FROM base\nHEALTHCHECK {}CMD {command}\n", options.concat())
        })
}

/// Any JSON value, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        text(YAML_WORDS.to_vec()).prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 40, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{0,10}", inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Every JSON pointer into `value`, the root included.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                pointers(
                    child,
                    format!("{at}/{}", key.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

/// A webhook whose cache holds a HealthCheck that selects the fixture's pod, so that mutated
/// reviews reach the injection.
fn webhook() -> Webhook {
    let mut health_check = HealthCheck::new(
        "nova-api",
        serde_saphyr::from_str(
            "selector: { matchLabels: { app: nova-api } }\nprofile: nova-api\nprobes: { liveness: {}, readiness: {}, startup: {} }\nmode: HTTP",
        )
        .unwrap(),
    );
    health_check.metadata.namespace = Some("openstack".to_string());
    health_check.metadata.generation = Some(1);
    let index = SharedIndex::default();
    let mut feed = Feed::new(InjectConfig {
        probe_image: "probe:test".to_string(),
    });
    index.handle(&mut feed, Event::Init);
    index.handle(&mut feed, Event::InitApply(health_check));
    index.handle(&mut feed, Event::InitDone);
    Webhook::new(
        Arc::new(index),
        Arc::new(Metrics::default()),
        DEFAULT_REVIEW_ROOM_BYTES,
    )
}

/// The webhook never denies and never panics: whatever the body, it is an answer that allows
/// the pod, or (no AdmissionReview to answer at all) an error the failure policy admits.
fn assert_admitted(webhook: &Webhook, body: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(review) = webhook.admit(body) {
        let response = review
            .response
            .ok_or_else(|| TestCaseError::fail("a review answered without a response"))?;
        prop_assert!(response.allowed, "denied: {:?}", response.result);
    }
    Ok(())
}

proptest! {
    #![proptest_config(test_support::fuzz_config())]

    #[test]
    fn admission_reviews_never_panic_or_deny(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        cut in any::<prop::sample::Index>(),
        node in any::<prop::sample::Index>(),
        replacement in json_value(),
    ) {
        let webhook = webhook();
        let recorded = fixture("pod-create.json");
        assert_admitted(&webhook, &bytes)?;
        // Cut short, as a body that ends early.
        assert_admitted(&webhook, &recorded.as_bytes()[..cut.index(recorded.len() + 1)])?;
        // Any one value of a real review replaced by any value: the shape the apiserver never
        // sends but a proxy or a bug might, reaching the pod's decoding and the injection.
        let mut review: Value = serde_json::from_str(&recorded).unwrap();
        let mut all = Vec::new();
        pointers(&review, String::new(), &mut all);
        let pointer = node.get(&all);
        match review.pointer_mut(pointer) {
            Some(value) => *value = replacement,
            None => prop_assert!(false, "no value at {pointer}"),
        }
        assert_admitted(&webhook, review.to_string().as_bytes())?;
    }

    /// What `healthcheck-operator render` is given.
    #[test]
    fn health_check_yaml_never_panics(yaml_text in text(YAML_WORDS.to_vec())) {
        if let Ok(health_check) = parse_health_check(&yaml_text, "fuzz") {
            for format in [Format::Kubernetes, Format::Dockerfile, Format::DockerRun, Format::Podman, Format::Kolla] {
                let _ = render(&health_check, format);
            }
        }
    }

    /// `import-dockerfile`: an error, or a HealthCheck that `render` takes in every format,
    /// as the CLI's output is `render`'s input.
    #[test]
    fn imported_dockerfiles_render(
        dockerfile in prop_oneof![text([DOCKERFILE_SYNTAX, ARGV_WORDS].concat()), healthcheck_dockerfile()]
    ) {
        let Ok(Imported::Healthcheck { check, timing }) = import_dockerfile(&dockerfile) else {
            return Ok(());
        };
        let Ok(spec) = to_spec(check, timing, "nova-api") else {
            return Ok(());
        };
        let printed = yaml(&HealthCheck::new("nova-api", spec)).unwrap();
        let health_check = parse_health_check(&printed, "import-dockerfile's output");
        prop_assert!(health_check.is_ok(), "{:?}\nfrom\n{dockerfile}\nprinted\n{printed}", health_check.err());
        for format in [Format::Kubernetes, Format::Dockerfile, Format::DockerRun, Format::Podman, Format::Kolla] {
            let rendered = render(health_check.as_ref().unwrap(), format);
            prop_assert!(rendered.is_ok(), "{format:?}: {:?}\nfrom\n{dockerfile}", rendered.err());
        }
    }
}
