//! The router of a canary's provider (Flagger's `router/factory.go`), and what that provider
//! cannot express.

use kube::Client;

use super::{
    ApisixRouter, ContourRouter, GatewayApiRouter, GatewayApiVersion, GlooRouter, Inexpressible,
    IstioRouter, NginxRouter, NopRouter, Router, RouterError, Routes, RoutingOptions, apisix,
    contour, gloo, istio, nginx,
};
use crate::api::{Canary, CanaryStatus};

/// One router per provider Serin routes.
pub enum AnyRouter {
    GatewayApi(GatewayApiRouter),
    Kubernetes(NopRouter),
    Gloo(GlooRouter),
    Apisix(ApisixRouter),
    Contour(ContourRouter),
    Nginx(NginxRouter),
    Istio(IstioRouter),
}

impl AnyRouter {
    /// The router of `provider`; `None` for a provider Serin does not route. Unlike Flagger,
    /// an unknown provider is not routed as Istio: validation names it instead.
    pub fn for_provider(
        provider: &str,
        client: &Client,
        options: &RoutingOptions,
        include_label_prefixes: &[String],
    ) -> Option<AnyRouter> {
        let client = client.clone();
        Some(match provider {
            "kubernetes" => AnyRouter::Kubernetes(NopRouter),
            "istio" => AnyRouter::Istio(IstioRouter::new(client)),
            p if p.starts_with("gloo") => AnyRouter::Gloo(
                GlooRouter::new(client)
                    .with_include_label_prefixes(include_label_prefixes.to_vec()),
            ),
            "apisix" => AnyRouter::Apisix(ApisixRouter::new(client)),
            "contour" => {
                AnyRouter::Contour(ContourRouter::new(client, options.ingress_class.clone()))
            }
            "nginx" => AnyRouter::Nginx(NginxRouter::new(
                client,
                options.ingress_annotations_prefix.clone(),
            )),
            p => AnyRouter::GatewayApi(GatewayApiRouter::new(
                client,
                GatewayApiVersion::from_provider(p)?,
            )),
        })
    }

    /// Flagger's `Finalize`: what a deleted Canary with `revertOnDeletion` leaves behind.
    pub async fn finalize(&self, canary: &Canary) -> Result<(), RouterError> {
        match self {
            AnyRouter::GatewayApi(_) | AnyRouter::Kubernetes(_) => Ok(()),
            AnyRouter::Gloo(r) => r.finalize(canary).await,
            AnyRouter::Apisix(r) => r.finalize(canary).await,
            AnyRouter::Contour(r) => r.finalize(canary).await,
            AnyRouter::Nginx(r) => r.finalize(canary).await,
            AnyRouter::Istio(r) => r.finalize(canary).await,
        }
    }
}

impl Router for AnyRouter {
    async fn reconcile(&self, canary: &Canary) -> Result<(), RouterError> {
        match self {
            AnyRouter::GatewayApi(r) => r.reconcile(canary).await,
            AnyRouter::Kubernetes(r) => r.reconcile(canary).await,
            AnyRouter::Gloo(r) => r.reconcile(canary).await,
            AnyRouter::Apisix(r) => r.reconcile(canary).await,
            AnyRouter::Contour(r) => r.reconcile(canary).await,
            AnyRouter::Nginx(r) => r.reconcile(canary).await,
            AnyRouter::Istio(r) => r.reconcile(canary).await,
        }
    }

    async fn set_routes(
        &self,
        canary: &Canary,
        routes: Routes,
        status: &mut CanaryStatus,
    ) -> Result<(), RouterError> {
        match self {
            AnyRouter::GatewayApi(r) => r.set_routes(canary, routes, status).await,
            AnyRouter::Kubernetes(r) => r.set_routes(canary, routes, status).await,
            AnyRouter::Gloo(r) => r.set_routes(canary, routes, status).await,
            AnyRouter::Apisix(r) => r.set_routes(canary, routes, status).await,
            AnyRouter::Contour(r) => r.set_routes(canary, routes, status).await,
            AnyRouter::Nginx(r) => r.set_routes(canary, routes, status).await,
            AnyRouter::Istio(r) => r.set_routes(canary, routes, status).await,
        }
    }

    async fn get_routes(&self, canary: &Canary) -> Result<Routes, RouterError> {
        match self {
            AnyRouter::GatewayApi(r) => r.get_routes(canary).await,
            AnyRouter::Kubernetes(r) => r.get_routes(canary).await,
            AnyRouter::Gloo(r) => r.get_routes(canary).await,
            AnyRouter::Apisix(r) => r.get_routes(canary).await,
            AnyRouter::Contour(r) => r.get_routes(canary).await,
            AnyRouter::Nginx(r) => r.get_routes(canary).await,
            AnyRouter::Istio(r) => r.get_routes(canary).await,
        }
    }
}

/// The provider that routes `canary`: its own, else `default_provider` (`--provider`).
fn provider_of<'a>(canary: &'a Canary, default_provider: &'a str) -> &'a str {
    canary.spec.provider().unwrap_or(default_provider)
}

/// What `canary`'s provider cannot express, for `serin validate` as errors (Gateway API's
/// checks live in the Canary's validation).
pub fn inexpressible(canary: &Canary, default_provider: &str) -> Vec<Inexpressible> {
    match provider_of(canary, default_provider) {
        p if p.starts_with("gloo") => gloo::inexpressible(canary),
        "apisix" => apisix::inexpressible(canary),
        "contour" => contour::inexpressible(canary),
        "nginx" => nginx::inexpressible(canary),
        "istio" => istio::inexpressible(canary),
        _ => Vec::new(),
    }
}

/// `spec.service` fields `canary`'s provider ignores, for `serin validate` as warnings: Flagger
/// ignores them silently, and its own example Canaries carry some.
pub fn ignored_fields(canary: &Canary, default_provider: &str) -> Vec<Inexpressible> {
    match provider_of(canary, default_provider) {
        "contour" => contour::ignored_fields(canary),
        "istio" => istio::ignored_fields(canary),
        "nginx" => nginx::ignored_fields(canary),
        _ => Vec::new(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn canary(provider: Option<&str>) -> Canary {
        let yaml = format!(
            "apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {{name: podinfo, namespace: test}}
spec:
  {}
  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: podinfo}}
  service: {{port: 9898}}
  analysis:
    interval: 1m
    iterations: 5
    match: [{{headers: {{x-canary: {{suffix: insider}}}}}}]
",
            provider
                .map(|p| format!("provider: {p}"))
                .unwrap_or_default()
        );
        serde_saphyr::from_str(&yaml).unwrap()
    }

    #[test]
    fn a_canary_without_provider_is_checked_as_the_default_providers() {
        let fields = |c: &Canary, default: &str| {
            inexpressible(c, default)
                .into_iter()
                .map(|i| i.field)
                .collect::<Vec<_>>()
        };
        // Istio has no suffix match: refused whether named or the default.
        let suffix = ["spec.analysis.match[0].headers.x-canary.suffix".to_string()];
        assert_eq!(
            fields(&canary(Some("istio")), "gatewayapi:v1"),
            suffix.clone()
        );
        assert_eq!(fields(&canary(None), "istio"), suffix);
        // Gateway API checks it in the Canary's own validation; Contour turns a suffix into
        // "contains", as Flagger does.
        assert!(fields(&canary(None), "gatewayapi:v1").is_empty());
        assert!(fields(&canary(Some("contour")), "istio").is_empty());
        assert!(!fields(&canary(None), "gloo").is_empty());
    }
}
