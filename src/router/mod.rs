//! Traffic routing: the Services every Canary gets and the provider objects that split traffic
//! between primary and canary (Flagger reference §4).
//!
//! Each router is split in two halves so that Flagger's rules can be table-tested without a
//! cluster:
//! * pure builders that turn a Canary (+ the weights wanted + the session cookies in its
//!   status) into the desired objects, and pure rules that decide whether a live object must
//!   be rewritten and what weights it carries;
//! * a thin I/O shell per provider that reads the live object and writes the desired one with
//!   server-side apply (strict field validation for CRDs: the provider's schema checks it).
//!
//! * [`factory`]: the router of a canary's provider, and what that provider cannot express.
//! * [`kubernetes`]: the apex / `-primary` / `-canary` ClusterIP Services (§4.1) and the
//!   routing of `provider: kubernetes`, which has no routing object.
//! * [`gateway_api`]: the HTTPRoute of `gatewayapi:v1` and `gatewayapi:v1beta1` (§4.2).
//! * [`istio`]: the VirtualService and DestinationRules (§4.3).
//! * [`gloo`]: the RouteTable and Upstreams of Gloo Edge (§4.4).
//! * [`apisix`]: the canary ApisixRoute (§4.5).
//! * [`contour`], [`nginx`]: the HTTPProxy and the canary Ingress (§4.6).
//! * [`cookie`]: session-affinity cookie values and `Set-Cookie` headers.

pub mod apisix;
pub mod contour;
pub mod cookie;
pub mod factory;
pub mod gateway_api;
pub mod gloo;
pub mod istio;
pub mod kubernetes;
pub mod nginx;

use std::collections::BTreeMap;
use std::future::Future;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;

use crate::api::{Canary, CanaryService, CanaryStatus};

pub use apisix::ApisixRouter;
pub use contour::ContourRouter;
pub use cookie::{CookieValues, RandomLetters, SessionCookies};
pub use factory::{AnyRouter, ignored_fields, inexpressible};
pub use gateway_api::{GatewayApiRouter, GatewayApiVersion, HttpRouteObject};
pub use gloo::GlooRouter;
pub use istio::IstioRouter;
pub use kubernetes::{KubernetesRouter, NopRouter, ServiceSelector};
pub use nginx::NginxRouter;

pub use crate::cluster::FIELD_MANAGER;

/// Annotation that stops Flux's kustomize-controller from reverting a generated object.
pub const FLUX_RECONCILE_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/reconcile";
/// Annotation that stops Flux's helm-controller drift detection on a generated object.
pub const HELM_DRIFT_DETECTION_ANNOTATION: &str = "helm.toolkit.fluxcd.io/driftDetection";
/// Value of both Flux opt-out annotations.
pub const FLUX_DISABLED: &str = "disabled";

/// NGINX's default annotation prefix (Flagger's `-ingress-annotations-prefix`).
pub const DEFAULT_INGRESS_ANNOTATIONS_PREFIX: &str = nginx::DEFAULT_ANNOTATIONS_PREFIX;

/// The controller-wide settings some routers take (Flagger's `-ingress-annotations-prefix`
/// and `-ingress-class`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingOptions {
    /// Prefix of the NGINX canary annotations (`<prefix>/canary-weight`).
    pub ingress_annotations_prefix: String,
    /// `spec.ingressClassName` of Contour's HTTPProxies; unset leaves it out.
    pub ingress_class: Option<String>,
}

impl Default for RoutingOptions {
    fn default() -> Self {
        RoutingOptions {
            ingress_annotations_prefix: DEFAULT_INGRESS_ANNOTATIONS_PREFIX.into(),
            ingress_class: None,
        }
    }
}

/// Traffic split between the primary and the canary, as Flagger's routers report it.
///
/// `mirrored` means a copy of the primary's traffic also goes to the canary (blue/green with
/// `analysis.mirror`); the copies' responses are discarded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Routes {
    pub primary: u32,
    pub canary: u32,
    pub mirrored: bool,
}

