//! One analysis tick of a canary, as a pure function (flagger-behaviour.md §2.2–§2.8).
//!
//! Flagger interleaves decisions with I/O inside a tick: it calls a gate only if the phase asks
//! for it, runs the metrics only after the gates passed, and so on. To keep that order without
//! doing I/O here, a tick is replayed: [`tick`] either asks one [`Question`] it needs answered
//! (primary readiness, the current routes, the hooks of one type, the metric analysis) or returns
//! the [`Decision`]: the new status and the ordered [`Effect`]s that carry it out. The runner
//! answers the question with real I/O, adds the answer and calls [`tick`] again; tests answer
//! from tables. A question is asked at most once per tick, and only when Flagger would act on it.
//!
//! The runner executes the effects in order and writes the status last: if an effect fails, the
//! status is not written and the next tick decides again from what the cluster shows.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{
    AlertSeverity, Canary, CanaryAnalysis, CanaryPhase, CanaryStatus, DeploymentStrategy, HookType,
    MetricCheckStatus,
};
pub use crate::router::Routes;
pub use crate::workload::Readiness;

/// The result of calling one webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookResult {
    pub name: String,
    /// `Err(reason)` when the hook did not answer with success.
    pub outcome: Result<(), String>,
    /// The hook's `muteAlert`.
    pub mute_alert: bool,
}

/// The metric analysis of one tick (rollout hooks, builtin checks, templates).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnalysisOutcome {
    Passed,
    /// The messages say why, e.g. "Halt podinfo.test advancement success rate 90.00% < 99%".
    Failed(Vec<String>),
}

/// What a tick needs to know before it can decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Question {
    PrimaryReady,
    CanaryReady,
    Routes,
    /// Call the hooks of this type in list order with this payload phase. For
    /// [`HookType::Rollback`] stop at the first success; for every other type at the first failure.
    Hooks(HookType, CanaryPhase),
    Analysis,
}

/// Answers gathered so far in this tick.
#[derive(Debug, Clone, Default)]
pub struct Answers {
    pub primary_ready: Option<Readiness>,
    pub canary_ready: Option<Readiness>,
    pub routes: Option<Result<Routes, String>>,
    pub hooks: Vec<(HookType, Vec<HookResult>)>,
    pub analysis: Option<AnalysisOutcome>,
    /// The metric values behind the analysis answer, kept in the status.
    pub metric_values: Option<Vec<MetricCheckStatus>>,
}

impl Answers {
    fn hooks_of(&self, kind: HookType) -> Option<&Vec<HookResult>> {
        self.hooks.iter().find(|(k, _)| *k == kind).map(|(_, r)| r)
    }
}

/// Something the runner must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    SetRoutes(Routes),
    /// Copy the target's template (and configs) to the primary.
    Promote,
    ScaleTargetToZero,
    ScaleTargetFromZero,
    /// Bring the primary autoscaler in line with the target's.
    SyncPrimaryAutoscaler,
    /// Call the post-rollout hooks with this phase; failures are only reported.
    PostRolloutHooks(CanaryPhase),
    Event {
        warning: bool,
        message: String,
    },
    Alert {
        severity: AlertSeverity,
        message: String,
    },
}

/// The outcome of a tick.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub status: CanaryStatus,
    /// Whether `status` differs from the canary's current status (and must be written).
    pub status_changed: bool,
    pub effects: Vec<Effect>,
    /// The tick got past the failed-checks threshold to the analysis (§2.2 step 27): Flagger's
    /// `flagger_canary_duration_seconds` times only such ticks.
    pub analysed: bool,
}

/// A tick either needs to know something or has decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Ask(Question),
    Done(Box<Decision>),
}

/// What the target currently is: the revision the analysis is about.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetRevision {
    /// Hash of the target's pod template.
    pub hash: String,
    /// `configmap/<name>` / `secret/<name>` → checksum.
    pub tracked_configs: BTreeMap<String, String>,
}

/// Everything a tick reads besides the answers.
#[derive(Debug, Clone)]
pub struct TickInput<'a> {
    /// Spec and current status.
    pub canary: &'a Canary,
    pub target: &'a TargetRevision,
    /// The provider in force (the canary's, else Serin's default) is `kubernetes`.
    pub kubernetes_provider: bool,
    pub now: Time,
    /// What Git approvals add to this tick (all off without a Git source).
    pub git: GitInput,
}

