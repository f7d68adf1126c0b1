//! The Node addon `ko.node` (napi-rs) under the npm package `ko`: ko-core's engine as promises.
//! index.js is the package's face (argument checks, `AbortSignal`, the `KoError` class, the
//! one-shot functions); this crate is the native half it calls: functions over a [`NativeSession`]
//! (a [`ko_core::Session`] held by JavaScript as an external value), a cancel token per call, and
//! the generated types of what comes back ([`Published`], [`events::KoEvent`]). The functions
//! are private to index.js and left out of index.d.ts.
//!
//! This crate only translates: options through the core's serde form ([`ko_core::Options`], so a
//! JS options object maps onto it key for key and unknown keys are errors), errors into JS error
//! objects ([`error`]), events onto the JS thread ([`events`]). Every call runs on ko-core's
//! shared runtime ([`ko_core::embed::spawn`], which also turns panics into `KO_INTERNAL` errors),
//! never on the JS thread; its promise settles on the JS thread.

mod error;
mod events;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use ko_core::{CancelToken, ErrorKind, FrontEnd, KubectlOutput, KubectlVerb, Options, ResolveOptions, Session};
use napi::Env;
use napi::bindgen_prelude::{External, Function, Object, ToNapiValue};
use napi_derive::napi;
use serde::Deserialize;

use error::{binding_error, to_js};
use events::{CallChannel, Dispatcher, KoEvent};

/// The session's dispatcher: receives each event, and `null` for the markers that order events
/// before results.
type Dispatch<'f> = Function<'f, Option<KoEvent>, ()>;

/// One published import path.
#[napi(object)]
pub struct Published {
    /// The fully qualified import path that was built.
    pub import_path: String,
    /// The reference to use it by (`repo@sha256:…`, `repo:tag@sha256:…`, or `repo:tag`).
    pub reference: String,
    /// For a multi-platform index, each child image's reference by digest.
    pub children: Vec<String>,
}

impl From<ko_core::Published> for Published {
    fn from(p: ko_core::Published) -> Published {
        Published { import_path: p.import_path, reference: p.reference, children: p.children }
    }
}

/// A new cancel token for one call (index.js wires the call's `AbortSignal` to it).
#[napi(skip_typescript)]
pub fn new_cancel() -> External<CancelToken> {
    External::new(CancelToken::new())
}

/// Cancels the call given `token`: it rejects with `KO_CANCELLED` once its `go`/`kubectl`
/// processes are gone.
#[napi(skip_typescript)]
pub fn cancel(token: &External<CancelToken>) {
    token.cancel();
}

/// The per-call options of `resolve`, `resolveString`, `apply` and `create`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
struct CallArgs {
    recursive: bool,
    selector: Option<String>,
    strict: bool,
    kubectl_args: Vec<String>,
}

impl Default for CallArgs {
    fn default() -> Self {
        CallArgs { recursive: false, selector: None, strict: true, kubectl_args: Vec::new() }
    }
}

impl CallArgs {
    fn parse(
        env: &Env,
        value: serde_json::Value,
        call: &str,
        kubectl: bool,
    ) -> napi::Result<(ResolveOptions, Vec<String>)> {
        let args: CallArgs = serde_json::from_value(value)
            .map_err(|e| binding_error(env, ErrorKind::InvalidInput, format!("invalid options for {call}: {e}")))?;
        if !kubectl && !args.kubectl_args.is_empty() {
            return Err(binding_error(env, ErrorKind::InvalidInput, format!("{call} takes no kubectlArgs")));
        }
        let ro =
            ResolveOptions { recursive: args.recursive, selector: args.selector, strict: args.strict, stdin: None };
        Ok((ro, args.kubectl_args))
    }
}

/// A ko session: options read once (with the environment and `.ko.yaml`), caches kept across
/// calls, events to one dispatcher. Calls may run concurrently. JavaScript holds it as an opaque
/// external value; index.js's `Session` class wraps it.
pub struct NativeSession {
    session: Arc<Session>,
    dispatcher: Dispatcher,
}

/// A session from `options`, the core's `Options` in their serde (camelCase) form.
#[napi(skip_typescript)]
pub fn new_session(env: Env, options: serde_json::Value) -> napi::Result<External<NativeSession>> {
    let mut options: Options = serde_json::from_value(options)
        .map_err(|e| binding_error(&env, ErrorKind::InvalidInput, format!("invalid options: {e}")))?;
    options.front_end = FrontEnd::Node;
    options.kubectl_output = KubectlOutput::Events;
    let session = Session::new(options).map_err(|e| to_js(&env, &e))?;
    let dispatcher = Dispatcher::default();
    session.set_event_sink(dispatcher.sink());
    Ok(External::new(NativeSession { session: Arc::new(session), dispatcher }))
}

#[napi(skip_typescript)]
pub fn build<'env>(
    env: &'env Env,
    session: &External<NativeSession>,
    dispatch: Dispatch<'_>,
    import_paths: Vec<String>,
    cancel: &External<CancelToken>,
) -> napi::Result<Object<'env>> {
    let (s, token) = (session.session.clone(), (**cancel).clone());
    let work = async move {
        let args: Vec<&str> = import_paths.iter().map(String::as_str).collect();
        s.build(&args, &token).await
    };
    session.call(env, dispatch, work, |published| published.into_iter().map(Published::from).collect::<Vec<_>>())
}

