//! The real Prometheus scrapes an exporter the test runs, and Serin's builtin
//! `request-success-rate` query (Flagger's shape for the kubernetes and Gateway API providers)
//! returns the ratio the exporter was told to produce, through Serin's own Prometheus client.

use std::time::Duration;

use serin::metrics::builtin::{self, Observer};
use serin::metrics::prometheus::{Prometheus, PrometheusConfig, QueryError};
use serin::metrics::template::TemplateContext;

use crate::TestResult;
use crate::support::{Context, Exporter, TestCtx, eventually};

const COUNTER: &str = "http_request_duration_seconds_count";

/// Serin's own builtin `request-success-rate` query for the kubernetes / Gateway API
/// providers, over a 5 s window so the test converges quickly.
fn success_rate_query(namespace: &str) -> Result<String, libtest_mimic::Failed> {
    let ctx = TemplateContext {
        namespace: namespace.into(),
        target: "podinfo".into(),
        interval: "5s".into(),
        ..Default::default()
    };
    builtin::query(Observer::Http, builtin::SUCCESS_RATE, &ctx)
        .ok_or("request-success-rate is a builtin")?
        .context("render the builtin query")
}

/// Sets the exporter to answer `ok` requests/s with 200 and `failed` with 503.
fn serve_traffic(exporter: &Exporter, namespace: &str, ok: f64, failed: f64) {
    for (status, rate) in [("200", ok), ("503", failed)] {
        let labels = [
            ("kubernetes_namespace", namespace),
            ("kubernetes_pod_name", "podinfo-7d9c8b6f5-x2x9z"),
            ("status", status),
        ];
        exporter.set_rate(COUNTER, &labels, rate);
    }
}

async fn wait_for_rate(prometheus: &Prometheus, query: &str, want: f64) -> TestResult {
    eventually(
        &format!("a success rate of {want}%"),
        Duration::from_secs(45),
        || async {
            match prometheus.query(query).await {
                Ok(v) if (v - want).abs() < 0.5 => Ok(Ok(v)),
                Ok(v) => Ok(Err(format!("{v}"))),
                Err(QueryError::NoValuesFound) => Ok(Err("no values found".into())),
                Err(e) => Err(format!("query failed: {e}").into()),
            }
        },
    )
    .await
    .map(|_| ())
}

pub async fn success_rate_follows_exporter() -> TestResult {
    let ctx = TestCtx::new("prometheus").await?;
    let prometheus = Prometheus::new(&PrometheusConfig::new(&ctx.env.prometheus_url))
        .context("prometheus client")?;
    if !prometheus.is_online().await.context("vector(1)")? {
        return Err("prometheus did not answer vector(1) with 1".into());
    }

    let query = success_rate_query(&ctx.namespace)?;
    // Before any traffic the series do not exist: "no values found", not 0.
    match prometheus.query(&query).await {
        Err(QueryError::NoValuesFound) => {}
        other => return Err(format!("want no values found before traffic, got {other:?}").into()),
    }

    let exporter = Exporter::default();
    serve_traffic(&exporter, &ctx.namespace, 99.0, 1.0);
    let addr = exporter.serve().await?;
    let _target = ctx.env.add_scrape_target(&ctx.namespace, addr)?;
    wait_for_rate(&prometheus, &query, 99.0).await?;

    // The figure follows what the workload does, not a constant: 90% after a change.
    serve_traffic(&exporter, &ctx.namespace, 45.0, 5.0);
    wait_for_rate(&prometheus, &query, 90.0).await?;

    // A malformed query is Prometheus' 400 with its own explanation.
    match prometheus.query("sum(rate(").await {
        Err(QueryError::ErrorResponse { status, message })
            if status.starts_with("400") && message.starts_with("bad_data") => {}
        other => {
            return Err(
                format!("want a 400 bad_data error for a malformed query, got {other:?}").into(),
            );
        }
    }
    ctx.finish().await;
    Ok(())
}
