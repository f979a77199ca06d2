//! The apply stage against the real API server: server-side apply of a catalog read from YAML,
//! the inventory label, replicas owned by Serin, CRDs before their resources, pruning, and
//! failures reported per object with the API server's message.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::{Client, ResourceExt};
use libtest_mimic::Failed;
use serde_json::json;
use serin::api::{Canary, MetricTemplate};
use serin::apply::{
    Applier, ApplyOptions, ApplyReport, INVENTORY_LABEL, Outcome, REPLICAS_FIELD_MANAGER,
};
use serin::catalog::{Catalog, CatalogOptions, ObjectId, load};
use serin::source::{FileContent, Snapshot, SnapshotFile};

use crate::TestResult;
use crate::support::{Context, TestCtx, eventually, install_flagger_crds};

const IMAGE_1: &str = "ghcr.io/stefanprodan/podinfo:6.0.0";
const IMAGE_2: &str = "ghcr.io/stefanprodan/podinfo:6.0.1";
const WAIT: Duration = Duration::from_secs(60);

/// The config repository of the test, file by file; `ns` is the test's namespace.
fn repo(ns: &str, image: &str, color: &str) -> BTreeMap<&'static str, String> {
    let group = crd_group(ns);
    BTreeMap::from([
        (
            "namespaces.yaml",
            format!(
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n---\n\
                 apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}-extra\n---\n\
                 apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}-adopted\n"
            ),
        ),
        (
            "app/config.yaml",
            format!(
                r##"apiVersion: v1
kind: ConfigMap
metadata:
  name: podinfo-config
  namespace: {ns}
  labels:
    team: web
data:
  PODINFO_UI_COLOR: "{color}"
"##
            ),
        ),
        (
            "app/deployment.yaml",
            format!(
                r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
  namespace: {ns}
  labels:
    app: podinfo
spec:
  replicas: 3
  selector:
    matchLabels:
      app: podinfo
  template:
    metadata:
      labels:
        app: podinfo
    spec:
      containers:
        - name: podinfod
          image: {image}
          ports:
            - name: http
              containerPort: 9898
          envFrom:
            - configMapRef:
                name: podinfo-config
"#
            ),
        ),
        ("app/service.yaml", service(ns, "podinfo", 9898)),
        ("app/handed-off.yaml", service(ns, "handed-off", 80)),
        (
            "app/metrics.yaml",
            format!(
                r#"apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata:
  name: error-rate
  namespace: {ns}
spec:
  provider:
    type: prometheus
    address: http://prometheus.monitoring:9090
  query: 'sum(rate(http_requests_total{{namespace="{{{{ namespace }}}}"}}[{{{{ interval }}}}]))'
"#
            ),
        ),
        (
            "app/canary.yaml",
            format!(
                r#"apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
  namespace: {ns}
spec:
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  service:
    port: 9898
  analysis:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    metrics:
      - name: error-rate
        templateRef:
          name: error-rate
        thresholdRange:
          max: 1
        interval: 1m
"#
            ),
        ),
        (
            "crd/widgets.yaml",
            format!(
                r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.{group}
spec:
  group: {group}
  scope: Namespaced
  names:
    kind: Widget
    plural: widgets
    singular: widget
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
"#
            ),
        ),
        (
            "crd/widget.yaml",
            format!(
                "apiVersion: {group}/v1\nkind: Widget\nmetadata:\n  name: gear\n  \
                 namespace: {ns}\nspec:\n  teeth: 12\n"
            ),
        ),
    ])
}

fn service(ns: &str, name: &str, port: u32) -> String {
    format!(
        r#"apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: {ns}
spec:
  selector:
    app: podinfo
  ports:
    - name: http
      port: {port}
      targetPort: 9898
"#
    )
}

/// A CRD group of the test's own, so parallel runs on one cluster never share it.
fn crd_group(ns: &str) -> String {
    format!("{ns}.e2e.serin.dev")
}

fn catalog(files: &BTreeMap<&'static str, String>) -> Result<Catalog, Failed> {
    let snapshot = Snapshot {
        origin: "e2e".into(),
        commit: None,
        files: files
            .iter()
            .map(|(path, body)| SnapshotFile {
                path: path.to_string(),
                content: FileContent::Bytes(body.clone().into_bytes()),
            })
            .collect(),
    };
    let catalog = load(&snapshot, &CatalogOptions::default());
    if catalog.errors() > 0 {
        let problems: Vec<String> = catalog.problems.iter().map(|p| p.to_string()).collect();
        return Err(format!("test bug: the catalog has errors:\n{}", problems.join("\n")).into());
    }
    Ok(catalog)
}

