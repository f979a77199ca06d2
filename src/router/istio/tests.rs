//! Table tests of the Istio builders against Flagger's `istio_test.go` (reference §4.3), the
//! FAQ's `frontend` Canary (testdata/faq-frontend.yaml) and Istio 1.31's v1 CRD schema
//! (testdata/istio-v1-spec-schema.json).

use std::collections::{BTreeMap, VecDeque};

use serde_json::{Value, json};

use super::*;
use crate::api::{Canary, CanaryPhase};
use crate::router::cookie::{CookieValues, SessionCookies};
use crate::router::{
    FLUX_RECONCILE_ANNOTATION, HELM_DRIFT_DETECTION_ANNOTATION, Inexpressible, owner_reference,
};

const FAQ: &str = include_str!("testdata/faq-frontend.yaml");
const SCHEMA: &str = include_str!("testdata/istio-v1-spec-schema.json");
const ALL_FIELDS: &str = include_str!("../../api/testdata/all-fields-canary.yaml");
const FAQ_ROUTING: &str = include_str!("../../api/testdata/faq-istio-routing.yaml");

// ---------------------------------------------------------------------------------------
// Fixtures: Flagger's router_test.go canaries
// ---------------------------------------------------------------------------------------

/// Flagger's `newTestCanary`.
const PODINFO: &str = r#"
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: podinfo, namespace: default, uid: uid-1}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service:
    port: 9898
    portDiscovery: true
    appProtocol: http
    headers:
      request:
        add: {x-envoy-upstream-rq-timeout-ms: "15000"}
        remove: [test]
      response:
        remove: [token]
    corsPolicy:
      allowMethods: [GET, POST]
    match:
    - name: podinfo
      uri: {prefix: /podinfo}
      method: {exact: GET}
      ignoreUriCase: true
    retries: {attempts: 10, perTryTimeout: 30s, retryOn: "connect-failure,gateway-error"}
    gateways: [istio/public-gateway, mesh]
  analysis:
    interval: 1m
    threshold: 10
    stepWeight: 10
    maxWeight: 50
"#;

/// Flagger's `newTestABTest`.
const ABTEST: &str = r#"
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: abtest, namespace: default, uid: uid-2}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: abtest}
  service:
    port: 9898
    meshName: global
  analysis:
    threshold: 10
    iterations: 2
    match:
    - headers:
        x-user-type: {exact: test}
"#;

/// Flagger's `newTestCanaryTCP`.
const TCP: &str = r#"
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: podinfo, namespace: default, uid: uid-3}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service:
    port: 9898
    portDiscovery: true
    appProtocol: TCP
    match:
    - port: 9898
    gateways: [istio/public-gateway, mesh]
  analysis:
    threshold: 10
    stepWeight: 10
    maxWeight: 50
"#;

/// The route fields `spec.service` of [`PODINFO`] sets on every HTTP route.
const PODINFO_ROUTE_FIELDS: &str = r#"
retries: {attempts: 10, perTryTimeout: 30s, retryOn: "connect-failure,gateway-error"}
corsPolicy: {allowMethods: [GET, POST]}
headers:
  request:
    add: {x-envoy-upstream-rq-timeout-ms: "15000"}
    remove: [test]
  response:
    remove: [token]
"#;

const PODINFO_MATCH: &str = "{name: podinfo, uri: {prefix: /podinfo}, method: {exact: GET}, \
                             ignoreUriCase: true}";

/// Annotations as key/value pairs.
type Pairs<'a> = &'a [(&'a str, &'a str)];

fn canary(yaml: &str) -> Canary {
    serde_saphyr::from_str(yaml).unwrap()
}

