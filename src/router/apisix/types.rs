//! The `apisix.apache.org/v2` ApisixRoute, with the fields Flagger's router reads and changes
//! typed and everything else kept as it came (`serde_json::Value`): the canary route is a
//! copy of part of the user's route, and a field Serin does not know about (plugins' config,
//! `ingressClassName`, authentication, timeouts, newer controller fields) must survive the
//! copy.
//!
//! Checked against apisix-ingress-controller v1.8.4's CRD
//! (`samples/deploy/crd/v1/ApisixRoute.yaml`).

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Resource;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// APISIX's API group.
pub const APISIX_GROUP: &str = "apisix.apache.org";
/// The ApisixRoute version Flagger uses.
pub const APISIX_VERSION: &str = "v2";

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApisixRoute {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: ApisixRouteSpec,
}

impl ApisixRoute {
    /// An ApisixRoute with its apiVersion and kind filled in.
    pub fn new(metadata: ObjectMeta, spec: ApisixRouteSpec) -> Self {
        ApisixRoute {
            api_version: ApisixRoute::api_version(&()).into_owned(),
            kind: ApisixRoute::kind(&()).into_owned(),
            metadata,
            spec,
        }
    }
}

impl Resource for ApisixRoute {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("ApisixRoute")
    }

    fn group(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(APISIX_GROUP)
    }

    fn version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(APISIX_VERSION)
    }

    fn plural(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("apisixroutes")
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApisixRouteSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<ApisixRouteHttp>,
    /// `ingressClassName`, `stream`, and whatever a newer controller adds.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// One `spec.http[]` route.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApisixRouteHttp {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backends: Vec<ApisixRouteHttpBackend>,
    /// `match`, `plugins`, `timeout`, `websocket`, `authentication`, `plugin_config_name`,
    /// `upstreams`, ... as the user wrote them.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApisixRouteHttpBackend {
    pub service_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_port: Option<IntOrString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve_granularity: Option<String>,
    /// APISIX's controller reads an absent weight as 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset: Option<String>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}
