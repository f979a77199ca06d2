//! The state machine driven through whole runs by a simulated world that answers its questions
//! and applies its effects — the phase sequences Flagger's scheduler tests assert (§2.8), and
//! every gate, failure and restart path.

use std::collections::{BTreeMap, VecDeque};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::json;

use super::machine::*;
use crate::api::{Canary, CanaryPhase, HookType};

fn canary(analysis: serde_json::Value) -> Canary {
    serde_json::from_value(json!({
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": { "name": "podinfo", "namespace": "test" },
        "spec": {
            "provider": "gatewayapi:v1",
            "targetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo" },
            "service": { "port": 9898, "gatewayRefs": [{ "name": "gw" }] },
            "analysis": analysis,
        }
    }))
    .expect("canary")
}

fn progressive() -> serde_json::Value {
    json!({ "interval": "1m", "threshold": 2, "maxWeight": 50, "stepWeight": 10 })
}

fn hook(name: &str, kind: &str) -> serde_json::Value {
    json!({ "name": name, "type": kind, "url": "http://hooks.test/" })
}

struct World {
    canary: Canary,
    target: TargetRevision,
    routes: Routes,
    primary_ready: VecDeque<Readiness>,
    canary_ready: Readiness,
    /// Scripted results per hook type, consumed one per ask; missing ⇒ every hook passes.
    hooks: BTreeMap<String, VecDeque<Result<(), String>>>,
    analysis: VecDeque<AnalysisOutcome>,
    kubernetes: bool,
    events: Vec<String>,
    effects: Vec<Effect>,
    asked: Vec<Question>,
    promoted: Option<String>,
    /// What Git approvals say; `git_hooks` scripts the answers to gates asked because of it.
    git: super::machine::GitInput,
    git_hooks: BTreeMap<String, VecDeque<Result<(), String>>>,
}

impl World {
    fn new(canary: Canary) -> Self {
        World {
            canary,
            target: revision("v1"),
            routes: Routes::new(100, 0),
            primary_ready: VecDeque::new(),
            canary_ready: Readiness::Ready,
            hooks: BTreeMap::new(),
            analysis: VecDeque::new(),
            kubernetes: false,
            events: Vec::new(),
            effects: Vec::new(),
            asked: Vec::new(),
            promoted: None,
            git: Default::default(),
            git_hooks: BTreeMap::new(),
        }
    }

    fn phase(&self) -> CanaryPhase {
        self.canary
            .status
            .as_ref()
            .map(|s| s.phase)
            .unwrap_or_default()
    }

    fn weight(&self) -> i32 {
        self.canary.status.as_ref().map_or(0, |s| s.canary_weight)
    }

    fn script(&mut self, kind: HookType, results: &[Result<(), &str>]) {
        self.hooks.insert(
            kind.as_str().to_string(),
            results.iter().map(|r| r.map_err(str::to_string)).collect(),
        );
    }

    fn answer(&mut self, q: &Question, answers: &mut Answers) {
        match q {
            Question::PrimaryReady => {
                answers.primary_ready =
                    Some(self.primary_ready.pop_front().unwrap_or(Readiness::Ready));
            }
            Question::CanaryReady => answers.canary_ready = Some(self.canary_ready.clone()),
            Question::Routes => answers.routes = Some(Ok(self.routes)),
            Question::Analysis => {
                let outcome = self.analysis.pop_front().unwrap_or(AnalysisOutcome::Passed);
                let (value, message) = match &outcome {
                    AnalysisOutcome::Passed => (0.5, None),
                    AnalysisOutcome::Failed(m) => (30.0, m.first().cloned()),
                };
                answers.metric_values = Some(vec![crate::api::MetricCheckStatus {
                    name: "error-rate".into(),
                    value: Some(value),
                    message,
                }]);
                answers.analysis = Some(outcome);
            }
            Question::Hooks(kind, _) => {
                let analysis = self.canary.spec.analysis().cloned().unwrap_or_default();
                let scripted = self
                    .hooks
                    .get_mut(kind.as_str())
                    .and_then(VecDeque::pop_front);
                let mut results = Vec::new();
                if let Some(answer) = self
                    .git_hooks
                    .get_mut(kind.as_str())
                    .and_then(VecDeque::pop_front)
                {
                    results.push(HookResult {
                        name: "serin approve".into(),
                        outcome: answer,
                        mute_alert: false,
                    });
                }
                for w in analysis.webhooks_of(*kind) {
                    let outcome = scripted.clone().unwrap_or(Ok(()));
                    let stop = match kind {
                        HookType::Rollback => outcome.is_ok(),
                        _ => outcome.is_err(),
                    };
                    results.push(HookResult {
                        name: w.name().to_string(),
                        outcome,
                        mute_alert: w.mute_alert(),
                    });
                    if stop {
                        break;
                    }
                }
                answers.hooks.push((*kind, results));
            }
        }
    }

