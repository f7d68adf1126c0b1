//! Fuzzes the resolve splicer: for any input, scanning never panics, and the output with the
//! replaced spans taken out equals the input with the original spans taken out.
#![no_main]

use ko_core::resolve::scan::check_splice_invariant;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check_splice_invariant(text);
    }
});
