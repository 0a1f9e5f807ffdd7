//! The operator's long-running tasks, watched: each must run until shutdown, so the first to
//! end (returning or panicking) is an error that ends the process. A dead controller or cache
//! behind a green `/readyz` and a leader gauge of 1 would otherwise go unnoticed; ending makes
//! readiness fail and lets the kubelet restart the pod.

use std::collections::HashMap;
use std::time::Duration;

use tokio::task::{AbortHandle, Id, JoinSet};

use crate::error::Error;

#[derive(Default)]
pub struct Supervisor {
    tasks: JoinSet<()>,
    names: HashMap<Id, (&'static str, AbortHandle)>,
}

impl Supervisor {
    pub fn spawn(&mut self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        let handle = self.tasks.spawn(task);
        self.names.insert(handle.id(), (name, handle));
    }

    /// Resolves when the first task ends, naming it and how.
    pub async fn first_ended(&mut self) -> Error {
        let (id, how) = match self.tasks.join_next_with_id().await {
            Some(Ok((id, ()))) => (Some(id), "returned".to_string()),
            Some(Err(err)) => {
                let id = err.id();
                if err.is_panic() {
                    (
                        Some(id),
                        format!("panicked: {}", panic_message(err.into_panic())),
                    )
                } else {
                    (Some(id), "was cancelled".to_string())
                }
            }
            None => (None, "none was started".to_string()),
        };
        let task = id
            .and_then(|id| self.names.get(&id))
            .map_or("a task", |(name, _)| name);
        Error::TaskEnded { task, how }
    }

    /// Stops every task but `graceful` at once, and gives `graceful` (told to stop by its own
    /// signal) up to `grace` to finish.
    pub async fn stop(mut self, graceful: &str, grace: Duration) {
        for (name, handle) in self.names.values() {
            if *name != graceful {
                handle.abort();
            }
        }
        let _ = tokio::time::timeout(grace, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|text| text.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_task_is_reported_by_name_while_the_others_run() {
        let mut supervisor = Supervisor::default();
        supervisor.spawn("cache", std::future::pending());
        supervisor.spawn("controller", async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let note = String::from("€");
            let _ = &note[..1]; // the shape of the bug that once killed the controller
        });
        let err = supervisor.first_ended().await.to_string();
        assert!(err.starts_with("controller panicked: "), "{err}");
        assert!(err.contains("char boundary"), "{err}");
    }

    #[tokio::test]
    async fn a_task_that_returns_is_an_error_too_and_stop_waits_for_the_graceful_one() {
        let mut supervisor = Supervisor::default();
        supervisor.spawn("cache", std::future::pending());
        supervisor.spawn("election", async {});
        let err = supervisor.first_ended().await.to_string();
        assert_eq!(
            err,
            "election returned; the operator stops so that it restarts"
        );
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        supervisor.spawn("controller", async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = done_tx.send(());
        });
        supervisor.stop("controller", Duration::from_secs(10)).await;
        assert!(done_rx.await.is_ok(), "the graceful task finished");
    }
}
