use std::process::ExitCode;

use clap::Parser;

mod cli;
mod commands;
mod decide;
mod git;
mod serve;

use cli::{Cli, Command};

fn main() -> ExitCode {
    serin::crypto::install_default_provider();
    let cli = Cli::parse();
    let log_format = match cli.log_format {
        cli::Output::Text => serin::telemetry::LogFormat::Text,
        cli::Output::Json => serin::telemetry::LogFormat::Json,
    };
    serin::telemetry::init_with_format(&cli.log_level, log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", serin::message::error_chain(e.as_ref()));
            ExitCode::from(2)
        }
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Validate {
            dir,
            repo,
            reference,
            git,
            catalog,
            output,
        } => commands::validate(
            dir.as_deref(),
            repo.as_deref(),
            reference.as_deref(),
            &git,
            &catalog,
            output,
        ),
        Command::Plan {
            base,
            head,
            repo,
            catalog,
            output,
        } => commands::plan(&repo, &base, &head, &catalog, output),
        Command::Hash {
            dir,
            catalog,
            output,
        } => commands::hash(dir.as_deref(), &catalog, output),
        Command::Run(args) => serve::run(*args).await,
        Command::Approve(args) => decide::decide(serin::gates::approvals::Action::Approve, &args),
        Command::Rollback(args) => decide::decide(serin::gates::approvals::Action::Rollback, &args),
        Command::Retry(args) => decide::decide(serin::gates::approvals::Action::Retry, &args),
        Command::Status(args) => decide::status(&args).await,
        Command::Crd => commands::crd(),
        Command::Doctor {
            kubeconfig,
            prometheus_url,
            provider,
        } => commands::doctor(kubeconfig.as_deref(), prometheus_url.as_deref(), &provider).await,
    }
}
