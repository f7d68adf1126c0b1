//! The boundary every `extern "C"` function crosses, written once (as rustls-ffi's
//! `ffi_panic_boundary!` and `try_ref_from_ptr!`). Each body runs inside [`fallible`] (functions
//! returning `ko_error_t *`) or [`infallible`] (accessors and `_delete`s), which catch panics: an
//! unwinding panic must never reach C, where it is undefined behaviour. Pointer arguments are read
//! through [`need`] and the helpers below it, which turn NULL (and non-UTF-8 text) into an
//! `InvalidInput` error naming the function and the argument, instead of a crash.

use std::ffi::{CStr, CString, OsStr, c_char};
use std::os::unix::ffi::OsStrExt;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;

use ko_core::{Error, ErrorKind, Result};

use crate::error::ko_error_t;

/// Runs the body of a fallible function: NULL on success, else a new `ko_error_t` for the caller
/// to delete. A panic becomes an `Internal` error.
pub(crate) fn fallible(body: impl FnOnce() -> Result<()>) -> *mut ko_error_t {
    match ko_core::embed::catch_panic(body) {
        Ok(()) => std::ptr::null_mut(),
        Err(e) => ko_error_t::into_raw(e),
    }
}

/// Runs the body of a function that cannot fail (an accessor, a `_delete`); a panic, which would
/// be a bug in ko, gives `fallback` (NULL, 0, false) instead of unwinding into C.
pub(crate) fn infallible<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    std::panic::catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

fn null(func: &str, arg: &str) -> Error {
    Error::new(ErrorKind::InvalidInput, format!("{func}: `{arg}` is NULL"))
}

/// `ptr` as a reference, or an `InvalidInput` error when it is NULL.
///
/// The caller (C) guarantees that a non-NULL `ptr` points to a live `T` for the call's duration.
pub(crate) unsafe fn need<'a, T>(ptr: *const T, func: &str, arg: &str) -> Result<&'a T> {
    // SAFETY: non-NULL pointers are live objects of ours, as the header requires.
    unsafe { ptr.as_ref() }.ok_or_else(|| null(func, arg))
}

/// `ptr` as a mutable reference, or an `InvalidInput` error when it is NULL.
pub(crate) unsafe fn need_mut<'a, T>(ptr: *mut T, func: &str, arg: &str) -> Result<&'a mut T> {
    // SAFETY: as for `need`; the header says such objects are not shared while being changed.
    unsafe { ptr.as_mut() }.ok_or_else(|| null(func, arg))
}

/// An out-parameter: checked, and set to NULL so that it is NULL whenever the call fails.
pub(crate) unsafe fn out_param<'a, T>(ptr: *mut *mut T, func: &str, arg: &str) -> Result<&'a mut *mut T> {
    // SAFETY: a non-NULL out-parameter points to writable storage for one pointer.
    let slot = unsafe { ptr.as_mut() }.ok_or_else(|| null(func, arg))?;
    *slot = std::ptr::null_mut();
    Ok(slot)
}

/// A NUL-terminated string's bytes, or an error when `ptr` is NULL.
pub(crate) unsafe fn bytes<'a>(ptr: *const c_char, func: &str, arg: &str) -> Result<&'a [u8]> {
    if ptr.is_null() {
        return Err(null(func, arg));
    }
    // SAFETY: non-NULL and NUL-terminated, as the header requires.
    Ok(unsafe { CStr::from_ptr(ptr) }.to_bytes())
}

/// A NUL-terminated UTF-8 string, or an error when `ptr` is NULL or the text is not UTF-8.
pub(crate) unsafe fn text<'a>(ptr: *const c_char, func: &str, arg: &str) -> Result<&'a str> {
    utf8(unsafe { bytes(ptr, func, arg) }?, func, arg)
}

/// An optional string argument: NULL is `None`.
pub(crate) unsafe fn optional_text<'a>(ptr: *const c_char, func: &str, arg: &str) -> Result<Option<&'a str>> {
    if ptr.is_null() { Ok(None) } else { unsafe { text(ptr, func, arg) }.map(Some) }
}

