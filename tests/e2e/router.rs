//! Serin's routers against the real API server: the Services of §4.1 and the HTTPRoutes of
//! §4.2 are accepted by the real schemas (core Service, Gateway API v1.4 HTTPRoute at v1 and
//! v1beta1), weights round-trip, the parent-Accepted check reads a real status subresource,
//! and the real garbage collector deletes what a deleted Canary owned.
//!
//! No Gateway controller runs here, so the test writes the HTTPRoute status itself, as a
//! controller would.

use std::collections::BTreeMap;
use std::time::Duration;

use gateway_api::httproutes::HttpRoute;
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Api;
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;
use serin::api::{Canary, CanaryStatus};
use serin::router::gateway_api::{GatewayApiVersion, HttpRouteObject};
use serin::router::{
    FLUX_RECONCILE_ANNOTATION, GatewayApiRouter, KubernetesRouter, Router, RouterError, Routes,
    ServiceSelector,
};

use crate::TestResult;
use crate::support::{Context, TestCtx, eventually, install_flagger_crds};

/// Creates the Canary of `yaml` in the test namespace and returns it as stored (with its uid).
async fn create_canary(ctx: &TestCtx, yaml: &str) -> Result<Canary, libtest_mimic::Failed> {
    let canary: Canary = serde_saphyr::from_str(yaml).context("parse Canary YAML")?;
    let api = ctx.api::<Canary>();
    // A freshly established CRD can take a moment to reach every API server handler.
    eventually(
        "the Canary to be created",
        Duration::from_secs(30),
        || async {
            match api.create(&PostParams::default(), &canary).await {
                Ok(created) => Ok(Ok(created)),
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(Err(s.message)),
                Err(e) => Err(format!("create Canary: {e}").into()),
            }
        },
    )
    .await
}

fn weights(route: &HttpRoute) -> Vec<Vec<(String, Option<i32>)>> {
    route
        .spec
        .rules
        .iter()
        .flatten()
        .map(|r| {
            r.backend_refs
                .iter()
                .flatten()
                .map(|b| (b.name.clone(), b.weight))
                .collect()
        })
        .collect()
}

fn pair(primary: i32, canary: i32, apex: &str) -> Vec<(String, Option<i32>)> {
    vec![
        (format!("{apex}-primary"), Some(primary)),
        (format!("{apex}-canary"), Some(canary)),
    ]
}

/// Writes the route status as a Gateway controller would: one parent, `Accepted`.
async fn set_accepted(
    routes: &Api<HttpRoute>,
    name: &str,
    status: &str,
    observed_generation: i64,
) -> TestResult {
    let body = json!({ "status": { "parents": [{
        "controllerName": "example.io/gateway-controller",
        "parentRef": {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "name": "gateway",
            "namespace": "istio-ingress",
        },
        "conditions": [{
            "type": "Accepted",
            "status": status,
            "reason": if status == "True" { "Accepted" } else { "NotAllowedByListeners" },
            "message": "set by the e2e test",
            "observedGeneration": observed_generation,
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }],
    }]}});
    routes
        .patch_status(name, &PatchParams::default(), &Patch::Merge(body))
        .await
        .context("patch HTTPRoute status")?;
    Ok(())
}

fn generation(route: &HttpRoute) -> i64 {
    route.metadata.generation.unwrap_or_default()
}

const PODINFO: &str = r#"
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
spec:
  provider: gatewayapi:v1
  targetRef: { apiVersion: apps/v1, kind: Deployment, name: podinfo }
  service:
    port: 9898
    targetPort: http
    hosts: [www.example.com]
    gatewayRefs: [{ name: gateway, namespace: istio-ingress }]
    apex:
      labels: { team: shop }
      annotations: { owner: shop }
  analysis: { interval: 1m, threshold: 5, maxWeight: 50, stepWeight: 10 }
"#;

