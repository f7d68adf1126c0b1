//! The Python extension module `ko._ko` (pyo3): ko-core's `resolve`, `build`, `apply`, `create`
//! and `delete` as blocking Python functions. The package `ko` (python/ko/__init__.py) re-exports
//! everything here; the signatures and docstrings below are what `help(ko.build)` shows, and
//! python/ko/_ko.pyi states the same signatures with types.
//!
//! This crate only translates: arguments into [`ko_core::Options`] ([`options`]), core errors
//! into `ko.KoError` subclasses ([`error`]), engine events into `on_event` dicts ([`events`]),
//! async calls into blocking ones on ko-core's shared runtime that release the GIL and honour
//! Ctrl-C ([`runtime`]), and `tracing` events into Python `logging` ([`log`]). Every function is
//! safe to call from several Python threads at once.

mod error;
mod events;
mod log;
mod options;
mod runtime;

use std::path::PathBuf;

use pyo3::prelude::*;

use options::{path_list, resolve_options, strings, with_options};
use runtime::Call;

with_options! {
    /// Resolves the YAML files (or directories) in `paths` as `ko resolve -f` does: every
    /// `ko://<import path>` scalar is built, published once, and replaced by its reference;
    /// every other byte of the input is kept. Returns the resolved YAML, documents of several
    /// inputs separated by `---`.
    ///
    /// `paths` is a path or a list of paths (relative to `working_dir`); `recursive` walks
    /// directories (`-R`), `selector` keeps matching objects (`-l`), `strict=False` also takes
    /// bare import paths of main packages. `env` replaces the process environment for this
    /// call, `on_event` receives each progress event as a dict. Other keyword arguments are
    /// `ko build`'s options.
    ///
    /// Raises a `ko.KoError` subclass on failure.
    fn resolve(paths: Bound<'_, PyAny>, recursive: bool, selector: Option<String>, strict: bool)
    signature(paths, *, recursive = false, selector = None, strict = true,) -> String =
    |py: Python<'_>, call: Call| {
        let files = path_list(&paths, "paths")?;
        let ro = resolve_options(recursive, selector, strict);
        call.run(py, |session, cancel| async move { session.resolve_files(&files, &ro, &cancel).await })
    }
}

with_options! {
    /// Resolves one YAML text as `ko resolve -f -` does (messages name it `-`). Returns the
    /// resolved YAML. See `resolve` for `selector`, `strict` and the options.
    fn resolve_string(yaml_text: String, selector: Option<String>, strict: bool)
    signature(yaml_text, *, selector = None, strict = true,) -> String =
    |py: Python<'_>, call: Call| {
        let ro = resolve_options(false, selector, strict);
        call.run(py, |session, cancel| async move { session.resolve_str(&yaml_text, &ro, &cancel).await })
    }
}

with_options! {
    /// Builds the Go `main` packages `import_paths` (one import path or a list: full, `./relative`
    /// or `ko://…`) into images and publishes them, as `ko build` does. Returns one reference per
    /// argument, in argument order (`repo@sha256:…`, or `repo:tag@sha256:…` with one tag).
    /// An empty list builds `.`.
    ///
    /// Raises a `ko.KoError` subclass on failure.
    fn build(import_paths: Bound<'_, PyAny>)
    signature(import_paths, *,) -> Vec<String> =
    |py: Python<'_>, call: Call| {
        let args = strings(Some(&import_paths), "import_paths")?;
        let published = call.run(py, |session, cancel| async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            session.build(&args, &cancel).await
        })?;
        Ok(published.into_iter().map(|p| p.reference).collect())
    }
}

with_options! {
    /// Resolves `paths` (as `resolve`) and pipes the result into `kubectl apply -f -`, followed by
    /// `kubectl_args` (e.g. `["--context=prod", "-n", "web"]`). Nothing reaches kubectl when a
    /// build fails. Raises `ko.KubectlError` (with `exit_code`) when kubectl fails or is missing.
    fn apply(
        paths: Bound<'_, PyAny>,
        kubectl_args: Option<Bound<'_, PyAny>>,
        recursive: bool,
        selector: Option<String>,
        strict: bool,
    )
    signature(paths, *, kubectl_args = None, recursive = false, selector = None, strict = true,) -> () =
    |py: Python<'_>, call: Call| {
        let ro = resolve_options(recursive, selector, strict);
        kubectl(py, ko_core::KubectlVerb::Apply, &paths, kubectl_args, ro, call)
    }
}

with_options! {
    /// As `apply`, with `kubectl create -f -`.
    fn create(
        paths: Bound<'_, PyAny>,
        kubectl_args: Option<Bound<'_, PyAny>>,
        recursive: bool,
        selector: Option<String>,
        strict: bool,
    )
    signature(paths, *, kubectl_args = None, recursive = false, selector = None, strict = true,) -> () =
    |py: Python<'_>, call: Call| {
        let ro = resolve_options(recursive, selector, strict);
        kubectl(py, ko_core::KubectlVerb::Create, &paths, kubectl_args, ro, call)
    }
}

fn kubectl(
    py: Python<'_>,
    verb: ko_core::KubectlVerb,
    paths: &Bound<'_, PyAny>,
    kubectl_args: Option<Bound<'_, PyAny>>,
    ro: ko_core::ResolveOptions,
    call: Call,
) -> PyResult<()> {
    let files: Vec<PathBuf> = path_list(paths, "paths")?;
    let args = strings(kubectl_args.as_ref(), "kubectl_args")?;
    call.run(py, |session, cancel| async move { session.apply(verb, &files, &ro, &args, &cancel).await })
}

/// Runs `kubectl delete kubectl_args…` (e.g. `["-f", "config/"]`), as `ko delete` does; its output
/// goes to `sys.stdout`/`sys.stderr`. Raises `ko.KubectlError` (with `exit_code`) when kubectl
/// fails or is missing.
#[pyfunction]
#[pyo3(signature = (kubectl_args))]
fn delete(py: Python<'_>, kubectl_args: Bound<'_, PyAny>) -> PyResult<()> {
    let args = strings(Some(&kubectl_args), "kubectl_args")?;
    let events = ko_core::Events::default();
    events.set_sink(events::sink(None));
    let cancel = ko_core::CancelToken::new();
    let token = cancel.clone();
    runtime::block_on(py, &cancel, async move {
        let env = ko_core::Env::from_process();
        ko_core::delete(&args, &env, ko_core::KubectlOutput::Events, &events, &token).await
    })
}

/// The names of every option, as ko-core lists them (tests check this module's signatures
/// against it).
#[pyfunction]
#[pyo3(name = "_option_names")]
fn option_names() -> Vec<&'static str> {
    ko_core::Options::names()
}

/// The module `ko._ko`.
#[pymodule]
fn _ko(m: &Bound<'_, PyModule>) -> PyResult<()> {
    log::install();
    error::register(m)?;
    m.add_function(wrap_pyfunction!(resolve, m)?)?;
    m.add_function(wrap_pyfunction!(resolve_string, m)?)?;
    m.add_function(wrap_pyfunction!(build, m)?)?;
    m.add_function(wrap_pyfunction!(apply, m)?)?;
    m.add_function(wrap_pyfunction!(create, m)?)?;
    m.add_function(wrap_pyfunction!(delete, m)?)?;
    m.add_function(wrap_pyfunction!(option_names, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
