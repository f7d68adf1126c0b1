//! Checks that the checked-in header `include/ko.h` is exactly what cbindgen makes of this crate
//! now, and that every option of the core has its C setter and its C++ builder method.

use std::path::Path;

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn generated_header() -> Vec<u8> {
    let config = cbindgen::Config::from_file(crate_dir().join("cbindgen.toml")).expect("bindings/c/cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_crate(crate_dir())
        .with_config(config)
        .generate()
        .expect("cbindgen cannot generate ko.h");
    let mut header = Vec::new();
    bindings.write(&mut header);
    header
}

#[test]
fn header_is_current() {
    let path = crate_dir().join("include/ko.h");
    let generated = generated_header();
    if std::env::var_os("KO_UPDATE_HEADER").is_some() {
        std::fs::write(&path, &generated).expect("cannot write include/ko.h");
    }
    let checked_in = std::fs::read(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "bindings/c/include/ko.h is stale: regenerate it with `KO_UPDATE_HEADER=1 cargo test -p ko-ffi header`"
    );
}

#[test]
fn every_option_has_a_c_setter_and_a_cpp_method() {
    let header = std::fs::read_to_string(crate_dir().join("include/ko.h")).unwrap();
    let hpp = std::fs::read_to_string(crate_dir().join("../cpp/include/ko.hpp")).unwrap();
    for name in ko_core::Options::names() {
        assert!(header.contains(&format!("*ko_options_set_{name}(")), "ko.h has no ko_options_set_{name}");
        assert!(hpp.contains(&format!("Options &{name}(")), "ko.hpp has no ko::Options::{name}()");
    }
}