    /// One tick: answer every question, apply every effect, write the status.
    fn tick(&mut self) -> Decision {
        let mut answers = Answers::default();
        let mut asked_now = Vec::new();
        loop {
            let input = TickInput {
                canary: &self.canary,
                target: &self.target,
                kubernetes_provider: self.kubernetes,
                now: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
                git: self.git.clone(),
            };
            match tick(&input, &answers) {
                Step::Ask(q) => {
                    assert!(!asked_now.contains(&q), "asked {q:?} twice in one tick");
                    asked_now.push(q.clone());
                    self.answer(&q, &mut answers);
                }
                Step::Done(d) => {
                    let d = *d;
                    for e in &d.effects {
                        match e {
                            Effect::SetRoutes(r) => self.routes = *r,
                            Effect::Event { message, .. } => self.events.push(message.clone()),
                            Effect::Promote => self.promoted = Some(self.target.hash.clone()),
                            _ => {}
                        }
                    }
                    self.effects.extend(d.effects.clone());
                    self.asked.extend(asked_now);
                    if d.status_changed {
                        self.canary.status = Some(d.status.clone());
                    }
                    return d;
                }
            }
        }
    }

    /// Ticks until `phase` (at most `max` ticks); returns (phase, weight) after each tick.
    fn run_until(&mut self, phase: CanaryPhase, max: usize) -> Vec<(CanaryPhase, i32)> {
        let mut seen = Vec::new();
        for _ in 0..max {
            self.tick();
            seen.push((self.phase(), self.weight()));
            if self.phase() == phase {
                return seen;
            }
        }
        panic!(
            "never reached {phase:?}: {seen:?}\nevents: {:#?}",
            self.events
        );
    }

    /// Initializes the canary and makes a new revision available.
    fn initialized_with_new_revision(&mut self) {
        self.run_until(CanaryPhase::Initialized, 3);
        self.target = revision("v2");
        self.events.clear();
        self.effects.clear();
    }
}

fn revision(hash: &str) -> TargetRevision {
    TargetRevision {
        hash: hash.into(),
        tracked_configs: [(
            "configmap/podinfo-config".to_string(),
            format!("cfg-{hash}"),
        )]
        .into(),
    }
}

use CanaryPhase::*;

#[test]
fn initialization_waits_for_the_primary_then_scales_the_target_down() {
    let mut w = World::new(canary(progressive()));
    w.primary_ready = VecDeque::from([Readiness::Waiting(
        "podinfo-primary.test not ready: waiting for rollout to finish: 0 of 1 updated replicas are available".into(),
    )]);
    w.tick();
    assert_eq!(w.phase(), Initializing);
    assert!(
        w.events[0].starts_with("podinfo-primary.test not ready"),
        "{:?}",
        w.events
    );
    w.tick();
    assert_eq!(w.phase(), Initialized);
    let status = w.canary.status.clone().expect("status");
    assert_eq!(status.last_applied_spec.as_deref(), Some("v1"));
    assert_eq!(status.last_promoted_spec.as_deref(), Some("v1"));
    assert!(w.effects.contains(&Effect::ScaleTargetToZero));
    assert_eq!(
        w.events.last().map(String::as_str),
        Some("Initialization done! podinfo.test")
    );
    let condition = status
        .conditions
        .as_ref()
        .and_then(|c| c.first())
        .expect("condition");
    assert_eq!(condition.reason.as_deref(), Some("Initialized"));

    // Nothing changed: an idle tick asks nothing and writes nothing.
    let asked = w.asked.len();
    let d = w.tick();
    assert!(!d.status_changed && d.effects.is_empty(), "{d:?}");
    assert_eq!(w.asked.len(), asked);
}

