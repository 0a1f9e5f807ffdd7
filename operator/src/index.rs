//! In-memory index of HealthChecks by namespace, prepared for admission and fed by watch
//! events. [`Feed`] prepares (renders) each HealthCheck without holding any lock; the shared
//! [`Index`] is locked only to insert, remove or swap in prepared entries, so admissions never
//! wait for rendering, not even during a relist. Pure: tests feed it objects.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use kube::ResourceExt;
use kube::runtime::watcher;

use crate::api::HealthCheck;
use crate::inject::{InjectConfig, PreparedHealthCheck};

type Namespace = BTreeMap<String, Arc<PreparedHealthCheck>>;
type Namespaces = HashMap<String, Namespace>;

/// What admissions read: the prepared HealthChecks of every namespace.
#[derive(Default)]
pub struct Index {
    namespaces: Namespaces,
    synced: bool,
}

/// One watch event, prepared: what remains to do under the lock.
pub enum Change {
    Apply {
        namespace: String,
        name: String,
        prepared: Arc<PreparedHealthCheck>,
    },
    Delete {
        namespace: String,
        name: String,
    },
    /// A complete relist, which replaces everything.
    Replace(Namespaces),
}

/// The watch side: turns events into [`Change`]s, and keeps a relist apart until it is
/// complete, so admissions during a relist still see the previous state.
pub struct Feed {
    config: InjectConfig,
    relisting: Option<Namespaces>,
}

impl Feed {
    pub fn new(config: InjectConfig) -> Self {
        Feed {
            config,
            relisting: None,
        }
    }

    /// The change one watch event makes; `None` while a relist is under way.
    pub fn prepare(&mut self, event: watcher::Event<HealthCheck>) -> Option<Change> {
        match event {
            watcher::Event::Apply(health_check) => Some(Change::Apply {
                namespace: health_check.namespace().unwrap_or_default(),
                name: health_check.name_any(),
                prepared: self.prepared(&health_check),
            }),
            watcher::Event::Delete(health_check) => Some(Change::Delete {
                namespace: health_check.namespace().unwrap_or_default(),
                name: health_check.name_any(),
            }),
            watcher::Event::Init => {
                self.relisting = Some(HashMap::new());
                None
            }
            watcher::Event::InitApply(health_check) => {
                let prepared = self.prepared(&health_check);
                self.relisting
                    .get_or_insert_with(HashMap::new)
                    .entry(health_check.namespace().unwrap_or_default())
                    .or_default()
                    .insert(health_check.name_any(), prepared);
                None
            }
            watcher::Event::InitDone => {
                Some(Change::Replace(self.relisting.take().unwrap_or_default()))
            }
        }
    }

    fn prepared(&self, health_check: &HealthCheck) -> Arc<PreparedHealthCheck> {
        Arc::new(PreparedHealthCheck::new(health_check, &self.config))
    }
}

