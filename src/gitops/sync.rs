//! One pass of the GitOps loop: fetch the branch, read the approvals, and — when the manifest
//! tree changed — snapshot, catalog and apply it.
//!
//! Two rules make Git the record rather than a trigger for mistakes:
//! * ledger commits never cause work: the decision to apply is taken on the manifest tree with
//!   `.serin/` left out;
//! * a cluster that lost a canary (namespace recreated, cluster rebuilt) gets the target as it
//!   was at the last promoted revision's commit, never the unanalysed head: the primary is
//!   initialized from that, and the head is applied once the canary is initialized, so that it
//!   is analysed (DESIGN.md, State).

use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::ListParams;
use kube::{Api, Client};

use super::link::GitLink;
use crate::api::{Canary, CanaryPhase};
use crate::apply::{Applier, ApplyError, ApplyOptions, ApplyReport};
use crate::catalog::{self, Catalog, CatalogOptions, Problem};
use crate::gates::approvals::{APPROVALS_DIR, ApprovalBook};
use crate::ledger::{LedgerRecord, LedgerWriter, RevisionOrigin};
use crate::message::error_chain;
use crate::revision;
use crate::source::SnapshotOptions;
use crate::source::git::{CommitId, GitError, GitRepo, GitWorker};

/// Where the configuration comes from.
#[derive(Debug, Clone)]
pub struct GitSourceConfig {
    pub branch: String,
    /// Where the ledger lives: `branch`, or a separate status branch.
    pub status_branch: String,
    pub snapshot: SnapshotOptions,
    pub catalog: CatalogOptions,
    /// The longest wait for one Git operation.
    pub git_timeout: Duration,
    /// Apply even an unchanged tree this often, to repair drift in the cluster.
    pub resync: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum GitSyncError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error("cannot list the canaries of the cluster")]
    Cluster(#[source] Box<kube::Error>),
}

/// What one pass found and did.
#[derive(Debug)]
pub struct GitSyncReport {
    pub commit: CommitId,
    /// Nothing but `.serin/` (or nothing) changed since the last apply: nothing was applied.
    pub skipped: bool,
    pub approvals: usize,
    /// Problems of the configuration and of the approval files.
    pub problems: Vec<Problem>,
    pub approval_problems: Vec<String>,
    pub applied: Option<ApplyReport>,
    /// Canaries whose target was applied from their last promoted commit (`namespace/name`).
    pub pinned: Vec<String>,
    /// Canaries whose revision in Git changed with this pass: worth a tick right away.
    pub changed: Vec<(String, String)>,
}

pub struct GitSync {
    worker: GitWorker,
    config: GitSourceConfig,
    applier: Applier,
    client: Client,
    link: GitLink,
    /// The manifest tree applied last, and when.
    applied_tree: Option<(String, tokio::time::Instant)>,
    /// The catalog applied last, with its commit: the base for revision causes.
    previous: Option<(CommitId, Catalog)>,
}

impl GitSync {
    pub fn new(
        worker: GitWorker,
        config: GitSourceConfig,
        client: Client,
        apply: ApplyOptions,
        link: GitLink,
    ) -> Result<Self, ApplyError> {
        Ok(GitSync {
            applier: Applier::new(client.clone(), apply)?,
            worker,
            config,
            client,
            link,
            applied_tree: None,
            previous: None,
        })
    }

    pub fn worker(&self) -> &GitWorker {
        &self.worker
    }

