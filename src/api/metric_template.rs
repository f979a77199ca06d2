//! The MetricTemplate kind: a query against a metrics provider, shared by canaries
//! (reference §1.5).

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::schema;
use super::status::StatusCondition;

string_enum! {
    /// The backend a MetricTemplate queries.
    pub enum MetricProviderType {
        Prometheus => "prometheus",
        InfluxDb => "influxdb",
        Datadog => "datadog",
        ExternalMetrics => "externalmetrics",
        Stackdriver => "stackdriver",
        CloudWatch => "cloudwatch",
        NewRelic => "newrelic",
        Graphite => "graphite",
        Dynatrace => "dynatrace",
        Keptn => "keptn",
        Splunk => "splunk",
    }
}

impl MetricProviderType {
    /// Providers that cannot work without `address` (they have no default host).
    pub fn requires_address(self) -> bool {
        matches!(
            self,
            MetricProviderType::Prometheus
                | MetricProviderType::Graphite
                | MetricProviderType::InfluxDb
        )
    }
}

/// A query template, rendered per canary with `{{ name }}`, `{{ namespace }}`,
/// `{{ target }}`, `{{ interval }}`, `{{ variables.<key> }}` and friends.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "flagger.app",
    version = "v1beta1",
    kind = "MetricTemplate",
    plural = "metrictemplates",
    namespaced,
    status = "MetricTemplateStatus",
    category = "all",
    derive = "PartialEq",
    doc = "MetricTemplate is the Schema for the MetricTemplates API.",
    printcolumn = r#"{"name":"Provider","type":"string","jsonPath":".spec.provider.type"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct MetricTemplateSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    pub provider: Option<MetricTemplateProvider>,
    /// Go text/template rendered to the provider's query language.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    pub query: Option<String>,
}

/// Where and how to run the query.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricTemplateProvider {
    /// Unknown types fall back to prometheus at run time.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    #[schemars(schema_with = "schema::metric_provider_type")]
    pub r#type: Option<String>,
    /// API address of the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Extra request headers (name → values), sent to Prometheus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, Vec<String>>>,
    /// Secret in the template's namespace with the provider credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretReference>,
    /// CloudWatch region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Skip TLS verification of `address`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_skip_verify: Option<bool>,
}

impl MetricTemplateProvider {
    /// The provider type as Flagger runs it: unknown or missing types are prometheus.
    pub fn provider_type(&self) -> MetricProviderType {
        self.r#type
            .as_deref()
            .and_then(MetricProviderType::parse)
            .unwrap_or(MetricProviderType::Prometheus)
    }

    pub fn insecure_skip_verify(&self) -> bool {
        self.insecure_skip_verify.unwrap_or(false)
    }
}

/// A Secret in the same namespace as the object that names it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretReference {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    pub name: Option<String>,
}

/// Flagger defines conditions here but never writes them.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricTemplateStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<StatusCondition>>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn unknown_provider_type_runs_as_prometheus() {
        for (raw, want) in [
            (None, MetricProviderType::Prometheus),
            (Some("datadog"), MetricProviderType::Datadog),
            (Some("victoria"), MetricProviderType::Prometheus),
        ] {
            let provider = MetricTemplateProvider {
                r#type: raw.map(str::to_string),
                ..Default::default()
            };
            assert_eq!(provider.provider_type(), want, "{raw:?}");
        }
        assert_eq!(MetricProviderType::ALL.len(), 11);
    }
}
