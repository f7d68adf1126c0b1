//! Fuzzes the parsers of what a registry's headers say: `WWW-Authenticate` challenges (schemes and
//! parameter names come out lower-cased and non-empty) and `Retry-After` (seconds or an HTTP
//! date with a four-digit year, never a panic).
#![no_main]

use std::time::{Duration, SystemTime};

use ko_core::registry::auth::parse_www_authenticate;
use ko_core::registry::retry::parse_retry_after;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for c in parse_www_authenticate(text) {
        assert!(!c.scheme.is_empty() && !c.scheme.contains(char::is_whitespace), "{c:?}");
        assert_eq!(c.scheme, c.scheme.to_ascii_lowercase());
        for (k, _) in &c.params {
            assert_eq!(k, &k.to_ascii_lowercase(), "{c:?}");
        }
    }
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    if let Some(wait) = parse_retry_after(text, now)
        && !text.trim().chars().all(|c| c.is_ascii_digit())
    {
        // An HTTP date: at most until the end of year 9999, the last an IMF-fixdate can name.
        assert!(wait <= Duration::from_secs(253_402_300_800 - 1_700_000_000), "{text:?} → {wait:?}");
    }
});