#[test]
fn a_progressive_canary_advances_promotes_and_succeeds() {
    let mut w = World::new(canary(progressive()));
    w.initialized_with_new_revision();
    let seen = w.run_until(Succeeded, 20);
    assert_eq!(
        seen,
        [
            (Progressing, 0),
            (Progressing, 10),
            (Progressing, 20),
            (Progressing, 30),
            (Progressing, 40),
            (Progressing, 50),
            (Promoting, 50),
            (Finalising, 0),
            (Succeeded, 0),
        ]
    );
    assert_eq!(
        w.events,
        [
            "New revision detected! Scaling up podinfo.test",
            "Starting canary analysis for podinfo.test",
            "Advance podinfo.test canary weight 10",
            "Advance podinfo.test canary weight 20",
            "Advance podinfo.test canary weight 30",
            "Advance podinfo.test canary weight 40",
            "Advance podinfo.test canary weight 50",
            "Copying podinfo.test template spec to podinfo-primary.test",
            "Routing all traffic to primary",
            "Promotion completed! Scaling down podinfo.test",
        ]
    );
    assert_eq!(w.routes, Routes::new(100, 0));
    assert_eq!(w.promoted.as_deref(), Some("v2"));
    let status = w.canary.status.clone().expect("status");
    assert_eq!(status.last_promoted_spec.as_deref(), Some("v2"));
    assert!(w.effects.contains(&Effect::PostRolloutHooks(Succeeded)));
    // A succeeded canary stays idle until the next revision.
    let d = w.tick();
    assert!(d.effects.is_empty());
}

#[test]
fn step_weight_promotion_moves_traffic_back_in_steps() {
    let mut w = World::new(canary(json!({
        "interval": "1m", "threshold": 2, "stepWeight": 100, "stepWeightPromotion": 50
    })));
    w.initialized_with_new_revision();
    let seen = w.run_until(Succeeded, 12);
    assert_eq!(
        seen,
        [
            (Progressing, 0),
            (Progressing, 100),
            (Promoting, 100),
            (Promoting, 50),
            (Finalising, 0),
            (Succeeded, 0),
        ]
    );
    assert!(
        w.events
            .contains(&"Advance podinfo.test primary weight 50".to_string())
    );
}

#[test]
fn step_weights_follow_the_ladder() {
    let mut w = World::new(canary(json!({
        "interval": "1m", "threshold": 2, "stepWeights": [1, 2, 10, 80]
    })));
    w.initialized_with_new_revision();
    let seen = w.run_until(Promoting, 12);
    let weights: Vec<i32> = seen.iter().map(|(_, w)| *w).collect();
    assert_eq!(weights, [0, 1, 2, 10, 80, 80]);
}

#[test]
fn failed_checks_reach_the_threshold_and_roll_back() {
    let mut w = World::new(canary(progressive()));
    w.initialized_with_new_revision();
    w.run_until(Progressing, 1);
    w.tick(); // pre-rollout tick advances to 10
    let fail = || {
        AnalysisOutcome::Failed(vec![
            "Halt podinfo.test advancement success rate 69.17% < 99%".into(),
        ])
    };
    w.analysis = VecDeque::from([fail(), fail()]);
    let seen = w.run_until(Failed, 5);
    assert_eq!(seen, [(Progressing, 10), (Progressing, 10), (Failed, 0)]);
    let status = w.canary.status.clone().expect("status");
    assert_eq!((status.failed_checks, status.canary_weight), (0, 0));
    assert_eq!(w.routes, Routes::new(100, 0));
    assert!(
        w.events
            .contains(&"Rolling back podinfo.test failed checks threshold reached 2".to_string())
    );
    assert!(
        w.events
            .contains(&"Canary failed! Scaling down podinfo.test".to_string())
    );
    assert!(w.effects.contains(&Effect::ScaleTargetToZero));
    assert!(w.effects.contains(&Effect::PostRolloutHooks(Failed)));
    assert!(w.effects.contains(&Effect::Alert {
        severity: crate::api::AlertSeverity::Error,
        message: "Failed checks threshold reached 2".into()
    }));
    // A failed revision stays failed; a new one starts again.
    assert!(w.tick().effects.is_empty());
    w.target = revision("v3");
    w.tick();
    assert_eq!(w.phase(), Progressing);
}

