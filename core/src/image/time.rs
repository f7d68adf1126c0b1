//! Times as image configs carry them: RFC 3339 in UTC, as Go's `time.Time` marshals it.

/// The last second RFC 3339 can write (9999-12-31T23:59:59Z); later times, and times before 1970,
/// are refused where a user gives them (`SOURCE_DATE_EPOCH`), since registries and runtimes cannot
/// parse them back.
pub const LAST_RFC3339_SECOND: i64 = 253_402_300_799;

/// RFC 3339 UTC for a Unix time, as Go's `time.Time` marshals it (`1970-01-01T00:00:00Z`).
pub fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

/// Go's zero `time.Time`, which upstream writes when no epoch is set.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_matches_go() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::rfc3339(super::LAST_RFC3339_SECOND), "9999-12-31T23:59:59Z");
    }
}
