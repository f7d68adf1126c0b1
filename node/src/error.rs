//! The whole error boundary between ko-core and JavaScript, in one place.
//!
//! A [`ko_core::Error`] becomes, on the JS thread, an `Error` object with `code` (the kind's
//! stable name, `KO_BUILD`…), `message` (what the CLI prints after `Error: `), `exitCode` (a
//! failed kubectl's status) and `cause`: the error's `source()` chain, each link an `Error` with
//! its message (and `code` when it is a ko error, `errno` when it is an OS error). index.js turns
//! that object into a `KoError`, the class users catch.

use std::error::Error as StdError;

use ko_core::ErrorKind;
use napi::bindgen_prelude::{JsObjectValue, Object};
use napi::{Env, JsValue};

/// The JS error object for `err`, as a napi error that rejects (or throws) with that very object.
pub fn to_js(env: &Env, err: &ko_core::Error) -> napi::Error {
    match error_object(env, err) {
        Ok(object) => napi::Error::from(object.to_unknown()),
        // Creating objects fails only while node tears the environment down; the plain error
        // still carries code and message.
        Err(_) => napi::Error::new(napi::Status::GenericFailure, format!("{}: {}", err.kind().code_name(), err)),
    }
}

/// An error of `kind` raised by this binding itself (a malformed argument).
pub fn binding_error(env: &Env, kind: ErrorKind, message: impl Into<String>) -> napi::Error {
    to_js(env, &ko_core::Error::new(kind, message))
}

fn error_object<'env>(env: &'env Env, err: &ko_core::Error) -> napi::Result<Object<'env>> {
    let mut top = new_error(env, err.message(), Some(err.kind()))?;
    if let Some(code) = err.exit_code() {
        top.set_named_property("exitCode", code)?;
    }
    // Build the chain from the deepest cause up, so each link's `cause` is the next one down.
    let mut causes: Vec<&(dyn StdError + 'static)> = Vec::new();
    let mut next = err.source();
    while let Some(cause) = next {
        causes.push(cause);
        next = cause.source();
    }
    let mut below: Option<Object<'env>> = None;
    for cause in causes.into_iter().rev() {
        let mut link = cause_object(env, cause)?;
        if let Some(b) = below.take() {
            link.set_named_property("cause", b)?;
        }
        below = Some(link);
    }
    if let Some(b) = below {
        top.set_named_property("cause", b)?;
    }
    Ok(top)
}

/// One link below the top: ko errors keep their code, OS errors carry their errno (as Node's own
/// system errors do), anything else is an `Error` with its message.
fn cause_object<'env>(env: &'env Env, cause: &(dyn StdError + 'static)) -> napi::Result<Object<'env>> {
    if let Some(core) = cause.downcast_ref::<ko_core::Error>() {
        return new_error(env, core.message(), Some(core.kind()));
    }
    let mut object = new_error(env, &cause.to_string(), None)?;
    if let Some(errno) = cause.downcast_ref::<std::io::Error>().and_then(std::io::Error::raw_os_error) {
        object.set_named_property("errno", errno)?;
    }
    Ok(object)
}

fn new_error<'env>(env: &'env Env, message: &str, kind: Option<ErrorKind>) -> napi::Result<Object<'env>> {
    let mut object = env.create_error(napi::Error::new(napi::Status::GenericFailure, message.to_string()))?;
    match kind {
        Some(kind) => object.set_named_property("code", kind.code_name())?,
        // napi sets `code` to its own status name; a foreign cause has none.
        None => {
            object.delete_named_property("code")?;
        }
    }
    Ok(object)
}
