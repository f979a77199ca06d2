//! The Canary kind: what to roll out, how traffic reaches it, and how it is judged.
//!
//! Every field Flagger reads is typed here (Flagger reference §1.1–1.3). Raw fields mirror
//! the manifest, so an object read from Git is written back unchanged; the methods below
//! them apply Flagger's defaults. Istio, Gateway API and Gloo shapes are typed as far as
//! Flagger's CRD describes them: a field the apiserver would prune under Flagger's CRD is
//! not something a Flagger user can rely on, but where Istio's own API has a few more
//! fields that Flagger passes through (e.g. `connectionPool.tcp`, `portLevelSettings`)
//! they are typed too, so that they survive a round trip through Git.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration::{
    DEFAULT_BUILTIN_METRIC_INTERVAL, DEFAULT_WEBHOOK_TIMEOUT, DurationError, MIN_ANALYSIS_INTERVAL,
    effective_interval, parse_go_duration,
};
use super::schema;
use super::status::CanaryStatus;

/// Flagger's deadline for a workload rollout when `progressDeadlineSeconds` is unset.
pub const DEFAULT_PROGRESS_DEADLINE_SECONDS: i32 = 600;
/// Flagger's readiness bar (percent of updated replicas available) for primary and canary.
pub const DEFAULT_READY_THRESHOLD: u32 = 100;
/// Session affinity cookies last a day unless `maxAge` says otherwise.
pub const DEFAULT_COOKIE_MAX_AGE: i32 = 86_400;
/// Traffic weights are percentages of this total.
pub const TOTAL_WEIGHT: u32 = 100;

// ---------------------------------------------------------------------------------------
// Closed value sets
// ---------------------------------------------------------------------------------------

string_enum! {
    /// A traffic-management provider (`spec.provider`, or the global default when empty).
    ///
    /// Flagger's router factory matches some of these by prefix (`gatewayapi:v1…`,
    /// `smi:v1alpha3:<mesh>`); this type knows only the exact values its CRD admits.
    pub enum Provider {
        Apisix => "apisix",
        AppMesh => "appmesh",
        AppMeshV1beta2 => "appmesh:v1beta2",
        Contour => "contour",
        GatewayApiV1 => "gatewayapi:v1",
        GatewayApiV1beta1 => "gatewayapi:v1beta1",
        Gloo => "gloo",
        Istio => "istio",
        Knative => "knative",
        Kubernetes => "kubernetes",
        Kuma => "kuma",
        Linkerd => "linkerd",
        Nginx => "nginx",
        Osm => "osm",
        Skipper => "skipper",
        SmiV1alpha1 => "smi:v1alpha1",
        SmiV1alpha2 => "smi:v1alpha2",
        SmiV1alpha3 => "smi:v1alpha3",
        Traefik => "traefik",
    }
}

impl Provider {
    /// Gateway API providers route through an HTTPRoute attached to `service.gatewayRefs`.
    pub fn is_gateway_api(self) -> bool {
        matches!(self, Provider::GatewayApiV1 | Provider::GatewayApiV1beta1)
    }
}

string_enum! {
    /// The kind of workload a Canary rolls out.
    pub enum TargetKind {
        DaemonSet => "DaemonSet",
        Deployment => "Deployment",
        Service => "Service",
    }
}

/// A Service target with this API version is a Knative Service, not a ClusterIP Service.
pub const KNATIVE_SERVING_API_VERSION: &str = "serving.knative.dev/v1";

string_enum! {
    /// When a webhook runs (§2.5). An empty or absent `type` is `rollout`.
    pub enum HookType {
        ConfirmRollout => "confirm-rollout",
        PreRollout => "pre-rollout",
        Rollout => "rollout",
        ConfirmPromotion => "confirm-promotion",
        PostRollout => "post-rollout",
        Event => "event",
        Rollback => "rollback",
        ConfirmTrafficIncrease => "confirm-traffic-increase",
    }
}

string_enum! {
    /// The least severe message an alert receives.
    pub enum AlertSeverity {
        Info => "info",
        Warn => "warn",
        Error => "error",
    }
}

string_enum! {
    /// `SameSite` attribute of the session affinity cookie.
    pub enum SameSite {
        Strict => "Strict",
        Lax => "Lax",
        None => "None",
    }
}

string_enum! {
    /// Copied to `Service.spec.trafficDistribution` of the generated Services.
    pub enum TrafficDistribution {
        PreferClose => "PreferClose",
        PreferSameZone => "PreferSameZone",
        PreferSameNode => "PreferSameNode",
    }
}

/// Metric names Flagger evaluates without a query or template.
pub const BUILTIN_METRICS: [&str; 2] = ["request-success-rate", "request-duration"];

// ---------------------------------------------------------------------------------------
// Spec
// ---------------------------------------------------------------------------------------

