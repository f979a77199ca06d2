//! Alerts: the chat messages a canary's `analysis.alerts` ask for (reference §7, §1.6).
//!
//! The analysis decides *that* something is worth an alert (`Effect::Alert` with a severity
//! and Flagger's text); this module decides *where* it goes and *what* each receiver gets:
//!
//! * [`Alert`]: one message, with the canary's metadata fields where Flagger adds them.
//! * [`notifier`]: one [`Notifier`] per AlertProvider type — slack, msteams, discord,
//!   rocket and gchat with Flagger's payloads, and Serin's `generic` JSON document.
//! * [`destination`]: an AlertProvider (and its Secret) resolved to a URL, proxy and token.
//! * [`sender`]: the HTTP side: POST, bounded by a short timeout, all receivers at once.
//! * [`dispatcher`]: [`AlertDispatcher`], which reads a canary's `analysis.alerts`, filters by
//!   severity, fetches the AlertProviders and Secrets from the cluster and sends.
//!
//! Alerts never hold up the analysis: every send of one alert runs concurrently and the whole
//! alert takes at most the timeout (5 s, Flagger's). Failures are logged with the provider's
//! name and returned as [`Delivery`] values; the webhook address is a credential (a Slack
//! webhook URL *is* its token), so it never appears in an error or a log line.

pub mod destination;
pub mod dispatcher;
pub mod notifier;
pub mod sender;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

use std::time::Duration;

pub use destination::Destination;
pub use dispatcher::AlertDispatcher;
pub use notifier::{Notifier, notifier_for};
pub use sender::{AlertSender, Delivery};

use crate::api::{AlertSeverity, Canary, CanaryPhase, CanaryStatus};

/// How long one alert may take, from reading the AlertProvider to the receiver's answer:
/// Flagger's notifier timeout.
pub const DEFAULT_ALERT_TIMEOUT: Duration = Duration::from_secs(5);

/// A name/value pair shown under the message (Slack attachment fields, Teams facts, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub value: String,
}

impl Field {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Field {
        Field {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// One alert about one canary, before it is shaped for a receiver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    /// The canary's name.
    pub name: String,
    /// The canary's namespace.
    pub namespace: String,
    pub severity: AlertSeverity,
    /// Flagger's text, e.g. `New revision detected, progressing canary analysis.`
    pub message: String,
    /// The canary's metadata for the alerts Flagger attaches it to, else empty.
    pub fields: Vec<Field>,
    /// The canary's phase after the tick that raised the alert (generic payload only).
    pub phase: CanaryPhase,
    /// The target revision under analysis, `status.lastAppliedSpec` (generic payload only).
    pub revision: Option<String>,
    /// When the alert was raised, RFC 3339 in UTC (generic payload only).
    pub timestamp: String,
}

impl Alert {
    /// The alert the analysis raised for `canary`, whose new status is `status`.
    pub fn for_canary(
        canary: &Canary,
        severity: AlertSeverity,
        message: &str,
        status: &CanaryStatus,
    ) -> Alert {
        Alert {
            name: canary.metadata.name.clone().unwrap_or_default(),
            namespace: canary.metadata.namespace.clone().unwrap_or_default(),
            severity,
            message: message.to_string(),
            fields: if carries_metadata(message) {
                metadata_fields(canary)
            } else {
                Vec::new()
            },
            phase: status.phase,
            revision: status.last_applied_spec.clone().filter(|r| !r.is_empty()),
            timestamp: k8s_openapi::jiff::Timestamp::now().to_string(),
        }
    }

