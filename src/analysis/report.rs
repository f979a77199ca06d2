//! Where a tick's outcome becomes visible in the cluster: the Canary's status and its
//! Kubernetes Events, as `kubectl get canaries` and `kubectl describe canary` show them.

use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client, Resource};

use crate::api::{Canary, CanaryStatus};

/// Serin's field manager and event reporter.
pub const MANAGER: &str = "serin";

/// Flagger records every event with reason `Synced`; dashboards and alerts filter on it.
const REASON: &str = "Synced";

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write the status of Canary {canary}")]
    Status {
        canary: String,
        #[source]
        source: kube::Error,
    },
    #[error("cannot record an event for Canary {canary}")]
    Event {
        canary: String,
        #[source]
        source: kube::Error,
    },
}

fn key(canary: &Canary) -> String {
    format!(
        "{}/{}",
        canary.metadata.namespace.as_deref().unwrap_or_default(),
        canary.metadata.name.as_deref().unwrap_or_default()
    )
}

/// Writes `status` with server-side apply on the status subresource: the fields Serin stops
/// setting (a cleared session cookie, say) are removed, and nobody else's fields are touched.
pub async fn write_status(
    client: &Client,
    canary: &Canary,
    status: &CanaryStatus,
) -> Result<(), ReportError> {
    let namespace = canary.metadata.namespace.as_deref().unwrap_or_default();
    let name = canary.metadata.name.as_deref().unwrap_or_default();
    let body = serde_json::json!({
        "apiVersion": Canary::api_version(&()),
        "kind": Canary::kind(&()),
        "status": status,
    });
    Api::<Canary>::namespaced(client.clone(), namespace)
        .patch_status(
            name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map(|_| ())
        .map_err(|source| ReportError::Status {
            canary: key(canary),
            source,
        })
}

/// Records Kubernetes Events on Canaries (events.k8s.io, repeated events become a series).
#[derive(Clone)]
pub struct EventRecorder {
    recorder: Recorder,
}

impl EventRecorder {
    /// `instance` tells replicas apart (the pod name in a cluster).
    pub fn new(client: Client, instance: Option<String>) -> Self {
        let reporter = Reporter {
            controller: MANAGER.into(),
            instance,
        };
        EventRecorder {
            recorder: Recorder::new(client, reporter),
        }
    }

    pub async fn record(
        &self,
        canary: &Canary,
        warning: bool,
        message: &str,
    ) -> Result<(), ReportError> {
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: REASON.into(),
            // The API server caps notes at 1 kB; a longer message is cut, never refused.
            note: Some(truncate(message, 1000)),
            action: "Analysis".into(),
            secondary: None,
        };
        self.recorder
            .publish(&event, &canary.object_ref(&()))
            .await
            .map_err(|source| ReportError::Event {
                canary: key(canary),
                source,
            })
    }
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}