/// Services (including the takeover of a user's apex Service), the v1 HTTPRoute through
/// reconcile / set_routes / get_routes, and garbage collection with the Canary.
pub async fn services_and_httproute() -> TestResult {
    let ctx = TestCtx::new("router").await?;
    install_flagger_crds(&ctx.client).await?;
    let canary = create_canary(&ctx, PODINFO).await?;
    let uid = canary.metadata.uid.clone().unwrap_or_default();
    let ns = ctx.namespace.clone();

    // A Service the user made under the apex name: Serin takes it over like Flagger.
    let services = ctx.api::<Service>();
    let user_apex = Service {
        metadata: ObjectMeta {
            name: Some("podinfo".into()),
            labels: Some([("owner".to_string(), "me".to_string())].into()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            selector: Some([("app".to_string(), "podinfo".to_string())].into()),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: 80,
                target_port: Some(IntOrString::Int(8080)),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    };
    services
        .create(&PostParams::default(), &user_apex)
        .await
        .context("create the user's apex Service")?;

    let kubernetes = KubernetesRouter::new(ctx.client.clone());
    let selector = ServiceSelector {
        label: "app".into(),
        value: "podinfo".into(),
        ports: [("tcp-podinfod-1".to_string(), 9797)].into(),
    };
    kubernetes
        .initialize(&canary, &selector)
        .await
        .context("initialize Services")?;
    kubernetes
        .reconcile(&canary, &selector)
        .await
        .context("reconcile the apex Service")?;

    let want_ports = vec![
        (
            Some("http".to_string()),
            9898,
            Some(IntOrString::String("http".into())),
        ),
        (
            Some("tcp-podinfod-1".to_string()),
            9797,
            Some(IntOrString::Int(9797)),
        ),
    ];
    let ports_of = |s: &Service| -> Vec<(Option<String>, i32, Option<IntOrString>)> {
        let mut ports: Vec<_> = s
            .spec
            .iter()
            .flat_map(|s| s.ports.iter().flatten())
            .map(|p| (p.name.clone(), p.port, p.target_port.clone()))
            .collect();
        ports.sort_by_key(|p| -p.1);
        ports
    };
    for (name, pods) in [
        ("podinfo-primary", "podinfo-primary"),
        ("podinfo-canary", "podinfo"),
    ] {
        let svc = services.get(name).await.context(format!("get {name}"))?;
        let spec = svc.spec.clone().unwrap_or_default();
        let selector: BTreeMap<String, String> = [("app".to_string(), pods.to_string())].into();
        if spec.selector.as_ref() != Some(&selector) || spec.type_.as_deref() != Some("ClusterIP") {
            return Err(
                format!("{name}: selector {:?} type {:?}", spec.selector, spec.type_).into(),
            );
        }
        if ports_of(&svc) != want_ports {
            return Err(format!("{name}: ports {:?}", ports_of(&svc)).into());
        }
        let owner_uids: Vec<&str> = svc
            .metadata
            .owner_references
            .iter()
            .flatten()
            .filter(|o| o.kind == "Canary" && o.controller == Some(true))
            .map(|o| o.uid.as_str())
            .collect();
        if owner_uids != [uid.as_str()] {
            return Err(format!("{name}: owners {owner_uids:?}, want the Canary {uid}").into());
        }
        let annotations = svc.metadata.annotations.clone().unwrap_or_default();
        let labels = svc.metadata.labels.clone().unwrap_or_default();
        if annotations
            .get(FLUX_RECONCILE_ANNOTATION)
            .map(String::as_str)
            != Some("disabled")
            || labels.get("app").map(String::as_str) != Some(name)
        {
            return Err(format!("{name}: labels {labels:?} annotations {annotations:?}").into());
        }
    }
    let apex = services.get("podinfo").await.context("get apex")?;
    let apex_spec = apex.spec.clone().unwrap_or_default();
    let primary_pods: BTreeMap<String, String> =
        [("app".to_string(), "podinfo-primary".to_string())].into();
    if apex_spec.selector.as_ref() != Some(&primary_pods) || ports_of(&apex) != want_ports {
        return Err(format!(
            "apex not taken over: selector {:?} ports {:?}",
            apex_spec.selector,
            ports_of(&apex)
        )
        .into());
    }
    if apex.metadata.labels != user_apex.metadata.labels || apex.metadata.owner_references.is_some()
    {
        return Err(format!(
            "the user's apex metadata changed: labels {:?} owners {:?}",
            apex.metadata.labels, apex.metadata.owner_references
        )
        .into());
    }
    // Reconciling again changes nothing.
    let before = services
        .get("podinfo-primary")
        .await
        .context("get primary")?;
    kubernetes
        .initialize(&canary, &selector)
        .await
        .context("initialize again")?;
    kubernetes
        .reconcile(&canary, &selector)
        .await
        .context("reconcile again")?;
    let after = services
        .get("podinfo-primary")
        .await
        .context("get primary")?;
    let apex_after = services.get("podinfo").await.context("get apex")?;
    if before.metadata.resource_version != after.metadata.resource_version
        || apex.metadata.resource_version != apex_after.metadata.resource_version
    {
        return Err("a second reconcile rewrote unchanged Services".into());
    }

    // The HTTPRoute: created at 100/0 and accepted by the real v1 schema.
    let gateway = GatewayApiRouter::new(ctx.client.clone(), GatewayApiVersion::V1);
    gateway
        .reconcile(&canary)
        .await
        .context("reconcile HTTPRoute")?;
    let routes = ctx.api::<HttpRoute>();
    let route = routes.get("podinfo").await.context("get HTTPRoute")?;
    if weights(&route) != [pair(100, 0, "podinfo")] {
        return Err(format!("initial weights {:?}", weights(&route)).into());
    }
    let parents: Vec<_> = route
        .spec
        .parent_refs
        .iter()
        .flatten()
        .map(|p| (p.name.as_str(), p.namespace.as_deref()))
        .collect();
    if parents != [("gateway", Some("istio-ingress"))]
        || route.spec.hostnames != Some(vec!["www.example.com".to_string()])
    {
        return Err(format!(
            "parentRefs {parents:?} hostnames {:?}",
            route.spec.hostnames
        )
        .into());
    }
    let labels = route.metadata.labels.clone().unwrap_or_default();
    let annotations = route.metadata.annotations.clone().unwrap_or_default();
    if labels.get("team").map(String::as_str) != Some("shop")
        || annotations.get("owner").map(String::as_str) != Some("shop")
        || annotations
            .get(FLUX_RECONCILE_ANNOTATION)
            .map(String::as_str)
            != Some("disabled")
    {
        return Err(format!("route labels {labels:?} annotations {annotations:?}").into());
    }
    if !route
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.uid == uid && o.controller == Some(true))
    {
        return Err("the HTTPRoute is not owned by the Canary".into());
    }

    // No parent status yet: Flagger does not wait for a status nobody writes.
    let got = gateway.get_routes(&canary).await.context("get_routes")?;
    if got != Routes::INITIAL {
        return Err(format!("get_routes without status: {got:?}").into());
    }
    let g1 = generation(&route);
    set_accepted(&routes, "podinfo", "True", g1).await?;
    let got = gateway.get_routes(&canary).await.context("get_routes")?;
    if got != Routes::INITIAL {
        return Err(format!("get_routes after Accepted: {got:?}").into());
    }

    let mut status = CanaryStatus::default();
    gateway
        .set_routes(&canary, Routes::new(90, 10), &mut status)
        .await
        .context("set_routes 90/10")?;
    let route = routes.get("podinfo").await.context("get HTTPRoute")?;
    let g2 = generation(&route);
    if weights(&route) != [pair(90, 10, "podinfo")] || g2 <= g1 {
        return Err(format!(
            "after set_routes: weights {:?}, generation {g1} → {g2}",
            weights(&route)
        )
        .into());
    }
    // The Gateway has only accepted the previous generation: the tick must wait.
    let expect_not_ready = |result: Result<Routes, RouterError>, detail: String| {
        let want = format!("HTTPRoute podinfo.{ns} parent gateway is not ready ({detail})");
        match result {
            Err(err) if err.to_string() == want => Ok(()),
            other => Err(format!("want {want:?}, got {other:?}")),
        }
    };
    expect_not_ready(
        gateway.get_routes(&canary).await,
        format!("status: True, observed generation: {g1}, current generation: {g2}"),
    )?;
    set_accepted(&routes, "podinfo", "False", g2).await?;
    expect_not_ready(
        gateway.get_routes(&canary).await,
        format!("status: False, observed generation: {g2}, current generation: {g2}"),
    )?;
    set_accepted(&routes, "podinfo", "True", g2).await?;
    let got = gateway.get_routes(&canary).await.context("get_routes")?;
    if got != Routes::new(90, 10) {
        return Err(format!("get_routes after the Gateway caught up: {got:?}").into());
    }

    // Reconcile must not reset the weights of a route that is otherwise as desired.
    gateway
        .reconcile(&canary)
        .await
        .context("reconcile again")?;
    let route = routes.get("podinfo").await.context("get HTTPRoute")?;
    if weights(&route) != [pair(90, 10, "podinfo")] || generation(&route) != g2 {
        return Err(format!(
            "reconcile rewrote the route: weights {:?} generation {}",
            weights(&route),
            generation(&route)
        )
        .into());
    }

    // Deleting the Canary lets the garbage collector delete what it owns; the user's apex
    // Service stays.
    ctx.api::<Canary>()
        .delete("podinfo", &DeleteParams::background())
        .await
        .context("delete the Canary")?;
    eventually(
        "the owned Services and HTTPRoute to be garbage collected",
        Duration::from_secs(120),
        || async {
            let mut left = Vec::new();
            for name in ["podinfo-primary", "podinfo-canary"] {
                if services
                    .get_opt(name)
                    .await
                    .context("get Service")?
                    .is_some()
                {
                    left.push(format!("Service {name}"));
                }
            }
            if routes
                .get_opt("podinfo")
                .await
                .context("get HTTPRoute")?
                .is_some()
            {
                left.push("HTTPRoute podinfo".into());
            }
            Ok(if left.is_empty() { Ok(()) } else { Err(left) })
        },
    )
    .await?;
    if services
        .get_opt("podinfo")
        .await
        .context("get apex")?
        .is_none()
    {
        return Err("the user's apex Service was deleted with the Canary".into());
    }
    ctx.finish().await;
    Ok(())
}

const AB: &str = r#"
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: abtest
spec:
  provider: gatewayapi:v1
  targetRef: { apiVersion: apps/v1, kind: Deployment, name: abtest }
  service:
    port: 9898
    hosts: [ab.example.com]
    gatewayRefs: [{ name: gateway, namespace: istio-ingress }]
    match: [{ uri: { prefix: /api } }]
    timeout: 30s
    backendTimeout: 10s
    headers:
      request: { add: { x-b: "2", x-a: "1" }, set: { x-api-version: v1 }, remove: [x-debug] }
      response: { set: { cache-control: no-cache }, remove: [x-powered-by] }
    rewrite: { uri: /v2/api, authority: api.example.com }
    mirror: [{ backendRef: { name: shadow, port: 8080 } }]
    corsPolicy:
      allowOrigin: [https://foo.example]
      allowMethods: [GET, POST]
      allowHeaders: [Content-Type]
      allowCredentials: true
  analysis:
    interval: 1m
    threshold: 2
    iterations: 10
    match:
      - headers: { user-agent: { regex: ".*Firefox.*" } }
      - headers: { cookie: { regex: "^(.*?;)?(type=insider)(;.*)?$" } }
"#;

const STICKY: &str = r#"
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: sticky
spec:
  provider: gatewayapi:v1
  targetRef: { apiVersion: apps/v1, kind: Deployment, name: sticky }
  service:
    port: 9898
    hosts: [sticky.example.com]
    gatewayRefs: [{ name: gateway, namespace: istio-ingress }]
    headers:
      response: { add: { x-served-by: serin } }
  analysis:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    sessionAffinity:
      cookieName: flagger-cookie
      primaryCookieName: flagger-primary
      maxAge: 21600
      domain: example.com
      httpOnly: true
      partitioned: true
      path: /
      sameSite: Lax
      secure: true
"#;

const MIRROR: &str = r#"
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: shadowed
spec:
  provider: gatewayapi:v1beta1
  targetRef: { apiVersion: apps/v1, kind: Deployment, name: shadowed }
  service:
    port: 9898
    hosts: [beta.example.com]
    gatewayRefs: [{ name: gateway, namespace: istio-ingress }]
  analysis: { interval: 1m, threshold: 5, iterations: 10, mirror: true }
"#;

/// Reconciles, then checks that a second reconcile leaves the stored route alone (the update
/// rule must see through the API server's defaults).
async fn reconcile_is_stable(
    router: &GatewayApiRouter,
    routes: &Api<HttpRoute>,
    canary: &Canary,
    name: &str,
) -> TestResult {
    let before = routes.get(name).await.context("get HTTPRoute")?;
    router.reconcile(canary).await.context("reconcile again")?;
    let after = routes.get(name).await.context("get HTTPRoute")?;
    if generation(&before) != generation(&after) || weights(&before) != weights(&after) {
        return Err(format!(
            "{name}: reconcile rewrote an up-to-date route: generation {} → {}, weights {:?} → {:?}",
            generation(&before),
            generation(&after),
            weights(&before),
            weights(&after)
        )
        .into());
    }
    Ok(())
}

/// A/B testing with every service option, session affinity through a whole run, and
/// mirroring on a v1beta1 route: the real schema accepts each shape Serin writes.
pub async fn httproute_shapes() -> TestResult {
    let ctx = TestCtx::new("router-shapes").await?;
    install_flagger_crds(&ctx.client).await?;
    let routes = ctx.api::<HttpRoute>();
    let v1 = GatewayApiRouter::new(ctx.client.clone(), GatewayApiVersion::V1);

    // A/B: the match rule and the primary-only fallback, with filters, CORS and timeouts.
    let ab = create_canary(&ctx, AB).await?;
    v1.reconcile(&ab).await.context("reconcile A/B")?;
    let mut status = CanaryStatus::default();
    v1.set_routes(&ab, Routes::new(0, 100), &mut status)
        .await
        .context("set_routes A/B 0/100")?;
    let route = routes.get("abtest").await.context("get A/B route")?;
    let want = vec![
        pair(0, 100, "abtest"),
        vec![("abtest-primary".to_string(), Some(100))],
    ];
    if weights(&route) != want {
        return Err(format!("A/B weights {:?}", weights(&route)).into());
    }
    let rules = route.spec.rules.clone().unwrap_or_default();
    let first_matches = rules[0].matches.clone().unwrap_or_default();
    let filter_types: Vec<String> = rules[0]
        .filters
        .iter()
        .flatten()
        .map(|f| format!("{:?}", f.r#type))
        .collect();
    let timeouts = rules[0].timeouts.clone().unwrap_or_default();
    if first_matches.len() != 2
        || filter_types
            != [
                "RequestHeaderModifier",
                "ResponseHeaderModifier",
                "UrlRewrite",
                "RequestMirror",
                "Cors",
            ]
        || timeouts.request.as_deref() != Some("30s")
        || timeouts.backend_request.as_deref() != Some("10s")
    {
        return Err(format!(
            "A/B rule: matches {first_matches:?} filters {filter_types:?} timeouts {timeouts:?}"
        )
        .into());
    }
    let got = v1.get_routes(&ab).await.context("get_routes A/B")?;
    if got != Routes::new(0, 100) {
        return Err(format!("A/B get_routes {got:?}").into());
    }
    reconcile_is_stable(&v1, &routes, &ab, "abtest").await?;

    // Session affinity: sticky canary + sticky primary + weighted rule while the canary takes
    // traffic; then the previous cookie is expired.
    let sticky = create_canary(&ctx, STICKY).await?;
    v1.reconcile(&sticky).await.context("reconcile sticky")?;
    let mut status = CanaryStatus::default();
    v1.set_routes(&sticky, Routes::new(90, 10), &mut status)
        .await
        .context("set_routes sticky 90/10")?;
    let canary_cookie = status.session_affinity_cookie.clone().unwrap_or_default();
    let primary_cookie = status
        .primary_session_affinity_cookie
        .clone()
        .unwrap_or_default();
    let cookie_ok = |cookie: &str, name: &str| {
        cookie
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('='))
            .is_some_and(|v| v.len() == 10 && v.bytes().all(|b| b.is_ascii_alphabetic()))
    };
    if !cookie_ok(&canary_cookie, "flagger-cookie")
        || !cookie_ok(&primary_cookie, "flagger-primary")
    {
        return Err(format!("cookies {canary_cookie:?} / {primary_cookie:?}").into());
    }
    let route = routes.get("sticky").await.context("get sticky route")?;
    let want = vec![
        pair(0, 100, "sticky"),
        pair(100, 0, "sticky"),
        pair(90, 10, "sticky"),
    ];
    if weights(&route) != want {
        return Err(format!("sticky weights {:?}", weights(&route)).into());
    }
    let set_cookies: Vec<String> = route
        .spec
        .rules
        .iter()
        .flatten()
        .flat_map(|r| {
            r.backend_refs
                .iter()
                .flatten()
                .flat_map(|b| b.filters.iter().flatten())
        })
        .flat_map(|f| {
            f.response_header_modifier
                .iter()
                .flat_map(|m| m.add.iter().flatten())
        })
        .map(|h| h.value.clone())
        .collect();
    let attrs = "Domain=example.com; HttpOnly; Partitioned; Path=/; SameSite=Lax; Secure";
    let want_cookies = vec![
        format!("{primary_cookie}; Max-Age=60; {attrs}"),
        format!("{canary_cookie}; Max-Age=21600; {attrs}"),
    ];
    if set_cookies != want_cookies {
        return Err(format!("Set-Cookie headers {set_cookies:?}, want {want_cookies:?}").into());
    }
    let got = v1.get_routes(&sticky).await.context("get_routes sticky")?;
    if got != Routes::new(90, 10) {
        return Err(format!("sticky get_routes {got:?}").into());
    }
    reconcile_is_stable(&v1, &routes, &sticky, "sticky").await?;
    // Back to the primary: the cookie becomes the previous one and is expired (joined to the
    // rule's own ResponseHeaderModifier, which Gateway API allows once per rule).
    v1.set_routes(&sticky, Routes::INITIAL, &mut status)
        .await
        .context("set_routes sticky 100/0")?;
    if status.session_affinity_cookie.is_some()
        || status.previous_session_affinity_cookie.as_deref() != Some(canary_cookie.as_str())
    {
        return Err(format!("cookies after the run: {status:?}").into());
    }
    let route = routes.get("sticky").await.context("get sticky route")?;
    if weights(&route) != [pair(100, 0, "sticky"), pair(100, 0, "sticky")] {
        return Err(format!("sticky weights at 0 {:?}", weights(&route)).into());
    }
    let expiry = route.spec.rules.iter().flatten().next().and_then(|r| {
        r.filters
            .iter()
            .flatten()
            .find_map(|f| f.response_header_modifier.clone())
    });
    let added: Vec<String> = expiry
        .iter()
        .flat_map(|m| m.add.iter().flatten())
        .map(|h| format!("{}: {}", h.name, h.value))
        .collect();
    let want_added = vec![
        "x-served-by: serin".to_string(),
        format!("Set-Cookie: {canary_cookie}; Max-Age=-1; {attrs}"),
    ];
    if added != want_added {
        return Err(format!("expiry headers {added:?}, want {want_added:?}").into());
    }

    // gatewayapi:v1beta1: written and read through the v1beta1 endpoint, with B/G mirroring.
    let shadowed = create_canary(&ctx, MIRROR).await?;
    let beta = GatewayApiRouter::new(ctx.client.clone(), GatewayApiVersion::V1beta1);
    beta.reconcile(&shadowed)
        .await
        .context("reconcile v1beta1")?;
    let mirrored = Routes {
        primary: 100,
        canary: 0,
        mirrored: true,
    };
    let mut status = CanaryStatus::default();
    beta.set_routes(&shadowed, mirrored, &mut status)
        .await
        .context("set_routes v1beta1 mirrored")?;
    let got = beta
        .get_routes(&shadowed)
        .await
        .context("get_routes v1beta1")?;
    if got != mirrored {
        return Err(format!("v1beta1 get_routes {got:?}, want {mirrored:?}").into());
    }
    let beta_api: Api<HttpRouteObject> = Api::namespaced_with(
        ctx.client.clone(),
        &ctx.namespace,
        &GatewayApiVersion::V1beta1,
    );
    let stored = beta_api
        .get("shadowed")
        .await
        .context("get v1beta1 route")?;
    let managed_by_serin_at: Vec<String> = stored
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| m.manager.as_deref() == Some("serin"))
        .filter_map(|m| m.api_version.clone())
        .collect();
    if stored.api_version != "gateway.networking.k8s.io/v1beta1"
        || managed_by_serin_at != ["gateway.networking.k8s.io/v1beta1"]
    {
        return Err(format!(
            "v1beta1 route: apiVersion {} written by serin at {managed_by_serin_at:?}",
            stored.api_version
        )
        .into());
    }
    beta.set_routes(&shadowed, Routes::new(0, 100), &mut status)
        .await
        .context("set_routes v1beta1 0/100")?;
    let got = beta
        .get_routes(&shadowed)
        .await
        .context("get_routes v1beta1")?;
    if got != Routes::new(0, 100) {
        return Err(format!("v1beta1 get_routes {got:?}").into());
    }

    ctx.finish().await;
    Ok(())
}
