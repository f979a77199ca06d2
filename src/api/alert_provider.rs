//! The AlertProvider kind: a chat webhook that canary alerts are sent to (reference §1.6).

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::metric_template::SecretReference;
use super::schema;
use super::status::StatusCondition;

string_enum! {
    /// The chat service an AlertProvider posts to.
    pub enum AlertProviderType {
        Slack => "slack",
        MsTeams => "msteams",
        Discord => "discord",
        Rocket => "rocket",
        GChat => "gchat",
        /// Serin's own: a plain JSON document for any HTTP receiver (book: Alerts).
        Generic => "generic",
    }
}

/// Channel used when an AlertProvider names none.
pub const DEFAULT_ALERT_CHANNEL: &str = "general";
/// Bot name used when an AlertProvider names none.
pub const DEFAULT_ALERT_USERNAME: &str = "flagger";

/// A chat webhook. The URL comes from `address`, or from the `address` key of `secretRef`,
/// which wins because a webhook URL is a credential.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "flagger.app",
    version = "v1beta1",
    kind = "AlertProvider",
    plural = "alertproviders",
    namespaced,
    status = "AlertProviderStatus",
    category = "all",
    derive = "PartialEq",
    doc = "AlertProvider is the Schema for the AlertProvider API.",
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".spec.type"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct AlertProviderSpec {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    #[schemars(schema_with = "schema::alert_provider_type")]
    pub r#type: Option<String>,
    /// Default `general`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Default `flagger`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Webhook URL (overridden by the secret's `address`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// HTTP(S) proxy for the webhook call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// Secret with key `address` (required) and optional `token` (sent as a bearer token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretReference>,
}

impl AlertProviderSpec {
    /// The provider type, `None` when missing or unknown.
    pub fn provider_type(&self) -> Option<AlertProviderType> {
        self.r#type.as_deref().and_then(AlertProviderType::parse)
    }

    /// The channel posted to.
    pub fn channel(&self) -> &str {
        self.channel
            .as_deref()
            .filter(|c| !c.is_empty())
            .unwrap_or(DEFAULT_ALERT_CHANNEL)
    }

    /// The name the bot posts as.
    pub fn username(&self) -> &str {
        self.username
            .as_deref()
            .filter(|u| !u.is_empty())
            .unwrap_or(DEFAULT_ALERT_USERNAME)
    }
}

/// Flagger defines conditions here but never writes them.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertProviderStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<StatusCondition>>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn channel_and_username_defaults() {
        let spec = AlertProviderSpec::default();
        assert_eq!(spec.channel(), "general");
        assert_eq!(spec.username(), "flagger");
        let spec = AlertProviderSpec {
            r#type: Some("msteams".into()),
            channel: Some("on-call".into()),
            username: Some("serin".into()),
            ..Default::default()
        };
        assert_eq!(spec.channel(), "on-call");
        assert_eq!(spec.username(), "serin");
        assert_eq!(spec.provider_type(), Some(AlertProviderType::MsTeams));
    }
}
