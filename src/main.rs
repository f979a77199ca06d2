use std::process::ExitCode;

use clap::Parser;

mod cli;

use cli::{Cli, Command};

fn main() -> ExitCode {
    serin::crypto::install_default_provider();
    let cli = Cli::parse();
    serin::telemetry::init(&cli.log_level);
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
            eprintln!("error: {}", chain(&e));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes on one line, each said once: some libraries repeat their cause in
/// their own message.
fn chain(error: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Doctor {
            kubeconfig,
            prometheus_url,
        } => {
            let client = serin::cluster::connect(kubeconfig.as_deref()).await?;
            let checks = serin::doctor::run(&client, prometheus_url.as_deref()).await;
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
    }
}
