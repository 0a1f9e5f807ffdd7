//! What the kubelet reports about a HealthCheck's probes, pure: from the selected pods (their
//! injection records and container statuses) and the kubelet's `Unhealthy` Events, how many
//! probed pods are Ready, how many fail their probes, and the last probe failure line.
//!
//! The kubelet records each failed probe as an Event on the pod, reason `Unhealthy`, field path
//! `spec.containers{NAME}`, message `<Role> probe failed: <the probe's output>` (exec probes: the
//! probe's one line; `httpGet` probes: only the status code).

use std::collections::{BTreeMap, HashMap};

use healthcheck_spec::ProbeRole;
use healthcheck_spec::text::truncate_within;
use k8s_openapi::api::core::v1::{ContainerStatus, Event, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::runtime::watcher;

use crate::api::ProbeFailure;
use crate::inject::injection_record;

/// The reason of the kubelet's probe failure Events.
pub const UNHEALTHY: &str = "Unhealthy";
/// The field selector of the Events worth watching: probe failures of pods.
pub const UNHEALTHY_POD_EVENTS: &str = "involvedObject.kind=Pod,reason=Unhealthy";
/// The most of a probe's line kept in status.
const MAX_LINE_BYTES: usize = 1024;

/// What the kubelet says about one HealthCheck's probes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProbeResults {
    /// Selected pods with at least one container carrying this HealthCheck's probes.
    pub probed: i32,
    /// Of those, the pods whose `Ready` condition is true.
    pub ready: i32,
    /// Of those, the pods with a probed container the kubelet found failing: not ready after a
    /// probe failure since it started, or restarted and not running.
    pub failing: i32,
    /// `pod/container` of the failing containers, sorted.
    pub failing_containers: Vec<String>,
    /// The newest probe failure among the probed containers.
    pub last_failure: Option<ProbeFailure>,
}

/// Counts the probed pods and finds the last failure. `events` may hold any Events: only the
/// kubelet's `Unhealthy` ones about a probed container of a current pod (same uid) count.
pub fn probe_results(health_check: &str, pods: &[Pod], events: &[Event]) -> ProbeResults {
    let mut results = ProbeResults::default();
    for pod in pods {
        let record = injection_record(pod.annotations());
        let probed: Vec<&str> = record
            .iter()
            .filter(|(_, injected)| injected.health_check == health_check)
            .map(|(container, _)| container.as_str())
            .collect();
        if probed.is_empty() {
            continue;
        }
        results.probed += 1;
        let status = pod.status.as_ref();
        let ready = status
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        if ready {
            results.ready += 1;
        }
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        let failures: Vec<Failure> = events
            .iter()
            .filter(|event| event.involved_object.uid.as_deref() == Some(uid) && !uid.is_empty())
            .filter_map(failure)
            .filter(|failure| probed.contains(&failure.container.as_str()))
            .collect();
        let statuses = status.and_then(|s| s.container_statuses.as_ref());
        let mut pod_failing = false;
        for container in &probed {
            let Some(container_status) = statuses
                .into_iter()
                .flatten()
                .find(|s| s.name == *container)
            else {
                continue;
            };
            let started = running_since(container_status);
            let failed_since_start = failures.iter().any(|failure| {
                failure.container == *container
                    && match (&started, &failure.time) {
                        (Some(started), Some(time)) => time.0 >= started.0,
                        _ => true,
                    }
            });
            if fails(container_status, failed_since_start) {
                pod_failing = true;
                results
                    .failing_containers
                    .push(format!("{}/{container}", pod.name_any()));
            }
        }
        if pod_failing {
            results.failing += 1;
        }
        for found in failures {
            let newer = match &results.last_failure {
                None => true,
                Some(last) => found.time > last.time,
            };
            if newer {
                results.last_failure = Some(ProbeFailure {
                    pod: pod.name_any(),
                    container: found.container,
                    probe: found.role,
                    message: found.message,
                    time: found.time,
                    count: found.count,
                });
            }
        }
    }
    results.failing_containers.sort();
    results
}

