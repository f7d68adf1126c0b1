//! libko: ko-core as one native library for C, C++ and anything with a C FFI (`libko.so` and
//! `libko.a`). It holds the `extern "C"` API, whose header `include/ko.h` cbindgen generates from
//! these files, and the C++ bridge (`bindings/cpp/src/bridge.rs`, a `#[cxx::bridge]` module behind
//! `ko.hpp`), compiled into the same library: a program that used two Rust static libraries would
//! carry two copies of std and of the core.
//!
//! This crate only translates, one C concept per file: [`options`] (what a session takes),
//! [`session`] (the handle and its event callback), [`calls`] (build, resolve, apply, create,
//! delete, run), [`published`] and [`strings`] (what calls return), [`error`] (`ko_error_t` and the
//! stable codes), [`events`] (`ko_event_t`), [`cancel`] (`ko_cancel_t`). Every `extern "C"` body
//! runs inside the one panic boundary in [`boundary`], and every pointer argument is read through
//! its null-checking helpers. Calls block on ko-core's shared runtime ([`ko_core::embed`]).
//!
//! The functions are `unsafe extern "C"`: their callers are C programs, and each one's comment
//! (copied into `ko.h`) states what it needs of its pointers in C terms, with ownership and
//! thread-safety, rather than in a Rust `# Safety` section.
#![allow(clippy::missing_safety_doc)]

mod boundary;
mod calls;
mod cancel;
mod error;
mod events;
mod options;
mod published;
mod session;
mod strings;

#[path = "../../cpp/src/bridge.rs"]
mod cpp;

#[cfg(test)]
mod header_tests;

use std::ffi::c_char;

/// The version of libko (and of the ko engine inside it), such as `"0.1.0"`.
///
/// Ownership: a static string; do not free it. Thread safety: callable from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn ko_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
