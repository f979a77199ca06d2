//! The guides' Canaries for Istio, Gloo, APISIX, Contour and NGINX, run by Serin against the
//! real control plane with the Istio, Contour and APISIX CRDs from their modules (Gloo's is a
//! hand-written stand-in, see tests/env/crds/gloo.yaml, so for Gloo this proves Serin against
//! Serin's reading of Gloo's schema):
//! a good version promotes through the guide's weights, a faulty one rolls back, and the
//! objects Serin generates are compared field by field with what Flagger generates.
//!
//! The manifests are the guides' (examples/providers/); only the interval is shortened, the
//! HPA is left out and the hook URLs point at the local stand-in. The mesh simulator plays
//! each provider's data plane and exports its series, which Prometheus scrapes and the
//! builtin checks query.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Value, json};
use serin::api::CanaryPhase;

use crate::TestResult;
use crate::support::rig::Rig;
use crate::support::{Context, eventually};

const MINUTES: Duration = Duration::from_secs(240);

/// A guide's Canary made runnable here: 2 s interval, no HPA, hooks on the local stand-in.
fn runnable(yaml: &str, ns: &str, hooks: &str) -> String {
    let mut out = Vec::new();
    let mut skipping = None;
    for line in yaml.lines() {
        let indent = line.len() - line.trim_start().len();
        if let Some(level) = skipping {
            if line.trim().is_empty() || indent > level {
                continue;
            }
            skipping = None;
        }
        if line.trim_start().starts_with("autoscalerRef:") {
            skipping = Some(indent);
            continue;
        }
        // The analysis interval, not the metrics' query windows.
        let line = if line.trim_start().starts_with("interval:") && indent == 4 {
            format!("{}interval: 2s", " ".repeat(indent))
        } else {
            line.to_string()
        };
        out.push(line);
    }
    out.join("\n")
        .replace(
            "http://flagger-loadtester.test/",
            &format!("{hooks}loadtester"),
        )
        .replace("namespace: test", &format!("namespace: {ns}"))
}

fn in_namespace(yaml: &str, ns: &str) -> String {
    yaml.replace("namespace: test", &format!("namespace: {ns}"))
}

fn dynamic(
    rig: &Rig,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
) -> kube::Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(group, version, kind);
    kube::Api::namespaced_with(
        rig.ctx.client.clone(),
        &rig.ctx.namespace,
        &ApiResource::from_gvk_with_plural(&gvk, plural),
    )
}

async fn spec_of(
    api: &kube::Api<DynamicObject>,
    name: &str,
) -> Result<Value, libtest_mimic::Failed> {
    let object = api.get(name).await.context(format!("get {name}"))?;
    Ok(object.data["spec"].clone())
}

/// `got == want`, or an error showing both.
fn same(what: &str, got: &Value, want: &Value) -> TestResult {
    if got == want {
        return Ok(());
    }
    Err(format!(
        "{what} differs from the reference\n got: {}\nwant: {}",
        serde_json::to_string_pretty(got).unwrap_or_default(),
        serde_json::to_string_pretty(want).unwrap_or_default()
    )
    .into())
}

/// Waits until `check` passes on the spec of `name`.
async fn eventually_spec(
    what: &str,
    api: &kube::Api<DynamicObject>,
    name: &str,
    want: &Value,
) -> TestResult {
    eventually(what, Duration::from_secs(30), || async {
        let got = spec_of(api, name).await?;
        Ok(if &got == want { Ok(()) } else { Err(got) })
    })
    .await
}

/// 6.0.1 promotes through `weights` to Succeeded with the guide's events in order; then 6.0.2
/// (30% errors) halts and rolls back after `threshold` failed checks, and the primary still
/// runs 6.0.1.
async fn promote_then_roll_back(rig: &Rig, weights: &[u32], threshold: u32) -> TestResult {
    let ns = rig.ctx.namespace.clone();
    rig.set_image("ghcr.io/stefanprodan/podinfo:6.0.1", "0")
        .await?;
    rig.wait_phase(CanaryPhase::Succeeded, MINUTES).await?;
    let seen = rig.events().await?;
    let mut expected = vec![
        format!("New revision detected! Scaling up podinfo.{ns}"),
        format!("Starting canary analysis for podinfo.{ns}"),
    ];
    expected.extend(
        weights
            .iter()
            .map(|w| format!("Advance podinfo.{ns} canary weight {w}")),
    );
    expected.push(format!(
        "Copying podinfo.{ns} template spec to podinfo-primary.{ns}"
    ));
    expected.push(format!("Promotion completed! Scaling down podinfo.{ns}"));
    let mut at = 0;
    for want in &expected {
        match seen[at..].iter().position(|e| e == want) {
            Some(i) => at += i + 1,
            None => {
                return Err(format!("missing or out of order: {want:?}\nevents: {seen:#?}").into());
            }
        }
    }
    if rig.image_of("podinfo-primary").await?.as_deref()
        != Some("ghcr.io/stefanprodan/podinfo:6.0.1")
    {
        return Err("the primary does not run 6.0.1".into());
    }

    rig.set_image("ghcr.io/stefanprodan/podinfo:6.0.2", "0.3")
        .await?;
    rig.wait_phase(CanaryPhase::Failed, MINUTES).await?;
    let seen = rig.events().await?;
    let halted = seen.iter().any(|e| {
        e.starts_with(&format!("Halt podinfo.{ns} advancement success rate "))
            && e.ends_with("< 99%")
    });
    let rolled_back = seen.contains(&format!(
        "Rolling back podinfo.{ns} failed checks threshold reached {threshold}"
    ));
    let failed = seen.contains(&format!("Canary failed! Scaling down podinfo.{ns}"));
    if !(halted && rolled_back && failed) {
        return Err(format!(
            "halt {halted}, rollback {rolled_back}, failed {failed}; events: {seen:#?}"
        )
        .into());
    }
    if rig.image_of("podinfo-primary").await?.as_deref()
        != Some("ghcr.io/stefanprodan/podinfo:6.0.1")
    {
        return Err("the failed revision reached the primary".into());
    }
    Ok(())
}

