//! Flagger's builtin checks `request-success-rate` and `request-duration`: the query each
//! mesh or ingress provider answers them with (flagger-behaviour.md §5.2).
//!
//! Success rate is a percentage of non-5xx requests; duration is the P99 in milliseconds (the
//! generic HTTP observer measures seconds, which the analysis multiplies by 1000).

use super::template::{TemplateContext, TemplateError, render};

pub const SUCCESS_RATE: &str = "request-success-rate";
pub const DURATION: &str = "request-duration";

/// The interval of a builtin check whose `interval` is unset.
pub const DEFAULT_BUILTIN_INTERVAL: &str = "1m";

/// Which query family answers the builtin checks for a canary's provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observer {
    /// `http_request_duration_seconds` of the workload's pods: providers kubernetes and gatewayapi.
    Http,
    Istio,
    Linkerd,
    /// Envoy's cluster series, cluster `<ns>_<service>-canary_<port>`.
    Contour,
    /// Envoy's cluster series, cluster `<ns>-<target>-canaryupstream-<port>_<ns>`.
    Gloo,
    /// The ingress controller's series of the canary Ingress (`canary` label set).
    Nginx,
    /// APISIX's series of the generated route `<ns>_<route>-<target>-canary_<rule>`.
    Apisix,
}

impl Observer {
    /// The observer for `provider` (Flagger's default is Istio), or `None` where Serin does not
    /// yet carry that provider's query shapes.
    pub fn for_provider(provider: &str) -> Option<Observer> {
        match provider {
            "" | "istio" => Some(Observer::Istio),
            "kubernetes" => Some(Observer::Http),
            p if p.starts_with("gatewayapi") => Some(Observer::Http),
            p if p.starts_with("linkerd") => Some(Observer::Linkerd),
            "contour" => Some(Observer::Contour),
            p if p.starts_with("gloo") => Some(Observer::Gloo),
            "nginx" => Some(Observer::Nginx),
            "apisix" => Some(Observer::Apisix),
            _ => None,
        }
    }
}

/// The rendered PromQL for builtin `metric` (`None` if `metric` is not a builtin).
pub fn query(
    observer: Observer,
    metric: &str,
    ctx: &TemplateContext,
) -> Option<Result<String, TemplateError>> {
    let template = match (observer, metric) {
        (Observer::Http, SUCCESS_RATE) => HTTP_SUCCESS_RATE,
        (Observer::Http, DURATION) => HTTP_DURATION,
        (Observer::Istio, SUCCESS_RATE) => ISTIO_SUCCESS_RATE,
        (Observer::Istio, DURATION) => ISTIO_DURATION,
        (Observer::Linkerd, SUCCESS_RATE) => LINKERD_SUCCESS_RATE,
        (Observer::Linkerd, DURATION) => LINKERD_DURATION,
        (Observer::Contour, SUCCESS_RATE) => CONTOUR_SUCCESS_RATE,
        (Observer::Contour, DURATION) => CONTOUR_DURATION,
        (Observer::Gloo, SUCCESS_RATE) => GLOO_SUCCESS_RATE,
        (Observer::Gloo, DURATION) => GLOO_DURATION,
        (Observer::Nginx, SUCCESS_RATE) => NGINX_SUCCESS_RATE,
        (Observer::Nginx, DURATION) => NGINX_DURATION,
        (Observer::Apisix, SUCCESS_RATE) => APISIX_SUCCESS_RATE,
        (Observer::Apisix, DURATION) => APISIX_DURATION,
        _ => return None,
    };
    Some(render(template, ctx))
}

const HTTP_SUCCESS_RATE: &str = r#"sum(rate(http_request_duration_seconds_count{kubernetes_namespace="{{ namespace }}",kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)",status!~"5.*"}[{{ interval }}])) / sum(rate(http_request_duration_seconds_count{kubernetes_namespace="{{ namespace }}",kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"}[{{ interval }}])) * 100"#;

const HTTP_DURATION: &str = r#"histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket{kubernetes_namespace="{{ namespace }}",kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"}[{{ interval }}])) by (le))"#;

const ISTIO_SUCCESS_RATE: &str = r#"sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="{{ namespace }}",destination_workload=~"{{ target }}",response_code!~"5.*"}[{{ interval }}])) / sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="{{ namespace }}",destination_workload=~"{{ target }}"}[{{ interval }}])) * 100"#;

const ISTIO_DURATION: &str = r#"histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload_namespace="{{ namespace }}",destination_workload=~"{{ target }}"}[{{ interval }}])) by (le))"#;

const LINKERD_SUCCESS_RATE: &str = r#"sum(rate(response_total{namespace="{{ namespace }}",deployment=~"{{ target }}",classification!="failure",direction="inbound"}[{{ interval }}])) / sum(rate(response_total{namespace="{{ namespace }}",deployment=~"{{ target }}",direction="inbound"}[{{ interval }}])) * 100"#;

const LINKERD_DURATION: &str = r#"histogram_quantile(0.99, sum(rate(response_latency_ms_bucket{namespace="{{ namespace }}",deployment=~"{{ target }}",direction="inbound"}[{{ interval }}])) by (le))"#;

// The next four are Flagger's observers (pkg/metrics/observers, v1.36) on one line. Flagger's
// nginx duration reads the upstream latency, not the response duration.
const CONTOUR_SUCCESS_RATE: &str = r#"sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~"{{ namespace }}_{{ service }}-canary_[0-9a-zA-Z-]+",envoy_response_code!~"5.*"}[{{ interval }}])) / sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~"{{ namespace }}_{{ service }}-canary_[0-9a-zA-Z-]+"}[{{ interval }}])) * 100"#;

