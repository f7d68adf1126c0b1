//! How one blocking Python call runs ko: a session made from the call's options, its events sent
//! to `on_event` (and kubectl's output to `sys.stdout`/`sys.stderr`), the work run on ko-core's
//! shared runtime ([`ko_core::embed`]: one per process, rebuilt after `os.fork()`) with the GIL
//! released, so other Python threads keep running.
//!
//! While it waits, the call re-attaches every 100 ms to run Python's signal handlers; when one
//! raises (Ctrl-C → `KeyboardInterrupt`) the call's cancel token is cancelled and the wait goes
//! on until the engine has returned: its `go`/`kubectl` process groups are killed and its
//! temporary directories removed before the exception reaches Python.

use std::future::Future;
use std::sync::Arc;

use ko_core::{CancelToken, Options, Session};
use pyo3::prelude::*;

use crate::{error, events};

/// One call's options and its `on_event` callable.
pub struct Call {
    pub options: Options,
    pub on_event: Option<Py<PyAny>>,
}

impl Call {
    /// Runs `work` on a fresh session for this call, then finishes the session (writing any
    /// tarball or image-refs file) when `work` succeeded. Errors are raised as `ko.KoError`
    /// subclasses; a signal handler's exception (`KeyboardInterrupt`) wins over the `Cancelled`
    /// error it caused.
    pub fn run<T, F, Fut>(self, py: Python<'_>, work: F) -> PyResult<T>
    where
        F: FnOnce(Arc<Session>, CancelToken) -> Fut,
        Fut: Future<Output = ko_core::Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        let session = Session::new(self.options).map_err(|e| error::to_py(py, &e))?;
        session.set_event_sink(events::sink(self.on_event));
        let session = Arc::new(session);
        let cancel = CancelToken::new();
        let work = work(session.clone(), cancel.clone());
        let whole = async move {
            let value = work.await?;
            session.finish().await?;
            Ok(value)
        };
        block_on(py, &cancel, whole)
    }
}

/// Waits for `work` (which watches `cancel`) on the shared runtime with the GIL released,
/// cancelling it when a signal handler raises; that exception wins over the `Cancelled` error.
pub fn block_on<T, Fut>(py: Python<'_>, cancel: &CancelToken, work: Fut) -> PyResult<T>
where
    Fut: Future<Output = ko_core::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let mut raised: Option<PyErr> = None;
    let result = py.detach(|| {
        ko_core::embed::block_on(work, cancel, || {
            Python::attach(|py| match py.check_signals() {
                Ok(()) => false,
                Err(e) => {
                    raised = Some(e);
                    true
                }
            })
        })
    });
    if let Some(signal) = raised {
        return Err(signal);
    }
    result.map_err(|e| error::to_py(py, &e))
}
