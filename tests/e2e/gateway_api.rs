//! The real Gateway API CRD schema accepts a weighted HTTPRoute and rejects invalid values
//! with the API server's own validation error.

use gateway_api::httproutes::{
    HttpRoute, HttpRouteParentRefs, HttpRouteRules, HttpRouteRulesBackendRefs,
    HttpRouteRulesMatches, HttpRouteRulesMatchesPath, HttpRouteRulesMatchesPathType, HttpRouteSpec,
};
use kube::api::{ObjectMeta, PostParams};

use crate::TestResult;
use crate::support::{Context, TestCtx};

fn backend(name: &str, weight: i32) -> HttpRouteRulesBackendRefs {
    HttpRouteRulesBackendRefs {
        name: name.into(),
        port: Some(9898),
        weight: Some(weight),
        ..Default::default()
    }
}

fn route(name: &str, primary_weight: i32, canary_weight: i32) -> HttpRoute {
    HttpRoute {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: HttpRouteSpec {
            parent_refs: Some(vec![HttpRouteParentRefs {
                name: "gateway".into(),
                namespace: Some("istio-ingress".into()),
                ..Default::default()
            }]),
            hostnames: Some(vec!["www.example.com".into()]),
            rules: Some(vec![HttpRouteRules {
                matches: Some(vec![HttpRouteRulesMatches {
                    path: Some(HttpRouteRulesMatchesPath {
                        r#type: Some(HttpRouteRulesMatchesPathType::PathPrefix),
                        value: Some("/".into()),
                    }),
                    ..Default::default()
                }]),
                backend_refs: Some(vec![
                    backend("podinfo-primary", primary_weight),
                    backend("podinfo-canary", canary_weight),
                ]),
                ..Default::default()
            }]),
        },
        status: None,
    }
}

fn api_error(err: kube::Error) -> Option<kube::core::Status> {
    match err {
        kube::Error::Api(status) => Some(*status),
        _ => None,
    }
}

pub async fn httproute_schema_is_enforced() -> TestResult {
    let ctx = TestCtx::new("gateway").await?;
    let routes = ctx.api::<HttpRoute>();

    routes
        .create(&PostParams::default(), &route("podinfo", 90, 10))
        .await
        .context("create a valid HTTPRoute")?;
    let stored = routes
        .get("podinfo")
        .await
        .context("read the HTTPRoute back")?;
    let weights: Vec<Option<i32>> = stored
        .spec
        .rules
        .iter()
        .flatten()
        .flat_map(|r| r.backend_refs.iter().flatten())
        .map(|b| b.weight)
        .collect();
    if weights != [Some(90), Some(10)] {
        return Err(format!("stored weights {weights:?}, want [90, 10]").into());
    }

    // Gateway API caps backendRef weights at 1,000,000; the CRD's OpenAPI schema says so.
    let err = routes
        .create(&PostParams::default(), &route("too-heavy", 1_000_001, 0))
        .await
        .err()
        .ok_or("an HTTPRoute with weight 1000001 was accepted")?;
    let status = api_error(err).ok_or("want an API error for weight 1000001")?;
    let want = "spec.rules[0].backendRefs[0].weight: Invalid value: 1000001";
    if status.code != 422 || status.reason != "Invalid" || !status.message.contains(want) {
        return Err(format!(
            "want 422 Invalid naming {want:?}, got {} {}: {}",
            status.code, status.reason, status.message
        )
        .into());
    }

    let err = routes
        .create(&PostParams::default(), &route("negative", -1, 100))
        .await
        .err()
        .ok_or("an HTTPRoute with weight -1 was accepted")?;
    let status = api_error(err).ok_or("want an API error for weight -1")?;
    if status.code != 422
        || !status
            .message
            .contains("should be greater than or equal to 0")
    {
        return Err(format!(
            "want 422 for weight -1, got {}: {}",
            status.code, status.message
        )
        .into());
    }

    for name in ["too-heavy", "negative"] {
        if routes
            .get_opt(name)
            .await
            .context("get rejected route")?
            .is_some()
        {
            return Err(format!("rejected HTTPRoute {name} was stored").into());
        }
    }
    ctx.finish().await;
    Ok(())
}
