//! When and how long to wait before trying a registry request again: exponential backoff with
//! jitter, `Retry-After`, a cap on attempts (a lower one on attempts that timed out) and on the
//! total time spent, and which failures are worth another try (connection resets, timeouts, 408,
//! 429, 5xx — not refused connections, TLS failures, answers that are not HTTP, or 4xx answers).

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;

/// How often and how long ko retries one registry operation.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included.
    pub attempts: u32,
    /// Wait before the second attempt; doubled for each further one.
    pub initial: Duration,
    /// The longest single wait (a longer `Retry-After` is cut to this).
    pub max_delay: Duration,
    /// No retry starts after this much time has gone by since the first attempt.
    pub max_total: Duration,
    /// Attempts that may time out: a registry that did not answer within the deadline twice is
    /// not answering.
    pub timeout_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            initial: Duration::from_millis(500),
            max_delay: Duration::from_secs(15),
            max_total: Duration::from_secs(120),
            timeout_attempts: 2,
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (attempt 1 is the first retry): `initial · 2^(n-1)`,
    /// ±20 % jitter, at most `max_delay`; `retry_after` (the server's word) wins when given
    /// (the caller refuses one longer than what is left of `max_total`).
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(d) = retry_after {
            return d;
        }
        let exp = self.initial.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let jitter = 0.8 + fastrand::f64() * 0.4;
        exp.mul_f64(jitter).min(self.max_delay)
    }
}

/// Statuses worth another try: request timeout, too many requests, and server errors (499 and
/// 522 too, as go-containerregistry does).
pub fn retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 499 | 500 | 502 | 503 | 504 | 522)
}

/// Whether a transport failure is worth another try: resets, aborted or half-closed connections
/// and timeouts are; a refused connection, a DNS failure or a TLS failure (bad certificate,
/// plain HTTP on the other end) is not.
pub fn retryable_error(e: &reqwest::Error) -> bool {
    if e.is_builder() || e.is_redirect() || e.is_decode() {
        return false;
    }
    // DNS and TLS failures (rustls: a bad certificate, or plain HTTP answering a handshake with
    // "received corrupt message") fail the same way again, whatever I/O error wraps them.
    const PERMANENT: &[&str] = &[
        "dns error",
        "certificate",
        "invalid peer",
        "corrupt message",
        "fatal alert",
        "peer is incompatible",
        "peer misbehaved",
        // A server answering with something that is not HTTP will do so again.
        "invalid HTTP",
        "message head is too large",
    ];
    let chain = || std::iter::successors(Some(e as &(dyn std::error::Error + 'static)), |c| c.source());
    if chain().any(|c| {
        let text = c.to_string();
        PERMANENT.iter().any(|p| text.contains(p))
    }) {
        return false;
    }
    if let Some(io) = chain().find_map(|c| c.downcast_ref::<std::io::Error>()) {
        use std::io::ErrorKind::*;
        return !matches!(io.kind(), ConnectionRefused | InvalidData | InvalidInput | NotFound | PermissionDenied);
    }
    e.is_timeout() || e.is_request() || e.is_connect() || e.is_body()
}

/// Parses `Retry-After`: delay-seconds or an HTTP date (IMF-fixdate), relative to `now`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    // delta-seconds is `1*DIGIT`: no sign (Rust's integer parsing would take a `+`).
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = parse_http_date(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` → a time.
fn parse_http_date(s: &str) -> Option<SystemTime> {
    let rest = s.split_once(", ")?.1;
    let parts: Vec<&str> = rest.split_whitespace().collect();
    if parts.len() != 5 || parts[4] != "GMT" {
        return None;
    }
    let day: u64 = parts[0].parse().ok()?;
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = MONTHS.iter().position(|m| *m == parts[1])? as u64 + 1;
    // IMF-fixdate has a four-digit year; a longer one would overflow the arithmetic below.
    let year: u64 = parts[2].parse().ok().filter(|y| (1970..=9999).contains(y))?;
    let hms: Vec<u64> = parts[3].split(':').map(|x| x.parse().ok()).collect::<Option<_>>()?;
    if hms.len() != 3 || !(1..=31).contains(&day) || hms[0] > 23 || hms[1] > 59 || hms[2] > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m) = if month <= 2 { (year - 1, month + 9) } else { (year, month - 3) };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let secs = days * 86400 + hms[0] * 3600 + hms[1] * 60 + hms[2];
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784111777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now), Some(Duration::from_secs(10)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", SystemTime::UNIX_EPOCH), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
        // Found by fuzzing: a sign is not delta-seconds; a number too large for u64 is a very long wait.
        assert_eq!(parse_retry_after("+1022012020120260", now), None);
        assert_eq!(parse_retry_after("99999999999999999999999", now), Some(Duration::from_secs(u64::MAX)));
        // Found by fuzzing: a five-digit year meant a wait of 97,000 years; a huge one overflowed.
        assert_eq!(parse_retry_after("Sun, 06 Nov 98941 0:49:37 GMT", now), None);
        assert_eq!(parse_retry_after("Sun, 06 Nov 99999999999999999 0:49:37 GMT", now), None);
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 99:49:37 GMT", now), None);
        assert!(parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now).is_some());
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let p = RetryPolicy::default();
        for _ in 0..50 {
            let d1 = p.delay(1, None);
            assert!(d1 >= Duration::from_millis(400) && d1 <= Duration::from_millis(600), "{d1:?}");
            let d3 = p.delay(3, None);
            assert!(d3 >= Duration::from_millis(1600) && d3 <= Duration::from_millis(2400), "{d3:?}");
            assert!(p.delay(30, None) <= p.max_delay);
        }
        assert_eq!(p.delay(1, Some(Duration::from_secs(2))), Duration::from_secs(2));
        assert_eq!(p.delay(1, Some(Duration::from_secs(60))), Duration::from_secs(60), "the registry's word");
    }

    #[test]
    fn which_statuses_are_retried() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(retryable_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [200, 201, 400, 401, 403, 404, 501] {
            assert!(!retryable_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }
}
