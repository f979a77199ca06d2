//! `--on-failure=revert`: the change that puts a failed canary's target workload and the
//! configs it references back as they were at the last promoted revision, so that Git again
//! says what the cluster runs (user demand P1).
//!
//! Pure: two snapshots in (the branch head and the promoted commit), file changes out. Only the
//! YAML documents of those objects are replaced, as text: comments, order and every other
//! document of a file stay as people wrote them.

use crate::catalog::{self, CatalogOptions, ObjectId};
use crate::source::git::FileChange;
use crate::source::{FileContent, Snapshot};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RevertError {
    #[error(
        "canary {canary} is not in the promoted commit {commit}; there is nothing to revert to"
    )]
    CanaryNotPromoted { canary: String, commit: String },
    #[error("canary {canary} has no target workload in the promoted commit {commit}")]
    NoTarget { canary: String, commit: String },
    #[error("{file}: cannot find the YAML document of {object} to replace")]
    DocumentNotFound { file: String, object: String },
    #[error("the target of {canary} and its configs are already as promoted; nothing to revert")]
    NothingToRevert { canary: String },
}

/// What the revert commit changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevertPlan {
    pub changes: Vec<FileChange>,
    /// The objects put back, e.g. `apps/Deployment test/podinfo`.
    pub objects: Vec<String>,
}

/// The change that reverts canary `namespace/name` on `head` to what `promoted` declared.
pub fn plan_revert(
    head: &Snapshot,
    promoted: &Snapshot,
    options: &CatalogOptions,
    namespace: &str,
    name: &str,
) -> Result<RevertPlan, RevertError> {
    let canary = format!("{namespace}/{name}");
    let commit = promoted.commit.clone().unwrap_or_default();
    let old = catalog::load(promoted, options);
    let new = catalog::load(head, options);
    let entry = old
        .canaries
        .iter()
        .find(|c| c.namespace() == namespace && c.name() == name)
        .ok_or_else(|| RevertError::CanaryNotPromoted {
            canary: canary.clone(),
            commit: commit.clone(),
        })?;
    let target_ref = entry.canary.spec.target_ref.as_ref();
    let kind = target_ref.map_or("Deployment", |t| t.kind());
    if !matches!(kind, "Deployment" | "DaemonSet") {
        return Err(RevertError::NoTarget { canary, commit });
    }
    let ids = entry.revision_objects();
    let mut files: Vec<(String, String, String)> = Vec::new(); // path, original, edited
    let mut objects = Vec::new();
    for id in &ids {
        let Some(old_obj) = old.find(id) else {
            continue;
        };
        let old_text = text_of(promoted, &old_obj.location.file).unwrap_or_default();
        let old_doc =
            find_document(&old_text, id, &options.default_namespace).ok_or_else(|| {
                RevertError::DocumentNotFound {
                    file: old_obj.location.file.clone(),
                    object: id.to_string(),
                }
            })?;
        let path = new
            .find(id)
            .map_or(old_obj.location.file.clone(), |o| o.location.file.clone());
        let slot = match files.iter().position(|(p, _, _)| *p == path) {
            Some(i) => i,
            None => {
                let text = text_of(head, &path).unwrap_or_default();
                files.push((path.clone(), text.clone(), text));
                files.len() - 1
            }
        };
        let current = &files[slot].2;
        let edited = match find_document(current, id, &options.default_namespace) {
            Some(doc) => replace_document(current, &doc, &old_doc),
            None if new.find(id).is_some() => {
                return Err(RevertError::DocumentNotFound {
                    file: path,
                    object: id.to_string(),
                });
            }
            None => append_document(current, &old_doc),
        };
        if edited != *current {
            objects.push(id.to_string());
        }
        files[slot].2 = edited;
    }
    let changes: Vec<FileChange> = files
        .into_iter()
        .filter(|(_, original, edited)| original != edited)
        .map(|(path, _, edited)| FileChange {
            path,
            content: Some(edited.into_bytes()),
        })
        .collect();
    if changes.is_empty() {
        return Err(RevertError::NothingToRevert { canary });
    }
    Ok(RevertPlan { changes, objects })
}

fn text_of(snapshot: &Snapshot, path: &str) -> Option<String> {
    snapshot
        .files
        .iter()
        .find(|f| f.path == path)
        .and_then(|f| match &f.content {
            FileContent::Bytes(b) => String::from_utf8(b.clone()).ok(),
            _ => None,
        })
}

/// A document of a file, as text: its byte range and content (separator line excluded).
#[derive(Debug, Clone, PartialEq, Eq)]
struct DocText {
    start: usize,
    end: usize,
    text: String,
}

