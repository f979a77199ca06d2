//! What starts a sync of the config repository: a poll schedule ([`poll`]), a push webhook
//! from the Git host ([`webhook`]) and a file watch on a local checkout ([`watch`]).
//!
//! Triggers only ask; they never sync. Each one sends a [`SyncRequest`] on a bounded channel
//! whose consumer coalesces requests, so a trigger uses `try_send` and reads a full channel
//! as "a sync is already pending": a burst of pushes costs one sync, and a slow sync never
//! holds up a webhook response or a timer.

pub mod poll;
pub mod watch;
pub mod webhook;

use std::fmt;
use std::time::Instant;

use tokio::sync::mpsc::Sender;
use tokio::sync::mpsc::error::TrySendError;

pub use poll::{Schedule, ScheduleError, spawn_poll};
pub use watch::{DEFAULT_DEBOUNCE, WatchError, WatchHandle, spawn_watch};
pub use webhook::{DEFAULT_MAX_BODY, WEBHOOK_PATH, WebhookConfig, WebhookProvider, router};

/// Why a sync was requested (for logs and the ledger).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerReason {
    /// The first sync after Serin starts.
    Startup,
    /// The poll schedule fired.
    Poll,
    /// A Git host reported a push to the configured branch.
    Webhook {
        provider: WebhookProvider,
        /// The commit the branch points to after the push, as the payload says.
        after: Option<String>,
        /// The host's id of this delivery, to find it in the host's webhook log.
        delivery: Option<String>,
    },
    /// Files changed under the watched directory.
    FileWatch {
        /// Distinct paths that changed (0 when the watcher lost track and asks for a rescan).
        paths: usize,
    },
}

impl fmt::Display for TriggerReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TriggerReason::Startup => f.write_str("startup"),
            TriggerReason::Poll => f.write_str("poll"),
            TriggerReason::Webhook {
                provider,
                after,
                delivery,
            } => {
                write!(f, "{provider} push")?;
                if let Some(after) = after {
                    write!(f, " to {}", crate::message::short_id(after))?;
                }
                if let Some(delivery) = delivery {
                    write!(f, " (delivery {delivery})")?;
                }
                Ok(())
            }
            TriggerReason::FileWatch { paths: 1 } => f.write_str("file watch: 1 path changed"),
            TriggerReason::FileWatch { paths } => write!(f, "file watch: {paths} paths changed"),
        }
    }
}

/// A request for one sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRequest {
    pub reason: TriggerReason,
    /// When the trigger fired, so the consumer can report how long a request waited.
    pub received: Instant,
}

impl SyncRequest {
    pub fn now(reason: TriggerReason) -> SyncRequest {
        SyncRequest {
            reason,
            received: Instant::now(),
        }
    }
}

/// What became of a request handed to the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    /// Queued for the consumer.
    Sent,
    /// The channel is full: a sync is already pending and will see the same change.
    AlreadyPending,
    /// The consumer is gone (Serin is stopping); the trigger should stop too.
    Closed,
}

/// Hands `request` to the consumer without waiting.
pub fn request_sync(tx: &Sender<SyncRequest>, request: SyncRequest) -> Requested {
    match tx.try_send(request) {
        Ok(()) => Requested::Sent,
        Err(TrySendError::Full(_)) => Requested::AlreadyPending,
        Err(TrySendError::Closed(_)) => Requested::Closed,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_full_channel_means_a_sync_is_pending() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let req = || SyncRequest::now(TriggerReason::Poll);
        assert_eq!(request_sync(&tx, req()), Requested::Sent);
        assert_eq!(request_sync(&tx, req()), Requested::AlreadyPending);
        assert_eq!(rx.try_recv().unwrap().reason, TriggerReason::Poll);
        drop(rx);
        assert_eq!(request_sync(&tx, req()), Requested::Closed);
    }

    #[test]
    fn reasons_read_well_in_a_log_line() {
        let cases = [
            (TriggerReason::Startup, "startup"),
            (TriggerReason::Poll, "poll"),
            (
                TriggerReason::Webhook {
                    provider: WebhookProvider::GitHub,
                    after: Some("0123456789abcdef0123456789abcdef01234567".into()),
                    delivery: Some("72d3162e".into()),
                },
                "GitHub push to 0123456789ab (delivery 72d3162e)",
            ),
            (
                TriggerReason::Webhook {
                    provider: WebhookProvider::GitLab,
                    after: None,
                    delivery: None,
                },
                "GitLab push",
            ),
            (
                TriggerReason::FileWatch { paths: 1 },
                "file watch: 1 path changed",
            ),
            (
                TriggerReason::FileWatch { paths: 20 },
                "file watch: 20 paths changed",
            ),
        ];
        for (reason, want) in cases {
            assert_eq!(reason.to_string(), want);
        }
    }
}
