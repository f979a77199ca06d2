//! The catalog's behaviour on a valid repository, and the bad-input corpus: each case changes
//! one thing in a valid repository and asserts the exact problem reported (severity, file,
//! field and a fragment of the message) — and that nothing panics.

use super::*;
use crate::source::{FileContent, SnapshotFile};

pub(crate) const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
  namespace: test
  labels:
    app: podinfo
spec:
  minReadySeconds: 3
  progressDeadlineSeconds: 60
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 0
  selector:
    matchLabels:
      app: podinfo
  template:
    metadata:
      labels:
        app: podinfo
      annotations:
        prometheus.io/scrape: "true"
    spec:
      containers:
        - name: podinfod
          image: ghcr.io/stefanprodan/podinfo:6.0.0
          ports:
            - name: http
              containerPort: 9898
          envFrom:
            - configMapRef:
                name: podinfo-config
          env:
            - name: TOKEN
              valueFrom:
                secretKeyRef:
                  name: podinfo-token
                  key: token
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: podinfo
  namespace: test
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  minReplicas: 2
  maxReplicas: 4
"#;

pub(crate) const CONFIG: &str = r##"apiVersion: v1
kind: ConfigMap
metadata:
  name: podinfo-config
  namespace: test
data:
  PODINFO_UI_COLOR: "#34577c"
"##;

pub(crate) const CANARY: &str = r#"apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
  namespace: test
spec:
  provider: gatewayapi:v1
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  autoscalerRef:
    apiVersion: autoscaling/v2
    kind: HorizontalPodAutoscaler
    name: podinfo
  progressDeadlineSeconds: 60
  service:
    port: 9898
    targetPort: 9898
    hosts:
      - www.example.com
    gatewayRefs:
      - name: gateway
        namespace: istio-ingress
  analysis:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    metrics:
      - name: error-rate
        templateRef:
          name: error-rate
          namespace: istio-system
        thresholdRange:
          max: 1
        interval: 1m
    webhooks:
      - name: smoke-test
        type: pre-rollout
        url: http://flagger-loadtester.test/
        timeout: 15s
        metadata:
          type: bash
          cmd: "curl -s http://podinfo-canary.test"
    alerts:
      - name: on-call
        severity: error
        providerRef:
          name: on-call
          namespace: flagger
"#;

pub(crate) const SHARED: &str = r#"apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata:
  name: error-rate
  namespace: istio-system
spec:
  provider:
    type: prometheus
    address: http://prometheus.istio-system:9090
  query: |
    100 - sum(rate(istio_requests_total{reporter="source", destination_workload_namespace="{{ namespace }}",
      destination_workload="{{ target }}", response_code!~"5.*"}[{{ interval }}]))
    / sum(rate(istio_requests_total{reporter="source", destination_workload_namespace="{{ namespace }}",
      destination_workload="{{ target }}"}[{{ interval }}])) * 100
---
apiVersion: flagger.app/v1beta1
kind: AlertProvider
metadata:
  name: on-call
  namespace: flagger
spec:
  type: slack
  channel: on-call-alerts
  username: flagger
  secretRef:
    name: on-call-url
"#;

pub(crate) fn file(path: &str, body: &str) -> SnapshotFile {
    SnapshotFile {
        path: path.into(),
        content: FileContent::Bytes(body.as_bytes().to_vec()),
    }
}

pub(crate) fn valid_repo() -> Vec<SnapshotFile> {
    vec![
        file("apps/podinfo/deployment.yaml", DEPLOYMENT),
        file("apps/podinfo/config.yaml", CONFIG),
        file("apps/podinfo/canary.yaml", CANARY),
        file("shared/flagger.yaml", SHARED),
    ]
}

fn load_files(files: Vec<SnapshotFile>, options: &CatalogOptions) -> Catalog {
    let snapshot = Snapshot {
        origin: "test".into(),
        commit: None,
        files,
    };
    load(&snapshot, options)
}

/// The repository with `path` replaced by `body` (or added).
fn with(path: &str, body: &str) -> Vec<SnapshotFile> {
    let mut files: Vec<SnapshotFile> = valid_repo()
        .into_iter()
        .filter(|f| f.path != path)
        .collect();
    files.push(file(path, body));
    files
}

