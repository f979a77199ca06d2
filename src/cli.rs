//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "serin",
    version,
    about = "Git-driven progressive delivery for Kubernetes"
)]
pub struct Cli {
    /// Log filter when RUST_LOG is not set (error, warn, info, debug, trace).
    #[arg(long, global = true, env = "SERIN_LOG_LEVEL", default_value = "warn")]
    pub log_level: String,
    /// Log lines as text, or as one JSON object per line for log collectors.
    #[arg(
        long,
        global = true,
        env = "SERIN_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: Output,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check every manifest of a config repository; exit 1 if any has an error.
    Validate {
        /// A local directory (default: the current one). Mutually exclusive with --repo.
        #[arg(conflicts_with = "repo")]
        dir: Option<PathBuf>,
        /// A Git repository URL (file://, https://, ssh://) to fetch instead of a directory.
        #[arg(long, requires = "reference")]
        repo: Option<String>,
        /// Branch, tag or commit to read with --repo.
        #[arg(long = "ref", value_name = "REF")]
        reference: Option<String>,
        #[command(flatten)]
        git: GitArgs,
        #[command(flatten)]
        catalog: CatalogArgs,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// What merging HEAD onto BASE will roll out, and why (Markdown for a pull request, or JSON).
    Plan {
        /// The commit the change starts from (e.g. origin/main).
        #[arg(long)]
        base: String,
        /// The commit of the change (e.g. HEAD).
        #[arg(long)]
        head: String,
        /// The repository checkout to read the commits from.
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        #[command(flatten)]
        catalog: CatalogArgs,
        #[arg(long, value_enum, default_value = "markdown")]
        output: PlanOutput,
    },
    /// The revision of every canary and the configs it tracks.
    Hash {
        /// A local directory (default: the current one).
        dir: Option<PathBuf>,
        #[command(flatten)]
        catalog: CatalogArgs,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Run the analysis of every Canary in the cluster, as Flagger's controller does.
    Run(Box<RunArgs>),
    /// Open gates for the canary's current revision: commit an approval to the config repo.
    Approve(DecisionArgs),
    /// Roll back the canary's current revision: commit the decision to the config repo.
    Rollback(DecisionArgs),
    /// Analyse a failed revision again: commit the decision to the config repo.
    Retry(DecisionArgs),
    /// The canaries as a table: phase, weight, revision cause, last transition.
    Status(StatusArgs),
    /// Print the CustomResourceDefinitions of Serin's flagger.app/v1beta1 API as YAML.
    Crd,
    /// Check that the cluster (and optionally Prometheus) is ready for Serin; exit 1 if not.
    Doctor {
        /// Kubeconfig to use; default: in-cluster, then $KUBECONFIG, then ~/.kube/config.
        #[arg(long, env = "KUBECONFIG")]
        kubeconfig: Option<PathBuf>,
        /// Prometheus base URL used for builtin metrics and inline queries.
        #[arg(long, env = "SERIN_PROMETHEUS_URL")]
        prometheus_url: Option<String>,
        /// The provider whose routing objects the cluster must serve (as `serin run --provider`).
        #[arg(long, env = "SERIN_PROVIDER", default_value = "istio")]
        provider: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PlanOutput {
    Markdown,
    Json,
}

/// How manifests are read and what counts as valid.
#[derive(Debug, Args)]
pub struct CatalogArgs {
    /// Subdirectory of the repository that holds the manifests.
    #[arg(long, default_value = "")]
    pub path: String,
    /// Namespace of manifests that name none.
    #[arg(long, env = "SERIN_DEFAULT_NAMESPACE", default_value = "default")]
    pub default_namespace: String,
    /// Labels of which the target's selector must contain one (Flagger's -selector-labels).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "app,name,app.kubernetes.io/name"
    )]
    pub selector_labels: Vec<String>,
    /// Forbid MetricTemplate/AlertProvider/Upstream references to other namespaces.
    #[arg(long, env = "SERIN_NO_CROSS_NAMESPACE_REFS")]
    pub no_cross_namespace_refs: bool,
    /// Provider of Canaries that name none, as `serin run --provider`: its router decides
    /// what they can express.
    #[arg(long, env = "SERIN_PROVIDER", default_value = "istio")]
    pub provider: String,
    /// Files larger than this many bytes are reported and not read.
    #[arg(long, default_value_t = serin::source::DEFAULT_MAX_FILE_BYTES)]
    pub max_file_size: u64,
}

/// The config repository a decision or a status is read from and written to.
#[derive(Debug, Args)]
pub struct RepoArgs {
    /// The config repository's URL; default: the `origin` remote of the current checkout.
    #[arg(long, env = "SERIN_REPO")]
    pub repo: Option<String>,
    /// The branch Serin follows.
    #[arg(long, env = "SERIN_BRANCH", default_value = "main")]
    pub branch: String,
    /// The ledger's branch, if Serin runs with --status-branch.
    #[arg(long, env = "SERIN_STATUS_BRANCH")]
    pub status_branch: Option<String>,
    #[command(flatten)]
    pub git: GitArgs,
}

/// `serin approve | rollback | retry <namespace>/<name>`.
#[derive(Debug, Args)]
pub struct DecisionArgs {
    /// The canary, as <namespace>/<name>.
    pub canary: String,
    /// The gates to open (approve only; repeatable): confirm-rollout, confirm-traffic-increase,
    /// confirm-promotion. Default: all three.
    #[arg(long)]
    pub gate: Vec<String>,
    /// The revision decided on; default: the one the ledger shows now.
    #[arg(long)]
    pub revision: Option<String>,
    /// Who decides, as 'Name <email>'; default: user.name and user.email of Git's configuration.
    #[arg(long)]
    pub author: Option<String>,
    #[command(flatten)]
    pub repo: RepoArgs,
}

/// `serin status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only canaries of this namespace.
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// Read the ledger in Git instead of the cluster (no cluster access needed).
    #[arg(long)]
    pub from_git: bool,
    /// Refresh every 2 seconds, in place.
    #[arg(long)]
    pub watch: bool,
    /// Kubeconfig to use; default: in-cluster, then $KUBECONFIG, then ~/.kube/config.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    #[command(flatten)]
    pub repo: RepoArgs,
}

/// Credentials for --repo (never put them in the URL: it ends up in shell history).
#[derive(Debug, Args)]
pub struct GitArgs {
    /// File holding an HTTPS token (or password).
    #[arg(long, env = "SERIN_GIT_TOKEN_FILE")]
    pub git_token_file: Option<PathBuf>,
    /// User name sent with the HTTPS token.
    #[arg(long, env = "SERIN_GIT_USERNAME", default_value = "git")]
    pub git_username: String,
    /// SSH private key file.
    #[arg(long, env = "SERIN_GIT_SSH_KEY")]
    pub git_ssh_key: Option<PathBuf>,
    /// known_hosts file the SSH server's key must be in.
    #[arg(long, env = "SERIN_GIT_KNOWN_HOSTS")]
    pub git_known_hosts: Option<PathBuf>,
    /// Where fetched repositories are cached.
    #[arg(long, env = "SERIN_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
}

fn duration(text: &str) -> Result<std::time::Duration, String> {
    serin::api::parse_go_duration(text).map_err(|e| e.to_string())
}

/// `serin run`: Flagger's controller flags, under Serin's names.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Kubeconfig to use; default: in-cluster, then $KUBECONFIG, then ~/.kube/config.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Only run canaries of this namespace (Flagger's -namespace).
    #[arg(long, env = "SERIN_NAMESPACE")]
    pub namespace: Option<String>,
    /// Provider of canaries that set none (Flagger's -mesh-provider).
    #[arg(long, env = "SERIN_PROVIDER", default_value = "istio")]
    pub provider: String,
    /// Prefix of the NGINX canary annotations (Flagger's -ingress-annotations-prefix).
    #[arg(
        long,
        env = "SERIN_INGRESS_ANNOTATIONS_PREFIX",
        default_value = serin::router::DEFAULT_INGRESS_ANNOTATIONS_PREFIX
    )]
    pub ingress_annotations_prefix: String,
    /// `spec.ingressClassName` of the Contour HTTPProxies Serin generates (Flagger's
    /// -ingress-class).
    #[arg(long, env = "SERIN_INGRESS_CLASS")]
    pub ingress_class: Option<String>,
    /// Prometheus for builtin checks and inline queries (Flagger's -metrics-server).
    #[arg(
        long,
        env = "SERIN_METRICS_SERVER",
        default_value = "http://prometheus:9090"
    )]
    pub metrics_server: String,
    /// Where events go when a canary has no `event` webhook (Flagger's -event-webhook).
    #[arg(long, env = "EVENT_WEBHOOK_URL")]
    pub event_webhook: Option<String>,
    /// Shortest analysis interval; Flagger's is 10s, lower values are for tests and demos.
    #[arg(long, value_parser = duration, default_value = "10s")]
    pub min_analysis_interval: std::time::Duration,
    /// How often the set of canaries is re-read (Flagger's -control-loop-interval).
    #[arg(long, value_parser = duration, default_value = "10s")]
    pub control_loop_interval: std::time::Duration,
    /// Labels of which the target's selector must contain one (Flagger's -selector-labels).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "app,name,app.kubernetes.io/name"
    )]
    pub selector_labels: Vec<String>,
    /// Label/annotation prefixes copied to generated objects; `*` for all (Flagger's -include-label-prefix).
    #[arg(long, value_delimiter = ',')]
    pub include_label_prefix: Vec<String>,
    /// A directory of manifests to apply every control loop (workloads, configs, Canaries,
    /// MetricTemplates, AlertProviders); without it Serin only analyses what is in the cluster.
    #[arg(long, env = "SERIN_SOURCE")]
    pub source: Option<PathBuf>,
    /// Subdirectory of --source that holds the manifests.
    #[arg(long, default_value = "")]
    pub path: String,
    /// Names the set of objects applied from --source (their `serin.dev/inventory` label);
    /// objects of this inventory that leave the source are deleted.
    #[arg(long, env = "SERIN_INVENTORY", default_value = "serin")]
    pub inventory: String,
    /// Namespace of the inventory ConfigMap.
    #[arg(
        long,
        env = "SERIN_INVENTORY_NAMESPACE",
        default_value = "serin-system"
    )]
    pub inventory_namespace: String,
    /// Namespace of manifests in --source that name none.
    #[arg(long, env = "SERIN_DEFAULT_NAMESPACE", default_value = "default")]
    pub default_namespace: String,
    /// The config repository (https://, ssh://, git://, file://): manifests are pulled from
    /// it, and the ledger and reverts are committed and pushed back to it.
    #[arg(long, env = "SERIN_REPO", conflicts_with = "source")]
    pub repo: Option<String>,
    /// Branch of --repo to follow.
    #[arg(long, env = "SERIN_BRANCH", default_value = "main")]
    pub branch: String,
    /// Branch for the ledger commits, if not the followed branch (created on first push).
    #[arg(long, env = "SERIN_STATUS_BRANCH")]
    pub status_branch: Option<String>,
    /// How often to fetch --repo: a duration (30s, 1m) or a cron expression (5 or 6 fields, UTC).
    #[arg(long, env = "SERIN_POLL", default_value = "1m")]
    pub poll: String,
    /// Apply an unchanged tree again this often, repairing drift in the cluster.
    #[arg(long, value_parser = duration, default_value = "10m")]
    pub resync_interval: std::time::Duration,
    /// Longest wait for one Git operation (fetch, push).
    #[arg(long, value_parser = duration, default_value = "60s")]
    pub git_timeout: std::time::Duration,
    /// Address of the HTTP server for /metrics, /healthz, /readyz and push webhooks
    /// (POST /hooks/git), e.g. 0.0.0.0:8080.
    #[arg(long, env = "SERIN_LISTEN")]
    pub listen: Option<std::net::SocketAddr>,
    /// File holding the push webhook secret (GitHub/Gitea HMAC key, GitLab token).
    #[arg(long, env = "SERIN_WEBHOOK_SECRET_FILE")]
    pub webhook_secret_file: Option<PathBuf>,
    /// What a failed analysis does to Git: record it in the ledger, or also revert the
    /// target's manifests to the promoted revision (revert), or propose that on a
    /// serin/revert/... branch (revert-branch). Per canary: annotation serin.dev/on-failure.
    #[arg(long, env = "SERIN_ON_FAILURE", default_value = "record")]
    pub on_failure: String,
    /// Ledger commits for every transition and advance (all) or phase transitions only.
    #[arg(long, env = "SERIN_LEDGER_GRANULARITY", default_value = "all")]
    pub ledger_granularity: String,
    /// Author and committer of ledger and revert commits.
    #[arg(
        long,
        env = "SERIN_GIT_AUTHOR",
        default_value = "Serin <serin@localhost>"
    )]
    pub git_author: String,
    /// Run as one of several replicas: only the holder of a Lease acts; the others wait.
    #[arg(long, env = "SERIN_LEADER_ELECT")]
    pub leader_elect: bool,
    /// Namespace of the Lease (default: --inventory-namespace).
    #[arg(long, env = "SERIN_LEADER_ELECT_NAMESPACE")]
    pub leader_elect_namespace: Option<String>,
    /// This replica's name in the Lease (default: $POD_NAME, else host name and process id).
    #[arg(long, env = "POD_NAME")]
    pub leader_elect_identity: Option<String>,
    /// How long a Lease that is not renewed stays with its holder.
    #[arg(long, value_parser = duration, default_value = "15s")]
    pub leader_elect_lease_duration: std::time::Duration,
    /// How often the leader renews the Lease and the others try to take it.
    #[arg(long, value_parser = duration, default_value = "2s")]
    pub leader_elect_retry_period: std::time::Duration,
    #[command(flatten)]
    pub git: GitArgs,
}
