//! `serin run`: the controller. It analyses the canaries of the cluster and, with a source,
//! applies the configuration first: a directory (`--source`, re-read on change) or a Git
//! repository (`--repo`, fetched on a schedule and on push webhooks, with the ledger and
//! reverts committed back).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use serin::analysis::runner::{Runner, RunnerOptions};
use serin::analysis::scheduler::Scheduler;
use serin::catalog::CatalogOptions;
use serin::election::{ElectionConfig, Elector};
use serin::gitops::{GitLink, GitSourceConfig, GitSync};
use serin::ledger::{Granularity, LedgerConfig, LedgerWriter, OnFailure};
use serin::source::SnapshotOptions;
use serin::source::git::{Author, GitRepo, GitWorker, Secret};
use serin::source::trigger::{
    self, Schedule, SyncRequest, TriggerReason, WebhookConfig, request_sync,
};
use serin::telemetry::Metrics;
use serin::telemetry::http::{self as telemetry_http, Readiness};
use tokio::sync::mpsc;

use crate::cli::RunArgs;

/// `Name <email>` → author.
pub fn parse_author(text: &str) -> anyhow::Result<Author> {
    let (name, rest) = text
        .split_once('<')
        .with_context(|| format!("{text:?} is not an author: write it as 'Name <email>'"))?;
    let email = rest
        .strip_suffix('>')
        .with_context(|| format!("{text:?} is not an author: write it as 'Name <email>'"))?;
    Ok(Author {
        name: name.trim().to_string(),
        email: email.trim().to_string(),
    })
}

