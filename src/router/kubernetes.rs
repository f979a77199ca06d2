//! The three ClusterIP Services of a Deployment/DaemonSet canary and the routing of
//! `provider: kubernetes` (Flagger reference §4.1).
//!
//! * `<apex>-canary` selects the canary pods (`<label>=<value>`), `<apex>-primary` and the
//!   apex `<apex>` select the primary pods (`<label>=<value>-primary`). Users and meshes talk to
//!   the apex; load testers and metrics talk to the other two.
//! * A Service Serin created (controller-owned by this Canary) is written whole with
//!   server-side apply. A Service someone else created under the apex name is *taken over* as
//!   Flagger does: only its selector and ports are replaced, its metadata and type are left
//!   alone, and it gets no owner reference (deleting the Canary must not delete a user's
//!   Service).
//! * `provider: kubernetes` has no routing object: [`NopRouter`] reports 100/0 until the
//!   blue/green run has counted an iteration, then 0/100 (the apex switches with promotion).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};

use super::{
    ApiAction, FIELD_MANAGER, Router, RouterError, Routes, api_error, canary_namespace,
    canary_service, controlled_by, owner_reference, with_flux_opt_out,
};
use crate::api::{Canary, CanaryStatus, CustomMetadata, UnmanagedMetadata};

/// Index of the apex Service in [`desired_services`]' result.
pub const APEX: usize = 0;
/// Index of the `-primary` Service.
pub const PRIMARY: usize = 1;
/// Index of the `-canary` Service.
pub const CANARY: usize = 2;

/// Flagger's `clusterIP` for headless Services.
const HEADLESS: &str = "None";

/// What the workload said about its pods (Flagger's `GetMetadata`): the selector label, its
/// value on the target's pods, and the extra container ports found by port discovery
/// (name → port).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceSelector {
    pub label: String,
    pub value: String,
    pub ports: BTreeMap<String, i32>,
}

/// The apex, primary and canary Services, in that order ([`APEX`], [`PRIMARY`], [`CANARY`]).
///
/// Ports: `service.port` named `service.portName` (default `http`) forwarding to
/// `service.targetPort` (default: the port) with `service.appProtocol`, then one TCP port per
/// discovered container port, sorted by name. Labels: the custom labels plus
/// `<selector_label>=<service name>`; annotations: the custom ones plus Flux's opt-out pair.
pub fn desired_services(
    canary: &Canary,
    selector_label: &str,
    selector_value: &str,
    discovered_ports: &BTreeMap<String, i32>,
) -> Result<[Service; 3], RouterError> {
    let namespace = canary_namespace(canary)?;
    let (service, port) = canary_service(canary)?;
    let owner = owner_reference(canary)?;

    let mut ports = vec![ServicePort {
        name: Some(service.port_name().to_string()),
        protocol: Some("TCP".into()),
        port,
        target_port: service.target_port(),
        app_protocol: service.app_protocol.clone().filter(|p| !p.is_empty()),
        ..Default::default()
    }];
    ports.extend(discovered_ports.iter().map(|(name, port)| ServicePort {
        name: Some(name.clone()),
        protocol: Some("TCP".into()),
        port: *port,
        target_port: Some(IntOrString::Int(*port)),
        ..Default::default()
    }));

    let primary_value = format!("{selector_value}-primary");
    let build = |name: String, pods: &str, metadata: Option<&CustomMetadata>| {
        let mut labels = metadata.and_then(|m| m.labels.clone()).unwrap_or_default();
        labels.insert(selector_label.to_string(), name.clone());
        Service {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: Some(namespace.to_string()),
                labels: Some(labels),
                annotations: Some(with_flux_opt_out(
                    metadata.and_then(|m| m.annotations.as_ref()),
                )),
                owner_references: Some(vec![owner.clone()]),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                type_: Some("ClusterIP".into()),
                selector: Some([(selector_label.to_string(), pods.to_string())].into()),
                ports: Some(ports.clone()),
                cluster_ip: service
                    .headless
                    .unwrap_or(false)
                    .then(|| HEADLESS.to_string()),
                traffic_distribution: service
                    .traffic_distribution
                    .clone()
                    .filter(|t| !t.is_empty()),
                ..Default::default()
            }),
            status: None,
        }
    };

    Ok([
        build(
            canary.spec.apex_service_name().to_string(),
            &primary_value,
            service.apex.as_ref(),
        ),
        build(
            canary.spec.primary_service_name(),
            &primary_value,
            service.primary.as_ref(),
        ),
        build(
            canary.spec.canary_service_name(),
            selector_value,
            service.canary.as_ref(),
        ),
    ])
}

