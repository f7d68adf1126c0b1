//! `ko_options_t` (everything a session takes: one setter per ko-core option, named as the core
//! names it, or `ko_options_set_json` for the whole set) and `ko_resolve_options_t` (what a
//! resolve takes). [`set`] is the one place that maps an option's name to its field; the C
//! setters below and the C++ builder (`bindings/cpp/src/bridge.rs`) both go through it. Only
//! types are converted here: splitting comma lists, defaults and validation happen in the core
//! when the session is made, as for every front end.
//!
//! List options take `(const char *const *items, size_t n)` and replace the whole list, the same
//! shape as `ko_build`'s import paths.

use std::ffi::{OsStr, c_char};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use ko_core::{Error, ErrorKind, KeyValues, Options, ResolveOptions, Result};

use crate::boundary::{bytes, fallible, infallible, need_mut, optional_text, texts, utf8};
use crate::error::ko_error_t;

/// A value for [`set`], by the shape of the option.
pub(crate) enum Value<'a> {
    /// A string or a path; `None` unsets it.
    Text(Option<&'a [u8]>),
    Flag(bool),
    Count(usize),
    List(Vec<String>),
}

/// Sets the option `name` (a field of [`Options`], as [`Options::names`] lists them) to `value`.
/// `setter` is how the caller's user spells the setter, for messages.
pub(crate) fn set(opts: &mut Options, name: &str, value: Value<'_>, setter: &str) -> Result<()> {
    let text = |v: Option<&[u8]>| -> Result<Option<String>> {
        v.map(|b| utf8(b, setter, "value").map(str::to_string)).transpose()
    };
    let path = |v: Option<&[u8]>| v.map(|b| PathBuf::from(OsStr::from_bytes(b)));
    match (name, value) {
        ("docker_repo", Value::Text(v)) => opts.docker_repo = text(v)?,
        ("base_image", Value::Text(v)) => opts.base_image = text(v)?,
        ("sbom", Value::Text(v)) => opts.sbom = text(v)?,
        ("layer_compression", Value::Text(v)) => opts.layer_compression = text(v)?,
        ("image_user", Value::Text(v)) => opts.image_user = text(v)?,
        ("oci_layout_path", Value::Text(v)) => opts.oci_layout_path = path(v),
        ("tarball", Value::Text(v)) => opts.tarball = path(v),
        ("image_refs", Value::Text(v)) => opts.image_refs = path(v),
        ("sbom_dir", Value::Text(v)) => opts.sbom_dir = path(v),
        ("config_path", Value::Text(v)) => opts.config_path = path(v),
        ("working_dir", Value::Text(v)) => opts.working_dir = path(v),
        ("tag_only", Value::Flag(v)) => opts.tag_only = v,
        ("push", Value::Flag(v)) => opts.push = Some(v),
        ("local", Value::Flag(v)) => opts.local = v,
        ("preserve_import_paths", Value::Flag(v)) => opts.preserve_import_paths = v,
        ("base_import_paths", Value::Flag(v)) => opts.base_import_paths = v,
        ("bare", Value::Flag(v)) => opts.bare = v,
        ("insecure_registry", Value::Flag(v)) => opts.insecure_registry = v,
        ("disable_optimizations", Value::Flag(v)) => opts.disable_optimizations = v,
        ("jobs", Value::Count(v)) => opts.jobs = v,
        ("platforms", Value::List(v)) => opts.platforms = v,
        ("tags", Value::List(v)) => opts.tags = v,
        ("ldflags", Value::List(v)) => opts.ldflags = v,
        ("image_labels", Value::List(v)) => opts.image_labels = KeyValues::pairs(key_values(v, setter)?),
        ("image_annotations", Value::List(v)) => opts.image_annotations = KeyValues::pairs(key_values(v, setter)?),
        ("env", Value::List(v)) => opts.env = Some(key_values(v, setter)?.into_iter().collect()),
        (name, _) if Options::names().contains(&name) => {
            return Err(Error::internal(format!("{setter} was given a value of the wrong shape for `{name}`")));
        }
        (name, _) => {
            return Err(Error::new(ErrorKind::InvalidInput, format!("{setter}: no ko option is named `{name}`")));
        }
    }
    Ok(())
}