#[napi(skip_typescript)]
pub fn resolve<'env>(
    env: &'env Env,
    session: &External<NativeSession>,
    dispatch: Dispatch<'_>,
    paths: Vec<String>,
    args: serde_json::Value,
    cancel: &External<CancelToken>,
) -> napi::Result<Object<'env>> {
    let (ro, _) = CallArgs::parse(env, args, "resolve", false)?;
    let (s, token) = (session.session.clone(), (**cancel).clone());
    let paths: Vec<PathBuf> = paths.into_iter().map(PathBuf::from).collect();
    session.call(env, dispatch, async move { s.resolve_files(&paths, &ro, &token).await }, |yaml| yaml)
}

#[napi(skip_typescript)]
pub fn resolve_string<'env>(
    env: &'env Env,
    session: &External<NativeSession>,
    dispatch: Dispatch<'_>,
    yaml: String,
    args: serde_json::Value,
    cancel: &External<CancelToken>,
) -> napi::Result<Object<'env>> {
    let (ro, _) = CallArgs::parse(env, args, "resolveString", false)?;
    let (s, token) = (session.session.clone(), (**cancel).clone());
    session.call(env, dispatch, async move { s.resolve_str(&yaml, &ro, &token).await }, |yaml| yaml)
}

/// `verb` is `apply` or `create`.
#[napi(skip_typescript)]
pub fn apply<'env>(
    env: &'env Env,
    session: &External<NativeSession>,
    dispatch: Dispatch<'_>,
    verb: String,
    paths: Vec<String>,
    args: serde_json::Value,
    cancel: &External<CancelToken>,
) -> napi::Result<Object<'env>> {
    let verb = match verb.as_str() {
        "apply" => KubectlVerb::Apply,
        "create" => KubectlVerb::Create,
        other => return Err(binding_error(env, ErrorKind::Internal, format!("unknown kubectl verb {other}"))),
    };
    let (ro, kubectl_args) = CallArgs::parse(env, args, verb_name(verb), true)?;
    let (s, token) = (session.session.clone(), (**cancel).clone());
    let paths: Vec<PathBuf> = paths.into_iter().map(PathBuf::from).collect();
    session.call(env, dispatch, async move { s.apply(verb, &paths, &ro, &kubectl_args, &token).await }, |()| ())
}

/// `kubectl delete kubectlArgs…`.
#[napi(skip_typescript)]
pub fn kubectl_delete<'env>(
    env: &'env Env,
    session: &External<NativeSession>,
    dispatch: Dispatch<'_>,
    kubectl_args: Vec<String>,
    cancel: &External<CancelToken>,
) -> napi::Result<Object<'env>> {
    let (s, token) = (session.session.clone(), (**cancel).clone());
    session.call(env, dispatch, async move { s.delete(&kubectl_args, &token).await }, |()| ())
}

/// Writes the tarball and image-refs file (when set); later calls on the session fail.
#[napi(skip_typescript)]
pub fn finish<'env>(
    env: &'env Env,
    session: &External<NativeSession>,
    dispatch: Dispatch<'_>,
) -> napi::Result<Object<'env>> {
    let s = session.session.clone();
    session.call(env, dispatch, async move { s.finish().await }, |()| ())
}

impl NativeSession {
    /// Runs `work` on ko's runtime and returns a promise of `convert(result)`. The promise settles
    /// on the JS thread after every event `work` emitted has been passed to `dispatch` (the
    /// session's dispatcher, index.js's, which every call passes so that nothing native holds it
    /// between calls).
    fn call<'env, T, V, F>(
        &self,
        env: &'env Env,
        dispatch: Dispatch<'_>,
        work: F,
        convert: impl FnOnce(T) -> V + Send + 'static,
    ) -> napi::Result<Object<'env>>
    where
        T: Send + 'static,
        V: ToNapiValue + 'static,
        F: Future<Output = ko_core::Result<T>> + Send + 'static,
    {
        let channel = self.dispatcher.open(dispatch)?;
        settle_on_js_thread(env, Some(channel), work, convert)
    }
}

fn verb_name(verb: KubectlVerb) -> &'static str {
    match verb {
        KubectlVerb::Apply => "apply",
        KubectlVerb::Create => "create",
    }
}

/// The promise of one call; see [`NativeSession::call`].
fn settle_on_js_thread<'env, T, V, F>(
    env: &'env Env,
    channel: Option<CallChannel>,
    work: F,
    convert: impl FnOnce(T) -> V + Send + 'static,
) -> napi::Result<Object<'env>>
where
    T: Send + 'static,
    V: ToNapiValue + 'static,
    F: Future<Output = ko_core::Result<T>> + Send + 'static,
{
    let runtime = ko_core::embed::runtime().map_err(|e| to_js(env, &e))?;
    let (deferred, promise) = env.create_deferred()?;
    runtime.spawn(async move {
        let result = ko_core::embed::spawn(work).await;
        if let Some(channel) = channel {
            channel.flush().await;
            drop(channel);
        }
        deferred.resolve(move |env: Env| match result {
            Ok(value) => Ok(convert(value)),
            Err(e) => Err(to_js(&env, &e)),
        });
    });
    Ok(promise)
}

/// The names of every option, as ko-core lists them (camelCase): the suite checks index.d.ts's
/// `Options` against them.
#[napi(skip_typescript)]
pub fn option_names() -> Vec<String> {
    Options::names().iter().map(|n| ko_core::config::camel_case(n)).collect()
}

/// A call whose work panics on ko's runtime: the suite checks that a panic becomes a
/// `KO_INTERNAL` rejection instead of taking node down. Not part of the API.
#[napi(js_name = "_panicForTests", skip_typescript)]
pub fn panic_for_tests(env: &Env) -> napi::Result<Object<'_>> {
    settle_on_js_thread(env, None, async { panic!("deliberate panic for the test suite") }, |()| ())
}
