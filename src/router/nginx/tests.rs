//! Table tests of the canary Ingress builders against Flagger's `ingress_test.go` and the
//! NGINX guide (`docs/gitbook/tutorials/nginx-progressive-delivery.md`).

use super::*;

/// Flagger's `newTestCanaryIngress` (router_test.go).
const FLAGGER_CANARY: &str = r#"
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: nginx
  namespace: default
  uid: uid-1
  annotations: {kustomize.toolkit.fluxcd.io/checksum: 0a40893bfdc545d62125bd3e74eeb2ebaa7097c2}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  ingressRef: {apiVersion: networking.k8s.io/v1, kind: Ingress, name: podinfo}
  service: {port: 9898}
  analysis: {threshold: 10, stepWeight: 10, maxWeight: 50}
"#;

/// Flagger's `newTestIngress`.
const FLAGGER_INGRESS: &str = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: podinfo
  namespace: default
  annotations:
    kubernetes.io/ingress.class: nginx
    kustomize.toolkit.fluxcd.io/checksum: 0a40893bfdc545d62125bd3e74eeb2ebaa7097c2
spec:
  rules:
  - host: app.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend: {service: {name: podinfo, port: {number: 9898}}}
"#;

/// The NGINX guide's Canary, with its A/B analysis.
const GUIDE_AB_CANARY: &str = r#"
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: podinfo, namespace: test, uid: uid-1}
spec:
  provider: nginx
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  ingressRef: {apiVersion: networking.k8s.io/v1, kind: Ingress, name: podinfo}
  autoscalerRef: {apiVersion: autoscaling/v2, kind: HorizontalPodAutoscaler, name: podinfo}
  progressDeadlineSeconds: 60
  service: {port: 80, targetPort: 9898}
  analysis:
    interval: 1m
    threshold: 10
    iterations: 10
    match:
    - headers:
        x-canary: {exact: insider}
    - headers:
        cookie: {exact: canary}
"#;

/// The guide's Ingress, with TLS and a second path that is not the app's.
const GUIDE_INGRESS: &str = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: podinfo
  namespace: test
  labels: {app: podinfo}
  annotations:
    kubernetes.io/ingress.class: nginx
    kubectl.kubernetes.io/last-applied-configuration: "{}"
    nginx.ingress.kubernetes.io/canary-weight: "30"
spec:
  tls: [{hosts: [app.example.com], secretName: app-tls}]
  rules:
  - host: app.example.com
    http:
      paths:
      - pathType: Prefix
        path: /
        backend: {service: {name: podinfo, port: {number: 80}}}
      - pathType: Prefix
        path: /static
        backend: {service: {name: assets, port: {number: 80}}}
"#;

fn canary(yaml: &str) -> Canary {
    serde_saphyr::from_str(yaml).unwrap()
}

fn ingress(yaml: &str) -> Ingress {
    serde_saphyr::from_str(yaml).unwrap()
}

