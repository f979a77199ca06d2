//! Table tests of the Gloo builders against Flagger's `gloo_test.go` and its Gloo e2e test
//! (reference §4.4), with the guide's Canary (src/api/testdata/gloo-canary.yaml).

use serde_json::json;

use super::*;
use crate::api::CanaryAnalysis;

const SEED: &str = include_str!("../../api/testdata/gloo-canary.yaml");

fn canary() -> Canary {
    let mut canary: Canary = serde_saphyr::from_str(SEED).unwrap();
    canary.metadata.uid = Some("uid-1".into());
    canary
}

/// The seed Canary with its analysis replaced by a YAML fragment.
fn with_analysis(yaml: &str) -> Canary {
    let mut c = canary();
    c.spec.analysis = Some(serde_saphyr::from_str::<CanaryAnalysis>(yaml).unwrap());
    c
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

fn weights(spec: &RouteTableSpec) -> Vec<(String, Option<u32>)> {
    spec.routes[0]
        .route_action
        .as_ref()
        .unwrap()
        .multi
        .as_ref()
        .unwrap()
        .destinations
        .iter()
        .map(|d| (d.destination.upstream.clone().unwrap().name, d.weight))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------

#[test]
fn upstream_names_are_flaggers() {
    let names = upstream_names(&canary()).unwrap();
    assert_eq!(
        names,
        UpstreamNames {
            primary: "test-podinfo-primaryupstream-9898".into(),
            canary: "test-podinfo-canaryupstream-9898".into(),
        }
    );
    // service.name renames the apex, and so the Upstreams and the RouteTable.
    let mut c = canary();
    c.spec.service.as_mut().unwrap().name = Some("frontend".into());
    c.spec.service.as_mut().unwrap().port = Some(80);
    let names = upstream_names(&c).unwrap();
    assert_eq!(names.primary, "test-frontend-primaryupstream-80");
    assert_eq!(names.canary, "test-frontend-canaryupstream-80");
    let table = route_table_object(&c, None, RouteTableSpec::default()).unwrap();
    assert_eq!(table.metadata.name.as_deref(), Some("frontend"));
}

#[test]
fn config_upstream_namespace_defaults_to_the_canarys() {
    let mut c = canary();
    assert_eq!(config_upstream_ref(&c).unwrap(), None);
    c.spec.upstream_ref = Some(
        serde_saphyr::from_str(
            "{apiVersion: gloo.solo.io/v1, kind: Upstream, name: podinfo-upstream}",
        )
        .unwrap(),
    );
    assert_eq!(
        config_upstream_ref(&c).unwrap(),
        Some(("podinfo-upstream".into(), "test".into()))
    );
    c.spec.upstream_ref.as_mut().unwrap().namespace = Some("gloo-system".into());
    assert_eq!(
        config_upstream_ref(&c).unwrap(),
        Some(("podinfo-upstream".into(), "gloo-system".into()))
    );
}

// ---------------------------------------------------------------------------------------
// Upstreams
// ---------------------------------------------------------------------------------------

fn selector(value: &str) -> BTreeMap<String, String> {
    [("app".to_string(), value.to_string())].into()
}

#[test]
fn seed_upstreams_point_at_the_generated_services() {
    let c = canary();
    for (name, service) in [
        ("test-podinfo-primaryupstream-9898", "podinfo-primary"),
        ("test-podinfo-canaryupstream-9898", "podinfo-canary"),
    ] {
        let got = desired_upstream(&c, name, service, selector(service), None, &[]).unwrap();
        let want = json!({
            "apiVersion": "gloo.solo.io/v1",
            "kind": "Upstream",
            "metadata": {
                "name": name,
                "namespace": "test",
                "annotations": flux_opt_out(),
                "ownerReferences": [owner()]
            },
            "spec": {
                "kube": {
                    "serviceName": service,
                    "serviceNamespace": "test",
                    "servicePort": 9898,
                    "selector": {"app": service}
                }
            }
        });
        assert_eq!(serde_json::to_value(&got).unwrap(), want, "{name}");
    }
}

/// The referenced Upstream of Flagger's Gloo e2e test, plus every other setting Flagger
/// copies and one it does not (`static`, the upstream type).
const CONFIG_UPSTREAM: &str = r#"
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata:
  name: config-upstream
  namespace: gloo-system
  labels: {team: web, app.kubernetes.io/part-of: shop, kustomize.toolkit.fluxcd.io/name: apps}
spec:
  static:
    hosts:
    - addr: example.com
      port: 80
  connectionConfig:
    connectTimeout: 2s
    maxRequestsPerConnection: 51
  loadBalancerConfig:
    roundRobin:
      slowStartConfig:
        slowStartWindow: 2m
        minWeightPercent: 5
  sslConfig:
    sni: podinfo.example.com
    secretRef: {name: tls, namespace: gloo-system}
  circuitBreakers: {maxConnections: 100, maxRetries: 3}
  useHttp2: true
  initialStreamWindowSize: 65536
  initialConnectionWindowSize: 1048576
  maxConcurrentStreams: 100
  httpProxyHostname: proxy.example.com:3128
"#;

fn config_upstream() -> Upstream {
    serde_saphyr::from_str(CONFIG_UPSTREAM).unwrap()
}

#[test]
fn upstream_ref_settings_are_copied_into_both_upstreams() {
    let c = canary();
    let config = config_upstream();
    let got = desired_upstream(
        &c,
        "test-podinfo-canaryupstream-9898",
        "podinfo-canary",
        selector("podinfo-canary"),
        Some(&config),
        &[],
    )
    .unwrap();
    let want = json!({
        "kube": {
            "serviceName": "podinfo-canary",
            "serviceNamespace": "test",
            "servicePort": 9898,
            "selector": {"app": "podinfo-canary"}
        },
        "sslConfig": {"sni": "podinfo.example.com", "secretRef": {"name": "tls", "namespace": "gloo-system"}},
        "circuitBreakers": {"maxConnections": 100, "maxRetries": 3},
        "connectionConfig": {"connectTimeout": "2s", "maxRequestsPerConnection": 51},
        "loadBalancerConfig": {"roundRobin": {"slowStartConfig": {"slowStartWindow": "2m", "minWeightPercent": 5}}},
        "useHttp2": true,
        "initialStreamWindowSize": 65536,
        "initialConnectionWindowSize": 1048576,
        "maxConcurrentStreams": 100,
        "httpProxyHostname": "proxy.example.com:3128"
    });
    assert_eq!(serde_json::to_value(&got.spec).unwrap(), want);
    // Without prefixes no label is copied (Flagger's default).
    assert_eq!(got.metadata.labels, None);
}

#[test]
fn upstream_ref_labels_follow_the_include_prefixes() {
    let c = canary();
    let config = config_upstream();
    let table: &[(&[&str], Option<Value>)] = &[
        (&[], None),
        (&["team"], Some(json!({"team": "web"}))),
        (
            &["*"],
            // Flux's own labels are never copied.
            Some(json!({"team": "web", "app.kubernetes.io/part-of": "shop"})),
        ),
    ];
    for (prefixes, want) in table {
        let prefixes: Vec<String> = prefixes.iter().map(|p| p.to_string()).collect();
        let got = desired_upstream(
            &c,
            "u",
            "podinfo-primary",
            BTreeMap::new(),
            Some(&config),
            &prefixes,
        )
        .unwrap();
        let labels = got
            .metadata
            .labels
            .map(|l| serde_json::to_value(l).unwrap());
        assert_eq!(&labels, want, "{prefixes:?}");
    }
}

#[test]
fn only_load_balancer_drift_is_patched() {
    let c = canary();
    let config = config_upstream();
    let created = desired_upstream(&c, "u", "s", BTreeMap::new(), Some(&config), &[]).unwrap();
    // As created: nothing to do, whatever else differs.
    let mut other_drift = created.clone();
    other_drift.spec.connection_config = Some(json!({"connectTimeout": "9s"}));
    other_drift.spec.use_http2 = None;
    assert_eq!(load_balancer_patch(&other_drift, &config), None);

    // The e2e test's change: minWeightPercent 5 -> 10 in the referenced Upstream.
    let mut changed = config.clone();
    changed.spec.load_balancer_config = Some(
        json!({"roundRobin": {"slowStartConfig": {"slowStartWindow": "2m", "minWeightPercent": 10}}}),
    );
    assert_eq!(
        load_balancer_patch(&created, &changed),
        Some(
            json!({"spec": {"loadBalancerConfig": {"roundRobin": {"slowStartConfig": {"minWeightPercent": 10}}}}})
        )
    );

    // A different balancer: the old one is removed, not merged with the new one.
    changed.spec.load_balancer_config = Some(json!({"leastRequest": {"choiceCount": 3}}));
    assert_eq!(
        load_balancer_patch(&created, &changed),
        Some(
            json!({"spec": {"loadBalancerConfig": {"roundRobin": null, "leastRequest": {"choiceCount": 3}}}})
        )
    );

    // Removed from the referenced Upstream: removed from the generated one.
    changed.spec.load_balancer_config = None;
    assert_eq!(
        load_balancer_patch(&created, &changed),
        Some(json!({"spec": {"loadBalancerConfig": null}}))
    );
    // Added to the referenced Upstream.
    let mut bare = created.clone();
    bare.spec.load_balancer_config = None;
    assert_eq!(
        load_balancer_patch(&bare, &config),
        Some(
            json!({"spec": {"loadBalancerConfig": config.spec.load_balancer_config.clone().unwrap()}})
        )
    );
}

#[test]
fn merge_patch_turns_one_value_into_the_other() {
    let table = [
        (json!({"a": 1}), json!({"a": 1}), json!({})),
        (json!({"a": 1}), json!({"a": 2}), json!({"a": 2})),
        (json!({"a": 1, "b": 2}), json!({"b": 2}), json!({"a": null})),
        (
            json!({"a": {"x": 1, "y": 2}}),
            json!({"a": {"x": 1}}),
            json!({"a": {"y": null}}),
        ),
        (json!({"a": [1, 2]}), json!({"a": [2]}), json!({"a": [2]})),
        (json!(null), json!({"a": 1}), json!({"a": 1})),
        (json!({"a": 1}), json!("s"), json!("s")),
    ];
    for (from, to, want) in table {
        assert_eq!(merge_patch(&from, &to), want, "{from} -> {to}");
    }
}

// ---------------------------------------------------------------------------------------
// RouteTable
// ---------------------------------------------------------------------------------------

#[test]
fn seed_canary_gets_flaggers_route_table() {
    let c = canary();
    let spec = route_table_spec(&c, Routes::INITIAL).unwrap();
    let table = route_table_object(&c, Some(owner_reference(&c).unwrap()), spec).unwrap();
    let want = json!({
        "apiVersion": "gateway.solo.io/v1",
        "kind": "RouteTable",
        "metadata": {
            "name": "podinfo",
            "namespace": "test",
            "annotations": flux_opt_out(),
            "ownerReferences": [owner()]
        },
        "spec": {
            "routes": [{
                "inheritablePathMatchers": true,
                "routeAction": {"multi": {"destinations": [
                    {"destination": {"upstream": {"name": "test-podinfo-primaryupstream-9898", "namespace": "test"}}, "weight": 100},
                    {"destination": {"upstream": {"name": "test-podinfo-canaryupstream-9898", "namespace": "test"}}, "weight": 0}
                ]}}
            }]
        }
    });
    assert_eq!(serde_json::to_value(&table).unwrap(), want);
}

#[test]
fn apex_metadata_is_carried_with_the_flux_opt_out() {
    let mut c = canary();
    c.spec.service.as_mut().unwrap().apex =
        Some(serde_saphyr::from_str("{labels: {team: web}, annotations: {note: x}}").unwrap());
    let table = route_table_object(&c, None, RouteTableSpec::default()).unwrap();
    assert_eq!(
        serde_json::to_value(&table.metadata).unwrap(),
        json!({
            "name": "podinfo",
            "namespace": "test",
            "labels": {"team": "web"},
            "annotations": {
                "note": "x",
                "kustomize.toolkit.fluxcd.io/reconcile": "disabled",
                "helm.toolkit.fluxcd.io/driftDetection": "disabled"
            }
        })
    );
}

#[test]
fn set_routes_weights() {
    let c = canary();
    let table = [(100, 0), (95, 5), (50, 50), (0, 100)];
    for (primary, canary_weight) in table {
        let routes = Routes::new(primary, canary_weight);
        check_weights(&c, routes).unwrap();
        let spec = route_table_spec(&c, routes).unwrap();
        assert_eq!(
            weights(&spec),
            [
                (
                    "test-podinfo-primaryupstream-9898".to_string(),
                    Some(primary)
                ),
                (
                    "test-podinfo-canaryupstream-9898".to_string(),
                    Some(canary_weight)
                ),
            ]
        );
        // What SetRoutes writes, GetRoutes reads back.
        assert_eq!(read_routes(&c, &spec).unwrap(), routes);
    }
    let err = check_weights(&c, Routes::new(0, 0)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "RoutingRule podinfo.test update failed: no valid weights"
    );
}

#[test]
fn ab_match_becomes_one_matcher() {
    let table: &[(&str, Value)] = &[
        // No A/B: no matchers at all.
        ("interval: 1m", json!(null)),
        ("{iterations: 5, match: []}", json!(null)),
        // Flagger's newTestABTest.
        (
            "{iterations: 5, match: [{headers: {x-user-type: {exact: test}}}]}",
            json!([{"headers": [{"name": "x-user-type", "value": "test"}]}]),
        ),
        // The guide's regex examples; regex wins over exact.
        (
            "{iterations: 5, match: [{headers: {user-agent: {regex: '.*Mobile.*'}}}]}",
            json!([{"headers": [{"name": "user-agent", "value": ".*Mobile.*", "regex": true}]}]),
        ),
        (
            "{iterations: 5, match: [{headers: {x: {exact: a, regex: 'b.*'}}}]}",
            json!([{"headers": [{"name": "x", "value": "b.*", "regex": true}]}]),
        ),
        // Headers sorted by name, methods kept.
        (
            "{iterations: 5, match: [{headers: {x-b: {exact: b}, x-a: {exact: a}}, method: {exact: POST}}]}",
            json!([{
                "headers": [{"name": "x-a", "value": "a"}, {"name": "x-b", "value": "b"}],
                "methods": ["POST"]
            }]),
        ),
        // Method-only entries are alternatives in Gloo too.
        (
            "{iterations: 5, match: [{method: {exact: GET}}, {method: {exact: PUT}}]}",
            json!([{"methods": ["GET", "PUT"]}]),
        ),
        // The name of a match entry changes nothing.
        (
            "{iterations: 5, match: [{name: insiders, headers: {x-canary: {exact: insider}}}]}",
            json!([{"headers": [{"name": "x-canary", "value": "insider"}]}]),
        ),
    ];
    for (analysis, want) in table {
        let c = with_analysis(analysis);
        assert!(inexpressible(&c).is_empty(), "{analysis}");
        let spec = route_table_spec(&c, Routes::new(0, 100)).unwrap();
        let route = serde_json::to_value(&spec.routes[0]).unwrap();
        assert_eq!(route["matchers"], *want, "{analysis}");
        assert_eq!(route["inheritablePathMatchers"], json!(true));
        // A/B keeps the weighted route: SetRoutes(0, 100) sends matching requests to the canary.
        assert_eq!(read_routes(&c, &spec).unwrap(), Routes::new(0, 100));
        // With matchers, requests without them fall to a primary-only route instead of a 404.
        if want.is_null() {
            assert_eq!(spec.routes.len(), 1, "{analysis}");
        } else {
            let (p, ns) = ("test-podinfo-primaryupstream-9898", "test");
            let c_name = "test-podinfo-canaryupstream-9898";
            assert_eq!(
                serde_json::to_value(&spec.routes[1]).unwrap(),
                json!({
                    "inheritablePathMatchers": true,
                    "routeAction": {"multi": {"destinations": [
                        {"destination": {"upstream": {"name": p, "namespace": ns}}, "weight": 100},
                        {"destination": {"upstream": {"name": c_name, "namespace": ns}}, "weight": 0}
                    ]}}
                }),
                "{analysis}"
            );
        }
    }
}

fn live(spec: RouteTableSpec, labels: Option<Value>, annotations: Value) -> RouteTable {
    let c = canary();
    let mut table = route_table_object(&c, Some(owner_reference(&c).unwrap()), spec).unwrap();
    table.metadata.labels = labels.map(|l| serde_json::from_value(l).unwrap());
    table.metadata.annotations = Some(serde_json::from_value(annotations).unwrap());
    table.metadata.resource_version = Some("7".into());
    table
}

#[test]
fn reconcile_rewrites_only_on_real_changes() {
    let c = canary();
    let desired =
        route_table_object(&c, None, route_table_spec(&c, Routes::INITIAL).unwrap()).unwrap();
    let ab = with_analysis("{iterations: 5, match: [{headers: {x-user-type: {exact: test}}}]}");
    let ab_spec = route_table_spec(&ab, Routes::INITIAL).unwrap();
    let mut foreign = flux_opt_out();
    foreign["other"] = json!("x");
    let table: &[(&str, RouteTable, bool)] = &[
        (
            "as written",
            live(desired.spec.clone(), None, flux_opt_out()),
            false,
        ),
        (
            "weights moved by SetRoutes",
            live(
                route_table_spec(&c, Routes::new(40, 60)).unwrap(),
                None,
                flux_opt_out(),
            ),
            false,
        ),
        (
            "labels and annotations of other controllers",
            live(desired.spec.clone(), Some(json!({"x": "y"})), foreign),
            false,
        ),
        (
            "A/B matchers to add or remove",
            live(ab_spec, None, flux_opt_out()),
            true,
        ),
        (
            "Flux opt-out missing",
            live(desired.spec.clone(), None, json!({})),
            true,
        ),
        (
            "a destination edited by hand",
            {
                let mut spec = desired.spec.clone();
                spec.routes[0]
                    .route_action
                    .as_mut()
                    .unwrap()
                    .multi
                    .as_mut()
                    .unwrap()
                    .destinations
                    .pop();
                live(spec, None, flux_opt_out())
            },
            true,
        ),
        (
            "no routes",
            live(RouteTableSpec::default(), None, flux_opt_out()),
            true,
        ),
    ];
    for (case, live, want) in table {
        assert_eq!(route_table_needs_update(live, &desired), *want, "{case}");
    }
    // A label from service.apex that is missing.
    let mut labelled = canary();
    labelled.spec.service.as_mut().unwrap().apex =
        Some(serde_saphyr::from_str("{labels: {team: web}}").unwrap());
    let desired = route_table_object(&labelled, None, desired.spec.clone()).unwrap();
    assert!(route_table_needs_update(
        &live(desired.spec.clone(), None, flux_opt_out()),
        &desired
    ));
    assert!(!route_table_needs_update(
        &live(
            desired.spec.clone(),
            Some(json!({"team": "web"})),
            flux_opt_out()
        ),
        &desired
    ));
}

fn table_spec(yaml: &str) -> RouteTableSpec {
    serde_saphyr::from_str(yaml).unwrap()
}

#[test]
fn get_routes_reads_the_primary_weight() {
    let c = canary();
    let dest = |name: &str, weight: &str| {
        format!("{{destination: {{upstream: {{name: {name}, namespace: test}}}}{weight}}}")
    };
    let p = "test-podinfo-primaryupstream-9898";
    let k = "test-podinfo-canaryupstream-9898";
    let spec = |dests: &[String]| {
        table_spec(&format!(
            "routes: [{{routeAction: {{multi: {{destinations: [{}]}}}}}}]",
            dests.join(", ")
        ))
    };
    let table: &[(RouteTableSpec, Result<Routes, &str>)] = &[
        (
            spec(&[dest(p, ", weight: 100"), dest(k, ", weight: 0")]),
            Ok(Routes::new(100, 0)),
        ),
        (
            spec(&[dest(k, ", weight: 40"), dest(p, ", weight: 60")]),
            Ok(Routes::new(60, 40)),
        ),
        // The canary's weight is not read: it is the rest of 100.
        (
            spec(&[dest(p, ", weight: 70"), dest(k, ", weight: 70")]),
            Ok(Routes::new(70, 30)),
        ),
        // Gloo reads an absent weight as 0.
        (
            spec(&[dest(p, ""), dest(k, ", weight: 100")]),
            Ok(Routes::new(0, 100)),
        ),
        // No primary destination: 0/0, as in Flagger.
        (
            spec(&[dest("a", ", weight: 50"), dest(k, ", weight: 50")]),
            Ok(Routes::new(0, 0)),
        ),
        (
            spec(&[dest(p, ", weight: 100")]),
            Err("RouteTable podinfo.test destinations not found"),
        ),
        (
            table_spec("routes: []"),
            Err("RouteTable podinfo.test destinations not found"),
        ),
        (
            table_spec("routes: [{matchers: [{headers: [{name: x, value: y}]}]}]"),
            Err("RouteTable podinfo.test destinations not found"),
        ),
    ];
    for (spec, want) in table {
        let got = read_routes(&c, spec).map_err(|e| e.to_string());
        assert_eq!(got, (*want).map_err(str::to_string), "{spec:?}");
    }
}

#[test]
fn live_route_tables_deserialize_with_unknown_fields() {
    // Gloo adds statuses, and users may add fields Serin does not model.
    let table: RouteTable = serde_json::from_value(json!({
        "apiVersion": "gateway.solo.io/v1",
        "kind": "RouteTable",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": {"routes": [{
            "inheritablePathMatchers": true,
            "options": {"timeout": "5s"},
            "routeAction": {"multi": {"destinations": [
                {"destination": {"upstream": {"name": "test-podinfo-primaryupstream-9898", "namespace": "test"}}, "weight": 90},
                {"destination": {"upstream": {"name": "test-podinfo-canaryupstream-9898", "namespace": "test"}}, "weight": 10}
            ]}}
        }]},
        "status": {"statuses": {"gloo-system": {"state": "Accepted"}}}
    }))
    .unwrap();
    assert_eq!(
        read_routes(&canary(), &table.spec).unwrap(),
        Routes::new(90, 10)
    );
}

