//! The GitOps loop (DESIGN.md, data flow): triggers → fetch → catalog → apply, with the engine
//! reading approvals and feeding the ledger through a [`GitLink`].

pub mod link;
pub mod sync;

pub use link::{GitGate, GitLink, ON_FAILURE_ANNOTATION};
pub use sync::{GitSourceConfig, GitSync, GitSyncError, GitSyncReport};
