//! The ledger file of one canary: `.serin/status/<namespace>/<name>.yaml`.
//!
//! It is the durable, reviewable record of the canary's rollouts (DESIGN.md, State): what is
//! under analysis and why, how far it got, the last metric values, the gate decisions, what was
//! last promoted and from which commit (a rebuilt cluster resumes from that), and a bounded
//! history of finished rollouts. Pure: built from what a tick observed, rendered as YAML.

use serde::{Deserialize, Serialize};

use crate::api::{CanaryPhase, CanaryStatus, MetricCheckStatus};

/// Finished rollouts kept in a ledger file; older ones remain in `git log`.
pub const HISTORY_LIMIT: usize = 20;

/// Where the ledger files live in the repository.
pub const STATUS_DIR: &str = ".serin/status";

/// The ledger path of a canary.
pub fn status_path(namespace: &str, name: &str) -> String {
    format!("{STATUS_DIR}/{namespace}/{name}.yaml")
}

/// The revision a person approves, and the ledger records: the target's pod-template hash,
/// combined with the checksums of the ConfigMaps and Secrets it tracks, so that a config-only
/// change is a new revision too (an approval must not carry over to it).
pub fn revision_id(
    template_hash: &str,
    tracked_configs: &std::collections::BTreeMap<String, String>,
) -> String {
    use sha2::{Digest, Sha256};
    if tracked_configs.is_empty() {
        return template_hash.to_string();
    }
    let mut h = Sha256::new();
    h.update(template_hash.as_bytes());
    for (k, v) in tracked_configs {
        h.update(b"\n");
        h.update(k.as_bytes());
        h.update(b"=");
        h.update(v.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Why the target is at its revision: the commit that brought it, and what changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionOrigin {
    /// The commit whose manifests carry this revision.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source_commit: String,
    /// The revision of the target as the repository declares it (`serin hash`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub manifest_revision: String,
    /// What differs from the revision before, e.g. "container podinfod image a → b".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cause: Vec<String>,
}

/// A revision and where it came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionRecord {
    /// The target's revision as the cluster runs it (`status.lastAppliedSpec`); the revision
    /// `serin approve` names.
    pub hash: String,
    #[serde(flatten)]
    pub origin: RevisionOrigin,
}

/// A gate decision seen by the engine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GateRecord {
    /// confirm-rollout, confirm-traffic-increase, confirm-promotion, rollback, retry.
    pub gate: String,
    /// approved, waiting, stale, ...
    pub decision: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub by: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub revision: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub at: String,
}

/// One finished rollout.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// Succeeded or Failed.
    pub result: String,
    pub revision: RevisionRecord,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub started: String,
    pub finished: String,
    #[serde(default)]
    pub failed_checks: i32,
    /// Why it failed: the halting messages of the last analysis.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// What Serin did to Git after the failure: "reverted to <hash>", or why it could not.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub revert: String,
}

/// The ledger file of one canary.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerRecord {
    /// `namespace/name`.
    pub canary: String,
    pub phase: CanaryPhase,
    #[serde(default)]
    pub canary_weight: i32,
    #[serde(default)]
    pub iterations: i32,
    #[serde(default)]
    pub failed_checks: i32,
    /// The revision under analysis, or the last one analysed.
    #[serde(default)]
    pub revision: RevisionRecord,
    /// What the primary runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_promoted: Option<RevisionRecord>,
    /// When the current analysis started.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub started: String,
    /// The last status change.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub updated: String,
    /// The last value of every metric check.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<MetricCheckStatus>,
    /// The warnings of the last tick that halted or failed the analysis.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<GateRecord>,
    /// Newest first, at most [`HISTORY_LIMIT`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{path}: not a Serin ledger file: {message}")]
    Parse { path: String, message: String },
}

impl LedgerRecord {
    pub fn parse(path: &str, bytes: &[u8]) -> Result<LedgerRecord, RecordError> {
        let text = std::str::from_utf8(bytes).map_err(|e| RecordError::Parse {
            path: path.to_string(),
            message: e.to_string(),
        })?;
        serde_saphyr::from_str(text).map_err(|e| RecordError::Parse {
            path: path.to_string(),
            message: crate::message::truncate(&e.to_string(), 300),
        })
    }