/// A progressive rollout of one workload: traffic routing, analysis and promotion.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "flagger.app",
    version = "v1beta1",
    kind = "Canary",
    plural = "canaries",
    namespaced,
    status = "CanaryStatus",
    category = "all",
    derive = "PartialEq",
    doc = "Canary is the Schema for the Canary API.",
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Weight","type":"string","jsonPath":".status.canaryWeight"}"#,
    printcolumn = r#"{"name":"Suspended","type":"boolean","jsonPath":".spec.suspend","priority":1}"#,
    printcolumn = r#"{"name":"FailedChecks","type":"string","jsonPath":".status.failedChecks","priority":1}"#,
    printcolumn = r#"{"name":"Interval","type":"string","jsonPath":".spec.analysis.interval","priority":1}"#,
    printcolumn = r#"{"name":"Mirror","type":"boolean","jsonPath":".spec.analysis.mirror","priority":1}"#,
    printcolumn = r#"{"name":"StepWeight","type":"string","jsonPath":".spec.analysis.stepWeight","priority":1}"#,
    printcolumn = r#"{"name":"StepWeights","type":"string","jsonPath":".spec.analysis.stepWeights","priority":1}"#,
    printcolumn = r#"{"name":"MaxWeight","type":"string","jsonPath":".spec.analysis.maxWeight","priority":1}"#,
    printcolumn = r#"{"name":"LastTransitionTime","type":"string","jsonPath":".status.lastTransitionTime"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct CanarySpec {
    /// Traffic management provider; empty means Serin's global default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::provider")]
    pub provider: Option<String>,

    /// Prometheus URL for builtin metrics and inline queries; overrides the global one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_server: Option<String>,

    /// The workload rolled out.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    #[schemars(schema_with = "schema::target_ref")]
    pub target_ref: Option<LocalObjectReference>,

    /// HorizontalPodAutoscaler or KEDA ScaledObject of the target; a primary copy is made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaler_ref: Option<AutoscalerReference>,

    /// The Ingress whose canary copy nginx and skipper route through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::ingress_ref")]
    pub ingress_ref: Option<LocalObjectReference>,

    /// The ApisixRoute the apisix provider copies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::route_ref")]
    pub route_ref: Option<LocalObjectReference>,

    /// Gloo Upstream whose settings are copied into the generated upstreams.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::upstream_ref")]
    pub upstream_ref: Option<CrossNamespaceObjectReference>,

    /// How the generated Services and routing objects look.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<CanaryService>,

    /// How a new revision is judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<CanaryAnalysis>,

    /// Deprecated spelling of `analysis`, read only when `analysis` is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_analysis: Option<CanaryAnalysis>,

    /// Seconds a workload rollout may take before it counts as failed (default 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_deadline_seconds: Option<i32>,

    /// Promote new revisions without analysis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_analysis: Option<bool>,

    /// Restore the target and routing to their pre-Flagger state when the Canary is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revert_on_deletion: Option<bool>,

    /// Skip every analysis tick; a running analysis resumes where it paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
}

/// A reference to an object in the Canary's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalObjectReference {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    pub api_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    pub name: Option<String>,
}

impl LocalObjectReference {
    /// The name, or `""` when absent (validation reports that).
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }

    /// The kind, or `""` when absent.
    pub fn kind(&self) -> &str {
        self.kind.as_deref().unwrap_or_default()
    }

    /// The API version, or `""` when absent.
    pub fn api_version(&self) -> &str {
        self.api_version.as_deref().unwrap_or_default()
    }
}

/// A reference that may point into another namespace (Gloo upstreams).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CrossNamespaceObjectReference {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    pub api_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    pub name: Option<String>,
    /// Defaults to the Canary's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A reference by name to a MetricTemplate or AlertProvider.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespacedReference {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    pub name: Option<String>,
    /// Defaults to the Canary's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl NamespacedReference {
    /// The name, or `""` when absent.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }

    /// The namespace the referent lives in: its own, else the Canary's.
    pub fn namespace_or<'a>(&'a self, canary_namespace: &'a str) -> &'a str {
        self.namespace
            .as_deref()
            .filter(|ns| !ns.is_empty())
            .unwrap_or(canary_namespace)
    }
}

/// The autoscaler of the target; Serin creates `<name>-primary` for the primary workload.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoscalerReference {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    pub api_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    #[schemars(schema_with = "schema::autoscaler_kind")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    pub name: Option<String>,
    /// KEDA: trigger name → query for the primary ScaledObject, instead of renaming the
    /// target in every query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_scaler_queries: Option<BTreeMap<String, String>>,
    /// Replica bounds for the primary autoscaler, overriding the target's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_scaler_replicas: Option<ScalerReplicas>,
}

/// Replica bounds for the primary autoscaler.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScalerReplicas {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub min_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_replicas: Option<i32>,
}

// ---------------------------------------------------------------------------------------
// spec.service
// ---------------------------------------------------------------------------------------

