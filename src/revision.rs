//! The revision of a canary's target, and why it changed.
//!
//! A revision is what Serin rolls out: the target's pod template plus the content of every
//! ConfigMap and Secret that template references. It is a SHA-256 over the canonical JSON (sorted
//! keys) of the template, combined with one SHA-256 per referenced config. Hashing the canonical
//! form, not the file bytes, means comments, key order and formatting never start a rollout.
//!
//! The cause is the human-readable difference between two revisions — what a reviewer reads in
//! `serin plan` and in status commits. Secret content never appears in it: only key names.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use k8s_openapi::api::core::v1::{ConfigMap, Container, PodTemplateSpec, Secret};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Secret types Flagger tracks; others (service-account tokens, registry credentials) change
/// without the workload's behaviour changing.
const TRACKED_SECRET_TYPES: [&str; 4] = [
    "Opaque",
    "kubernetes.io/basic-auth",
    "kubernetes.io/ssh-auth",
    "kubernetes.io/tls",
];

/// `flagger.app/config-tracking: disabled` on a ConfigMap/Secret opts it out of tracking.
pub const CONFIG_TRACKING_ANNOTATION: &str = "flagger.app/config-tracking";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfigKind {
    ConfigMap,
    Secret,
}

impl fmt::Display for ConfigKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigKind::ConfigMap => "ConfigMap",
            ConfigKind::Secret => "Secret",
        })
    }
}

/// A ConfigMap or Secret referenced by a pod template, by kind and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ConfigRef {
    pub kind: ConfigKind,
    pub name: String,
}

impl ConfigRef {
    /// Flagger's key in `status.trackedConfigs`: `configmap/<name>` or `secret/<name>`.
    pub fn tracked_key(&self) -> String {
        match self.kind {
            ConfigKind::ConfigMap => format!("configmap/{}", self.name),
            ConfigKind::Secret => format!("secret/{}", self.name),
        }
    }
}

/// A reference found in a pod template; `optional` ones may be absent.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConfigUse {
    pub config: ConfigRef,
    pub optional: bool,
}

/// Every ConfigMap and Secret a pod template references (volumes, projected volumes, env
/// `valueFrom`, `envFrom`; containers and init containers), each once. A reference is optional
/// only if every use of it is optional.
pub fn config_refs(template: &PodTemplateSpec) -> Vec<ConfigUse> {
    let mut found: BTreeMap<ConfigRef, bool> = BTreeMap::new();
    let mut add = |kind, name: &str, optional: Option<bool>| {
        if name.is_empty() {
            return;
        }
        let key = ConfigRef {
            kind,
            name: name.to_string(),
        };
        let optional = optional.unwrap_or(false);
        found
            .entry(key)
            .and_modify(|o| *o = *o && optional)
            .or_insert(optional);
    };
    let Some(spec) = &template.spec else {
        return Vec::new();
    };
    for volume in spec.volumes.iter().flatten() {
        if let Some(cm) = &volume.config_map {
            add(ConfigKind::ConfigMap, &cm.name, cm.optional);
        }
        if let Some(s) = &volume.secret {
            add(
                ConfigKind::Secret,
                s.secret_name.as_deref().unwrap_or(""),
                s.optional,
            );
        }
        for source in volume
            .projected
            .iter()
            .flat_map(|p| p.sources.iter().flatten())
        {
            if let Some(cm) = &source.config_map {
                add(ConfigKind::ConfigMap, &cm.name, cm.optional);
            }
            if let Some(s) = &source.secret {
                add(ConfigKind::Secret, &s.name, s.optional);
            }
        }
    }
    let containers = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    for c in containers {
        for env in c.env.iter().flatten() {
            let Some(from) = &env.value_from else {
                continue;
            };
            if let Some(r) = &from.config_map_key_ref {
                add(ConfigKind::ConfigMap, &r.name, r.optional);
            }
            if let Some(r) = &from.secret_key_ref {
                add(ConfigKind::Secret, &r.name, r.optional);
            }
        }
        for from in c.env_from.iter().flatten() {
            if let Some(r) = &from.config_map_ref {
                add(ConfigKind::ConfigMap, &r.name, r.optional);
            }
            if let Some(r) = &from.secret_ref {
                add(ConfigKind::Secret, &r.name, r.optional);
            }
        }
    }
    found
        .into_iter()
        .map(|(config, optional)| ConfigUse { config, optional })
        .collect()
}

