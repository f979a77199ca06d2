//! The Git ledger: Serin's durable, reviewable record of every rollout (DESIGN.md, State).
//!
//! * [`record`]: the status file of one canary, built from what its ticks observed.
//! * [`message`]: commit messages in Flagger's words, with `Serin-*` trailers.
//! * [`revert`]: the commit that puts a failed target back at its promoted revision.
//! * [`writer`]: the task that turns observations into batched commits and pushes them,
//!   queueing while the remote is away.

pub mod message;
pub mod record;
pub mod revert;
pub mod writer;

pub use message::{Granularity, commit_message, summary};
pub use record::{
    GateRecord, HistoryEntry, LedgerRecord, Observation, RevisionOrigin, RevisionRecord,
    STATUS_DIR, observe, revision_id, status_path,
};
pub use writer::{LedgerConfig, LedgerWriter, OnFailure};
