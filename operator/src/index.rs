//! In-memory index of HealthChecks by namespace, prepared for admission and fed by watch
//! events. Pure: tests feed it objects.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kube::ResourceExt;
use kube::runtime::watcher;

use crate::api::HealthCheck;
use crate::inject::{InjectConfig, PreparedHealthCheck};

type Namespace = BTreeMap<String, Arc<PreparedHealthCheck>>;

pub struct Index {
    config: InjectConfig,
    namespaces: HashMap<String, Namespace>,
    /// A relist in progress: replaces `namespaces` when complete, so admissions during a
    /// relist still see the previous state.
    relisting: Option<HashMap<String, Namespace>>,
    synced: bool,
}

impl Index {
    pub fn new(config: InjectConfig) -> Self {
        Index {
            config,
            namespaces: HashMap::new(),
            relisting: None,
            synced: false,
        }
    }

    /// One watch event.
    pub fn handle(&mut self, event: watcher::Event<HealthCheck>) {
        match event {
            watcher::Event::Apply(health_check) => self.apply(&health_check),
            watcher::Event::Delete(health_check) => self.delete(
                &health_check.namespace().unwrap_or_default(),
                &health_check.name_any(),
            ),
            watcher::Event::Init => self.relisting = Some(HashMap::new()),
            watcher::Event::InitApply(health_check) => {
                let prepared = self.prepare(&health_check);
                let relisting = self.relisting.get_or_insert_with(HashMap::new);
                insert(relisting, &health_check, prepared);
            }
            watcher::Event::InitDone => {
                self.namespaces = self.relisting.take().unwrap_or_default();
                self.synced = true;
            }
        }
    }

    pub fn apply(&mut self, health_check: &HealthCheck) {
        let prepared = self.prepare(health_check);
        insert(&mut self.namespaces, health_check, prepared);
    }

    pub fn delete(&mut self, namespace: &str, name: &str) {
        if let Some(health_checks) = self.namespaces.get_mut(namespace) {
            health_checks.remove(name);
            if health_checks.is_empty() {
                self.namespaces.remove(namespace);
            }
        }
    }

    /// The HealthChecks of a namespace, by name.
    pub fn in_namespace(&self, namespace: &str) -> Vec<Arc<PreparedHealthCheck>> {
        self.namespaces
            .get(namespace)
            .map(|health_checks| health_checks.values().cloned().collect())
            .unwrap_or_default()
    }

    /// A first complete list has arrived: admissions no longer answer from an empty cache.
    pub fn is_synced(&self) -> bool {
        self.synced
    }

    pub fn len(&self) -> usize {
        self.namespaces.values().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn prepare(&self, health_check: &HealthCheck) -> Arc<PreparedHealthCheck> {
        Arc::new(PreparedHealthCheck::new(health_check, &self.config))
    }
}

fn insert(
    namespaces: &mut HashMap<String, Namespace>,
    health_check: &HealthCheck,
    prepared: Arc<PreparedHealthCheck>,
) {
    namespaces
        .entry(health_check.namespace().unwrap_or_default())
        .or_default()
        .insert(health_check.name_any(), prepared);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health_check(namespace: &str, name: &str, generation: i64) -> HealthCheck {
        let mut hc = HealthCheck::new(
            name,
            serde_saphyr::from_str(
                "selector: { matchLabels: { app: x } }\nprofile: nova-api\nprobes: { liveness: {} }",
            )
            .unwrap(),
        );
        hc.metadata.namespace = Some(namespace.to_string());
        hc.metadata.generation = Some(generation);
        hc
    }

    fn index() -> Index {
        Index::new(InjectConfig {
            probe_image: "probe:test".to_string(),
        })
    }

    fn names(index: &Index, namespace: &str) -> Vec<(String, i64)> {
        index
            .in_namespace(namespace)
            .iter()
            .map(|hc| (hc.name.clone(), hc.generation))
            .collect()
    }

    #[test]
    fn apply_update_delete_per_namespace() {
        let mut index = index();
        index.apply(&health_check("a", "nova", 1));
        index.apply(&health_check("a", "keystone", 1));
        index.apply(&health_check("b", "nova", 1));
        assert_eq!(
            names(&index, "a"),
            [("keystone".into(), 1), ("nova".into(), 1)]
        );
        index.apply(&health_check("a", "nova", 2));
        assert_eq!(names(&index, "a")[1], ("nova".into(), 2));
        index.handle(watcher::Event::Delete(health_check("a", "nova", 2)));
        assert_eq!(names(&index, "a"), [("keystone".into(), 1)]);
        assert_eq!(names(&index, "b"), [("nova".into(), 1)]);
        index.delete("b", "nova");
        assert!(names(&index, "b").is_empty());
        assert_eq!(index.len(), 1);
        index.delete("nowhere", "nothing");
    }

    #[test]
    fn relist_replaces_state_only_when_complete() {
        let mut index = index();
        assert!(!index.is_synced());
        index.handle(watcher::Event::Init);
        index.handle(watcher::Event::InitApply(health_check("a", "nova", 1)));
        assert!(index.is_empty(), "a partial list is not served");
        index.handle(watcher::Event::InitDone);
        assert!(index.is_synced());
        assert_eq!(names(&index, "a"), [("nova".into(), 1)]);

        // A relist after a watch gap: "nova" was deleted meanwhile, "glance" created.
        index.handle(watcher::Event::Init);
        index.handle(watcher::Event::InitApply(health_check("a", "glance", 1)));
        assert_eq!(
            names(&index, "a"),
            [("nova".into(), 1)],
            "old state until done"
        );
        index.handle(watcher::Event::InitDone);
        assert_eq!(names(&index, "a"), [("glance".into(), 1)]);
        assert!(index.is_synced());
    }

    #[test]
    fn invalid_health_checks_are_indexed_with_the_reason() {
        let mut index = index();
        let mut hc = health_check("a", "broken", 1);
        hc.spec.mode = crate::api::Mode::Native;
        index.apply(&hc);
        let prepared = &index.in_namespace("a")[0];
        let reason = prepared.rendering.as_ref().unwrap_err();
        assert!(reason.contains("mode Native needs"), "{reason}");
    }
}