/// The content of one tracked config: one SHA-256 per key, so a change can be named by key
/// without keeping (or ever showing) a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigContent {
    pub key_hashes: BTreeMap<String, String>,
}

impl ConfigContent {
    /// A ConfigMap's `data` and `binaryData`, or `None` when tracking is disabled for it.
    pub fn of_config_map(cm: &ConfigMap) -> Option<Self> {
        if tracking_disabled(cm.metadata.annotations.as_ref()) {
            return None;
        }
        let mut keys = BTreeMap::new();
        for (k, v) in cm.data.iter().flatten() {
            keys.insert(k.clone(), sha256_hex(v.as_bytes()));
        }
        for (k, v) in cm.binary_data.iter().flatten() {
            keys.insert(k.clone(), sha256_hex(&v.0));
        }
        Some(ConfigContent { key_hashes: keys })
    }

    /// A Secret's `data` merged with `stringData` as the API server does (a manifest in Git
    /// usually has `stringData`, the cluster's copy only `data`: both must hash the same).
    /// `None` when tracking is disabled or the type is not tracked.
    pub fn of_secret(secret: &Secret) -> Option<Self> {
        if tracking_disabled(secret.metadata.annotations.as_ref()) {
            return None;
        }
        let kind = secret.type_.as_deref().unwrap_or("Opaque");
        if !TRACKED_SECRET_TYPES.contains(&kind) {
            return None;
        }
        let mut keys = BTreeMap::new();
        for (k, v) in secret.data.iter().flatten() {
            keys.insert(k.clone(), sha256_hex(&v.0));
        }
        for (k, v) in secret.string_data.iter().flatten() {
            keys.insert(k.clone(), sha256_hex(v.as_bytes()));
        }
        Some(ConfigContent { key_hashes: keys })
    }

    /// SHA-256 over the canonical per-key hashes.
    pub fn checksum(&self) -> String {
        sha256_hex(&canonical_json(&self.key_hashes))
    }
}

fn tracking_disabled(annotations: Option<&BTreeMap<String, String>>) -> bool {
    annotations
        .and_then(|a| a.get(CONFIG_TRACKING_ANNOTATION))
        .is_some_and(|v| v.starts_with("disable"))
}

/// What a revision is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct RevisionInput {
    pub template: PodTemplateSpec,
    /// Tracked configs that exist; a missing optional reference is simply absent.
    pub configs: BTreeMap<ConfigRef, ConfigContent>,
}

/// A computed revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revision {
    /// SHA-256 of the template hash and every config checksum: the identity of what rolls out.
    pub id: String,
    pub template_hash: String,
    /// Flagger's `status.trackedConfigs`: `configmap/<name>` → checksum.
    pub tracked_configs: BTreeMap<String, String>,
}

impl Revision {
    pub fn of(input: &RevisionInput) -> Revision {
        let template_hash = sha256_hex(&canonical_json(&input.template));
        let tracked_configs: BTreeMap<String, String> = input
            .configs
            .iter()
            .map(|(r, c)| (r.tracked_key(), c.checksum()))
            .collect();
        let id = sha256_hex(&canonical_json(&(&template_hash, &tracked_configs)));
        Revision {
            id,
            template_hash,
            tracked_configs,
        }
    }

    /// The first 12 hex digits, enough to tell revisions apart in messages.
    pub fn short(&self) -> &str {
        &self.id[..12.min(self.id.len())]
    }
}

/// JSON with object keys sorted at every level, so equal content always hashes equally.
fn canonical_json<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    fn sort(v: serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(map) => {
                let sorted: BTreeMap<String, serde_json::Value> =
                    map.into_iter().map(|(k, v)| (k, sort(v))).collect();
                serde_json::Value::Object(sorted.into_iter().collect())
            }
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.into_iter().map(sort).collect())
            }
            other => other,
        }
    }
    // Serializing types made of strings, numbers, maps and lists cannot fail.
    let value = serde_json::to_value(value).map(sort).unwrap_or_default();
    serde_json::to_vec(&value).unwrap_or_default()
}

fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// One difference between two revisions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change(pub String);

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why `new` differs from `old`, most telling changes first; empty when they are equal.
pub fn cause(old: &RevisionInput, new: &RevisionInput) -> Vec<Change> {
    let mut out = Vec::new();
    let (old_spec, new_spec) = (
        old.template.spec.clone().unwrap_or_default(),
        new.template.spec.clone().unwrap_or_default(),
    );
    container_changes(&old_spec.containers, &new_spec.containers, "", &mut out);
    container_changes(
        old_spec.init_containers.as_deref().unwrap_or_default(),
        new_spec.init_containers.as_deref().unwrap_or_default(),
        "init container ",
        &mut out,
    );
    let meta = |t: &PodTemplateSpec| t.metadata.clone().unwrap_or_default();
    let (old_meta, new_meta) = (meta(&old.template), meta(&new.template));
    map_changes(
        "annotation",
        old_meta.annotations.as_ref(),
        new_meta.annotations.as_ref(),
        &mut out,
    );
    map_changes(
        "label",
        old_meta.labels.as_ref(),
        new_meta.labels.as_ref(),
        &mut out,
    );
    // Everything else in the pod spec, by field name: containers are covered above.
    let fields = |s: &k8s_openapi::api::core::v1::PodSpec| -> BTreeMap<String, serde_json::Value> {
        match serde_json::to_value(s) {
            Ok(serde_json::Value::Object(m)) => m
                .into_iter()
                .filter(|(k, _)| k != "containers" && k != "initContainers")
                .collect(),
            _ => BTreeMap::new(),
        }
    };
    let (old_fields, new_fields) = (fields(&old_spec), fields(&new_spec));
    let names: BTreeSet<&String> = old_fields.keys().chain(new_fields.keys()).collect();
    for name in names {
        if old_fields.get(name) != new_fields.get(name) {
            out.push(Change(format!("pod spec {name} changed")));
        }
    }
    config_changes(&old.configs, &new.configs, &mut out);
    out
}

fn container_changes(old: &[Container], new: &[Container], what: &str, out: &mut Vec<Change>) {
    for n in new {
        let Some(o) = old.iter().find(|o| o.name == n.name) else {
            out.push(Change(format!(
                "{what}{} added ({})",
                n.name,
                n.image.as_deref().unwrap_or("no image")
            )));
            continue;
        };
        let name = &n.name;
        if o.image != n.image {
            out.push(Change(format!(
                "{what}{name}: {} → {}",
                o.image.as_deref().unwrap_or("(none)"),
                image_change(o.image.as_deref(), n.image.as_deref())
            )));
        }
        let env_names = |c: &Container| -> BTreeMap<String, serde_json::Value> {
            c.env
                .iter()
                .flatten()
                .map(|e| (e.name.clone(), serde_json::to_value(e).unwrap_or_default()))
                .collect()
        };
        let (oe, ne) = (env_names(o), env_names(n));
        for k in ne.keys().filter(|k| !oe.contains_key(*k)) {
            out.push(Change(format!("{what}{name}: env {k} added")));
        }
        for k in oe.keys().filter(|k| !ne.contains_key(*k)) {
            out.push(Change(format!("{what}{name}: env {k} removed")));
        }
        for (k, v) in &ne {
            if oe.get(k).is_some_and(|ov| ov != v) {
                out.push(Change(format!("{what}{name}: env {k} changed")));
            }
        }
        let checks: [(&str, serde_json::Value, serde_json::Value); 9] = [
            ("command", json(&o.command), json(&n.command)),
            ("args", json(&o.args), json(&n.args)),
            ("envFrom", json(&o.env_from), json(&n.env_from)),
            ("resources", json(&o.resources), json(&n.resources)),
            ("ports", json(&o.ports), json(&n.ports)),
            (
                "livenessProbe",
                json(&o.liveness_probe),
                json(&n.liveness_probe),
            ),
            (
                "readinessProbe",
                json(&o.readiness_probe),
                json(&n.readiness_probe),
            ),
            (
                "startupProbe",
                json(&o.startup_probe),
                json(&n.startup_probe),
            ),
            (
                "volumeMounts",
                json(&o.volume_mounts),
                json(&n.volume_mounts),
            ),
        ];
        for (field, ov, nv) in checks {
            if ov != nv {
                out.push(Change(format!(
                    "{what}{name}: {field} changed{}",
                    detail(field, &ov, &nv)
                )));
            }
        }
        // Any remaining container field, named generically.
        let rest = |c: &Container| -> BTreeMap<String, serde_json::Value> {
            match serde_json::to_value(c) {
                Ok(serde_json::Value::Object(m)) => m
                    .into_iter()
                    .filter(|(k, _)| {
                        !matches!(
                            k.as_str(),
                            "name"
                                | "image"
                                | "env"
                                | "command"
                                | "args"
                                | "envFrom"
                                | "resources"
                                | "ports"
                                | "livenessProbe"
                                | "readinessProbe"
                                | "startupProbe"
                                | "volumeMounts"
                        )
                    })
                    .collect(),
                _ => BTreeMap::new(),
            }
        };
        let (or, nr) = (rest(o), rest(n));
        let keys: BTreeSet<&String> = or.keys().chain(nr.keys()).collect();
        for k in keys {
            if or.get(k) != nr.get(k) {
                out.push(Change(format!("{what}{name}: {k} changed")));
            }
        }
    }
    for o in old.iter().filter(|o| !new.iter().any(|n| n.name == o.name)) {
        out.push(Change(format!("{what}{} removed", o.name)));
    }
}

