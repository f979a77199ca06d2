//! Round trips of the seed manifests and table tests of every validation rule.
//!
//! `testdata/` holds the Canary, MetricTemplate and AlertProvider examples of the seed
//! guides, cleaned of Markdown (each file names its source), plus hand-written files that
//! set every typed field.

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::*;

fn docs(text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple(text).unwrap_or_else(|e| panic!("YAML does not parse: {e}"))
}

/// Reads every document as `T`, then checks that nothing was lost or added (the JSON of
/// the typed value equals the JSON of the document) and that YAML and JSON round trips
/// give back the same value.
fn assert_round_trip<T>(file: &str, originals: &[Value]) -> Vec<T>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let mut typed = Vec::new();
    for (i, original) in originals.iter().enumerate() {
        let value: T = serde_json::from_value(original.clone())
            .unwrap_or_else(|e| panic!("{file} document {i} does not deserialize: {e}"));
        let json = serde_json::to_value(&value).unwrap();
        assert_eq!(
            &json, original,
            "{file} document {i}: a field was lost or added"
        );

        let yaml = serde_saphyr::to_string(&value).unwrap();
        let from_yaml: T = serde_saphyr::from_str(&yaml)
            .unwrap_or_else(|e| panic!("{file} document {i}: re-read YAML fails: {e}\n{yaml}"));
        assert_eq!(from_yaml, value, "{file} document {i}: YAML round trip");
        assert_eq!(serde_json::to_value(&from_yaml).unwrap(), *original);

        let from_json: T = serde_json::from_str(&serde_json::to_string(&value).unwrap()).unwrap();
        assert_eq!(from_json, value, "{file} document {i}: JSON round trip");
        typed.push(value);
    }
    typed
}

/// Also reads the file straight into `T` with serde-saphyr (the path the catalog takes).
fn round_trip_file<T>(file: &str, text: &str) -> Vec<T>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let direct: Vec<T> = serde_saphyr::from_multiple(text)
        .unwrap_or_else(|e| panic!("{file} does not deserialize directly: {e}"));
    let via_json = assert_round_trip::<T>(file, &docs(text));
    assert_eq!(
        direct, via_json,
        "{file}: direct and JSON-mediated reads differ"
    );
    via_json
}

macro_rules! testdata {
    ($name:literal) => {
        ($name, include_str!(concat!("testdata/", $name)))
    };
}

const CANARY_FILES: [(&str, &str); 11] = [
    testdata!("gatewayapi-istio-canary.yaml"),
    testdata!("gatewayapi-istio-ab-canary.yaml"),
    testdata!("gatewayapi-istio-session-affinity.yaml"),
    testdata!("gatewayapi-istio-mirroring.yaml"),
    testdata!("gatewayapi-istio-httproute-options.yaml"),
    testdata!("faq-kubernetes-service.yaml"),
    testdata!("faq-istio-routing.yaml"),
    testdata!("gloo-canary.yaml"),
    testdata!("apisix-canary.yaml"),
    testdata!("contour-canary.yaml"),
    testdata!("contour-ab-canary.yaml"),
];

const METRIC_TEMPLATE_FILES: [(&str, &str); 4] = [
    testdata!("gatewayapi-istio-metric-templates.yaml"),
    testdata!("gloo-metric-template.yaml"),
    testdata!("contour-metric-templates.yaml"),
    testdata!("all-fields-metric-template.yaml"),
];

/// Complete Canaries from the seeds, which must validate without errors.
const COMPLETE_SEED_CANARIES: [&str; 8] = [
    "gatewayapi-istio-canary.yaml",
    "gatewayapi-istio-ab-canary.yaml",
    "gatewayapi-istio-session-affinity.yaml",
    "gatewayapi-istio-mirroring.yaml",
    "gloo-canary.yaml",
    "apisix-canary.yaml",
    "contour-canary.yaml",
    "contour-ab-canary.yaml",
];

#[test]
fn seed_canaries_round_trip() {
    let mut count = 0;
    for (file, text) in CANARY_FILES {
        let canaries = round_trip_file::<Canary>(file, text);
        assert!(!canaries.is_empty(), "{file}");
        count += canaries.len();
        if COMPLETE_SEED_CANARIES.contains(&file) {
            for canary in &canaries {
                let errors: Vec<_> = canary
                    .validate()
                    .into_iter()
                    .filter(Finding::is_error)
                    .collect();
                assert!(errors.is_empty(), "{file}: {errors:#?}");
            }
        }
    }
    assert_eq!(count, 18);
}

/// What validation says about the seeds: nothing but a few expected warnings.
#[test]
fn seed_canary_warnings() {
    let mut warnings = Vec::new();
    for (file, text) in CANARY_FILES {
        if !COMPLETE_SEED_CANARIES.contains(&file) {
            continue;
        }
        let canaries: Vec<Canary> = serde_saphyr::from_multiple(text).unwrap();
        for canary in canaries {
            for finding in canary.validate() {
                warnings.push(format!("{file}: {finding}"));
            }
        }
    }
    assert_eq!(warnings, Vec::<String>::new());
}

#[test]
fn seed_metric_templates_round_trip_and_validate() {
    let mut count = 0;
    for (file, text) in METRIC_TEMPLATE_FILES {
        for template in round_trip_file::<MetricTemplate>(file, text) {
            assert_eq!(template.validate(), vec![], "{file}");
            count += 1;
        }
    }
    assert_eq!(count, 6);
}

