//! End-to-end tests against the real local control plane of tests/env/.
//!
//! The harness starts the environment once for the whole run (or reuses the one named by
//! SERIN_TESTENV_DIR), runs each test in its own namespace, and stops what it started at the
//! end. Environment start-up is lazy, so `--list` or a filter that matches nothing starts
//! nothing.

mod alerts;
mod apply;
mod canary_status;
mod deployment;
mod gateway_api;
mod gitops;
mod metric_checks;
mod prometheus;
mod providers;
mod rbac;
mod rollout;
mod router;
mod scenarios;
mod scenarios_more;
mod serin_run;
mod simulator;
mod support;
mod telemetry;
mod workload;

use std::future::Future;
use std::process::ExitCode;

use libtest_mimic::{Arguments, Failed, Trial};

type TestResult = Result<(), Failed>;

/// A trial that runs an async test on its own runtime (a kube client is bound to the runtime
/// it was created on, so nothing async is shared between tests).
fn trial<F, Fut>(name: &'static str, test: F) -> Trial
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = TestResult>,
{
    Trial::test(name, move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Failed::from(format!("cannot start a runtime: {e}")))?;
        runtime.block_on(test())
    })
}

fn main() -> ExitCode {
    serin::crypto::install_default_provider();
    // Quiet unless RUST_LOG asks, e.g. RUST_LOG=serin=debug to follow the runner.
    serin::telemetry::init("off");
    let args = Arguments::from_args();
    let trials = vec![
        trial(
            "provider_istio_canary_promotes_then_rolls_back",
            providers::istio_canary_promotes_then_rolls_back,
        ),
        trial(
            "provider_istio_ab_testing_with_the_guides_matches",
            providers::istio_ab_testing_with_the_guides_matches,
        ),
        trial(
            "provider_istio_revert_on_deletion_restores_the_users_virtual_service",
            providers::istio_revert_on_deletion_restores_the_users_virtual_service,
        ),
        trial(
            "provider_istio_mirroring_copies_traffic_then_promotes",
            providers::istio_mirroring_copies_traffic_then_promotes,
        ),
        trial(
            "provider_istio_session_affinity_sticks",
            providers::istio_session_affinity_sticks,
        ),
        trial(
            "provider_nginx_ab_testing_with_the_guides_matches",
            providers::nginx_ab_testing_with_the_guides_matches,
        ),
        trial(
            "provider_contour_ab_testing_with_the_guides_match",
            providers::contour_ab_testing_with_the_guides_match,
        ),
        trial(
            "provider_gloo_ab_testing_with_the_guides_match",
            providers::gloo_ab_testing_with_the_guides_match,
        ),
        trial(
            "provider_istio_revert_on_deletion_unmarks_a_matching_virtual_service",
            providers::istio_revert_on_deletion_unmarks_a_matching_virtual_service,
        ),
        trial(
            "provider_gloo_canary_promotes_then_rolls_back",
            providers::gloo_canary_promotes_then_rolls_back,
        ),
        trial(
            "provider_apisix_canary_promotes_then_rolls_back",
            providers::apisix_canary_promotes_then_rolls_back,
        ),
        trial(
            "provider_contour_canary_promotes_then_rolls_back",
            providers::contour_canary_promotes_then_rolls_back,
        ),
        trial(
            "provider_nginx_canary_promotes_then_rolls_back",
            providers::nginx_canary_promotes_then_rolls_back,
        ),
        trial(
            "alerts_resolve_providers_and_secrets",
            alerts::resolve_providers_and_secrets,
        ),
        trial(
            "gitops_pull_request_flow_kill_and_rebuild",
            gitops::pull_request_flow_kill_and_rebuild,
        ),
        trial(
            "gitops_remote_outage_loses_nothing",
            gitops::remote_outage_loses_nothing,
        ),
        trial("gitops_approvals_and_revert", gitops::approvals_and_revert),
        trial(
            "gitops_leader_failover_mid_rollout",
            gitops::leader_failover_mid_rollout,
        ),
        trial(
            "scenario_more_kubernetes_provider_blue_green",
            scenarios_more::kubernetes_provider_blue_green,
        ),
        trial(
            "scenario_more_session_affinity_sticks_then_expires",
            scenarios_more::session_affinity_sticks_then_expires,
        ),
        trial(
            "scenario_more_mirroring_then_switch_then_promote",
            scenarios_more::mirroring_then_switch_then_promote,
        ),
        trial(
            "scenario_more_bad_specs_warn_while_others_run",
            scenarios_more::bad_specs_warn_while_others_run,
        ),
        trial(
            "serin_run_applies_the_config_repo_and_rolls_out",
            serin_run::applies_the_config_repo_and_rolls_out,
        ),
        trial(
            "rbac_service_account_rolls_out_and_is_refused_the_rest",
            rbac::service_account_rolls_out_and_is_refused_the_rest,
        ),
        trial(
            "telemetry_metrics_health_and_json_logs",
            telemetry::metrics_health_and_json_logs,
        ),
        trial(
            "scenario_gates_hold_halt_and_abort",
            scenarios::gates_hold_halt_and_abort,
        ),
        trial(
            "scenario_configmap_change_and_restart",
            scenarios::configmap_change_and_restart,
        ),
        trial(
            "scenario_ab_testing_with_the_guides_matches",
            scenarios::ab_testing_with_the_guides_matches,
        ),
        trial(
            "apply_owns_replicas_and_prunes",
            apply::applies_owns_replicas_and_prunes,
        ),
        trial(
            "rollout_gateway_api_canary_promotes_then_rolls_back",
            rollout::gateway_api_canary_promotes_then_rolls_back,
        ),
        trial(
            "metric_checks_builtin_and_template",
            metric_checks::builtin_and_template_checks,
        ),
        trial(
            "simulator_splits_traffic_and_accepts_routes",
            simulator::splits_traffic_and_accepts_routes,
        ),
        trial(
            "canary_status_and_events",
            canary_status::status_and_events_reach_the_cluster,
        ),
        trial(
            "router_services_and_httproute",
            router::services_and_httproute,
        ),
        trial("router_httproute_shapes", router::httproute_shapes),
        trial(
            "deployment_rolls_out_and_updates",
            deployment::rolls_out_and_updates,
        ),
        trial(
            "gateway_api_httproute_schema",
            gateway_api::httproute_schema_is_enforced,
        ),
        trial(
            "prometheus_success_rate",
            prometheus::success_rate_follows_exporter,
        ),
        trial(
            "workload_deployment_lifecycle",
            workload::deployment_lifecycle,
        ),
        trial(
            "workload_readiness_fails_past_progress_deadline",
            workload::readiness_fails_past_progress_deadline,
        ),
        trial(
            "workload_daemonset_lifecycle",
            workload::daemonset_lifecycle,
        ),
    ];
    let conclusion = libtest_mimic::run(&args, trials);
    support::shutdown();
    conclusion.exit_code()
}