// ---------------------------------------------------------------------------------------
// Inexpressible
// ---------------------------------------------------------------------------------------

#[test]
fn inexpressible_lists_what_gloo_would_drop() {
    let table: &[(&str, &[&str])] = &[
        ("interval: 1m", &[]),
        (
            "{iterations: 5, match: [{headers: {x-canary: {exact: insider}}}]}",
            &[],
        ),
        (
            "{iterations: 5, match: [{headers: {x-canary: {prefix: ins}, y: {suffix: z}, ok: {regex: '.*'}}}]}",
            &[
                "spec.analysis.match[0].headers.x-canary",
                "spec.analysis.match[0].headers.y",
            ],
        ),
        (
            "{iterations: 5, match: [{headers: {x: {exact: ''}}}]}",
            &["spec.analysis.match[0].headers.x"],
        ),
        (
            "{iterations: 5, match: [{method: {regex: 'GET|POST'}}]}",
            &["spec.analysis.match[0].method"],
        ),
        (
            "{iterations: 5, match: [{uri: {prefix: /api}, headers: {x: {exact: y}}}]}",
            &["spec.analysis.match[0].uri"],
        ),
        (
            "{iterations: 5, match: [{queryParams: {beta: {exact: 'true'}}}]}",
            &["spec.analysis.match[0].queryParams"],
        ),
        (
            "{iterations: 5, match: [{headers: {x: {exact: y}}, withoutHeaders: {z: {exact: w}}}]}",
            &["spec.analysis.match[0].withoutHeaders"],
        ),
        (
            "{iterations: 5, match: [{scheme: {exact: https}, authority: {exact: a}, port: 80, sourceLabels: {a: b}, sourceNamespace: ns, gateways: [g]}]}",
            &[
                "spec.analysis.match[0].scheme",
                "spec.analysis.match[0].authority",
                "spec.analysis.match[0].port",
                "spec.analysis.match[0].sourceLabels",
                "spec.analysis.match[0].sourceNamespace",
                "spec.analysis.match[0].gateways",
            ],
        ),
        // Two entries: Istio ORs them, Gloo's one matcher would AND them.
        (
            "{iterations: 5, match: [{headers: {a: {exact: x}}}, {headers: {b: {exact: y}}}]}",
            &["spec.analysis.match"],
        ),
        (
            "{iterations: 5, match: [{headers: {a: {exact: x}}}, {method: {exact: GET}}]}",
            &["spec.analysis.match"],
        ),
        // ...but methods alone are alternatives in Gloo too, and empty entries add nothing.
        (
            "{iterations: 5, match: [{method: {exact: GET}}, {method: {exact: HEAD}}, {name: x}]}",
            &[],
        ),
        (
            "{stepWeight: 10, sessionAffinity: {cookieName: flagger-cookie}}",
            &["spec.analysis.sessionAffinity"],
        ),
    ];
    for (analysis, want) in table {
        let c = with_analysis(analysis);
        let got: Vec<String> = inexpressible(&c).into_iter().map(|i| i.field).collect();
        assert_eq!(got, *want, "{analysis}");
        if !want.is_empty() {
            // The router refuses the same Canary.
            let err = route_table_spec(&c, Routes::INITIAL).unwrap_err();
            assert!(matches!(err, RouterError::Refused(_)), "{analysis}");
        }
    }
}

