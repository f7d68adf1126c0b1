//! `ko_cancel_t`: a handle that cancels the calls it is passed to, from any thread.

use ko_core::CancelToken;

use crate::boundary::infallible;

/// A cancel handle: pass it to calls (their `cancel` argument), then `ko_cancel_trigger` it from
/// any thread to make them return `KO_CANCELLED`. A cancelled call kills its `go` and `kubectl`
/// processes and removes its temporary files before it returns. A triggered handle stays
/// triggered: every later call given it is cancelled at once, so use a new one per attempt.
///
/// Created by `ko_cancel_new`, freed by `ko_cancel_delete` once no call uses it. Thread-safe.
#[allow(non_camel_case_types)]
pub struct ko_cancel_t {
    pub(crate) token: CancelToken,
}

/// The token for a call's `cancel` argument (NULL: a token nobody triggers).
pub(crate) unsafe fn token(cancel: *const ko_cancel_t) -> CancelToken {
    // SAFETY: NULL or a live handle, as the header requires.
    unsafe { cancel.as_ref() }.map(|c| c.token.clone()).unwrap_or_default()
}

/// A new cancel handle, not triggered.
///
/// Ownership: the caller owns the result and frees it with `ko_cancel_delete`. Never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn ko_cancel_new() -> *mut ko_cancel_t {
    infallible(std::ptr::null_mut(), || Box::into_raw(Box::new(ko_cancel_t { token: CancelToken::new() })))
}

/// Cancels every call using `cancel`, now and later. Returns at once; each call returns
/// `KO_CANCELLED` once its work is undone. NULL does nothing.
///
/// Thread safety: callable from any thread, also while calls using `cancel` run.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_cancel_trigger(cancel: *const ko_cancel_t) {
    infallible((), || {
        // SAFETY: NULL or a live handle, as the header requires.
        if let Some(c) = unsafe { cancel.as_ref() } {
            c.token.cancel();
        }
    })
}

/// Whether `ko_cancel_trigger(cancel)` was called (false for NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_cancel_is_triggered(cancel: *const ko_cancel_t) -> bool {
    // SAFETY: NULL or a live handle, as the header requires.
    infallible(false, || unsafe { cancel.as_ref() }.is_some_and(|c| c.token.is_cancelled()))
}

/// Frees a cancel handle. NULL is allowed (and does nothing).
///
/// Ownership: takes `cancel`; no call may still be using it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_cancel_delete(cancel: *mut ko_cancel_t) {
    infallible((), || {
        if !cancel.is_null() {
            // SAFETY: a handle from `ko_cancel_new`, not yet deleted, as the header requires.
            drop(unsafe { Box::from_raw(cancel) });
        }
    })
}
