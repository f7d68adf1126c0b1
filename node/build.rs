//! napi-build: the link arguments a Node addon needs on each platform (on macOS, leaving the
//! `napi_*` symbols to be resolved from node at load time).

fn main() {
    napi_build::setup();
}
