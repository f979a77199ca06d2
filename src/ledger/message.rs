//! Ledger commit messages: one line in Flagger's words per canary change
//! (`podinfo.test: advance canary weight 20`), the evidence in the body, and trailers a
//! machine can read (`Serin-Canary`, `Serin-Phase`, `Serin-Revision`, `Serin-Source-Commit`).

use crate::api::CanaryPhase;
use crate::message::short_id;

use super::record::LedgerRecord;

/// Which changes get a ledger commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Granularity {
    /// Every phase transition and every advance (weight, iteration, failed check).
    #[default]
    All,
    /// Phase transitions only.
    Transitions,
}

impl std::str::FromStr for Granularity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "all" => Ok(Granularity::All),
            "transitions" => Ok(Granularity::Transitions),
            other => Err(format!(
                "unknown ledger granularity {other:?}: use all (every transition and advance) or transitions"
            )),
        }
    }
}

/// The subject line for the change from `before` to `after`, or `None` when it is not worth a
/// commit under `granularity` (e.g. only a metric value moved).
pub fn summary(
    before: Option<&LedgerRecord>,
    after: &LedgerRecord,
    granularity: Granularity,
) -> Option<String> {
    let (ns, name) = after.key();
    let who = format!("{name}.{ns}");
    let phase_changed = before.is_none_or(|b| b.phase != after.phase);
    let cause = || {
        if after.revision.origin.cause.is_empty() {
            String::new()
        } else {
            format!(" ({})", after.revision.origin.cause.join("; "))
        }
    };
    if phase_changed {
        let text = match after.phase {
            CanaryPhase::Unknown => return None,
            CanaryPhase::Initializing => "initializing".to_string(),
            CanaryPhase::Initialized => format!("initialization done{}", revision_suffix(after)),
            CanaryPhase::Waiting => "waiting for approval to start the rollout".into(),
            CanaryPhase::Progressing => {
                format!("new revision detected, starting canary analysis{}", cause())
            }
            CanaryPhase::WaitingPromotion => "waiting for approval to promote".into(),
            CanaryPhase::Promoting => "copying the canary spec to the primary".into(),
            CanaryPhase::Finalising => "routing all traffic to the primary".into(),
            CanaryPhase::Succeeded => format!("promotion completed{}", cause()),
            CanaryPhase::Failed => format!(
                "canary failed, rolled back after {} failed checks{}",
                before.map_or(after.failed_checks, |b| b
                    .failed_checks
                    .max(after.failed_checks)),
                cause()
            ),
            CanaryPhase::Terminating => "terminating".into(),
            CanaryPhase::Terminated => "terminated".into(),
        };
        return Some(format!("{who}: {text}"));
    }
    let before = before?;
    if granularity == Granularity::Transitions {
        return None;
    }
    if after.phase == CanaryPhase::Failed
        && after.revision.hash != before.revision.hash
        && after.last_promoted.as_ref().map(|p| &p.hash) == Some(&after.revision.hash)
    {
        return Some(format!(
            "{who}: back at the promoted revision, no analysis{}",
            cause()
        ));
    }
    if after.revision.hash != before.revision.hash {
        return Some(format!(
            "{who}: new revision detected, restarting analysis{}",
            cause()
        ));
    }
    if after.canary_weight != before.canary_weight {
        return Some(format!(
            "{who}: advance canary weight {}",
            after.canary_weight
        ));
    }
    if after.iterations != before.iterations && after.iterations > 0 {
        return Some(format!(
            "{who}: advance canary iteration {}",
            after.iterations
        ));
    }
    if after.failed_checks > before.failed_checks {
        return Some(format!(
            "{who}: halt advancement, failed checks {}",
            after.failed_checks
        ));
    }
    if after.gates != before.gates
        && let Some(g) = after.gates.last()
    {
        return Some(format!("{who}: {} {}", g.gate, g.decision));
    }
    None
}

fn revision_suffix(r: &LedgerRecord) -> String {
    if r.revision.origin.manifest_revision.is_empty() {
        String::new()
    } else {
        format!(
            " at revision {}",
            short_id(&r.revision.origin.manifest_revision)
        )
    }
}

/// One canary's part of a ledger commit.
#[derive(Debug, Clone)]
pub struct Entry {
    pub summary: String,
    pub record: LedgerRecord,
}

