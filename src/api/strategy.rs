//! Which rollout strategy an analysis describes, and the weights it steps through.
//!
//! Flagger has no `strategy` field: it derives the strategy from which analysis fields are
//! set (`Canary.DeploymentStrategy()`), and the scheduler, the alerts and the
//! `flagger_canary_*` metric labels all use that derivation. Keeping it next to the types
//! means every part of Serin derives it the same way.

use super::canary::{Canary, CanaryAnalysis, CanarySpec, TOTAL_WEIGHT};

/// The rollout strategy of a canary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeploymentStrategy {
    /// Progressive traffic shifting by weight.
    Canary,
    /// All-or-nothing switch after `iterations` checks (optionally with mirroring).
    BlueGreen,
    /// Matching requests (headers, cookies) go to the canary for `iterations` checks.
    AbTesting,
}

impl DeploymentStrategy {
    /// The name Flagger uses in metric labels and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            DeploymentStrategy::Canary => "canary",
            DeploymentStrategy::BlueGreen => "blue-green",
            DeploymentStrategy::AbTesting => "ab-testing",
        }
    }
}

impl std::fmt::Display for DeploymentStrategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl CanaryAnalysis {
    /// A/B testing when there are match conditions and iterations, blue/green with
    /// iterations alone, canary otherwise.
    pub fn strategy(&self) -> DeploymentStrategy {
        if self.iterations() > 0 {
            if self.matches().is_empty() {
                DeploymentStrategy::BlueGreen
            } else {
                DeploymentStrategy::AbTesting
            }
        } else {
            DeploymentStrategy::Canary
        }
    }

    /// The weight increment after `canary_weight` (Flagger's `nextStepWeight`).
    ///
    /// With `stepWeight` (or without `stepWeights`) it is `stepWeight`. On a ladder it is the
    /// distance to the next rung, capped so the canary never exceeds 100; at 100 it is 1 so
    /// that the scheduler takes the promotion path. A weight between rungs jumps to 100.
    pub fn next_step_weight(&self, canary_weight: u32) -> u32 {
        let steps = self.step_weights();
        if self.step_weight() > 0 || steps.is_empty() {
            return self.step_weight();
        }
        let max_step = TOTAL_WEIGHT.saturating_sub(canary_weight);
        if max_step == 0 {
            return 1;
        }
        let rung = |i: usize| u32::try_from(steps[i]).unwrap_or(0);
        if canary_weight == 0 {
            return max_step.min(rung(0));
        }
        for i in 0..steps.len() - 1 {
            if rung(i) == canary_weight {
                return max_step.min(rung(i + 1).saturating_sub(canary_weight));
            }
        }
        max_step
    }

    /// The canary weights a canary-strategy run advances through, from the first step until
    /// the weight reaches `max_weight()` (the last one may overshoot it, as in Flagger:
    /// step 20 with max 50 gives 20, 40, 60). Empty when the run cannot advance (no step).
    /// Mirroring's extra weight-0 step is not included.
    pub fn weight_ladder(&self) -> Vec<u32> {
        let max_weight = self.max_weight();
        let mut ladder = Vec::new();
        let mut weight = 0u32;
        while weight < max_weight {
            let step = self.next_step_weight(weight);
            if step == 0 {
                break;
            }
            weight = (weight + step).min(TOTAL_WEIGHT);
            ladder.push(weight);
            if weight == TOTAL_WEIGHT {
                break;
            }
        }
        ladder
    }
}

impl CanarySpec {
    /// The strategy of the analysis in force (canary when there is none).
    pub fn strategy(&self) -> DeploymentStrategy {
        self.analysis()
            .map_or(DeploymentStrategy::Canary, CanaryAnalysis::strategy)
    }
}

impl Canary {
    /// The strategy of the analysis in force (canary when there is none).
    pub fn strategy(&self) -> DeploymentStrategy {
        self.spec.strategy()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::api::canary::{HttpMatchRequest, StringMatch};
    use std::collections::BTreeMap;

    fn header_match() -> Vec<HttpMatchRequest> {
        vec![HttpMatchRequest {
            headers: Some(BTreeMap::from([(
                "x-canary".to_string(),
                StringMatch {
                    exact: Some("insider".into()),
                    ..Default::default()
                },
            )])),
            ..Default::default()
        }]
    }

    #[test]
    fn strategy_derivation() {
        let table = [
            (None, None, Some(10), DeploymentStrategy::Canary),
            (Some(10), None, None, DeploymentStrategy::BlueGreen),
            (
                Some(10),
                Some(header_match()),
                None,
                DeploymentStrategy::AbTesting,
            ),
            (None, Some(header_match()), None, DeploymentStrategy::Canary),
            (
                Some(0),
                Some(header_match()),
                None,
                DeploymentStrategy::Canary,
            ),
            (Some(-1), None, None, DeploymentStrategy::Canary),
            (Some(5), Some(vec![]), None, DeploymentStrategy::BlueGreen),
        ];
        for (iterations, matches, step, want) in table {
            let analysis = CanaryAnalysis {
                iterations,
                r#match: matches.clone(),
                step_weight: step,
                ..Default::default()
            };
            assert_eq!(analysis.strategy(), want, "{iterations:?} {matches:?}");
        }
        assert_eq!(CanarySpec::default().strategy(), DeploymentStrategy::Canary);
        assert_eq!(DeploymentStrategy::AbTesting.as_str(), "ab-testing");
        assert_eq!(DeploymentStrategy::BlueGreen.to_string(), "blue-green");
    }

    #[test]
    fn weight_ladders() {
        // (stepWeight, maxWeight, stepWeights, ladder)
        type Row = (Option<i32>, Option<i32>, Option<Vec<i32>>, Vec<u32>);
        let table: [Row; 7] = [
            (Some(10), Some(50), None, vec![10, 20, 30, 40, 50]),
            (Some(20), Some(50), None, vec![20, 40, 60]),
            (Some(5), None, None, (1..=20).map(|i| i * 5).collect()),
            (None, None, Some(vec![1, 2, 10, 80]), vec![1, 2, 10, 80]),
            (None, None, Some(vec![1, 2, 10, 200]), vec![1, 2, 10, 100]),
            (Some(30), None, Some(vec![5, 10]), vec![30]),
            (None, Some(50), None, vec![]),
        ];
        for (step, max, steps, want) in table {
            let analysis = CanaryAnalysis {
                step_weight: step,
                max_weight: max,
                step_weights: steps.clone(),
                ..Default::default()
            };
            assert_eq!(analysis.weight_ladder(), want, "{step:?} {max:?} {steps:?}");
        }
    }

    #[test]
    fn next_step_weight_on_a_ladder() {
        let analysis = CanaryAnalysis {
            step_weights: Some(vec![1, 2, 10, 80]),
            ..Default::default()
        };
        assert_eq!(analysis.next_step_weight(0), 1);
        assert_eq!(analysis.next_step_weight(2), 8);
        assert_eq!(analysis.next_step_weight(10), 70);
        // Off the ladder (e.g. after a manual change): straight to 100.
        assert_eq!(analysis.next_step_weight(50), 50);
        assert_eq!(analysis.next_step_weight(100), 1);
    }
}
