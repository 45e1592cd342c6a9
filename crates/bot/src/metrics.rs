//! Prometheus metrics (`GET /metrics`). Counters and histograms are updated where things
//! happen; queue gauges are read from the store when scraped, so several replicas never
//! disagree about the queue.
//!
//! Each replica serves its own counters; `courier_replica_info{replica, version}` says
//! which replica (and which build) a scrape came from, next to the `instance` label
//! Prometheus adds. Sum the counters over replicas for the service's totals.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReplicaLabels {
    replica: String,
    version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabel {
    provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    provider: String,
    call: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
    provider: String,
}

/// Every `result` of `courier_webhooks_total`, counted from the start (at 0).
const WEBHOOK_RESULTS: [&str; 7] = [
    "accepted",
    "duplicate",
    "unauthorized",
    "forbidden",
    "invalid",
    "ignored",
    "error",
];

pub struct Metrics {
    registry: Registry,
    webhooks: Family<ResultLabel, Counter>,
    /// The family's counters for [`WEBHOOK_RESULTS`], looked up once rather than hashed
    /// and locked on every request.
    webhook_counters: Vec<(&'static str, Counter)>,
    deliveries: Family<OutcomeLabels, Counter>,
    attempts: Counter,
    running: Gauge,
    leases_lost: Counter,
    rate_limit_waits: Family<ProviderLabel, Counter>,
    phases: Family<PhaseLabel, Histogram>,
    forge_calls: Family<CallLabels, Histogram>,
    delivery_seconds: Histogram,
    download_bytes: Histogram,
    ui_sign_in_failures: Counter,
    replica: Option<String>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Metrics of a process that is not a named replica (tests, one-off commands).
    pub fn new() -> Metrics {
        Metrics::build(None)
    }

    /// Metrics of the replica `replica`, which `courier_replica_info` names.
    pub fn for_replica(replica: &str) -> Metrics {
        Metrics::build(Some(replica))
    }

    /// The replica these metrics belong to, if named.
    pub fn replica(&self) -> Option<&str> {
        self.replica.as_deref()
    }

    fn build(replica: Option<&str>) -> Metrics {
        let mut registry = Registry::with_prefix("courier");
        if let Some(replica) = replica {
            registry.register(
                "replica",
                "This replica's id and Courier version",
                Info::new(ReplicaLabels {
                    replica: replica.to_owned(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                }),
            );
        }
        let webhooks = Family::<ResultLabel, Counter>::default();
        registry.register(
            "webhooks",
            "Webhook requests by result (accepted, duplicate, unauthorized, forbidden, invalid, ignored, error)",
            webhooks.clone(),
        );
        let deliveries = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "deliveries",
            "Delivery attempts ended, by outcome (a final state, or `retry`) and provider",
            deliveries.clone(),
        );
        let attempts = Counter::default();
        registry.register(
            "delivery_attempts",
            "Delivery attempts started",
            attempts.clone(),
        );
        let running = Gauge::default();
        registry.register(
            "deliveries_running",
            "Deliveries running on this replica now (never more than `workers`)",
            running.clone(),
        );
        let leases_lost = Counter::default();
        registry.register(
            "delivery_leases_lost",
            "Deliveries stopped because their lease was lost (another worker runs them)",
            leases_lost.clone(),
        );
        let rate_limit_waits = Family::<ProviderLabel, Counter>::default();
        registry.register(
            "rate_limit_waits",
            "Deliveries requeued to wait out a rate limit (a forge's or the artifact server's), by provider",
            rate_limit_waits.clone(),
        );
        let phases = Family::<PhaseLabel, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.005, 2.0, 16))) as fn() -> Histogram,
        );
        registry.register(
            "delivery_phase_seconds",
            "Time each phase of a delivery attempt took (download, validate, plan and its fetch and build, tokens, push, pull_request)",
            phases.clone(),
        );
        // One series per provider and call name: the names are the fixed words of the
        // providers' calls (`find open pull request`), a few dozen at most.
        let forge_calls = Family::<CallLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.005, 2.0, 14))) as fn() -> Histogram,
        );
        registry.register(
            "forge_call_seconds",
            "Time each forge call took, its retries and their waits included, by provider and call",
            forge_calls.clone(),
        );
        let delivery_seconds = Histogram::new(exponential_buckets(0.05, 2.0, 14));
        registry.register(
            "delivery_duration_seconds",
            "Time from claim to finish of one delivery attempt",
            delivery_seconds.clone(),
        );
        let download_bytes = Histogram::new(exponential_buckets(1024.0, 4.0, 12));
        // The pipeline exposes the validated export, not the zip it came in: this is the
        // uncompressed size, which is what the limits in `limits.archive` bound.
        registry.register(
            "export_bytes",
            "Uncompressed size of each export obtained for a delivery",
            download_bytes.clone(),
        );
        let ui_sign_in_failures = Counter::default();
        registry.register(
            "ui_sign_in_failures",
            "Dashboard sign-ins refused for a wrong token",
            ui_sign_in_failures.clone(),
        );
        let webhook_counters = WEBHOOK_RESULTS
            .into_iter()
            .map(|result| {
                let label = ResultLabel {
                    result: result.to_owned(),
                };
                (result, webhooks.get_or_create(&label).clone())
            })
            .collect();
        Metrics {
            registry,
            webhooks,
            webhook_counters,
            deliveries,
            attempts,
            running,
            leases_lost,
            rate_limit_waits,
            phases,
            forge_calls,
            delivery_seconds,
            download_bytes,
            ui_sign_in_failures,
            replica: replica.map(str::to_owned),
        }
    }

    pub fn webhook(&self, result: &str) {
        if let Some((_, counter)) = self.webhook_counters.iter().find(|(r, _)| *r == result) {
            counter.inc();
            return;
        }
        self.webhooks
            .get_or_create(&ResultLabel {
                result: result.to_owned(),
            })
            .inc();
    }

    pub fn delivery_finished(&self, outcome: &str, provider: &str, seconds: f64) {
        self.deliveries
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
                provider: provider.to_owned(),
            })
            .inc();
        self.delivery_seconds.observe(seconds);
    }

    pub fn attempt_started(&self) {
        self.attempts.inc();
    }

    /// Counts a delivery as running until the guard is dropped, however it ends (finished,
    /// or its future dropped when the lease is lost or at shutdown).
    pub fn delivery_running(&self) -> RunningGuard {
        self.running.inc();
        RunningGuard(self.running.clone())
    }

    /// One phase of a delivery attempt (see `delivery::Phase`).
    pub fn phase(&self, phase: &str, seconds: f64) {
        self.phases
            .get_or_create(&PhaseLabel {
                phase: phase.to_owned(),
            })
            .observe(seconds);
    }

    /// One forge call of a delivery attempt (see `courier_providers::forge_calls`).
    pub fn forge_call(&self, provider: &str, call: &str, seconds: f64) {
        self.forge_calls
            .get_or_create(&CallLabels {
                provider: provider.to_owned(),
                call: call.to_owned(),
            })
            .observe(seconds);
    }

    pub fn rate_limit_wait(&self, provider: &str) {
        self.rate_limit_waits
            .get_or_create(&ProviderLabel {
                provider: provider.to_owned(),
            })
            .inc();
    }

    pub fn lease_lost(&self) {
        self.leases_lost.inc();
    }

    pub fn ui_sign_in_failed(&self) {
        self.ui_sign_in_failures.inc();
    }

    pub fn downloaded(&self, bytes: u64) {
        self.download_bytes.observe(bytes as f64);
    }

    /// The registry in Prometheus text format, followed by the queue gauges given.
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode_registry(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        for (name, help, value) in gauges {
            out.push_str(&format!("# HELP courier_{name} {help}\n# TYPE courier_{name} gauge\ncourier_{name} {value}\n"));
        }
        out.push_str("# EOF\n");
        out
    }
}

/// See [`Metrics::delivery_running`].
pub struct RunningGuard(Gauge);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