#[test]
fn alert_providers_round_trip() {
    let (file, text) = testdata!("alert-providers.yaml");
    let providers = round_trip_file::<AlertProvider>(file, text);
    assert_eq!(providers.len(), 3);
    assert_eq!(providers[0].spec.channel(), "on-call-alerts");
    assert_eq!(providers[1].spec.channel(), "general");
    assert_eq!(providers[1].spec.username(), "flagger");
    assert!(providers[1].validate().is_empty());
    assert!(providers[2].validate().is_empty());
    // The guide's first example sets both address and secretRef.
    let findings = providers[0].validate();
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].severity, Severity::Warning);
}

#[test]
fn all_fields_canary_round_trips() {
    let (file, text) = testdata!("all-fields-canary.yaml");
    let canaries = round_trip_file::<Canary>(file, text);
    let canary = &canaries[0];
    let status = canary.status.as_ref().unwrap();
    assert_eq!(status.phase, CanaryPhase::Progressing);
    assert_eq!(status.canary_weight, 20);
    assert_eq!(
        status.promoted_condition().map(|c| c.status),
        Some(ConditionStatus::Unknown)
    );
    let service = canary.spec.service.as_ref().unwrap();
    let lb = service
        .traffic_policy
        .as_ref()
        .and_then(|t| t.load_balancer.as_ref())
        .unwrap();
    assert_eq!(
        lb.consistent_hash
            .as_ref()
            .and_then(|c| c.minimum_ring_size),
        Some(1024)
    );
    assert_eq!(
        service
            .traffic_policy
            .as_ref()
            .and_then(|t| t.outlier_detection.as_ref())
            .and_then(|o| o.consecutive_5xx_errors),
        Some(5)
    );
    let analysis = canary.analysis().unwrap();
    assert_eq!(analysis.webhooks()[3].hook_type(), Some(HookType::Rollout));
    assert!(analysis.webhooks()[0].disable_tls());
    assert_eq!(
        analysis.metrics()[0]
            .threshold_range
            .as_ref()
            .and_then(|r| r.min()),
        Some(99.5)
    );
    assert_eq!(
        canary.spec.canary_analysis.as_ref().map(|a| a.iterations()),
        Some(10)
    );
}

#[test]
fn seed_fragments_round_trip() {
    let (file, text) = testdata!("faq-spec-fragments.yaml");
    let specs: Vec<Value> = docs(text).into_iter().map(|d| d["spec"].clone()).collect();
    let specs = assert_round_trip::<CanarySpec>(file, &specs);
    assert_eq!(specs.len(), 4);
    assert_eq!(
        specs[0].service.as_ref().and_then(|s| s.port_discovery),
        Some(true)
    );

    let (file, text) = testdata!("analysis-fragments.yaml");
    let analyses: Vec<Value> = docs(text)
        .into_iter()
        .map(|d| d["analysis"].clone())
        .collect();
    let analyses = assert_round_trip::<CanaryAnalysis>(file, &analyses);
    assert_eq!(analyses.len(), 7);
    assert_eq!(analyses[3].strategy(), DeploymentStrategy::AbTesting);
}