/// Resolves on Ctrl-C or SIGTERM (what Kubernetes sends to stop a pod).
async fn stopped() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let client = serin::cluster::connect(args.kubeconfig.as_deref()).await?;
    let workloads = serin::workload::WorkloadOptions {
        selector_labels: args.selector_labels.clone(),
        include_label_prefixes: args.include_label_prefix.clone(),
    };
    let catalog = CatalogOptions {
        default_namespace: args.default_namespace.clone(),
        selector_labels: args.selector_labels.clone(),
        default_provider: args.provider.clone(),
        ..Default::default()
    };
    let snapshot = SnapshotOptions {
        path: args.path.clone(),
        ..Default::default()
    };
    let mut apply = serin::apply::ApplyOptions::new(args.inventory.clone());
    apply.inventory_namespace = args.inventory_namespace.clone();
    let options = RunnerOptions {
        default_provider: args.provider.clone(),
        metrics_server: Some(args.metrics_server.clone()),
        event_webhook: args.event_webhook.clone(),
        workloads,
        instance: std::env::var("POD_NAME").ok(),
        min_interval: args.min_analysis_interval,
        routing: serin::router::RoutingOptions {
            ingress_annotations_prefix: args.ingress_annotations_prefix.clone(),
            ingress_class: args.ingress_class.clone(),
        },
    };
    let telemetry = Metrics::new(env!("CARGO_PKG_VERSION"), &args.provider);
    let readiness = Readiness::default();
    let mut runner = Runner::new(client.clone(), options)?.with_metrics(telemetry.clone());
    let (requests, mut incoming) = mpsc::channel::<SyncRequest>(1);
    // Up before the first sync, which may be a long clone: /healthz must answer meanwhile,
    // and /readyz says when the sync is done.
    if let Some(addr) = args.listen {
        let mut app = telemetry_http::router(telemetry.clone(), readiness.clone());
        if let Some(file) = &args.webhook_secret_file {
            let secret = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read --webhook-secret-file {}", file.display()))?;
            let config = WebhookConfig::new(args.branch.clone(), Secret::new(secret.trim()));
            let receiver = trigger::router(config, requests.clone());
            app = app.merge(telemetry_http::count_webhook_deliveries(
                receiver,
                telemetry.clone(),
            ));
        } else if args.repo.is_some() {
            tracing::warn!("--listen without --webhook-secret-file: push webhooks are not served");
        }
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        tracing::info!("listening on {addr}");
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!("the HTTP server stopped: {e}");
            }
        });
    }

    // With several replicas only the Lease holder goes on; the others wait here. A standby is
    // ready: a Deployment's rolling update must be able to count it, and a push webhook it
    // receives stays pending in `requests` until it leads (the poll covers the rest).
    if args.leader_elect {
        readiness.set_ready();
        let identity = args.leader_elect_identity.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "serin".into());
            format!("{host}-{}", std::process::id())
        });
        let mut config = ElectionConfig::new(
            args.leader_elect_namespace
                .as_deref()
                .unwrap_or(&args.inventory_namespace),
            &identity,
        );
        config.lease_duration = args.leader_elect_lease_duration;
        config.retry_period = args.leader_elect_retry_period;
        let elector = Arc::new(Elector::new(client.clone(), config));
        tracing::info!(identity = %identity, "waiting to become the leader");
        tokio::select! {
            () = elector.acquire() => {}
            () = stopped() => return Ok(ExitCode::SUCCESS),
        }
        tracing::info!(identity = %identity, "leading");
        tokio::spawn(async move {
            elector.hold().await;
            // Another replica may act from now on: stop at once rather than act twice. Queued
            // ledger commits stay in the mirror and are pushed by the next start.
            tracing::error!("lost the leader lease; exiting");
            std::process::exit(1);
        });
    }

    // The Git side: the repository's worker, the ledger and what the engine reads of Git.
    let mut git = None;
    let mut ledger_task = None;
    if let Some(url) = &args.repo {
        let status_branch = args
            .status_branch
            .clone()
            .unwrap_or_else(|| args.branch.clone());
        let repo = GitRepo::open_or_init(
            url,
            &crate::git::cache_dir(&args.git),
            crate::git::auth(&args.git)?,
        )?;
        let worker = GitWorker::spawn(repo)?;
        let granularity: Granularity = args
            .ledger_granularity
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--ledger-granularity: {e}"))?;
        let on_failure: OnFailure = args
            .on_failure
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--on-failure: {e}"))?;
        let ledger_config = LedgerConfig {
            branch: args.branch.clone(),
            status_branch: status_branch.clone(),
            author: parse_author(&args.git_author).context("--git-author")?,
            granularity,
            on_failure,
            snapshot: snapshot.clone(),
            catalog: catalog.clone(),
            git_timeout: args.git_timeout,
        };
        let (observations, observed) = mpsc::unbounded_channel();
        let link = GitLink::new(Some(observations));
        runner = runner.with_git(link.clone());
        let config = GitSourceConfig {
            branch: args.branch.clone(),
            status_branch: status_branch.clone(),
            snapshot: snapshot.clone(),
            catalog: catalog.clone(),
            git_timeout: args.git_timeout,
            resync: args.resync_interval,
        };
        let mut sync = GitSync::new(worker.clone(), config, client.clone(), apply.clone(), link)?;
        // The first fetch must happen before the ledger is read: the mirror may be new.
        report(
            &mut sync,
            &SyncRequest::now(TriggerReason::Startup),
            &telemetry,
        )
        .await;
        // The ledger is read from Git before the first commit; if the remote is away now,
        // observations wait for it rather than start a record without its history.
        let writer = LedgerWriter::resume(worker, ledger_config).with_metrics(telemetry.clone());
        ledger_task = Some(tokio::spawn(writer.run(observed)));
        git = Some(sync);
        let schedule = Schedule::parse(&args.poll).map_err(|e| anyhow::anyhow!("{e}"))?;
        trigger::spawn_poll(schedule, requests.clone(), std::future::pending());
    }
    let dir_sync = match &args.source {
        Some(dir) => {
            let config = serin::sync::SourceConfig {
                dir: dir.clone(),
                snapshot: snapshot.clone(),
                catalog: catalog.clone(),
            };
            Some(serin::sync::SourceSync::new(client.clone(), config, apply)?)
        }
        None => None,
    };
    let _watch = match &args.source {
        Some(dir) => Some(trigger::spawn_watch(
            dir,
            requests.clone(),
            trigger::DEFAULT_DEBOUNCE,
        )?),
        None => None,
    };
    let mut scheduler = Scheduler::new(client, runner, args.namespace.clone());
    tracing::info!(
        "serin run: analysing canaries{}{}",
        args.namespace
            .as_deref()
            .map(|n| format!(" in namespace {n}"))
            .unwrap_or_default(),
        match (&args.repo, &args.source) {
            (Some(url), _) => format!(
                ", following {} of {}",
                args.branch,
                serin::source::git::scrub_url(url)
            ),
            (None, Some(d)) => format!(", applying {}", d.display()),
            _ => String::new(),
        }
    );
    let requests = Arc::new(requests);
    let mut git = git;
    let mut first = args.repo.is_none();
    let stop = stopped();
    tokio::pin!(stop);
    loop {
        let mut changed = Vec::new();
        if let Some(source) = &dir_sync
            && first
        {
            sync_dir(source, &args, &telemetry).await;
        }
        first = false;
        match scheduler.sync().await {
            // The first sync is done (the startup sync for --repo, the first read of
            // --source, else this listing) and the watches are up: ready.
            Ok(_) => readiness.set_ready(),
            Err(e) => tracing::warn!("cannot list canaries: {e}"),
        }
        let request = tokio::select! {
            _ = &mut stop => break,
            r = incoming.recv() => r,
            () = tokio::time::sleep(args.control_loop_interval) => None,
        };
        let Some(request) = request else {
            // Without a watch, a directory is re-read every control loop.
            if let Some(source) = &dir_sync
                && _watch.is_none()
            {
                sync_dir(source, &args, &telemetry).await;
            }
            continue;
        };
        if let Some(sync) = &mut git {
            if let Some(r) = report(sync, &request, &telemetry).await {
                changed = r.changed;
                if !r.pinned.is_empty() {
                    // The head follows as soon as the pinned canaries are initialized.
                    let again = requests.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        request_sync(&again, SyncRequest::now(TriggerReason::Poll));
                    });
                }
            }
        } else if let Some(source) = &dir_sync {
            sync_dir(source, &args, &telemetry).await;
        }
        if let Err(e) = scheduler.sync().await {
            tracing::warn!("cannot list canaries: {e}");
        }
        scheduler.kick(&changed);
    }
    scheduler.shutdown();
    drop(git);
    if let Some(task) = ledger_task {
        // The scheduler's tasks held the ledger's sender; with them gone the writer pushes
        // what is queued and ends. A remote that does not answer must not hold the exit.
        let _ = tokio::time::timeout(args.git_timeout, task).await;
    }
    Ok(ExitCode::SUCCESS)
}

