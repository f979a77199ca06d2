//! Whether a workload finished rolling out (Flagger reference §3.6), with Flagger's messages:
//! users grep events and logs for them, and the analysis waits on `Waiting` and rolls back
//! on `Failed`.
//!
//! Pure functions of the object's spec and status (as the controllers report them) plus the
//! canary's threshold and deadline, and the current time.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, DeploymentCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::WorkloadKind;

/// The rollout state of a workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Every replica is updated and enough are available.
    Ready,
    /// Still rolling out; ask again later (Flagger's retriable error).
    Waiting(String),
    /// Stuck past its deadline: the canary should be rolled back (non-retriable).
    Failed(String),
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        matches!(self, Readiness::Ready)
    }

    /// The message, `None` when ready.
    pub fn message(&self) -> Option<&str> {
        match self {
            Readiness::Ready => None,
            Readiness::Waiting(m) | Readiness::Failed(m) => Some(m),
        }
    }

    /// The same state with `prefix: ` in front of the message (Flagger wraps the cause with
    /// the workload it is about).
    pub fn prefixed(self, prefix: &str) -> Readiness {
        match self {
            Readiness::Ready => Readiness::Ready,
            Readiness::Waiting(m) => Readiness::Waiting(format!("{prefix}: {m}")),
            Readiness::Failed(m) => Readiness::Failed(format!("{prefix}: {m}")),
        }
    }
}

/// Which of the two workloads a readiness message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Primary,
    Canary,
}

/// Flagger's prefix for a not-ready workload: `podinfo-primary.test not ready`,
/// `canary deployment podinfo.test not ready`, `primary daemonset ... not ready`.
///
/// Deviation: for a canary DaemonSet Flagger writes `canary damonset %s.%s not ready with
/// retryable %v`; Serin spells the kind right and leaves out the flag, which the variant says.
pub fn not_ready_prefix(kind: WorkloadKind, role: Role, name: &str, namespace: &str) -> String {
    match (kind, role) {
        (WorkloadKind::Deployment, Role::Primary) => format!("{name}.{namespace} not ready"),
        (WorkloadKind::Deployment, Role::Canary) => {
            format!("canary deployment {name}.{namespace} not ready")
        }
        (WorkloadKind::DaemonSet, Role::Primary) => {
            format!("primary daemonset {name}.{namespace} not ready")
        }
        (WorkloadKind::DaemonSet, Role::Canary) => {
            format!("canary daemonset {name}.{namespace} not ready")
        }
    }
}

/// Flagger's `isDeploymentReady` with `readyThreshold` percent and the canary's
/// `progressDeadlineSeconds`.
///
/// Waiting while the controller has not observed the latest generation, while fewer replicas
/// are updated than wanted, while old replicas remain, or while fewer than
/// `floor(updated × threshold / 100)` are available. Failed when the controller reports
/// `ProgressDeadlineExceeded`, or when it would wait but the `Available` condition has been
/// `False` (`MinimumReplicasUnavailable`) for longer than the deadline.
pub fn deployment_readiness(
    deployment: &Deployment,
    ready_threshold: u32,
    progress_deadline_seconds: i32,
    now: Timestamp,
) -> Readiness {
    let generation = deployment.metadata.generation.unwrap_or(0);
    let status = deployment.status.clone().unwrap_or_default();
    if generation > status.observed_generation.unwrap_or(0) {
        return Readiness::Waiting(
            "waiting for rollout to finish: observed deployment generation less than desired \
             generation"
                .into(),
        );
    }
    let condition = |kind: &str| -> Option<&DeploymentCondition> {
        status.conditions.iter().flatten().find(|c| c.type_ == kind)
    };
    let progress = condition("Progressing");
    let mut retriable = true;
    if progress.is_some()
        && let Some(available) = condition("Available")
        && available.status == "False"
        && available.reason.as_deref() == Some("MinimumReplicasUnavailable")
    {
        retriable = !deadline_passed(
            available.last_update_time.as_ref(),
            progress_deadline_seconds,
            now,
        );
    }
    if progress.is_some_and(|p| p.reason.as_deref() == Some("ProgressDeadlineExceeded")) {
        let name = deployment.metadata.name.as_deref().unwrap_or_default();
        return Readiness::Failed(format!(
            "deployment \"{name}\" exceeded its progress deadline"
        ));
    }
    let updated = status.updated_replicas.unwrap_or(0);
    let replicas = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let threshold_replicas = threshold_of(updated, ready_threshold);
    let wanted = deployment.spec.as_ref().and_then(|s| s.replicas);
    let waiting = if let Some(wanted) = wanted.filter(|w| updated < *w) {
        format!(
            "waiting for rollout to finish: {updated} out of {wanted} new replicas have been updated"
        )
    } else if replicas > updated {
        format!(
            "waiting for rollout to finish: {} old replicas are pending termination",
            replicas - updated
        )
    } else if available < threshold_replicas {
        format!(
            "waiting for rollout to finish: {available} of {threshold_replicas} (readyThreshold \
             {ready_threshold}%) updated replicas are available"
        )
    } else {
        return Readiness::Ready;
    };
    if retriable {
        Readiness::Waiting(waiting)
    } else {
        Readiness::Failed(waiting)
    }
}

