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
            ("nginx", None),
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
}
