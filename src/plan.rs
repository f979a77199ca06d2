//! `serin plan`: what merging a change will roll out, and why — fit for a pull-request comment.
//!
//! Pure: two catalogs (the base and the head of the change) in, a plan out. A rollout starts
//! when a canary's revision differs between base and head (Flagger: only the target's pod
//! template and its configs start an analysis; editing the Canary alone does not).

use std::time::Duration;

use serde::Serialize;

use crate::api::{CanaryAnalysis, DeploymentStrategy, HookType, MetricTemplate};
use crate::catalog::{CanaryEntry, Catalog, Problem};
use crate::metrics::builtin::{self, Observer};
use crate::metrics::template::{TemplateContext, render};
use crate::revision;

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub base: String,
    pub head: String,
    pub canaries: Vec<CanaryPlan>,
    /// Canaries in the base that the head no longer has.
    pub removed: Vec<String>,
    /// Problems of the head: errors block the merge.
    pub problems: Vec<Problem>,
}

impl Plan {
    pub fn errors(&self) -> usize {
        self.problems.iter().filter(|p| p.is_error()).count()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// A rollout of a new revision, with analysis.
    Rollout,
    /// A new revision promoted without analysis (`skipAnalysis`).
    Promote,
    /// A new canary: the primary is created from this revision, without analysis.
    Initialize,
    Unchanged,
}

#[derive(Debug, Clone, Serialize)]
pub struct CanaryPlan {
    /// `namespace/name`.
    pub canary: String,
    pub file: String,
    pub action: Action,
    /// Why the revision is new.
    pub cause: Vec<String>,
    pub revision_before: Option<String>,
    pub revision_after: Option<String>,
    pub strategy: Option<String>,
    pub provider: String,
    pub schedule: Option<Schedule>,
    pub gates: Vec<Gate>,
    pub checks: Vec<Check>,
    pub suspended: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Schedule {
    /// Canary weights in order, for the canary strategy.
    pub weights: Vec<u32>,
    /// Analysis iterations, for A/B and blue/green.
    pub iterations: Option<u32>,
    pub interval: String,
    pub threshold: u32,
    /// The number of analysis intervals before promotion can finish, at the fastest.
    pub ticks: u32,
    pub minimum_duration: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Gate {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub url: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    /// builtin, template or query.
    pub source: String,
    pub threshold: String,
    pub interval: String,
    /// The rendered query, or why it cannot be rendered.
    pub query: Result<String, String>,
}

/// The plan of merging `head` onto `base`.
pub fn plan(base_name: &str, base: &Catalog, head_name: &str, head: &Catalog) -> Plan {
    let mut canaries = Vec::new();
    for entry in &head.canaries {
        let before = base.canaries.iter().find(|c| c.key() == entry.key());
        canaries.push(canary_plan(before, entry, head));
    }
    let removed = base
        .canaries
        .iter()
        .filter(|b| !head.canaries.iter().any(|h| h.key() == b.key()))
        .map(|b| b.key())
        .collect();
    Plan {
        base: base_name.to_string(),
        head: head_name.to_string(),
        canaries,
        removed,
        problems: head.problems.clone(),
    }
}

fn canary_plan(before: Option<&CanaryEntry>, entry: &CanaryEntry, head: &Catalog) -> CanaryPlan {
    let spec = &entry.canary.spec;
    let revision_after = entry.revision.as_ref().map(|r| r.short().to_string());
    let revision_before = before
        .and_then(|b| b.revision.as_ref())
        .map(|r| r.short().to_string());
    let changed = match (before.and_then(|b| b.revision.as_ref()), &entry.revision) {
        (Some(b), Some(a)) => b.id != a.id,
        _ => false,
    };
    let skip = entry.canary.spec.skip_analysis();
    let action = match before {
        None => Action::Initialize,
        Some(_) if !changed => Action::Unchanged,
        Some(_) if skip => Action::Promote,
        Some(_) => Action::Rollout,
    };
    let cause = match (
        before.and_then(|b| b.revision_input.as_ref()),
        &entry.revision_input,
    ) {
        (Some(b), Some(a)) if changed => revision::cause(b, a)
            .into_iter()
            .map(|c| c.to_string())
            .collect(),
        _ => Vec::new(),
    };
    let analysis = entry.analysis().map(|(a, _)| a);
    let provider = spec.provider.clone().unwrap_or_default();
    CanaryPlan {
        canary: entry.key(),
        file: entry.location.file.clone(),
        action,
        cause,
        revision_before,
        revision_after,
        strategy: analysis.map(|a| a.strategy().to_string()),
        schedule: analysis.map(schedule),
        gates: analysis.map(gates).unwrap_or_default(),
        checks: analysis
            .map(|a| checks(entry, a, &provider, head))
            .unwrap_or_default(),
        provider,
        suspended: entry.canary.spec.suspended(),
    }
}

fn schedule(analysis: &CanaryAnalysis) -> Schedule {
    let interval = analysis.interval();
    let (weights, iterations, ticks) = match analysis.strategy() {
        DeploymentStrategy::Canary => {
            let w = analysis.weight_ladder();
            // One tick per weight, then the tick that starts the promotion.
            let ticks = w.len() as u32 + 1;
            (w, None, ticks)
        }
        // N analysed iterations, then the promotion tick.
        DeploymentStrategy::AbTesting => (
            Vec::new(),
            Some(analysis.iterations()),
            analysis.iterations() + 1,
        ),
        // N analysed iterations, the switch of all traffic to the canary, then promotion.
        DeploymentStrategy::BlueGreen => (
            Vec::new(),
            Some(analysis.iterations()),
            analysis.iterations() + 2,
        ),
    };
    Schedule {
        weights,
        iterations,
        interval: human_duration(interval),
        threshold: analysis.threshold(),
        ticks,
        minimum_duration: human_duration(interval * ticks),
    }
}

fn gates(analysis: &CanaryAnalysis) -> Vec<Gate> {
    analysis
        .webhooks()
        .iter()
        .filter_map(|w| {
            let kind = w.hook_type()?;
            (kind != HookType::Event).then(|| Gate {
                name: w.name().to_string(),
                kind: kind.as_str().to_string(),
                url: w.url.clone().unwrap_or_default(),
            })
        })
        .collect()
}

fn checks(
    entry: &CanaryEntry,
    analysis: &CanaryAnalysis,
    provider: &str,
    head: &Catalog,
) -> Vec<Check> {
    // The catalog has set the Canary's namespace (defaulted where the manifest has none).
    let base_ctx = TemplateContext::for_canary(&entry.canary);
    analysis
        .metrics()
        .iter()
        .map(|m| {
            let mut ctx = base_ctx.clone();
            ctx.variables = m.template_variables.clone().unwrap_or_default();
            let (source, interval, query) = if let Some(r) = &m.template_ref {
                ctx.interval = m.interval().unwrap_or_default().to_string();
                let key = (
                    r.namespace_or(entry.namespace()).to_string(),
                    r.name().to_string(),
                );
                let query = match head.metric_templates.get(&key) {
                    Some(t) => template_query(&t.object, &ctx),
                    None => Err(format!("MetricTemplate {}/{} not found", key.0, key.1)),
                };
                (
                    format!("template {}/{}", key.0, key.1),
                    ctx.interval.clone(),
                    query,
                )
            } else if m.is_builtin() {
                ctx.interval = m
                    .interval()
                    .unwrap_or(builtin::DEFAULT_BUILTIN_INTERVAL)
                    .to_string();
                let query = match Observer::for_provider(provider) {
                    Some(o) => builtin::query(o, m.name(), &ctx)
                        .unwrap_or_else(|| {
                            Err(crate::metrics::template::TemplateError::Unknown(
                                m.name().into(),
                            ))
                        })
                        .map_err(|e| e.to_string()),
                    None => Err(format!(
                        "builtin queries for provider {provider} are not yet supported by Serin"
                    )),
                };
                ("builtin".to_string(), ctx.interval.clone(), query)
            } else {
                ctx.interval = m.interval().unwrap_or_default().to_string();
                let query = m.query.as_deref().map_or_else(
                    || Err("no query".to_string()),
                    |q| render(q, &ctx).map_err(|e| e.to_string()),
                );
                ("query".to_string(), ctx.interval.clone(), query)
            };
            Check {
                name: m.name().to_string(),
                source,
                threshold: threshold_text(
                    m.threshold_range.as_ref().and_then(|r| r.min()),
                    m.threshold_range.as_ref().and_then(|r| r.max()),
                    m.threshold.as_ref(),
                ),
                interval,
                query: query.map(|q| q.split_whitespace().collect::<Vec<_>>().join(" ")),
            }
        })
        .collect()
}

fn template_query(template: &MetricTemplate, ctx: &TemplateContext) -> Result<String, String> {
    render(template.spec.query.as_deref().unwrap_or_default(), ctx).map_err(|e| e.to_string())
}

fn threshold_text(
    min: Option<f64>,
    max: Option<f64>,
    legacy: Option<&serde_json::Number>,
) -> String {
    match (min, max, legacy) {
        (Some(a), Some(b), _) => format!("{a} ≤ value ≤ {b}"),
        (Some(a), None, _) => format!("≥ {a}"),
        (None, Some(b), _) => format!("≤ {b}"),
        (None, None, Some(t)) => format!("threshold {t} (deprecated)"),
        (None, None, None) => "none".into(),
    }
}

/// `90s` → `1m30s`, `3600s` → `1h`.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// The plan as Markdown, for a pull-request comment.
pub fn markdown(plan: &Plan) -> String {
    let mut out = format!("## Serin plan: `{}` → `{}`\n\n", plan.base, plan.head);
    let count = |a: Action| plan.canaries.iter().filter(|c| c.action == a).count();
    let warnings = plan.problems.len() - plan.errors();
    out.push_str(&format!(
        "**{} rollout(s)**, {} promotion(s) without analysis, {} new canary(ies), {} unchanged, {} removed · {} error(s), {} warning(s)\n",
        count(Action::Rollout),
        count(Action::Promote),
        count(Action::Initialize),
        count(Action::Unchanged),
        plan.removed.len(),
        plan.errors(),
        warnings
    ));
    for c in plan
        .canaries
        .iter()
        .filter(|c| c.action != Action::Unchanged)
    {
        out.push_str(&canary_markdown(c));
    }
    if !plan.removed.is_empty() {
        out.push_str("\n### Removed canaries\n\n");
        for r in &plan.removed {
            out.push_str(&format!("- `{r}`\n"));
        }
    }
    if !plan.problems.is_empty() {
        out.push_str("\n### Problems\n\n");
        for p in &plan.problems {
            out.push_str(&format!(
                "- {}\n",
                p.to_string().replace("\n  fix:", " — fix:")
            ));
        }
    }
    out
}

fn canary_markdown(c: &CanaryPlan) -> String {
    let title = match c.action {
        Action::Rollout => "starts a rollout",
        Action::Promote => "promotes without analysis (skipAnalysis)",
        Action::Initialize => {
            "new canary: initializes the primary from this revision, without analysis"
        }
        Action::Unchanged => "unchanged",
    };
    let mut out = format!("\n### `{}` — {title}\n\n", c.canary);
    if c.suspended {
        out.push_str(
            "> The canary is **suspended**: nothing happens until `spec.suspend` is false.\n\n",
        );
    }
    if !c.cause.is_empty() {
        out.push_str("Why:\n");
        for cause in &c.cause {
            out.push_str(&format!("- {cause}\n"));
        }
        out.push('\n');
    }
    out.push_str("| | |\n|---|---|\n");
    out.push_str(&format!("| File | `{}` |\n", c.file));
    if let (Some(b), Some(a)) = (&c.revision_before, &c.revision_after) {
        out.push_str(&format!("| Revision | `{b}` → `{a}` |\n"));
    } else if let Some(a) = &c.revision_after {
        out.push_str(&format!("| Revision | `{a}` |\n"));
    }
    if let Some(s) = &c.strategy {
        let provider = if c.provider.is_empty() {
            "default"
        } else {
            &c.provider
        };
        out.push_str(&format!("| Strategy | {s} (provider {provider}) |\n"));
    }
    if let Some(s) = &c.schedule {
        if !s.weights.is_empty() {
            let w: Vec<String> = s.weights.iter().map(|w| format!("{w}%")).collect();
            out.push_str(&format!("| Steps | {} then promotion |\n", w.join(" → ")));
        }
        if let Some(i) = s.iterations {
            out.push_str(&format!("| Iterations | {i}, then promotion |\n"));
        }
        out.push_str(&format!(
            "| Interval | {}; rollback after {} failed check(s) |\n",
            s.interval, s.threshold
        ));
        out.push_str(&format!(
            "| Minimum duration | {} ({} intervals) |\n",
            s.minimum_duration, s.ticks
        ));
    }
    if !c.gates.is_empty() {
        out.push_str("\nGates and hooks:\n");
        for g in &c.gates {
            out.push_str(&format!("- `{}` {} → {}\n", g.kind, g.name, g.url));
        }
    }
    if !c.checks.is_empty() {
        out.push_str(
            "\n| Metric | Source | Threshold | Interval | Query |\n|---|---|---|---|---|\n",
        );
        for m in &c.checks {
            let query = match &m.query {
                Ok(q) => format!("`{}`", q.replace('|', "\\|")),
                Err(e) => format!("⚠ {e}"),
            };
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                m.name, m.source, m.threshold, m.interval, query
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests;
