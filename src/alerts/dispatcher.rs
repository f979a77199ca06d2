//! A canary's `analysis.alerts`, resolved against the cluster and sent.
//!
//! For each entry whose severity admits the alert ([`super::receives`]): the AlertProvider
//! `providerRef.name` in `providerRef.namespace` (default: the canary's), its Secret in the
//! same namespace, then the POST. Every entry runs at once and each, reads included, is
//! bounded by the sender's timeout. A canary without alerts sends nothing: Flagger's global
//! `-slack-url` notifier has no counterpart in Serin.

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

use super::sender::deliver_all;
use super::{Alert, AlertError, AlertSender, Delivery, Destination, receives};
use crate::api::{AlertProvider, Canary};

/// Sends the alerts of canaries. Cheap to clone.
#[derive(Clone)]
pub struct AlertDispatcher {
    client: Client,
    sender: AlertSender,
}

impl AlertDispatcher {
    /// A dispatcher with Flagger's 5 s timeout.
    pub fn new(client: Client) -> Result<AlertDispatcher, AlertError> {
        Ok(AlertDispatcher::with_sender(client, AlertSender::new()?))
    }

    pub fn with_sender(client: Client, sender: AlertSender) -> AlertDispatcher {
        AlertDispatcher { client, sender }
    }

    /// Sends `alert` through every entry of `canary`'s `analysis.alerts` that receives its
    /// severity, and reports each, in list order. Returns within the sender's timeout; never
    /// fails (failures are logged and reported).
    pub async fn dispatch(&self, canary: &Canary, alert: &Alert) -> Vec<Delivery> {
        let canary_namespace = canary.metadata.namespace.clone().unwrap_or_default();
        let entries = canary
            .spec
            .analysis()
            .map(|a| a.alerts())
            .unwrap_or_default()
            .iter()
            .filter(|entry| receives(entry.severity(), alert.severity));
        let mut jobs = Vec::new();
        for entry in entries {
            let name = entry.name.clone().unwrap_or_default();
            let reference = entry
                .provider_ref
                .as_ref()
                .filter(|r| !r.name().is_empty())
                .map(|r| {
                    (
                        r.namespace_or(&canary_namespace).to_string(),
                        r.name().to_string(),
                    )
                });
            let provider = reference
                .as_ref()
                .map(|(ns, n)| format!("{ns}/{n}"))
                .unwrap_or_default();
            let (client, sender, alert) = (self.client.clone(), self.sender.clone(), alert.clone());
            let alert_name = name.clone();
            let job = async move {
                let (namespace, provider_name) =
                    reference.ok_or(AlertError::NoProviderRef { alert: alert_name })?;
                let destination = resolve(client, &namespace, &provider_name).await?;
                sender.post(&destination, &alert).await
            };
            jobs.push((name, provider, job));
        }
        if jobs.is_empty() {
            return Vec::new();
        }
        deliver_all(self.sender.timeout(), alert, jobs).await
    }
}

/// The AlertProvider `namespace/name` and its Secret, read now: a provider or Secret edited
/// in Git takes effect with the next alert, as Flagger's informer-backed lookup does.
async fn resolve(client: Client, namespace: &str, name: &str) -> Result<Destination, AlertError> {
    let provider = format!("{namespace}/{name}");
    let object = Api::<AlertProvider>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .map_err(|source| AlertError::Provider {
            provider: provider.clone(),
            source: Box::new(source),
        })?;
    let secret_name = object
        .spec
        .secret_ref
        .as_ref()
        .and_then(|s| s.name.as_deref())
        .filter(|s| !s.is_empty());
    let secret = match secret_name {
        None => None,
        Some(secret) => Some(
            Api::<Secret>::namespaced(client, namespace)
                .get(secret)
                .await
                .map_err(|source| AlertError::Secret {
                    secret: format!("{namespace}/{secret}"),
                    source: Box::new(source),
                })?,
        ),
    };
    Destination::resolve(&provider, &object.spec, secret.as_ref())
}