/// RFC 7386 JSON merge patch: objects merge, anything else replaces, null removes.
fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(base), Value::Object(patch)) => {
            for (k, v) in patch {
                if v.is_null() {
                    base.remove(k);
                } else {
                    merge(base.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (base, patch) => *base = patch.clone(),
    }
}

/// `base` with a YAML merge patch applied.
fn patched(base: &Canary, patch: &str) -> Canary {
    let mut value = serde_json::to_value(base).unwrap();
    let patch: Value = serde_saphyr::from_str(patch).unwrap();
    merge(&mut value, &patch);
    serde_json::from_value(value).unwrap()
}

fn spec(yaml: &str) -> VirtualServiceSpec {
    serde_saphyr::from_str(yaml).unwrap()
}

/// One HTTP route of [`PODINFO`] with the given extra fields (match, route, name, ...).
fn podinfo_route(extra: &str) -> HttpRoute {
    let mut route: Value = serde_saphyr::from_str(PODINFO_ROUTE_FIELDS).unwrap();
    merge(&mut route, &serde_saphyr::from_str::<Value>(extra).unwrap());
    serde_json::from_value(route).unwrap()
}

fn podinfo_split(primary: u32, canary: u32) -> String {
    format!(
        "[{{destination: {{host: podinfo-primary, port: {{number: 9898}}}}, weight: {primary}}}, \
         {{destination: {{host: podinfo-canary, port: {{number: 9898}}}}, weight: {canary}}}]"
    )
}

/// Cookie values from a list, so generated cookies are known.
struct Fixed(VecDeque<&'static str>);

impl CookieValues for Fixed {
    fn next_value(&mut self) -> String {
        self.0
            .pop_front()
            .expect("no more cookie values")
            .to_string()
    }
}

fn set_routes(
    c: &Canary,
    routes: Routes,
    cookies: &SessionCookies,
) -> (VirtualServiceSpec, SessionCookies) {
    desired_spec(
        c,
        routes,
        cookies,
        &mut Fixed(["AAAAAAAAAA", "BBBBBBBBBB"].into()),
    )
    .unwrap()
}

fn weights(route: &HttpRoute) -> Vec<(&str, i32)> {
    route
        .route
        .iter()
        .map(|d| (d.destination.host.as_str(), d.weight))
        .collect()
}

fn refused(result: Result<impl std::fmt::Debug, RouterError>) -> String {
    match result.unwrap_err() {
        RouterError::Refused(text) => text,
        other => panic!("not a refusal: {other:?}"),
    }
}

/// Paths at which two JSON values differ (a key on one side only counts as a difference).
fn json_diff(a: &Value, b: &Value) -> Vec<String> {
    fn walk(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
        match (a, b) {
            (Value::Object(a), Value::Object(b)) => {
                let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
                for k in keys {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    match (a.get(k), b.get(k)) {
                        (Some(x), Some(y)) => walk(x, y, &p, out),
                        _ => out.push(p),
                    }
                }
            }
            (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
                for (i, (x, y)) in a.iter().zip(b).enumerate() {
                    walk(x, y, &format!("{path}[{i}]"), out);
                }
            }
            (a, b) if a != b => out.push(path.to_string()),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(a, b, "", &mut out);
    out
}

// ---------------------------------------------------------------------------------------
// The FAQ's frontend Canary (mandatory)
// ---------------------------------------------------------------------------------------

fn faq() -> (Canary, Vec<Value>) {
    let docs: Vec<Value> = serde_saphyr::from_multiple(FAQ).unwrap();
    let canary: Canary = serde_json::from_value(docs[0].clone()).unwrap();
    (canary, docs)
}

#[test]
fn faq_frontend_virtual_service_equals_the_faqs() {
    let (canary, docs) = faq();
    let faq_vs = &docs[1];
    assert_eq!(faq_vs["kind"], "VirtualService");

    let spec = reconcile_spec(&canary).unwrap();
    let ours = serde_json::to_value(&spec).unwrap();
    // The FAQ routes to podinfo-*, left over from the podinfo tutorial (see the fixture's
    // header); that is the only difference in the whole spec.
    assert_eq!(
        json_diff(&faq_vs["spec"], &ours),
        [
            "http[0].route[0].destination.host",
            "http[0].route[1].destination.host"
        ]
    );
    let mut want = faq_vs["spec"].clone();
    want["http"][0]["route"][0]["destination"]["host"] = json!("frontend-primary");
    want["http"][0]["route"][1]["destination"]["host"] = json!("frontend-canary");
    assert_eq!(ours, want);
    // SetRoutes(100, 0) writes the same spec.
    let (set, _) = set_routes(&canary, Routes::INITIAL, &SessionCookies::default());
    assert_eq!(serde_json::to_value(&set).unwrap(), want);

    // The whole object. Deliberate differences: Istio's v1 API (the FAQ shows v1beta1), the
    // Flux opt-out annotations Flagger puts on generated objects, and the owner named after
    // the Canary (the FAQ's `podinfo` is the same leftover as the hosts).
    let owner = owner_reference(&canary).unwrap();
    let object = virtual_service_object(&canary, Some(owner), None, spec).unwrap();
    let object = serde_json::to_value(&object).unwrap();
    assert_eq!(
        json_diff(faq_vs, &object),
        [
            "apiVersion",
            "metadata.annotations",
            "metadata.ownerReferences[0].name",
            "spec.http[0].route[0].destination.host",
            "spec.http[0].route[1].destination.host",
        ]
    );
    assert_eq!(object["apiVersion"], "networking.istio.io/v1");
    assert_eq!(
        object["metadata"]["annotations"],
        json!({FLUX_RECONCILE_ANNOTATION: "disabled", HELM_DRIFT_DETECTION_ANNOTATION: "disabled"})
    );
    assert_eq!(object["metadata"]["ownerReferences"][0]["name"], "frontend");
}

#[test]
fn faq_frontend_destination_rules_equal_the_faqs() {
    let (canary, docs) = faq();
    for (doc, host) in [
        (&docs[2], "frontend-primary"),
        (&docs[3], "frontend-canary"),
    ] {
        assert_eq!(doc["metadata"]["name"], host);
        let rule = destination_rule_object(&canary, host, None).unwrap();
        let rule = serde_json::to_value(&rule).unwrap();
        assert_eq!(rule["spec"], doc["spec"]);
        // v1 instead of v1beta1, and the Flux opt-out Serin adds to every generated object.
        assert_eq!(
            json_diff(doc, &rule),
            ["apiVersion", "metadata.annotations"]
        );
    }
}

#[test]
fn faq_routing_canaries_build_or_are_refused_as_flagger_does() {
    let canaries: Vec<Canary> = serde_saphyr::from_multiple(FAQ_ROUTING).unwrap();
    // `backend` exposed in the mesh only: the apex name (service.name / targetRef) is empty
    // in the FAQ's snippet; the delegate one has a targetRef.
    let delegate = &canaries[2];
    assert_eq!(
        delegate.spec.service.as_ref().unwrap().delegation,
        Some(true)
    );
    assert_eq!(
        reconcile_spec(delegate).unwrap(),
        spec(
            "http:
- route:
  - {destination: {host: podinfo-primary}, weight: 100}
  - {destination: {host: podinfo-canary}, weight: 0}"
        )
    );
    for c in &canaries {
        assert_eq!(inexpressible(c), [], "{:?}", c.metadata.name);
    }
}

// ---------------------------------------------------------------------------------------
// Reconcile: Flagger's TestIstioRouter_* expectations
// ---------------------------------------------------------------------------------------

#[test]
fn reconcile_writes_flaggers_virtual_service() {
    let c = canary(PODINFO);
    let want = VirtualServiceSpec {
        hosts: vec!["podinfo".into()],
        gateways: vec!["istio/public-gateway".into(), "mesh".into()],
        http: vec![podinfo_route(&format!(
            "{{match: [{PODINFO_MATCH}], route: {}}}",
            podinfo_split(100, 0)
        ))],
        tcp: vec![],
    };
    assert_eq!(reconcile_spec(&c).unwrap(), want);
    // TestIstioRouter_HTTPRequestHeaders / _CORS / _GatewayPort, spelled out.
    let headers = want.http[0].headers.as_ref().unwrap();
    assert_eq!(
        headers.request.as_ref().unwrap().add["x-envoy-upstream-rq-timeout-ms"],
        "15000"
    );
    assert_eq!(headers.request.as_ref().unwrap().remove, ["test"]);
    assert_eq!(headers.response.as_ref().unwrap().remove, ["token"]);
    assert_eq!(
        want.http[0]
            .cors_policy
            .as_ref()
            .unwrap()
            .allow_methods
            .len(),
        2
    );
    assert_eq!(
        want.http[0].route[0].destination.port,
        Some(PortSelector { number: Some(9898) })
    );
}

#[test]
fn hosts_add_the_apex_name_unless_present() {
    let base = canary(PODINFO);
    let cases: [(&str, &[&str]); 7] = [
        ("null", &["podinfo"]),
        ("[]", &["podinfo"]),
        ("[app.example.com]", &["app.example.com", "podinfo"]),
        ("[podinfo]", &["podinfo"]),
        (
            "[app.example.com, podinfo]",
            &["app.example.com", "podinfo"],
        ),
        ("['*']", &["*"]),
        ("[a.example.com, '*']", &["a.example.com", "*"]),
    ];
    for (hosts, want) in cases {
        let c = patched(&base, &format!("spec: {{service: {{hosts: {hosts}}}}}"));
        assert_eq!(reconcile_spec(&c).unwrap().hosts, want, "hosts: {hosts}");
    }
    // `service.name` names the apex (and the destinations).
    let c = patched(
        &base,
        "spec: {service: {name: web, hosts: [web.example.com]}}",
    );
    let spec = reconcile_spec(&c).unwrap();
    assert_eq!(spec.hosts, ["web.example.com", "web"]);
    assert_eq!(
        weights(&spec.http[0]),
        [("web-primary", 100), ("web-canary", 0)]
    );
}

#[test]
fn gateways_default_to_mesh() {
    let base = canary(PODINFO);
    let cases: [(&str, &[&str]); 5] = [
        ("null", &["mesh"]),
        ("[]", &["mesh"]),
        ("[mesh]", &["mesh"]),
        ("[istio/gw]", &["istio/gw"]),
        ("[mesh, istio/gw]", &["mesh", "istio/gw"]),
    ];
    for (gateways, want) in cases {
        let c = patched(
            &base,
            &format!("spec: {{service: {{gateways: {gateways}}}}}"),
        );
        assert_eq!(
            reconcile_spec(&c).unwrap().gateways,
            want,
            "gateways: {gateways}"
        );
    }
}

#[test]
fn destination_port_only_for_gateways_and_delegation_with_port_discovery() {
    let base = canary(PODINFO);
    // (portDiscovery, gateways, delegation) → port written
    let cases = [
        (true, "[istio/public-gateway, mesh]", false, true),
        (true, "[mesh, istio/public-gateway]", false, false),
        (true, "[mesh]", false, false),
        (true, "[]", false, false),
        (true, "null", false, false),
        (false, "[istio/public-gateway]", false, false),
        (true, "[]", true, true),
        (false, "[]", true, false),
    ];
    for (discovery, gateways, delegation, port) in cases {
        let c = patched(
            &base,
            &format!(
                "spec: {{service: {{portDiscovery: {discovery}, gateways: {gateways}, \
                 delegation: {delegation}}}}}"
            ),
        );
        let want = port.then_some(PortSelector { number: Some(9898) });
        let spec = reconcile_spec(&c).unwrap();
        for d in &spec.http[0].route {
            assert_eq!(
                d.destination.port, want,
                "{discovery} {gateways} {delegation}"
            );
        }
        let (set, _) = set_routes(&c, Routes::new(50, 50), &SessionCookies::default());
        assert_eq!(set.http[0].route[1].destination.port, want);
    }
}

#[test]
fn delegation_writes_no_hosts_or_gateways() {
    // TestIstioRouter_Delegate "ok".
    let c = patched(
        &canary(PODINFO),
        "spec: {service: {hosts: [], gateways: [], delegation: true}}",
    );
    let spec = reconcile_spec(&c).unwrap();
    assert!(spec.hosts.is_empty() && spec.gateways.is_empty());
    assert_eq!(
        spec.http[0].route[0].destination.port,
        Some(PortSelector { number: Some(9898) })
    );
    // Serialized without the keys at all.
    let value = serde_json::to_value(&spec).unwrap();
    assert!(value.get("hosts").is_none() && value.get("gateways").is_none());
}

#[test]
fn delegation_with_hosts_or_gateways_is_flaggers_error() {
    // TestIstioRouter_Delegate "invalid".
    for patch in [
        "spec: {service: {delegation: true}}",
        "spec: {service: {delegation: true, gateways: [], hosts: [app.example.com]}}",
    ] {
        let c = patched(&canary(PODINFO), patch);
        let text = "VirtualService podinfo.default cannot have hosts and gateways when delegation \
                    enabled";
        assert_eq!(refused(reconcile_spec(&c)), text, "{patch}");
        assert_eq!(
            refused(desired_spec(
                &c,
                Routes::INITIAL,
                &SessionCookies::default(),
                &mut Fixed(VecDeque::new())
            )),
            text
        );
        assert_eq!(refused(refuse_inexpressible(&c)), text);
    }
}

#[test]
fn tcp_canary_gets_tcp_routes() {
    // TestIstioRouter_SetRoutesTCP / GetRoutesTCP.
    let c = canary(TCP);
    let route = |p: u32, c: u32| {
        spec(&format!(
            "hosts: [podinfo]
gateways: [istio/public-gateway, mesh]
tcp:
- match: [{{port: 9898}}]
  route:
  - {{destination: {{host: podinfo-primary, port: {{number: 9898}}}}, weight: {p}}}
  - {{destination: {{host: podinfo-canary, port: {{number: 9898}}}}, weight: {c}}}"
        ))
    };
    assert_eq!(reconcile_spec(&c).unwrap(), route(100, 0));
    let (set, cookies) = set_routes(&c, Routes::new(60, 40), &SessionCookies::default());
    assert_eq!(set, route(60, 40));
    assert_eq!(cookies, SessionCookies::default());
    assert_eq!(
        read_routes(&c, "default", &set).unwrap(),
        Routes::new(60, 40)
    );
    // Mirroring is asked for, never written: TCP routes cannot mirror.
    let (set, _) = set_routes(
        &c,
        Routes {
            mirrored: true,
            ..Routes::INITIAL
        },
        &SessionCookies::default(),
    );
    assert_eq!(set, route(100, 0));
    assert!(!read_routes(&c, "default", &set).unwrap().mirrored);
    // A request without a port is an empty L4 match, as Flagger writes it.
    let c = patched(&c, "spec: {service: {match: [{name: any}]}}");
    assert_eq!(
        reconcile_spec(&c).unwrap().tcp[0].r#match,
        [L4MatchAttributes::default()]
    );
    // No service.match: no L4 match.
    let c = patched(&c, "spec: {service: {match: null}}");
    assert!(reconcile_spec(&c).unwrap().tcp[0].r#match.is_empty());
}

#[test]
fn app_protocol_tcp_in_any_case() {
    for (protocol, tcp) in [
        ("tcp", true),
        ("TCP", true),
        ("Tcp", true),
        ("http", false),
        ("grpc", false),
        ("", false),
    ] {
        let c = patched(
            &canary(PODINFO),
            &format!("spec: {{service: {{appProtocol: '{protocol}', match: null}}}}"),
        );
        let spec = reconcile_spec(&c).unwrap();
        assert_eq!(!spec.tcp.is_empty(), tcp, "{protocol}");
        assert_eq!(spec.http.is_empty(), tcp, "{protocol}");
    }
}

#[test]
fn ab_testing_writes_the_match_route_and_the_fallback() {
    // TestIstioRouter_ABTest / TestIstioRouter_Match (first half).
    let c = canary(ABTEST);
    let want = spec(
        "hosts: [abtest]
gateways: [mesh]
http:
- match: [{headers: {x-user-type: {exact: test}}}]
  route:
  - {destination: {host: abtest-primary}, weight: 100}
  - {destination: {host: abtest-canary}, weight: 0}
- route:
  - {destination: {host: abtest-primary}, weight: 100}",
    );
    assert_eq!(reconcile_spec(&c).unwrap(), want);
    // SetRoutes(0, 100): the fallback's lone destination still takes everything (Flagger
    // writes the primary weight, 0, which its client omits and Istio reads as 100).
    let (set, _) = set_routes(&c, Routes::new(0, 100), &SessionCookies::default());
    assert_eq!(
        set,
        spec(
            "hosts: [abtest]
gateways: [mesh]
http:
- match: [{headers: {x-user-type: {exact: test}}}]
  route:
  - {destination: {host: abtest-primary}, weight: 0}
  - {destination: {host: abtest-canary}, weight: 100}
- route:
  - {destination: {host: abtest-primary}, weight: 100}"
        )
    );
    assert_eq!(
        read_routes(&c, "default", &set).unwrap(),
        Routes::new(0, 100)
    );
    assert!(!spec_needs_update(&c, &set, &want));
    // A/B replaces mirroring and session affinity.
    let c = patched(
        &c,
        "spec: {analysis: {mirror: true, mirrorWeight: 10, sessionAffinity: {cookieName: c}}}",
    );
    let (mirrored, _) = set_routes(
        &c,
        Routes {
            mirrored: true,
            ..Routes::new(0, 100)
        },
        &SessionCookies::default(),
    );
    assert_eq!(mirrored.http, set.http);
}

#[test]
fn ab_matches_are_anded_with_service_matches() {
    // TestIstioRouter_Match (second half): service.match × analysis.match.
    let c = patched(
        &canary(ABTEST),
        r#"
spec:
  service:
    match:
    - {name: podinfo, uri: {prefix: /podinfo}, method: {exact: GET}, ignoreUriCase: true}
  analysis:
    match:
    - headers: {x-user-type: {exact: test}, x-auth-test: {exact: test}}
    - headers: {x-session-id: {exact: test}}
"#,
    );
    let spec = reconcile_spec(&c).unwrap();
    let svc = "name: podinfo, uri: {prefix: /podinfo}, method: {exact: GET}, ignoreUriCase: true";
    let matches = |yaml: &str| -> Vec<HttpMatchRequest> { serde_saphyr::from_str(yaml).unwrap() };
    assert_eq!(
        spec.http[0].r#match,
        matches(&format!(
            "- {{{svc}, headers: {{x-user-type: {{exact: test}}, x-auth-test: {{exact: test}}}}}}
- {{{svc}, headers: {{x-session-id: {{exact: test}}}}}}"
        ))
    );
    assert_eq!(spec.http[1].r#match, matches(&format!("- {{{svc}}}")));
    assert_eq!(weights(&spec.http[1]), [("abtest-primary", 100)]);
}

#[test]
fn and_match_combines_field_by_field() {
    let m = |yaml: &str| -> HttpMatchRequest { serde_saphyr::from_str(yaml).unwrap() };
    // (overlay = A/B condition, base = service.match request, result)
    let cases = [
        // Flagger's cases: headers and sourceLabels over a request without them.
        (
            "{headers: {x: {exact: a}}}",
            "{name: svc, uri: {prefix: /}}",
            "{name: svc, uri: {prefix: /}, headers: {x: {exact: a}}}",
        ),
        (
            "{sourceLabels: {app: tester}}",
            "{uri: {prefix: /}}",
            "{uri: {prefix: /}, sourceLabels: {app: tester}}",
        ),
        // Where Flagger would replace or drop, Serin ANDs.
        (
            "{headers: {x: {exact: a}}}",
            "{headers: {y: {regex: b}}}",
            "{headers: {x: {exact: a}, y: {regex: b}}}",
        ),
        (
            "{sourceLabels: {app: tester}}",
            "{sourceLabels: {tier: web}}",
            "{sourceLabels: {app: tester, tier: web}}",
        ),
        (
            "{queryParams: {canary: {exact: '1'}}, withoutHeaders: {x-bot: {}}}",
            "{uri: {prefix: /api}, queryParams: {debug: {exact: 'true'}}}",
            "{uri: {prefix: /api}, queryParams: {canary: {exact: '1'}, debug: {exact: 'true'}}, \
             withoutHeaders: {x-bot: {}}}",
        ),
        (
            "{uri: {exact: /api/v2}, method: {exact: POST}, port: 8080, sourceNamespace: web, \
             gateways: [mesh], ignoreUriCase: true, name: ab}",
            "{name: svc, scheme: {exact: https}, authority: {exact: a.example.com}}",
            "{name: svc, uri: {exact: /api/v2}, method: {exact: POST}, port: 8080, \
             sourceNamespace: web, gateways: [mesh], ignoreUriCase: true, scheme: {exact: https}, \
             authority: {exact: a.example.com}}",
        ),
        // The base keeps ignoreUriCase; an empty overlay changes nothing.
        (
            "{}",
            "{uri: {prefix: /}, ignoreUriCase: true}",
            "{uri: {prefix: /}, ignoreUriCase: true}",
        ),
    ];
    for (overlay, base, want) in cases {
        assert_eq!(
            and_match(&m(overlay), &m(base)),
            m(want),
            "{overlay} × {base}"
        );
    }
    // merge_match_conditions: analysis-major order; no service matches: the A/B ones as they are.
    let a = [
        m("{headers: {a: {exact: '1'}}}"),
        m("{headers: {b: {exact: '2'}}}"),
    ];
    let s = [m("{uri: {prefix: /x}}"), m("{uri: {prefix: /y}}")];
    assert_eq!(
        merge_match_conditions(&a, &s),
        [
            m("{uri: {prefix: /x}, headers: {a: {exact: '1'}}}"),
            m("{uri: {prefix: /y}, headers: {a: {exact: '1'}}}"),
            m("{uri: {prefix: /x}, headers: {b: {exact: '2'}}}"),
            m("{uri: {prefix: /y}, headers: {b: {exact: '2'}}}"),
        ]
    );
    assert_eq!(merge_match_conditions(&a, &[]), a);
}

#[test]
fn canary_shapes_convert_as_go_omitempty_writes_them() {
    let base = patched(
        &canary(PODINFO),
        "spec: {service: {headers: null, corsPolicy: null, retries: null, match: null}}",
    );
    let c = patched(
        &base,
        r#"
spec:
  service:
    timeout: 15s
    rewrite: {uri: /v2, authority: api.internal, type: ReplacePrefixMatch}
    retries: {perTryTimeout: 2s}
    headers: {request: {add: {}, set: {x-a: b}, remove: []}, response: {}}
    corsPolicy:
      allowOrigin: []
      allowOrigins: [{exact: "https://a.example.com"}, {regex: "https://.*\\.b\\.com", exact: ""}]
      allowMethods: [GET]
      maxAge: ""
      allowCredentials: false
    match:
    - name: ""
      uri: {prefix: /api, exact: ""}
      port: 0
      ignoreUriCase: false
      sourceNamespace: ""
      headers: {x-present: {exact: ""}}
      queryParams: {}
"#,
    );
    let spec = reconcile_spec(&c).unwrap();
    let route = serde_json::to_value(&spec.http[0]).unwrap();
    assert_eq!(
        route,
        json!({
            "match": [{"uri": {"prefix": "/api"}, "headers": {"x-present": {}}}],
            "route": serde_json::to_value(&spec.http[0].route).unwrap(),
            "timeout": "15s",
            "rewrite": {"uri": "/v2", "authority": "api.internal"},
            "retries": {"attempts": 0, "perTryTimeout": "2s"},
            "headers": {"request": {"set": {"x-a": "b"}}, "response": {}},
            "corsPolicy": {
                "allowOrigins": [{"exact": "https://a.example.com"}, {"regex": "https://.*\\.b\\.com"}],
                "allowMethods": ["GET"],
            },
        })
    );
    // An empty rewrite is still a rewrite (Flagger's GetIstioRewrite returns non-nil).
    let c = patched(
        &c,
        "spec: {service: {rewrite: {uri: null, authority: null, type: ReplaceFullPath}}}",
    );
    assert_eq!(
        reconcile_spec(&c).unwrap().http[0].rewrite,
        Some(HttpRewrite::default())
    );
    // allowCredentials: true is written.
    let c = patched(
        &c,
        "spec: {service: {corsPolicy: {allowCredentials: true}}}",
    );
    assert_eq!(
        reconcile_spec(&c).unwrap().http[0]
            .cors_policy
            .as_ref()
            .unwrap()
            .allow_credentials,
        Some(true)
    );
}

// ---------------------------------------------------------------------------------------
// SetRoutes
// ---------------------------------------------------------------------------------------

#[test]
fn set_routes_writes_the_weights() {
    // TestIstioRouter_SetRoutes "normal".
    let c = canary(PODINFO);
    for (p, w) in [(60, 40), (0, 100), (100, 0), (10, 90)] {
        let (set, cookies) = set_routes(&c, Routes::new(p, w), &SessionCookies::default());
        let want = podinfo_route(&format!(
            "{{match: [{PODINFO_MATCH}], route: {}}}",
            podinfo_split(p, w)
        ));
        assert_eq!(set.http, [want]);
        assert_eq!(set.hosts, ["podinfo"]);
        assert_eq!(cookies, SessionCookies::default());
        let routes = read_routes(&c, "default", &set).unwrap();
        assert_eq!(routes, Routes::new(p, w));
        // Reconcile leaves a route whose only difference is the weights alone.
        assert!(!spec_needs_update(&c, &set, &reconcile_spec(&c).unwrap()));
    }
}

#[test]
fn mirroring_sets_the_first_route_mirror_and_percentage() {
    // TestIstioRouter_SetRoutes "mirror".
    for (mirror_weight, percentage) in [(0, None), (10, Some(10.0)), (50, Some(50.0)), (-5, None)] {
        let c = patched(
            &canary(PODINFO),
            &format!("spec: {{analysis: {{mirror: true, mirrorWeight: {mirror_weight}}}}}"),
        );
        let routes = Routes {
            mirrored: true,
            ..Routes::INITIAL
        };
        let (set, _) = set_routes(&c, routes, &SessionCookies::default());
        let route = &set.http[0];
        assert_eq!(
            weights(route),
            [("podinfo-primary", 100), ("podinfo-canary", 0)]
        );
        assert_eq!(
            route.mirror,
            Some(Destination {
                host: "podinfo-canary".into(),
                subset: None,
                port: None
            })
        );
        assert_eq!(
            route.mirror_percentage.as_ref().map(|p| p.value),
            percentage
        );
        assert_eq!(read_routes(&c, "default", &set).unwrap(), routes);
        assert!(!spec_needs_update(&c, &set, &reconcile_spec(&c).unwrap()));
        // Not mirrored: no mirror.
        let (plain, _) = set_routes(&c, Routes::INITIAL, &SessionCookies::default());
        assert_eq!(plain.http[0].mirror, None);
        assert_eq!(plain.http[0].mirror_percentage, None);
    }
    let c = patched(&canary(PODINFO), "spec: {analysis: {mirrorWeight: 25}}");
    let (set, _) = set_routes(
        &c,
        Routes {
            mirrored: true,
            ..Routes::INITIAL
        },
        &SessionCookies::default(),
    );
    assert_eq!(
        serde_json::to_value(&set.http[0]).unwrap()["mirrorPercentage"],
        json!({"value": 25.0})
    );
}

fn affinity_canary(extra: &str) -> Canary {
    patched(
        &canary(PODINFO),
        &format!(
            "spec: {{analysis: {{sessionAffinity: {{cookieName: flagger-cookie, maxAge: 300{extra}}}}}}}"
        ),
    )
}

fn sticky_match(cookie_regex: &str) -> String {
    format!(
        "{{name: podinfo, uri: {{prefix: /podinfo}}, method: {{exact: GET}}, ignoreUriCase: true, \
         headers: {{Cookie: {{regex: '{cookie_regex}'}}}}}}"
    )
}

#[test]
fn session_affinity_run_sticks_users_to_the_canary_and_expires_the_cookie() {
    // TestIstioRouter_SetRoutes "session affinity", with the whole routes spelled out.
    let c = affinity_canary("");
    let canary_split = |p: u32, w: u32, cookie: &str| {
        format!(
            "[{{destination: {{host: podinfo-primary, port: {{number: 9898}}}}, weight: {p}}}, \
             {{destination: {{host: podinfo-canary, port: {{number: 9898}}}}, weight: {w}, \
               headers: {{response: {{add: {{Set-Cookie: '{cookie}; Max-Age=300'}}}}}}}}]"
        )
    };
    let sticky = podinfo_route(&format!(
        "{{name: sticky-route, match: [{}], route: {}}}",
        sticky_match(".*flagger-cookie.*AAAAAAAAAA.*"),
        podinfo_split(0, 100)
    ));

    // The run starts: a cookie is generated and kept.
    let (set, cookies) = set_routes(&c, Routes::new(90, 10), &SessionCookies::default());
    let weighted = |p: u32, w: u32| {
        podinfo_route(&format!(
            "{{match: [{PODINFO_MATCH}], route: {}}}",
            canary_split(p, w, "flagger-cookie=AAAAAAAAAA")
        ))
    };
    assert_eq!(set.http, [sticky.clone(), weighted(90, 10)]);
    assert_eq!(cookies.canary.as_deref(), Some("flagger-cookie=AAAAAAAAAA"));
    assert_eq!(
        read_routes(&c, "default", &set).unwrap(),
        Routes::new(90, 10)
    );
    // Reconcile does not touch the sticky route or the Set-Cookie headers.
    assert!(!spec_needs_update(&c, &set, &reconcile_spec(&c).unwrap()));

    // The run continues with the same cookie.
    let (set, cookies) = set_routes(&c, Routes::new(50, 50), &cookies);
    assert_eq!(set.http, [sticky, weighted(50, 50)]);
    assert_eq!(cookies.canary.as_deref(), Some("flagger-cookie=AAAAAAAAAA"));
    assert_eq!(
        read_routes(&c, "default", &set).unwrap(),
        Routes::new(50, 50)
    );

    // Promotion: the cookie becomes the previous one and is expired by the sticky route,
    // which routes by the current weights. service.headers is kept on it (response remove),
    // and the weighted route does not expire the cookie (Flagger's shared-map slip).
    let (set, cookies) = set_routes(&c, Routes::INITIAL, &cookies);
    let expiring = {
        let mut r = podinfo_route(&format!(
            "{{name: sticky-route, match: [{}], route: {}}}",
            sticky_match(".*flagger-cookie.*AAAAAAAAAA.*"),
            podinfo_split(100, 0)
        ));
        r.headers
            .as_mut()
            .unwrap()
            .response
            .as_mut()
            .unwrap()
            .add
            .insert(
                "Set-Cookie".into(),
                "flagger-cookie=AAAAAAAAAA; Max-Age=-1".into(),
            );
        r
    };
    let plain = podinfo_route(&format!(
        "{{match: [{PODINFO_MATCH}], route: {}}}",
        podinfo_split(100, 0)
    ));
    assert_eq!(set.http, [expiring.clone(), plain.clone()]);
    assert_eq!(
        cookies,
        SessionCookies {
            canary: None,
            primary: None,
            previous: Some("flagger-cookie=AAAAAAAAAA".into()),
        }
    );
    assert_eq!(read_routes(&c, "default", &set).unwrap(), Routes::INITIAL);
    assert!(!spec_needs_update(&c, &set, &reconcile_spec(&c).unwrap()));

    // Later ticks at 0 keep expiring the previous cookie.
    let (again, cookies2) = set_routes(&c, Routes::INITIAL, &cookies);
    assert_eq!(again.http, [expiring, plain.clone()]);
    assert_eq!(cookies2, cookies);

    // The next run gets a new cookie; the previous one stays in the status.
    let (next, cookies3) = set_routes(&c, Routes::new(90, 10), &cookies2);
    assert_eq!(
        cookies3.canary.as_deref(),
        Some("flagger-cookie=AAAAAAAAAA")
    );
    assert_eq!(cookies3.previous, cookies2.previous);
    assert_eq!(next.http[0].name.as_deref(), Some(STICKY_ROUTE_NAME));

    // Without any cookie, at weight 0 the sticky route is a plain copy of the weighted one.
    let (fresh, cookies) = set_routes(&c, Routes::INITIAL, &SessionCookies::default());
    let mut copy = plain.clone();
    copy.name = Some(STICKY_ROUTE_NAME.into());
    assert_eq!(fresh.http, [copy, plain]);
    assert_eq!(cookies, SessionCookies::default());
}

#[test]
fn session_affinity_cookie_attributes_and_no_service_match() {
    let c = patched(
        &affinity_canary(
            ", domain: example.com, httpOnly: true, path: /, sameSite: Lax, secure: true",
        ),
        "spec: {service: {match: null, headers: null, retries: null, corsPolicy: null, gateways: null}}",
    );
    let (set, _) = set_routes(&c, Routes::new(80, 20), &SessionCookies::default());
    assert_eq!(
        set.http,
        spec(
            "http:
- name: sticky-route
  match: [{headers: {Cookie: {regex: '.*flagger-cookie.*AAAAAAAAAA.*'}}}]
  route:
  - {destination: {host: podinfo-primary}, weight: 0}
  - {destination: {host: podinfo-canary}, weight: 100}
- route:
  - {destination: {host: podinfo-primary}, weight: 80}
  - destination: {host: podinfo-canary}
    weight: 20
    headers:
      response:
        add:
          Set-Cookie: 'flagger-cookie=AAAAAAAAAA; Max-Age=300; Domain=example.com; HttpOnly; Path=/; SameSite=Lax; Secure'"
        )
        .http
    );
    let (done, _) = set_routes(
        &c,
        Routes::INITIAL,
        &SessionCookies {
            canary: Some("flagger-cookie=AAAAAAAAAA".into()),
            ..Default::default()
        },
    );
    assert_eq!(
        done.http[0].headers,
        Some(Headers {
            request: None,
            response: Some(HeaderOperations {
                add: [(
                    "Set-Cookie".to_string(),
                    "flagger-cookie=AAAAAAAAAA; Max-Age=-1; Domain=example.com; HttpOnly; Path=/; \
                     SameSite=Lax; Secure"
                        .to_string()
                )]
                .into(),
                ..Default::default()
            }),
        })
    );
}

#[test]
fn primary_cookie_pins_users_to_the_primary_for_an_interval() {
    let c = affinity_canary(", primaryCookieName: flagger-primary");
    let (set, cookies) = set_routes(&c, Routes::new(70, 30), &SessionCookies::default());
    assert_eq!(
        cookies,
        SessionCookies {
            canary: Some("flagger-cookie=AAAAAAAAAA".into()),
            primary: Some("flagger-primary=BBBBBBBBBB".into()),
            previous: None,
        }
    );
    let names: Vec<_> = set.http.iter().map(|r| r.name.as_deref()).collect();
    assert_eq!(
        names,
        [Some("sticky-route"), Some("sticky-route-primary"), None]
    );
    assert_eq!(
        set.http[1],
        podinfo_route(&format!(
            "{{name: sticky-route-primary, match: [{}], route: {}}}",
            sticky_match(".*flagger-primary.*BBBBBBBBBB.*"),
            podinfo_split(100, 0)
        ))
    );
    let set_cookie = |d: &HttpRouteDestination| {
        d.headers.as_ref().unwrap().response.as_ref().unwrap().add["Set-Cookie"].clone()
    };
    // The primary cookie lasts one analysis interval (1m).
    assert_eq!(
        set_cookie(&set.http[2].route[0]),
        "flagger-primary=BBBBBBBBBB; Max-Age=60"
    );
    assert_eq!(
        set_cookie(&set.http[2].route[1]),
        "flagger-cookie=AAAAAAAAAA; Max-Age=300"
    );
    assert_eq!(
        read_routes(&c, "default", &set).unwrap(),
        Routes::new(70, 30)
    );
    assert!(!spec_needs_update(&c, &set, &reconcile_spec(&c).unwrap()));
    // The same cookies on the next step.
    let (next, again) = set_routes(&c, Routes::new(50, 50), &cookies);
    assert_eq!(again, cookies);
    assert_eq!(next.http[1], set.http[1]);
    // An analysis without a usable interval cannot say how long the primary cookie lasts.
    let c = patched(&c, "spec: {analysis: {interval: null}}");
    let err = desired_spec(
        &c,
        Routes::new(50, 50),
        &SessionCookies::default(),
        &mut Fixed(["A", "B"].into()),
    )
    .unwrap_err();
    assert!(matches!(err, RouterError::InvalidInterval(_)), "{err}");
    // An empty primaryCookieName is none.
    let c = affinity_canary(", primaryCookieName: ''");
    let (set, cookies) = set_routes(&c, Routes::new(50, 50), &SessionCookies::default());
    assert_eq!(set.http.len(), 2);
    assert_eq!(cookies.primary, None);
}

#[test]
fn mirroring_with_session_affinity_mirrors_on_the_first_route() {
    let c = patched(&affinity_canary(""), "spec: {analysis: {mirror: true}}");
    let routes = Routes {
        mirrored: true,
        ..Routes::INITIAL
    };
    let (set, _) = set_routes(&c, routes, &SessionCookies::default());
    assert_eq!(set.http[0].name.as_deref(), Some(STICKY_ROUTE_NAME));
    assert!(set.http[0].mirror.is_some() && set.http[1].mirror.is_none());
    // Flagger would read this back as not mirrored (it only looks at the last route).
    assert_eq!(read_routes(&c, "default", &set).unwrap(), routes);
}

// ---------------------------------------------------------------------------------------
// Reconcile update rule and take-over
// ---------------------------------------------------------------------------------------

#[test]
fn reconcile_update_rule() {
    let c = canary(PODINFO);
    let affinity = affinity_canary("");
    let delegate = patched(
        &c,
        "spec: {service: {delegation: true, gateways: [], hosts: []}}",
    );
    let tcp = canary(TCP);
    type Edit = fn(&mut VirtualServiceSpec);
    // (canary, edit of the live spec, needs update)
    let cases: [(&Canary, Edit, bool, &str); 14] = [
        (&c, |_| {}, false, "same"),
        (&c, |s| s.http[0].route[0].weight = 7, false, "weights"),
        (
            &c,
            |s| {
                s.http[0].mirror = Some(Destination {
                    host: "podinfo-canary".into(),
                    ..Default::default()
                });
                s.http[0].mirror_percentage = Some(Percent { value: 5.0 });
            },
            false,
            "mirror",
        ),
        (
            &c,
            |s| s.hosts.push("test.example.com".into()),
            true,
            "host added",
        ),
        (
            &c,
            |s| s.gateways.push("istio-system/test-gateway".into()),
            true,
            "gateway drift",
        ),
        (
            &c,
            |s| s.http[0].timeout = Some("5s".into()),
            true,
            "timeout",
        ),
        (
            &c,
            |s| {
                s.http[0]
                    .other
                    .insert("fault".into(), json!({"abort": {"httpStatus": 500}}));
            },
            true,
            "fault injected",
        ),
        (
            &c,
            |s| {
                let mut sticky = s.http[0].clone();
                sticky.name = Some(STICKY_ROUTE_NAME.into());
                s.http.insert(0, sticky);
            },
            true,
            "sticky route without session affinity",
        ),
        (
            &c,
            |s| {
                s.http[0].route[1].headers = Some(Headers::default());
            },
            true,
            "destination headers without session affinity",
        ),
        (
            &affinity,
            |s| {
                let mut sticky = s.http[0].clone();
                sticky.name = Some(STICKY_PRIMARY_ROUTE_NAME.into());
                s.http.insert(0, sticky);
                s.http[1].route[1].headers = Some(Headers::default());
            },
            false,
            "sticky routes and Set-Cookie with session affinity",
        ),
        (
            &affinity,
            |s| {
                let mut other = s.http[0].clone();
                other.name = Some("user-route".into());
                s.http.insert(0, other);
            },
            true,
            "another named route with session affinity",
        ),
        (
            &delegate,
            |s| s.hosts = vec!["x".into()],
            false,
            "delegate hosts",
        ),
        (
            &tcp,
            |s| s.tcp[0].route[1].weight = 30,
            false,
            "tcp weights",
        ),
        (&tcp, |s| s.tcp[0].r#match.clear(), true, "tcp match"),
    ];
    for (canary, edit, want, name) in cases {
        let desired = reconcile_spec(canary).unwrap();
        let mut live = desired.clone();
        edit(&mut live);
        assert_eq!(spec_needs_update(canary, &live, &desired), want, "{name}");
    }
}

#[test]
fn metadata_rule_wants_desired_keys_present() {
    let c = patched(
        &canary(PODINFO),
        "spec: {service: {apex: {labels: {tier: web}, annotations: {team: a}}}}",
    );
    let object = virtual_service_object(&c, None, None, reconcile_spec(&c).unwrap()).unwrap();
    let desired = &object.metadata;
    assert_eq!(desired.labels.as_ref().unwrap()["tier"], "web");
    assert_eq!(
        desired.annotations.as_ref().unwrap(),
        &BTreeMap::from([
            ("team".to_string(), "a".to_string()),
            (
                FLUX_RECONCILE_ANNOTATION.to_string(),
                "disabled".to_string()
            ),
            (
                HELM_DRIFT_DETECTION_ANNOTATION.to_string(),
                "disabled".to_string()
            ),
        ])
    );
    let mut live = desired.clone();
    assert!(!metadata_needs_update(&live, desired));
    live.annotations
        .as_mut()
        .unwrap()
        .insert("other".into(), "x".into());
    live.labels
        .as_mut()
        .unwrap()
        .insert("foreign".into(), "y".into());
    assert!(!metadata_needs_update(&live, desired), "foreign keys stay");
    live.annotations
        .as_mut()
        .unwrap()
        .remove(FLUX_RECONCILE_ANNOTATION);
    assert!(
        metadata_needs_update(&live, desired),
        "flux opt-out missing"
    );
    let mut live = desired.clone();
    live.labels
        .as_mut()
        .unwrap()
        .insert("tier".into(), "api".into());
    assert!(metadata_needs_update(&live, desired), "label changed");
    let live = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta::default();
    assert!(metadata_needs_update(&live, desired), "nothing there");
}

#[test]
fn virtual_service_object_metadata() {
    let c = canary(PODINFO);
    let owner = owner_reference(&c).unwrap();
    let object = virtual_service_object(
        &c,
        Some(owner.clone()),
        Some("{\"hosts\":[\"podinfo\"]}".into()),
        VirtualServiceSpec::default(),
    )
    .unwrap();
    let value = serde_json::to_value(&object).unwrap();
    assert_eq!(
        value,
        json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {
                "name": "podinfo",
                "namespace": "default",
                "annotations": {
                    FLUX_RECONCILE_ANNOTATION: "disabled",
                    HELM_DRIFT_DETECTION_ANNOTATION: "disabled",
                    ORIGINAL_CONFIGURATION_ANNOTATION: "{\"hosts\":[\"podinfo\"]}",
                },
                "ownerReferences": [serde_json::to_value(&owner).unwrap()],
            },
            "spec": {},
        })
    );
    let rule = destination_rule_object(&c, "podinfo-canary", Some(owner)).unwrap();
    assert_eq!(rule.api_version, "networking.istio.io/v1");
    assert_eq!(rule.kind, "DestinationRule");
    assert_eq!(rule.metadata.name.as_deref(), Some("podinfo-canary"));
    assert_eq!(rule.metadata.owner_references.as_ref().unwrap().len(), 1);
    assert_eq!(
        rule.spec,
        DestinationRuleSpec {
            host: "podinfo-canary".into(),
            traffic_policy: None
        }
    );
    // A missing namespace is an error, not an object in the wrong place.
    let mut c = c;
    c.metadata.namespace = None;
    assert!(matches!(
        virtual_service_object(&c, None, None, VirtualServiceSpec::default()),
        Err(RouterError::MissingNamespace { .. })
    ));
}

#[test]
fn destination_rules_follow_the_traffic_policy() {
    let c = patched(
        &canary(PODINFO),
        "spec: {service: {trafficPolicy: {tls: {mode: ISTIO_MUTUAL}, loadBalancer: {simple: LEAST_REQUEST}}}}",
    );
    let desired = destination_rule_object(&c, "podinfo-primary", None).unwrap();
    assert_eq!(
        serde_json::to_value(&desired.spec).unwrap(),
        json!({"host": "podinfo-primary", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}, "loadBalancer": {"simple": "LEAST_REQUEST"}}})
    );
    let mut live = desired.clone();
    assert!(!destination_rule_needs_update(&live, &desired));
    live.spec.traffic_policy = None;
    assert!(
        destination_rule_needs_update(&live, &desired),
        "policy changed"
    );
    let mut live = desired.clone();
    live.metadata.annotations = None;
    assert!(
        destination_rule_needs_update(&live, &desired),
        "Flux opt-out missing"
    );
    let mut live = desired.clone();
    live.metadata.owner_references = None;
    assert!(
        !destination_rule_needs_update(&live, &desired),
        "owners are not compared"
    );
}

#[test]
fn original_configuration_is_kept_on_take_over() {
    let c = canary(PODINFO);
    let live_spec =
        json!({"hosts": ["podinfo"], "http": [{"route": [{"destination": {"host": "podinfo"}}]}]});
    let meta = |annotations: &[(&str, &str)], owned: bool| {
        let mut m = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            annotations: Some(
                annotations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        };
        if owned {
            m.owner_references = Some(vec![owner_reference(&c).unwrap()]);
        }
        m
    };
    let stored = live_spec.to_string();
    // (annotations, controlled by the Canary, spec differs, result)
    let cases: [(Pairs, bool, bool, Option<&str>); 7] = [
        (&[], false, true, Some(stored.as_str())),
        (&[], false, false, None),
        (&[], true, true, None),
        (
            &[(KUBECTL_LAST_APPLIED_ANNOTATION, "{}")],
            false,
            true,
            None,
        ),
        (
            &[(ORIGINAL_CONFIGURATION_ANNOTATION, "kept")],
            false,
            true,
            Some("kept"),
        ),
        (
            &[(ORIGINAL_CONFIGURATION_ANNOTATION, "kept")],
            true,
            false,
            Some("kept"),
        ),
        (&[("other", "x")], false, true, Some(stored.as_str())),
    ];
    for (annotations, owned, differs, want) in cases {
        assert_eq!(
            original_configuration(&c, &meta(annotations, owned), &live_spec, differs).as_deref(),
            want,
            "{annotations:?} owned={owned} differs={differs}"
        );
    }
}

#[test]
fn finalize_restores_kubectl_then_original_configuration() {
    // TestIstioRouter_Finalize's annotations.
    let kubectl = r#"{"apiVersion": "networking.istio.io/v1alpha3","kind": "VirtualService","metadata": {"annotations": {},"name": "podinfo","namespace": "test"},  "spec": {"gateways": ["istio-system/ingressgateway"],"hosts": ["podinfo"],"http": [{"route": [{"destination": {"host": "podinfo"}}]}]}}"#;
    let flagger = r#"{"hosts":null,"http":[{"match":[{"name":"podinfo","uri":{"prefix":"/podinfo"}}],"retries":{"attempts":10}}]}"#;
    let meta =
        |pairs: &[(&str, &str)]| k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            annotations: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        };
    let kubectl_spec = json!({"gateways": ["istio-system/ingressgateway"], "hosts": ["podinfo"], "http": [{"route": [{"destination": {"host": "podinfo"}}]}]});
    let flagger_spec = json!({"http": [{"match": [{"name": "podinfo", "uri": {"prefix": "/podinfo"}}], "retries": {"attempts": 10}}]});
    let cases: [(Pairs, Option<Value>); 5] = [
        (&[], None),
        (
            &[(KUBECTL_LAST_APPLIED_ANNOTATION, kubectl)],
            Some(kubectl_spec.clone()),
        ),
        (
            &[
                (KUBECTL_LAST_APPLIED_ANNOTATION, kubectl),
                (ORIGINAL_CONFIGURATION_ANNOTATION, flagger),
            ],
            Some(kubectl_spec),
        ),
        (
            &[(ORIGINAL_CONFIGURATION_ANNOTATION, flagger)],
            Some(flagger_spec),
        ),
        (
            &[(
                KUBECTL_LAST_APPLIED_ANNOTATION,
                r#"{"kind":"VirtualService"}"#,
            )],
            Some(json!({})),
        ),
    ];
    for (pairs, want) in cases {
        assert_eq!(
            original_spec("podinfo", "test", &meta(pairs)).unwrap(),
            want,
            "{pairs:?}"
        );
    }
    for (key, raw) in [
        (KUBECTL_LAST_APPLIED_ANNOTATION, "not json"),
        (KUBECTL_LAST_APPLIED_ANNOTATION, r#"{"spec": []}"#),
        (ORIGINAL_CONFIGURATION_ANNOTATION, "[1]"),
    ] {
        assert_eq!(
            refused(original_spec("podinfo", "test", &meta(&[(key, raw)]))),
            format!("VirtualService podinfo.test failed to unMarshal annotation {key}")
        );
    }
}

// ---------------------------------------------------------------------------------------
// GetRoutes
// ---------------------------------------------------------------------------------------

#[test]
fn read_routes_table() {
    let c = canary(PODINFO);
    let affinity = affinity_canary("");
    let tcp = canary(TCP);
    let dest = |host: &str, w: i32| format!("{{destination: {{host: {host}}}, weight: {w}}}");
    let p = |w| dest("podinfo-primary", w);
    let k = |w| dest("podinfo-canary", w);
    // (canary, spec, result) — Err(()) is Flagger's "does not contain routes" error.
    let cases: Vec<(&Canary, String, Result<Routes, ()>)> = vec![
        (
            &c,
            format!("http: [{{route: [{}, {}]}}]", p(100), k(0)),
            Ok(Routes::INITIAL),
        ),
        (
            &c,
            format!("http: [{{route: [{}, {}]}}]", p(25), k(75)),
            Ok(Routes::new(25, 75)),
        ),
        (
            &c,
            format!(
                "http: [{{route: [{}, {}], mirror: {{host: podinfo-canary}}}}]",
                p(100),
                k(0)
            ),
            Ok(Routes {
                mirrored: true,
                ..Routes::INITIAL
            }),
        ),
        // A mirror with an empty host is no mirror.
        (
            &c,
            format!(
                "http: [{{route: [{}, {}], mirror: {{host: ''}}}}]",
                p(100),
                k(0)
            ),
            Ok(Routes::INITIAL),
        ),
        // The last route with the canary destination wins.
        (
            &c,
            format!(
                "http: [{{route: [{}, {}]}}, {{route: [{}, {}]}}, {{route: [{}]}}]",
                p(10),
                k(90),
                p(40),
                k(60),
                p(100)
            ),
            Ok(Routes::new(40, 60)),
        ),
        // No canary destination: Flagger's error, even with a primary weight elsewhere.
        (&c, format!("http: [{{route: [{}]}}]", p(100)), Err(())),
        (
            &c,
            format!("http: [{{route: [{}, {}]}}]", p(0), k(0)),
            Err(()),
        ),
        (&c, "hosts: [podinfo]".to_string(), Err(())),
        (
            &c,
            format!("http: [{{route: [{}, {}]}}]", p(-5), k(0)),
            Err(()),
        ),
        // Session affinity: destinations with headers win over the last route...
        (
            &affinity,
            format!(
                "http: [{{name: sticky-route, route: [{}, {}]}}, \
                 {{route: [{}, {{destination: {{host: podinfo-canary}}, weight: 20, headers: {{}}}}]}}]",
                p(0),
                k(100),
                p(80)
            ),
            Ok(Routes::new(80, 20)),
        ),
        // ... which Flagger reads destination by destination, whatever the route order.
        (
            &affinity,
            format!(
                "http: [{{route: [{}, {{destination: {{host: podinfo-canary}}, weight: 20, headers: {{}}}}]}}, \
                 {{name: sticky-route, route: [{}, {}]}}]",
                p(80),
                p(0),
                k(100)
            ),
            Ok(Routes::new(0, 20)),
        ),
        (
            &tcp,
            format!("tcp: [{{route: [{}, {}]}}]", p(30), k(70)),
            Ok(Routes::new(30, 70)),
        ),
        (
            &tcp,
            format!("http: [{{route: [{}, {}]}}]", p(30), k(70)),
            Err(()),
        ),
    ];
    for (canary, yaml, want) in cases {
        let spec = spec(&yaml);
        let got = read_routes(canary, "default", &spec);
        match want {
            Ok(routes) => assert_eq!(got.unwrap(), routes, "{yaml}"),
            Err(()) => assert_eq!(
                refused(got),
                "VirtualService podinfo.default does not contain routes for podinfo-primary and \
                 podinfo-canary",
                "{yaml}"
            ),
        }
    }
}

#[test]
fn live_specs_parse_with_foreign_fields() {
    let raw = json!({
        "hosts": ["podinfo"],
        "exportTo": ["."],
        "tls": [{"match": [{"sniHosts": ["a"]}], "route": [{"destination": {"host": "a"}}]}],
        "http": [{
            "name": "r",
            "fault": {"delay": {"fixedDelay": "1s"}},
            "match": [{"uri": {"prefix": "/"}, "statPrefix": "x"}],
            "route": [{"destination": {"host": "podinfo-primary"}}],
        }],
    });
    let spec = parse_spec("podinfo", "default", &raw).unwrap();
    assert_eq!(spec.hosts, ["podinfo"]);
    assert_eq!(
        spec.http[0].other,
        BTreeMap::from([("fault".to_string(), json!({"delay": {"fixedDelay": "1s"}}))])
    );
    // A destination without a weight reads as 0.
    assert_eq!(spec.http[0].route[0].weight, 0);
    assert_eq!(
        parse_spec("podinfo", "default", &Value::Null).unwrap(),
        VirtualServiceSpec::default()
    );
    let text = refused(parse_spec("podinfo", "default", &json!({"http": "nope"})));
    assert!(
        text.starts_with("VirtualService podinfo.default spec cannot be read: "),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------
// What Istio cannot express
// ---------------------------------------------------------------------------------------

fn fields(problems: &[Inexpressible]) -> Vec<&str> {
    problems.iter().map(|p| p.field.as_str()).collect()
}

#[test]
fn flaggers_and_the_guides_canaries_are_expressible() {
    for yaml in [PODINFO, ABTEST, TCP] {
        assert_eq!(inexpressible(&canary(yaml)), []);
    }
    assert_eq!(inexpressible(&faq().0), []);
    assert_eq!(
        inexpressible(&affinity_canary(", primaryCookieName: p")),
        []
    );
}

#[test]
fn inexpressible_table() {
    let base = canary(PODINFO);
    // (patch, fields reported)
    let cases: [(&str, &[&str]); 17] = [
        (
            "spec: {service: {match: [{uri: {suffix: .html}}]}}",
            &["spec.service.match[0].uri.suffix"],
        ),
        (
            "spec: {service: {match: [{uri: {prefix: /a, suffix: .html}}]}}",
            &["spec.service.match[0].uri.suffix"],
        ),
        (
            "spec: {service: {match: [{uri: {prefix: /a, regex: /a.*}}]}}",
            &["spec.service.match[0].uri"],
        ),
        (
            "spec: {service: {match: [{uri: {}}]}}",
            &["spec.service.match[0].uri"],
        ),
        (
            "spec: {service: {match: [{method: {exact: ''}}]}}",
            &["spec.service.match[0].method"],
        ),
        (
            "spec: {service: {match: [{scheme: {}, authority: {}}]}}",
            &[
                "spec.service.match[0].scheme",
                "spec.service.match[0].authority",
            ],
        ),
        // An empty header / query parameter condition is Istio's presence check.
        (
            "spec: {service: {match: [{headers: {x: {}}, queryParams: {q: {}}}]}}",
            &[],
        ),
        (
            "spec: {service: {match: [{headers: {x: {suffix: a}}, withoutHeaders: {y: {exact: a, prefix: b}}}]}}",
            &[
                "spec.service.match[0].headers.x.suffix",
                "spec.service.match[0].withoutHeaders.y",
            ],
        ),
        (
            "spec: {service: {corsPolicy: {allowOrigins: [{exact: a}, {suffix: .com}, {}]}}}",
            &[
                "spec.service.corsPolicy.allowOrigins[1].suffix",
                "spec.service.corsPolicy.allowOrigins[2]",
            ],
        ),
        (
            "spec: {analysis: {match: [{headers: {x-canary: {suffix: insider}}}]}}",
            &["spec.analysis.match[0].headers.x-canary.suffix"],
        ),
        // A/B conditions contradicting service.match (PODINFO's: uri prefix /podinfo, GET).
        (
            "spec: {analysis: {match: [{uri: {prefix: /other}, method: {exact: GET}}]}}",
            &["spec.analysis.match[0].uri"],
        ),
        (
            "spec: {service: {match: [{headers: {x-env: {exact: prod}}, sourceLabels: {app: web}}]}, \
             analysis: {match: [{headers: {x-env: {exact: dev}, x-other: {exact: a}}, sourceLabels: {app: tester, tier: x}}]}}",
            &[
                "spec.analysis.match[0].headers.x-env",
                "spec.analysis.match[0].sourceLabels.app",
            ],
        ),
        (
            "spec: {service: {match: [{port: 80, sourceNamespace: a, gateways: [g1]}]}, \
             analysis: {match: [{port: 81, sourceNamespace: b, gateways: [g2]}]}}",
            &[
                "spec.analysis.match[0].port",
                "spec.analysis.match[0].sourceNamespace",
                "spec.analysis.match[0].gateways",
            ],
        ),
        // Delegation with hosts or gateways.
        (
            "spec: {service: {delegation: true, gateways: null, hosts: [a]}}",
            &["spec.service.hosts"],
        ),
        (
            "spec: {service: {delegation: true}}",
            &["spec.service.gateways"],
        ),
        // DestinationRule load balancer one-ofs.
        (
            "spec: {service: {trafficPolicy: {loadBalancer: {simple: RANDOM, consistentHash: {httpHeaderName: x, useSourceIp: false}}}}}",
            &[
                "spec.service.trafficPolicy.loadBalancer",
                "spec.service.trafficPolicy.loadBalancer.consistentHash",
            ],
        ),
        (
            "spec: {service: {trafficPolicy: {portLevelSettings: [{port: {number: 1}, loadBalancer: {consistentHash: {httpCookie: {ttl: 1s}}}}]}}}",
            &[
                "spec.service.trafficPolicy.portLevelSettings[0].loadBalancer.consistentHash.httpCookie.name",
            ],
        ),
    ];
    for (patch, want) in cases {
        let c = patched(&base, patch);
        let problems = inexpressible(&c);
        assert_eq!(fields(&problems), want, "{patch}");
        // The builders refuse the same input.
        assert_eq!(reconcile_spec(&c).is_err(), !want.is_empty(), "{patch}");
    }
}

#[test]
fn inexpressible_tcp_table() {
    let base = canary(TCP);
    let cases: [(&str, &[&str]); 5] = [
        (
            "spec: {service: {match: [{port: 9898, uri: {prefix: /}, headers: {x: {exact: a}}, sourceLabels: {a: b}}]}}",
            &[
                "spec.service.match[0].uri",
                "spec.service.match[0].headers",
                "spec.service.match[0].sourceLabels",
            ],
        ),
        (
            "spec: {analysis: {match: [{headers: {x: {exact: a}}}]}}",
            &["spec.analysis.match"],
        ),
        (
            "spec: {analysis: {sessionAffinity: {cookieName: c}}}",
            &["spec.analysis.sessionAffinity"],
        ),
        (
            "spec: {analysis: {mirror: true}}",
            &["spec.analysis.mirror"],
        ),
        ("spec: {analysis: {mirror: false, match: []}}", &[]),
    ];
    for (patch, want) in cases {
        let c = patched(&base, patch);
        assert_eq!(fields(&inexpressible(&c)), want, "{patch}");
    }
    // The deprecated canaryAnalysis is named as such.
    let c = patched(
        &base,
        "spec: {analysis: null, canaryAnalysis: {mirror: true}}",
    );
    assert_eq!(fields(&inexpressible(&c)), ["spec.canaryAnalysis.mirror"]);
}

#[test]
fn inexpressible_texts_name_the_provider_and_the_fix() {
    let c = patched(
        &canary(PODINFO),
        "spec: {service: {match: [{uri: {suffix: .html}}]}}",
    );
    assert_eq!(
        inexpressible(&c),
        [Inexpressible {
            field: "spec.service.match[0].uri.suffix".into(),
            problem: "provider \"istio\" matches strings by exact value, prefix or regex; Istio \
                      has no suffix match"
                .into(),
            fix: "write it as a regex: regex: \".*\\.html$\"".into(),
        }]
    );
    assert_eq!(
        refused(reconcile_spec(&c)),
        "canary podinfo.default cannot be routed by a VirtualService: \
         spec.service.match[0].uri.suffix: provider \"istio\" matches strings by exact value, \
         prefix or regex; Istio has no suffix match; fix: write it as a regex: regex: \".*\\.html$\""
    );
    let c = patched(&canary(PODINFO), "spec: {service: {delegation: true}}");
    assert_eq!(
        inexpressible(&c)[0].problem,
        "provider \"istio\" generates a delegate VirtualService (delegation: true), which cannot \
         have hosts or gateways"
    );
}

#[test]
fn all_fields_canary_problems() {
    let c = canary(ALL_FIELDS);
    assert_eq!(
        fields(&inexpressible(&c)),
        [
            "spec.service.trafficPolicy.loadBalancer",
            "spec.service.trafficPolicy.loadBalancer.consistentHash",
            "spec.analysis.match[0].headers.x-canary.suffix",
            "spec.analysis.match[0].sourceLabels.app",
        ]
    );
}

// ---------------------------------------------------------------------------------------
// Every field written exists in Istio's v1 CRD schema, with that type
// ---------------------------------------------------------------------------------------

fn conforms(value: &Value, schema: &Value, path: &str, errors: &mut Vec<String>) {
    let ty = schema["type"].as_str().unwrap_or_default();
    let ok = match value {
        Value::Object(map) => {
            for (k, v) in map {
                let sub = schema["properties"]
                    .get(k)
                    .or(schema.get("additionalProperties"));
                match sub {
                    Some(sub) => conforms(v, sub, &format!("{path}.{k}"), errors),
                    None => errors.push(format!("{path}.{k}: not in the schema")),
                }
            }
            ty == "object"
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                conforms(item, &schema["items"], &format!("{path}[{i}]"), errors);
            }
            ty == "array"
        }
        Value::String(s) => {
            if let Some(allowed) = schema["enum"].as_array()
                && !allowed.iter().any(|a| a == s)
            {
                errors.push(format!("{path}: {s:?} not in {allowed:?}"));
            }
            ty == "string" || schema["intOrString"] == true
        }
        Value::Number(n) => ty == "number" || (ty == "integer" && (n.is_i64() || n.is_u64())),
        Value::Bool(_) => ty == "boolean",
        Value::Null => false,
    };
    if !ok {
        errors.push(format!("{path}: {value} is not a {ty}"));
    }
}

fn assert_conforms(kind: &str, spec: &impl serde::Serialize) {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let value = serde_json::to_value(spec).unwrap();
    let mut errors = Vec::new();
    conforms(&value, &schema[kind], "spec", &mut errors);
    assert!(errors.is_empty(), "{kind}: {errors:#?}\n{value:#}");
}

#[test]
fn written_objects_conform_to_istios_v1_schema() {
    // The all-fields Canary, less what Istio cannot express.
    let c = patched(
        &canary(ALL_FIELDS),
        r#"
spec:
  service:
    trafficPolicy:
      loadBalancer:
        simple: null
        consistentHash: {httpCookie: null, useSourceIp: null, httpQueryParameterName: null}
  analysis:
    match:
    - headers: {x-canary: {regex: ".*-insider$"}}
      queryParams: {canary: {exact: "1"}}
      sourceLabels: {app: frontend, tier: tester}
"#,
    );
    assert_eq!(inexpressible(&c), []);
    let mut specs = vec![reconcile_spec(&c).unwrap()];
    let all_routes = |c: &Canary| {
        let cookies = SessionCookies {
            previous: Some("flagger-cookie=ZZZZZZZZZZ".into()),
            ..Default::default()
        };
        let mirrored = Routes {
            mirrored: true,
            ..Routes::new(80, 20)
        };
        vec![
            set_routes(c, mirrored, &cookies).0,
            set_routes(
                c,
                Routes {
                    mirrored: true,
                    ..Routes::INITIAL
                },
                &cookies,
            )
            .0,
        ]
    };
    specs.extend(all_routes(&c));
    // Session affinity with both cookies and mirroring (no A/B, which replaces them).
    let no_ab = patched(&c, "spec: {analysis: {match: null}}");
    specs.push(reconcile_spec(&no_ab).unwrap());
    specs.extend(all_routes(&no_ab));
    assert!(
        specs
            .iter()
            .any(|s| s.http.len() == 3 && s.http[0].mirror.is_some())
    );
    // TCP.
    let tcp = patched(
        &no_ab,
        "spec: {service: {appProtocol: tcp, match: [{port: 9898}]}, analysis: {mirror: false, sessionAffinity: null}}",
    );
    assert_eq!(inexpressible(&tcp), []);
    specs.push(reconcile_spec(&tcp).unwrap());
    specs.push(set_routes(&tcp, Routes::new(50, 50), &SessionCookies::default()).0);
    for spec in &specs {
        assert_conforms("VirtualService", spec);
    }
    // Foreign fields read from a live route are not written back (they conform anyway).
    let rule = destination_rule_object(&c, "podinfo-svc-primary", None).unwrap();
    assert_conforms("DestinationRule", &rule.spec);
    // And the whole written object carries metadata Kubernetes knows plus the v1 identity.
    let object = virtual_service_object(&c, None, None, specs[0].clone()).unwrap();
    assert_eq!(object.api_version, format!("{ISTIO_GROUP}/{ISTIO_VERSION}"));
}

#[test]
fn the_phase_does_not_change_what_is_written() {
    // Unlike Gateway API, Istio's comparison ignores mirrors in every phase.
    let mut c = patched(&canary(PODINFO), "spec: {analysis: {mirror: true}}");
    for phase in [
        CanaryPhase::Initialized,
        CanaryPhase::Progressing,
        CanaryPhase::Succeeded,
    ] {
        c.status.get_or_insert_with(Default::default).phase = phase;
        let (set, _) = set_routes(
            &c,
            Routes {
                mirrored: true,
                ..Routes::INITIAL
            },
            &SessionCookies::default(),
        );
        assert!(!spec_needs_update(&c, &set, &reconcile_spec(&c).unwrap()));
    }
}

#[test]
fn ab_with_session_affinity_issues_no_cookie_and_validate_warns() {
    let c = patched(
        &canary(ABTEST),
        "spec: {analysis: {sessionAffinity: {cookieName: c}}}",
    );
    let (set, cookies) = set_routes(&c, Routes::new(0, 100), &SessionCookies::default());
    assert_eq!(cookies, SessionCookies::default());
    assert_eq!(set.http.len(), 2, "the A/B routes alone");
    assert!(inexpressible(&c).is_empty());
    assert_eq!(
        fields(&ignored_fields(&c)),
        ["spec.analysis.sessionAffinity"]
    );
    assert!(ignored_fields(&canary(ABTEST)).is_empty());
}