/// What `serin approve | rollback | retry` commits ask of a tick.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitInput {
    /// Gate types to ask about even if the canary has no webhook of that type: a Git approval
    /// exists for them, or the `serin.dev/approval` annotation requires one.
    pub gates: Vec<HookType>,
    /// A retry of the failed revision was committed after the failure: analyse it again.
    pub retry: bool,
}

/// Decides one tick, or asks what it needs to know.
pub fn tick(input: &TickInput, answers: &Answers) -> Step {
    let mut t = Tick::new(input, answers);
    match t.run() {
        Ok(()) => Step::Done(Box::new(t.finish())),
        Err(question) => Step::Ask(question),
    }
}

/// All traffic on the primary, copied to the canary.
const fn mirroring() -> Routes {
    Routes {
        primary: 100,
        canary: 0,
        mirrored: true,
    }
}

/// Flagger's phases in which an analysis is under way.
fn in_analysis(phase: CanaryPhase) -> bool {
    matches!(
        phase,
        CanaryPhase::Progressing
            | CanaryPhase::Waiting
            | CanaryPhase::WaitingPromotion
            | CanaryPhase::Promoting
            | CanaryPhase::Finalising
    )
}

struct Tick<'a> {
    input: &'a TickInput<'a>,
    answers: &'a Answers,
    /// The analysis in force, with Flagger's in-memory adjustments for `provider: kubernetes`.
    analysis: CanaryAnalysis,
    status: CanaryStatus,
    effects: Vec<Effect>,
    /// Status fields were written (Flagger sets lastTransitionTime on every status write).
    wrote_status: bool,
    analysed: bool,
}

type Flow = Result<(), Question>;

impl<'a> Tick<'a> {
    fn new(input: &'a TickInput<'a>, answers: &'a Answers) -> Self {
        Tick {
            input,
            answers,
            analysis: input.canary.spec.analysis().cloned().unwrap_or_default(),
            status: input.canary.status.clone().unwrap_or_default(),
            effects: Vec::new(),
            wrote_status: false,
            analysed: false,
        }
    }

    // ---- small helpers -------------------------------------------------------------------

    fn name(&self) -> String {
        self.input.canary.dotted_name()
    }

    fn target_name(&self) -> String {
        let c = self.input.canary;
        format!(
            "{}.{}",
            c.spec.target_name(),
            c.metadata.namespace.as_deref().unwrap_or_default()
        )
    }

    fn kind(&self) -> &str {
        self.input
            .canary
            .spec
            .target_ref
            .as_ref()
            .map_or("Deployment", |t| t.kind())
    }

    fn event(&mut self, message: String) {
        self.effects.push(Effect::Event {
            warning: false,
            message,
        });
    }

    fn warning(&mut self, message: String) {
        self.effects.push(Effect::Event {
            warning: true,
            message,
        });
    }

    fn alert(&mut self, severity: AlertSeverity, message: impl Into<String>) {
        self.effects.push(Effect::Alert {
            severity,
            message: message.into(),
        });
    }

    fn effect(&mut self, e: Effect) {
        self.effects.push(e);
    }

    fn skip_analysis(&self) -> bool {
        self.input.canary.spec.skip_analysis()
    }

    fn phase(&self) -> CanaryPhase {
        self.status.phase
    }

    // ---- status writers, with Flagger's semantics (§1.4) ----------------------------------

    fn touch(&mut self) {
        self.wrote_status = true;
    }

    /// `SyncStatus`: phase, weight, failed checks and iterations, plus the current revision.
    fn sync_status(
        &mut self,
        phase: CanaryPhase,
        weight: u32,
        failed_checks: i32,
        iterations: i32,
    ) {
        self.status.phase = phase;
        self.status.canary_weight = weight as i32;
        self.status.failed_checks = failed_checks;
        self.status.iterations = iterations;
        self.status.last_applied_spec = Some(self.input.target.hash.clone());
        self.status.tracked_configs = Some(self.input.target.tracked_configs.clone());
        if phase == CanaryPhase::Initialized {
            self.status.last_promoted_spec = Some(self.input.target.hash.clone());
        }
        self.touch();
    }

