//! Fuzzes what ko reads for credentials: a docker `config.json` (or podman `auth.json`) and a
//! credential helper's output. Any bytes are taken or refused (the refusal never repeats the
//! file's text, which holds secrets); a taken file answers lookups for any registry without a
//! panic, with the helper answering whatever the fuzzer says.
//!
//! Input: the file, the helper's output, the registry and the repository, separated by 0xFF
//! bytes (which UTF-8 text never holds).
#![no_main]

use ko_core::registry::auth::{Credential, HelperRunner, lookup_docker_config, parse_config, parse_helper_output};
use ko_core::Result;
use libfuzzer_sys::fuzz_target;

struct Helper(Option<Credential>);

impl HelperRunner for Helper {
    fn get(&self, _helper: &str, _server: &str) -> Result<Option<Credential>> {
        Ok(self.0.clone())
    }
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|b| *b == 0xff);
    let (config, helper_out) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let registry = String::from_utf8_lossy(parts.next().unwrap_or(b"registry.example.com"));
    let repository = String::from_utf8_lossy(parts.next().unwrap_or(b"team/app"));
    let helper = match parse_helper_output(helper_out) {
        Ok(c) => Helper(c),
        Err(why) => {
            assert!(why.len() < 64, "the reason does not echo the output: {why}");
            Helper(None)
        }
    };
    match parse_config(config) {
        Ok(value) => {
            let found = lookup_docker_config(&value, &registry, &repository, &helper)
                .expect("a helper that answers never fails the lookup");
            if let Some(Credential::Basic { username, .. }) = &found {
                assert!(!username.is_empty() || helper.0.is_some());
            }
        }
        Err(why) => {
            assert!(why.starts_with(':'), "{why}");
            assert!(why.len() < 80, "the reason does not echo the file: {why}");
        }
    }
});