async fn apply(
    applier: &Applier,
    files: &BTreeMap<&'static str, String>,
) -> Result<ApplyReport, Failed> {
    applier
        .apply(&catalog(files)?)
        .await
        .context("apply the catalog")
}

fn expect_success(report: &ApplyReport, step: &str) -> TestResult {
    if report.is_success() {
        Ok(())
    } else {
        Err(format!("{step}: the apply failed: {report}").into())
    }
}

fn id(kind: &str, ns: &str, name: &str) -> ObjectId {
    let group = match kind {
        "Deployment" => "apps",
        "Canary" | "MetricTemplate" => "flagger.app",
        _ => "",
    };
    ObjectId::namespaced(group, kind, ns, name)
}

fn check(ok: bool, what: impl std::fmt::Display) -> TestResult {
    if ok {
        Ok(())
    } else {
        Err(what.to_string().into())
    }
}

fn labelled<K: ResourceExt>(object: &K, inventory: &str) -> TestResult {
    let label = object.labels().get(INVENTORY_LABEL);
    check(
        label.map(String::as_str) == Some(inventory),
        format!(
            "{} has {INVENTORY_LABEL}={label:?}, want {inventory}",
            object.name_any()
        ),
    )
}

fn replicas_and_image(d: &Deployment) -> (Option<i32>, Option<String>) {
    let spec = d.spec.as_ref();
    let image = spec
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.containers.first())
        .and_then(|c| c.image.clone());
    (spec.and_then(|s| s.replicas), image)
}

fn widgets(client: &Client, ns: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(&crd_group(ns), "v1", "Widget");
    Api::namespaced_with(client.clone(), ns, &ApiResource::from_gvk(&gvk))
}

pub async fn applies_owns_replicas_and_prunes() -> TestResult {
    let ctx = TestCtx::new("apply").await?;
    let result = scenario(&ctx).await;
    let ns = ctx.namespace.clone();
    let client = ctx.client.clone();
    // Whatever the outcome, leave no cluster-scoped objects behind on a shared environment.
    let _ = Api::<Namespace>::all(client.clone())
        .delete(&format!("{ns}-inventory"), &DeleteParams::background())
        .await;
    for suffix in ["extra", "adopted"] {
        let _ = Api::<Namespace>::all(client.clone())
            .delete(&format!("{ns}-{suffix}"), &DeleteParams::background())
            .await;
    }
    let _ = Api::<CustomResourceDefinition>::all(client)
        .delete(
            &format!("widgets.{}", crd_group(&ns)),
            &DeleteParams::background(),
        )
        .await;
    ctx.finish().await;
    result
}

