//! The mesh simulator: the traffic and the Gateway controller a test cluster lacks.
//!
//! Serin's end-to-end tests and demos run against a control plane without a mesh or an
//! ingress, yet a canary analysis needs two things from one: a Gateway controller that
//! accepts HTTPRoutes (Flagger's `GetRoutes` refuses to read weights until it has), and
//! request metrics that follow the weights it sets. Every second the simulator
//!
//! * reads the HTTPRoutes, Services and Deployments of the watched namespaces, and the
//!   routing objects of Istio (VirtualService), Gloo (RouteTable + Upstream), APISIX
//!   (ApisixRoute), Contour (HTTPProxy) and ingress-nginx (canary Ingress) as their data
//!   planes would route by them (see [`proxies`]);
//! * marks each route's parents `Accepted` for its current generation
//!   (controller `serin.dev/mesh-simulator`), writing only when that is not already so;
//! * sends `rps` synthetic requests per route through it: a `match_fraction` share carries
//!   what rule[0]'s matches require (A/B headers, cookies), the rest is plain traffic; each
//!   rule splits by backendRef weight and copies what it takes to its `RequestMirror`
//!   Services; each backend Service reaches the Deployments it selects, which answer with
//!   the error rate and latency of their pod template's `sim.serin.dev/error-rate` and
//!   `sim.serin.dev/latency-ms` annotations;
//! * counts the requests into the series Istio and an instrumented workload export, plus
//!   each proxy's own (Envoy's cluster stats, ingress-nginx's, APISIX's) for the requests
//!   that went through it (see [`meter`]), and serves them on `GET /metrics` for a real
//!   Prometheus to scrape.
//!
//! The arithmetic ([`traffic`], [`meter`], [`acceptance`]) is pure; only this file's loop,
//! the cluster client and the HTTP server do I/O.

pub mod acceptance;
mod cluster;
pub mod meter;
pub mod proxies;
mod server;
pub mod traffic;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use tokio::net::TcpListener;
use tokio::time::{Instant, MissedTickBehavior};

pub use acceptance::CONTROLLER_NAME;
pub use meter::Meter;
pub use traffic::{ERROR_RATE_ANNOTATION, LATENCY_ANNOTATION};

use cluster::{ClusterClient, Snapshot};

pub const DEFAULT_RPS: f64 = 100.0;
pub const DEFAULT_MATCH_FRACTION: f64 = 0.1;

/// How often the simulator reads the cluster and counts requests. Prometheus in the test
/// environment scrapes every second, so each scrape sees fresh counts.
const TICK: Duration = Duration::from_secs(1);
/// The most time one tick accounts for: after a stall (a suspended laptop) the counters
/// catch up by at most this much instead of jumping by hours of traffic.
const MAX_TICK_SPAN: Duration = Duration::from_secs(10);

/// What to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatorConfig {
    /// The namespaces to watch; empty for all.
    pub namespaces: Vec<String>,
    /// Synthetic requests per second sent through each route.
    pub rps: f64,
    /// The share of those requests that carries rule[0]'s match headers or cookies.
    pub match_fraction: f64,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            namespaces: Vec::new(),
            rps: DEFAULT_RPS,
            match_fraction: DEFAULT_MATCH_FRACTION,
        }
    }
}

