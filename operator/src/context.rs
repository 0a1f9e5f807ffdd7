//! What the controller's reconciles share.

use std::sync::Arc;

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use tokio::sync::watch;

use crate::inject::InjectConfig;
use crate::metrics::Metrics;

pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// True while this replica holds the Lease.
    pub leader: watch::Receiver<bool>,
    /// The same settings the webhook injects with, so hashes agree.
    pub inject: InjectConfig,
}

impl Context {
    /// Events are reported as `healthcheck-operator`, instance `identity`.
    pub fn new(
        client: Client,
        identity: &str,
        metrics: Arc<Metrics>,
        leader: watch::Receiver<bool>,
        inject: InjectConfig,
    ) -> Self {
        Context {
            recorder: Recorder::new(
                client.clone(),
                Reporter {
                    controller: "healthcheck-operator".to_string(),
                    instance: Some(identity.to_string()),
                },
            ),
            client,
            metrics,
            leader,
            inject,
        }
    }
}
