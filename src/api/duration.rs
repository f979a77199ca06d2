//! Flagger's interval strings.
//!
//! Two rules meet here. The CRD only admits intervals matching `^[0-9]+(m|s)` (a prefix
//! match: `1m30s` and `500ms` pass, `1h` and `10x` do not), while the controller parses the
//! string with Go's `time.ParseDuration` and quietly falls back to a default when that fails.
//! Serin checks both so that a user learns about a bad interval from `serin validate`
//! instead of from a canary that ticks every minute for no visible reason.

use std::time::Duration;

/// Flagger's analysis interval when `interval` is empty or not a duration.
pub const DEFAULT_ANALYSIS_INTERVAL: Duration = Duration::from_secs(60);

/// Flagger never ticks faster than this, whatever the canary asks for.
pub const MIN_ANALYSIS_INTERVAL: Duration = Duration::from_secs(10);

/// The window of builtin metrics (`request-success-rate`, `request-duration`) without an
/// `interval`. Template metrics get no such default.
pub const DEFAULT_BUILTIN_METRIC_INTERVAL: &str = "1m";

/// A webhook without a usable `timeout` waits this long.
pub const DEFAULT_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a string is not a Go duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("{0:?} is empty, not a duration")]
    Empty(String),
    #[error("{0:?} is not a duration")]
    Invalid(String),
    #[error("{value:?} has a missing unit (use ns, us, ms, s, m or h)")]
    MissingUnit { value: String },
    #[error("{value:?} has unknown unit {unit:?} (use ns, us, ms, s, m or h)")]
    UnknownUnit { value: String, unit: String },
    #[error("{0:?} is negative")]
    Negative(String),
    #[error("{0:?} is too large")]
    Overflow(String),
}

/// Whether `value` passes the CRD pattern `^[0-9]+(m|s)` used for analysis, metric and
/// webhook intervals.
pub fn is_flagger_interval(value: &str) -> bool {
    let digits = value.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && matches!(value.as_bytes().get(digits), Some(b'm' | b's'))
}

/// Parses a duration the way Go's `time.ParseDuration` does (`300ms`, `1.5h`, `2h45m`, `0`).
///
/// Negative durations are rejected: every Flagger duration is a wait or a window.
pub fn parse_go_duration(value: &str) -> Result<Duration, DurationError> {
    let original = value;
    let invalid = || DurationError::Invalid(original.to_string());
    let mut rest = value;
    let mut negative = false;
    if let Some(stripped) = rest.strip_prefix('-') {
        negative = true;
        rest = stripped;
    } else if let Some(stripped) = rest.strip_prefix('+') {
        rest = stripped;
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(if original.is_empty() {
            DurationError::Empty(original.to_string())
        } else {
            invalid()
        });
    }

    let mut total_nanos: u128 = 0;
    while !rest.is_empty() {
        let bytes = rest.as_bytes();
        if !(bytes[0] == b'.' || bytes[0].is_ascii_digit()) {
            return Err(invalid());
        }
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after_int) = rest.split_at(int_len);
        let mut frac_part = "";
        let mut after_number = after_int;
        if let Some(after_dot) = after_int.strip_prefix('.') {
            let frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
            let (frac, after_frac) = after_dot.split_at(frac_len);
            frac_part = frac;
            after_number = after_frac;
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(invalid());
        }
        let unit_len = after_number
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(after_number.len(), |(i, _)| i);
        if unit_len == 0 {
            return Err(DurationError::MissingUnit {
                value: original.to_string(),
            });
        }
        let (unit, after_unit) = after_number.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "\u{00b5}s" | "\u{03bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            _ => {
                return Err(DurationError::UnknownUnit {
                    value: original.to_string(),
                    unit: unit.to_string(),
                });
            }
        };
        let overflow = || DurationError::Overflow(original.to_string());
        let whole: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| overflow())?
        };
        let mut nanos = whole.checked_mul(unit_nanos).ok_or_else(overflow)?;
        if !frac_part.is_empty() {
            // Go keeps at most the precision a u64 can hold; 18 digits is plenty for nanos.
            let digits = &frac_part[..frac_part.len().min(18)];
            let numerator: u128 = digits.parse().map_err(|_| overflow())?;
            let denominator = 10u128.pow(digits.len() as u32);
            nanos = nanos
                .checked_add(numerator * unit_nanos / denominator)
                .ok_or_else(overflow)?;
        }
        total_nanos = total_nanos.checked_add(nanos).ok_or_else(overflow)?;
        rest = after_unit;
    }
    if negative && total_nanos > 0 {
        return Err(DurationError::Negative(original.to_string()));
    }
    let secs = u64::try_from(total_nanos / 1_000_000_000)
        .map_err(|_| DurationError::Overflow(original.to_string()))?;
    Ok(Duration::new(secs, (total_nanos % 1_000_000_000) as u32))
}