/// The full message of a commit carrying `entries` (one per canary, at least one).
pub fn commit_message(entries: &[Entry]) -> String {
    let mut out = String::new();
    match entries {
        [] => out.push_str("serin: ledger update\n"),
        [one] => {
            out.push_str(&one.summary);
            out.push('\n');
        }
        many => {
            out.push_str(&format!("serin: {} canaries changed\n\n", many.len()));
            for e in many {
                out.push_str(&format!("* {}\n", e.summary));
            }
        }
    }
    let evidence: Vec<String> = entries.iter().flat_map(evidence).collect();
    if !evidence.is_empty() {
        out.push('\n');
        for line in evidence {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out.push('\n');
    for e in entries {
        let r = &e.record;
        out.push_str(&format!("Serin-Canary: {}\n", r.canary));
        out.push_str(&format!("Serin-Phase: {}\n", r.phase.as_str()));
        out.push_str(&format!("Serin-Revision: {}\n", r.revision.hash));
        if !r.revision.origin.source_commit.is_empty() {
            out.push_str(&format!(
                "Serin-Source-Commit: {}\n",
                r.revision.origin.source_commit
            ));
        }
    }
    out
}

/// Lines that explain a halt or a failure: the halting messages and the last metric values.
fn evidence(e: &Entry) -> Vec<String> {
    let r = &e.record;
    if !matches!(r.phase, CanaryPhase::Failed) && r.failed_checks == 0 {
        return Vec::new();
    }
    let mut lines = Vec::new();
    for reason in &r.reasons {
        lines.push(format!("{}: {reason}", r.canary));
    }
    for m in &r.metrics {
        let value = m
            .value
            .map_or_else(|| "no value".to_string(), |v| format!("{v:.2}"));
        lines.push(format!("{}: metric {} = {value}", r.canary, m.name));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::record::{RevisionOrigin, RevisionRecord};

    fn rec(phase: CanaryPhase, weight: i32, failed: i32) -> LedgerRecord {
        LedgerRecord {
            canary: "test/podinfo".into(),
            phase,
            canary_weight: weight,
            failed_checks: failed,
            revision: RevisionRecord {
                hash: "bbb".into(),
                origin: RevisionOrigin {
                    source_commit: "c0ffee".into(),
                    manifest_revision: "m1".into(),
                    cause: vec!["container podinfod image 6.0.0 → 6.0.1".into()],
                },
            },
            ..Default::default()
        }
    }

    #[test]
    fn subjects_follow_flaggers_words() {
        use CanaryPhase::*;
        let cases: Vec<(
            Option<LedgerRecord>,
            LedgerRecord,
            Granularity,
            Option<&str>,
        )> = vec![
            (
                Some(rec(Initialized, 0, 0)),
                rec(Progressing, 0, 0),
                Granularity::All,
                Some(
                    "podinfo.test: new revision detected, starting canary analysis (container podinfod image 6.0.0 → 6.0.1)",
                ),
            ),
            (
                Some(rec(Progressing, 10, 0)),
                rec(Progressing, 20, 0),
                Granularity::All,
                Some("podinfo.test: advance canary weight 20"),
            ),
            (
                Some(rec(Progressing, 10, 0)),
                rec(Progressing, 20, 0),
                Granularity::Transitions,
                None,
            ),
            (
                Some(rec(Progressing, 10, 0)),
                rec(Progressing, 10, 1),
                Granularity::All,
                Some("podinfo.test: halt advancement, failed checks 1"),
            ),
            (
                Some(rec(Progressing, 10, 0)),
                rec(Progressing, 10, 0),
                Granularity::All,
                None,
            ),
            (
                Some(rec(Finalising, 0, 0)),
                rec(Succeeded, 0, 0),
                Granularity::Transitions,
                Some("podinfo.test: promotion completed (container podinfod image 6.0.0 → 6.0.1)"),
            ),
            (
                Some(rec(Progressing, 10, 5)),
                rec(Failed, 0, 0),
                Granularity::All,
                Some(
                    "podinfo.test: canary failed, rolled back after 5 failed checks (container podinfod image 6.0.0 → 6.0.1)",
                ),
            ),
            (
                None,
                rec(Initialized, 0, 0),
                Granularity::All,
                Some("podinfo.test: initialization done at revision m1"),
            ),
        ];
        for (before, after, g, want) in cases {
            assert_eq!(
                summary(before.as_ref(), &after, g).as_deref(),
                want,
                "{:?} → {:?}",
                before.map(|b| (b.phase, b.canary_weight)),
                (after.phase, after.canary_weight)
            );
        }
    }

    #[test]
    fn messages_carry_trailers_per_canary_and_failure_evidence() {
        let mut failed = rec(CanaryPhase::Failed, 0, 5);
        failed.reasons =
            vec!["Halt podinfo.test advancement request-success-rate 70.00 < 99".into()];
        failed.metrics = vec![crate::api::MetricCheckStatus {
            name: "request-success-rate".into(),
            value: Some(70.0),
            message: None,
        }];
        let one = commit_message(&[Entry {
            summary: "podinfo.test: canary failed".into(),
            record: failed.clone(),
        }]);
        assert!(one.starts_with("podinfo.test: canary failed\n\n"), "{one}");
        assert!(
            one.contains("test/podinfo: metric request-success-rate = 70.00\n"),
            "{one}"
        );
        assert!(one.ends_with(
            "\nSerin-Canary: test/podinfo\nSerin-Phase: Failed\nSerin-Revision: bbb\nSerin-Source-Commit: c0ffee\n"
        ), "{one}");
        let mut other = rec(CanaryPhase::Progressing, 20, 0);
        other.canary = "prod/api".into();
        let two = commit_message(&[
            Entry {
                summary: "podinfo.test: canary failed".into(),
                record: failed,
            },
            Entry {
                summary: "api.prod: advance canary weight 20".into(),
                record: other,
            },
        ]);
        assert!(two.starts_with("serin: 2 canaries changed\n\n* podinfo.test: canary failed\n* api.prod: advance canary weight 20\n"), "{two}");
        assert_eq!(two.matches("Serin-Canary:").count(), 2);
    }
}