/// The kubelet's verdict on one probed container: not ready after a failed probe (readiness),
/// or restarted and not running again (liveness, startup).
fn fails(status: &ContainerStatus, failed_since_start: bool) -> bool {
    let state = status.state.as_ref();
    let running = state.is_some_and(|s| s.running.is_some());
    if running {
        !status.ready && failed_since_start
    } else {
        status.restart_count > 0
    }
}

fn running_since(status: &ContainerStatus) -> Option<Time> {
    status.state.as_ref()?.running.as_ref()?.started_at.clone()
}

/// One probe failure, read from a kubelet Event.
#[derive(Clone, Debug, PartialEq)]
struct Failure {
    container: String,
    role: Option<ProbeRole>,
    message: String,
    time: Option<Time>,
    count: Option<i32>,
}

fn failure(event: &Event) -> Option<Failure> {
    if event.reason.as_deref() != Some(UNHEALTHY) {
        return None;
    }
    let container = event
        .involved_object
        .field_path
        .as_deref()?
        .strip_prefix("spec.containers{")?
        .strip_suffix('}')?;
    let (role, message) = probe_line(event.message.as_deref().unwrap_or_default());
    Some(Failure {
        container: container.to_string(),
        role,
        message,
        time: event_time(event),
        count: event.series.as_ref().and_then(|s| s.count).or(event.count),
    })
}

/// `Readiness probe failed: unhealthy: GET …\n` → (readiness, `unhealthy: GET …`): the role
/// from the kubelet's prefix and the first line of the probe's output, at most 1 KiB.
pub fn probe_line(message: &str) -> (Option<ProbeRole>, String) {
    let (role, rest) = ProbeRole::ALL
        .iter()
        .find_map(|role| {
            let name = role.as_str();
            let (first, tail) = name.split_at(1);
            let prefix = format!("{}{tail} probe ", first.to_uppercase());
            let rest = message.strip_prefix(&prefix)?;
            let rest = rest
                .strip_prefix("failed: ")
                .or_else(|| rest.strip_prefix("errored: "))
                .unwrap_or(rest);
            Some((Some(*role), rest))
        })
        .unwrap_or((None, message));
    let mut line = rest
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or_default()
        .to_string();
    truncate_within(&mut line, MAX_LINE_BYTES);
    (role, line)
}

/// When the Event last happened: its series, its last timestamp, its event time, its first
/// timestamp, or when it was created, whichever is set first.
fn event_time(event: &Event) -> Option<Time> {
    event
        .series
        .as_ref()
        .and_then(|s| s.last_observed_time.as_ref())
        .map(|t| Time(t.0))
        .or_else(|| event.last_timestamp.clone())
        .or_else(|| event.event_time.as_ref().map(|t| Time(t.0)))
        .or_else(|| event.first_timestamp.clone())
        .or_else(|| event.metadata.creation_timestamp.clone())
}

/// The kubelet's probe failure Events, fed by a watch: per pod (uid) and container only the
/// newest, so memory follows the number of probed containers, not the number of failures.
#[derive(Debug, Default)]
pub struct UnhealthyEvents {
    newest: HashMap<(String, String), Event>,
    /// A relist in progress; replaces `newest` when complete.
    relisting: Option<HashMap<(String, String), Event>>,
}

impl UnhealthyEvents {
    pub fn handle(&mut self, event: watcher::Event<Event>) {
        match event {
            watcher::Event::Apply(event) => keep_newest(&mut self.newest, event),
            watcher::Event::Delete(event) => {
                if let Some(key) = key(&event)
                    && self.newest.get(&key).map(ResourceExt::name_any) == Some(event.name_any())
                {
                    self.newest.remove(&key);
                }
            }
            watcher::Event::Init => self.relisting = Some(HashMap::new()),
            watcher::Event::InitApply(event) => {
                keep_newest(self.relisting.get_or_insert_with(HashMap::new), event)
            }
            watcher::Event::InitDone => self.newest = self.relisting.take().unwrap_or_default(),
        }
    }

    /// The newest failure Event of each container of these pods (by uid).
    pub fn for_pods(&self, pods: &[Pod]) -> Vec<Event> {
        let uids: BTreeMap<&str, ()> = pods
            .iter()
            .filter_map(|pod| pod.metadata.uid.as_deref())
            .map(|uid| (uid, ()))
            .collect();
        self.newest
            .iter()
            .filter(|((uid, _), _)| uids.contains_key(uid.as_str()))
            .map(|(_, event)| event.clone())
            .collect()
    }