impl Routes {
    /// All traffic to the primary: what a route carries before and after an analysis.
    pub const INITIAL: Routes = Routes {
        primary: 100,
        canary: 0,
        mirrored: false,
    };

    pub const fn new(primary: u32, canary: u32) -> Self {
        Routes {
            primary,
            canary,
            mirrored: false,
        }
    }
}

/// A traffic router of one provider (Flagger's mesh `Router` interface).
///
/// `set_routes` may generate session-affinity cookies; it writes them into `status`, and the
/// caller persists them with the next status write of the same tick (as Flagger does).
pub trait Router {
    /// Creates or updates the routing object. Weights are left alone unless something else
    /// in the object has to change (then Flagger resets them to 100/0).
    fn reconcile(&self, canary: &Canary) -> impl Future<Output = Result<(), RouterError>> + Send;

    /// Routes `routes.primary`/`routes.canary` percent of the traffic, mirroring to the canary
    /// when `routes.mirrored` (blue/green only).
    fn set_routes(
        &self,
        canary: &Canary,
        routes: Routes,
        status: &mut CanaryStatus,
    ) -> impl Future<Output = Result<(), RouterError>> + Send;

    /// The split the routing object carries now.
    fn get_routes(
        &self,
        canary: &Canary,
    ) -> impl Future<Output = Result<Routes, RouterError>> + Send;
}

/// Why a routing object could not be built, read or written.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// Flagger's text, so existing runbooks and alerts still match.
    #[error("GatewayRefs must be specified when using Gateway API as a provider.")]
    MissingGatewayRefs,
    #[error("canary {canary} has no spec.service.port; set the port the Services expose")]
    MissingServicePort { canary: String },
    #[error(
        "canary {canary} has no namespace; set metadata.namespace so Serin knows where to \
         create its Services and routes"
    )]
    MissingNamespace { canary: String },
    #[error(
        "canary {canary} has no metadata.uid; read it back from the cluster before routing, \
         so the generated objects can name it as their owner"
    )]
    MissingUid { canary: String },
    /// Flagger's prefix; the cause says which selector.
    #[error("Invalid request matching selectors")]
    InvalidMatch(#[source] MatchError),
    /// Flagger's prefix for a `sessionAffinity.primaryCookieName` with an unusable interval.
    #[error("failed to parse canary interval")]
    InvalidInterval(#[source] crate::api::DurationError),
    /// Flagger's text: a Gateway has not (yet) accepted the current generation of the route.
    #[error(
        "HTTPRoute {route}.{namespace} parent {parent} is not ready (status: {status}, \
         observed generation: {observed_generation}, current generation: {current_generation})"
    )]
    ParentNotReady {
        route: String,
        namespace: String,
        parent: String,
        status: String,
        observed_generation: i64,
        current_generation: i64,
    },
    /// A provider's object cannot be built or read as Flagger would; the text is Flagger's
    /// where it has one (`apisix route selector is empty`, `VirtualService podinfo.test does
    /// not contain routes for podinfo-primary and podinfo-canary`).
    #[error("{0}")]
    Refused(String),
    /// An API call on a generated object failed; Flagger's `<Kind> <name>.<ns> <action> error`.
    #[error("{kind} {name}.{namespace} {action} error")]
    Api {
        kind: &'static str,
        name: String,
        namespace: String,
        action: ApiAction,
        #[source]
        source: Box<kube::Error>,
    },
}

/// What Serin was doing with an object when the API server said no.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiAction {
    Get,
    Apply,
    Update,
    Delete,
}

impl std::fmt::Display for ApiAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ApiAction::Get => "get",
            ApiAction::Apply => "apply",
            ApiAction::Update => "update",
            ApiAction::Delete => "delete",
        })
    }
}

