//! Leader election on a `coordination.k8s.io/v1` Lease: every replica serves the webhook; only
//! the holder writes status and rollouts. Writes are conditional on the Lease's
//! resourceVersion, so two replicas never both believe they acquired it.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::error::Error;

pub const LEASE_DURATION: Duration = Duration::from_secs(15);
pub const RETRY_PERIOD: Duration = Duration::from_secs(2);

/// What a replica does with the Lease it read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// We hold it: extend it.
    Renew,
    /// Free or expired: take it.
    Acquire,
    /// Someone else holds it.
    Follow,
}

/// What of a Lease shows its holder is alive: any change to it is a renewal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    holder: Option<String>,
    renew_time: Option<MicroTime>,
    resource_version: Option<String>,
}

impl Record {
    pub fn of(lease: &Lease) -> Record {
        let spec = lease.spec.as_ref();
        Record {
            holder: spec.and_then(|s| s.holder_identity.clone()),
            renew_time: spec.and_then(|s| s.renew_time.clone()),
            resource_version: lease.metadata.resource_version.clone(),
        }
    }
}

/// The Lease record as this replica last saw it change, by this replica's monotonic clock.
/// Expiry is judged from it rather than from `renewTime`, which is the holder's wall clock: two
/// replicas whose clocks disagree still agree on how long a record stayed unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    record: Option<Record>,
    changed_at: Instant,
}

impl Observation {
    /// `previous` updated with the record read at `now`.
    pub fn observe(previous: Option<Observation>, record: Option<Record>, now: Instant) -> Self {
        match previous {
            Some(previous) if previous.record == record => previous,
            _ => Observation {
                record,
                changed_at: now,
            },
        }
    }

    /// How long the record has stayed as it is, as far as this replica knows.
    pub fn unchanged_for(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.changed_at)
    }
}

/// `unchanged_for`: how long this replica has seen the Lease record unchanged (a replica that
/// just started waits a whole lease before taking over a held Lease, as client-go does).
pub fn decide(lease: Option<&LeaseSpec>, identity: &str, unchanged_for: Duration) -> Decision {
    let Some(spec) = lease else {
        return Decision::Acquire;
    };
    match spec.holder_identity.as_deref() {
        Some(holder) if holder == identity => Decision::Renew,
        None | Some("") => Decision::Acquire,
        Some(_) => {
            let seconds = spec.lease_duration_seconds.unwrap_or(15).max(1);
            if unchanged_for > Duration::from_secs(seconds.unsigned_abs().into()) {
                Decision::Acquire
            } else {
                Decision::Follow
            }
        }
    }
}

/// The spec we write when renewing or acquiring.
pub fn next_spec(
    previous: Option<&LeaseSpec>,
    identity: &str,
    decision: Decision,
    now: Timestamp,
) -> LeaseSpec {
    let previous = previous.cloned().unwrap_or_default();
    let transitions = previous.lease_transitions.unwrap_or(0);
    LeaseSpec {
        holder_identity: Some(identity.to_string()),
        lease_duration_seconds: Some(LEASE_DURATION.as_secs() as i32),
        renew_time: Some(MicroTime(now)),
        acquire_time: match decision {
            Decision::Renew => previous.acquire_time.or(Some(MicroTime(now))),
            _ => Some(MicroTime(now)),
        },
        lease_transitions: Some(match decision {
            Decision::Acquire if previous.holder_identity.is_some() => transitions + 1,
            _ => transitions,
        }),
        ..previous
    }
}

/// One round: true when we hold the Lease afterwards. `observed` carries what this replica
/// saw of the Lease from round to round.
pub async fn try_lead(
    api: &Api<Lease>,
    name: &str,
    identity: &str,
    observed: &mut Option<Observation>,
) -> Result<bool, Error> {
    let kube_error = |source| Error::Kube {
        context: format!("Lease {name}"),
        source,
    };
    let existing = api.get_opt(name).await.map_err(kube_error)?;
    let seen_at = Instant::now();
    let observation =
        Observation::observe(observed.take(), existing.as_ref().map(Record::of), seen_at);
    let unchanged_for = observation.unchanged_for(seen_at);
    *observed = Some(observation);
    let spec = existing.as_ref().and_then(|lease| lease.spec.as_ref());
    let decision = decide(spec, identity, unchanged_for);
    if decision == Decision::Follow {
        return Ok(false);
    }
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            resource_version: existing
                .as_ref()
                .and_then(|l| l.metadata.resource_version.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(next_spec(spec, identity, decision, Timestamp::now())),
    };
    let written = match existing {
        Some(_) => api.replace(name, &PostParams::default(), &lease).await,
        None => api.create(&PostParams::default(), &lease).await,
    };
    match written {
        Ok(_) => Ok(true),
        // Someone else wrote it between our read and write.
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(err) => Err(kube_error(err)),
    }
}

