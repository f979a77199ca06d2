//! The poll schedule: a fixed period (`--poll 1m`) or a cron expression
//! (`--poll "*/5 * * * *"`).
//!
//! Periods tick on a tokio interval. Cron expressions run on tokio-cron-scheduler, as cron
//! jobs only: its repeated jobs can stop firing when their next tick drifts into the past
//! (upstream issue #113). The job body is a single `try_send`, so nothing slow ever runs
//! inside the scheduler.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc::Sender;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_cron_scheduler::{Job, JobScheduler};

use super::{Requested, SyncRequest, TriggerReason, request_sync};
use crate::api::duration::parse_go_duration;

/// Polling faster than this only loads the Git server: a push webhook is the way to react
/// within a second.
pub const MIN_PERIOD: Duration = Duration::from_secs(1);

/// When the poll schedule fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// Every period, the first one a period after start.
    Every(Duration),
    /// A cron expression of 6 fields (seconds first), evaluated in UTC. When both
    /// day-of-month and day-of-week are restricted, both must match (the scheduler's rule;
    /// Vixie cron fires when either matches).
    Cron(String),
}

impl Default for Schedule {
    /// Every minute.
    fn default() -> Self {
        Schedule::Every(Duration::from_secs(60))
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Every(period) => write!(f, "every {}", format_period(*period)),
            Schedule::Cron(expr) => write!(f, "cron {expr:?} (UTC)"),
        }
    }
}

/// Why a `--poll` value is not a schedule. Each message names the value and how to write it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("--poll {input:?}: expected a duration like 1m or a cron expression of 5 or 6 fields")]
    Unrecognized { input: String },
    #[error("--poll {input:?}: poll at most once a second (use 1s or more, or a push webhook)")]
    TooFrequent { input: String },
    #[error(
        "--poll {input:?}: not a valid cron expression; write minute hour day-of-month month \
         day-of-week (5 fields, e.g. \"*/5 * * * *\") or put a seconds field first (6 fields)"
    )]
    InvalidCron { input: String },
}

impl Schedule {
    /// Parses a `--poll` value: a duration (`30s`, `1m`, `5m`, `1h`, `1m30s`), a cron
    /// expression of 5 fields (minute resolution) or 6 fields (seconds first), or a cron
    /// nickname such as `@hourly`.
    pub fn parse(input: &str) -> Result<Schedule, ScheduleError> {
        let fields: Vec<&str> = input.split_whitespace().collect();
        let unrecognized = || ScheduleError::Unrecognized {
            input: input.to_string(),
        };
        let expr = match fields.as_slice() {
            [nickname] if nickname.starts_with('@') => (*nickname).to_string(),
            [single] => {
                let period = parse_go_duration(single).map_err(|_| unrecognized())?;
                if period < MIN_PERIOD {
                    return Err(ScheduleError::TooFrequent {
                        input: input.to_string(),
                    });
                }
                return Ok(Schedule::Every(period));
            }
            // The scheduler always wants a seconds field; a 5-field expression fires at
            // second 0, as cron does.
            five if five.len() == 5 => format!("0 {}", five.join(" ")),
            six if six.len() == 6 => six.join(" "),
            _ => return Err(unrecognized()),
        };
        // Parse with the scheduler's own parser (with a no-op body), so that an expression
        // accepted here is one it will run.
        Job::new(expr.as_str(), |_, _| {}).map_err(|_| ScheduleError::InvalidCron {
            input: input.to_string(),
        })?;
        Ok(Schedule::Cron(expr))
    }
}

/// Sends a [`TriggerReason::Poll`] request whenever `schedule` fires, until `shutdown`
/// completes or the receiver is dropped.
///
/// The first request comes one period (or the first cron time) after the start: the sync at
/// start is the caller's ([`TriggerReason::Startup`]). Must be called inside a tokio runtime.
pub fn spawn_poll(
    schedule: Schedule,
    tx: Sender<SyncRequest>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> JoinHandle<()> {
    match schedule {
        Schedule::Every(period) => tokio::spawn(poll_every(period, tx, shutdown)),
        Schedule::Cron(expr) => tokio::spawn(poll_cron(expr, tx, shutdown)),
    }
}

async fn poll_every(
    period: Duration,
    tx: Sender<SyncRequest>,
    shutdown: impl Future<Output = ()> + Send,
) {
    // A period of zero would make the interval panic; `Schedule::parse` never yields one,
    // but the enum is public.
    let period = period.max(MIN_PERIOD);
    let mut ticker = tokio::time::interval_at(Instant::now() + period, period);
    // After a stall (a suspended VM, a starved runtime) poll once, then keep the period:
    // a burst of catch-up polls would only find the same commit again.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            () = tx.closed() => break,
            _ = ticker.tick() => {
                if fire(&tx) == Requested::Closed {
                    break;
                }
            }
        }
    }
}

