//! Table tests of the canary ApisixRoute builders against Flagger's `apisix_test.go`
//! (reference §4.5), with the guide's Canary (src/api/testdata/apisix-canary.yaml) and its
//! ApisixRoute.

use serde_json::{Value, json};

use super::*;
use crate::api::CanaryAnalysis;

const SEED: &str = include_str!("../../api/testdata/apisix-canary.yaml");

/// The guide's ApisixRoute.
const GUIDE_ROUTE: &str = r#"
apiVersion: apisix.apache.org/v2
kind: ApisixRoute
metadata:
  name: podinfo
  namespace: test
spec:
  http:
    - backends:
        - serviceName: podinfo
          servicePort: 80
      match:
        hosts:
          - app.example.com
        methods:
          - GET
        paths:
          - /*
      name: method
      plugins:
        - name: prometheus
          enable: true
          config:
            disable: false
            prefer_name: true
"#;

fn canary() -> Canary {
    let mut canary: Canary = serde_saphyr::from_str(SEED).unwrap();
    canary.metadata.uid = Some("uid-1".into());
    canary
}

fn route(yaml: &str) -> ApisixRoute {
    serde_saphyr::from_str(yaml).unwrap()
}

fn owner() -> Value {
    json!({
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "name": "podinfo",
        "uid": "uid-1",
        "controller": true,
        "blockOwnerDeletion": true
    })
}

fn flux_opt_out() -> Value {
    json!({
        "kustomize.toolkit.fluxcd.io/reconcile": "disabled",
        "helm.toolkit.fluxcd.io/driftDetection": "disabled"
    })
}

fn spec_json(c: &Canary, user: &ApisixRoute) -> Value {
    serde_json::to_value(canary_route_spec(c, user).unwrap()).unwrap()
}

fn weights(spec: &ApisixRouteSpec) -> Vec<(String, Option<i64>)> {
    spec.http
        .iter()
        .flat_map(|h| h.backends.iter())
        .map(|b| (b.service_name.clone(), b.weight))
        .collect()
}

#[test]
fn seed_gets_flaggers_canary_route() {
    let c = canary();
    let user = route(GUIDE_ROUTE);
    assert_eq!(canary_route_name(&c).unwrap(), "podinfo-podinfo-canary");
    let spec = canary_route_spec(&c, &user).unwrap();
    let got = canary_route_object(&c, &user, Some(owner_reference(&c).unwrap()), spec).unwrap();
    let want = json!({
        "apiVersion": "apisix.apache.org/v2",
        "kind": "ApisixRoute",
        "metadata": {
            "name": "podinfo-podinfo-canary",
            "namespace": "test",
            "annotations": flux_opt_out(),
            "ownerReferences": [owner()]
        },
        "spec": {
            "http": [{
                "name": "method",
                "priority": 10000,
                "match": {"hosts": ["app.example.com"], "methods": ["GET"], "paths": ["/*"]},
                "plugins": [{"name": "prometheus", "enable": true, "config": {"disable": false, "prefer_name": true}}],
                "backends": [
                    {"serviceName": "podinfo-primary", "servicePort": 80, "weight": 100},
                    {"serviceName": "podinfo-canary", "servicePort": 80, "weight": 0}
                ]
            }]
        }
    });
    assert_eq!(serde_json::to_value(&got).unwrap(), want);
}

#[test]
fn flaggers_test_route_keeps_its_plugin_config() {
    // Flagger's newTestApisixRoute: plugin config values as strings, in namespace default.
    let mut c = canary();
    c.metadata.namespace = Some("default".into());
    c.spec.service.as_mut().unwrap().port = Some(9898);
    let user = route(
        r#"
apiVersion: apisix.apache.org/v2
kind: ApisixRoute
metadata: {name: podinfo, namespace: default}
spec:
  http:
  - name: method
    match: {hosts: [foobar.com], methods: [GET], paths: [/*]}
    plugins:
    - {name: prometheus, enable: true, config: {disable: "false", prefer_name: "true"}}
    backends:
    - {serviceName: podinfo, servicePort: 80}
"#,
    );
    let got = spec_json(&c, &user);
    assert_eq!(
        got,
        json!({"http": [{
            "name": "method",
            "priority": 10000,
            "match": {"hosts": ["foobar.com"], "methods": ["GET"], "paths": ["/*"]},
            "plugins": [{"name": "prometheus", "enable": true, "config": {"disable": "false", "prefer_name": "true"}}],
            "backends": [
                // The route's port, not service.port: the backend is copied as it is.
                {"serviceName": "podinfo-primary", "servicePort": 80, "weight": 100},
                {"serviceName": "podinfo-canary", "servicePort": 80, "weight": 0}
            ]
        }]})
    );
    // Flagger's test: two backends on the first http route.
    let spec = canary_route_spec(&c, &user).unwrap();
    assert_eq!(spec.http[0].backends.len(), 2);
}

#[test]
fn everything_else_in_the_copied_route_survives() {
    let c = canary();
    let user = route(
        r#"
apiVersion: apisix.apache.org/v2
kind: ApisixRoute
metadata: {name: podinfo, namespace: test}
spec:
  ingressClassName: apisix
  stream:
  - name: tcp
    protocol: TCP
    match: {ingressPort: 9100}
    backend: {serviceName: podinfo, servicePort: 9100}
  http:
  - name: other
    match: {paths: [/other]}
    backends:
    - {serviceName: other, servicePort: 80}
  - name: api
    priority: 5
    timeout: {connect: 1s, read: 10s, send: 10s}
    websocket: true
    plugin_config_name: shared
    authentication: {enable: true, type: keyAuth, keyAuth: {header: apikey}}
    match:
      paths: [/api/*]
      exprs:
      - subject: {scope: Header, name: X-Env}
        op: Equal
        value: prod
    upstreams:
    - {name: external, weight: 10}
    backends:
    - {serviceName: podinfo, servicePort: http, resolveGranularity: service, subset: v1}
  - name: later
    match: {paths: [/later]}
    backends:
    - {serviceName: podinfo, servicePort: 80}
"#,
    );
    assert_eq!(
        spec_json(&c, &user),
        json!({
            "ingressClassName": "apisix",
            "http": [{
                "name": "api",
                "priority": 10000,
                "timeout": {"connect": "1s", "read": "10s", "send": "10s"},
                "websocket": true,
                "plugin_config_name": "shared",
                "authentication": {"enable": true, "type": "keyAuth", "keyAuth": {"header": "apikey"}},
                "match": {
                    "paths": ["/api/*"],
                    "exprs": [{"subject": {"scope": "Header", "name": "X-Env"}, "op": "Equal", "value": "prod"}]
                },
                "backends": [
                    {"serviceName": "podinfo-primary", "servicePort": "http", "resolveGranularity": "service", "subset": "v1", "weight": 100},
                    {"serviceName": "podinfo-canary", "servicePort": "http", "resolveGranularity": "service", "subset": "v1", "weight": 0}
                ]
            }]
        })
    );
}

#[test]
fn canary_route_metadata_comes_from_the_users_route() {
    let c = canary();
    let user = route(
        r#"
apiVersion: apisix.apache.org/v2
kind: ApisixRoute
metadata:
  name: podinfo
  namespace: test
  labels: {app: podinfo, kustomize.toolkit.fluxcd.io/name: apps}
  annotations:
    team: web
    kubectl.kubernetes.io/last-applied-configuration: '{}'
    kustomize.toolkit.fluxcd.io/checksum: abc
spec:
  http:
  - {name: method, match: {paths: [/*]}, backends: [{serviceName: podinfo, servicePort: 80}]}
"#,
    );
    let spec = canary_route_spec(&c, &user).unwrap();
    let got = canary_route_object(&c, &user, None, spec).unwrap();
    assert_eq!(
        serde_json::to_value(&got.metadata).unwrap(),
        json!({
            "name": "podinfo-podinfo-canary",
            "namespace": "test",
            "labels": {"app": "podinfo"},
            "annotations": {
                "team": "web",
                "kustomize.toolkit.fluxcd.io/reconcile": "disabled",
                "helm.toolkit.fluxcd.io/driftDetection": "disabled"
            }
        })
    );
    // service.name renames the apex, and with it the backend looked for and the route name.
    let mut renamed = canary();
    renamed.spec.service.as_mut().unwrap().name = Some("frontend".into());
    assert_eq!(
        canary_route_name(&renamed).unwrap(),
        "podinfo-frontend-canary"
    );
}

#[test]
fn reconcile_errors_are_flaggers() {
    let no_ref = {
        let mut c = canary();
        c.spec.route_ref = None;
        c
    };
    let empty_ref = {
        let mut c = canary();
        c.spec.route_ref.as_mut().unwrap().name = Some(String::new());
        c
    };
    let header = "apiVersion: apisix.apache.org/v2\nkind: ApisixRoute\nmetadata: {name: podinfo, namespace: test}\n";
    let table: &[(&Canary, String, &str)] = &[
        (
            &no_ref,
            GUIDE_ROUTE.to_string(),
            "apisix route selector is empty",
        ),
        (
            &empty_ref,
            GUIDE_ROUTE.to_string(),
            "apisix route selector is empty",
        ),
        (
            &canary(),
            format!(
                "{header}spec: {{stream: [{{name: s, protocol: TCP, match: {{ingressPort: 1}}, backend: {{serviceName: podinfo, servicePort: 1}}}}]}}"
            ),
            "APISIX route podinfo.test's spec.http is empty",
        ),
        (
            &canary(),
            format!(
                "{header}spec: {{http: [{{name: a, match: {{paths: [/*]}}, backends: [{{serviceName: other, servicePort: 80}}]}}]}}"
            ),
            "Can not find podinfo backend on apisix route podinfo.test",
        ),
        (
            &canary(),
            format!(
                "{header}spec: {{http: [{{name: split, match: {{paths: [/*]}}, backends: [{{serviceName: podinfo, servicePort: 80}}, {{serviceName: other, servicePort: 80}}]}}]}}"
            ),
            "APISIX route podinfo.test's http route split only one http backend is supported",
        ),
    ];
    for (c, user, want) in table {
        let err = canary_route_spec(c, &route(user)).unwrap_err();
        assert!(matches!(err, RouterError::Refused(_)), "{want}");
        assert_eq!(err.to_string(), *want);
    }
    assert_eq!(
        canary_route_name(&no_ref).unwrap_err().to_string(),
        "apisix route selector is empty"
    );
}

fn live(spec: ApisixRouteSpec, labels: Option<Value>, annotations: Value) -> ApisixRoute {
    let c = canary();
    let user = route(GUIDE_ROUTE);
    let mut live =
        canary_route_object(&c, &user, Some(owner_reference(&c).unwrap()), spec).unwrap();
    live.metadata.labels = labels.map(|l| serde_json::from_value(l).unwrap());
    live.metadata.annotations = Some(serde_json::from_value(annotations).unwrap());
    live.metadata.resource_version = Some("3".into());
    live
}

#[test]
fn reconcile_rewrites_only_on_real_changes() {
    let c = canary();
    let user = route(GUIDE_ROUTE);
    let spec = canary_route_spec(&c, &user).unwrap();
    let desired = canary_route_object(&c, &user, None, spec.clone()).unwrap();
    let mut moved = spec.clone();
    set_weights(&c, &mut moved, Routes::new(30, 70)).unwrap();
    let mut plugin_changed = spec.clone();
    plugin_changed.http[0]
        .other
        .insert("plugins".into(), json!([]));
    let mut port_changed = spec.clone();
    port_changed.http[0].backends[1].service_port =
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(8080));
    let mut foreign = flux_opt_out();
    foreign["x"] = json!("y");
    let table: &[(&str, ApisixRoute, bool)] = &[
        (
            "as written",
            live(spec.clone(), None, flux_opt_out()),
            false,
        ),
        (
            "weights moved by SetRoutes",
            live(moved, None, flux_opt_out()),
            false,
        ),
        (
            "keys other controllers added",
            live(spec.clone(), Some(json!({"a": "b"})), foreign),
            false,
        ),
        (
            "user route's plugins changed",
            live(plugin_changed, None, flux_opt_out()),
            true,
        ),
        (
            "canary backend edited",
            live(port_changed, None, flux_opt_out()),
            true,
        ),
        (
            "Flux opt-out missing",
            live(spec.clone(), None, json!({})),
            true,
        ),
    ];
    for (case, live, want) in table {
        assert_eq!(route_needs_update(live, &desired), *want, "{case}");
    }
}

#[test]
fn a_metadata_change_mid_run_keeps_the_weights() {
    let c = canary();
    let user = route(GUIDE_ROUTE);
    let spec = canary_route_spec(&c, &user).unwrap();
    let desired = canary_route_object(&c, &user, None, spec.clone()).unwrap();
    let mut moved = spec.clone();
    set_weights(&c, &mut moved, Routes::new(30, 70)).unwrap();
    // The Flux opt-out went missing (someone edited the route): rewritten, weights kept.
    let running = live(moved.clone(), None, json!({}));
    let applied = route_to_apply(Some(&running), desired.clone()).unwrap();
    assert_eq!(weights(&applied.spec), weights(&moved));
    assert_eq!(applied.metadata.annotations, desired.metadata.annotations);
    // The user's route changed: rewritten from it, at 100/0 as in Flagger.
    let mut plugin_changed = moved.clone();
    plugin_changed.http[0]
        .other
        .insert("plugins".into(), json!([]));
    let changed = live(plugin_changed, None, flux_opt_out());
    let applied = route_to_apply(Some(&changed), desired.clone()).unwrap();
    assert_eq!(weights(&applied.spec), weights(&spec));
    // Nothing changed: nothing applied; no live route: the desired one.
    assert!(route_to_apply(Some(&live(moved, None, flux_opt_out())), desired.clone()).is_none());
    assert_eq!(route_to_apply(None, desired.clone()), Some(desired));
}

#[test]
fn set_and_get_routes() {
    let c = canary();
    let mut spec = canary_route_spec(&c, &route(GUIDE_ROUTE)).unwrap();
    // Flagger's TestApisixRouter_GetSetRoutes: 100/0 after Reconcile, then 50/50.
    assert_eq!(read_routes(&c, &spec).unwrap(), Routes::new(100, 0));
    for (primary, canary_weight) in [(50, 50), (90, 10), (0, 100), (100, 0)] {
        let routes = Routes::new(primary, canary_weight);
        check_weights(&c, routes).unwrap();
        set_weights(&c, &mut spec, routes).unwrap();
        assert_eq!(
            weights(&spec),
            [
                ("podinfo-primary".to_string(), Some(i64::from(primary))),
                ("podinfo-canary".to_string(), Some(i64::from(canary_weight))),
            ]
        );
        assert_eq!(read_routes(&c, &spec).unwrap(), routes);
    }
    assert_eq!(
        check_weights(&c, Routes::new(0, 0))
            .unwrap_err()
            .to_string(),
        "RoutingRule podinfo.test update failed: no valid weights"
    );
}

#[test]
fn get_routes_reads_the_primary_backend() {
    let c = canary();
    let header = "apiVersion: apisix.apache.org/v2\nkind: ApisixRoute\nmetadata: {name: podinfo-podinfo-canary, namespace: test}\n";
    let table: &[(&str, Result<Routes, &str>)] = &[
        (
            "[{serviceName: podinfo-canary, servicePort: 80, weight: 25}, {serviceName: podinfo-primary, servicePort: 80, weight: 75}]",
            Ok(Routes::new(75, 25)),
        ),
        // The canary's weight is not read: it is the rest of 100.
        (
            "[{serviceName: podinfo-primary, servicePort: 80, weight: 60}, {serviceName: podinfo-canary, servicePort: 80, weight: 60}]",
            Ok(Routes::new(60, 40)),
        ),
        // APISIX's controller reads an absent weight as 100.
        (
            "[{serviceName: podinfo-primary, servicePort: 80}, {serviceName: podinfo-canary, servicePort: 80, weight: 0}]",
            Ok(Routes::new(100, 0)),
        ),
        (
            "[{serviceName: podinfo, servicePort: 80, weight: 100}]",
            Err("Can not find podinfo-primary backend on apisix route podinfo.test"),
        ),
    ];
    for (backends, want) in table {
        let live = route(&format!(
            "{header}spec: {{http: [{{name: method, match: {{paths: [/*]}}, backends: {backends}}}]}}"
        ));
        let got = read_routes(&c, &live.spec).map_err(|e| e.to_string());
        assert_eq!(got, (*want).map_err(str::to_string), "{backends}");
        if want.is_err() {
            let mut spec = live.spec.clone();
            assert!(set_weights(&c, &mut spec, Routes::new(50, 50)).is_err());
        }
    }
}

fn with_analysis(yaml: &str) -> Canary {
    let mut c = canary();
    c.spec.analysis = Some(serde_saphyr::from_str::<CanaryAnalysis>(yaml).unwrap());
    c
}

#[test]
fn inexpressible_lists_what_apisix_would_ignore() {
    let no_ref = {
        let mut c = canary();
        c.spec.route_ref = None;
        c
    };
    let table: &[(Canary, &[&str])] = &[
        (canary(), &[]),
        (with_analysis("{stepWeight: 10, match: []}"), &[]),
        (
            with_analysis("{iterations: 10, match: [{headers: {x-canary: {exact: insider}}}]}"),
            &["spec.analysis.match"],
        ),
        (
            with_analysis("{stepWeight: 10, sessionAffinity: {cookieName: c}}"),
            &["spec.analysis.sessionAffinity"],
        ),
        (no_ref, &["spec.routeRef"]),
    ];
    for (c, want) in table {
        let got: Vec<String> = inexpressible(c).into_iter().map(|i| i.field).collect();
        assert_eq!(got, *want);
    }
    let ab = with_analysis("{iterations: 10, match: [{headers: {x-canary: {exact: insider}}}]}");
    assert_eq!(
        inexpressible(&ab),
        [Inexpressible {
            field: "spec.analysis.match".into(),
            problem: "provider \"apisix\" cannot route by request attributes (no A/B testing); \
                      the match conditions would be ignored and an A/B run would send every \
                      request to the canary"
                .into(),
            fix: "remove match and shift traffic by weight (stepWeight, or iterations for \
                  blue/green), or use a provider with A/B testing (istio, gatewayapi:v1, \
                  nginx, contour, gloo)"
                .into(),
        }]
    );
    // The router refuses the same Canary.
    let err = canary_route_spec(&ab, &route(GUIDE_ROUTE)).unwrap_err();
    let problem = &inexpressible(&ab)[0];
    assert_eq!(
        err.to_string(),
        format!(
            "canary podinfo.test cannot be routed by a canary ApisixRoute: {}: {}; fix: {}",
            problem.field, problem.problem, problem.fix
        )
    );
}
