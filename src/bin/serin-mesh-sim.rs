//! serin-mesh-sim: the mesh simulator as a process, for demos and for Prometheus set-ups
//! outside the test harness (which runs `serin::simulator::run` in-process).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use serin::simulator::{self, DEFAULT_MATCH_FRACTION, DEFAULT_RPS, SimulatorConfig};

/// Accepts HTTPRoutes as a Gateway controller and plays Istio's and the workloads' request
/// metrics for them, split by the routes' weights and matches, with per-Deployment error
/// rate and latency from the pod template annotations sim.serin.dev/error-rate and
/// sim.serin.dev/latency-ms.
#[derive(Debug, Parser)]
#[command(name = "serin-mesh-sim", version)]
struct Args {
    /// Kubeconfig to use (default: in-cluster, $KUBECONFIG, ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// A namespace to watch; repeat for more. Default: all namespaces.
    #[arg(long = "namespace", short = 'n', value_name = "NAMESPACE")]
    namespaces: Vec<String>,
    /// Where to serve GET /metrics.
    #[arg(long, default_value = "127.0.0.1:9899")]
    listen: SocketAddr,
    /// Synthetic requests per second through each HTTPRoute.
    #[arg(long, default_value_t = DEFAULT_RPS)]
    rps: f64,
    /// Share of the requests that carries the A/B match headers or cookies of rule[0].
    #[arg(long, default_value_t = DEFAULT_MATCH_FRACTION)]
    match_fraction: f64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    serin::telemetry::init("info");
    serin::crypto::install_default_provider();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", serin::message::error_chain(e.as_ref()));
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let config = SimulatorConfig {
        namespaces: args.namespaces.clone(),
        rps: args.rps,
        match_fraction: args.match_fraction,
    };
    // Before connecting: a bad flag is the user's to fix whatever the cluster says.
    config.validate()?;
    let client = serin::cluster::connect(args.kubeconfig.as_deref()).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr().context("listening address")?;
    let watched = if args.namespaces.is_empty() {
        "all namespaces".to_string()
    } else {
        args.namespaces.join(", ")
    };
    tracing::info!(%addr, namespaces = %watched, rps = args.rps, "serving /metrics");

    tokio::select! {
        result = simulator::run(client, config, listener) => result?,
        signal = tokio::signal::ctrl_c() => signal.context("waiting for Ctrl-C")?,
    }
    Ok(())
}
