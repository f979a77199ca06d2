//! One [`Notifier`] per AlertProvider type: the JSON each receiver gets and where it goes.
//!
//! The chat payloads are Flagger's (reference §7), so existing channels, bots and parsers see
//! the same messages after the switch: the canary is named `<name>.<namespace>`, the fields
//! are the canary's metadata, and errors are coloured red. `generic` is Serin's own:
//!
//! ```json
//! {"canary":"test/podinfo","severity":"error","message":"Canary analysis failed ...",
//!  "phase":"Failed","revision":"5d8f...","timestamp":"2026-01-02T03:04:05.678Z"}
//! ```

use reqwest::Url;
use serde_json::{Value, json};

use super::{Alert, Field};
use crate::api::{AlertProviderSpec, AlertProviderType, AlertSeverity};

/// Flagger's icon for Slack-compatible bots.
const ICON_EMOJI: &str = ":rocket:";
/// The header image of Google Chat cards.
const GCHAT_IMAGE_URL: &str = "https://flagger.app/favicon.png";
/// The grey Google Chat text uses for the message and the values.
const GCHAT_GREY: &str = "#848484";

/// Shapes an [`Alert`] for one kind of receiver. Posting is the same for all of them
/// ([`super::sender`]); what differs is the body, the endpoint and whether the token is sent.
pub trait Notifier: Send + Sync + 'static {
    fn kind(&self) -> AlertProviderType;

    /// The JSON body for `alert`.
    fn payload(&self, alert: &Alert) -> Value;

    /// Where the body is POSTed, given the provider's address.
    fn endpoint(&self, address: &Url) -> Url {
        address.clone()
    }

    /// Whether the Secret's `token` is sent as `Authorization: Bearer`: Slack's API takes
    /// one, and a generic receiver may check one; the other services authenticate by the
    /// webhook URL alone.
    fn sends_token(&self) -> bool {
        false
    }
}

/// The notifier for `kind`, with the provider's channel and username (defaults `general`
/// and `flagger`) where the type uses them.
pub fn notifier_for(kind: AlertProviderType, spec: &AlertProviderSpec) -> Box<dyn Notifier> {
    let chat = || Chat {
        channel: spec.channel().to_string(),
        username: spec.username().to_string(),
    };
    match kind {
        AlertProviderType::Slack => Box::new(Slack(chat())),
        AlertProviderType::Discord => Box::new(Discord(chat())),
        AlertProviderType::Rocket => Box::new(Rocket(chat())),
        AlertProviderType::MsTeams => Box::new(MsTeams),
        AlertProviderType::GChat => Box::new(GChat),
        AlertProviderType::Generic => Box::new(Generic),
    }
}

/// Where and as whom a Slack-compatible bot posts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chat {
    pub channel: String,
    pub username: String,
}

/// Slack's incoming webhook (or `chat.postMessage` with the token): one attachment, green
/// (`good`) or red (`danger`) for errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slack(pub Chat);

/// Discord's Slack-compatible endpoint (`<webhook>/slack`), with Slack's payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discord(pub Chat);

/// Rocket.Chat's incoming webhook: Slack's payload with Flagger's blue and red.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rocket(pub Chat);

/// A Microsoft Teams incoming webhook: a MessageCard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsTeams;

/// A Google Chat incoming webhook: one card of text paragraphs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GChat;

/// Serin's generic JSON document, for receivers that are not chat services.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Generic;

impl Notifier for Slack {
    fn kind(&self) -> AlertProviderType {
        AlertProviderType::Slack
    }

    fn payload(&self, alert: &Alert) -> Value {
        slack_payload(&self.0, alert, severity_colour(alert, "good", "danger"))
    }

    fn sends_token(&self) -> bool {
        true
    }
}

impl Notifier for Discord {
    fn kind(&self) -> AlertProviderType {
        AlertProviderType::Discord
    }

    fn payload(&self, alert: &Alert) -> Value {
        slack_payload(&self.0, alert, severity_colour(alert, "good", "danger"))
    }

    /// Discord reads Slack's format on the webhook's `/slack` path; an address that already
    /// ends there is kept.
    fn endpoint(&self, address: &Url) -> Url {
        let mut url = address.clone();
        if !url.path().ends_with("/slack")
            && let Ok(mut segments) = url.path_segments_mut()
        {
            segments.pop_if_empty().push("slack");
        }
        url
    }
}

impl Notifier for Rocket {
    fn kind(&self) -> AlertProviderType {
        AlertProviderType::Rocket
    }

    fn payload(&self, alert: &Alert) -> Value {
        slack_payload(&self.0, alert, severity_colour(alert, "#0076D7", "#FF0000"))
    }
}

impl Notifier for MsTeams {
    fn kind(&self) -> AlertProviderType {
        AlertProviderType::MsTeams
    }

    fn payload(&self, alert: &Alert) -> Value {
        let facts: Vec<Value> = alert
            .fields
            .iter()
            .map(|f| json!({"name": f.name, "value": f.value}))
            .collect();
        json!({
            "@type": "MessageCard",
            "@context": "http://schema.org/extensions",
            "themeColor": severity_colour(alert, "0076D7", "FF0000"),
            "summary": alert.dotted_name(),
            "sections": [{
                "activityTitle": alert.message,
                "activitySubtitle": alert.dotted_name(),
                "facts": facts,
            }],
        })
    }
}

impl Notifier for GChat {
    fn kind(&self) -> AlertProviderType {
        AlertProviderType::GChat
    }

    fn payload(&self, alert: &Alert) -> Value {
        let paragraph = |text: String| json!({"widgets": [{"textParagraph": {"text": text}}]});
        let mut sections = vec![paragraph(format!(
            "<font color={GCHAT_GREY}><strong>{}</strong></font>",
            alert.message
        ))];
        sections.extend(alert.fields.iter().map(|Field { name, value }| {
            paragraph(format!(
                "{name}<br><font color={GCHAT_GREY}><strong>{value}</strong></font>"
            ))
        }));
        json!({
            "cards": [{
                "header": {
                    "title": "Flagger",
                    "subtitle": alert.dotted_name(),
                    "imageUrl": GCHAT_IMAGE_URL,
                },
                "sections": sections,
            }],
        })
    }
}

impl Notifier for Generic {
    fn kind(&self) -> AlertProviderType {
        AlertProviderType::Generic
    }

    fn payload(&self, alert: &Alert) -> Value {
        json!({
            "canary": format!("{}/{}", alert.namespace, alert.name),
            "severity": alert.severity.as_str(),
            "message": alert.message,
            "phase": alert.phase.as_str(),
            "revision": alert.revision,
            "timestamp": alert.timestamp,
        })
    }

    fn sends_token(&self) -> bool {
        true
    }
}

/// Flagger's Slack payload, shared by Slack, Discord and Rocket.Chat.
fn slack_payload(chat: &Chat, alert: &Alert, colour: &str) -> Value {
    let fields: Vec<Value> = alert
        .fields
        .iter()
        .map(|f| json!({"title": f.name, "value": f.value, "short": false}))
        .collect();
    json!({
        "channel": chat.channel,
        "username": chat.username,
        "icon_emoji": ICON_EMOJI,
        "attachments": [{
            "color": colour,
            "author_name": alert.dotted_name(),
            "text": alert.message,
            "mrkdwn_in": ["text"],
            "fields": fields,
        }],
    })
}

/// Flagger colours only errors; warnings look like information.
fn severity_colour<'a>(alert: &Alert, normal: &'a str, error: &'a str) -> &'a str {
    if alert.severity == AlertSeverity::Error {
        error
    } else {
        normal
    }
}