/// Every name in `names` exists as a `kind` object (the guides' "# generated" lists).
async fn all_exist(rig: &Rig, names: &[(&str, &str)]) -> TestResult {
    for (kind, name) in names {
        let found = match *kind {
            "Deployment" => rig
                .ctx
                .api::<Deployment>()
                .get_opt(name)
                .await
                .map(|o| o.is_some()),
            "Service" => rig
                .ctx
                .api::<Service>()
                .get_opt(name)
                .await
                .map(|o| o.is_some()),
            "Ingress" => rig
                .ctx
                .api::<Ingress>()
                .get_opt(name)
                .await
                .map(|o| o.is_some()),
            "RouteTable" => dynamic(rig, "gateway.solo.io", "v1", "RouteTable", "routetables")
                .get_opt(name)
                .await
                .map(|o| o.is_some()),
            "Upstream" => dynamic(rig, "gloo.solo.io", "v1", "Upstream", "upstreams")
                .get_opt(name)
                .await
                .map(|o| o.is_some()),
            "ApisixRoute" => dynamic(
                rig,
                "apisix.apache.org",
                "v2",
                "ApisixRoute",
                "apisixroutes",
            )
            .get_opt(name)
            .await
            .map(|o| o.is_some()),
            other => return Err(format!("all_exist: unknown kind {other}").into()),
        }
        .context(format!("get {kind} {name}"))?;
        if !found {
            return Err(format!("the generated {kind} {name} does not exist").into());
        }
    }
    Ok(())
}

fn steps(step: u32, max: u32) -> Vec<u32> {
    (1..=max / step).map(|i| i * step).collect()
}

/// Istio (the guide's Canary): the VirtualService and DestinationRules as Flagger writes them.
pub async fn istio_canary_promotes_then_rolls_back() -> TestResult {
    let rig = Rig::start("istio", &[], |ns, hooks| {
        runnable(
            include_str!("../../examples/providers/istio/canary.yaml"),
            ns,
            hooks,
        )
    })
    .await?;
    rig.wait_phase(CanaryPhase::Initialized, MINUTES).await?;
    let vs = dynamic(
        &rig,
        "networking.istio.io",
        "v1",
        "VirtualService",
        "virtualservices",
    );
    let dr = dynamic(
        &rig,
        "networking.istio.io",
        "v1",
        "DestinationRule",
        "destinationrules",
    );
    let want_vs = json!({
        "hosts": ["app.example.com", "podinfo"],
        "gateways": ["istio-system/public-gateway"],
        "http": [{
            "retries": {
                "attempts": 3,
                "perTryTimeout": "1s",
                "retryOn": "gateway-error,connect-failure,refused-stream"
            },
            "route": [
                {"destination": {"host": "podinfo-primary"}, "weight": 100},
                {"destination": {"host": "podinfo-canary"}, "weight": 0}
            ]
        }]
    });
    same(
        "VirtualService podinfo",
        &spec_of(&vs, "podinfo").await?,
        &want_vs,
    )?;
    for name in ["podinfo-primary", "podinfo-canary"] {
        let want = json!({"host": name, "trafficPolicy": {"tls": {"mode": "DISABLE"}}});
        same(
            &format!("DestinationRule {name}"),
            &spec_of(&dr, name).await?,
            &want,
        )?;
    }
    promote_then_roll_back(&rig, &steps(10, 50), 5).await?;
    eventually_spec(
        "the VirtualService back on the primary",
        &vs,
        "podinfo",
        &want_vs,
    )
    .await?;
    rig.finish().await;
    Ok(())
}

