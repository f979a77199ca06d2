//! The test environment: started by tests/env/up once per run, or reused when
//! SERIN_TESTENV_DIR names one (which is then left running).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use kube::Client;
use libtest_mimic::Failed;

pub struct TestEnv {
    pub kubeconfig: PathBuf,
    pub kubectl: PathBuf,
    pub prometheus_url: String,
    targets_dir: PathBuf,
}

static ENV: OnceLock<Result<TestEnv, String>> = OnceLock::new();
/// The work dir of an environment this process started, so `shutdown` stops it even when
/// start-up failed half way.
static OWNED_DIR: Mutex<Option<PathBuf>> = Mutex::new(None);

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/env")
}

impl TestEnv {
    /// The environment, started on first use.
    pub fn get() -> Result<&'static TestEnv, Failed> {
        ENV.get_or_init(TestEnv::start)
            .as_ref()
            .map_err(|e| Failed::from(e.clone()))
    }

    fn start() -> Result<TestEnv, String> {
        let dir = match std::env::var_os("SERIN_TESTENV_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => {
                let dir = std::env::temp_dir().join(format!("serin-e2e-{}", std::process::id()));
                *OWNED_DIR.lock().map_err(|e| e.to_string())? = Some(dir.clone());
                dir
            }
        };
        eprintln!("e2e: starting the test environment in {}", dir.display());
        let status = Command::new(scripts().join("up"))
            .env("SERIN_TESTENV_DIR", &dir)
            .stdout(Stdio::from(std::io::stderr()))
            .status()
            .map_err(|e| format!("cannot run tests/env/up: {e}"))?;
        if !status.success() {
            return Err(format!(
                "tests/env/up failed ({status}); see its output above and tests/env/logs"
            ));
        }
        let text = std::fs::read_to_string(dir.join("env"))
            .map_err(|e| format!("cannot read {}/env: {e}", dir.display()))?;
        let vars: HashMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
        let var = |k: &str| {
            vars.get(k)
                .map(|v| v.to_string())
                .ok_or_else(|| format!("{}/env has no {k}", dir.display()))
        };
        Ok(TestEnv {
            kubeconfig: var("KUBECONFIG")?.into(),
            kubectl: var("SERIN_KUBECTL")?.into(),
            prometheus_url: var("SERIN_PROMETHEUS_URL")?,
            targets_dir: var("SERIN_PROMETHEUS_TARGETS_DIR")?.into(),
        })
    }

    pub async fn client(&self) -> Result<Client, Failed> {
        serin::cluster::connect(Some(&self.kubeconfig))
            .await
            .map_err(|e| Failed::from(e.to_string()))
    }

    /// Makes Prometheus scrape `addr` until the returned guard is dropped.
    pub fn add_scrape_target(&self, name: &str, addr: SocketAddr) -> Result<ScrapeTarget, Failed> {
        let path = self.targets_dir.join(format!("{name}.json"));
        let tmp = self.targets_dir.join(format!(".{name}.json.tmp"));
        let body = serde_json::json!([{ "targets": [addr.to_string()], "labels": { "e2e_target": name } }]);
        // Prometheus watches the directory: write aside and rename, so it never reads half a file.
        std::fs::write(&tmp, body.to_string())
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| Failed::from(format!("write scrape target {}: {e}", path.display())))?;
        Ok(ScrapeTarget { path })
    }
}

/// A Prometheus scrape target; removed from the target list on drop.
pub struct ScrapeTarget {
    path: PathBuf,
}

impl Drop for ScrapeTarget {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Stops the environment if this process started it; otherwise removes this run's namespaces.
pub fn shutdown() {
    let owned = OWNED_DIR.lock().ok().and_then(|mut d| d.take());
    if let Some(dir) = owned {
        let status = Command::new(scripts().join("down"))
            .env("SERIN_TESTENV_DIR", &dir)
            .stdout(Stdio::from(std::io::stderr()))
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!(
                "e2e: tests/env/down failed for {}: {status:?}",
                dir.display()
            );
        }
    } else if let Some(Ok(env)) = ENV.get() {
        let _ = Command::new(&env.kubectl)
            .arg("--kubeconfig")
            .arg(&env.kubeconfig)
            .args(["delete", "namespace", "--wait=false", "-l"])
            .arg(format!("{}={}", super::RUN_LABEL, std::process::id()))
            .stdout(Stdio::null())
            .status();
    }
}