#[test]
fn integers_and_floats_keep_their_spelling() {
    let (_, text) = testdata!("gatewayapi-istio-canary.yaml");
    let canary: Canary = serde_saphyr::from_str(text).unwrap();
    let json = serde_json::to_string(&canary).unwrap();
    assert!(json.contains(r#""thresholdRange":{"max":1}"#), "{json}");
    assert!(json.contains(r#""thresholdRange":{"max":0.5}"#), "{json}");
    assert!(json.contains(r#""targetPort":9898"#), "{json}");
}

// ---------------------------------------------------------------------------------------
// Validation tables
// ---------------------------------------------------------------------------------------

const VALID_CANARY: &str = r#"
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
  namespace: test
spec:
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  service:
    port: 9898
    targetPort: 9898
  analysis:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    metrics:
      - name: request-success-rate
        thresholdRange:
          min: 99
        interval: 1m
      - name: latency
        templateRef:
          name: latency
          namespace: flagger-system
        thresholdRange:
          max: 0.5
        interval: 30s
    webhooks:
      - name: load-test
        url: http://flagger-loadtester.test/
        timeout: 5s
        metadata:
          cmd: "hey -z 1m -q 10 -c 2 http://podinfo-canary.test:9898/"
    alerts:
      - name: on-call
        severity: error
        providerRef:
          name: on-call
          namespace: flagger
    sessionAffinity:
      cookieName: flagger-cookie
      primaryCookieName: flagger-primary-cookie
"#;

fn valid_canary() -> Canary {
    serde_saphyr::from_str(VALID_CANARY).unwrap()
}

fn analysis(spec: &mut CanarySpec) -> &mut CanaryAnalysis {
    spec.analysis.as_mut().unwrap()
}

fn service(spec: &mut CanarySpec) -> &mut CanaryService {
    spec.service.as_mut().unwrap()
}

fn yaml<T: DeserializeOwned>(text: &str) -> T {
    serde_saphyr::from_str(text).unwrap()
}

type Mutation = Box<dyn Fn(&mut CanarySpec)>;

/// (case, mutation, severity, field, fragment of the problem)
fn canary_cases() -> Vec<(&'static str, Mutation, Severity, &'static str, &'static str)> {
    use Severity::{Error, Warning};
    vec![
        (
            "targetRef missing",
            Box::new(|s| s.target_ref = None),
            Error,
            "spec.targetRef",
            "targetRef is missing",
        ),
        (
            "targetRef.name missing",
            Box::new(|s| s.target_ref.as_mut().unwrap().name = None),
            Error,
            "spec.targetRef.name",
            "targetRef.name is missing",
        ),
        (
            "targetRef.apiVersion missing",
            Box::new(|s| s.target_ref.as_mut().unwrap().api_version = None),
            Error,
            "spec.targetRef.apiVersion",
            "apiVersion is missing",
        ),
        (
            "targetRef.kind missing",
            Box::new(|s| s.target_ref.as_mut().unwrap().kind = None),
            Error,
            "spec.targetRef.kind",
            "targetRef.kind is missing",
        ),
        (
            "targetRef.kind StatefulSet",
            Box::new(|s| s.target_ref.as_mut().unwrap().kind = Some("StatefulSet".into())),
            Error,
            "spec.targetRef.kind",
            "targetRef.kind \"StatefulSet\" cannot be a canary target",
        ),
        (
            "analysis missing",
            Box::new(|s| s.analysis = None),
            Error,
            "spec.analysis",
            "analysis is missing",
        ),
        (
            "interval 10x",
            Box::new(|s| analysis(s).interval = Some("10x".into())),
            Error,
            "spec.analysis.interval",
            "interval \"10x\" is not a duration",
        ),
        (
            "interval 5min passes the pattern only",
            Box::new(|s| analysis(s).interval = Some("5min".into())),
            Error,
            "spec.analysis.interval",
            "interval \"5min\" is not a duration",
        ),
        (
            "interval 1h",
            Box::new(|s| analysis(s).interval = Some("1h".into())),
            Error,
            "spec.analysis.interval",
            "interval \"1h\" is not a duration",
        ),
        (
            "interval missing",
            Box::new(|s| analysis(s).interval = None),
            Error,
            "spec.analysis.interval",
            "interval is missing",
        ),
        (
            "interval below 10s",
            Box::new(|s| analysis(s).interval = Some("5s".into())),
            Warning,
            "spec.analysis.interval",
            "interval \"5s\" is shorter than 10s",
        ),
        (
            "metric interval 10x",
            Box::new(|s| analysis(s).metrics.as_mut().unwrap()[0].interval = Some("10x".into())),
            Error,
            "spec.analysis.metrics[0].interval",
            "interval \"10x\" is not a duration",
        ),
        (
            "webhook timeout 10x",
            Box::new(|s| analysis(s).webhooks.as_mut().unwrap()[0].timeout = Some("10x".into())),
            Error,
            "spec.analysis.webhooks[0].timeout",
            "timeout \"10x\" is not a duration",
        ),
        (
            "threshold missing",
            Box::new(|s| analysis(s).threshold = None),
            Error,
            "spec.analysis.threshold",
            "threshold is missing",
        ),
        (
            "threshold negative",
            Box::new(|s| analysis(s).threshold = Some(-1)),
            Error,
            "spec.analysis.threshold",
            "threshold -1 is negative",
        ),
        (
            "threshold zero",
            Box::new(|s| analysis(s).threshold = Some(0)),
            Warning,
            "spec.analysis.threshold",
            "threshold 0 is read as 1",
        ),
        (
            "no stepping mode",
            Box::new(|s| {
                analysis(s).step_weight = None;
                analysis(s).max_weight = None;
            }),
            Error,
            "spec.analysis",
            "none of iterations, stepWeight or stepWeights",
        ),
        (
            "two stepping modes",
            Box::new(|s| analysis(s).iterations = Some(10)),
            Error,
            "spec.analysis",
            "iterations and stepWeight together",
        ),
        (
            "iterations negative",
            Box::new(|s| {
                analysis(s).step_weight = None;
                analysis(s).max_weight = None;
                analysis(s).iterations = Some(-1);
            }),
            Error,
            "spec.analysis.iterations",
            "iterations -1 is negative",
        ),
        (
            "iterations zero",
            Box::new(|s| {
                analysis(s).step_weight = None;
                analysis(s).max_weight = None;
                analysis(s).iterations = Some(0);
            }),
            Error,
            "spec.analysis.iterations",
            "iterations 0 runs no checks",
        ),
        (
            "stepWeight zero",
            Box::new(|s| analysis(s).step_weight = Some(0)),
            Error,
            "spec.analysis.stepWeight",
            "stepWeight 0 is outside 1..100",
        ),
        (
            "stepWeight 150",
            Box::new(|s| analysis(s).step_weight = Some(150)),
            Error,
            "spec.analysis.stepWeight",
            "stepWeight 150 is outside 1..100",
        ),
        (
            "stepWeights not increasing",
            Box::new(|s| {
                analysis(s).step_weight = None;
                analysis(s).max_weight = None;
                analysis(s).step_weights = Some(vec![10, 20, 20, 50]);
            }),
            Error,
            "spec.analysis.stepWeights[2]",
            "stepWeights[2] is 20, not greater than stepWeights[1] (20)",
        ),
        (
            "stepWeights decreasing",
            Box::new(|s| {
                analysis(s).step_weight = None;
                analysis(s).max_weight = None;
                analysis(s).step_weights = Some(vec![10, 5]);
            }),
            Error,
            "spec.analysis.stepWeights[1]",
            "stepWeights[1] is 5, not greater than stepWeights[0] (10)",
        ),
        (
            "stepWeights over 100",
            Box::new(|s| {
                analysis(s).step_weight = None;
                analysis(s).max_weight = None;
                analysis(s).step_weights = Some(vec![10, 20, 200]);
            }),
            Error,
            "spec.analysis.stepWeights[2]",
            "stepWeights[2] is 200, outside 1..100",
        ),
        (
            "stepWeights zero",
            Box::new(|s| {
                analysis(s).step_weight = None;
                analysis(s).max_weight = None;
                analysis(s).step_weights = Some(vec![0, 20]);
            }),
            Error,
            "spec.analysis.stepWeights[0]",
            "stepWeights[0] is 0, outside 1..100",
        ),
        (
            "stepWeights empty",
            Box::new(|s| {
                analysis(s).step_weight = None;
                analysis(s).max_weight = None;
                analysis(s).step_weights = Some(vec![]);
            }),
            Error,
            "spec.analysis.stepWeights",
            "stepWeights is empty",
        ),
        (
            "maxWeight over 100",
            Box::new(|s| analysis(s).max_weight = Some(150)),
            Error,
            "spec.analysis.maxWeight",
            "maxWeight 150 is outside 1..100",
        ),
        (
            "maxWeight below stepWeight",
            Box::new(|s| analysis(s).max_weight = Some(5)),
            Error,
            "spec.analysis.maxWeight",
            "maxWeight 5 is below stepWeight 10",
        ),
        (
            "maxWeight with stepWeights",
            Box::new(|s| {
                analysis(s).step_weight = None;
                analysis(s).step_weights = Some(vec![10, 80]);
            }),
            Warning,
            "spec.analysis.maxWeight",
            "maxWeight 50 is ignored because stepWeights is set",
        ),
        (
            "stepWeightPromotion over 100",
            Box::new(|s| analysis(s).step_weight_promotion = Some(101)),
            Error,
            "spec.analysis.stepWeightPromotion",
            "stepWeightPromotion 101 is outside 0..100",
        ),
        (
            "mirrorWeight negative",
            Box::new(|s| analysis(s).mirror_weight = Some(-5)),
            Error,
            "spec.analysis.mirrorWeight",
            "mirrorWeight -5 is outside 0..100",
        ),
        (
            "primaryReadyThreshold 150",
            Box::new(|s| analysis(s).primary_ready_threshold = Some(150)),
            Error,
            "spec.analysis.primaryReadyThreshold",
            "primaryReadyThreshold 150 is outside 0..100",
        ),
        (
            "canaryReadyThreshold -1",
            Box::new(|s| analysis(s).canary_ready_threshold = Some(-1)),
            Error,
            "spec.analysis.canaryReadyThreshold",
            "canaryReadyThreshold -1 is outside 0..100",
        ),
        (
            "thresholdRange min > max",
            Box::new(|s| {
                analysis(s).metrics.as_mut().unwrap()[0].threshold_range =
                    Some(yaml("min: 99\nmax: 1"))
            }),
            Error,
            "spec.analysis.metrics[0].thresholdRange",
            "thresholdRange min 99 is greater than max 1",
        ),
        (
            "metric with nothing to evaluate",
            Box::new(|s| analysis(s).metrics.as_mut().unwrap()[1].template_ref = None),
            Error,
            "spec.analysis.metrics[1]",
            "metric \"latency\" has nothing to evaluate",
        ),
        (
            "metric name missing",
            Box::new(|s| analysis(s).metrics.as_mut().unwrap()[0].name = None),
            Error,
            "spec.analysis.metrics[0].name",
            "metric name is missing",
        ),
        (
            "metric templateRef name missing",
            Box::new(|s| {
                analysis(s).metrics.as_mut().unwrap()[1]
                    .template_ref
                    .as_mut()
                    .unwrap()
                    .name = None
            }),
            Error,
            "spec.analysis.metrics[1].templateRef.name",
            "templateRef.name is missing",
        ),
        (
            "metric without threshold",
            Box::new(|s| analysis(s).metrics.as_mut().unwrap()[0].threshold_range = None),
            Warning,
            "spec.analysis.metrics[0]",
            "has no thresholdRange, so it can never fail",
        ),
        (
            "template metric without interval",
            Box::new(|s| analysis(s).metrics.as_mut().unwrap()[1].interval = None),
            Warning,
            "spec.analysis.metrics[1].interval",
            "{{ interval }} renders empty",
        ),
        (
            "webhook unknown type",
            Box::new(|s| {
                analysis(s).webhooks.as_mut().unwrap()[0].r#type = Some("pre-rolout".into())
            }),
            Error,
            "spec.analysis.webhooks[0].type",
            "type \"pre-rolout\" is not a webhook type",
        ),
        (
            "webhook url without scheme",
            Box::new(|s| {
                analysis(s).webhooks.as_mut().unwrap()[0].url =
                    Some("flagger-loadtester.test".into())
            }),
            Error,
            "spec.analysis.webhooks[0].url",
            "url \"flagger-loadtester.test\" is not a URL",
        ),
        (
            "webhook url ftp",
            Box::new(|s| {
                analysis(s).webhooks.as_mut().unwrap()[0].url =
                    Some("ftp://loadtester.test/".into())
            }),
            Error,
            "spec.analysis.webhooks[0].url",
            "has scheme \"ftp\", not http or https",
        ),
        (
            "webhook url missing",
            Box::new(|s| analysis(s).webhooks.as_mut().unwrap()[0].url = None),
            Error,
            "spec.analysis.webhooks[0].url",
            "webhook url is missing",
        ),
        (
            "webhook name missing",
            Box::new(|s| analysis(s).webhooks.as_mut().unwrap()[0].name = None),
            Error,
            "spec.analysis.webhooks[0].name",
            "webhook name is missing",
        ),
        (
            "webhook retries negative",
            Box::new(|s| analysis(s).webhooks.as_mut().unwrap()[0].retries = Some(-1)),
            Error,
            "spec.analysis.webhooks[0].retries",
            "retries -1 is negative",
        ),
        (
            "alert severity critical",
            Box::new(|s| {
                analysis(s).alerts.as_mut().unwrap()[0].severity = Some("critical".into())
            }),
            Error,
            "spec.analysis.alerts[0].severity",
            "severity \"critical\" is not info, warn, error",
        ),
        (
            "alert providerRef missing",
            Box::new(|s| analysis(s).alerts.as_mut().unwrap()[0].provider_ref = None),
            Error,
            "spec.analysis.alerts[0].providerRef",
            "providerRef is missing",
        ),
        (
            "alert providerRef name missing",
            Box::new(|s| {
                analysis(s).alerts.as_mut().unwrap()[0]
                    .provider_ref
                    .as_mut()
                    .unwrap()
                    .name = None
            }),
            Error,
            "spec.analysis.alerts[0].providerRef.name",
            "providerRef.name is missing",
        ),
        (
            "alert name missing",
            Box::new(|s| analysis(s).alerts.as_mut().unwrap()[0].name = None),
            Error,
            "spec.analysis.alerts[0].name",
            "alert name is missing",
        ),
        (
            "cookieName empty",
            Box::new(|s| {
                analysis(s).session_affinity.as_mut().unwrap().cookie_name = Some(String::new())
            }),
            Error,
            "spec.analysis.sessionAffinity.cookieName",
            "cookieName is missing",
        ),
        (
            "cookie names equal",
            Box::new(|s| {
                analysis(s)
                    .session_affinity
                    .as_mut()
                    .unwrap()
                    .primary_cookie_name = Some("flagger-cookie".into())
            }),
            Error,
            "spec.analysis.sessionAffinity.primaryCookieName",
            "primaryCookieName \"flagger-cookie\" is the same as cookieName",
        ),
        (
            "cookieName with a space",
            Box::new(|s| {
                analysis(s).session_affinity.as_mut().unwrap().cookie_name =
                    Some("my cookie".into())
            }),
            Error,
            "spec.analysis.sessionAffinity.cookieName",
            "cookieName \"my cookie\" is not a valid cookie name",
        ),
        (
            "primaryCookieName with a separator",
            Box::new(|s| {
                analysis(s)
                    .session_affinity
                    .as_mut()
                    .unwrap()
                    .primary_cookie_name = Some("a;b".into())
            }),
            Error,
            "spec.analysis.sessionAffinity.primaryCookieName",
            "primaryCookieName \"a;b\" is not a valid cookie name",
        ),
        (
            "sameSite lower case",
            Box::new(|s| {
                analysis(s).session_affinity.as_mut().unwrap().same_site = Some("strict".into())
            }),
            Error,
            "spec.analysis.sessionAffinity.sameSite",
            "sameSite \"strict\" is not Strict, Lax, None",
        ),
        (
            "maxAge negative",
            Box::new(|s| analysis(s).session_affinity.as_mut().unwrap().max_age = Some(-1)),
            Error,
            "spec.analysis.sessionAffinity.maxAge",
            "maxAge -1 expires the cookie at once",
        ),
        (
            "gatewayapi without gatewayRefs",
            Box::new(|s| s.provider = Some("gatewayapi:v1".into())),
            Error,
            "spec.service.gatewayRefs",
            "provider \"gatewayapi:v1\" needs service.gatewayRefs",
        ),
        (
            "gatewayapi v1beta1 with empty gatewayRefs",
            Box::new(|s| {
                s.provider = Some("gatewayapi:v1beta1".into());
                service(s).gateway_refs = Some(vec![]);
            }),
            Error,
            "spec.service.gatewayRefs",
            "provider \"gatewayapi:v1beta1\" needs service.gatewayRefs",
        ),
        (
            "nginx without ingressRef",
            Box::new(|s| s.provider = Some("nginx".into())),
            Error,
            "spec.ingressRef",
            "provider \"nginx\" needs ingressRef",
        ),
        (
            "skipper without ingressRef",
            Box::new(|s| s.provider = Some("skipper".into())),
            Error,
            "spec.ingressRef",
            "provider \"skipper\" needs ingressRef",
        ),
        (
            "apisix without routeRef",
            Box::new(|s| s.provider = Some("apisix".into())),
            Error,
            "spec.routeRef",
            "provider \"apisix\" needs routeRef",
        ),
        (
            "unknown provider",
            Box::new(|s| s.provider = Some("ambassador".into())),
            Error,
            "spec.provider",
            "provider \"ambassador\" is not a provider Flagger knows",
        ),
        (
            "knative provider with a Deployment",
            Box::new(|s| s.provider = Some("knative".into())),
            Error,
            "spec.targetRef",
            "the target is Deployment/podinfo",
        ),
        (
            "Knative target with another provider",
            Box::new(|s| {
                s.provider = Some("istio".into());
                let t = s.target_ref.as_mut().unwrap();
                t.kind = Some("Service".into());
                t.api_version = Some("serving.knative.dev/v1".into());
            }),
            Error,
            "spec.provider",
            "provider \"istio\" cannot route a Knative Service target",
        ),
        (
            "A/B match without iterations",
            Box::new(|s| {
                analysis(s).r#match = Some(yaml("- headers:\n    x-canary:\n      exact: insider"))
            }),
            Error,
            "spec.analysis.match",
            "match conditions are set but iterations is not",
        ),
        (
            "A/B header with two conditions",
            Box::new(|s| {
                let a = analysis(s);
                a.step_weight = None;
                a.max_weight = None;
                a.iterations = Some(10);
                a.r#match = Some(yaml(
                    "- headers:\n    x-canary:\n      exact: insider\n      regex: .*",
                ));
            }),
            Error,
            "spec.analysis.match[0].headers.x-canary",
            "the condition sets exact and regex at once",
        ),
        (
            "A/B header without condition",
            Box::new(|s| {
                let a = analysis(s);
                a.step_weight = None;
                a.max_weight = None;
                a.iterations = Some(10);
                a.r#match = Some(yaml("- headers:\n    x-canary: {}"));
            }),
            Error,
            "spec.analysis.match[0].headers.x-canary",
            "the condition is empty",
        ),
        (
            "service uri with two conditions",
            Box::new(|s| service(s).r#match = Some(yaml("- uri:\n    prefix: /\n    exact: /api"))),
            Error,
            "spec.service.match[0].uri",
            "the condition sets exact and prefix at once",
        ),
        (
            "kubernetes provider with A/B match",
            Box::new(|s| {
                s.provider = Some("kubernetes".into());
                let a = analysis(s);
                a.step_weight = None;
                a.max_weight = None;
                a.iterations = Some(10);
                a.r#match = Some(yaml("- headers:\n    x-canary:\n      exact: insider"));
            }),
            Warning,
            "spec.analysis.match",
            "the kubernetes provider cannot do A/B testing",
        ),
        (
            "kubernetes provider with weights",
            Box::new(|s| s.provider = Some("kubernetes".into())),
            Warning,
            "spec.analysis",
            "cannot shift traffic progressively",
        ),
        (
            "mirror with gloo",
            Box::new(|s| {
                s.provider = Some("gloo".into());
                analysis(s).mirror = Some(true);
            }),
            Warning,
            "spec.analysis.mirror",
            "provider \"gloo\" does not mirror traffic",
        ),
        (
            "mirror with gatewayapi canary",
            Box::new(|s| {
                s.provider = Some("gatewayapi:v1".into());
                service(s).gateway_refs = Some(yaml("- name: gw"));
                analysis(s).mirror = Some(true);
            }),
            Warning,
            "spec.analysis.mirror",
            "mirrors only blue/green runs",
        ),
        (
            "service missing",
            Box::new(|s| s.service = None),
            Error,
            "spec.service.port",
            "service is missing",
        ),
        (
            "service.port missing",
            Box::new(|s| service(s).port = None),
            Error,
            "spec.service.port",
            "service.port is missing",
        ),
        (
            "service.port 70000",
            Box::new(|s| service(s).port = Some(70000)),
            Error,
            "spec.service.port",
            "service.port 70000 is outside 1..65535",
        ),
        (
            "service.port 0",
            Box::new(|s| service(s).port = Some(0)),
            Error,
            "spec.service.port",
            "service.port 0 is outside 1..65535",
        ),
        (
            "targetPort 70000",
            Box::new(|s| service(s).target_port = Some(yaml("70000"))),
            Error,
            "spec.service.targetPort",
            "service.targetPort 70000 is outside 1..65535",
        ),
        (
            "targetPort bad name",
            Box::new(|s| service(s).target_port = Some(yaml("HTTP_Port"))),
            Error,
            "spec.service.targetPort",
            "service.targetPort \"HTTP_Port\" is not a valid port name",
        ),
        (
            "targetPort quoted number",
            Box::new(|s| service(s).target_port = Some(yaml("\"9898\""))),
            Error,
            "spec.service.targetPort",
            "service.targetPort \"9898\" is not a valid port name",
        ),
        (
            "trafficDistribution unknown",
            Box::new(|s| service(s).traffic_distribution = Some("Nearest".into())),
            Error,
            "spec.service.trafficDistribution",
            "trafficDistribution \"Nearest\" is not a Kubernetes traffic distribution",
        ),
        (
            "gatewayRef without name",
            Box::new(|s| service(s).gateway_refs = Some(yaml("- namespace: istio-ingress"))),
            Error,
            "spec.service.gatewayRefs[0].name",
            "gatewayRefs[0].name is missing",
        ),
        (
            "too many gatewayRefs",
            Box::new(|s| service(s).gateway_refs = Some(vec![yaml("name: gw"); 33])),
            Error,
            "spec.service.gatewayRefs",
            "33 gatewayRefs are more than the 32",
        ),
        (
            "mirror Service without port",
            Box::new(|s| service(s).mirror = Some(yaml("- backendRef:\n    name: shadow"))),
            Error,
            "spec.service.mirror[0].backendRef.port",
            "names a Service but no port",
        ),
        (
            "mirror without backendRef",
            Box::new(|s| service(s).mirror = Some(yaml("- {}"))),
            Error,
            "spec.service.mirror[0].backendRef",
            "mirror[0].backendRef is missing",
        ),
        (
            "delegation with hosts",
            Box::new(|s| {
                service(s).delegation = Some(true);
                service(s).hosts = Some(vec!["app.example.com".into()]);
            }),
            Error,
            "spec.service.hosts",
            "a delegate VirtualService has no hosts",
        ),
        (
            "rewrite type unknown",
            Box::new(|s| service(s).rewrite = Some(yaml("uri: /\ntype: ReplacePrefix"))),
            Warning,
            "spec.service.rewrite.type",
            "rewrite.type \"ReplacePrefix\" is not a rewrite type",
        ),
        (
            "progressDeadlineSeconds 0",
            Box::new(|s| s.progress_deadline_seconds = Some(0)),
            Error,
            "spec.progressDeadlineSeconds",
            "progressDeadlineSeconds 0 is not positive",
        ),
        (
            "autoscalerRef kind Deployment",
            Box::new(|s| {
                s.autoscaler_ref =
                    Some(yaml("apiVersion: apps/v1\nkind: Deployment\nname: podinfo"))
            }),
            Error,
            "spec.autoscalerRef.kind",
            "autoscalerRef.kind \"Deployment\" is not an autoscaler",
        ),
        (
            "autoscalerRef name missing",
            Box::new(|s| {
                s.autoscaler_ref = Some(yaml(
                    "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler",
                ))
            }),
            Error,
            "spec.autoscalerRef.name",
            "autoscalerRef.name is missing",
        ),
        (
            "primary minReplicas 0",
            Box::new(|s| {
                s.autoscaler_ref = Some(yaml(
                    "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nname: podinfo\nprimaryScalerReplicas:\n  minReplicas: 0",
                ))
            }),
            Error,
            "spec.autoscalerRef.primaryScalerReplicas.minReplicas",
            "minReplicas 0 is below 1",
        ),
        (
            "primary min above max",
            Box::new(|s| {
                s.autoscaler_ref = Some(yaml(
                    "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nname: podinfo\nprimaryScalerReplicas:\n  minReplicas: 5\n  maxReplicas: 2",
                ))
            }),
            Error,
            "spec.autoscalerRef.primaryScalerReplicas.minReplicas",
            "minReplicas 5 is greater than maxReplicas 2",
        ),
        (
            "ingressRef kind Service",
            Box::new(|s| {
                s.ingress_ref = Some(yaml("apiVersion: v1\nkind: Service\nname: podinfo"))
            }),
            Error,
            "spec.ingressRef.kind",
            "ingressRef.kind \"Service\" is not Ingress",
        ),
        (
            "routeRef name missing",
            Box::new(|s| {
                s.route_ref = Some(yaml("apiVersion: apisix.apache.org/v2\nkind: ApisixRoute"))
            }),
            Error,
            "spec.routeRef.name",
            "routeRef.name is missing",
        ),
        (
            "upstreamRef apiVersion missing",
            Box::new(|s| s.upstream_ref = Some(yaml("kind: Upstream\nname: podinfo"))),
            Error,
            "spec.upstreamRef.apiVersion",
            "upstreamRef.apiVersion is missing",
        ),
        (
            "canaryAnalysis alias",
            Box::new(|s| s.canary_analysis = s.analysis.take()),
            Warning,
            "spec.canaryAnalysis",
            "deprecated name of analysis",
        ),
        (
            "canaryAnalysis alias paths",
            Box::new(|s| {
                s.canary_analysis = s.analysis.take();
                s.canary_analysis.as_mut().unwrap().interval = Some("10x".into());
            }),
            Error,
            "spec.canaryAnalysis.interval",
            "interval \"10x\" is not a duration",
        ),
        (
            "canaryAnalysis next to analysis",
            Box::new(|s| s.canary_analysis = s.analysis.clone()),
            Warning,
            "spec.canaryAnalysis",
            "canaryAnalysis is ignored because analysis is set",
        ),
    ]
}

#[test]
fn valid_canary_has_no_findings() {
    assert_eq!(valid_canary().validate(), vec![]);
}

#[test]
fn skip_analysis_makes_analysis_optional() {
    let mut canary = valid_canary();
    canary.spec.analysis = None;
    canary.spec.skip_analysis = Some(true);
    assert_eq!(canary.validate(), vec![]);
}

fn assert_case(name: &str, findings: &[Finding], severity: Severity, field: &str, fragment: &str) {
    let hit = findings
        .iter()
        .find(|f| f.field == field && f.problem.contains(fragment));
    let Some(hit) = hit else {
        panic!("{name}: no finding at {field} containing {fragment:?}; got {findings:#?}");
    };
    assert_eq!(hit.severity, severity, "{name}: {hit:#?}");
    assert!(!hit.fix.is_empty(), "{name}: empty fix");
}

#[test]
fn canary_validation_rules() {
    let cases = canary_cases();
    for (name, mutate, severity, field, fragment) in &cases {
        let mut canary = valid_canary();
        mutate(&mut canary.spec);
        assert_case(name, &canary.validate(), *severity, field, fragment);
    }
    assert!(cases.len() >= 90, "{}", cases.len());
}

#[test]
fn messages_name_the_value_and_the_fix() {
    let mut canary = valid_canary();
    analysis(&mut canary.spec).interval = Some("10x".into());
    let findings = canary.validate();
    assert_eq!(
        findings,
        vec![Finding::error(
            "spec.analysis.interval",
            "interval \"10x\" is not a duration",
            "use a number followed by s or m, e.g. 30s or 1m"
        )]
    );
    assert_eq!(
        findings[0].to_string(),
        "error: spec.analysis.interval: interval \"10x\" is not a duration; fix: use a number followed by s or m, e.g. 30s or 1m"
    );
    assert!(validate::has_errors(&findings));
}

const VALID_METRIC_TEMPLATE: &str = r#"
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata:
  name: error-rate
  namespace: test
spec:
  provider:
    type: prometheus
    address: http://prometheus.istio-system:9090
  query: sum(rate(istio_requests_total[{{ interval }}]))
"#;

#[test]
fn metric_template_validation_rules() {
    use Severity::{Error, Warning};
    type Case = (
        &'static str,
        Box<dyn Fn(&mut MetricTemplateSpec)>,
        Severity,
        &'static str,
        &'static str,
    );
    fn provider(spec: &mut MetricTemplateSpec) -> &mut MetricTemplateProvider {
        spec.provider.as_mut().unwrap()
    }
    let cases: Vec<Case> = vec![
        (
            "provider missing",
            Box::new(|s| s.provider = None),
            Error,
            "spec.provider",
            "provider is missing",
        ),
        (
            "type missing",
            Box::new(|s| provider(s).r#type = None),
            Error,
            "spec.provider.type",
            "provider.type is missing",
        ),
        (
            "type unknown",
            Box::new(|s| provider(s).r#type = Some("victoriametrics".into())),
            Warning,
            "spec.provider.type",
            "provider.type \"victoriametrics\" is not a provider Flagger knows",
        ),
        (
            "prometheus without address",
            Box::new(|s| provider(s).address = None),
            Error,
            "spec.provider.address",
            "provider.address is missing; prometheus has no default address",
        ),
        (
            "address not a URL",
            Box::new(|s| provider(s).address = Some("prometheus:9090".into())),
            Error,
            "spec.provider.address",
            "provider.address \"prometheus:9090\"",
        ),
        (
            "cloudwatch without region",
            Box::new(|s| {
                provider(s).r#type = Some("cloudwatch".into());
                provider(s).address = None;
            }),
            Error,
            "spec.provider.region",
            "provider.region is missing",
        ),
        (
            "secretRef without name",
            Box::new(|s| provider(s).secret_ref = Some(SecretReference { name: None })),
            Error,
            "spec.provider.secretRef.name",
            "secretRef.name is missing",
        ),
        (
            "query missing",
            Box::new(|s| s.query = None),
            Error,
            "spec.query",
            "query is missing",
        ),
        (
            "query blank",
            Box::new(|s| s.query = Some("  \n".into())),
            Error,
            "spec.query",
            "query is missing",
        ),
    ];
    let valid: MetricTemplate = serde_saphyr::from_str(VALID_METRIC_TEMPLATE).unwrap();
    assert_eq!(valid.validate(), vec![]);
    for (name, mutate, severity, field, fragment) in &cases {
        let mut template = valid.clone();
        mutate(&mut template.spec);
        assert_case(name, &template.validate(), *severity, field, fragment);
    }
    // Providers with a default host need no address; Serin says it cannot query them yet.
    let mut datadog = valid.clone();
    provider(&mut datadog.spec).r#type = Some("datadog".into());
    provider(&mut datadog.spec).address = None;
    let findings = datadog.validate();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(!findings[0].is_error());
    assert!(
        findings[0]
            .to_string()
            .contains("\"datadog\" is not yet supported by Serin")
    );
}

const VALID_ALERT_PROVIDER: &str = r#"
apiVersion: flagger.app/v1beta1
kind: AlertProvider
metadata:
  name: on-call
  namespace: flagger
spec:
  type: slack
  channel: on-call-alerts
  address: https://hooks.slack.com/services/YOUR/SLACK/WEBHOOK
"#;

#[test]
fn alert_provider_validation_rules() {
    use Severity::{Error, Warning};
    type Case = (
        &'static str,
        Box<dyn Fn(&mut AlertProviderSpec)>,
        Severity,
        &'static str,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "type missing",
            Box::new(|s| s.r#type = None),
            Error,
            "spec.type",
            "type is missing",
        ),
        (
            "type unknown",
            Box::new(|s| s.r#type = Some("pagerduty".into())),
            Error,
            "spec.type",
            "type \"pagerduty\" is not an alert provider type",
        ),
        (
            "no address, no secret",
            Box::new(|s| s.address = None),
            Error,
            "spec.address",
            "neither address nor secretRef",
        ),
        (
            "address and secret",
            Box::new(|s| {
                s.secret_ref = Some(SecretReference {
                    name: Some("url".into()),
                })
            }),
            Warning,
            "spec.address",
            "address is ignored because secretRef is set",
        ),
        (
            "address not a URL",
            Box::new(|s| s.address = Some("hooks.slack.com/services/x".into())),
            Error,
            "spec.address",
            "address \"hooks.slack.com/services/x\" is not a URL",
        ),
        (
            "proxy not http",
            Box::new(|s| s.proxy = Some("socks5://proxy:1080".into())),
            Error,
            "spec.proxy",
            "proxy \"socks5://proxy:1080\" has scheme \"socks5\"",
        ),
        (
            "secretRef without name",
            Box::new(|s| {
                s.address = None;
                s.secret_ref = Some(SecretReference { name: None });
            }),
            Error,
            "spec.secretRef.name",
            "secretRef.name is missing",
        ),
    ];
    let valid: AlertProvider = serde_saphyr::from_str(VALID_ALERT_PROVIDER).unwrap();
    assert_eq!(valid.validate(), vec![]);
    for (name, mutate, severity, field, fragment) in &cases {
        let mut provider = valid.clone();
        mutate(&mut provider.spec);
        assert_case(name, &provider.validate(), *severity, field, fragment);
    }
}

#[test]
fn serin_annotations_are_checked() {
    let mut canary: Canary = serde_json::from_value(serde_json::json!({
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": { "name": "podinfo", "namespace": "test", "annotations": {
            "serin.dev/on-failure": "undo",
            "serin.dev/approval": "confirm-promotion, confirm-everything"
        }},
        "spec": {
            "provider": "kubernetes",
            "targetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo" },
            "service": { "port": 9898 },
            "analysis": { "interval": "1m", "threshold": 5, "iterations": 10 }
        }
    }))
    .expect("canary");
    let errors: Vec<String> = canary
        .validate()
        .into_iter()
        .filter(|f| f.is_error())
        .map(|f| f.to_string())
        .collect();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors[0].contains("\"undo\" is not an on-failure policy")
            || errors[1].contains("\"undo\" is not an on-failure policy")
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("\"confirm-everything\" is not a gate"))
    );
    canary.metadata.annotations = Some(
        [
            (
                "serin.dev/on-failure".to_string(),
                "revert-branch".to_string(),
            ),
            (
                "serin.dev/approval".to_string(),
                "confirm-rollout,confirm-promotion".to_string(),
            ),
        ]
        .into(),
    );
    assert!(canary.validate().iter().all(|f| !f.is_error()));
}
