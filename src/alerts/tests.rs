//! The payloads field by field against reference §7, the severity rule, the metadata fields,
//! and how an AlertProvider and its Secret resolve.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use reqwest::Url;
use serde_json::{Value, json};

use super::*;
use crate::api::{AlertProviderSpec, AlertProviderType, SecretReference};

fn alert(severity: AlertSeverity, fields: Vec<Field>) -> Alert {
    Alert {
        name: "podinfo".into(),
        namespace: "test".into(),
        severity,
        message: "New revision detected, progressing canary analysis.".into(),
        fields,
        phase: CanaryPhase::Progressing,
        revision: Some("5d8f".into()),
        timestamp: "2026-01-02T03:04:05Z".into(),
    }
}

fn two_fields() -> Vec<Field> {
    vec![
        Field::new("Target", "Deployment/podinfo.test"),
        Field::new("Failed checks threshold", "5"),
    ]
}

fn spec(kind: &str) -> AlertProviderSpec {
    AlertProviderSpec {
        r#type: Some(kind.into()),
        channel: Some("on-call".into()),
        username: Some("serin".into()),
        address: Some("https://hooks.example.com/services/T0/B0/XXXX".into()),
        ..Default::default()
    }
}

fn payload(kind: AlertProviderType, alert: &Alert) -> Value {
    notifier_for(kind, &spec(kind.as_str())).payload(alert)
}

/// Checks each `(JSON pointer, value)` and that nothing else is at the top level.
fn assert_fields(what: &str, payload: &Value, top: &[&str], expected: &[(&str, Value)]) {
    let mut keys: Vec<&str> = payload
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    let mut want = top.to_vec();
    want.sort_unstable();
    assert_eq!(keys, want, "{what}: top-level keys of {payload}");
    for (pointer, value) in expected {
        assert_eq!(
            payload.pointer(pointer),
            Some(value),
            "{what}: {pointer} in {payload}"
        );
    }
}

#[test]
fn slack_compatible_payloads() {
    let slack_top = ["channel", "username", "icon_emoji", "attachments"];
    let cases = [
        (AlertProviderType::Slack, AlertSeverity::Info, "good"),
        (AlertProviderType::Slack, AlertSeverity::Warn, "good"),
        (AlertProviderType::Slack, AlertSeverity::Error, "danger"),
        (AlertProviderType::Discord, AlertSeverity::Info, "good"),
        (AlertProviderType::Discord, AlertSeverity::Error, "danger"),
        (AlertProviderType::Rocket, AlertSeverity::Warn, "#0076D7"),
        (AlertProviderType::Rocket, AlertSeverity::Error, "#FF0000"),
    ];
    for (kind, severity, colour) in cases {
        let what = format!("{kind} {severity}");
        let p = payload(kind, &alert(severity, two_fields()));
        assert_fields(
            &what,
            &p,
            &slack_top,
            &[
                ("/channel", json!("on-call")),
                ("/username", json!("serin")),
                ("/icon_emoji", json!(":rocket:")),
                ("/attachments/0/color", json!(colour)),
                ("/attachments/0/author_name", json!("podinfo.test")),
                (
                    "/attachments/0/text",
                    json!("New revision detected, progressing canary analysis."),
                ),
                ("/attachments/0/mrkdwn_in", json!(["text"])),
                (
                    "/attachments/0/fields/0",
                    json!({"title": "Target", "value": "Deployment/podinfo.test", "short": false}),
                ),
                (
                    "/attachments/0/fields/1",
                    json!({"title": "Failed checks threshold", "value": "5", "short": false}),
                ),
            ],
        );
        assert_eq!(p["attachments"].as_array().unwrap().len(), 1, "{what}");
        // Without metadata the list is empty, not absent (Go's made slices encode as []).
        let bare = payload(kind, &alert(severity, vec![]));
        assert_eq!(bare["attachments"][0]["fields"], json!([]), "{what}");
    }
}

