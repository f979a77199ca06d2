//! What a Canary asks for that Istio's VirtualService (as Flagger builds it) cannot express.
//!
//! Istio expresses nearly everything Flagger's Canary can say, so the list is short: string
//! conditions Istio's `StringMatch` has no form for, a delegate VirtualService with hosts or
//! gateways (Flagger's one error), A/B conditions that contradict `service.match` in the one
//! match request they are ANDed into, request-level features on TCP routes, and load
//! balancer settings the DestinationRule schema rejects.

use std::collections::BTreeMap;

use crate::api::{self, Canary, CanaryService, LoadBalancerSettings};
use crate::router::{Inexpressible, RouterError, canary_namespace, refuse};

use super::build::is_tcp;

/// The provider value these texts name.
pub const PROVIDER: &str = "istio";

fn problem(field: String, problem: &str, fix: &str) -> Inexpressible {
    Inexpressible {
        field,
        problem: format!("provider {PROVIDER:?} {problem}"),
        fix: fix.to_string(),
    }
}

fn set(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

/// A string condition. `required`: uri, scheme, method, authority and CORS origins need a
/// value; an empty header or query parameter condition means "present", which Istio has.
fn check_string_match(
    field: &str,
    m: &api::StringMatch,
    required: bool,
    out: &mut Vec<Inexpressible>,
) {
    if let Some(suffix) = set(&m.suffix) {
        out.push(problem(
            format!("{field}.suffix"),
            "matches strings by exact value, prefix or regex; Istio has no suffix match",
            &format!(
                "write it as a regex: regex: \".*{}$\"",
                regex_escape(suffix)
            ),
        ));
    }
    let kinds = [set(&m.exact), set(&m.prefix), set(&m.regex)]
        .iter()
        .filter(|v| v.is_some())
        .count();
    if kinds > 1 {
        out.push(problem(
            field.to_string(),
            "takes exactly one of exact, prefix and regex in a condition",
            "keep one of them (a regex can say what the others say)",
        ));
    } else if kinds == 0 && required && set(&m.suffix).is_none() {
        out.push(problem(
            field.to_string(),
            "needs exact, prefix or regex here; an empty condition would match every request",
            "set exact, prefix or regex, or remove the condition",
        ));
    }
}

fn regex_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn check_request(field: &str, m: &api::HttpMatchRequest, out: &mut Vec<Inexpressible>) {
    let single = [
        ("uri", &m.uri),
        ("scheme", &m.scheme),
        ("method", &m.method),
        ("authority", &m.authority),
    ];
    for (key, value) in single {
        if let Some(value) = value {
            check_string_match(&format!("{field}.{key}"), value, true, out);
        }
    }
    let maps = [
        ("headers", &m.headers),
        ("queryParams", &m.query_params),
        ("withoutHeaders", &m.without_headers),
    ];
    for (key, map) in maps {
        for (name, value) in map.iter().flatten() {
            check_string_match(&format!("{field}.{key}.{name}"), value, false, out);
        }
    }
}

/// Conditions an A/B request and a `service.match` request both set, differently: ANDed into
/// one Istio match request, one would overwrite the other.
fn contradictions(a: &api::HttpMatchRequest, s: &api::HttpMatchRequest) -> Vec<String> {
    let mut keys = Vec::new();
    let single = [
        ("uri", &a.uri, &s.uri),
        ("scheme", &a.scheme, &s.scheme),
        ("method", &a.method, &s.method),
        ("authority", &a.authority, &s.authority),
    ];
    for (key, a, s) in single {
        if let (Some(a), Some(s)) = (a, s)
            && super::build::string_match(a) != super::build::string_match(s)
        {
            keys.push(key.to_string());
        }
    }
    if let (Some(a), Some(s)) = (a.port.filter(|p| *p != 0), s.port.filter(|p| *p != 0))
        && a != s
    {
        keys.push("port".into());
    }
    if let (Some(a), Some(s)) = (set(&a.source_namespace), set(&s.source_namespace))
        && a != s
    {
        keys.push("sourceNamespace".into());
    }
    if let (Some(ag), Some(sg)) = (&a.gateways, &s.gateways)
        && !ag.is_empty()
        && !sg.is_empty()
        && ag != sg
    {
        keys.push("gateways".into());
    }
    let maps = [
        ("headers", &a.headers, &s.headers),
        ("queryParams", &a.query_params, &s.query_params),
        ("withoutHeaders", &a.without_headers, &s.without_headers),
    ];
    for (key, a, s) in maps {
        for (name, value) in a.iter().flatten() {
            let other = s.as_ref().and_then(|s| s.get(name));
            if other
                .is_some_and(|o| super::build::string_match(o) != super::build::string_match(value))
            {
                keys.push(format!("{key}.{name}"));
            }
        }
    }
    let labels = |m: &Option<BTreeMap<String, String>>| m.clone().unwrap_or_default();
    let (al, sl) = (labels(&a.source_labels), labels(&s.source_labels));
    for (name, value) in &al {
        if sl.get(name).is_some_and(|o| o != value) {
            keys.push(format!("sourceLabels.{name}"));
        }
    }
    keys
}

fn check_load_balancer(field: &str, lb: &LoadBalancerSettings, out: &mut Vec<Inexpressible>) {
    let Some(hash) = &lb.consistent_hash else {
        return;
    };
    if lb.simple.is_some() {
        out.push(problem(
            field.to_string(),
            "takes either simple or consistentHash in a DestinationRule load balancer, not both",
            "remove one of them",
        ));
    }
    let keys = [
        hash.http_header_name.is_some(),
        hash.http_cookie.is_some(),
        hash.use_source_ip.is_some(),
        hash.http_query_parameter_name.is_some(),
    ];
    if keys.iter().filter(|k| **k).count() > 1 {
        out.push(problem(
            format!("{field}.consistentHash"),
            "hashes on one key: httpHeaderName, httpCookie, useSourceIp or \
             httpQueryParameterName",
            "keep one of them",
        ));
    }
    if let Some(cookie) = &hash.http_cookie
        && set(&cookie.name).is_none()
    {
        out.push(problem(
            format!("{field}.consistentHash.httpCookie.name"),
            "needs the name of the cookie a consistent hash is based on",
            "set httpCookie.name",
        ));
    }
}

fn check_tcp(service: &CanaryService, canary: &Canary, out: &mut Vec<Inexpressible>) {
    const WHY: &str = "routes TCP (appProtocol: tcp) by port only";
    for (i, m) in service.r#match.iter().flatten().enumerate() {
        let field = format!("spec.service.match[{i}]");
        let non_empty_map = |m: &Option<BTreeMap<String, api::StringMatch>>| {
            m.as_ref().is_some_and(|m| !m.is_empty())
        };
        let dropped = [
            ("uri", m.uri.is_some()),
            ("scheme", m.scheme.is_some()),
            ("method", m.method.is_some()),
            ("authority", m.authority.is_some()),
            ("headers", non_empty_map(&m.headers)),
            ("queryParams", non_empty_map(&m.query_params)),
            ("withoutHeaders", non_empty_map(&m.without_headers)),
            ("ignoreUriCase", m.ignore_uri_case.unwrap_or(false)),
            (
                "sourceLabels",
                m.source_labels.as_ref().is_some_and(|l| !l.is_empty()),
            ),
            ("sourceNamespace", set(&m.source_namespace).is_some()),
            (
                "gateways",
                m.gateways.as_ref().is_some_and(|g| !g.is_empty()),
            ),
        ];
        for (key, is_set) in dropped {
            if is_set {
                out.push(problem(
                    format!("{field}.{key}"),
                    &format!("{WHY}; {key} would be ignored"),
                    &format!("remove {key}, or serve the port as HTTP (appProtocol: http)"),
                ));
            }
        }
    }
    let Some(analysis) = canary.analysis() else {
        return;
    };
    let base = format!("spec.{}", canary.spec.analysis_field());
    if !analysis.matches().is_empty() {
        out.push(problem(
            format!("{base}.match"),
            &format!(
                "{WHY}; A/B conditions would be ignored and every connection would go to the \
                 canary"
            ),
            "use a weighted canary (stepWeight) or blue/green, or serve HTTP",
        ));
    }
    if analysis.session_affinity.is_some() {
        out.push(problem(
            format!("{base}.sessionAffinity"),
            "cannot set cookies on TCP routes (appProtocol: tcp)",
            "remove sessionAffinity, or serve HTTP",
        ));
    }
    if analysis.mirror() {
        out.push(problem(
            format!("{base}.mirror"),
            "cannot mirror TCP routes (appProtocol: tcp)",
            "remove mirror, or serve HTTP",
        ));
    }
}

