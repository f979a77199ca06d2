//! Serin's Prometheus metrics: Flagger's `flagger_*` series, with the names, types and labels
//! of Flagger's recorder (flagger-behaviour.md §8.1) so that its dashboards and alerts keep
//! working, plus `serin_*` series for what Flagger does not have (the Git sync, the ledger).
//!
//! [`Metrics`] is a cheap handle: clones share one registry, so the runner, the scheduler, the
//! sync loop, the ledger writer and the HTTP server all record into what `/metrics` shows.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::api::{Canary, CanaryPhase, CanaryStatus};
use crate::router::Routes;

/// The content type of [`Metrics::encode`]'s output (Prometheus scrapes OpenMetrics text).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The Prometheus Go client's default buckets, which Flagger's histogram uses.
const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A sync fetches, snapshots and applies: from tens of milliseconds to the Git timeout.
const SYNC_BUCKETS: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

// Label sets. Fields are in alphabetical order: that is the order in which Flagger's Go client
// prints them, so Serin's exposition reads the same.

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InfoLabels {
    mesh_provider: String,
    version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NamespaceLabels {
    namespace: String,
}

/// `name` is the canary's `targetRef.name`, as in Flagger, not the Canary's name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CanaryLabels {
    name: String,
    namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkloadLabels {
    namespace: String,
    workload: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MetricLabels {
    metric: String,
    name: String,
    namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    analysis_status: String,
    deployment_strategy: String,
    name: String,
    namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommitLabels {
    commit: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    provider: String,
    result: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn default_histogram() -> Histogram {
    Histogram::new(DEFAULT_BUCKETS)
}

struct Inner {
    registry: Registry,
    canary_total: Family<NamespaceLabels, Gauge>,
    canary_duration: HistogramFamily<CanaryLabels>,
    canary_status: Family<CanaryLabels, Gauge>,
    canary_weight: Family<WorkloadLabels, Gauge>,
    metric_analysis: Family<MetricLabels, Gauge<f64, AtomicU64>>,
    successes: Family<OutcomeLabels, Counter>,
    failures: Family<OutcomeLabels, Counter>,
    sync_duration: Histogram,
    last_commit: Family<CommitLabels, Gauge>,
    sync_failures: Counter,
    ledger_queue: Gauge,
    ledger_push_failures: Counter,
    api_errors: Family<OperationLabels, Counter>,
    webhook_deliveries: Family<WebhookLabels, Counter>,
    /// Namespaces counted by the last [`Metrics::set_canary_totals`]: one whose canaries are all
    /// gone must drop to 0 rather than keep its last count.
    counted_namespaces: Mutex<BTreeSet<String>>,
}

/// The handle every part of `serin run` records into.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// What one analysis tick leaves behind, for [`Metrics::record_tick`].
#[derive(Debug, Clone, Copy)]
pub struct TickObservation<'a> {
    pub canary: &'a Canary,
    /// The phase the canary had when the tick started.
    pub before: CanaryPhase,
    /// The status the tick ends with (written or not).
    pub after: &'a CanaryStatus,
    /// The routes the tick set last or, failing that, read (§2.2 step 18); `None` when it did
    /// neither (an idle or initializing canary), and the weights follow from the status.
    pub routes: Option<Routes>,
    /// The tick's duration when it reached the analysis (§2.2 step 27): Flagger times only
    /// those ticks.
    pub duration: Option<Duration>,
}

impl Metrics {
    /// A registry with every series Serin exports; `flagger_info` carries Serin's version and
    /// the default provider (Flagger's `-mesh-provider`).
    pub fn new(version: &str, mesh_provider: &str) -> Metrics {
        let mut registry = Registry::default();
        let info = Family::<InfoLabels, Gauge>::default();
        registry.register(
            "flagger_info",
            "Flagger version and mesh provider information",
            info.clone(),
        );
        info.get_or_create(&InfoLabels {
            mesh_provider: mesh_provider.to_string(),
            version: version.to_string(),
        })
        .set(1);
        let canary_total = Family::default();
        registry.register(
            "flagger_canary_total",
            "Total number of canary object",
            canary_total.clone(),
        );
        let canary_duration =
            HistogramFamily::new_with_constructor(default_histogram as fn() -> Histogram);
        registry.register(
            "flagger_canary_duration_seconds",
            "Seconds spent performing canary analysis.",
            canary_duration.clone(),
        );
        let canary_status = Family::default();
        registry.register(
            "flagger_canary_status",
            "Last canary analysis result (0 = progressing, 1 = done, 2 = failed)",
            canary_status.clone(),
        );
        let canary_weight = Family::default();
        registry.register(
            "flagger_canary_weight",
            "The virtual service destination weight current value",
            canary_weight.clone(),
        );
        let metric_analysis = Family::default();
        registry.register(
            "flagger_canary_metric_analysis",
            "Last canary analysis result per metric",
            metric_analysis.clone(),
        );
        // Counters are registered without `_total`: the encoder appends it.
        let successes = Family::default();
        registry.register(
            "flagger_canary_successes",
            "Total number of canary successes",
            successes.clone(),
        );
        let failures = Family::default();
        registry.register(
            "flagger_canary_failures",
            "Total number of canary failures",
            failures.clone(),
        );
        let sync_duration = Histogram::new(SYNC_BUCKETS);
        registry.register(
            "serin_sync_duration_seconds",
            "Seconds one sync of the source took (fetch, read, apply)",
            sync_duration.clone(),
        );
        let last_commit = Family::default();
        registry.register(
            "serin_last_synced_commit_info",
            "The commit of the last successful Git sync (value 1)",
            last_commit.clone(),
        );
        let sync_failures = Counter::default();
        registry.register(
            "serin_sync_failures",
            "Syncs of the source that failed",
            sync_failures.clone(),
        );
        let ledger_queue = Gauge::default();
        registry.register(
            "serin_ledger_queue_depth",
            "Ledger and revert commits queued locally and not yet pushed",
            ledger_queue.clone(),
        );
        let ledger_push_failures = Counter::default();
        registry.register(
            "serin_ledger_push_failures",
            "Pushes of queued ledger commits that failed (they are retried)",
            ledger_push_failures.clone(),
        );
        let api_errors = Family::default();
        registry.register(
            "serin_kubernetes_api_errors",
            "Kubernetes API requests of the runner and the sync that failed, by operation",
            api_errors.clone(),
        );
        let webhook_deliveries = Family::default();
        registry.register(
            "serin_webhook_deliveries",
            "Push webhook requests received, by Git host and result",
            webhook_deliveries.clone(),
        );
        Metrics {
            inner: Arc::new(Inner {
                registry,
                canary_total,
                canary_duration,
                canary_status,
                canary_weight,
                metric_analysis,
                successes,
                failures,
                sync_duration,
                last_commit,
                sync_failures,
                ledger_queue,
                ledger_push_failures,
                api_errors,
                webhook_deliveries,
                counted_namespaces: Mutex::new(BTreeSet::new()),
            }),
        }
    }

    /// The text exposition of every series ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail; an encoder error would only cut the output short.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.inner.registry) {
            tracing::warn!("cannot encode the metrics: {e}");
        }
        text
    }

    /// `flagger_canary_total`: the canaries of each namespace, as the scheduler last listed
    /// them (§2.1).
    pub fn set_canary_totals<'a>(&self, namespaces: impl IntoIterator<Item = (&'a str, usize)>) {
        let mut seen = BTreeSet::new();
        for (namespace, count) in namespaces {
            self.inner
                .canary_total
                .get_or_create(&NamespaceLabels {
                    namespace: namespace.to_string(),
                })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
            seen.insert(namespace.to_string());
        }
        // A poisoned lock only means another recorder panicked; the set is still usable.
        let mut counted = self
            .inner
            .counted_namespaces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for gone in counted.difference(&seen) {
            self.inner
                .canary_total
                .get_or_create(&NamespaceLabels {
                    namespace: gone.clone(),
                })
                .set(0);
        }
        *counted = seen;
    }

    /// Records one analysis tick: status, weights, metric values, duration, and a success or
    /// failure when the tick moved the canary to Succeeded or Failed.
    pub fn record_tick(&self, tick: &TickObservation<'_>) {
        let canary = tick.canary;
        let labels = CanaryLabels {
            name: canary.spec.target_name().to_string(),
            namespace: canary.metadata.namespace.clone().unwrap_or_default(),
        };
        let phase = tick.after.phase;
        self.inner
            .canary_status
            .get_or_create(&labels)
            .set(status_value(phase));
        let routes = tick.routes.unwrap_or_else(|| {
            let canary = u32::try_from(tick.after.canary_weight.clamp(0, 100)).unwrap_or(0);
            Routes {
                primary: 100 - canary,
                canary,
                mirrored: false,
            }
        });
        self.set_weights(&labels, routes);
        for m in tick.after.metrics.iter().flatten() {
            if let Some(value) = m.value {
                self.inner
                    .metric_analysis
                    .get_or_create(&MetricLabels {
                        metric: m.name.clone(),
                        name: labels.name.clone(),
                        namespace: labels.namespace.clone(),
                    })
                    .set(value);
            }
        }
        if let Some(d) = tick.duration {
            self.inner
                .canary_duration
                .get_or_create(&labels)
                .observe(d.as_secs_f64());
        }
        let outcome = |analysis_status: &str| OutcomeLabels {
            analysis_status: analysis_status.to_string(),
            deployment_strategy: canary.spec.strategy().as_str().to_string(),
            name: labels.name.clone(),
            namespace: labels.namespace.clone(),
        };
        if phase == CanaryPhase::Succeeded && tick.before != CanaryPhase::Succeeded {
            let status = if canary.spec.skip_analysis() {
                "skipped"
            } else {
                "completed"
            };
            self.inner.successes.get_or_create(&outcome(status)).inc();
        }
        if phase == CanaryPhase::Failed && tick.before != CanaryPhase::Failed {
            self.inner
                .failures
                .get_or_create(&outcome("completed"))
                .inc();
        }
    }

    /// `flagger_canary_weight`: `<target>-primary` carries the primary's weight, `<target>` the
    /// canary's.
    fn set_weights(&self, labels: &CanaryLabels, routes: Routes) {
        for (workload, weight) in [
            (format!("{}-primary", labels.name), routes.primary),
            (labels.name.clone(), routes.canary),
        ] {
            self.inner
                .canary_weight
                .get_or_create(&WorkloadLabels {
                    namespace: labels.namespace.clone(),
                    workload,
                })
                .set(i64::from(weight));
        }
    }

    /// A sync that finished; `commit` is the Git commit it read (none for a directory).
    pub fn sync_succeeded(&self, took: Duration, commit: Option<&str>) {
        self.inner.sync_duration.observe(took.as_secs_f64());
        if let Some(commit) = commit {
            let labels = CommitLabels {
                commit: commit.to_string(),
            };
            // Only the current commit's series: an info metric per past commit would grow
            // without bound and make `max by (commit)` ambiguous.
            if self.inner.last_commit.get(&labels).is_none() {
                self.inner.last_commit.clear();
            }
            self.inner.last_commit.get_or_create(&labels).set(1);
        }
    }

    /// A sync that failed (its duration is still observed: slow failures are worth seeing).
    pub fn sync_failed(&self, took: Duration) {
        self.inner.sync_duration.observe(took.as_secs_f64());
        self.inner.sync_failures.inc();
    }

    /// Commits waiting in the local mirror for a push.
    pub fn set_ledger_queue_depth(&self, commits: usize) {
        self.inner
            .ledger_queue
            .set(i64::try_from(commits).unwrap_or(i64::MAX));
    }

    pub fn inc_ledger_push_failures(&self) {
        self.inner.ledger_push_failures.inc();
    }

    /// A failed Kubernetes API request; `operation` is a short fixed name (`get_canary`,
    /// `list_canaries`, `update_status`, `create_event`, `apply`, `read_inventory`).
    pub fn inc_api_errors(&self, operation: &str, count: u64) {
        if count > 0 {
            self.inner
                .api_errors
                .get_or_create(&OperationLabels {
                    operation: operation.to_string(),
                })
                .inc_by(count);
        }
    }

    /// A push-webhook request: `provider` github/gitlab/gitea/unknown, `result` a fixed word.
    pub fn inc_webhook_deliveries(&self, provider: &str, result: &str) {
        self.inner
            .webhook_deliveries
            .get_or_create(&WebhookLabels {
                provider: provider.to_string(),
                result: result.to_string(),
            })
            .inc();
    }
}

