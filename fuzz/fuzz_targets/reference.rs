//! Fuzzes image reference parsing: `KO_DOCKER_REPO`-style repositories (parse, print, parse
//! again to the same value; a tag and a digest reference of it parse as references), tags, and
//! references as bases name them, which `parse_reference` reads exactly as the crate does.
//! Never a panic.
#![no_main]

use std::str::FromStr;

use ko_core::name::{Repository, parse_reference, validate_tag};
use libfuzzer_sys::fuzz_target;

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(repo) = Repository::parse(text) {
        let printed = repo.to_string();
        let again = Repository::parse(&printed).unwrap_or_else(|e| panic!("{printed:?} does not parse again: {e}"));
        assert_eq!(again, repo, "{text:?} → {printed:?}");
        if !repo.path.is_empty() {
            let tagged = repo.tag("latest").whole();
            oci_client_parse(&tagged);
            oci_client_parse(&repo.digest(DIGEST).whole());
        }
    }
    let _ = validate_tag(text);
    assert_eq!(parse_reference(text), oci_client::Reference::from_str(text), "{text:?}");
});

fn oci_client_parse(reference: &str) {
    if let Err(e) = oci_client::Reference::from_str(reference) {
        panic!("{reference:?}, made from a valid repository, does not parse: {e}");
    }
}
