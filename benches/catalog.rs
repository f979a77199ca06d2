//! Loads, validates and hashes a generated config repository of 5,000 manifests
//! (1,000 canaries, each with a Deployment, an HPA, a ConfigMap and a Secret) and prints
//! manifests per second. Run: `cargo bench --bench catalog` (target: the whole repo < 1 s).

use std::path::Path;
use std::time::{Duration, Instant};

use serin::catalog::{CatalogOptions, load};
use serin::source::SnapshotOptions;
use serin::source::dir::read_dir;

const CANARIES: usize = 1000;
const ROUNDS: usize = 5;

fn app(i: usize) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-{i}
  namespace: team-{ns}
  labels:
    app: app-{i}
spec:
  selector:
    matchLabels:
      app: app-{i}
  template:
    metadata:
      labels:
        app: app-{i}
      annotations:
        prometheus.io/scrape: "true"
    spec:
      containers:
        - name: app
          image: registry.example.com/team-{ns}/app-{i}:1.{i}.0
          ports:
            - name: http
              containerPort: 8080
          envFrom:
            - configMapRef:
                name: app-{i}-config
          env:
            - name: TOKEN
              valueFrom:
                secretKeyRef:
                  name: app-{i}-secret
                  key: token
          resources:
            requests:
              cpu: 100m
              memory: 64Mi
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: app-{i}
  namespace: team-{ns}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: app-{i}
  minReplicas: 2
  maxReplicas: 6
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-{i}-config
  namespace: team-{ns}
data:
  LOG_LEVEL: info
  FEATURE_X: "{i}"
---
apiVersion: v1
kind: Secret
metadata:
  name: app-{i}-secret
  namespace: team-{ns}
stringData:
  token: secret-{i}
---
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: app-{i}
  namespace: team-{ns}
spec:
  provider: gatewayapi:v1
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: app-{i}
  autoscalerRef:
    apiVersion: autoscaling/v2
    kind: HorizontalPodAutoscaler
    name: app-{i}
  service:
    port: 80
    targetPort: 8080
    gatewayRefs:
      - name: public
        namespace: gateways
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
      - name: error-rate
        templateRef:
          name: error-rate
          namespace: flagger-system
        thresholdRange:
          max: 1
    webhooks:
      - name: load-test
        url: http://loadtester.flagger-system/
        timeout: 5s
        metadata:
          cmd: "hey -z 1m -q 10 -c 2 http://app-{i}-canary.team-{ns}/"
"#,
        ns = i % 20
    )
}

const TEMPLATE: &str = r#"apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata:
  name: error-rate
  namespace: flagger-system
spec:
  provider:
    type: prometheus
    address: http://prometheus.monitoring:9090
  query: |
    100 - sum(rate(http_requests_total{namespace="{{ namespace }}", app="{{ target }}", status!~"5.*"}[{{ interval }}]))
    / sum(rate(http_requests_total{namespace="{{ namespace }}", app="{{ target }}"}[{{ interval }}])) * 100
"#;

fn generate(root: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(root.join("shared"))?;
    std::fs::write(root.join("shared/templates.yaml"), TEMPLATE)?;
    for i in 0..CANARIES {
        let dir = root.join(format!("team-{}", i % 20));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(format!("app-{i}.yaml")), app(i))?;
    }
    Ok(())
}

fn main() -> std::io::Result<()> {
    // `cargo bench` passes --bench; nothing else is configurable.
    let root = std::env::temp_dir().join(format!("serin-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    generate(&root)?;
    let mut times: Vec<Duration> = Vec::new();
    let mut manifests = 0;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let snapshot =
            read_dir(&root, &SnapshotOptions::default()).map_err(std::io::Error::other)?;
        let catalog = load(&snapshot, &CatalogOptions::default());
        times.push(start.elapsed());
        manifests = catalog.objects.len();
        let revisions = catalog
            .canaries
            .iter()
            .filter(|c| c.revision.is_some())
            .count();
        assert_eq!(catalog.errors(), 0, "{:?}", catalog.problems.first());
        assert_eq!(revisions, CANARIES);
    }
    let _ = std::fs::remove_dir_all(&root);
    times.sort();
    let median = times[ROUNDS / 2];
    println!(
        "catalog: {manifests} manifests, {CANARIES} canaries (read + parse + validate + resolve + hash)"
    );
    println!(
        "catalog: best {:.0} ms, median {:.0} ms over {ROUNDS} rounds",
        times[0].as_secs_f64() * 1000.0,
        median.as_secs_f64() * 1000.0
    );
    println!(
        "catalog: {:.0} manifests/second (median); target: the whole repo in < 1000 ms: {}",
        manifests as f64 / median.as_secs_f64(),
        if median < Duration::from_secs(1) {
            "met"
        } else {
            "NOT met"
        }
    );
    Ok(())
}
