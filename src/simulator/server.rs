//! `GET /metrics` for Prometheus to scrape.

use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::http::header;
use axum::routing::get;
use tokio::net::TcpListener;

use super::meter::Meter;

/// The exposition format version Prometheus expects for text.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Serves `meter` on `listener` until the listener fails.
pub(super) async fn serve(listener: TcpListener, meter: Arc<Mutex<Meter>>) -> std::io::Result<()> {
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let meter = Arc::clone(&meter);
            async move {
                // A poisoned lock only means a panic elsewhere mid-record; the counts are
                // still whole numbers worth exporting.
                let text = meter
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .render();
                ([(header::CONTENT_TYPE, CONTENT_TYPE)], text)
            }
        }),
    );
    axum::serve(listener, app).await
}