/// `canary` with `analysis.match` replaced (and iterations, as A/B needs).
fn with_matches(yaml: &str, matches: &str) -> Canary {
    let mut c = canary(yaml);
    let analysis = c.spec.analysis.as_mut().unwrap();
    analysis.iterations = Some(1);
    analysis.r#match = Some(serde_saphyr::from_str(matches).unwrap());
    c
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const FLUX: [(&str, &str); 2] = [
    ("kustomize.toolkit.fluxcd.io/reconcile", "disabled"),
    ("helm.toolkit.fluxcd.io/driftDetection", "disabled"),
];

fn with_flux(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut out = map(pairs);
    out.extend(map(&FLUX));
    out
}

#[test]
fn flaggers_reconcile_copies_the_ingress_to_the_canary_backend() {
    // TestIngressRouter_Reconcile, with a custom prefix.
    let c = canary(FLAGGER_CANARY);
    let user = ingress(FLAGGER_INGRESS);
    let prefix = "custom.ingress.kubernetes.io";
    let object = canary_ingress(
        &c,
        Some(owner_reference(&c).unwrap()),
        user.metadata.labels.clone(),
        initial_annotations(prefix, user.metadata.annotations.as_ref()),
        canary_ingress_spec(&c, &user).unwrap(),
    )
    .unwrap();
    let want = serde_json::json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "podinfo-canary",
            "namespace": "default",
            "annotations": {
                "kubernetes.io/ingress.class": "nginx",
                "kustomize.toolkit.fluxcd.io/checksum": "0a40893bfdc545d62125bd3e74eeb2ebaa7097c2",
                "kustomize.toolkit.fluxcd.io/reconcile": "disabled",
                "helm.toolkit.fluxcd.io/driftDetection": "disabled",
                "custom.ingress.kubernetes.io/canary": "true",
                "custom.ingress.kubernetes.io/canary-weight": "0"
            },
            "ownerReferences": [{
                "apiVersion": "flagger.app/v1beta1",
                "kind": "Canary",
                "name": "nginx",
                "uid": "uid-1",
                "controller": true,
                "blockOwnerDeletion": true
            }]
        },
        "spec": {
            "rules": [{
                "host": "app.example.com",
                "http": {"paths": [{
                    "path": "/",
                    "pathType": "Prefix",
                    "backend": {"service": {"name": "podinfo-canary", "port": {"number": 9898}}}
                }]}
            }]
        }
    });
    assert_eq!(serde_json::to_value(&object).unwrap(), want);
    assert_eq!(
        read_routes(prefix, &c, object.metadata.annotations.as_ref()).unwrap(),
        Routes::INITIAL
    );
}

#[test]
fn guide_ingress_keeps_tls_other_paths_and_labels_but_no_canary_or_kubectl_keys() {
    let c = canary(GUIDE_AB_CANARY);
    let user = ingress(GUIDE_INGRESS);
    let spec = canary_ingress_spec(&c, &user).unwrap();
    let mut want = user.spec.clone().unwrap();
    want.rules.as_mut().unwrap()[0].http.as_mut().unwrap().paths[0]
        .backend
        .service
        .as_mut()
        .unwrap()
        .name = "podinfo-canary".into();
    assert_eq!(spec, want);
    // The user's canary-weight is not copied: the copy starts at 0.
    assert_eq!(
        initial_annotations(
            DEFAULT_ANNOTATIONS_PREFIX,
            user.metadata.annotations.as_ref()
        ),
        with_flux(&[
            ("kubernetes.io/ingress.class", "nginx"),
            ("nginx.ingress.kubernetes.io/canary", "true"),
            ("nginx.ingress.kubernetes.io/canary-weight", "0"),
        ])
    );
    let object = canary_ingress(
        &c,
        None,
        user.metadata.labels.clone(),
        BTreeMap::new(),
        spec,
    )
    .unwrap();
    assert_eq!(object.metadata.labels, Some(map(&[("app", "podinfo")])));
    assert_eq!(object.metadata.owner_references, None);
    assert!(inexpressible(&c).is_empty());
    assert!(ignored_fields(&c).is_empty());
}

#[test]
fn missing_backend_and_ingress_ref_are_flaggers_errors() {
    let c = canary(FLAGGER_CANARY);
    let mut other = ingress(FLAGGER_INGRESS);
    other.spec.as_mut().unwrap().rules.as_mut().unwrap()[0]
        .http
        .as_mut()
        .unwrap()
        .paths[0]
        .backend
        .service
        .as_mut()
        .unwrap()
        .name = "frontend".into();
    assert_eq!(
        canary_ingress_spec(&c, &other).unwrap_err().to_string(),
        "backend podinfo not found in ingress podinfo"
    );
    // A rule without http paths is skipped, not a crash.
    let hostless = ingress("{metadata: {name: podinfo}, spec: {rules: [{host: a.example.com}]}}");
    assert_eq!(
        canary_ingress_spec(&c, &hostless).unwrap_err().to_string(),
        "backend podinfo not found in ingress podinfo"
    );
    let mut no_ref = c.clone();
    no_ref.spec.ingress_ref = None;
    assert_eq!(
        canary_ingress_name(&no_ref).unwrap_err().to_string(),
        "ingress selector is empty"
    );
    no_ref.spec.ingress_ref = serde_saphyr::from_str("{kind: Ingress}").unwrap();
    assert_eq!(
        ingress_ref_name(&no_ref).unwrap_err().to_string(),
        "ingress selector is empty"
    );
    assert_eq!(canary_ingress_name(&c).unwrap(), "podinfo-canary");
}