    /// `SetStatusPhase`.
    fn set_phase(&mut self, phase: CanaryPhase) {
        if !matches!(
            phase,
            CanaryPhase::Progressing | CanaryPhase::Waiting | CanaryPhase::Promoting
        ) {
            self.status.canary_weight = 0;
            self.status.iterations = if phase == CanaryPhase::WaitingPromotion {
                self.analysis.iterations() as i32 - 1
            } else {
                0
            };
        }
        if matches!(phase, CanaryPhase::Initialized | CanaryPhase::Succeeded) {
            self.status.last_promoted_spec = self.status.last_applied_spec.clone();
        }
        self.status.phase = phase;
        self.touch();
    }

    fn set_weight(&mut self, weight: u32) {
        self.status.canary_weight = weight as i32;
        self.touch();
    }

    fn set_iterations(&mut self, iterations: i32) {
        self.status.iterations = iterations;
        self.touch();
    }

    fn add_failed_check(&mut self) {
        self.status.failed_checks += 1;
        self.touch();
    }

    // ---- questions -----------------------------------------------------------------------

    fn primary_ready(&self) -> Result<Readiness, Question> {
        self.answers
            .primary_ready
            .clone()
            .ok_or(Question::PrimaryReady)
    }

    fn canary_ready(&self) -> Result<Readiness, Question> {
        self.answers
            .canary_ready
            .clone()
            .ok_or(Question::CanaryReady)
    }

    fn routes(&self) -> Result<Result<Routes, String>, Question> {
        self.answers.routes.clone().ok_or(Question::Routes)
    }

    /// The results of the hooks of `kind`; empty (without asking) when the canary has none.
    fn hooks(&self, kind: HookType, phase: CanaryPhase) -> Result<Vec<HookResult>, Question> {
        if self.analysis.webhooks_of(kind).next().is_none() && !self.input.git.gates.contains(&kind)
        {
            return Ok(Vec::new());
        }
        self.answers
            .hooks_of(kind)
            .cloned()
            .ok_or(Question::Hooks(kind, phase))
    }

    /// Runs a gate: `Ok(true)` when every hook passed; emits the "passed" events Flagger emits.
    fn gate(
        &mut self,
        kind: HookType,
        phase: CanaryPhase,
        passed_event: &str,
    ) -> Result<Result<(), HookResult>, Question> {
        for result in self.hooks(kind, phase)? {
            match &result.outcome {
                Ok(()) => self.event(format!("{passed_event} {} passed", result.name)),
                Err(_) => return Ok(Err(result)),
            }
        }
        Ok(Ok(()))
    }

    // ---- the tick (§2.2) -----------------------------------------------------------------

