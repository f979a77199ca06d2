//! deploy/'s RBAC, proven on the real control plane (which authorizes with RBAC only):
//! `serin run` authenticated as the ServiceAccount of deploy/ — a TokenRequest token, nothing
//! else — applies the example config repo and completes a rollout without one refused request,
//! and the same identity is refused what deploy/rbac.yaml does not grant.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Secret, ServiceAccount};
use kube::api::{DeleteParams, ListParams, ObjectMeta, PostParams};
use kube::config::Kubeconfig;
use kube::{Api, Client};
use serin::api::{Canary, CanaryPhase};

use crate::TestResult;
use crate::serin_run::write_repo;
use crate::support::{Context, TestCtx, TestEnv, eventually, install_flagger_crds};

const MINUTES: Duration = Duration::from_secs(180);
const SERVICE_ACCOUNT: &str = "serin";
const SERIN_NAMESPACE: &str = "serin-system";

/// Stops `serin run` however the test ends.
struct Serin(Child);

impl Drop for Serin {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn kubectl(env: &TestEnv, args: &[&str]) -> TestResult {
    let out = Command::new(&env.kubectl)
        .arg("--kubeconfig")
        .arg(&env.kubeconfig)
        .args(args)
        .output()
        .context("run kubectl")?;
    if !out.status.success() {
        return Err(format!(
            "kubectl {} failed:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(())
}

/// Installs deploy/'s namespace, ServiceAccount and RBAC as they are, and checks that the API
/// server accepts everything else kustomization.yaml holds (server-side dry run).
fn install_deploy(env: &TestEnv) -> TestResult {
    let dir = deploy();
    let file = |name: &str| dir.join(name).display().to_string();
    let apply = [
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=serin-e2e",
    ];
    let mut args = apply.to_vec();
    let files = [
        file("namespace.yaml"),
        file("serviceaccount.yaml"),
        file("rbac.yaml"),
    ];
    for f in &files {
        args.extend(["-f", f.as_str()]);
    }
    kubectl(env, &args)?;
    let kustomization = dir.display().to_string();
    let mut args = apply.to_vec();
    args.extend(["--dry-run=server", "-k", kustomization.as_str()]);
    kubectl(env, &args)
}

/// A token of deploy/'s ServiceAccount from the TokenRequest API, in a kubeconfig for the test
/// cluster (its server and CA, no client certificate).
async fn service_account_kubeconfig(
    env: &TestEnv,
    admin: &Client,
    path: &Path,
) -> Result<(), libtest_mimic::Failed> {
    let request = TokenRequest {
        metadata: ObjectMeta::default(),
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..Default::default()
        }),
        status: None,
    };
    let token = Api::<ServiceAccount>::namespaced(admin.clone(), SERIN_NAMESPACE)
        .create_token_request(SERVICE_ACCOUNT, &PostParams::default(), &request)
        .await
        .context("TokenRequest for serin-system/serin")?
        .status
        .and_then(|s| s.token)
        .ok_or("the TokenRequest has no token")?;
    let admin_config = Kubeconfig::read_from(&env.kubeconfig).context("read the kubeconfig")?;
    let cluster = admin_config
        .clusters
        .first()
        .and_then(|c| c.cluster.as_ref())
        .ok_or("the test kubeconfig has no cluster")?;
    let server = cluster
        .server
        .as_deref()
        .ok_or("the cluster has no server")?;
    let ca = cluster
        .certificate_authority_data
        .as_deref()
        .ok_or("the cluster has no certificate-authority-data")?;
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: testenv
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: serin
  user:
    token: {token}
contexts:
- name: serin
  context:
    cluster: testenv
    user: serin
current-context: serin
"
    );
    std::fs::write(path, text).context("write the ServiceAccount's kubeconfig")
}

fn forbidden<T: std::fmt::Debug>(what: &str, result: Result<T, kube::Error>) -> TestResult {
    match result {
        Err(kube::Error::Api(status)) if status.code == 403 => Ok(()),
        other => Err(format!("{what}: expected 403 Forbidden, got {other:?}").into()),
    }
}

pub async fn service_account_rolls_out_and_is_refused_the_rest() -> TestResult {
    let ctx = TestCtx::new("rbac").await?;
    install_flagger_crds(&ctx.client).await?;
    install_deploy(ctx.env)?;
    let ns = ctx.namespace.clone();
    let work = std::env::temp_dir().join(format!("serin-rbac-{ns}"));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).context("mkdir")?;
    let kubeconfig = work.join("kubeconfig");
    service_account_kubeconfig(ctx.env, &ctx.client, &kubeconfig).await?;
    let sa = serin::cluster::connect(Some(&kubeconfig))
        .await
        .context("connect as the ServiceAccount")?;