/// A `service.match` / `analysis.match` condition Gateway API cannot express. The texts are
/// Flagger's, with the offending selector rendered as YAML-ish `{exact: ..}` instead of Go's
/// `%+v`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatchError {
    #[error("Gateway API doesn't support the specified path matching selector: {0}")]
    Path(String),
    #[error("Gateway API doesn't support the specified header matching selector: {0}")]
    Header(String),
    #[error("Gateway API doesn't support the specified query matching selector: {0}")]
    Query(String),
    #[error(
        "Gateway API doesn't support the specified method matching selector: {0} (use exact \
         with one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH)"
    )]
    Method(String),
}

/// The Canary's namespace, where every generated object lives.
pub(crate) fn canary_namespace(canary: &Canary) -> Result<&str, RouterError> {
    canary
        .metadata
        .namespace
        .as_deref()
        .filter(|ns| !ns.is_empty())
        .ok_or_else(|| RouterError::MissingNamespace {
            canary: canary.metadata.name.clone().unwrap_or_default(),
        })
}

/// `spec.service`, which the CRD requires; its port is the one every generated object uses.
pub(crate) fn canary_service(canary: &Canary) -> Result<(&CanaryService, i32), RouterError> {
    canary
        .spec
        .service
        .as_ref()
        .and_then(|s| s.port.map(|port| (s, port)))
        .ok_or_else(|| RouterError::MissingServicePort {
            canary: canary.dotted_name(),
        })
}