/// Gloo (seed 002): the generated list, the Upstreams and the RouteTable.
pub async fn gloo_canary_promotes_then_rolls_back() -> TestResult {
    let rig = Rig::start("gloo", &[], |ns, hooks| {
        runnable(
            include_str!("../../examples/providers/gloo/canary.yaml"),
            ns,
            hooks,
        )
    })
    .await?;
    let ns = rig.ctx.namespace.clone();
    rig.wait_phase(CanaryPhase::Initialized, MINUTES).await?;
    let primary = format!("{ns}-podinfo-primaryupstream-9898");
    let canary = format!("{ns}-podinfo-canaryupstream-9898");
    // Seed 002's "# generated" list (the HPA aside: the test runs without one).
    all_exist(
        &rig,
        &[
            ("Deployment", "podinfo-primary"),
            ("Service", "podinfo"),
            ("Service", "podinfo-canary"),
            ("Service", "podinfo-primary"),
            ("RouteTable", "podinfo"),
            ("Upstream", &canary),
            ("Upstream", &primary),
        ],
    )
    .await?;
    let upstreams = dynamic(&rig, "gloo.solo.io", "v1", "Upstream", "upstreams");
    for (name, service, selector) in [
        (&primary, "podinfo-primary", "podinfo-primary"),
        (&canary, "podinfo-canary", "podinfo"),
    ] {
        let want = json!({"kube": {
            "serviceName": service,
            "serviceNamespace": ns,
            "servicePort": 9898,
            "selector": {"app": selector}
        }});
        same(
            &format!("Upstream {name}"),
            &spec_of(&upstreams, name).await?,
            &want,
        )?;
    }
    let tables = dynamic(&rig, "gateway.solo.io", "v1", "RouteTable", "routetables");
    let want_rt = json!({"routes": [{
        "inheritablePathMatchers": true,
        "routeAction": {"multi": {"destinations": [
            {"destination": {"upstream": {"name": primary, "namespace": ns}}, "weight": 100},
            // Flagger leaves a zero weight out; Gloo reads both as 0.
            {"destination": {"upstream": {"name": canary, "namespace": ns}}, "weight": 0}
        ]}}
    }]});
    same(
        "RouteTable podinfo",
        &spec_of(&tables, "podinfo").await?,
        &want_rt,
    )?;
    promote_then_roll_back(&rig, &steps(5, 50), 5).await?;
    eventually_spec(
        "the RouteTable back on the primary",
        &tables,
        "podinfo",
        &want_rt,
    )
    .await?;
    rig.finish().await;
    Ok(())
}

/// APISIX (seed 003): the canary route beside the user's, which stays untouched.
pub async fn apisix_canary_promotes_then_rolls_back() -> TestResult {
    let route_yaml = include_str!("../../examples/providers/apisix/route.yaml");
    let rig = Rig::start_with(
        "apisix",
        "istio",
        move |ns| vec![in_namespace(route_yaml, ns)],
        |ns, hooks| {
            runnable(
                include_str!("../../examples/providers/apisix/canary.yaml"),
                ns,
                hooks,
            )
        },
    )
    .await?;
    rig.wait_phase(CanaryPhase::Initialized, MINUTES).await?;
    let routes = dynamic(
        &rig,
        "apisix.apache.org",
        "v2",
        "ApisixRoute",
        "apisixroutes",
    );
    let user_before = spec_of(&routes, "podinfo").await?;
    let want_canary = json!({"http": [{
        "name": "method",
        "priority": 10000,
        "match": {"hosts": ["app.example.com"], "methods": ["GET"], "paths": ["/*"]},
        "plugins": [{"name": "prometheus", "enable": true, "config": {"disable": false, "prefer_name": true}}],
        "backends": [
            {"serviceName": "podinfo-primary", "servicePort": 80, "weight": 100},
            {"serviceName": "podinfo-canary", "servicePort": 80, "weight": 0}
        ]
    }]});
    same(
        "ApisixRoute podinfo-podinfo-canary",
        &spec_of(&routes, "podinfo-podinfo-canary").await?,
        &want_canary,
    )?;
    promote_then_roll_back(&rig, &steps(10, 50), 10).await?;
    eventually_spec(
        "the canary route back on the primary",
        &routes,
        "podinfo-podinfo-canary",
        &want_canary,
    )
    .await?;
    same(
        "the user's ApisixRoute",
        &spec_of(&routes, "podinfo").await?,
        &user_before,
    )?;
    rig.finish().await;
    Ok(())
}

/// Contour (the guide's Canary): the HTTPProxy with Linkerd's override header, the timeout
/// and retry policies.
pub async fn contour_canary_promotes_then_rolls_back() -> TestResult {
    // The guide runs Flagger with -mesh-provider=contour; its Canary names no provider.
    let rig = Rig::start_with(
        "contour",
        "contour",
        |_| Vec::new(),
        |ns, hooks| {
            runnable(
                include_str!("../../examples/providers/contour/canary.yaml"),
                ns,
                hooks,
            )
        },
    )
    .await?;
    let ns = rig.ctx.namespace.clone();
    rig.wait_phase(CanaryPhase::Initialized, MINUTES).await?;
    let proxies = dynamic(&rig, "projectcontour.io", "v1", "HTTPProxy", "httpproxies");
    let header = |svc: &str| json!({"set": [{"name": "l5d-dst-override", "value": format!("{svc}.{ns}.svc.cluster.local:80")}]});
    let want = json!({"routes": [{
        "conditions": [{"prefix": "/"}],
        "timeoutPolicy": {"response": "15s", "idle": "5m"},
        "retryPolicy": {"count": 3, "perTryTimeout": "5s", "retryOn": ["5xx"]},
        "services": [
            {"name": "podinfo-primary", "port": 80, "weight": 100, "requestHeadersPolicy": header("podinfo-primary")},
            // Flagger leaves a zero weight out; Contour reads both as 0.
            {"name": "podinfo-canary", "port": 80, "weight": 0, "requestHeadersPolicy": header("podinfo-canary")}
        ]
    }]});
    same(
        "HTTPProxy podinfo",
        &spec_of(&proxies, "podinfo").await?,
        &want,
    )?;
    promote_then_roll_back(&rig, &steps(5, 50), 5).await?;
    eventually_spec(
        "the HTTPProxy back on the primary",
        &proxies,
        "podinfo",
        &want,
    )
    .await?;
    rig.finish().await;
    Ok(())
}

