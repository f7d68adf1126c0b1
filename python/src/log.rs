//! ko-core's `tracing` events, forwarded to Python's `logging` (logger `ko`).
//!
//! A subscriber is installed once, as the global default of this extension module's own copy of
//! `tracing` (it is statically linked, so no other Rust library in the process is affected). A
//! global default — rather than one set per call — is what reaches events emitted on tokio's
//! worker and blocking threads, wherever a task happens to be polled.
//!
//! Each event is handed to `logging.getLogger("ko")` at the matching level (TRACE → 5,
//! DEBUG → 10, INFO → 20, WARN → 30, ERROR → 40), after a check of `isEnabledFor`, so Python's
//! configuration decides what is shown; nothing is printed to stderr from Rust. The event's
//! `tracing` target is in the record's `ko_target` attribute (and `funcName`), its Rust source
//! file and line in `pathname` and `lineno`. ko's own events (`ko_core`, which holds the registry
//! client too) are forwarded from DEBUG up, other libraries' from WARN.

use std::fmt::{self, Write as _};

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// Installs the forwarding subscriber; later calls (and a pre-existing default) are no-ops.
pub fn install() {
    let filter = Targets::new().with_target("ko_core", LevelFilter::DEBUG).with_default(LevelFilter::WARN);
    let subscriber = tracing_subscriber::registry().with(PythonLogging.with_filter(filter));
    let _ = tracing::subscriber::set_global_default(subscriber);
}

struct PythonLogging;

static LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

impl<S: Subscriber> Layer<S> for PythonLogging {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let level = match *event.metadata().level() {
            Level::ERROR => 40,
            Level::WARN => 30,
            Level::INFO => 20,
            Level::DEBUG => 10,
            Level::TRACE => 5,
        };
        let mut message = Message::default();
        event.record(&mut message);
        let text = message.finish();
        let meta = event.metadata();
        let site =
            Site { target: meta.target(), file: meta.file().unwrap_or("<rust>"), line: meta.line().unwrap_or(0) };
        // try_attach: during interpreter shutdown there is nobody left to log to.
        let _ = Python::try_attach(|py| {
            if let Err(e) = forward(py, level, &site, &text) {
                // A failing handler must not break the build; report it as logging does.
                e.print(py);
            }
        });
    }
}

/// Where an event comes from: its `tracing` target and Rust source location.
struct Site<'a> {
    target: &'a str,
    file: &'a str,
    line: u32,
}

/// Logs `text` on logger `ko` as a record whose `pathname`/`lineno`/`funcName` are the Rust
/// file, line and target (Python's own caller lookup would find only `logging` internals).
fn forward(py: Python<'_>, level: i32, site: &Site<'_>, text: &str) -> PyResult<()> {
    let logger = LOGGER.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        Ok(py.import("logging")?.call_method1("getLogger", ("ko",))?.unbind())
    })?;
    let logger = logger.bind(py);
    if !logger.call_method1("isEnabledFor", (level,))?.is_truthy()? {
        return Ok(());
    }
    let extra = PyDict::new(py);
    extra.set_item("ko_target", site.target)?;
    let args = PyTuple::empty(py);
    let record = logger
        .call_method1("makeRecord", ("ko", level, site.file, site.line, text, args, py.None(), site.target, extra))?;
    logger.call_method1("handle", (record,))?;
    Ok(())
}

/// The event's `message`, then its other fields as ` name=value`, as the CLI prints them.
#[derive(Default)]
struct Message {
    text: String,
    fields: String,
}

impl Message {
    fn finish(self) -> String {
        self.text + &self.fields
    }
}

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.text.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.text, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}
