//! Serin's own CRDs in the test cluster, installed from the checked-in deploy/crds.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use libtest_mimic::Failed;

use super::{Context, eventually};

/// Applies deploy/crds/flagger.app.yaml (Canary, MetricTemplate, AlertProvider) and waits until
/// the API server serves them. Idempotent, so every test that needs them may call it.
pub async fn install_flagger_crds(client: &Client) -> Result<(), Failed> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/crds/flagger.app.yaml");
    let text = std::fs::read_to_string(&path).context(format!("read {}", path.display()))?;
    let crds: Vec<CustomResourceDefinition> =
        serde_saphyr::from_multiple(&text).context("parse the Flagger CRDs")?;
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in &crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(
            &name,
            &PatchParams::apply("serin-e2e").force(),
            &Patch::Apply(crd),
        )
        .await
        .context(format!("apply CRD {name}"))?;
    }
    for crd in &crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        eventually(
            &format!("CRD {name} to be Established"),
            Duration::from_secs(60),
            || async {
                let live = api.get(&name).await.context("get CRD")?;
                let established = live
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c.type_ == "Established" && c.status == "True")
                    });
                Ok(if established {
                    Ok(())
                } else {
                    Err(live.status)
                })
            },
        )
        .await?;
    }
    Ok(())
}