    // RBAC reaches the authorizer's cache a moment after the bindings are written; Serin must
    // not start before, or its first requests would be refused for a reason the files have not.
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some("serin-rbac-probe".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let dry_run = PostParams {
        dry_run: true,
        ..Default::default()
    };
    eventually(
        "the ServiceAccount's bindings to apply",
        MINUTES,
        || async {
            let canaries = Api::<Canary>::namespaced(sa.clone(), &ns)
                .list(&ListParams::default())
                .await;
            let leases = Api::<Lease>::namespaced(sa.clone(), SERIN_NAMESPACE)
                .create(&dry_run, &lease)
                .await;
            Ok(match (canaries, leases) {
                (Ok(_), Ok(_)) => Ok(()),
                (c, l) => Err(format!("{:?} / {:?}", c.err(), l.err())),
            })
        },
    )
    .await?;

    // What rbac.yaml does not grant is refused (dry runs: were it allowed, nothing happens).
    let dry_delete = DeleteParams {
        dry_run: true,
        ..Default::default()
    };
    forbidden(
        "deleting a Node",
        Api::<Node>::all(sa.clone())
            .delete("kwok-node-0", &dry_delete)
            .await,
    )?;
    forbidden(
        "reading a Secret's list in kube-system",
        Api::<Secret>::namespaced(sa.clone(), "kube-system")
            .list(&ListParams::default())
            .await,
    )?;
    forbidden(
        "listing Secrets (only get is granted)",
        Api::<Secret>::namespaced(sa.clone(), &ns)
            .list(&ListParams::default())
            .await,
    )?;
    forbidden(
        "a Lease outside serin-system",
        Api::<Lease>::namespaced(sa.clone(), &ns)
            .create(&dry_run, &lease)
            .await,
    )?;
    forbidden(
        "deleting a Namespace",
        Api::<k8s_openapi::api::core::v1::Namespace>::all(sa.clone())
            .delete(&ns, &dry_delete)
            .await,
    )?;

    // `serin run` as the ServiceAccount, as serin_run.rs runs it as the admin.
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

    let repo = work.join("repo");
    write_repo(&repo, &ns, &hooks_url, &ctx.env.prometheus_url)?;
    let log_path = work.join("serin.log");
    let log = std::fs::File::create(&log_path).context("create the log")?;
    let _serin = Serin(
        Command::new(env!("CARGO_BIN_EXE_serin"))
            .args(["run", "--kubeconfig"])
            .arg(&kubeconfig)
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
            .env("SERIN_LOG_FORMAT", "text")
            .env_remove("KUBECONFIG")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("start serin run")?,
    );
    let log_tail = || {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    };

    let canaries = ctx.api::<Canary>();
    let phase = || async {
        let c = canaries.get_opt("podinfo").await.context("get canary")?;
        Ok::<_, libtest_mimic::Failed>(c.and_then(|c| c.status).map(|s| s.phase))
    };
    let wait_for = |want: CanaryPhase, what: &'static str| {
        let phase = &phase;
        let log_tail = &log_tail;
        async move {
            eventually(what, MINUTES, || async {
                let p = phase().await?;
                Ok(if p.as_ref() == Some(&want) {
                    Ok(())
                } else {
                    Err(p)
                })
            })
            .await
            .map_err(|e| {
                let message = e.message().unwrap_or_default();
                libtest_mimic::Failed::from(format!(
                    "{message}\nserin run's log ends:\n{}",
                    log_tail()
                ))
            })
        }
    };
    wait_for(CanaryPhase::Initialized, "the applied canary to initialize").await?;
    let manifest = repo.join("deployment.yaml");
    let text = std::fs::read_to_string(&manifest).context("read manifest")?;
    std::fs::write(&manifest, text.replace("podinfo:6.0.0", "podinfo:6.0.1"))
        .context("edit manifest")?;
    wait_for(CanaryPhase::Succeeded, "the rollout to succeed").await?;

    // Sufficient means every request was allowed, not only those the phases depend on (a
    // refused Event or inventory write only logs a warning).
    let text = std::fs::read_to_string(&log_path).context("read the log")?;
    let refused: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("forbidden") || l.contains("Forbidden"))
        .map(|l| l.get(..400).unwrap_or(l))
        .take(10)
        .collect();
    if !refused.is_empty() {
        return Err(format!(
            "the ServiceAccount was refused requests:\n{}",
            refused.join("\n")
        )
        .into());
    }
    // The Events of the rollout were written by the ServiceAccount.
    let events = Api::<k8s_openapi::api::events::v1::Event>::namespaced(ctx.client.clone(), &ns)
        .list(&ListParams::default())
        .await
        .context("list events")?;
    let promoted = events.items.iter().any(|e| {
        e.note
            .as_deref()
            .is_some_and(|n| n.starts_with("Promotion completed!"))
    });
    if !promoted {
        return Err("no 'Promotion completed!' Event was recorded".into());
    }
    let _ = std::fs::remove_dir_all(&work);
    ctx.finish().await;
    Ok(())
}
