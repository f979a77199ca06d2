//! The push-webhook receiver: `POST /hooks/git` from GitHub, GitLab or Gitea/Forgejo.
//!
//! A verified push to the configured branch requests a sync; everything else is answered and
//! dropped. The answer always says what happened in a short line, because the Git host shows
//! it in its delivery log and that is where a user looks when "the webhook does nothing".
//!
//! Every request is authenticated before its payload is looked at: GitHub and Gitea sign the
//! raw body with HMAC-SHA256, GitLab sends the secret itself as a token. Neither the secret
//! nor the signature ever reaches a log line or a response.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use tokio::sync::mpsc::Sender;

use super::{Requested, SyncRequest, TriggerReason, request_sync};
use crate::source::git::Secret;

/// Where the Git host posts.
pub const WEBHOOK_PATH: &str = "/hooks/git";

/// Larger bodies are refused unread. A push payload lists at most 20 commits (GitHub) and is
/// a few kB; a megabyte is far beyond any real one and small enough not to matter in memory.
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;

type HmacSha256 = Hmac<Sha256>;

/// The Git host that sent a webhook. Forgejo speaks Gitea's protocol and counts as Gitea.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookProvider {
    GitHub,
    GitLab,
    Gitea,
}

impl fmt::Display for WebhookProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WebhookProvider::GitHub => "GitHub",
            WebhookProvider::GitLab => "GitLab",
            WebhookProvider::Gitea => "Gitea",
        })
    }
}

/// What the receiver accepts.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// The branch Serin follows: `main` or `refs/heads/main`.
    pub branch: String,
    /// The secret configured on the Git host's webhook. Empty means every request is refused:
    /// an unauthenticated receiver would let anyone on the network start syncs.
    pub secret: Secret,
    /// Larger request bodies get 413 ([`DEFAULT_MAX_BODY`]).
    pub max_body: usize,
}

impl WebhookConfig {
    pub fn new(branch: impl Into<String>, secret: Secret) -> WebhookConfig {
        WebhookConfig {
            branch: branch.into(),
            secret,
            max_body: DEFAULT_MAX_BODY,
        }
    }
}

/// The receiver for [`WEBHOOK_PATH`], to merge into Serin's HTTP server.
pub fn router(config: WebhookConfig, tx: Sender<SyncRequest>) -> Router {
    let branch = config.branch.trim();
    let branch = branch.strip_prefix("refs/heads/").unwrap_or(branch);
    if config.secret.expose().is_empty() {
        tracing::error!(
            "the push-webhook secret is empty: {WEBHOOK_PATH} will refuse every request; set the same secret here and on the Git host's webhook"
        );
    }
    let receiver = Receiver {
        branch_ref: format!("refs/heads/{branch}"),
        secret: config.secret,
        max_body: config.max_body,
        tx,
    };
    Router::new()
        .route(WEBHOOK_PATH, post(receive))
        .layer(DefaultBodyLimit::max(config.max_body))
        .with_state(Arc::new(receiver))
}

struct Receiver {
    branch_ref: String,
    secret: Secret,
    max_body: usize,
    tx: Sender<SyncRequest>,
}

/// How the sender proves it knows the secret.
enum Proof {
    /// `sha256=<hex>` of HMAC-SHA256(secret, body) (GitHub).
    PrefixedSignature,
    /// `<hex>` of HMAC-SHA256(secret, body) (Gitea, Forgejo).
    Signature,
    /// The secret itself (GitLab).
    Token,
}

/// What the headers say about a request.
struct Origin {
    provider: WebhookProvider,
    event: String,
    /// The header that carries the proof, named in refusals.
    proof_header: &'static str,
    proof_kind: Proof,
    proof: Option<String>,
    delivery: Option<String>,
}

