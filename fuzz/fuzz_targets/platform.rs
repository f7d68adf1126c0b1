//! Fuzzes platform parsing (`--platform`, `defaultPlatforms`): any text parses or is refused with
//! a message naming it; a parsed platform prints back to text that parses to the same platform,
//! and what it asks Go for (GOARM, GOAMD64, GOARM64) is computed without a panic.
#![no_main]

use ko_core::image::Platform;
use ko_core::image::platform::PlatformSelection;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match PlatformSelection::parse(&[text]) {
        Ok(PlatformSelection::Only(list)) => {
            assert!(!list.is_empty());
            for p in list {
                let printed = p.to_string();
                let again = Platform::parse(&printed).unwrap_or_else(|e| panic!("{printed:?} does not parse: {e}"));
                assert_eq!(again, p, "{text:?} → {printed:?}");
                let _ = p.go_variant();
            }
        }
        Ok(PlatformSelection::All) => assert!(text.contains("all")),
        Err(e) => {
            let m = e.to_string();
            assert!(m.contains("platform") || m.contains("`all`"), "{m}");
        }
    }
});