    async fn git<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut GitRepo) -> Result<R, GitError> + Send + 'static,
    ) -> Result<R, GitSyncError> {
        Ok(self.worker.within(self.config.git_timeout, f).await?)
    }

    /// One pass.
    pub async fn run(&mut self) -> Result<GitSyncReport, GitSyncError> {
        let branch = self.config.branch.clone();
        let status_branch = self.config.status_branch.clone();
        let path = self.config.snapshot.normalized_path();
        let (head, tree, approval_files) = self
            .git(move |repo| {
                let head = repo.fetch(&branch)?;
                if status_branch != branch {
                    // The ledger branch may not exist yet: its first push creates it.
                    let _ = repo.fetch(&status_branch);
                }
                let tree = repo.manifest_tree_id(head, &path)?;
                let approvals = repo.read_dir(head, APPROVALS_DIR)?;
                Ok((head, tree, approvals))
            })
            .await?;
        let book = ApprovalBook::load(&approval_files);
        let approvals = book.len();
        let approval_problems = book.problems.clone();
        self.link.set_approvals(book);
        let fresh = self
            .applied_tree
            .as_ref()
            .is_some_and(|(t, at)| *t == tree && at.elapsed() < self.config.resync);
        if fresh {
            return Ok(GitSyncReport {
                commit: head,
                skipped: true,
                approvals,
                problems: Vec::new(),
                approval_problems,
                applied: None,
                pinned: Vec::new(),
                changed: Vec::new(),
            });
        }
        let options = self.config.snapshot.clone();
        let snapshot = self.git(move |repo| repo.snapshot(head, &options)).await?;
        let mut catalog = catalog::load(&snapshot, &self.config.catalog);
        let initialized = self.initialized_canaries().await?;
        let lost = catalog
            .canaries
            .iter()
            .any(|c| !initialized.contains(&(c.namespace().to_string(), c.name().to_string())));
        let ledger = if self.previous.is_none() || lost {
            self.ledger_records().await
        } else {
            BTreeMap::new()
        };
        let pinned = self.pin(&mut catalog, &initialized, &ledger).await;
        let changed = self.record_origins(head, &catalog, &ledger, &pinned).await;
        let applied = self.applier.apply(&catalog).await?;
        // While a canary is pinned the head is not yet fully applied: the next pass must not
        // be skipped.
        self.applied_tree = pinned
            .is_empty()
            .then(|| (tree, tokio::time::Instant::now()));
        let problems = catalog.problems.clone();
        self.previous = Some((head, catalog));
        Ok(GitSyncReport {
            commit: head,
            skipped: false,
            approvals,
            problems,
            approval_problems,
            applied: Some(applied),
            pinned: pinned.keys().map(|(ns, n)| format!("{ns}/{n}")).collect(),
            changed,
        })
    }

    /// Canaries the cluster has initialized (phase neither "" nor Initializing).
    async fn initialized_canaries(&self) -> Result<Vec<(String, String)>, GitSyncError> {
        let api: Api<Canary> = Api::all(self.client.clone());
        match api.list(&ListParams::default()).await {
            Ok(list) => Ok(list
                .items
                .into_iter()
                .filter(|c| {
                    !matches!(
                        c.status.as_ref().map(|s| s.phase),
                        None | Some(CanaryPhase::Unknown | CanaryPhase::Initializing)
                    )
                })
                .map(|c| {
                    (
                        c.metadata.namespace.unwrap_or_default(),
                        c.metadata.name.unwrap_or_default(),
                    )
                })
                .collect()),
            // The CRD is applied by the first sync; before it, no canary is initialized.
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(Vec::new()),
            Err(e) => Err(GitSyncError::Cluster(Box::new(e))),
        }
    }

    async fn ledger_records(&self) -> BTreeMap<(String, String), LedgerRecord> {
        match LedgerWriter::load(&self.worker, &self.config.status_branch).await {
            Ok((records, problems)) => {
                for p in problems {
                    tracing::warn!("{p}");
                }
                records.into_iter().map(|r| (r.key(), r)).collect()
            }
            Err(e) => {
                tracing::debug!("no ledger to resume from: {}", error_chain(&e));
                BTreeMap::new()
            }
        }
    }

    /// Swaps in the promoted commit's target and configs for canaries the cluster lost;
    /// returns them with their promoted origin.
    async fn pin(
        &self,
        catalog: &mut Catalog,
        initialized: &[(String, String)],
        ledger: &BTreeMap<(String, String), LedgerRecord>,
    ) -> BTreeMap<(String, String), RevisionOrigin> {
        let mut pinned = BTreeMap::new();
        let mut snapshots: BTreeMap<String, Catalog> = BTreeMap::new();
        let keys: Vec<(String, String)> = catalog
            .canaries
            .iter()
            .map(|c| (c.namespace().to_string(), c.name().to_string()))
            .collect();
        for key in keys {
            let lost = !initialized.contains(&key);
            let Some(promoted) = ledger.get(&key).and_then(|r| r.last_promoted.clone()) else {
                continue;
            };
            let head_revision = catalog
                .canaries
                .iter()
                .find(|c| c.namespace() == key.0 && c.name() == key.1)
                .and_then(|c| c.revision.as_ref())
                .map(|r| r.id.clone());
            if !lost
                || promoted.origin.source_commit.is_empty()
                || head_revision.as_deref() == Some(promoted.origin.manifest_revision.as_str())
            {
                continue;
            }
            let commit = promoted.origin.source_commit.clone();
            if !snapshots.contains_key(&commit) {
                let options = self.config.snapshot.clone();
                let c = commit.clone();
                match self
                    .git(move |repo| {
                        let id = repo.resolve(&c)?;
                        repo.snapshot(id, &options)
                    })
                    .await
                {
                    Ok(s) => {
                        snapshots.insert(commit.clone(), catalog::load(&s, &self.config.catalog));
                    }
                    Err(e) => {
                        tracing::warn!(canary = %format!("{}/{}", key.0, key.1), "cannot read the promoted commit {commit}; the head is applied: {}", error_chain(&e));
                        continue;
                    }
                }
            }
            let Some(old) = snapshots.get(&commit) else {
                continue;
            };
            if substitute(catalog, old, &key) {
                tracing::info!(
                    canary = %format!("{}/{}", key.0, key.1),
                    commit = %commit,
                    "the cluster lost this canary: its target is applied as last promoted, the head follows once it is initialized"
                );
                pinned.insert(key, promoted.origin.clone());
            }
        }
        pinned
    }

    /// Tells the engine why each target is at its revision.
    async fn record_origins(
        &self,
        head: CommitId,
        catalog: &Catalog,
        ledger: &BTreeMap<(String, String), LedgerRecord>,
        pinned: &BTreeMap<(String, String), RevisionOrigin>,
    ) -> Vec<(String, String)> {
        let mut changed = Vec::new();
        for entry in &catalog.canaries {
            let key = (entry.namespace().to_string(), entry.name().to_string());
            if let Some(origin) = pinned.get(&key) {
                self.link.set_origin(&key.0, &key.1, origin.clone());
                changed.push(key);
                continue;
            }
            let Some(rev) = &entry.revision else {
                continue;
            };
            let before = self
                .previous
                .as_ref()
                .and_then(|(_, c)| c.canaries.iter().find(|c| c.key() == entry.key()));
            let known = self.link.origin(&key.0, &key.1);
            let origin = match before {
                Some(b) if b.revision.as_ref().map(|r| &r.id) == Some(&rev.id) => match known {
                    Some(k) if k.manifest_revision == rev.id => continue,
                    _ => RevisionOrigin {
                        source_commit: head.to_string(),
                        manifest_revision: rev.id.clone(),
                        cause: Vec::new(),
                    },
                },
                Some(b) => RevisionOrigin {
                    source_commit: head.to_string(),
                    manifest_revision: rev.id.clone(),
                    cause: cause(b.revision_input.as_ref(), entry.revision_input.as_ref()),
                },
                None => {
                    let record = ledger.get(&key);
                    let from_ledger = record.and_then(|r| {
                        [Some(&r.revision), r.last_promoted.as_ref()]
                            .into_iter()
                            .flatten()
                            .find(|x| x.origin.manifest_revision == rev.id)
                            .map(|x| x.origin.clone())
                    });
                    match from_ledger {
                        Some(o) => o,
                        None => RevisionOrigin {
                            source_commit: head.to_string(),
                            manifest_revision: rev.id.clone(),
                            cause: self
                                .cause_since_promoted(record, entry)
                                .await
                                .unwrap_or_default(),
                        },
                    }
                }
            };
            self.link.set_origin(&key.0, &key.1, origin);
            changed.push(key);
        }
        changed
    }

    /// The cause of the head's revision against the last promoted one (after a restart).
    async fn cause_since_promoted(
        &self,
        record: Option<&LedgerRecord>,
        entry: &catalog::CanaryEntry,
    ) -> Option<Vec<String>> {
        let commit = record?.last_promoted.as_ref()?.origin.source_commit.clone();
        let options = self.config.snapshot.clone();
        let snapshot = self
            .git(move |repo| {
                let id = repo.resolve(&commit)?;
                repo.snapshot(id, &options)
            })
            .await
            .ok()?;
        let old = catalog::load(&snapshot, &self.config.catalog);
        let before = old.canaries.iter().find(|c| c.key() == entry.key())?;
        Some(cause(
            before.revision_input.as_ref(),
            entry.revision_input.as_ref(),
        ))
    }
}