/// The apex, primary and canary Services and the provider's routing object.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryService {
    /// Apex Service name (default: the target's name). Treat as immutable: a rename leaves
    /// the old routing objects behind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// ClusterIP port of the generated Services.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
    /// Port name (default `http`); some meshes pick the protocol from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_name: Option<String>,
    /// Container port number or name (default: `port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<IntOrString>,
    /// Copied to the Service port; Istio: `tcp` switches the VirtualService to TCP routes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::traffic_distribution")]
    pub traffic_distribution: Option<String>,
    /// Add every container port of the target to the generated Services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_discovery: Option<bool>,
    /// Generate headless Services (`clusterIP: None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headless: Option<bool>,
    /// Request timeout (Istio, Gateway API, Contour).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Backend request timeout (Gateway API v1 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_timeout: Option<String>,
    /// Istio gateways of the VirtualService (default `mesh`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateways: Option<Vec<String>>,
    /// Gateways the HTTPRoute attaches to; required by the Gateway API providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub gateway_refs: Option<Vec<GatewayRef>>,
    /// Istio VirtualService hosts / HTTPRoute hostnames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<String>>,
    /// Istio: generate a delegate VirtualService (no hosts, no gateways).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegation: Option<bool>,
    /// Istio DestinationRule traffic policy for primary and canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_policy: Option<TrafficPolicy>,
    /// Request match conditions of the generated route.
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub r#match: Option<Vec<HttpMatchRequest>>,
    /// URI / authority rewrite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<HttpRewrite>,
    /// Retry policy (Istio, Contour).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<HttpRetry>,
    /// Request and response header operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Headers>,
    /// Static request mirrors (Gateway API only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<Vec<HttpRequestMirrorFilter>>,
    /// Cross-origin resource sharing policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors_policy: Option<CorsPolicy>,
    /// App Mesh mesh name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh_name: Option<String>,
    /// App Mesh virtual node backends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backends: Option<Vec<String>>,
    /// Labels and annotations for the apex Service (and the VirtualService / HTTPRoute /
    /// RouteTable / TraefikService / HTTPProxy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apex: Option<CustomMetadata>,
    /// Labels and annotations for the primary Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<CustomMetadata>,
    /// Labels and annotations for the canary Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CustomMetadata>,
    /// Metadata keys that other controllers own on the generated Services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmanaged_metadata: Option<UnmanagedMetadata>,
}

/// Default port name of the generated Services.
pub const DEFAULT_PORT_NAME: &str = "http";
/// Istio gateway used when `service.gateways` is empty.
pub const DEFAULT_ISTIO_GATEWAY: &str = "mesh";

impl CanaryService {
    /// The port name of the generated Services.
    pub fn port_name(&self) -> &str {
        self.port_name
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or(DEFAULT_PORT_NAME)
    }

    /// The container port the Services forward to: `targetPort`, else `port`.
    ///
    /// Go reads an unset int-or-string as `0`, so Flagger treats `0` and `"0"` as unset too.
    pub fn target_port(&self) -> Option<IntOrString> {
        match &self.target_port {
            Some(IntOrString::Int(0)) | None => self.port.map(IntOrString::Int),
            Some(IntOrString::String(s)) if s.is_empty() || s == "0" => {
                self.port.map(IntOrString::Int)
            }
            Some(other) => Some(other.clone()),
        }
    }

    /// Istio gateways of the VirtualService.
    pub fn istio_gateways(&self) -> Vec<&str> {
        match self.gateways.as_deref() {
            Some(list) if !list.is_empty() => list.iter().map(String::as_str).collect(),
            _ => vec![DEFAULT_ISTIO_GATEWAY],
        }
    }
}

/// A Gateway API parent reference (`service.gatewayRefs[]`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayRef {
    /// Default `gateway.networking.k8s.io`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub group: Option<String>,
    /// Default `Gateway`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    #[schemars(length(min = 1, max = 253))]
    pub name: Option<String>,
    /// Defaults to the Canary's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub section_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
}

/// Gateway API parent group when a gatewayRef names none.
pub const DEFAULT_GATEWAY_GROUP: &str = "gateway.networking.k8s.io";
/// Gateway API parent kind when a gatewayRef names none.
pub const DEFAULT_GATEWAY_KIND: &str = "Gateway";

impl GatewayRef {
    pub fn group(&self) -> &str {
        self.group.as_deref().unwrap_or(DEFAULT_GATEWAY_GROUP)
    }

    pub fn kind(&self) -> &str {
        self.kind.as_deref().unwrap_or(DEFAULT_GATEWAY_KIND)
    }
}

/// A Gateway API `RequestMirror` filter (`service.mirror[]`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpRequestMirrorFilter {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    pub backend_ref: Option<BackendObjectReference>,
}

/// The backend a request is mirrored to.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackendObjectReference {
    /// Default `""` (core).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub group: Option<String>,
    /// Default `Service`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    #[schemars(length(min = 1, max = 253))]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
    /// Required for a Service backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
}

impl BackendObjectReference {
    /// Whether this names a core Service, which Gateway API requires a port for.
    pub fn is_service(&self) -> bool {
        self.group.as_deref().unwrap_or_default().is_empty()
            && self.kind.as_deref().unwrap_or("Service") == "Service"
    }
}

/// Labels and annotations added to a generated object.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// Metadata keys on Serin-owned Services that Serin leaves to other controllers.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnmanagedMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
}

// ----- Istio shapes (networking.istio.io, as Flagger embeds them) -----

/// One string condition. Istio takes one of exact / prefix / regex; A/B header matches
/// also take suffix.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StringMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    /// RE2 regular expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}

/// Istio HTTPMatchRequest; used for `service.match` and the A/B `analysis.match`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpMatchRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<StringMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<StringMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<StringMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<StringMatch>,
    /// Header name (lower case) → condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, StringMatch>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateways: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_params: Option<BTreeMap<String, StringMatch>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_uri_case: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub without_headers: Option<BTreeMap<String, StringMatch>>,
}

