//! Prometheus metrics (OpenMetrics text on the plain-HTTP port's `/metrics`).

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum AdmissionResult {
    /// The pod got probes (or would have, under dry-run).
    Injected,
    /// Selected, but already as it should be, or only authored probes kept.
    Unchanged,
    /// Not a pod CREATE, or no HealthCheck selects the pod.
    Ignored,
    /// The HealthCheck cache is not synced yet: admitted unchanged.
    NotReady,
    /// Our own failure: admitted unchanged.
    Error,
    /// Over the webhook's bounds (bytes or containers): admitted unchanged.
    TooLarge,
    /// No room for its body within the bound on reviews in work at once: answered `503` before
    /// the body was read, which the failure policy admits unchanged.
    Overloaded,
    /// The injected record would push the pod's annotations over the apiserver's limit:
    /// admitted unchanged.
    AnnotationsFull,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AdmissionLabels {
    pub result: AdmissionResult,
    pub dry_run: bool,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub kind: String,
}

pub struct Metrics {
    registry: Registry,
    pub admissions: Family<AdmissionLabels, Counter>,
    pub admission_seconds: Histogram,
    pub conflicts: Counter,
    pub reconciles: Counter,
    pub errors: Family<ErrorLabels, Counter>,
    pub status_writes: Counter,
    pub rollouts: Counter,
    pub leader: Gauge,
    pub health_checks: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("healthcheck_operator");
        let admissions = Family::<AdmissionLabels, Counter>::default();
        // 50 µs … ~0.6 s in steps of 1.5×: fine enough for p50/p99 of the webhook's own latency.
        let admission_seconds = Histogram::new(exponential_buckets(0.000_05, 1.5, 24));
        let metrics = Metrics {
            admissions,
            admission_seconds,
            conflicts: Counter::default(),
            reconciles: Counter::default(),
            errors: Family::default(),
            status_writes: Counter::default(),
            rollouts: Counter::default(),
            leader: Gauge::default(),
            health_checks: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "admissions",
            "Pod admissions by result",
            metrics.admissions.clone(),
        );
        registry.register(
            "admission_duration_seconds",
            "Time the webhook spent on one admission",
            metrics.admission_seconds.clone(),
        );
        registry.register(
            "conflicts",
            "Containers selected by a HealthCheck that lost them to another, and HealthChecks whose servePort the pod declares",
            metrics.conflicts.clone(),
        );
        registry.register(
            "reconciles",
            "HealthCheck reconciliations",
            metrics.reconciles.clone(),
        );
        registry.register("errors", "Errors by kind", metrics.errors.clone());
        registry.register(
            "status_writes",
            "HealthCheck status updates written",
            metrics.status_writes.clone(),
        );
        registry.register(
            "rollouts",
            "Workload restarts triggered by rollout: Restart",
            metrics.rollouts.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the Lease",
            metrics.leader.clone(),
        );
        registry.register(
            "health_checks",
            "HealthChecks in the webhook's cache",
            metrics.health_checks.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }
}

impl Metrics {
    pub fn error(&self, kind: &str) {
        self.errors
            .get_or_create(&ErrorLabels {
                kind: kind.to_string(),
            })
            .inc();
    }

    pub fn admission(&self, result: AdmissionResult, dry_run: bool) {
        self.admissions
            .get_or_create(&AdmissionLabels { result, dry_run })
            .inc();
    }

    /// OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_every_family() {
        let metrics = Metrics::default();
        metrics.admission(AdmissionResult::Injected, false);
        metrics.admission_seconds.observe(0.001);
        metrics.error("kube");
        metrics.leader.set(1);
        let text = metrics.encode();
        for line in [
            "healthcheck_operator_admissions_total{result=\"Injected\",dry_run=\"false\"} 1",
            "healthcheck_operator_admission_duration_seconds_count 1",
            "healthcheck_operator_errors_total{kind=\"kube\"} 1",
            "healthcheck_operator_leader 1",
            "healthcheck_operator_reconciles_total 0",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
}
