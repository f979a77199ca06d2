//! Per-object checks with messages a person can act on.
//!
//! Flagger's CRD rejects some mistakes at `kubectl apply` time with terse schema errors, and
//! its controller silently falls back on others (an unparsable interval becomes 60s, an
//! unknown provider becomes Istio). Serin reads manifests from Git, so it can say more and
//! say it earlier: every [`Finding`] names the field path, the value it found and how to fix
//! it. An `Error` is something the apiserver would reject or the rollout cannot work with;
//! a `Warning` is valid but probably not what the author meant.
//!
//! Only single-object rules live here. Whether a referenced MetricTemplate or AlertProvider
//! exists, duplicates and cross-namespace policy need the whole catalog.

use std::fmt;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::alert_provider::{AlertProvider, AlertProviderSpec, AlertProviderType};
use super::canary::{
    AlertSeverity, AutoscalerReference, BUILTIN_METRICS, Canary, CanaryAlert, CanaryAnalysis,
    CanaryMetric, CanaryService, CanarySpec, CanaryWebhook, HookType, HttpMatchRequest,
    LocalObjectReference, Provider, SameSite, SessionAffinity, StringMatch, TargetKind,
    TrafficDistribution,
};
use super::duration::{MIN_ANALYSIS_INTERVAL, is_flagger_interval, parse_go_duration};
use super::metric_template::{MetricProviderType, MetricTemplate, MetricTemplateSpec};
use super::strategy::DeploymentStrategy;

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// The object is rejected by the apiserver or cannot roll out as written.
    Error,
    /// The object works, but not the way its author probably expects.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem in one field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    /// Path from the object root, e.g. `spec.analysis.stepWeights[2]`.
    pub field: String,
    /// What is wrong, naming the value found.
    pub problem: String,
    /// How to make it right.
    pub fix: String,
}

impl Finding {
    pub fn error(
        field: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Finding {
            severity: Severity::Error,
            field: field.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    pub fn warning(
        field: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Finding {
            severity: Severity::Warning,
            field: field.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: {}; fix: {}",
            self.severity, self.field, self.problem, self.fix
        )
    }
}

/// Whether any finding is an error.
pub fn has_errors(findings: &[Finding]) -> bool {
    findings.iter().any(Finding::is_error)
}

#[derive(Default)]
struct Findings(Vec<Finding>);

impl Findings {
    fn error(
        &mut self,
        field: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.0.push(Finding::error(field, problem, fix));
    }

    fn warning(
        &mut self,
        field: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.0.push(Finding::warning(field, problem, fix));
    }
}

fn is_blank(value: Option<&str>) -> bool {
    value.is_none_or(|v| v.trim().is_empty())
}

const INTERVAL_FIX: &str = "use a number followed by s or m, e.g. 30s or 1m";

/// Checks a Flagger interval (`^[0-9]+(m|s)` and a Go duration). Returns the parsed value.
fn check_interval(
    out: &mut Findings,
    field: &str,
    name: &str,
    value: &str,
) -> Option<std::time::Duration> {
    if !is_flagger_interval(value) {
        out.error(
            field,
            format!("{name} {value:?} is not a duration"),
            INTERVAL_FIX,
        );
        return None;
    }
    match parse_go_duration(value) {
        Ok(d) => Some(d),
        Err(err) => {
            out.error(
                field,
                format!("{name} {value:?} is not a duration ({err})"),
                INTERVAL_FIX,
            );
            None
        }
    }
}

/// An absolute `http://` or `https://` URL with a host.
fn check_http_url(out: &mut Findings, field: &str, name: &str, value: &str, example: &str) {
    let fix = format!("use a full http(s) URL, e.g. {example}");
    match reqwest::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {}
        Ok(url) => out.error(
            field,
            format!(
                "{name} {value:?} has scheme {:?}, not http or https",
                url.scheme()
            ),
            fix,
        ),
        Err(err) => out.error(field, format!("{name} {value:?} is not a URL ({err})"), fix),
    }
}

/// RFC 6265 cookie names are RFC 2616 tokens: visible ASCII without separators.
fn is_cookie_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| (0x21..0x7f).contains(&b) && !b"()<>@,;:\\\"/[]?={}".contains(&b))
}

fn check_percent(out: &mut Findings, field: &str, name: &str, value: Option<i32>, low: i32) {
    if let Some(v) = value
        && !(low..=100).contains(&v)
    {
        out.error(
            field,
            format!("{name} {v} is outside {low}..100"),
            format!("use a percentage between {low} and 100"),
        );
    }
}

