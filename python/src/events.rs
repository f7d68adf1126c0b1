//! The engine's events, as Python sees them: each one a `dict` with snake_case keys (`{"kind":
//! "build_started", "import_path": …, "platform": …}`) passed to the call's `on_event`, on the
//! worker thread that reached the moment, holding the GIL only for the callback. kubectl's output
//! lines are also written to `sys.stdout` / `sys.stderr`, where Python code (and pytest's capture)
//! expects a child's output. An exception in `on_event` is printed, as `logging` prints a failing
//! handler's, and the build goes on.

use std::sync::Arc;

use ko_core::{Event, EventSink, OutputStream};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// The sink for a call's events.
pub fn sink(on_event: Option<Py<PyAny>>) -> EventSink {
    Arc::new(move |event: &Event| {
        let is_kubectl = matches!(event, Event::KubectlOutput { .. });
        if on_event.is_none() && !is_kubectl {
            return;
        }
        // try_attach: during interpreter shutdown there is nobody left to tell.
        let _ = Python::try_attach(|py| {
            if let Err(e) = deliver(py, event, on_event.as_ref()) {
                e.print(py);
            }
        });
    })
}

fn deliver(py: Python<'_>, event: &Event, on_event: Option<&Py<PyAny>>) -> PyResult<()> {
    if let Event::KubectlOutput { stream, line } = event {
        let name = match stream {
            OutputStream::Stdout => "stdout",
            OutputStream::Stderr => "stderr",
        };
        let file = py.import("sys")?.getattr(name)?;
        file.call_method1("write", (format!("{line}\n"),))?;
    }
    if let Some(callback) = on_event {
        let value: serde_json::Value = serde_json::from_str(&event.to_json()).unwrap_or_default();
        callback.call1(py, (to_python(py, &value)?,))?;
    }
    Ok(())
}

/// A JSON value as Python objects, object keys and the `kind` tag in snake_case.
fn to_python<'py>(py: Python<'py>, value: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    use serde_json::Value;
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Value::Number(n) => match n.as_u64() {
            Some(u) => u.into_pyobject(py)?.into_any(),
            None => n.as_f64().unwrap_or_default().into_pyobject(py)?.into_any(),
        },
        Value::String(s) => s.into_pyobject(py)?.into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_python(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                let v = match (k.as_str(), v) {
                    ("kind", Value::String(kind)) => snake_case(kind).into_pyobject(py)?.into_any(),
                    _ => to_python(py, v)?,
                };
                dict.set_item(snake_case(k), v)?;
            }
            dict.into_any()
        }
    })
}

/// `importPath` → `import_path`.
fn snake_case(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}
