//! Where a tick's outcome becomes visible in the cluster: the Canary's status and its
//! Kubernetes Events, as `kubectl get canaries` and `kubectl describe canary` show them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource};

use crate::api::{Canary, CanaryStatus};

use crate::cluster::FIELD_MANAGER as MANAGER;
use crate::message::truncate;

/// Flagger records every event with reason `Synced`; dashboards and alerts filter on it.
const REASON: &str = "Synced";

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write the status of Canary {canary}")]
    Status {
        canary: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("cannot record an event for Canary {canary}")]
    Event {
        canary: String,
        #[source]
        source: Box<kube::Error>,
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
            source: Box::new(source),
        })
}

/// Records Kubernetes Events (events.k8s.io/v1) on Canaries: one Event per distinct message,
/// repeats of the same message within a few minutes as a series of that Event.
///
/// kube's `Recorder` is not used: it keys its series by type, reason and object but not by the
/// message, so every later event of a Canary would become a repeat of the first one and keep
/// its text — Flagger's event texts are what people and alerts read.
#[derive(Clone)]
pub struct EventRecorder {
    client: Client,
    instance: Option<String>,
    series: Arc<Mutex<HashMap<SeriesKey, Series>>>,
}

/// (canary uid, warning, message).
type SeriesKey = (String, bool, String);
/// (event name, count, when last seen).
type Series = (String, i32, Timestamp);

/// How long a repeated message counts as a repeat (kube's and client-go's choice).
const SERIES_WINDOW: SignedDuration = SignedDuration::from_mins(6);

impl EventRecorder {
    /// `instance` tells replicas apart (the pod name in a cluster).
    pub fn new(client: Client, instance: Option<String>) -> Self {
        EventRecorder {
            client,
            instance,
            series: Arc::default(),
        }
    }

    pub async fn record(
        &self,
        canary: &Canary,
        warning: bool,
        message: &str,
    ) -> Result<(), ReportError> {
        let failed = |source| ReportError::Event {
            canary: key(canary),
            source: Box::new(source),
        };
        let namespace = canary.metadata.namespace.as_deref().unwrap_or_default();
        let name = canary.metadata.name.as_deref().unwrap_or_default();
        let uid = canary.metadata.uid.clone().unwrap_or_default();
        let note = truncate(message, 1000);
        let api = Api::<K8sEvent>::namespaced(self.client.clone(), namespace);
        let now = Timestamp::now();
        let series_key = (uid, warning, note.clone());
        let repeat = {
            let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
            series.retain(|_, (_, _, seen)| now.duration_since(*seen) < SERIES_WINDOW);
            series.get_mut(&series_key).map(|(event, count, seen)| {
                *count += 1;
                *seen = now;
                (event.clone(), *count)
            })
        };
        if let Some((event, count)) = repeat {
            let patch = serde_json::json!({
                "series": { "count": count, "lastObservedTime": MicroTime(now) }
            });
            return api
                .patch(&event, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map(|_| ())
                .map_err(failed);
        }
        let event = K8sEvent {
            metadata: ObjectMeta {
                name: Some(format!("{name}.{:x}", now.as_nanosecond())),
                namespace: Some(namespace.to_string()),
                ..Default::default()
            },
            event_time: Some(MicroTime(now)),
            type_: Some(if warning { "Warning" } else { "Normal" }.into()),
            reason: Some(REASON.into()),
            action: Some("Analysis".into()),
            note: Some(note),
            regarding: Some(ObjectReference {
                api_version: Some(Canary::api_version(&()).into_owned()),
                kind: Some(Canary::kind(&()).into_owned()),
                name: Some(name.to_string()),
                namespace: Some(namespace.to_string()),
                uid: canary.metadata.uid.clone(),
                ..Default::default()
            }),
            reporting_controller: Some(MANAGER.into()),
            reporting_instance: Some(self.instance.clone().unwrap_or_else(|| MANAGER.into())),
            ..Default::default()
        };
        let created = api
            .create(&PostParams::default(), &event)
            .await
            .map_err(failed)?;
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        series.insert(
            series_key,
            (created.metadata.name.unwrap_or_default(), 1, now),
        );
        Ok(())
    }
}