/// `KEY=VALUE` entries (as in `environ`), split at the first `=`: a value may hold `=` and `,`.
fn key_values(entries: Vec<String>, setter: &str) -> Result<Vec<(String, String)>> {
    entries
        .into_iter()
        .map(|entry| match entry.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(Error::new(ErrorKind::InvalidInput, format!("{setter}: `{entry}` is not KEY=VALUE"))),
        })
        .collect()
}

/// Options for a session: every field unset, so that each falls back to the environment and
/// `.ko.yaml` as in the ko CLI.
///
/// Created by `ko_options_new`, freed by `ko_options_delete`. Not thread-safe: set it from one
/// thread at a time. `ko_session_new` copies it, so it may be changed or deleted afterwards.
#[allow(non_camel_case_types)]
pub struct ko_options_t {
    pub(crate) inner: Options,
}

/// A new, empty set of options.
///
/// Ownership: the caller owns the result and frees it with `ko_options_delete`. Never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn ko_options_new() -> *mut ko_options_t {
    infallible(std::ptr::null_mut(), || Box::into_raw(Box::new(ko_options_t { inner: Options::default() })))
}

/// Frees options. NULL is allowed (and does nothing).
///
/// Ownership: takes `options`, which must not be used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_options_delete(options: *mut ko_options_t) {
    infallible((), || {
        if !options.is_null() {
            // SAFETY: options from `ko_options_new`, not yet deleted, as the header requires.
            drop(unsafe { Box::from_raw(options) });
        }
    })
}

/// Replaces every option with the JSON object `json`, whose keys are the options' names in
/// camelCase (`{"dockerRepo": "registry.example.com/team", "platforms": ["linux/amd64"],
/// "push": false, "env": {"PATH": "/usr/bin"}}`); keys left out are unset. An unknown key or a
/// value of the wrong type is a `KO_INVALID_INPUT` error, and leaves `options` unchanged.
///
/// Ownership: `json` is borrowed for the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_options_set_json(options: *mut ko_options_t, json: *const c_char) -> *mut ko_error_t {
    fallible(|| {
        const F: &str = "ko_options_set_json";
        let options = unsafe { need_mut(options, F, "options") }?;
        let json = utf8(unsafe { bytes(json, F, "json") }?, F, "json")?;
        options.inner = Options::from_json(json)?;
        Ok(())
    })
}

unsafe fn set_text(options: *mut ko_options_t, name: &str, value: *const c_char) -> *mut ko_error_t {
    fallible(|| {
        let setter = format!("ko_options_set_{name}");
        let options = unsafe { need_mut(options, &setter, "options") }?;
        let value = if value.is_null() { None } else { Some(unsafe { bytes(value, &setter, "value") }?) };
        set(&mut options.inner, name, Value::Text(value), &setter)
    })
}

unsafe fn set_flag(options: *mut ko_options_t, name: &str, value: bool) -> *mut ko_error_t {
    fallible(|| {
        let setter = format!("ko_options_set_{name}");
        let options = unsafe { need_mut(options, &setter, "options") }?;
        set(&mut options.inner, name, Value::Flag(value), &setter)
    })
}

unsafe fn set_list(options: *mut ko_options_t, name: &str, items: *const *const c_char, n: usize) -> *mut ko_error_t {
    fallible(|| {
        let setter = format!("ko_options_set_{name}");
        let options = unsafe { need_mut(options, &setter, "options") }?;
        let items = unsafe { texts(items, n, &setter, "items") }?;
        set(&mut options.inner, name, Value::List(items), &setter)
    })
}

