//! A canary's `analysis.alerts` resolved from the cluster: AlertProviders (one with its
//! address in a Secret, one `generic` with `spec.address`, which the CRD must accept), the
//! severity filter, and entries whose provider or Secret is missing, reported per entry while
//! the others are delivered to a receiver on 127.0.0.1.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, PostParams};
use serde_json::Value;
use serin::alerts::{Alert, AlertDispatcher, AlertError, AlertSender, Delivery};
use serin::api::{AlertProvider, AlertSeverity, Canary, CanaryStatus};

use crate::TestResult;
use crate::support::{Context, TestCtx, install_flagger_crds};

/// What the receiver got: path, Authorization header, body.
type Requests = Arc<Mutex<Vec<(String, Option<String>, Value)>>>;

const CANARY: &str = r#"
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
spec:
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  service:
    port: 9898
  analysis:
    interval: 1m
    threshold: 5
    stepWeight: 10
    alerts:
      - name: on-call
        severity: info
        providerRef:
          name: on-call
      - name: errors
        severity: error
        providerRef:
          name: errors
          namespace: NAMESPACE
      - name: missing-provider
        severity: warn
        providerRef:
          name: nobody
      - name: missing-secret
        severity: warn
        providerRef:
          name: no-secret
"#;

pub async fn resolve_providers_and_secrets() -> TestResult {
    let ctx = TestCtx::new("alerts").await?;
    install_flagger_crds(&ctx.client).await?;
    let result = run(&ctx).await;
    ctx.finish().await;
    result
}

