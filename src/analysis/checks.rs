//! Judging one metric value against its thresholds, with Flagger's messages (§5.1, §2.10).
//!
//! Pure: the runner queries the metric source and hands the observation here; what comes back
//! is either a pass or the exact "Halt ..." text Flagger records as a Warning event.

use crate::api::CanaryMetric;
use crate::metrics::builtin;

/// What kind of check a metric is, which decides units and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckKind {
    /// Builtin `request-success-rate`: a percentage.
    SuccessRate,
    /// Builtin `request-duration`: milliseconds.
    Duration,
    /// A MetricTemplate.
    Template,
    /// The deprecated inline `query`.
    Inline,
}

impl CheckKind {
    pub fn of(metric: &CanaryMetric) -> CheckKind {
        if metric.template_ref.is_some() {
            CheckKind::Template
        } else if metric.name() == builtin::SUCCESS_RATE {
            CheckKind::SuccessRate
        } else if metric.name() == builtin::DURATION {
            CheckKind::Duration
        } else {
            CheckKind::Inline
        }
    }
}

/// What the metric source said.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// For durations, in milliseconds.
    Value(f64),
    /// The query matched nothing (or NaN): usually no traffic reaches the workload.
    NoValues(String),
    /// The query could not be run.
    Failed(String),
}

/// Who is being judged, for the messages.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    /// `name.namespace` of the canary.
    pub canary: &'a str,
    /// `name.namespace` of the target workload.
    pub target: &'a str,
    /// The observer (provider family) of builtin checks, e.g. "istio".
    pub observer: &'a str,
}

/// `Ok(value)` when the metric passes, else the halt message.
pub fn judge(
    metric: &CanaryMetric,
    subject: &Subject,
    observation: Observation,
) -> Result<f64, String> {
    let kind = CheckKind::of(metric);
    let name = metric.name();
    let value = match observation {
        Observation::Value(v) => v,
        Observation::NoValues(err) => {
            return Err(match kind {
                CheckKind::SuccessRate => format!(
                    "Halt advancement no values found for {} metric {name} probably {} is not receiving traffic: {err}",
                    subject.observer, subject.target
                ),
                CheckKind::Duration => format!(
                    "Halt advancement no values found for {} metric {name} probably {} is not receiving traffic",
                    subject.observer, subject.target
                ),
                CheckKind::Template => {
                    format!("Halt advancement no values found for custom metric: {name}: {err}")
                }
                CheckKind::Inline => format!("Halt advancement no values found for metric: {name}"),
            });
        }
        Observation::Failed(err) => {
            return Err(match kind {
                CheckKind::SuccessRate | CheckKind::Duration => {
                    format!("Prometheus query failed: {err}")
                }
                CheckKind::Template | CheckKind::Inline => {
                    format!("Metric query failed for {name}: {err}")
                }
            });
        }
    };
    let range = metric.threshold_range.as_ref();
    let min = range.and_then(|r| r.min());
    let max = range.and_then(|r| r.max());
    let legacy = metric
        .threshold
        .as_ref()
        .and_then(serde_json::Number::as_f64);
    let canary = subject.canary;
    match kind {
        CheckKind::SuccessRate => {
            if let Some(min) = min.filter(|m| value < *m) {
                return Err(format!(
                    "Halt {canary} advancement success rate {value:.2}% < {min}%"
                ));
            }
            if let Some(max) = max.filter(|m| value > *m) {
                return Err(format!(
                    "Halt {canary} advancement success rate {value:.2}% > {max}%"
                ));
            }
            if range.is_none()
                && let Some(t) = legacy.filter(|t| value < *t)
            {
                return Err(format!(
                    "Halt {canary} advancement success rate {value:.2}% < {t}%"
                ));
            }
        }
        CheckKind::Duration => {
            // Flagger truncates durations to whole milliseconds before comparing.
            let ms = value.trunc();
            let show = |ms: f64| go_duration(ms);
            if let Some(min) = min.filter(|m| ms < *m) {
                return Err(format!(
                    "Halt {canary} advancement request duration {} < {}",
                    show(ms),
                    show(min)
                ));
            }
            if let Some(max) = max.filter(|m| ms > *m) {
                return Err(format!(
                    "Halt {canary} advancement request duration {} > {}",
                    show(ms),
                    show(max)
                ));
            }
            if range.is_none()
                && let Some(t) = legacy.filter(|t| ms > *t)
            {
                return Err(format!(
                    "Halt {canary} advancement request duration {} > {}",
                    show(ms),
                    show(t)
                ));
            }
        }
        CheckKind::Template | CheckKind::Inline => {
            if let Some(min) = min.filter(|m| value < *m) {
                return Err(format!(
                    "Halt {canary} advancement {name} {value:.2} < {min}"
                ));
            }
            if let Some(max) = max.filter(|m| value > *m) {
                return Err(format!(
                    "Halt {canary} advancement {name} {value:.2} > {max}"
                ));
            }
            if range.is_none()
                && let Some(t) = legacy.filter(|t| value > *t)
            {
                return Err(format!("Halt {canary} advancement {name} {value:.2} > {t}"));
            }
        }
    }
    Ok(value)
}

