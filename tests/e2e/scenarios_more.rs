//! More rollout scenarios of the engine issue, each on a full rig (Serin, the mesh simulator,
//! real Prometheus, a webhook server the test controls): blue/green with the `kubernetes`
//! provider, Gateway API session affinity, blue/green with traffic mirroring, and bad specs at
//! run time next to a healthy canary in the same namespace.

use std::time::Duration;

use gateway_api::httproutes::{HttpRoute, HttpRouteRules, HttpRouteRulesFiltersType};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::ListParams;
use serde_json::json;
use serin::api::{CanaryPhase, CanaryStatus};

use crate::TestResult;
use crate::support::rig::{EventRecord, Rig};
use crate::support::{Context, eventually};

const MINUTES: Duration = Duration::from_secs(180);

/// A seed manifest fitted to the rig: the test's namespace, no HPA, no load-tester webhooks
/// (the simulator makes the traffic), `interval` instead of the seed's 1m schedule.
fn fit(seed: &str, ns: &str, interval: &str) -> String {
    let text = seed
        // The analysis interval: four spaces deep (the metrics' intervals are six).
        .replacen(
            "\n    interval: 1m\n",
            &format!("\n    interval: {interval}\n"),
            1,
        )
        .replace("namespace: flagger-system", &format!("namespace: {ns}"))
        .replace("namespace: test", &format!("namespace: {ns}"))
        .replace("  autoscalerRef:\n    apiVersion: autoscaling/v2\n    kind: HorizontalPodAutoscaler\n    name: podinfo\n", "");
    let end = [
        text.find("    # testing (optional)"),
        text.find("    webhooks:"),
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(text.len());
    text[..end].to_string()
}

/// The seeds leave the provider to Flagger's flag; Serin's rig defaults to istio.
fn on_gateway_api(seed: &str) -> String {
    if seed.contains("  provider: ") {
        seed.to_string()
    } else {
        seed.replacen("spec:\n", "spec:\n  provider: gatewayapi:v1\n", 1)
    }
}

/// Fails unless `expected` appear in `seen` in this order (other events may come between).
fn in_order(seen: &[String], expected: &[String]) -> TestResult {
    let mut at = 0;
    for want in expected {
        match seen[at..].iter().position(|e| e == want) {
            Some(i) => at += i + 1,
            None => {
                return Err(format!("missing or out of order: {want:?}\nevents: {seen:#?}").into());
            }
        }
    }
    Ok(())
}

async fn route(rig: &Rig, name: &str) -> Result<HttpRoute, libtest_mimic::Failed> {
    rig.ctx
        .api::<HttpRoute>()
        .get(name)
        .await
        .context(format!("get HTTPRoute {name}"))
}

fn rules(route: &HttpRoute) -> Vec<HttpRouteRules> {
    route.spec.rules.clone().unwrap_or_default()
}

fn weights(rule: &HttpRouteRules) -> Vec<(String, i32)> {
    rule.backend_refs
        .iter()
        .flatten()
        .map(|b| (b.name.clone(), b.weight.unwrap_or(1)))
        .collect()
}

fn split(primary: i32, canary: i32) -> Vec<(String, i32)> {
    vec![
        ("podinfo-primary".to_string(), primary),
        ("podinfo-canary".to_string(), canary),
    ]
}

async fn status(rig: &Rig, name: &str) -> Result<CanaryStatus, libtest_mimic::Failed> {
    Ok(rig.canary(name).await?.status.unwrap_or_default())
}

async fn expect_primary_image(rig: &Rig, primary: &str, image: &str) -> TestResult {
    let seen = rig.image_of(primary).await?;
    if seen.as_deref() != Some(image) {
        return Err(format!("{primary} runs {seen:?}, want {image}").into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 1. Blue/green with `provider: kubernetes`
// ---------------------------------------------------------------------------------------------

/// Flagger's `kubernetes` provider: Services only, blue/green by iterations; the analysis is a
/// rollout webhook (there is no mesh, so no traffic to measure).
fn kubernetes_canary(hooks: &str) -> String {
    format!(
        "apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
spec:
  provider: kubernetes
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  progressDeadlineSeconds: 60
  service:
    port: 9898
    targetPort: 9898
  analysis:
    interval: 2s
    threshold: 5
    iterations: 3
    webhooks:
      - name: acceptance
        type: rollout
        url: {hooks}acceptance
"
    )
}

pub async fn kubernetes_provider_blue_green() -> TestResult {
    let rig = Rig::start("more_kubernetes", &[], |_, hooks| kubernetes_canary(hooks)).await?;
    let ns = rig.ctx.namespace.clone();
    rig.wait_phase(CanaryPhase::Initialized, MINUTES).await?;

    // A failing acceptance hook holds the run at its first iteration.
    rig.answer("acceptance", 500);
    rig.set_image("ghcr.io/stefanprodan/podinfo:6.0.1", "0")
        .await?;
    let halt = format!("Halt podinfo.{ns} advancement external check acceptance failed");
    rig.wait_event("the acceptance halt", MINUTES, |e| e.starts_with(&halt))
        .await?;
    let s = status(&rig, "podinfo").await?;
    if s.phase != CanaryPhase::Progressing || s.iterations != 1 || s.failed_checks < 1 {
        return Err(format!(
            "while the hook fails: {:?} iterations {} failed checks {}",
            s.phase, s.iterations, s.failed_checks
        )
        .into());
    }
    rig.answer("acceptance", 200);
    eventually("iteration 2 while Progressing", MINUTES, || async {
        let s = status(&rig, "podinfo").await?;
        Ok(
            if s.phase == CanaryPhase::Progressing && s.iterations >= 2 {
                Ok(())
            } else {
                Err((s.phase, s.iterations))
            },
        )
    })
    .await?;
    rig.wait_phase(CanaryPhase::Succeeded, MINUTES).await?;

    let seen = rig.events().await?;
    in_order(
        &seen,
        &[
            format!("New revision detected! Scaling up podinfo.{ns}"),
            format!("Starting canary analysis for podinfo.{ns}"),
            format!("Advance podinfo.{ns} canary iteration 1/3"),
            format!("Advance podinfo.{ns} canary iteration 2/3"),
            format!("Advance podinfo.{ns} canary iteration 3/3"),
            format!("Copying podinfo.{ns} template spec to podinfo-primary.{ns}"),
            format!("Promotion completed! Scaling down podinfo.{ns}"),
        ],
    )?;
    // No routing object, so no traffic switch to announce.
    if let Some(e) = seen.iter().find(|e| e.starts_with("Routing all traffic")) {
        return Err(format!("the kubernetes provider routed traffic: {e:?}").into());
    }
    expect_primary_image(
        &rig,
        "podinfo-primary",
        "ghcr.io/stefanprodan/podinfo:6.0.1",
    )
    .await?;
    let routes = rig
        .ctx
        .api::<HttpRoute>()
        .list(&ListParams::default())
        .await
        .context("list HTTPRoutes")?;
    if !routes.items.is_empty() {
        let names: Vec<_> = routes
            .items
            .iter()
            .map(|r| r.metadata.name.clone())
            .collect();
        return Err(format!("the kubernetes provider created HTTPRoutes {names:?}").into());
    }
    let services = rig.ctx.api::<Service>();
    for (name, selects) in [
        ("podinfo", "podinfo-primary"),
        ("podinfo-primary", "podinfo-primary"),
        ("podinfo-canary", "podinfo"),
    ] {
        let svc = services
            .get(name)
            .await
            .context(format!("Service {name}"))?;
        let selector = svc.spec.and_then(|s| s.selector).unwrap_or_default();
        if selector.get("app").map(String::as_str) != Some(selects) {
            return Err(format!("Service {name} selects {selector:?}, want app={selects}").into());
        }
    }
    let deployments = rig.ctx.api::<Deployment>();
    eventually("the target to be at zero", MINUTES, || async {
        let d = deployments.get("podinfo").await.context("target")?;
        let replicas = d.spec.and_then(|s| s.replicas);
        Ok(if replicas == Some(0) {
            Ok(())
        } else {
            Err(replicas)
        })
    })
    .await?;
    rig.finish().await;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 2. Session affinity
// ---------------------------------------------------------------------------------------------

const COOKIE_NAME: &str = "flagger-cookie";

/// `Cookie` header matches of a rule as (name, type, value).
fn cookie_matches(rule: &HttpRouteRules) -> Vec<(String, serde_json::Value, String)> {
    rule.matches
        .iter()
        .flatten()
        .flat_map(|m| m.headers.iter().flatten())
        .map(|h| {
            (
                h.name.clone(),
                serde_json::to_value(&h.r#type).unwrap_or_default(),
                h.value.clone(),
            )
        })
        .collect()
}

fn sticky_match(cookie: &str) -> Vec<(String, serde_json::Value, String)> {
    let value = cookie.trim_start_matches(&format!("{COOKIE_NAME}="));
    vec![(
        "Cookie".to_string(),
        json!("RegularExpression"),
        format!(".*{COOKIE_NAME}.*{value}.*"),
    )]
}

/// While the canary takes traffic: `[sticky canary rule, weighted rule]`, the canary backend
/// of the weighted rule issuing the run's cookie for `maxAge`.
fn check_sticky_route(route: &HttpRoute, cookie: &str) -> TestResult {
    let rules = rules(route);
    let shape = || format!("route while progressing: {rules:#?}");
    let [sticky, weighted] = rules.as_slice() else {
        return Err(format!("want two rules; {}", shape()).into());
    };
    if cookie_matches(sticky) != sticky_match(cookie) || weights(sticky) != split(0, 100) {
        return Err(format!("rule 0 is not the sticky canary rule; {}", shape()).into());
    }
    let canary_weight = weights(weighted)
        .iter()
        .find(|(n, _)| n == "podinfo-canary")
        .map_or(0, |(_, w)| *w);
    if weights(weighted) != split(100 - canary_weight, canary_weight) || canary_weight == 0 {
        return Err(format!("rule 1 is not weighted to the canary; {}", shape()).into());
    }
    for backend in weighted.backend_refs.iter().flatten() {
        let filters = serde_json::to_value(&backend.filters).unwrap_or_default();
        let want = if backend.name == "podinfo-canary" {
            json!([{
                "type": "ResponseHeaderModifier",
                "responseHeaderModifier": { "add": [
                    { "name": "Set-Cookie", "value": format!("{cookie}; Max-Age=21600") }
                ] }
            }])
        } else {
            serde_json::Value::Null
        };
        if filters != want {
            return Err(format!(
                "backend {} has filters {filters}, want {want}; {}",
                backend.name,
                shape()
            )
            .into());
        }
    }
    for backend in sticky.backend_refs.iter().flatten() {
        if backend.filters.as_ref().is_some_and(|f| !f.is_empty()) {
            return Err(format!("the sticky rule's backends set cookies; {}", shape()).into());
        }
    }
    Ok(())
}

/// After promotion: `[rule expiring the previous cookie, weighted 100/0]`.
fn check_expiring_route(route: &HttpRoute, previous: &str) -> TestResult {
    let rules = rules(route);
    let shape = || format!("route after promotion: {rules:#?}");
    let [expiring, weighted] = rules.as_slice() else {
        return Err(format!("want two rules; {}", shape()).into());
    };
    let filters = serde_json::to_value(&expiring.filters).unwrap_or_default();
    let want = json!([{
        "type": "ResponseHeaderModifier",
        "responseHeaderModifier": { "add": [
            { "name": "Set-Cookie", "value": format!("{previous}; Max-Age=-1") }
        ] }
    }]);
    if cookie_matches(expiring) != sticky_match(previous)
        || filters != want
        || weights(expiring) != split(100, 0)
    {
        return Err(format!("rule 0 does not expire {previous}; {}", shape()).into());
    }
    let backend_filters = weighted
        .backend_refs
        .iter()
        .flatten()
        .any(|b| b.filters.as_ref().is_some_and(|f| !f.is_empty()));
    if weights(weighted) != split(100, 0) || backend_filters {
        return Err(format!("rule 1 is not all-primary without cookies; {}", shape()).into());
    }
    Ok(())
}

pub async fn session_affinity_sticks_then_expires() -> TestResult {
    let rig = Rig::start("more_affinity", &[], |ns, _| {
        on_gateway_api(&fit(
            include_str!("../../src/api/testdata/gatewayapi-istio-session-affinity.yaml"),
            ns,
            "2s",
        ))
    })
    .await?;
    let ns = rig.ctx.namespace.clone();
    rig.wait_phase(CanaryPhase::Initialized, MINUTES).await?;
    rig.set_image("ghcr.io/stefanprodan/podinfo:6.0.1", "0")
        .await?;

    // Wait until the route sends weighted traffic to the canary and the status holds a cookie.
    let (live, cookie) = eventually("a weighted route and a cookie", MINUTES, || async {
        let live = route(&rig, "podinfo").await?;
        let s = status(&rig, "podinfo").await?;
        let weighted = rules(&live).iter().any(|r| {
            weights(r)
                .iter()
                .any(|(n, w)| n == "podinfo-canary" && (1..100).contains(w))
        });
        Ok(match (&s.session_affinity_cookie, s.phase) {
            (Some(cookie), CanaryPhase::Progressing) if weighted && s.canary_weight > 0 => {
                Ok((live, cookie.clone()))
            }
            _ => Err((
                s.phase,
                s.canary_weight,
                s.session_affinity_cookie,
                weighted,
            )),
        })
    })
    .await?;
    let value = cookie
        .strip_prefix(&format!("{COOKIE_NAME}="))
        .ok_or_else(|| format!("status.sessionAffinityCookie {cookie:?} is not {COOKIE_NAME}=…"))?;
    if value.len() != 10 || !value.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(format!("cookie value {value:?} is not ten letters").into());
    }
    check_sticky_route(&live, &cookie)?;

    rig.wait_phase(CanaryPhase::Succeeded, MINUTES).await?;
    let s = status(&rig, "podinfo").await?;
    if s.session_affinity_cookie.is_some()
        || s.previous_session_affinity_cookie.as_deref() != Some(cookie.as_str())
    {
        return Err(format!(
            "after promotion: sessionAffinityCookie {:?}, previousSessionAffinityCookie {:?}, want none and {cookie:?}",
            s.session_affinity_cookie, s.previous_session_affinity_cookie
        )
        .into());
    }
    check_expiring_route(&route(&rig, "podinfo").await?, &cookie)?;
    in_order(
        &rig.events().await?,
        &[
            format!("Advance podinfo.{ns} canary weight 10"),
            format!("Advance podinfo.{ns} canary weight 50"),
            format!("Copying podinfo.{ns} template spec to podinfo-primary.{ns}"),
            "Routing all traffic to primary".to_string(),
            format!("Promotion completed! Scaling down podinfo.{ns}"),
        ],
    )?;
    expect_primary_image(
        &rig,
        "podinfo-primary",
        "ghcr.io/stefanprodan/podinfo:6.0.1",
    )
    .await?;
    rig.finish().await;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 3. Blue/green with traffic mirroring
// ---------------------------------------------------------------------------------------------

/// The rule's RequestMirror targets as (service, port).
fn mirrors(rule: &HttpRouteRules) -> Vec<(String, Option<i32>)> {
    rule.filters
        .iter()
        .flatten()
        .filter(|f| f.r#type == HttpRouteRulesFiltersType::RequestMirror)
        .filter_map(|f| f.request_mirror.as_ref())
        .map(|m| (m.backend_ref.name.clone(), m.backend_ref.port))
        .collect()
}

pub async fn mirroring_then_switch_then_promote() -> TestResult {
    let rig = Rig::start("more_mirror", &[], |ns, _| {
        // Three seconds: the canary's series start with the mirrored copies and rate() needs
        // two scrapes of them before the builtin checks have values.
        on_gateway_api(&fit(
            include_str!("../../src/api/testdata/gatewayapi-istio-mirroring.yaml"),
            ns,
            "3s",
        ))
        .replace("    iterations: 10\n", "    iterations: 3\n")
    })
    .await?;
    let ns = rig.ctx.namespace.clone();
    rig.wait_phase(CanaryPhase::Initialized, MINUTES).await?;
    rig.set_image("ghcr.io/stefanprodan/podinfo:6.0.1", "0")
        .await?;

    // During the mirrored iterations all traffic stays on the primary and is copied to the
    // canary: one weighted rule, 100/0, with a RequestMirror to <apex>-canary.
    let mirrored = eventually("a mirrored iteration", MINUTES, || async {
        let live = route(&rig, "podinfo").await?;
        let s = status(&rig, "podinfo").await?;
        let mirroring = rules(&live).iter().any(|r| !mirrors(r).is_empty());
        Ok(
            if s.phase == CanaryPhase::Progressing && (1..=3).contains(&s.iterations) && mirroring {
                Ok(live)
            } else {
                Err((s.phase, s.iterations, mirroring))
            },
        )
    })
    .await?;
    let rules_seen = rules(&mirrored);
    match rules_seen.as_slice() {
        [weighted]
            if weights(weighted) == split(100, 0)
                && mirrors(weighted) == [("podinfo-canary".to_string(), Some(9898))] => {}
        _ => return Err(format!("unexpected mirrored route: {rules_seen:#?}").into()),
    }

    rig.wait_phase(CanaryPhase::Succeeded, MINUTES).await?;
    let seen = rig.events().await?;
    in_order(
        &seen,
        &[
            format!("Starting canary analysis for podinfo.{ns}"),
            format!("Advance podinfo.{ns} canary iteration 1/3"),
            format!("Advance podinfo.{ns} canary iteration 2/3"),
            format!("Advance podinfo.{ns} canary iteration 3/3"),
            "Stop traffic mirroring and route all traffic to canary".to_string(),
            format!("Copying podinfo.{ns} template spec to podinfo-primary.{ns}"),
            "Routing all traffic to primary".to_string(),
            format!("Promotion completed! Scaling down podinfo.{ns}"),
        ],
    )?;
    let after = rules(&route(&rig, "podinfo").await?);
    match after.as_slice() {
        [weighted] if weights(weighted) == split(100, 0) && mirrors(weighted).is_empty() => {}
        _ => return Err(format!("unexpected route after promotion: {after:#?}").into()),
    }
    expect_primary_image(
        &rig,
        "podinfo-primary",
        "ghcr.io/stefanprodan/podinfo:6.0.1",
    )
    .await?;
    rig.finish().await;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 4. Bad specs at run time
// ---------------------------------------------------------------------------------------------

/// The guide's canary for target `name`, at `host`, every `interval`.
fn guide_canary(ns: &str, name: &str, host: &str, interval: &str) -> String {
    fit(
        include_str!("../../examples/podinfo/canary.yaml"),
        ns,
        interval,
    )
    .replace(
        "metadata:\n  name: podinfo\n",
        &format!("metadata:\n  name: {name}\n"),
    )
    .replace(
        "    kind: Deployment\n    name: podinfo\n",
        &format!("    kind: Deployment\n    name: {name}\n"),
    )
    .replace("     - www.example.com\n", &format!("     - {host}\n"))
}

/// A Gateway API canary of target `name` with one builtin check; `extra` goes into the spec.
fn builtin_canary(name: &str, host: &str, extra: &str) -> String {
    format!(
        "apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: {name}
spec:
  provider: gatewayapi:v1
{extra}  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {name}
  progressDeadlineSeconds: 60
  service:
    port: 9898
    targetPort: 9898
    hosts:
      - {host}
    gatewayRefs:
      - name: gateway
        namespace: istio-ingress
  analysis:
    interval: 1s
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    metrics:
      - name: request-success-rate
        thresholdRange:
          min: 99
        interval: 1m
"
    )
}

fn of<'a>(records: &'a [EventRecord], canary: &str) -> Vec<&'a EventRecord> {
    records.iter().filter(|e| e.canary == canary).collect()
}

/// The first Warning of `canary` starting with `prefix`, waiting for it.
async fn wait_warning(
    rig: &Rig,
    canary: &str,
    prefix: &str,
) -> Result<String, libtest_mimic::Failed> {
    eventually(
        &format!("a Warning of {canary} starting {prefix:?}"),
        MINUTES,
        || async {
            let records = rig.event_records().await?;
            let found = of(&records, canary)
                .into_iter()
                .find(|e| e.warning && e.note.starts_with(prefix))
                .map(|e| e.note.clone());
            Ok(found.ok_or_else(|| {
                of(&records, canary)
                    .into_iter()
                    .map(|e| (e.warning, e.note.clone()))
                    .collect::<Vec<_>>()
            }))
        },
    )
    .await
}

pub async fn bad_specs_warn_while_others_run() -> TestResult {
    // podinfo: its error-rate check names a MetricTemplate that does not exist.
    let rig = Rig::start("more_bad_specs", &[], |ns, _| {
        guide_canary(ns, "podinfo", "a.example.com", "1s").replace(
            "      templateRef:\n        name: error-rate\n",
            "      templateRef:\n        name: no-such-template\n",
        )
    })
    .await?;
    let ns = rig.ctx.namespace.clone();
    // podinfo-b: healthy, the guide's canary as it is.
    // podinfo-c: its metrics server does not answer.
    // podinfo-d: its HTTPRoute has a hostname the Gateway API CRD refuses.
    for target in ["podinfo-b", "podinfo-c", "podinfo-d"] {
        rig.add_target(target).await?;
    }
    rig.add_canary(&guide_canary(&ns, "podinfo-b", "b.example.com", "2s"))
        .await?;
    rig.add_canary(&builtin_canary(
        "podinfo-c",
        "c.example.com",
        "  metricsServer: http://127.0.0.1:1\n",
    ))
    .await?;
    rig.add_canary(&builtin_canary("podinfo-d", "Not_A_Host", ""))
        .await?;

    let rejected = wait_warning(
        &rig,
        "podinfo-d",
        &format!("HTTPRoute podinfo-d.{ns} apply error: "),
    )
    .await?;
    for part in ["spec.hostnames[0]", "Not_A_Host"] {
        if !rejected.contains(part) {
            return Err(format!("the rejection {rejected:?} does not name {part}").into());
        }
    }
    for canary in ["podinfo", "podinfo-b", "podinfo-c"] {
        rig.wait_phase_of(canary, CanaryPhase::Initialized, MINUTES)
            .await?;
    }
    for target in ["podinfo", "podinfo-b", "podinfo-c", "podinfo-d"] {
        rig.set_image_of(target, "ghcr.io/stefanprodan/podinfo:6.0.1", "0")
            .await?;
    }

    let missing = wait_warning(
        &rig,
        "podinfo",
        &format!("Metric template no-such-template.{ns} error: "),
    )
    .await?;
    if !missing.contains("not found") {
        return Err(format!("the template error {missing:?} does not say not found").into());
    }
    let unreachable = wait_warning(
        &rig,
        "podinfo-c",
        "Prometheus query failed: prometheus query to http://127.0.0.1:1/",
    )
    .await?;

    rig.wait_phase_of("podinfo-b", CanaryPhase::Succeeded, MINUTES)
        .await?;
    rig.wait_phase_of("podinfo", CanaryPhase::Failed, MINUTES)
        .await?;
    rig.wait_phase_of("podinfo-c", CanaryPhase::Failed, MINUTES)
        .await?;

    let records = rig.event_records().await?;
    let notes = |canary: &str| -> Vec<String> {
        of(&records, canary)
            .into_iter()
            .map(|e| e.note.clone())
            .collect()
    };
    in_order(
        &notes("podinfo-b"),
        &[
            format!("New revision detected! Scaling up podinfo-b.{ns}"),
            format!("Advance podinfo-b.{ns} canary weight 50"),
            format!("Copying podinfo-b.{ns} template spec to podinfo-b-primary.{ns}"),
            format!("Promotion completed! Scaling down podinfo-b.{ns}"),
        ],
    )?;
    for (canary, bad) in [
        ("podinfo", &missing),
        ("podinfo-c", &unreachable),
        ("podinfo-d", &rejected),
    ] {
        if notes("podinfo-b").contains(bad) {
            return Err(format!("{canary}'s problem {bad:?} was reported on podinfo-b").into());
        }
    }
    for canary in ["podinfo", "podinfo-c"] {
        in_order(
            &notes(canary),
            &[
                format!("Rolling back {canary}.{ns} failed checks threshold reached 5"),
                format!("Canary failed! Scaling down {canary}.{ns}"),
            ],
        )?;
        if let Some(e) = notes(canary).iter().find(|e| e.starts_with("Copying")) {
            return Err(format!("{canary} was promoted: {e:?}").into());
        }
        let primary = format!("{canary}-primary");
        expect_primary_image(&rig, &primary, "ghcr.io/stefanprodan/podinfo:6.0.0").await?;
    }
    // The rejected canary never gets past its bootstrap: no route, no phase, no run.
    let (phase, _, _) = rig.phase_of("podinfo-d").await?;
    if phase != CanaryPhase::Unknown {
        return Err(format!("podinfo-d reached {phase:?} without its HTTPRoute").into());
    }
    if rig
        .ctx
        .api::<HttpRoute>()
        .get_opt("podinfo-d")
        .await
        .context("get HTTPRoute podinfo-d")?
        .is_some()
    {
        return Err("the rejected HTTPRoute podinfo-d exists".into());
    }
    if let Some(e) = notes("podinfo-d")
        .iter()
        .find(|e| !e.starts_with(&format!("HTTPRoute podinfo-d.{ns} apply error: ")))
    {
        return Err(format!("podinfo-d did more than warn: {e:?}").into());
    }
    expect_primary_image(
        &rig,
        "podinfo-b-primary",
        "ghcr.io/stefanprodan/podinfo:6.0.1",
    )
    .await?;
    rig.finish().await;
    Ok(())
}
