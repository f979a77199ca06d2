//! The mesh simulator against the real control plane and a real Prometheus: it accepts the
//! HTTPRoute as a Gateway controller would, and the request metrics it exports follow the
//! route's weights and matches and the Deployments' annotations, read through Serin's own
//! Prometheus client, Serin's builtin queries and the MetricTemplates of the Gateway API
//! tutorial (seed 000).

use std::ops::RangeInclusive;
use std::time::Duration;

use gateway_api::httproutes::{
    HttpRoute, HttpRouteParentRefs, HttpRouteRules, HttpRouteRulesBackendRefs,
    HttpRouteRulesMatches, HttpRouteRulesMatchesHeaders, HttpRouteRulesMatchesHeadersType,
    HttpRouteRulesMatchesPath, HttpRouteRulesMatchesPathType, HttpRouteSpec,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use libtest_mimic::Failed;
use serde_json::json;
use serin::metrics::builtin::{self, Observer};
use serin::metrics::prometheus::{Prometheus, PrometheusConfig, QueryError};
use serin::metrics::template::{TemplateContext, render};
use serin::simulator::{self, SimulatorConfig};

use crate::TestResult;
use crate::support::{Context, TestCtx, eventually};

/// Rate windows need a few 1 s scrapes of steady traffic, and pods a moment to get ready.
const SETTLE: Duration = Duration::from_secs(60);
const WINDOW: &str = "10s";
/// A full rate window plus scrape lag: waited after each routing change, so that every
/// sample in the window shows the new routing and a value passing through the wanted range
/// on its way elsewhere cannot pass a check.
const STEADY: Duration = Duration::from_secs(13);
const RPS: f64 = 100.0;

/// The `error-rate` MetricTemplate of the Gateway API tutorial (seed 000), verbatim.
const SEED_ERROR_RATE: &str = r#"100 - sum(
    rate(
        istio_requests_total{
          reporter="source",
          destination_workload_namespace=~"{{ namespace }}",
          destination_workload=~"{{ target }}",
          response_code!~"5.*"
        }[{{ interval }}]
    )
)
/
sum(
    rate(
        istio_requests_total{
          reporter="source",
          destination_workload_namespace=~"{{ namespace }}",
          destination_workload=~"{{ target }}",
        }[{{ interval }}]
    )
)
* 100"#;

/// The `latency` MetricTemplate of the same tutorial (P99 in seconds), verbatim.
const SEED_LATENCY: &str = r#"histogram_quantile(0.99,
  sum(
    rate(
      istio_request_duration_milliseconds_bucket{
        reporter="source",
        destination_workload_namespace=~"{{ namespace }}",
        destination_workload=~"{{ target }}",
      }[{{ interval }}]
    )
  ) by (le)
)/1000"#;

fn deployment(name: &str, error_rate: &str, latency_ms: &str) -> Result<Deployment, Failed> {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name },
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": {
                    "labels": { "app": name },
                    "annotations": {
                        (simulator::ERROR_RATE_ANNOTATION): error_rate,
                        (simulator::LATENCY_ANNOTATION): latency_ms,
                    },
                },
                "spec": { "containers": [{
                    "name": "podinfod",
                    "image": "ghcr.io/stefanprodan/podinfo:6.0.0",
                    "ports": [{ "name": "http", "containerPort": 9898 }],
                }] }
            }
        }
    }))
    .context("deployment manifest")
}

fn service(name: &str, app: &str) -> Result<Service, Failed> {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "name": name },
        "spec": {
            "selector": { "app": app },
            "ports": [{ "name": "http", "port": 9898, "targetPort": "http" }],
        }
    }))
    .context("service manifest")
}

fn backend(name: &str, weight: i32) -> HttpRouteRulesBackendRefs {
    HttpRouteRulesBackendRefs {
        name: name.into(),
        port: Some(9898),
        weight: Some(weight),
        ..Default::default()
    }
}

fn path_prefix() -> HttpRouteRulesMatches {
    HttpRouteRulesMatches {
        path: Some(HttpRouteRulesMatchesPath {
            r#type: Some(HttpRouteRulesMatchesPathType::PathPrefix),
            value: Some("/".into()),
        }),
        ..Default::default()
    }
}