async fn run(ctx: &TestCtx) -> TestResult {
    let requests = Requests::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("bind receiver")?;
    let base = format!("http://{}", listener.local_addr().context("address")?);
    let app = Router::new()
        .fallback(
            |State(r): State<Requests>, uri: Uri, headers: HeaderMap, body: Bytes| async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                r.lock()
                    .map_err(|_| "poisoned")
                    .map(|mut r| r.push((uri.path().to_string(), auth, body)))
                    .ok();
                "ok"
            },
        )
        .with_state(requests.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let ns = &ctx.namespace;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("on-call-hook".into()),
            ..Default::default()
        },
        string_data: Some(
            [
                ("address".to_string(), format!("{base}/slack/SECRET")),
                ("token".to_string(), "xoxb-e2e".to_string()),
            ]
            .into(),
        ),
        ..Default::default()
    };
    ctx.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .context("create Secret")?;
    let providers = [
        // The Secret's address wins over spec.address.
        "metadata: {name: on-call}\nspec: {type: slack, channel: on-call, address: 'http://ignored.invalid/', secretRef: {name: on-call-hook}}".to_string(),
        format!("metadata: {{name: errors}}\nspec: {{type: generic, address: '{base}/generic'}}"),
        "metadata: {name: no-secret}\nspec: {type: msteams, secretRef: {name: absent}}".to_string(),
    ];
    for text in providers {
        let mut provider: AlertProvider = serde_saphyr::from_str(&format!(
            "apiVersion: flagger.app/v1beta1\nkind: AlertProvider\n{text}"
        ))
        .context("parse AlertProvider")?;
        provider.metadata.namespace = Some(ns.clone());
        ctx.api::<AlertProvider>()
            .create(&PostParams::default(), &provider)
            .await
            .context(format!("create AlertProvider {:?}", provider.metadata.name))?;
    }

    let mut canary: Canary =
        serde_saphyr::from_str(&CANARY.replace("NAMESPACE", ns)).context("parse canary")?;
    canary.metadata.namespace = Some(ns.clone());
    let status = CanaryStatus {
        last_applied_spec: Some("abc123".into()),
        ..Default::default()
    };
    let timeout = Duration::from_secs(3);
    let dispatcher = AlertDispatcher::with_sender(
        ctx.client.clone(),
        AlertSender::new().context("sender")?.with_timeout(timeout),
    );

    // A warning: on-call (info) receives it, errors (error) does not, the two broken entries
    // are reported.
    let warn = Alert::for_canary(
        &canary,
        AlertSeverity::Warn,
        "Canary is waiting for approval.",
        &status,
    );
    let started = Instant::now();
    let deliveries = dispatcher.dispatch(&canary, &warn).await;
    if started.elapsed() > timeout {
        return Err(format!("dispatch took {:?}", started.elapsed()).into());
    }
    let summary = summarize(&deliveries);
    let expected = vec![
        (
            "on-call".to_string(),
            format!("{ns}/on-call"),
            "ok".to_string(),
        ),
        (
            "missing-provider".to_string(),
            format!("{ns}/nobody"),
            format!("cannot read AlertProvider {ns}/nobody"),
        ),
        (
            "missing-secret".to_string(),
            format!("{ns}/no-secret"),
            format!("cannot read Secret {ns}/absent"),
        ),
    ];
    if summary != expected {
        return Err(format!("warn deliveries: {summary:?}, want {expected:?}").into());
    }
    let got = take(&requests)?;
    let [(path, auth, body)] = got.as_slice() else {
        return Err(format!("after the warning the receiver got {got:?}").into());
    };
    let attachment = &body["attachments"][0];
    let checks = [
        (path.as_str() == "/slack/SECRET", "path"),
        (auth.as_deref() == Some("Bearer xoxb-e2e"), "token"),
        (body["channel"] == "on-call", "channel"),
        (body["username"] == "flagger", "username default"),
        (attachment["color"] == "good", "colour"),
        (
            attachment["author_name"] == format!("podinfo.{ns}").as_str(),
            "author",
        ),
        (
            attachment["text"] == "Canary is waiting for approval.",
            "text",
        ),
        (attachment["fields"] == Value::Array(vec![]), "no metadata"),
    ];
    for (ok, what) in checks {
        if !ok {
            return Err(format!("slack payload {what}: {path} {auth:?} {body}").into());
        }
    }

    // An error reaches both working providers; the generic one gets Serin's document.
    let error = Alert::for_canary(
        &canary,
        AlertSeverity::Error,
        "Failed checks threshold reached 5",
        &status,
    );
    let deliveries = dispatcher.dispatch(&canary, &error).await;
    let ok: Vec<&str> = deliveries
        .iter()
        .filter(|d| d.result.is_ok())
        .map(|d| d.alert.as_str())
        .collect();
    if ok != ["on-call", "errors"] {
        return Err(format!("error deliveries: {:?}", summarize(&deliveries)).into());
    }
    let got = take(&requests)?;
    let generic = got
        .iter()
        .find(|(p, _, _)| p == "/generic")
        .ok_or_else(|| format!("no generic request in {got:?}"))?;
    let body = &generic.2;
    if body["canary"] != format!("{ns}/podinfo").as_str()
        || body["severity"] != "error"
        || body["message"] != "Failed checks threshold reached 5"
        || body["revision"] != "abc123"
        || generic.1.is_some()
    {
        return Err(format!("generic request: {generic:?}").into());
    }
    if got
        .iter()
        .any(|(p, _, b)| p == "/slack/SECRET" && b["attachments"][0]["color"] != "danger")
    {
        return Err(format!("the slack error alert is not red: {got:?}").into());
    }
    Ok(())
}

/// (entry, provider, "ok" or the error's own message) per delivery.
fn summarize(deliveries: &[Delivery]) -> Vec<(String, String, String)> {
    deliveries
        .iter()
        .map(|d| {
            let outcome = match &d.result {
                Ok(()) => "ok".to_string(),
                Err(e @ (AlertError::Provider { .. } | AlertError::Secret { .. })) => e.to_string(),
                Err(e) => serin::message::error_chain(e),
            };
            (d.alert.clone(), d.provider.clone(), outcome)
        })
        .collect()
}

fn take(requests: &Requests) -> Result<Vec<(String, Option<String>, Value)>, String> {
    requests
        .lock()
        .map(|mut r| std::mem::take(&mut *r))
        .map_err(|_| "receiver lock poisoned".to_string())
}