    pub fn render(&self) -> String {
        let header = format!(
            "# Serin's rollout record for {}. Serin rewrites this file on every transition;\n\
             # edits are overwritten. Read the rollouts in `git log -- {}`.\n",
            self.canary,
            self.path()
        );
        match serde_saphyr::to_string(self) {
            Ok(body) => header + &body,
            // Serialization of these plain types cannot fail; keep the header-only file
            // rather than lose the commit.
            Err(e) => format!("{header}# cannot render: {e}\n"),
        }
    }

    pub fn path(&self) -> String {
        let (ns, name) = self.canary.split_once('/').unwrap_or(("", &self.canary));
        status_path(ns, name)
    }

    /// `namespace`, `name`.
    pub fn key(&self) -> (String, String) {
        let (ns, name) = self.canary.split_once('/').unwrap_or(("", &self.canary));
        (ns.to_string(), name.to_string())
    }
}

/// What one tick of a canary did, as the ledger needs it.
#[derive(Debug, Clone)]
pub struct Observation {
    pub namespace: String,
    pub name: String,
    pub status: CanaryStatus,
    /// The target's revision hash in the cluster this tick.
    pub target_hash: String,
    /// Why the target is at this revision (from the source sync).
    pub origin: RevisionOrigin,
    /// The events of the tick, in order: (warning, message).
    pub events: Vec<(bool, String)>,
    pub gates: Vec<GateRecord>,
    /// RFC 3339.
    pub now: String,
    /// The canary's `serin.dev/on-failure` annotation.
    pub on_failure: Option<String>,
    /// The status the tick started from: when the ledger lags behind it (a replica or process
    /// that wrote it died before its commit was pushed), the ledger records it first.
    pub previous: Option<CanaryStatus>,
}

/// The observation of a status the ledger missed: `obs` started from a status that `record`
/// does not show (phase, weight, iterations or failed checks differ).
pub fn missed(record: &LedgerRecord, obs: &Observation) -> Option<Observation> {
    let prev = obs.previous.as_ref()?;
    let differs = record.phase != prev.phase
        || record.canary_weight != prev.canary_weight
        || record.iterations != prev.iterations
        || record.failed_checks != prev.failed_checks;
    differs.then(|| Observation {
        status: prev.clone(),
        target_hash: match &prev.last_applied_spec {
            Some(applied) => {
                revision_id(applied, &prev.tracked_configs.clone().unwrap_or_default())
            }
            None => obs.target_hash.clone(),
        },
        events: Vec::new(),
        gates: Vec::new(),
        previous: None,
        ..obs.clone()
    })
}