    fn run(&mut self) -> Flow {
        if self.input.canary.spec.suspended() {
            self.event("skipping canary run as object is suspended".into());
            return Ok(());
        }
        if matches!(
            self.phase(),
            CanaryPhase::Unknown | CanaryPhase::Initializing
        ) {
            return self.initialize();
        }
        if matches!(
            self.phase(),
            CanaryPhase::Terminating | CanaryPhase::Terminated
        ) {
            return Ok(());
        }
        if self.back_at_promoted_revision() {
            return Ok(());
        }
        if !self.should_advance() {
            return Ok(());
        }
        if !self.skip_analysis() {
            match self.primary_ready()? {
                Readiness::Ready => {}
                Readiness::Waiting(msg) => {
                    self.warning(msg);
                    return Ok(());
                }
                Readiness::Failed(msg) => {
                    self.warning(msg.clone());
                    return if matches!(
                        self.phase(),
                        CanaryPhase::Promoting | CanaryPhase::Finalising
                    ) {
                        self.failed_promotion(&msg);
                        Ok(())
                    } else {
                        self.rollback()
                    };
                }
            }
        }
        let routes = match self.routes()? {
            Ok(r) => r,
            Err(msg) => {
                self.warning(msg);
                return Ok(());
            }
        };
        if !matches!(
            self.phase(),
            CanaryPhase::Progressing
                | CanaryPhase::WaitingPromotion
                | CanaryPhase::Promoting
                | CanaryPhase::Finalising
        ) {
            return self.start_run();
        }
        if matches!(
            self.phase(),
            CanaryPhase::Progressing | CanaryPhase::WaitingPromotion
        ) && self.revision_changed_since_sync()
        {
            self.event(format!(
                "New revision detected! Restarting analysis for {}",
                self.name()
            ));
            self.effect(Effect::SetRoutes(Routes::new(100, 0)));
            self.sync_status(CanaryPhase::Progressing, 0, 0, 0);
            return Ok(());
        }
        match self.canary_ready()? {
            Readiness::Ready => {}
            Readiness::Waiting(msg) => {
                self.warning(msg);
                return Ok(());
            }
            Readiness::Failed(msg) => {
                self.warning(msg);
                return self.rollback();
            }
        }
        if self.skip_analysis() {
            self.promote_without_analysis();
            return Ok(());
        }
        if matches!(
            self.phase(),
            CanaryPhase::Progressing | CanaryPhase::Waiting | CanaryPhase::WaitingPromotion
        ) {
            let phase = self.phase();
            for result in self.hooks(HookType::Rollback, phase)? {
                match result.outcome {
                    Err(_) => self.event(format!(
                        "Rollback hook {} not signaling a rollback",
                        result.name
                    )),
                    Ok(()) => {
                        self.warning(format!("Rollback check {} passed", result.name));
                        self.warning(format!(
                            "Rolling back {} manual webhook invoked",
                            self.name()
                        ));
                        self.alert(AlertSeverity::Warn, "Rolling back manual webhook invoked");
                        return self.rollback();
                    }
                }
            }
        }
        match self.phase() {
            CanaryPhase::Promoting => {
                self.effect(Effect::SyncPrimaryAutoscaler);
                self.promotion_traffic_shift(routes);
                return Ok(());
            }
            CanaryPhase::Finalising => {
                self.effect(Effect::ScaleTargetToZero);
                self.set_phase(CanaryPhase::Succeeded);
                self.effect(Effect::PostRolloutHooks(CanaryPhase::Succeeded));
                self.event(format!(
                    "Promotion completed! Scaling down {}",
                    self.target_name()
                ));
                self.alert(
                    AlertSeverity::Info,
                    "Canary analysis completed successfully, promotion finished.",
                );
                return Ok(());
            }
            _ => {}
        }
        if self.status.failed_checks >= self.analysis.threshold() as i32 {
            return self.rollback();
        }
        self.analysed = true;
        if routes.canary == 0
            && self.status.iterations == 0
            && !(self.analysis.mirror() && routes.mirrored)
        {
            self.event(format!(
                "Starting canary analysis for {}",
                self.target_name()
            ));
            if let Err(failed) = self.gate(
                HookType::PreRollout,
                CanaryPhase::Progressing,
                "Pre-rollout check",
            )? {
                self.warning(format!(
                    "Halt {} advancement pre-rollout check {} failed {}",
                    self.name(),
                    failed.name,
                    failed.outcome.err().unwrap_or_default()
                ));
                self.add_failed_check();
                return Ok(());
            }
        } else {
            let outcome = self.answers.analysis.clone().ok_or(Question::Analysis)?;
            if let Some(values) = &self.answers.metric_values
                && self.status.metrics.as_ref() != Some(values)
            {
                self.status.metrics = Some(values.clone());
                self.touch();
            }
            match outcome {
                AnalysisOutcome::Passed => {}
                AnalysisOutcome::Failed(messages) => {
                    for m in messages {
                        self.warning(m);
                    }
                    self.add_failed_check();
                    return Ok(());
                }
            }
        }
        self.kubernetes_adjustments();
        match self.analysis.strategy() {
            DeploymentStrategy::AbTesting => self.run_ab(),
            DeploymentStrategy::BlueGreen => self.run_blue_green(routes),
            DeploymentStrategy::Canary => self.run_canary(routes),
        }
    }

    /// Phase "" / Initializing: once the primary is ready, take the target down and finish
    /// initialization (§2.2 steps 9–14). The runner has created the primary, Services and routes.
    fn initialize(&mut self) -> Flow {
        if !self.skip_analysis() {
            match self.primary_ready()? {
                Readiness::Ready => {}
                Readiness::Waiting(msg) => {
                    self.warning(msg);
                    if self.phase() == CanaryPhase::Unknown {
                        self.set_phase(CanaryPhase::Initializing);
                    }
                    return Ok(());
                }
                Readiness::Failed(msg) => {
                    self.warning(msg);
                    return self.rollback();
                }
            }
        }
        self.effect(Effect::ScaleTargetToZero);
        self.sync_status(CanaryPhase::Initialized, 0, 0, 0);
        self.event(format!("Initialization done! {}", self.name()));
        let kind = self.kind().to_string();
        self.alert(
            AlertSeverity::Info,
            format!("New {kind} detected, initialization completed."),
        );
        Ok(())
    }