/// The controller reference every generated object carries, so that deleting the Canary lets
/// the garbage collector delete them (Flagger's `NewControllerRef`).
pub fn owner_reference(canary: &Canary) -> Result<OwnerReference, RouterError> {
    let uid = canary
        .metadata
        .uid
        .clone()
        .filter(|uid| !uid.is_empty())
        .ok_or_else(|| RouterError::MissingUid {
            canary: canary.dotted_name(),
        })?;
    Ok(OwnerReference {
        api_version: Canary::api_version(&()).into_owned(),
        kind: Canary::kind(&()).into_owned(),
        name: canary.metadata.name.clone().unwrap_or_default(),
        uid,
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

/// Whether the object's controller is the Canary named `canary_name` (Flagger's
/// `isOwnedByCanary`: the kind and name of the controller reference).
pub fn controlled_by(metadata: &ObjectMeta, canary_name: &str) -> bool {
    metadata
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
        .is_some_and(|r| r.kind == "Canary" && r.name == canary_name)
}

/// `annotations` plus Flagger's Flux opt-out pair: Flux must not revert what Serin generates.
pub fn with_flux_opt_out(
    annotations: Option<&BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    let mut out = annotations.cloned().unwrap_or_default();
    out.insert(FLUX_RECONCILE_ANNOTATION.into(), FLUX_DISABLED.into());
    out.insert(HELM_DRIFT_DETECTION_ANNOTATION.into(), FLUX_DISABLED.into());
    out
}

/// Something in a Canary that a provider's routing objects cannot express (an A/B match
/// kind the provider lacks, a field it has no place for). `serin validate` reports each as an
/// error naming the provider and the field; the routers refuse the same input at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inexpressible {
    /// The Canary field, from `spec`: `spec.analysis.match[0].headers.x-canary`.
    pub field: String,
    /// What the provider cannot do, naming the provider: `provider "gloo" matches headers by
    /// exact value or regex only`.
    pub problem: String,
    /// What to write instead.
    pub fix: String,
}

/// The run-time side of a provider's `inexpressible`: the router refuses the Canary before
/// writing anything, with every problem and its fix (the same ones `serin validate` reports).
pub(crate) fn refuse(
    canary: &Canary,
    routed_by: &str,
    problems: &[Inexpressible],
) -> Result<(), RouterError> {
    if problems.is_empty() {
        return Ok(());
    }
    let text: Vec<String> = problems
        .iter()
        .map(|p| format!("{}: {}; fix: {}", p.field, p.problem, p.fix))
        .collect();
    Err(RouterError::Refused(format!(
        "canary {} cannot be routed by {routed_by}: {}",
        canary.dotted_name(),
        text.join("; ")
    )))
}

/// The fields of a `service.match` / `analysis.match` request other than `headers` and
/// `name` that say something: what a header-only router (Contour, NGINX; Gloo beside the
/// method) would drop. `ignoreUriCase: false` and empty values say nothing.
pub(crate) fn set_match_fields(m: &crate::api::HttpMatchRequest) -> Vec<&'static str> {
    let map = |v: &Option<BTreeMap<String, crate::api::StringMatch>>| {
        v.as_ref().is_some_and(|m| !m.is_empty())
    };
    [
        ("uri", m.uri.is_some()),
        ("scheme", m.scheme.is_some()),
        ("method", m.method.is_some()),
        ("authority", m.authority.is_some()),
        ("port", m.port.is_some()),
        (
            "sourceLabels",
            m.source_labels.as_ref().is_some_and(|l| !l.is_empty()),
        ),
        (
            "sourceNamespace",
            m.source_namespace.as_deref().is_some_and(|n| !n.is_empty()),
        ),
        (
            "gateways",
            m.gateways.as_ref().is_some_and(|g| !g.is_empty()),
        ),
        ("queryParams", map(&m.query_params)),
        ("ignoreUriCase", m.ignore_uri_case == Some(true)),
        ("withoutHeaders", map(&m.without_headers)),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect()
}

/// Server-side apply as the field manager, with the API server checking every field against
/// the provider's CRD schema: a field the CRD does not know is an error, not silently pruned.
pub fn strict_apply() -> kube::api::PatchParams {
    let mut params = kube::api::PatchParams::apply(FIELD_MANAGER).force();
    params.field_validation = Some(kube::api::ValidationDirective::Strict);
    params
}

/// Wraps a kube error with the object and the action, as Flagger's messages do.
pub(crate) fn api_error(
    kind: &'static str,
    name: &str,
    namespace: &str,
    action: ApiAction,
) -> impl FnOnce(kube::Error) -> RouterError {
    let name = name.to_string();
    let namespace = namespace.to_string();
    move |source| RouterError::Api {
        kind,
        name,
        namespace,
        action,
        source: Box::new(source),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::api::CanarySpec;

    #[test]
    fn owner_reference_needs_a_uid() {
        let mut canary = Canary::new("podinfo", CanarySpec::default());
        canary.metadata.namespace = Some("test".into());
        let err = owner_reference(&canary).unwrap_err();
        assert!(matches!(err, RouterError::MissingUid { .. }), "{err}");
        canary.metadata.uid = Some("1234".into());
        let owner = owner_reference(&canary).unwrap();
        assert_eq!(owner.api_version, "flagger.app/v1beta1");
        assert_eq!(owner.kind, "Canary");
        assert_eq!(owner.name, "podinfo");
        assert_eq!(owner.uid, "1234");
        assert_eq!(owner.controller, Some(true));
        assert_eq!(owner.block_owner_deletion, Some(true));
    }

    #[test]
    fn flux_opt_out_keeps_user_annotations() {
        let user: BTreeMap<String, String> = [("team".to_string(), "a".to_string())].into();
        let out = with_flux_opt_out(Some(&user));
        assert_eq!(out.len(), 3);
        assert_eq!(out["team"], "a");
        assert_eq!(out[FLUX_RECONCILE_ANNOTATION], "disabled");
        assert_eq!(out[HELM_DRIFT_DETECTION_ANNOTATION], "disabled");
        assert_eq!(with_flux_opt_out(None).len(), 2);
    }

    #[test]
    fn error_texts_are_flaggers() {
        assert_eq!(
            RouterError::MissingGatewayRefs.to_string(),
            "GatewayRefs must be specified when using Gateway API as a provider."
        );
        let err = RouterError::ParentNotReady {
            route: "podinfo".into(),
            namespace: "test".into(),
            parent: "gateway".into(),
            status: "False".into(),
            observed_generation: 1,
            current_generation: 2,
        };
        assert_eq!(
            err.to_string(),
            "HTTPRoute podinfo.test parent gateway is not ready (status: False, observed \
             generation: 1, current generation: 2)"
        );
    }
}
