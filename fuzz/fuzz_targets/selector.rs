//! Fuzzes the label-selector parser (`-l`): any text parses or is refused with a message naming
//! it, never a panic; a parsed selector matches any labels without panicking; and for a valid
//! key `k`, exactly one of `k` and `!k` selects a given set of labels.
//!
//! Input: the selector, then one `key=value` label per line.
#![no_main]

use std::collections::BTreeMap;

use ko_core::resolve::select::Selector;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (selector, rest) = text.split_once('\n').unwrap_or((text, ""));
    let labels: BTreeMap<String, String> = rest
        .lines()
        .map(|l| l.split_once('=').unwrap_or((l, "")))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    match Selector::parse(selector) {
        Ok(parsed) => {
            let _ = parsed.matches(&labels);
        }
        Err(e) => assert!(e.to_string().contains("invalid selector"), "{e}"),
    }
    let key = selector.trim();
    if !key.contains([',', '(', ')', '=', '!', ' '])
        && let (Ok(has), Ok(lacks)) = (Selector::parse(key), Selector::parse(&format!("!{key}")))
    {
        assert_ne!(has.matches(&labels), lacks.matches(&labels), "{key:?} and !{key:?} on {labels:?}");
    }
});