// One setter per option. Text setters take a NUL-terminated string (NULL unsets the option); path
// setters also take bytes that are not UTF-8. List setters take `n` strings (`items` may be NULL
// when `n` is 0) and replace the list. Each borrows its arguments for the call only.

/// The destination repository (`KO_DOCKER_REPO` when unset), as `registry.example.com/team`.
///
/// Copies `value`; NULL unsets the option.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_options_set_docker_repo(
    options: *mut ko_options_t,
    value: *const c_char,
) -> *mut ko_error_t {
    unsafe { set_text(options, "docker_repo", value) }
}

/// The base image for every import path (overrides `.ko.yaml` and `KO_DEFAULTBASEIMAGE`):
/// `static`, `scratch`, a registry reference or `oci-layout:DIR`.
///
/// Copies `value`; NULL unsets the option.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_options_set_base_image(
    options: *mut ko_options_t,
    value: *const c_char,
) -> *mut ko_error_t {
    unsafe { set_text(options, "base_image", value) }
}

/// The platforms to build for: `all`, or `os/arch[/variant][:osversion]` entries (an entry may
/// hold several, comma-separated).
///
/// Copies the `n` strings of `items` (NULL when `n` is 0), replacing the list.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_options_set_platforms(
    options: *mut ko_options_t,
    items: *const *const c_char,
    n: usize,
) -> *mut ko_error_t {
    unsafe { set_list(options, "platforms", items, n) }
}

/// The tags to publish (`latest` when none).
///
/// Copies the `n` strings of `items` (NULL when `n` is 0), replacing the list.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_options_set_tags(
    options: *mut ko_options_t,
    items: *const *const c_char,
    n: usize,
) -> *mut ko_error_t {
    unsafe { set_list(options, "tags", items, n) }
}

/// Publish `repo:tag` only and refer to images by it, without a digest.
///
/// Not thread-safe, as every setter: one thread at a time per `options`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_options_set_tag_only(options: *mut ko_options_t, value: bool) -> *mut ko_error_t {
    unsafe { set_flag(options, "tag_only", value) }
}

/// Push to the registry (the default); false builds without pushing.
///
/// Not thread-safe, as every setter: one thread at a time per `options`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_options_set_push(options: *mut ko_options_t, value: bool) -> *mut ko_error_t {
    unsafe { set_flag(options, "push", value) }
}

/// Load into the Docker daemon instead of pushing (not supported by this version:
/// `ko_session_new` fails with `KO_UNSUPPORTED`).
///
/// Not thread-safe, as every setter: one thread at a time per `options`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_options_set_local(options: *mut ko_options_t, value: bool) -> *mut ko_error_t {
    unsafe { set_flag(options, "local", value) }
}

/// Name images `repo/<import path>`.
///
/// Not thread-safe, as every setter: one thread at a time per `options`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_options_set_preserve_import_paths(
    options: *mut ko_options_t,
    value: bool,
) -> *mut ko_error_t {
    unsafe { set_flag(options, "preserve_import_paths", value) }
}

/// Name images `repo/<last element of the import path>`.
///
/// Not thread-safe, as every setter: one thread at a time per `options`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_options_set_base_import_paths(options: *mut ko_options_t, value: bool) -> *mut ko_error_t {
    unsafe { set_flag(options, "base_import_paths", value) }
}

/// Name images `repo` itself.
///
/// Not thread-safe, as every setter: one thread at a time per `options`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_options_set_bare(options: *mut ko_options_t, value: bool) -> *mut ko_error_t {
    unsafe { set_flag(options, "bare", value) }
}

/// Allow plain HTTP and unverified TLS to registries, for this session only.
///
/// Not thread-safe, as every setter: one thread at a time per `options`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_options_set_insecure_registry(options: *mut ko_options_t, value: bool) -> *mut ko_error_t {
    unsafe { set_flag(options, "insecure_registry", value) }
}

