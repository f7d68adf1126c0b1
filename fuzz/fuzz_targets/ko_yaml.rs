//! Fuzzes the `.ko.yaml` loader: any text either parses into a config or fails with a message
//! naming the file, never a panic; a parsed config answers base-image lookups.
#![no_main]

use std::path::Path;

use ko_core::config::KoConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match KoConfig::parse(text, Path::new("/fuzz/.ko.yaml")) {
        Ok(config) => {
            let _ = config.base_for("example.com/app/cmd/x");
            for key in config.base_image_overrides.keys() {
                assert_eq!(key, &key.to_lowercase(), "override keys are compared lower-cased");
            }
        }
        Err(e) => assert!(e.to_string().contains("/fuzz/.ko.yaml"), "the error names the file: {e}"),
    }
});