/// The interval an analysis actually ticks at.
///
/// Flagger treats an empty or unparsable interval as 60s and raises anything shorter than
/// 10s to 10s; `minimum` is that floor, so a test harness (or a future flag) can lower it
/// without forking the rule.
pub fn effective_interval(raw: Option<&str>, minimum: Duration) -> Duration {
    let parsed = raw
        .filter(|s| !s.is_empty())
        .and_then(|s| parse_go_duration(s).ok())
        .unwrap_or(DEFAULT_ANALYSIS_INTERVAL);
    parsed.max(minimum)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn crd_pattern_is_a_prefix_match() {
        let table = [
            ("1m", true),
            ("30s", true),
            ("10s", true),
            ("1m30s", true),
            ("500ms", true),
            ("5min", true),
            ("10x", false),
            ("1h", false),
            ("m", false),
            ("", false),
            (" 1m", false),
            ("1.5m", false),
        ];
        for (value, want) in table {
            assert_eq!(is_flagger_interval(value), want, "{value:?}");
        }
    }

    #[test]
    fn parses_go_durations() {
        let ms = Duration::from_millis;
        let table = [
            ("0", Duration::ZERO),
            ("1m", ms(60_000)),
            ("30s", ms(30_000)),
            ("1m30s", ms(90_000)),
            ("500ms", ms(500)),
            ("1.5h", ms(5_400_000)),
            ("2h45m", ms(9_900_000)),
            ("+5s", ms(5_000)),
            (".5s", ms(500)),
            ("1.s", ms(1_000)),
            ("100us", Duration::from_micros(100)),
            ("100µs", Duration::from_micros(100)),
            ("7ns", Duration::from_nanos(7)),
            ("-0s", Duration::ZERO),
        ];
        for (value, want) in table {
            assert_eq!(parse_go_duration(value), Ok(want), "{value:?}");
        }
    }

    #[test]
    fn rejects_what_go_rejects() {
        assert_eq!(
            parse_go_duration(""),
            Err(DurationError::Empty(String::new()))
        );
        assert_eq!(
            parse_go_duration("10x"),
            Err(DurationError::UnknownUnit {
                value: "10x".into(),
                unit: "x".into()
            })
        );
        assert_eq!(
            parse_go_duration("5min"),
            Err(DurationError::UnknownUnit {
                value: "5min".into(),
                unit: "min".into()
            })
        );
        assert_eq!(
            parse_go_duration("10"),
            Err(DurationError::MissingUnit { value: "10".into() })
        );
        assert_eq!(
            parse_go_duration("-1s"),
            Err(DurationError::Negative("-1s".into()))
        );
        for bad in ["s", ".s", "1m 30s", "-", "ms5"] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?}");
        }
        let message = parse_go_duration("10x").unwrap_err().to_string();
        assert!(message.contains("unknown unit \"x\""), "{message}");
    }

    #[test]
    fn effective_interval_follows_flagger() {
        let s = Duration::from_secs;
        let table = [
            (None, s(60)),
            (Some(""), s(60)),
            (Some("10x"), s(60)),
            (Some("1m"), s(60)),
            (Some("5s"), s(10)),
            (Some("500ms"), s(10)),
            (Some("15s"), s(15)),
            (Some("2m"), s(120)),
        ];
        for (raw, want) in table {
            assert_eq!(
                effective_interval(raw, MIN_ANALYSIS_INTERVAL),
                want,
                "{raw:?}"
            );
        }
        assert_eq!(effective_interval(Some("2s"), s(1)), s(2));
        assert_eq!(
            effective_interval(Some("500ms"), Duration::ZERO),
            Duration::from_millis(500)
        );
    }
}