/// URI and authority rewrite.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpRewrite {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    /// Gateway API: `ReplacePrefixMatch`; anything else is `ReplaceFullPath`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
}

impl HttpRewrite {
    /// Gateway API rewrites replace only the matched prefix when asked to, else the path.
    pub fn replaces_prefix(&self) -> bool {
        self.r#type.as_deref() == Some("ReplacePrefixMatch")
    }
}

/// Retry policy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpRetry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_try_timeout: Option<String>,
    /// Comma-separated Envoy retry conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_on: Option<String>,
}

/// Request and response header operations.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Headers {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<HeaderOperations>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<HeaderOperations>,
}

/// Header operations of one direction.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeaderOperations {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove: Option<Vec<String>>,
}

/// Cross-origin resource sharing policy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CorsPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_origin: Option<Vec<String>>,
    /// Istio origin patterns; Gateway API cannot express them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_origins: Option<Vec<StringMatch>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_methods: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_headers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expose_headers: Option<Vec<String>>,
    /// Go duration, e.g. `24h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_credentials: Option<bool>,
}

/// Istio DestinationRule traffic policy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrafficPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_pool: Option<ConnectionPoolSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancerSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<OutlierDetection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSettings>,
    /// Per-port overrides (Istio API; not in Flagger's CRD schema).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_level_settings: Option<Vec<PortTrafficPolicy>>,
}

/// A traffic policy for one destination port.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PortTrafficPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<PortSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_pool: Option<ConnectionPoolSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancerSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<OutlierDetection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSettings>,
}

/// A destination port.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PortSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<u32>,
}

/// Connection pool limits.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionPoolSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpConnectionPoolSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpConnectionPoolSettings>,
}

/// TCP connection pool limits.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TcpConnectionPoolSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<String>,
}

/// HTTP connection pool limits.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpConnectionPoolSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::istio_h2_upgrade_policy")]
    pub h2_upgrade_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http1_max_pending_requests: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http2_max_requests: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests_per_connection: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<i32>,
}

/// Load balancer algorithm: `simple`, or `consistentHash` for soft session affinity.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::istio_simple_lb")]
    pub simple: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistent_hash: Option<ConsistentHashLb>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality_lb_setting: Option<LocalityLbSetting>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup_duration_secs: Option<String>,
}

/// Hash key of a consistent-hash load balancer (one of the first four).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsistentHashLb {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_header_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_cookie: Option<HttpCookie>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_source_ip: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_query_parameter_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_ring_size: Option<u64>,
}

/// A cookie used as a hash key; generated by the proxy when absent.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpCookie {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
}

/// Locality-weighted load balancing.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalityLbSetting {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribute: Option<Vec<LocalityLbDistribute>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<Vec<LocalityLbFailover>>,
    // Istio API spelling; Flagger's Go type misspells it `failover_priority`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover_priority: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// Traffic from one locality spread over others by weight.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalityLbDistribute {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<BTreeMap<String, u32>>,
}

/// The region traffic fails over to.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalityLbFailover {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

/// Ejection of unhealthy hosts.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutlierDetection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_ejection_time: Option<String>,
    #[serde(
        default,
        rename = "consecutive5xxErrors",
        skip_serializing_if = "Option::is_none"
    )]
    pub consecutive_5xx_errors: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_errors: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_gateway_errors: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_local_origin_failures: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ejection_percent: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_health_percent: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_external_local_origin_errors: Option<bool>,
}

/// TLS towards the upstream.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::istio_tls_mode")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificates: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_alt_names: Option<Vec<String>>,
}

// ---------------------------------------------------------------------------------------
// spec.analysis
// ---------------------------------------------------------------------------------------

/// How a new revision is judged and how traffic moves meanwhile.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryAnalysis {
    /// Tick interval, `^[0-9]+(m|s)` (default 60s, at least 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(m|s)"))]
    pub interval: Option<String>,
    /// Failed checks tolerated before rollback (≤ 0 means 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<i32>,
    /// Checks to run for A/B testing and blue/green.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iterations: Option<i32>,
    /// Highest canary weight before promotion (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_weight: Option<i32>,
    /// Linear weight increment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_weight: Option<i32>,
    /// Explicit weight ladder; its last element is the max weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_weights: Option<Vec<i32>>,
    /// Primary weight increment during promotion; 0 switches all traffic at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_weight_promotion: Option<i32>,
    /// Mirror traffic to the canary (Istio; Gateway API for blue/green).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<bool>,
    /// Percentage of traffic mirrored (Istio), when > 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_weight: Option<i32>,
    /// Percent of primary replicas that must be available (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_ready_threshold: Option<i32>,
    /// Percent of canary replicas that must be available (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_ready_threshold: Option<i32>,
    /// A/B testing match conditions.
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub r#match: Option<Vec<HttpMatchRequest>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Vec<CanaryMetric>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhooks: Option<Vec<CanaryWebhook>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts: Option<Vec<CanaryAlert>>,
    /// Keep users who reached the canary on it (cookie based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_affinity: Option<SessionAffinity>,
}