const CONTOUR_DURATION: &str = r#"histogram_quantile(0.99, sum(rate(envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=~"{{ namespace }}_{{ service }}-canary_[0-9a-zA-Z-]+"}[{{ interval }}])) by (le))"#;

const GLOO_SUCCESS_RATE: &str = r#"sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~"{{ namespace }}-{{ target }}-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+",envoy_response_code!~"5.*"}[{{ interval }}])) / sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~"{{ namespace }}-{{ target }}-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+"}[{{ interval }}])) * 100"#;

const GLOO_DURATION: &str = r#"histogram_quantile(0.99, sum(rate(envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=~"{{ namespace }}-{{ target }}-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+"}[{{ interval }}])) by (le))"#;

const NGINX_SUCCESS_RATE: &str = r#"sum(rate(nginx_ingress_controller_requests{namespace="{{ namespace }}",ingress="{{ ingress }}",canary!="",status!~"5.*"}[{{ interval }}])) / sum(rate(nginx_ingress_controller_requests{namespace="{{ namespace }}",ingress="{{ ingress }}",canary!=""}[{{ interval }}])) * 100"#;

const NGINX_DURATION: &str = r#"sum(rate(nginx_ingress_controller_ingress_upstream_latency_seconds_sum{namespace="{{ namespace }}",ingress="{{ ingress }}",canary!=""}[{{ interval }}])) / sum(rate(nginx_ingress_controller_ingress_upstream_latency_seconds_count{namespace="{{ namespace }}",ingress="{{ ingress }}",canary!=""}[{{ interval }}])) * 1000"#;

const APISIX_SUCCESS_RATE: &str = r#"sum(rate(apisix_http_status{route=~"{{ namespace }}_{{ route }}-{{ target }}-canary_.+",code!~"5.."}[{{ interval }}])) / sum(rate(apisix_http_status{route=~"{{ namespace }}_{{ route }}-{{ target }}-canary_.+"}[{{ interval }}])) * 100"#;

const APISIX_DURATION: &str = r#"histogram_quantile(0.99, sum(rate(apisix_http_latency_bucket{type=~"request",route=~"{{ namespace }}_{{ route }}-{{ target }}-canary_.+"}[{{ interval }}])) by (le))"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> TemplateContext {
        TemplateContext {
            namespace: "test".into(),
            target: "podinfo".into(),
            interval: "1m".into(),
            ..Default::default()
        }
    }

    #[test]
    fn providers_map_to_observers() {
        let cases = [
            ("", Some(Observer::Istio)),
            ("istio", Some(Observer::Istio)),
            ("kubernetes", Some(Observer::Http)),
            ("gatewayapi:v1", Some(Observer::Http)),
            ("gatewayapi:v1beta1", Some(Observer::Http)),
            ("linkerd", Some(Observer::Linkerd)),
            ("contour", Some(Observer::Contour)),
            ("gloo", Some(Observer::Gloo)),
            ("nginx", Some(Observer::Nginx)),
            ("apisix", Some(Observer::Apisix)),
            ("traefik", None),
        ];
        for (provider, want) in cases {
            assert_eq!(Observer::for_provider(provider), want, "{provider}");
        }
    }

    #[test]
    fn http_success_rate_is_the_query_the_e2e_test_proves_against_prometheus() {
        let q = query(Observer::Http, SUCCESS_RATE, &ctx())
            .expect("builtin")
            .expect("renders");
        assert_eq!(
            q,
            r#"sum(rate(http_request_duration_seconds_count{kubernetes_namespace="test",kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)",status!~"5.*"}[1m])) / sum(rate(http_request_duration_seconds_count{kubernetes_namespace="test",kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"}[1m])) * 100"#
        );
        assert!(query(Observer::Http, "error-rate", &ctx()).is_none());
    }

    #[test]
    fn provider_queries_name_the_canary_series() {
        let ctx = TemplateContext {
            namespace: "test".into(),
            target: "podinfo".into(),
            service: "podinfo".into(),
            ingress: "podinfo".into(),
            route: "podinfo".into(),
            interval: "1m".into(),
            ..Default::default()
        };
        let render = |o, m| query(o, m, &ctx).expect("builtin").expect("renders");
        let cases = [
            (
                Observer::Contour,
                r#"envoy_cluster_name=~"test_podinfo-canary_[0-9a-zA-Z-]+""#,
            ),
            (
                Observer::Gloo,
                r#"envoy_cluster_name=~"test-podinfo-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+""#,
            ),
            (
                Observer::Nginx,
                r#"namespace="test",ingress="podinfo",canary!="""#,
            ),
            (
                Observer::Apisix,
                r#"route=~"test_podinfo-podinfo-canary_.+""#,
            ),
        ];
        for (observer, selector) in cases {
            for metric in [SUCCESS_RATE, DURATION] {
                let q = render(observer, metric);
                assert!(q.contains(selector), "{observer:?} {metric}: {q}");
                assert!(q.contains("[1m]"), "{observer:?} {metric}: {q}");
                assert!(!q.contains("{{"), "{observer:?} {metric}: {q}");
            }
        }
        assert_eq!(
            render(Observer::Nginx, DURATION),
            r#"sum(rate(nginx_ingress_controller_ingress_upstream_latency_seconds_sum{namespace="test",ingress="podinfo",canary!=""}[1m])) / sum(rate(nginx_ingress_controller_ingress_upstream_latency_seconds_count{namespace="test",ingress="podinfo",canary!=""}[1m])) * 1000"#
        );
    }
}
