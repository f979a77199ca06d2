//! The catalog: every object of a snapshot, typed where Serin acts on it, with every problem
//! located by file, document, object and field.
//!
//! Loading never stops at the first problem — a user fixing a pull request wants all of them at
//! once — and one bad object never hides the others: it is reported and left out.

mod document;
mod problem;
mod references;

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use document::Document;
pub use problem::{Location, Problem};
pub use references::{CanaryEntry, ConfigOrigin, Target};

use crate::api::{AlertProvider, Canary, Finding, MetricTemplate, Severity};
use crate::source::Snapshot;

/// The one Flagger API version Serin reads (Flagger's v1alpha versions are long gone).
const FLAGGER_API_VERSION: &str = "flagger.app/v1beta1";

/// Settings that change what is valid.
#[derive(Debug, Clone)]
pub struct CatalogOptions {
    /// Namespace of objects that name none (as `kubectl apply` without `-n`).
    pub default_namespace: String,
    /// Flagger's `-selector-labels`: the target's selector must contain one of these.
    pub selector_labels: Vec<String>,
    /// Flagger's `-no-cross-namespace-refs`: templates and alert providers must be in the
    /// canary's namespace.
    pub no_cross_namespace_refs: bool,
    /// Flagger's `-mesh-provider`: the provider of Canaries that name none, whose router
    /// decides what they can express.
    pub default_provider: String,
}

impl Default for CatalogOptions {
    fn default() -> Self {
        CatalogOptions {
            default_namespace: "default".into(),
            selector_labels: vec!["app".into(), "name".into(), "app.kubernetes.io/name".into()],
            no_cross_namespace_refs: false,
            default_provider: "istio".into(),
        }
    }
}

/// Kinds without a namespace. Offline there is no discovery, so the common ones are listed;
/// a namespace on another cluster-scoped kind is harmless (the API server ignores it).
const CLUSTER_SCOPED: [&str; 17] = [
    "Namespace",
    "Node",
    "PersistentVolume",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "StorageClass",
    "PriorityClass",
    "IngressClass",
    "RuntimeClass",
    "GatewayClass",
    "APIService",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "CSIDriver",
];

