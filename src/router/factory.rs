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

/// What `canary`'s own `spec.provider` cannot express, for `serin validate` as errors (Gateway
/// API's checks live in the Canary's validation).
pub fn inexpressible(canary: &Canary) -> Vec<Inexpressible> {
    match canary.spec.provider.as_deref().unwrap_or_default() {
        p if p.starts_with("gloo") => gloo::inexpressible(canary),
        "apisix" => apisix::inexpressible(canary),
        "contour" => contour::inexpressible(canary),
        "nginx" => nginx::inexpressible(canary),
        // Flagger's CRD default: a Canary without a provider in an Istio mesh.
        "istio" => istio::inexpressible(canary),
        _ => Vec::new(),
    }
}

/// `spec.service` fields `canary`'s provider ignores, for `serin validate` as warnings: Flagger
/// ignores them silently, and its own example Canaries carry some.
pub fn ignored_fields(canary: &Canary) -> Vec<Inexpressible> {
    match canary.spec.provider.as_deref().unwrap_or_default() {
        "contour" => contour::ignored_fields(canary),
        "nginx" => nginx::ignored_fields(canary),
        _ => Vec::new(),
    }
}
