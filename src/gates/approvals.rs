//! Git approvals: `serin approve | rollback | retry` commit a small file under
//! `.serin/approvals/<namespace>/<name>/<action>.yaml`, and the engine honours it for the one
//! revision it names (DESIGN.md, Gates). A GitOps tool never reverts such a decision, and the
//! approval is in the audit trail with its author.
//!
//! Pure: files in, answers out. The source sync reads the files at the branch head.

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::api::{Canary, HookType};

pub const APPROVALS_DIR: &str = ".serin/approvals";

/// The annotation listing the gates that need a Git approval even without a webhook, e.g.
/// `serin.dev/approval: confirm-promotion`.
pub const REQUIRED_ANNOTATION: &str = "serin.dev/approval";

/// The gates `serin approve` can open.
pub const GATES: [HookType; 3] = [
    HookType::ConfirmRollout,
    HookType::ConfirmTrafficIncrease,
    HookType::ConfirmPromotion,
];

/// What a person decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Approve,
    Rollback,
    Retry,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Approve => "approve",
            Action::Rollback => "rollback",
            Action::Retry => "retry",
        }
    }
}

/// One approval file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    /// `namespace/name`.
    pub canary: String,
    pub action: Action,
    /// For `approve`: the gates opened (confirm-rollout, confirm-traffic-increase,
    /// confirm-promotion).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<String>,
    /// The target revision (`Serin-Revision`, the ledger's `revision.hash`) decided on.
    pub revision: String,
    /// `Name <email>` of the person.
    #[serde(default)]
    pub by: String,
    /// RFC 3339.
    pub at: String,
}

impl Approval {
    pub fn path(&self) -> String {
        let (ns, name) = self.canary.split_once('/').unwrap_or(("", &self.canary));
        approval_path(ns, name, self.action)
    }

    pub fn render(&self) -> String {
        let body = serde_saphyr::to_string(self).unwrap_or_default();
        format!(
            "# Written by `serin {}`; honoured for revision {} only.\n{body}",
            self.action.as_str(),
            self.revision
        )
    }

    fn time(&self) -> Option<Timestamp> {
        self.at.parse().ok()
    }

    fn opens(&self, kind: HookType) -> bool {
        self.action == Action::Approve && self.gates.iter().any(|g| g == kind.as_str())
    }
}

pub fn approval_path(namespace: &str, name: &str, action: Action) -> String {
    format!(
        "{APPROVALS_DIR}/{namespace}/{name}/{}.yaml",
        action.as_str()
    )
}

/// The answer of Git for one gate of one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateAnswer {
    /// Opened by this person.
    Approved {
        by: String,
    },
    /// An approval exists, for another revision: ignored, and reported.
    Stale {
        revision: String,
        by: String,
    },
    None,
}

/// Every approval at the branch head, by canary.
#[derive(Debug, Clone, Default)]
pub struct ApprovalBook {
    by_canary: BTreeMap<String, Vec<Approval>>,
    /// Files that are not approvals, with why: reported, never fatal.
    pub problems: Vec<String>,
}

impl ApprovalBook {
    /// Reads the files under [`APPROVALS_DIR`]: (path, content).
    pub fn load(files: &[(String, Vec<u8>)]) -> ApprovalBook {
        let mut book = ApprovalBook::default();
        for (path, bytes) in files {
            let parsed = std::str::from_utf8(bytes)
                .map_err(|e| e.to_string())
                .and_then(|t| serde_saphyr::from_str::<Approval>(t).map_err(|e| e.to_string()));
            match parsed {
                Ok(a) if a.path() == *path => {
                    book.by_canary.entry(a.canary.clone()).or_default().push(a);
                }
                Ok(a) => book.problems.push(format!(
                    "{path}: the approval for {} {} belongs in {}; it is ignored (write approvals with `serin approve`)",
                    a.canary,
                    a.action.as_str(),
                    a.path()
                )),
                Err(e) => book.problems.push(format!(
                    "{path}: not an approval file ({}); it is ignored (write approvals with `serin approve`)",
                    crate::message::truncate(&e, 200)
                )),
            }
        }
        book
    }

    fn of(&self, key: &str, action: Action) -> Option<&Approval> {
        self.by_canary
            .get(key)
            .and_then(|v| v.iter().find(|a| a.action == action))
    }

    /// Whether the approvals say anything about `kind` for this canary (the engine then asks
    /// the gate even if the canary has no webhook of that type).
    pub fn mentions(&self, key: &str, kind: HookType) -> bool {
        match kind {
            HookType::Rollback => self.of(key, Action::Rollback).is_some(),
            k => self.of(key, Action::Approve).is_some_and(|a| a.opens(k)),
        }
    }

    /// The Git answer for gate `kind` of `revision`.
    pub fn gate(&self, key: &str, kind: HookType, revision: &str) -> GateAnswer {
        match self.of(key, Action::Approve) {
            Some(a) if a.opens(kind) && a.revision == revision => {
                GateAnswer::Approved { by: a.by.clone() }
            }
            Some(a) if a.opens(kind) => GateAnswer::Stale {
                revision: a.revision.clone(),
                by: a.by.clone(),
            },
            _ => GateAnswer::None,
        }
    }

    /// A rollback of `revision` that no later retry superseded.
    pub fn rollback(&self, key: &str, revision: &str) -> Option<&Approval> {
        let rollback = self.of(key, Action::Rollback)?;
        if rollback.revision != revision {
            return None;
        }
        let superseded = self
            .of(key, Action::Retry)
            .filter(|r| r.revision == revision)
            .is_some_and(|r| r.time() >= rollback.time());
        (!superseded).then_some(rollback)
    }