async fn sync_dir(source: &serin::sync::SourceSync, args: &RunArgs, telemetry: &Metrics) {
    let started = std::time::Instant::now();
    let result = source.run().await;
    match &result {
        Ok(r) => {
            telemetry.sync_succeeded(started.elapsed(), None);
            telemetry.inc_api_errors("apply", r.applied.failed.len() as u64);
        }
        Err(e) => {
            telemetry.sync_failed(started.elapsed());
            if let serin::sync::SyncError::Apply(e) = e {
                count_apply_error(telemetry, e);
            }
        }
    }
    match result {
        Ok(report) => {
            for p in &report.problems {
                tracing::warn!("{}", p.to_string().replace("\n  fix:", "; fix:"));
            }
            tracing::info!("applied: {}", report.applied);
        }
        Err(e) => tracing::warn!(
            "cannot sync {}: {}",
            args.source
                .as_ref()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
            serin::message::error_chain(&e)
        ),
    }
}

/// A failed apply that the API server caused (the others are configuration errors).
fn count_apply_error(telemetry: &Metrics, e: &serin::apply::ApplyError) {
    if let serin::apply::ApplyError::ReadInventory { .. } = e {
        telemetry.inc_api_errors("read_inventory", 1);
    }
}

/// One Git sync, logged and measured.
async fn report(
    sync: &mut GitSync,
    request: &SyncRequest,
    telemetry: &Metrics,
) -> Option<serin::gitops::GitSyncReport> {
    let started = std::time::Instant::now();
    let result = sync.run().await;
    match &result {
        Ok(r) => {
            telemetry.sync_succeeded(started.elapsed(), Some(&r.commit.to_string()));
            let failed = r.applied.as_ref().map_or(0, |a| a.failed.len());
            telemetry.inc_api_errors("apply", failed as u64);
        }
        Err(e) => {
            telemetry.sync_failed(started.elapsed());
            match e {
                serin::gitops::GitSyncError::Cluster(_) => {
                    telemetry.inc_api_errors("list_canaries", 1)
                }
                serin::gitops::GitSyncError::Apply(e) => count_apply_error(telemetry, e),
                _ => {}
            }
        }
    }
    match result {
        Ok(r) => {
            for p in &r.problems {
                tracing::warn!("{}", p.to_string().replace("\n  fix:", "; fix:"));
            }
            for p in &r.approval_problems {
                tracing::warn!("{p}");
            }
            match &r.applied {
                None => tracing::debug!(commit = %r.commit, trigger = %request.reason, "unchanged"),
                Some(applied) => tracing::info!(
                    commit = %r.commit,
                    trigger = %request.reason,
                    waited_ms = request.received.elapsed().as_millis() as u64,
                    "applied: {applied}"
                ),
            }
            Some(r)
        }
        Err(e) => {
            tracing::warn!(
                trigger = %request.reason,
                "cannot sync {}: {}",
                sync.worker().origin(),
                serin::message::error_chain(&e)
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authors_parse_from_name_and_email() {
        let a = parse_author("Serin Bot <serin@example.com>").expect("parses");
        assert_eq!(
            (a.name.as_str(), a.email.as_str()),
            ("Serin Bot", "serin@example.com")
        );
        assert!(parse_author("serin").is_err());
    }
}
