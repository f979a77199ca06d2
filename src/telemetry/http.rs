//! The operator endpoints of `serin run --listen`: `/metrics`, `/healthz` and `/readyz`, and
//! the counting of push-webhook deliveries.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::metrics::{CONTENT_TYPE, Metrics};

/// Whether Serin has done its first sync with the watches up; `/readyz` answers 503 until then.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set_ready(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// `/metrics` (the registry's text exposition), `/healthz` ("OK", as Flagger answers: the
/// process serves) and `/readyz` (200 once `ready` is set, else 503).
pub fn router(metrics: Metrics, ready: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "OK" }))
        .route(
            "/readyz",
            get(move || {
                let ready = ready.clone();
                async move {
                    if ready.is_ready() {
                        (StatusCode::OK, "OK")
                    } else {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "not ready: the first sync is under way",
                        )
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move { ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics.encode()) }
            }),
        )
}

/// Wraps the push-webhook receiver so that every request it answers is counted in
/// `serin_webhook_deliveries_total{provider,result}`.
pub fn count_webhook_deliveries(receiver: Router, metrics: Metrics) -> Router {
    receiver.layer(middleware::from_fn_with_state(metrics, count_delivery))
}

async fn count_delivery(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let provider = webhook_provider(request.headers());
    let response = next.run(request).await.into_response();
    metrics.inc_webhook_deliveries(provider, delivery_result(response.status()));
    response
}

/// The Git host by its event header; Forgejo speaks Gitea's protocol and counts as Gitea, and
/// Gitea's compatibility `X-GitHub-Event` header loses to its own.
fn webhook_provider(headers: &HeaderMap) -> &'static str {
    if headers.contains_key("x-forgejo-event") || headers.contains_key("x-gitea-event") {
        "gitea"
    } else if headers.contains_key("x-gitlab-event") {
        "gitlab"
    } else if headers.contains_key("x-github-event") {
        "github"
    } else {
        "unknown"
    }
}

/// A fixed word per kind of answer, so that the label stays small: `accepted` covers both
/// requested syncs and ignored events (the receiver answers both with 2xx).
fn delivery_result(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200..=299 => "accepted",
        401 => "unauthorized",
        413 => "too_large",
        400..=499 => "invalid",
        _ => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_and_results_are_fixed_words() {
        let mut headers = HeaderMap::new();
        headers.insert("x-github-event", "push".parse().expect("header value"));
        assert_eq!(webhook_provider(&headers), "github");
        headers.insert("x-gitea-event", "push".parse().expect("header value"));
        assert_eq!(webhook_provider(&headers), "gitea");
        assert_eq!(webhook_provider(&HeaderMap::new()), "unknown");
        assert_eq!(delivery_result(StatusCode::ACCEPTED), "accepted");
        assert_eq!(delivery_result(StatusCode::UNAUTHORIZED), "unauthorized");
        assert_eq!(delivery_result(StatusCode::BAD_REQUEST), "invalid");
        assert_eq!(delivery_result(StatusCode::SERVICE_UNAVAILABLE), "error");
    }
}
