//! What every binding needs to call the async core, written once: the process-wide tokio runtime,
//! a blocking [`block_on`] with a cancel hook (Python's Ctrl-C, a C caller's cancel handle), an
//! async [`spawn`] for event-loop front ends (Node), and panics caught into `Internal` errors.
//!
//! The runtime is created on first use and created again when the process id changes: after
//! `fork()` the child inherits the runtime's memory but none of its worker threads, so the
//! inherited copy is leaked (dropping it would wait for threads that do not exist) and a fresh
//! one is built. The CLI owns its runtime and does not use this module.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::runtime::Runtime;

use crate::cancel::CancelToken;
use crate::error::{Error, Result};

/// How often a blocked caller's hook is asked whether to cancel.
pub const POLL: Duration = Duration::from_millis(100);

/// The runtime and the process that built it.
static RUNTIME: Mutex<Option<(u32, Arc<Runtime>)>> = Mutex::new(None);

/// The process-wide runtime, built on first use and again in a forked child.
pub fn runtime() -> Result<Arc<Runtime>> {
    let pid = std::process::id();
    // The lock is only held to read or replace the Arc, never across a call.
    let mut slot = RUNTIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((owner, rt)) = slot.as_ref()
        && *owner == pid
    {
        return Ok(rt.clone());
    }
    if let Some((_, inherited)) = slot.take() {
        // Forked: the worker threads this runtime would join do not exist in this process.
        std::mem::forget(inherited);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("ko-runtime")
        .build()
        .map_err(|e| Error::internal(format!("cannot start ko's async runtime: {e}")))?;
    let rt = Arc::new(rt);
    *slot = Some((pid, rt.clone()));
    Ok(rt)
}

/// Runs `work` on the shared runtime and waits for it on this thread. Every [`POLL`],
/// `interrupted()` is asked whether the caller wants to stop; when it says yes, `cancel` is
/// cancelled and the wait goes on until `work` (which watches `cancel`) has returned, so that its
/// children are gone and its temporary files removed when this returns. A panic in `work`
/// becomes an `Internal` error. Must not be called from a thread of the runtime itself (an
/// event callback): that is an `InvalidInput` error, not a deadlock.
pub fn block_on<T, F>(work: F, cancel: &CancelToken, mut interrupted: impl FnMut() -> bool) -> Result<T>
where
    F: Future<Output = Result<T>> + Send + 'static,
    T: Send + 'static,
{
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::invalid(
            "a blocking ko call was made from inside ko's runtime (an event callback?); make it from another thread",
        ));
    }
    let rt = runtime()?;
    let (tx, rx) = std::sync::mpsc::channel();
    let task = rt.spawn(work);
    rt.spawn(async move {
        let _ = tx.send(joined(task.await));
    });
    loop {
        match rx.recv_timeout(POLL) {
            Ok(result) => return result,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if !cancel.is_cancelled() && interrupted() {
                    cancel.cancel();
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(Error::internal("ko's runtime stopped while a call was running"));
            }
        }
    }
}

/// Runs `work` on the shared runtime, for a caller that awaits (a Node Promise): panics become
/// `Internal` errors.
pub async fn spawn<T, F>(work: F) -> Result<T>
where
    F: Future<Output = Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let task = runtime()?.spawn(work);
    joined(task.await)
}

fn joined<T>(result: std::result::Result<Result<T>, tokio::task::JoinError>) -> Result<T> {
    match result {
        Ok(r) => r,
        Err(e) if e.is_panic() => Err(Error::internal(format!("ko panicked: {}", panic_message(&e.into_panic())))),
        Err(_) => Err(Error::cancelled()),
    }
}

/// Runs synchronous binding code, turning a panic into an `Internal` error (for `extern "C"`
/// entry points, which must never unwind).
pub fn catch_panic<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|payload| Err(Error::internal(format!("ko panicked: {}", panic_message(&payload)))))
}

/// The text of a panic payload.
pub fn panic_message(payload: &Box<dyn Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn panics_become_internal_errors() {
        let err = block_on(async { panic!("boom") as Result<()> }, &CancelToken::new(), || false).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Internal);
        assert!(err.to_string().contains("boom"), "{err}");
        let err = catch_panic(|| -> Result<()> { panic!("sync boom") }).unwrap_err();
        assert!(err.to_string().contains("sync boom"), "{err}");
    }

    #[test]
    fn the_hook_cancels_and_the_call_returns_cancelled() {
        let token = CancelToken::new();
        let t = token.clone();
        let mut asked = 0;
        let work = async move { t.run(std::future::pending::<Result<()>>()).await };
        let err = block_on(work, &token, || {
            asked += 1;
            asked == 2
        })
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Cancelled);
        assert_eq!(asked, 2, "the hook is not asked again once the call is cancelled");
    }

    #[test]
    fn calls_from_inside_the_runtime_are_refused() {
        let rt = runtime().unwrap();
        let err = rt.block_on(async { block_on(async { Ok(()) }, &CancelToken::new(), || false) }).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }
}
