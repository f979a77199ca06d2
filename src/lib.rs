//! Serin: Git-driven progressive delivery for Kubernetes.
//!
//! Serin reads Flagger-compatible `flagger.app/v1beta1` manifests from a config repository,
//! runs the progressive analysis against the cluster and records every rollout in Git.
//! DESIGN.md (in the repository's shared design notes) describes the data flow; this crate
//! grows it one module at a time.
#![warn(clippy::unwrap_used)]

pub mod alerts;
pub mod analysis;
pub mod api;
pub mod apply;
pub mod catalog;
pub mod cluster;
pub mod crypto;
pub mod doctor;
pub mod election;
pub mod gates;
pub mod gitops;
pub mod ledger;
pub mod message;
pub mod metrics;
pub mod plan;
pub mod revision;
pub mod router;
pub mod simulator;
pub mod source;
pub mod sync;
pub mod telemetry;
pub mod workload;
