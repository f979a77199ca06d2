//! What every end-to-end test needs: the environment, a namespace of its own, a kube client,
//! polling with a deadline, and a metrics exporter Prometheus scrapes.

mod crds;
mod env;
mod exporter;
pub mod rig;

pub use crds::install_flagger_crds;
pub use env::{TestEnv, shutdown};
pub use exporter::Exporter;

use std::fmt::Debug;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::{Api, Client};
use libtest_mimic::Failed;

/// Label on every namespace a test creates, so a shared environment can be cleaned by run.
pub const RUN_LABEL: &str = "serin.dev/e2e-run";

/// One test's view of the cluster: a client and a fresh namespace, deleted by `finish`.
pub struct TestCtx {
    pub env: &'static TestEnv,
    pub client: Client,
    pub namespace: String,
}

impl TestCtx {
    pub async fn new(test: &str) -> Result<Self, Failed> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let env = TestEnv::get()?;
        let client = env.client().await?;
        let namespace = format!(
            "{}-{}-{}",
            test.replace('_', "-"),
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(namespace.clone()),
                labels: Some([(RUN_LABEL.to_string(), std::process::id().to_string())].into()),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .map_err(|e| format!("create namespace {namespace}: {e}"))?;
        Ok(TestCtx {
            env,
            client,
            namespace,
        })
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Deletes the namespace without waiting; the environment is torn down after the run anyway.
    pub async fn finish(self) {
        let _ = Api::<Namespace>::all(self.client)
            .delete(&self.namespace, &DeleteParams::background())
            .await;
    }
}

/// Polls `probe` until it returns `Ok(Some(v))`; on timeout fails with the last thing seen.
pub async fn eventually<T, S, F, Fut>(
    what: &str,
    timeout: Duration,
    mut probe: F,
) -> Result<T, Failed>
where
    S: Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Result<T, S>, Failed>>,
{
    let start = Instant::now();
    loop {
        let seen = probe().await?;
        match seen {
            Ok(v) => return Ok(v),
            Err(seen) if start.elapsed() >= timeout => {
                return Err(format!(
                    "timed out after {timeout:?} waiting for {what}; last seen: {seen:?}"
                )
                .into());
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

/// `?` for any displayable error inside a test.
pub trait Context<T> {
    fn context(self, what: impl std::fmt::Display) -> Result<T, Failed>;
}

impl<T, E: std::fmt::Display> Context<T> for Result<T, E> {
    fn context(self, what: impl std::fmt::Display) -> Result<T, Failed> {
        self.map_err(|e| Failed::from(format!("{what}: {e}")))
    }
}
