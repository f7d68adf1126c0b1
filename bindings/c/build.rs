//! Compiles the C++ bridge (`bindings/cpp/src/bridge.rs`, a `#[cxx::bridge]` module of this crate)
//! into libko itself, so that one library serves C and C++.

fn main() {
    cxx_build::bridge("../cpp/src/bridge.rs").include("../cpp/include").std("c++17").compile("ko-cxxbridge");
    println!("cargo:rerun-if-changed=../cpp/src/bridge.rs");
    println!("cargo:rerun-if-changed=../cpp/include/ko/event_handler.h");
}