#[test]
fn a_new_revision_mid_analysis_restarts_it() {
    let mut w = World::new(canary(progressive()));
    w.initialized_with_new_revision();
    w.run_until(Progressing, 1);
    w.tick();
    w.tick();
    assert_eq!(w.weight(), 20);
    w.target = revision("v3");
    w.tick();
    assert_eq!((w.phase(), w.weight()), (Progressing, 0));
    assert_eq!(w.routes, Routes::new(100, 0));
    assert_eq!(
        w.events.last().map(String::as_str),
        Some("New revision detected! Restarting analysis for podinfo.test")
    );
    // A change of a tracked ConfigMap alone restarts it too.
    w.tick();
    w.target
        .tracked_configs
        .insert("configmap/podinfo-config".into(), "changed".into());
    w.tick();
    assert_eq!(
        w.events.last().map(String::as_str),
        Some("New revision detected! Restarting analysis for podinfo.test")
    );
}

#[test]
fn confirm_rollout_holds_in_waiting_until_approved() {
    let mut a = progressive();
    a["webhooks"] = json!([hook("approve", "confirm-rollout")]);
    let mut w = World::new(canary(a));
    w.initialized_with_new_revision();
    w.script(HookType::ConfirmRollout, &[Err("403"), Err("403"), Ok(())]);
    let seen = w.run_until(Progressing, 5);
    assert_eq!(seen, [(Waiting, 0), (Waiting, 0), (Progressing, 0)]);
    assert_eq!(
        w.events[0],
        "Halt podinfo.test advancement waiting for approval approve"
    );
    assert!(
        w.events
            .contains(&"Confirm-rollout check approve passed".to_string())
    );
    assert!(
        w.asked
            .contains(&Question::Hooks(HookType::ConfirmRollout, Initialized))
    );
    assert!(
        w.asked
            .contains(&Question::Hooks(HookType::ConfirmRollout, Waiting))
    );
}

#[test]
fn confirm_promotion_holds_in_waiting_promotion_while_analysis_runs() {
    let mut a = json!({ "interval": "1m", "threshold": 2, "maxWeight": 20, "stepWeight": 10 });
    a["webhooks"] = json!([hook("promote", "confirm-promotion")]);
    let mut w = World::new(canary(a));
    w.initialized_with_new_revision();
    w.script(
        HookType::ConfirmPromotion,
        &[Err("closed"), Err("closed"), Ok(())],
    );
    let seen = w.run_until(Promoting, 10);
    assert_eq!(
        seen,
        [
            (Progressing, 0),
            (Progressing, 10),
            (Progressing, 20),
            (WaitingPromotion, 0),
            (WaitingPromotion, 0),
            (Promoting, 0),
        ]
    );
    assert!(w.events.contains(
        &"Halt podinfo.test advancement waiting for promotion approval promote".to_string()
    ));
    let analyses = w.asked.iter().filter(|q| **q == Question::Analysis).count();
    // Every tick after the pre-rollout one runs the analysis, also while promotion waits.
    assert_eq!(
        analyses, 4,
        "the analysis keeps running while promotion waits"
    );
}

#[test]
fn confirm_traffic_increase_gates_each_step() {
    let mut a = progressive();
    a["webhooks"] = json!([hook("more", "confirm-traffic-increase")]);
    let mut w = World::new(canary(a));
    w.initialized_with_new_revision();
    w.run_until(Progressing, 1);
    w.script(HookType::ConfirmTrafficIncrease, &[Err("not yet"), Ok(())]);
    w.tick();
    assert_eq!(w.weight(), 0);
    assert_eq!(
        w.events.last().map(String::as_str),
        Some("Halt podinfo.test advancement waiting for traffic increase approval more")
    );
    w.tick();
    assert_eq!(w.weight(), 10);
}

