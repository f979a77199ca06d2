//! The analysis: a pure state machine that decides each tick of a canary
//! ([`machine`]), and (to come) the runner that answers its questions and carries out its
//! effects against the cluster, the router, the metric sources and the webhooks.

pub mod checks;
pub mod finalizer;
pub mod machine;
pub mod metrics;
pub mod report;
pub mod runner;
pub mod scheduler;

pub use machine::{
    AnalysisOutcome, Answers, Decision, Effect, HookResult, Question, Readiness, Routes, Step,
    TargetRevision, TickInput, tick,
};

#[cfg(test)]
mod tests;
