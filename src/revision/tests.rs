use super::*;
use k8s_openapi::ByteString;
use serde_json::json;

fn template(v: serde_json::Value) -> PodTemplateSpec {
    serde_json::from_value(v).expect("valid pod template")
}

fn podinfo(image: &str) -> PodTemplateSpec {
    template(json!({
        "metadata": { "labels": { "app": "podinfo" }, "annotations": { "prometheus.io/scrape": "true" } },
        "spec": {
            "containers": [{
                "name": "podinfod",
                "image": image,
                "env": [
                    { "name": "PODINFO_UI_COLOR", "value": "#34577c" },
                    { "name": "TOKEN", "valueFrom": { "secretKeyRef": { "name": "podinfo-token", "key": "token" } } },
                ],
                "envFrom": [{ "configMapRef": { "name": "podinfo-env", "optional": true } }],
                "resources": { "limits": { "cpu": "2000m" }, "requests": { "cpu": "100m" } },
                "volumeMounts": [{ "name": "config", "mountPath": "/config" }],
            }],
            "initContainers": [{
                "name": "init",
                "image": "busybox:1.36",
                "env": [{ "name": "X", "valueFrom": { "configMapKeyRef": { "name": "podinfo-config", "key": "x" } } }],
            }],
            "volumes": [
                { "name": "config", "configMap": { "name": "podinfo-config" } },
                { "name": "tls", "secret": { "secretName": "podinfo-tls", "optional": true } },
                { "name": "all", "projected": { "sources": [
                    { "configMap": { "name": "podinfo-projected" } },
                    { "secret": { "name": "podinfo-token" } },
                ] } },
            ],
        }
    }))
}

/// (kind, name, [(key, value)]) of a config the template uses.
type TestConfig<'a> = (ConfigKind, &'a str, &'a [(&'a str, &'a str)]);

fn input(t: PodTemplateSpec, configs: &[TestConfig]) -> RevisionInput {
    RevisionInput {
        template: t,
        configs: configs
            .iter()
            .map(|(kind, name, keys)| {
                let content = ConfigContent {
                    key_hashes: keys
                        .iter()
                        .map(|(k, v)| (k.to_string(), sha256_hex(v.as_bytes())))
                        .collect(),
                };
                (
                    ConfigRef {
                        kind: *kind,
                        name: name.to_string(),
                    },
                    content,
                )
            })
            .collect(),
    }
}

fn causes(old: &RevisionInput, new: &RevisionInput) -> Vec<String> {
    cause(old, new).into_iter().map(|c| c.0).collect()
}

#[test]
fn every_reference_form_is_found_once_with_its_optionality() {
    let refs: Vec<(String, bool)> = config_refs(&podinfo("a:1"))
        .into_iter()
        .map(|u| (u.config.tracked_key(), u.optional))
        .collect();
    assert_eq!(
        refs,
        [
            ("configmap/podinfo-config".to_string(), false),
            ("configmap/podinfo-env".to_string(), true),
            ("configmap/podinfo-projected".to_string(), false),
            ("secret/podinfo-tls".to_string(), true),
            ("secret/podinfo-token".to_string(), false),
        ]
    );
}

#[test]
fn a_reference_is_mandatory_if_any_use_is() {
    let t = template(json!({ "spec": { "containers": [{
        "name": "c",
        "envFrom": [{ "configMapRef": { "name": "cfg", "optional": true } }],
        "env": [{ "name": "A", "valueFrom": { "configMapKeyRef": { "name": "cfg", "key": "a" } } }],
    }] } }));
    let refs = config_refs(&t);
    assert_eq!(refs.len(), 1);
    assert!(!refs[0].optional);
}

#[test]
fn formatting_and_key_order_do_not_change_the_revision() {
    let a = template(json!({ "metadata": { "labels": { "a": "1", "b": "2" } },
        "spec": { "containers": [{ "name": "c", "image": "x:1" }] } }));
    let b: PodTemplateSpec = serde_json::from_str(
        r#"{"spec":{"containers":[{"image":"x:1","name":"c"}]},"metadata":{"labels":{"b":"2","a":"1"}}}"#,
    )
    .expect("valid");
    assert_eq!(Revision::of(&input(a, &[])), Revision::of(&input(b, &[])));
}

#[test]
fn template_and_config_content_change_the_revision() {
    let base = Revision::of(&input(
        podinfo("a:1"),
        &[(ConfigKind::ConfigMap, "c", &[("k", "v")])],
    ));
    let image = Revision::of(&input(
        podinfo("a:2"),
        &[(ConfigKind::ConfigMap, "c", &[("k", "v")])],
    ));
    let config = Revision::of(&input(
        podinfo("a:1"),
        &[(ConfigKind::ConfigMap, "c", &[("k", "w")])],
    ));
    assert_ne!(base.id, image.id);
    assert_ne!(base.id, config.id);
    assert_eq!(base.template_hash, config.template_hash);
    assert_ne!(
        base.tracked_configs["configmap/c"],
        config.tracked_configs["configmap/c"]
    );
    assert_eq!(base.id.len(), 64);
    assert_eq!(base.short().len(), 12);
}

