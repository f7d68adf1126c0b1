//! `ko_error_t`: what every fallible call returns when it fails (NULL means success), and
//! `ko_error_code_t`, the core's stable error numbers as a C enum.

use std::ffi::{CStr, CString, c_char};

use ko_core::ErrorKind;

use crate::boundary::{c_string, infallible};

/// The stable error codes: ko-core's `ErrorKind` numbers, which are never changed or reused
/// (new kinds get new numbers). `KO_OK` (0) is what `ko_error_code(NULL)` returns.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ko_error_code_t {
    /// No error.
    KO_OK = 0,
    /// An argument, option, reference or file is malformed (also: a NULL argument).
    KO_INVALID_INPUT = 1,
    /// A package, base image, file or tag does not exist.
    KO_NOT_FOUND = 2,
    /// `go list` / `go build` failed (the message holds the compiler output), or the package
    /// cannot be built into an image.
    KO_BUILD = 3,
    /// The registry answered with an error or could not be reached.
    KO_REGISTRY = 4,
    /// The registry refused the credentials.
    KO_AUTH = 5,
    /// Reading or writing a local file failed.
    KO_IO = 6,
    /// `.ko.yaml` or a `KO_*` environment variable is invalid.
    KO_CONFIG = 7,
    /// `kubectl` failed (see `ko_error_exit_code`) or is missing.
    KO_KUBECTL = 8,
    /// The call was cancelled through its `ko_cancel_t`.
    KO_CANCELLED = 9,
    /// Something upstream ko does that this version does not (yet).
    KO_UNSUPPORTED = 10,
    /// A bug in ko (such as a panic caught at the boundary); please report it.
    KO_INTERNAL = 11,
}

impl From<ErrorKind> for ko_error_code_t {
    fn from(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::InvalidInput => ko_error_code_t::KO_INVALID_INPUT,
            ErrorKind::NotFound => ko_error_code_t::KO_NOT_FOUND,
            ErrorKind::Build => ko_error_code_t::KO_BUILD,
            ErrorKind::Registry => ko_error_code_t::KO_REGISTRY,
            ErrorKind::Auth => ko_error_code_t::KO_AUTH,
            ErrorKind::Io => ko_error_code_t::KO_IO,
            ErrorKind::Config => ko_error_code_t::KO_CONFIG,
            ErrorKind::Kubectl => ko_error_code_t::KO_KUBECTL,
            ErrorKind::Cancelled => ko_error_code_t::KO_CANCELLED,
            ErrorKind::Unsupported => ko_error_code_t::KO_UNSUPPORTED,
            ErrorKind::Internal => ko_error_code_t::KO_INTERNAL,
            // The core adds kinds with new numbers, and this enum with them; until then, a bug.
            _ => ko_error_code_t::KO_INTERNAL,
        }
    }
}

/// An error: a code, the message a user reads (the ko CLI prints the same text after
/// `Error: `), and kubectl's exit status when kubectl failed.
///
/// Returned by every fallible function (NULL means success). Owned by the caller, who frees it
/// with `ko_error_delete`. Immutable: it may be read from any thread.
#[allow(non_camel_case_types)]
pub struct ko_error_t {
    kind: ErrorKind,
    message: CString,
    exit_code: Option<i32>,
}

impl ko_error_t {
    /// A heap error for C to own.
    pub(crate) fn into_raw(err: ko_core::Error) -> *mut ko_error_t {
        let error = ko_error_t { kind: err.kind(), message: c_string(err.message()), exit_code: err.exit_code() };
        Box::into_raw(Box::new(error))
    }

    #[cfg(test)]
    pub(crate) fn kind(&self) -> ErrorKind {
        self.kind
    }

    #[cfg(test)]
    pub(crate) fn message(&self) -> &CStr {
        &self.message
    }
}

/// The error's message, for a user to read. NULL when `error` is NULL.
///
/// Ownership: borrowed from `error`; valid until `ko_error_delete(error)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_error_message(error: *const ko_error_t) -> *const c_char {
    infallible(std::ptr::null(), || {
        // SAFETY: NULL or a live error, as the header requires.
        unsafe { error.as_ref() }.map_or(std::ptr::null(), |e| e.message.as_ptr())
    })
}

