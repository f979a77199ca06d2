//! When a webhook call is retried and how long Serin waits in between.
//!
//! Flagger sends webhooks through go-retryablehttp (v0.7.8) with `RetryMax = retries` and
//! everything else at its defaults (reference §6.1, `pkg/controller/webhook.go`):
//!
//! * at most `retries + 1` attempts;
//! * a retry follows a transport error (refused connection, reset, per-attempt timeout) or
//!   a 429 or 5xx status other than 501 (`baseRetryPolicy`); errors that cannot heal by
//!   themselves (an untrusted certificate, too many redirects, a bad scheme) are final;
//! * the wait before retry *n* (counting from 0) is `1s · 2ⁿ` capped at 30 s
//!   (`DefaultBackoff`), except that a 429 or 503 carrying a parsable `Retry-After` waits
//!   exactly that long (seconds or an HTTP date; uncapped, as in go-retryablehttp).
//!
//! The success rule lives here too because it decides the same thing: a final status
//! ≤ 202 passes, anything else (203–299 included) fails.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// go-retryablehttp's `RetryWaitMin`: the first wait.
pub const RETRY_WAIT_MIN: Duration = Duration::from_secs(1);
/// go-retryablehttp's `RetryWaitMax`: no computed wait is longer.
pub const RETRY_WAIT_MAX: Duration = Duration::from_secs(30);

/// Flagger's success rule: `r.StatusCode > 202` is an error, so 203–299 fail too.
pub fn is_success_status(code: u16) -> bool {
    code <= 202
}

/// Whether go-retryablehttp retries a response with this status: 429, and every 5xx (and
/// any nonsense code above 599) except 501 Not Implemented, which will not change.
pub fn is_retryable_status(code: u16) -> bool {
    code == 429 || (code >= 500 && code != 501)
}

/// The wait before retry number `retry_index` (0 for the first retry).
///
/// `retry_after` is what [`retry_after`] made of the response that is being retried; when
/// present it replaces the exponential wait.
pub fn backoff(retry_index: u32, retry_after: Option<Duration>) -> Duration {
    if let Some(wait) = retry_after {
        return wait;
    }
    // min · 2ⁿ, and the cap whenever that is larger or does not fit (Go's float check).
    1u32.checked_shl(retry_index)
        .and_then(|factor| RETRY_WAIT_MIN.checked_mul(factor))
        .map_or(RETRY_WAIT_MAX, |wait| wait.min(RETRY_WAIT_MAX))
}

/// The server's `Retry-After`, honoured only on 429 and 503 as go-retryablehttp does: a
/// non-negative number of seconds, or an RFC 1123 date (a date in the past means retry
/// now). `None` when the status does not qualify or the header does not parse.
pub fn retry_after(status: u16, header: Option<&str>, now: SystemTime) -> Option<Duration> {
    if status != 429 && status != 503 {
        return None;
    }
    let header = header.filter(|h| !h.is_empty())?;
    if let Ok(seconds) = header.parse::<i64>() {
        return u64::try_from(seconds).ok().map(Duration::from_secs);
    }
    let at = parse_rfc1123(header)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Go's `time.Parse(time.RFC1123, …)`: `Mon, 02 Jan 2006 15:04:05 GMT`. HTTP dates are in
/// GMT; like Go with an unknown zone abbreviation, any zone name is read as UTC.
fn parse_rfc1123(text: &str) -> Option<SystemTime> {
    const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut parts = text.split(' ');
    let weekday = parts.next()?.strip_suffix(',')?;
    let day: u32 = two_digits(parts.next()?)?;
    let month_text = parts.next()?;
    let month = MONTHS.iter().position(|m| *m == month_text)? as u32 + 1;
    let year_text = parts.next()?;
    let year: i64 = year_text.parse().ok().filter(|_| year_text.len() == 4)?;
    let mut clock = parts.next()?.split(':');
    let hour: u32 = two_digits(clock.next()?)?;
    let minute: u32 = two_digits(clock.next()?)?;
    let second: u32 = two_digits(clock.next()?)?;
    let zone = parts.next()?;
    let valid = WEEKDAYS.contains(&weekday)
        && clock.next().is_none()
        && parts.next().is_none()
        && zone.len() >= 3
        && zone.bytes().all(|b| b.is_ascii_uppercase())
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60;
    if !valid {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    // A date before 1970 is in the past, which is all a Retry-After needs to know.
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).unwrap_or(0)))
}

fn two_digits(text: &str) -> Option<u32> {
    (text.len() == 2 && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn success_is_at_most_202() {
        for code in [100, 200, 201, 202] {
            assert!(is_success_status(code), "{code}");
        }
        for code in [
            203, 204, 206, 299, 301, 304, 400, 403, 404, 429, 500, 501, 503,
        ] {
            assert!(!is_success_status(code), "{code}");
        }
    }

    #[test]
    fn retried_statuses_are_429_and_5xx_but_501() {
        for code in [429, 500, 502, 503, 504, 599, 999] {
            assert!(is_retryable_status(code), "{code}");
        }
        for code in [200, 202, 203, 301, 400, 401, 403, 404, 408, 428, 430, 501] {
            assert!(!is_retryable_status(code), "{code}");
        }
    }

    #[test]
    fn backoff_doubles_from_one_second_up_to_thirty() {
        let secs: Vec<u64> = (0..8).map(|i| backoff(i, None).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(backoff(31, None), RETRY_WAIT_MAX);
        assert_eq!(backoff(32, None), RETRY_WAIT_MAX);
        assert_eq!(backoff(u32::MAX, None), RETRY_WAIT_MAX);
        // Retry-After replaces the computed wait, above the cap too.
        assert_eq!(backoff(0, Some(Duration::ZERO)), Duration::ZERO);
        assert_eq!(
            backoff(3, Some(Duration::from_secs(120))),
            Duration::from_secs(120)
        );
    }

    #[test]
    fn retry_after_is_read_on_429_and_503_only() {
        let now = UNIX_EPOCH + Duration::from_secs(946_684_000); // 1999-12-31T23:46:40Z
        let cases: &[(u16, Option<&str>, Option<u64>)] = &[
            (429, Some("7"), Some(7)),
            (503, Some("0"), Some(0)),
            (503, Some("+3"), Some(3)),
            (429, Some("-1"), None),
            (429, Some(""), None),
            (429, None, None),
            (429, Some("soon"), None),
            (500, Some("7"), None),
            (502, Some("7"), None),
            // 23:59:59 is 799 s after `now`.
            (503, Some("Fri, 31 Dec 1999 23:59:59 GMT"), Some(799)),
            (503, Some("Fri, 31 Dec 1999 23:00:00 GMT"), Some(0)),
            (503, Some("Fri, 31 Dec 1999 23:59:59 UTC"), Some(799)),
            (503, Some("Fri, 31 Dec 1999 24:00:00 GMT"), None),
            (503, Some("Fri, 31 Feb 1999 23:59:59 GMT"), None),
            (503, Some("31 Dec 1999 23:59:59 GMT"), None),
            (503, Some("Friday, 31-Dec-99 23:59:59 GMT"), None),
        ];
        for (status, header, expected) in cases {
            assert_eq!(
                retry_after(*status, *header, now),
                expected.map(Duration::from_secs),
                "{status} {header:?}"
            );
        }
    }

    #[test]
    fn civil_dates_map_to_unix_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        let t = parse_rfc1123("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(t.duration_since(UNIX_EPOCH).unwrap().as_secs(), 784_111_777);
    }
}
