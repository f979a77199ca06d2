//! Alerts against real HTTP receivers on 127.0.0.1: what each provider type receives (path,
//! headers, body), a proxy in between, and receivers that fail — a 500, one that never
//! answers, a closed port — reported within the timeout without holding up the others.
//!
//! The AlertProviders are resolved from their specs and Secrets in memory here; reading them
//! from the cluster is covered by the end-to-end trial `alerts_resolve_providers_and_secrets`.

use std::collections::BTreeMap;
use std::net::TcpListener as StdTcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use serde_json::{Value, json};

use serin::alerts::{Alert, AlertError, AlertSender, Destination, Field};
use serin::api::{AlertProviderSpec, AlertSeverity, CanaryPhase, SecretReference};

#[derive(Clone, Debug)]
struct Received {
    /// The request target as sent: a path, or an absolute URL when it came through a proxy.
    uri: String,
    content_type: Option<String>,
    authorization: Option<String>,
    body: Value,
}

#[derive(Clone, Default)]
struct Receiver {
    requests: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn requests(&self) -> Vec<Received> {
        self.requests.lock().unwrap().clone()
    }

    fn one_to(&self, path: &str) -> Received {
        let found: Vec<Received> = self
            .requests()
            .into_iter()
            .filter(|r| r.uri.ends_with(path))
            .collect();
        assert_eq!(found.len(), 1, "requests to {path}: {found:?}");
        found.into_iter().next().unwrap()
    }
}

