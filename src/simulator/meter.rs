//! The series a mesh and an instrumented workload would export for the simulated requests,
//! in Prometheus' text format.
//!
//! Istio family (reporter `source` = the gateway's sidecar, `destination` = the workload's):
//! `istio_requests_total` and `istio_request_duration_milliseconds` (histogram). Workload
//! family, as podinfo exports it and Flagger's generic HTTP observer reads it:
//! `http_request_duration_seconds` (histogram) with `kubernetes_namespace` and
//! `kubernetes_pod_name` as Prometheus' Kubernetes relabelling would add them.
//!
//! Counts are whole requests: the fractional part of a tick's share is carried to the next
//! tick, so a 20 req/s split with 30% errors yields exactly 6 errors per second over time
//! instead of a random walk, and a test's tolerance can stay tight.

use std::collections::BTreeMap;
use std::fmt::Write;

use sha2::{Digest, Sha256};

use super::proxies::Tag;
use super::traffic::{Destination, Flow};

/// Upper bounds of the latency buckets, in milliseconds (the Istio family uses them as they
/// are, the HTTP family in seconds).
pub const BUCKETS_MS: [f64; 12] = [
    1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
];

/// How long the gateway takes to answer 503 for a backend with nobody behind it.
const UNAVAILABLE_LATENCY_MS: f64 = 0.0;

/// Less than any real fraction of a request, more than the rounding of summed shares.
const WHOLE_EPSILON: f64 = 1e-6;

const OK: u16 = 200;
const SERVER_ERROR: u16 = 500;
const UNAVAILABLE: u16 = 503;

/// A histogram of whole requests fed with fractional ones.
#[derive(Debug, Clone, Default, PartialEq)]
struct Histogram {
    /// Requests seen including fractions; `count` is its whole part.
    exact: f64,
    count: u64,
    sum_ms: f64,
    /// Cumulative, as exported: `buckets[i]` counts requests of at most `BUCKETS_MS[i]`.
    buckets: [u64; BUCKETS_MS.len()],
}

