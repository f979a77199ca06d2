//! Flagger's `flagger.app/v1beta1` API: Canary, MetricTemplate and AlertProvider.
//!
//! Users bring manifests written for Flagger, so these types accept every field Flagger
//! accepts and write back exactly what they read: every optional field stays an `Option`
//! and is skipped when absent, and defaults live in accessor methods instead of in the
//! fields. The rest of Serin asks the accessors (`Canary::analysis()`,
//! `CanaryAnalysis::max_weight()`, ...) so that Flagger's defaults are decided in one place.
//!
//! * [`canary`]: the Canary spec and everything nested in it, with its defaults.
//! * [`status`]: the Canary status (phases, the `Promoted` condition, tracked configs).
//! * [`metric_template`], [`alert_provider`]: the two referenced kinds.
//! * [`duration`]: Flagger's interval strings and Go duration parsing.
//! * [`strategy`]: canary / blue-green / A/B derivation and the weight ladder.
//! * [`validate`]: per-object checks that say what is wrong and how to fix it.
//! * [`crd`]: the CustomResourceDefinitions generated from these types.

/// A closed set of string values that Flagger accepts in a field that stays a `String` in
/// the manifest types, so that an unknown value still deserializes and validation (not the
/// YAML parser) can explain it.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $value:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every value, in the order Flagger's CRD lists them.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value as written in a manifest.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $value),+
                }
            }

            /// The value for an exact (case-sensitive) manifest string.
            pub fn parse(value: &str) -> Option<Self> {
                match value {
                    $($value => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// Every value joined for messages: `a, b, c`.
            pub fn list() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub mod alert_provider;
pub mod canary;
pub mod crd;
pub mod duration;
pub mod metric_template;
mod schema;
pub mod status;
pub mod strategy;
pub mod validate;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

pub use alert_provider::{
    AlertProvider, AlertProviderSpec, AlertProviderStatus, AlertProviderType,
};
pub use canary::{
    AlertSeverity, AutoscalerReference, BackendObjectReference, Canary, CanaryAlert,
    CanaryAnalysis, CanaryMetric, CanaryService, CanarySpec, CanaryWebhook, ConnectionPoolSettings,
    ConsistentHashLb, CorsPolicy, CrossNamespaceObjectReference, CustomMetadata, GatewayRef,
    HeaderOperations, Headers, HookType, HttpConnectionPoolSettings, HttpCookie, HttpMatchRequest,
    HttpRequestMirrorFilter, HttpRetry, HttpRewrite, LoadBalancerSettings, LocalObjectReference,
    LocalityLbDistribute, LocalityLbFailover, LocalityLbSetting, NamespacedReference,
    OutlierDetection, PortSelector, PortTrafficPolicy, Provider, SameSite, ScalerReplicas,
    SessionAffinity, StringMatch, TargetKind, TcpConnectionPoolSettings, ThresholdRange,
    TlsSettings, TrafficDistribution, TrafficPolicy, UnmanagedMetadata,
};
pub use crd::{CrdError, crds, crds_yaml};
pub use duration::{DurationError, effective_interval, is_flagger_interval, parse_go_duration};
pub use metric_template::{
    MetricProviderType, MetricTemplate, MetricTemplateProvider, MetricTemplateSpec,
    MetricTemplateStatus, SecretReference,
};
pub use status::{CanaryPhase, CanaryStatus, ConditionStatus, MetricCheckStatus, StatusCondition};
pub use strategy::DeploymentStrategy;
pub use validate::{Finding, Severity};
