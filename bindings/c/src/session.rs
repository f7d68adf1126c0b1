//! `ko_session_t`: the handle a C program keeps (a ko-core `Session`), its event callback, and
//! `ko_session_finish`. [`open`] is how the C and the C++ faces both make a session.

use std::ffi::c_void;
use std::sync::Arc;

use ko_core::{CancelToken, FrontEnd, KubectlOutput, Options, Result, Session};

use crate::boundary::{fallible, infallible, need, out_param};
use crate::calls::block;
use crate::error::ko_error_t;
use crate::events::ko_event_t;
use crate::options::ko_options_t;

/// A session for `front_end`: error messages name options as its users write them, and kubectl's
/// output arrives as `kubectlOutput` events (a library never writes to the program's stdout).
pub(crate) fn open(mut options: Options, front_end: FrontEnd) -> Result<Arc<Session>> {
    options.front_end = front_end;
    options.kubectl_output = KubectlOutput::Events;
    Session::new(options).map(Arc::new)
}

/// A configured ko engine: builder, publisher, and what it caches between calls (registry tokens,
/// base images, `go list` results, blobs already placed).
///
/// Created by `ko_session_new`, freed by `ko_session_delete`. Thread-safe: any number of calls
/// (`ko_build`, `ko_resolve_files`...) may run on one session at once, from any threads; only
/// `ko_session_delete` must wait until every other call on it has returned.
#[allow(non_camel_case_types)]
pub struct ko_session_t {
    pub(crate) inner: Arc<Session>,
}

/// Makes a session from `options`: reads the environment (the options' `env`, else the process
/// environment, now) and `.ko.yaml`, and checks every option. Touches neither the network nor
/// `go`. On success stores the session in `*out`; on failure `*out` is NULL.
///
/// Ownership: `options` is copied (it may be deleted right after); the caller owns `*out` and
/// frees it with `ko_session_delete`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_session_new(options: *const ko_options_t, out: *mut *mut ko_session_t) -> *mut ko_error_t {
    fallible(|| {
        const F: &str = "ko_session_new";
        let slot = unsafe { out_param(out, F, "out") }?;
        let options = unsafe { need(options, F, "options") }?;
        let inner = open(options.inner.clone(), FrontEnd::C)?;
        *slot = Box::into_raw(Box::new(ko_session_t { inner }));
        Ok(())
    })
}

/// Called with each event of the session's calls (see `ko_event_kind_t`).
///
/// It runs on ko's worker threads, possibly on several at once, while the call that caused the
/// event is still running; it must return quickly and must not call libko's blocking functions
/// (they return `KO_INVALID_INPUT` there). `event` is valid until it returns.
#[allow(non_camel_case_types)]
pub type ko_event_callback_t = Option<unsafe extern "C" fn(event: *const ko_event_t, user_data: *mut c_void)>;

/// The caller's `user_data`, which the header makes the caller responsible for sharing.
struct UserData(*mut c_void);

// SAFETY: the header states that `user_data` is used from ko's threads; the caller agrees to
// that by passing it.
unsafe impl Send for UserData {}
unsafe impl Sync for UserData {}

impl UserData {
    // A method, not a field read, so that closures capture the whole `Send` wrapper.
    fn get(&self) -> *mut c_void {
        self.0
    }
}

/// Delivers the events of every later call on `session` to `callback`, with `user_data` (which
/// libko never reads). Replaces any earlier callback; NULL `callback` stops delivery.
///
/// Lifetimes: `user_data` must stay valid until the calls that may send events have returned and
/// the callback has been replaced or the session deleted; a callback already running on another
/// thread may still finish after this returns.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_session_set_event_callback(
    session: *const ko_session_t,
    callback: ko_event_callback_t,
    user_data: *mut c_void,
) -> *mut ko_error_t {
    fallible(|| {
        let session = unsafe { need(session, "ko_session_set_event_callback", "session") }?;
        let user_data = UserData(user_data);
        session.inner.set_event_sink(Arc::new(move |event| {
            if let Some(callback) = callback {
                let event = ko_event_t::new(event);
                // SAFETY: the caller's function, called as the header describes.
                unsafe { callback(&event, user_data.get()) };
            }
        }));
        Ok(())
    })
}

/// Writes what is written at the end: the `tarball` (every image this session published) and the
/// `image_refs` file. Later calls on the session fail with `KO_INVALID_INPUT`; a second
/// `ko_session_finish` does nothing. Deleting a session without finishing it skips those files.
///
/// Blocks until done (it cannot be cancelled: it only writes local files); thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_session_finish(session: *const ko_session_t) -> *mut ko_error_t {
    fallible(|| {
        let session = unsafe { need(session, "ko_session_finish", "session") }?;
        block(&session.inner, CancelToken::new(), |s, _| async move { s.finish().await })
    })
}

/// Frees a session. NULL is allowed (and does nothing).
///
/// Ownership: takes `session`; no other call on it may be running, and it must not be used
/// afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_session_delete(session: *mut ko_session_t) {
    infallible((), || {
        if !session.is_null() {
            // SAFETY: a session from `ko_session_new`, not yet deleted, as the header requires.
            drop(unsafe { Box::from_raw(session) });
        }
    })
}