/// Flagger's weighted rule.
fn weighted(primary: i32, canary: i32) -> Vec<HttpRouteRules> {
    vec![HttpRouteRules {
        matches: Some(vec![path_prefix()]),
        backend_refs: Some(vec![
            backend("podinfo-primary", primary),
            backend("podinfo-canary", canary),
        ]),
        ..Default::default()
    }]
}

/// Flagger's A/B rules: the insider cookie reaches the canary, everyone else the primary.
fn ab_test() -> Vec<HttpRouteRules> {
    vec![
        HttpRouteRules {
            matches: Some(vec![HttpRouteRulesMatches {
                headers: Some(vec![HttpRouteRulesMatchesHeaders {
                    name: "Cookie".into(),
                    r#type: Some(HttpRouteRulesMatchesHeadersType::RegularExpression),
                    value: "^(.*?;)?(type=insider)(;.*)?$".into(),
                }]),
                ..path_prefix()
            }]),
            backend_refs: Some(vec![
                backend("podinfo-primary", 0),
                backend("podinfo-canary", 100),
            ]),
            ..Default::default()
        },
        HttpRouteRules {
            matches: Some(vec![path_prefix()]),
            backend_refs: Some(vec![backend("podinfo-primary", 100)]),
            ..Default::default()
        },
    ]
}

fn route(rules: Vec<HttpRouteRules>) -> HttpRoute {
    HttpRoute {
        metadata: ObjectMeta {
            name: Some("podinfo".into()),
            ..Default::default()
        },
        spec: HttpRouteSpec {
            parent_refs: Some(vec![HttpRouteParentRefs {
                name: "gateway".into(),
                namespace: Some("istio-ingress".into()),
                ..Default::default()
            }]),
            hostnames: Some(vec!["www.example.com".into()]),
            rules: Some(rules),
        },
        status: None,
    }
}