/// Go's `time.Duration.String()` for a whole number of milliseconds ("500ms", "1.5s", "1m1s").
pub fn go_duration(ms: f64) -> String {
    let ms = ms.max(0.0) as u64;
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let (s, frac) = (rest / 1000, rest % 1000);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if frac == 0 {
        out.push_str(&format!("{s}s"));
    } else {
        let frac = format!("{frac:03}");
        out.push_str(&format!("{s}.{}s", frac.trim_end_matches('0')));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn metric(v: serde_json::Value) -> CanaryMetric {
        serde_json::from_value(v).expect("metric")
    }

    fn subject() -> Subject<'static> {
        Subject {
            canary: "podinfo.test",
            target: "podinfo.test",
            observer: "istio",
        }
    }

    #[test]
    fn thresholds_and_messages_follow_flagger() {
        let sr = json!({ "name": "request-success-rate", "thresholdRange": { "min": 99 } });
        let dur = json!({ "name": "request-duration", "thresholdRange": { "max": 500 } });
        let tpl = json!({ "name": "error-rate", "templateRef": { "name": "error-rate" }, "thresholdRange": { "max": 1 } });
        let inline =
            json!({ "name": "custom", "query": "up", "thresholdRange": { "min": 1, "max": 5 } });
        let legacy_sr = json!({ "name": "request-success-rate", "threshold": 99 });
        let legacy_dur = json!({ "name": "request-duration", "threshold": 500 });
        let legacy_tpl =
            json!({ "name": "error-rate", "templateRef": { "name": "e" }, "threshold": 1 });
        let cases: Vec<(serde_json::Value, Observation, Result<f64, &str>)> = vec![
            (sr.clone(), Observation::Value(99.5), Ok(99.5)),
            (
                sr.clone(),
                Observation::Value(69.1666),
                Err("Halt podinfo.test advancement success rate 69.17% < 99%"),
            ),
            (
                json!({ "name": "request-success-rate", "thresholdRange": { "max": 50 } }),
                Observation::Value(60.0),
                Err("Halt podinfo.test advancement success rate 60.00% > 50%"),
            ),
            (
                sr.clone(),
                Observation::NoValues("no values found".into()),
                Err(
                    "Halt advancement no values found for istio metric request-success-rate probably podinfo.test is not receiving traffic: no values found",
                ),
            ),
            (
                sr,
                Observation::Failed("connection refused".into()),
                Err("Prometheus query failed: connection refused"),
            ),
            (dur.clone(), Observation::Value(499.9), Ok(499.9)),
            (
                dur.clone(),
                Observation::Value(1500.7),
                Err("Halt podinfo.test advancement request duration 1.5s > 500ms"),
            ),
            (
                dur.clone(),
                Observation::NoValues("x".into()),
                Err(
                    "Halt advancement no values found for istio metric request-duration probably podinfo.test is not receiving traffic",
                ),
            ),
            (
                json!({ "name": "request-duration", "thresholdRange": { "min": 10 } }),
                Observation::Value(3.0),
                Err("Halt podinfo.test advancement request duration 3ms < 10ms"),
            ),
            (tpl.clone(), Observation::Value(0.5), Ok(0.5)),
            (
                tpl.clone(),
                Observation::Value(30.0),
                Err("Halt podinfo.test advancement error-rate 30.00 > 1"),
            ),
            (
                tpl.clone(),
                Observation::NoValues("no values found".into()),
                Err(
                    "Halt advancement no values found for custom metric: error-rate: no values found",
                ),
            ),
            (
                tpl,
                Observation::Failed("error response: status 400".into()),
                Err("Metric query failed for error-rate: error response: status 400"),
            ),
            (
                inline.clone(),
                Observation::Value(0.0),
                Err("Halt podinfo.test advancement custom 0.00 < 1"),
            ),
            (
                inline.clone(),
                Observation::Value(6.0),
                Err("Halt podinfo.test advancement custom 6.00 > 5"),
            ),
            (
                inline,
                Observation::NoValues("x".into()),
                Err("Halt advancement no values found for metric: custom"),
            ),
            (
                legacy_sr,
                Observation::Value(98.0),
                Err("Halt podinfo.test advancement success rate 98.00% < 99%"),
            ),
            (
                legacy_dur,
                Observation::Value(600.0),
                Err("Halt podinfo.test advancement request duration 600ms > 500ms"),
            ),
            (
                legacy_tpl,
                Observation::Value(2.0),
                Err("Halt podinfo.test advancement error-rate 2.00 > 1"),
            ),
        ];
        for (m, obs, want) in cases {
            let got = judge(&metric(m.clone()), &subject(), obs.clone());
            assert_eq!(got, want.map_err(str::to_string), "{m} with {obs:?}");
        }
    }

    #[test]
    fn go_durations() {
        for (ms, want) in [
            (0.0, "0s"),
            (500.0, "500ms"),
            (1000.0, "1s"),
            (1500.0, "1.5s"),
            (1250.0, "1.25s"),
            (61_000.0, "1m1s"),
            (3_600_000.0, "1h0m0s"),
        ] {
            assert_eq!(go_duration(ms), want);
        }
    }
}