impl Histogram {
    fn observe(&mut self, requests: f64, latency_ms: f64) {
        self.exact += requests.max(0.0);
        // The epsilon keeps float noise (1.4 added 100 times is 139.99999999999997) from
        // holding back a whole request. `exact` only grows, so `whole` never falls below
        // `count`.
        let whole = (self.exact + WHOLE_EPSILON).floor() as u64;
        let added = whole.saturating_sub(self.count);
        self.count = whole;
        self.sum_ms += added as f64 * latency_ms;
        for (bound, bucket) in BUCKETS_MS.iter().zip(self.buckets.iter_mut()) {
            if latency_ms <= *bound {
                *bucket += added;
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Reporter {
    Source,
    Destination,
}

impl Reporter {
    fn as_str(self) -> &'static str {
        match self {
            Reporter::Source => "source",
            Reporter::Destination => "destination",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct IstioSeries {
    reporter: Reporter,
    source_workload: String,
    source_namespace: String,
    destination_workload: String,
    destination_namespace: String,
    destination_service_name: String,
    destination_service_namespace: String,
    response_code: u16,
    /// Envoy's response flags: "-" for none, "UH" for no healthy upstream.
    response_flags: &'static str,
}

impl IstioSeries {
    fn labels(&self) -> Vec<(&'static str, String)> {
        // Istio's mTLS label differs by side: the destination sidecar terminates mTLS, the
        // source side does not know.
        let security = match self.reporter {
            Reporter::Source => "unknown",
            Reporter::Destination => "mutual_tls",
        };
        vec![
            ("reporter", self.reporter.as_str().to_string()),
            ("source_workload", self.source_workload.clone()),
            ("source_workload_namespace", self.source_namespace.clone()),
            ("destination_workload", self.destination_workload.clone()),
            (
                "destination_workload_namespace",
                self.destination_namespace.clone(),
            ),
            (
                "destination_service",
                format!(
                    "{}.{}.svc.cluster.local",
                    self.destination_service_name, self.destination_service_namespace
                ),
            ),
            (
                "destination_service_name",
                self.destination_service_name.clone(),
            ),
            (
                "destination_service_namespace",
                self.destination_service_namespace.clone(),
            ),
            ("request_protocol", "http".to_string()),
            ("response_code", self.response_code.to_string()),
            ("response_flags", self.response_flags.to_string()),
            ("connection_security_policy", security.to_string()),
        ]
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct HttpSeries {
    namespace: String,
    pod: String,
    status: u16,
}

impl HttpSeries {
    fn labels(&self) -> Vec<(&'static str, String)> {
        vec![
            ("kubernetes_namespace", self.namespace.clone()),
            ("kubernetes_pod_name", self.pod.clone()),
            ("method", "GET".to_string()),
            ("path", "/".to_string()),
            ("status", self.status.to_string()),
        ]
    }
}

/// A proxy's own series of one tag and response code (Envoy, ingress-nginx, APISIX).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ProxySeries {
    tag: Tag,
    code: u16,
}

/// Every series the simulator exports, growing with each recorded flow.
#[derive(Debug, Clone, Default)]
pub struct Meter {
    istio: BTreeMap<IstioSeries, Histogram>,
    http: BTreeMap<HttpSeries, Histogram>,
    proxy: BTreeMap<ProxySeries, Histogram>,
    /// Latency per tag over every response code, as the proxies export it.
    proxy_latency: BTreeMap<Tag, Histogram>,
}

impl Meter {
    /// Counts `flow`'s requests: for a workload, its error rate answers 500 and the rest 200,
    /// all after its latency; for an unavailable backend, the gateway's own 503s.
    pub fn record(&mut self, flow: &Flow) {
        self.record_proxy(flow);
        match &flow.destination {
            Destination::Workload {
                namespace,
                service,
                workload,
                behaviour,
            } => {
                let errors = flow.requests * behaviour.error_rate;
                for (code, requests) in [(OK, flow.requests - errors), (SERVER_ERROR, errors)] {
                    // A series appears with its first request, as in a real exporter: a
                    // workload that never failed has no 500 series.
                    if requests <= 0.0 {
                        continue;
                    }
                    for reporter in [Reporter::Source, Reporter::Destination] {
                        let series = IstioSeries {
                            reporter,
                            source_workload: flow.source.workload.clone(),
                            source_namespace: flow.source.namespace.clone(),
                            destination_workload: workload.clone(),
                            destination_namespace: namespace.clone(),
                            destination_service_name: service.clone(),
                            destination_service_namespace: namespace.clone(),
                            response_code: code,
                            response_flags: "-",
                        };
                        self.istio
                            .entry(series)
                            .or_default()
                            .observe(requests, behaviour.latency_ms);
                    }
                    let series = HttpSeries {
                        namespace: namespace.clone(),
                        pod: pod_name(namespace, workload),
                        status: code,
                    };
                    self.http
                        .entry(series)
                        .or_default()
                        .observe(requests, behaviour.latency_ms);
                }
            }
            Destination::Unavailable { namespace, service } => {
                if flow.requests <= 0.0 {
                    return;
                }
                // Only the gateway sees these: no pod, so no destination report and no
                // workload histogram.
                let series = IstioSeries {
                    reporter: Reporter::Source,
                    source_workload: flow.source.workload.clone(),
                    source_namespace: flow.source.namespace.clone(),
                    destination_workload: "unknown".into(),
                    destination_namespace: "unknown".into(),
                    destination_service_name: service.clone(),
                    destination_service_namespace: namespace.clone(),
                    response_code: UNAVAILABLE,
                    response_flags: "UH",
                };
                self.istio
                    .entry(series)
                    .or_default()
                    .observe(flow.requests, UNAVAILABLE_LATENCY_MS);
            }
        }
    }

    /// The proxy's view of `flow`: what the workload answered, or its own 503.
    fn record_proxy(&mut self, flow: &Flow) {
        let Some(tag) = &flow.tag else {
            return;
        };
        let answers = match &flow.destination {
            Destination::Workload { behaviour, .. } => {
                let errors = flow.requests * behaviour.error_rate;
                vec![
                    (OK, flow.requests - errors, behaviour.latency_ms),
                    (SERVER_ERROR, errors, behaviour.latency_ms),
                ]
            }
            Destination::Unavailable { .. } => {
                vec![(UNAVAILABLE, flow.requests, UNAVAILABLE_LATENCY_MS)]
            }
        };
        for (code, requests, latency_ms) in answers {
            if requests > 0.0 {
                let series = ProxySeries {
                    tag: tag.clone(),
                    code,
                };
                self.proxy
                    .entry(series)
                    .or_default()
                    .observe(requests, latency_ms);
                self.proxy_latency
                    .entry(tag.clone())
                    .or_default()
                    .observe(requests, latency_ms);
            }
        }
    }

    /// The Prometheus text exposition (format 0.0.4) of every series.
    pub fn render(&self) -> String {
        let mut out = String::new();
        family_header(
            &mut out,
            "istio_requests_total",
            "counter",
            "Requests, as Istio's sidecars report them (simulated).",
        );
        for (series, h) in &self.istio {
            sample(&mut out, "istio_requests_total", &series.labels(), h.count);
        }
        family_header(
            &mut out,
            "istio_request_duration_milliseconds",
            "histogram",
            "Request duration in milliseconds, as Istio's sidecars report it (simulated).",
        );
        for (series, h) in &self.istio {
            histogram(
                &mut out,
                "istio_request_duration_milliseconds",
                &series.labels(),
                h,
                1.0,
            );
        }
        family_header(
            &mut out,
            "http_request_duration_seconds",
            "histogram",
            "Request duration in seconds, as the workload reports it (simulated).",
        );
        for (series, h) in &self.http {
            histogram(
                &mut out,
                "http_request_duration_seconds",
                &series.labels(),
                h,
                1000.0,
            );
        }
        self.render_proxies(&mut out);
        out
    }

    /// Envoy's cluster stats (Contour, Gloo), ingress-nginx's and APISIX's, each family
    /// only once a flow carried its tag.
    fn render_proxies(&self, out: &mut String) {
        let of = |want: fn(&Tag) -> bool| self.proxy.iter().filter(move |(s, _)| want(&s.tag));
        let latency =
            |want: fn(&Tag) -> bool| self.proxy_latency.iter().filter(move |(t, _)| want(t));
        let envoy = |t: &Tag| matches!(t, Tag::Envoy { .. });
        let nginx = |t: &Tag| matches!(t, Tag::Nginx { .. });
        let apisix = |t: &Tag| matches!(t, Tag::Apisix { .. });
        if of(envoy).next().is_some() {
            family_header(
                out,
                "envoy_cluster_upstream_rq",
                "counter",
                "Upstream requests by response code, as Envoy reports them (simulated).",
            );
            for (s, h) in of(envoy) {
                sample(out, "envoy_cluster_upstream_rq", &s.labels(), h.count);
            }
            family_header(
                out,
                "envoy_cluster_upstream_rq_time",
                "histogram",
                "Upstream request time in milliseconds, as Envoy reports it (simulated).",
            );
            for (t, h) in latency(envoy) {
                histogram(
                    out,
                    "envoy_cluster_upstream_rq_time",
                    &tag_labels(t),
                    h,
                    1.0,
                );
            }
        }
        if of(nginx).next().is_some() {
            family_header(
                out,
                "nginx_ingress_controller_requests",
                "counter",
                "Requests, as ingress-nginx reports them (simulated).",
            );
            for (s, h) in of(nginx) {
                sample(
                    out,
                    "nginx_ingress_controller_requests",
                    &s.labels(),
                    h.count,
                );
            }
            family_header(
                out,
                "nginx_ingress_controller_ingress_upstream_latency_seconds",
                "histogram",
                "Upstream latency in seconds, as ingress-nginx reports it (simulated).",
            );
            for (t, h) in latency(nginx) {
                histogram(
                    out,
                    "nginx_ingress_controller_ingress_upstream_latency_seconds",
                    &tag_labels(t),
                    h,
                    1000.0,
                );
            }
        }
        if of(apisix).next().is_some() {
            family_header(
                out,
                "apisix_http_status",
                "counter",
                "Requests by status code, as APISIX reports them (simulated).",
            );
            for (s, h) in of(apisix) {
                sample(out, "apisix_http_status", &s.labels(), h.count);
            }
            family_header(
                out,
                "apisix_http_latency",
                "histogram",
                "Request latency in milliseconds, as APISIX reports it (simulated).",
            );
            for (t, h) in latency(apisix) {
                let mut labels = vec![("type", "request".to_string())];
                labels.extend(tag_labels(t));
                histogram(out, "apisix_http_latency", &labels, h, 1.0);
            }
        }
    }
}

/// The labels that name a proxy's route or cluster.
fn tag_labels(tag: &Tag) -> Vec<(&'static str, String)> {
    match tag {
        Tag::Envoy { cluster } => vec![("envoy_cluster_name", cluster.clone())],
        Tag::Nginx {
            namespace,
            ingress,
            canary,
        } => vec![
            ("namespace", namespace.clone()),
            ("ingress", ingress.clone()),
            ("canary", canary.clone()),
        ],
        Tag::Apisix { route } => vec![("route", route.clone())],
    }
}

impl ProxySeries {
    fn labels(&self) -> Vec<(&'static str, String)> {
        let code = match self.tag {
            Tag::Envoy { .. } => "envoy_response_code",
            Tag::Nginx { .. } => "status",
            Tag::Apisix { .. } => "code",
        };
        let mut labels = tag_labels(&self.tag);
        labels.push((code, self.code.to_string()));
        labels
    }
}

/// A stable pod name for `deployment`, shaped as a Deployment's pod is named
/// (`<deployment>-<replicaset hash>-<pod id>`), so Flagger's pod-name regex
/// `<target>-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)` selects the target's pods and not those of
/// `<target>-primary`.
pub fn pod_name(namespace: &str, deployment: &str) -> String {
    // Kubernetes' alphabet for generated names: no vowels, no look-alike characters.
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let digest = Sha256::digest(format!("{namespace}/{deployment}").as_bytes());
    let encode = |bytes: &[u8]| -> String {
        bytes
            .iter()
            .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
            .collect()
    };
    format!(
        "{deployment}-{}-{}",
        encode(&digest[..10]),
        encode(&digest[10..15])
    )
}

fn family_header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn histogram(
    out: &mut String,
    name: &str,
    labels: &[(&'static str, String)],
    h: &Histogram,
    unit_per_ms: f64,
) {
    let bucket = format!("{name}_bucket");
    for (bound, count) in BUCKETS_MS.iter().zip(h.buckets) {
        let mut with_le = labels.to_vec();
        with_le.push(("le", (bound / unit_per_ms).to_string()));
        sample(out, &bucket, &with_le, count);
    }
    let mut with_le = labels.to_vec();
    with_le.push(("le", "+Inf".to_string()));
    sample(out, &bucket, &with_le, h.count);
    sample(out, &format!("{name}_sum"), labels, h.sum_ms / unit_per_ms);
    sample(out, &format!("{name}_count"), labels, h.count);
}

fn sample(
    out: &mut String,
    name: &str,
    labels: &[(&'static str, String)],
    value: impl std::fmt::Display,
) {
    let labels: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    let _ = writeln!(out, "{name}{{{}}} {value}", labels.join(","));
}

/// Label values escape backslash, double quote and newline in the text format.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::traffic::tests::{cluster, weighted};
    use crate::simulator::traffic::{ClusterView, route_traffic};

    /// The exposition as `name{labels}` → value, failing on any line that is not a sample,
    /// comment or blank.
    fn samples(text: &str) -> BTreeMap<String, f64> {
        text.lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (series, value) = l.rsplit_once(' ').expect("sample line");
                (series.to_string(), value.parse().expect("numeric value"))
            })
            .collect()
    }

    /// Sum of the samples of metric `name` whose labels include every `want` pair.
    fn total(samples: &BTreeMap<String, f64>, name: &str, want: &[(&str, &str)]) -> f64 {
        samples
            .iter()
            .filter(|(series, _)| series.starts_with(&format!("{name}{{")))
            .filter(|(series, _)| {
                want.iter()
                    .all(|(k, v)| series.contains(&format!("{k}=\"{v}\"")))
            })
            .map(|(_, v)| v)
            .sum()
    }

    fn run_ticks(meter: &mut Meter, primary: i32, canary: i32, ticks: usize, per_tick: f64) {
        for _ in 0..ticks {
            for flow in route_traffic(&weighted(primary, canary), &cluster(), per_tick, 0.1).flows {
                meter.record(&flow);
            }
        }
    }

    #[test]
    fn weights_and_annotations_become_counts_per_series() {
        let mut meter = Meter::default();
        run_ticks(&mut meter, 80, 20, 10, 100.0);
        let s = samples(&meter.render());
        let canary_pod = pod_name("test", "podinfo");

        for reporter in ["source", "destination"] {
            let canary = [("reporter", reporter), ("destination_workload", "podinfo")];
            assert_eq!(total(&s, "istio_requests_total", &canary), 200.0);
            let mut failed = canary.to_vec();
            failed.push(("response_code", "500"));
            assert_eq!(total(&s, "istio_requests_total", &failed), 60.0);
            let primary = [
                ("reporter", reporter),
                ("destination_workload", "podinfo-primary"),
            ];
            assert_eq!(total(&s, "istio_requests_total", &primary), 800.0);
            let mut failed = primary.to_vec();
            failed.push(("response_code", "500"));
            assert_eq!(total(&s, "istio_requests_total", &failed), 0.0);
        }
        // A workload that never failed has no 500 series at all.
        assert!(!s.keys().any(|k| k.contains("podinfo-primary")
            && (k.contains("response_code=\"500\"") || k.contains("status=\"500\""))));

        // The canary's 300 ms requests fall in (250, 500]: none at le=250, all at le=500.
        let le = |le: &str| {
            total(
                &s,
                "istio_request_duration_milliseconds_bucket",
                &[
                    ("reporter", "destination"),
                    ("destination_workload", "podinfo"),
                    ("le", le),
                ],
            )
        };
        assert_eq!((le("250"), le("500"), le("+Inf")), (0.0, 200.0, 200.0));
        let sum = total(
            &s,
            "istio_request_duration_milliseconds_sum",
            &[("reporter", "source"), ("destination_workload", "podinfo")],
        );
        assert_eq!(sum, 200.0 * 300.0);

        // The HTTP family in seconds, per pod, with status codes.
        let pod = [("kubernetes_pod_name", canary_pod.as_str())];
        assert_eq!(
            total(&s, "http_request_duration_seconds_count", &pod),
            200.0
        );
        let mut failed = pod.to_vec();
        failed.push(("status", "500"));
        assert_eq!(
            total(&s, "http_request_duration_seconds_count", &failed),
            60.0
        );
        let mut slow = pod.to_vec();
        slow.push(("le", "0.5"));
        assert_eq!(
            total(&s, "http_request_duration_seconds_bucket", &slow),
            200.0
        );
        let mut fast = pod.to_vec();
        fast.push(("le", "0.25"));
        assert_eq!(
            total(&s, "http_request_duration_seconds_bucket", &fast),
            0.0
        );
        assert!((total(&s, "http_request_duration_seconds_sum", &pod) - 60.0).abs() < 1e-9);
    }

    #[test]
    fn fractions_carry_over_so_long_runs_keep_exact_ratios() {
        let mut meter = Meter::default();
        // 7 requests per tick, 20% to the canary: 1.4 per tick, 30% of them errors.
        run_ticks(&mut meter, 80, 20, 100, 7.0);
        let s = samples(&meter.render());
        let canary = [
            ("reporter", "destination"),
            ("destination_workload", "podinfo"),
        ];
        assert_eq!(total(&s, "istio_requests_total", &canary), 140.0);
        let mut failed = canary.to_vec();
        failed.push(("response_code", "500"));
        // 0.42 per tick.
        assert_eq!(total(&s, "istio_requests_total", &failed), 42.0);
    }

    #[test]
    fn changed_weights_stop_the_canary_counters() {
        let mut meter = Meter::default();
        run_ticks(&mut meter, 80, 20, 5, 100.0);
        let before = samples(&meter.render());
        run_ticks(&mut meter, 100, 0, 5, 100.0);
        let after = samples(&meter.render());
        let canary = [("destination_workload", "podinfo")];
        assert_eq!(
            total(&before, "istio_requests_total", &canary),
            total(&after, "istio_requests_total", &canary)
        );
        let primary = [
            ("reporter", "destination"),
            ("destination_workload", "podinfo-primary"),
        ];
        assert_eq!(total(&after, "istio_requests_total", &primary), 900.0);
    }

    #[test]
    fn unavailable_backends_are_the_gateways_503s_only() {
        let traffic = route_traffic(&weighted(0, 100), &ClusterView::default(), 10.0, 0.0);
        let mut meter = Meter::default();
        for flow in &traffic.flows {
            meter.record(flow);
        }
        let s = samples(&meter.render());
        assert_eq!(
            total(
                &s,
                "istio_requests_total",
                &[
                    ("reporter", "source"),
                    ("destination_workload", "unknown"),
                    ("destination_service_name", "podinfo-canary"),
                    ("response_code", "503"),
                    ("response_flags", "UH"),
                ]
            ),
            10.0
        );
        assert_eq!(
            total(&s, "istio_requests_total", &[("reporter", "destination")]),
            0.0
        );
        assert_eq!(total(&s, "http_request_duration_seconds_count", &[]), 0.0);
    }

    #[test]
    fn pod_names_match_flaggers_regex_for_their_target_only() {
        let canary = pod_name("test", "podinfo");
        let primary = pod_name("test", "podinfo-primary");
        // `<target>-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)`, anchored as PromQL anchors =~.
        let matches_target = |pod: &str, target: &str| {
            pod.strip_prefix(&format!("{target}-"))
                .map(|rest| rest.split('-').collect::<Vec<_>>())
                .is_some_and(|parts| {
                    parts.len() == 2
                        && parts
                            .iter()
                            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric()))
                })
        };
        assert!(matches_target(&canary, "podinfo"), "{canary}");
        assert!(!matches_target(&primary, "podinfo"), "{primary}");
        assert!(matches_target(&primary, "podinfo-primary"), "{primary}");
        assert_eq!(canary, pod_name("test", "podinfo"), "stable across calls");
        assert_ne!(canary, pod_name("other", "podinfo"));
    }

    #[test]
    fn exposition_is_well_formed() {
        let mut meter = Meter::default();
        run_ticks(&mut meter, 50, 50, 1, 10.0);
        let text = meter.render();
        for family in [
            "istio_requests_total counter",
            "istio_request_duration_milliseconds histogram",
            "http_request_duration_seconds histogram",
        ] {
            assert_eq!(text.matches(&format!("# TYPE {family}\n")).count(), 1);
        }
        assert!(text.contains("le=\"0.001\""), "seconds buckets");
        assert!(text.contains("le=\"10000\""), "milliseconds buckets");
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        samples(&text);
    }

    #[test]
    fn proxies_report_their_own_series_for_the_requests_they_route() {
        use crate::simulator::proxies::{ProxyBackend, ProxyRoute, ProxyRule};
        use crate::simulator::traffic::{Source, proxy_traffic};
        let tags = [
            Tag::Envoy {
                cluster: "test_podinfo-canary_9898".into(),
            },
            Tag::Nginx {
                namespace: "test".into(),
                ingress: "podinfo".into(),
                canary: "test-podinfo-canary-80".into(),
            },
            Tag::Apisix {
                route: "test_podinfo-podinfo-canary_method".into(),
            },
        ];
        let mut meter = Meter::default();
        for tag in &tags {
            let route = ProxyRoute {
                kind: "Test",
                namespace: "test".into(),
                name: "podinfo".into(),
                source: Source {
                    workload: "proxy".into(),
                    namespace: "proxy".into(),
                },
                rules: vec![ProxyRule {
                    conditional: false,
                    backends: vec![
                        ProxyBackend {
                            namespace: "test".into(),
                            service: "podinfo-primary".into(),
                            weight: 90.0,
                            tag: None,
                        },
                        ProxyBackend {
                            namespace: "test".into(),
                            service: "podinfo-canary".into(),
                            weight: 10.0,
                            tag: Some(tag.clone()),
                        },
                    ],
                    mirrors: vec![],
                }],
            };
            // 100 ticks of 100 requests: 1,000 to the canary, 30% of them 500s after 300 ms.
            for _ in 0..100 {
                for flow in proxy_traffic(&route, &cluster(), 100.0, 0.0).flows {
                    meter.record(&flow);
                }
            }
        }
        let got = samples(&meter.render());
        let want = [
            (
                r#"envoy_cluster_upstream_rq{envoy_cluster_name="test_podinfo-canary_9898",envoy_response_code="200"}"#,
                700.0,
            ),
            (
                r#"envoy_cluster_upstream_rq{envoy_cluster_name="test_podinfo-canary_9898",envoy_response_code="500"}"#,
                300.0,
            ),
            (
                r#"envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="test_podinfo-canary_9898",le="250"}"#,
                0.0,
            ),
            (
                r#"nginx_ingress_controller_requests{namespace="test",ingress="podinfo",canary="test-podinfo-canary-80",status="500"}"#,
                300.0,
            ),
            (
                r#"nginx_ingress_controller_ingress_upstream_latency_seconds_sum{namespace="test",ingress="podinfo",canary="test-podinfo-canary-80"}"#,
                300.0,
            ),
            (
                r#"apisix_http_status{route="test_podinfo-podinfo-canary_method",code="200"}"#,
                700.0,
            ),
            (
                r#"apisix_http_latency_bucket{type="request",route="test_podinfo-podinfo-canary_method",le="500"}"#,
                1000.0,
            ),
        ];
        for (series, value) in want {
            let found = got.get(series).copied();
            assert!(
                found.is_some_and(|v| (v - value).abs() < 1e-6),
                "{series}: {found:?}, want {value}"
            );
        }
        // The primary's requests carried no tag: no proxy series for them.
        assert!(!got.keys().any(|k| k.contains("podinfo-primary")
            && !k.starts_with("istio")
            && !k.starts_with("http_")));
    }
}