pub(crate) fn utf8<'a>(bytes: &'a [u8], func: &str, arg: &str) -> Result<&'a str> {
    std::str::from_utf8(bytes)
        .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("{func}: `{arg}` is not UTF-8: {e}")))
}

/// An array of `n` strings' bytes. `items` may be NULL only when `n` is 0.
pub(crate) unsafe fn byte_strings<'a>(
    items: *const *const c_char,
    n: usize,
    func: &str,
    arg: &str,
) -> Result<Vec<&'a [u8]>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if items.is_null() {
        return Err(Error::new(ErrorKind::InvalidInput, format!("{func}: `{arg}` is NULL but its count is {n}")));
    }
    // SAFETY: `items` points to `n` pointers, as the header requires.
    let items = unsafe { std::slice::from_raw_parts(items, n) };
    items.iter().enumerate().map(|(i, &p)| unsafe { bytes(p, func, &format!("{arg}[{i}]")) }).collect()
}

/// An array of `n` UTF-8 strings. `items` may be NULL only when `n` is 0.
pub(crate) unsafe fn texts(items: *const *const c_char, n: usize, func: &str, arg: &str) -> Result<Vec<String>> {
    let items = unsafe { byte_strings(items, n, func, arg) }?;
    items.iter().enumerate().map(|(i, b)| utf8(b, func, &format!("{arg}[{i}]")).map(str::to_string)).collect()
}

/// An array of `n` paths (any bytes but NUL). `items` may be NULL only when `n` is 0.
pub(crate) unsafe fn paths(items: *const *const c_char, n: usize, func: &str, arg: &str) -> Result<Vec<PathBuf>> {
    let items = unsafe { byte_strings(items, n, func, arg) }?;
    Ok(items.into_iter().map(|b| PathBuf::from(OsStr::from_bytes(b))).collect())
}

/// Text handed to C: an interior NUL (which C cannot hold) becomes U+FFFD, so that a message is
/// never cut short.
pub(crate) fn c_string(text: &str) -> CString {
    CString::new(text.replace('\0', "\u{FFFD}")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_internal_errors_and_fallbacks() {
        let err = fallible(|| panic!("boom at the boundary"));
        // SAFETY: `fallible` returned a live error, freed here.
        let err = unsafe { Box::from_raw(err) };
        assert_eq!(err.kind(), ErrorKind::Internal);
        assert!(err.message().to_str().unwrap().contains("boom at the boundary"));
        assert_eq!(infallible(7, || panic!("accessor bug")), 7);
        assert!(fallible(|| Ok(())).is_null());
    }

    #[test]
    fn null_and_non_utf8_arguments_are_invalid_input() {
        let err = unsafe { need::<u8>(std::ptr::null(), "ko_f", "thing") }.unwrap_err();
        assert_eq!((err.kind(), err.message()), (ErrorKind::InvalidInput, "ko_f: `thing` is NULL"));
        let bad = c"\xff";
        let err = unsafe { text(bad.as_ptr(), "ko_f", "name") }.unwrap_err();
        assert!(err.message().starts_with("ko_f: `name` is not UTF-8"), "{err}");
        let err = unsafe { texts(std::ptr::null(), 2, "ko_f", "paths") }.unwrap_err();
        assert_eq!(err.message(), "ko_f: `paths` is NULL but its count is 2");
        let items = [c"a".as_ptr(), std::ptr::null()];
        let err = unsafe { texts(items.as_ptr(), 2, "ko_f", "paths") }.unwrap_err();
        assert_eq!(err.message(), "ko_f: `paths[1]` is NULL");
        assert!(unsafe { texts(std::ptr::null(), 0, "ko_f", "paths") }.unwrap().is_empty());
        assert_eq!(c_string("a\0b").to_str().unwrap(), "a\u{FFFD}b");
    }
}