/// Keeps `leader` current until the sender is dropped. Losing contact with the apiserver for
/// longer than the lease means stepping down.
pub async fn run(api: Api<Lease>, name: String, identity: String, leader: watch::Sender<bool>) {
    let mut last_success = Instant::now();
    let mut observed = None;
    loop {
        let leading = match try_lead(&api, &name, &identity, &mut observed).await {
            Ok(leading) => {
                last_success = Instant::now();
                leading
            }
            Err(err) => {
                warn!(%err, "leader election round failed");
                *leader.borrow() && last_success.elapsed() < LEASE_DURATION * 2 / 3
            }
        };
        leader.send_if_modified(|current| {
            let changed = *current != leading;
            if changed {
                info!(identity, leading, "leadership changed");
            }
            *current = leading;
            changed
        });
        if leader.is_closed() {
            return;
        }
        tokio::time::sleep(RETRY_PERIOD).await;
    }
}

/// Gives the Lease up on shutdown so another replica takes over at once.
pub async fn release(api: &Api<Lease>, name: &str, identity: &str) {
    if let Ok(Some(mut lease)) = api.get_opt(name).await
        && let Some(spec) = lease.spec.as_mut()
        && spec.holder_identity.as_deref() == Some(identity)
    {
        spec.holder_identity = None;
        spec.renew_time = None;
        if let Err(err) = api.replace(name, &PostParams::default(), &lease).await {
            warn!(%err, "cannot release the Lease; it expires on its own");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::SignedDuration;

    fn held_by(holder: &str, renewed: Timestamp) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.to_string()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(renewed)),
            lease_transitions: Some(2),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn decisions_follow_how_long_the_record_stayed_unchanged_here() {
        let seconds = Duration::from_secs;
        // The holder's renewTime is far in the past or future by our clock: a skewed clock
        // changes nothing, only how long we have seen the record unchanged does.
        let skewed_past = Timestamp::from_second(1_000_000_000).unwrap();
        let skewed_future = Timestamp::from_second(4_000_000_000).unwrap();
        let cases = [
            (None, seconds(0), Decision::Acquire),
            (Some(LeaseSpec::default()), seconds(0), Decision::Acquire),
            (
                Some(held_by("me", skewed_past)),
                seconds(100),
                Decision::Renew,
            ),
            (
                Some(held_by("other", skewed_past)),
                seconds(5),
                Decision::Follow,
            ),
            (
                Some(held_by("other", skewed_past)),
                seconds(15),
                Decision::Follow,
            ),
            (
                Some(held_by("other", skewed_future)),
                seconds(16),
                Decision::Acquire,
            ),
            (
                Some(held_by("other", skewed_future)),
                seconds(1),
                Decision::Follow,
            ),
            (
                Some(LeaseSpec {
                    renew_time: None,
                    ..held_by("other", skewed_past)
                }),
                seconds(1),
                Decision::Follow,
            ),
            (
                Some(LeaseSpec {
                    holder_identity: Some(String::new()),
                    ..held_by("other", skewed_future)
                }),
                seconds(0),
                Decision::Acquire,
            ),
        ];
        for (spec, unchanged_for, expected) in cases {
            assert_eq!(
                decide(spec.as_ref(), "me", unchanged_for),
                expected,
                "{spec:?} unchanged for {unchanged_for:?}"
            );
        }
    }

    #[test]
    fn a_record_counts_as_unchanged_only_while_holder_renew_time_and_version_stay() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let record = |holder: &str, renewed: i64, version: &str| {
            Some(Record {
                holder: Some(holder.to_string()),
                renew_time: Some(MicroTime(Timestamp::from_second(renewed).unwrap())),
                resource_version: Some(version.to_string()),
            })
        };
        let first = Observation::observe(None, record("a", 10, "1"), at(0));
        assert_eq!(first.unchanged_for(at(20)), Duration::from_secs(20));
        let same = Observation::observe(Some(first), record("a", 10, "1"), at(20));
        assert_eq!(same.unchanged_for(at(20)), Duration::from_secs(20));
        for changed in [
            record("b", 10, "1"),
            record("a", 11, "1"),
            record("a", 10, "2"),
            None,
        ] {
            let seen = Observation::observe(Some(same.clone()), changed.clone(), at(20));
            assert_eq!(
                seen.unchanged_for(at(21)),
                Duration::from_secs(1),
                "{changed:?}"
            );
        }
        // A clock read before the observation does not underflow.
        assert_eq!(same.unchanged_for(start), Duration::ZERO);
    }

    #[test]
    fn takeover_counts_a_transition_and_renewal_keeps_acquire_time() {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let old = held_by("other", now - SignedDuration::from_secs(60));
        let taken = next_spec(Some(&old), "me", Decision::Acquire, now);
        assert_eq!(taken.holder_identity.as_deref(), Some("me"));
        assert_eq!(taken.lease_transitions, Some(3));
        let later = now + SignedDuration::from_secs(2);
        let renewed = next_spec(Some(&taken), "me", Decision::Renew, later);
        assert_eq!(renewed.acquire_time, taken.acquire_time);
        assert_eq!(renewed.renew_time, Some(MicroTime(later)));
        assert_eq!(renewed.lease_transitions, Some(3));
    }
}