    /// `shouldAdvance`: an analysis is under way, or the target changed since the last sync
    /// (Serin: or a Git retry asks to analyse the failed revision again).
    fn should_advance(&self) -> bool {
        in_analysis(self.phase())
            || self.target_changed()
            || self.configs_changed()
            || (self.phase() == CanaryPhase::Failed && self.input.git.retry)
    }

    /// Serin: a failed canary whose target went back to what the primary runs (a revert in Git,
    /// or by hand) adopts it as its applied revision, so that no analysis starts for it and a
    /// later change is compared with it. Flagger keeps the failed revision as applied, and the
    /// reverted configs would then look like a change to analyse.
    fn back_at_promoted_revision(&mut self) -> bool {
        let hash = &self.input.target.hash;
        if self.phase() != CanaryPhase::Failed
            || self.status.last_promoted_spec.as_ref() != Some(hash)
            || self.status.last_applied_spec.as_ref() == Some(hash)
        {
            return false;
        }
        self.status.last_applied_spec = Some(hash.clone());
        self.status.tracked_configs = Some(self.input.target.tracked_configs.clone());
        self.touch();
        self.event(format!(
            "{} is back at the promoted revision; no analysis",
            self.target_name()
        ));
        true
    }

    /// `hasSpecChanged`: a revision equal to the promoted one is not a change (a manual
    /// rollback to the primary's spec starts nothing).
    fn target_changed(&self) -> bool {
        let hash = &self.input.target.hash;
        match &self.status.last_applied_spec {
            None => true,
            Some(_) if self.status.last_promoted_spec.as_ref() == Some(hash) => false,
            Some(applied) => applied != hash,
        }
    }

    /// `HaveDependenciesChanged`.
    fn configs_changed(&self) -> bool {
        let current = &self.input.target.tracked_configs;
        match &self.status.tracked_configs {
            None => !current.is_empty(),
            Some(tracked) => tracked != current,
        }
    }

    /// Restart check: the target or its configs differ from what the run started with.
    fn revision_changed_since_sync(&self) -> bool {
        self.status.last_applied_spec.as_ref() != Some(&self.input.target.hash)
            || self.configs_changed()
    }

    /// `checkCanaryStatus` for Initialized / Succeeded / Failed with a change, or Waiting: the
    /// confirm-rollout gate, then scale the target up and start the run.
    fn start_run(&mut self) -> Flow {
        let phase = self.phase();
        if let Err(failed) = self.gate(HookType::ConfirmRollout, phase, "Confirm-rollout check")? {
            if phase != CanaryPhase::Waiting {
                self.set_phase(CanaryPhase::Waiting);
            }
            self.warning(format!(
                "Halt {} advancement waiting for approval {}",
                self.name(),
                failed.name
            ));
            if !failed.mute_alert {
                self.alert(AlertSeverity::Warn, "Canary is waiting for approval.");
            }
            return Ok(());
        }
        self.event(format!(
            "New revision detected! Scaling up {}",
            self.target_name()
        ));
        self.alert(
            AlertSeverity::Info,
            "New revision detected, progressing canary analysis.",
        );
        self.effect(Effect::ScaleTargetFromZero);
        self.sync_status(CanaryPhase::Progressing, 0, 0, 0);
        Ok(())
    }

    fn promote_without_analysis(&mut self) {
        self.effect(Effect::SetRoutes(Routes::new(100, 0)));
        let (target, primary) = self.copy_names();
        self.event(format!("Copying {target} template spec to {primary}"));
        self.effect(Effect::Promote);
        self.effect(Effect::SyncPrimaryAutoscaler);
        self.effect(Effect::ScaleTargetToZero);
        self.set_phase(CanaryPhase::Succeeded);
        self.effect(Effect::PostRolloutHooks(CanaryPhase::Succeeded));
        self.event(format!(
            "Promotion completed! Canary analysis was skipped for {}",
            self.target_name()
        ));
        self.alert(
            AlertSeverity::Info,
            "Canary analysis was skipped, promotion finished.",
        );
    }