/// Flagger's status gauge: 0 while progressing, 2 when failed, 1 for anything else.
fn status_value(phase: CanaryPhase) -> i64 {
    match phase {
        CanaryPhase::Progressing => 0,
        CanaryPhase::Failed => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::MetricCheckStatus;

    fn canary(yaml: &str) -> Canary {
        serde_saphyr::from_str(yaml).expect("test canary parses")
    }

    /// A canary named differently from its target: `name` labels must carry the target.
    const CANARY: &str = r#"
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo-canary
  namespace: test
spec:
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  service:
    port: 9898
  analysis:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 10
"#;

    const BLUE_GREEN: &str = r#"
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: backend
  namespace: prod
spec:
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: backend
  service:
    port: 8080
  analysis:
    interval: 1m
    threshold: 2
    iterations: 5
"#;

    fn status(phase: CanaryPhase, weight: i32) -> CanaryStatus {
        CanaryStatus {
            phase,
            canary_weight: weight,
            ..Default::default()
        }
    }

    /// The lines of the exposition that hold samples of `name` (not its HELP/TYPE lines),
    /// sorted: a family keeps its series in a hash map.
    fn samples(text: &str, name: &str) -> Vec<String> {
        let mut lines: Vec<String> = text
            .lines()
            .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
            .map(str::to_string)
            .collect();
        lines.sort();
        lines
    }

    #[test]
    fn a_scripted_rollout_shows_flaggers_series() {
        let metrics = Metrics::new("0.1.0", "gatewayapi:v1");
        let c = canary(CANARY);
        metrics.set_canary_totals([("test", 1)]);

        // Initialized → Progressing: the tick read routes 100/0.
        let progressing = status(CanaryPhase::Progressing, 0);
        metrics.record_tick(&TickObservation {
            canary: &c,
            before: CanaryPhase::Initialized,
            after: &progressing,
            routes: Some(Routes::INITIAL),
            duration: None,
        });
        let text = metrics.encode();
        assert_eq!(
            samples(&text, "flagger_canary_status"),
            [r#"flagger_canary_status{name="podinfo",namespace="test"} 0"#]
        );

        // An analysed tick that shifted traffic to 10 %, with a metric value.
        let mut advanced = status(CanaryPhase::Progressing, 10);
        advanced.metrics = Some(vec![
            MetricCheckStatus {
                name: "request-success-rate".into(),
                value: Some(99.5),
                message: None,
            },
            MetricCheckStatus {
                name: "request-duration".into(),
                value: None,
                message: Some("no values".into()),
            },
        ]);
        metrics.record_tick(&TickObservation {
            canary: &c,
            before: CanaryPhase::Progressing,
            after: &advanced,
            routes: Some(Routes {
                primary: 90,
                canary: 10,
                mirrored: false,
            }),
            duration: Some(Duration::from_millis(30)),
        });
        let text = metrics.encode();
        assert_eq!(
            samples(&text, "flagger_canary_weight"),
            [
                r#"flagger_canary_weight{namespace="test",workload="podinfo"} 10"#,
                r#"flagger_canary_weight{namespace="test",workload="podinfo-primary"} 90"#,
            ]
        );
        assert_eq!(
            samples(&text, "flagger_canary_metric_analysis"),
            [
                r#"flagger_canary_metric_analysis{metric="request-success-rate",name="podinfo",namespace="test"} 99.5"#
            ]
        );
        assert!(
            text.contains(
                r#"flagger_canary_duration_seconds_bucket{le="0.05",name="podinfo",namespace="test"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"flagger_canary_duration_seconds_count{name="podinfo",namespace="test"} 1"#
            ),
            "{text}"
        );

        // Finalising → Succeeded, then an idle tick: one success, weights from the status.
        let succeeded = status(CanaryPhase::Succeeded, 0);
        for before in [CanaryPhase::Finalising, CanaryPhase::Succeeded] {
            metrics.record_tick(&TickObservation {
                canary: &c,
                before,
                after: &succeeded,
                routes: None,
                duration: None,
            });
        }
        let text = metrics.encode();
        assert_eq!(
            samples(&text, "flagger_canary_status"),
            [r#"flagger_canary_status{name="podinfo",namespace="test"} 1"#]
        );
        assert_eq!(
            samples(&text, "flagger_canary_weight"),
            [
                r#"flagger_canary_weight{namespace="test",workload="podinfo"} 0"#,
                r#"flagger_canary_weight{namespace="test",workload="podinfo-primary"} 100"#,
            ]
        );
        assert_eq!(
            samples(&text, "flagger_canary_successes_total"),
            [
                r#"flagger_canary_successes_total{analysis_status="completed",deployment_strategy="canary",name="podinfo",namespace="test"} 1"#
            ]
        );
        assert!(samples(&text, "flagger_canary_failures_total").is_empty());
        assert_eq!(
            samples(&text, "flagger_canary_total"),
            [r#"flagger_canary_total{namespace="test"} 1"#]
        );
        assert_eq!(
            samples(&text, "flagger_info"),
            [r#"flagger_info{mesh_provider="gatewayapi:v1",version="0.1.0"} 1"#]
        );
        assert!(
            text.contains("# TYPE flagger_canary_successes counter"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE flagger_canary_duration_seconds histogram"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn a_failed_analysis_counts_one_failure_with_its_strategy() {
        let metrics = Metrics::new("0.1.0", "kubernetes");
        let c = canary(BLUE_GREEN);
        let failed = status(CanaryPhase::Failed, 0);
        for before in [
            CanaryPhase::Progressing,
            CanaryPhase::Failed,
            CanaryPhase::Failed,
        ] {
            metrics.record_tick(&TickObservation {
                canary: &c,
                before,
                after: &failed,
                routes: Some(Routes::INITIAL),
                duration: Some(Duration::from_millis(5)),
            });
        }
        let text = metrics.encode();
        assert_eq!(
            samples(&text, "flagger_canary_status"),
            [r#"flagger_canary_status{name="backend",namespace="prod"} 2"#]
        );
        assert_eq!(
            samples(&text, "flagger_canary_failures_total"),
            [
                r#"flagger_canary_failures_total{analysis_status="completed",deployment_strategy="blue-green",name="backend",namespace="prod"} 1"#
            ]
        );
        assert!(samples(&text, "flagger_canary_successes_total").is_empty());
    }

    #[test]
    fn a_skipped_analysis_counts_as_skipped() {
        let metrics = Metrics::new("0.1.0", "kubernetes");
        let c = canary(&CANARY.replace("  analysis:", "  skipAnalysis: true\n  analysis:"));
        metrics.record_tick(&TickObservation {
            canary: &c,
            before: CanaryPhase::Initialized,
            after: &status(CanaryPhase::Succeeded, 0),
            routes: None,
            duration: None,
        });
        assert_eq!(
            samples(&metrics.encode(), "flagger_canary_successes_total"),
            [
                r#"flagger_canary_successes_total{analysis_status="skipped",deployment_strategy="canary",name="podinfo",namespace="test"} 1"#
            ]
        );
    }

    #[test]
    fn namespaces_without_canaries_drop_to_zero() {
        let metrics = Metrics::new("0.1.0", "kubernetes");
        metrics.set_canary_totals([("a", 2), ("b", 1)]);
        metrics.set_canary_totals([("b", 3)]);
        assert_eq!(
            samples(&metrics.encode(), "flagger_canary_total"),
            [
                r#"flagger_canary_total{namespace="a"} 0"#,
                r#"flagger_canary_total{namespace="b"} 3"#,
            ]
        );
    }

    #[test]
    fn serins_own_series() {
        let metrics = Metrics::new("0.1.0", "kubernetes");
        metrics.sync_succeeded(Duration::from_millis(20), Some("aaaa"));
        metrics.sync_succeeded(Duration::from_millis(20), Some("bbbb"));
        metrics.sync_failed(Duration::from_secs(3));
        metrics.set_ledger_queue_depth(4);
        metrics.inc_ledger_push_failures();
        metrics.inc_api_errors("list_canaries", 1);
        metrics.inc_api_errors("apply", 0);
        metrics.inc_webhook_deliveries("github", "accepted");
        let text = metrics.encode();
        assert_eq!(
            samples(&text, "serin_last_synced_commit_info"),
            [r#"serin_last_synced_commit_info{commit="bbbb"} 1"#]
        );
        assert_eq!(
            samples(&text, "serin_sync_duration_seconds_count"),
            ["serin_sync_duration_seconds_count 3"]
        );
        assert_eq!(
            samples(&text, "serin_sync_failures_total"),
            ["serin_sync_failures_total 1"]
        );
        assert_eq!(
            samples(&text, "serin_ledger_queue_depth"),
            ["serin_ledger_queue_depth 4"]
        );
        assert_eq!(
            samples(&text, "serin_ledger_push_failures_total"),
            ["serin_ledger_push_failures_total 1"]
        );
        assert_eq!(
            samples(&text, "serin_kubernetes_api_errors_total"),
            [r#"serin_kubernetes_api_errors_total{operation="list_canaries"} 1"#]
        );
        assert_eq!(
            samples(&text, "serin_webhook_deliveries_total"),
            [r#"serin_webhook_deliveries_total{provider="github",result="accepted"} 1"#]
        );
    }
}