#[test]
fn a_failing_pre_rollout_hook_counts_as_a_failed_check() {
    let mut a = progressive();
    a["webhooks"] = json!([hook("smoke", "pre-rollout")]);
    let mut w = World::new(canary(a));
    w.initialized_with_new_revision();
    w.run_until(Progressing, 1);
    w.script(
        HookType::PreRollout,
        &[Err("500 Internal Server Error"), Err("500"), Ok(())],
    );
    let seen = w.run_until(Failed, 4);
    // The threshold is checked at the start of the tick after the second failure.
    assert_eq!(seen, [(Progressing, 0), (Progressing, 0), (Failed, 0)]);
    assert_eq!(
        w.events[2],
        "Halt podinfo.test advancement pre-rollout check smoke failed 500 Internal Server Error"
    );
}

#[test]
fn a_rollback_hook_that_succeeds_rolls_back() {
    let mut a = progressive();
    a["webhooks"] = json!([hook("abort", "rollback")]);
    let mut w = World::new(canary(a));
    w.initialized_with_new_revision();
    w.script(HookType::Rollback, &[Err("no"), Err("no"), Ok(())]);
    let seen = w.run_until(Failed, 6);
    // Rollback hooks are asked from the first analysed tick on, not when the run starts.
    assert_eq!(
        seen,
        [
            (Progressing, 0),
            (Progressing, 10),
            (Progressing, 20),
            (Failed, 0)
        ]
    );
    assert!(
        w.events
            .contains(&"Rollback hook abort not signaling a rollback".to_string())
    );
    assert!(
        w.events
            .contains(&"Rolling back podinfo.test manual webhook invoked".to_string())
    );
}

#[test]
fn ab_testing_runs_its_iterations_then_promotes() {
    let mut w = World::new(canary(json!({
        "interval": "1m", "threshold": 2, "iterations": 3,
        "match": [{ "headers": { "x-canary": { "exact": "insider" } } }]
    })));
    w.initialized_with_new_revision();
    let seen = w.run_until(Succeeded, 12);
    assert_eq!(
        seen,
        [
            (Progressing, 0),
            (Progressing, 0),
            (Progressing, 0),
            (Progressing, 0),
            (Promoting, 0),
            (Finalising, 0),
            (Succeeded, 0),
        ]
    );
    assert!(
        w.events
            .contains(&"Advance podinfo.test canary iteration 3/3".to_string())
    );
    assert!(!w.events.iter().any(|e| e.contains("canary iteration 4")));
}

#[test]
fn blue_green_switches_all_traffic_then_promotes() {
    let mut w = World::new(canary(
        json!({ "interval": "1m", "threshold": 2, "iterations": 2 }),
    ));
    w.initialized_with_new_revision();
    w.run_until(Succeeded, 12);
    let i = |m: &str| w.events.iter().position(|e| e == m).unwrap_or(usize::MAX);
    assert!(i("Advance podinfo.test canary iteration 2/2") < i("Routing all traffic to canary"));
    assert!(
        i("Routing all traffic to canary")
            < i("Copying podinfo.test template spec to podinfo-primary.test")
    );
}

#[test]
fn blue_green_with_mirroring_mirrors_first() {
    let mut w = World::new(canary(
        json!({ "interval": "1m", "threshold": 2, "iterations": 2, "mirror": true }),
    ));
    w.initialized_with_new_revision();
    w.run_until(Progressing, 1);
    w.tick();
    assert_eq!(
        w.routes,
        Routes {
            primary: 100,
            canary: 0,
            mirrored: true
        }
    );
    w.run_until(Promoting, 6);
    assert!(
        w.events
            .contains(&"Stop traffic mirroring and route all traffic to canary".to_string())
    );
}

#[test]
fn kubernetes_provider_is_blue_green_with_ten_iterations() {
    let mut w = World::new(canary(progressive()));
    w.kubernetes = true;
    w.initialized_with_new_revision();
    w.run_until(Progressing, 1);
    w.tick();
    assert!(
        w.events
            .contains(&"Setting canaryAnalysis.iterations: 10".to_string())
    );
    assert_eq!(w.canary.status.as_ref().map(|s| s.iterations), Some(1));
}

#[test]
fn skip_analysis_promotes_at_once() {
    let mut c = canary(progressive());
    c.spec.skip_analysis = Some(true);
    let mut w = World::new(c);
    w.initialized_with_new_revision();
    let seen = w.run_until(Succeeded, 3);
    assert_eq!(seen, [(Progressing, 0), (Succeeded, 0)]);
    assert!(w.events.contains(
        &"Promotion completed! Canary analysis was skipped for podinfo.test".to_string()
    ));
    assert!(
        !w.asked.contains(&Question::PrimaryReady),
        "skipAnalysis never waits for the primary"
    );
}

