//! Posting alerts: `POST` of the notifier's JSON with `Content-Type: application/json`, an
//! optional proxy and bearer token, judged by the status (2xx passes), and all receivers of
//! one alert at once, each bounded by the timeout, so one alert never takes longer than that.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};

use super::{Alert, AlertError, DEFAULT_ALERT_TIMEOUT, Destination};
use crate::message::error_chain;

/// The part of an error response kept for the message: enough for Slack's `invalid_token`
/// or a proxy's error line, short enough for a log line.
const BODY_KEEP_BYTES: usize = 4096;
const EXCERPT_CHARS: usize = 200;

/// What became of one alert entry.
#[derive(Debug)]
pub struct Delivery {
    /// The entry's `name` in `analysis.alerts`.
    pub alert: String,
    /// `<namespace>/<name>` of the AlertProvider.
    pub provider: String,
    pub result: Result<(), AlertError>,
}

/// Sends alerts. Cheap to clone: clones share the connection pool.
#[derive(Clone, Debug)]
pub struct AlertSender {
    http: reqwest::Client,
    timeout: Duration,
}

impl AlertSender {
    /// A sender with Flagger's 5 s timeout.
    pub fn new() -> Result<AlertSender, AlertError> {
        Ok(AlertSender {
            http: client_builder()
                .build()
                .map_err(|e| AlertError::Client(error_chain(&e.without_url())))?,
            timeout: DEFAULT_ALERT_TIMEOUT,
        })
    }

    /// The same sender with another bound on one alert.
    pub fn with_timeout(mut self, timeout: Duration) -> AlertSender {
        self.timeout = timeout;
        self
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends `alert` to one receiver within the timeout.
    pub async fn send(&self, destination: &Destination, alert: &Alert) -> Result<(), AlertError> {
        tokio::time::timeout(self.timeout, self.post(destination, alert))
            .await
            .unwrap_or(Err(AlertError::Timeout(self.timeout)))
    }

    /// Sends `alert` to every destination at once (each paired with its alert entry's name)
    /// and returns, in order, what became of each, within the timeout. Failures are logged.
    pub async fn send_all(
        &self,
        destinations: Vec<(String, Destination)>,
        alert: &Alert,
    ) -> Vec<Delivery> {
        let alert = Arc::new(alert.clone());
        let jobs = destinations.into_iter().map(|(name, destination)| {
            let sender = self.clone();
            let alert = Arc::clone(&alert);
            let provider = destination.provider.clone();
            let job = async move { sender.post(&destination, &alert).await };
            (name, provider, job)
        });
        deliver_all(self.timeout, &alert, jobs.collect()).await
    }

    /// One POST, unbounded: callers bound it.
    pub(crate) async fn post(
        &self,
        destination: &Destination,
        alert: &Alert,
    ) -> Result<(), AlertError> {
        let body = serde_json::to_vec(&destination.notifier().payload(alert))
            .map_err(|e| AlertError::Transport(e.to_string()))?;
        let client = match destination.proxy() {
            None => self.http.clone(),
            // Rare, so a client per send; the error leaves the proxy URL out (it may carry
            // credentials).
            Some(proxy) => reqwest::Proxy::all(proxy.clone())
                .and_then(|p| client_builder().proxy(p).build())
                .map_err(|e| AlertError::Client(error_chain(&e.without_url())))?,
        };
        let mut request = client
            .post(destination.url().clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(token) = destination.bearer() {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let response = request
            .send()
            .await
            .map_err(|e| AlertError::Transport(error_chain(&e.without_url())))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        Err(AlertError::Status {
            code: status.as_u16(),
            body: read_excerpt(response).await,
        })
    }
}

fn client_builder() -> reqwest::ClientBuilder {
    // reqwest panics without a process-wide rustls provider; make sure there is one.
    crate::crypto::install_default_provider();
    reqwest::Client::builder().user_agent(concat!("serin/", env!("CARGO_PKG_VERSION")))
}

/// Runs every job concurrently, each within `timeout`, and reports them in the order given.
/// A job that panics or overruns is reported, never propagated: alerts must not stop a tick.
pub(crate) async fn deliver_all<F>(
    timeout: Duration,
    alert: &Alert,
    jobs: Vec<(String, String, F)>,
) -> Vec<Delivery>
where
    F: Future<Output = Result<(), AlertError>> + Send + 'static,
{
    let mut deliveries: Vec<Delivery> = Vec::with_capacity(jobs.len());
    let mut tasks = tokio::task::JoinSet::new();
    for (index, (name, provider, job)) in jobs.into_iter().enumerate() {
        deliveries.push(Delivery {
            alert: name,
            provider,
            // Replaced when the task returns; stays only if it panicked.
            result: Err(AlertError::Aborted("the task panicked".into())),
        });
        tasks.spawn(async move {
            let result = tokio::time::timeout(timeout, job)
                .await
                .unwrap_or(Err(AlertError::Timeout(timeout)));
            (index, result)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((index, result)) => {
                if let Some(d) = deliveries.get_mut(index) {
                    d.result = result;
                }
            }
            // A panicked task loses its index; its delivery keeps the placeholder error.
            Err(e) => tracing::warn!(error = %e, "alert task failed"),
        }
    }
    for d in &deliveries {
        if let Err(e) = &d.result {
            tracing::warn!(
                canary = %alert.dotted_name(),
                alert = %d.alert,
                provider = %d.provider,
                error = %error_chain(e),
                "alert not sent"
            );
        }
    }
    deliveries
}

/// The start of the body on one line, for the error message.
async fn read_excerpt(mut response: reqwest::Response) -> String {
    let mut kept = Vec::new();
    // A body that errors or never ends is cut where it stands: the status says enough.
    while kept.len() < BODY_KEEP_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
            _ => break,
        }
    }
    kept.truncate(BODY_KEEP_BYTES);
    let text = String::from_utf8_lossy(&kept);
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    crate::message::truncate(&line, EXCERPT_CHARS)
}
