//! `serin run` driven as a user drives it: the binary pointed at a directory of manifests (the
//! example config repo), the user edits a manifest, Serin applies it and rolls the canary out.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use k8s_openapi::api::apps::v1::Deployment;
use serin::api::{Canary, CanaryPhase};

use crate::TestResult;
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

/// The example config repo for namespace `ns`: intervals shortened, hooks and Prometheus local.
pub(crate) fn write_repo(dir: &Path, ns: &str, hooks: &str, prometheus: &str) -> TestResult {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/podinfo");
    std::fs::create_dir_all(dir).context("mkdir")?;
    for entry in std::fs::read_dir(&examples).context("examples")? {
        let path = entry.context("entry")?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        // The test owns its namespace; the example's Namespace objects would name others.
        if name == "namespace.yaml" {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .context("read example")?
            .replace("namespace: test", &format!("namespace: {ns}"))
            .replace("namespace: flagger-system", &format!("namespace: {ns}"))
            .replace("http://flagger-loadtester.test/", hooks)
            .replace("http://prometheus.istio-system:9090", prometheus)
            .replace(
                "interval: 1m\n    # max number",
                "interval: 2s\n    # max number",
            );
        std::fs::write(dir.join(&name), text).context("write manifest")?;
    }
    Ok(())
}

pub async fn applies_the_config_repo_and_rolls_out() -> TestResult {
    let ctx = TestCtx::new("serin-run").await?;
    install_flagger_crds(&ctx.client).await?;
    let ns = ctx.namespace.clone();

    let hooks = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("bind")?;
    let hooks_url = format!("http://{}/", hooks.local_addr().context("addr")?);
    tokio::spawn(async move {
        let _ = axum::serve(hooks, Router::new().route("/", post(|| async { "ok" }))).await;
    });
    let sim = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("bind")?;
    let sim_addr = sim.local_addr().context("addr")?;
    let config = serin::simulator::SimulatorConfig {
        namespaces: vec![ns.clone()],
        ..Default::default()
    };
    let client = ctx.client.clone();
    tokio::spawn(async move {
        let _ = serin::simulator::run(client, config, sim).await;
    });
    let _scrape = ctx.env.add_scrape_target(&format!("{ns}-mesh"), sim_addr)?;

    let repo = std::env::temp_dir().join(format!("serin-run-{ns}"));
    let _ = std::fs::remove_dir_all(&repo);
    write_repo(&repo, &ns, &hooks_url, &ctx.env.prometheus_url)?;
    let _serin = Serin(
        Command::new(env!("CARGO_BIN_EXE_serin"))
            .args(["run", "--kubeconfig"])
            .arg(&ctx.env.kubeconfig)
            .arg("--source")
            .arg(&repo)
            .args(["--namespace", &ns, "--default-namespace", &ns])
            .args(["--inventory", &ns, "--inventory-namespace", &ns])
            .args([
                "--provider",
                "gatewayapi:v1",
                "--metrics-server",
                &ctx.env.prometheus_url,
            ])
            .args([
                "--min-analysis-interval",
                "1s",
                "--control-loop-interval",
                "1s",
            ])
            .env("RUST_LOG", "serin=info")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start serin run")?,
    );

    let canaries = ctx.api::<Canary>();
    let phase = || async {
        let c = canaries.get_opt("podinfo").await.context("get canary")?;
        Ok::<_, libtest_mimic::Failed>(c.and_then(|c| c.status).map(|s| s.phase))
    };
    eventually("the applied canary to initialize", MINUTES, || async {
        let p = phase().await?;
        Ok(if p == Some(CanaryPhase::Initialized) {
            Ok(())
        } else {
            Err(p)
        })
    })
    .await?;

    // The user's change: a new image in the manifest.
    let manifest = repo.join("deployment.yaml");
    let text = std::fs::read_to_string(&manifest).context("read manifest")?;
    std::fs::write(&manifest, text.replace("podinfo:6.0.0", "podinfo:6.0.1"))
        .context("edit manifest")?;
    eventually("the rollout to succeed", MINUTES, || async {
        let p = phase().await?;
        Ok(if p == Some(CanaryPhase::Succeeded) {
            Ok(())
        } else {
            Err(p)
        })
    })
    .await?;
    let primary = ctx
        .api::<Deployment>()
        .get("podinfo-primary")
        .await
        .context("primary")?;
    let image = primary
        .spec
        .and_then(|s| s.template.spec)
        .and_then(|s| s.containers.first().and_then(|c| c.image.clone()));
    if image.as_deref() != Some("ghcr.io/stefanprodan/podinfo:6.0.1") {
        return Err(format!("the primary runs {image:?}").into());
    }
    let target = ctx
        .api::<Deployment>()
        .get("podinfo")
        .await
        .context("target")?;
    if target.spec.and_then(|s| s.replicas) != Some(0) {
        return Err("the applier gave the target replicas back after the rollout".into());
    }
    let _ = std::fs::remove_dir_all(&repo);
    ctx.finish().await;
    Ok(())
}