/// Flagger's `isDaemonSetReady`: waiting while fewer pods are updated than scheduled or fewer
/// than `floor(desired × threshold / 100)` are available; failed once that has lasted past the
/// deadline counted from `since`, the canary's `status.lastTransitionTime`.
///
/// Deviation: without a `since` (a canary with no status yet) Flagger counts from the zero
/// time, so any wait fails at once; Serin keeps waiting.
pub fn daemonset_readiness(
    daemonset: &DaemonSet,
    ready_threshold: u32,
    progress_deadline_seconds: i32,
    since: Option<&Time>,
    now: Timestamp,
) -> Readiness {
    let generation = daemonset.metadata.generation.unwrap_or(0);
    let status = daemonset.status.clone().unwrap_or_default();
    if generation > status.observed_generation.unwrap_or(0) {
        return Readiness::Waiting(
            "waiting for rollout to finish: observed daemonset generation less than desired \
             generation"
                .into(),
        );
    }
    let desired = status.desired_number_scheduled;
    let updated = status.updated_number_scheduled.unwrap_or(0);
    let available = status.number_available.unwrap_or(0);
    let threshold_desired = threshold_of(desired, ready_threshold);
    let not_updated = updated < desired;
    let not_available = available < threshold_desired;
    if !not_updated && !not_available {
        return Readiness::Ready;
    }
    if since.is_some() && deadline_passed(since, progress_deadline_seconds, now) {
        return Readiness::Failed(format!(
            "exceeded its progressDeadlineSeconds: {progress_deadline_seconds}"
        ));
    }
    if not_updated {
        Readiness::Waiting(format!(
            "waiting for rollout to finish: {updated} out of {desired} new pods have been updated"
        ))
    } else {
        Readiness::Waiting(format!(
            "waiting for rollout to finish: {available} of {threshold_desired} (readyThreshold \
             {ready_threshold}%) updated pods are available"
        ))
    }
}

/// `int32(float32(count) * float32(threshold)/float32(100))`, in single precision as Flagger
/// computes it, so that the boundary cases round the same way.
fn threshold_of(count: i32, threshold: u32) -> i32 {
    let ratio = threshold as f32 / 100f32;
    (count as f32 * ratio) as i32
}

/// Whether `from + deadline` lies strictly before `now`. An unknown start never passes.
fn deadline_passed(from: Option<&Time>, deadline_seconds: i32, now: Timestamp) -> bool {
    let Some(from) = from else {
        return false;
    };
    let end = from.0.as_nanosecond() + i128::from(deadline_seconds) * 1_000_000_000;
    end < now.as_nanosecond()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
