//! The one tokio runtime of the process, and how a blocking Python call waits on it.
//!
//! ko-core is async and never creates a runtime; this module owns a multi-thread runtime shared
//! by every call from every Python thread. It is created on first use and re-created when the
//! process id changes: after `os.fork()` the child inherits the runtime's memory but none of
//! its worker threads, so the inherited copy is leaked (dropping it would wait for threads that
//! do not exist) and a fresh one is built.
//!
//! A call ([`block_on`]) spawns its future on the runtime and waits with the GIL released, so
//! other Python threads keep running. Every [`POLL`] it re-attaches briefly to run Python's
//! signal handlers; when one raises (Ctrl-C → `KeyboardInterrupt`) the task is aborted and
//! awaited, which drops the future: ko-core's child processes (`go`, `kubectl`) are spawned with
//! `kill_on_drop` and its temporary directories are removed on drop, so nothing is left behind
//! when the exception reaches Python.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyo3::exceptions::{PyRuntimeError, PySystemError};
use pyo3::panic::PanicException;
use pyo3::prelude::*;
use tokio::runtime::Runtime;

/// How often a waiting call checks for signals (Ctrl-C).
const POLL: Duration = Duration::from_millis(100);

/// The runtime and the process that built it.
static RUNTIME: Mutex<Option<(u32, Arc<Runtime>)>> = Mutex::new(None);

/// The process-wide runtime, built on first use and again in a forked child.
fn runtime() -> PyResult<Arc<Runtime>> {
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
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start ko's async runtime: {e}")))?;
    let rt = Arc::new(rt);
    *slot = Some((pid, rt.clone()));
    Ok(rt)
}

/// Runs `work` to completion on the shared runtime with the GIL released, raising its error as
/// a `ko.KoError` subclass, or `KeyboardInterrupt` (or whatever a signal handler raised) after
/// cancelling it.
pub fn block_on<T, F>(py: Python<'_>, work: F) -> PyResult<T>
where
    F: Future<Output = ko_core::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let rt = runtime()?;
    let mut task = rt.spawn(work);
    loop {
        let finished = py.detach(|| rt.block_on(async { tokio::time::timeout(POLL, &mut task).await.ok() }));
        match finished {
            Some(Ok(result)) => return result.map_err(|e| crate::error::to_py(py, &e)),
            Some(Err(join)) if join.is_panic() => {
                let payload = join.into_panic();
                let what = payload
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| payload.downcast_ref::<&str>().copied())
                    .unwrap_or("unknown panic");
                return Err(PanicException::new_err(format!("ko panicked (a bug; please report it): {what}")));
            }
            Some(Err(_)) => return Err(PySystemError::new_err("ko's task was cancelled")),
            None => {
                if let Err(signal) = py.check_signals() {
                    task.abort();
                    // Wait (without the GIL: the task may log while it unwinds) until the future
                    // is dropped, so child processes are killed before the exception surfaces.
                    py.detach(|| {
                        rt.block_on(async {
                            let _ = (&mut task).await;
                        })
                    });
                    return Err(signal);
                }
            }
        }
    }
}
