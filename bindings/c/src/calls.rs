//! The calls: `ko_build`, `ko_resolve_files`, `ko_resolve_string`, `ko_apply`, `ko_create`,
//! `ko_delete`, `ko_run`. Each blocks the calling thread on ko-core's shared runtime
//! ([`ko_core::embed::block_on`]; libko never starts a runtime of its own) until the engine
//! returns, and may be made from several threads at once on one session.

use std::ffi::c_char;
use std::future::Future;
use std::sync::Arc;

use ko_core::{CancelToken, KubectlVerb, ResolveOptions, Result, Session};

use crate::boundary::{fallible, need, out_param, paths as path_list, text, texts};
use crate::cancel::{ko_cancel_t, token};
use crate::error::ko_error_t;
use crate::options::ko_resolve_options_t;
use crate::published::ko_published_list_t;
use crate::session::ko_session_t;
use crate::strings;

/// Runs `work` on the shared runtime and waits for it. Cancelling `cancel` (from another thread)
/// ends the call with a `Cancelled` error once the engine has undone its work; nothing else
/// interrupts a C caller, so the wait's own hook never asks to stop.
pub(crate) fn block<T, F, Fut>(session: &Arc<Session>, cancel: CancelToken, work: F) -> Result<T>
where
    F: FnOnce(Arc<Session>, CancelToken) -> Fut,
    Fut: Future<Output = Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let future = work(session.clone(), cancel.clone());
    ko_core::embed::block_on(future, &cancel, || false)
}

unsafe fn read_resolve_options(ro: *const ko_resolve_options_t) -> ResolveOptions {
    // SAFETY: NULL or live options, as the header requires.
    unsafe { ro.as_ref() }.map(|r| r.inner.clone()).unwrap_or_default()
}

/// Builds the Go `main` packages `import_paths` (`n` of them: full, `./relative` or `ko://...`,
/// relative to the session's working directory) into images and publishes them, each once and
/// concurrently, as `ko build` does. With `n` 0 (`import_paths` may then be NULL), builds `.`.
/// On success stores one entry per argument, in argument order, in `*out`; on failure `*out` is
/// NULL.
///
/// `cancel` may be NULL. Ownership: the arguments are borrowed for the call; the caller owns
/// `*out` and frees it with `ko_published_list_delete`. Blocks; thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_build(
    session: *const ko_session_t,
    import_paths: *const *const c_char,
    n: usize,
    cancel: *const ko_cancel_t,
    out: *mut *mut ko_published_list_t,
) -> *mut ko_error_t {
    fallible(|| {
        const F: &str = "ko_build";
        let slot = unsafe { out_param(out, F, "out") }?;
        let session = unsafe { need(session, F, "session") }?;
        let import_paths = unsafe { texts(import_paths, n, F, "import_paths") }?;
        let published = block(&session.inner, unsafe { token(cancel) }, |s, c| async move {
            let args: Vec<&str> = import_paths.iter().map(String::as_str).collect();
            s.build(&args, &c).await
        })?;
        *slot = ko_published_list_t::into_raw(published);
        Ok(())
    })
}

/// Resolves the YAML files and directories `paths` (`n` of them, relative to the working
/// directory; `"-"` is a `KO_INVALID_INPUT` error: use `ko_resolve_string`) as `ko resolve -f`
/// does: every `ko://<import path>` scalar is built, published once and replaced by its
/// reference; every other byte is kept. Documents of several inputs are separated by `---`. On
/// success stores the YAML in `*out`; on failure `*out` is NULL.
///
/// `resolve_options` and `cancel` may be NULL (defaults; not cancellable). Ownership: the
/// arguments are borrowed for the call; the caller owns `*out` and frees it with
/// `ko_string_delete`. Blocks; thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_resolve_files(
    session: *const ko_session_t,
    paths: *const *const c_char,
    n: usize,
    resolve_options: *const ko_resolve_options_t,
    cancel: *const ko_cancel_t,
    out: *mut *mut c_char,
) -> *mut ko_error_t {
    fallible(|| {
        const F: &str = "ko_resolve_files";
        let slot = unsafe { out_param(out, F, "out") }?;
        let session = unsafe { need(session, F, "session") }?;
        let files = unsafe { path_list(paths, n, F, "paths") }?;
        let ro = unsafe { read_resolve_options(resolve_options) };
        let yaml =
            block(
                &session.inner,
                unsafe { token(cancel) },
                |s, c| async move { s.resolve_files(&files, &ro, &c).await },
            )?;
        *slot = strings::into_raw(yaml, "the resolved YAML")?;
        Ok(())
    })
}

