//! The simulator's reads and writes against the API server: routes, Services and Deployments
//! of the watched namespaces, and the route status it writes as the Gateway controller.

use gateway_api::httproutes::{HttpRoute, HttpRouteStatusParents};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::proxies::ProxyObjects;
use super::traffic::{ClusterView, ServiceView, WorkloadView};

const FIELD_MANAGER: &str = "serin-mesh-sim";

/// The served version HTTPRoutes are read at. Gateway API v1.x serves one stored object at
/// both versions, so reading one of them sees every route; v1beta1 is the fallback for
/// clusters whose CRDs predate v1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RouteVersion {
    V1,
    V1beta1,
}

impl RouteVersion {
    fn resource(self) -> ApiResource {
        let mut resource = ApiResource::erase::<HttpRoute>(&());
        if self == RouteVersion::V1beta1 {
            resource.version = "v1beta1".into();
            resource.api_version = format!("{}/v1beta1", resource.group);
        }
        resource
    }

    fn other(self) -> Self {
        match self {
            RouteVersion::V1 => RouteVersion::V1beta1,
            RouteVersion::V1beta1 => RouteVersion::V1,
        }
    }
}

/// The providers' routing objects the simulator follows, by group, version and plural. A
/// provider whose CRD is not installed has none.
const PROXY_KINDS: [(&str, &str, &str, &str); 6] = [
    (
        "networking.istio.io",
        "v1",
        "VirtualService",
        "virtualservices",
    ),
    ("gateway.solo.io", "v1", "RouteTable", "routetables"),
    ("gloo.solo.io", "v1", "Upstream", "upstreams"),
    ("apisix.apache.org", "v2", "ApisixRoute", "apisixroutes"),
    ("projectcontour.io", "v1", "HTTPProxy", "httpproxies"),
    ("networking.k8s.io", "v1", "Ingress", "ingresses"),
];

/// What one tick routes by.
#[derive(Debug, Clone, Default)]
pub(super) struct Snapshot {
    pub routes: Vec<HttpRoute>,
    pub proxies: ProxyObjects,
    pub cluster: ClusterView,
    /// Routes that could not be decoded, named, so the log says which.
    pub problems: Vec<String>,
}

pub(super) struct ClusterClient {
    client: Client,
    /// Empty: every namespace.
    namespaces: Vec<String>,
    version: RouteVersion,
}

impl ClusterClient {
    pub fn new(client: Client, namespaces: Vec<String>) -> Self {
        ClusterClient {
            client,
            namespaces,
            version: RouteVersion::V1,
        }
    }

    pub async fn snapshot(&mut self) -> Result<Snapshot, kube::Error> {
        let mut problems = Vec::new();
        let routes = self
            .routes()
            .await?
            .into_iter()
            .filter_map(|object| decode_route(object, &mut problems))
            .collect();
        let services = self.list::<Service>().await?;
        let workloads = self.list::<Deployment>().await?;
        let mut proxies = ProxyObjects::default();
        for (group, version, kind, plural) in PROXY_KINDS {
            let gvk = GroupVersionKind::gvk(group, version, kind);
            let resource = ApiResource::from_gvk_with_plural(&gvk, plural);
            let objects = match self.list_dynamic(&resource).await {
                Ok(objects) => objects,
                Err(e) if is_not_found(&e) => continue,
                Err(e) => return Err(e),
            };
            let json = objects
                .iter()
                .filter_map(|o| serde_json::to_value(o).ok())
                .collect();
            match kind {
                "VirtualService" => proxies.virtual_services = json,
                "RouteTable" => proxies.route_tables = json,
                "Upstream" => proxies.upstreams = json,
                "ApisixRoute" => proxies.apisix_routes = json,
                "HTTPProxy" => proxies.http_proxies = json,
                _ => proxies.ingresses = json,
            }
        }
        Ok(Snapshot {
            routes,
            proxies,
            cluster: ClusterView::new(
                services.iter().map(service_view),
                workloads.iter().map(workload_view),
            ),
            problems,
        })
    }

