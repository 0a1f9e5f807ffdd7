//! Leader election on a `coordination.k8s.io/v1` Lease: every replica serves the webhook; only
//! the holder writes status and rollouts. Writes are conditional on the Lease's
//! resourceVersion, so two replicas never both believe they acquired it.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::watch;
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

pub fn decide(lease: Option<&LeaseSpec>, identity: &str, now: Timestamp) -> Decision {
    let Some(spec) = lease else {
        return Decision::Acquire;
    };
    match spec.holder_identity.as_deref() {
        Some(holder) if holder == identity => Decision::Renew,
        None | Some("") => Decision::Acquire,
        Some(_) => {
            let duration = i64::from(spec.lease_duration_seconds.unwrap_or(15));
            let expired = spec
                .renew_time
                .as_ref()
                .is_none_or(|renewed| renewed.0 + SignedDuration::from_secs(duration) < now);
            if expired {
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

/// One round: true when we hold the Lease afterwards.
pub async fn try_lead(api: &Api<Lease>, name: &str, identity: &str) -> Result<bool, Error> {
    let kube_error = |source| Error::Kube {
        context: format!("Lease {name}"),
        source,
    };
    let now = Timestamp::now();
    let existing = api.get_opt(name).await.map_err(kube_error)?;
    let spec = existing.as_ref().and_then(|lease| lease.spec.as_ref());
    let decision = decide(spec, identity, now);
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
        spec: Some(next_spec(spec, identity, decision, now)),
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
    let mut last_success = tokio::time::Instant::now();
    loop {
        let leading = match try_lead(&api, &name, &identity).await {
            Ok(leading) => {
                last_success = tokio::time::Instant::now();
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
    fn decisions() {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let ago = |s: i64| now - SignedDuration::from_secs(s);
        let cases = [
            (None, Decision::Acquire),
            (Some(LeaseSpec::default()), Decision::Acquire),
            (Some(held_by("me", ago(100))), Decision::Renew),
            (Some(held_by("other", ago(5))), Decision::Follow),
            (Some(held_by("other", ago(16))), Decision::Acquire),
            (
                Some(LeaseSpec {
                    renew_time: None,
                    ..held_by("other", now)
                }),
                Decision::Acquire,
            ),
        ];
        for (spec, expected) in cases {
            assert_eq!(decide(spec.as_ref(), "me", now), expected, "{spec:?}");
        }
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