async fn scenario(ctx: &TestCtx) -> TestResult {
    install_flagger_crds(&ctx.client).await?;
    let ns = ctx.namespace.as_str();
    let inventory = ns.to_string();
    let mut options = ApplyOptions::new(inventory.clone());
    // A namespace that does not exist yet: the applier creates it for its inventory.
    options.inventory_namespace = format!("{ns}-inventory");
    let applier = Applier::new(ctx.client.clone(), options.clone()).context("applier")?;
    let deployments = ctx.api::<Deployment>();
    let services = ctx.api::<Service>();
    let config_maps = ctx.api::<ConfigMap>();
    let namespaces = Api::<Namespace>::all(ctx.client.clone());

    // A Namespace someone else created, which the repository then declares too.
    let adopted = Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some(format!("{ns}-adopted")),
            ..Default::default()
        },
        ..Default::default()
    };
    namespaces
        .create(&PostParams::default(), &adopted)
        .await
        .context("create a Namespace before Serin")?;

    // 1. Everything is created, labelled, and the target starts with the manifest's replicas.
    let mut files = repo(ns, IMAGE_1, "#34577c");
    let report = apply(&applier, &files).await?;
    expect_success(&report, "first apply")?;
    for (kind, name) in [
        ("ConfigMap", "podinfo-config"),
        ("Deployment", "podinfo"),
        ("Service", "podinfo"),
        ("MetricTemplate", "error-rate"),
        ("Canary", "podinfo"),
    ] {
        let outcome = report.outcome_of(&id(kind, ns, name));
        check(
            outcome == Some(Outcome::Created),
            format!("{kind} {name}: {outcome:?}, want created; {report}"),
        )?;
    }
    for (name, want) in [
        (ns.to_string(), Outcome::Configured),
        (format!("{ns}-adopted"), Outcome::Configured),
        (format!("{ns}-extra"), Outcome::Created),
    ] {
        let namespace = ObjectId {
            namespace: None,
            ..id("Namespace", "", &name)
        };
        let outcome = report.outcome_of(&namespace);
        check(
            outcome == Some(want),
            format!("Namespace {name}: {outcome:?}, want {want}; {report}"),
        )?;
    }
    let cm = config_maps
        .get("podinfo-config")
        .await
        .context("get ConfigMap")?;
    labelled(&cm, &inventory)?;
    check(
        cm.labels().get("team").map(String::as_str) == Some("web"),
        format!("the ConfigMap keeps its own labels: {:?}", cm.labels()),
    )?;
    let deployment = deployments.get("podinfo").await.context("get Deployment")?;
    labelled(&deployment, &inventory)?;
    check(
        replicas_and_image(&deployment) == (Some(3), Some(IMAGE_1.into())),
        format!(
            "created with the manifest's replicas: {:?}",
            replicas_and_image(&deployment)
        ),
    )?;
    labelled(
        &services.get("podinfo").await.context("get Service")?,
        &inventory,
    )?;
    labelled(
        &ctx.api::<MetricTemplate>()
            .get("error-rate")
            .await
            .context("get MetricTemplate")?,
        &inventory,
    )?;
    labelled(
        &ctx.api::<Canary>()
            .get("podinfo")
            .await
            .context("get Canary")?,
        &inventory,
    )?;
    // The custom resource was applied after its CRD became Established in the same apply.
    labelled(
        &widgets(&ctx.client, ns)
            .get("gear")
            .await
            .context("get Widget")?,
        &inventory,
    )?;
    labelled(
        &namespaces
            .get(&format!("{ns}-extra"))
            .await
            .context("get Namespace")?,
        &inventory,
    )?;
    let stored = Api::<ConfigMap>::namespaced(ctx.client.clone(), &options.inventory_namespace)
        .get(&options.config_map_name())
        .await
        .context("the inventory ConfigMap")?;
    let stored = serde_json::to_string(&stored.data).unwrap_or_default();
    check(
        stored.contains("podinfo-config") && stored.contains("\\\"created\\\":true"),
        format!("the inventory lists the objects: {stored}"),
    )?;

    // 2. Applied again unchanged: the replicas the target was created with are not lost when
    // the applier stops sending them (they would default to 1), and nothing else changes.
    let report = apply(&applier, &files).await?;
    expect_success(&report, "second apply")?;
    let config_outcome = report.outcome_of(&id("ConfigMap", ns, "podinfo-config"));
    check(
        config_outcome == Some(Outcome::Unchanged),
        format!("ConfigMap: {config_outcome:?}, want unchanged; {report}"),
    )?;
    let deployment = deployments.get("podinfo").await.context("get Deployment")?;
    check(
        replicas_and_image(&deployment) == (Some(3), Some(IMAGE_1.into())),
        format!("replicas kept: {:?}", replicas_and_image(&deployment)),
    )?;
    let managers: Vec<String> = deployment
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.clone())
        .collect();
    check(
        managers.iter().any(|m| m == REPLICAS_FIELD_MANAGER),
        format!("replicas handed over: {managers:?}"),
    )?;

    // 3. Serin scales the target as the workload layer does; the manifest still says 3 and
    // changes the image: the image is applied, the replicas stay Serin's.
    let scale = PatchParams {
        field_manager: Some("serin".into()),
        ..Default::default()
    };
    deployments
        .patch_scale(
            "podinfo",
            &scale,
            &Patch::Merge(json!({ "spec": { "replicas": 0 } })),
        )
        .await
        .context("scale the target to 0")?;
    files = repo(ns, IMAGE_2, "#34577c");
    let report = apply(&applier, &files).await?;
    expect_success(&report, "apply a new image")?;
    let deployment = deployments.get("podinfo").await.context("get Deployment")?;
    check(
        replicas_and_image(&deployment) == (Some(0), Some(IMAGE_2.into())),
        format!(
            "Serin's replicas and Git's image: {:?}",
            replicas_and_image(&deployment)
        ),
    )?;

    // 4. Prune. Objects that left the source are deleted — the Namespace this inventory
    // created too, but not one that existed before, nor the test's own (objects of the source
    // still live in it); an object whose label someone removed, an unlabelled one and a
    // labelled one Serin never applied are left alone.
    services
        .patch(
            "handed-off",
            &PatchParams {
                field_manager: Some("someone-else".into()),
                ..Default::default()
            },
            &Patch::Merge(json!({ "metadata": { "labels": { INVENTORY_LABEL: null } } })),
        )
        .await
        .context("remove the label from handed-off")?;
    let bystander = |name: &str, labels: BTreeMap<String, String>| Service {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels),
            ..Default::default()
        },
        spec: Some(k8s_openapi::api::core::v1::ServiceSpec {
            ports: Some(vec![k8s_openapi::api::core::v1::ServicePort {
                port: 80,
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    services
        .create(
            &PostParams::default(),
            &bystander("bystander", BTreeMap::new()),
        )
        .await
        .context("create an unlabelled Service")?;
    let lookalike = BTreeMap::from([(INVENTORY_LABEL.to_string(), inventory.clone())]);
    services
        .create(&PostParams::default(), &bystander("lookalike", lookalike))
        .await
        .context("create a Service with the inventory label")?;
    for gone in [
        "app/service.yaml",
        "app/handed-off.yaml",
        "namespaces.yaml",
        "crd/widgets.yaml",
        "crd/widget.yaml",
    ] {
        files.remove(gone);
    }
    let report = apply(&applier, &files).await?;
    expect_success(&report, "apply with objects removed")?;
    let pruned: Vec<String> = report.pruned.iter().map(|id| id.to_string()).collect();
    let group = crd_group(ns);
    let want = [
        format!("Widget {ns}/gear"),
        format!("Service {ns}/podinfo"),
        format!("CustomResourceDefinition widgets.{group}"),
        format!("Namespace {ns}-extra"),
    ];
    check(pruned == want, format!("pruned {pruned:?}, want {want:?}"))?;
    let kept: Vec<String> = report.kept.iter().map(|k| k.id.to_string()).collect();
    check(
        kept == [
            format!("Service {ns}/handed-off"),
            format!("Namespace {ns}-adopted"),
        ],
        format!("kept {kept:?}: {report}"),
    )?;
    eventually("the pruned Service to be gone", WAIT, || async {
        let live = services.get_opt("podinfo").await.context("get Service")?;
        Ok(live.map_or(Ok(()), |s| Err(s.metadata.deletion_timestamp)))
    })
    .await?;
    eventually("the pruned Namespace to be deleted", WAIT, || async {
        let live = namespaces
            .get_opt(&format!("{ns}-extra"))
            .await
            .context("get Namespace")?;
        Ok(match live {
            None => Ok(()),
            Some(n) if n.metadata.deletion_timestamp.is_some() => Ok(()),
            Some(n) => Err(n.status),
        })
    })
    .await?;
    for name in ["handed-off", "bystander", "lookalike"] {
        services
            .get(name)
            .await
            .context(format!("{name} must not be pruned"))?;
    }
    for name in [ns.to_string(), format!("{ns}-adopted")] {
        let live = namespaces
            .get(&name)
            .await
            .context(format!("get Namespace {name}"))?;
        check(
            live.metadata.deletion_timestamp.is_none(),
            format!("Namespace {name} is not deleted"),
        )?;
    }

    // 5. One invalid object and one kind the server does not serve fail with their file and
    // the reason; everything else is applied.
    files.insert("app/bad-service.yaml", service(ns, "bad", 70000));
    files.insert(
        "app/gadget.yaml",
        format!("apiVersion: example.invalid/v1\nkind: Gadget\nmetadata:\n  name: g\n  namespace: {ns}\n"),
    );
    let replaced = repo(ns, IMAGE_2, "#ff0000");
    files.insert("app/config.yaml", replaced["app/config.yaml"].clone());
    let report = apply(&applier, &files).await?;
    check(report.failed.len() == 2, format!("two failures: {report}"))?;
    let bad = report
        .failure_of(&id("Service", ns, "bad"))
        .ok_or_else(|| format!("the invalid Service failed: {report}"))?
        .to_string();
    check(
        bad.starts_with("app/bad-service.yaml (document 1) Service ")
            && bad.contains("spec.ports[0].port: Invalid value: 70000"),
        format!("the API server's message with the file: {bad}"),
    )?;
    let gadget = report
        .failure_of(&ObjectId::namespaced("example.invalid", "Gadget", ns, "g"))
        .ok_or_else(|| format!("the unknown kind failed: {report}"))?
        .to_string();
    check(
        gadget
            == format!(
                "app/gadget.yaml (document 1) Gadget {ns}/g: the API server does not serve \
                 example.invalid/v1 Gadget; install its CRD first"
            ),
        format!("the unknown kind's message: {gadget}"),
    )?;
    let cm = config_maps
        .get("podinfo-config")
        .await
        .context("get ConfigMap")?;
    let color = cm
        .data
        .as_ref()
        .and_then(|d| d.get("PODINFO_UI_COLOR"))
        .cloned();
    check(
        color.as_deref() == Some("#ff0000"),
        format!("the rest is applied despite the failures: color {color:?}"),
    )?;
    check(
        report.outcome_of(&id("Canary", ns, "podinfo")) == Some(Outcome::Unchanged),
        format!("objects after the failed ones are applied: {report}"),
    )?;
    Ok(())
}
