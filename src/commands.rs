//! What each subcommand does: read, call the library, print. Exit codes: 0 ok, 1 findings,
//! 2 usage or I/O error (returned as `Err`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use serde::Serialize;
use serin::catalog::{self, Catalog, CatalogOptions, ConfigOrigin};
use serin::source::{Snapshot, SnapshotOptions};

use crate::cli::{CatalogArgs, GitArgs, Output, PlanOutput};

fn catalog_options(args: &CatalogArgs) -> CatalogOptions {
    CatalogOptions {
        default_namespace: args.default_namespace.clone(),
        selector_labels: args.selector_labels.clone(),
        no_cross_namespace_refs: args.no_cross_namespace_refs,
        default_provider: args.provider.clone(),
    }
}

fn snapshot_options(args: &CatalogArgs) -> SnapshotOptions {
    SnapshotOptions {
        path: args.path.clone(),
        max_file_bytes: args.max_file_size,
    }
}

fn read_dir(dir: Option<&Path>, args: &CatalogArgs) -> anyhow::Result<Snapshot> {
    let dir = dir.map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    Ok(serin::source::dir::read_dir(&dir, &snapshot_options(args))?)
}

fn summary(catalog: &Catalog) -> String {
    format!(
        "{} file(s), {} object(s), {} canary(ies): {} error(s), {} warning(s)",
        catalog.files,
        catalog.objects.len(),
        catalog.canaries.len(),
        catalog.errors(),
        catalog.warnings()
    )
}

fn findings_exit(catalog: &Catalog) -> ExitCode {
    if catalog.errors() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub fn validate(
    dir: Option<&Path>,
    repo: Option<&str>,
    reference: Option<&str>,
    git: &GitArgs,
    args: &CatalogArgs,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let snapshot = match (repo, reference) {
        (Some(url), Some(reference)) => {
            crate::git::fetch_snapshot(url, reference, git, &snapshot_options(args))?
        }
        _ => read_dir(dir, args)?,
    };
    let catalog = catalog::load(&snapshot, &catalog_options(args));
    match output {
        Output::Text => {
            for p in &catalog.problems {
                println!("{p}");
            }
            println!("{}: {}", snapshot.origin, summary(&catalog));
        }
        Output::Json => print_json(&serde_json::json!({
            "origin": snapshot.origin,
            "commit": snapshot.commit,
            "files": catalog.files,
            "objects": catalog.objects.len(),
            "canaries": catalog.canaries.len(),
            "errors": catalog.errors(),
            "warnings": catalog.warnings(),
            "problems": catalog.problems,
        }))?,
    }
    Ok(findings_exit(&catalog))
}

#[derive(Serialize)]
struct HashReport {
    canary: String,
    file: String,
    target: String,
    revision: Option<String>,
    template: Option<String>,
    configs: Vec<TrackedConfig>,
}

#[derive(Serialize)]
struct TrackedConfig {
    key: String,
    optional: bool,
    checksum: Option<String>,
    /// Where the content comes from: a file of the repository, or the cluster at run time.
    origin: String,
}

pub fn hash(dir: Option<&Path>, args: &CatalogArgs, output: Output) -> anyhow::Result<ExitCode> {
    let snapshot = read_dir(dir, args)?;
    let catalog = catalog::load(&snapshot, &catalog_options(args));
    let reports: Vec<HashReport> = catalog
        .canaries
        .iter()
        .map(|c| HashReport {
            canary: c.key(),
            file: c.location.file.clone(),
            target: c
                .canary
                .spec
                .target_ref
                .as_ref()
                .map(|t| format!("{} {}", t.kind(), t.name()))
                .unwrap_or_default(),
            revision: c.revision.as_ref().map(|r| r.id.clone()),
            template: c.revision.as_ref().map(|r| r.template_hash.clone()),
            configs: c
                .configs
                .iter()
                .map(|(u, origin)| {
                    let key = u.config.tracked_key();
                    let checksum = c
                        .revision
                        .as_ref()
                        .and_then(|r| r.tracked_configs.get(&key).cloned());
                    TrackedConfig {
                        key,
                        optional: u.optional,
                        checksum,
                        origin: match origin {
                            ConfigOrigin::Repository(at) => at.to_string(),
                            ConfigOrigin::Cluster => {
                                "not in the repository: hashed from the cluster at run time".into()
                            }
                            ConfigOrigin::AbsentOptional => {
                                "optional, not in the repository".into()
                            }
                            ConfigOrigin::Untracked(at) => {
                                format!("{at}, not tracked (opted out or untracked type)")
                            }
                        },
                    }
                })
                .collect(),
        })
        .collect();
    match output {
        Output::Json => print_json(&reports)?,
        Output::Text => {
            for r in &reports {
                let short = |h: &Option<String>| {
                    h.as_deref()
                        .map_or("-".to_string(), |h| h[..12.min(h.len())].to_string())
                };
                println!(
                    "{}  revision {}  ({}, {})",
                    r.canary,
                    short(&r.revision),
                    r.target,
                    r.file
                );
                println!("  template  {}", short(&r.template));
                for c in &r.configs {
                    let sum = c.checksum.as_deref().map_or("-", |s| &s[..12.min(s.len())]);
                    println!("  {:<40} {sum:<12}  {}", c.key, c.origin);
                }
            }
            for p in catalog.problems.iter().filter(|p| p.is_error()) {
                eprintln!("{p}");
            }
            println!("{}", summary(&catalog));
        }
    }
    Ok(findings_exit(&catalog))
}

pub fn plan(
    repo: &Path,
    base: &str,
    head: &str,
    args: &CatalogArgs,
    output: PlanOutput,
) -> anyhow::Result<ExitCode> {
    let options = snapshot_options(args);
    let (base_snap, head_snap) = crate::git::local_snapshots(repo, base, head, &options)
        .with_context(|| format!("reading {base} and {head} in {}", repo.display()))?;
    let catalog_opts = catalog_options(args);
    let base_catalog = catalog::load(&base_snap, &catalog_opts);
    let head_catalog = catalog::load(&head_snap, &catalog_opts);
    let short = |s: &Snapshot, name: &str| match &s.commit {
        Some(c) => format!("{name} ({})", &c[..12.min(c.len())]),
        None => name.to_string(),
    };
    let plan = serin::plan::plan(
        &short(&base_snap, base),
        &base_catalog,
        &short(&head_snap, head),
        &head_catalog,
    );
    match output {
        PlanOutput::Markdown => print!("{}", serin::plan::markdown(&plan)),
        PlanOutput::Json => print_json(&plan)?,
    }
    Ok(if plan.errors() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

pub fn crd() -> anyhow::Result<ExitCode> {
    print!("{}", serin::api::crds_yaml()?);
    Ok(ExitCode::SUCCESS)
}

pub async fn doctor(
    kubeconfig: Option<&Path>,
    prometheus_url: Option<&str>,
    provider: &str,
) -> anyhow::Result<ExitCode> {
    let client = serin::cluster::connect(kubeconfig).await?;
    let checks = serin::doctor::run(&client, prometheus_url, provider).await;
    for check in &checks {
        println!("{check}");
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    if failed == 0 {
        println!("all {} checks passed", checks.len());
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{failed} of {} checks failed", checks.len());
        Ok(ExitCode::from(1))
    }
}