#[test]
fn suspended_canaries_only_say_so() {
    let mut c = canary(progressive());
    c.spec.suspend = Some(true);
    let mut w = World::new(c);
    let d = w.tick();
    assert_eq!(
        d.effects,
        [Effect::Event {
            warning: false,
            message: "skipping canary run as object is suspended".into()
        }]
    );
    assert!(!d.status_changed);
}

#[test]
fn rolling_back_to_the_promoted_spec_starts_nothing() {
    let mut w = World::new(canary(progressive()));
    w.initialized_with_new_revision();
    w.target = revision("v1");
    let d = w.tick();
    assert!(d.effects.is_empty(), "{d:?}");
}

#[test]
fn canary_not_ready_waits_and_a_dead_canary_rolls_back() {
    let mut w = World::new(canary(progressive()));
    w.initialized_with_new_revision();
    w.run_until(Progressing, 1);
    w.canary_ready = Readiness::Waiting("canary deployment podinfo.test not ready: waiting for rollout to finish: 0 of 1 updated replicas are available".into());
    w.tick();
    assert_eq!((w.phase(), w.weight()), (Progressing, 0));
    w.canary_ready = Readiness::Failed("canary deployment podinfo.test not ready: deployment \"podinfo\" exceeded its progress deadline".into());
    w.tick();
    assert_eq!(w.phase(), Failed);
}

#[test]
fn a_primary_that_dies_during_promotion_fails_the_promotion() {
    let mut w = World::new(canary(
        json!({ "interval": "1m", "threshold": 2, "stepWeight": 50 }),
    ));
    w.initialized_with_new_revision();
    w.run_until(Promoting, 5);
    w.primary_ready = VecDeque::from([Readiness::Failed("podinfo-primary.test not ready: deployment \"podinfo-primary\" exceeded its progress deadline".into())]);
    w.tick();
    assert_eq!((w.phase(), w.weight()), (Failed, 100));
    assert_eq!(w.routes, Routes::new(0, 100));
    assert!(
        w.events
            .iter()
            .any(|e| e.starts_with("Promotion of podinfo.test failed, primary not ready:"))
    );
    assert!(!w.effects[w.effects.len() - 4..].contains(&Effect::ScaleTargetToZero));
}

#[test]
fn router_errors_halt_the_tick_with_a_warning() {
    let mut w = World::new(canary(progressive()));
    w.initialized_with_new_revision();
    let input = TickInput {
        canary: &w.canary,
        target: &w.target,
        kubernetes_provider: false,
        now: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
        git: Default::default(),
    };
    let answers = Answers {
        primary_ready: Some(Readiness::Ready),
        routes: Some(Err("HTTPRoute podinfo.test parent gw is not ready".into())),
        ..Default::default()
    };
    let Step::Done(d) = tick(&input, &answers) else {
        panic!("decides without more questions");
    };
    assert_eq!(
        d.effects,
        [Effect::Event {
            warning: true,
            message: "HTTPRoute podinfo.test parent gw is not ready".into()
        }]
    );
    assert!(!d.status_changed);
    w.events.clear();
}

#[test]
fn every_phase_decides_without_panicking() {
    for phase in CanaryPhase::ALL {
        for strategy in [
            progressive(),
            json!({ "interval": "1m", "threshold": 1, "iterations": 2 }),
        ] {
            let mut w = World::new(canary(strategy));
            w.canary.status = Some(crate::api::CanaryStatus {
                phase,
                ..Default::default()
            });
            w.target = revision("v9");
            for _ in 0..12 {
                w.tick();
            }
        }
    }
}