/// A name of a port: IANA service name rules (what a Service `targetPort` name must be).
fn is_port_name(name: &str) -> bool {
    name.len() <= 15
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name.bytes().any(|b| b.is_ascii_lowercase())
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

impl Canary {
    /// Single-object problems of this Canary, errors and warnings, in field order.
    pub fn validate(&self) -> Vec<Finding> {
        let mut out = Findings(self.spec.validate());
        self.check_serin_annotations(&mut out);
        out.0
    }

    /// Serin's own `serin.dev/*` settings, which the API server cannot check.
    fn check_serin_annotations(&self, out: &mut Findings) {
        let annotations = self.metadata.annotations.iter().flatten();
        for (key, value) in annotations {
            match key.as_str() {
                "serin.dev/on-failure"
                    if !matches!(value.as_str(), "record" | "revert" | "revert-branch") =>
                {
                    out.error(
                        "metadata.annotations.serin.dev/on-failure",
                        format!("{value:?} is not an on-failure policy"),
                        "use record, revert or revert-branch",
                    );
                }
                "serin.dev/approval" => {
                    for gate in value.split(',').map(str::trim).filter(|g| !g.is_empty()) {
                        if !matches!(
                            gate,
                            "confirm-rollout" | "confirm-traffic-increase" | "confirm-promotion"
                        ) {
                            out.error(
                                "metadata.annotations.serin.dev/approval",
                                format!("{gate:?} is not a gate Serin approves"),
                                "list confirm-rollout, confirm-traffic-increase or confirm-promotion, comma-separated",
                            );
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

impl CanarySpec {
    /// Single-object problems of this spec; field paths start at `spec.`.
    pub fn validate(&self) -> Vec<Finding> {
        let mut out = Findings::default();
        self.check_provider(&mut out);
        self.check_target(&mut out);
        self.check_references(&mut out);
        match &self.service {
            Some(service) => check_service(&mut out, service),
            None => out.error(
                "spec.service.port",
                "service is missing, so there is no service.port",
                "add service.port, the ClusterIP port of the generated Services, e.g. 9898",
            ),
        }
        if let Some(deadline) = self.progress_deadline_seconds
            && deadline <= 0
        {
            out.error(
                "spec.progressDeadlineSeconds",
                format!("progressDeadlineSeconds {deadline} is not positive"),
                "use a number of seconds, e.g. 600 (the default when unset)",
            );
        }
        self.check_analysis(&mut out);
        out.0
    }

    fn check_provider(&self, out: &mut Findings) {
        let Some(raw) = self.provider() else {
            return;
        };
        let parsed = Provider::parse(raw);
        if parsed.is_none() {
            // An error, not Flagger's runtime fallback to Istio: the CRD's enum makes the API
            // server refuse such a Canary, so it could never be applied.
            out.error(
                "spec.provider",
                format!("provider {raw:?} is not a provider Flagger knows"),
                format!(
                    "use one of: {} (Flagger's CRD, and Serin's, only admit these)",
                    Provider::list()
                ),
            );
        }
        if parsed.is_some_and(Provider::is_gateway_api) || raw.starts_with("gatewayapi") {
            let refs = self
                .service
                .as_ref()
                .and_then(|s| s.gateway_refs.as_deref());
            if refs.is_none_or(<[_]>::is_empty) {
                out.error(
                    "spec.service.gatewayRefs",
                    format!("provider {raw:?} needs service.gatewayRefs, but none are set"),
                    "add service.gatewayRefs with the name (and namespace) of the Gateway the HTTPRoute attaches to",
                );
            }
        }
        if matches!(parsed, Some(Provider::Nginx | Provider::Skipper)) && self.ingress_ref.is_none()
        {
            out.error(
                "spec.ingressRef",
                format!("provider {raw:?} needs ingressRef, but it is missing"),
                "add ingressRef with apiVersion networking.k8s.io/v1, kind Ingress and the name of the app's Ingress",
            );
        }
        if parsed == Some(Provider::Apisix) && self.route_ref.is_none() {
            out.error(
                "spec.routeRef",
                "provider \"apisix\" needs routeRef, but it is missing",
                "add routeRef with apiVersion apisix.apache.org/v2, kind ApisixRoute and the name of the app's route",
            );
        }
        let knative_target = self.targets_knative();
        if parsed == Some(Provider::Knative) && self.target_ref.is_some() && !knative_target {
            let target = self
                .target_ref
                .as_ref()
                .map(|t| format!("{}/{}", t.kind(), t.name()));
            out.error(
                "spec.targetRef",
                format!(
                    "provider \"knative\" needs a Knative Service target, but the target is {}",
                    target.unwrap_or_default()
                ),
                "point targetRef at a Knative Service (apiVersion serving.knative.dev/v1, kind Service) or use another provider",
            );
        }
        if knative_target && parsed.is_some() && parsed != Some(Provider::Knative) {
            out.error(
                "spec.provider",
                format!("provider {raw:?} cannot route a Knative Service target"),
                "set provider to knative",
            );
        }
        if parsed.is_some_and(Provider::is_gateway_api) {
            let service_matches = self.service.as_ref().and_then(|s| s.r#match.as_deref());
            for (i, m) in service_matches.into_iter().flatten().enumerate() {
                check_gateway_api_match(out, raw, &format!("spec.service.match[{i}]"), m);
            }
            if let Some(analysis) = self.analysis() {
                let a = format!("spec.{}", self.analysis_field());
                for (i, m) in analysis.matches().iter().enumerate() {
                    check_gateway_api_match(out, raw, &format!("{a}.match[{i}]"), m);
                }
            }
        }
        if let Some(analysis) = self.analysis() {
            let a = format!("spec.{}", self.analysis_field());
            if parsed == Some(Provider::Kubernetes) {
                if !analysis.matches().is_empty() {
                    out.warning(
                        format!("{a}.match"),
                        "the kubernetes provider cannot do A/B testing; the match conditions are ignored",
                        "remove match, or use a provider that routes by header (istio, gatewayapi:v1, nginx, ...)",
                    );
                }
                if analysis.iterations() == 0 {
                    out.warning(
                        a.clone(),
                        "the kubernetes provider cannot shift traffic progressively; Flagger runs it as blue/green with 10 iterations",
                        "set iterations instead of stepWeight/stepWeights",
                    );
                }
            }
            if analysis.mirror() {
                match parsed {
                    // Istio mirrors; the Contour and NGINX routers refuse mirror, which
                    // `serin validate` reports as an error from the router.
                    Some(Provider::Istio | Provider::Contour | Provider::Nginx) | None => {}
                    Some(p) if p.is_gateway_api() => {
                        if analysis.strategy() == DeploymentStrategy::Canary {
                            out.warning(
                                format!("{a}.mirror"),
                                format!("provider {raw:?} mirrors only blue/green runs; with weights the canary stays at weight 0"),
                                "use iterations (blue/green) with mirror, or remove mirror",
                            );
                        }
                    }
                    Some(_) => out.warning(
                        format!("{a}.mirror"),
                        format!("provider {raw:?} does not mirror traffic; mirror is ignored"),
                        "remove mirror, or use istio or a Gateway API provider",
                    ),
                }
            }
        }
    }

    fn check_target(&self, out: &mut Findings) {
        let Some(target) = &self.target_ref else {
            out.error(
                "spec.targetRef",
                "targetRef is missing",
                "add targetRef with apiVersion, kind and name of the Deployment, DaemonSet or Service to roll out",
            );
            return;
        };
        if is_blank(target.name.as_deref()) {
            out.error(
                "spec.targetRef.name",
                "targetRef.name is missing",
                "set targetRef.name to the name of the workload to roll out",
            );
        }
        if is_blank(target.api_version.as_deref()) {
            out.error(
                "spec.targetRef.apiVersion",
                "targetRef.apiVersion is missing",
                "set targetRef.apiVersion, e.g. apps/v1",
            );
        }
        match target.kind.as_deref() {
            None | Some("") => out.error(
                "spec.targetRef.kind",
                "targetRef.kind is missing",
                format!("set targetRef.kind to one of {}", TargetKind::list()),
            ),
            Some(kind) if TargetKind::parse(kind).is_none() => out.error(
                "spec.targetRef.kind",
                format!("targetRef.kind {kind:?} cannot be a canary target"),
                format!("use one of {}", TargetKind::list()),
            ),
            Some(_) => {}
        }
    }

    fn check_references(&self, out: &mut Findings) {
        if let Some(scaler) = &self.autoscaler_ref {
            check_autoscaler(out, scaler);
            if self.targets_knative() {
                out.error(
                    "spec.autoscalerRef",
                    "a Knative Service target scales itself; autoscalerRef cannot be used with it",
                    "remove autoscalerRef",
                );
            }
        }
        let refs: [(&str, Option<&LocalObjectReference>, &str, &str); 2] = [
            (
                "ingressRef",
                self.ingress_ref.as_ref(),
                "Ingress",
                "networking.k8s.io/v1",
            ),
            (
                "routeRef",
                self.route_ref.as_ref(),
                "ApisixRoute",
                "apisix.apache.org/v2",
            ),
        ];
        for (key, reference, kind, api_version) in refs {
            if let Some(r) = reference {
                check_reference(
                    out,
                    key,
                    (
                        r.api_version.as_deref(),
                        r.kind.as_deref(),
                        r.name.as_deref(),
                    ),
                    kind,
                    api_version,
                );
            }
        }
        if let Some(r) = &self.upstream_ref {
            check_reference(
                out,
                "upstreamRef",
                (
                    r.api_version.as_deref(),
                    r.kind.as_deref(),
                    r.name.as_deref(),
                ),
                "Upstream",
                "gloo.solo.io/v1",
            );
        }
    }

    fn check_analysis(&self, out: &mut Findings) {
        if self.analysis.is_some() && self.canary_analysis.is_some() {
            out.warning(
                "spec.canaryAnalysis",
                "canaryAnalysis is ignored because analysis is set",
                "remove canaryAnalysis (its deprecated name for analysis)",
            );
        } else if self.canary_analysis.is_some() {
            out.warning(
                "spec.canaryAnalysis",
                "canaryAnalysis is the deprecated name of analysis",
                "rename canaryAnalysis to analysis",
            );
        }
        match self.analysis() {
            Some(analysis) => {
                check_analysis(out, &format!("spec.{}", self.analysis_field()), analysis);
            }
            None if self.skip_analysis.unwrap_or(false) => {}
            None => out.error(
                "spec.analysis",
                "analysis is missing, so every new revision would be promoted unchecked",
                "add analysis (interval, threshold and stepWeight or iterations), or set skipAnalysis: true if that is intended",
            ),
        }
    }
}

fn check_reference(
    out: &mut Findings,
    key: &str,
    (api_version, kind, name): (Option<&str>, Option<&str>, Option<&str>),
    want_kind: &str,
    example_api_version: &str,
) {
    let field = format!("spec.{key}");
    if is_blank(name) {
        out.error(
            format!("{field}.name"),
            format!("{key}.name is missing"),
            format!("set {key}.name to the name of the {want_kind}"),
        );
    }
    if is_blank(api_version) {
        out.error(
            format!("{field}.apiVersion"),
            format!("{key}.apiVersion is missing"),
            format!("set {key}.apiVersion, e.g. {example_api_version}"),
        );
    }
    match kind {
        Some(k) if k == want_kind => {}
        None | Some("") => out.error(
            format!("{field}.kind"),
            format!("{key}.kind is missing"),
            format!("set {key}.kind to {want_kind}"),
        ),
        Some(k) => out.error(
            format!("{field}.kind"),
            format!("{key}.kind {k:?} is not {want_kind}"),
            format!("set {key}.kind to {want_kind}"),
        ),
    }
}

fn check_autoscaler(out: &mut Findings, scaler: &AutoscalerReference) {
    let f = "spec.autoscalerRef";
    if is_blank(scaler.name.as_deref()) {
        out.error(
            format!("{f}.name"),
            "autoscalerRef.name is missing",
            "set autoscalerRef.name to the name of the target's autoscaler",
        );
    }
    if is_blank(scaler.api_version.as_deref()) {
        out.error(
            format!("{f}.apiVersion"),
            "autoscalerRef.apiVersion is missing",
            "set autoscalerRef.apiVersion, e.g. autoscaling/v2 or keda.sh/v1alpha1",
        );
    }
    match scaler.kind.as_deref() {
        Some("HorizontalPodAutoscaler" | "ScaledObject") => {}
        None | Some("") => out.error(
            format!("{f}.kind"),
            "autoscalerRef.kind is missing",
            "set autoscalerRef.kind to HorizontalPodAutoscaler or ScaledObject",
        ),
        Some(kind) => out.error(
            format!("{f}.kind"),
            format!("autoscalerRef.kind {kind:?} is not an autoscaler Flagger supports"),
            "use HorizontalPodAutoscaler or ScaledObject",
        ),
    }
    if let Some(replicas) = &scaler.primary_scaler_replicas {
        let f = format!("{f}.primaryScalerReplicas");
        for (key, value) in [
            ("minReplicas", replicas.min_replicas),
            ("maxReplicas", replicas.max_replicas),
        ] {
            if let Some(v) = value
                && v < 1
            {
                out.error(
                    format!("{f}.{key}"),
                    format!("{key} {v} is below 1"),
                    format!("set {key} to at least 1"),
                );
            }
        }
        if let (Some(min), Some(max)) = (replicas.min_replicas, replicas.max_replicas)
            && min > max
        {
            out.error(
                format!("{f}.minReplicas"),
                format!("minReplicas {min} is greater than maxReplicas {max}"),
                "make minReplicas at most maxReplicas",
            );
        }
    }
}

fn check_service(out: &mut Findings, service: &CanaryService) {
    let f = "spec.service";
    match service.port {
        None => out.error(
            format!("{f}.port"),
            "service.port is missing",
            "set service.port, the ClusterIP port of the generated Services, e.g. 9898",
        ),
        Some(port) if !(1..=65535).contains(&port) => out.error(
            format!("{f}.port"),
            format!("service.port {port} is outside 1..65535"),
            "use a port number between 1 and 65535",
        ),
        Some(_) => {}
    }
    match &service.target_port {
        Some(IntOrString::Int(port)) if *port != 0 && !(1..=65535).contains(port) => out.error(
            format!("{f}.targetPort"),
            format!("service.targetPort {port} is outside 1..65535"),
            "use the container port number (1..65535) or its name",
        ),
        Some(IntOrString::String(name))
            if !name.is_empty() && name != "0" && !is_port_name(name) =>
        {
            let is_number = name.bytes().all(|b| b.is_ascii_digit());
            out.error(
                format!("{f}.targetPort"),
                format!("service.targetPort {name:?} is not a valid port name"),
                if is_number {
                    format!("write the port as a number without quotes: targetPort: {name}")
                } else {
                    "use the container port's name (lower case letters, digits and '-', at most 15 characters) or its number".to_string()
                },
            );
        }
        _ => {}
    }
    if let Some(td) = service.traffic_distribution.as_deref()
        && TrafficDistribution::parse(td).is_none()
    {
        out.error(
            format!("{f}.trafficDistribution"),
            format!("trafficDistribution {td:?} is not a Kubernetes traffic distribution"),
            format!("use one of {}", TrafficDistribution::list()),
        );
    }
    if let Some(refs) = service.gateway_refs.as_deref() {
        if refs.len() > 32 {
            out.error(
                format!("{f}.gatewayRefs"),
                format!(
                    "{} gatewayRefs are more than the 32 Gateway API allows",
                    refs.len()
                ),
                "attach the route to at most 32 gateways",
            );
        }
        for (i, r) in refs.iter().enumerate() {
            if is_blank(r.name.as_deref()) {
                out.error(
                    format!("{f}.gatewayRefs[{i}].name"),
                    format!("gatewayRefs[{i}].name is missing"),
                    "set the name of the Gateway",
                );
            }
        }
    }
    if let Some(mirrors) = service.mirror.as_deref() {
        for (i, m) in mirrors.iter().enumerate() {
            let mf = format!("{f}.mirror[{i}].backendRef");
            let Some(backend) = &m.backend_ref else {
                out.error(
                    mf,
                    format!("mirror[{i}].backendRef is missing"),
                    "add backendRef with the name and port of the Service to mirror to",
                );
                continue;
            };
            if is_blank(backend.name.as_deref()) {
                out.error(
                    format!("{mf}.name"),
                    format!("mirror[{i}].backendRef.name is missing"),
                    "set the name of the Service to mirror to",
                );
            }
            if backend.is_service() && backend.port.is_none() {
                out.error(
                    format!("{mf}.port"),
                    format!("mirror[{i}].backendRef names a Service but no port"),
                    "set backendRef.port; Gateway API requires a port for Service backends",
                );
            }
        }
    }
    if service.delegation.unwrap_or(false) {
        for (key, values) in [("hosts", &service.hosts), ("gateways", &service.gateways)] {
            if values.as_deref().is_some_and(|v| !v.is_empty()) {
                out.error(
                    format!("{f}.{key}"),
                    format!("service.{key} is set, but a delegate VirtualService has no {key}"),
                    format!("remove service.{key}, or turn off service.delegation"),
                );
            }
        }
    }
    if let Some(rewrite_type) = service.rewrite.as_ref().and_then(|r| r.r#type.as_deref())
        && !matches!(rewrite_type, "ReplaceFullPath" | "ReplacePrefixMatch")
    {
        out.warning(
            format!("{f}.rewrite.type"),
            format!("rewrite.type {rewrite_type:?} is not a rewrite type; it is treated as ReplaceFullPath"),
            "use ReplaceFullPath or ReplacePrefixMatch",
        );
    }
    for (i, m) in service
        .r#match
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        check_match(out, &format!("{f}.match[{i}]"), m, false);
    }
}

/// Flagger's CRD admits at most one of exact/prefix/suffix/regex per condition, and exactly
/// one in A/B header conditions.
fn check_string_match(out: &mut Findings, field: &str, m: &StringMatch, require_one: bool) {
    let set: Vec<&str> = [
        ("exact", &m.exact),
        ("prefix", &m.prefix),
        ("suffix", &m.suffix),
        ("regex", &m.regex),
    ]
    .iter()
    .filter(|(_, v)| v.is_some())
    .map(|(k, _)| *k)
    .collect();
    if set.len() > 1 {
        out.error(
            field,
            format!("the condition sets {} at once", set.join(" and ")),
            "keep only one of exact, prefix, suffix or regex",
        );
    } else if set.is_empty() && require_one {
        out.error(
            field,
            "the condition is empty",
            "set one of exact, prefix, suffix or regex",
        );
    }
}

/// HTTP methods an HTTPRoute match can name.
pub const GATEWAY_API_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// What an HTTPRoute match cannot express (the rules of the Gateway API router's
/// `map_route_matches`, which a test keeps in step): refused here rather than failing every
/// tick with "Invalid request matching selectors".
fn check_gateway_api_match(out: &mut Findings, provider: &str, field: &str, m: &HttpMatchRequest) {
    let set = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
    if let Some(uri) = &m.uri
        && !(set(&uri.regex) || set(&uri.exact) || set(&uri.prefix))
    {
        out.error(
            format!("{field}.uri"),
            format!("provider {provider:?} matches paths by exact, prefix or regex only"),
            "use uri.exact, uri.prefix or uri.regex",
        );
    }
    if let Some(method) = &m.method
        && !method
            .exact
            .as_deref()
            .is_some_and(|e| GATEWAY_API_METHODS.contains(&e))
    {
        out.error(
            format!("{field}.method"),
            format!("provider {provider:?} matches the method by exact name only"),
            format!(
                "use method.exact with one of {}",
                GATEWAY_API_METHODS.join(", ")
            ),
        );
    }
    for (key, map) in [("headers", &m.headers), ("queryParams", &m.query_params)] {
        for (name, sm) in map.iter().flatten() {
            if !(set(&sm.exact) || set(&sm.regex)) {
                out.error(
                    format!("{field}.{key}.{name}"),
                    format!("provider {provider:?} matches {key} by exact value or regex only"),
                    "use exact or regex (a prefix /^value/ or suffix /value$/ can be written as a regex)",
                );
            }
        }
    }
    if m.without_headers.as_ref().is_some_and(|w| !w.is_empty()) {
        out.warning(
            format!("{field}.withoutHeaders"),
            format!(
                "provider {provider:?} has no negative header match; withoutHeaders is ignored"
            ),
            "remove withoutHeaders, or express the condition positively",
        );
    }
}

fn check_match(out: &mut Findings, field: &str, m: &HttpMatchRequest, ab: bool) {
    for (key, value) in [
        ("uri", &m.uri),
        ("scheme", &m.scheme),
        ("method", &m.method),
        ("authority", &m.authority),
    ] {
        if let Some(sm) = value {
            check_string_match(out, &format!("{field}.{key}"), sm, false);
        }
    }
    for (key, map, require_one) in [
        ("headers", &m.headers, ab),
        ("queryParams", &m.query_params, false),
        ("withoutHeaders", &m.without_headers, false),
    ] {
        for (name, sm) in map.iter().flatten() {
            check_string_match(out, &format!("{field}.{key}.{name}"), sm, require_one);
        }
    }
}

fn check_analysis(out: &mut Findings, a: &str, analysis: &CanaryAnalysis) {
    match analysis.interval.as_deref() {
        None | Some("") => out.error(
            format!("{a}.interval"),
            "interval is missing",
            "set interval, how often the analysis runs, e.g. 1m",
        ),
        Some(value) => {
            if let Some(d) = check_interval(out, &format!("{a}.interval"), "interval", value)
                && d < MIN_ANALYSIS_INTERVAL
            {
                out.warning(
                    format!("{a}.interval"),
                    format!("interval {value:?} is shorter than 10s; the analysis runs every 10s"),
                    "use 10s or more",
                );
            }
        }
    }
    match analysis.threshold {
        None => out.error(
            format!("{a}.threshold"),
            "threshold is missing",
            "set threshold, the number of failed checks before rollback, e.g. 5",
        ),
        Some(t) if t < 0 => out.error(
            format!("{a}.threshold"),
            format!("threshold {t} is negative"),
            "use the number of failed checks tolerated before rollback, e.g. 5",
        ),
        Some(0) => out.warning(
            format!("{a}.threshold"),
            "threshold 0 is read as 1: the first failed check rolls back",
            "set threshold to 1 or more",
        ),
        Some(_) => {}
    }

    let modes: Vec<&str> = [
        ("iterations", analysis.iterations.is_some()),
        ("stepWeight", analysis.step_weight.is_some()),
        ("stepWeights", analysis.step_weights.is_some()),
    ]
    .iter()
    .filter(|(_, set)| *set)
    .map(|(k, _)| *k)
    .collect();
    match modes.as_slice() {
        [] => out.error(
            a,
            "analysis sets none of iterations, stepWeight or stepWeights",
            "set stepWeight (progressive canary), stepWeights (explicit ladder) or iterations (blue/green; A/B with match)",
        ),
        [_] => {}
        several => out.error(
            a,
            format!("analysis sets {} together; Flagger's CRD accepts exactly one", several.join(" and ")),
            "keep only one of iterations, stepWeight or stepWeights",
        ),
    }

    if let Some(n) = analysis.iterations {
        if n < 0 {
            out.error(
                format!("{a}.iterations"),
                format!("iterations {n} is negative"),
                "set the number of checks to run, e.g. 10",
            );
        } else if n == 0 {
            out.error(
                format!("{a}.iterations"),
                "iterations 0 runs no checks",
                "set the number of checks to run, e.g. 10",
            );
        }
    }
    let step_weight_ok = match analysis.step_weight {
        Some(step) if !(1..=100).contains(&step) => {
            out.error(
                format!("{a}.stepWeight"),
                format!("stepWeight {step} is outside 1..100"),
                "use a weight increment between 1 and 100, e.g. 10",
            );
            false
        }
        Some(_) => true,
        None => false,
    };
    if let Some(steps) = analysis.step_weights.as_deref() {
        if steps.is_empty() {
            out.error(
                format!("{a}.stepWeights"),
                "stepWeights is empty",
                "list increasing weights, e.g. [5, 10, 20, 50]",
            );
        }
        for (i, &w) in steps.iter().enumerate() {
            let field = format!("{a}.stepWeights[{i}]");
            if !(1..=100).contains(&w) {
                out.error(
                    field,
                    format!("stepWeights[{i}] is {w}, outside 1..100"),
                    "use weights between 1 and 100; the last one is the max weight",
                );
            } else if i > 0 && w <= steps[i - 1] {
                out.error(
                    field,
                    format!(
                        "stepWeights[{i}] is {w}, not greater than stepWeights[{}] ({})",
                        i - 1,
                        steps[i - 1]
                    ),
                    "list the weights in increasing order, e.g. [5, 10, 20, 50]",
                );
            }
        }
    }
    if let Some(max) = analysis.max_weight {
        if !(1..=100).contains(&max) {
            out.error(
                format!("{a}.maxWeight"),
                format!("maxWeight {max} is outside 1..100"),
                "use the weight at which promotion starts, between 1 and 100, e.g. 50",
            );
        } else if let Some(step) = analysis.step_weight.filter(|_| step_weight_ok)
            && max < step
        {
            out.error(
                format!("{a}.maxWeight"),
                format!("maxWeight {max} is below stepWeight {step}"),
                format!("raise maxWeight to at least {step}, or lower stepWeight"),
            );
        }
        if let Some(&last) = analysis.step_weights.as_deref().and_then(<[i32]>::last) {
            out.warning(
                format!("{a}.maxWeight"),
                format!("maxWeight {max} is ignored because stepWeights is set; its last weight ({last}) is the max weight"),
                "remove maxWeight",
            );
        }
    }
    check_percent(
        out,
        &format!("{a}.stepWeightPromotion"),
        "stepWeightPromotion",
        analysis.step_weight_promotion,
        0,
    );
    check_percent(
        out,
        &format!("{a}.mirrorWeight"),
        "mirrorWeight",
        analysis.mirror_weight,
        0,
    );
    check_percent(
        out,
        &format!("{a}.primaryReadyThreshold"),
        "primaryReadyThreshold",
        analysis.primary_ready_threshold,
        0,
    );
    check_percent(
        out,
        &format!("{a}.canaryReadyThreshold"),
        "canaryReadyThreshold",
        analysis.canary_ready_threshold,
        0,
    );

    if !analysis.matches().is_empty() && analysis.iterations() == 0 {
        out.error(
            format!("{a}.match"),
            "match conditions are set but iterations is not, so this is no A/B test and the conditions are ignored",
            "set iterations (the number of A/B checks, e.g. 10) instead of stepWeight/stepWeights",
        );
    }
    for (i, m) in analysis.matches().iter().enumerate() {
        check_match(out, &format!("{a}.match[{i}]"), m, true);
    }
    for (i, metric) in analysis.metrics().iter().enumerate() {
        check_metric(out, &format!("{a}.metrics[{i}]"), metric);
    }
    for (i, hook) in analysis.webhooks().iter().enumerate() {
        check_webhook(out, &format!("{a}.webhooks[{i}]"), hook);
    }
    for (i, alert) in analysis.alerts().iter().enumerate() {
        check_alert(out, &format!("{a}.alerts[{i}]"), alert);
    }
    if let Some(sa) = &analysis.session_affinity {
        check_session_affinity(out, &format!("{a}.sessionAffinity"), sa);
    }
}

fn check_metric(out: &mut Findings, f: &str, metric: &CanaryMetric) {
    let name = metric.name();
    if is_blank(metric.name.as_deref()) {
        out.error(
            format!("{f}.name"),
            "metric name is missing",
            "name the metric, e.g. request-success-rate or the name of its MetricTemplate",
        );
    }
    if let Some(interval) = metric.interval.as_deref() {
        check_interval(out, &format!("{f}.interval"), "interval", interval);
    }
    let has_query = !is_blank(metric.query.as_deref());
    match &metric.template_ref {
        Some(r) => {
            if is_blank(r.name.as_deref()) {
                out.error(
                    format!("{f}.templateRef.name"),
                    "templateRef.name is missing",
                    "set templateRef.name to the name of a MetricTemplate",
                );
            }
            if is_blank(metric.interval.as_deref()) {
                out.warning(
                    format!("{f}.interval"),
                    format!("metric {name:?} uses a template but has no interval; {{{{ interval }}}} renders empty"),
                    "set interval, the query window, e.g. 1m",
                );
            }
        }
        None if !metric.is_builtin() && !has_query && !is_blank(metric.name.as_deref()) => out.error(
            f,
            format!(
                "metric {name:?} has nothing to evaluate: it is not builtin ({}) and has neither templateRef nor query",
                BUILTIN_METRICS.join(", ")
            ),
            "add templateRef naming a MetricTemplate, or use a builtin metric name",
        ),
        None => {}
    }
    match &metric.threshold_range {
        Some(range) => {
            if let (Some(min), Some(max)) = (range.min(), range.max())
                && min > max
            {
                out.error(
                    format!("{f}.thresholdRange"),
                    format!(
                        "thresholdRange min {min} is greater than max {max}, so every check fails"
                    ),
                    "make min at most max",
                );
            }
        }
        None if metric.threshold.is_none() => out.warning(
            f,
            format!("metric {name:?} has no thresholdRange, so it can never fail"),
            "add thresholdRange with min and/or max",
        ),
        None => {}
    }
}

fn check_webhook(out: &mut Findings, f: &str, hook: &CanaryWebhook) {
    if is_blank(hook.name.as_deref()) {
        out.error(
            format!("{f}.name"),
            "webhook name is missing",
            "name the webhook, e.g. load-test",
        );
    }
    match hook.url.as_deref() {
        None | Some("") => out.error(
            format!("{f}.url"),
            "webhook url is missing",
            "set url, e.g. http://flagger-loadtester.test/",
        ),
        Some(url) => check_http_url(
            out,
            &format!("{f}.url"),
            "url",
            url,
            "http://flagger-loadtester.test/",
        ),
    }
    if hook.hook_type().is_none() {
        let t = hook.r#type.as_deref().unwrap_or_default();
        out.error(
            format!("{f}.type"),
            format!("type {t:?} is not a webhook type"),
            format!(
                "use one of {}, or leave it empty for rollout",
                HookType::list()
            ),
        );
    }
    if let Some(timeout) = hook.timeout.as_deref() {
        check_interval(out, &format!("{f}.timeout"), "timeout", timeout);
    }
    if let Some(r) = hook.retries
        && r < 0
    {
        out.error(
            format!("{f}.retries"),
            format!("retries {r} is negative"),
            "use 0 or more retries",
        );
    }
}

fn check_alert(out: &mut Findings, f: &str, alert: &CanaryAlert) {
    if is_blank(alert.name.as_deref()) {
        out.error(
            format!("{f}.name"),
            "alert name is missing",
            "name the alert, e.g. on-call",
        );
    }
    match &alert.provider_ref {
        None => out.error(
            format!("{f}.providerRef"),
            "providerRef is missing",
            "add providerRef with the name of an AlertProvider",
        ),
        Some(r) if is_blank(r.name.as_deref()) => out.error(
            format!("{f}.providerRef.name"),
            "providerRef.name is missing",
            "set providerRef.name to the name of an AlertProvider",
        ),
        Some(_) => {}
    }
    if let Some(severity) = alert.severity.as_deref()
        && !severity.is_empty()
        && AlertSeverity::parse(severity).is_none()
    {
        out.error(
            format!("{f}.severity"),
            format!("severity {severity:?} is not {}", AlertSeverity::list()),
            "use info, warn or error (or leave it empty)",
        );
    }
}

fn check_session_affinity(out: &mut Findings, f: &str, sa: &SessionAffinity) {
    let cookie = sa.cookie_name();
    if cookie.is_empty() {
        out.error(
            format!("{f}.cookieName"),
            "cookieName is missing",
            "set cookieName, the cookie that keeps users on the canary, e.g. flagger-cookie",
        );
    } else if !is_cookie_token(cookie) {
        out.error(
            format!("{f}.cookieName"),
            format!("cookieName {cookie:?} is not a valid cookie name"),
            "use visible ASCII without spaces or ()<>@,;:\\\"/[]?={}, e.g. flagger-cookie",
        );
    }
    if let Some(primary) = sa.primary_cookie_name.as_deref().filter(|p| !p.is_empty()) {
        if !is_cookie_token(primary) {
            out.error(
                format!("{f}.primaryCookieName"),
                format!("primaryCookieName {primary:?} is not a valid cookie name"),
                "use visible ASCII without spaces or ()<>@,;:\\\"/[]?={}, e.g. flagger-primary-cookie",
            );
        } else if primary == cookie {
            out.error(
                format!("{f}.primaryCookieName"),
                format!("primaryCookieName {primary:?} is the same as cookieName"),
                format!("use a different cookie for the primary, e.g. {cookie}-primary"),
            );
        }
    }
    if let Some(same_site) = sa.same_site.as_deref()
        && SameSite::parse(same_site).is_none()
    {
        out.error(
            format!("{f}.sameSite"),
            format!("sameSite {same_site:?} is not {}", SameSite::list()),
            "use Strict, Lax or None",
        );
    }
    if let Some(age) = sa.max_age
        && age < 0
    {
        out.error(
            format!("{f}.maxAge"),
            format!("maxAge {age} expires the cookie at once"),
            "use a lifetime in seconds, e.g. 86400 (the default when unset)",
        );
    }
}

impl MetricTemplate {
    /// Single-object problems of this MetricTemplate.
    pub fn validate(&self) -> Vec<Finding> {
        self.spec.validate()
    }
}

impl MetricTemplateSpec {
    /// Single-object problems of this spec; field paths start at `spec.`.
    pub fn validate(&self) -> Vec<Finding> {
        let mut out = Findings::default();
        match &self.provider {
            None => out.error(
                "spec.provider",
                "provider is missing",
                "add provider with type (e.g. prometheus) and address",
            ),
            Some(provider) => {
                let parsed = match provider.r#type.as_deref() {
                    None | Some("") => {
                        out.error(
                            "spec.provider.type",
                            "provider.type is missing",
                            format!("set provider.type to one of {}", MetricProviderType::list()),
                        );
                        None
                    }
                    Some(t) => {
                        let parsed = MetricProviderType::parse(t);
                        if parsed.is_some_and(|p| p != MetricProviderType::Prometheus) {
                            out.warning(
                                "spec.provider.type",
                                format!("provider.type {t:?} is not yet supported by Serin: every check that uses this template fails, and its canaries roll back"),
                                "query the metric through Prometheus (provider.type prometheus) until Serin supports this provider",
                            );
                        }
                        if parsed.is_none() {
                            out.warning(
                                "spec.provider.type",
                                format!("provider.type {t:?} is not a provider Flagger knows; Serin cannot query it, so every check that uses this template fails"),
                                format!(
                                    "use one of {} (Flagger's CRD, and Serin's, only admit these)",
                                    MetricProviderType::list()
                                ),
                            );
                        }
                        parsed
                    }
                };
                let kind = parsed.unwrap_or(MetricProviderType::Prometheus);
                match provider.address.as_deref() {
                    None | Some("") if kind.requires_address() => out.error(
                        "spec.provider.address",
                        format!("provider.address is missing; {kind} has no default address"),
                        "set provider.address, e.g. http://prometheus.istio-system:9090",
                    ),
                    None | Some("") => {}
                    Some(address) => check_http_url(
                        &mut out,
                        "spec.provider.address",
                        "provider.address",
                        address,
                        "http://prometheus.istio-system:9090",
                    ),
                }
                if kind == MetricProviderType::CloudWatch && is_blank(provider.region.as_deref()) {
                    out.error(
                        "spec.provider.region",
                        "provider.region is missing; cloudwatch needs it",
                        "set provider.region, e.g. us-east-1",
                    );
                }
                if let Some(secret) = &provider.secret_ref
                    && is_blank(secret.name.as_deref())
                {
                    out.error(
                        "spec.provider.secretRef.name",
                        "provider.secretRef.name is missing",
                        "set the name of the Secret with the provider credentials",
                    );
                }
            }
        }
        if is_blank(self.query.as_deref()) {
            out.error(
                "spec.query",
                "query is missing",
                "set query, the provider query; it may use {{ namespace }}, {{ target }}, {{ interval }} and {{ variables.<key> }}",
            );
        }
        out.0
    }
}

impl AlertProvider {
    /// Single-object problems of this AlertProvider.
    pub fn validate(&self) -> Vec<Finding> {
        self.spec.validate()
    }
}

impl AlertProviderSpec {
    /// Single-object problems of this spec; field paths start at `spec.`.
    pub fn validate(&self) -> Vec<Finding> {
        let mut out = Findings::default();
        match self.r#type.as_deref() {
            None | Some("") => out.error(
                "spec.type",
                "type is missing",
                format!("set type to one of {}", AlertProviderType::list()),
            ),
            Some(t) if AlertProviderType::parse(t).is_none() => out.error(
                "spec.type",
                format!("type {t:?} is not an alert provider type"),
                format!("use one of {}", AlertProviderType::list()),
            ),
            Some(_) => {}
        }
        let address = self.address.as_deref().filter(|a| !a.is_empty());
        match (&self.secret_ref, address) {
            (None, None) => out.error(
                "spec.address",
                "the AlertProvider has neither address nor secretRef, so there is nowhere to send alerts",
                "set address to the webhook URL, or secretRef to a Secret whose address key holds it",
            ),
            (Some(_), Some(_)) => out.warning(
                "spec.address",
                "address is ignored because secretRef is set (the Secret's address key wins); Flagger's CRD even rejects both",
                "remove address, or remove secretRef",
            ),
            _ => {}
        }
        if let Some(a) = address {
            check_http_url(
                &mut out,
                "spec.address",
                "address",
                a,
                "https://hooks.slack.com/services/T0/B0/XXXX",
            );
        }
        if let Some(proxy) = self.proxy.as_deref().filter(|p| !p.is_empty()) {
            check_http_url(
                &mut out,
                "spec.proxy",
                "proxy",
                proxy,
                "http://proxy.example.com:3128",
            );
        }
        if let Some(secret) = &self.secret_ref
            && is_blank(secret.name.as_deref())
        {
            out.error(
                "spec.secretRef.name",
                "secretRef.name is missing",
                "set the name of the Secret with the address (and optional token) keys",
            );
        }
        out.0
    }
}
