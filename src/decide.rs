//! `serin approve | rollback | retry`: a person's decision, committed and pushed to the config
//! repository as a file under `.serin/approvals/`, for the revision the ledger shows now.
//! `serin status`: the canaries as a table, from the cluster or from the ledger in Git.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use serin::api::Canary;
use serin::gates::approvals::{Action, Approval, GATES};
use serin::ledger::{LedgerRecord, status_path};
use serin::source::git::{Author, FileChange, GitRepo};

use crate::cli::{DecisionArgs, RepoArgs, StatusArgs};

/// The config repository: --repo, else the `origin` remote of the checkout Serin runs in.
fn repository(args: &RepoArgs) -> anyhow::Result<GitRepo> {
    let url = match &args.repo {
        Some(u) => u.clone(),
        None => {
            let local = git2::Repository::discover(".")
                .context("not in a Git checkout: pass --repo with the config repository's URL")?;
            let remote = local
                .find_remote("origin")
                .context("the checkout has no remote `origin`: pass --repo")?;
            remote
                .url()
                .context("the remote `origin` has no URL: pass --repo")?
                .to_string()
        }
    };
    Ok(GitRepo::open_or_init(
        &url,
        &crate::git::cache_dir(&args.git),
        crate::git::auth(&args.git)?,
    )?)
}

/// The person deciding: --author, else user.name/user.email of Git's configuration.
fn author(given: Option<&str>) -> anyhow::Result<Author> {
    if let Some(a) = given {
        return crate::serve::parse_author(a);
    }
    let config = git2::Config::open_default().context("cannot read Git's configuration")?;
    let name = config.get_string("user.name").ok();
    let email = config.get_string("user.email").ok();
    match (name, email) {
        (Some(name), Some(email)) => Ok(Author { name, email }),
        _ => anyhow::bail!(
            "Git does not know who you are: set user.name and user.email (git config --global), or pass --author 'Name <email>'"
        ),
    }
}

fn split_canary(canary: &str) -> anyhow::Result<(String, String)> {
    match canary.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((ns.to_string(), name.to_string()))
        }
        _ => anyhow::bail!("{canary:?} is not a canary: write it as <namespace>/<name>"),
    }
}

/// Reads the ledger record of a canary at the head of `branch`.
fn ledger_record(
    repo: &GitRepo,
    branch: &str,
    ns: &str,
    name: &str,
) -> anyhow::Result<Option<LedgerRecord>> {
    let head = repo.resolve(&format!("refs/remotes/origin/{branch}"))?;
    let path = status_path(ns, name);
    Ok(match repo.read_file(head, &path)? {
        Some(bytes) => Some(LedgerRecord::parse(&path, &bytes)?),
        None => None,
    })
}

