//! Serin's webhook client against real HTTP(S) servers on 127.0.0.1: what a receiver gets
//! (byte for byte), Flagger's success rule, timeouts, retries and their waits, hook order,
//! `disableTLS` against a self-signed certificate, and credentials kept out of reasons.
//!
//! The plain-HTTP receiver is an axum server that records every request and answers by
//! path (see [`respond`]); the HTTPS receiver is a small rustls server with a certificate
//! made by `openssl` for the test.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener as StdTcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use serin::api::{Canary, CanaryPhase, CanaryWebhook, HookType};
use serin::gates::{
    EventType, HookOutcome, WebhookClient, canary_checksum, hook_payload, payload_phase,
};

// ---------------------------------------------------------------------------------------
// The receiver
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Received {
    method: String,
    path: String,
    content_type: Option<String>,
    authorization: Option<String>,
    body: Vec<u8>,
    at: Instant,
}

#[derive(Clone, Default)]
struct Receiver {
    requests: Arc<Mutex<Vec<Received>>>,
    /// Requests seen per path, for `/flaky`.
    seen: Arc<Mutex<HashMap<String, u32>>>,
}

impl Receiver {
    fn requests(&self) -> Vec<Received> {
        self.requests.lock().unwrap().clone()
    }

    fn to(&self, path: &str) -> Vec<Received> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    fn paths(&self) -> Vec<String> {
        self.requests().into_iter().map(|r| r.path).collect()
    }
}

