//! The metric checks of a tick against the real Prometheus: Serin's builtin success-rate check
//! and a MetricTemplate (read from the cluster, with a token Secret) pass while the workload is
//! healthy and halt with Flagger's messages once it is not.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;
use serin::analysis::metrics::MetricAnalyzer;
use serin::api::{Canary, MetricTemplate};

use crate::TestResult;
use crate::support::{Context, Exporter, TestCtx, eventually, install_flagger_crds};

const TEMPLATE: &str = r#"
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata:
  name: error-rate
spec:
  provider:
    type: prometheus
    address: PROMETHEUS
    secretRef:
      name: prom-auth
  query: |
    100 - sum(rate(http_requests_total{namespace="{{ namespace }}", app="{{ target }}", status!~"5.*"}[{{ interval }}]))
    / sum(rate(http_requests_total{namespace="{{ namespace }}", app="{{ target }}"}[{{ interval }}])) * 100
"#;

fn canary(ns: &str, metrics: &str) -> Result<Canary, libtest_mimic::Failed> {
    let yaml = format!(
        r#"
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
  namespace: {ns}
spec:
  provider: kubernetes
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  service:
    port: 9898
  analysis:
    interval: 10s
    threshold: 2
    iterations: 5
    metrics:
{metrics}
"#
    );
    serde_saphyr::from_str(&yaml).context("parse canary")
}

const BUILTIN: &str = "      - name: request-success-rate\n        interval: 5s\n        thresholdRange:\n          min: 99";
const TEMPLATED: &str = "      - name: error-rate\n        interval: 5s\n        templateRef:\n          name: error-rate\n        thresholdRange:\n          max: 1";

fn serve(exporter: &Exporter, ns: &str, ok: f64, failed: f64) {
    for (status, rate) in [("200", ok), ("500", failed)] {
        exporter.set_rate(
            "http_request_duration_seconds_count",
            &[
                ("kubernetes_namespace", ns),
                ("kubernetes_pod_name", "podinfo-5d8f7c9b4-q2x7z"),
                ("status", status),
            ],
            rate,
        );
        exporter.set_rate(
            "http_requests_total",
            &[("namespace", ns), ("app", "podinfo"), ("status", status)],
            rate,
        );
    }
}

pub async fn builtin_and_template_checks() -> TestResult {
    let ctx = TestCtx::new("metric-checks").await?;
    install_flagger_crds(&ctx.client).await?;
    let ns = ctx.namespace.clone();
    let template: MetricTemplate =
        serde_saphyr::from_str(&TEMPLATE.replace("PROMETHEUS", &ctx.env.prometheus_url))
            .context("parse template")?;
    ctx.api::<MetricTemplate>()
        .create(&PostParams::default(), &template)
        .await
        .context("create MetricTemplate")?;
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "prom-auth" },
        "stringData": { "token": "not-checked-by-prometheus" }
    }))
    .context("secret")?;
    ctx.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .context("create secret")?;

    let exporter = Exporter::default();
    serve(&exporter, &ns, 199.0, 1.0);
    let addr = exporter.serve().await?;
    let _target = ctx.env.add_scrape_target(&ns, addr)?;

    let analyzer = MetricAnalyzer::new(
        ctx.client.clone(),
        Some(ctx.env.prometheus_url.clone()),
        "kubernetes".into(),
    );
    let both = canary(&ns, &format!("{BUILTIN}\n{TEMPLATED}"))?;
    let values = eventually(
        "healthy checks to pass",
        Duration::from_secs(45),
        || async {
            let report = analyzer.analyse(&both).await;
            Ok(match report.failure {
                None => Ok(report.checks),
                Some(failure) => Err(failure),
            })
        },
    )
    .await?;
    let names: Vec<&str> = values.iter().map(|v| v.name.as_str()).collect();
    if names != ["request-success-rate", "error-rate"]
        || (values[0].value.unwrap_or(f64::NAN) - 99.5).abs() > 0.3
        || (values[1].value.unwrap_or(f64::NAN) - 0.5).abs() > 0.3
    {
        return Err(format!("unexpected values {values:?}").into());
    }

    // 30% errors: the builtin check halts first, with Flagger's message.
    serve(&exporter, &ns, 70.0, 30.0);
    let message = eventually(
        "the builtin check to halt",
        Duration::from_secs(45),
        || async {
            Ok(match analyzer.analyse(&both).await.failure {
                Some(m) if m.contains("< 99%") => Ok(m),
                other => Err(other),
            })
        },
    )
    .await?;
    let prefix = format!("Halt podinfo.{ns} advancement success rate ");
    if !message.starts_with(&prefix) {
        return Err(format!("want {prefix:?}…, got {message:?}").into());
    }
    let only_template = canary(&ns, TEMPLATED)?;
    let message = analyzer
        .analyse(&only_template)
        .await
        .failure
        .ok_or("the template check passed at 30% errors")?;
    if !message.starts_with(&format!("Halt podinfo.{ns} advancement error-rate "))
        || !message.ends_with(" > 1")
    {
        return Err(format!("unexpected template halt {message:?}").into());
    }

    let missing = canary(
        &ns,
        &TEMPLATED.replace(
            "name: error-rate\n        thresholdRange",
            "name: error-ratio\n        thresholdRange",
        ),
    )?;
    let message = analyzer
        .analyse(&missing)
        .await
        .failure
        .ok_or("a missing template passed")?;
    if !message.starts_with(&format!("Metric template error-ratio.{ns} error: ")) {
        return Err(format!("unexpected missing-template message {message:?}").into());
    }
    ctx.finish().await;
    Ok(())
}
