//! Session-affinity cookies (Flagger reference §4.2, "Session affinity").
//!
//! A user whose request reached the canary gets a cookie `<cookieName>=<10 random letters>`;
//! a route rule matching that cookie keeps them on the canary for the rest of the run. The
//! values live in the Canary status so every tick of one run uses the same cookie.

use std::hash::{BuildHasher, Hasher, RandomState};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::api::{CanaryStatus, SessionAffinity};

/// Length of a generated cookie value (Flagger's `randSeq`).
pub const COOKIE_VALUE_LEN: usize = 10;

/// Where new cookie values come from: random in production, a fixed list in tests.
pub trait CookieValues {
    /// A fresh value of [`COOKIE_VALUE_LEN`] ASCII letters.
    fn next_value(&mut self) -> String;
}

/// Random ASCII letters from a xorshift64* generator.
///
/// The `rand` crate is not a dependency, and these values need no cryptographic strength:
/// they are written in clear into the HTTPRoute spec and the Canary status, and only need to
/// differ between runs so that a previous run's cookie does not pin users to a new canary.
/// The seed mixes the wall clock with std's `RandomState`, whose keys the standard library
/// draws from the operating system's entropy source once per process and then varies per
/// instance, so two routers started in the same nanosecond still differ.
#[derive(Debug, Clone)]
pub struct RandomLetters {
    state: u64,
}

impl RandomLetters {
    pub fn new() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u128(nanos);
        Self::from_seed(hasher.finish())
    }

    /// A deterministic sequence, for tests.
    pub fn from_seed(seed: u64) -> Self {
        // xorshift gets stuck at 0; any other state works.
        RandomLetters {
            state: if seed == 0 {
                0x9E37_79B9_7F4A_7C15
            } else {
                seed
            },
        }
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

impl Default for RandomLetters {
    fn default() -> Self {
        Self::new()
    }
}

const LETTERS: &[u8; 52] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

impl CookieValues for RandomLetters {
    fn next_value(&mut self) -> String {
        (0..COOKIE_VALUE_LEN)
            .map(|_| {
                // The top bits of xorshift64* are the good ones; 52 letters make the modulo
                // bias (2^32 mod 52) negligible for a cookie.
                let index = ((self.next_u64() >> 32) % LETTERS.len() as u64) as usize;
                char::from(LETTERS[index])
            })
            .collect()
    }
}

/// The three cookie fields of the Canary status, as one value the pure route builder reads
/// and returns (`""` and absent are the same: Go has no difference between them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionCookies {
    /// `status.sessionAffinityCookie`: `<cookieName>=<value>` of the current run.
    pub canary: Option<String>,
    /// `status.primarySessionAffinityCookie`: `<primaryCookieName>=<value>`.
    pub primary: Option<String>,
    /// `status.previousSessionAffinityCookie`: the canary cookie of the last run, expired on
    /// the next response that carries it.
    pub previous: Option<String>,
}

fn non_empty(value: &Option<String>) -> Option<String> {
    value.clone().filter(|v| !v.is_empty())
}

impl SessionCookies {
    pub fn from_status(status: &CanaryStatus) -> Self {
        SessionCookies {
            canary: non_empty(&status.session_affinity_cookie),
            primary: non_empty(&status.primary_session_affinity_cookie),
            previous: non_empty(&status.previous_session_affinity_cookie),
        }
    }

    /// Writes the three fields; a cleared cookie is removed from the status.
    pub fn write_to(&self, status: &mut CanaryStatus) {
        status.session_affinity_cookie = self.canary.clone();
        status.primary_session_affinity_cookie = self.primary.clone();
        status.previous_session_affinity_cookie = self.previous.clone();
    }
}

/// `<name>=<value>` for a new cookie.
pub fn new_cookie(name: &str, values: &mut dyn CookieValues) -> String {
    format!("{name}={}", values.next_value())
}

