//! The body Flagger POSTs to a webhook (reference §6.1), byte for byte.
//!
//! Gate services and event sinks written for Flagger parse this body, and some compare it
//! (or hash it), so the field names, their order, the omission of an empty `metadata` and
//! even Go's JSON escaping are reproduced:
//!
//! ```json
//! {"name":"podinfo","namespace":"test","phase":"Progressing","checksum":"…","metadata":{"cmd":"…"}}
//! ```
//!
//! Flagger's payload has no `type` field: a receiver tells hook types apart by URL or by
//! `metadata`, and Serin sends nothing Flagger would not.

use std::collections::BTreeMap;
use std::io;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::api::{Canary, CanaryPhase, CanaryStatus, CanaryWebhook, HookType};

/// Kubernetes event type of a recorded event, as sent in `metadata.eventType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    /// The event type as Kubernetes writes it.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Flagger's `CanaryWebhookPayload`. Field order is the JSON order.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct WebhookPayload {
    /// The Canary's name.
    pub name: String,
    /// The Canary's namespace.
    pub namespace: String,
    /// The phase this hook type reports (see [`payload_phase`]); `""` before the first sync.
    pub phase: CanaryPhase,
    /// Identifies what is being rolled out (see [`canary_checksum`]).
    pub checksum: String,
    /// The hook's `metadata`; for event webhooks also the event (see [`event_payload`]).
    /// Go's `omitempty`: left out when empty, whether absent or `{}` in the manifest.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

impl WebhookPayload {
    /// The body as Go's `json.Marshal` writes it: compact, map keys sorted, and `<`, `>`,
    /// `&`, U+2028 and U+2029 escaped as `\u003c`-style sequences.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        let mut serializer = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
        // Only strings and a string map: serializing cannot fail (the writer is a Vec).
        if let Err(error) = self.serialize(&mut serializer) {
            tracing::error!(%error, "webhook payload did not serialize");
        }
        out
    }
}

/// The phase Flagger puts in the payload of a hook of `kind` (reference §2.5 table).
///
/// * pre-rollout, rollout, confirm-traffic-increase and confirm-promotion always report
///   `Progressing`;
/// * confirm-rollout, rollback and event report the canary's current status phase;
/// * post-rollout reports the outcome, `Succeeded` or `Failed`. Flagger writes that phase
///   to the status just before it runs these hooks, so `status_phase` is the outcome when
///   the caller follows the same order; a caller that has not written it yet must pass the
///   outcome itself.
pub fn payload_phase(kind: HookType, status_phase: CanaryPhase) -> CanaryPhase {
    match kind {
        HookType::PreRollout
        | HookType::Rollout
        | HookType::ConfirmTrafficIncrease
        | HookType::ConfirmPromotion => CanaryPhase::Progressing,
        HookType::ConfirmRollout | HookType::Rollback | HookType::Event | HookType::PostRollout => {
            status_phase
        }
    }
}

/// The payload of a gate or notification hook (every type but `event`): Flagger's
/// `CallWebhook`. `phase` comes from [`payload_phase`].
pub fn hook_payload(canary: &Canary, hook: &CanaryWebhook, phase: CanaryPhase) -> WebhookPayload {
    WebhookPayload {
        name: canary.metadata.name.clone().unwrap_or_default(),
        namespace: canary.metadata.namespace.clone().unwrap_or_default(),
        phase,
        checksum: canary_checksum(canary.status.as_ref()),
        metadata: hook.metadata.clone().unwrap_or_default(),
    }
}

/// The payload of an `event` webhook for one recorded event: Flagger's `CallEventWebhook`.
///
/// `metadata` holds `eventMessage`, `eventType` and `timestamp` (Unix epoch milliseconds,
/// as a string), plus the hook's own metadata keys that do not collide with these three:
/// the event wins. The phase is the canary's current status phase.
pub fn event_payload(
    canary: &Canary,
    hook: &CanaryWebhook,
    event_type: EventType,
    message: &str,
    timestamp_ms: u128,
) -> WebhookPayload {
    let mut metadata = BTreeMap::from([
        ("eventMessage".to_string(), message.to_string()),
        ("eventType".to_string(), event_type.as_str().to_string()),
        ("timestamp".to_string(), timestamp_ms.to_string()),
    ]);
    for (key, value) in hook.metadata.iter().flatten() {
        metadata.entry(key.clone()).or_insert_with(|| value.clone());
    }
    let phase = canary.status.as_ref().map(|s| s.phase).unwrap_or_default();
    WebhookPayload {
        metadata,
        ..hook_payload(canary, hook, phase)
    }
}