#[test]
fn flaggers_get_and_set_routes() {
    // TestIngressRouter_GetSetRoutes: 50 then back to 0, with a custom prefix.
    let c = canary(FLAGGER_CANARY);
    let prefix = "prefix1.nginx.ingress.kubernetes.io";
    let user = ingress(FLAGGER_INGRESS);
    let initial = initial_annotations(prefix, user.metadata.annotations.as_ref());
    let user_keys = [
        ("kubernetes.io/ingress.class", "nginx"),
        (
            "kustomize.toolkit.fluxcd.io/checksum",
            "0a40893bfdc545d62125bd3e74eeb2ebaa7097c2",
        ),
    ];
    let fifty = routed_annotations(prefix, &c, Some(&initial), 50);
    let mut want = with_flux(&user_keys);
    want.extend(map(&[
        ("prefix1.nginx.ingress.kubernetes.io/canary", "true"),
        ("prefix1.nginx.ingress.kubernetes.io/canary-weight", "50"),
    ]));
    assert_eq!(fifty, want);
    assert_eq!(
        read_routes(prefix, &c, Some(&fifty)).unwrap(),
        Routes::new(50, 50)
    );
    let zero = routed_annotations(prefix, &c, Some(&fifty), 0);
    assert_eq!(zero, initial);
    assert_eq!(
        read_routes(prefix, &c, Some(&zero)).unwrap(),
        Routes::INITIAL
    );
}

#[test]
fn flaggers_ab_tests_set_the_by_header_and_by_cookie_annotations() {
    // TestIngressRouter_ABTest: each match kind, SetRoutes(50, 50) after Reconcile.
    let prefix = DEFAULT_ANNOTATIONS_PREFIX;
    let base = |extra: &[(&str, &str)]| {
        let mut want = with_flux(&[
            ("nginx.ingress.kubernetes.io/canary", "true"),
            ("nginx.ingress.kubernetes.io/canary-weight", "0"),
        ]);
        want.extend(map(extra));
        want
    };
    let cases: [(&str, BTreeMap<String, String>); 3] = [
        (
            "[{headers: {x-user-type: {exact: test}}}]",
            base(&[
                (
                    "nginx.ingress.kubernetes.io/canary-by-header",
                    "x-user-type",
                ),
                ("nginx.ingress.kubernetes.io/canary-by-header-value", "test"),
            ]),
        ),
        (
            "[{headers: {x-user-type: {regex: test}}}]",
            base(&[
                (
                    "nginx.ingress.kubernetes.io/canary-by-header",
                    "x-user-type",
                ),
                (
                    "nginx.ingress.kubernetes.io/canary-by-header-pattern",
                    "test",
                ),
            ]),
        ),
        (
            "[{headers: {cookie: {exact: test}}}]",
            base(&[("nginx.ingress.kubernetes.io/canary-by-cookie", "test")]),
        ),
    ];
    for (matches, want) in cases {
        let c = with_matches(FLAGGER_CANARY, matches);
        let initial = initial_annotations(prefix, None);
        let set = routed_annotations(prefix, &c, Some(&initial), 50);
        assert_eq!(set, want, "{matches}");
        assert_eq!(
            read_routes(prefix, &c, Some(&set)).unwrap(),
            Routes::new(0, 100),
            "{matches}"
        );
        // Back to the primary: the by-* annotations go, the weight reads 0 again.
        let reset = routed_annotations(prefix, &c, Some(&set), 0);
        assert_eq!(reset, initial, "{matches}");
        assert_eq!(
            read_routes(prefix, &c, Some(&reset)).unwrap(),
            Routes::INITIAL
        );
        assert!(inexpressible(&c).is_empty(), "{matches}");
    }
}