async fn set_rules(routes: &Api<HttpRoute>, rules: Vec<HttpRouteRules>) -> TestResult {
    let patch = json!({ "spec": { "rules": rules } });
    routes
        .patch("podinfo", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .context("change the HTTPRoute's rules")?;
    Ok(())
}

/// Waits until the route's parent is Accepted by the simulator for its current generation,
/// which is what Flagger's GetRoutes checks before it reads or shifts weights.
async fn wait_accepted(routes: &Api<HttpRoute>) -> Result<i64, Failed> {
    eventually(
        "the HTTPRoute's parent to be Accepted for its generation",
        Duration::from_secs(30),
        || async {
            let route = routes.get("podinfo").await.context("get HTTPRoute")?;
            let generation = route.metadata.generation.unwrap_or_default();
            let parents = route.status.map(|s| s.parents).unwrap_or_default();
            let accepted = parents.iter().any(|p| {
                p.controller_name == simulator::CONTROLLER_NAME
                    && p.parent_ref.name == "gateway"
                    && p.parent_ref.namespace.as_deref() == Some("istio-ingress")
                    && p.conditions.iter().any(|c| {
                        c.type_ == "Accepted"
                            && c.status == "True"
                            && c.observed_generation == Some(generation)
                    })
            });
            Ok(if accepted {
                Ok(generation)
            } else {
                Err(format!(
                    "generation {generation}, status.parents {parents:?}"
                ))
            })
        },
    )
    .await
}

/// Waits until the Deployment has a ready pod: the simulator sends nothing to a workload
/// without one.
async fn wait_ready(deployments: &Api<Deployment>, name: &str) -> TestResult {
    eventually(
        &format!("Deployment {name} to have a ready pod"),
        Duration::from_secs(60),
        || async {
            let d = deployments.get(name).await.context("get Deployment")?;
            let ready = d.status.as_ref().and_then(|s| s.ready_replicas);
            Ok(if ready.unwrap_or_default() > 0 {
                Ok(())
            } else {
                Err(format!("status {:?}", d.status))
            })
        },
    )
    .await
}

/// Waits until `query` yields a value within `want`.
async fn settles(
    prometheus: &Prometheus,
    what: &str,
    query: &str,
    want: RangeInclusive<f64>,
) -> Result<f64, Failed> {
    eventually(&format!("{what} in {want:?}"), SETTLE, || async {
        match prometheus.query(query).await {
            Ok(v) if want.contains(&v) => Ok(Ok(v)),
            Ok(v) => Ok(Err(format!("{v}"))),
            Err(QueryError::NoValuesFound) => Ok(Err("no values found".to_string())),
            Err(e) => Err(format!("{what}: query {query}: {e}").into()),
        }
    })
    .await
}

/// Waits until `query` is "no values found" (an empty result or 0/0), as a target without
/// traffic reads in Flagger's semantics.
async fn goes_silent(prometheus: &Prometheus, what: &str, query: &str) -> TestResult {
    eventually(&format!("{what}: no values"), SETTLE, || async {
        match prometheus.query(query).await {
            Err(QueryError::NoValuesFound) => Ok(Ok(())),
            Ok(v) => Ok(Err(format!("{v}"))),
            Err(e) => Err(format!("{what}: query {query}: {e}").into()),
        }
    })
    .await
}

fn context(namespace: &str, target: &str) -> TemplateContext {
    TemplateContext {
        name: "podinfo".into(),
        namespace: namespace.into(),
        target: target.into(),
        interval: WINDOW.into(),
        ..Default::default()
    }
}

fn builtin_query(
    observer: Observer,
    metric: &str,
    namespace: &str,
    target: &str,
) -> Result<String, Failed> {
    builtin::query(observer, metric, &context(namespace, target))
        .ok_or_else(|| Failed::from(format!("{metric} is a builtin")))?
        .context("render a builtin query")
}

/// Requests per second reaching `workload` (all of the namespace's when `None`).
fn request_rate(namespace: &str, workload: Option<&str>) -> String {
    let workload = workload
        .map(|w| format!(r#",destination_workload="{w}""#))
        .unwrap_or_default();
    format!(
        r#"sum(rate(istio_requests_total{{reporter="destination",destination_workload_namespace="{namespace}"{workload}}}[{WINDOW}]))"#
    )
}

/// The canary's share of the requests the route's workloads receive.
fn canary_share(namespace: &str) -> String {
    format!(
        "{} / {}",
        request_rate(namespace, Some("podinfo")),
        request_rate(namespace, None)
    )
}

pub async fn splits_traffic_and_accepts_routes() -> TestResult {
    let ctx = TestCtx::new("simulator").await?;
    let ns = ctx.namespace.clone();
    let post = PostParams::default();

    let deployments = ctx.api::<Deployment>();
    deployments
        .create(&post, &deployment("podinfo", "0.3", "300")?)
        .await
        .context("create the canary Deployment")?;
    deployments
        .create(&post, &deployment("podinfo-primary", "0", "50")?)
        .await
        .context("create the primary Deployment")?;
    let services = ctx.api::<Service>();
    services
        .create(&post, &service("podinfo-canary", "podinfo")?)
        .await
        .context("create podinfo-canary")?;
    services
        .create(&post, &service("podinfo-primary", "podinfo-primary")?)
        .await
        .context("create podinfo-primary")?;
    let routes = ctx.api::<HttpRoute>();
    routes
        .create(&post, &route(weighted(80, 20)))
        .await
        .context("create the HTTPRoute")?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("bind the simulator")?;
    let addr = listener.local_addr().context("simulator address")?;
    let config = SimulatorConfig {
        namespaces: vec![ns.clone()],
        rps: RPS,
        ..Default::default()
    };
    let sim = tokio::spawn(simulator::run(ctx.client.clone(), config, listener));
    let _target = ctx.env.add_scrape_target(&ns, addr)?;
    let prometheus = Prometheus::new(&PrometheusConfig::new(&ctx.env.prometheus_url))
        .context("prometheus client")?;

    let generation = wait_accepted(&routes).await?;
    wait_ready(&deployments, "podinfo").await?;
    wait_ready(&deployments, "podinfo-primary").await?;
    tokio::time::sleep(STEADY).await;

    // 80/20: a fifth of the requests reach the canary, at the configured rate in total.
    settles(
        &prometheus,
        "canary share at 80/20",
        &canary_share(&ns),
        0.18..=0.22,
    )
    .await?;
    settles(
        &prometheus,
        "requests/s through the route",
        &request_rate(&ns, None),
        RPS * 0.85..=RPS * 1.15,
    )
    .await?;

    // Serin's builtin checks, both observers: the canary answers 30% with 500, in 300 ms
    // (P99 interpolated within the (250, 500] ms bucket); the primary is clean and fast.
    use builtin::{DURATION, SUCCESS_RATE};
    for observer in [Observer::Istio, Observer::Http] {
        let name = format!("{observer:?}");
        // The HTTP observer measures seconds; the analysis multiplies by 1000.
        let scale = if observer == Observer::Http {
            1000.0
        } else {
            1.0
        };
        let rate = builtin_query(observer, SUCCESS_RATE, &ns, "podinfo")?;
        settles(
            &prometheus,
            &format!("{name} canary success rate"),
            &rate,
            68.0..=72.0,
        )
        .await?;
        let rate = builtin_query(observer, SUCCESS_RATE, &ns, "podinfo-primary")?;
        settles(
            &prometheus,
            &format!("{name} primary success rate"),
            &rate,
            99.9..=100.0,
        )
        .await?;
        let p99 = builtin_query(observer, DURATION, &ns, "podinfo")?;
        let p99 = format!("({p99}) * {scale}");
        settles(
            &prometheus,
            &format!("{name} canary P99 ms"),
            &p99,
            250.0..=500.0,
        )
        .await?;
        let p99 = builtin_query(observer, DURATION, &ns, "podinfo-primary")?;
        let p99 = format!("({p99}) * {scale}");
        settles(
            &prometheus,
            &format!("{name} primary P99 ms"),
            &p99,
            25.0..=50.0,
        )
        .await?;
    }

    // The tutorial's MetricTemplates (reporter="source") as a user would write them.
    let error_rate = render(SEED_ERROR_RATE, &context(&ns, "podinfo")).context("render")?;
    settles(
        &prometheus,
        "seed error-rate of podinfo",
        &error_rate,
        28.0..=32.0,
    )
    .await?;
    let error_rate = render(SEED_ERROR_RATE, &context(&ns, "podinfo-primary")).context("render")?;
    settles(
        &prometheus,
        "seed error-rate of podinfo-primary",
        &error_rate,
        0.0..=0.1,
    )
    .await?;
    let latency = render(SEED_LATENCY, &context(&ns, "podinfo")).context("render")?;
    settles(
        &prometheus,
        "seed latency of podinfo (s)",
        &latency,
        0.25..=0.5,
    )
    .await?;

    // Weights back to 100/0: the new generation is accepted again, and the canary's
    // request rate falls to 0, so its success rate has no values (0/0), as in Flagger.
    set_rules(&routes, weighted(100, 0)).await?;
    let next = wait_accepted(&routes).await?;
    if next <= generation {
        return Err(format!("generation {next} after a spec change, was {generation}").into());
    }
    tokio::time::sleep(STEADY).await;
    settles(
        &prometheus,
        "canary requests/s at 100/0",
        &request_rate(&ns, Some("podinfo")),
        0.0..=0.0,
    )
    .await?;
    for observer in [Observer::Istio, Observer::Http] {
        let rate = builtin_query(observer, SUCCESS_RATE, &ns, "podinfo")?;
        goes_silent(
            &prometheus,
            &format!("{observer:?} canary success rate"),
            &rate,
        )
        .await?;
    }
    settles(
        &prometheus,
        "canary share at 100/0",
        &canary_share(&ns),
        0.0..=0.0,
    )
    .await?;

    // A/B: only the requests that carry the insider cookie (the default 10%) reach the canary.
    set_rules(&routes, ab_test()).await?;
    wait_accepted(&routes).await?;
    tokio::time::sleep(STEADY).await;
    settles(
        &prometheus,
        "canary share in the A/B test",
        &canary_share(&ns),
        0.08..=0.12,
    )
    .await?;

    if sim.is_finished() {
        return Err(format!("the simulator stopped: {:?}", sim.await).into());
    }
    sim.abort();
    ctx.finish().await;
    Ok(())
}