/// Also write every image to this OCI layout directory.
///
/// Copies `value`; NULL unsets the option.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_options_set_oci_layout_path(
    options: *mut ko_options_t,
    value: *const c_char,
) -> *mut ko_error_t {
    unsafe { set_text(options, "oci_layout_path", value) }
}

/// Also write a `docker load`-able tarball to this file, at `ko_session_finish`.
///
/// Copies `value`; NULL unsets the option.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_options_set_tarball(options: *mut ko_options_t, value: *const c_char) -> *mut ko_error_t {
    unsafe { set_text(options, "tarball", value) }
}

/// Write the published references to this file, one per line, at `ko_session_finish`.
///
/// Copies `value`; NULL unsets the option.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_options_set_image_refs(
    options: *mut ko_options_t,
    value: *const c_char,
) -> *mut ko_error_t {
    unsafe { set_text(options, "image_refs", value) }
}

/// Also write each image's SBOM into this directory (`<app>-<os>-<arch>.spdx.json`,
/// `<app>-index.spdx.json` for an index), created when missing.
///
/// Copies `value`; NULL unsets the option.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_options_set_sbom_dir(options: *mut ko_options_t, value: *const c_char) -> *mut ko_error_t {
    unsafe { set_text(options, "sbom_dir", value) }
}

/// Concurrent `go build`s (0, the default, means the number of CPUs).
///
/// Not thread-safe, as every setter: one thread at a time per `options`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_options_set_jobs(options: *mut ko_options_t, value: usize) -> *mut ko_error_t {
    fallible(|| {
        const F: &str = "ko_options_set_jobs";
        let options = unsafe { need_mut(options, F, "options") }?;
        set(&mut options.inner, "jobs", Value::Count(value), F)
    })
}

/// The SBOM kind (only `none` for now).
///
/// Copies `value`; NULL unsets the option.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_options_set_sbom(options: *mut ko_options_t, value: *const c_char) -> *mut ko_error_t {
    unsafe { set_text(options, "sbom", value) }
}

/// How ko's own layers are compressed: `gzip` (the default) or `zstd`.
///
/// Copies `value`; NULL unsets the option.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_options_set_layer_compression(
    options: *mut ko_options_t,
    value: *const c_char,
) -> *mut ko_error_t {
    unsafe { set_text(options, "layer_compression", value) }
}

/// Image config labels, as `key=value` entries (each one label; the value may hold `,` and `=`).
///
/// Copies the `n` strings of `items` (NULL when `n` is 0), replacing the list.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_options_set_image_labels(
    options: *mut ko_options_t,
    items: *const *const c_char,
    n: usize,
) -> *mut ko_error_t {
    unsafe { set_list(options, "image_labels", items, n) }
}

/// Manifest (and index) annotations, as `key=value` entries (each one annotation).
///
/// Copies the `n` strings of `items` (NULL when `n` is 0), replacing the list.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_options_set_image_annotations(
    options: *mut ko_options_t,
    items: *const *const c_char,
    n: usize,
) -> *mut ko_error_t {
    unsafe { set_list(options, "image_annotations", items, n) }
}

/// The image config's `User`.
///
/// Copies `value`; NULL unsets the option.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_options_set_image_user(
    options: *mut ko_options_t,
    value: *const c_char,
) -> *mut ko_error_t {
    unsafe { set_text(options, "image_user", value) }
}

/// Linker flags, joined with spaces into one `-ldflags=` (replacing `.ko.yaml`'s).
///
/// Copies the `n` strings of `items` (NULL when `n` is 0), replacing the list.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_options_set_ldflags(
    options: *mut ko_options_t,
    items: *const *const c_char,
    n: usize,
) -> *mut ko_error_t {
    unsafe { set_list(options, "ldflags", items, n) }
}

/// Build with `-gcflags all=-N -l`.
///
/// Not thread-safe, as every setter: one thread at a time per `options`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_options_set_disable_optimizations(
    options: *mut ko_options_t,
    value: bool,
) -> *mut ko_error_t {
    unsafe { set_flag(options, "disable_optimizations", value) }
}