/// Answers by path:
/// * `/ok/<any>`: 200 `OK`;
/// * `/status/<code>/<any>`: `<code>` with a two-line body `status <code>` / `second line`;
/// * `/slow/<ms>/<any>`: 200 after `<ms>` milliseconds;
/// * `/flaky/<n>/<code>/<any>`: `<code>` for the first `<n>` requests, then 200;
/// * `/retry-after/<code>/<value>/<any>`: `<code>` with `Retry-After: <value>`;
/// * `/long/<any>`: 500 with a 20 kB, 1000-line body.
async fn respond(
    State(receiver): State<Receiver>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    receiver.requests.lock().unwrap().push(Received {
        method: method.to_string(),
        path: path.clone(),
        content_type: header("content-type"),
        authorization: header("authorization"),
        body: body.to_vec(),
        at: Instant::now(),
    });
    let seen = {
        let mut seen = receiver.seen.lock().unwrap();
        let n = seen.entry(path.clone()).or_default();
        *n += 1;
        *n
    };
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let code = |text: &str| StatusCode::from_u16(text.parse().unwrap()).unwrap();
    match parts.as_slice() {
        ["ok", ..] => (StatusCode::OK, "OK").into_response(),
        ["status", c, ..] => (code(c), format!("status {c}\r\n  second\tline\n")).into_response(),
        ["slow", ms, ..] => {
            tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
            (StatusCode::OK, "slow OK").into_response()
        }
        ["flaky", n, c, ..] if seen <= n.parse().unwrap() => (code(c), "try again").into_response(),
        ["flaky", ..] => (StatusCode::OK, "OK").into_response(),
        ["long", ..] => {
            let page: String = (0..1000)
                .map(|i| format!("<p>error line {i}</p>\n"))
                .collect();
            (StatusCode::INTERNAL_SERVER_ERROR, page).into_response()
        }
        ["retry-after", c, value, ..] => {
            (code(c), [("retry-after", value.to_string())], "later").into_response()
        }
        _ => (StatusCode::NOT_FOUND, "no such test path").into_response(),
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

/// A port nothing listens on: connections are refused.
fn closed_port() -> u16 {
    let listener = StdTcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

fn canary(phase: &str, webhooks: Value) -> Canary {
    serde_json::from_value(json!({
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "service": {"port": 9898},
            "analysis": {
                "interval": "1m", "threshold": 5, "stepWeight": 10,
                "webhooks": webhooks
            }
        },
        "status": {
            "phase": phase,
            "lastAppliedSpec": "5b8f7c9d4",
            "trackedConfigs": {"configmap/podinfo-config": "abc"}
        }
    }))
    .unwrap()
}

fn hook(value: Value) -> CanaryWebhook {
    serde_json::from_value(value).unwrap()
}

fn client() -> WebhookClient {
    WebhookClient::new().unwrap()
}

/// Calls one hook with an ordinary rollout payload.
async fn call(hook_value: Value) -> HookOutcome {
    let c = canary("Progressing", json!([]));
    let h = hook(hook_value);
    client()
        .call(&h, &hook_payload(&c, &h, CanaryPhase::Progressing))
        .await
}

fn failure(outcome: &HookOutcome) -> (String, Option<u16>, u32) {
    match outcome {
        HookOutcome::Failed {
            reason,
            status,
            attempts,
        } => (reason.clone(), *status, *attempts),
        HookOutcome::Passed => panic!("expected a failure, the hook passed"),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

// ---------------------------------------------------------------------------------------
// Payloads
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn each_hook_type_receives_flaggers_payload_byte_for_byte() {
    let (base, receiver) = start_receiver().await;
    // (hook type as written, status phase, phase the receiver must see)
    let cases = [
        ("confirm-rollout", "Initialized", "Initialized"),
        ("confirm-rollout", "Waiting", "Waiting"),
        ("pre-rollout", "Progressing", "Progressing"),
        ("rollout", "Progressing", "Progressing"),
        ("", "Progressing", "Progressing"),
        ("confirm-traffic-increase", "Progressing", "Progressing"),
        ("confirm-promotion", "WaitingPromotion", "Progressing"),
        ("rollback", "WaitingPromotion", "WaitingPromotion"),
        ("post-rollout", "Succeeded", "Succeeded"),
        ("post-rollout", "Failed", "Failed"),
    ];
    let client = client();
    for (i, (kind, status_phase, expected_phase)) in cases.into_iter().enumerate() {
        let path = format!("/ok/{i}");
        let c = canary(
            status_phase,
            json!([{
                "name": format!("hook-{i}"), "type": kind, "url": format!("{base}{path}"),
                "metadata": {"type": "cmd", "cmd": "hey -z 1m -q 10 http://podinfo-canary.test:9898/ && echo <done>"}
            }]),
        );
        let hook_type = HookType::parse(kind).unwrap_or(HookType::Rollout);
        let status = c.status.as_ref().unwrap().phase;
        let run = client
            .run_hooks(&c, hook_type, payload_phase(hook_type, status))
            .await;
        assert_eq!(run.calls.len(), 1, "{kind}");
        assert_eq!(run.calls[0].outcome, HookOutcome::Passed, "{kind}");

        let got = receiver.to(&path);
        assert_eq!(got.len(), 1, "{kind}");
        assert_eq!(got[0].method, "POST");
        assert_eq!(got[0].content_type.as_deref(), Some("application/json"));
        let checksum = canary_checksum(c.status.as_ref());
        let expected = format!(
            r#"{{"name":"podinfo","namespace":"test","phase":"{expected_phase}","checksum":"{checksum}","metadata":{{"cmd":"hey -z 1m -q 10 http://podinfo-canary.test:9898/ \u0026\u0026 echo \u003cdone\u003e","type":"cmd"}}}}"#
        );
        assert_eq!(text(&got[0].body), expected, "type {kind:?}");
    }
}

#[tokio::test]
async fn a_hook_without_metadata_sends_no_metadata_field() {
    let (base, receiver) = start_receiver().await;
    let c = canary(
        "Progressing",
        json!([
            {"name": "bare", "type": "pre-rollout", "url": format!("{base}/ok/bare")},
            {"name": "empty", "type": "pre-rollout", "url": format!("{base}/ok/empty"), "metadata": {}}
        ]),
    );
    let run = client()
        .run_hooks(&c, HookType::PreRollout, CanaryPhase::Progressing)
        .await;
    assert!(run.all_passed());
    let checksum = canary_checksum(c.status.as_ref());
    let expected = format!(
        r#"{{"name":"podinfo","namespace":"test","phase":"Progressing","checksum":"{checksum}"}}"#
    );
    for request in receiver.requests() {
        assert_eq!(text(&request.body), expected, "{}", request.path);
    }
    assert_eq!(receiver.requests().len(), 2);
}

#[tokio::test]
async fn every_event_webhook_receives_each_event_with_flaggers_metadata() {
    let (base, receiver) = start_receiver().await;
    let c = canary(
        "Progressing",
        json!([
            {"name": "sink-a", "type": "event", "url": format!("{base}/ok/sink-a"),
             "metadata": {"team": "web", "eventType": "spoofed", "timestamp": "0"}},
            {"name": "broken", "type": "event", "url": format!("{base}/status/500/broken")},
            {"name": "gate", "type": "pre-rollout", "url": format!("{base}/ok/gate")},
            {"name": "sink-b", "type": "event", "url": format!("{base}/ok/sink-b")}
        ]),
    );
    let message = "Halt podinfo.test advancement success rate 90.00% < 99%";
    let before = now_ms();
    let calls = client()
        .send_event(
            &c,
            EventType::Warning,
            message,
            Some(&format!("{base}/ok/default")),
        )
        .await;
    let after = now_ms();

    let names: Vec<&str> = calls.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["sink-a", "broken", "sink-b"]);
    assert!(calls[0].outcome.passed() && calls[2].outcome.passed());
    assert!(!calls[1].outcome.passed(), "a failing sink is reported");
    // Event hooks only, in list order; no gate, and the default sink is not used when
    // the canary has its own.
    assert_eq!(
        receiver.paths(),
        ["/ok/sink-a", "/status/500/broken", "/ok/sink-b"]
    );

    let checksum = canary_checksum(c.status.as_ref());
    let sink_a = &receiver.to("/ok/sink-a")[0];
    let body: Value = serde_json::from_slice(&sink_a.body).unwrap();
    let timestamp = body["metadata"]["timestamp"].as_str().unwrap().to_string();
    let ts: u128 = timestamp.parse().unwrap();
    assert!(before <= ts && ts <= after, "{before} <= {ts} <= {after}");
    let expected = format!(
        r#"{{"name":"podinfo","namespace":"test","phase":"Progressing","checksum":"{checksum}","metadata":{{"eventMessage":"Halt podinfo.test advancement success rate 90.00% \u003c 99%","eventType":"Warning","team":"web","timestamp":"{timestamp}"}}}}"#
    );
    assert_eq!(text(&sink_a.body), expected);
    let sink_b = &receiver.to("/ok/sink-b")[0];
    let expected_b = format!(
        r#"{{"name":"podinfo","namespace":"test","phase":"Progressing","checksum":"{checksum}","metadata":{{"eventMessage":"Halt podinfo.test advancement success rate 90.00% \u003c 99%","eventType":"Warning","timestamp":"{timestamp}"}}}}"#
    );
    assert_eq!(text(&sink_b.body), expected_b);
}

#[tokio::test]
async fn events_go_to_the_default_webhook_when_the_canary_has_none() {
    let (base, receiver) = start_receiver().await;
    let c = canary(
        "Succeeded",
        json!([{"name": "gate", "type": "confirm-rollout", "url": format!("{base}/ok/gate")}]),
    );
    let calls = client()
        .send_event(
            &c,
            EventType::Normal,
            "Promotion completed! Scaling down podinfo.test",
            Some(&format!("{base}/ok/default")),
        )
        .await;
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].name, "events");
    assert!(calls[0].outcome.passed());
    let got = receiver.to("/ok/default");
    assert_eq!(got.len(), 1);
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["phase"], "Succeeded");
    assert_eq!(body["metadata"]["eventType"], "Normal");
    assert_eq!(
        body["metadata"]["eventMessage"],
        "Promotion completed! Scaling down podinfo.test"
    );
    // No event hooks and no default: nothing is sent.
    let calls = client().send_event(&c, EventType::Normal, "x", None).await;
    assert!(calls.is_empty());
    assert_eq!(receiver.requests().len(), 1);
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

// ---------------------------------------------------------------------------------------
// Success rule
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn statuses_up_to_202_pass_and_the_rest_fail_with_a_one_line_reason() {
    let (base, receiver) = start_receiver().await;
    for code in [200u16, 201, 202] {
        let outcome = call(json!({"name": "gate", "url": format!("{base}/status/{code}/x")})).await;
        assert_eq!(outcome, HookOutcome::Passed, "{code}");
    }
    // 5xx are retried only when `retries` allows; with the default 0 they fail at once.
    for code in [
        203u16, 204, 226, 299, 400, 403, 404, 410, 429, 500, 501, 503,
    ] {
        let url = format!("{base}/status/{code}/x");
        let outcome = call(json!({"name": "gate", "url": url})).await;
        let (reason, status, attempts) = failure(&outcome);
        assert_eq!(status, Some(code));
        assert_eq!(attempts, 1, "{code}");
        assert!(
            reason.starts_with(&format!("webhook gate: POST {url} returned {code}")),
            "{reason}"
        );
        if code != 204 {
            assert!(
                reason.ends_with(&format!(": status {code} second line")),
                "{reason}"
            );
        }
        assert!(!reason.contains('\n') && !reason.contains('\r') && !reason.contains('\t'));
    }
    for code in [
        200u16, 201, 202, 203, 204, 226, 299, 400, 403, 404, 410, 429, 500, 501, 503,
    ] {
        assert_eq!(receiver.to(&format!("/status/{code}/x")).len(), 1, "{code}");
    }
}

#[tokio::test]
async fn a_long_error_page_is_cut_to_a_short_excerpt() {
    let (base, _receiver) = start_receiver().await;
    let url = format!("{base}/long/a");
    let outcome = call(json!({"name": "gate", "url": url})).await;
    let (reason, status, _) = failure(&outcome);
    assert_eq!(status, Some(500));
    let prefix = format!("webhook gate: POST {url} returned 500 Internal Server Error: ");
    let excerpt = reason
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{reason}"));
    assert!(
        excerpt.starts_with("<p>error line 0</p> <p>error line 1</p>"),
        "{excerpt}"
    );
    assert!(excerpt.ends_with('…'), "{excerpt}");
    assert_eq!(excerpt.chars().count(), 201, "{excerpt}");
}

// ---------------------------------------------------------------------------------------
// Timeout
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_hook_slower_than_its_timeout_fails_once_the_timeout_is_up() {
    let (base, receiver) = start_receiver().await;
    let started = Instant::now();
    let outcome =
        call(json!({"name": "slow", "url": format!("{base}/slow/5000/a"), "timeout": "1s"})).await;
    let elapsed = started.elapsed();
    let (reason, status, attempts) = failure(&outcome);
    assert_eq!((status, attempts), (None, 1));
    assert!(reason.contains("timed out after 1s"), "{reason}");
    assert!(
        elapsed >= Duration::from_millis(950) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    assert_eq!(receiver.to("/slow/5000/a").len(), 1);

    // Within its timeout a slow hook passes.
    let outcome =
        call(json!({"name": "slow", "url": format!("{base}/slow/300/b"), "timeout": "2s"})).await;
    assert_eq!(outcome, HookOutcome::Passed);
}

#[tokio::test]
async fn an_invalid_timeout_fails_without_a_request() {
    let (base, receiver) = start_receiver().await;
    let outcome =
        call(json!({"name": "gate", "url": format!("{base}/ok/a"), "timeout": "10x"})).await;
    let (reason, status, attempts) = failure(&outcome);
    assert_eq!((status, attempts), (None, 0));
    assert!(
        reason.starts_with("webhook gate: timeout is not valid"),
        "{reason}"
    );
    assert!(receiver.requests().is_empty());
}

// ---------------------------------------------------------------------------------------
// Retries
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn retries_resend_with_backoff_and_stop_at_the_first_success() {
    let (base, receiver) = start_receiver().await;
    let path = "/flaky/2/503/a";
    let outcome =
        call(json!({"name": "flaky", "url": format!("{base}{path}"), "retries": 3})).await;
    assert_eq!(outcome, HookOutcome::Passed);
    let got = receiver.to(path);
    // Two 503s, then the 200 ends it: the fourth attempt allowed by `retries: 3` is not made.
    assert_eq!(got.len(), 3);
    // go-retryablehttp's waits: 1 s, then 2 s.
    let first_wait = got[1].at - got[0].at;
    let second_wait = got[2].at - got[1].at;
    assert!(first_wait >= Duration::from_millis(950), "{first_wait:?}");
    assert!(
        second_wait >= Duration::from_millis(1950),
        "{second_wait:?}"
    );
    // Every attempt carries the same body.
    assert!(got.iter().all(|r| r.body == got[0].body));
}

#[tokio::test]
async fn retries_give_up_after_retries_plus_one_attempts() {
    let (base, receiver) = start_receiver().await;
    let url = format!("{base}/status/500/a");
    let outcome = call(json!({"name": "broken", "url": url, "retries": 1})).await;
    let (reason, status, attempts) = failure(&outcome);
    assert_eq!((status, attempts), (Some(500), 2));
    assert_eq!(
        reason,
        format!(
            "webhook broken: POST {url} returned 500 Internal Server Error: status 500 second line (gave up after 2 attempts)"
        )
    );
    assert_eq!(receiver.to("/status/500/a").len(), 2);
}

#[tokio::test]
async fn statuses_that_cannot_heal_are_not_retried() {
    let (base, receiver) = start_receiver().await;
    let started = Instant::now();
    for code in [203u16, 400, 403, 404, 501] {
        let outcome =
            call(json!({"name": "gate", "url": format!("{base}/status/{code}/a"), "retries": 3}))
                .await;
        assert_eq!(failure(&outcome).2, 1, "{code}");
        assert_eq!(receiver.to(&format!("/status/{code}/a")).len(), 1, "{code}");
    }
    // No backoff was waited for.
    assert!(started.elapsed() < Duration::from_millis(900));
}

#[tokio::test]
async fn retry_after_replaces_the_backoff_on_429_and_503() {
    let (base, receiver) = start_receiver().await;
    for code in [429u16, 503] {
        let path = format!("/retry-after/{code}/0/a");
        let started = Instant::now();
        let outcome =
            call(json!({"name": "busy", "url": format!("{base}{path}"), "retries": 2})).await;
        let elapsed = started.elapsed();
        let (_, status, attempts) = failure(&outcome);
        assert_eq!((status, attempts), (Some(code), 3));
        assert_eq!(receiver.to(&path).len(), 3);
        // Without `Retry-After: 0` the waits would be 1 s + 2 s.
        assert!(elapsed < Duration::from_millis(2500), "{code}: {elapsed:?}");
    }
    // On a 500 the header is ignored and the backoff applies.
    let path = "/retry-after/500/0/a";
    let outcome = call(json!({"name": "busy", "url": format!("{base}{path}"), "retries": 1})).await;
    assert_eq!(failure(&outcome).2, 2);
    let got = receiver.to(path);
    assert!(got[1].at - got[0].at >= Duration::from_millis(950));
}

#[tokio::test]
async fn transport_errors_and_timeouts_are_retried() {
    let port = closed_port();
    let url = format!("http://127.0.0.1:{port}/gate");
    let started = Instant::now();
    let outcome = call(json!({"name": "down", "url": url, "retries": 1})).await;
    let elapsed = started.elapsed();
    let (reason, status, attempts) = failure(&outcome);
    assert_eq!((status, attempts), (None, 2));
    assert!(
        reason.starts_with(&format!("webhook down: POST {url} failed: ")),
        "{reason}"
    );
    assert!(reason.ends_with("(gave up after 2 attempts)"), "{reason}");
    assert!(elapsed >= Duration::from_millis(950), "{elapsed:?}");

    let (base, receiver) = start_receiver().await;
    let outcome = call(json!({"name": "slow", "url": format!("{base}/slow/3000/a"), "timeout": "1s", "retries": 1})).await;
    let (reason, _, attempts) = failure(&outcome);
    assert_eq!(attempts, 2);
    assert!(
        reason.contains("timed out after 1s (gave up after 2 attempts)"),
        "{reason}"
    );
    assert_eq!(receiver.to("/slow/3000/a").len(), 2);
}

// ---------------------------------------------------------------------------------------
// Order
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn hooks_of_one_type_run_in_list_order_and_stop_at_the_first_failure() {
    let (base, receiver) = start_receiver().await;
    let c = canary(
        "Progressing",
        json!([
            {"name": "a", "type": "pre-rollout", "url": format!("{base}/ok/a")},
            {"name": "other-type", "type": "rollout", "url": format!("{base}/ok/other")},
            {"name": "b", "type": "pre-rollout", "url": format!("{base}/status/403/b")},
            {"name": "c", "type": "pre-rollout", "url": format!("{base}/ok/c")}
        ]),
    );
    let run = client()
        .run_hooks(&c, HookType::PreRollout, CanaryPhase::Progressing)
        .await;
    let names: Vec<&str> = run.calls.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(
        run.passed().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["a"]
    );
    let failed = run.first_failure().unwrap();
    assert_eq!(failed.name, "b");
    assert!(
        failed
            .outcome
            .reason()
            .unwrap()
            .contains("returned 403 Forbidden")
    );
    assert!(!run.all_passed());
    assert_eq!(receiver.paths(), ["/ok/a", "/status/403/b"]);

    // All pass: all run, in order.
    let c = canary(
        "Progressing",
        json!([
            {"name": "x", "type": "confirm-promotion", "url": format!("{base}/ok/x")},
            {"name": "y", "type": "confirm-promotion", "url": format!("{base}/ok/y")}
        ]),
    );
    let run = client()
        .run_hooks(&c, HookType::ConfirmPromotion, CanaryPhase::Progressing)
        .await;
    assert!(run.all_passed());
    assert_eq!(run.calls.len(), 2);
    assert_eq!(&receiver.paths()[2..], ["/ok/x", "/ok/y"]);
}

#[tokio::test]
async fn rollback_hooks_run_until_the_first_one_that_passes() {
    let (base, receiver) = start_receiver().await;
    let c = canary(
        "Progressing",
        json!([
            {"name": "r1", "type": "rollback", "url": format!("{base}/status/403/r1")},
            {"name": "r2", "type": "rollback", "url": format!("{base}/ok/r2")},
            {"name": "r3", "type": "rollback", "url": format!("{base}/ok/r3")}
        ]),
    );
    let run = client()
        .run_hooks(&c, HookType::Rollback, CanaryPhase::Progressing)
        .await;
    assert_eq!(run.rollback_requested().unwrap().name, "r2");
    assert_eq!(
        run.failed().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["r1"]
    );
    assert_eq!(receiver.paths(), ["/status/403/r1", "/ok/r2"]);

    // None passes: every rollback hook is asked, no rollback.
    let c = canary(
        "Progressing",
        json!([
            {"name": "q1", "type": "rollback", "url": format!("{base}/status/403/q1")},
            {"name": "q2", "type": "rollback", "url": format!("{base}/status/404/q2")}
        ]),
    );
    let run = client()
        .run_hooks(&c, HookType::Rollback, CanaryPhase::Progressing)
        .await;
    assert!(run.rollback_requested().is_none());
    assert_eq!(run.calls.len(), 2);
}

// ---------------------------------------------------------------------------------------
// disableTLS
// ---------------------------------------------------------------------------------------

/// An HTTPS receiver with a fresh self-signed certificate for 127.0.0.1 that answers
/// every request with 200 and records the request bodies. Returns its port.
fn start_tls_receiver() -> (u16, Arc<Mutex<Vec<Vec<u8>>>>) {
    serin::crypto::install_default_provider();
    let dir = std::env::temp_dir().join(format!("serin-webhooks-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = |name: &str| -> PathBuf { dir.join(name) };
    let openssl = |args: &[&str]| {
        let status = Command::new("openssl").args(args).output().unwrap();
        assert!(status.status.success(), "openssl {args:?}: {status:?}");
    };
    let (key_pem, cert_pem) = (file("key.pem"), file("cert.pem"));
    let (key_der, cert_der) = (file("key.der"), file("cert.der"));
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        "-keyout",
        key_pem.to_str().unwrap(),
        "-out",
        cert_pem.to_str().unwrap(),
    ]);
    openssl(&[
        "x509",
        "-in",
        cert_pem.to_str().unwrap(),
        "-outform",
        "DER",
        "-out",
        cert_der.to_str().unwrap(),
    ]);
    openssl(&[
        "pkcs8",
        "-topk8",
        "-nocrypt",
        "-in",
        key_pem.to_str().unwrap(),
        "-outform",
        "DER",
        "-out",
        key_der.to_str().unwrap(),
    ]);
    let cert = rustls::pki_types::CertificateDer::from(std::fs::read(&cert_der).unwrap());
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        std::fs::read(&key_der).unwrap(),
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let config = Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap(),
    );

    let listener = StdTcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let recorded = bodies.clone();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
            let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                continue;
            };
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            // A client that refuses the certificate ends the handshake: nothing to record.
            if let Some(body) = read_http_request(&mut tls) {
                recorded.lock().unwrap().push(body);
                let _ = tls.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK",
                );
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        }
    });
    (port, bodies)
}

