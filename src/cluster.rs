//! Connecting to the Kubernetes API server.
//!
//! Errors carry their cause as `source`, not in their message, so a chain printed with `{:#}`
//! says each thing once.

use std::path::{Path, PathBuf};

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// The field manager of everything Serin writes with server-side apply, and the reporting
/// controller of its Events: one name, so `kubectl get --show-managed-fields` shows one owner.
pub const FIELD_MANAGER: &str = "serin";

/// Why Serin could not build a client for the cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot read kubeconfig {path}")]
    ReadKubeconfig {
        path: PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error(
        "no cluster configuration found (in-cluster service account, $KUBECONFIG or ~/.kube/config); \
         pass --kubeconfig PATH"
    )]
    Infer(#[source] kube::config::InferConfigError),
    #[error("cannot build a Kubernetes client")]
    Client(#[source] kube::Error),
}

/// A client for the cluster named by `kubeconfig`, or the one kube infers (in-cluster service
/// account, `$KUBECONFIG`, `~/.kube/config`) when no path is given.
pub async fn connect(kubeconfig: Option<&Path>) -> Result<Client, ClusterError> {
    let config = match kubeconfig {
        Some(path) => {
            let read_err = |source| ClusterError::ReadKubeconfig {
                path: path.to_path_buf(),
                source,
            };
            let kc = Kubeconfig::read_from(path).map_err(read_err)?;
            Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(read_err)?
        }
        None => Config::infer().await.map_err(ClusterError::Infer)?,
    };
    Client::try_from(config).map_err(ClusterError::Client)
}