fn cause(
    before: Option<&revision::RevisionInput>,
    after: Option<&revision::RevisionInput>,
) -> Vec<String> {
    match (before, after) {
        (Some(b), Some(a)) => revision::cause(b, a)
            .into_iter()
            .map(|c| c.to_string())
            .collect(),
        _ => Vec::new(),
    }
}

/// Replaces the target and repository configs of canary `key` in `catalog` by those of `old`.
fn substitute(catalog: &mut Catalog, old: &Catalog, key: &(String, String)) -> bool {
    let Some(entry) = old
        .canaries
        .iter()
        .find(|c| c.namespace() == key.0 && c.name() == key.1)
    else {
        return false;
    };
    let ids = entry.revision_objects();
    let mut any = false;
    for id in ids {
        let Some(old_obj) = old.find(&id) else {
            continue;
        };
        match catalog.objects.iter_mut().find(|o| o.id == id) {
            Some(o) => o.value = old_obj.value.clone(),
            None => catalog.objects.push(old_obj.clone()),
        }
        any = true;
    }
    if let Some(e) = catalog
        .canaries
        .iter_mut()
        .find(|c| c.namespace() == key.0 && c.name() == key.1)
    {
        e.revision = entry.revision.clone();
        e.revision_input = entry.revision_input.clone();
        e.target = entry.target.clone();
    }
    any
}
