//! The Canary status as Flagger writes it (reference §1.4).
//!
//! `kubectl get canaries`, dashboards and scripts read these fields, so their names, the
//! phase strings and the single `Promoted` condition match Flagger's exactly.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where a canary is in its lifecycle.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum CanaryPhase {
    // Not yet seen by the controller (`""`). A plain comment: a doc comment here would
    // reorder the CRD's enum.
    #[default]
    #[serde(rename = "")]
    Unknown,
    Initializing,
    Initialized,
    Waiting,
    Progressing,
    WaitingPromotion,
    Promoting,
    Finalising,
    Succeeded,
    Failed,
    Terminating,
    Terminated,
}

impl CanaryPhase {
    /// Every phase, in Flagger's order.
    pub const ALL: [CanaryPhase; 12] = [
        CanaryPhase::Unknown,
        CanaryPhase::Initializing,
        CanaryPhase::Initialized,
        CanaryPhase::Waiting,
        CanaryPhase::Progressing,
        CanaryPhase::WaitingPromotion,
        CanaryPhase::Promoting,
        CanaryPhase::Finalising,
        CanaryPhase::Succeeded,
        CanaryPhase::Failed,
        CanaryPhase::Terminating,
        CanaryPhase::Terminated,
    ];

    /// The phase as written in the status.
    pub const fn as_str(self) -> &'static str {
        match self {
            CanaryPhase::Unknown => "",
            CanaryPhase::Initializing => "Initializing",
            CanaryPhase::Initialized => "Initialized",
            CanaryPhase::Waiting => "Waiting",
            CanaryPhase::Progressing => "Progressing",
            CanaryPhase::WaitingPromotion => "WaitingPromotion",
            CanaryPhase::Promoting => "Promoting",
            CanaryPhase::Finalising => "Finalising",
            CanaryPhase::Succeeded => "Succeeded",
            CanaryPhase::Failed => "Failed",
            CanaryPhase::Terminating => "Terminating",
            CanaryPhase::Terminated => "Terminated",
        }
    }

    /// The status and message of the `Promoted` condition in this phase; `kind` is the
    /// target's kind (`Deployment`, ...), which Flagger names in some messages.
    pub fn promoted_condition(self, kind: &str) -> (ConditionStatus, String) {
        use CanaryPhase::*;
        match self {
            Initialized => (
                ConditionStatus::True,
                format!("{kind} initialization completed."),
            ),
            Waiting | WaitingPromotion => (
                ConditionStatus::Unknown,
                "Waiting for approval.".to_string(),
            ),
            Progressing => (
                ConditionStatus::Unknown,
                "New revision detected, progressing canary analysis.".to_string(),
            ),
            Promoting => (
                ConditionStatus::Unknown,
                "Canary analysis completed, starting primary rolling update.".to_string(),
            ),
            Finalising => (
                ConditionStatus::Unknown,
                "Canary analysis completed, routing all traffic to primary.".to_string(),
            ),
            Succeeded => (
                ConditionStatus::True,
                "Canary analysis completed successfully, promotion finished.".to_string(),
            ),
            Failed => (
                ConditionStatus::False,
                format!("Canary analysis failed, {kind} scaled to zero."),
            ),
            Unknown | Initializing | Terminating | Terminated => (
                ConditionStatus::Unknown,
                format!("New {kind} detected, starting initialization."),
            ),
        }
    }
}

impl std::fmt::Display for CanaryPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Status of a condition, as in core Kubernetes conditions.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

/// The one condition type Flagger writes on a Canary.
pub const PROMOTED_CONDITION: &str = "Promoted";

/// A status condition of a Canary, MetricTemplate or AlertProvider.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusCondition {
    #[serde(rename = "type")]
    pub r#type: String,
    pub status: ConditionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    /// For `Promoted`: the phase name.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// What the controller observed and decided for a Canary.
// `phase`, `failedChecks`, `canaryWeight` and `iterations` are always written (Flagger's
// JSON has no `omitempty` on them), so `kubectl get` shows `0` rather than a blank.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStatus {
    #[serde(default)]
    pub phase: CanaryPhase,
    /// Failed checks of the current run; reset only by a new run or a rollback.
    #[serde(default)]
    pub failed_checks: i32,
    /// Traffic weight routed to the canary.
    #[serde(default)]
    pub canary_weight: i32,
    /// Checks done in the current A/B or blue/green run.
    #[serde(default)]
    pub iterations: i32,
    /// `configmap/<name>` or `secret/<name>` → checksum of what the target references.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracked_configs: Option<BTreeMap<String, String>>,
    /// Hash of the target's template at the last status sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_spec: Option<String>,
    /// Hash of what the primary runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_promoted_spec: Option<String>,
    /// Change fence of the canary target (present in Flagger's CRD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_tracked_revision: Option<String>,
    /// Set on every status write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    /// `<cookieName>=<value>` routed to the canary in this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_affinity_cookie: Option<String>,
    /// `<primaryCookieName>=<value>` routed to the primary in this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_session_affinity_cookie: Option<String>,
    /// The canary cookie of the previous run, expired on the next response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_session_affinity_cookie: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<StatusCondition>>,
    /// Serin: the last value of every metric check, so a person can see why a step halted
    /// (Flagger only exports them as Prometheus gauges).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Vec<MetricCheckStatus>>,
}

/// The last result of one metric check.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricCheckStatus {
    pub name: String,
    /// The value the metric source returned (milliseconds for `request-duration`); absent when
    /// it returned none or could not be asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Why the check halted the analysis, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Key of a ConfigMap in `trackedConfigs`.
pub fn tracked_configmap_key(name: &str) -> String {
    format!("configmap/{name}")
}