/// Everything in the Canary Istio cannot express. The routers refuse the same input at run
/// time (see [`refuse_inexpressible`]).
pub fn inexpressible(canary: &Canary) -> Vec<Inexpressible> {
    let mut out = Vec::new();
    let Some(service) = canary.spec.service.as_ref() else {
        return out;
    };
    if service.delegation.unwrap_or(false) {
        for (key, list) in [("hosts", &service.hosts), ("gateways", &service.gateways)] {
            if list.as_ref().is_some_and(|l| !l.is_empty()) {
                out.push(problem(
                    format!("spec.service.{key}"),
                    "generates a delegate VirtualService (delegation: true), which cannot have \
                     hosts or gateways",
                    "remove hosts and gateways; set them on the root VirtualService that \
                     delegates to this one",
                ));
            }
        }
    }
    let service_matches = service.r#match.as_deref().unwrap_or_default();
    for (i, m) in service_matches.iter().enumerate() {
        check_request(&format!("spec.service.match[{i}]"), m, &mut out);
    }
    if let Some(cors) = &service.cors_policy {
        for (i, origin) in cors.allow_origins.iter().flatten().enumerate() {
            check_string_match(
                &format!("spec.service.corsPolicy.allowOrigins[{i}]"),
                origin,
                true,
                &mut out,
            );
        }
    }
    if let Some(policy) = &service.traffic_policy {
        if let Some(lb) = &policy.load_balancer {
            check_load_balancer("spec.service.trafficPolicy.loadBalancer", lb, &mut out);
        }
        for (i, port) in policy.port_level_settings.iter().flatten().enumerate() {
            if let Some(lb) = &port.load_balancer {
                check_load_balancer(
                    &format!("spec.service.trafficPolicy.portLevelSettings[{i}].loadBalancer"),
                    lb,
                    &mut out,
                );
            }
        }
    }
    if is_tcp(service) {
        check_tcp(service, canary, &mut out);
        return out;
    }
    let Some(analysis) = canary.analysis() else {
        return out;
    };
    let base = format!("spec.{}", canary.spec.analysis_field());
    for (i, a) in analysis.matches().iter().enumerate() {
        let field = format!("{base}.match[{i}]");
        check_request(&field, a, &mut out);
        for (j, s) in service_matches.iter().enumerate() {
            for key in contradictions(a, s) {
                out.push(problem(
                    format!("{field}.{key}"),
                    &format!(
                        "ANDs each A/B condition with each service.match request in one Istio \
                         match; {key} contradicts spec.service.match[{j}].{key}"
                    ),
                    "make them agree, or drop the condition from one side",
                ));
            }
        }
    }
    out
}