impl SimulatorConfig {
    /// Refuses a rate or fraction that would make no traffic sense (negative, NaN, > 1).
    pub fn validate(&self) -> Result<(), SimulatorError> {
        if !(self.rps.is_finite() && self.rps >= 0.0) {
            return Err(SimulatorError::Rps(self.rps));
        }
        if !(0.0..=1.0).contains(&self.match_fraction) {
            return Err(SimulatorError::MatchFraction(self.match_fraction));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    #[error("--rps {0} is not a number of requests per second (0 or more)")]
    Rps(f64),
    #[error("--match-fraction {0} is not a fraction between 0 and 1")]
    MatchFraction(f64),
    #[error("cannot serve /metrics")]
    Serve(#[source] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_refuses_senseless_rates() {
        assert!(SimulatorConfig::default().validate().is_ok());
        for (rps, fraction) in [
            (-1.0, 0.1),
            (f64::NAN, 0.1),
            (f64::INFINITY, 0.1),
            (1.0, 1.5),
            (1.0, f64::NAN),
        ] {
            let config = SimulatorConfig {
                rps,
                match_fraction: fraction,
                ..Default::default()
            };
            assert!(config.validate().is_err(), "{rps} {fraction}");
        }
    }
}

/// Runs the simulator until `listener` fails: routes traffic every second and serves the
/// series on `GET /metrics`. Cluster errors are logged and never end it: traffic keeps
/// flowing by the last state read, as a mesh's data plane keeps its last configuration.
pub async fn run(
    client: Client,
    config: SimulatorConfig,
    listener: TcpListener,
) -> Result<(), SimulatorError> {
    config.validate()?;
    let meter = Arc::new(Mutex::new(Meter::default()));
    let cluster = ClusterClient::new(client, config.namespaces.clone());
    tokio::select! {
        result = server::serve(listener, Arc::clone(&meter)) => result.map_err(SimulatorError::Serve),
        () = drive(cluster, config, meter) => Ok(()),
    }
}

/// The tick loop; never returns.
async fn drive(mut cluster: ClusterClient, config: SimulatorConfig, meter: Arc<Mutex<Meter>>) {
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last = Instant::now();
    let mut snapshot = Snapshot::default();
    let mut log = Log::default();
    loop {
        ticks.tick().await;
        match cluster.snapshot().await {
            Ok(fresh) => {
                snapshot = fresh;
                log.read_ok();
            }
            Err(e) => log.read_failed(&e),
        }
        let mut problems = snapshot.problems.clone();
        problems.extend(accept_routes(&cluster, &snapshot).await);

        // Requests are counted for the time since the last tick, so the rate stays `rps`
        // however late a tick runs.
        let now = Instant::now();
        let span = now.duration_since(last).min(MAX_TICK_SPAN);
        last = now;
        let requests = config.rps * span.as_secs_f64();
        {
            let mut meter = meter.lock().unwrap_or_else(PoisonError::into_inner);
            for route in &snapshot.routes {
                let traffic = traffic::route_traffic(
                    route,
                    &snapshot.cluster,
                    requests,
                    config.match_fraction,
                );
                for flow in &traffic.flows {
                    meter.record(flow);
                }
                problems.extend(traffic.problems);
            }
            for route in proxies::routes(&snapshot.proxies) {
                let traffic = traffic::proxy_traffic(
                    &route,
                    &snapshot.cluster,
                    requests,
                    config.match_fraction,
                );
                for flow in &traffic.flows {
                    meter.record(flow);
                }
                problems.extend(traffic.problems);
            }
        }
        log.problems(problems);
    }
}

/// Marks the routes accepted where needed; returns what failed.
async fn accept_routes(cluster: &ClusterClient, snapshot: &Snapshot) -> Vec<String> {
    let now = Time(Timestamp::now());
    let mut problems = Vec::new();
    for route in &snapshot.routes {
        let Some(parents) = acceptance::accepted_parents(route, now.clone()) else {
            continue;
        };
        let name = format!(
            "{}/{}",
            route.metadata.namespace.as_deref().unwrap_or_default(),
            route.metadata.name.as_deref().unwrap_or_default()
        );
        match cluster.write_parents(route, &parents).await {
            Ok(()) => tracing::info!(
                route = %name,
                generation = route.metadata.generation,
                "accepted HTTPRoute"
            ),
            // Someone changed the route since it was read; the next tick sees the change.
            Err(kube::Error::Api(status)) if status.code == 409 => {
                tracing::debug!(route = %name, "HTTPRoute changed while being accepted; retrying")
            }
            Err(e) => problems.push(format!("cannot accept HTTPRoute {name}: {e}")),
        }
    }
    problems
}

/// Says each problem once while it lasts, instead of once a second.
#[derive(Default)]
struct Log {
    read_error: Option<String>,
    problems: BTreeSet<String>,
}

impl Log {
    fn read_ok(&mut self) {
        if self.read_error.take().is_some() {
            tracing::info!("reading the cluster works again");
        }
    }

    fn read_failed(&mut self, e: &kube::Error) {
        let message = e.to_string();
        if self.read_error.as_deref() != Some(message.as_str()) {
            tracing::warn!(error = %message, "cannot read the cluster; routing by the last state read");
            self.read_error = Some(message);
        }
    }

    /// This tick's problems: new ones are logged, gone ones forgotten.
    fn problems(&mut self, now: Vec<String>) {
        let now: BTreeSet<String> = now.into_iter().collect();
        for problem in now.difference(&self.problems) {
            tracing::warn!("{problem}");
        }
        self.problems = now;
    }
}
