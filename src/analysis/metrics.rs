//! The metric checks of one analysis tick (flagger-behaviour.md §5.1): builtin checks and inline
//! queries against the canary's metrics server, then MetricTemplates against their providers.
//! The first failing check decides the tick; its message becomes the Warning event.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

use super::checks::{CheckKind, Observation, Subject, judge};
use crate::api::{Canary, CanaryMetric, MetricCheckStatus, MetricTemplate};
use crate::metrics::builtin::{self, Observer};
use crate::metrics::prometheus::{Credentials, Prometheus, PrometheusConfig, QueryError};
use crate::metrics::template::{TemplateContext, render};

/// Runs the metric checks of canaries.
#[derive(Clone)]
pub struct MetricAnalyzer {
    client: Client,
    /// One HTTP client per Prometheus configuration, reused across ticks: building one sets up
    /// TLS, which would otherwise be paid on every query of every tick.
    prometheus: Arc<Mutex<HashMap<String, Prometheus>>>,
    /// Serin's `--metrics-server`, used when a canary sets no `metricsServer`.
    default_server: Option<String>,
    /// Serin's default provider, used when a canary sets none.
    default_provider: String,
}

/// The metric checks of one tick: each check's value, and the first failure, which decides.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricsReport {
    /// The checks run, in order, up to and including the failing one.
    pub checks: Vec<MetricCheckStatus>,
    pub failure: Option<String>,
}

impl MetricAnalyzer {
    pub fn new(client: Client, default_server: Option<String>, default_provider: String) -> Self {
        MetricAnalyzer {
            client,
            prometheus: Arc::default(),
            default_server,
            default_provider,
        }
    }

