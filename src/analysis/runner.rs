//! One analysis tick of one canary against the cluster: bootstrap what the canary needs, then
//! let the pure state machine decide — answering its questions with real I/O — and carry out
//! its effects in order, writing the status last (flagger-behaviour.md §2.2).

use kube::{Api, Client};

use super::finalizer::{self, FinalizerStep};
use super::machine::GitInput;
use super::machine::{
    AnalysisOutcome, Answers, Decision, Effect, HookResult, Question, Readiness, Step,
    TargetRevision, TickInput, tick,
};
use super::metrics::MetricAnalyzer;
use super::report::{EventRecorder, write_status};
use crate::alerts::{Alert, AlertDispatcher};
use crate::api::{Canary, CanaryPhase, CanaryStatus, HookType};
use crate::gates::{EventType, HookRun, WebhookClient};
use crate::gitops::{GitGate, GitLink};
use crate::ledger::GateRecord;
use crate::message::error_chain;
use crate::revision::{ConfigContent, ConfigKind, Revision, RevisionInput, config_refs};
use crate::router::{AnyRouter, KubernetesRouter, Router, Routes, ServiceSelector};
use crate::telemetry::metrics::{Metrics, TickObservation};
use crate::workload::{WorkloadOptions, Workloads};

/// What a question of the machine is about.
struct Ask<'a> {
    canary: &'a Canary,
    router: &'a AnyRouter,
    target: &'a TargetRevision,
}

/// How the runner behaves where a canary does not say.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// Flagger's `-mesh-provider`: the provider of canaries that set none.
    pub default_provider: String,
    /// Flagger's `-metrics-server`.
    pub metrics_server: Option<String>,
    /// Flagger's `-event-webhook`: where events go when a canary has no `event` webhook.
    pub event_webhook: Option<String>,
    pub workloads: WorkloadOptions,
    /// Tells replicas of Serin apart in Events.
    pub instance: Option<String>,
    /// The shortest analysis interval (Flagger's is 10 s; tests and demos may go lower).
    pub min_interval: std::time::Duration,
    /// Settings of the NGINX and Contour routers.
    pub routing: crate::router::RoutingOptions,
}

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("cannot read Canary {canary}")]
    Get {
        canary: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error(transparent)]
    Report(#[from] super::report::ReportError),
    #[error("cannot build the webhook client: {0}")]
    Webhooks(String),
    #[error("cannot build the alert client: {0}")]
    Alerts(String),
}

/// Runs ticks of canaries in one cluster.
pub struct Runner {
    client: Client,
    options: RunnerOptions,
    workloads: Workloads,
    services: KubernetesRouter,
    hooks: WebhookClient,
    metrics: MetricAnalyzer,
    events: EventRecorder,
    alerts: AlertDispatcher,
    /// Approvals and the ledger, when the configuration comes from Git.
    git: Option<GitLink>,
    /// Prometheus metrics, when the runner serves them (`serin run --listen`).
    telemetry: Option<Metrics>,
}

/// What one tick did, for logs and tests.
#[derive(Debug, Clone, PartialEq)]
pub struct TickReport {
    /// When to tick again: the canary's analysis interval.
    pub interval: std::time::Duration,
    pub phase: CanaryPhase,
    pub canary_weight: i32,
    /// The event messages of the tick, in order.
    pub events: Vec<String>,
}

impl Runner {
    pub fn new(client: Client, options: RunnerOptions) -> Result<Self, RunnerError> {
        Ok(Runner {
            workloads: Workloads::new(client.clone(), options.workloads.clone()),
            services: KubernetesRouter::new(client.clone()),
            hooks: WebhookClient::new().map_err(|e| RunnerError::Webhooks(e.to_string()))?,
            metrics: MetricAnalyzer::new(
                client.clone(),
                options.metrics_server.clone(),
                options.default_provider.clone(),
            ),
            events: EventRecorder::new(client.clone(), options.instance.clone()),
            alerts: AlertDispatcher::new(client.clone())
                .map_err(|e| RunnerError::Alerts(e.to_string()))?,
            git: None,
            telemetry: None,
            client,
            options,
        })
    }