/// The body of one HTTP/1.1 request with a Content-Length.
fn read_http_request(stream: &mut impl Read) -> Option<Vec<u8>> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let header_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut buf).ok().filter(|n| *n > 0)?;
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..header_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while data.len() < header_end + length {
        let n = stream.read(&mut buf).ok().filter(|n| *n > 0)?;
        data.extend_from_slice(&buf[..n]);
    }
    Some(data[header_end..header_end + length].to_vec())
}

#[tokio::test]
async fn disable_tls_accepts_a_self_signed_certificate_and_only_then() {
    let (port, bodies) = start_tls_receiver();
    let url = format!("https://127.0.0.1:{port}/gate");

    // Verified: refused, and not retried (another attempt cannot fix a certificate).
    let started = Instant::now();
    let outcome = call(json!({"name": "tls", "url": url, "retries": 2})).await;
    let elapsed = started.elapsed();
    let (reason, status, attempts) = failure(&outcome);
    assert_eq!((status, attempts), (None, 1), "{reason}");
    assert!(
        reason.starts_with(&format!("webhook tls: POST {url} failed: ")),
        "{reason}"
    );
    assert!(reason.to_lowercase().contains("certificate"), "{reason}");
    assert!(elapsed < Duration::from_millis(900), "{elapsed:?}");
    assert!(bodies.lock().unwrap().is_empty());

    // disableTLS: accepted, and the receiver gets the payload.
    let c = canary("Progressing", json!([]));
    let h = hook(json!({"name": "tls", "url": url, "disableTLS": true}));
    let payload = hook_payload(&c, &h, CanaryPhase::Progressing);
    let outcome = client().call(&h, &payload).await;
    assert_eq!(outcome, HookOutcome::Passed);
    assert_eq!(*bodies.lock().unwrap(), vec![payload.to_json()]);
}

