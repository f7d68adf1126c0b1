//! The C++ face of libko: a `#[cxx::bridge]` module compiled into the same library as the C ABI
//! (it is the module `cpp` of the crate `ko-ffi`, whose build script runs `cxx_build` on this
//! file). `include/ko.hpp` wraps what it declares into `ko::Options`, `ko::Session`,
//! `ko::Published`, `ko::Event` and `ko::Error`.
//!
//! It reuses the C side's pieces, so both faces behave alike: options are set by name through
//! [`crate::options::set`], sessions are opened by [`crate::session::open`], calls block through
//! [`crate::calls::block`], events are [`ko_event_t`] views. Failures are returned in a
//! [`ffi::Status`] out-parameter (code and message) that `ko.hpp` turns into a `ko::Error`
//! exception: cxx's own `Result` would throw a `rust::Error` carrying only the message. Every
//! body runs inside `ko_core::embed::catch_panic`, because a panic in an `extern "Rust"` function
//! aborts the program.

use std::ffi::CStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;

use cxx::{CxxString, CxxVector, UniquePtr};
use ko_core::{CancelToken, Error, ErrorKind, FrontEnd, KubectlVerb, Result};

use crate::calls::block;
use crate::events::ko_event_t;
use crate::options::{Value, set};

#[cxx::bridge(namespace = "ko::bridge")]
mod ffi {
    /// How a call ended: `code` 0 is success, else a `ko_error_code_t`.
    struct Status {
        code: u32,
        message: String,
        has_exit_code: bool,
        exit_code: i32,
    }

    /// One published import path.
    struct Published {
        import_path: String,
        reference: String,
        children: Vec<String>,
    }

    /// What a resolve takes; an empty `selector` is none.
    struct ResolveOptions {
        recursive: bool,
        selector: String,
        strict: bool,
    }

    unsafe extern "C++" {
        include!("ko/event_handler.h");
        /// A C++ callable receiving events (`ko.hpp` wraps a `std::function` in it).
        type EventHandler;
        fn call(self: &EventHandler, event: &Event);
    }

    extern "Rust" {
        type Options;
        type Session;
        type Cancel;
        type Event;

        fn new_options() -> Box<Options>;
        fn clone_options(options: &Options) -> Box<Options>;
        fn set_text(self: &mut Options, name: &str, value: &CxxString, status: &mut Status);
        fn unset(self: &mut Options, name: &str, status: &mut Status);
        fn set_flag(self: &mut Options, name: &str, value: bool, status: &mut Status);
        fn set_count(self: &mut Options, name: &str, value: usize, status: &mut Status);
        fn set_list(self: &mut Options, name: &str, values: &CxxVector<CxxString>, status: &mut Status);
        fn set_json(self: &mut Options, json: &CxxString, status: &mut Status);

        fn new_session(options: &Options, status: &mut Status) -> Box<Session>;
        fn set_event_handler(self: &Session, handler: UniquePtr<EventHandler>, status: &mut Status);
        fn build(
            self: &Session,
            import_paths: &CxxVector<CxxString>,
            cancel: &Cancel,
            status: &mut Status,
        ) -> Vec<Published>;
        fn resolve_files(
            self: &Session,
            paths: &CxxVector<CxxString>,
            options: &ResolveOptions,
            cancel: &Cancel,
            status: &mut Status,
        ) -> String;
        fn resolve_string(
            self: &Session,
            yaml: &CxxString,
            options: &ResolveOptions,
            cancel: &Cancel,
            status: &mut Status,
        ) -> String;
        fn apply(
            self: &Session,
            create: bool,
            paths: &CxxVector<CxxString>,
            options: &ResolveOptions,
            kubectl_args: &CxxVector<CxxString>,
            cancel: &Cancel,
            status: &mut Status,
        );
        fn kubectl_delete(self: &Session, kubectl_args: &CxxVector<CxxString>, cancel: &Cancel, status: &mut Status);
        fn run(
            self: &Session,
            import_path: &CxxString,
            kubectl_args: &CxxVector<CxxString>,
            cancel: &Cancel,
            status: &mut Status,
        );
        fn finish(self: &Session, status: &mut Status);

        fn new_cancel() -> Box<Cancel>;
        fn trigger(self: &Cancel);
        fn is_triggered(self: &Cancel) -> bool;

        fn kind(self: &Event) -> u32;
        fn kind_name(self: &Event) -> &str;
        fn json(self: &Event) -> &str;
        fn string_field(self: &Event, field: &str, found: &mut bool) -> String;
        fn number_field(self: &Event, field: &str, value: &mut u64) -> bool;

        fn version() -> &'static str;
    }
}