    /// Writes `parents` as the route's `status.parents`. The resourceVersion makes it a
    /// compare-and-swap: if the route changed since it was read, the write fails with 409
    /// and the next tick decides again from the new state.
    pub async fn write_parents(
        &self,
        route: &HttpRoute,
        parents: &[HttpRouteStatusParents],
    ) -> Result<(), kube::Error> {
        let namespace = route.metadata.namespace.as_deref().unwrap_or_default();
        let name = route.metadata.name.as_deref().unwrap_or_default();
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &self.version.resource());
        let patch = json!({
            "metadata": { "resourceVersion": route.metadata.resource_version },
            "status": { "parents": parents },
        });
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        api.patch_status(name, &params, &Patch::Merge(&patch))
            .await
            .map(|_| ())
    }

    /// Every route at the version that is served, switching once per call on a 404.
    async fn routes(&mut self) -> Result<Vec<DynamicObject>, kube::Error> {
        match self.list_routes(self.version).await {
            Err(e) if is_not_found(&e) => {
                let other = self.version.other();
                let routes = self.list_routes(other).await?;
                self.version = other;
                Ok(routes)
            }
            result => result,
        }
    }

    async fn list_routes(&self, version: RouteVersion) -> Result<Vec<DynamicObject>, kube::Error> {
        self.list_dynamic(&version.resource()).await
    }

    async fn list_dynamic(
        &self,
        resource: &ApiResource,
    ) -> Result<Vec<DynamicObject>, kube::Error> {
        let apis: Vec<Api<DynamicObject>> = if self.namespaces.is_empty() {
            vec![Api::all_with(self.client.clone(), resource)]
        } else {
            self.namespaces
                .iter()
                .map(|ns| Api::namespaced_with(self.client.clone(), ns, resource))
                .collect()
        };
        let mut out = Vec::new();
        for api in apis {
            out.extend(api.list(&ListParams::default()).await?.items);
        }
        Ok(out)
    }

    async fn list<K>(&self) -> Result<Vec<K>, kube::Error>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
        <K as Resource>::DynamicType: Default,
    {
        let apis: Vec<Api<K>> = if self.namespaces.is_empty() {
            vec![Api::all(self.client.clone())]
        } else {
            self.namespaces
                .iter()
                .map(|ns| Api::namespaced(self.client.clone(), ns))
                .collect()
        };
        let mut out = Vec::new();
        for api in apis {
            out.extend(api.list(&ListParams::default()).await?.items);
        }
        Ok(out)
    }
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(status) if status.code == 404)
}

/// One route as the v1 type; a route that does not fit it is skipped and named, rather than
/// failing the whole list.
fn decode_route(object: DynamicObject, problems: &mut Vec<String>) -> Option<HttpRoute> {
    let name = format!(
        "{}/{}",
        object.metadata.namespace.as_deref().unwrap_or_default(),
        object.metadata.name.as_deref().unwrap_or_default()
    );
    match serde_json::to_value(&object).and_then(serde_json::from_value::<HttpRoute>) {
        Ok(route) => Some(route),
        Err(e) => {
            problems.push(format!(
                "HTTPRoute {name} cannot be read as gateway.networking.k8s.io/v1: {e}; not simulated"
            ));
            None
        }
    }
}

fn service_view(service: &Service) -> ServiceView {
    ServiceView {
        namespace: service.metadata.namespace.clone().unwrap_or_default(),
        name: service.metadata.name.clone().unwrap_or_default(),
        selector: service
            .spec
            .as_ref()
            .and_then(|s| s.selector.clone())
            .unwrap_or_default(),
    }
}

fn workload_view(deployment: &Deployment) -> WorkloadView {
    let pod = deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref());
    WorkloadView {
        namespace: deployment.metadata.namespace.clone().unwrap_or_default(),
        name: deployment.metadata.name.clone().unwrap_or_default(),
        pod_labels: pod.and_then(|m| m.labels.clone()).unwrap_or_default(),
        pod_annotations: pod.and_then(|m| m.annotations.clone()).unwrap_or_default(),
        ready_replicas: deployment
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or_default(),
    }
}