#[test]
fn channel_and_username_default_to_general_and_flagger() {
    let spec = AlertProviderSpec {
        r#type: Some("slack".into()),
        ..Default::default()
    };
    let p =
        notifier_for(AlertProviderType::Slack, &spec).payload(&alert(AlertSeverity::Info, vec![]));
    assert_eq!(p["channel"], "general");
    assert_eq!(p["username"], "flagger");
}

#[test]
fn msteams_message_card() {
    for (severity, colour) in [
        (AlertSeverity::Info, "0076D7"),
        (AlertSeverity::Warn, "0076D7"),
        (AlertSeverity::Error, "FF0000"),
    ] {
        let p = payload(AlertProviderType::MsTeams, &alert(severity, two_fields()));
        assert_fields(
            &format!("msteams {severity}"),
            &p,
            &["@type", "@context", "themeColor", "summary", "sections"],
            &[
                ("/@type", json!("MessageCard")),
                ("/@context", json!("http://schema.org/extensions")),
                ("/themeColor", json!(colour)),
                ("/summary", json!("podinfo.test")),
                (
                    "/sections/0/activityTitle",
                    json!("New revision detected, progressing canary analysis."),
                ),
                ("/sections/0/activitySubtitle", json!("podinfo.test")),
                (
                    "/sections/0/facts",
                    json!([
                        {"name": "Target", "value": "Deployment/podinfo.test"},
                        {"name": "Failed checks threshold", "value": "5"},
                    ]),
                ),
            ],
        );
        assert_eq!(p["sections"].as_array().unwrap().len(), 1);
    }
}

#[test]
fn gchat_card() {
    let p = payload(
        AlertProviderType::GChat,
        &alert(AlertSeverity::Error, two_fields()),
    );
    let text = |s: &str| json!([{"textParagraph": {"text": s}}]);
    assert_fields(
        "gchat",
        &p,
        &["cards"],
        &[
            ("/cards/0/header/title", json!("Flagger")),
            ("/cards/0/header/subtitle", json!("podinfo.test")),
            (
                "/cards/0/header/imageUrl",
                json!("https://flagger.app/favicon.png"),
            ),
            (
                "/cards/0/sections/0/widgets",
                text(
                    "<font color=#848484><strong>New revision detected, progressing canary analysis.</strong></font>",
                ),
            ),
            (
                "/cards/0/sections/1/widgets",
                text(
                    "Target<br><font color=#848484><strong>Deployment/podinfo.test</strong></font>",
                ),
            ),
            (
                "/cards/0/sections/2/widgets",
                text("Failed checks threshold<br><font color=#848484><strong>5</strong></font>"),
            ),
        ],
    );
    assert_eq!(p["cards"][0]["sections"].as_array().unwrap().len(), 3);
    let bare = payload(
        AlertProviderType::GChat,
        &alert(AlertSeverity::Info, vec![]),
    );
    assert_eq!(bare["cards"][0]["sections"].as_array().unwrap().len(), 1);
}

#[test]
fn generic_document() {
    for severity in [
        AlertSeverity::Info,
        AlertSeverity::Warn,
        AlertSeverity::Error,
    ] {
        let p = payload(AlertProviderType::Generic, &alert(severity, two_fields()));
        assert_eq!(
            p,
            json!({
                "canary": "test/podinfo",
                "severity": severity.as_str(),
                "message": "New revision detected, progressing canary analysis.",
                "phase": "Progressing",
                "revision": "5d8f",
                "timestamp": "2026-01-02T03:04:05Z",
            })
        );
    }
    let mut no_revision = alert(AlertSeverity::Info, vec![]);
    no_revision.revision = None;
    let p = payload(AlertProviderType::Generic, &no_revision);
    assert_eq!(p["revision"], Value::Null);
}

