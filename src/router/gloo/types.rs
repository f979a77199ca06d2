//! The Gloo Edge objects Serin writes and reads: `gloo.solo.io/v1` Upstream and
//! `gateway.solo.io/v1` RouteTable, with only the fields Flagger's router touches.
//!
//! Field names and types follow Gloo 1.x's generated CRD schema (protobuf JSON names;
//! `google.protobuf.UInt32Value` is a nullable integer, `BoolValue` a nullable boolean). The
//! upstreamRef settings Serin copies without looking inside (TLS, circuit breakers,
//! connection and load-balancer config) stay `serde_json::Value`, so no field of Gloo's is
//! lost on the way, whatever Gloo version wrote it.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::{Deserialize, Serialize};

/// Gloo's API group for Upstreams.
pub const GLOO_GROUP: &str = "gloo.solo.io";
/// Gloo's API group for RouteTables.
pub const GATEWAY_GROUP: &str = "gateway.solo.io";
/// The version of both.
pub const GLOO_VERSION: &str = "v1";

macro_rules! namespaced_resource {
    ($ty:ty, $group:expr, $kind:literal, $plural:literal) => {
        impl Resource for $ty {
            type DynamicType = ();
            type Scope = NamespaceResourceScope;

            fn kind(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($kind)
            }

            fn group(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($group)
            }

            fn version(_: &()) -> Cow<'_, str> {
                Cow::Borrowed(GLOO_VERSION)
            }

            fn plural(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($plural)
            }

            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }

            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

// ---------------------------------------------------------------------------------------
// Upstream
// ---------------------------------------------------------------------------------------

/// A Gloo Upstream: where Envoy sends a destination's traffic.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Upstream {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: UpstreamSpec,
}

namespaced_resource!(Upstream, GLOO_GROUP, "Upstream", "upstreams");

impl Upstream {
    /// An Upstream with its apiVersion and kind filled in.
    pub fn new(metadata: ObjectMeta, spec: UpstreamSpec) -> Self {
        Upstream {
            api_version: Upstream::api_version(&()).into_owned(),
            kind: Upstream::kind(&()).into_owned(),
            metadata,
            spec,
        }
    }
}

/// The Upstream fields Flagger writes (`kube`) and copies from `upstreamRef`.
///
/// Other upstream types (static, aws, consul, ...) a referenced Upstream has are not read:
/// the generated Upstreams are always `kube` ones.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UpstreamSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube: Option<KubeUpstream>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_config: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit_breakers: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_config: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_config: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_http2: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_stream_window_size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_connection_window_size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_streams: Option<u32>,
    /// Gloo's JSON name is `httpProxyHostname` (Flagger's Go tag, `httpProxyHostName`, never
    /// matches what Gloo stores).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_proxy_hostname: Option<String>,
}

/// A Kubernetes Service as a Gloo upstream.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KubeUpstream {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_port: Option<u32>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub selector: BTreeMap<String, String>,
}

// ---------------------------------------------------------------------------------------
// RouteTable
// ---------------------------------------------------------------------------------------

/// A Gloo RouteTable: the routes a VirtualService delegates to.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RouteTable {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: RouteTableSpec,
}

namespaced_resource!(RouteTable, GATEWAY_GROUP, "RouteTable", "routetables");

impl RouteTable {
    /// A RouteTable with its apiVersion and kind filled in.
    pub fn new(metadata: ObjectMeta, spec: RouteTableSpec) -> Self {
        RouteTable {
            api_version: RouteTable::api_version(&()).into_owned(),
            kind: RouteTable::kind(&()).into_owned(),
            metadata,
            spec,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RouteTableSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matchers: Vec<Matcher>,
    /// The path matchers of the delegating VirtualService route apply to this route too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inheritable_path_matchers: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_action: Option<RouteAction>,
}

/// Conditions on a request; within one matcher every condition must hold (the methods are
/// alternatives).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Matcher {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderMatcher>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct HeaderMatcher {
    pub name: String,
    /// Empty: the header only has to be present.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    /// `value` is a regular expression.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub regex: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub invert_match: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RouteAction {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi: Option<MultiDestination>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MultiDestination {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<WeightedDestination>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WeightedDestination {
    #[serde(default)]
    pub destination: Destination,
    /// Gloo reads an absent weight as 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<ResourceRef>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRef {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}
