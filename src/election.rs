//! Leader election on a coordination.k8s.io Lease, so that two replicas of Serin can run and
//! only one applies, shifts traffic, writes status or commits (DESIGN.md, Leader election).
//!
//! The rules are client-go's: a holder renews the lease every `retry_period`; a candidate
//! takes it over when the record (holder and renew time) has not changed for
//! `lease_duration` *as observed on the candidate's own clock* — never by comparing
//! timestamps written by another machine, whose clock may be skewed. Every write carries the
//! resourceVersion it read, so two candidates can never both win.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tokio::sync::Mutex;
use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct ElectionConfig {
    pub namespace: String,
    pub name: String,
    /// Who this replica is (the pod name in a cluster).
    pub identity: String,
    /// How long a lease that is not renewed stays with its holder.
    pub lease_duration: Duration,
    /// How often the holder renews, and a candidate tries.
    pub retry_period: Duration,
}

impl ElectionConfig {
    pub fn new(namespace: &str, identity: &str) -> Self {
        ElectionConfig {
            namespace: namespace.to_string(),
            name: "serin-leader".into(),
            identity: identity.to_string(),
            lease_duration: Duration::from_secs(15),
            retry_period: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ElectionError {
    #[error("cannot read or write Lease {namespace}/{name}")]
    Api {
        namespace: String,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
}

/// The last lease record seen and when it was first seen with this content.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Observed {
    holder: String,
    renew: Option<String>,
    since: Instant,
}

pub struct Elector {
    api: Api<Lease>,
    config: ElectionConfig,
    observed: Mutex<Option<Observed>>,
}

impl Elector {
    pub fn new(client: Client, config: ElectionConfig) -> Self {
        Elector {
            api: Api::namespaced(client, &config.namespace),
            config,
            observed: Mutex::new(None),
        }
    }

    pub fn identity(&self) -> &str {
        &self.config.identity
    }

    fn api_error(&self, e: kube::Error) -> ElectionError {
        ElectionError::Api {
            namespace: self.config.namespace.clone(),
            name: self.config.name.clone(),
            source: Box::new(e),
        }
    }

    fn spec(&self, acquired: Option<MicroTime>, transitions: i32) -> LeaseSpec {
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(self.config.lease_duration.as_secs().max(1) as i32),
            acquire_time: Some(acquired.unwrap_or_else(|| now.clone())),
            renew_time: Some(now),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    /// One attempt: takes or renews the lease; `true` when this replica holds it afterwards.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, ElectionError> {
        let current = self
            .api
            .get_opt(&self.config.name)
            .await
            .map_err(|e| self.api_error(e))?;
        let Some(mut lease) = current else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(self.spec(None, 0)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                // Another replica created it first.
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(self.api_error(e)),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let renew = spec.renew_time.as_ref().map(|t| t.0.to_string());
        let now = Instant::now();
        let expired = {
            let mut observed = self.observed.lock().await;
            let seen = Observed {
                holder: holder.clone(),
                renew: renew.clone(),
                since: now,
            };
            let since = match &*observed {
                Some(o) if o.holder == seen.holder && o.renew == seen.renew => o.since,
                _ => {
                    *observed = Some(seen);
                    now
                }
            };
            let duration = spec
                .lease_duration_seconds
                .map_or(self.config.lease_duration, |s| {
                    Duration::from_secs(s.max(1) as u64)
                });
            now.duration_since(since) >= duration
        };
        let mine = holder == self.config.identity;
        if !(mine || holder.is_empty() || expired) {
            return Ok(false);
        }
        let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!mine);
        let acquired = if mine {
            spec.acquire_time.clone()
        } else {
            None
        };
        lease.spec = Some(self.spec(acquired, transitions));
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => {
                if !mine {
                    tracing::info!(identity = %self.config.identity, previous = %holder, "became the leader");
                }
                Ok(true)
            }
            // Someone wrote the lease since we read it: they renewed or won.
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(self.api_error(e)),
        }
    }

    /// Waits until this replica holds the lease.
    pub async fn acquire(&self) {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => tracing::warn!("{}", crate::message::error_chain(&e)),
            }
            tokio::time::sleep(self.config.retry_period).await;
        }
    }

    /// Renews the lease until it cannot be renewed for a whole lease duration (or another
    /// replica holds it); then returns, and the caller must stop acting as the leader.
    pub async fn hold(&self) {
        let mut last_renewed = Instant::now();
        loop {
            tokio::time::sleep(self.config.retry_period).await;
            match self.try_acquire_or_renew().await {
                Ok(true) => last_renewed = Instant::now(),
                Ok(false) => {
                    tracing::error!(identity = %self.config.identity, "another replica holds the lease");
                    return;
                }
                Err(e) => {
                    tracing::warn!("{}", crate::message::error_chain(&e));
                    // Stop before another replica may take over: it waits a whole duration.
                    if last_renewed.elapsed() + self.config.retry_period
                        >= self.config.lease_duration
                    {
                        tracing::error!(identity = %self.config.identity, "the lease could not be renewed in time");
                        return;
                    }
                }
            }
        }
    }
}