/// Records every request; `/fail/...` answers 500 with a body, anything else 200.
async fn respond(
    State(receiver): State<Receiver>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    receiver.requests.lock().unwrap().push(Received {
        uri: uri.to_string(),
        content_type: header("content-type"),
        authorization: header("authorization"),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    if uri.path().starts_with("/fail/") {
        (StatusCode::INTERNAL_SERVER_ERROR, "no_service\n  try later").into_response()
    } else {
        (StatusCode::OK, "ok").into_response()
    }
}

async fn start_receiver() -> (String, Receiver) {
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new().fallback(respond).with_state(receiver.clone());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (base, receiver)
}

/// Accepts connections and never answers (nor closes them).
async fn start_silent_receiver() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    base
}

/// A port nothing listens on: connections are refused.
fn closed_port() -> u16 {
    let listener = StdTcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn alert(severity: AlertSeverity) -> Alert {
    Alert {
        name: "podinfo".into(),
        namespace: "test".into(),
        severity,
        message: "New revision detected, progressing canary analysis.".into(),
        fields: vec![
            Field::new("Target", "Deployment/podinfo.test"),
            Field::new("Traffic routing", "Weight step: 10 max: 50"),
        ],
        phase: CanaryPhase::Progressing,
        revision: Some("5d8f".into()),
        timestamp: "2026-01-02T03:04:05Z".into(),
    }
}

fn secret(pairs: &[(&str, &str)]) -> Secret {
    Secret {
        data: Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..Default::default()
    }
}

/// An AlertProvider of `kind` whose Secret holds `address` and a token.
fn destination(kind: &str, address: &str) -> Destination {
    let spec = AlertProviderSpec {
        r#type: Some(kind.into()),
        secret_ref: Some(SecretReference {
            name: Some(format!("{kind}-hook")),
        }),
        ..Default::default()
    };
    let secret = secret(&[("address", address), ("token", "t0ken")]);
    Destination::resolve(&format!("test/{kind}"), &spec, Some(&secret)).unwrap()
}

#[tokio::test]
async fn every_type_receives_its_payload() {
    let (base, receiver) = start_receiver().await;
    let kinds = ["slack", "msteams", "discord", "rocket", "gchat", "generic"];
    let destinations = kinds
        .iter()
        .map(|k| {
            (
                format!("{k}-alert"),
                destination(k, &format!("{base}/{k}/T0/XXXX")),
            )
        })
        .collect();
    let sender = AlertSender::new().unwrap();
    let deliveries = sender
        .send_all(destinations, &alert(AlertSeverity::Error))
        .await;
    for (d, kind) in deliveries.iter().zip(kinds) {
        assert_eq!(d.alert, format!("{kind}-alert"));
        assert_eq!(d.provider, format!("test/{kind}"));
        assert!(d.result.is_ok(), "{kind}: {:?}", d.result);
    }
    assert_eq!(receiver.requests().len(), kinds.len());

    // Every receiver gets JSON; the token only where the type uses one.
    for (kind, path, token) in [
        ("slack", "/slack/T0/XXXX", true),
        ("msteams", "/msteams/T0/XXXX", false),
        ("discord", "/discord/T0/XXXX/slack", false),
        ("rocket", "/rocket/T0/XXXX", false),
        ("gchat", "/gchat/T0/XXXX", false),
        ("generic", "/generic/T0/XXXX", true),
    ] {
        let r = receiver.one_to(path);
        assert_eq!(
            r.content_type.as_deref(),
            Some("application/json"),
            "{kind}"
        );
        assert_eq!(
            r.authorization.as_deref(),
            token.then_some("Bearer t0ken"),
            "{kind}"
        );
    }

    let slack_like = |path: &str, colour: &str| {
        let body = receiver.one_to(path).body;
        assert_eq!(body["channel"], "general", "{path}");
        assert_eq!(body["username"], "flagger", "{path}");
        assert_eq!(body["icon_emoji"], ":rocket:", "{path}");
        let a = &body["attachments"][0];
        assert_eq!(a["color"], colour, "{path}");
        assert_eq!(a["author_name"], "podinfo.test", "{path}");
        assert_eq!(
            a["text"], "New revision detected, progressing canary analysis.",
            "{path}"
        );
        assert_eq!(a["mrkdwn_in"], json!(["text"]), "{path}");
        assert_eq!(
            a["fields"],
            json!([
                {"title": "Target", "value": "Deployment/podinfo.test", "short": false},
                {"title": "Traffic routing", "value": "Weight step: 10 max: 50", "short": false},
            ]),
            "{path}"
        );
    };
    slack_like("/slack/T0/XXXX", "danger");
    slack_like("/discord/T0/XXXX/slack", "danger");
    slack_like("/rocket/T0/XXXX", "#FF0000");

    let teams = receiver.one_to("/msteams/T0/XXXX").body;
    assert_eq!(teams["@type"], "MessageCard");
    assert_eq!(teams["@context"], "http://schema.org/extensions");
    assert_eq!(teams["themeColor"], "FF0000");
    assert_eq!(teams["summary"], "podinfo.test");
    assert_eq!(
        teams["sections"][0]["activityTitle"],
        "New revision detected, progressing canary analysis."
    );
    assert_eq!(teams["sections"][0]["activitySubtitle"], "podinfo.test");
    assert_eq!(
        teams["sections"][0]["facts"][1],
        json!({"name": "Traffic routing", "value": "Weight step: 10 max: 50"})
    );

    let gchat = receiver.one_to("/gchat/T0/XXXX").body;
    let card = &gchat["cards"][0];
    assert_eq!(card["header"]["title"], "Flagger");
    assert_eq!(card["header"]["subtitle"], "podinfo.test");
    assert_eq!(
        card["header"]["imageUrl"],
        "https://flagger.app/favicon.png"
    );
    assert_eq!(card["sections"].as_array().unwrap().len(), 3);
    assert_eq!(
        card["sections"][1]["widgets"][0]["textParagraph"]["text"],
        "Target<br><font color=#848484><strong>Deployment/podinfo.test</strong></font>"
    );

    assert_eq!(
        receiver.one_to("/generic/T0/XXXX").body,
        json!({
            "canary": "test/podinfo",
            "severity": "error",
            "message": "New revision detected, progressing canary analysis.",
            "phase": "Progressing",
            "revision": "5d8f",
            "timestamp": "2026-01-02T03:04:05Z",
        })
    );
}

#[tokio::test]
async fn the_proxy_carries_the_request() {
    let (proxy, receiver) = start_receiver().await;
    let spec = AlertProviderSpec {
        r#type: Some("generic".into()),
        // Resolvable by nobody: only the proxy can deliver it.
        address: Some("http://alerts.invalid/hook".into()),
        proxy: Some(proxy),
        ..Default::default()
    };
    let d = Destination::resolve("test/proxied", &spec, None).unwrap();
    AlertSender::new()
        .unwrap()
        .send(&d, &alert(AlertSeverity::Info))
        .await
        .unwrap();
    let r = receiver.one_to("/hook");
    // An HTTP proxy receives the absolute URL.
    assert_eq!(r.uri, "http://alerts.invalid/hook");
    assert_eq!(r.body["severity"], "info");
}

#[tokio::test]
async fn failures_are_reported_within_the_timeout() {
    let (base, receiver) = start_receiver().await;
    let silent = start_silent_receiver().await;
    let closed = format!("http://127.0.0.1:{}", closed_port());
    let timeout = Duration::from_millis(1500);
    let sender = AlertSender::new().unwrap().with_timeout(timeout);
    // Each address carries a "credential" in its path, which no report may show.
    let destinations = vec![
        (
            "ok".into(),
            destination("slack", &format!("{base}/ok/SECRET1")),
        ),
        (
            "fails".into(),
            destination("msteams", &format!("{base}/fail/SECRET2")),
        ),
        (
            "silent".into(),
            destination("generic", &format!("{silent}/SECRET3")),
        ),
        (
            "closed".into(),
            destination("gchat", &format!("{closed}/SECRET4")),
        ),
    ];
    let started = Instant::now();
    let deliveries = sender
        .send_all(destinations, &alert(AlertSeverity::Warn))
        .await;
    let elapsed = started.elapsed();
    // The silent receiver holds the alert for exactly the timeout, the others answer at once;
    // all ran together, so the whole alert took about one timeout, not one per receiver.
    assert!(elapsed >= timeout, "{elapsed:?}");
    assert!(
        elapsed < timeout + Duration::from_millis(700),
        "{elapsed:?}"
    );

    let names: Vec<&str> = deliveries.iter().map(|d| d.alert.as_str()).collect();
    assert_eq!(names, ["ok", "fails", "silent", "closed"]);
    assert!(deliveries[0].result.is_ok(), "{:?}", deliveries[0].result);
    match &deliveries[1].result {
        Err(AlertError::Status { code: 500, body }) => assert_eq!(body, "no_service try later"),
        other => panic!("500 receiver: {other:?}"),
    }
    assert!(
        matches!(deliveries[2].result, Err(AlertError::Timeout(t)) if t == timeout),
        "{:?}",
        deliveries[2].result
    );
    assert!(
        matches!(deliveries[3].result, Err(AlertError::Transport(_))),
        "{:?}",
        deliveries[3].result
    );
    for d in &deliveries {
        if let Err(e) = &d.result {
            let text = serin::message::error_chain(e);
            assert!(!text.contains("SECRET"), "{}: {text}", d.alert);
            assert!(!text.contains("127.0.0.1"), "{}: {text}", d.alert);
        }
    }
    assert_eq!(receiver.requests().len(), 2);

    // One receiver alone is bounded the same way.
    let started = Instant::now();
    let result = sender
        .send(
            &destination("rocket", &format!("{silent}/SECRET5")),
            &alert(AlertSeverity::Error),
        )
        .await;
    assert!(matches!(result, Err(AlertError::Timeout(_))), "{result:?}");
    assert!(started.elapsed() < timeout + Duration::from_millis(700));
}