// SAFETY: `ko.hpp` documents that the event callback is called from ko's threads, possibly
// several at once; `EventHandler::call` is const and only invokes the user's `std::function`.
unsafe impl Send for ffi::EventHandler {}
unsafe impl Sync for ffi::EventHandler {}

/// Runs `body`, recording its failure (or a panic, as an `Internal` error) in `status`.
fn guarded<T: Default>(status: &mut ffi::Status, body: impl FnOnce() -> Result<T>) -> T {
    match ko_core::embed::catch_panic(body) {
        Ok(value) => {
            *status = ffi::Status { code: 0, message: String::new(), has_exit_code: false, exit_code: 0 };
            value
        }
        Err(e) => {
            *status = ffi::Status {
                code: e.kind().code(),
                message: e.message().to_string(),
                has_exit_code: e.exit_code().is_some(),
                exit_code: e.exit_code().unwrap_or_default(),
            };
            T::default()
        }
    }
}

fn utf8<'a>(s: &'a CxxString, what: &str) -> Result<&'a str> {
    s.to_str().map_err(|e| Error::new(ErrorKind::InvalidInput, format!("{what} is not UTF-8: {e}")))
}

fn strings(values: &CxxVector<CxxString>, what: &str) -> Result<Vec<String>> {
    values.iter().map(|v| utf8(v, what).map(str::to_string)).collect()
}

fn path_list(values: &CxxVector<CxxString>) -> Vec<PathBuf> {
    values.iter().map(|v| PathBuf::from(std::ffi::OsStr::from_bytes(v.as_bytes()))).collect()
}

fn setter(name: &str) -> String {
    FrontEnd::Cpp.option(name)
}

/// `ko::Options`' state: ko-core's options.
#[derive(Clone, Default)]
pub struct Options(ko_core::Options);

fn new_options() -> Box<Options> {
    Box::default()
}

fn clone_options(options: &Options) -> Box<Options> {
    Box::new(options.clone())
}

impl Options {
    fn set_text(&mut self, name: &str, value: &CxxString, status: &mut ffi::Status) {
        guarded(status, || set(&mut self.0, name, Value::Text(Some(value.as_bytes())), &setter(name)))
    }

    fn unset(&mut self, name: &str, status: &mut ffi::Status) {
        guarded(status, || set(&mut self.0, name, Value::Text(None), &setter(name)))
    }

    fn set_flag(&mut self, name: &str, value: bool, status: &mut ffi::Status) {
        guarded(status, || set(&mut self.0, name, Value::Flag(value), &setter(name)))
    }

    fn set_count(&mut self, name: &str, value: usize, status: &mut ffi::Status) {
        guarded(status, || set(&mut self.0, name, Value::Count(value), &setter(name)))
    }

    fn set_list(&mut self, name: &str, values: &CxxVector<CxxString>, status: &mut ffi::Status) {
        guarded(status, || {
            let setter = setter(name);
            let values = strings(values, &setter)?;
            set(&mut self.0, name, Value::List(values), &setter)
        })
    }

    fn set_json(&mut self, json: &CxxString, status: &mut ffi::Status) {
        guarded(status, || {
            self.0 = ko_core::Options::from_json(utf8(json, "ko::Options::json()")?)?;
            Ok(())
        })
    }
}

/// `ko::Session`'s state: an open session, or none when opening it failed (`ko.hpp` then throws
/// before anything can call it).
#[derive(Default)]
pub struct Session(Option<Arc<ko_core::Session>>);

fn new_session(options: &Options, status: &mut ffi::Status) -> Box<Session> {
    Box::new(Session(guarded(status, || crate::session::open(options.0.clone(), FrontEnd::Cpp).map(Some))))
}

impl From<ko_core::Published> for ffi::Published {
    fn from(p: ko_core::Published) -> Self {
        ffi::Published { import_path: p.import_path, reference: p.reference, children: p.children }
    }
}

fn resolve_options(options: &ffi::ResolveOptions) -> ko_core::ResolveOptions {
    ko_core::ResolveOptions {
        recursive: options.recursive,
        selector: Some(options.selector.clone()).filter(|s| !s.is_empty()),
        strict: options.strict,
        stdin: None,
    }
}

impl Session {
    fn engine(&self) -> Result<&Arc<ko_core::Session>> {
        self.0.as_ref().ok_or_else(|| Error::internal("a ko::Session that failed to open was used"))
    }