#[test]
fn secret_string_data_hashes_like_data() {
    let git: Secret = serde_json::from_value(json!({
        "metadata": { "name": "s" }, "stringData": { "token": "hunter2" } }))
    .expect("valid");
    let cluster = Secret {
        data: Some([("token".to_string(), ByteString(b"hunter2".to_vec()))].into()),
        ..Default::default()
    };
    assert_eq!(
        ConfigContent::of_secret(&git),
        ConfigContent::of_secret(&cluster)
    );
}

#[test]
fn untracked_configs_are_skipped() {
    let docker: Secret = serde_json::from_value(json!({
        "metadata": { "name": "pull" }, "type": "kubernetes.io/dockerconfigjson",
        "data": { ".dockerconfigjson": "e30=" } }))
    .expect("valid");
    assert_eq!(ConfigContent::of_secret(&docker), None);
    let disabled: ConfigMap = serde_json::from_value(json!({
        "metadata": { "name": "c", "annotations": { "flagger.app/config-tracking": "disabled" } },
        "data": { "a": "b" } }))
    .expect("valid");
    assert_eq!(ConfigContent::of_config_map(&disabled), None);
    let tls: Secret = serde_json::from_value(json!({
        "metadata": { "name": "t" }, "type": "kubernetes.io/tls", "data": { "tls.crt": "eA==" } }))
    .expect("valid");
    assert!(ConfigContent::of_secret(&tls).is_some());
}

#[test]
fn cause_names_the_image_change_by_tag() {
    let old = input(podinfo("ghcr.io/stefanprodan/podinfo:6.0.0"), &[]);
    let new = input(podinfo("ghcr.io/stefanprodan/podinfo:6.0.1"), &[]);
    assert_eq!(
        causes(&old, &new),
        ["podinfod: ghcr.io/stefanprodan/podinfo:6.0.0 → 6.0.1"]
    );
    assert!(causes(&old, &old).is_empty());
}

#[test]
fn image_changes_are_shortened_only_within_one_repository() {
    let cases = [
        ("ghcr.io/a/b:1", "ghcr.io/a/b:2", "2"),
        ("ghcr.io/a/b:1", "docker.io/a/b:1", "docker.io/a/b:1"),
        ("registry:5000/b:1", "registry:5000/b:2", "2"),
        ("registry:5000/b", "registry:5000/b:2", "2"),
        ("b@sha256:aaa", "b@sha256:bbb", "@sha256:bbb"),
        ("b:1", "c:1", "c:1"),
    ];
    for (old, new, want) in cases {
        assert_eq!(image_change(Some(old), Some(new)), want, "{old} → {new}");
    }
}

#[test]
fn cause_lists_container_env_resource_probe_and_metadata_changes() {
    let old = input(podinfo("a:1"), &[]);
    let mut t = podinfo("a:1");
    let spec = t.spec.as_mut().expect("spec");
    let c = &mut spec.containers[0];
    let env = c.env.as_mut().expect("env");
    env[0].value = Some("#ffffff".into());
    env.push(serde_json::from_value(json!({ "name": "NEW", "value": "1" })).expect("env"));
    c.args = Some(vec!["--level=debug".into()]);
    c.resources = Some(
        serde_json::from_value(json!({ "limits": { "cpu": "1000m" }, "requests": { "cpu": "100m", "memory": "64Mi" } }))
            .expect("resources"),
    );
    c.readiness_probe = Some(
        serde_json::from_value(json!({ "httpGet": { "path": "/readyz", "port": 9898 } }))
            .expect("probe"),
    );
    spec.service_account_name = Some("podinfo".into());
    spec.containers
        .push(serde_json::from_value(json!({ "name": "sidecar", "image": "envoy:1" })).expect("c"));
    t.metadata
        .as_mut()
        .expect("meta")
        .annotations
        .as_mut()
        .expect("annotations")
        .insert("prometheus.io/scrape".into(), "false".into());
    let got = causes(&old, &input(t, &[]));
    assert_eq!(
        got,
        [
            "podinfod: env NEW added",
            "podinfod: env PODINFO_UI_COLOR changed",
            "podinfod: args changed",
            "podinfod: resources changed: limits.cpu 2000m → 1000m, requests.memory unset → 64Mi",
            "podinfod: readinessProbe changed",
            "sidecar added (envoy:1)",
            "annotation prometheus.io/scrape: true → false",
            "pod spec serviceAccountName changed",
        ]
    );
}

#[test]
fn cause_names_config_keys_never_values() {
    let old = input(
        podinfo("a:1"),
        &[
            (
                ConfigKind::ConfigMap,
                "podinfo-config",
                &[("ui.color", "blue"), ("old", "x")],
            ),
            (ConfigKind::Secret, "podinfo-token", &[("token", "hunter2")]),
        ],
    );
    let new = input(
        podinfo("a:1"),
        &[
            (
                ConfigKind::ConfigMap,
                "podinfo-config",
                &[("ui.color", "red"), ("new", "y")],
            ),
            (
                ConfigKind::Secret,
                "podinfo-token",
                &[("token", "correct-horse")],
            ),
        ],
    );
    let got = causes(&old, &new);
    assert_eq!(
        got,
        [
            "ConfigMap podinfo-config: key new added",
            "ConfigMap podinfo-config: key old removed",
            "ConfigMap podinfo-config: key ui.color changed",
            "Secret podinfo-token: key token changed",
        ]
    );
    let all = got.join("\n");
    for secret in ["hunter2", "correct-horse", "blue", "red"] {
        assert!(!all.contains(secret), "{secret} leaked into {all}");
    }
}
