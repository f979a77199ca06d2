//! Gates: the calls that let something outside Serin hold, approve or observe a rollout.
//!
//! Flagger's webhooks (reference §2.5, §6.1) are reproduced with Flagger's wire format and
//! call semantics, so that the load tester, existing gate services and event sinks keep
//! working unchanged:
//!
//! * [`payload`]: the JSON body each webhook type receives, built by pure functions.
//! * [`webhook`]: [`WebhookClient`], which POSTs it with the hook's timeout, retries and
//!   success rule, runs the hooks of one type in list order, and fans events out to the
//!   `event` webhooks.
//! * [`retry`]: go-retryablehttp's retry policy and backoff, as Flagger configures it.
//!
//! What a gate's answer *means* (halt, wait for approval, roll back) is decided by the
//! analysis; this module only reports which hooks passed and why one failed.

pub mod approvals;
pub mod payload;
pub mod retry;
pub mod webhook;

pub use payload::{
    EventType, WebhookPayload, canary_checksum, event_payload, hook_payload, payload_phase,
};
pub use webhook::{HookCall, HookOutcome, HookRun, WebhookClient, WebhookClientError};