/// The identity of an object: two manifests with the same identity are the same object.
/// The version is not part of it (apps/v1 and apps/v1beta1 Deployments are one object).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ObjectId {
    pub group: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectId {
    pub fn namespaced(group: &str, kind: &str, namespace: &str, name: &str) -> Self {
        ObjectId {
            group: group.into(),
            kind: kind.into(),
            namespace: Some(namespace.into()),
            name: name.into(),
        }
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// One manifest of the repository.
#[derive(Debug, Clone)]
pub struct Object {
    pub id: ObjectId,
    pub api_version: String,
    pub location: Location,
    pub value: serde_json::Value,
}

/// A typed object and where it came from.
#[derive(Debug, Clone)]
pub struct Located<T> {
    pub location: Location,
    pub object: T,
}

/// Everything the repository holds, and what is wrong with it.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Every object, in file and document order.
    pub objects: Vec<Object>,
    pub canaries: Vec<CanaryEntry>,
    pub metric_templates: BTreeMap<(String, String), Located<MetricTemplate>>,
    pub alert_providers: BTreeMap<(String, String), Located<AlertProvider>>,
    pub problems: Vec<Problem>,
    pub files: usize,
    /// Position of each object in `objects`: references are resolved by identity.
    index: BTreeMap<ObjectId, usize>,
}

impl Catalog {
    pub fn errors(&self) -> usize {
        self.problems.iter().filter(|p| p.is_error()).count()
    }

    pub fn warnings(&self) -> usize {
        self.problems.len() - self.errors()
    }

    pub fn find(&self, id: &ObjectId) -> Option<&Object> {
        self.index.get(id).and_then(|&i| self.objects.get(i))
    }
}

/// Loads every object of `snapshot`.
pub fn load(snapshot: &Snapshot, options: &CatalogOptions) -> Catalog {
    let mut catalog = Catalog {
        files: snapshot.files.len(),
        ..Default::default()
    };
    for file in &snapshot.files {
        for doc in document::parse(file, &mut catalog.problems) {
            let Some(object) = identify(doc, options, &mut catalog.problems) else {
                continue;
            };
            if let Some(first) = catalog.find(&object.id).map(|o| o.location.clone()) {
                catalog.problems.push(Problem::object(
                    Severity::Error,
                    &object.location,
                    &object.id.to_string(),
                    "metadata.name",
                    format!("{} is defined twice: here and in {first}", object.id),
                    "keep one definition: remove or rename the other".into(),
                ));
                continue;
            }
            catalog
                .index
                .insert(object.id.clone(), catalog.objects.len());
            catalog.objects.push(object);
        }
    }
    type_flagger_objects(&mut catalog, &options.default_provider);
    references::resolve(&mut catalog, options);
    catalog
}

/// The identity of a document, or problems if it is not a Kubernetes object.
fn identify(
    doc: Document,
    options: &CatalogOptions,
    problems: &mut Vec<Problem>,
) -> Option<Object> {
    let at = doc.location.clone();
    let fail = |problems: &mut Vec<Problem>, problem: String, fix: &str| {
        problems.push(Problem::document(Severity::Error, &at, problem, fix));
        None
    };
    if !doc.value.is_object() {
        return fail(
            problems,
            format!(
                "the document is a {}, not a Kubernetes object",
                json_kind(&doc.value)
            ),
            "each document must be a mapping with apiVersion, kind and metadata",
        );
    }
    let text = |pointer: &str| doc.value.pointer(pointer).and_then(|v| v.as_str());
    let Some(api_version) = text("/apiVersion").filter(|s| !s.is_empty()) else {
        return fail(
            problems,
            "apiVersion is missing or not a string".into(),
            "add apiVersion, e.g. apiVersion: apps/v1",
        );
    };
    let Some(kind) = text("/kind").filter(|s| !s.is_empty()) else {
        return fail(
            problems,
            "kind is missing or not a string".into(),
            "add kind, e.g. kind: Deployment",
        );
    };
    let Some(name) = text("/metadata/name").filter(|s| !s.is_empty()) else {
        return fail(
            problems,
            format!("{kind} has no metadata.name"),
            "add metadata.name (generateName is not supported: Serin applies declaratively)",
        );
    };
    if let Some(problem) = invalid_name(name) {
        problems.push(Problem::object(
            Severity::Error,
            &at,
            &format!("{kind} {name}"),
            "metadata.name",
            problem,
            "use lower-case letters, digits, '-' and '.', starting and ending with a letter or digit".into(),
        ));
        return None;
    }
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let namespace = if CLUSTER_SCOPED.contains(&kind) {
        None
    } else {
        Some(
            text("/metadata/namespace")
                .filter(|s| !s.is_empty())
                .unwrap_or(&options.default_namespace)
                .to_string(),
        )
    };
    Some(Object {
        id: ObjectId {
            group: group.to_string(),
            kind: kind.to_string(),
            namespace,
            name: name.to_string(),
        },
        api_version: api_version.to_string(),
        location: doc.location,
        value: doc.value,
    })
}

/// A DNS subdomain (RFC 1123) check: what the API server demands of most names.
fn invalid_name(name: &str) -> Option<String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    let ok_ends = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if name.len() > 253 {
        Some(format!("name is {} characters long, over 253", name.len()))
    } else if !ok_chars || !ok_ends {
        Some(format!(
            "name {name:?} is not a valid Kubernetes object name"
        ))
    } else {
        None
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "list",
        serde_json::Value::Object(_) => "mapping",
    }
}