/// NGINX (the guide's Canary and Ingress): the canary Ingress, the user's left alone.
pub async fn nginx_canary_promotes_then_rolls_back() -> TestResult {
    let ingress_yaml = include_str!("../../examples/providers/nginx/ingress.yaml");
    let rig = Rig::start_with(
        "nginx",
        "istio",
        move |ns| vec![in_namespace(ingress_yaml, ns)],
        |ns, hooks| {
            runnable(
                include_str!("../../examples/providers/nginx/canary.yaml"),
                ns,
                hooks,
            )
        },
    )
    .await?;
    rig.wait_phase(CanaryPhase::Initialized, MINUTES).await?;
    let ingresses = rig.ctx.api::<Ingress>();
    let user = ingresses.get("podinfo").await.context("user ingress")?;
    let mut want_spec = serde_json::to_value(&user.spec).context("spec")?;
    want_spec["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] =
        json!("podinfo-canary");
    let want_annotations = json!({
        "kubernetes.io/ingress.class": "nginx",
        "kustomize.toolkit.fluxcd.io/reconcile": "disabled",
        "helm.toolkit.fluxcd.io/driftDetection": "disabled",
        "nginx.ingress.kubernetes.io/canary": "true",
        "nginx.ingress.kubernetes.io/canary-weight": "0"
    });
    let check = |stage: &'static str| {
        let ingresses = ingresses.clone();
        let want_spec = want_spec.clone();
        let want_annotations = want_annotations.clone();
        async move {
            let canary = ingresses
                .get("podinfo-canary")
                .await
                .context("canary ingress")?;
            same(
                &format!("canary Ingress spec ({stage})"),
                &serde_json::to_value(&canary.spec).context("spec")?,
                &want_spec,
            )?;
            same(
                &format!("canary Ingress annotations ({stage})"),
                &serde_json::to_value(&canary.metadata.annotations).context("annotations")?,
                &want_annotations,
            )
        }
    };
    check("initialized").await?;
    promote_then_roll_back(&rig, &steps(5, 50), 10).await?;
    eventually(
        "the canary Ingress back at weight 0",
        Duration::from_secs(30),
        || async {
            Ok(match check("rolled back").await {
                Ok(()) => Ok(()),
                Err(e) => Err(e.message().map(str::to_string)),
            })
        },
    )
    .await?;
    let after = ingresses.get("podinfo").await.context("user ingress")?;
    if after.spec != user.spec || after.metadata.annotations != user.metadata.annotations {
        return Err("the user's Ingress was changed".into());
    }
    rig.finish().await;
    Ok(())
}

/// Istio A/B (the A/B guide's Canary): while the iterations run, requests with the guide's
/// header or cookie go to the canary and the rest to the primary; then it promotes.
pub async fn istio_ab_testing_with_the_guides_matches() -> TestResult {
    let rig = Rig::start("istio-ab", &[], |ns, hooks| {
        // Three seconds: the canary's series start with the first iteration and rate() needs
        // two scrapes before the guide's threshold of 2 failed checks is spent.
        runnable(
            include_str!("../../examples/providers/istio/ab-canary.yaml"),
            ns,
            hooks,
        )
        .replace("    interval: 2s", "    interval: 3s")
    })
    .await?;
    let ns = rig.ctx.namespace.clone();
    rig.wait_phase(CanaryPhase::Initialized, MINUTES).await?;
    rig.set_image("ghcr.io/stefanprodan/podinfo:6.0.1", "0")
        .await?;
    let third = format!("Advance podinfo.{ns} canary iteration 3/10");
    rig.wait_event("iteration 3", MINUTES, |e| e == third)
        .await?;
    let vs = dynamic(
        &rig,
        "networking.istio.io",
        "v1",
        "VirtualService",
        "virtualservices",
    );
    let route = |primary: u32, canary: u32| {
        json!([
            {"destination": {"host": "podinfo-primary"}, "weight": primary},
            {"destination": {"host": "podinfo-canary"}, "weight": canary}
        ])
    };
    let http = spec_of(&vs, "podinfo").await?["http"].clone();
    let want = json!([
        {
            "match": [
                {"headers": {"user-agent": {"regex": ".*Firefox.*"}}},
                {"headers": {"cookie": {"regex": "^(.*?;)?(type=insider)(;.*)?$"}}}
            ],
            "route": route(0, 100)
        },
        // The fallback: the primary alone (Flagger's route, with the weight Istio applies).
        {"route": [{"destination": {"host": "podinfo-primary"}, "weight": 100}]}
    ]);
    same("the A/B VirtualService's routes", &http, &want)?;
    rig.wait_phase(CanaryPhase::Succeeded, MINUTES).await?;
    let events = rig.events().await?;
    if !events.contains(&format!("Advance podinfo.{ns} canary iteration 10/10")) {
        return Err(format!("the ten iterations did not all run: {events:#?}").into());
    }
    rig.finish().await;
    Ok(())
}

