//! Ticks every canary of the cluster at its own analysis interval (Flagger's per-canary jobs,
//! §2.1): one task per canary, started when the canary appears, ended when it is gone.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kube::api::ListParams;
use kube::{Api, Client};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::runner::Runner;
use crate::api::Canary;

/// How often the set of canaries is re-read (Flagger's `-control-loop-interval`).
pub const DEFAULT_CONTROL_LOOP_INTERVAL: Duration = Duration::from_secs(10);

/// Keeps one ticking task per canary.
pub struct Scheduler {
    client: Client,
    runner: Arc<Runner>,
    /// Only canaries of this namespace, when set (Flagger's `-namespace`).
    namespace: Option<String>,
    tasks: BTreeMap<(String, String), (JoinHandle<()>, Arc<Notify>)>,
}

impl Scheduler {
    pub fn new(client: Client, runner: Runner, namespace: Option<String>) -> Self {
        Scheduler {
            client,
            runner: Arc::new(runner),
            namespace,
            tasks: BTreeMap::new(),
        }
    }

    /// Starts tasks for new canaries and forgets finished ones; returns how many run.
    pub async fn sync(&mut self) -> Result<usize, kube::Error> {
        let api: Api<Canary> = match &self.namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        };
        let canaries = api.list(&ListParams::default()).await;
        let telemetry = self.runner.telemetry();
        if let (Err(_), Some(m)) = (&canaries, telemetry) {
            m.inc_api_errors("list_canaries", 1);
        }
        let canaries = canaries?;
        if let Some(m) = telemetry {
            // Flagger sets flagger_canary_total here, from what the informer holds (§2.1).
            let mut totals = BTreeMap::<&str, usize>::new();
            for c in &canaries.items {
                *totals
                    .entry(c.metadata.namespace.as_deref().unwrap_or_default())
                    .or_default() += 1;
            }
            m.set_canary_totals(totals);
        }
        self.tasks.retain(|_, (task, _)| !task.is_finished());
        for canary in canaries.items {
            let key = (
                canary.metadata.namespace.clone().unwrap_or_default(),
                canary.metadata.name.clone().unwrap_or_default(),
            );
            if self.tasks.contains_key(&key) {
                continue;
            }
            let runner = self.runner.clone();
            let (ns, name) = key.clone();
            let kick = Arc::new(Notify::new());
            let task = tokio::spawn(run_canary(runner, ns, name, kick.clone()));
            self.tasks.insert(key, (task, kick));
        }
        Ok(self.tasks.len())
    }

    /// Ticks these canaries now instead of at their next interval: the source just changed
    /// their target, and "New revision detected" should not wait for a whole interval.
    pub fn kick(&self, canaries: &[(String, String)]) {
        for key in canaries {
            if let Some((_, kick)) = self.tasks.get(key) {
                kick.notify_one();
            }
        }
    }

    /// Stops every canary's task.
    pub fn shutdown(self) {
        for (task, _) in self.tasks.values() {
            task.abort();
        }
    }

    /// Re-reads the canaries every `every` until `stop` resolves.
    pub async fn run(mut self, every: Duration, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            if let Err(e) = self.sync().await {
                tracing::warn!("cannot list canaries: {e}");
            }
            tokio::select! {
                () = &mut stop => break,
                () = tokio::time::sleep(every) => {}
            }
        }
        self.shutdown();
    }
}

/// Ticks one canary immediately and then at its interval, until it is deleted.
async fn run_canary(runner: Arc<Runner>, namespace: String, name: String, kick: Arc<Notify>) {
    loop {
        let interval = match runner.tick(&namespace, &name).await {
            Ok(Some(report)) => {
                tracing::debug!(canary = %format!("{name}.{namespace}"), phase = report.phase.as_str(), weight = report.canary_weight, "tick");
                report.interval
            }
            Ok(None) => {
                tracing::info!("Deleting {name}.{namespace} from cache");
                return;
            }
            Err(e) => {
                tracing::warn!(canary = %format!("{name}.{namespace}"), "tick failed: {e}");
                DEFAULT_CONTROL_LOOP_INTERVAL
            }
        };
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = kick.notified() => {}
        }
    }
}