fn with_content(path: &str, content: FileContent) -> Vec<SnapshotFile> {
    let mut files = valid_repo();
    files.push(SnapshotFile {
        path: path.into(),
        content,
    });
    files
}

fn canary_with(from: &str, to: &str) -> Vec<SnapshotFile> {
    assert!(
        CANARY.contains(from),
        "test bug: {from:?} not in the canary"
    );
    with("apps/podinfo/canary.yaml", &CANARY.replacen(from, to, 1))
}

fn deployment_with(from: &str, to: &str) -> Vec<SnapshotFile> {
    assert!(
        DEPLOYMENT.contains(from),
        "test bug: {from:?} not in the deployment"
    );
    with(
        "apps/podinfo/deployment.yaml",
        &DEPLOYMENT.replacen(from, to, 1),
    )
}

#[test]
fn a_valid_repository_has_no_problems_and_resolves_everything() {
    let catalog = load_files(valid_repo(), &CatalogOptions::default());
    assert_eq!(catalog.problems, Vec::<Problem>::new());
    assert_eq!(catalog.objects.len(), 6);
    assert_eq!(catalog.canaries.len(), 1);
    let entry = &catalog.canaries[0];
    assert_eq!(entry.key(), "test/podinfo");
    assert!(matches!(entry.target, Some(Target::Deployment(_))));
    let origins: Vec<(String, &ConfigOrigin)> = entry
        .configs
        .iter()
        .map(|(u, o)| (u.config.tracked_key(), o))
        .collect();
    assert_eq!(
        origins,
        [
            (
                "configmap/podinfo-config".to_string(),
                &ConfigOrigin::Repository(Location {
                    file: "apps/podinfo/config.yaml".into(),
                    document: 1
                })
            ),
            ("secret/podinfo-token".to_string(), &ConfigOrigin::Cluster),
        ]
    );
    let revision = entry.revision.as_ref().expect("a revision");
    assert_eq!(
        revision.tracked_configs.keys().collect::<Vec<_>>(),
        ["configmap/podinfo-config"]
    );
}

#[test]
fn namespace_defaults_and_cluster_scoped_kinds() {
    let mut files = valid_repo();
    files.push(file(
        "ns.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: test\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: deployer\n",
    ));
    let options = CatalogOptions {
        default_namespace: "apps".into(),
        ..Default::default()
    };
    let catalog = load_files(files, &options);
    let ids: Vec<String> = catalog.objects.iter().map(|o| o.id.to_string()).collect();
    assert!(ids.contains(&"Namespace test".to_string()), "{ids:?}");
    assert!(
        ids.contains(&"ServiceAccount apps/deployer".to_string()),
        "{ids:?}"
    );
}

#[test]
fn only_the_config_content_changes_the_revision() {
    let base = load_files(valid_repo(), &CatalogOptions::default());
    let changed = load_files(
        with(
            "apps/podinfo/config.yaml",
            &CONFIG.replace("#34577c", "#ff0000"),
        ),
        &CatalogOptions::default(),
    );
    let (a, b) = (&base.canaries[0], &changed.canaries[0]);
    let (ra, rb) = (
        a.revision.as_ref().expect("rev"),
        b.revision.as_ref().expect("rev"),
    );
    assert_eq!(ra.template_hash, rb.template_hash);
    assert_ne!(ra.id, rb.id);
    let cause = crate::revision::cause(
        a.revision_input.as_ref().expect("input"),
        b.revision_input.as_ref().expect("input"),
    );
    assert_eq!(
        cause.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        ["ConfigMap podinfo-config: key PODINFO_UI_COLOR changed"]
    );
}

#[test]
fn document_numbers_count_empty_documents() {
    let files = vec![file(
        "x.yaml",
        "---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n# nothing\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
    )];
    let catalog = load_files(files, &CatalogOptions::default());
    let dup = catalog
        .problems
        .iter()
        .find(|p| p.problem.contains("defined twice"))
        .expect("duplicate reported");
    assert_eq!(dup.file, "x.yaml");
    assert!(dup.document.expect("document") > 1, "{dup}");
}

/// (severity, file, field, fragment of the message)
type Expected<'a> = (Severity, &'a str, Option<&'a str>, &'a str);

