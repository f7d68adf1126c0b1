//! Fuzzes the fast YAML scanner against the parser: wherever the fast scanner accepts a document,
//! the parser accepts it too and reports the same scalars (`check_fast_scan_agrees`).
#![no_main]

use ko_core::resolve::scan::check_fast_scan_agrees;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check_fast_scan_agrees(text);
    }
});