impl CanaryAnalysis {
    /// The interval the analysis ticks at (empty or unparsable: 60s; never below 10s).
    pub fn interval(&self) -> Duration {
        self.interval_with_minimum(MIN_ANALYSIS_INTERVAL)
    }

    /// As [`CanaryAnalysis::interval`] with another floor than Flagger's 10s.
    pub fn interval_with_minimum(&self, minimum: Duration) -> Duration {
        effective_interval(self.interval.as_deref(), minimum)
    }

    /// Failed checks tolerated before rollback: Flagger reads ≤ 0 as 1.
    pub fn threshold(&self) -> u32 {
        positive(self.threshold).unwrap_or(1)
    }

    /// Checks for A/B and blue/green (0 when unset or negative).
    pub fn iterations(&self) -> u32 {
        positive(self.iterations).unwrap_or(0)
    }

    /// Linear weight increment (0 when unset or negative).
    pub fn step_weight(&self) -> u32 {
        positive(self.step_weight).unwrap_or(0)
    }

    /// The weight ladder, if one is given.
    pub fn step_weights(&self) -> &[i32] {
        self.step_weights.as_deref().unwrap_or_default()
    }

    /// Promotion step (0: all traffic to primary in one step).
    pub fn step_weight_promotion(&self) -> u32 {
        positive(self.step_weight_promotion).unwrap_or(0)
    }

    /// The weight at which promotion starts: the last `stepWeights` element (at most 100),
    /// else `maxWeight` when positive, else 100.
    pub fn max_weight(&self) -> u32 {
        if let Some(&last) = self.step_weights().last() {
            return u32::try_from(last).unwrap_or(0).min(TOTAL_WEIGHT);
        }
        positive(self.max_weight).unwrap_or(TOTAL_WEIGHT)
    }

    pub fn mirror(&self) -> bool {
        self.mirror.unwrap_or(false)
    }

    /// Mirrored percentage, 0 meaning "all" (Istio omits `mirrorPercentage`).
    pub fn mirror_weight(&self) -> u32 {
        positive(self.mirror_weight).unwrap_or(0)
    }

    pub fn primary_ready_threshold(&self) -> u32 {
        self.primary_ready_threshold
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(DEFAULT_READY_THRESHOLD)
    }

    pub fn canary_ready_threshold(&self) -> u32 {
        self.canary_ready_threshold
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(DEFAULT_READY_THRESHOLD)
    }

    /// A/B match conditions (empty when none).
    pub fn matches(&self) -> &[HttpMatchRequest] {
        self.r#match.as_deref().unwrap_or_default()
    }

    pub fn metrics(&self) -> &[CanaryMetric] {
        self.metrics.as_deref().unwrap_or_default()
    }

    pub fn webhooks(&self) -> &[CanaryWebhook] {
        self.webhooks.as_deref().unwrap_or_default()
    }

    /// The webhooks of one type, in list order (the order Flagger calls them).
    pub fn webhooks_of(&self, kind: HookType) -> impl Iterator<Item = &CanaryWebhook> {
        self.webhooks()
            .iter()
            .filter(move |hook| hook.hook_type() == Some(kind))
    }

    pub fn alerts(&self) -> &[CanaryAlert] {
        self.alerts.as_deref().unwrap_or_default()
    }
}

fn positive(value: Option<i32>) -> Option<u32> {
    value.and_then(|v| u32::try_from(v).ok()).filter(|v| *v > 0)
}

/// One metric check.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryMetric {
    /// `request-success-rate` and `request-duration` are builtin; any other name needs a
    /// `templateRef` or a `query`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    pub name: Option<String>,
    /// Query window, `^[0-9]+(m|s)` (builtin metrics default to 1m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(m|s)"))]
    pub interval: Option<String>,
    /// Deprecated bound, replaced by `thresholdRange`.
    // A `serde_json::Number` keeps `1` and `1.0` apart, so a manifest reads back as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::number")]
    pub threshold: Option<serde_json::Number>,
    /// Accepted range of the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_range: Option<ThresholdRange>,
    /// Deprecated inline PromQL, replaced by `templateRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The MetricTemplate to evaluate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_ref: Option<NamespacedReference>,
    /// `{{ variables.<key> }}` values for the template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_variables: Option<BTreeMap<String, String>>,
}

impl CanaryMetric {
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }

    /// Whether Flagger evaluates this metric with its builtin query for the provider.
    pub fn is_builtin(&self) -> bool {
        BUILTIN_METRICS.contains(&self.name())
    }

    /// The query window: `interval`, or `1m` for builtin metrics and inline queries.
    /// Template metrics get no default (Flagger renders `{{ interval }}` as "").
    pub fn interval(&self) -> Option<&str> {
        match self.interval.as_deref() {
            Some(i) if !i.is_empty() => Some(i),
            _ if self.template_ref.is_none() => Some(DEFAULT_BUILTIN_METRIC_INTERVAL),
            _ => None,
        }
    }
}

/// The accepted range of a metric value; either bound may be absent.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThresholdRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::number")]
    pub min: Option<serde_json::Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::number")]
    pub max: Option<serde_json::Number>,
}

impl ThresholdRange {
    pub fn min(&self) -> Option<f64> {
        self.min.as_ref().and_then(serde_json::Number::as_f64)
    }

