//! Calling webhooks the way Flagger does (reference §2.5, §2.10, §6.1).
//!
//! One call is a `POST` of the [payload](super::payload) with `Content-Type:
//! application/json`, each attempt bounded by the hook's `timeout` (default 10 s), retried
//! per [`super::retry`] up to `retries` times, and judged by the final status: ≤ 202
//! passes. The result is a [`HookOutcome`] whose failure reason is one line naming the
//! hook, the URL (without credentials) and the status with an excerpt of the body, or the
//! transport error — ready to be appended to Flagger's event texts, e.g.
//! `Halt podinfo.test advancement pre-rollout check smoke-test failed <reason>`.

use std::error::Error as StdError;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Url;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};

use super::payload::{EventType, WebhookPayload, event_payload, hook_payload};
use super::retry::{backoff, is_retryable_status, is_success_status, retry_after};
use crate::api::{Canary, CanaryPhase, CanaryWebhook, HookType};
use crate::message::error_chain;

/// How much of a response body is kept for the failure reason; the rest is read and
/// dropped (Flagger reads the whole body, so a body that never ends still times out).
const BODY_KEEP_BYTES: usize = 4096;
/// Characters of the body shown in a reason: enough for a load tester's error line,
/// short enough for a Kubernetes event.
const EXCERPT_CHARS: usize = 200;
/// The webhook Flagger posts events to when `-event-webhook` is set and the canary has no
/// `event` webhook of its own (reference §2.10).
pub const DEFAULT_EVENT_WEBHOOK_NAME: &str = "events";

/// The client cannot be built (no TLS provider, broken system configuration).
#[derive(Debug, thiserror::Error)]
pub enum WebhookClientError {
    #[error("cannot build an HTTP client for webhooks: {0}")]
    Build(String),
}

/// What one webhook answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HookOutcome {
    /// The final response had a status ≤ 202.
    Passed,
    /// Anything else. `reason` is a single line for events and logs.
    Failed {
        reason: String,
        /// The last HTTP status received, if any response came back.
        status: Option<u16>,
        /// Requests sent: `0` when the hook's URL or timeout is invalid.
        attempts: u32,
    },
}

impl HookOutcome {
    /// Whether the hook passed.
    pub fn passed(&self) -> bool {
        matches!(self, HookOutcome::Passed)
    }

    /// Why the hook failed; `None` when it passed.
    pub fn reason(&self) -> Option<&str> {
        match self {
            HookOutcome::Passed => None,
            HookOutcome::Failed { reason, .. } => Some(reason),
        }
    }
}

/// One hook that was called and what it answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookCall {
    /// The hook's `name` (Flagger's events name hooks by it).
    pub name: String,
    pub outcome: HookOutcome,
}

/// The hooks of one type that ran, in list order, up to the one that stopped the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookRun {
    pub kind: HookType,
    /// Every hook called, in order. Hooks after the one that stopped the run are absent.
    pub calls: Vec<HookCall>,
}

impl HookRun {
    /// The hooks that passed, in order (for "Pre-rollout check %s passed" and the like).
    pub fn passed(&self) -> impl Iterator<Item = &HookCall> {
        self.calls.iter().filter(|c| c.outcome.passed())
    }

    /// The hooks that failed, in order. For a gate type that is at most one (the run stops
    /// there); for `rollback` every hook that did not signal a rollback.
    pub fn failed(&self) -> impl Iterator<Item = &HookCall> {
        self.calls.iter().filter(|c| !c.outcome.passed())
    }

    /// The failure that closes a gate: the first failed hook.
    pub fn first_failure(&self) -> Option<&HookCall> {
        self.failed().next()
    }

    /// Whether every hook of the type passed, vacuously true when there are none: the gate
    /// is open.
    pub fn all_passed(&self) -> bool {
        self.first_failure().is_none()
    }

    /// For a `rollback` run: the hook that asked for the rollback (the first that passed).
    /// `None` for other types, whose passing hooks ask for nothing.
    pub fn rollback_requested(&self) -> Option<&HookCall> {
        match self.kind {
            HookType::Rollback => self.passed().next(),
            _ => None,
        }
    }
}

/// Sends webhooks. Cheap to clone: the clones share connection pools.
#[derive(Clone, Debug)]
pub struct WebhookClient {
    /// Verifies server certificates against the system's trust roots.
    verified: reqwest::Client,
    /// For `disableTLS: true` hooks: Flagger's `InsecureSkipVerify`, which accepts any
    /// certificate for any host name.
    insecure: reqwest::Client,
}

