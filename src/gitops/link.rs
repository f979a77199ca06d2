//! What the analysis engine and the Git loop share: the approvals at the branch head, why each
//! target is at its revision, and the channel that feeds the ledger.
//!
//! The sync writes, the runner reads; nothing here does I/O, and no lock is held across an
//! await.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use tokio::sync::mpsc;

use crate::analysis::HookResult;
use crate::analysis::machine::GitInput;
use crate::api::{Canary, CanaryPhase, CanaryStatus, HookType};
use crate::gates::approvals::{self, ApprovalBook, GateAnswer};
use crate::ledger::{GateRecord, Observation, RevisionOrigin};
use crate::message::short_id;

/// The annotation choosing what happens to Git after a failed analysis: `record` or `revert`.
pub const ON_FAILURE_ANNOTATION: &str = "serin.dev/on-failure";

type Key = (String, String);

#[derive(Default)]
struct Shared {
    approvals: RwLock<ApprovalBook>,
    origins: RwLock<BTreeMap<Key, RevisionOrigin>>,
}

/// A cheap handle; clones share the state.
#[derive(Clone)]
pub struct GitLink {
    shared: Arc<Shared>,
    ledger: Option<mpsc::UnboundedSender<Observation>>,
}

/// What Git says about one gate of one tick.
#[derive(Debug, Clone, PartialEq)]
pub enum GitGate {
    /// A person opened it for this revision.
    Opened {
        result: HookResult,
        record: GateRecord,
    },
    /// Git does not open it: an approval for another revision is reported (`stale`), and a gate
    /// the canary's annotation requires is held (`required`).
    Closed {
        stale: Option<String>,
        required: Option<HookResult>,
        record: Option<GateRecord>,
    },
}

fn key_of(canary: &Canary) -> Key {
    (
        canary.metadata.namespace.clone().unwrap_or_default(),
        canary.metadata.name.clone().unwrap_or_default(),
    )
}

impl GitLink {
    /// `ledger`: where observations go; `None` records nothing (a read-only source).
    pub fn new(ledger: Option<mpsc::UnboundedSender<Observation>>) -> GitLink {
        GitLink {
            shared: Arc::default(),
            ledger,
        }
    }

    pub fn set_approvals(&self, book: ApprovalBook) {
        if let Ok(mut a) = self.shared.approvals.write() {
            *a = book;
        }
    }

    pub fn set_origin(&self, namespace: &str, name: &str, origin: RevisionOrigin) {
        if let Ok(mut o) = self.shared.origins.write() {
            o.insert((namespace.to_string(), name.to_string()), origin);
        }
    }

    pub fn origin(&self, namespace: &str, name: &str) -> Option<RevisionOrigin> {
        self.shared
            .origins
            .read()
            .ok()
            .and_then(|o| o.get(&(namespace.to_string(), name.to_string())).cloned())
    }

    /// The Git part of a tick's input, and problems to report (a bad annotation).
    pub fn tick_input(&self, canary: &Canary, revision: &str) -> (GitInput, Vec<String>) {
        let (required, problems) = approvals::required_gates(canary);
        let (ns, name) = key_of(canary);
        let key = format!("{ns}/{name}");
        let mut gates = required;
        let Ok(book) = self.shared.approvals.read() else {
            return (GitInput::default(), problems);
        };
        for kind in approvals::GATES.into_iter().chain([HookType::Rollback]) {
            if book.mentions(&key, kind) && !gates.contains(&kind) {
                gates.push(kind);
            }
        }
        let status = canary.status.clone().unwrap_or_default();
        let retry = status.phase == CanaryPhase::Failed
            && book
                .retry(
                    &key,
                    revision,
                    status.last_transition_time.as_ref().map(|t| t.0),
                )
                .is_some();
        (GitInput { gates, retry }, problems)
    }

    /// Git's answer for the gate `kind` of `revision`.
    pub fn gate(&self, canary: &Canary, kind: HookType, revision: &str) -> GitGate {
        let (ns, name) = key_of(canary);
        let key = format!("{ns}/{name}");
        let now = k8s_openapi::jiff::Timestamp::now().to_string();
        let record = |decision: &str, by: &str, rev: &str| GateRecord {
            gate: kind.as_str().to_string(),
            decision: decision.to_string(),
            by: by.to_string(),
            revision: rev.to_string(),
            at: now.clone(),
        };
        let Ok(book) = self.shared.approvals.read() else {
            return GitGate::Closed {
                stale: None,
                required: None,
                record: None,
            };
        };
        if kind == HookType::Rollback {
            return match book.rollback(&key, revision) {
                Some(a) => GitGate::Opened {
                    result: HookResult {
                        name: format!("serin rollback by {}", a.by),
                        outcome: Ok(()),
                        mute_alert: false,
                    },
                    record: record("rollback", &a.by, revision),
                },
                None => GitGate::Closed {
                    stale: None,
                    required: None,
                    record: None,
                },
            };
        }
        let (required_gates, _) = approvals::required_gates(canary);
        let required = required_gates.contains(&kind).then(|| HookResult {
            name: "serin approve".into(),
            outcome: Err(format!(
                "no Git approval for revision {} (run `serin approve {key} --gate {}`)",
                short_id(revision),
                kind.as_str()
            )),
            mute_alert: false,
        });
        match book.gate(&key, kind, revision) {
            GateAnswer::Approved { by } => GitGate::Opened {
                result: HookResult {
                    name: format!("serin approve by {by}"),
                    outcome: Ok(()),
                    mute_alert: false,
                },
                record: record("approved", &by, revision),
            },
            GateAnswer::Stale { revision: old, by } => GitGate::Closed {
                stale: Some(format!(
                    "Git approval of {} by {by} is for revision {}, not the current {}; it is ignored",
                    kind.as_str(),
                    short_id(&old),
                    short_id(revision)
                )),
                record: Some(record("stale approval ignored", &by, &old)),
                required,
            },
            GateAnswer::None => GitGate::Closed {
                stale: None,
                record: required
                    .as_ref()
                    .map(|_| record("waiting for serin approve", "", revision)),
                required,
            },
        }
    }

    /// Hands a written status to the ledger.
    pub fn observe(
        &self,
        canary: &Canary,
        status: &CanaryStatus,
        target_hash: &str,
        events: &[(bool, String)],
        gates: Vec<GateRecord>,
    ) {
        let Some(ledger) = &self.ledger else {
            return;
        };
        let (namespace, name) = key_of(canary);
        let origin = self.origin(&namespace, &name).unwrap_or_default();
        let on_failure = canary
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ON_FAILURE_ANNOTATION))
            .cloned();
        // The receiver is gone only at shutdown; the cluster status is written either way.
        let _ = ledger.send(Observation {
            namespace,
            name,
            status: status.clone(),
            target_hash: target_hash.to_string(),
            origin,
            events: events.to_vec(),
            gates,
            now: k8s_openapi::jiff::Timestamp::now().to_string(),
            on_failure,
            previous: canary.status.clone(),
        });
    }
}