/// The event, proof and delivery headers of each provider, in the order they are tried.
/// Gitea also sends `X-GitHub-Event` (and Forgejo `X-Gitea-Event`) for compatibility, so the
/// most specific header decides.
const PROVIDERS: [(&str, WebhookProvider, &str, &str); 4] = [
    (
        "x-forgejo-event",
        WebhookProvider::Gitea,
        "X-Forgejo-Signature",
        "x-forgejo-delivery",
    ),
    (
        "x-gitea-event",
        WebhookProvider::Gitea,
        "X-Gitea-Signature",
        "x-gitea-delivery",
    ),
    (
        "x-gitlab-event",
        WebhookProvider::GitLab,
        "X-Gitlab-Token",
        "x-gitlab-event-uuid",
    ),
    (
        "x-github-event",
        WebhookProvider::GitHub,
        "X-Hub-Signature-256",
        "x-github-delivery",
    ),
];

const EXPECTED_HEADERS: &str = "X-GitHub-Event, X-Gitlab-Event, X-Gitea-Event or X-Forgejo-Event";

fn identify(headers: &HeaderMap) -> Option<Origin> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    PROVIDERS
        .iter()
        .find_map(|&(event_header, provider, proof_header, delivery_header)| {
            let event = text(event_header)?;
            let proof_kind = match provider {
                WebhookProvider::GitHub => Proof::PrefixedSignature,
                WebhookProvider::Gitea => Proof::Signature,
                WebhookProvider::GitLab => Proof::Token,
            };
            Some(Origin {
                provider,
                event: event.to_string(),
                proof_header,
                proof_kind,
                proof: text(proof_header).map(str::to_string),
                delivery: text(delivery_header).and_then(loggable_id),
            })
        })
}

/// The fields of a push payload Serin reads; GitHub, GitLab and Gitea share them.
#[derive(Deserialize)]
struct PushPayload {
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    after: Option<String>,
    /// GitHub and Gitea mark a branch deletion; GitLab only zeroes `after`.
    #[serde(default)]
    deleted: bool,
    /// GitLab system hooks carry pushes among other kinds.
    object_kind: Option<String>,
}