/// The run-time side of [`inexpressible`]: the first problem as an error. A delegate
/// VirtualService with hosts or gateways gets Flagger's text.
pub fn refuse_inexpressible(canary: &Canary) -> Result<(), RouterError> {
    let problems = inexpressible(canary);
    let Some(first) = problems.first() else {
        return Ok(());
    };
    let delegation = canary
        .spec
        .service
        .as_ref()
        .is_some_and(|s| s.delegation.unwrap_or(false));
    if delegation && (first.field == "spec.service.hosts" || first.field == "spec.service.gateways")
    {
        return Err(RouterError::Refused(format!(
            "VirtualService {}.{} cannot have hosts and gateways when delegation enabled",
            canary.spec.apex_service_name(),
            canary_namespace(canary)?
        )));
    }
    refuse(canary, "a VirtualService", &problems)
}

/// What Istio's router ignores, for `serin validate` as warnings: with A/B matches, the match
/// routes replace the session-affinity routes (Flagger's `SetRoutes`), so no cookie is issued.
pub fn ignored_fields(canary: &Canary) -> Vec<Inexpressible> {
    let Some(analysis) = canary.analysis() else {
        return Vec::new();
    };
    if analysis.matches().is_empty() || analysis.session_affinity.is_none() {
        return Vec::new();
    }
    vec![problem(
        format!("spec.{}.sessionAffinity", canary.spec.analysis_field()),
        "routes A/B tests by match only; with match set, sessionAffinity is ignored",
        "remove sessionAffinity (the A/B match already keeps a user on one version), or remove \
         match",
    )]
}