/// The `Set-Cookie` value that issues `cookie` for `max_age` seconds, with the attributes of
/// `sessionAffinity` in Flagger's order: Domain, HttpOnly, Partitioned, Path, SameSite, Secure.
pub fn set_cookie_value(cookie: &str, max_age: i64, affinity: &SessionAffinity) -> String {
    let mut value = format!("{cookie}; Max-Age={max_age}");
    if let Some(domain) = affinity.domain.as_deref().filter(|d| !d.is_empty()) {
        value.push_str("; Domain=");
        value.push_str(domain);
    }
    if affinity.http_only.unwrap_or(false) {
        value.push_str("; HttpOnly");
    }
    if affinity.partitioned.unwrap_or(false) {
        value.push_str("; Partitioned");
    }
    if let Some(path) = affinity.path.as_deref().filter(|p| !p.is_empty()) {
        value.push_str("; Path=");
        value.push_str(path);
    }
    if let Some(same_site) = affinity.same_site.as_deref().filter(|s| !s.is_empty()) {
        value.push_str("; SameSite=");
        value.push_str(same_site);
    }
    if affinity.secure.unwrap_or(false) {
        value.push_str("; Secure");
    }
    value
}

/// The `Cookie` header regex that recognises `cookie` (`<name>=<value>`) in a request:
/// Flagger's `.*<name>.*<value>.*` (the name is not escaped, as in Flagger).
pub fn cookie_regex(cookie: &str) -> String {
    let (name, value) = cookie.split_once('=').unwrap_or((cookie, ""));
    format!(".*{name}.*{value}.*")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn random_letters_are_ten_ascii_letters_and_vary() {
        let mut letters = RandomLetters::new();
        let a = letters.next_value();
        let b = letters.next_value();
        assert_eq!(a.len(), COOKIE_VALUE_LEN);
        assert!(a.bytes().all(|c| c.is_ascii_alphabetic()), "{a}");
        assert_ne!(a, b);
        assert_ne!(
            RandomLetters::new().next_value(),
            RandomLetters::new().next_value()
        );
        // Seeded generators repeat, so builder tests are deterministic.
        assert_eq!(
            RandomLetters::from_seed(7).next_value(),
            RandomLetters::from_seed(7).next_value()
        );
        assert_eq!(RandomLetters::from_seed(0).next_value().len(), 10);
    }

    #[test]
    fn set_cookie_attributes_in_flaggers_order() {
        let minimal = SessionAffinity {
            cookie_name: Some("flagger-cookie".into()),
            ..Default::default()
        };
        assert_eq!(
            set_cookie_value("flagger-cookie=abc", 86400, &minimal),
            "flagger-cookie=abc; Max-Age=86400"
        );
        let full = SessionAffinity {
            cookie_name: Some("c".into()),
            domain: Some("example.com".into()),
            http_only: Some(true),
            partitioned: Some(true),
            path: Some("/".into()),
            same_site: Some("Strict".into()),
            secure: Some(true),
            ..Default::default()
        };
        assert_eq!(
            set_cookie_value("c=xyz", 60, &full),
            "c=xyz; Max-Age=60; Domain=example.com; HttpOnly; Partitioned; Path=/; \
             SameSite=Strict; Secure"
        );
        let off = SessionAffinity {
            http_only: Some(false),
            partitioned: Some(false),
            secure: Some(false),
            domain: Some(String::new()),
            ..Default::default()
        };
        assert_eq!(set_cookie_value("c=1", -1, &off), "c=1; Max-Age=-1");
    }

    #[test]
    fn cookie_regex_is_flaggers() {
        assert_eq!(
            cookie_regex("flagger-cookie=AbCdE"),
            ".*flagger-cookie.*AbCdE.*"
        );
    }

    #[test]
    fn status_round_trip_treats_empty_as_absent() {
        let mut status = CanaryStatus {
            session_affinity_cookie: Some(String::new()),
            primary_session_affinity_cookie: Some("p=1".into()),
            ..Default::default()
        };
        let cookies = SessionCookies::from_status(&status);
        assert_eq!(cookies.canary, None);
        assert_eq!(cookies.primary.as_deref(), Some("p=1"));
        let next = SessionCookies {
            canary: Some("c=2".into()),
            previous: None,
            primary: None,
        };
        next.write_to(&mut status);
        assert_eq!(status.session_affinity_cookie.as_deref(), Some("c=2"));
        assert_eq!(status.primary_session_affinity_cookie, None);
    }
}