#[test]
fn inexpressible_texts_name_the_provider_and_the_fix() {
    let c = with_analysis("{iterations: 5, match: [{headers: {x-canary: {prefix: ins}}}]}");
    assert_eq!(
        inexpressible(&c),
        [Inexpressible {
            field: "spec.analysis.match[0].headers.x-canary".into(),
            problem: "provider \"gloo\" matches headers by exact value or regex only".into(),
            fix: "use exact or regex (a prefix /^value/ or suffix /value$/ can be written as a \
                  regex)"
                .into(),
        }]
    );
    assert_eq!(
        route_table_spec(&c, Routes::INITIAL)
            .unwrap_err()
            .to_string(),
        "canary podinfo.test cannot be routed by a RouteTable: \
         spec.analysis.match[0].headers.x-canary: provider \"gloo\" matches headers by exact \
         value or regex only; fix: use exact or regex (a prefix /^value/ or suffix /value$/ can be \
         written as a regex)"
    );
    // The deprecated canaryAnalysis is named as such.
    let mut old = canary();
    old.spec.canary_analysis = old.spec.analysis.take();
    old.spec.canary_analysis.as_mut().unwrap().session_affinity =
        Some(serde_saphyr::from_str("{cookieName: c}").unwrap());
    let fields: Vec<String> = inexpressible(&old).into_iter().map(|i| i.field).collect();
    assert_eq!(fields, ["spec.canaryAnalysis.sessionAffinity"]);
}