#[test]
fn discord_posts_to_the_slack_path() {
    let discord = notifier_for(AlertProviderType::Discord, &spec("discord"));
    let cases = [
        (
            "https://discord.com/api/webhooks/1/abc",
            "https://discord.com/api/webhooks/1/abc/slack",
        ),
        (
            "https://discord.com/api/webhooks/1/abc/",
            "https://discord.com/api/webhooks/1/abc/slack",
        ),
        (
            "https://discord.com/api/webhooks/1/abc/slack",
            "https://discord.com/api/webhooks/1/abc/slack",
        ),
        (
            "https://discord.com/api/webhooks/1/abc?wait=true",
            "https://discord.com/api/webhooks/1/abc/slack?wait=true",
        ),
    ];
    for (address, want) in cases {
        let got = discord.endpoint(&Url::parse(address).unwrap());
        assert_eq!(got.as_str(), want, "{address}");
    }
    // Other types post to the address as given.
    let slack = notifier_for(AlertProviderType::Slack, &spec("slack"));
    let url = Url::parse("https://hooks.slack.com/services/T/B/X").unwrap();
    assert_eq!(slack.endpoint(&url), url);
}

#[test]
fn severity_filter_is_at_most_the_message_severity() {
    use AlertSeverity::*;
    // (entry severity, message severity, sent)
    let cases = [
        (Some(Info), Info, true),
        (Some(Info), Warn, true),
        (Some(Info), Error, true),
        (Some(Warn), Info, false),
        (Some(Warn), Warn, true),
        (Some(Warn), Error, true),
        (Some(Error), Info, false),
        (Some(Error), Warn, false),
        (Some(Error), Error, true),
        // No severity: Flagger's documented default, info.
        (None, Info, true),
        (None, Error, true),
    ];
    for (filter, severity, sent) in cases {
        assert_eq!(receives(filter, severity), sent, "{filter:?} / {severity}");
    }
}

fn canary(analysis: &str) -> Canary {
    let text = format!(
        r#"
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
  namespace: test
spec:
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo-app
  progressDeadlineSeconds: 120
  analysis:
    interval: 1m
    threshold: 5
{analysis}
"#
    );
    serde_saphyr::from_str(&text).unwrap()
}

#[test]
fn metadata_fields_follow_flagger() {
    let base = |routing: Option<&str>| {
        let mut v = vec![
            Field::new("Target", "Deployment/podinfo-app.test"),
            Field::new("Failed checks threshold", "5"),
            Field::new("Progress deadline", "120s"),
        ];
        if let Some(r) = routing {
            v.push(Field::new("Traffic routing", r));
        }
        v
    };
    let cases = [
        (
            "    stepWeight: 10\n    maxWeight: 50",
            Some("Weight step: 10 max: 50"),
        ),
        ("    stepWeight: 10", Some("Weight step: 10 max: 100")),
        (
            "    stepWeights: [1, 5, 25, 60]",
            Some("Weight steps: 1,5,25,60 max: 60"),
        ),
        (
            "    iterations: 10\n    match:\n      - headers:\n          x-canary:\n            exact: insider",
            Some("A/B Testing"),
        ),
        ("    iterations: 10", Some("Blue/Green")),
        ("    maxWeight: 50", None),
    ];
    for (analysis, routing) in cases {
        assert_eq!(
            metadata_fields(&canary(analysis)),
            base(routing),
            "{analysis}"
        );
    }
}

