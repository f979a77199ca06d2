//! The ledger task: observations of ticks in, status commits out, pushed with retry.
//!
//! Observations that arrive together (one scheduler cycle) become one commit; a canary seen
//! twice starts a new commit, so that no transition is folded away. Commits are queued in the
//! local mirror first (they survive a restart there) and pushed after every batch; while the
//! remote is unreachable the push is retried with backoff and new commits queue behind the
//! old ones, in order (DESIGN.md, Push).

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::mpsc;

use super::message::{self, Entry, Granularity};
use super::record::{self, LedgerRecord, Observation};
use super::revert;
use crate::api::CanaryPhase;
use crate::catalog::CatalogOptions;
use crate::message::error_chain;
use crate::message::short_id;
use crate::source::SnapshotOptions;
use crate::source::git::{Author, FileChange, GitError, GitWorker};
use crate::telemetry::Metrics;

/// What Git gets after a failed analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnFailure {
    /// The failure is written to the ledger; the manifests stay as they are.
    #[default]
    Record,
    /// The target's manifests and configs are also committed back to the promoted revision.
    Revert,
    /// The same revert, pushed to a new `serin/revert/...` branch for a pull request.
    RevertBranch,
}

impl std::str::FromStr for OnFailure {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "record" => Ok(OnFailure::Record),
            "revert" => Ok(OnFailure::Revert),
            "revert-branch" => Ok(OnFailure::RevertBranch),
            other => Err(format!(
                "unknown on-failure policy {other:?}: use record, revert or revert-branch"
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct LedgerConfig {
    /// The branch the configuration comes from (reverts are committed there).
    pub branch: String,
    /// The branch ledger files are committed to: `branch`, or a separate status branch.
    pub status_branch: String,
    pub author: Author,
    pub granularity: Granularity,
    pub on_failure: OnFailure,
    /// What the source reads, for reverts.
    pub snapshot: SnapshotOptions,
    pub catalog: CatalogOptions,
    /// The longest wait for one Git operation (libgit2 has no timeouts of its own here).
    pub git_timeout: Duration,
}

/// Retries of a failed push wait 1 s, 2 s, 4 s … up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub struct LedgerWriter {
    worker: GitWorker,
    config: LedgerConfig,
    records: BTreeMap<(String, String), LedgerRecord>,
    /// The next push attempt while commits are queued, with its backoff.
    retry: Option<(tokio::time::Instant, Duration)>,
    /// Revert branches with commits to push, besides the followed and the status branch.
    revert_branches: std::collections::BTreeSet<String>,
    /// Queue depth and push failures, when `serin run` serves metrics.
    telemetry: Option<Metrics>,
    /// Whether `records` holds the ledger as Git has it. Until it does, observations wait in
    /// `waiting`: a record built without its predecessor would drop the canary's history.
    loaded: bool,
    waiting: Vec<Observation>,
}

impl LedgerWriter {
    /// A writer continuing from `records` (the ledger files at the branch head or the newest
    /// queued commit).
    pub fn new(worker: GitWorker, config: LedgerConfig, records: Vec<LedgerRecord>) -> Self {
        LedgerWriter {
            worker,
            config,
            records: records.into_iter().map(|r| (r.key(), r)).collect(),
            retry: None,
            revert_branches: Default::default(),
            telemetry: None,
            loaded: true,
            waiting: Vec::new(),
        }
    }

    /// A writer that reads the ledger from Git before its first commit, and holds
    /// observations until it could (the remote may be unreachable when Serin starts).
    pub fn resume(worker: GitWorker, config: LedgerConfig) -> Self {
        let mut w = LedgerWriter::new(worker, config, Vec::new());
        w.loaded = false;
        w
    }

    /// Reads the ledger if it was not read yet; `true` once it has been.
    async fn ensure_loaded(&mut self) -> bool {
        if self.loaded {
            return true;
        }
        let status = self.config.status_branch.clone();
        let followed = self.config.branch.clone();
        let result = self
            .git(move |repo| {
                let at = match repo.pending(&status)?.last() {
                    Some(c) => Some(*c),
                    None => match repo.resolve(&format!("refs/remotes/origin/{status}")) {
                        Ok(c) => Some(c),
                        // The followed branch was fetched but the status branch does not
                        // exist yet: a new ledger. Nothing fetched at all: not known yet.
                        Err(e) => {
                            repo.resolve(&format!("refs/remotes/origin/{followed}"))
                                .map_err(|_| e)?;
                            None
                        }
                    },
                };
                match at {
                    Some(at) => repo.read_dir(at, record::STATUS_DIR),
                    None => Ok(Vec::new()),
                }
            })
            .await;
        match result {
            Ok(files) => {
                for (path, bytes) in files {
                    match LedgerRecord::parse(&path, &bytes) {
                        Ok(r) => {
                            self.records.insert(r.key(), r);
                        }
                        Err(e) => tracing::warn!("{e}"),
                    }
                }
                self.loaded = true;
                true
            }
            Err(e) => {
                tracing::warn!(
                    waiting = self.waiting.len(),
                    "the ledger cannot be read yet, observations wait: {e}"
                );
                false
            }
        }
    }

    /// Records the queue depth after every push, and push failures, in `metrics`.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.telemetry = Some(metrics);
        self
    }

    /// The ledger files at the newest commit Serin knows of for `branch`: its own queued
    /// commits first (they are newer than the remote's), else the fetched branch head.
    pub async fn load(
        worker: &GitWorker,
        branch: &str,
    ) -> Result<(Vec<LedgerRecord>, Vec<String>), GitError> {
        let branch = branch.to_string();
        worker
            .with(move |repo| {
                let pending = repo.pending(&branch)?;
                let at = match pending.last() {
                    Some(c) => *c,
                    None => repo.resolve(&format!("refs/remotes/origin/{branch}"))?,
                };
                let files = repo.read_dir(at, record::STATUS_DIR)?;
                let mut records = Vec::new();
                let mut problems = Vec::new();
                for (path, bytes) in files {
                    match LedgerRecord::parse(&path, &bytes) {
                        Ok(r) => records.push(r),
                        Err(e) => problems.push(e.to_string()),
                    }
                }
                Ok((records, problems))
            })
            .await?
    }

    pub fn records(&self) -> impl Iterator<Item = &LedgerRecord> {
        self.records.values()
    }

    /// Runs until `observations` closes, then pushes what is queued one last time.
    pub async fn run(mut self, mut observations: mpsc::UnboundedReceiver<Observation>) {
        // Commits queued by an earlier run (the remote was away when it stopped) go first.
        self.push().await;
        loop {
            let retry_at = self.retry.map(|(at, _)| at);
            tokio::select! {
                received = observations.recv() => {
                    let Some(first) = received else { break };
                    let mut batch = vec![first];
                    while let Ok(more) = observations.try_recv() {
                        batch.push(more);
                    }
                    self.record(batch).await;
                    self.push().await;
                }
                () = sleep_until(retry_at) => {
                    self.push().await;
                }
            }
        }
        self.push().await;
    }

    /// Turns a batch of observations into commits.
    pub async fn record(&mut self, batch: Vec<Observation>) {
        if !self.ensure_loaded().await {
            self.waiting.extend(batch);
            return;
        }
        let mut batch = batch;
        if !self.waiting.is_empty() {
            let mut all = std::mem::take(&mut self.waiting);
            all.append(&mut batch);
            batch = all;
        }
        let mut entries: Vec<Entry> = Vec::new();
        let mut reverts = Vec::new();
        let batch: Vec<Observation> = batch
            .into_iter()
            .flat_map(|obs| {
                let key = (obs.namespace.clone(), obs.name.clone());
                let catch_up = self.records.get(&key).and_then(|r| record::missed(r, &obs));
                catch_up.into_iter().chain(std::iter::once(obs))
            })
            .collect();
        for obs in batch {
            let key = (obs.namespace.clone(), obs.name.clone());
            let before = self.records.get(&key).cloned();
            let mut after = record::observe(before.as_ref(), &obs);
            let Some(summary) = message::summary(before.as_ref(), &after, self.config.granularity)
            else {
                self.records.insert(key, after);
                continue;
            };
            if entries.iter().any(|e| e.record.key() == key) {
                self.commit(std::mem::take(&mut entries)).await;
            }
            let failed_now = after.phase == CanaryPhase::Failed
                && before
                    .as_ref()
                    .is_none_or(|b| b.phase != CanaryPhase::Failed);
            let policy = match obs.on_failure.as_deref().map(str::parse::<OnFailure>) {
                Some(Ok(p)) => p,
                Some(Err(e)) => {
                    tracing::warn!(canary = %after.canary, "annotation serin.dev/on-failure: {e}");
                    self.config.on_failure
                }
                None => self.config.on_failure,
            };
            if failed_now && policy != OnFailure::Record {
                let outcome = self.plan_revert(&after).await;
                let branch = (policy == OnFailure::RevertBranch).then(|| revert_branch(&after));
                if let Some(h) = after.history.first_mut() {
                    h.revert = match (&outcome, &branch) {
                        (Ok((_, to)), None) => format!("reverted to the promoted revision of {to}"),
                        (Ok((_, to)), Some(b)) => {
                            format!(
                                "revert to the promoted revision of {to} proposed on branch {b}"
                            )
                        }
                        (Err(e), _) => format!("not reverted: {e}"),
                    };
                }
                if let Ok((plan, _)) = outcome {
                    reverts.push((after.clone(), plan, branch));
                }
            }
            self.records.insert(key, after.clone());
            entries.push(Entry {
                summary,
                record: after,
            });
        }
        self.commit(entries).await;
        for (record, plan, branch) in reverts {
            self.commit_revert(&record, plan, branch).await;
        }
    }

    async fn commit(&mut self, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        let message = message::commit_message(&entries);
        let changes: Vec<FileChange> = entries
            .iter()
            .map(|e| FileChange {
                path: e.record.path(),
                content: Some(e.record.render().into_bytes()),
            })
            .collect();
        let branch = self.config.status_branch.clone();
        let author = self.config.author.clone();
        let result = self
            .git(move |repo| repo.queue_commit(&branch, &changes, &message, &author))
            .await;
        match result {
            Ok(Some(id)) => {
                tracing::debug!(commit = %id, canaries = entries.len(), "ledger commit queued")
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("cannot commit to the ledger: {e}"),
        }
    }

    /// The revert plan for a failed canary, and the promoted commit it goes back to.
    async fn plan_revert(
        &self,
        failed: &LedgerRecord,
    ) -> Result<(revert::RevertPlan, String), String> {
        let promoted = failed
            .last_promoted
            .as_ref()
            .map(|p| p.origin.source_commit.clone())
            .filter(|c| !c.is_empty())
            .ok_or("the ledger has no promoted commit for it")?;
        let branch = self.config.branch.clone();
        let snapshot = self.config.snapshot.clone();
        let catalog = self.config.catalog.clone();
        let (ns, name) = failed.key();
        let to = promoted.clone();
        self.git(move |repo| {
            let head = repo.resolve(&format!("refs/remotes/origin/{branch}"))?;
            let old = repo.resolve(&to)?;
            Ok((
                repo.snapshot(head, &snapshot)?,
                repo.snapshot(old, &snapshot)?,
            ))
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|(head, old)| {
            revert::plan_revert(&head, &old, &catalog, &ns, &name).map_err(|e| e.to_string())
        })
        .map(|plan| (plan, short_id(&promoted).to_string()))
    }

    /// Commits the revert on the followed branch, or on `to_branch` started from its head.
    async fn commit_revert(
        &mut self,
        failed: &LedgerRecord,
        plan: revert::RevertPlan,
        to_branch: Option<String>,
    ) {
        let (ns, name) = failed.key();
        let promoted = failed.last_promoted.clone().unwrap_or_default();
        let mut message = format!(
            "{name}.{ns}: revert to the promoted revision after a failed analysis\n\n\
             Serin put {} back to commit {} (revision {}).\n",
            plan.objects.join(", "),
            short_id(&promoted.origin.source_commit),
            short_id(&promoted.hash),
        );
        if !failed.revision.origin.cause.is_empty() {
            message.push_str(&format!(
                "The failed revision {} changed: {}.\n",
                short_id(&failed.revision.hash),
                failed.revision.origin.cause.join("; ")
            ));
        }
        message.push_str("\nEvidence:\n");
        for reason in &failed.reasons {
            message.push_str(&format!("- {reason}\n"));
        }
        for m in &failed.metrics {
            let v = m
                .value
                .map_or_else(|| "no value".to_string(), |v| format!("{v:.2}"));
            message.push_str(&format!("- metric {} = {v}\n", m.name));
        }
        message.push_str(&format!(
            "\nSerin-Canary: {}\nSerin-Phase: Failed\nSerin-Revision: {}\nSerin-Source-Commit: {}\nSerin-Reverts: {}\n",
            failed.canary,
            promoted.hash,
            promoted.origin.source_commit,
            failed.revision.origin.source_commit
        ));
        let followed = self.config.branch.clone();
        let branch = to_branch.clone().unwrap_or_else(|| followed.clone());
        let author = self.config.author.clone();
        let changes = plan.changes;
        let result = self
            .git(move |repo| {
                if branch != followed {
                    // The proposal starts at the head of the followed branch.
                    let head = repo.resolve(&format!("refs/remotes/origin/{followed}"))?;
                    let tracking = format!("refs/remotes/origin/{branch}");
                    repo.repository()
                        .reference(&tracking, head.oid(), true, "serin: revert branch")
                        .map_err(|e| GitError::Resolve {
                            origin: repo.origin().to_string(),
                            rev: tracking.clone(),
                            message: e.message().to_string(),
                        })?;
                }
                repo.queue_commit(&branch, &changes, &message, &author)
            })
            .await;
        if let Some(b) = &to_branch {
            self.revert_branches.insert(b.clone());
        }
        match result {
            Ok(Some(id)) => {
                tracing::info!(canary = %failed.canary, commit = %id, branch = ?to_branch, "revert queued")
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(canary = %failed.canary, "cannot commit the revert: {e}"),
        }
    }

    /// Pushes the queued commits of every branch Serin writes; schedules a retry on failure.
    pub async fn push(&mut self) -> bool {
        let mut branches = vec![self.config.status_branch.clone()];
        if self.config.branch != self.config.status_branch {
            branches.push(self.config.branch.clone());
        }
        branches.extend(self.revert_branches.iter().cloned());
        let mut ok = true;
        // Commits still queued after this push, over all branches.
        let mut queued = 0;
        for branch in branches {
            let b = branch.clone();
            let pending = self.git(move |repo| repo.pending(&b)).await;
            let waiting = pending.as_ref().map_or(0, Vec::len);
            match pending {
                Ok(p) if p.is_empty() => {
                    self.revert_branches.remove(&branch);
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!("cannot read the ledger queue: {e}");
                    ok = false;
                    continue;
                }
            }
            let b = branch.clone();
            match self.git(move |repo| repo.push(&b)).await {
                Ok(report) => {
                    for d in &report.dropped {
                        tracing::warn!(
                            branch = %branch,
                            "commit {:?} was not pushed: {} was changed on the remote meanwhile",
                            d.summary,
                            d.path
                        );
                    }
                    tracing::info!(branch = %branch, commits = report.pushed.len(), head = %report.remote_head, "ledger pushed");
                }
                Err(e) => {
                    ok = false;
                    queued += waiting;
                    if let Some(m) = &self.telemetry {
                        m.inc_ledger_push_failures();
                    }
                    tracing::warn!(branch = %branch, "push failed, commits stay queued: {e}");
                }
            }
        }
        if let Some(m) = &self.telemetry {
            m.set_ledger_queue_depth(queued);
        }
        if !self.loaded && !self.waiting.is_empty() {
            // Observations wait for the ledger: try again on the retry schedule.
            self.record(Vec::new()).await;
            ok &= self.loaded;
        }
        self.retry = if ok {
            None
        } else {
            let backoff = self
                .retry
                .map_or(Duration::from_secs(1), |(_, b)| (b * 2).min(MAX_BACKOFF));
            Some((tokio::time::Instant::now() + backoff, backoff))
        };
        ok
    }

    async fn git<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut crate::source::git::GitRepo) -> Result<R, GitError> + Send + 'static,
    ) -> Result<R, String> {
        self.worker
            .within(self.config.git_timeout, f)
            .await
            .map_err(|e| error_chain(&e))
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// `serin/revert/<namespace>-<name>-<revision>`: one proposal per failed revision.
fn revert_branch(failed: &LedgerRecord) -> String {
    let (ns, name) = failed.key();
    format!(
        "serin/revert/{ns}-{name}-{}",
        short_id(&failed.revision.hash)
    )
}