    /// The pod (namespace, name) an Event is about, for mapping it to HealthChecks.
    pub fn pod_of(event: &Event) -> Option<(String, String)> {
        let object = &event.involved_object;
        Some((object.namespace.clone()?, object.name.clone()?))
    }

    pub fn len(&self) -> usize {
        self.newest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.newest.is_empty()
    }
}

fn key(event: &Event) -> Option<(String, String)> {
    let object = &event.involved_object;
    Some((object.uid.clone()?, object.field_path.clone()?))
}

fn keep_newest(newest: &mut HashMap<(String, String), Event>, event: Event) {
    if event.reason.as_deref() != Some(UNHEALTHY) {
        return;
    }
    let Some(key) = key(&event) else {
        return;
    };
    let replace = newest.get(&key).is_none_or(|kept| {
        kept.name_any() == event.name_any() || event_time(&event) >= event_time(kept)
    });
    if replace {
        newest.insert(key, event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inject::INJECTED_ANNOTATION;
    use k8s_openapi::jiff::Timestamp;
    use serde_json::json;

    fn time(second: i64) -> String {
        Timestamp::from_second(1_800_000_000 + second)
            .unwrap()
            .to_string()
    }

    /// A pod carrying `nova`'s probes on `api` (and `other`'s on `log`), with container states.
    fn pod(name: &str, ready: bool, api: serde_json::Value) -> Pod {
        let record = json!({
            "api": {"healthCheck": "nova", "generation": 1, "hash": "h"},
            "log": {"healthCheck": "other", "generation": 1, "hash": "h"},
        });
        let container = |name: &str, ready: bool| {
            json!({"name": name, "image": "i", "imageID": "", "restartCount": 0, "ready": ready,
                   "state": {"running": {"startedAt": time(0)}}})
        };
        let mut api_status = container("api", ready);
        if let Some(overrides) = api.as_object() {
            api_status
                .as_object_mut()
                .unwrap()
                .extend(overrides.clone());
        }
        let ready_status = if ready { "True" } else { "False" };
        serde_json::from_value(json!({
            "metadata": {
                "name": name, "namespace": "ns", "uid": format!("uid-{name}"),
                "annotations": {INJECTED_ANNOTATION: record.to_string()},
            },
            "status": {
                "conditions": [{"type": "Ready", "status": ready_status}],
                "containerStatuses": [api_status, container("log", false)],
            },
        }))
        .unwrap()
    }

    fn unhealthy(pod: &str, container: &str, second: i64, message: &str) -> Event {
        serde_json::from_value(json!({
            "metadata": {"name": format!("{pod}.{second}"), "namespace": "ns"},
            "involvedObject": {"kind": "Pod", "namespace": "ns", "name": pod, "uid": format!("uid-{pod}"),
                               "fieldPath": format!("spec.containers{{{container}}}")},
            "reason": "Unhealthy", "type": "Warning", "message": message,
            "lastTimestamp": time(second), "count": 2,
        }))
        .unwrap()
    }

    #[test]
    fn ready_failing_and_the_last_failure_line() {
        let pods = [
            pod("ready", true, json!(null)),
            pod("failing", false, json!(null)),
            pod("starting", false, json!(null)),
            pod(
                "crashing",
                false,
                json!({"restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}),
            ),
        ];
        let events = [
            unhealthy(
                "failing",
                "api",
                5,
                "Readiness probe failed: unhealthy: GET http://127.0.0.1:5000/: 503 (12ms)\n",
            ),
            // Before the container started: an earlier instance's.
            unhealthy("starting", "api", -5, "Readiness probe failed: old"),
            // Another HealthCheck's container, and a pod that is not selected.
            unhealthy("failing", "log", 9, "Liveness probe failed: not ours"),
            unhealthy(
                "gone",
                "api",
                10,
                "Liveness probe failed: not a selected pod",
            ),
            // A liveness failure below the threshold: the pod stays Ready, the line is kept.
            unhealthy(
                "ready",
                "api",
                7,
                "Liveness probe failed: unhealthy: no process matches `nova-api`",
            ),
        ];
        let results = probe_results("nova", &pods, &events);
        assert_eq!((results.probed, results.ready, results.failing), (4, 1, 2));
        assert_eq!(results.failing_containers, ["crashing/api", "failing/api"]);
        let last = results.last_failure.unwrap();
        assert_eq!(
            (
                last.pod.as_str(),
                last.container.as_str(),
                last.probe,
                last.message.as_str()
            ),
            (
                "ready",
                "api",
                Some(ProbeRole::Liveness),
                "unhealthy: no process matches `nova-api`"
            )
        );
        assert_eq!(last.count, Some(2));
        assert_eq!(last.time.unwrap().0.to_string(), time(7));

        // A pod replaced under the same name (a StatefulSet's) does not inherit old failures.
        let mut reborn = pod("failing", false, json!(null));
        reborn.metadata.uid = Some("uid-new".to_string());
        let results = probe_results("nova", &[reborn], &events);
        assert_eq!((results.probed, results.failing), (1, 0));
        assert!(results.last_failure.is_none());

        assert_eq!(
            probe_results("glance", &pods, &events),
            ProbeResults::default()
        );
    }

    #[test]
    fn probe_lines_lose_the_kubelet_prefix_and_keep_one_line() {
        let cases = [
            (
                "Readiness probe failed: unhealthy: x\n",
                Some(ProbeRole::Readiness),
                "unhealthy: x",
            ),
            (
                "Startup probe failed: HTTP probe failed with statuscode: 503",
                Some(ProbeRole::Startup),
                "HTTP probe failed with statuscode: 503",
            ),
            (
                "Liveness probe errored: rpc error: context deadline exceeded",
                Some(ProbeRole::Liveness),
                "rpc error: context deadline exceeded",
            ),
            (
                "Readiness probe failed: \nsecond line\nthird",
                Some(ProbeRole::Readiness),
                "second line",
            ),
            ("something else", None, "something else"),
        ];
        for (message, role, line) in cases {
            assert_eq!(probe_line(message), (role, line.to_string()), "{message}");
        }
        let (_, long) = probe_line(&format!("Liveness probe failed: {}", "€".repeat(600)));
        assert!(long.len() <= MAX_LINE_BYTES && long.ends_with('€'));
    }

    #[test]
    fn only_the_newest_event_per_container_is_kept() {
        let mut index = UnhealthyEvents::default();
        index.handle(watcher::Event::Init);
        index.handle(watcher::Event::InitApply(unhealthy(
            "p",
            "api",
            1,
            "Readiness probe failed: one",
        )));
        index.handle(watcher::Event::InitDone);
        index.handle(watcher::Event::Apply(unhealthy(
            "p",
            "api",
            3,
            "Readiness probe failed: three",
        )));
        index.handle(watcher::Event::Apply(unhealthy(
            "p",
            "api",
            2,
            "Readiness probe failed: late",
        )));
        index.handle(watcher::Event::Apply(unhealthy(
            "p",
            "log",
            2,
            "Liveness probe failed: log",
        )));
        let mut other: Event = unhealthy("p", "api", 9, "Pulled");
        other.reason = Some("Pulled".to_string());
        index.handle(watcher::Event::Apply(other));
        assert_eq!(index.len(), 2);
        let pods = [pod("p", false, json!(null))];
        let mut kept: Vec<_> = index
            .for_pods(&pods)
            .into_iter()
            .map(|e| e.message.unwrap())
            .collect();
        kept.sort();
        assert_eq!(
            kept,
            [
                "Liveness probe failed: log",
                "Readiness probe failed: three"
            ]
        );
        assert!(index.for_pods(&[pod("q", false, json!(null))]).is_empty());
        // An older Event expiring leaves the newer one; the kept one expiring removes it.
        index.handle(watcher::Event::Delete(unhealthy("p", "api", 1, "")));
        assert_eq!(index.len(), 2);
        index.handle(watcher::Event::Delete(unhealthy("p", "api", 3, "")));
        assert_eq!(index.len(), 1);
        // A relist replaces everything once complete.
        index.handle(watcher::Event::Init);
        assert_eq!(index.len(), 1);
        index.handle(watcher::Event::InitDone);
        assert!(index.is_empty());
    }
}