    /// A retry of the failed `revision` given after the canary failed (`failed_at`).
    pub fn retry(
        &self,
        key: &str,
        revision: &str,
        failed_at: Option<Timestamp>,
    ) -> Option<&Approval> {
        let retry = self.of(key, Action::Retry)?;
        let after_failure = match (retry.time(), failed_at) {
            (Some(at), Some(failed)) => at > failed,
            (Some(_), None) => true,
            (None, _) => false,
        };
        (retry.revision == revision && after_failure).then_some(retry)
    }

    pub fn len(&self) -> usize {
        self.by_canary.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The gates a canary's `serin.dev/approval` annotation requires a Git approval for; unknown
/// names are returned as errors for a Warning event.
pub fn required_gates(canary: &Canary) -> (Vec<HookType>, Vec<String>) {
    let mut gates = Vec::new();
    let mut unknown = Vec::new();
    let Some(value) = canary
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REQUIRED_ANNOTATION))
    else {
        return (gates, unknown);
    };
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match GATES.iter().find(|g| g.as_str() == part) {
            Some(g) => gates.push(*g),
            None => unknown.push(format!(
                "annotation {REQUIRED_ANNOTATION}: {part:?} is not a gate Serin approves; use confirm-rollout, confirm-traffic-increase or confirm-promotion"
            )),
        }
    }
    (gates, unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(a: &Approval) -> (String, Vec<u8>) {
        (a.path(), a.render().into_bytes())
    }

    fn approval(action: Action, gates: &[&str], revision: &str, at: &str) -> Approval {
        Approval {
            canary: "test/podinfo".into(),
            action,
            gates: gates.iter().map(|g| g.to_string()).collect(),
            revision: revision.into(),
            by: "Jane <jane@example.com>".into(),
            at: at.into(),
        }
    }

    #[test]
    fn an_approval_opens_its_gates_for_its_revision_only() {
        let a = approval(
            Action::Approve,
            &["confirm-promotion"],
            "r2",
            "2026-11-22T10:00:00Z",
        );
        let book = ApprovalBook::load(&[file(&a)]);
        assert!(book.problems.is_empty(), "{:?}", book.problems);
        let key = "test/podinfo";
        assert_eq!(
            book.gate(key, HookType::ConfirmPromotion, "r2"),
            GateAnswer::Approved {
                by: "Jane <jane@example.com>".into()
            }
        );
        assert_eq!(
            book.gate(key, HookType::ConfirmPromotion, "r3"),
            GateAnswer::Stale {
                revision: "r2".into(),
                by: "Jane <jane@example.com>".into()
            }
        );
        assert_eq!(
            book.gate(key, HookType::ConfirmRollout, "r2"),
            GateAnswer::None
        );
        assert_eq!(
            book.gate("other/x", HookType::ConfirmPromotion, "r2"),
            GateAnswer::None
        );
        assert!(book.mentions(key, HookType::ConfirmPromotion));
        assert!(!book.mentions(key, HookType::Rollback));
    }

    #[test]
    fn a_retry_supersedes_an_older_rollback_and_follows_the_failure() {
        let rollback = approval(Action::Rollback, &[], "r2", "2026-11-22T10:00:00Z");
        let retry = approval(Action::Retry, &[], "r2", "2026-11-22T11:00:00Z");
        let key = "test/podinfo";
        let only_rollback = ApprovalBook::load(&[file(&rollback)]);
        assert!(only_rollback.rollback(key, "r2").is_some());
        assert!(only_rollback.rollback(key, "r3").is_none());
        let both = ApprovalBook::load(&[file(&rollback), file(&retry)]);
        assert!(both.rollback(key, "r2").is_none());
        let failed_before: Timestamp = "2026-11-22T10:30:00Z".parse().expect("time");
        let failed_after: Timestamp = "2026-11-22T11:30:00Z".parse().expect("time");
        assert!(both.retry(key, "r2", Some(failed_before)).is_some());
        assert!(both.retry(key, "r2", Some(failed_after)).is_none());
        assert!(both.retry(key, "r1", Some(failed_before)).is_none());
    }

    #[test]
    fn foreign_or_misplaced_files_are_reported_not_honoured() {
        let a = approval(
            Action::Approve,
            &["confirm-promotion"],
            "r2",
            "2026-11-22T10:00:00Z",
        );
        let book = ApprovalBook::load(&[
            (
                ".serin/approvals/test/other/approve.yaml".into(),
                a.render().into_bytes(),
            ),
            (
                ".serin/approvals/test/podinfo/x.yaml".into(),
                b"hello: [".to_vec(),
            ),
        ]);
        assert!(book.is_empty());
        assert_eq!(book.problems.len(), 2, "{:?}", book.problems);
        assert!(book.problems[0].contains("belongs in .serin/approvals/test/podinfo/approve.yaml"));
        assert!(
            book.problems[1]
                .starts_with(".serin/approvals/test/podinfo/x.yaml: not an approval file")
        );
    }

    #[test]
    fn the_annotation_names_required_gates() {
        let mut c: Canary = serde_json::from_value(serde_json::json!({
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "metadata": { "name": "podinfo", "namespace": "test" },
            "spec": {
                "targetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo" },
                "service": { "port": 9898 }
            }
        }))
        .expect("canary");
        c.metadata.annotations = Some(
            [(
                REQUIRED_ANNOTATION.to_string(),
                "confirm-promotion, bogus".to_string(),
            )]
            .into(),
        );
        let (gates, unknown) = required_gates(&c);
        assert_eq!(gates, vec![HookType::ConfirmPromotion]);
        assert_eq!(unknown.len(), 1);
        assert!(unknown[0].contains("\"bogus\""));
    }
}