    /// `<name>.<namespace>`, how Flagger names the canary in every chat payload.
    pub fn dotted_name(&self) -> String {
        format!("{}.{}", self.name, self.namespace)
    }
}

/// Whether Flagger sends the canary's metadata with this alert: only with "New <Kind>
/// detected, initialization completed." and "New revision detected, progressing canary
/// analysis." (reference §7). The machine's `Effect::Alert` carries the text alone, and these
/// two texts are fixed, so the text is the reliable signal.
pub fn carries_metadata(message: &str) -> bool {
    message == "New revision detected, progressing canary analysis."
        || (message.starts_with("New ")
            && message.ends_with(" detected, initialization completed."))
}

/// Flagger's metadata fields: `Target`, `Failed checks threshold`, `Progress deadline` and,
/// when the analysis says how traffic moves, `Traffic routing`.
pub fn metadata_fields(canary: &Canary) -> Vec<Field> {
    let namespace = canary.metadata.namespace.as_deref().unwrap_or_default();
    let kind = canary
        .spec
        .target_ref
        .as_ref()
        .map(|t| t.kind())
        .unwrap_or_default();
    let analysis = canary.spec.analysis();
    let mut fields = vec![
        Field::new(
            "Target",
            format!("{kind}/{}.{namespace}", canary.spec.target_name()),
        ),
        Field::new(
            "Failed checks threshold",
            analysis.map_or(1, |a| a.threshold()).to_string(),
        ),
        Field::new(
            "Progress deadline",
            format!("{}s", canary.spec.progress_deadline_seconds()),
        ),
    ];
    let Some(analysis) = analysis else {
        return fields;
    };
    // Flagger's order: a step weight wins over a ladder, a ladder over A/B, A/B over B/G.
    let routing = if analysis.step_weight() > 0 {
        Some(format!(
            "Weight step: {} max: {}",
            analysis.step_weight(),
            analysis.max_weight()
        ))
    } else if !analysis.step_weights().is_empty() {
        let steps: Vec<String> = analysis
            .step_weights()
            .iter()
            .map(ToString::to_string)
            .collect();
        Some(format!(
            "Weight steps: {} max: {}",
            steps.join(","),
            analysis.max_weight()
        ))
    } else if !analysis.matches().is_empty() {
        Some("A/B Testing".to_string())
    } else if analysis.iterations() > 0 {
        Some("Blue/Green".to_string())
    } else {
        None
    };
    if let Some(routing) = routing {
        fields.push(Field::new("Traffic routing", routing));
    }
    fields
}

/// Whether an alert entry with severity `filter` receives a message of `severity`: when the
/// entry's severity is at most the message's (info < warn < error), so `info` gets
/// everything, `warn` gets warnings and errors, `error` only errors (reference §7).
///
/// An entry without a severity reads as `info`, the default Flagger documents; Flagger's own
/// filter matches nothing for it, so such alerts never fire there (quirk 9, fixed here).
pub fn receives(filter: Option<AlertSeverity>, severity: AlertSeverity) -> bool {
    rank(filter.unwrap_or(AlertSeverity::Info)) <= rank(severity)
}

fn rank(severity: AlertSeverity) -> u8 {
    match severity {
        AlertSeverity::Info => 0,
        AlertSeverity::Warn => 1,
        AlertSeverity::Error => 2,
    }
}

/// Why one alert did not reach one receiver. No variant carries the webhook address, the
/// proxy or the token: they are credentials.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("alert {alert} has no providerRef")]
    NoProviderRef { alert: String },
    #[error("cannot read AlertProvider {provider}")]
    Provider {
        provider: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("cannot read Secret {secret}")]
    Secret {
        secret: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("AlertProvider type {0:?} is not one of {list}", list = crate::api::AlertProviderType::list())]
    UnknownType(String),
    #[error("{0}")]
    NoAddress(String),
    #[error("the {0} is not a valid http(s) URL")]
    InvalidUrl(&'static str),
    #[error("cannot build an HTTP client for alerts: {0}")]
    Client(String),
    #[error("sending the alert failed: {0}")]
    Transport(String),
    #[error("sending notification bad response {code}: {body}")]
    Status { code: u16, body: String },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the alert task stopped: {0}")]
    Aborted(String),
}