/// The documents of a YAML stream, split at `---` separator lines.
fn documents(text: &str) -> Vec<DocText> {
    let mut docs = Vec::new();
    let mut start = 0;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        if bare == "---" || bare.starts_with("--- ") {
            docs.push(DocText {
                start,
                end: offset,
                text: text[start..offset].to_string(),
            });
            start = offset + line.len();
        }
        offset += line.len();
    }
    docs.push(DocText {
        start,
        end: text.len(),
        text: text[start..].to_string(),
    });
    docs
}

/// The document of `text` that declares `id`.
fn find_document(text: &str, id: &ObjectId, default_namespace: &str) -> Option<DocText> {
    documents(text).into_iter().find(|d| {
        let Ok(v) = serde_saphyr::from_str::<serde_json::Value>(&d.text) else {
            return false;
        };
        let field = |path: &[&str]| {
            let mut cur = &v;
            for p in path {
                cur = cur.get(p)?;
            }
            cur.as_str().map(str::to_string)
        };
        let namespace =
            field(&["metadata", "namespace"]).unwrap_or_else(|| default_namespace.into());
        field(&["kind"]).as_deref() == Some(id.kind.as_str())
            && field(&["metadata", "name"]).as_deref() == Some(id.name.as_str())
            && id.namespace.as_deref().is_none_or(|ns| ns == namespace)
    })
}

fn replace_document(text: &str, doc: &DocText, with: &DocText) -> String {
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..doc.start]);
    out.push_str(&with.text);
    if !with.text.ends_with('\n') && doc.end < text.len() {
        out.push('\n');
    }
    out.push_str(&text[doc.end..]);
    out
}

fn append_document(text: &str, doc: &DocText) -> String {
    if text.trim().is_empty() {
        return doc.text.clone();
    }
    let mut out = text.to_string();
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str("---\n");
    out.push_str(&doc.text);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SnapshotFile;

    fn snap(commit: &str, files: &[(&str, &str)]) -> Snapshot {
        Snapshot {
            origin: format!("test@{commit}"),
            commit: Some(commit.into()),
            files: files
                .iter()
                .map(|(p, c)| SnapshotFile {
                    path: p.to_string(),
                    content: FileContent::Bytes(c.as_bytes().to_vec()),
                })
                .collect(),
        }
    }

    const CANARY: &str = "apiVersion: flagger.app/v1beta1
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
  analysis:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 10
";

    fn app(image: &str, color: &str) -> String {
        format!(
            "# the app; keep this comment
apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
  namespace: test
spec:
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
          envFrom:
            - configMapRef:
                name: podinfo-config
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: podinfo-config
  namespace: test
data:
  color: {color}
---
apiVersion: v1
kind: Service
metadata:
  name: unrelated
  namespace: test
spec:
  ports:
    - port: 80
"
        )
    }

    #[test]
    fn the_target_and_its_configs_go_back_and_nothing_else_moves() {
        let promoted = snap(
            "c1",
            &[
                ("apps/canary.yaml", CANARY),
                ("apps/app.yaml", &app("podinfo:6.0.0", "blue")),
            ],
        );
        // The failed head also changed the unrelated Service: that change stays.
        let head_app = app("podinfo:6.0.1", "red").replace("port: 80", "port: 8080");
        let head = snap(
            "c2",
            &[("apps/canary.yaml", CANARY), ("apps/app.yaml", &head_app)],
        );
        let plan = plan_revert(
            &head,
            &promoted,
            &CatalogOptions::default(),
            "test",
            "podinfo",
        )
        .expect("plan");
        assert_eq!(plan.changes.len(), 1);
        let text =
            String::from_utf8(plan.changes[0].content.clone().expect("content")).expect("utf8");
        assert_eq!(
            text,
            app("podinfo:6.0.0", "blue").replace("port: 80", "port: 8080")
        );
        assert_eq!(plan.objects.len(), 2, "{:?}", plan.objects);
    }

    #[test]
    fn nothing_to_revert_and_unknown_canaries_are_errors() {
        let promoted = snap(
            "c1",
            &[
                ("apps/canary.yaml", CANARY),
                ("apps/app.yaml", &app("podinfo:6.0.0", "blue")),
            ],
        );
        assert_eq!(
            plan_revert(
                &promoted,
                &promoted,
                &CatalogOptions::default(),
                "test",
                "podinfo"
            ),
            Err(RevertError::NothingToRevert {
                canary: "test/podinfo".into()
            })
        );
        assert!(matches!(
            plan_revert(
                &promoted,
                &promoted,
                &CatalogOptions::default(),
                "test",
                "other"
            ),
            Err(RevertError::CanaryNotPromoted { .. })
        ));
    }

    #[test]
    fn documents_split_at_separator_lines_only() {
        let docs = documents("a: 1\n---\nb: '---'\n--- # x\nc: 3");
        let texts: Vec<&str> = docs.iter().map(|d| d.text.as_str()).collect();
        assert_eq!(texts, ["a: 1\n", "b: '---'\n", "c: 3"]);
    }
}
