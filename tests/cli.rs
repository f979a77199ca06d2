//! The `serin` binary driven as a user drives it: a config repository in Git, commits that bump
//! an image or change a ConfigMap, and `serin validate` / `plan` / `hash` / `crd` on it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SERIN: &str = env!("CARGO_BIN_EXE_serin");

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/podinfo")
}

struct Repo {
    dir: PathBuf,
}

impl Repo {
    /// A repository whose first commit holds examples/podinfo under apps/.
    fn new(name: &str) -> Repo {
        let dir = std::env::temp_dir().join(format!("serin-cli-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("apps")).expect("mkdir");
        for entry in std::fs::read_dir(examples()).expect("examples") {
            let entry = entry.expect("entry");
            std::fs::copy(entry.path(), dir.join("apps").join(entry.file_name())).expect("copy");
        }
        std::fs::write(dir.join("README.md"), "config repo\n").expect("readme");
        let repo = Repo { dir };
        repo.git(&["init", "-q", "-b", "main"]);
        repo.commit("podinfo 6.0.0");
        repo
    }

    fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(["-c", "user.name=Dev", "-c", "user.email=dev@example.com"])
            .args(args)
            .current_dir(&self.dir)
            .output()
            .expect("run git");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn edit(&self, file: &str, from: &str, to: &str) {
        let path = self.dir.join(file);
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains(from), "{file} has no {from:?}");
        std::fs::write(&path, text.replacen(from, to, 1)).expect("write");
    }

    fn commit(&self, message: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
    }

    fn serin(&self, args: &[&str]) -> Output {
        Command::new(SERIN)
            .args(args)
            .current_dir(&self.dir)
            .output()
            .expect("run serin")
    }
}

impl Drop for Repo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn plan_of_an_image_bump_shows_the_rollout_and_its_cause() {
    let repo = Repo::new("image");
    repo.edit("apps/deployment.yaml", "podinfo:6.0.0", "podinfo:6.0.1");
    repo.commit("podinfo 6.0.1");

    let out = repo.serin(&["plan", "--base", "HEAD~1", "--head", "HEAD"]);
    let md = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{md}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "### `test/podinfo` — starts a rollout",
        "- podinfod: ghcr.io/stefanprodan/podinfo:6.0.0 → 6.0.1",
        "| Strategy | canary (provider gatewayapi:v1) |",
        "| Steps | 10% → 20% → 30% → 40% → 50% then promotion |",
        "| Interval | 1m; rollback after 5 failed check(s) |",
        "| Minimum duration | 6m (6 intervals) |",
        "- `pre-rollout` smoke-test → http://flagger-loadtester.test/",
        "- `rollout` load-test → http://flagger-loadtester.test/",
        "| error-rate | template flagger-system/error-rate | ≤ 1 | 1m |",
        r#"destination_workload_namespace=~"test""#,
        "**1 rollout(s)**",
    ] {
        assert!(md.contains(want), "plan lacks {want:?}:\n{md}");
    }

    let json = repo.serin(&[
        "plan", "--base", "HEAD~1", "--head", "HEAD", "--output", "json",
    ]);
    let plan: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json plan");
    assert_eq!(plan["canaries"][0]["action"], "rollout");
    assert_eq!(
        plan["canaries"][0]["cause"][0],
        "podinfod: ghcr.io/stefanprodan/podinfo:6.0.0 → 6.0.1"
    );
    assert_eq!(
        plan["canaries"][0]["schedule"]["weights"],
        serde_json::json!([10, 20, 30, 40, 50])
    );
}

#[test]
fn plan_of_a_configmap_key_change_names_the_key() {
    let repo = Repo::new("config");
    repo.edit("apps/configmap.yaml", "#34577c", "#ff0000");
    repo.commit("blue is out");
    let out = repo.serin(&[
        "plan", "--base", "main~1", "--head", "main", "--path", "apps",
    ]);
    let md = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{md}");
    assert!(md.contains("starts a rollout"), "{md}");
    assert!(
        md.contains("- ConfigMap podinfo-config: key PODINFO_UI_COLOR changed"),
        "{md}"
    );
}