/// How a desired Service reaches the cluster.
#[derive(Clone, Debug, PartialEq)]
pub enum ServiceWrite {
    /// Server-side apply of the whole object: the Service is new or Serin's own.
    Apply(Box<Service>),
    /// Replace (with the live resourceVersion) of a Service Serin does not own: the live
    /// object with only its selector and ports changed.
    Replace(Box<Service>),
    /// A foreign Service that already selects and exposes what it should.
    Unchanged,
}

/// The selector the apex Service gets back when its Canary is deleted with
/// `revertOnDeletion` (Flagger's `Finalize` of the Kubernetes router): the selector of the
/// kubectl last-applied configuration of an apex Service someone else made before Serin took it
/// over, else the target's pods (`label: value`) — an apex left on the primary would lose its
/// endpoints once the garbage collector removes the primary.
pub fn apex_revert_selector(
    service: &Service,
    canary_name: &str,
    label: &str,
    value: &str,
) -> Result<BTreeMap<String, String>, RouterError> {
    let target = || [(label.to_string(), value.to_string())].into();
    if owned_by_canary(service, canary_name) {
        return Ok(target());
    }
    let Some(applied) = service
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(LAST_APPLIED_ANNOTATION))
    else {
        return Ok(target());
    };
    let name = service.metadata.name.as_deref().unwrap_or_default();
    let applied: serde_json::Value = serde_json::from_str(applied).map_err(|e| {
        RouterError::Refused(format!(
            "Service {name}: {LAST_APPLIED_ANNOTATION} is not JSON ({e}); cannot restore its selector"
        ))
    })?;
    match serde_json::from_value::<BTreeMap<String, String>>(applied["spec"]["selector"].clone()) {
        Ok(selector) if !selector.is_empty() => Ok(selector),
        _ => Err(RouterError::Refused(format!(
            "Service {name}: {LAST_APPLIED_ANNOTATION} has no spec.selector to restore"
        ))),
    }
}

/// kubectl's record of what was applied last, which Flagger restores from.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Whether `service`'s controller is the Canary named `canary_name`.
pub fn owned_by_canary(service: &Service, canary_name: &str) -> bool {
    controlled_by(&service.metadata, canary_name)
}

/// Decides how `desired` is written over `live` (Flagger's `reconcileService` update rule).
///
/// * No live Service, or one controller-owned by this Canary: apply `desired`. For keys listed
///   in `unmanagedMetadata` the live value wins, so Serin never fights the controller that
///   owns them; a headless `clusterIP: None` is only applied where the live Service is
///   headless already (the field is immutable, and Flagger only sets it on create).
/// * Anyone else's Service: its selector and ports are replaced when they differ (ports
///   compared regardless of order, node ports kept by port name); nothing else is touched.
pub fn plan_service_write(
    desired: &Service,
    live: Option<&Service>,
    canary_name: &str,
    unmanaged: Option<&UnmanagedMetadata>,
) -> ServiceWrite {
    let Some(live) = live else {
        return ServiceWrite::Apply(Box::new(desired.clone()));
    };
    let desired_spec = desired.spec.clone().unwrap_or_default();
    let live_spec = live.spec.clone().unwrap_or_default();

    if owned_by_canary(live, canary_name) {
        let mut apply = desired.clone();
        if let Some(unmanaged) = unmanaged {
            keep_live_values(
                &mut apply.metadata.labels,
                live.metadata.labels.as_ref(),
                unmanaged.labels.as_deref().unwrap_or_default(),
            );
            keep_live_values(
                &mut apply.metadata.annotations,
                live.metadata.annotations.as_ref(),
                unmanaged.annotations.as_deref().unwrap_or_default(),
            );
        }
        if let Some(spec) = apply.spec.as_mut()
            && spec.cluster_ip.as_deref() == Some(HEADLESS)
            && live_spec.cluster_ip.as_deref() != Some(HEADLESS)
        {
            spec.cluster_ip = None;
        }
        return ServiceWrite::Apply(Box::new(apply));
    }

    let mut ports = desired_spec.ports.clone().unwrap_or_default();
    for port in &mut ports {
        port.node_port = live_spec
            .ports
            .iter()
            .flatten()
            .find(|p| p.name == port.name && p.node_port.is_some_and(|n| n > 0))
            .and_then(|p| p.node_port);
    }
    let sorted = |mut list: Vec<ServicePort>| {
        list.sort_by_key(|p| p.port);
        list
    };
    let ports_differ = sorted(ports.clone()) != sorted(live_spec.ports.clone().unwrap_or_default());
    let selector_differs = desired_spec.selector.clone().unwrap_or_default()
        != live_spec.selector.clone().unwrap_or_default();
    if !ports_differ && !selector_differs {
        return ServiceWrite::Unchanged;
    }
    let mut replace = live.clone();
    let spec = replace.spec.get_or_insert_with(Default::default);
    spec.ports = Some(ports);
    spec.selector = desired_spec.selector;
    ServiceWrite::Replace(Box::new(replace))
}