#[test]
fn guide_ab_routes_on_the_header_or_the_cookie() {
    let c = canary(GUIDE_AB_CANARY);
    assert_eq!(
        ab_selectors(c.spec.analysis.as_ref().unwrap().matches()),
        AbSelectors {
            cookie: Some("canary".into()),
            header: Some("x-canary".into()),
            header_value: Some("insider".into()),
            header_pattern: None,
        }
    );
    let live = initial_annotations(DEFAULT_ANNOTATIONS_PREFIX, None);
    assert_eq!(
        routed_annotations(DEFAULT_ANNOTATIONS_PREFIX, &c, Some(&live), 100),
        with_flux(&[
            ("nginx.ingress.kubernetes.io/canary", "true"),
            ("nginx.ingress.kubernetes.io/canary-weight", "0"),
            ("nginx.ingress.kubernetes.io/canary-by-header", "x-canary"),
            (
                "nginx.ingress.kubernetes.io/canary-by-header-value",
                "insider"
            ),
            ("nginx.ingress.kubernetes.io/canary-by-cookie", "canary"),
        ])
    );
}

#[test]
fn read_routes_rules() {
    let prefix = DEFAULT_ANNOTATIONS_PREFIX;
    let plain = canary(FLAGGER_CANARY);
    let ab = with_matches(FLAGGER_CANARY, "[{headers: {x-user-type: {exact: test}}}]");
    let by_header = map(&[
        ("nginx.ingress.kubernetes.io/canary-weight", "20"),
        (
            "nginx.ingress.kubernetes.io/canary-by-header",
            "x-user-type",
        ),
    ]);
    // The by-header annotation only counts for an A/B canary.
    assert_eq!(
        read_routes(prefix, &ab, Some(&by_header)).unwrap(),
        Routes::new(0, 100)
    );
    assert_eq!(
        read_routes(prefix, &plain, Some(&by_header)).unwrap(),
        Routes::new(80, 20)
    );
    // Another prefix's annotations do not count.
    assert_eq!(
        read_routes("other.example.com", &plain, Some(&by_header)).unwrap(),
        Routes::INITIAL
    );
    assert_eq!(read_routes(prefix, &plain, None).unwrap(), Routes::INITIAL);
    let bad = map(&[("nginx.ingress.kubernetes.io/canary-weight", "ten")]);
    assert_eq!(
        read_routes(prefix, &plain, Some(&bad))
            .unwrap_err()
            .to_string(),
        "failed to convert ten to int: invalid digit found in string"
    );
}

#[test]
fn reconcile_rewrites_only_a_different_spec() {
    let c = canary(FLAGGER_CANARY);
    let desired = canary_ingress_spec(&c, &ingress(FLAGGER_INGRESS)).unwrap();
    assert!(!spec_needs_update(Some(&desired), &desired));
    // Empty lists are absent ones.
    let mut empty_tls = desired.clone();
    empty_tls.tls = Some(vec![]);
    assert!(!spec_needs_update(Some(&empty_tls), &desired));
    // The user changed a host: the copy follows.
    let mut user = ingress(FLAGGER_INGRESS);
    user.spec.as_mut().unwrap().rules.as_mut().unwrap()[0].host = Some("new.example.com".into());
    let moved = canary_ingress_spec(&c, &user).unwrap();
    assert!(spec_needs_update(Some(&desired), &moved));
    assert!(spec_needs_update(None, &desired));
}

fn fields(problems: &[Inexpressible]) -> Vec<&str> {
    problems.iter().map(|p| p.field.as_str()).collect()
}