    fn copy_names(&self) -> (String, String) {
        let c = self.input.canary;
        let ns = c.metadata.namespace.as_deref().unwrap_or_default();
        (
            format!("{}.{ns}", c.spec.target_name()),
            format!("{}.{ns}", c.spec.primary_target_name()),
        )
    }

    /// Copy the target to the primary and enter Promoting (§2.3).
    fn promote(&mut self) {
        let (target, primary) = self.copy_names();
        self.event(format!("Copying {target} template spec to {primary}"));
        self.effect(Effect::Promote);
        self.set_phase(CanaryPhase::Promoting);
    }

    /// §2.6: after the primary rolled out, move traffic back to it.
    fn promotion_traffic_shift(&mut self, routes: Routes) {
        if self.input.kubernetes_provider {
            self.set_phase(CanaryPhase::Finalising);
            return;
        }
        let step = self.analysis.step_weight_promotion();
        if step == 0 || routes.canary == 0 {
            self.event("Routing all traffic to primary".into());
            self.effect(Effect::SetRoutes(Routes::new(100, 0)));
            self.set_phase(CanaryPhase::Finalising);
            return;
        }
        let primary = (routes.primary + step).min(100);
        let canary = routes.canary.saturating_sub(step);
        self.effect(Effect::SetRoutes(Routes::new(primary, canary)));
        self.event(format!("Advance {} primary weight {primary}", self.name()));
        if primary == 100 {
            self.set_phase(CanaryPhase::Finalising);
        } else {
            self.set_weight(canary);
        }
    }

    /// The confirm-promotion gate; `Ok(true)` when promotion may go ahead.
    fn confirm_promotion(&mut self) -> Result<bool, Question> {
        match self.gate(
            HookType::ConfirmPromotion,
            CanaryPhase::Progressing,
            "Confirm-promotion check",
        )? {
            Ok(()) => Ok(true),
            Err(failed) => {
                if self.phase() != CanaryPhase::WaitingPromotion {
                    self.set_phase(CanaryPhase::WaitingPromotion);
                    self.warning(format!(
                        "Halt {} advancement waiting for promotion approval {}",
                        self.name(),
                        failed.name
                    ));
                    if !failed.mute_alert {
                        self.alert(
                            AlertSeverity::Warn,
                            "Canary promotion is waiting for approval.",
                        );
                    }
                } else {
                    // Keep the analysis running while the gate stays closed.
                    let iterations = self.analysis.iterations() as i32 - 1;
                    self.set_iterations(iterations);
                }
                Ok(false)
            }
        }
    }

    /// `provider: kubernetes` can only do blue/green (§2.2 step 29); adjusted in memory only.
    fn kubernetes_adjustments(&mut self) {
        if !self.input.kubernetes_provider {
            return;
        }
        if self
            .analysis
            .r#match
            .as_ref()
            .is_some_and(|m| !m.is_empty())
        {
            self.warning("A/B testing is not supported when using the kubernetes provider".into());
            self.analysis.r#match = None;
        }
        if self.analysis.iterations() < 1 {
            self.warning(
                "Progressive traffic is not supported when using the kubernetes provider".into(),
            );
            self.warning("Setting canaryAnalysis.iterations: 10".into());
            self.analysis.iterations = Some(10);
        }
    }

    fn run_canary(&mut self, routes: Routes) -> Flow {
        let next = self.analysis.next_step_weight(routes.canary);
        if next == 0 {
            // Flagger stalls: no step weight means the canary never advances.
            return Ok(());
        }
        if !routes.mirrored
            && !matches!(
                self.phase(),
                CanaryPhase::Promoting | CanaryPhase::WaitingPromotion | CanaryPhase::Finalising
            )
            && let Err(failed) = self.gate(
                HookType::ConfirmTrafficIncrease,
                CanaryPhase::Progressing,
                "Confirm-traffic-increase check",
            )?
        {
            self.warning(format!(
                "Halt {} advancement waiting for traffic increase approval {}",
                self.name(),
                failed.name
            ));
            if !failed.mute_alert {
                self.alert(
                    AlertSeverity::Warn,
                    "Canary traffic increase is waiting for approval.",
                );
            }
            return Ok(());
        }
        if routes.canary < self.analysis.max_weight() {
            let new = if self.analysis.mirror() && routes.canary == 0 {
                if routes.mirrored {
                    Routes::new(100 - next.min(100), next.min(100))
                } else {
                    mirroring()
                }
            } else {
                Routes::new(
                    routes.primary.saturating_sub(next),
                    (routes.canary + next).min(100),
                )
            };
            self.effect(Effect::SetRoutes(new));
            self.set_weight(new.canary);
            self.event(format!(
                "Advance {} canary weight {}",
                self.name(),
                new.canary
            ));
            return Ok(());
        }
        if self.confirm_promotion()? {
            self.promote();
        }
        Ok(())
    }