#[test]
fn the_last_metric_values_are_kept_in_the_status() {
    let mut w = World::new(canary(progressive()));
    w.initialized_with_new_revision();
    w.run_until(Progressing, 1);
    w.tick();
    w.tick();
    let metrics = |w: &World| w.canary.status.as_ref().and_then(|s| s.metrics.clone());
    let passed = metrics(&w).expect("values after an analysed tick");
    assert_eq!(
        (passed[0].value, passed[0].message.clone()),
        (Some(0.5), None)
    );
    w.analysis = VecDeque::from([AnalysisOutcome::Failed(vec![
        "Halt podinfo.test advancement error-rate 30.00 > 1".into(),
    ])]);
    w.tick();
    let failed = metrics(&w).expect("values after a failed check");
    assert_eq!(failed[0].value, Some(30.0));
    assert_eq!(
        failed[0].message.as_deref(),
        Some("Halt podinfo.test advancement error-rate 30.00 > 1")
    );
}

#[test]
fn a_git_approval_gate_holds_without_any_webhook() {
    let a = json!({ "interval": "1m", "threshold": 2, "maxWeight": 20, "stepWeight": 10 });
    let mut w = World::new(canary(a));
    w.initialized_with_new_revision();
    w.git.gates = vec![HookType::ConfirmPromotion];
    w.git_hooks.insert(
        "confirm-promotion".into(),
        VecDeque::from([Err("no Git approval for revision v2".to_string()), Ok(())]),
    );
    let seen = w.run_until(Promoting, 10);
    assert_eq!(
        seen,
        [
            (Progressing, 0),
            (Progressing, 10),
            (Progressing, 20),
            (WaitingPromotion, 0),
            (Promoting, 0),
        ]
    );
    assert!(w.events.contains(
        &"Halt podinfo.test advancement waiting for promotion approval serin approve".to_string()
    ));
    assert!(
        w.events
            .contains(&"Confirm-promotion check serin approve passed".to_string())
    );
}

#[test]
fn a_git_rollback_rolls_back_without_a_webhook() {
    let mut w = World::new(canary(progressive()));
    w.initialized_with_new_revision();
    w.run_until(Progressing, 1);
    w.tick();
    w.git.gates = vec![HookType::Rollback];
    w.git_hooks
        .insert("rollback".into(), VecDeque::from([Ok(())]));
    w.run_until(Failed, 3);
    assert!(
        w.events
            .contains(&"Rolling back podinfo.test manual webhook invoked".to_string())
    );
}

#[test]
fn a_git_retry_analyses_the_failed_revision_again() {
    let mut w = World::new(canary(progressive()));
    w.initialized_with_new_revision();
    w.run_until(Progressing, 1);
    w.tick();
    let fail = || AnalysisOutcome::Failed(vec!["Halt podinfo.test advancement x".into()]);
    w.analysis = VecDeque::from([fail(), fail()]);
    w.run_until(Failed, 5);
    assert!(
        w.tick().effects.is_empty(),
        "a failed revision stays failed"
    );
    w.git.retry = true;
    w.tick();
    assert_eq!(w.phase(), Progressing);
    assert_eq!(
        w.canary
            .status
            .as_ref()
            .and_then(|s| s.last_applied_spec.clone()),
        Some("v2".into())
    );
}

#[test]
fn a_target_reverted_to_the_primary_is_adopted_without_analysis() {
    let mut w = World::new(canary(progressive()));
    w.initialized_with_new_revision();
    w.run_until(Progressing, 1);
    w.tick();
    let fail = || AnalysisOutcome::Failed(vec!["Halt podinfo.test advancement x".into()]);
    w.analysis = VecDeque::from([fail(), fail()]);
    w.run_until(Failed, 5);
    w.events.clear();
    // Git was reverted: the target is the primary's revision again, configs included.
    w.target = revision("v1");
    w.target.tracked_configs = [("configmap/podinfo-config".to_string(), "old".to_string())].into();
    let d = w.tick();
    assert_eq!(w.phase(), Failed);
    assert!(d.status_changed);
    assert_eq!(
        w.events,
        ["podinfo.test is back at the promoted revision; no analysis"]
    );
    let status = w.canary.status.clone().expect("status");
    assert_eq!(status.last_applied_spec.as_deref(), Some("v1"));
    for _ in 0..3 {
        assert!(
            w.tick().effects.is_empty(),
            "nothing starts for the reverted revision"
        );
    }
    assert_eq!(w.phase(), Failed);
    w.target = revision("v3");
    w.tick();
    assert_eq!(w.phase(), Progressing);
}