/// The `.ko.yaml` file, or a directory holding one (`KO_CONFIG_PATH` when unset).
///
/// Copies `value`; NULL unsets the option.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_options_set_config_path(
    options: *mut ko_options_t,
    value: *const c_char,
) -> *mut ko_error_t {
    unsafe { set_text(options, "config_path", value) }
}

/// Where `go` runs and relative paths resolve (the process's current directory when unset).
///
/// Copies `value`; NULL unsets the option.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_options_set_working_dir(
    options: *mut ko_options_t,
    value: *const c_char,
) -> *mut ko_error_t {
    unsafe { set_text(options, "working_dir", value) }
}

/// The whole environment ko reads (`KO_*`, `GOFLAGS`, `DOCKER_CONFIG`, `PATH`...) and gives `go` and
/// `kubectl`, as `KEY=VALUE` entries (the shape of `environ`). When never set, a session reads
/// the process environment once, in `ko_session_new`.
///
/// Copies the `n` strings of `items` (NULL when `n` is 0), replacing the list.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_options_set_env(
    options: *mut ko_options_t,
    items: *const *const c_char,
    n: usize,
) -> *mut ko_error_t {
    unsafe { set_list(options, "env", items, n) }
}

/// What a resolve takes besides the session's options: by default, directories are not walked
/// recursively, no selector applies, and only `ko://` scalars are references (strict).
///
/// Created by `ko_resolve_options_new`, freed by `ko_resolve_options_delete`. Not thread-safe
/// while being set; a call only reads it, so once set it may be shared by concurrent calls.
#[allow(non_camel_case_types)]
pub struct ko_resolve_options_t {
    pub(crate) inner: ResolveOptions,
}

/// New resolve options, with the defaults.
///
/// Ownership: the caller owns the result and frees it with `ko_resolve_options_delete`. Never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn ko_resolve_options_new() -> *mut ko_resolve_options_t {
    infallible(std::ptr::null_mut(), || {
        Box::into_raw(Box::new(ko_resolve_options_t { inner: ResolveOptions::default() }))
    })
}

/// Frees resolve options. NULL is allowed (and does nothing).
///
/// Ownership: takes `options`, which must not be used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_resolve_options_delete(options: *mut ko_resolve_options_t) {
    infallible((), || {
        if !options.is_null() {
            // SAFETY: options from `ko_resolve_options_new`, not yet deleted.
            drop(unsafe { Box::from_raw(options) });
        }
    })
}

/// Walk directories recursively (`ko resolve -R`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_resolve_options_set_recursive(
    options: *mut ko_resolve_options_t,
    value: bool,
) -> *mut ko_error_t {
    fallible(|| {
        unsafe { need_mut(options, "ko_resolve_options_set_recursive", "options") }?.inner.recursive = value;
        Ok(())
    })
}

/// Keep only the documents (and `List` items) matching this label selector (`ko resolve -l`);
/// NULL removes it. The selector is checked by the resolve call.
///
/// Ownership: `selector` is copied.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_resolve_options_set_selector(
    options: *mut ko_resolve_options_t,
    selector: *const c_char,
) -> *mut ko_error_t {
    fallible(|| {
        const F: &str = "ko_resolve_options_set_selector";
        let options = unsafe { need_mut(options, F, "options") }?;
        options.inner.selector = unsafe { optional_text(selector, F, "selector") }?.map(str::to_string);
        Ok(())
    })
}