fn keep_live_values(
    desired: &mut Option<BTreeMap<String, String>>,
    live: Option<&BTreeMap<String, String>>,
    keys: &[String],
) {
    let Some(live) = live else { return };
    for key in keys {
        if let Some(value) = live.get(key) {
            desired
                .get_or_insert_with(Default::default)
                .insert(key.clone(), value.clone());
        }
    }
}

/// Writes the Services of Deployment/DaemonSet canaries (Flagger's `KubernetesDefaultRouter`).
#[derive(Clone)]
pub struct KubernetesRouter {
    client: Client,
}

impl KubernetesRouter {
    pub fn new(client: Client) -> Self {
        KubernetesRouter { client }
    }

    /// Creates or updates `<apex>-canary` and `<apex>-primary` (Flagger's `Initialize`, run
    /// before the primary workload exists so that its Service is ready when it is).
    pub async fn initialize(
        &self,
        canary: &Canary,
        selector: &ServiceSelector,
    ) -> Result<(), RouterError> {
        let [_, primary, canary_svc] =
            desired_services(canary, &selector.label, &selector.value, &selector.ports)?;
        self.write(canary, canary_svc).await?;
        self.write(canary, primary).await
    }

    /// Creates or takes over the apex Service, pointing it at the primary pods (Flagger's
    /// `Reconcile`, run once the primary workload is ready).
    pub async fn reconcile(
        &self,
        canary: &Canary,
        selector: &ServiceSelector,
    ) -> Result<(), RouterError> {
        let [apex, _, _] =
            desired_services(canary, &selector.label, &selector.value, &selector.ports)?;
        self.write(canary, apex).await
    }

    /// Points the apex Service back at the target's pods, or at what it selected before Serin
    /// took it over (see [`apex_revert_selector`]); a missing apex needs nothing.
    pub async fn finalize(
        &self,
        canary: &Canary,
        selector: &ServiceSelector,
    ) -> Result<(), RouterError> {
        let namespace = canary_namespace(canary)?;
        let name = canary.spec.apex_service_name();
        let api: Api<Service> = Api::namespaced(self.client.clone(), namespace);
        let Some(live) = api.get_opt(name).await.map_err(api_error(
            "Service",
            name,
            namespace,
            ApiAction::Get,
        ))?
        else {
            return Ok(());
        };
        let canary_name = canary.metadata.name.as_deref().unwrap_or_default();
        let revert = apex_revert_selector(&live, canary_name, &selector.label, &selector.value)?;
        // A merge patch would keep the primary's keys beside the restored ones: the strategic
        // merge directive replaces the whole selector.
        let mut selector = serde_json::Map::new();
        selector.insert("$patch".into(), "replace".into());
        for (k, v) in revert {
            selector.insert(k, v.into());
        }
        let patch = serde_json::json!({ "spec": { "selector": selector } });
        api.patch(name, &PatchParams::default(), &Patch::Strategic(&patch))
            .await
            .map_err(api_error("Service", name, namespace, ApiAction::Update))?;
        Ok(())
    }