/// `revertOnDeletion` on Istio: Serin takes over the user's VirtualService, and deleting the
/// Canary hands everything back — the target scaled up, the VirtualService's original spec.
pub async fn istio_revert_on_deletion_restores_the_users_virtual_service() -> TestResult {
    let original = json!({
        "hosts": ["podinfo"],
        "http": [{"route": [{"destination": {"host": "podinfo"}}], "timeout": "7s"}]
    });
    let user_vs = format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: podinfo\nspec: {original}\n"
    );
    // The apex Service is the user's too: Serin takes it over (selector on the primary) and
    // must point it back at the target's pods.
    let user_apex = "apiVersion: v1\nkind: Service\nmetadata:\n  name: podinfo\nspec:\n  selector: {app: podinfo}\n  ports: [{name: http, port: 9898, targetPort: 9898}]\n".to_string();
    let rig = Rig::start_with(
        "istio-revert",
        "istio",
        move |_| vec![user_vs, user_apex],
        |ns, hooks| {
            runnable(
                include_str!("../../examples/providers/istio/canary.yaml"),
                ns,
                hooks,
            )
            .replacen("spec:\n", "spec:\n  revertOnDeletion: true\n", 1)
        },
    )
    .await?;
    let ns = rig.ctx.namespace.clone();
    rig.wait_phase(CanaryPhase::Initialized, MINUTES).await?;
    let canaries = rig.ctx.api::<serin::api::Canary>();
    let canary = canaries.get("podinfo").await.context("canary")?;
    if !canary
        .metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == "finalizer.flagger.app")
    {
        return Err("revertOnDeletion did not add Flagger's finalizer".into());
    }
    let vs = dynamic(
        &rig,
        "networking.istio.io",
        "v1",
        "VirtualService",
        "virtualservices",
    );
    let taken = vs.get("podinfo").await.context("vs")?;
    if taken.data["spec"] == original {
        return Err("the VirtualService was not taken over".into());
    }
    canaries
        .delete("podinfo", &Default::default())
        .await
        .context("delete canary")?;
    eventually("the Canary to be finalized and gone", MINUTES, || async {
        Ok(match canaries.get_opt("podinfo").await.context("canary")? {
            None => Ok(()),
            Some(c) => Err(c.status.map(|s| s.phase)),
        })
    })
    .await?;
    let events = rig.events().await?;
    for want in [
        format!("Terminating canary podinfo.{ns}"),
        format!("Terminated canary podinfo.{ns}"),
    ] {
        if !events.contains(&want) {
            return Err(format!("missing {want:?}: {events:#?}").into());
        }
    }
    // The revert went through without a Warning (before it, initialization may wait).
    let records = rig.event_records().await?;
    let from = records
        .iter()
        .position(|e| e.note.starts_with("Terminating canary"))
        .unwrap_or_default();
    let warnings: Vec<&String> = records[from..]
        .iter()
        .filter(|e| e.warning)
        .map(|e| &e.note)
        .collect();
    if !warnings.is_empty() {
        return Err(format!("the revert went through Warnings: {warnings:#?}").into());
    }
    same(
        "the restored VirtualService",
        &spec_of(&vs, "podinfo").await?,
        &original,
    )?;
    let restored = vs.get("podinfo").await.context("vs")?;
    let annotations = restored.metadata.annotations.unwrap_or_default();
    if restored
        .metadata
        .owner_references
        .is_some_and(|o| !o.is_empty())
        || annotations.keys().any(|k| {
            k.starts_with("kustomize.toolkit.fluxcd.io")
                || k.starts_with("helm.toolkit.fluxcd.io")
                || k == "flagger.kubernetes.io/original-configuration"
        })
    {
        return Err(
            format!("the restored VirtualService keeps Serin's marks: {annotations:?}").into(),
        );
    }
    let apex = rig
        .ctx
        .api::<Service>()
        .get("podinfo")
        .await
        .context("apex")?;
    let selector = apex.spec.and_then(|s| s.selector).unwrap_or_default();
    if selector != [("app".to_string(), "podinfo".to_string())].into() {
        return Err(format!("the apex Service selects {selector:?}, not the target's pods").into());
    }
    let target = rig
        .ctx
        .api::<Deployment>()
        .get("podinfo")
        .await
        .context("target")?;
    let replicas = target.spec.and_then(|s| s.replicas);
    if replicas != Some(2) {
        return Err(format!("the target has {replicas:?} replicas, not the primary's 2").into());
    }
    rig.finish().await;
    Ok(())
}

/// The Istio guide's Canary with `analysis` edited: `lines` replace its maxWeight and stepWeight.
fn istio_canary_with(ns: &str, hooks: &str, lines: &str) -> String {
    runnable(include_str!("../../examples/providers/istio/canary.yaml"), ns, hooks).replace(
        "    maxWeight: 50\n    # canary increment step\n    # percentage (0-100)\n    stepWeight: 10\n",
        lines,
    )
}