/// Strict (the default): only `ko://` scalars are references. False also takes bare import paths
/// of the module's `main` packages, as `ko resolve --strict=false`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_resolve_options_set_strict(
    options: *mut ko_resolve_options_t,
    value: bool,
) -> *mut ko_error_t {
    fallible(|| {
        unsafe { need_mut(options, "ko_resolve_options_set_strict", "options") }?.inner.strict = value;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value of the right shape for every option.
    fn sample(name: &str) -> Value<'static> {
        match name {
            "docker_repo" | "base_image" | "sbom" | "image_user" | "oci_layout_path" | "tarball" | "image_refs"
            | "sbom_dir" | "config_path" | "working_dir" | "layer_compression" => Value::Text(Some(b"x")),
            "jobs" => Value::Count(3),
            "platforms" | "tags" | "ldflags" | "image_labels" | "image_annotations" => Value::List(vec!["a=b".into()]),
            "env" => Value::List(vec!["A=b=c".into()]),
            _ => Value::Flag(true),
        }
    }

    #[test]
    fn every_core_option_has_a_setter_that_sets_it() {
        for name in Options::names() {
            let mut opts = Options::default();
            set(&mut opts, name, sample(name), "test").unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_ne!(opts, Options::default(), "setting {name} changed nothing");
        }
    }

    #[test]
    fn shapes_names_and_entries_are_checked() {
        let mut opts = Options::default();
        let err = set(&mut opts, "nope", Value::Flag(true), "ko::Options::set").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let err = set(&mut opts, "tags", Value::Flag(true), "x").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Internal);
        let err = set(&mut opts, "env", Value::List(vec!["NOEQUALS".into()]), "ko_options_set_env").unwrap_err();
        assert_eq!(err.message(), "ko_options_set_env: `NOEQUALS` is not KEY=VALUE");
        set(&mut opts, "env", Value::List(vec!["A=1=2".into()]), "x").unwrap();
        assert_eq!(opts.env.as_ref().unwrap()["A"], "1=2");
        let err = set(&mut opts, "docker_repo", Value::Text(Some(b"\xff")), "ko_options_set_docker_repo").unwrap_err();
        assert!(err.message().starts_with("ko_options_set_docker_repo: `value` is not UTF-8"), "{err}");
        set(&mut opts, "working_dir", Value::Text(Some(b"/tmp/\xff")), "x").unwrap();
        assert_eq!(opts.working_dir.as_deref().unwrap().as_os_str().as_bytes(), b"/tmp/\xff");
        set(&mut opts, "working_dir", Value::Text(None), "x").unwrap();
        assert_eq!(opts.working_dir, None);
    }

    #[test]
    fn c_setters_and_json() {
        unsafe {
            let opts = ko_options_new();
            assert!(ko_options_set_docker_repo(opts, c"reg.example/team".as_ptr()).is_null());
            let tags = [c"v1".as_ptr(), c"v2".as_ptr()];
            assert!(ko_options_set_tags(opts, tags.as_ptr(), 2).is_null());
            assert!(ko_options_set_push(opts, false).is_null());
            assert!(ko_options_set_jobs(opts, 2).is_null());
            let o = &(*opts).inner;
            assert_eq!(
                (o.docker_repo.as_deref(), o.tags.as_slice(), o.push, o.jobs),
                (Some("reg.example/team"), &["v1".to_string(), "v2".to_string()][..], Some(false), 2)
            );
            let err = ko_options_set_json(opts, c"{\"dockerrepo\":1}".as_ptr());
            assert_eq!(crate::error::ko_error_code(err), crate::error::ko_error_code_t::KO_INVALID_INPUT);
            crate::error::ko_error_delete(err);
            assert_eq!((*opts).inner.tags.len(), 2, "a failed set_json changes nothing");
            assert!(ko_options_set_json(opts, c"{\"tagOnly\":true}".as_ptr()).is_null());
            assert_eq!((*opts).inner, Options { tag_only: true, ..Default::default() });
            let err = ko_options_set_bare(std::ptr::null_mut(), true);
            assert_eq!(crate::error::ko_error_code(err), crate::error::ko_error_code_t::KO_INVALID_INPUT);
            crate::error::ko_error_delete(err);
            ko_options_delete(opts);
        }
    }
}