#[test]
fn plan_of_a_canary_only_change_starts_nothing_and_errors_fail_it() {
    let repo = Repo::new("canary-only");
    repo.edit("apps/canary.yaml", "threshold: 5", "threshold: 3");
    repo.commit("stricter");
    let out = repo.serin(&["plan", "--base", "HEAD~1", "--head", "HEAD"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains("**0 rollout(s)**"),
        "{}",
        stdout(&out)
    );

    repo.edit(
        "apps/canary.yaml",
        "interval: 1m\n    # max number",
        "interval: 10x\n    # max number",
    );
    repo.commit("typo");
    let out = repo.serin(&["plan", "--base", "HEAD~1", "--head", "HEAD"]);
    let md = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{md}");
    assert!(md.contains("### Problems"), "{md}");
    assert!(
        md.contains("apps/canary.yaml (document 1) Canary test/podinfo spec.analysis.interval"),
        "{md}"
    );
}

#[test]
fn validate_reports_located_problems_with_exit_codes() {
    let repo = Repo::new("validate");
    let ok = repo.serin(&["validate"]);
    assert_eq!(ok.status.code(), Some(0), "{}", stdout(&ok));
    assert!(
        stdout(&ok).ends_with("6 file(s), 8 object(s), 1 canary(ies): 0 error(s), 0 warning(s)\n")
    );

    repo.edit(
        "apps/canary.yaml",
        "templateRef:\n        name: error-rate\n",
        "templateRef:\n        name: error-ratio\n",
    );
    std::fs::write(repo.dir.join("apps/broken.yaml"), "kind: [\n").expect("write");
    let bad = repo.serin(&["validate"]);
    let text = stdout(&bad);
    assert_eq!(bad.status.code(), Some(1), "{text}");
    assert!(text.contains("error: apps/canary.yaml (document 1) Canary test/podinfo spec.analysis.metrics[0].templateRef.name: MetricTemplate flagger-system/error-ratio is not in the repository"), "{text}");
    assert!(
        text.contains("error: apps/broken.yaml: invalid YAML"),
        "{text}"
    );
    assert!(text.contains("2 error(s)"), "{text}");

    let json = repo.serin(&["validate", "--output", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(report["errors"], 2);
    assert_eq!(report["problems"][0]["severity"], "error");

    let missing = repo.serin(&["validate", "no-such-dir"]);
    assert_eq!(missing.status.code(), Some(2));
    let usage = repo.serin(&["validate", "--bogus"]);
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn validate_reads_a_remote_repository_over_file_transport() {
    let repo = Repo::new("remote");
    let url = format!("file://{}", repo.dir.display());
    let cache = repo.dir.with_extension("cache");
    let out = Command::new(SERIN)
        .args([
            "validate",
            "--repo",
            &url,
            "--ref",
            "main",
            "--path",
            "apps",
            "--cache-dir",
        ])
        .arg(&cache)
        .output()
        .expect("run serin");
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let head = repo.git(&["rev-parse", "--short=7", "HEAD"]);
    assert!(
        text.contains(&format!("@{head}")),
        "origin names the commit: {text}"
    );
    assert!(text.contains("0 error(s)"), "{text}");
    let _ = std::fs::remove_dir_all(cache);
}

#[test]
fn hash_lists_revision_and_tracked_configs() {
    let repo = Repo::new("hash");
    let out = repo.serin(&["hash", "--output", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let canary = &report[0];
    assert_eq!(canary["canary"], "test/podinfo");
    assert_eq!(canary["revision"].as_str().map(str::len), Some(64));
    assert_eq!(canary["configs"][0]["key"], "configmap/podinfo-config");
    assert_eq!(
        canary["configs"][0]["origin"],
        "apps/configmap.yaml (document 1)"
    );

    repo.edit("apps/deployment.yaml", "--level=info", "--level=debug");
    let after = repo.serin(&["hash", "--output", "json"]);
    let after: serde_json::Value = serde_json::from_slice(&after.stdout).expect("json");
    assert_ne!(after[0]["revision"], canary["revision"]);
}

#[test]
fn crd_prints_the_checked_in_crds() {
    let out = Command::new(SERIN).arg("crd").output().expect("run serin");
    assert_eq!(out.status.code(), Some(0));
    let checked_in = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/crds/flagger.app.yaml"),
    )
    .expect("deploy/crds");
    assert_eq!(stdout(&out), checked_in);
}

/// A Canary whose A/B match each provider reads in its own way, with the Deployment it targets.
fn ab_canary(provider: &str, headers: &str) -> String {
    format!(
        r#"apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: app-{provider}
  namespace: test
spec:
  provider: {provider}
  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: app-{provider}}}
  ingressRef: {{apiVersion: networking.k8s.io/v1, kind: Ingress, name: app-{provider}}}
  routeRef: {{apiVersion: apisix.apache.org/v2, kind: ApisixRoute, name: app-{provider}}}
  service:
    port: 80
  analysis:
    interval: 1m
    threshold: 5
    iterations: 10
    match:
      - headers:
{headers}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: app-{provider}, namespace: test}}
spec:
  selector: {{matchLabels: {{app: app-{provider}}}}}
  template:
    metadata: {{labels: {{app: app-{provider}}}}}
    spec: {{containers: [{{name: app, image: nginx}}]}}
"#
    )
}

#[test]
fn validate_rejects_what_a_provider_cannot_express_naming_provider_and_field() {
    let dir = std::env::temp_dir().join(format!("serin-cli-{}-inexpressible", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let suffix = "          x-canary:\n            suffix: insider";
    let two =
        "          x-canary:\n            exact: insider\n          x-user:\n            exact: a";
    let cases = [
        (
            "istio",
            suffix,
            "spec.analysis.match[0].headers.x-canary.suffix: provider \"istio\"",
        ),
        (
            "gloo",
            suffix,
            "spec.analysis.match[0].headers.x-canary: provider \"gloo\"",
        ),
        ("apisix", suffix, "spec.analysis.match: provider \"apisix\""),
        (
            "contour",
            two,
            "spec.analysis.match[0].headers.x-user: provider \"contour\"",
        ),
        (
            "nginx",
            two,
            "spec.analysis.match[0].headers.x-user: provider \"nginx\"",
        ),
    ];
    for (provider, headers, want) in cases {
        let file = dir.join(format!("{provider}.yaml"));
        std::fs::write(&file, ab_canary(provider, headers)).expect("write");
        let out = Command::new(SERIN)
            .args(["validate", dir.to_str().expect("utf-8 path")])
            .output()
            .expect("run serin");
        let text = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(1), "{provider}: {text}");
        let line = text
            .lines()
            .find(|l| l.contains(want))
            .unwrap_or_else(|| panic!("{provider}: no error {want:?} in\n{text}"));
        assert!(
            line.starts_with("error: ") && line.contains(&format!("Canary test/app-{provider}")),
            "{line}"
        );
        // The same match written the way the provider can route passes.
        let fine = "          x-canary:\n            exact: insider";
        if provider != "apisix" {
            std::fs::write(&file, ab_canary(provider, fine)).expect("write");
            let out = Command::new(SERIN)
                .args(["validate", dir.to_str().expect("utf-8 path")])
                .output()
                .expect("run serin");
            assert_eq!(out.status.code(), Some(0), "{provider}: {}", stdout(&out));
        }
        std::fs::remove_file(&file).expect("remove");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
