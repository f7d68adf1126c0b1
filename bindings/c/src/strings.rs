//! Strings libko returns (resolved YAML): allocated by Rust, so they are freed by
//! `ko_string_delete`, never by `free()`.

use std::ffi::{CString, c_char};

use ko_core::{Error, ErrorKind, Result};

use crate::boundary::infallible;

/// `text` as a string for C to own; text with a NUL byte, which C would read cut short, is an
/// error naming `what`.
pub(crate) fn into_raw(text: String, what: &str) -> Result<*mut c_char> {
    CString::new(text).map(CString::into_raw).map_err(|_| {
        Error::new(ErrorKind::InvalidInput, format!("{what} holds a NUL byte, which a C string cannot hold"))
    })
}

/// Frees a string returned by libko (`ko_resolve_files`, `ko_resolve_string`). NULL is allowed
/// (and does nothing).
///
/// Ownership: takes `text`, which must not be used afterwards; never pass it to `free()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_string_delete(text: *mut c_char) {
    infallible((), || {
        if !text.is_null() {
            // SAFETY: a string from `into_raw`, not yet deleted, as the header requires.
            drop(unsafe { CString::from_raw(text) });
        }
    })
}