/// The error's code; `KO_OK` when `error` is NULL (a call that returned NULL succeeded).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_error_code(error: *const ko_error_t) -> ko_error_code_t {
    infallible(ko_error_code_t::KO_INTERNAL, || {
        // SAFETY: NULL or a live error, as the header requires.
        unsafe { error.as_ref() }.map_or(ko_error_code_t::KO_OK, |e| e.kind.into())
    })
}

/// The stable name of `code` (a `ko_error_code_t`), as `"KO_INVALID_INPUT"` (Node's `e.code`
/// spells them the same), or NULL for a number that is no code.
///
/// Ownership: a static string; do not free it.
#[unsafe(no_mangle)]
pub extern "C" fn ko_error_code_name(code: u32) -> *const c_char {
    // `code` is a plain integer, not the enum: C may pass any number, and a Rust enum holding an
    // undeclared value would be undefined behaviour.
    infallible(std::ptr::null(), || {
        let name: &CStr = match ErrorKind::from_code(code) {
            Some(kind) => code_name(kind),
            None if code == 0 => c"KO_OK",
            None => return std::ptr::null(),
        };
        name.as_ptr()
    })
}

fn code_name(kind: ErrorKind) -> &'static CStr {
    match kind {
        ErrorKind::InvalidInput => c"KO_INVALID_INPUT",
        ErrorKind::NotFound => c"KO_NOT_FOUND",
        ErrorKind::Build => c"KO_BUILD",
        ErrorKind::Registry => c"KO_REGISTRY",
        ErrorKind::Auth => c"KO_AUTH",
        ErrorKind::Io => c"KO_IO",
        ErrorKind::Config => c"KO_CONFIG",
        ErrorKind::Kubectl => c"KO_KUBECTL",
        ErrorKind::Cancelled => c"KO_CANCELLED",
        ErrorKind::Unsupported => c"KO_UNSUPPORTED",
        ErrorKind::Internal => c"KO_INTERNAL",
        _ => c"KO_INTERNAL",
    }
}

/// When `error` is a failed kubectl (`KO_KUBECTL`) that exited with a status, stores that status
/// in `*exit_code` and returns true; otherwise returns false and leaves `*exit_code` alone.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_error_exit_code(error: *const ko_error_t, exit_code: *mut i32) -> bool {
    infallible(false, || {
        // SAFETY: NULL or live pointers, as the header requires.
        match (unsafe { error.as_ref() }.and_then(|e| e.exit_code), unsafe { exit_code.as_mut() }) {
            (Some(code), Some(out)) => {
                *out = code;
                true
            }
            _ => false,
        }
    })
}

/// Frees an error. NULL is allowed (and does nothing).
///
/// Ownership: takes `error`, which must not be used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_error_delete(error: *mut ko_error_t) {
    infallible((), || {
        if !error.is_null() {
            // SAFETY: an error from this library, not yet deleted, as the header requires.
            drop(unsafe { Box::from_raw(error) });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_core_numbers_and_names() {
        for kind in ErrorKind::ALL {
            let code = ko_error_code_t::from(kind);
            assert_eq!(code as u32, kind.code());
            // SAFETY: a static string.
            let name = unsafe { CStr::from_ptr(ko_error_code_name(code as u32)) };
            assert_eq!(name.to_str().unwrap(), kind.code_name());
        }
        // SAFETY: a static string.
        assert_eq!(unsafe { CStr::from_ptr(ko_error_code_name(0)) }, c"KO_OK");
        assert!(ko_error_code_name(12).is_null());
    }

    #[test]
    fn accessors_read_an_error_and_accept_null() {
        let err = ko_error_t::into_raw(ko_core::Error::kubectl_exit(3, "kubectl apply exited with status 3"));
        unsafe {
            assert_eq!(ko_error_code(err), ko_error_code_t::KO_KUBECTL);
            assert_eq!(CStr::from_ptr(ko_error_message(err)).to_str().unwrap(), "kubectl apply exited with status 3");
            let mut status = 0;
            assert!(ko_error_exit_code(err, &mut status));
            assert_eq!(status, 3);
            ko_error_delete(err);
            assert_eq!(ko_error_code(std::ptr::null()), ko_error_code_t::KO_OK);
            assert!(ko_error_message(std::ptr::null()).is_null());
            assert!(!ko_error_exit_code(std::ptr::null(), &mut status));
            ko_error_delete(std::ptr::null_mut());
        }
    }
}