    /// Connects the runner to the Git loop: approvals open gates, ticks feed the ledger.
    pub fn with_git(mut self, link: GitLink) -> Self {
        self.git = Some(link);
        self
    }

    /// Records every tick in `metrics` (Flagger's `flagger_canary_*` series).
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.telemetry = Some(metrics);
        self
    }

    pub fn telemetry(&self) -> Option<&Metrics> {
        self.telemetry.as_ref()
    }

    fn api_error(&self, operation: &str) {
        if let Some(m) = &self.telemetry {
            m.inc_api_errors(operation, 1);
        }
    }

    /// Records a tick's outcome in the metrics. `analysed_since` is the tick's start when it
    /// reached the analysis (§2.2 step 27).
    fn observe(
        &self,
        canary: &Canary,
        after: &CanaryStatus,
        routes: Option<Routes>,
        analysed_since: Option<std::time::Instant>,
    ) {
        if let Some(m) = &self.telemetry {
            m.record_tick(&TickObservation {
                canary,
                before: canary
                    .status
                    .as_ref()
                    .map_or_else(CanaryPhase::default, |s| s.phase),
                after,
                routes,
                duration: analysed_since.map(|t| t.elapsed()),
            });
        }
    }

    fn provider(&self, canary: &Canary) -> String {
        canary
            .spec
            .provider
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| self.options.default_provider.clone())
    }

    fn router(&self, provider: &str) -> Option<AnyRouter> {
        AnyRouter::for_provider(
            provider,
            &self.client,
            &self.options.routing,
            &self.options.workloads.include_label_prefixes,
        )
    }

    /// One tick of the canary `namespace/name`; `None` if it no longer exists. Its log lines
    /// carry the target's `revision` once it is known.
    #[tracing::instrument(name = "tick", skip_all, fields(revision = tracing::field::Empty))]
    pub async fn tick(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<TickReport>, RunnerError> {
        let started = std::time::Instant::now();
        let api = Api::<Canary>::namespaced(self.client.clone(), namespace);
        let canary = api.get_opt(name).await;
        let canary = canary.inspect_err(|_| self.api_error("get_canary"));
        let canary = canary.map_err(|source| RunnerError::Get {
            canary: format!("{namespace}/{name}"),
            source: Box::new(source),
        })?;
        let Some(canary) = canary else {
            return Ok(None);
        };
        let mut events = Vec::new();
        match finalizer::step(&canary) {
            FinalizerStep::Proceed => {}
            step @ (FinalizerStep::Add | FinalizerStep::Remove) => {
                let held = step == FinalizerStep::Add;
                // The analysis goes on either way; a failed write is retried next tick.
                if let Err(e) = finalizer::set_finalizer(&self.client, &canary, held).await {
                    self.api_error("update_finalizer");
                    tracing::warn!(canary = %canary.dotted_name(), "cannot update the finalizer: {e}");
                }
            }
            FinalizerStep::Release => {
                if let Err(e) = finalizer::set_finalizer(&self.client, &canary, false).await {
                    self.api_error("update_finalizer");
                    tracing::warn!(canary = %canary.dotted_name(), "cannot remove the finalizer: {e}");
                }
                return Ok(None);
            }
            FinalizerStep::Gone => return Ok(None),
            FinalizerStep::Finalize => {
                let status = canary.status.clone().unwrap_or_default();
                self.finalize(&canary, &mut events).await;
                return Ok(Some(TickReport {
                    interval: canary
                        .spec
                        .analysis()
                        .map_or(self.options.min_interval, |a| {
                            a.interval_with_minimum(self.options.min_interval)
                        }),
                    phase: CanaryPhase::Terminating,
                    canary_weight: status.canary_weight,
                    events: events.into_iter().map(|(_, m)| m).collect(),
                }));
            }
        }
        let status = canary.status.clone().unwrap_or_default();
        let interval = canary.spec.analysis().map_or(
            self.options
                .min_interval
                .max(std::time::Duration::from_secs(60)),
            |a| a.interval_with_minimum(self.options.min_interval),
        );
        let unchanged = |events: Vec<(bool, String)>| TickReport {
            interval,
            phase: status.phase,
            canary_weight: status.canary_weight,
            events: events.into_iter().map(|(_, m)| m).collect(),
        };
        let (router, target) = match self.prepare(&canary).await {
            Ok(prepared) => prepared,
            Err(message) => {
                self.event(&canary, true, &message, &mut events).await;
                self.observe(&canary, &status, None, None);
                return Ok(Some(unchanged(events)));
            }
        };
        if !target.hash.is_empty() {
            tracing::Span::current().record("revision", target.hash.as_str());
        }
        let mut gates = Vec::new();
        let (decision, read_routes) = self
            .decide(&canary, &router, &target, &mut gates, &mut events)
            .await;
        let analysed_since = decision.analysed.then_some(started);
        let mut new_status = decision.status.clone();
        if !self
            .carry_out(&canary, &router, &decision, &mut new_status, &mut events)
            .await
        {
            self.observe(&canary, &status, read_routes, analysed_since);
            return Ok(Some(unchanged(events)));
        }
        // The weights Flagger records: those the tick set last, else those it read.
        let routes = decision
            .effects
            .iter()
            .rev()
            .find_map(|e| match e {
                Effect::SetRoutes(r) => Some(*r),
                _ => None,
            })
            .or(read_routes);
        if decision.status_changed || new_status != decision.status {
            let written = write_status(&self.client, &canary, &new_status).await;
            written.inspect_err(|_| self.api_error("update_status"))?;
            if let Some(git) = &self.git {
                git.observe(
                    &canary,
                    &new_status,
                    &crate::ledger::revision_id(&target.hash, &target.tracked_configs),
                    &events,
                    gates,
                );
            }
        }
        self.observe(&canary, &new_status, routes, analysed_since);
        Ok(Some(TickReport {
            interval,
            phase: new_status.phase,
            canary_weight: new_status.canary_weight,
            events: events.into_iter().map(|(_, m)| m).collect(),
        }))
    }

    /// A Canary deleted with `revertOnDeletion` (§2.9): Terminating, the target scaled back and
    /// ready, the apex Service and the provider's routing object restored, then the finalizer
    /// removed and Terminated. A failed step is a Warning event; the next tick tries again.
    async fn finalize(&self, canary: &Canary, events: &mut Vec<(bool, String)>) {
        let name = canary.dotted_name();
        let status = canary.status.clone().unwrap_or_default();
        if status.phase != CanaryPhase::Terminating {
            let terminating = CanaryStatus {
                phase: CanaryPhase::Terminating,
                ..status
            };
            if let Err(e) = write_status(&self.client, canary, &terminating).await {
                self.api_error("update_status");
                tracing::warn!(canary = %name, "{}", error_chain(&e));
            }
            self.event(canary, false, &format!("Terminating canary {name}"), events)
                .await;
        }
        let reverted = async {
            self.workloads
                .finalize(canary)
                .await
                .map_err(|e| error_chain(&e))?;
            let metadata = self
                .workloads
                .metadata(canary)
                .await
                .map_err(|e| error_chain(&e))?;
            let selector = ServiceSelector {
                label: metadata.selector.key.clone(),
                value: metadata.selector.value.clone(),
                ports: metadata.ports.clone(),
            };
            self.services
                .finalize(canary, &selector)
                .await
                .map_err(|e| error_chain(&e))?;
            if let Some(router) = self.router(&self.provider(canary)) {
                router.finalize(canary).await.map_err(|e| error_chain(&e))?;
            }
            // The status write above changed the resourceVersion: patch the Canary as it is
            // now, still checking that nobody changes its finalizers meanwhile.
            let api = Api::<Canary>::namespaced(
                self.client.clone(),
                canary.metadata.namespace.as_deref().unwrap_or_default(),
            );
            let current = api
                .get(canary.metadata.name.as_deref().unwrap_or_default())
                .await
                .map_err(|e| format!("cannot read {name} to remove its finalizer: {e}"))?;
            finalizer::set_finalizer(&self.client, &current, false)
                .await
                .map_err(|e| format!("cannot remove the finalizer of {name}: {e}"))
        }
        .await;
        match reverted {
            Ok(()) => {
                self.event(canary, false, &format!("Terminated canary {name}"), events)
                    .await
            }
            Err(message) => self.event(canary, true, &message, events).await,
        }
    }

    /// Bootstrap (§2.2 steps 3–13, idempotent): Services, primary, autoscaler, routes; and the
    /// target's current revision. `Err` is a message for a Warning event.
    async fn prepare(&self, canary: &Canary) -> Result<(AnyRouter, TargetRevision), String> {
        let provider = self.provider(canary);
        let router = self.router(&provider).ok_or_else(|| {
            format!("provider {provider} is not yet supported by Serin (use istio, gatewayapi:v1, gatewayapi:v1beta1, gloo, apisix, contour, nginx or kubernetes)")
        })?;
        if canary.spec.suspended() {
            // The machine records the skip; nothing may change while suspended.
            return Ok((router, TargetRevision::default()));
        }
        let metadata = self
            .workloads
            .metadata(canary)
            .await
            .map_err(|e| error_chain(&e))?;
        let selector = ServiceSelector {
            label: metadata.selector.key.clone(),
            value: metadata.selector.value.clone(),
            ports: metadata.ports.clone(),
        };
        self.services
            .initialize(canary, &selector)
            .await
            .map_err(|e| error_chain(&e))?;
        self.workloads
            .ensure_primary(canary)
            .await
            .map_err(|e| error_chain(&e))?;
        if canary.spec.autoscaler_ref.is_some() {
            self.workloads
                .ensure_primary_autoscaler(canary)
                .await
                .map_err(|e| error_chain(&e))?;
        }
        self.services
            .reconcile(canary, &selector)
            .await
            .map_err(|e| error_chain(&e))?;
        router
            .reconcile(canary)
            .await
            .map_err(|e| error_chain(&e))?;
        let target = self.target_revision(canary).await?;
        Ok((router, target))
    }

    /// The hash of the target's pod template as the cluster holds it, and its configs.
    async fn target_revision(&self, canary: &Canary) -> Result<TargetRevision, String> {
        let namespace = canary.metadata.namespace.as_deref().unwrap_or_default();
        let name = canary.spec.target_name();
        let template = match canary.spec.target_ref.as_ref().map(|t| t.kind()) {
            Some("DaemonSet") => Api::<k8s_openapi::api::apps::v1::DaemonSet>::namespaced(
                self.client.clone(),
                namespace,
            )
            .get(name)
            .await
            .map(|d| d.spec.map(|s| s.template)),
            _ => Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(
                self.client.clone(),
                namespace,
            )
            .get(name)
            .await
            .map(|d| d.spec.map(|s| s.template)),
        }
        .map_err(|e| format!("{name}.{namespace} get query error: {}", error_chain(&e)))?
        .unwrap_or_default();
        let mut input = RevisionInput {
            template,
            configs: Default::default(),
        };
        for used in config_refs(&input.template) {
            let r = &used.config;
            let content = match r.kind {
                ConfigKind::ConfigMap => Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(
                    self.client.clone(),
                    namespace,
                )
                .get_opt(&r.name)
                .await
                .map(|c| c.map(|c| ConfigContent::of_config_map(&c))),
                ConfigKind::Secret => Api::<k8s_openapi::api::core::v1::Secret>::namespaced(
                    self.client.clone(),
                    namespace,
                )
                .get_opt(&r.name)
                .await
                .map(|s| s.map(|s| ConfigContent::of_secret(&s))),
            }
            .map_err(|e| {
                format!(
                    "{} {}.{namespace} get query error: {}",
                    r.kind.to_string().to_lowercase(),
                    r.name,
                    error_chain(&e)
                )
            })?;
            match content {
                Some(Some(c)) => {
                    input.configs.insert(r.clone(), c);
                }
                // Tracking disabled or an untracked Secret type.
                Some(None) => {}
                None if used.optional => {}
                None => {
                    return Err(format!(
                        "{} {}.{namespace} get query error: not found",
                        r.kind.to_string().to_lowercase(),
                        r.name
                    ));
                }
            }
        }
        let revision = Revision::of(&input);
        Ok(TargetRevision {
            hash: revision.template_hash,
            tracked_configs: revision.tracked_configs,
        })
    }

    /// Replays the state machine, answering each question with real I/O; with the decision,
    /// the routes the tick read (for the weight metric).
    async fn decide(
        &self,
        canary: &Canary,
        router: &AnyRouter,
        target: &TargetRevision,
        gates: &mut Vec<GateRecord>,
        events: &mut Vec<(bool, String)>,
    ) -> (Decision, Option<Routes>) {
        let kubernetes_provider = self.provider(canary) == "kubernetes";
        let git = match &self.git {
            Some(g) => {
                let revision = crate::ledger::revision_id(&target.hash, &target.tracked_configs);
                let (input, problems) = g.tick_input(canary, &revision);
                for p in problems {
                    self.event(canary, true, &p, events).await;
                }
                input
            }
            None => GitInput::default(),
        };
        let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::now(),
        );
        let mut answers = Answers::default();
        loop {
            let input = TickInput {
                canary,
                target,
                kubernetes_provider,
                now: now.clone(),
                git: git.clone(),
            };
            match tick(&input, &answers) {
                Step::Done(decision) => return (*decision, answers.routes.and_then(Result::ok)),
                Step::Ask(question) => {
                    let ask = Ask {
                        canary,
                        router,
                        target,
                    };
                    self.answer(&ask, question, &mut answers, gates, events)
                        .await
                }
            }
        }
    }

    async fn answer(
        &self,
        ask: &Ask<'_>,
        question: Question,
        answers: &mut Answers,
        gates: &mut Vec<GateRecord>,
        events: &mut Vec<(bool, String)>,
    ) {
        let (canary, router) = (ask.canary, ask.router);
        let readiness = |r: Result<Readiness, crate::workload::WorkloadError>| {
            r.unwrap_or_else(|e| Readiness::Waiting(error_chain(&e)))
        };
        match question {
            Question::PrimaryReady => {
                answers.primary_ready =
                    Some(readiness(self.workloads.primary_readiness(canary).await));
            }
            Question::CanaryReady => {
                answers.canary_ready =
                    Some(readiness(self.workloads.target_readiness(canary).await));
            }
            Question::Routes => {
                answers.routes = Some(router.get_routes(canary).await.map_err(|e| error_chain(&e)));
            }
            Question::Hooks(kind, phase) => {
                let git = self.git.as_ref().map(|g| {
                    let revision =
                        crate::ledger::revision_id(&ask.target.hash, &ask.target.tracked_configs);
                    g.gate(canary, kind, &revision)
                });
                let results = match git {
                    // A Git decision stands for the person who made it: the webhooks of the
                    // gate are not asked.
                    Some(GitGate::Opened { result, record }) => {
                        gates.push(record);
                        vec![result]
                    }
                    other => {
                        let mut results = Vec::new();
                        if let Some(GitGate::Closed {
                            stale,
                            required,
                            record,
                        }) = other
                        {
                            if let Some(message) = stale {
                                self.event(canary, true, &message, events).await;
                            }
                            if let Some(record) = record {
                                gates.push(record);
                            }
                            if let Some(r) = required {
                                results.push(r);
                            }
                        }
                        if results.iter().all(|r| r.outcome.is_ok()) {
                            let run = self.hooks.run_hooks(canary, kind, phase).await;
                            results.extend(hook_results(canary, &run));
                        }
                        results
                    }
                };
                answers.hooks.push((kind, results));
            }
            Question::Analysis => {
                let rollout = self
                    .hooks
                    .run_hooks(canary, HookType::Rollout, CanaryPhase::Progressing)
                    .await;
                let outcome = if let Some(failed) = rollout.failed().next() {
                    AnalysisOutcome::Failed(vec![format!(
                        "Halt {} advancement external check {} failed {}",
                        canary.dotted_name(),
                        failed.name,
                        failed.outcome.reason().unwrap_or_default()
                    )])
                } else {
                    let report = self.metrics.analyse(canary).await;
                    answers.metric_values = Some(report.checks);
                    match report.failure {
                        None => AnalysisOutcome::Passed,
                        Some(message) => AnalysisOutcome::Failed(vec![message]),
                    }
                };
                answers.analysis = Some(outcome);
            }
        }
    }

    /// Executes the effects in order; `false` if one failed (the status is then not written,
    /// and the next tick decides again from what the cluster shows).
    async fn carry_out(
        &self,
        canary: &Canary,
        router: &AnyRouter,
        decision: &Decision,
        status: &mut CanaryStatus,
        events: &mut Vec<(bool, String)>,
    ) -> bool {
        for effect in &decision.effects {
            let result = match effect {
                Effect::SetRoutes(routes) => router
                    .set_routes(canary, *routes, status)
                    .await
                    .map_err(|e| error_chain(&e)),
                Effect::Promote => self
                    .workloads
                    .promote(canary)
                    .await
                    .map_err(|e| error_chain(&e)),
                Effect::ScaleTargetToZero => self
                    .workloads
                    .scale_to_zero(canary)
                    .await
                    .map_err(|e| error_chain(&e)),
                Effect::ScaleTargetFromZero => self
                    .workloads
                    .scale_from_zero(canary)
                    .await
                    .map_err(|e| error_chain(&e)),
                Effect::SyncPrimaryAutoscaler if canary.spec.autoscaler_ref.is_some() => self
                    .workloads
                    .update_primary_autoscaler(canary)
                    .await
                    .map_err(|e| error_chain(&e)),
                Effect::SyncPrimaryAutoscaler => Ok(()),
                Effect::PostRolloutHooks(phase) => {
                    let run = self
                        .hooks
                        .run_hooks(canary, HookType::PostRollout, *phase)
                        .await;
                    for call in &run.calls {
                        match call.outcome.reason() {
                            None => {
                                let m = format!("Post-rollout check {} passed", call.name);
                                self.event(canary, false, &m, events).await;
                            }
                            Some(reason) => {
                                let m = format!("Post-rollout hook {} failed {reason}", call.name);
                                self.event(canary, true, &m, events).await;
                            }
                        }
                    }
                    Ok(())
                }
                Effect::Event { warning, message } => {
                    self.event(canary, *warning, message, events).await;
                    Ok(())
                }
                Effect::Alert { severity, message } => {
                    tracing::info!(canary = %canary.dotted_name(), severity = severity.as_str(), "{message}");
                    // Bounded by the alert timeout (5 s) and never an error of the tick: the
                    // dispatcher logs what could not be sent.
                    let alert = Alert::for_canary(canary, *severity, message, status);
                    self.alerts.dispatch(canary, &alert).await;
                    Ok(())
                }
            };
            if let Err(message) = result {
                self.event(canary, true, &message, events).await;
                return false;
            }
        }
        true
    }

    /// A Kubernetes Event, the same text to the canary's event webhooks, and a log line.
    async fn event(
        &self,
        canary: &Canary,
        warning: bool,
        message: &str,
        events: &mut Vec<(bool, String)>,
    ) {
        events.push((warning, message.to_string()));
        if warning {
            tracing::warn!(canary = %canary.dotted_name(), "{message}");
        } else {
            tracing::info!(canary = %canary.dotted_name(), "{message}");
        }
        if let Err(e) = self.events.record(canary, warning, message).await {
            self.api_error("create_event");
            tracing::warn!(canary = %canary.dotted_name(), "{}", error_chain(&e));
        }
        let kind = if warning {
            EventType::Warning
        } else {
            EventType::Normal
        };
        self.hooks
            .send_event(canary, kind, message, self.options.event_webhook.as_deref())
            .await;
    }
}

/// The machine's view of a hook run, with each hook's `muteAlert`.
fn hook_results(canary: &Canary, run: &HookRun) -> Vec<HookResult> {
    let webhooks = canary
        .spec
        .analysis()
        .map(|a| a.webhooks().to_vec())
        .unwrap_or_default();
    run.calls
        .iter()
        .map(|call| HookResult {
            name: call.name.clone(),
            outcome: match call.outcome.reason() {
                None => Ok(()),
                Some(reason) => Err(reason.to_string()),
            },
            mute_alert: webhooks
                .iter()
                .any(|w| w.name() == call.name && w.mute_alert()),
        })
        .collect()
}