    pub fn max(&self) -> Option<f64> {
        self.max.as_ref().and_then(serde_json::Number::as_f64)
    }
}

/// An HTTP call Flagger makes at a given point of the rollout.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryWebhook {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    pub name: Option<String>,
    /// `""` or absent means `rollout`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::hook_type")]
    pub r#type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    pub url: Option<String>,
    /// Suppress the alerts this gate would send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mute_alert: Option<bool>,
    /// Request timeout, `^[0-9]+(m|s)` (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(m|s)"))]
    pub timeout: Option<String>,
    /// Retries on transport errors, 429 and 5xx (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i32>,
    /// Skip TLS verification.
    #[serde(
        default,
        rename = "disableTLS",
        skip_serializing_if = "Option::is_none"
    )]
    pub disable_tls: Option<bool>,
    /// Sent as `metadata` in the payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
}

impl CanaryWebhook {
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }

    /// The hook type; `None` for a value Flagger does not know.
    pub fn hook_type(&self) -> Option<HookType> {
        match self.r#type.as_deref() {
            None | Some("") => Some(HookType::Rollout),
            Some(other) => HookType::parse(other),
        }
    }

    /// The request timeout. Flagger replaces a value shorter than two characters with 10s
    /// and fails the call when the rest does not parse.
    pub fn timeout(&self) -> Result<Duration, DurationError> {
        match self.timeout.as_deref() {
            Some(t) if t.len() >= 2 => parse_go_duration(t),
            _ => Ok(DEFAULT_WEBHOOK_TIMEOUT),
        }
    }

    pub fn retries(&self) -> u32 {
        positive(self.retries).unwrap_or(0)
    }

    pub fn mute_alert(&self) -> bool {
        self.mute_alert.unwrap_or(false)
    }

    pub fn disable_tls(&self) -> bool {
        self.disable_tls.unwrap_or(false)
    }
}

/// A notification target for this canary.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryAlert {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    pub name: Option<String>,
    /// Least severe message sent: info, warn or error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::alert_severity")]
    pub severity: Option<String>,
    /// The AlertProvider to send through.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    pub provider_ref: Option<NamespacedReference>,
}

impl CanaryAlert {
    /// The severity filter. `None` for `""`/absent: Flagger documents that as `info` but
    /// its filter matches nothing for it, so the caller decides which behaviour it wants.
    pub fn severity(&self) -> Option<AlertSeverity> {
        self.severity.as_deref().and_then(AlertSeverity::parse)
    }
}

/// Cookie-based stickiness to the canary (and optionally the primary).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionAffinity {
    /// Cookie that pins a user to the canary.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    pub cookie_name: Option<String>,
    /// Cookie that pins a user to the primary, so weights stay fair.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_cookie_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_only: Option<bool>,
    /// Cookie lifetime in seconds (default 86400).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 86400))]
    pub max_age: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitioned: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::same_site")]
    pub same_site: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure: Option<bool>,
}

impl SessionAffinity {
    pub fn cookie_name(&self) -> &str {
        self.cookie_name.as_deref().unwrap_or_default()
    }

    /// Cookie lifetime in seconds: 0 or unset means a day.
    pub fn max_age(&self) -> i32 {
        match self.max_age {
            Some(age) if age != 0 => age,
            _ => DEFAULT_COOKIE_MAX_AGE,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Defaults on the whole object
// ---------------------------------------------------------------------------------------

impl CanarySpec {
    /// The analysis in force: `analysis`, else the deprecated `canaryAnalysis`.
    pub fn analysis(&self) -> Option<&CanaryAnalysis> {
        self.analysis.as_ref().or(self.canary_analysis.as_ref())
    }

    /// The manifest key the analysis in force was read from, for messages.
    pub fn analysis_field(&self) -> &'static str {
        if self.analysis.is_none() && self.canary_analysis.is_some() {
            "canaryAnalysis"
        } else {
            "analysis"
        }
    }

    /// Whether new revisions are promoted without analysis: `skipAnalysis`, or no analysis
    /// at all.
    pub fn skip_analysis(&self) -> bool {
        self.skip_analysis.unwrap_or(false) || self.analysis().is_none()
    }

    pub fn suspended(&self) -> bool {
        self.suspend.unwrap_or(false)
    }

    pub fn revert_on_deletion(&self) -> bool {
        self.revert_on_deletion.unwrap_or(false)
    }

    pub fn progress_deadline_seconds(&self) -> i32 {
        self.progress_deadline_seconds
            .unwrap_or(DEFAULT_PROGRESS_DEADLINE_SECONDS)
    }

    /// The provider as written, `None` when empty (the global default applies).
    pub fn provider(&self) -> Option<&str> {
        self.provider.as_deref().filter(|p| !p.is_empty())
    }

    /// The name of the target workload (`""` when absent).
    pub fn target_name(&self) -> &str {
        self.target_ref
            .as_ref()
            .map(LocalObjectReference::name)
            .unwrap_or_default()
    }

    /// The target's kind as Flagger treats it: unknown kinds are handled as Deployments.
    pub fn target_kind(&self) -> TargetKind {
        self.target_ref
            .as_ref()
            .and_then(|t| TargetKind::parse(t.kind()))
            .unwrap_or(TargetKind::Deployment)
    }

    /// Whether the target is a Knative Service.
    pub fn targets_knative(&self) -> bool {
        self.target_ref.as_ref().is_some_and(|t| {
            t.kind() == TargetKind::Service.as_str()
                && t.api_version() == KNATIVE_SERVING_API_VERSION
        })
    }

    /// The workload Serin creates to serve stable traffic.
    pub fn primary_target_name(&self) -> String {
        format!("{}-primary", self.target_name())
    }

    /// The apex Service name: `service.name`, else the target's name.
    pub fn apex_service_name(&self) -> &str {
        self.service
            .as_ref()
            .and_then(|s| s.name.as_deref())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| self.target_name())
    }

    /// `<apex>-primary`.
    pub fn primary_service_name(&self) -> String {
        format!("{}-primary", self.apex_service_name())
    }

    /// `<apex>-canary`.
    pub fn canary_service_name(&self) -> String {
        format!("{}-canary", self.apex_service_name())
    }
}

impl Canary {
    /// The analysis in force: `analysis`, else the deprecated `canaryAnalysis`.
    pub fn analysis(&self) -> Option<&CanaryAnalysis> {
        self.spec.analysis()
    }