// ---------------------------------------------------------------------------------------
// Credentials
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn credentials_in_urls_are_used_but_never_shown() {
    let (base, receiver) = start_receiver().await;
    let with_credentials = |url: &str| url.replacen("://", "://user:s3cret@", 1);
    let port = closed_port();
    let cases = [
        // A status failure, a refused connection, a timeout, two invalid URLs.
        json!({"name": "h", "url": with_credentials(&format!("{base}/status/500/creds"))}),
        json!({"name": "h", "url": with_credentials(&format!("http://127.0.0.1:{port}/"))}),
        json!({"name": "h", "url": with_credentials(&format!("{base}/slow/3000/creds")), "timeout": "1s"}),
        json!({"name": "h", "url": "ftp://user:s3cret@files.test/hook"}),
        json!({"name": "h", "url": "http://user:s3cret@[bad/hook"}),
    ];
    for case in cases {
        let outcome = call(case.clone()).await;
        let (reason, _, _) = failure(&outcome);
        assert!(
            !reason.contains("s3cret") && !reason.contains("user"),
            "{case}: {reason}"
        );
    }
    let scrubbed = format!("webhook h: POST {base}/status/500/creds returned 500");
    let outcome =
        call(json!({"name": "h", "url": with_credentials(&format!("{base}/status/500/creds"))}))
            .await;
    assert!(failure(&outcome).0.starts_with(&scrubbed), "{outcome:?}");
    // As in Go, the credentials are sent as Basic authentication.
    let got = receiver.to("/status/500/creds");
    assert!(!got.is_empty());
    assert!(
        got.iter()
            .all(|r| r.authorization.as_deref() == Some("Basic dXNlcjpzM2NyZXQ="))
    );
}

#[tokio::test]
async fn a_hook_with_an_unusable_url_fails_without_a_request() {
    for url in ["", "not a url", "ftp://files.test/hook", "/relative/path"] {
        let outcome = call(json!({"name": "bad", "url": url, "retries": 3})).await;
        let (reason, status, attempts) = failure(&outcome);
        assert_eq!((status, attempts), (None, 0), "{url}");
        assert!(reason.starts_with("webhook bad: url "), "{reason}");
    }
}
