//! One pass of the configuration loop: read the source, load the catalog, apply it.
//!
//! Problems in the configuration are reported, never fatal: what parsed is applied, what the
//! API server refuses is reported with its file, and the analysis of the other canaries goes on
//! (DESIGN.md: one bad Canary never stops the others).

use std::path::PathBuf;

use kube::Client;

use crate::apply::{Applier, ApplyError, ApplyOptions, ApplyReport};
use crate::catalog::{self, CatalogOptions, Problem};
use crate::source::{SnapshotOptions, SourceError, dir};

/// Where the configuration comes from (a Git remote arrives with the GitOps loop).
#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub dir: PathBuf,
    pub snapshot: SnapshotOptions,
    pub catalog: CatalogOptions,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

/// What one pass found and did.
#[derive(Debug)]
pub struct SyncReport {
    pub problems: Vec<Problem>,
    pub applied: ApplyReport,
}

/// Reads a source and applies it, again and again.
pub struct SourceSync {
    source: SourceConfig,
    applier: Applier,
}

impl SourceSync {
    pub fn new(
        client: Client,
        source: SourceConfig,
        apply: ApplyOptions,
    ) -> Result<Self, SyncError> {
        Ok(SourceSync {
            applier: Applier::new(client, apply)?,
            source,
        })
    }

    /// One pass: snapshot, catalog, apply.
    pub async fn run(&self) -> Result<SyncReport, SyncError> {
        let snapshot = dir::read_dir(&self.source.dir, &self.source.snapshot)?;
        let catalog = catalog::load(&snapshot, &self.source.catalog);
        let applied = self.applier.apply(&catalog).await?;
        Ok(SyncReport {
            problems: catalog.problems,
            applied,
        })
    }
}