/// The payload `checksum`: identifies one configuration of the rolled-out resources.
///
/// Flagger hashes the pair (`status.trackedConfigs`, `status.lastAppliedSpec`) with its
/// go-spew + FNV scheme, which cannot be reproduced outside Go (reference §3.1). Serin
/// hashes the same pair, as canonical JSON, with SHA-256: equal inputs give equal
/// checksums and any change to the target template or a tracked ConfigMap/Secret changes
/// it, which is all a receiver can rely on. As in Flagger, an absent `trackedConfigs` and
/// an empty one are different inputs.
pub fn canary_checksum(status: Option<&CanaryStatus>) -> String {
    let tracked = status.and_then(|s| s.tracked_configs.as_ref());
    let applied = status
        .and_then(|s| s.last_applied_spec.as_deref())
        .unwrap_or_default();
    // A tuple of a BTreeMap (sorted keys) and a string: a canonical encoding, and one that
    // cannot fail to serialize.
    let canonical = serde_json::to_vec(&(tracked, applied)).unwrap_or_default();
    let digest = Sha256::digest(&canonical);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Go's `encoding/json` string escaping on top of serde_json's compact output.
///
/// serde_json already escapes `"`, `\` and control characters exactly as Go does (`\n`,
/// `\r`, `\t`, `\b`, `\f`, else `\u00XX` in lower-case hex); Go additionally escapes the
/// HTML-significant `<`, `>`, `&` and the JavaScript line separators U+2028 and U+2029.
/// A `cmd: "hey ... && curl ..."` in `metadata` is common, so this matters.
struct GoFormatter;

impl serde_json::ser::Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let escape = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..i])?;
            writer.write_all(escape.as_bytes())?;
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn canary(status: serde_json::Value) -> Canary {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "metadata": {"name": "podinfo", "namespace": "test"},
            "spec": {
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                "service": {"port": 9898},
                "analysis": {"interval": "1m", "threshold": 5, "stepWeight": 10}
            },
            "status": status
        }))
        .unwrap()
    }

    fn hook(kind: &str, metadata: Option<&[(&str, &str)]>) -> CanaryWebhook {
        CanaryWebhook {
            name: Some(format!("{kind}-hook")),
            r#type: Some(kind.to_string()),
            url: Some("http://flagger-loadtester.test/".into()),
            metadata: metadata.map(|m| {
                m.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            }),
            ..CanaryWebhook::default()
        }
    }

    fn text(payload: &WebhookPayload) -> String {
        String::from_utf8(payload.to_json()).unwrap()
    }

    #[test]
    fn every_hook_type_gets_flagger_phase_and_byte_exact_body() {
        let c = canary(serde_json::json!({
            "phase": "Initialized",
            "lastAppliedSpec": "5b8f7c9d4",
            "trackedConfigs": {"configmap/podinfo-config": "abc"}
        }));
        let sum = canary_checksum(c.status.as_ref());
        let meta: &[(&str, &str)] = &[
            ("type", "cmd"),
            ("cmd", "hey -z 1m http://podinfo-canary.test:9898/"),
        ];
        // (hook type, status phase, expected payload phase)
        let cases = [
            ("confirm-rollout", CanaryPhase::Initialized, "Initialized"),
            ("confirm-rollout", CanaryPhase::Waiting, "Waiting"),
            ("pre-rollout", CanaryPhase::Progressing, "Progressing"),
            ("rollout", CanaryPhase::Progressing, "Progressing"),
            ("", CanaryPhase::Progressing, "Progressing"),
            (
                "confirm-traffic-increase",
                CanaryPhase::Progressing,
                "Progressing",
            ),
            (
                "confirm-promotion",
                CanaryPhase::WaitingPromotion,
                "Progressing",
            ),
            (
                "rollback",
                CanaryPhase::WaitingPromotion,
                "WaitingPromotion",
            ),
            ("rollback", CanaryPhase::Progressing, "Progressing"),
            ("post-rollout", CanaryPhase::Succeeded, "Succeeded"),
            ("post-rollout", CanaryPhase::Failed, "Failed"),
        ];
        for (kind, status_phase, expected_phase) in cases {
            let h = hook(kind, Some(meta));
            let phase = payload_phase(h.hook_type().unwrap(), status_phase);
            let expected = format!(
                r#"{{"name":"podinfo","namespace":"test","phase":"{expected_phase}","checksum":"{sum}","metadata":{{"cmd":"hey -z 1m http://podinfo-canary.test:9898/","type":"cmd"}}}}"#
            );
            assert_eq!(
                text(&hook_payload(&c, &h, phase)),
                expected,
                "type {kind:?}"
            );
        }
    }

    #[test]
    fn empty_or_absent_metadata_is_omitted() {
        let c = canary(serde_json::json!({"phase": "Progressing"}));
        let sum = canary_checksum(c.status.as_ref());
        let expected = format!(
            r#"{{"name":"podinfo","namespace":"test","phase":"Progressing","checksum":"{sum}"}}"#
        );
        for h in [hook("rollout", None), hook("rollout", Some(&[]))] {
            assert_eq!(
                text(&hook_payload(&c, &h, CanaryPhase::Progressing)),
                expected
            );
        }
    }

    #[test]
    fn a_canary_without_status_sends_an_empty_phase() {
        let mut c = canary(serde_json::json!(null));
        c.status = None;
        let payload = hook_payload(&c, &hook("confirm-rollout", None), CanaryPhase::Unknown);
        assert!(
            text(&payload).contains(r#""phase":"","#),
            "{}",
            text(&payload)
        );
    }

    #[test]
    fn event_payload_merges_event_fields_over_hook_metadata() {
        let c = canary(serde_json::json!({"phase": "Progressing", "lastAppliedSpec": "x"}));
        let sum = canary_checksum(c.status.as_ref());
        let h = hook(
            "event",
            Some(&[
                ("eventType", "spoofed"),
                ("team", "web"),
                ("timestamp", "0"),
            ]),
        );
        let payload = event_payload(
            &c,
            &h,
            EventType::Warning,
            "Halt podinfo.test advancement success rate 90.00% < 99%",
            1_700_000_000_123,
        );
        let expected = format!(
            r#"{{"name":"podinfo","namespace":"test","phase":"Progressing","checksum":"{sum}","metadata":{{"eventMessage":"Halt podinfo.test advancement success rate 90.00% \u003c 99%","eventType":"Warning","team":"web","timestamp":"1700000000123"}}}}"#
        );
        assert_eq!(text(&payload), expected);
    }

    #[test]
    fn strings_are_escaped_as_go_does() {
        let c = canary(serde_json::json!({"phase": "Progressing"}));
        let h = hook(
            "rollout",
            Some(&[(
                "cmd",
                "a && b <c> \"q\" \\ \n\t\r\u{8}\u{c}\u{1}\u{7f} é \u{2028}\u{2029} 😀",
            )]),
        );
        let json = text(&hook_payload(&c, &h, CanaryPhase::Progressing));
        let expected =
            r#""metadata":{"cmd":"a \u0026\u0026 b \u003cc\u003e \"q\" \\ \n\t\r\b\f\u0001"#
                .to_string()
                + "\u{7f} é \\u2028\\u2029 😀\"}}";
        assert!(json.ends_with(&expected), "{json}");
        // Still valid JSON that decodes to the original text.
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back["metadata"]["cmd"], h.metadata.unwrap()["cmd"]);
    }

    #[test]
    fn checksum_follows_tracked_configs_and_applied_spec_only() {
        let status = |v: serde_json::Value| -> CanaryStatus { serde_json::from_value(v).unwrap() };
        let base = status(serde_json::json!({
            "phase": "Progressing", "lastAppliedSpec": "a",
            "trackedConfigs": {"secret/s": "1"}
        }));
        let same_other_fields = status(serde_json::json!({
            "phase": "Failed", "canaryWeight": 30, "lastAppliedSpec": "a",
            "trackedConfigs": {"secret/s": "1"}
        }));
        let other_spec = status(serde_json::json!({
            "lastAppliedSpec": "b", "trackedConfigs": {"secret/s": "1"}
        }));
        let other_config = status(serde_json::json!({
            "lastAppliedSpec": "a", "trackedConfigs": {"secret/s": "2"}
        }));
        let no_configs = status(serde_json::json!({"lastAppliedSpec": "a"}));
        let empty_configs =
            status(serde_json::json!({"lastAppliedSpec": "a", "trackedConfigs": {}}));

        let sum = canary_checksum(Some(&base));
        assert_eq!(sum.len(), 64);
        assert!(sum.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(sum, canary_checksum(Some(&same_other_fields)));
        let others = [
            canary_checksum(Some(&other_spec)),
            canary_checksum(Some(&other_config)),
            canary_checksum(Some(&no_configs)),
            canary_checksum(Some(&empty_configs)),
        ];
        for (i, a) in others.iter().enumerate() {
            assert_ne!(a, &sum);
            for b in &others[i + 1..] {
                assert_ne!(a, b);
            }
        }
        // No status at all hashes like an empty status.
        assert_eq!(
            canary_checksum(None),
            canary_checksum(Some(&CanaryStatus::default()))
        );
    }
}