#[test]
fn inexpressible_ab_matches() {
    let cases: [(&str, &[&str]); 11] = [
        ("[{headers: {x-canary: {exact: insider}}}]", &[]),
        ("[{headers: {x-canary: {regex: '^ins.*'}}}]", &[]),
        (
            "[{headers: {x-canary: {exact: a}}}, {headers: {cookie: {exact: canary}}}]",
            &[],
        ),
        (
            "[{headers: {x-canary: {prefix: ins}}}]",
            &["spec.analysis.match[0].headers.x-canary"],
        ),
        (
            "[{headers: {cookie: {regex: 'canary=.*'}}}]",
            &["spec.analysis.match[0].headers.cookie"],
        ),
        (
            "[{headers: {x-a: {exact: a}, x-b: {exact: b}}}]",
            &["spec.analysis.match[0].headers.x-b"],
        ),
        (
            "[{headers: {cookie: {exact: a}}}, {headers: {cookie: {exact: b}}}]",
            &["spec.analysis.match[1].headers.cookie"],
        ),
        (
            "[{headers: {x-canary: {exact: a}, cookie: {exact: canary}}}]",
            &["spec.analysis.match[0].headers.cookie"],
        ),
        (
            "[{uri: {prefix: /api}, headers: {x-a: {exact: a}}}]",
            &["spec.analysis.match[0].uri"],
        ),
        (
            "[{method: {exact: GET}}]",
            &["spec.analysis.match[0].method", "spec.analysis.match[0]"],
        ),
        (
            "[{headers: {x-a: {exact: a}}, queryParams: {v: {exact: '1'}}, withoutHeaders: {x: {exact: y}}}]",
            &[
                "spec.analysis.match[0].queryParams",
                "spec.analysis.match[0].withoutHeaders",
            ],
        ),
    ];
    for (matches, want) in cases {
        let c = with_matches(FLAGGER_CANARY, matches);
        let problems = inexpressible(&c);
        assert_eq!(fields(&problems), want, "{matches}: {problems:#?}");
        for p in &problems {
            assert!(p.problem.starts_with("provider \"nginx\" "), "{p:?}");
        }
    }
    let together = with_matches(
        FLAGGER_CANARY,
        "[{headers: {x-canary: {exact: a}, cookie: {exact: canary}}}]",
    );
    assert_eq!(
        inexpressible(&together),
        vec![Inexpressible {
            field: "spec.analysis.match[0].headers.cookie".into(),
            problem: "provider \"nginx\" cannot require a header and a cookie together: either \
                      one sends a request to the canary"
                .into(),
            fix: "put the cookie in a match entry of its own (match entries are alternatives)"
                .into(),
        }]
    );
}

#[test]
fn inexpressible_mirror_and_session_affinity_and_runtime_refusal() {
    let mut c = canary(FLAGGER_CANARY);
    let analysis = c.spec.analysis.as_mut().unwrap();
    analysis.mirror = Some(true);
    analysis.session_affinity = serde_saphyr::from_str("{cookieName: flagger-cookie}").unwrap();
    assert_eq!(
        fields(&inexpressible(&c)),
        ["spec.analysis.mirror", "spec.analysis.sessionAffinity"]
    );
    assert_eq!(
        refuse_inexpressible(&c).unwrap_err().to_string(),
        "canary nginx.default cannot be routed by a canary Ingress: spec.analysis.mirror: \
         provider \"nginx\" does not mirror traffic; fix: remove mirror, or use istio or a \
         Gateway API provider; spec.analysis.sessionAffinity: provider \"nginx\" has no \
         session affinity for canaries; fix: remove sessionAffinity, or use istio or a Gateway \
         API provider"
    );
    assert!(refuse_inexpressible(&canary(FLAGGER_CANARY)).is_ok());
}

#[test]
fn ignored_service_fields() {
    let mut c = canary(FLAGGER_CANARY);
    c.spec.service = serde_saphyr::from_str(
        "{port: 80, timeout: 15s, retries: {attempts: 3}, match: [{uri: {prefix: /api}}], \
         headers: {request: {set: {x: y}}}}",
    )
    .unwrap();
    assert_eq!(
        fields(&ignored_fields(&c)),
        [
            "spec.service.match",
            "spec.service.timeout",
            "spec.service.retries",
            "spec.service.headers",
        ]
    );
    assert!(inexpressible(&c).is_empty());
}