fn assert_problem(case: &str, files: Vec<SnapshotFile>, options: &CatalogOptions, want: Expected) {
    let catalog = std::panic::catch_unwind(|| load_files(files, options))
        .unwrap_or_else(|_| panic!("{case}: loading panicked"));
    let (severity, file, field, fragment) = want;
    let found = catalog.problems.iter().any(|p| {
        p.severity == severity
            && p.file == file
            && p.field.as_deref() == field
            && p.problem.contains(fragment)
    });
    assert!(
        found,
        "{case}: want {severity:?} in {file} at {field:?} containing {fragment:?}; got:\n{}",
        catalog
            .problems
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
    for p in &catalog.problems {
        assert!(!p.fix.is_empty(), "{case}: problem without a fix: {p}");
    }
}

#[test]
fn bad_input_corpus_file_and_document_level() {
    use Severity::{Error, Warning};
    let o = CatalogOptions::default();
    let cases: Vec<(&str, Vec<SnapshotFile>, Expected)> = vec![
        (
            "malformed yaml",
            with("bad.yaml", "kind: [unclosed\n"),
            (Error, "bad.yaml", None, "invalid YAML"),
        ),
        (
            "bad indentation",
            with(
                "bad.yaml",
                "apiVersion: v1\nkind: ConfigMap\n metadata: x\n",
            ),
            (Error, "bad.yaml", None, "invalid YAML"),
        ),
        (
            "duplicate keys",
            with(
                "bad.yaml",
                "apiVersion: v1\nkind: ConfigMap\nkind: Secret\nmetadata:\n  name: a\n",
            ),
            (Error, "bad.yaml", None, "duplicate"),
        ),
        (
            "tab indentation",
            with(
                "bad.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n\tname: a\n",
            ),
            (Error, "bad.yaml", None, "invalid YAML"),
        ),
        (
            "empty file",
            with("empty.yaml", ""),
            (Warning, "empty.yaml", None, "the file is empty"),
        ),
        (
            "only comments",
            with("comments.yaml", "# just a note\n---\n"),
            (Warning, "comments.yaml", None, "no YAML documents"),
        ),
        (
            "binary file",
            with_content(
                "bin.yaml",
                FileContent::Bytes(vec![0x7f, b'E', b'L', b'F', 0, 1, 2]),
            ),
            (Error, "bin.yaml", None, "binary"),
        ),
        (
            "latin-1 file",
            with_content(
                "latin.yaml",
                FileContent::Bytes(b"kind: caf\xe9\n".to_vec()),
            ),
            (Error, "latin.yaml", None, "not UTF-8"),
        ),
        (
            "a 50 MB file",
            with_content(
                "huge.yaml",
                FileContent::TooLarge {
                    size: 50 * 1024 * 1024,
                    limit: crate::source::DEFAULT_MAX_FILE_BYTES,
                },
            ),
            (
                Error,
                "huge.yaml",
                None,
                "the file is 50.0 MiB, over the 4.0 MiB limit",
            ),
        ),
        (
            "symlink outside the repository",
            with_content(
                "evil.yaml",
                FileContent::SymlinkOutside {
                    target: "../../etc/passwd".into(),
                },
            ),
            (Error, "evil.yaml", None, "points outside the repository"),
        ),
        (
            "dangling symlink",
            with_content(
                "gone.yaml",
                FileContent::SymlinkUnresolved {
                    target: "missing.yaml".into(),
                    reason: "no such file".into(),
                },
            ),
            (Error, "gone.yaml", None, "cannot be followed"),
        ),
        (
            "billion laughs",
            with(
                "bomb.yaml",
                "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\ni: [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]\n",
            ),
            (Error, "bomb.yaml", None, "invalid YAML"),
        ),
        (
            "a list, not an object",
            with("list.yaml", "- a\n- b\n"),
            (
                Error,
                "list.yaml",
                None,
                "the document is a list, not a Kubernetes object",
            ),
        ),
        (
            "a scalar document",
            with("scalar.yaml", "just text\n"),
            (Error, "scalar.yaml", None, "the document is a string"),
        ),
        (
            "missing apiVersion",
            with("x.yaml", "kind: ConfigMap\nmetadata:\n  name: a\n"),
            (Error, "x.yaml", None, "apiVersion is missing"),
        ),
        (
            "missing kind",
            with("x.yaml", "apiVersion: v1\nmetadata:\n  name: a\n"),
            (Error, "x.yaml", None, "kind is missing"),
        ),
        (
            "kind is a number",
            with("x.yaml", "apiVersion: v1\nkind: 7\nmetadata:\n  name: a\n"),
            (Error, "x.yaml", None, "kind is missing or not a string"),
        ),
        (
            "missing name",
            with(
                "x.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: a-\n",
            ),
            (Error, "x.yaml", None, "ConfigMap has no metadata.name"),
        ),
        (
            "invalid name",
            with(
                "x.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Not_Valid\n",
            ),
            (
                Error,
                "x.yaml",
                Some("metadata.name"),
                "is not a valid Kubernetes object name",
            ),
        ),
        (
            "duplicate object in two files",
            with("copy.yaml", CONFIG),
            (
                Error,
                "copy.yaml",
                Some("metadata.name"),
                "ConfigMap test/podinfo-config is defined twice: here and in apps/podinfo/config.yaml (document 1)",
            ),
        ),
        (
            "unsupported flagger api version",
            with(
                "old.yaml",
                &SHARED
                    .replacen("flagger.app/v1beta1", "flagger.app/v1alpha3", 1)
                    .replace("name: error-rate", "name: old-rate")
                    .replace("name: on-call\n", "name: old-call\n"),
            ),
            (
                Error,
                "old.yaml",
                Some("apiVersion"),
                "apiVersion flagger.app/v1alpha3 is not supported",
            ),
        ),
        (
            "unknown flagger kind",
            with(
                "x.yaml",
                "apiVersion: flagger.app/v1beta1\nkind: Rollout\nmetadata:\n  name: a\n",
            ),
            (
                Warning,
                "x.yaml",
                Some("kind"),
                "flagger.app has no kind Rollout",
            ),
        ),
    ];
    for (case, files, want) in cases {
        assert_problem(case, files, &o, want);
    }
}

#[test]
fn bad_input_corpus_references() {
    use Severity::{Error, Warning};
    let o = CatalogOptions::default();
    let canary = "apps/podinfo/canary.yaml";
    let cases: Vec<(&str, Vec<SnapshotFile>, Expected)> = vec![
        (
            "target not in the repository",
            canary_with(
                "    kind: Deployment\n    name: podinfo",
                "    kind: Deployment\n    name: podinfo-v2",
            ),
            (
                Error,
                canary,
                Some("spec.targetRef.name"),
                "Deployment test/podinfo-v2 is not in the repository",
            ),
        ),
        (
            "same target claimed by two canaries",
            with(
                "apps/podinfo/canary2.yaml",
                &CANARY.replacen(
                    "name: podinfo\n  namespace: test",
                    "name: podinfo-two\n  namespace: test",
                    1,
                ),
            ),
            (
                Error,
                "apps/podinfo/canary2.yaml",
                Some("spec.targetRef"),
                "Deployment test/podinfo is already the target of Canary test/podinfo",
            ),
        ),
        (
            "selector without a selector label",
            deployment_with(
                "  selector:\n    matchLabels:\n      app: podinfo",
                "  selector:\n    matchLabels:\n      component: podinfo",
            ),
            (
                Error,
                "apps/podinfo/deployment.yaml",
                Some("spec.selector.matchLabels"),
                "the selector has none of the selector labels app, name, app.kubernetes.io/name (found: component)",
            ),
        ),
        (
            "autoscaler not in the repository",
            canary_with(
                "    kind: HorizontalPodAutoscaler\n    name: podinfo",
                "    kind: HorizontalPodAutoscaler\n    name: podinfo-hpa",
            ),
            (
                Error,
                canary,
                Some("spec.autoscalerRef.name"),
                "HorizontalPodAutoscaler test/podinfo-hpa is not in the repository",
            ),
        ),
        (
            "missing metric template",
            canary_with(
                "          name: error-rate\n",
                "          name: error-ratio\n",
            ),
            (
                Error,
                canary,
                Some("spec.analysis.metrics[0].templateRef.name"),
                "MetricTemplate istio-system/error-ratio is not in the repository",
            ),
        ),
        (
            "metric template in the wrong namespace",
            canary_with(
                "          namespace: istio-system\n",
                "          namespace: monitoring\n",
            ),
            (
                Error,
                canary,
                Some("spec.analysis.metrics[0].templateRef.name"),
                "MetricTemplate monitoring/error-rate is not in the repository",
            ),
        ),
        (
            "missing alert provider",
            canary_with("          name: on-call\n", "          name: pager\n"),
            (
                Error,
                canary,
                Some("spec.analysis.alerts[0].providerRef.name"),
                "AlertProvider flagger/pager is not in the repository",
            ),
        ),
        (
            "wrong type in the target deployment",
            deployment_with("  minReadySeconds: 3", "  minReadySeconds: three"),
            (
                Error,
                "apps/podinfo/deployment.yaml",
                Some("spec.minReadySeconds"),
                "invalid type",
            ),
        ),
        (
            "wrong type in a tracked configmap",
            with(
                "apps/podinfo/config.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: podinfo-config\n  namespace: test\ndata: [1, 2]\n",
            ),
            (
                Error,
                "apps/podinfo/config.yaml",
                Some("data"),
                "invalid type",
            ),
        ),
        (
            "unknown field in a canary",
            canary_with(
                "  progressDeadlineSeconds: 60\n",
                "  progressDeadlineSeconds: 60\n  progresDeadline: 30\n",
            ),
            (
                Warning,
                canary,
                Some("spec.progresDeadline"),
                "unknown field spec.progresDeadline is ignored",
            ),
        ),
        (
            "wrong type in a canary",
            canary_with("    threshold: 5\n", "    threshold: five\n"),
            (
                Error,
                canary,
                Some("spec.analysis.threshold"),
                "invalid type",
            ),
        ),
    ];
    for (case, files, want) in cases {
        assert_problem(case, files, &o, want);
    }

    let strict = CatalogOptions {
        no_cross_namespace_refs: true,
        ..Default::default()
    };
    assert_problem(
        "cross-namespace template when forbidden",
        valid_repo(),
        &strict,
        (
            Error,
            canary,
            Some("spec.analysis.metrics[0].templateRef.namespace"),
            "can't access metric template istio-system/error-rate, cross-namespace references are blocked",
        ),
    );
    assert_problem(
        "cross-namespace alert provider when forbidden",
        valid_repo(),
        &strict,
        (
            Error,
            canary,
            Some("spec.analysis.alerts[0].providerRef.namespace"),
            "can't access alert provider flagger/on-call, cross-namespace references are blocked",
        ),
    );
}

#[test]
fn one_bad_canary_does_not_hide_another() {
    let mut files = valid_repo();
    files.push(file(
        "apps/other/canary.yaml",
        &CANARY
            .replacen(
                "name: podinfo\n  namespace: test",
                "name: other\n  namespace: test",
                1,
            )
            .replacen(
                "    kind: Deployment\n    name: podinfo",
                "    kind: Deployment\n    name: missing",
                1,
            ),
    ));
    let catalog = load_files(files, &CatalogOptions::default());
    assert_eq!(catalog.canaries.len(), 2);
    let good = catalog
        .canaries
        .iter()
        .find(|c| c.name() == "podinfo")
        .expect("podinfo");
    assert!(good.revision.is_some());
    assert_eq!(catalog.errors(), 1, "{:?}", catalog.problems);
}

#[test]
fn bad_input_corpus_canary_rules_from_yaml() {
    use Severity::Error;
    let o = CatalogOptions::default();
    let c = "apps/podinfo/canary.yaml";
    let cases: Vec<(&str, Vec<SnapshotFile>, Expected)> = vec![
        (
            "interval 10x",
            canary_with(
                "    interval: 1m\n    threshold",
                "    interval: 10x\n    threshold",
            ),
            (Error, c, Some("spec.analysis.interval"), "\"10x\""),
        ),
        (
            "non-increasing stepWeights",
            canary_with("    stepWeight: 10\n", "    stepWeights: [10, 30, 20]\n"),
            (Error, c, Some("spec.analysis.stepWeights[2]"), "20"),
        ),
        (
            "maxWeight over 100",
            canary_with("    maxWeight: 50\n", "    maxWeight: 150\n"),
            (Error, c, Some("spec.analysis.maxWeight"), "150"),
        ),
        (
            "thresholdRange min over max",
            canary_with(
                "        thresholdRange:\n          max: 1\n",
                "        thresholdRange:\n          min: 5\n          max: 1\n",
            ),
            (
                Error,
                c,
                Some("spec.analysis.metrics[0].thresholdRange"),
                "min",
            ),
        ),
        (
            "webhook of unknown type",
            canary_with("        type: pre-rollout\n", "        type: pre-rolout\n"),
            (
                Error,
                c,
                Some("spec.analysis.webhooks[0].type"),
                "pre-rolout",
            ),
        ),
        (
            "metric with neither builtin name, query nor templateRef",
            canary_with(
                "      - name: error-rate\n        templateRef:\n          name: error-rate\n          namespace: istio-system\n",
                "      - name: error-rate\n",
            ),
            (Error, c, Some("spec.analysis.metrics[0]"), "error-rate"),
        ),
        (
            "missing targetRef",
            canary_with(
                "  targetRef:\n    apiVersion: apps/v1\n    kind: Deployment\n    name: podinfo\n",
                "",
            ),
            (Error, c, Some("spec.targetRef"), "targetRef"),
        ),
        (
            "missing analysis",
            with(c, &CANARY[..CANARY.find("  analysis:").expect("analysis")]),
            (Error, c, Some("spec.analysis"), "analysis"),
        ),
        (
            "gatewayapi without gatewayRefs",
            canary_with(
                "    gatewayRefs:\n      - name: gateway\n        namespace: istio-ingress\n",
                "",
            ),
            (Error, c, Some("spec.service.gatewayRefs"), "gatewayRefs"),
        ),
        (
            "unknown provider",
            canary_with("  provider: gatewayapi:v1", "  provider: ambassador"),
            (Error, c, Some("spec.provider"), "ambassador"),
        ),
        (
            "service port out of range",
            canary_with("    port: 9898", "    port: 70000"),
            (Error, c, Some("spec.service.port"), "70000"),
        ),
        (
            "invalid session affinity cookie",
            canary_with(
                "    stepWeight: 10\n",
                "    stepWeight: 10\n    sessionAffinity:\n      cookieName: \"bad cookie\"\n",
            ),
            (
                Error,
                c,
                Some("spec.analysis.sessionAffinity.cookieName"),
                "bad cookie",
            ),
        ),
        (
            "alert severity unknown",
            canary_with("        severity: error\n", "        severity: critical\n"),
            (
                Error,
                c,
                Some("spec.analysis.alerts[0].severity"),
                "critical",
            ),
        ),
        (
            "webhook url not http",
            canary_with(
                "        url: http://flagger-loadtester.test/\n",
                "        url: flagger-loadtester.test\n",
            ),
            (
                Error,
                c,
                Some("spec.analysis.webhooks[0].url"),
                "flagger-loadtester.test",
            ),
        ),
    ];
    for (case, files, want) in cases {
        assert_problem(case, files, &o, want);
    }
}

/// A small deterministic PRNG, so the property test needs no extra crate and replays exactly.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Property: whatever bytes a repository holds, loading never panics, every problem names a
/// file of the snapshot and carries a fix, and a canary is kept only if it parsed.
#[test]
fn loading_mutated_repositories_never_panics() {
    const TOKENS: [&[u8]; 12] = [
        b"\n", b": ", b"- ", b"*a", b"&a ", b"---\n", b"{", b"]", b"'", b"\t", b"\xff", b"  ",
    ];
    let mut rng = XorShift(0x5e71_0000_dead_beef);
    let base = valid_repo();
    for round in 0..1500 {
        let mut files = base.clone();
        for _ in 0..1 + rng.below(4) {
            let f = rng.below(files.len());
            let FileContent::Bytes(bytes) = &mut files[f].content else {
                continue;
            };
            let at = rng.below(bytes.len());
            match rng.below(3) {
                0 => {
                    let end = (at + 1 + rng.below(40)).min(bytes.len());
                    bytes.drain(at..end);
                }
                1 => {
                    let t = TOKENS[rng.below(TOKENS.len())];
                    bytes.splice(at..at, t.iter().copied());
                }
                _ => bytes[at] = (rng.next() & 0xff) as u8,
            }
        }
        let paths: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
        let catalog = std::panic::catch_unwind(|| load_files(files, &CatalogOptions::default()))
            .unwrap_or_else(|_| panic!("round {round}: load panicked"));
        for p in &catalog.problems {
            assert!(
                paths.contains(&p.file),
                "round {round}: {p} names an unknown file"
            );
            assert!(!p.fix.is_empty(), "round {round}: {p} has no fix");
        }
        assert!(catalog.canaries.len() <= 1, "round {round}");
    }
}
