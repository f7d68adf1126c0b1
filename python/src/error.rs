//! The whole error boundary between ko-core and Python, in one place.
//!
//! Every [`ko_core::Error`] becomes an instance of one `ko.KoError` subclass chosen by its
//! [`ErrorKind`]; `str(exc)` is the message the CLI prints after `Error: `, `exc.kind` is the
//! kind's stable name, `exc.code` its stable number (as C's `ko_error_code`) and `exc.exit_code`
//! is kubectl's exit status (or `None`). The error's
//! `source()` chain becomes the exception's `__cause__` chain.

use std::error::Error as StdError;

use ko_core::ErrorKind;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyModule;

pyo3::create_exception!(ko, KoError, PyException, "Base class of every error ko raises.");
pyo3::create_exception!(ko, InvalidInputError, KoError, "An argument, option, reference or file is malformed.");
pyo3::create_exception!(ko, NotFoundError, KoError, "A package, base image, file or tag does not exist.");
pyo3::create_exception!(ko, BuildError, KoError, "`go build` failed, or the package cannot become an image.");
pyo3::create_exception!(ko, RegistryError, KoError, "The registry answered with an error or could not be reached.");
pyo3::create_exception!(ko, AuthError, KoError, "The registry refused the credentials.");
pyo3::create_exception!(ko, IoError, KoError, "Reading or writing a local file failed.");
pyo3::create_exception!(ko, ConfigError, KoError, "`.ko.yaml` or a `KO_*` environment variable is invalid.");
pyo3::create_exception!(ko, KubectlError, KoError, "`kubectl` failed (see `exit_code`) or is missing.");
pyo3::create_exception!(ko, CancelledError, KoError, "The call was cancelled.");
pyo3::create_exception!(ko, UnsupportedError, KoError, "Something upstream ko does that this version does not (yet).");
pyo3::create_exception!(ko, InternalError, KoError, "A bug in ko (a caught panic); please report it.");

/// Adds the exception classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("KoError", py.get_type::<KoError>())?;
    m.add("InvalidInputError", py.get_type::<InvalidInputError>())?;
    m.add("NotFoundError", py.get_type::<NotFoundError>())?;
    m.add("BuildError", py.get_type::<BuildError>())?;
    m.add("RegistryError", py.get_type::<RegistryError>())?;
    m.add("AuthError", py.get_type::<AuthError>())?;
    m.add("IoError", py.get_type::<IoError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("KubectlError", py.get_type::<KubectlError>())?;
    m.add("CancelledError", py.get_type::<CancelledError>())?;
    m.add("UnsupportedError", py.get_type::<UnsupportedError>())?;
    m.add("InternalError", py.get_type::<InternalError>())?;
    Ok(())
}

/// Converts a core error (with its cause chain) into the matching Python exception.
pub fn to_py(py: Python<'_>, err: &ko_core::Error) -> PyErr {
    let exc = exception(py, err);
    // Rebuild the chain from the deepest cause up, so each link's __cause__ is the next one down.
    let mut causes: Vec<&(dyn StdError + 'static)> = Vec::new();
    let mut next = err.source();
    while let Some(cause) = next {
        causes.push(cause);
        next = cause.source();
    }
    let mut below: Option<PyErr> = None;
    for cause in causes.into_iter().rev() {
        let link = cause_exception(py, cause);
        link.set_cause(py, below.take());
        below = Some(link);
    }
    exc.set_cause(py, below);
    exc
}

/// One exception for `err` itself, without its causes.
fn exception(py: Python<'_>, err: &ko_core::Error) -> PyErr {
    let message = err.message().to_string();
    let exc = match err.kind() {
        ErrorKind::InvalidInput => InvalidInputError::new_err(message),
        ErrorKind::NotFound => NotFoundError::new_err(message),
        ErrorKind::Build => BuildError::new_err(message),
        ErrorKind::Registry => RegistryError::new_err(message),
        ErrorKind::Auth => AuthError::new_err(message),
        ErrorKind::Io => IoError::new_err(message),
        ErrorKind::Config => ConfigError::new_err(message),
        ErrorKind::Kubectl => KubectlError::new_err(message),
        ErrorKind::Cancelled => CancelledError::new_err(message),
        ErrorKind::Unsupported => UnsupportedError::new_err(message),
        ErrorKind::Internal => InternalError::new_err(message),
        // A kind newer than this binding: still a KoError, with its kind and code set below.
        _ => KoError::new_err(message),
    };
    let value = exc.value(py);
    // Setting attributes on a fresh exception instance cannot fail in practice; if it ever did,
    // the exception is still the right class with the right message.
    let _ = value.setattr("kind", err.kind().as_str());
    let _ = value.setattr("code", err.kind().code());
    let _ = value.setattr("exit_code", err.exit_code());
    exc
}

/// A cause below the top-level error: core errors keep their class, I/O errors become the
/// matching `OSError` subclass, anything else a plain `Exception` with its message.
fn cause_exception(py: Python<'_>, cause: &(dyn StdError + 'static)) -> PyErr {
    if let Some(core) = cause.downcast_ref::<ko_core::Error>() {
        return exception(py, core);
    }
    if let Some(io) = cause.downcast_ref::<std::io::Error>() {
        return match io.raw_os_error() {
            Some(code) => PyErr::from(std::io::Error::from_raw_os_error(code)),
            // pyo3 picks the OSError subclass from the kind (NotFound → FileNotFoundError).
            None => PyErr::from(std::io::Error::new(io.kind(), io.to_string())),
        };
    }
    PyException::new_err(cause.to_string())
}