/// The record after `obs`, given the one before (absent for a canary new to the ledger).
pub fn observe(previous: Option<&LedgerRecord>, obs: &Observation) -> LedgerRecord {
    let mut r = previous.cloned().unwrap_or_default();
    let status = &obs.status;
    let was = previous.map(|p| p.phase);
    r.canary = format!("{}/{}", obs.namespace, obs.name);
    r.phase = status.phase;
    r.canary_weight = status.canary_weight;
    r.iterations = status.iterations;
    r.failed_checks = status.failed_checks;
    r.updated = obs.now.clone();
    let hash = match &status.last_applied_spec {
        Some(applied) => revision_id(applied, &status.tracked_configs.clone().unwrap_or_default()),
        None => obs.target_hash.clone(),
    };
    // A new analysis (or the first record) adopts the origin of the revision now in force.
    let new_run = r.revision.hash != hash
        || (status.phase == CanaryPhase::Progressing
            && !matches!(
                was,
                Some(
                    CanaryPhase::Progressing
                        | CanaryPhase::Waiting
                        | CanaryPhase::WaitingPromotion
                        | CanaryPhase::Promoting
                        | CanaryPhase::Finalising
                )
            ));
    if new_run || r.revision.origin.source_commit.is_empty() {
        r.revision = RevisionRecord {
            hash,
            origin: obs.origin.clone(),
        };
        if new_run {
            r.started = obs.now.clone();
            r.reasons.clear();
            r.gates.clear();
        }
    }
    if let Some(m) = &status.metrics {
        r.metrics = m.clone();
    }
    let warnings: Vec<String> = obs
        .events
        .iter()
        .filter(|(w, _)| *w)
        .map(|(_, m)| m.clone())
        .collect();
    let failed_now = status.phase == CanaryPhase::Failed && was != Some(CanaryPhase::Failed);
    if failed_now {
        // The halting messages of the checks explain a failure; the rollback's own warnings
        // only say that it happened.
        for w in warnings {
            if !r.reasons.contains(&w) {
                r.reasons.push(w);
            }
        }
    } else if !warnings.is_empty() {
        r.reasons = warnings;
    }
    for g in &obs.gates {
        r.gates.retain(|old| old.gate != g.gate);
        r.gates.push(g.clone());
    }
    let changed_phase = was != Some(status.phase);
    if changed_phase
        && matches!(
            status.phase,
            CanaryPhase::Initialized | CanaryPhase::Succeeded
        )
    {
        // The revision just promoted (or initialized) is the one under analysis.
        r.last_promoted = Some(r.revision.clone());
    }
    if changed_phase && matches!(status.phase, CanaryPhase::Succeeded | CanaryPhase::Failed) {
        r.history.insert(
            0,
            HistoryEntry {
                result: status.phase.as_str().to_string(),
                revision: r.revision.clone(),
                started: r.started.clone(),
                finished: obs.now.clone(),
                failed_checks: previous.map_or(status.failed_checks, |p| {
                    p.failed_checks.max(status.failed_checks)
                }),
                reasons: if status.phase == CanaryPhase::Failed {
                    r.reasons.clone()
                } else {
                    Vec::new()
                },
                revert: String::new(),
            },
        );
        r.history.truncate(HISTORY_LIMIT);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(phase: CanaryPhase, weight: i32, applied: &str) -> Observation {
        Observation {
            namespace: "test".into(),
            name: "podinfo".into(),
            status: CanaryStatus {
                phase,
                canary_weight: weight,
                last_applied_spec: Some(applied.into()),
                last_promoted_spec: Some("aaa".into()),
                ..Default::default()
            },
            target_hash: applied.into(),
            origin: RevisionOrigin {
                source_commit: format!("commit-of-{applied}"),
                manifest_revision: format!("m-{applied}"),
                cause: vec![format!("image → {applied}")],
            },
            events: Vec::new(),
            gates: Vec::new(),
            now: "2026-11-22T10:00:00Z".into(),
            on_failure: None,
            previous: None,
        }
    }

    #[test]
    fn a_rollout_is_recorded_from_start_to_promotion() {
        let init = observe(None, &obs(CanaryPhase::Initialized, 0, "aaa"));
        assert_eq!(init.canary, "test/podinfo");
        let promoted = init.last_promoted.clone().expect("initialized is promoted");
        assert_eq!(promoted.hash, "aaa");
        assert_eq!(promoted.origin.source_commit, "commit-of-aaa");

        let start = observe(Some(&init), &obs(CanaryPhase::Progressing, 0, "bbb"));
        assert_eq!(start.revision.hash, "bbb");
        assert_eq!(start.revision.origin.cause, vec!["image → bbb".to_string()]);
        let mut at20 = obs(CanaryPhase::Progressing, 20, "bbb");
        // A later sync of an unrelated commit must not rewrite the revision's origin.
        at20.origin.source_commit = "unrelated".into();
        let step = observe(Some(&start), &at20);
        assert_eq!(step.canary_weight, 20);
        assert_eq!(step.revision.origin.source_commit, "commit-of-bbb");

        let mut done = obs(CanaryPhase::Succeeded, 0, "bbb");
        done.status.last_promoted_spec = Some("bbb".into());
        let done = observe(Some(&step), &done);
        assert_eq!(done.history.len(), 1);
        assert_eq!(done.history[0].result, "Succeeded");
        assert_eq!(done.history[0].revision.hash, "bbb");
        let promoted = done.last_promoted.expect("promoted");
        assert_eq!(promoted.origin.source_commit, "commit-of-bbb");
    }

    #[test]
    fn a_failure_keeps_its_reasons_and_the_promoted_revision() {
        let init = observe(None, &obs(CanaryPhase::Initialized, 0, "aaa"));
        let start = observe(Some(&init), &obs(CanaryPhase::Progressing, 0, "bbb"));
        let mut halted = obs(CanaryPhase::Progressing, 10, "bbb");
        halted.status.failed_checks = 1;
        halted.events = vec![(
            true,
            "Halt podinfo.test advancement request-success-rate 70.00 < 99".into(),
        )];
        let halted = observe(Some(&start), &halted);
        let mut failing = obs(CanaryPhase::Failed, 0, "bbb");
        failing.events = vec![(true, "Canary failed! Scaling down podinfo.test".into())];
        let failed = observe(Some(&halted), &failing);
        assert_eq!(failed.history[0].result, "Failed");
        assert_eq!(failed.history[0].failed_checks, 1);
        assert_eq!(
            failed.history[0].reasons,
            vec![
                "Halt podinfo.test advancement request-success-rate 70.00 < 99".to_string(),
                "Canary failed! Scaling down podinfo.test".to_string()
            ]
        );
        assert_eq!(failed.last_promoted.map(|p| p.hash), Some("aaa".into()));
    }

    #[test]
    fn a_config_only_change_is_a_new_revision() {
        let configs = |v: &str| [("configmap/podinfo-config".to_string(), v.to_string())].into();
        assert_eq!(revision_id("aaa", &Default::default()), "aaa");
        assert_ne!(
            revision_id("aaa", &configs("1")),
            revision_id("aaa", &configs("2"))
        );
        assert_eq!(
            revision_id("aaa", &configs("1")),
            revision_id("aaa", &configs("1"))
        );
    }

    #[test]
    fn a_status_the_ledger_missed_is_recorded_first() {
        let r = observe(None, &obs(CanaryPhase::Progressing, 20, "bbb"));
        let mut next = obs(CanaryPhase::Progressing, 40, "bbb");
        next.previous = Some(obs(CanaryPhase::Progressing, 30, "bbb").status);
        let caught = missed(&r, &next).expect("weight 30 was never recorded");
        assert_eq!(caught.status.canary_weight, 30);
        assert!(caught.previous.is_none() && caught.events.is_empty());
        next.previous = Some(obs(CanaryPhase::Progressing, 20, "bbb").status);
        assert!(missed(&r, &next).is_none());
        next.previous = None;
        assert!(missed(&r, &next).is_none());
    }

    #[test]
    fn history_is_bounded_newest_first() {
        let mut r = observe(None, &obs(CanaryPhase::Initialized, 0, "h0"));
        for i in 1..=30 {
            r = observe(
                Some(&r),
                &obs(CanaryPhase::Progressing, 0, &format!("h{i}")),
            );
            r = observe(Some(&r), &obs(CanaryPhase::Succeeded, 0, &format!("h{i}")));
        }
        assert_eq!(r.history.len(), HISTORY_LIMIT);
        assert_eq!(r.history[0].revision.hash, "h30");
    }

    #[test]
    fn records_survive_a_round_trip_through_yaml() {
        let init = observe(None, &obs(CanaryPhase::Initialized, 0, "aaa"));
        let mut step = observe(Some(&init), &obs(CanaryPhase::Progressing, 30, "bbb"));
        step.metrics = vec![MetricCheckStatus {
            name: "request-success-rate".into(),
            value: Some(99.5),
            message: None,
        }];
        let text = step.render();
        assert!(text.starts_with("# Serin's rollout record for test/podinfo"));
        let back = LedgerRecord::parse(&step.path(), text.as_bytes()).expect("parses");
        assert_eq!(back, step);
        assert_eq!(step.path(), ".serin/status/test/podinfo.yaml");
    }

    #[test]
    fn a_foreign_file_is_an_error_naming_it() {
        let e = LedgerRecord::parse(".serin/status/a/b.yaml", b"phase: [not, a, phase]")
            .expect_err("rejected");
        assert!(e.to_string().starts_with(".serin/status/a/b.yaml: "), "{e}");
    }
}