    async fn write(&self, canary: &Canary, desired: Service) -> Result<(), RouterError> {
        let namespace = canary_namespace(canary)?;
        let name = desired.metadata.name.clone().unwrap_or_default();
        let api: Api<Service> = Api::namespaced(self.client.clone(), namespace);
        let live = api.get_opt(&name).await.map_err(api_error(
            "Service",
            &name,
            namespace,
            ApiAction::Get,
        ))?;
        let unmanaged = canary
            .spec
            .service
            .as_ref()
            .and_then(|s| s.unmanaged_metadata.as_ref());
        let canary_name = canary.metadata.name.as_deref().unwrap_or_default();
        match plan_service_write(&desired, live.as_ref(), canary_name, unmanaged) {
            ServiceWrite::Apply(service) => {
                api.patch(
                    &name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&*service),
                )
                .await
                .map_err(api_error(
                    "Service",
                    &name,
                    namespace,
                    ApiAction::Apply,
                ))?;
                if live.is_none() {
                    tracing::info!(canary = %canary.dotted_name(), "Service {name}.{namespace} created");
                }
            }
            ServiceWrite::Replace(service) => {
                let params = PostParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..Default::default()
                };
                api.replace(&name, &params, &service)
                    .await
                    .map_err(api_error("Service", &name, namespace, ApiAction::Update))?;
                tracing::info!(canary = %canary.dotted_name(), "Service {name}.{namespace} updated");
            }
            ServiceWrite::Unchanged => {}
        }
        Ok(())
    }
}

/// The routes of `provider: kubernetes`: all traffic on the primary until the blue/green run
/// has counted an iteration, then on the canary (Flagger's `NopRouter`; the canary is reached
/// through `<apex>-canary` meanwhile and the apex switches with promotion).
pub fn kubernetes_routes(status: Option<&CanaryStatus>) -> Routes {
    if status.is_some_and(|s| s.iterations > 0) {
        Routes::new(0, 100)
    } else {
        Routes::INITIAL
    }
}

/// The router of `provider: kubernetes`: there is no routing object to write.
#[derive(Clone, Copy, Debug, Default)]
pub struct NopRouter;

impl Router for NopRouter {
    async fn reconcile(&self, _canary: &Canary) -> Result<(), RouterError> {
        Ok(())
    }

    async fn set_routes(
        &self,
        _canary: &Canary,
        _routes: Routes,
        _status: &mut CanaryStatus,
    ) -> Result<(), RouterError> {
        Ok(())
    }