pub fn decide(action: Action, args: &DecisionArgs) -> anyhow::Result<ExitCode> {
    let (ns, name) = split_canary(&args.canary)?;
    let mut repo = repository(&args.repo)?;
    let branch = args.repo.branch.clone();
    let status_branch = args
        .repo
        .status_branch
        .clone()
        .unwrap_or_else(|| branch.clone());
    repo.fetch(&branch)?;
    if status_branch != branch {
        repo.fetch(&status_branch)?;
    }
    let record = ledger_record(&repo, &status_branch, &ns, &name)?;
    let revision = match (&args.revision, &record) {
        (Some(r), _) => r.clone(),
        (None, Some(r)) if !r.revision.hash.is_empty() => r.revision.hash.clone(),
        _ => anyhow::bail!(
            "the ledger of {} has no record of {ns}/{name} on {status_branch}: is the canary's name right, and has Serin run it? Pass --revision to decide anyway",
            repo.origin()
        ),
    };
    let gates: Vec<String> = match action {
        Action::Approve if args.gate.is_empty() => {
            GATES.iter().map(|g| g.as_str().to_string()).collect()
        }
        Action::Approve => {
            for g in &args.gate {
                if !GATES.iter().any(|k| k.as_str() == g) {
                    anyhow::bail!(
                        "--gate {g}: use confirm-rollout, confirm-traffic-increase or confirm-promotion"
                    );
                }
            }
            args.gate.clone()
        }
        _ => Vec::new(),
    };
    let who = author(args.author.as_deref())?;
    let approval = Approval {
        canary: format!("{ns}/{name}"),
        action,
        gates: gates.clone(),
        revision: revision.clone(),
        by: format!("{} <{}>", who.name, who.email),
        at: k8s_openapi::jiff::Timestamp::now().to_string(),
    };
    let short = revision.get(..12).unwrap_or(&revision);
    let what = match action {
        Action::Approve => format!("approve {}", gates.join(", ")),
        Action::Rollback => "roll back".into(),
        Action::Retry => "retry the analysis".into(),
    };
    let message = format!(
        "{name}.{ns}: {what} for revision {short}\n\nSerin-Canary: {ns}/{name}\nSerin-Revision: {revision}\nSerin-Decision: {}\n",
        action.as_str()
    );
    let change = FileChange {
        path: approval.path(),
        content: Some(approval.render().into_bytes()),
    };
    let queued = repo.queue_commit(&branch, &[change], &message, &who)?;
    if queued.is_none() {
        println!("{ns}/{name}: already decided ({what} for revision {short}); nothing to commit");
        return Ok(ExitCode::SUCCESS);
    }
    let pushed = repo.push(&branch)?;
    println!(
        "{ns}/{name}: {what} for revision {short} — committed and pushed to {} {branch} ({})",
        repo.origin(),
        pushed.remote_head.short()
    );
    if let Some(r) = record
        && r.revision.hash != revision
    {
        println!(
            "note: the ledger shows revision {}; Serin ignores decisions for other revisions",
            r.revision.hash
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// One row of `serin status`.
struct Row {
    namespace: String,
    name: String,
    phase: String,
    weight: i32,
    cause: String,
    transition: String,
}

fn print_table(rows: &[Row], out: &mut impl std::io::Write) -> std::io::Result<()> {
    let headers = [
        "NAMESPACE",
        "NAME",
        "PHASE",
        "WEIGHT",
        "REVISION CAUSE",
        "LAST TRANSITION",
    ];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.namespace.clone(),
                r.name.clone(),
                r.phase.clone(),
                r.weight.to_string(),
                if r.cause.is_empty() {
                    "-".into()
                } else {
                    serin::message::truncate(&r.cause, 60)
                },
                if r.transition.is_empty() {
                    "-".into()
                } else {
                    r.transition.clone()
                },
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for row in &cells {
        for (i, c) in row.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cols: Vec<&str>| {
        cols.iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("   ")
            .trim_end()
            .to_string()
    };
    writeln!(out, "{}", line(headers.to_vec()))?;
    for row in &cells {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

fn ledger_rows(
    repo: &mut GitRepo,
    branch: &str,
) -> anyhow::Result<BTreeMap<(String, String), LedgerRecord>> {
    repo.fetch(branch)?;
    let head = repo.resolve(&format!("refs/remotes/origin/{branch}"))?;
    let mut out = BTreeMap::new();
    for (path, bytes) in repo.read_dir(head, serin::ledger::STATUS_DIR)? {
        match LedgerRecord::parse(&path, &bytes) {
            Ok(r) => {
                out.insert(r.key(), r);
            }
            Err(e) => eprintln!("warning: {e}"),
        }
    }
    Ok(out)
}

async fn rows(args: &StatusArgs) -> anyhow::Result<Vec<Row>> {
    let ledger = if args.from_git || args.repo.repo.is_some() {
        let mut repo = repository(&args.repo)?;
        let branch = args
            .repo
            .status_branch
            .clone()
            .unwrap_or_else(|| args.repo.branch.clone());
        Some(ledger_rows(&mut repo, &branch)?)
    } else {
        None
    };
    let wanted = |ns: &str| args.namespace.as_deref().is_none_or(|n| n == ns);
    if args.from_git {
        return Ok(ledger
            .unwrap_or_default()
            .into_values()
            .filter(|r| wanted(&r.key().0))
            .map(|r| {
                let (namespace, name) = r.key();
                Row {
                    namespace,
                    name,
                    phase: r.phase.as_str().to_string(),
                    weight: r.canary_weight,
                    cause: r.revision.origin.cause.join("; "),
                    transition: r.updated.clone(),
                }
            })
            .collect());
    }
    let client = serin::cluster::connect(args.kubeconfig.as_deref()).await?;
    let api: kube::Api<Canary> = match &args.namespace {
        Some(ns) => kube::Api::namespaced(client, ns),
        None => kube::Api::all(client),
    };
    let list = api
        .list(&Default::default())
        .await
        .context("cannot list the canaries of the cluster")?;
    Ok(list
        .items
        .into_iter()
        .map(|c| {
            let namespace = c.metadata.namespace.clone().unwrap_or_default();
            let name = c.metadata.name.clone().unwrap_or_default();
            let status = c.status.clone().unwrap_or_default();
            let cause = ledger
                .as_ref()
                .and_then(|l| l.get(&(namespace.clone(), name.clone())))
                .map(|r| r.revision.origin.cause.join("; "))
                .unwrap_or_default();
            Row {
                namespace,
                name,
                phase: status.phase.as_str().to_string(),
                weight: status.canary_weight,
                cause,
                transition: status
                    .last_transition_time
                    .map(|t| t.0.to_string())
                    .unwrap_or_default(),
            }
        })
        .collect())
}

pub async fn status(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    loop {
        let rows = rows(args).await?;
        let mut text = Vec::new();
        print_table(&rows, &mut text)?;
        let mut out = std::io::stdout().lock();
        if args.watch {
            // Clear the screen and go home, so the table refreshes in place.
            out.write_all(b"\x1b[2J\x1b[H")?;
        }
        out.write_all(&text)?;
        out.flush()?;
        if !args.watch {
            return Ok(ExitCode::SUCCESS);
        }
        drop(out);
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_like_kubectl() {
        let rows = [
            Row {
                namespace: "test".into(),
                name: "podinfo".into(),
                phase: "Progressing".into(),
                weight: 20,
                cause: "container podinfod image a → b".into(),
                transition: "2026-11-22T10:00:00Z".into(),
            },
            Row {
                namespace: "prod".into(),
                name: "api".into(),
                phase: "Succeeded".into(),
                weight: 0,
                cause: String::new(),
                transition: String::new(),
            },
        ];
        let mut out = Vec::new();
        print_table(&rows, &mut out).expect("writes");
        let text = String::from_utf8(out).expect("utf8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "NAMESPACE   NAME      PHASE         WEIGHT   REVISION CAUSE                   LAST TRANSITION"
        );
        assert_eq!(
            lines[2],
            "prod        api       Succeeded     0        -                                -"
        );
    }

    #[test]
    fn canaries_are_namespace_slash_name() {
        assert!(split_canary("test/podinfo").is_ok());
        for bad in ["podinfo", "/x", "a/", "a/b/c"] {
            assert!(split_canary(bad).is_err(), "{bad}");
        }
    }
}