fn json<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

/// For resources, the leaves that differ (`limits.cpu 100m → 200m`); other fields are named only.
fn detail(field: &str, old: &serde_json::Value, new: &serde_json::Value) -> String {
    if field != "resources" {
        return String::new();
    }
    let mut leaves = Vec::new();
    for section in ["limits", "requests"] {
        let (o, n) = (&old[section], &new[section]);
        let keys: BTreeSet<&String> = o
            .as_object()
            .into_iter()
            .chain(n.as_object())
            .flat_map(|m| m.keys())
            .collect();
        for k in keys {
            if o[k] != n[k] {
                let show = |v: &serde_json::Value| match v {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => "unset".into(),
                    other => other.to_string(),
                };
                leaves.push(format!("{section}.{k} {} → {}", show(&o[k]), show(&n[k])));
            }
        }
    }
    if leaves.is_empty() {
        String::new()
    } else {
        format!(": {}", leaves.join(", "))
    }
}

/// The new image, shortened to its tag or digest when only that changed
/// (`ghcr.io/stefanprodan/podinfo:6.0.0 → 6.0.1`).
fn image_change(old: Option<&str>, new: Option<&str>) -> String {
    let Some(new) = new else {
        return "(none)".into();
    };
    let split = |image: &str| -> (String, String) {
        if let Some((repo, digest)) = image.split_once('@') {
            return (repo.to_string(), format!("@{digest}"));
        }
        // A ':' after the last '/' separates the tag; one before it belongs to a registry port.
        let slash = image.rfind('/').map_or(0, |i| i + 1);
        match image[slash..].rfind(':') {
            Some(i) => (
                image[..slash + i].to_string(),
                image[slash + i + 1..].to_string(),
            ),
            None => (image.to_string(), "latest".into()),
        }
    };
    match old {
        Some(old) if split(old).0 == split(new).0 => split(new).1,
        _ => new.to_string(),
    }
}

fn map_changes(
    what: &str,
    old: Option<&BTreeMap<String, String>>,
    new: Option<&BTreeMap<String, String>>,
    out: &mut Vec<Change>,
) {
    let empty = BTreeMap::new();
    let (old, new) = (old.unwrap_or(&empty), new.unwrap_or(&empty));
    for (k, v) in new {
        match old.get(k) {
            None => out.push(Change(format!("{what} {k} added"))),
            // Template metadata is plain text in Git, so its values are safe to show.
            Some(ov) if ov != v => out.push(Change(format!("{what} {k}: {ov} → {v}"))),
            _ => {}
        }
    }
    for k in old.keys().filter(|k| !new.contains_key(*k)) {
        out.push(Change(format!("{what} {k} removed")));
    }
}

fn config_changes(
    old: &BTreeMap<ConfigRef, ConfigContent>,
    new: &BTreeMap<ConfigRef, ConfigContent>,
    out: &mut Vec<Change>,
) {
    for (r, n) in new {
        let Some(o) = old.get(r) else {
            out.push(Change(format!("{} {} now tracked", r.kind, r.name)));
            continue;
        };
        for k in n
            .key_hashes
            .keys()
            .filter(|k| !o.key_hashes.contains_key(*k))
        {
            out.push(Change(format!("{} {}: key {k} added", r.kind, r.name)));
        }
        for k in o
            .key_hashes
            .keys()
            .filter(|k| !n.key_hashes.contains_key(*k))
        {
            out.push(Change(format!("{} {}: key {k} removed", r.kind, r.name)));
        }
        for (k, h) in &n.key_hashes {
            if o.key_hashes.get(k).is_some_and(|oh| oh != h) {
                out.push(Change(format!("{} {}: key {k} changed", r.kind, r.name)));
            }
        }
    }
    for r in old.keys().filter(|r| !new.contains_key(*r)) {
        out.push(Change(format!("{} {} no longer tracked", r.kind, r.name)));
    }
}

#[cfg(test)]
mod tests;