async fn poll_cron(
    expr: String,
    tx: Sender<SyncRequest>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut scheduler = match start_cron(&expr, &tx).await {
        Ok(scheduler) => scheduler,
        Err(e) => {
            // Only a scheduler that cannot start gets here (the expression was parsed by
            // `Schedule::parse`); the other triggers still work, so say it and stop polling.
            tracing::error!(
                "cannot start the poll schedule cron {expr:?}: {e}; Serin will not poll"
            );
            return;
        }
    };
    tokio::select! {
        () = shutdown => {}
        () = tx.closed() => {}
    }
    if let Err(e) = scheduler.shutdown().await {
        tracing::warn!("cannot stop the poll schedule cron {expr:?} cleanly: {e}");
    }
}

async fn start_cron(
    expr: &str,
    tx: &Sender<SyncRequest>,
) -> Result<JobScheduler, tokio_cron_scheduler::JobSchedulerError> {
    // The job holds a weak sender: whatever the scheduler's own tasks keep alive after
    // `shutdown`, nothing is sent once this trigger has stopped, and the channel closes when
    // its real senders are gone.
    let weak = tx.downgrade();
    let scheduler = JobScheduler::new().await?;
    scheduler
        .add(Job::new(expr, move |_, _| {
            if let Some(tx) = weak.upgrade() {
                fire(&tx);
            }
        })?)
        .await?;
    scheduler.start().await?;
    Ok(scheduler)
}

fn fire(tx: &Sender<SyncRequest>) -> Requested {
    let outcome = request_sync(tx, SyncRequest::now(TriggerReason::Poll));
    if outcome == Requested::AlreadyPending {
        tracing::debug!("poll: a sync is already pending");
    }
    outcome
}

