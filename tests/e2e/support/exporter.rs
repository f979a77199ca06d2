//! A metrics endpoint that plays a service's request counters for Prometheus to scrape.
//!
//! Each series is a counter growing at a per-second rate the test sets, and may change while
//! the test runs; `rate()` over it then returns exactly those rates, which is how a test tells
//! Prometheus "this workload now answers 1% of its requests with 5xx".

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::routing::get;
use libtest_mimic::Failed;

struct Series {
    name: String,
    labels: Vec<(String, String)>,
    /// Value at `since`, and growth per second from then on.
    base: f64,
    per_second: f64,
    since: Instant,
}

impl Series {
    fn value(&self, now: Instant) -> f64 {
        self.base + self.per_second * now.duration_since(self.since).as_secs_f64()
    }
}

#[derive(Clone, Default)]
pub struct Exporter {
    series: Arc<Mutex<Vec<Series>>>,
}

impl Exporter {
    /// Serves `/metrics` on 127.0.0.1 until the runtime stops; returns its address.
    pub async fn serve(&self) -> Result<SocketAddr, Failed> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| Failed::from(format!("bind exporter: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Failed::from(format!("exporter address: {e}")))?;
        let me = self.clone();
        let app = Router::new().route("/metrics", get(move || async move { me.render() }));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(addr)
    }

    /// Sets (or creates) the counter `name{labels}` to grow by `per_second` from now on.
    pub fn set_rate(&self, name: &str, labels: &[(&str, &str)], per_second: f64) {
        let now = Instant::now();
        let labels: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let Ok(mut series) = self.series.lock() else {
            return;
        };
        match series
            .iter_mut()
            .find(|s| s.name == name && s.labels == labels)
        {
            Some(s) => {
                s.base = s.value(now);
                s.per_second = per_second;
                s.since = now;
            }
            None => series.push(Series {
                name: name.to_string(),
                labels,
                base: 0.0,
                per_second,
                since: now,
            }),
        }
    }

    /// The Prometheus text exposition format of every series.
    fn render(&self) -> String {
        let now = Instant::now();
        let Ok(series) = self.series.lock() else {
            return String::new();
        };
        // The exposition format wants all samples of one family together, under one TYPE line.
        let mut sorted: Vec<&Series> = series.iter().collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out = String::new();
        let mut family = "";
        for s in sorted {
            if s.name != family {
                out.push_str(&format!("# TYPE {} counter\n", s.name));
                family = &s.name;
            }
            let labels: Vec<String> = s
                .labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
                .collect();
            out.push_str(&format!(
                "{}{{{}}} {}\n",
                s.name,
                labels.join(","),
                s.value(now)
            ));
        }
        out
    }
}