/// Key of a Secret in `trackedConfigs`.
pub fn tracked_secret_key(name: &str) -> String {
    format!("secret/{name}")
}

impl CanaryStatus {
    /// The `Promoted` condition, if written.
    pub fn promoted_condition(&self) -> Option<&StatusCondition> {
        self.conditions
            .as_deref()
            .unwrap_or_default()
            .iter()
            .find(|c| c.r#type == PROMOTED_CONDITION)
    }

    /// Brings the `Promoted` condition in line with `phase`, as Flagger's
    /// `MakeStatusConditions` does: the conditions become that single condition, rewritten
    /// only when its status or reason changes, and its transition time is kept while the
    /// status stays the same. Returns whether anything changed.
    pub fn update_promoted_condition(&mut self, phase: CanaryPhase, kind: &str, now: Time) -> bool {
        let (status, message) = phase.promoted_condition(kind);
        let reason = phase.as_str().to_string();
        let current = self.promoted_condition();
        if current.is_some_and(|c| c.status == status && c.reason.as_deref() == Some(&reason)) {
            return false;
        }
        let last_transition_time = match current {
            Some(c) if c.status == status => c.last_transition_time.clone(),
            _ => Some(now.clone()),
        };
        self.conditions = Some(vec![StatusCondition {
            r#type: PROMOTED_CONDITION.to_string(),
            status,
            last_update_time: Some(now),
            last_transition_time,
            reason: Some(reason),
            message: Some(message),
        }]);
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(seconds).unwrap_or_default())
    }

    #[test]
    fn phases_serialize_as_flagger_writes_them() {
        assert_eq!(CanaryPhase::ALL.len(), 12);
        for phase in CanaryPhase::ALL {
            let json = serde_json::to_value(phase).unwrap();
            assert_eq!(json, serde_json::Value::String(phase.as_str().into()));
            let back: CanaryPhase = serde_json::from_value(json).unwrap();
            assert_eq!(back, phase);
        }
        assert_eq!(CanaryPhase::default().as_str(), "");
    }

    #[test]
    fn empty_status_writes_the_counters() {
        let json = serde_json::to_value(CanaryStatus::default()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"phase": "", "failedChecks": 0, "canaryWeight": 0, "iterations": 0})
        );
        let back: CanaryStatus = serde_json::from_value(serde_json::json!({})).unwrap();
        assert_eq!(back, CanaryStatus::default());
    }

    #[test]
    fn promoted_condition_table() {
        let table = [
            (
                CanaryPhase::Initializing,
                ConditionStatus::Unknown,
                "New Deployment detected, starting initialization.",
            ),
            (
                CanaryPhase::Initialized,
                ConditionStatus::True,
                "Deployment initialization completed.",
            ),
            (
                CanaryPhase::Waiting,
                ConditionStatus::Unknown,
                "Waiting for approval.",
            ),
            (
                CanaryPhase::WaitingPromotion,
                ConditionStatus::Unknown,
                "Waiting for approval.",
            ),
            (
                CanaryPhase::Progressing,
                ConditionStatus::Unknown,
                "New revision detected, progressing canary analysis.",
            ),
            (
                CanaryPhase::Promoting,
                ConditionStatus::Unknown,
                "Canary analysis completed, starting primary rolling update.",
            ),
            (
                CanaryPhase::Finalising,
                ConditionStatus::Unknown,
                "Canary analysis completed, routing all traffic to primary.",
            ),
            (
                CanaryPhase::Succeeded,
                ConditionStatus::True,
                "Canary analysis completed successfully, promotion finished.",
            ),
            (
                CanaryPhase::Failed,
                ConditionStatus::False,
                "Canary analysis failed, Deployment scaled to zero.",
            ),
            (
                CanaryPhase::Terminating,
                ConditionStatus::Unknown,
                "New Deployment detected, starting initialization.",
            ),
        ];
        for (phase, status, message) in table {
            assert_eq!(
                phase.promoted_condition("Deployment"),
                (status, message.to_string()),
                "{phase}"
            );
        }
    }

    #[test]
    fn promoted_condition_keeps_transition_time_while_status_holds() {
        let mut status = CanaryStatus::default();
        assert!(status.update_promoted_condition(CanaryPhase::Initializing, "Deployment", at(10)));
        // Same status and reason: untouched.
        assert!(!status.update_promoted_condition(CanaryPhase::Initializing, "Deployment", at(20)));
        // Same status (Unknown), new reason: rewritten, transition time kept.
        assert!(status.update_promoted_condition(CanaryPhase::Progressing, "Deployment", at(30)));
        let c = status.promoted_condition().cloned().unwrap();
        assert_eq!(c.reason.as_deref(), Some("Progressing"));
        assert_eq!(c.last_transition_time, Some(at(10)));
        assert_eq!(c.last_update_time, Some(at(30)));
        // New status: new transition time.
        assert!(status.update_promoted_condition(CanaryPhase::Succeeded, "Deployment", at(40)));
        let c = status.promoted_condition().cloned().unwrap();
        assert_eq!(c.status, ConditionStatus::True);
        assert_eq!(c.last_transition_time, Some(at(40)));
        assert_eq!(status.conditions.as_ref().map(Vec::len), Some(1));
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["type"], "Promoted");
        assert_eq!(json["status"], "True");
        assert_eq!(json["lastTransitionTime"], "1970-01-01T00:00:40Z");
    }

    #[test]
    fn tracked_config_keys() {
        assert_eq!(
            tracked_configmap_key("podinfo-config"),
            "configmap/podinfo-config"
        );
        assert_eq!(
            tracked_secret_key("podinfo-secret"),
            "secret/podinfo-secret"
        );
    }
}