/// Resolves one YAML text, as `ko resolve -f -` does with it on standard input (messages name it
/// `-`). On success stores the YAML in `*out`; on failure `*out` is NULL.
///
/// `resolve_options` and `cancel` may be NULL. Ownership: as `ko_resolve_files`. Blocks;
/// thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_resolve_string(
    session: *const ko_session_t,
    yaml: *const c_char,
    resolve_options: *const ko_resolve_options_t,
    cancel: *const ko_cancel_t,
    out: *mut *mut c_char,
) -> *mut ko_error_t {
    fallible(|| {
        const F: &str = "ko_resolve_string";
        let slot = unsafe { out_param(out, F, "out") }?;
        let session = unsafe { need(session, F, "session") }?;
        let yaml = unsafe { text(yaml, F, "yaml") }?.to_string();
        let ro = unsafe { read_resolve_options(resolve_options) };
        let resolved =
            block(&session.inner, unsafe { token(cancel) }, |s, c| async move { s.resolve_str(&yaml, &ro, &c).await })?;
        *slot = strings::into_raw(resolved, "the resolved YAML")?;
        Ok(())
    })
}

#[allow(clippy::too_many_arguments)]
unsafe fn kubectl_resolved(
    func: &str,
    verb: KubectlVerb,
    session: *const ko_session_t,
    paths: *const *const c_char,
    n: usize,
    resolve_options: *const ko_resolve_options_t,
    kubectl_args: *const *const c_char,
    n_args: usize,
    cancel: *const ko_cancel_t,
) -> *mut ko_error_t {
    fallible(|| {
        let session = unsafe { need(session, func, "session") }?;
        let files = unsafe { path_list(paths, n, func, "paths") }?;
        let args = unsafe { texts(kubectl_args, n_args, func, "kubectl_args") }?;
        let ro = unsafe { read_resolve_options(resolve_options) };
        block(
            &session.inner,
            unsafe { token(cancel) },
            |s, c| async move { s.apply(verb, &files, &ro, &args, &c).await },
        )
    })
}

/// Resolves `paths` (as `ko_resolve_files`), then runs `kubectl apply -f - kubectl_args...` with
/// the result on its standard input. Nothing reaches kubectl when a build fails. kubectl's output
/// arrives as `KO_EVENT_KUBECTL_OUTPUT` events. A failing kubectl is a `KO_KUBECTL` error (see
/// `ko_error_exit_code`).
///
/// `kubectl_args` may be NULL when `n_args` is 0; `resolve_options` and `cancel` may be NULL.
/// Ownership: the arguments are borrowed for the call. Blocks; thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_apply(
    session: *const ko_session_t,
    paths: *const *const c_char,
    n: usize,
    resolve_options: *const ko_resolve_options_t,
    kubectl_args: *const *const c_char,
    n_args: usize,
    cancel: *const ko_cancel_t,
) -> *mut ko_error_t {
    unsafe {
        kubectl_resolved(
            "ko_apply",
            KubectlVerb::Apply,
            session,
            paths,
            n,
            resolve_options,
            kubectl_args,
            n_args,
            cancel,
        )
    }
}

/// As `ko_apply`, with `kubectl create -f -`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_create(
    session: *const ko_session_t,
    paths: *const *const c_char,
    n: usize,
    resolve_options: *const ko_resolve_options_t,
    kubectl_args: *const *const c_char,
    n_args: usize,
    cancel: *const ko_cancel_t,
) -> *mut ko_error_t {
    unsafe {
        kubectl_resolved(
            "ko_create",
            KubectlVerb::Create,
            session,
            paths,
            n,
            resolve_options,
            kubectl_args,
            n_args,
            cancel,
        )
    }
}

/// Runs `kubectl delete kubectl_args...` (such as `"-f", "config/"`), as `ko delete` does.
///
/// `cancel` may be NULL. Ownership: the arguments are borrowed for the call. Blocks; thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_delete(
    session: *const ko_session_t,
    kubectl_args: *const *const c_char,
    n_args: usize,
    cancel: *const ko_cancel_t,
) -> *mut ko_error_t {
    fallible(|| {
        const F: &str = "ko_delete";
        let session = unsafe { need(session, F, "session") }?;
        let args = unsafe { texts(kubectl_args, n_args, F, "kubectl_args") }?;
        block(&session.inner, unsafe { token(cancel) }, |s, c| async move { s.delete(&args, &c).await })
    })
}

/// Builds and publishes `import_path`, then runs it in the cluster as `ko run` does: `kubectl run
/// <image name> --image=<reference> --restart=Never --rm --attach kubectl_args...`.
///
/// `cancel` may be NULL. Ownership: the arguments are borrowed for the call. Blocks; thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_run(
    session: *const ko_session_t,
    import_path: *const c_char,
    kubectl_args: *const *const c_char,
    n_args: usize,
    cancel: *const ko_cancel_t,
) -> *mut ko_error_t {
    fallible(|| {
        const F: &str = "ko_run";
        let session = unsafe { need(session, F, "session") }?;
        let import_path = unsafe { text(import_path, F, "import_path") }?.to_string();
        let args = unsafe { texts(kubectl_args, n_args, F, "kubectl_args") }?;
        block(&session.inner, unsafe { token(cancel) }, |s, c| async move { s.run(&import_path, &args, &c).await })
    })
}