/// Istio blue/green with mirroring: during the iterations the primary keeps all traffic and
/// `mirrorWeight` percent of it is copied to the canary, which the builtin checks analyse.
pub async fn istio_mirroring_copies_traffic_then_promotes() -> TestResult {
    let rig = Rig::start("istio-mirror", &[], |ns, hooks| {
        // Three seconds: the canary's series start with the copies; rate() needs two scrapes.
        istio_canary_with(
            ns,
            hooks,
            "    iterations: 3\n    mirror: true\n    mirrorWeight: 50\n",
        )
        .replace("    interval: 2s", "    interval: 3s")
    })
    .await?;
    rig.wait_phase(CanaryPhase::Initialized, MINUTES).await?;
    rig.set_image("ghcr.io/stefanprodan/podinfo:6.0.1", "0")
        .await?;
    let vs = dynamic(
        &rig,
        "networking.istio.io",
        "v1",
        "VirtualService",
        "virtualservices",
    );
    let http = eventually("a mirrored iteration", MINUTES, || async {
        let http = spec_of(&vs, "podinfo").await?["http"].clone();
        Ok(if http[0]["mirror"].is_object() {
            Ok(http)
        } else {
            Err(http)
        })
    })
    .await?;
    let want = json!([{
        "retries": {
            "attempts": 3,
            "perTryTimeout": "1s",
            "retryOn": "gateway-error,connect-failure,refused-stream"
        },
        "route": [
            {"destination": {"host": "podinfo-primary"}, "weight": 100},
            {"destination": {"host": "podinfo-canary"}, "weight": 0}
        ],
        "mirror": {"host": "podinfo-canary"},
        "mirrorPercentage": {"value": 50}
    }]);
    same("the mirrored VirtualService's routes", &http, &want)?;
    rig.wait_phase(CanaryPhase::Succeeded, MINUTES).await?;
    // Back at rest: no mirror left.
    let http = spec_of(&vs, "podinfo").await?["http"].clone();
    if http[0].get("mirror").is_some() {
        return Err(format!("the mirror outlived the run: {http:#}").into());
    }
    rig.finish().await;
    Ok(())
}

/// Istio session affinity: once the canary takes weighted traffic, a cookie route sends the
/// requests that carry the canary's cookie to it, and the canary's destination sets that
/// cookie; the cookie is in the Canary's status.
pub async fn istio_session_affinity_sticks() -> TestResult {
    let rig = Rig::start("istio-affinity", &[], |ns, hooks| {
        istio_canary_with(
            ns,
            hooks,
            "    maxWeight: 50\n    stepWeight: 10\n    sessionAffinity:\n      cookieName: flagger-cookie\n      maxAge: 21600\n",
        )
    })
    .await?;
    rig.wait_phase(CanaryPhase::Initialized, MINUTES).await?;
    rig.set_image("ghcr.io/stefanprodan/podinfo:6.0.1", "0")
        .await?;
    let vs = dynamic(
        &rig,
        "networking.istio.io",
        "v1",
        "VirtualService",
        "virtualservices",
    );
    let (cookie, http) = eventually("a sticky route and a cookie", MINUTES, || async {
        let canary = rig.canary("podinfo").await?;
        let cookie = canary.status.and_then(|s| s.session_affinity_cookie);
        let http = spec_of(&vs, "podinfo").await?["http"].clone();
        Ok(match cookie {
            Some(cookie) if http.as_array().is_some_and(|a| a.len() == 2) => Ok((cookie, http)),
            other => Err((other, http)),
        })
    })
    .await?;
    let value = cookie
        .strip_prefix("flagger-cookie=")
        .ok_or_else(|| format!("status cookie {cookie:?} is not flagger-cookie=…"))?;
    let sticky = &http[0];
    // Flagger's regex: name and value, each anywhere in the Cookie header.
    let want_match =
        json!([{"headers": {"Cookie": {"regex": format!(".*flagger-cookie.*{value}.*")}}}]);
    same("the sticky route's match", &sticky["match"], &want_match)?;
    let canary_destination = sticky["route"]
        .as_array()
        .and_then(|r| {
            r.iter()
                .find(|d| d["destination"]["host"] == "podinfo-canary")
        })
        .ok_or("the sticky route has no canary destination")?;
    if canary_destination["weight"] != json!(100) {
        return Err(format!("sticky route: {sticky:#}").into());
    }
    let set_cookie = http[1]["route"]
        .as_array()
        .and_then(|r| {
            r.iter()
                .find(|d| d["destination"]["host"] == "podinfo-canary")
        })
        .map(|d| d["headers"]["response"]["add"]["Set-Cookie"].clone());
    let want_set = json!(format!("flagger-cookie={value}; Max-Age=21600"));
    if set_cookie.as_ref() != Some(&want_set) {
        return Err(format!(
            "weighted route's Set-Cookie {set_cookie:?}, want {want_set}: {http:#}"
        )
        .into());
    }
    rig.wait_phase(CanaryPhase::Succeeded, MINUTES).await?;
    rig.finish().await;
    Ok(())
}