    /// Counts one more analysed iteration of an A/B or blue/green run.
    fn advance_iteration(&mut self, iterations: i32) {
        let done = self.status.iterations + 1;
        self.set_iterations(done);
        self.event(format!(
            "Advance {} canary iteration {done}/{iterations}",
            self.name()
        ));
    }

    fn run_ab(&mut self) -> Flow {
        let iterations = self.analysis.iterations() as i32;
        if iterations > self.status.iterations {
            // Only requests matching the A/B rule reach the canary.
            self.effect(Effect::SetRoutes(Routes::new(0, 100)));
            self.advance_iteration(iterations);
            return Ok(());
        }
        if !self.confirm_promotion()? {
            return Ok(());
        }
        if iterations == self.status.iterations {
            self.promote();
        }
        Ok(())
    }

    fn run_blue_green(&mut self, routes: Routes) -> Flow {
        let iterations = self.analysis.iterations() as i32;
        let kubernetes = self.input.kubernetes_provider;
        if iterations > self.status.iterations {
            if !kubernetes && self.analysis.mirror() && !routes.mirrored {
                self.effect(Effect::SetRoutes(mirroring()));
            }
            self.advance_iteration(iterations);
            return Ok(());
        }
        if !self.confirm_promotion()? {
            return Ok(());
        }
        if iterations == self.status.iterations {
            if !kubernetes {
                if self.analysis.mirror() {
                    self.event("Stop traffic mirroring and route all traffic to canary".into());
                } else {
                    self.event("Routing all traffic to canary".into());
                }
                self.effect(Effect::SetRoutes(Routes::new(0, 100)));
            }
            self.set_iterations(iterations + 1);
            return Ok(());
        }
        if iterations < self.status.iterations {
            self.promote();
        }
        Ok(())
    }

    /// §2.7.
    fn rollback(&mut self) -> Flow {
        let threshold = self.analysis.threshold() as i32;
        if self.status.failed_checks >= threshold {
            self.warning(format!(
                "Rolling back {} failed checks threshold reached {}",
                self.name(),
                self.status.failed_checks
            ));
            self.alert(
                AlertSeverity::Error,
                format!(
                    "Failed checks threshold reached {}",
                    self.status.failed_checks
                ),
            );
        }
        self.effect(Effect::SetRoutes(Routes::new(100, 0)));
        self.warning(format!("Canary failed! Scaling down {}", self.name()));
        self.effect(Effect::ScaleTargetToZero);
        self.sync_status(CanaryPhase::Failed, 0, 0, 0);
        self.effect(Effect::PostRolloutHooks(CanaryPhase::Failed));
        Ok(())
    }

    /// `handleFailedPromotion`: the primary will not become ready; traffic stays on the canary.
    fn failed_promotion(&mut self, reason: &str) {
        self.warning(format!(
            "Promotion of {} failed, primary not ready: {reason}",
            self.name()
        ));
        self.alert(
            AlertSeverity::Error,
            format!("Promotion failed, primary not ready: {reason}"),
        );
        self.effect(Effect::SetRoutes(Routes::new(0, 100)));
        // SyncStatus zeroes what it is not given: failed checks and iterations.
        self.sync_status(CanaryPhase::Failed, 100, 0, 0);
        self.effect(Effect::PostRolloutHooks(CanaryPhase::Failed));
    }

    fn finish(mut self) -> Decision {
        let before = self.input.canary.status.clone().unwrap_or_default();
        if self.wrote_status {
            let kind = self.kind().to_string();
            let phase = self.status.phase;
            self.status
                .update_promoted_condition(phase, &kind, self.input.now.clone());
            self.status.last_transition_time = Some(self.input.now.clone());
        }
        Decision {
            status_changed: self.wrote_status && self.status != before,
            status: self.status,
            effects: self.effects,
            analysed: self.analysed,
        }
    }
}