impl Index {
    /// Applies a prepared change: only map operations, no rendering.
    pub fn change(&mut self, change: Change) {
        match change {
            Change::Apply {
                namespace,
                name,
                prepared,
            } => {
                self.namespaces
                    .entry(namespace)
                    .or_default()
                    .insert(name, prepared);
            }
            Change::Delete { namespace, name } => {
                if let Some(health_checks) = self.namespaces.get_mut(&namespace) {
                    health_checks.remove(&name);
                    if health_checks.is_empty() {
                        self.namespaces.remove(&namespace);
                    }
                }
            }
            Change::Replace(namespaces) => {
                self.namespaces = namespaces;
                self.synced = true;
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
}

/// The [`Index`] the watch writes and admissions read. A poisoned lock is taken over: every
/// change under it is one map operation or one assignment, so a panic elsewhere while it was
/// held cannot have left it half-changed, and dropping later watch events (or answering every
/// admission "not ready") would be worse.
#[derive(Default)]
pub struct SharedIndex(RwLock<Index>);

impl SharedIndex {
    pub fn read(&self) -> RwLockReadGuard<'_, Index> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Index> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies `change`; returns how many HealthChecks the index holds afterwards.
    pub fn change(&self, change: Change) -> usize {
        let mut index = self.write();
        index.change(change);
        index.len()
    }

    /// Prepares `event` with `feed`, outside the lock, then applies it.
    pub fn handle(&self, feed: &mut Feed, event: watcher::Event<HealthCheck>) -> usize {
        match feed.prepare(event) {
            Some(change) => self.change(change),
            None => self.read().len(),
        }
    }
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

    fn feed() -> Feed {
        Feed::new(InjectConfig {
            probe_image: "probe:test".to_string(),
        })
    }

    fn names(index: &SharedIndex, namespace: &str) -> Vec<(String, i64)> {
        index
            .read()
            .in_namespace(namespace)
            .iter()
            .map(|hc| (hc.name.clone(), hc.generation))
            .collect()
    }

    #[test]
    fn apply_update_delete_per_namespace() {
        let (index, mut feed) = (SharedIndex::default(), feed());
        let mut apply = |hc| index.handle(&mut feed, watcher::Event::Apply(hc));
        apply(health_check("a", "nova", 1));
        apply(health_check("a", "keystone", 1));
        assert_eq!(apply(health_check("b", "nova", 1)), 3);
        assert_eq!(
            names(&index, "a"),
            [("keystone".into(), 1), ("nova".into(), 1)]
        );
        apply(health_check("a", "nova", 2));
        assert_eq!(names(&index, "a")[1], ("nova".into(), 2));
        let mut delete = |hc| index.handle(&mut feed, watcher::Event::Delete(hc));
        delete(health_check("a", "nova", 2));
        assert_eq!(names(&index, "a"), [("keystone".into(), 1)]);
        assert_eq!(names(&index, "b"), [("nova".into(), 1)]);
        assert_eq!(delete(health_check("b", "nova", 1)), 1);
        assert!(names(&index, "b").is_empty());
        delete(health_check("nowhere", "nothing", 1));
        assert_eq!(index.read().len(), 1);
    }

    #[test]
    fn relist_replaces_state_only_when_complete() {
        let (index, mut feed) = (SharedIndex::default(), feed());
        let mut handle = |event| index.handle(&mut feed, event);
        handle(watcher::Event::Init);
        handle(watcher::Event::InitApply(health_check("a", "nova", 1)));
        assert!(!index.read().is_synced());
        assert!(index.read().is_empty(), "a partial list is not served");
        let mut handle = |event| index.handle(&mut feed, event);
        handle(watcher::Event::InitDone);
        assert!(index.read().is_synced());
        assert_eq!(names(&index, "a"), [("nova".into(), 1)]);

        // A relist after a watch gap: "nova" was deleted meanwhile, "glance" created.
        let mut handle = |event| index.handle(&mut feed, event);
        handle(watcher::Event::Init);
        handle(watcher::Event::InitApply(health_check("a", "glance", 1)));
        assert_eq!(
            names(&index, "a"),
            [("nova".into(), 1)],
            "old state until done"
        );
        index.handle(&mut feed, watcher::Event::InitDone);
        assert_eq!(names(&index, "a"), [("glance".into(), 1)]);
        assert!(index.read().is_synced());
    }

    #[test]
    fn a_poisoned_lock_still_takes_watch_events_and_serves_admissions() {
        let (index, mut feed) = (SharedIndex::default(), feed());
        index.handle(&mut feed, watcher::Event::InitDone);
        std::thread::scope(|scope| {
            let panicked = scope
                .spawn(|| {
                    let _held = index.write();
                    panic!("a panic while the index is locked");
                })
                .join();
            assert!(panicked.is_err());
        });
        assert!(index.0.is_poisoned());
        index.handle(
            &mut feed,
            watcher::Event::Apply(health_check("a", "nova", 1)),
        );
        assert!(index.read().is_synced());
        assert_eq!(names(&index, "a"), [("nova".into(), 1)]);
    }

    #[test]
    fn invalid_health_checks_are_indexed_with_the_reason() {
        let (index, mut feed) = (SharedIndex::default(), feed());
        let mut hc = health_check("a", "broken", 1);
        hc.spec.mode = crate::api::Mode::Native;
        index.handle(&mut feed, watcher::Event::Apply(hc));
        let prepared = &index.read().in_namespace("a")[0];
        let reason = prepared.rendering.as_ref().unwrap_err();
        assert!(reason.contains("mode Native needs"), "{reason}");
    }
}
