//! The workloads Serin rolls out: the target Deployment or DaemonSet, the `<target>-primary`
//! copy that serves stable traffic, the `-primary` copies of the ConfigMaps, Secrets and
//! HorizontalPodAutoscaler it uses, and whether each is ready (Flagger reference §3, §2.6, §2.9).
//!
//! * [`labels`]: which selector label identifies the pods, and how labels and annotations are
//!   carried over to generated objects.
//! * [`primary`]: the primary Deployment/DaemonSet as created and as promoted (pure).
//! * [`configs`]: the primary ConfigMap/Secret copies (pure).
//! * [`autoscaler`]: the primary HorizontalPodAutoscaler and the scale-from-zero replica rule (pure).
//! * [`readiness`]: Flagger's rollout readiness with its exact messages (pure).
//! * [`ports`]: the extra container ports the generated Services expose (pure).
//! * [`apply`]: the one place that talks to the cluster: create, promote, scale, read readiness,
//!   finalize.
//!
//! Everything that decides is a pure function of Kubernetes objects, so that the rules of
//! Flagger that users rely on (names, labels, what is copied, when a rollout counts as stuck)
//! are table-tested without a cluster; [`apply::Workloads`] only reads, calls them and writes.

pub mod apply;
pub mod autoscaler;
pub mod configs;
pub mod labels;
pub mod ports;
pub mod primary;
pub mod readiness;

use crate::revision::ConfigKind;

pub use apply::{TargetMetadata, Workloads};
pub use autoscaler::{primary_hpa, scale_from_zero_replicas};
pub use configs::{primary_config_map, primary_secret};
pub use labels::{SelectorLabel, new_flagger_id, selector_label};
pub use ports::discovered_ports;
pub use primary::{
    PrimaryContext, canary_owner_reference, primary_daemonset, primary_deployment,
    promoted_daemonset, promoted_deployment,
};
pub use readiness::{Readiness, daemonset_readiness, deployment_readiness};

pub use crate::cluster::FIELD_MANAGER;

/// Flagger's `-selector-labels` default, in the order they are tried.
pub const DEFAULT_SELECTOR_LABELS: [&str; 3] = ["app", "name", "app.kubernetes.io/name"];

/// Node selector that keeps a DaemonSet target at zero pods: no node carries this label.
pub const SCALE_TO_ZERO_NODE_SELECTOR: (&str, &str) = ("flagger.app/scale-to-zero", "true");

/// How generated objects are labelled: Flagger's `-selector-labels` and
/// `-include-label-prefix` flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadOptions {
    /// Labels of which the first present in the target's `spec.selector.matchLabels` identifies
    /// its pods. Also the keys rewritten in the primary's affinity and topology selectors.
    pub selector_labels: Vec<String>,
    /// Label and annotation key prefixes copied from the target to generated objects;
    /// `*` copies all, an empty list none (Flagger's default).
    pub include_label_prefixes: Vec<String>,
}

impl Default for WorkloadOptions {
    fn default() -> Self {
        WorkloadOptions {
            selector_labels: DEFAULT_SELECTOR_LABELS.map(String::from).to_vec(),
            include_label_prefixes: Vec::new(),
        }
    }
}

/// The two kinds of workload that have pods and a primary copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadKind {
    Deployment,
    DaemonSet,
}

impl WorkloadKind {
    /// The kind as Flagger writes it in messages: `deployment`, `daemonset`.
    pub fn lowercase(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployment",
            WorkloadKind::DaemonSet => "daemonset",
        }
    }

    /// The kind as Kubernetes spells it: `Deployment`, `DaemonSet`.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::DaemonSet => "DaemonSet",
        }
    }
}

impl std::fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a workload operation failed, naming the object and what was being done to it.
/// Messages follow Flagger's (`deployment podinfo.test get query error`) so that logs and
/// events read the same; the Kubernetes error is kept as the source, not repeated.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// Reading an object failed, or a mandatory object is absent.
    #[error("{kind} {name}.{namespace} get query error")]
    Get {
        kind: &'static str,
        name: String,
        namespace: String,
        #[source]
        source: Box<kube::Error>,
    },
    /// A create, update, patch or delete was refused.
    #[error("{action} {kind} {name}.{namespace} failed")]
    Write {
        action: &'static str,
        kind: &'static str,
        name: String,
        namespace: String,
        #[source]
        source: Box<kube::Error>,
    },
    /// The target's selector has none of the selector labels.
    #[error(
        "{} {name}.{namespace} spec.selector.matchLabels must contain one of [{}]",
        kind.lowercase(),
        labels.join(" ")
    )]
    SelectorLabel {
        kind: WorkloadKind,
        name: String,
        namespace: String,
        labels: Vec<String>,
    },
    /// A DaemonSet that does not roll pods by itself cannot be shifted to a primary.
    #[error("daemonset {name}.{namespace} must have RollingUpdate strategy but have {strategy}")]
    DaemonSetStrategy {
        name: String,
        namespace: String,
        strategy: String,
    },
    /// The workload has no `spec` (only possible for an object not read from the API server).
    #[error("{} {name}.{namespace} has no spec", kind.lowercase())]
    NoSpec {
        kind: WorkloadKind,
        name: String,
        namespace: String,
    },
    /// Generated objects are owned by the Canary, which needs the identity the API server gave it.
    #[error(
        "Canary {name}.{namespace} has no metadata.uid: read it from the cluster before \
         generating the objects it owns"
    )]
    NoCanaryUid { name: String, namespace: String },
    /// Service and Knative targets have no pods for this layer to manage.
    #[error("Canary {canary} targets a {kind}, which is not a Deployment or DaemonSet")]
    NotAWorkload { canary: String, kind: String },
    /// Only HorizontalPodAutoscaler gets a primary copy so far (KEDA ScaledObject does not).
    #[error(
        "Canary {canary}: spec.autoscalerRef.kind {kind} is not supported (supported: \
         HorizontalPodAutoscaler)"
    )]
    UnsupportedAutoscaler { canary: String, kind: String },
    /// Deleting the Canary restores the target; it did not become ready in time.
    #[error("canary not ready during finalizing: {0}")]
    NotReadyDuringFinalize(String),
}

impl WorkloadError {
    fn get(kind: &'static str, name: &str, namespace: &str, source: kube::Error) -> Self {
        WorkloadError::Get {
            kind,
            name: name.to_string(),
            namespace: namespace.to_string(),
            source: Box::new(source),
        }
    }

    fn write(
        action: &'static str,
        kind: &'static str,
        name: &str,
        namespace: &str,
        source: kube::Error,
    ) -> Self {
        WorkloadError::Write {
            action,
            kind,
            name: name.to_string(),
            namespace: namespace.to_string(),
            source: Box::new(source),
        }
    }
}

/// Flagger's lowercase word for a config kind in messages (`configmap`, `secret`).
fn config_word(kind: ConfigKind) -> &'static str {
    match kind {
        ConfigKind::ConfigMap => "configmap",
        ConfigKind::Secret => "secret",
    }
}