/// `1h`, `5m`, `1m30s`: the way the value was most likely written.
fn format_period(period: Duration) -> String {
    let secs = period.as_secs();
    if period.subsec_nanos() != 0 || secs == 0 {
        return format!("{period:?}");
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    for (value, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if value != 0 {
            out.push_str(&format!("{value}{unit}"));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;
    use tokio::sync::oneshot;

    #[test]
    fn parses_durations_and_cron_expressions() {
        let every = |s| Ok(Schedule::Every(Duration::from_secs(s)));
        let cron = |s: &str| Ok(Schedule::Cron(s.to_string()));
        let cases = [
            ("30s", every(30)),
            ("1m", every(60)),
            ("5m", every(300)),
            ("1h", every(3600)),
            ("1m30s", every(90)),
            (" 2m ", every(120)),
            ("*/5 * * * *", cron("0 */5 * * * *")),
            ("0 3 * * mon-fri", cron("0 0 3 * * mon-fri")),
            ("*/10 * * * * *", cron("*/10 * * * * *")),
            ("  *   * * * *", cron("0 * * * * *")),
            ("@hourly", cron("@hourly")),
        ];
        for (input, want) in cases {
            assert_eq!(Schedule::parse(input), want, "{input:?}");
        }
    }

    #[test]
    fn errors_name_the_value_and_the_fix() {
        let cases = [
            (
                "* * *",
                "--poll \"* * *\": expected a duration like 1m or a cron expression of 5 or 6 fields",
            ),
            (
                "",
                "--poll \"\": expected a duration like 1m or a cron expression of 5 or 6 fields",
            ),
            (
                "5x",
                "--poll \"5x\": expected a duration like 1m or a cron expression of 5 or 6 fields",
            ),
            (
                "0 0 * * * * 2030",
                "--poll \"0 0 * * * * 2030\": expected a duration like 1m or a cron expression of 5 or 6 fields",
            ),
            (
                "0s",
                "--poll \"0s\": poll at most once a second (use 1s or more, or a push webhook)",
            ),
            (
                "500ms",
                "--poll \"500ms\": poll at most once a second (use 1s or more, or a push webhook)",
            ),
            (
                "61 * * * *",
                "--poll \"61 * * * *\": not a valid cron expression; write minute hour \
                 day-of-month month day-of-week (5 fields, e.g. \"*/5 * * * *\") or put a \
                 seconds field first (6 fields)",
            ),
        ];
        for (input, want) in cases {
            let err = Schedule::parse(input).unwrap_err();
            assert_eq!(err.to_string(), want, "{input:?}");
        }
        assert!(matches!(
            Schedule::parse("* * * * * blursday"),
            Err(ScheduleError::InvalidCron { .. })
        ));
        assert!(matches!(
            Schedule::parse("@fortnightly"),
            Err(ScheduleError::InvalidCron { .. })
        ));
    }

    #[test]
    fn default_and_display() {
        assert_eq!(Schedule::default(), Schedule::parse("1m").unwrap());
        assert_eq!(Schedule::default().to_string(), "every 1m");
        assert_eq!(Schedule::parse("1m30s").unwrap().to_string(), "every 1m30s");
        assert_eq!(Schedule::parse("2h").unwrap().to_string(), "every 2h");
        assert_eq!(
            Schedule::parse("*/5 * * * *").unwrap().to_string(),
            "cron \"0 */5 * * * *\" (UTC)"
        );
    }

    /// With the clock paused, tokio jumps straight to the next timer, so the times at which
    /// requests arrive are exact.
    #[tokio::test(start_paused = true)]
    async fn a_period_fires_once_per_period_starting_one_period_after_start() {
        let (tx, mut rx) = mpsc::channel(8);
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let start = Instant::now();
        let task = spawn_poll(Schedule::parse("5m").unwrap(), tx, async move {
            let _ = stop_rx.await;
        });
        for n in 1..=3u32 {
            let req = rx.recv().await.unwrap();
            assert_eq!(req.reason, TriggerReason::Poll);
            assert_eq!(start.elapsed(), Duration::from_secs(300) * n);
        }
        stop_tx.send(()).unwrap();
        task.await.unwrap();
        assert!(rx.recv().await.is_none(), "the sender is dropped on stop");
    }

    #[tokio::test(start_paused = true)]
    async fn a_pending_sync_absorbs_further_polls() {
        let (tx, mut rx) = mpsc::channel(1);
        let task = spawn_poll(
            Schedule::Every(Duration::from_secs(60)),
            tx,
            std::future::pending(),
        );
        // Five periods pass while the consumer is busy: one request waits, the rest are
        // absorbed, and the trigger keeps running.
        tokio::time::sleep(Duration::from_secs(5 * 60 + 1)).await;
        assert!(rx.try_recv().is_ok());
        assert!(rx.try_recv().is_err());
        assert!(!task.is_finished());
        let before = Instant::now();
        rx.recv().await.unwrap();
        assert_eq!(before.elapsed(), Duration::from_secs(59));
        // Dropping the receiver ends the trigger.
        drop(rx);
        task.await.unwrap();
    }

    /// The cron path against the real clock: an every-second expression.
    #[tokio::test]
    async fn a_cron_schedule_fires_and_stops() {
        let (tx, mut rx) = mpsc::channel(8);
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let task = spawn_poll(Schedule::parse("* * * * * *").unwrap(), tx, async move {
            let _ = stop_rx.await;
        });
        let wait = Duration::from_secs(10);
        let first = tokio::time::timeout(wait, rx.recv())
            .await
            .unwrap()
            .unwrap();
        let second = tokio::time::timeout(wait, rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.reason, TriggerReason::Poll);
        assert!(second.received > first.received);
        stop_tx.send(()).unwrap();
        tokio::time::timeout(wait, task).await.unwrap().unwrap();
        // Once stopped, no sender is left: the channel closes after what fired before.
        tokio::time::timeout(wait, async { while rx.recv().await.is_some() {} })
            .await
            .unwrap();
    }
}