    /// Runs the checks in Flagger's order — builtin checks and inline queries, then templates —
    /// until the first failure.
    pub async fn analyse(&self, canary: &Canary) -> MetricsReport {
        let mut report = MetricsReport::default();
        let Some(analysis) = canary.spec.analysis() else {
            return report;
        };
        let namespace = canary.metadata.namespace.as_deref().unwrap_or_default();
        let provider = canary
            .spec
            .provider
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| self.default_provider.clone());
        let canary_name = canary.dotted_name();
        let target = format!("{}.{namespace}", canary.spec.target_name());
        let subject = Subject {
            canary: &canary_name,
            target: &target,
            observer: &provider,
        };
        let ctx = TemplateContext::for_canary(canary);
        let (templated, direct): (Vec<&CanaryMetric>, Vec<&CanaryMetric>) = analysis
            .metrics()
            .iter()
            .partition(|m| m.template_ref.is_some());
        for metric in direct.into_iter().chain(templated) {
            let observation = if metric.template_ref.is_some() {
                self.templated(canary, metric, &ctx).await
            } else {
                self.direct(canary, metric, &provider, &ctx).await
            };
            let (value, failure) = match observation {
                Err(message) => (None, Some(message)),
                Ok(observation) => {
                    let value = match observation {
                        Observation::Value(v) => Some(v),
                        _ => None,
                    };
                    (value, judge(metric, &subject, observation).err())
                }
            };
            report.checks.push(MetricCheckStatus {
                name: metric.name().to_string(),
                value,
                message: failure.clone(),
            });
            if failure.is_some() {
                report.failure = failure;
                break;
            }
        }
        report
    }

    /// A builtin check or inline query against the canary's metrics server.
    async fn direct(
        &self,
        canary: &Canary,
        metric: &CanaryMetric,
        provider: &str,
        ctx: &TemplateContext,
    ) -> Result<Observation, String> {
        let server = canary
            .spec
            .metrics_server
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(|| self.default_server.clone())
            .ok_or_else(|| {
                format!(
                    "Metric query failed for {}: no metrics server: set spec.metricsServer or run Serin with --metrics-server",
                    metric.name()
                )
            })?;
        let mut ctx = ctx.clone();
        let kind = CheckKind::of(metric);
        let query = match kind {
            CheckKind::SuccessRate | CheckKind::Duration => {
                ctx.interval = metric
                    .interval()
                    .unwrap_or(builtin::DEFAULT_BUILTIN_INTERVAL)
                    .to_string();
                let observer = Observer::for_provider(provider).ok_or_else(|| {
                    format!("Metric query failed for {}: builtin checks for provider {provider} are not yet supported by Serin; use a MetricTemplate", metric.name())
                })?;
                let rendered = builtin::query(observer, metric.name(), &ctx)
                    .unwrap_or_else(|| Ok(String::new()))
                    .map_err(|e| format!("Metric query failed for {}: {e}", metric.name()))?;
                (rendered, observer)
            }
            _ => {
                ctx.interval = metric.interval().unwrap_or_default().to_string();
                let raw = metric.query.as_deref().unwrap_or_default();
                let rendered = render(raw, &ctx)
                    .map_err(|e| format!("Metric query failed for {}: {e}", metric.name()))?;
                (rendered, Observer::Istio)
            }
        };
        let prometheus = self
            .prometheus(&PrometheusConfig::new(server))
            .map_err(|e| format!("Metric query failed for {}: {e}", metric.name()))?;
        let observation = observe(prometheus.query(&query.0).await);
        // The generic HTTP observer measures seconds; thresholds are milliseconds.
        Ok(match (kind, query.1, observation) {
            (CheckKind::Duration, Observer::Http, Observation::Value(v)) => {
                Observation::Value(v * 1000.0)
            }
            (_, _, o) => o,
        })
    }

    /// A MetricTemplate check: template and secret from the cluster, then the query.
    async fn templated(
        &self,
        canary: &Canary,
        metric: &CanaryMetric,
        ctx: &TemplateContext,
    ) -> Result<Observation, String> {
        let canary_ns = canary.metadata.namespace.as_deref().unwrap_or_default();
        let Some(r) = &metric.template_ref else {
            return Err(format!(
                "Metric query failed for {}: no templateRef",
                metric.name()
            ));
        };
        let (ns, name) = (r.namespace_or(canary_ns).to_string(), r.name().to_string());
        let template = Api::<MetricTemplate>::namespaced(self.client.clone(), &ns)
            .get(&name)
            .await
            .map_err(|e| format!("Metric template {name}.{ns} error: {e}"))?;
        let provider = template.spec.provider.clone().unwrap_or_default();
        let kind = provider.r#type.as_deref().unwrap_or("prometheus");
        if kind != "prometheus" {
            return Err(format!(
                "Metric template {name}.{ns} provider {kind} error: provider {kind} is not yet supported by Serin"
            ));
        }
        let mut config = PrometheusConfig::new(provider.address.clone().unwrap_or_default());
        config.insecure_skip_verify = provider.insecure_skip_verify.unwrap_or(false);
        for (header, values) in provider.headers.iter().flatten() {
            for v in values {
                config.headers.push((header.clone(), v.clone()));
            }
        }
        if let Some(secret) = provider.secret_ref.as_ref().and_then(|s| s.name.clone()) {
            config.credentials = self
                .credentials(&ns, &secret)
                .await
                .map_err(|e| format!("Metric template {name}.{ns} secret {secret} error: {e}"))?;
        }
        let mut ctx = ctx.clone();
        ctx.interval = metric.interval().unwrap_or_default().to_string();
        ctx.variables = metric.template_variables.clone().unwrap_or_default();
        let query = render(template.spec.query.as_deref().unwrap_or_default(), &ctx)
            .map_err(|e| format!("Metric template {name}.{ns} query render error: {e}"))?;
        let prometheus = self
            .prometheus(&config)
            .map_err(|e| format!("Metric template {name}.{ns} provider {kind} error: {e}"))?;
        Ok(observe(prometheus.query(&query).await))
    }

    /// The client for `config`, built on first use. The key hashes everything the client
    /// holds, credentials included, so a rotated Secret gets a new client.
    fn prometheus(&self, config: &PrometheusConfig) -> Result<Prometheus, QueryError> {
        let mut key = Sha256::new();
        let mut add = |part: &str| {
            key.update(part.as_bytes());
            key.update([0]);
        };
        add(&config.address);
        add(if config.insecure_skip_verify {
            "insecure"
        } else {
            "verify"
        });
        for (name, value) in &config.headers {
            add(name);
            add(value);
        }
        match &config.credentials {
            None => add("none"),
            Some(Credentials::Bearer(token)) => {
                add("bearer");
                add(token);
            }
            Some(Credentials::Basic { username, password }) => {
                add("basic");
                add(username);
                add(password);
            }
        }
        let key = format!("{:x}", key.finalize());
        let mut cache = self.prometheus.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = cache.get(&key) {
            return Ok(client.clone());
        }
        let client = Prometheus::new(config)?;
        cache.insert(key, client.clone());
        Ok(client)
    }

    /// Flagger's secret keys: `token` (bearer), else `username` and `password` (basic).
    async fn credentials(&self, ns: &str, name: &str) -> Result<Option<Credentials>, String> {
        let secret = Api::<Secret>::namespaced(self.client.clone(), ns)
            .get(name)
            .await
            .map_err(|e| e.to_string())?;
        let data: BTreeMap<String, String> = secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).trim().to_string()))
            .collect();
        if let Some(token) = data.get("token") {
            return Ok(Some(Credentials::Bearer(token.clone())));
        }
        match (data.get("username"), data.get("password")) {
            (Some(u), Some(p)) => Ok(Some(Credentials::Basic {
                username: u.clone(),
                password: p.clone(),
            })),
            (None, None) => Ok(None),
            _ => Err("the secret must have both username and password, or a token".into()),
        }
    }
}

fn observe(result: Result<f64, QueryError>) -> Observation {
    match result {
        Ok(v) => Observation::Value(v),
        Err(e @ QueryError::NoValuesFound) => Observation::NoValues(e.to_string()),
        Err(e) => Observation::Failed(e.to_string()),
    }
}