    fn set_event_handler(&self, handler: UniquePtr<ffi::EventHandler>, status: &mut ffi::Status) {
        guarded(status, || {
            let handler = Arc::new(handler);
            self.engine()?.set_event_sink(Arc::new(move |event| {
                if let Some(handler) = handler.as_ref().as_ref() {
                    handler.call(&Event(ko_event_t::new(event)));
                }
            }));
            Ok(())
        })
    }

    fn build(
        &self,
        import_paths: &CxxVector<CxxString>,
        cancel: &Cancel,
        status: &mut ffi::Status,
    ) -> Vec<ffi::Published> {
        guarded(status, || {
            let import_paths = strings(import_paths, "an import path")?;
            let published = block(self.engine()?, cancel.0.clone(), |s, c| async move {
                let args: Vec<&str> = import_paths.iter().map(String::as_str).collect();
                s.build(&args, &c).await
            })?;
            Ok(published.into_iter().map(ffi::Published::from).collect())
        })
    }

    fn resolve_files(
        &self,
        paths: &CxxVector<CxxString>,
        options: &ffi::ResolveOptions,
        cancel: &Cancel,
        status: &mut ffi::Status,
    ) -> String {
        guarded(status, || {
            let (files, ro) = (path_list(paths), resolve_options(options));
            block(self.engine()?, cancel.0.clone(), |s, c| async move { s.resolve_files(&files, &ro, &c).await })
        })
    }

    fn resolve_string(
        &self,
        yaml: &CxxString,
        options: &ffi::ResolveOptions,
        cancel: &Cancel,
        status: &mut ffi::Status,
    ) -> String {
        guarded(status, || {
            let (yaml, ro) = (utf8(yaml, "the YAML")?.to_string(), resolve_options(options));
            block(self.engine()?, cancel.0.clone(), |s, c| async move { s.resolve_str(&yaml, &ro, &c).await })
        })
    }

    fn apply(
        &self,
        create: bool,
        paths: &CxxVector<CxxString>,
        options: &ffi::ResolveOptions,
        kubectl_args: &CxxVector<CxxString>,
        cancel: &Cancel,
        status: &mut ffi::Status,
    ) {
        guarded(status, || {
            let verb = if create { KubectlVerb::Create } else { KubectlVerb::Apply };
            let (files, ro) = (path_list(paths), resolve_options(options));
            let args = strings(kubectl_args, "a kubectl argument")?;
            block(self.engine()?, cancel.0.clone(), |s, c| async move { s.apply(verb, &files, &ro, &args, &c).await })
        })
    }

    fn kubectl_delete(&self, kubectl_args: &CxxVector<CxxString>, cancel: &Cancel, status: &mut ffi::Status) {
        guarded(status, || {
            let args = strings(kubectl_args, "a kubectl argument")?;
            block(self.engine()?, cancel.0.clone(), |s, c| async move { s.delete(&args, &c).await })
        })
    }

    fn run(
        &self,
        import_path: &CxxString,
        kubectl_args: &CxxVector<CxxString>,
        cancel: &Cancel,
        status: &mut ffi::Status,
    ) {
        guarded(status, || {
            let import_path = utf8(import_path, "the import path")?.to_string();
            let args = strings(kubectl_args, "a kubectl argument")?;
            block(self.engine()?, cancel.0.clone(), |s, c| async move { s.run(&import_path, &args, &c).await })
        })
    }

    fn finish(&self, status: &mut ffi::Status) {
        guarded(status, || block(self.engine()?, CancelToken::new(), |s, _| async move { s.finish().await }))
    }
}

/// `ko::Cancel`'s state.
pub struct Cancel(CancelToken);

fn new_cancel() -> Box<Cancel> {
    Box::new(Cancel(CancelToken::new()))
}

impl Cancel {
    fn trigger(&self) {
        self.0.cancel();
    }

    fn is_triggered(&self) -> bool {
        self.0.is_cancelled()
    }
}

/// `ko::Event`'s view: the same as C's `ko_event_t`.
pub struct Event(ko_event_t);

fn as_str(s: &CStr) -> &str {
    // Every string of an event was made from a Rust string.
    s.to_str().unwrap_or_default()
}

impl Event {
    fn kind(&self) -> u32 {
        self.0.kind() as u32
    }

    fn kind_name(&self) -> &str {
        as_str(self.0.kind_name())
    }

    fn json(&self) -> &str {
        as_str(self.0.json())
    }

    fn string_field(&self, field: &str, found: &mut bool) -> String {
        let value = self.0.string(field);
        *found = value.is_some();
        value.map(as_str).unwrap_or_default().to_string()
    }

    fn number_field(&self, field: &str, value: &mut u64) -> bool {
        self.0.number(field).map(|n| *value = n).is_some()
    }
}

fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}