impl WebhookClient {
    /// Builds the two HTTP clients (verifying, and not verifying for `disableTLS`).
    pub fn new() -> Result<WebhookClient, WebhookClientError> {
        // reqwest panics without a process-wide rustls provider; make sure there is one.
        crate::crypto::install_default_provider();
        let build = |accept_invalid_certs: bool| {
            reqwest::Client::builder()
                .user_agent(concat!("serin/", env!("CARGO_PKG_VERSION")))
                .danger_accept_invalid_certs(accept_invalid_certs)
                .build()
                .map_err(|e| WebhookClientError::Build(error_chain(&e)))
        };
        Ok(WebhookClient {
            verified: build(false)?,
            insecure: build(true)?,
        })
    }

    /// POSTs `payload` to `hook` with the hook's timeout, retries and TLS setting, and
    /// judges the answer by Flagger's rule (final status ≤ 202).
    ///
    /// * The timeout bounds each attempt, from connecting to the end of the response body
    ///   (Go's `http.Client.Timeout`); `0s` means no limit, as in Go. A timeout is a
    ///   transport error and is retried.
    /// * At most `retries + 1` attempts; see [`super::retry`] for what is retried and the
    ///   waits in between.
    pub async fn call(&self, hook: &CanaryWebhook, payload: &WebhookPayload) -> HookOutcome {
        let name = hook.name();
        let raw_url = hook.url.as_deref().unwrap_or_default();
        let shown_url = scrub_url(raw_url);
        let config_error = |what: String| HookOutcome::Failed {
            reason: format!("webhook {name}: {what}"),
            status: None,
            attempts: 0,
        };
        let url = match Url::parse(raw_url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => url,
            Ok(url) => {
                return config_error(format!(
                    "url {shown_url:?} is not valid: scheme {} is not http or https",
                    url.scheme()
                ));
            }
            Err(e) => return config_error(format!("url {shown_url:?} is not valid: {e}")),
        };
        let timeout = match hook.timeout() {
            Ok(timeout) => timeout,
            Err(e) => return config_error(format!("timeout is not valid: {e}")),
        };
        let client = if hook.disable_tls() {
            &self.insecure
        } else {
            &self.verified
        };
        let body = payload.to_json();
        let retries = hook.retries();
        let failed = |detail: String, status: Option<u16>, attempts: u32| {
            let gave_up = if attempts > 1 {
                format!(" (gave up after {attempts} attempts)")
            } else {
                String::new()
            };
            HookOutcome::Failed {
                reason: format!("webhook {name}: POST {shown_url} {detail}{gave_up}"),
                status,
                attempts,
            }
        };

        let mut attempts: u32 = 0;
        loop {
            let retry_index = attempts;
            attempts += 1;
            let mut request = client
                .post(url.clone())
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
            if !timeout.is_zero() {
                request = request.timeout(timeout);
            }
            // What this attempt came to if it is not final: why, the status, the server's
            // Retry-After, and whether another attempt may heal it.
            let (detail, status, server_wait, retryable) = match request.send().await {
                Err(error) => {
                    let retryable = is_retryable_error(&error);
                    (transport_detail(error, timeout), None, None, retryable)
                }
                Ok(response) => {
                    let code = response.status().as_u16();
                    let header = response
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let body = read_excerpt(response).await;
                    if is_retryable_status(code) {
                        // go-retryablehttp drains (and ignores) the body of a response it
                        // retries, so a body error changes nothing here.
                        let excerpt = body.unwrap_or_default();
                        let wait = retry_after(code, header.as_deref(), SystemTime::now());
                        (status_detail(code, &excerpt), Some(code), wait, true)
                    } else {
                        return match body {
                            Err(error) => failed(
                                format!(
                                    "returned {}, then reading the body failed: {}",
                                    status_text(code),
                                    transport_detail(error, timeout)
                                ),
                                Some(code),
                                attempts,
                            ),
                            Ok(_) if is_success_status(code) => HookOutcome::Passed,
                            Ok(excerpt) => {
                                failed(status_detail(code, &excerpt), Some(code), attempts)
                            }
                        };
                    }
                }
            };
            if !retryable || attempts > retries {
                return failed(detail, status, attempts);
            }
            let wait = backoff(retry_index, server_wait);
            tracing::debug!(
                hook = name,
                url = %shown_url,
                attempt = attempts,
                retries,
                wait = ?wait,
                %detail,
                "webhook attempt failed, retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// Runs the hooks of one type of `canary` in list order (reference §2.5) and reports
    /// each answer; the analysis turns them into events, alerts and status changes.
    ///
    /// `phase` is the payload phase: use [`super::payload_phase`] (for `post-rollout`, the
    /// outcome, `Succeeded` or `Failed`).
    ///
    /// Where the run stops depends on what a pass means:
    ///
    /// * Gate and notification types (confirm-rollout, pre-rollout, rollout,
    ///   confirm-traffic-increase, confirm-promotion, post-rollout): a pass lets the rollout
    ///   go on, so the **first failure stops the run** and later hooks of the type are not
    ///   called. [`HookRun::all_passed`] says whether the gate is open,
    ///   [`HookRun::first_failure`] why not.
    /// * `rollback`: a **pass asks for a rollback** and a failure only means "no rollback
    ///   wanted". Flagger calls the rollback hooks in order, records each failure as
    ///   "Rollback hook %s not signaling a rollback" and stops at the first that passes
    ///   ("Rollback check %s passed", then rolls back). [`HookRun::rollback_requested`]
    ///   returns that hook; [`HookRun::failed`] lists the ones before it.
    /// * `event` hooks are not gates: they receive every recorded event through
    ///   [`WebhookClient::send_event`], and a run of them here calls nothing.
    pub async fn run_hooks(&self, canary: &Canary, kind: HookType, phase: CanaryPhase) -> HookRun {
        let mut run = HookRun {
            kind,
            calls: Vec::new(),
        };
        let Some(analysis) = canary.spec.analysis() else {
            return run;
        };
        if kind == HookType::Event {
            return run;
        }
        for hook in analysis.webhooks_of(kind) {
            let payload = hook_payload(canary, hook, phase);
            let outcome = self.call(hook, &payload).await;
            let stop = match kind {
                HookType::Rollback => outcome.passed(),
                _ => !outcome.passed(),
            };
            run.calls.push(HookCall {
                name: hook.name().to_string(),
                outcome,
            });
            if stop {
                break;
            }
        }
        run
    }

    /// POSTs one recorded event to every `event` webhook of `canary`, in list order, or —
    /// when it has none — to `default_url` (Flagger's `-event-webhook`, hook name
    /// `events`) if given (reference §2.10).
    ///
    /// Failures are logged and otherwise ignored, as in Flagger; the calls are returned for
    /// tests and metrics. Flagger sends events synchronously with the tick; a caller that
    /// must not wait on a slow sink can spawn this (the client is cheap to clone).
    pub async fn send_event(
        &self,
        canary: &Canary,
        event_type: EventType,
        message: &str,
        default_url: Option<&str>,
    ) -> Vec<HookCall> {
        let mut hooks: Vec<CanaryWebhook> = canary
            .spec
            .analysis()
            .map(|a| a.webhooks_of(HookType::Event).cloned().collect())
            .unwrap_or_default();
        if hooks.is_empty()
            && let Some(url) = default_url.filter(|u| !u.is_empty())
        {
            hooks.push(CanaryWebhook {
                name: Some(DEFAULT_EVENT_WEBHOOK_NAME.to_string()),
                r#type: Some(HookType::Event.as_str().to_string()),
                url: Some(url.to_string()),
                ..CanaryWebhook::default()
            });
        }
        let timestamp_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        let mut calls = Vec::with_capacity(hooks.len());
        for hook in &hooks {
            let payload = event_payload(canary, hook, event_type, message, timestamp_ms);
            let outcome = self.call(hook, &payload).await;
            if let Some(reason) = outcome.reason() {
                tracing::warn!(
                    canary = %format!("{}.{}", payload.name, payload.namespace),
                    %reason,
                    "error sending event to webhook"
                );
            }
            calls.push(HookCall {
                name: hook.name().to_string(),
                outcome,
            });
        }
        calls
    }
}

/// The body, lossily decoded, reduced to one short line. The whole body is read (so the
/// timeout covers it, as in Go) but only the start is kept.
async fn read_excerpt(mut response: reqwest::Response) -> Result<String, reqwest::Error> {
    let mut kept = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = BODY_KEEP_BYTES.saturating_sub(kept.len());
        kept.extend_from_slice(&chunk[..room.min(chunk.len())]);
    }
    Ok(one_line(&String::from_utf8_lossy(&kept), EXCERPT_CHARS))
}

/// Whitespace runs and control characters become single spaces, and text beyond `max`
/// characters is cut with an ellipsis: a multi-line HTML error page must not break an
/// event message or a log line.
fn one_line(text: &str, max: usize) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let line = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

fn status_text(code: u16) -> String {
    match reqwest::StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
    {
        Some(reason) => format!("{code} {reason}"),
        None => code.to_string(),
    }
}

fn status_detail(code: u16, excerpt: &str) -> String {
    if excerpt.is_empty() {
        format!("returned {}", status_text(code))
    } else {
        format!("returned {}: {excerpt}", status_text(code))
    }
}

fn transport_detail(error: reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        format!("timed out after {timeout:?}")
    } else {
        // `without_url`: the URL is already in the reason, scrubbed; reqwest would print it
        // with its credentials.
        format!(
            "failed: {}",
            one_line(&error_chain(&error.without_url()), 400)
        )
    }
}

/// go-retryablehttp retries every transport error except those another attempt cannot
/// heal: too many redirects, an unsupported scheme or malformed request, and a server
/// certificate that does not verify (a missing `disableTLS`).
fn is_retryable_error(error: &reqwest::Error) -> bool {
    !(error.is_redirect() || error.is_builder() || is_certificate_error(error))
}

/// Whether rustls rejected the server's certificate somewhere in the error's causes.
fn is_certificate_error(error: &(dyn StdError + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(rustls::Error::InvalidCertificate(_)) = e.downcast_ref::<rustls::Error>() {
            return true;
        }
        // `io::Error::source` skips the error it wraps, which is where hyper puts the
        // TLS error: look inside explicitly.
        if e.downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .is_some_and(|inner| is_certificate_error(inner))
        {
            return true;
        }
        next = e.source();
    }
    false
}

/// `url` without `user:password@`, so that credentials in a hook URL never reach an
/// event, a log line or a status. Works on text that does not parse as a URL too.
fn scrub_url(url: &str) -> String {
    // `user:pass@host/x` parses too, as an opaque URL with scheme `user`: only URLs with a
    // host are rebuilt by the parser, the rest is scrubbed as text.
    if let Some(mut parsed) = Url::parse(url).ok().filter(Url::has_host) {
        // Both only fail for URLs without a host, excluded above.
        let _ = parsed.set_username("");
        let _ = parsed.set_password(None);
        return parsed.to_string();
    }
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[authority_start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| authority_start + i);
    match url[authority_start..authority_end].rfind('@') {
        Some(at) => format!(
            "{}{}",
            &url[..authority_start],
            &url[authority_start + at + 1..]
        ),
        None => url.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_scrubbed_from_urls() {
        let cases = [
            (
                "http://user:s3cret@hooks.test:8080/gate?x=1",
                "http://hooks.test:8080/gate?x=1",
            ),
            ("https://token@hooks.test/", "https://hooks.test/"),
            ("http://:pw@hooks.test/a", "http://hooks.test/a"),
            ("http://hooks.test", "http://hooks.test/"),
            ("http://hooks.test/a@b", "http://hooks.test/a@b"),
            // Not URLs, still scrubbed.
            ("http://user:s3cret@[bad/gate", "http://[bad/gate"),
            ("user:s3cret@hooks.test/gate", "hooks.test/gate"),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(scrub_url(input), expected, "{input}");
        }
    }

    #[test]
    fn bodies_become_one_short_line() {
        assert_eq!(one_line("  a\n\tb\r\n  c \u{1b}[0m ", 50), "a b c [0m");
        assert_eq!(one_line("", 10), "");
        assert_eq!(one_line("abcdef", 3), "abc…");
        assert_eq!(one_line("ééé", 3), "ééé");
        assert_eq!(one_line("éééé", 3), "ééé…");
    }

    #[test]
    fn status_details_name_code_reason_and_excerpt() {
        assert_eq!(
            status_detail(403, "Forbidden"),
            "returned 403 Forbidden: Forbidden"
        );
        assert_eq!(status_detail(500, ""), "returned 500 Internal Server Error");
        assert_eq!(status_detail(299, "odd"), "returned 299: odd");
    }

    fn call(name: &str, passed: bool) -> HookCall {
        HookCall {
            name: name.into(),
            outcome: if passed {
                HookOutcome::Passed
            } else {
                HookOutcome::Failed {
                    reason: format!("{name} failed"),
                    status: Some(403),
                    attempts: 1,
                }
            },
        }
    }

    #[test]
    fn a_gate_run_is_open_only_without_failures() {
        let open = HookRun {
            kind: HookType::PreRollout,
            calls: vec![call("a", true), call("b", true)],
        };
        assert!(open.all_passed());
        assert_eq!(open.passed().count(), 2);
        assert!(open.rollback_requested().is_none());
        let closed = HookRun {
            kind: HookType::PreRollout,
            calls: vec![call("a", true), call("b", false)],
        };
        assert!(!closed.all_passed());
        assert_eq!(closed.first_failure().unwrap().name, "b");
        assert_eq!(
            closed.first_failure().unwrap().outcome.reason(),
            Some("b failed")
        );
        let none = HookRun {
            kind: HookType::ConfirmRollout,
            calls: vec![],
        };
        assert!(none.all_passed());
    }

    #[test]
    fn a_rollback_run_asks_for_rollback_on_its_first_pass() {
        let run = HookRun {
            kind: HookType::Rollback,
            calls: vec![call("r1", false), call("r2", true)],
        };
        assert_eq!(run.rollback_requested().unwrap().name, "r2");
        assert_eq!(
            run.failed().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            ["r1"]
        );
        let quiet = HookRun {
            kind: HookType::Rollback,
            calls: vec![call("r1", false)],
        };
        assert!(quiet.rollback_requested().is_none());
    }
}
