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

/// Runs every check against `client` and, when given, the Prometheus at `prometheus_url`;
/// `provider` is the one whose routing objects must be served (`serin run --provider`).
pub async fn run(client: &Client, prometheus_url: Option<&str>, provider: &str) -> Vec<Check> {
    let mut checks = vec![
        check("kubernetes api", api_server(client).await),
        check("nodes", nodes(client).await),
        check("routing", routing(client, provider).await),
    ];
    if let Some(url) = prometheus_url {
        checks.push(check("prometheus", prometheus(url).await));
    }
    checks
}

/// The API groups each provider's router writes, with the resources it needs there.
fn routing_apis(provider: &str) -> Option<&'static [(&'static str, &'static str)]> {
    Some(match provider {
        "kubernetes" => &[],
        "istio" => &[
            ("networking.istio.io/v1", "virtualservices"),
            ("networking.istio.io/v1", "destinationrules"),
        ],
        p if p.starts_with("gloo") => &[
            ("gateway.solo.io/v1", "routetables"),
            ("gloo.solo.io/v1", "upstreams"),
        ],
        "apisix" => &[("apisix.apache.org/v2", "apisixroutes")],
        "contour" => &[("projectcontour.io/v1", "httpproxies")],
        "nginx" => &[("networking.k8s.io/v1", "ingresses")],
        // The versions the runner's factory routes, by the same prefix rule.
        p => match crate::router::GatewayApiVersion::from_provider(p)? {
            crate::router::GatewayApiVersion::V1beta1 => {
                &[("gateway.networking.k8s.io/v1beta1", "httproutes")]
            }
            crate::router::GatewayApiVersion::V1 => {
                &[("gateway.networking.k8s.io/v1", "httproutes")]
            }
        },
    })
}

async fn routing(client: &Client, provider: &str) -> Result<String, String> {
    let apis = routing_apis(provider).ok_or_else(|| {
        format!("provider {provider} is not routed by Serin; pass --provider with the one your Canaries use")
    })?;
    if apis.is_empty() {
        return Ok(format!("provider {provider} needs no routing objects"));
    }
    let mut served = Vec::new();
    for (group_version, resource) in apis {
        let resources = client
            .list_api_group_resources(group_version)
            .await
            .map_err(|e| {
                format!(
                    "{group_version} is not served ({e}); install the CRDs of provider {provider}, \
                     or pass --provider with the one your Canaries use"
                )
            })?;
        if !resources.resources.iter().any(|r| r.name == *resource) {
            return Err(format!(
                "{group_version} has no {resource}; install the CRDs of provider {provider}"
            ));
        }
        served.push(format!("{resource}.{group_version}"));
    }
    Ok(format!("provider {provider}: {} served", served.join(", ")))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_apis_follow_the_router_factory() {
        let group =
            |p: &str| routing_apis(p).map(|a| a.iter().map(|(g, _)| *g).collect::<Vec<_>>());
        assert_eq!(group("kubernetes"), Some(vec![]));
        assert_eq!(
            group("istio"),
            Some(vec!["networking.istio.io/v1", "networking.istio.io/v1"])
        );
        assert_eq!(
            group("gloo"),
            Some(vec!["gateway.solo.io/v1", "gloo.solo.io/v1"])
        );
        assert_eq!(
            group("gatewayapi:v1beta1:istio"),
            Some(vec!["gateway.networking.k8s.io/v1beta1"])
        );
        assert_eq!(
            group("gatewayapi:v1"),
            Some(vec!["gateway.networking.k8s.io/v1"])
        );
        // What the runner does not route, doctor does not pass.
        for p in ["gatewayapi", "gatewayapi:v2", "traefik", "linkerd"] {
            assert_eq!(group(p), None, "{p}");
        }
    }
}
