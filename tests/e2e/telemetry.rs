//! Operator telemetry of `serin run`: the binary with `--listen` and `--log-format json`,
//! scraped as Prometheus and a kubelet would, once the applied canary is initialized.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serin::api::{Canary, CanaryPhase};

use crate::TestResult;
use crate::serin_run::write_repo;
use crate::support::{Context, TestCtx, eventually, install_flagger_crds};

const MINUTES: Duration = Duration::from_secs(180);

/// Stops `serin run` however the test ends.
struct Serin(Child);

impl Drop for Serin {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Status and body of a GET.
async fn get(http: &reqwest::Client, url: &str) -> Result<(u16, String, String), String> {
    let response = http.get(url).send().await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = response.text().await.map_err(|e| e.to_string())?;
    Ok((status, content_type, body))
}

pub async fn metrics_health_and_json_logs() -> TestResult {
    let ctx = TestCtx::new("telemetry").await?;
    install_flagger_crds(&ctx.client).await?;
    let ns = ctx.namespace.clone();

    let repo = std::env::temp_dir().join(format!("serin-telemetry-{ns}"));
    let _ = std::fs::remove_dir_all(&repo);
    // Nothing here gets as far as calling hooks or querying metrics: initialization only.
    write_repo(&repo, &ns, "http://127.0.0.1:9/", &ctx.env.prometheus_url)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("pick a free port")?
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let log_path = std::env::temp_dir().join(format!("serin-telemetry-{ns}.log"));
    let log = std::fs::File::create(&log_path).context("create the log file")?;
    let _serin = Serin(
        Command::new(env!("CARGO_BIN_EXE_serin"))
            .args(["run", "--kubeconfig"])
            .arg(&ctx.env.kubeconfig)
            .arg("--source")
            .arg(&repo)
            .args(["--namespace", &ns, "--default-namespace", &ns])
            .args(["--inventory", &ns, "--inventory-namespace", &ns])
            .args(["--provider", "gatewayapi:v1"])
            .args(["--metrics-server", &ctx.env.prometheus_url])
            .args(["--min-analysis-interval", "1s"])
            .args(["--control-loop-interval", "1s"])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--log-format", "json"])
            .env("RUST_LOG", "serin=info")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .context("start serin run")?,
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .context("http client")?;

    let canaries = ctx.api::<Canary>();
    eventually("the applied canary to initialize", MINUTES, || async {
        let c = canaries.get_opt("podinfo").await.context("get canary")?;
        let phase = c.and_then(|c| c.status).map(|s| s.phase);
        Ok::<_, libtest_mimic::Failed>(if phase == Some(CanaryPhase::Initialized) {
            Ok(())
        } else {
            Err(phase)
        })
    })
    .await?;

    let (status, _, body) = get(&http, &format!("{base}/healthz")).await?;
    if (status, body.as_str()) != (200, "OK") {
        return Err(format!("/healthz answered {status} {body:?}").into());
    }
    // The first sync of --source is long done: the canary it applied is initialized.
    let (status, _, body) = get(&http, &format!("{base}/readyz")).await?;
    if status != 200 {
        return Err(format!("/readyz answered {status} {body:?} after the first sync").into());
    }

    // The tick that wrote Initialized records right after the write: allow it a moment.
    let want = [
        format!(r#"flagger_canary_status{{name="podinfo",namespace="{ns}"}} 1"#),
        format!(r#"flagger_canary_weight{{namespace="{ns}",workload="podinfo-primary"}} 100"#),
        format!(r#"flagger_canary_weight{{namespace="{ns}",workload="podinfo"}} 0"#),
        format!(r#"flagger_canary_total{{namespace="{ns}"}} 1"#),
        format!(
            r#"flagger_info{{mesh_provider="gatewayapi:v1",version="{}"}} 1"#,
            env!("CARGO_PKG_VERSION")
        ),
    ];
    let (content_type, text) = eventually("the canary's series on /metrics", MINUTES, || {
        let http = http.clone();
        let url = format!("{base}/metrics");
        let want = want.clone();
        async move {
            let (status, content_type, text) = get(&http, &url).await?;
            let missing: Vec<&String> = want
                .iter()
                .filter(|w| !text.lines().any(|l| l == w.as_str()))
                .collect();
            Ok::<_, libtest_mimic::Failed>(if status == 200 && missing.is_empty() {
                Ok((content_type, text))
            } else {
                Err(format!("{status}, missing {missing:?}"))
            })
        }
    })
    .await?;
    if !content_type.starts_with("application/openmetrics-text") {
        return Err(format!("/metrics content type {content_type:?}").into());
    }
    let syncs = text
        .lines()
        .find_map(|l| l.strip_prefix("serin_sync_duration_seconds_count "))
        .and_then(|v| v.trim().parse::<u64>().ok());
    if syncs.is_none_or(|n| n < 1) {
        return Err(format!("serin_sync_duration_seconds_count is {syncs:?}:\n{text}").into());
    }
    // Families without series yet (durations, successes: no analysis ran) are left out of
    // the exposition; these have one from the start.
    for family in [
        "# TYPE flagger_canary_status gauge",
        "# TYPE serin_sync_duration_seconds histogram",
        "# TYPE serin_sync_failures counter",
        "# TYPE serin_ledger_queue_depth gauge",
    ] {
        if !text.contains(family) {
            return Err(format!("/metrics lacks {family:?}:\n{text}").into());
        }
    }

    // JSON log lines: the runner's carry the canary and, inside a tick, its revision.
    let logs = std::fs::read_to_string(&log_path).context("read the log")?;
    let canary = format!("podinfo.{ns}");
    let tick_line = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| {
            v["canary"] == canary.as_str()
                && v["revision"].as_str().is_some_and(|r| !r.is_empty())
                && v["message"].is_string()
        });
    if tick_line.is_none() {
        return Err(
            format!("no JSON log line with canary {canary} and a revision:\n{logs}").into(),
        );
    }
    if let Some(bad) = logs
        .lines()
        .find(|l| serde_json::from_str::<serde_json::Value>(l).is_err())
    {
        return Err(format!("a log line is not JSON: {bad}").into());
    }

    let _ = std::fs::remove_dir_all(&repo);
    let _ = std::fs::remove_file(&log_path);
    ctx.finish().await;
    Ok(())
}