    async fn get_routes(&self, canary: &Canary) -> Result<Routes, RouterError> {
        Ok(kubernetes_routes(canary.status.as_ref()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::router::{FLUX_RECONCILE_ANNOTATION, HELM_DRIFT_DETECTION_ANNOTATION};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn canary(yaml: &str) -> Canary {
        let mut canary: Canary = serde_saphyr::from_str(yaml).unwrap();
        canary.metadata.uid = Some("uid-1".into());
        canary
    }

    const FAQ: &str = include_str!("../api/testdata/faq-kubernetes-service.yaml");

    fn spec(s: &Service) -> &ServiceSpec {
        s.spec.as_ref().unwrap()
    }

    fn port(name: &str, port: i32, target: IntOrString) -> ServicePort {
        ServicePort {
            name: Some(name.into()),
            protocol: Some("TCP".into()),
            port,
            target_port: Some(target),
            ..Default::default()
        }
    }

    #[test]
    fn three_services_select_primary_and_canary_pods() {
        let c = canary(FAQ);
        let services = desired_services(&c, "app", "podinfo", &BTreeMap::new()).unwrap();
        let table = [
            (APEX, "podinfo", "podinfo-primary"),
            (PRIMARY, "podinfo-primary", "podinfo-primary"),
            (CANARY, "podinfo-canary", "podinfo"),
        ];
        for (index, name, pods) in table {
            let s = &services[index];
            assert_eq!(s.metadata.name.as_deref(), Some(name));
            assert_eq!(s.metadata.namespace.as_deref(), Some("test"));
            assert_eq!(
                s.metadata.labels,
                Some([("app".to_string(), name.to_string())].into())
            );
            let annotations = s.metadata.annotations.as_ref().unwrap();
            assert_eq!(annotations[FLUX_RECONCILE_ANNOTATION], "disabled");
            assert_eq!(annotations[HELM_DRIFT_DETECTION_ANNOTATION], "disabled");
            let owner = &s.metadata.owner_references.as_ref().unwrap()[0];
            assert_eq!(
                (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
                ("Canary", "podinfo", "uid-1")
            );
            assert_eq!(owner.controller, Some(true));
            let sp = spec(s);
            assert_eq!(sp.type_.as_deref(), Some("ClusterIP"));
            assert_eq!(
                sp.selector,
                Some([("app".to_string(), pods.to_string())].into())
            );
            // targetPort `http` (a container port name) is kept as a name.
            assert_eq!(
                sp.ports,
                Some(vec![port("http", 9898, IntOrString::String("http".into()))])
            );
            assert_eq!(sp.cluster_ip, None);
            assert_eq!(sp.traffic_distribution, None);
        }
    }

    const CUSTOM: &str = r#"
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: { name: frontend, namespace: prod }
spec:
  targetRef: { apiVersion: apps/v1, kind: Deployment, name: web }
  service:
    name: shop
    port: 80
    portName: grpc
    appProtocol: grpc
    headless: true
    trafficDistribution: PreferClose
    apex:
      labels: { tier: edge, app: overridden }
      annotations: { team: shop }
    primary:
      labels: { role: stable }
    canary:
      annotations: { role: candidate }
"#;

    #[test]
    fn custom_metadata_ports_and_options() {
        let c = canary(CUSTOM);
        let discovered: BTreeMap<String, i32> = [
            ("tcp-web-1".to_string(), 9797),
            ("metrics".to_string(), 9090),
        ]
        .into();
        let [apex, primary, canary_svc] = desired_services(&c, "app", "web", &discovered).unwrap();
        assert_eq!(apex.metadata.name.as_deref(), Some("shop"));
        assert_eq!(primary.metadata.name.as_deref(), Some("shop-primary"));
        assert_eq!(canary_svc.metadata.name.as_deref(), Some("shop-canary"));
        // The selector label always names the Service, even over a custom label.
        assert_eq!(
            apex.metadata.labels,
            Some(
                [
                    ("app".to_string(), "shop".to_string()),
                    ("tier".to_string(), "edge".to_string())
                ]
                .into()
            )
        );
        assert_eq!(apex.metadata.annotations.as_ref().unwrap()["team"], "shop");
        assert_eq!(primary.metadata.labels.as_ref().unwrap()["role"], "stable");
        assert_eq!(
            canary_svc.metadata.annotations.as_ref().unwrap()["role"],
            "candidate"
        );
        assert_eq!(
            spec(&canary_svc).selector,
            Some([("app".to_string(), "web".to_string())].into())
        );
        assert_eq!(
            spec(&apex).selector,
            Some([("app".to_string(), "web-primary".to_string())].into())
        );
        for s in [&apex, &primary, &canary_svc] {
            let sp = spec(s);
            assert_eq!(sp.cluster_ip.as_deref(), Some("None"));
            assert_eq!(sp.traffic_distribution.as_deref(), Some("PreferClose"));
            let main = ServicePort {
                app_protocol: Some("grpc".into()),
                ..port("grpc", 80, IntOrString::Int(80))
            };
            assert_eq!(
                sp.ports,
                Some(vec![
                    main,
                    port("metrics", 9090, IntOrString::Int(9090)),
                    port("tcp-web-1", 9797, IntOrString::Int(9797)),
                ])
            );
        }
    }

    #[test]
    fn missing_inputs_are_named() {
        let mut c = canary(FAQ);
        c.metadata.uid = None;
        let err = desired_services(&c, "app", "podinfo", &BTreeMap::new()).unwrap_err();
        assert!(matches!(err, RouterError::MissingUid { .. }), "{err}");
        let mut c = canary(FAQ);
        c.metadata.namespace = None;
        let err = desired_services(&c, "app", "podinfo", &BTreeMap::new()).unwrap_err();
        assert!(matches!(err, RouterError::MissingNamespace { .. }), "{err}");
        let mut c = canary(FAQ);
        if let Some(s) = c.spec.service.as_mut() {
            s.port = None;
        }
        let err = desired_services(&c, "app", "podinfo", &BTreeMap::new()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "canary podinfo.test has no spec.service.port; set the port the Services expose"
        );
    }

    fn controller(kind: &str, name: &str) -> OwnerReference {
        OwnerReference {
            api_version: "flagger.app/v1beta1".into(),
            kind: kind.into(),
            name: name.into(),
            uid: "u".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    fn apex() -> Service {
        let c = canary(FAQ);
        let [apex, _, _] = desired_services(&c, "app", "podinfo", &BTreeMap::new()).unwrap();
        apex
    }

    #[test]
    fn new_and_owned_services_are_applied_whole() {
        let desired = apex();
        assert_eq!(
            plan_service_write(&desired, None, "podinfo", None),
            ServiceWrite::Apply(Box::new(desired.clone()))
        );

        let mut live = desired.clone();
        live.metadata.labels = Some(
            [
                ("app".to_string(), "podinfo".to_string()),
                ("mesh.io/rev".to_string(), "blue".to_string()),
            ]
            .into(),
        );
        live.metadata.annotations = Some([("lb.io/id".to_string(), "42".to_string())].into());
        let unmanaged = UnmanagedMetadata {
            labels: Some(vec!["mesh.io/rev".into(), "absent".into()]),
            annotations: Some(vec!["lb.io/id".into()]),
        };
        let ServiceWrite::Apply(applied) =
            plan_service_write(&desired, Some(&live), "podinfo", Some(&unmanaged))
        else {
            panic!("an owned Service is applied");
        };
        let labels = applied.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["mesh.io/rev"], "blue");
        assert!(!labels.contains_key("absent"));
        let annotations = applied.metadata.annotations.as_ref().unwrap();
        assert_eq!(annotations["lb.io/id"], "42");
        assert_eq!(annotations[FLUX_RECONCILE_ANNOTATION], "disabled");
    }

    #[test]
    fn headless_is_only_applied_where_the_live_service_is_headless() {
        let mut desired = apex();
        desired.spec.as_mut().unwrap().cluster_ip = Some("None".into());
        let mut live = desired.clone();
        live.spec.as_mut().unwrap().cluster_ip = Some("10.0.0.7".into());
        let ServiceWrite::Apply(applied) =
            plan_service_write(&desired, Some(&live), "podinfo", None)
        else {
            panic!("apply");
        };
        assert_eq!(spec(&applied).cluster_ip, None);
        live.spec.as_mut().unwrap().cluster_ip = Some("None".into());
        let ServiceWrite::Apply(applied) =
            plan_service_write(&desired, Some(&live), "podinfo", None)
        else {
            panic!("apply");
        };
        assert_eq!(spec(&applied).cluster_ip.as_deref(), Some("None"));
    }

    fn user_service(selector: &str, ports: Vec<ServicePort>) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some("podinfo".into()),
                namespace: Some("test".into()),
                labels: Some([("owner".to_string(), "me".to_string())].into()),
                resource_version: Some("17".into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                type_: Some("NodePort".into()),
                selector: Some([("app".to_string(), selector.to_string())].into()),
                ports: Some(ports),
                cluster_ip: Some("10.0.0.9".into()),
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn foreign_services_get_only_selector_and_ports() {
        let desired = apex();
        let user_port = ServicePort {
            node_port: Some(30080),
            ..port("http", 80, IntOrString::Int(8080))
        };
        let live = user_service("podinfo", vec![user_port]);
        let ServiceWrite::Replace(replaced) =
            plan_service_write(&desired, Some(&live), "podinfo", None)
        else {
            panic!("a foreign Service with another selector is replaced");
        };
        let sp = spec(&replaced);
        assert_eq!(
            sp.selector,
            Some([("app".to_string(), "podinfo-primary".to_string())].into())
        );
        // The node port follows the port name; type, clusterIP and metadata stay the user's.
        let want = ServicePort {
            node_port: Some(30080),
            ..port("http", 9898, IntOrString::String("http".into()))
        };
        assert_eq!(sp.ports, Some(vec![want]));
        assert_eq!(sp.type_.as_deref(), Some("NodePort"));
        assert_eq!(sp.cluster_ip.as_deref(), Some("10.0.0.9"));
        assert_eq!(replaced.metadata, live.metadata);

        // Owned by another Canary is still foreign for metadata.
        let mut other = live.clone();
        other.metadata.owner_references = Some(vec![controller("Canary", "other")]);
        assert!(matches!(
            plan_service_write(&desired, Some(&other), "podinfo", None),
            ServiceWrite::Replace(_)
        ));
        let mut not_canary = live.clone();
        not_canary.metadata.owner_references = Some(vec![controller("HelmRelease", "podinfo")]);
        assert!(!owned_by_canary(&not_canary, "podinfo"));
        let mut mine = live;
        mine.metadata.owner_references = Some(vec![controller("Canary", "podinfo")]);
        assert!(owned_by_canary(&mine, "podinfo"));
    }

    #[test]
    fn foreign_service_already_in_shape_is_left_alone_whatever_the_port_order() {
        let mut desired = apex();
        let sp = desired.spec.as_mut().unwrap();
        let extra = port("metrics", 9090, IntOrString::Int(9090));
        sp.ports.as_mut().unwrap().push(extra.clone());
        let main = port("http", 9898, IntOrString::String("http".into()));
        let live = user_service("podinfo-primary", vec![extra, main]);
        assert_eq!(
            plan_service_write(&desired, Some(&live), "podinfo", None),
            ServiceWrite::Unchanged
        );
    }

    #[test]
    fn kubernetes_provider_routes_follow_iterations() {
        assert_eq!(kubernetes_routes(None), Routes::INITIAL);
        let mut status = CanaryStatus::default();
        assert_eq!(kubernetes_routes(Some(&status)), Routes::new(100, 0));
        status.iterations = 1;
        assert_eq!(kubernetes_routes(Some(&status)), Routes::new(0, 100));
    }

    #[test]
    fn apex_revert_selector_restores_what_was_there() {
        let service = |owner: Option<OwnerReference>, applied: Option<&str>| Service {
            metadata: ObjectMeta {
                name: Some("podinfo".into()),
                owner_references: owner.map(|o| vec![o]),
                annotations: applied
                    .map(|a| [(LAST_APPLIED_ANNOTATION.to_string(), a.to_string())].into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let target: BTreeMap<String, String> = [("app".into(), "podinfo".into())].into();
        let revert = |s: &Service| apex_revert_selector(s, "podinfo", "app", "podinfo");
        // Serin's own apex, with or without an annotation: the target's pods.
        let owned = service(Some(controller("Canary", "podinfo")), None);
        assert_eq!(revert(&owned).unwrap(), target);
        // Someone's apex without kubectl's record: the target's pods, never the primary.
        assert_eq!(revert(&service(None, None)).unwrap(), target);
        // Someone's apex applied with kubectl: its own selector back.
        let applied = service(
            None,
            Some(r#"{"spec":{"selector":{"app":"podinfo","tier":"web"}}}"#),
        );
        let want: BTreeMap<String, String> = [
            ("app".into(), "podinfo".into()),
            ("tier".into(), "web".into()),
        ]
        .into();
        assert_eq!(revert(&applied).unwrap(), want);
        // A record that cannot be read is an error, not a silent guess.
        for bad in ["not json", r#"{"spec":{}}"#, r#"{"spec":{"selector":{}}}"#] {
            let err = revert(&service(None, Some(bad))).unwrap_err();
            assert!(
                err.to_string().contains(LAST_APPLIED_ANNOTATION),
                "{bad}: {err}"
            );
        }
    }
}
