//! `serin doctor`: checks that the cluster and the metric source Serin will act on are usable,
//! and says how to fix what is not. Each check is independent, so one failure never hides
//! another.

use std::fmt;

use k8s_openapi::api::core::v1::Node;
use kube::api::ListParams;
use kube::{Api, Client};

use crate::metrics::prometheus::{Prometheus, PrometheusConfig};

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    /// What was found, or what is wrong and how to fix it.
    pub detail: String,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.ok { "ok  " } else { "FAIL" };
        write!(f, "{mark} {:<18} {}", self.name, self.detail)
    }
}

fn check(name: &'static str, result: Result<String, String>) -> Check {
    match result {
        Ok(detail) => Check {
            name,
            ok: true,
            detail,
        },
        Err(detail) => Check {
            name,
            ok: false,
            detail,
        },
    }
}

/// Runs every check against `client` and, when given, the Prometheus at `prometheus_url`.
pub async fn run(client: &Client, prometheus_url: Option<&str>) -> Vec<Check> {
    let mut checks = vec![
        check("kubernetes api", api_server(client).await),
        check("nodes", nodes(client).await),
        check("gateway api", gateway_api(client).await),
    ];
    if let Some(url) = prometheus_url {
        checks.push(check("prometheus", prometheus(url).await));
    }
    checks
}

async fn api_server(client: &Client) -> Result<String, String> {
    let info = client.apiserver_version().await.map_err(|e| {
        format!("cannot reach the API server: {e}; check --kubeconfig and that the cluster runs")
    })?;
    Ok(format!("kube-apiserver {}", info.git_version))
}

async fn nodes(client: &Client) -> Result<String, String> {
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|e| format!("cannot list nodes: {e}"))?;
    let ready = nodes
        .items
        .iter()
        .filter(|n| {
            n.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .count();
    if ready == 0 {
        return Err(format!(
            "{} node(s), none Ready: workloads cannot start, so no canary can be analysed",
            nodes.items.len()
        ));
    }
    Ok(format!("{ready} of {} Ready", nodes.items.len()))
}

async fn gateway_api(client: &Client) -> Result<String, String> {
    let resources = client
        .list_api_group_resources("gateway.networking.k8s.io/v1")
        .await
        .map_err(|e| {
            format!(
                "gateway.networking.k8s.io/v1 is not served ({e}); install the Gateway API CRDs to use \
                 provider gatewayapi:v1 (other providers do not need them)"
            )
        })?;
    if !resources.resources.iter().any(|r| r.name == "httproutes") {
        return Err(
            "gateway.networking.k8s.io/v1 has no httproutes; install the Gateway API standard CRDs"
                .into(),
        );
    }
    Ok("HTTPRoute gateway.networking.k8s.io/v1 served".into())
}

async fn prometheus(url: &str) -> Result<String, String> {
    let prometheus = Prometheus::new(&PrometheusConfig::new(url)).map_err(|e| e.to_string())?;
    match prometheus.is_online().await {
        Ok(true) => Ok("vector(1) = 1".into()),
        Ok(false) => {
            Err("vector(1) did not return 1: is this a Prometheus-compatible server?".into())
        }
        Err(e) => Err(format!("{e}; check --prometheus-url")),
    }
}