/// Deserializes `object` as `T`, reporting type errors at their field path and unknown fields
/// as warnings (Flagger's API server would prune them silently; a typo should not be silent).
pub fn typed<T: DeserializeOwned>(object: &Object, problems: &mut Vec<Problem>) -> Option<T> {
    let mut unknown: Vec<String> = Vec::new();
    let result: Result<T, _> = {
        let mut record = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
        let de = serde_ignored::Deserializer::new(&object.value, &mut record);
        serde_path_to_error::deserialize(de)
    };
    let name = object.id.to_string();
    match result {
        Ok(value) => {
            // kube's derived types read apiVersion and kind without keeping them.
            for field in unknown
                .into_iter()
                .filter(|f| f != "apiVersion" && f != "kind")
            {
                problems.push(Problem::object(
                    Severity::Warning,
                    &object.location,
                    &name,
                    &field,
                    format!("unknown field {field} is ignored"),
                    format!(
                        "check its spelling and indentation against the {} reference",
                        object.id.kind
                    ),
                ));
            }
            Some(value)
        }
        Err(e) => {
            let field = e.path().to_string();
            let field = if field == "." { String::new() } else { field };
            problems.push(Problem::object(
                Severity::Error,
                &object.location,
                &name,
                &field,
                e.into_inner().to_string(),
                "give the field the type the reference documents".into(),
            ));
            None
        }
    }
}

/// Types and validates the `flagger.app` objects.
fn type_flagger_objects(catalog: &mut Catalog, default_provider: &str) {
    let mut problems = Vec::new();
    let mut canaries = Vec::new();
    for object in catalog
        .objects
        .iter()
        .filter(|o| o.id.group == "flagger.app")
    {
        let name = object.id.to_string();
        let ns = object.id.namespace.clone().unwrap_or_default();
        let key = (ns.clone(), object.id.name.clone());
        if object.api_version != FLAGGER_API_VERSION {
            problems.push(Problem::object(
                Severity::Error,
                &object.location,
                &name,
                "apiVersion",
                format!("apiVersion {} is not supported", object.api_version),
                format!("use apiVersion: {}", FLAGGER_API_VERSION),
            ));
            continue;
        }
        match object.id.kind.as_str() {
            "Canary" => {
                if let Some(mut c) = typed::<Canary>(object, &mut problems) {
                    c.metadata.namespace = Some(ns);
                    let findings = c.validate();
                    // A field the Canary's own checks already refuse (a missing routeRef, say)
                    // is not reported again by its provider.
                    let refused: Vec<String> = findings
                        .iter()
                        .filter(|f| f.is_error())
                        .map(|f| f.field.clone())
                        .collect();
                    for f in findings {
                        problems.push(Problem::from_finding(&object.location, &name, f));
                    }
                    let routing = crate::router::inexpressible(&c, default_provider)
                        .into_iter()
                        .filter(|i| !refused.contains(&i.field))
                        .map(|i| Finding::error(i.field, i.problem, i.fix))
                        .chain(
                            crate::router::ignored_fields(&c, default_provider)
                                .into_iter()
                                .map(|i| Finding::warning(i.field, i.problem, i.fix)),
                        );
                    for f in routing {
                        problems.push(Problem::from_finding(&object.location, &name, f));
                    }
                    canaries.push(Located {
                        location: object.location.clone(),
                        object: c,
                    });
                }
            }
            "MetricTemplate" => {
                if let Some(mut t) = typed::<MetricTemplate>(object, &mut problems) {
                    t.metadata.namespace = Some(ns);
                    for f in t.validate() {
                        problems.push(Problem::from_finding(&object.location, &name, f));
                    }
                    catalog.metric_templates.insert(
                        key,
                        Located {
                            location: object.location.clone(),
                            object: t,
                        },
                    );
                }
            }
            "AlertProvider" => {
                if let Some(mut a) = typed::<AlertProvider>(object, &mut problems) {
                    a.metadata.namespace = Some(ns);
                    for f in a.validate() {
                        problems.push(Problem::from_finding(&object.location, &name, f));
                    }
                    catalog.alert_providers.insert(
                        key,
                        Located {
                            location: object.location.clone(),
                            object: a,
                        },
                    );
                }
            }
            other => problems.push(Problem::object(
                Severity::Warning,
                &object.location,
                &name,
                "kind",
                format!("flagger.app has no kind {other}; the object is applied as it is"),
                "use Canary, MetricTemplate or AlertProvider".into(),
            )),
        }
    }
    catalog.problems.extend(problems);
    catalog.canaries = canaries.into_iter().map(CanaryEntry::new).collect();
}

#[cfg(test)]
pub(crate) mod tests;