/// A short plain-text answer, which the Git host shows in its delivery log.
fn answer(status: StatusCode, text: impl fmt::Display) -> Response {
    (status, format!("{text}\n")).into_response()
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let received = Instant::now();
    let Some(origin) = identify(&headers) else {
        return answer(
            StatusCode::BAD_REQUEST,
            format_args!("unknown sender: expected an {EXPECTED_HEADERS} header"),
        );
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            tracing::warn!(provider = %origin.provider, delivery = origin.delivery.as_deref(), "push webhook refused: body over {} bytes", receiver.max_body);
            return answer(
                StatusCode::PAYLOAD_TOO_LARGE,
                format_args!("body larger than {} bytes", receiver.max_body),
            );
        }
        Err(rejection) => {
            return answer(rejection.status(), "cannot read the request body");
        }
    };
    if let Err(reason) = authenticate(&receiver.secret, &origin, &body) {
        // The reason names a header, never its value.
        tracing::warn!(provider = %origin.provider, delivery = origin.delivery.as_deref(), "push webhook refused: {reason}");
        return answer(StatusCode::UNAUTHORIZED, reason);
    }
    let event = origin.event.as_str();
    let is_push = match origin.provider {
        WebhookProvider::GitHub if event == "ping" => {
            tracing::info!(delivery = origin.delivery.as_deref(), "GitHub webhook ping");
            return answer(StatusCode::OK, "pong");
        }
        WebhookProvider::GitHub | WebhookProvider::Gitea => event == "push",
        // "System Hook" carries every kind of event; its payload says which.
        WebhookProvider::GitLab => event == "Push Hook" || event == "System Hook",
    };
    if !is_push {
        tracing::debug!(provider = %origin.provider, event, "push webhook: event ignored");
        return answer(
            StatusCode::ACCEPTED,
            format_args!("ignored: {event:?} is not a push event"),
        );
    }
    let payload: PushPayload = match serde_json::from_slice(&body) {
        Ok(payload) => payload,
        Err(e) => {
            let hint = if body.starts_with(b"payload=") {
                "; the webhook sends form data: set its content type to application/json"
            } else {
                ""
            };
            return answer(
                StatusCode::BAD_REQUEST,
                format_args!("invalid JSON: {e}{hint}"),
            );
        }
    };
    if payload.object_kind.as_deref().is_some_and(|k| k != "push") {
        return answer(
            StatusCode::ACCEPTED,
            format_args!(
                "ignored: {:?} is not a push event",
                payload.object_kind.unwrap_or_default()
            ),
        );
    }
    let Some(git_ref) = payload.git_ref.as_deref() else {
        return answer(StatusCode::BAD_REQUEST, "push payload without \"ref\"");
    };
    if git_ref != receiver.branch_ref {
        let what = match git_ref.strip_prefix("refs/tags/") {
            Some(tag) => format!("tag {tag:?}"),
            None => format!("push to {git_ref:?}"),
        };
        tracing::debug!(provider = %origin.provider, "push webhook: {what} ignored");
        return answer(
            StatusCode::ACCEPTED,
            format_args!("ignored: {what}; Serin follows {}", receiver.branch_ref),
        );
    }
    let after = payload.after.as_deref().and_then(commit_id);
    if payload.deleted
        || after
            .as_deref()
            .is_some_and(|a| a.bytes().all(|b| b == b'0'))
    {
        // Nothing to fetch; the next poll reports the missing branch where people look.
        tracing::warn!(provider = %origin.provider, delivery = origin.delivery.as_deref(), "push webhook: {} was deleted on the Git host", receiver.branch_ref);
        return answer(
            StatusCode::ACCEPTED,
            format_args!("ignored: {} was deleted", receiver.branch_ref),
        );
    }
    let reason = TriggerReason::Webhook {
        provider: origin.provider,
        after,
        delivery: origin.delivery,
    };
    tracing::info!("sync requested: {reason}");
    match request_sync(&receiver.tx, SyncRequest { reason, received }) {
        Requested::Sent => answer(StatusCode::ACCEPTED, "sync requested"),
        Requested::AlreadyPending => answer(
            StatusCode::ACCEPTED,
            "sync requested (one is already pending)",
        ),
        Requested::Closed => answer(StatusCode::SERVICE_UNAVAILABLE, "Serin is stopping"),
    }
}

/// Checks the request's proof of the secret. The error is the answer to send: it names the
/// header at fault and never its content.
fn authenticate(secret: &Secret, origin: &Origin, body: &[u8]) -> Result<(), String> {
    let secret = secret.expose().as_bytes();
    let header = origin.proof_header;
    if secret.is_empty() {
        return Err("Serin has no webhook secret configured".into());
    }
    let Some(proof) = origin.proof.as_deref() else {
        return Err(format!("missing {header}"));
    };
    let signature = match origin.proof_kind {
        Proof::Token => None,
        Proof::PrefixedSignature => Some(proof.strip_prefix("sha256=")),
        Proof::Signature => Some(Some(proof)),
    };
    let verified = match signature {
        None => token_matches(proof.as_bytes(), secret),
        Some(hex) => {
            let Some(signature) = hex.and_then(decode_hex) else {
                return Err(format!("malformed {header}"));
            };
            signature_matches(secret, body, &signature)
        }
    };
    if verified {
        Ok(())
    } else {
        Err(format!("{header} does not match the configured secret"))
    }
}

/// Whether `signature` is HMAC-SHA256(secret, body), compared in constant time.
fn signature_matches(secret: &[u8], body: &[u8], signature: &[u8]) -> bool {
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(signature).is_ok()
}

/// Whether a GitLab token equals the secret, in constant time: both are reduced to an HMAC
/// under one fixed key, and the two digests are compared with `verify_slice`, which hides
/// where they differ and how long the secret is.
fn token_matches(token: &[u8], secret: &[u8]) -> bool {
    const KEY: &[u8] = b"serin webhook token comparison";
    let (Ok(mut expected), Ok(mut given)) = (
        HmacSha256::new_from_slice(KEY),
        HmacSha256::new_from_slice(KEY),
    ) else {
        return false;
    };
    expected.update(secret);
    given.update(token);
    given
        .verify_slice(&expected.finalize().into_bytes())
        .is_ok()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    if bytes.is_empty() || !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

/// A commit id from the payload, if it looks like one (SHA-1 or SHA-256 hex): it ends up in
/// logs and the ledger, so anything else is dropped rather than copied there.
fn commit_id(text: &str) -> Option<String> {
    let ok = matches!(text.len(), 40 | 64) && text.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| text.to_ascii_lowercase())
}

