//! The command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "serin",
    version,
    about = "Git-driven progressive delivery for Kubernetes"
)]
pub struct Cli {
    /// Log filter when RUST_LOG is not set (error, warn, info, debug, trace).
    #[arg(long, global = true, env = "SERIN_LOG_LEVEL", default_value = "warn")]
    pub log_level: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check that the cluster (and optionally Prometheus) is ready for Serin; exit 1 if not.
    Doctor {
        /// Kubeconfig to use; default: in-cluster, then $KUBECONFIG, then ~/.kube/config.
        #[arg(long, env = "KUBECONFIG")]
        kubeconfig: Option<PathBuf>,
        /// Prometheus base URL used for builtin metrics and inline queries.
        #[arg(long, env = "SERIN_PROMETHEUS_URL")]
        prometheus_url: Option<String>,
    },
}
