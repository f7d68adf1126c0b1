//! Python arguments into ko-core's option types. The keywords are [`ko_core::Options`]' fields,
//! listed here once, in the signature every function shares (Python itself then rejects unknown
//! keywords); `tests/test_api.py` checks the list against the core's. Only types are converted
//! here: splitting, defaults and validation happen in the core, as for every front end.

use std::path::PathBuf;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

/// Declares a `#[pyfunction]` whose signature is `$sig`, then `env` and `on_event`, then every
/// other ko option, all keyword-only, so Python itself rejects unknown keywords (`TypeError`)
/// and `inspect.signature` shows them all. `$body` is a closure `|py, call| …` receiving the
/// assembled [`Call`](crate::runtime::Call): the options and the `on_event` callable.
macro_rules! with_options {
    (
        $(#[$attr:meta])*
        fn $name:ident($($arg:ident : $ty:ty),* $(,)?) signature($($sig:tt)*) -> $ret:ty = $body:expr
    ) => {
        $(#[$attr])*
        #[pyfunction]
        #[pyo3(signature = ($($sig)* env = None, on_event = None,
            docker_repo = None, base_image = None, platforms = None, tags = None, tag_only = false,
            push = None, local = false, preserve_import_paths = false, base_import_paths = false,
            bare = false, insecure_registry = false, oci_layout_path = None, tarball = None,
            image_refs = None, jobs = None, sbom = None, sbom_dir = None, image_labels = None,
            image_annotations = None, image_user = None, ldflags = None,
            disable_optimizations = false, layer_compression = None, config_path = None,
            working_dir = None))]
        #[allow(clippy::too_many_arguments)]
        fn $name(
            py: Python<'_>,
            $($arg: $ty,)*
            env: Option<std::collections::BTreeMap<String, String>>,
            on_event: Option<Py<PyAny>>,
            docker_repo: Option<String>,
            base_image: Option<String>,
            platforms: Option<Bound<'_, PyAny>>,
            tags: Option<Bound<'_, PyAny>>,
            tag_only: bool,
            push: Option<bool>,
            local: bool,
            preserve_import_paths: bool,
            base_import_paths: bool,
            bare: bool,
            insecure_registry: bool,
            oci_layout_path: Option<PathBuf>,
            tarball: Option<PathBuf>,
            image_refs: Option<PathBuf>,
            jobs: Option<usize>,
            sbom: Option<String>,
            sbom_dir: Option<PathBuf>,
            image_labels: Option<Bound<'_, PyAny>>,
            image_annotations: Option<Bound<'_, PyAny>>,
            image_user: Option<String>,
            ldflags: Option<Bound<'_, PyAny>>,
            disable_optimizations: bool,
            layer_compression: Option<String>,
            config_path: Option<PathBuf>,
            working_dir: Option<PathBuf>,
        ) -> PyResult<$ret> {
            use $crate::options::{pairs, strings};
            let options = ko_core::Options {
                docker_repo,
                base_image,
                platforms: strings(platforms.as_ref(), "platforms")?,
                tags: strings(tags.as_ref(), "tags")?,
                tag_only,
                push,
                local,
                preserve_import_paths,
                base_import_paths,
                bare,
                insecure_registry,
                oci_layout_path,
                tarball,
                image_refs,
                jobs: jobs.unwrap_or(0),
                sbom,
                sbom_dir,
                image_labels: pairs(image_labels.as_ref(), "image_labels")?,
                image_annotations: pairs(image_annotations.as_ref(), "image_annotations")?,
                image_user,
                ldflags: strings(ldflags.as_ref(), "ldflags")?,
                disable_optimizations,
                layer_compression,
                config_path,
                working_dir,
                env,
                front_end: ko_core::FrontEnd::Python,
                kubectl_output: ko_core::KubectlOutput::Events,
            };
            let body = $body;
            body(py, $crate::runtime::Call { options, on_event })
        }
    };
}

pub(crate) use with_options;

/// A `str` (one value) or an iterable of `str`; `None` is empty.
pub fn strings(value: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<Vec<String>> {
    let Some(value) = value else { return Ok(Vec::new()) };
    if value.is_none() {
        return Ok(Vec::new());
    }
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(vec![s.to_cow()?.into_owned()]);
    }
    let not_strings = || PyTypeError::new_err(format!("{name} must be a str or a sequence of str"));
    let mut out = Vec::new();
    for item in value.try_iter().map_err(|_| not_strings())? {
        out.push(item?.extract::<String>().map_err(|_| not_strings())?);
    }
    Ok(out)
}

/// A mapping `{key: value}` (exact pairs) or `key=value` strings (as `--image-label k=v`).
pub fn pairs(value: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<ko_core::KeyValues> {
    match value {
        Some(v) if v.is_instance_of::<PyDict>() => {
            let not_strings = || PyTypeError::new_err(format!("{name} must map str to str"));
            let mut out = Vec::new();
            for (k, v) in v.cast::<PyDict>()?.iter() {
                let k: String = k.extract().map_err(|_| not_strings())?;
                let v: String = v.extract().map_err(|_| not_strings())?;
                out.push((k, v));
            }
            Ok(ko_core::KeyValues::pairs(out))
        }
        other => Ok(ko_core::KeyValues::flags(strings(other, name)?)),
    }
}

/// A path (`str` or `os.PathLike`) or an iterable of them.
pub fn path_list(value: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<PathBuf>> {
    if let Ok(one) = value.extract::<PathBuf>() {
        return Ok(vec![one]);
    }
    let not_paths = || PyTypeError::new_err(format!("{name} must be a path or a sequence of paths"));
    let mut out = Vec::new();
    for item in value.try_iter().map_err(|_| not_paths())? {
        out.push(item?.extract::<PathBuf>().map_err(|_| not_paths())?);
    }
    Ok(out)
}

/// `ResolveOptions` from the keyword arguments `resolve`, `apply` and `create` share.
pub fn resolve_options(recursive: bool, selector: Option<String>, strict: bool) -> ko_core::ResolveOptions {
    ko_core::ResolveOptions { recursive, selector, strict, stdin: None }
}