#[test]
fn metadata_goes_with_the_two_new_revision_texts_only() {
    let c = canary("    stepWeight: 10");
    let status = CanaryStatus {
        phase: CanaryPhase::Initialized,
        last_applied_spec: Some("abc".into()),
        ..Default::default()
    };
    let with = [
        "New Deployment detected, initialization completed.",
        "New DaemonSet detected, initialization completed.",
        "New revision detected, progressing canary analysis.",
    ];
    let without = [
        "Canary analysis completed successfully, promotion finished.",
        "Canary is waiting for approval.",
        "Failed checks threshold reached 5",
        "Rolling back manual webhook invoked",
    ];
    for m in with {
        let a = Alert::for_canary(&c, AlertSeverity::Info, m, &status);
        assert_eq!(a.fields.len(), 4, "{m}");
    }
    for m in without {
        let a = Alert::for_canary(&c, AlertSeverity::Info, m, &status);
        assert!(a.fields.is_empty(), "{m}");
    }
    let a = Alert::for_canary(&c, AlertSeverity::Warn, without[1], &status);
    assert_eq!(
        (a.name.as_str(), a.namespace.as_str(), a.phase),
        ("podinfo", "test", CanaryPhase::Initialized)
    );
    assert_eq!(a.revision.as_deref(), Some("abc"));
    assert!(a.timestamp.ends_with('Z'), "{}", a.timestamp);
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

#[test]
fn the_secret_address_proxy_and_token_win() {
    let mut s = spec("slack");
    s.proxy = Some("http://spec-proxy:3128".into());
    s.secret_ref = Some(SecretReference {
        name: Some("hook".into()),
    });
    let secret = secret(&[
        ("address", "https://hooks.slack.com/services/SECRET\n"),
        ("proxy", "http://secret-proxy:3128"),
        ("token", " xoxb-1 "),
    ]);
    let d = Destination::resolve("test/on-call", &s, Some(&secret)).unwrap();
    assert_eq!(d.url().as_str(), "https://hooks.slack.com/services/SECRET");
    assert_eq!(d.proxy().unwrap().as_str(), "http://secret-proxy:3128/");
    assert_eq!(d.bearer(), Some("xoxb-1"));
    assert_eq!(d.kind(), AlertProviderType::Slack);

    // Without those keys the spec's address and proxy apply.
    let d = Destination::resolve("test/on-call", &s, Some(&secret_only_token())).unwrap();
    assert_eq!(
        d.url().as_str(),
        "https://hooks.example.com/services/T0/B0/XXXX"
    );
    assert_eq!(d.proxy().unwrap().as_str(), "http://spec-proxy:3128/");
}

fn secret_only_token() -> Secret {
    secret(&[("token", "t")])
}

#[test]
fn the_token_goes_only_to_types_that_use_it() {
    for (kind, sent) in [
        ("slack", true),
        ("generic", true),
        ("msteams", false),
        ("discord", false),
        ("rocket", false),
        ("gchat", false),
    ] {
        let d = Destination::resolve("ns/p", &spec(kind), Some(&secret_only_token())).unwrap();
        assert_eq!(d.bearer().is_some(), sent, "{kind}");
    }
}

#[test]
fn resolution_errors_never_show_the_address() {
    let mut s = spec("msteams");
    s.address = Some("ftp://hooks.example.com/SECRET-TOKEN".into());
    let e = Destination::resolve("ns/p", &s, None).unwrap_err();
    assert_eq!(e.to_string(), "the address is not a valid http(s) URL");
    s.address = Some("not a url SECRET-TOKEN".into());
    let e = Destination::resolve("ns/p", &s, None).unwrap_err();
    assert!(!e.to_string().contains("SECRET"), "{e}");

    s.address = None;
    s.secret_ref = Some(SecretReference {
        name: Some("hook".into()),
    });
    let e = Destination::resolve("ns/p", &s, Some(&secret_only_token())).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Secret hook has no address key and the AlertProvider no address"
    );

    let e = Destination::resolve("ns/p", &spec("pagerduty"), None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "AlertProvider type \"pagerduty\" is not one of slack, msteams, discord, rocket, gchat, generic"
    );

    // Debug output names the provider, not the URL or the token.
    let d = Destination::resolve(
        "ns/p",
        &spec("generic"),
        Some(&secret(&[("token", "SECRET-TOKEN")])),
    )
    .unwrap();
    let debug = format!("{d:?}");
    assert!(debug.contains("ns/p"), "{debug}");
    assert!(
        !debug.contains("SECRET") && !debug.contains("hooks"),
        "{debug}"
    );
}