    /// The tick interval of this canary (60s without an analysis).
    pub fn analysis_interval(&self) -> Duration {
        self.analysis().map_or_else(
            || effective_interval(None, MIN_ANALYSIS_INTERVAL),
            |a| a.interval(),
        )
    }

    /// `<name>.<namespace>`, the form Flagger uses in events and logs.
    pub fn dotted_name(&self) -> String {
        format!(
            "{}.{}",
            self.metadata.name.as_deref().unwrap_or_default(),
            self.metadata.namespace.as_deref().unwrap_or_default()
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn analysis() -> CanaryAnalysis {
        CanaryAnalysis::default()
    }

    #[test]
    fn threshold_below_one_reads_as_one() {
        for (raw, want) in [
            (None, 1),
            (Some(-3), 1),
            (Some(0), 1),
            (Some(1), 1),
            (Some(5), 5),
        ] {
            let a = CanaryAnalysis {
                threshold: raw,
                ..analysis()
            };
            assert_eq!(a.threshold(), want, "{raw:?}");
        }
    }

    #[test]
    fn max_weight_defaults_and_follows_step_weights() {
        let table: [(Option<i32>, Option<Vec<i32>>, u32); 6] = [
            (None, None, 100),
            (Some(50), None, 50),
            (Some(0), None, 100),
            (Some(50), Some(vec![1, 2, 10, 80]), 80),
            (None, Some(vec![1, 2, 10, 200]), 100),
            (None, Some(vec![]), 100),
        ];
        for (max, steps, want) in table {
            let a = CanaryAnalysis {
                max_weight: max,
                step_weights: steps.clone(),
                ..analysis()
            };
            assert_eq!(a.max_weight(), want, "{max:?} {steps:?}");
        }
    }

    #[test]
    fn ready_thresholds_default_to_100() {
        let a = analysis();
        assert_eq!(a.primary_ready_threshold(), 100);
        assert_eq!(a.canary_ready_threshold(), 100);
        let a = CanaryAnalysis {
            primary_ready_threshold: Some(50),
            canary_ready_threshold: Some(0),
            ..analysis()
        };
        assert_eq!(a.primary_ready_threshold(), 50);
        assert_eq!(a.canary_ready_threshold(), 0);
    }

    #[test]
    fn analysis_interval_defaults() {
        let s = Duration::from_secs;
        assert_eq!(analysis().interval(), s(60));
        let a = CanaryAnalysis {
            interval: Some("5s".into()),
            ..analysis()
        };
        assert_eq!(a.interval(), s(10));
        assert_eq!(a.interval_with_minimum(s(1)), s(5));
        let canary = Canary::new("x", CanarySpec::default());
        assert_eq!(canary.analysis_interval(), s(60));
    }

    #[test]
    fn service_defaults() {
        let spec = CanarySpec {
            target_ref: Some(LocalObjectReference {
                api_version: Some("apps/v1".into()),
                kind: Some("Deployment".into()),
                name: Some("podinfo".into()),
            }),
            service: Some(CanaryService {
                port: Some(9898),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(spec.apex_service_name(), "podinfo");
        assert_eq!(spec.primary_service_name(), "podinfo-primary");
        assert_eq!(spec.canary_service_name(), "podinfo-canary");
        assert_eq!(spec.primary_target_name(), "podinfo-primary");
        assert_eq!(spec.progress_deadline_seconds(), 600);
        let service = spec.service.clone().unwrap_or_default();
        assert_eq!(service.port_name(), "http");
        assert_eq!(service.target_port(), Some(IntOrString::Int(9898)));
        assert_eq!(service.istio_gateways(), vec!["mesh"]);

        let named = CanarySpec {
            service: Some(CanaryService {
                name: Some("frontend".into()),
                port: Some(80),
                port_name: Some("grpc".into()),
                target_port: Some(IntOrString::String("http".into())),
                ..Default::default()
            }),
            progress_deadline_seconds: Some(60),
            ..spec
        };
        assert_eq!(named.apex_service_name(), "frontend");
        assert_eq!(named.primary_service_name(), "frontend-primary");
        assert_eq!(named.canary_service_name(), "frontend-canary");
        assert_eq!(named.primary_target_name(), "podinfo-primary");
        assert_eq!(named.progress_deadline_seconds(), 60);
        let service = named.service.unwrap_or_default();
        assert_eq!(service.port_name(), "grpc");
        assert_eq!(
            service.target_port(),
            Some(IntOrString::String("http".into()))
        );

        for unset in [IntOrString::Int(0), IntOrString::String("0".into())] {
            let service = CanaryService {
                port: Some(80),
                target_port: Some(unset),
                ..Default::default()
            };
            assert_eq!(service.target_port(), Some(IntOrString::Int(80)));
        }
    }

    #[test]
    fn analysis_alias_and_skip() {
        let a = CanaryAnalysis {
            interval: Some("1m".into()),
            ..analysis()
        };
        let b = CanaryAnalysis {
            interval: Some("2m".into()),
            ..analysis()
        };
        let both = CanarySpec {
            analysis: Some(a.clone()),
            canary_analysis: Some(b.clone()),
            ..Default::default()
        };
        assert_eq!(both.analysis(), Some(&a));
        assert_eq!(both.analysis_field(), "analysis");
        let legacy = CanarySpec {
            canary_analysis: Some(b.clone()),
            ..Default::default()
        };
        assert_eq!(legacy.analysis(), Some(&b));
        assert_eq!(legacy.analysis_field(), "canaryAnalysis");
        assert!(!legacy.skip_analysis());
        assert!(CanarySpec::default().skip_analysis());
        let skipped = CanarySpec {
            skip_analysis: Some(true),
            ..legacy
        };
        assert!(skipped.skip_analysis());
    }

    #[test]
    fn webhook_defaults() {
        let hook = CanaryWebhook::default();
        assert_eq!(hook.hook_type(), Some(HookType::Rollout));
        assert_eq!(hook.timeout(), Ok(Duration::from_secs(10)));
        assert_eq!(hook.retries(), 0);
        let hook = CanaryWebhook {
            r#type: Some(String::new()),
            timeout: Some("1".into()),
            ..Default::default()
        };
        assert_eq!(hook.hook_type(), Some(HookType::Rollout));
        assert_eq!(hook.timeout(), Ok(Duration::from_secs(10)));
        let hook = CanaryWebhook {
            r#type: Some("pre-rollout".into()),
            timeout: Some("15s".into()),
            ..Default::default()
        };
        assert_eq!(hook.hook_type(), Some(HookType::PreRollout));
        assert_eq!(hook.timeout(), Ok(Duration::from_secs(15)));
        let hook = CanaryWebhook {
            r#type: Some("pre-rolout".into()),
            timeout: Some("15x".into()),
            ..Default::default()
        };
        assert_eq!(hook.hook_type(), None);
        assert!(hook.timeout().is_err());
    }

    #[test]
    fn session_affinity_max_age_defaults_to_a_day() {
        let sa = SessionAffinity::default();
        assert_eq!(sa.max_age(), 86_400);
        let sa = SessionAffinity {
            max_age: Some(21_600),
            ..Default::default()
        };
        assert_eq!(sa.max_age(), 21_600);
    }

    #[test]
    fn metric_interval_defaults_only_for_builtin() {
        let builtin = CanaryMetric {
            name: Some("request-success-rate".into()),
            ..Default::default()
        };
        assert!(builtin.is_builtin());
        assert_eq!(builtin.interval(), Some("1m"));
        let template = CanaryMetric {
            name: Some("latency".into()),
            template_ref: Some(NamespacedReference {
                name: Some("latency".into()),
                namespace: None,
            }),
            ..Default::default()
        };
        assert!(!template.is_builtin());
        assert_eq!(template.interval(), None);
        assert_eq!(
            template
                .template_ref
                .as_ref()
                .map(|r| r.namespace_or("test")),
            Some("test")
        );
    }

    #[test]
    fn enums_parse_every_listed_value() {
        assert_eq!(Provider::ALL.len(), 19);
        assert_eq!(HookType::ALL.len(), 8);
        for p in Provider::ALL {
            assert_eq!(Provider::parse(p.as_str()), Some(*p));
        }
        for h in HookType::ALL {
            assert_eq!(HookType::parse(h.as_str()), Some(*h));
        }
        assert_eq!(Provider::parse("Istio"), None);
        assert!(Provider::GatewayApiV1beta1.is_gateway_api());
        assert_eq!(AlertSeverity::list(), "info, warn, error");
    }

    #[test]
    fn target_kind_falls_back_to_deployment() {
        let mut spec = CanarySpec {
            target_ref: Some(LocalObjectReference {
                api_version: Some("serving.knative.dev/v1".into()),
                kind: Some("Service".into()),
                name: Some("podinfo".into()),
            }),
            ..Default::default()
        };
        assert_eq!(spec.target_kind(), TargetKind::Service);
        assert!(spec.targets_knative());
        if let Some(t) = spec.target_ref.as_mut() {
            t.kind = Some("StatefulSet".into());
        }
        assert_eq!(spec.target_kind(), TargetKind::Deployment);
        assert!(!spec.targets_knative());
    }
}