/// A delivery id, if it is short printable ASCII (a UUID or a number in practice).
fn loggable_id(text: &str) -> Option<String> {
    let ok = !text.is_empty() && text.len() <= 128 && text.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| text.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    const SECRET: &str = "It's a Secret to Everybody";
    const AFTER: &str = "1481a2de7b2a7d02428ad93446ab166be7793fbb";

    fn sign(secret: &str, body: &[u8]) -> String {
        let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn push(git_ref: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "ref": git_ref,
            "before": "0000000000000000000000000000000000000000",
            "after": AFTER,
            "repository": {"full_name": "team/config"},
            "commits": [{"id": AFTER, "message": "podinfo 6.0.1"}],
        }))
        .unwrap()
    }

    #[test]
    fn signatures_follow_githubs_documented_example() {
        // From GitHub's "Validating webhook deliveries".
        let want = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(sign(SECRET, b"Hello, World!"), want);
        let sig = decode_hex(want).unwrap();
        assert!(signature_matches(SECRET.as_bytes(), b"Hello, World!", &sig));
        assert!(!signature_matches(
            SECRET.as_bytes(),
            b"Hello, World?",
            &sig
        ));
        assert!(!signature_matches(
            b"another secret",
            b"Hello, World!",
            &sig
        ));
        assert!(!signature_matches(
            SECRET.as_bytes(),
            b"Hello, World!",
            &sig[..31]
        ));
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(token_matches(b"s3cret", b"s3cret"));
        assert!(!token_matches(b"s3cre", b"s3cret"));
        assert!(!token_matches(b"s3cret!", b"s3cret"));
        assert!(!token_matches(b"", b"s3cret"));
    }

    #[test]
    fn hex_and_ids_from_the_network_are_checked() {
        assert_eq!(decode_hex("00ff7A"), Some(vec![0, 255, 122]));
        for bad in ["", "0", "zz", "0g", "00 "] {
            assert_eq!(decode_hex(bad), None, "{bad:?}");
        }
        assert_eq!(commit_id(AFTER).as_deref(), Some(AFTER));
        assert_eq!(commit_id(&AFTER.to_uppercase()).as_deref(), Some(AFTER));
        assert_eq!(commit_id("1481a2de"), None);
        assert_eq!(commit_id(&format!("{}\n", &AFTER[..39])), None);
        assert_eq!(
            loggable_id("72d3162e-cc78-11e3-81ab-4c9367dc0958").as_deref(),
            Some("72d3162e-cc78-11e3-81ab-4c9367dc0958")
        );
        assert_eq!(loggable_id("a b"), None);
        assert_eq!(loggable_id(&"x".repeat(129)), None);
    }

    /// A receiver on 127.0.0.1 following `main`, and the channel it sends on (capacity 1,
    /// so a second request finds a sync pending).
    async fn serve(config: WebhookConfig) -> (String, mpsc::Receiver<SyncRequest>) {
        crate::crypto::install_default_provider();
        let (tx, rx) = mpsc::channel(1);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router(config, tx);
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}{WEBHOOK_PATH}"), rx)
    }

    async fn serve_main() -> (String, mpsc::Receiver<SyncRequest>) {
        serve(WebhookConfig::new("main", Secret::new(SECRET))).await
    }

    async fn post(url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, String) {
        let mut request = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    async fn github(url: &str, event: &str, signature: &str, body: Vec<u8>) -> (u16, String) {
        let headers = [
            ("X-GitHub-Event", event),
            ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            ("X-Hub-Signature-256", signature),
        ];
        post(url, &headers, body).await
    }

    fn github_signature(body: &[u8]) -> String {
        format!("sha256={}", sign(SECRET, body))
    }

    #[tokio::test]
    async fn github_push_to_the_branch_requests_a_sync() {
        let (url, mut rx) = serve_main().await;
        let body = push("refs/heads/main");
        let (status, text) = github(&url, "push", &github_signature(&body), body).await;
        assert_eq!((status, text.as_str()), (202, "sync requested\n"));
        let request = rx.try_recv().unwrap();
        assert_eq!(
            request.reason,
            TriggerReason::Webhook {
                provider: WebhookProvider::GitHub,
                after: Some(AFTER.into()),
                delivery: Some("72d3162e-cc78-11e3-81ab-4c9367dc0958".into()),
            }
        );
        // The channel holds one request: the next push finds a sync pending and still gets
        // its answer at once.
        let body = push("refs/heads/main");
        let (status, text) = github(&url, "push", &github_signature(&body), body).await;
        assert_eq!(status, 202);
        assert_eq!(text, "sync requested\n");
        let body = push("refs/heads/main");
        let (status, text) = github(&url, "push", &github_signature(&body), body).await;
        assert_eq!(
            (status, text.as_str()),
            (202, "sync requested (one is already pending)\n")
        );
    }

    #[tokio::test]
    async fn github_bad_or_missing_signatures_are_refused_and_send_nothing() {
        let (url, mut rx) = serve_main().await;
        let body = push("refs/heads/main");
        let wrong_secret = format!("sha256={}", sign("not the secret", &body));
        // A valid signature of another body: a replayed header with a forged payload.
        let other_body = github_signature(&push("refs/heads/other"));
        let no_prefix = sign(SECRET, &body);
        let cases = [
            (
                wrong_secret.as_str(),
                "X-Hub-Signature-256 does not match the configured secret\n",
            ),
            (
                other_body.as_str(),
                "X-Hub-Signature-256 does not match the configured secret\n",
            ),
            (no_prefix.as_str(), "malformed X-Hub-Signature-256\n"),
            ("sha256=not-hex", "malformed X-Hub-Signature-256\n"),
        ];
        for (signature, want) in cases {
            let (status, text) = github(&url, "push", signature, body.clone()).await;
            assert_eq!((status, text.as_str()), (401, want));
            assert!(
                !text.contains(signature),
                "the answer must not echo the signature"
            );
        }
        let headers = [("X-GitHub-Event", "push")];
        let (status, text) = post(&url, &headers, body.clone()).await;
        assert_eq!(
            (status, text.as_str()),
            (401, "missing X-Hub-Signature-256\n")
        );
        assert!(
            rx.try_recv().is_err(),
            "nothing may be sent for a refused request"
        );
    }

    #[tokio::test]
    async fn github_other_branches_tags_events_and_pings() {
        let (url, mut rx) = serve_main().await;
        let cases = [
            (
                "push",
                push("refs/heads/feature"),
                202,
                "ignored: push to \"refs/heads/feature\"; Serin follows refs/heads/main\n",
            ),
            (
                "push",
                push("refs/tags/v1.0.0"),
                202,
                "ignored: tag \"v1.0.0\"; Serin follows refs/heads/main\n",
            ),
            (
                "push",
                push("refs/heads/main-2"),
                202,
                "ignored: push to \"refs/heads/main-2\"; Serin follows refs/heads/main\n",
            ),
            (
                "issues",
                b"{}".to_vec(),
                202,
                "ignored: \"issues\" is not a push event\n",
            ),
            (
                "ping",
                br#"{"zen":"Keep it logically awesome.","hook_id":1}"#.to_vec(),
                200,
                "pong\n",
            ),
        ];
        for (event, body, want_status, want_text) in cases {
            let signature = github_signature(&body);
            let (status, text) = github(&url, event, &signature, body).await;
            assert_eq!((status, text.as_str()), (want_status, want_text), "{event}");
        }
        // Deleting the branch gives nothing to fetch.
        let body = serde_json::to_vec(&serde_json::json!({
            "ref": "refs/heads/main", "after": "0000000000000000000000000000000000000000", "deleted": true,
        }))
        .unwrap();
        let (status, text) = github(&url, "push", &github_signature(&body), body).await;
        assert_eq!(
            (status, text.as_str()),
            (202, "ignored: refs/heads/main was deleted\n")
        );
        // A ping with a bad signature is refused like anything else.
        let (status, _) = github(&url, "ping", "sha256=00", b"{}".to_vec()).await;
        assert_eq!(status, 401);
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn the_branch_may_be_configured_as_a_full_ref() {
        let (url, mut rx) = serve(WebhookConfig::new(
            "refs/heads/release",
            Secret::new(SECRET),
        ))
        .await;
        let body = push("refs/heads/release");
        let (status, _) = github(&url, "push", &github_signature(&body), body).await;
        assert_eq!(status, 202);
        assert!(rx.try_recv().is_ok());
    }

    #[tokio::test]
    async fn gitea_and_forgejo_sign_without_a_prefix() {
        let (url, mut rx) = serve_main().await;
        let body = push("refs/heads/main");
        let signature = sign(SECRET, &body);
        // Gitea also sends GitHub's headers; its own decide.
        let gitea = [
            ("X-Gitea-Event", "push"),
            ("X-Gitea-Delivery", "c5e2a4b1-1111-2222-3333-444455556666"),
            ("X-Gitea-Signature", signature.as_str()),
            ("X-GitHub-Event", "push"),
        ];
        let (status, _) = post(&url, &gitea, body.clone()).await;
        assert_eq!(status, 202);
        assert_eq!(
            rx.try_recv().unwrap().reason,
            TriggerReason::Webhook {
                provider: WebhookProvider::Gitea,
                after: Some(AFTER.into()),
                delivery: Some("c5e2a4b1-1111-2222-3333-444455556666".into()),
            }
        );
        let forgejo = [
            ("X-Forgejo-Event", "push"),
            ("X-Forgejo-Delivery", "42"),
            ("X-Forgejo-Signature", signature.as_str()),
            ("X-Gitea-Event", "push"),
        ];
        let (status, _) = post(&url, &forgejo, body.clone()).await;
        assert_eq!(status, 202);
        let reason = rx.try_recv().unwrap().reason;
        assert!(
            matches!(reason, TriggerReason::Webhook { provider: WebhookProvider::Gitea, delivery: Some(d), .. } if d == "42")
        );

        let wrong = sign("wrong", &body);
        let bad = [
            ("X-Gitea-Event", "push"),
            ("X-Gitea-Signature", wrong.as_str()),
        ];
        let (status, text) = post(&url, &bad, body.clone()).await;
        assert_eq!(
            (status, text.as_str()),
            (
                401,
                "X-Gitea-Signature does not match the configured secret\n"
            )
        );
        let (status, text) = post(&url, &[("X-Gitea-Event", "push")], body).await;
        assert_eq!(
            (status, text.as_str()),
            (401, "missing X-Gitea-Signature\n")
        );
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn gitlab_sends_the_secret_as_a_token() {
        let (url, mut rx) = serve_main().await;
        let body = serde_json::to_vec(&serde_json::json!({
            "object_kind": "push", "event_name": "push",
            "before": "95790bf891e76fee5e1747ab589903a6a1f80f22",
            "after": AFTER, "ref": "refs/heads/main", "checkout_sha": AFTER,
        }))
        .unwrap();
        let good = [
            ("X-Gitlab-Event", "Push Hook"),
            ("X-Gitlab-Token", SECRET),
            (
                "X-Gitlab-Event-UUID",
                "13792a34-cac6-4fda-95a8-c58e00a3954e",
            ),
        ];
        let (status, _) = post(&url, &good, body.clone()).await;
        assert_eq!(status, 202);
        assert_eq!(
            rx.try_recv().unwrap().reason,
            TriggerReason::Webhook {
                provider: WebhookProvider::GitLab,
                after: Some(AFTER.into()),
                delivery: Some("13792a34-cac6-4fda-95a8-c58e00a3954e".into()),
            }
        );
        let wrong = [
            ("X-Gitlab-Event", "Push Hook"),
            ("X-Gitlab-Token", "It's a Secret to Everybody!"),
        ];
        let (status, text) = post(&url, &wrong, body.clone()).await;
        assert_eq!(
            (status, text.as_str()),
            (401, "X-Gitlab-Token does not match the configured secret\n")
        );
        let (status, _) = post(&url, &[("X-Gitlab-Event", "Push Hook")], body.clone()).await;
        assert_eq!(status, 401);
        assert!(rx.try_recv().is_err());

        let tag = serde_json::to_vec(&serde_json::json!({
            "object_kind": "tag_push", "ref": "refs/tags/v1", "after": AFTER,
        }))
        .unwrap();
        let tag_headers = [
            ("X-Gitlab-Event", "Tag Push Hook"),
            ("X-Gitlab-Token", SECRET),
        ];
        let (status, text) = post(&url, &tag_headers, tag.clone()).await;
        assert_eq!(
            (status, text.as_str()),
            (202, "ignored: \"Tag Push Hook\" is not a push event\n")
        );
        let system = [
            ("X-Gitlab-Event", "System Hook"),
            ("X-Gitlab-Token", SECRET),
        ];
        let (status, text) = post(&url, &system, tag).await;
        assert_eq!(
            (status, text.as_str()),
            (202, "ignored: \"tag_push\" is not a push event\n")
        );
        let (status, _) = post(&url, &system, body).await;
        assert_eq!(status, 202);
        assert!(rx.try_recv().is_ok(), "a system hook's push counts");
    }

    #[tokio::test]
    async fn unknown_senders_oversize_bodies_and_bad_json() {
        let mut config = WebhookConfig::new("main", Secret::new(SECRET));
        config.max_body = 4096;
        let (url, mut rx) = serve(config).await;

        let (status, text) = post(
            &url,
            &[("X-Hub-Signature-256", "sha256=00")],
            push("refs/heads/main"),
        )
        .await;
        assert_eq!(
            (status, text.as_str()),
            (
                400,
                "unknown sender: expected an X-GitHub-Event, X-Gitlab-Event, X-Gitea-Event or X-Forgejo-Event header\n"
            )
        );

        let big = vec![b' '; 4097];
        let signature = github_signature(&big);
        let (status, text) = github(&url, "push", &signature, big).await;
        assert_eq!(
            (status, text.as_str()),
            (413, "body larger than 4096 bytes\n")
        );

        let broken = b"{\"ref\": \"refs/heads/main\",".to_vec();
        let (status, text) = github(&url, "push", &github_signature(&broken), broken).await;
        assert_eq!(status, 400);
        assert!(text.starts_with("invalid JSON: "), "{text}");

        let form = b"payload=%7B%22ref%22%3A%22refs%2Fheads%2Fmain%22%7D".to_vec();
        let (status, text) = github(&url, "push", &github_signature(&form), form).await;
        assert_eq!(status, 400);
        assert!(
            text.ends_with("set its content type to application/json\n"),
            "{text}"
        );

        let no_ref = b"{\"after\": \"1481a2de7b2a7d02428ad93446ab166be7793fbb\"}".to_vec();
        let (status, _) = github(&url, "push", &github_signature(&no_ref), no_ref).await;
        assert_eq!(status, 400);
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn an_empty_secret_refuses_everything() {
        let (url, mut rx) = serve(WebhookConfig::new("main", Secret::new(""))).await;
        let body = push("refs/heads/main");
        let signature = format!("sha256={}", sign("", &body));
        let (status, text) = github(&url, "push", &signature, body).await;
        assert_eq!(
            (status, text.as_str()),
            (401, "Serin has no webhook secret configured\n")
        );
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn only_post_is_served() {
        let (url, _rx) = serve_main().await;
        crate::crypto::install_default_provider();
        let response = reqwest::Client::new().get(&url).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 405);
    }
}