/// NGINX A/B (the guide's match: a header or a cookie): during the iterations the canary
/// Ingress routes by `canary-by-header` and `canary-by-cookie`, not by weight; after the
/// promotion it is back at weight 0 with no A/B annotation.
pub async fn nginx_ab_testing_with_the_guides_matches() -> TestResult {
    let ingress_yaml = include_str!("../../examples/providers/nginx/ingress.yaml");
    let rig = Rig::start_with(
        "nginx-ab",
        "istio",
        move |ns| vec![in_namespace(ingress_yaml, ns)],
        |ns, hooks| {
            runnable(include_str!("../../examples/providers/nginx/canary.yaml"), ns, hooks)
                // The guide's A/B analysis; three seconds, as the canary's series start with
                // the first iteration and rate() needs two scrapes.
                .replace("    interval: 2s", "    interval: 3s")
                .replace(
                    "    maxWeight: 50\n    # canary increment step\n    # percentage (0-100)\n    stepWeight: 5\n",
                    "    iterations: 5\n    match:\n      - headers:\n          x-canary:\n            exact: \"insider\"\n      - headers:\n          cookie:\n            exact: \"canary\"\n",
                )
        },
    )
    .await?;
    let ns = rig.ctx.namespace.clone();
    rig.wait_phase(CanaryPhase::Initialized, MINUTES).await?;
    rig.set_image("ghcr.io/stefanprodan/podinfo:6.0.1", "0")
        .await?;
    let second = format!("Advance podinfo.{ns} canary iteration 2/5");
    rig.wait_event("iteration 2", MINUTES, |e| e == second)
        .await?;
    let ingresses = rig.ctx.api::<Ingress>();
    let annotations = |i: Ingress| serde_json::to_value(i.metadata.annotations).unwrap_or_default();
    let canary = ingresses
        .get("podinfo-canary")
        .await
        .context("canary ingress")?;
    let want = json!({
        "kubernetes.io/ingress.class": "nginx",
        "kustomize.toolkit.fluxcd.io/reconcile": "disabled",
        "helm.toolkit.fluxcd.io/driftDetection": "disabled",
        "nginx.ingress.kubernetes.io/canary": "true",
        "nginx.ingress.kubernetes.io/canary-by-header": "x-canary",
        "nginx.ingress.kubernetes.io/canary-by-header-value": "insider",
        "nginx.ingress.kubernetes.io/canary-by-cookie": "canary",
        // Kept from before the run, as Flagger does: requests without the header or cookie
        // stay on the primary.
        "nginx.ingress.kubernetes.io/canary-weight": "0"
    });
    same(
        "the A/B canary Ingress annotations",
        &annotations(canary),
        &want,
    )?;
    rig.wait_phase(CanaryPhase::Succeeded, MINUTES).await?;
    let rest = json!({
        "kubernetes.io/ingress.class": "nginx",
        "kustomize.toolkit.fluxcd.io/reconcile": "disabled",
        "helm.toolkit.fluxcd.io/driftDetection": "disabled",
        "nginx.ingress.kubernetes.io/canary": "true",
        "nginx.ingress.kubernetes.io/canary-weight": "0"
    });
    let canary = ingresses
        .get("podinfo-canary")
        .await
        .context("canary ingress")?;
    same("the canary Ingress at rest", &annotations(canary), &rest)?;
    rig.finish().await;
    Ok(())
}

/// Contour A/B (the guide's `x-canary: insider`): a header-condition route to the canary
/// first, the prefix route on the primary after.
pub async fn contour_ab_testing_with_the_guides_match() -> TestResult {
    let rig = Rig::start_with(
        "contour-ab",
        "contour",
        |_| Vec::new(),
        |ns, hooks| {
            runnable(include_str!("../../examples/providers/contour/canary.yaml"), ns, hooks)
                .replace("    interval: 2s", "    interval: 3s")
                .replace(
                    "    maxWeight: 50\n    # canary increment step\n    # percentage (0-100)\n    stepWeight: 5\n",
                    "    iterations: 5\n    match:\n    - headers:\n        x-canary:\n          exact: \"insider\"\n",
                )
        },
    )
    .await?;
    let ns = rig.ctx.namespace.clone();
    rig.wait_phase(CanaryPhase::Initialized, MINUTES).await?;
    rig.set_image("ghcr.io/stefanprodan/podinfo:6.0.1", "0")
        .await?;
    let second = format!("Advance podinfo.{ns} canary iteration 2/5");
    rig.wait_event("iteration 2", MINUTES, |e| e == second)
        .await?;
    let proxies = dynamic(&rig, "projectcontour.io", "v1", "HTTPProxy", "httpproxies");
    let route = |conditions: Value, primary: u32, canary: u32| {
        let service = |name: &str, weight: u32| {
            json!({
                "name": name,
                "port": 80,
                "weight": weight,
                "requestHeadersPolicy": {"set": [{
                    "name": "l5d-dst-override",
                    "value": format!("{name}.{ns}.svc.cluster.local:80")
                }]}
            })
        };
        json!({
            "conditions": conditions,
            "timeoutPolicy": {"response": "15s", "idle": "5m"},
            "retryPolicy": {"count": 3, "perTryTimeout": "5s", "retryOn": ["5xx"]},
            "services": [service("podinfo-primary", primary), service("podinfo-canary", canary)]
        })
    };
    let want = json!({"routes": [
        route(json!([{"prefix": "/", "header": {"name": "x-canary", "exact": "insider"}}]), 0, 100),
        route(json!([{"prefix": "/"}]), 100, 0)
    ]});
    same(
        "the A/B HTTPProxy",
        &spec_of(&proxies, "podinfo").await?,
        &want,
    )?;
    rig.wait_phase(CanaryPhase::Succeeded, MINUTES).await?;
    rig.finish().await;
    Ok(())
}

