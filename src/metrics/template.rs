//! MetricTemplate queries: the subset of Go's text/template that Flagger templates use.
//!
//! Flagger renders a query with Go templates in `missingkey=error` mode and exposes its values
//! as functions: `{{ name }}`, `{{ namespace }}`, `{{ target }}`, `{{ service }}`,
//! `{{ ingress }}`, `{{ route }}`, `{{ interval }}` and `{{ variables.<key> }}`, with the trim
//! markers `{{-` / `-}}` and comments `{{/* ... */}}`. Anything else is an error that names the
//! action and what is available, instead of a silently wrong query.

use std::collections::BTreeMap;

/// The values a template can use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateContext {
    pub name: String,
    pub namespace: String,
    pub target: String,
    pub service: String,
    pub ingress: String,
    pub route: String,
    /// The metric's interval as written (e.g. "1m"); Flagger renders "" when it is unset.
    pub interval: String,
    pub variables: BTreeMap<String, String>,
}

impl TemplateContext {
    /// Flagger's template model (§5.3) for `canary`; `interval` and `variables` are per metric.
    pub fn for_canary(canary: &crate::api::Canary) -> TemplateContext {
        let spec = &canary.spec;
        let target = spec.target_name().to_string();
        let or_target =
            |r: Option<&str>| r.filter(|s| !s.is_empty()).unwrap_or(&target).to_string();
        TemplateContext {
            name: canary.metadata.name.clone().unwrap_or_default(),
            namespace: canary.metadata.namespace.clone().unwrap_or_default(),
            service: spec.apex_service_name().to_string(),
            ingress: or_target(spec.ingress_ref.as_ref().map(|r| r.name())),
            route: or_target(spec.route_ref.as_ref().map(|r| r.name())),
            target,
            interval: String::new(),
            variables: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template parsing failed: unclosed action starting at byte {0}")]
    Unclosed(usize),
    #[error(
        "template uses {{{{ {0} }}}}, which is not defined; use name, namespace, target, service, \
         ingress, route, interval or variables.<key>"
    )]
    Unknown(String),
    #[error("template uses variables.{0}, which templateVariables does not define")]
    MissingVariable(String),
}

/// Renders `template` with `ctx`.
pub fn render(template: &str, ctx: &TemplateContext) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    let mut offset = 0;
    while let Some(start) = rest.find("{{") {
        let mut literal = &rest[..start];
        let after_open = &rest[start + 2..];
        let trim_left = after_open.starts_with('-')
            && after_open[1..].starts_with(|c: char| c.is_ascii_whitespace());
        if trim_left {
            literal = literal.trim_end();
        }
        out.push_str(literal);
        let Some(end) = after_open.find("}}") else {
            return Err(TemplateError::Unclosed(offset + start));
        };
        let mut action = &after_open[..end];
        if trim_left {
            action = &action[1..];
        }
        let trim_right = action.ends_with('-')
            && action[..action.len() - 1].ends_with(|c: char| c.is_ascii_whitespace());
        if trim_right {
            action = &action[..action.len() - 1];
        }
        out.push_str(&evaluate(action.trim(), ctx)?);
        let consumed = start + 2 + end + 2;
        rest = &rest[consumed..];
        offset += consumed;
        if trim_right {
            let trimmed = rest.trim_start();
            offset += rest.len() - trimmed.len();
            rest = trimmed;
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn evaluate(action: &str, ctx: &TemplateContext) -> Result<String, TemplateError> {
    if action.starts_with("/*") && action.ends_with("*/") {
        return Ok(String::new());
    }
    // Go also accepts `.name`-less function calls written with parentheses: `{{ (namespace) }}`.
    let action = action
        .strip_prefix('(')
        .and_then(|a| a.strip_suffix(')'))
        .map_or(action, str::trim);
    let value = match action {
        "name" => &ctx.name,
        "namespace" => &ctx.namespace,
        "target" => &ctx.target,
        "service" => &ctx.service,
        "ingress" => &ctx.ingress,
        "route" => &ctx.route,
        "interval" => &ctx.interval,
        other => {
            if let Some(key) = other.strip_prefix("variables.") {
                return ctx
                    .variables
                    .get(key)
                    .cloned()
                    .ok_or_else(|| TemplateError::MissingVariable(key.to_string()));
            }
            return Err(TemplateError::Unknown(other.to_string()));
        }
    };
    Ok(value.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> TemplateContext {
        TemplateContext {
            name: "podinfo".into(),
            namespace: "test".into(),
            target: "podinfo".into(),
            service: "podinfo-svc".into(),
            ingress: "podinfo-ing".into(),
            route: "podinfo-route".into(),
            interval: "1m".into(),
            variables: [("ingress".to_string(), "public".to_string())].into(),
        }
    }

    #[test]
    fn renders_every_value() {
        let cases = [
            ("{{ name }}", "podinfo"),
            ("{{namespace}}", "test"),
            (
                "{{ target }}-{{ service }}-{{ ingress }}-{{ route }}",
                "podinfo-podinfo-svc-podinfo-ing-podinfo-route",
            ),
            ("[{{ interval }}]", "[1m]"),
            ("{{ variables.ingress }}", "public"),
            ("a {{- name }}", "apodinfo"),
            ("{{ name -}}   \n b", "podinfob"),
            ("x {{- /* note */ -}} y", "xy"),
            ("{{ (namespace) }}", "test"),
            ("no actions", "no actions"),
            ("{{-name}}", ""),
        ];
        for (template, want) in cases {
            match render(template, &ctx()) {
                Ok(got) => assert_eq!(got, want, "{template}"),
                Err(e) => assert_eq!(want, "", "{template}: {e}"),
            }
        }
    }

    #[test]
    fn the_istio_error_rate_template_of_the_seed_renders() {
        let template = r#"100 - sum(
    rate(
        istio_requests_total{
          reporter="source",
          destination_workload_namespace=~"{{ namespace }}",
          destination_workload=~"{{ target }}",
          response_code!~"5.*"
        }[{{ interval }}]
    )
)"#;
        let got = render(template, &ctx()).expect("renders");
        assert!(
            got.contains(r#"destination_workload_namespace=~"test""#),
            "{got}"
        );
        assert!(got.contains("}[1m]"), "{got}");
    }

    #[test]
    fn errors_name_the_action() {
        assert_eq!(
            render("{{ namespce }}", &ctx())
                .expect_err("unknown")
                .to_string(),
            "template uses {{ namespce }}, which is not defined; use name, namespace, target, \
             service, ingress, route, interval or variables.<key>"
        );
        assert_eq!(
            render("{{ variables.missing }}", &ctx())
                .expect_err("missing")
                .to_string(),
            "template uses variables.missing, which templateVariables does not define"
        );
        assert_eq!(
            render("abc {{ name ", &ctx()).expect_err("unclosed"),
            TemplateError::Unclosed(4)
        );
    }

    #[test]
    fn an_unset_interval_renders_empty_as_in_flagger() {
        let mut c = ctx();
        c.interval.clear();
        assert_eq!(render("[{{ interval }}]", &c).expect("renders"), "[]");
    }
}