/// Gloo A/B (the guide's `x-canary: insider`): the matching route goes to the canary, and —
/// unlike Flagger, whose table has no other route — the rest reaches the primary.
pub async fn gloo_ab_testing_with_the_guides_match() -> TestResult {
    let rig = Rig::start("gloo-ab", &[], |ns, hooks| {
        runnable(include_str!("../../examples/providers/gloo/canary.yaml"), ns, hooks)
            .replace("    interval: 2s", "    interval: 3s")
            .replace(
                "    maxWeight: 50\n    # canary increment step\n    # percentage (0-100)\n    stepWeight: 5\n",
                "    iterations: 5\n    match:\n    - headers:\n        x-canary:\n          exact: \"insider\"\n",
            )
    })
    .await?;
    let ns = rig.ctx.namespace.clone();
    rig.wait_phase(CanaryPhase::Initialized, MINUTES).await?;
    rig.set_image("ghcr.io/stefanprodan/podinfo:6.0.1", "0")
        .await?;
    let second = format!("Advance podinfo.{ns} canary iteration 2/5");
    rig.wait_event("iteration 2", MINUTES, |e| e == second)
        .await?;
    let tables = dynamic(&rig, "gateway.solo.io", "v1", "RouteTable", "routetables");
    let (primary, canary) = (
        format!("{ns}-podinfo-primaryupstream-9898"),
        format!("{ns}-podinfo-canaryupstream-9898"),
    );
    let destinations = |p: u32, c: u32| {
        json!({"multi": {"destinations": [
            {"destination": {"upstream": {"name": primary, "namespace": ns}}, "weight": p},
            {"destination": {"upstream": {"name": canary, "namespace": ns}}, "weight": c}
        ]}})
    };
    let want = json!({"routes": [
        {
            "matchers": [{"headers": [{"name": "x-canary", "value": "insider"}]}],
            "inheritablePathMatchers": true,
            "routeAction": destinations(0, 100)
        },
        {"inheritablePathMatchers": true, "routeAction": destinations(100, 0)}
    ]});
    same(
        "the A/B RouteTable",
        &spec_of(&tables, "podinfo").await?,
        &want,
    )?;
    rig.wait_phase(CanaryPhase::Succeeded, MINUTES).await?;
    rig.finish().await;
    Ok(())
}

/// `revertOnDeletion` with a VirtualService that already said what Serin would write: nothing
/// to restore, but Serin's Flux opt-out goes, so Flux manages it again.
pub async fn istio_revert_on_deletion_unmarks_a_matching_virtual_service() -> TestResult {
    let spec = json!({
        "hosts": ["app.example.com", "podinfo"],
        "gateways": ["istio-system/public-gateway"],
        "http": [{
            "retries": {
                "attempts": 3,
                "perTryTimeout": "1s",
                "retryOn": "gateway-error,connect-failure,refused-stream"
            },
            "route": [
                {"destination": {"host": "podinfo-primary"}, "weight": 100},
                {"destination": {"host": "podinfo-canary"}, "weight": 0}
            ]
        }]
    });
    let user_vs = format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: podinfo\n  annotations: {{team: web}}\nspec: {spec}\n"
    );
    let rig = Rig::start_with(
        "istio-unmark",
        "istio",
        move |_| vec![user_vs],
        |ns, hooks| {
            runnable(
                include_str!("../../examples/providers/istio/canary.yaml"),
                ns,
                hooks,
            )
            .replacen("spec:\n", "spec:\n  revertOnDeletion: true\n", 1)
        },
    )
    .await?;
    rig.wait_phase(CanaryPhase::Initialized, MINUTES).await?;
    let vs = dynamic(
        &rig,
        "networking.istio.io",
        "v1",
        "VirtualService",
        "virtualservices",
    );
    let annotations = |o: DynamicObject| o.metadata.annotations.unwrap_or_default();
    let taken = annotations(vs.get("podinfo").await.context("vs")?);
    if taken
        .get("kustomize.toolkit.fluxcd.io/reconcile")
        .map(String::as_str)
        != Some("disabled")
        || taken.contains_key("flagger.kubernetes.io/original-configuration")
    {
        return Err(format!("unexpected take-over marks: {taken:?}").into());
    }
    let canaries = rig.ctx.api::<serin::api::Canary>();
    canaries
        .delete("podinfo", &Default::default())
        .await
        .context("delete canary")?;
    eventually("the Canary to be finalized and gone", MINUTES, || async {
        Ok(match canaries.get_opt("podinfo").await.context("canary")? {
            None => Ok(()),
            Some(c) => Err(c.status.map(|s| s.phase)),
        })
    })
    .await?;
    let after = vs.get("podinfo").await.context("vs")?;
    same("the VirtualService's spec", &after.data["spec"], &spec)?;
    let left = annotations(after);
    let want: std::collections::BTreeMap<String, String> =
        [("team".to_string(), "web".to_string())].into();
    if left != want {
        return Err(format!("annotations after the revert: {left:?}, want only the user's").into());
    }
    rig.finish().await;
    Ok(())
}
