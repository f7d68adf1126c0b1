//! `ko_event_t`: one engine event as a C callback (and the C++ bridge) sees it. Its fields are
//! read by their names in the event's JSON form (ko-core's serde form of `Event`), so the schema
//! lives in one place, the core, and this file only numbers the kinds for a C `switch`.

use std::ffi::{CStr, CString, c_char};

use ko_core::Event;
use serde_json::Value;

use crate::boundary::{c_string, infallible};

/// The kinds of event, with stable numbers (new kinds get new numbers). Each kind's fields, by
/// their names for `ko_event_string` / `ko_event_number`:
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ko_event_kind_t {
    /// `go build` started: `importPath`, `platform`.
    KO_EVENT_BUILD_STARTED = 1,
    /// A line `go build` printed: `importPath`, `platform`, `line`.
    KO_EVENT_GO_OUTPUT = 2,
    /// `go build` succeeded: `importPath`, `platform`, `durationMs` (number).
    KO_EVENT_BUILD_FINISHED = 3,
    /// One of ko's layers is ready: `importPath`, `platform`, `layer` (`kodata` or `binary`),
    /// `digest`, `diffId`, `size` (number), `cached` (number, 0 or 1).
    KO_EVENT_LAYER_READY = 4,
    /// A blob was already in the repository: `repository`, `digest`, `size`.
    KO_EVENT_BLOB_EXISTING = 5,
    /// A blob was mounted from another repository: `repository`, `digest`, `size`, `from`.
    KO_EVENT_BLOB_MOUNTED = 6,
    /// Bytes of an upload sent so far: `repository`, `digest`, `sent`, `total` (numbers); the
    /// last of an upload has `sent == total`.
    KO_EVENT_BLOB_PROGRESS = 7,
    /// A blob upload was confirmed: `repository`, `digest`, `size`.
    KO_EVENT_BLOB_UPLOADED = 8,
    /// A manifest or index was put: `reference`, `digest`, `mediaType`.
    KO_EVENT_MANIFEST_PUBLISHED = 9,
    /// An import path is published: `importPath`, `reference`.
    KO_EVENT_PUBLISHED = 10,
    /// One resolve input is done: `name`, `references` (number).
    KO_EVENT_RESOLVE_FILE_DONE = 11,
    /// A line kubectl printed: `stream` (`stdout` or `stderr`), `line`.
    KO_EVENT_KUBECTL_OUTPUT = 12,
}

impl From<&Event> for ko_event_kind_t {
    fn from(event: &Event) -> Self {
        match event {
            Event::BuildStarted { .. } => ko_event_kind_t::KO_EVENT_BUILD_STARTED,
            Event::GoOutput { .. } => ko_event_kind_t::KO_EVENT_GO_OUTPUT,
            Event::BuildFinished { .. } => ko_event_kind_t::KO_EVENT_BUILD_FINISHED,
            Event::LayerReady { .. } => ko_event_kind_t::KO_EVENT_LAYER_READY,
            Event::BlobExisting { .. } => ko_event_kind_t::KO_EVENT_BLOB_EXISTING,
            Event::BlobMounted { .. } => ko_event_kind_t::KO_EVENT_BLOB_MOUNTED,
            Event::BlobProgress { .. } => ko_event_kind_t::KO_EVENT_BLOB_PROGRESS,
            Event::BlobUploaded { .. } => ko_event_kind_t::KO_EVENT_BLOB_UPLOADED,
            Event::ManifestPublished { .. } => ko_event_kind_t::KO_EVENT_MANIFEST_PUBLISHED,
            Event::Published { .. } => ko_event_kind_t::KO_EVENT_PUBLISHED,
            Event::ResolveFileDone { .. } => ko_event_kind_t::KO_EVENT_RESOLVE_FILE_DONE,
            Event::KubectlOutput { .. } => ko_event_kind_t::KO_EVENT_KUBECTL_OUTPUT,
        }
    }
}

/// One event, lent to the session's callback for the duration of the call only.
///
/// Ownership: borrowed; it and every string read from it are valid until the callback returns.
/// Copy what you keep. Read it on the thread the callback runs on.
#[allow(non_camel_case_types)]
pub struct ko_event_t {
    kind: ko_event_kind_t,
    kind_name: CString,
    json: CString,
    strings: Vec<(String, CString)>,
    numbers: Vec<(String, u64)>,
}

impl ko_event_t {
    pub(crate) fn new(event: &Event) -> ko_event_t {
        let mut strings = Vec::new();
        let mut numbers = Vec::new();
        if let Ok(Value::Object(fields)) = serde_json::to_value(event) {
            for (name, value) in fields {
                match value {
                    Value::String(s) => strings.push((name, c_string(&s))),
                    Value::Bool(b) => numbers.push((name, u64::from(b))),
                    Value::Number(n) => numbers.extend(n.as_u64().map(|n| (name, n))),
                    _ => {}
                }
            }
        }
        ko_event_t {
            kind: event.into(),
            kind_name: c_string(event.kind_name()),
            json: c_string(&event.to_json()),
            strings,
            numbers,
        }
    }

    pub(crate) fn kind(&self) -> ko_event_kind_t {
        self.kind
    }

    pub(crate) fn kind_name(&self) -> &CStr {
        &self.kind_name
    }

    pub(crate) fn json(&self) -> &CStr {
        &self.json
    }

    /// The string field `name` (camelCase, as in the JSON form).
    pub(crate) fn string(&self, name: &str) -> Option<&CStr> {
        self.strings.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_c_str())
    }

    /// The number (or flag) field `name`.
    pub(crate) fn number(&self, name: &str) -> Option<u64> {
        self.numbers.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }
}

/// The event's kind: a `ko_event_kind_t` (0 for NULL). Returned as a plain integer so that a
/// program built against this header may meet kinds added later and switch over the ones it knows.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_event_kind(event: *const ko_event_t) -> u32 {
    // SAFETY: NULL or the callback's event, as the header requires.
    infallible(0, || unsafe { event.as_ref() }.map_or(0, |e| e.kind() as u32))
}

/// The event's kind as its name in the JSON form (`"buildStarted"`); NULL for NULL.
///
/// Ownership: borrowed from `event`; valid until the callback returns.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_event_kind_name(event: *const ko_event_t) -> *const c_char {
    // SAFETY: NULL or the callback's event, as the header requires.
    infallible(std::ptr::null(), || unsafe { event.as_ref() }.map_or(std::ptr::null(), |e| e.kind_name().as_ptr()))
}

/// The whole event as JSON (`{"kind":"buildStarted","importPath":...,"platform":...}`), the form
/// Node receives; NULL for NULL.
///
/// Ownership: borrowed from `event`; valid until the callback returns.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_event_json(event: *const ko_event_t) -> *const c_char {
    // SAFETY: NULL or the callback's event, as the header requires.
    infallible(std::ptr::null(), || unsafe { event.as_ref() }.map_or(std::ptr::null(), |e| e.json().as_ptr()))
}

/// The string field `field` of the event (`"importPath"`, `"digest"`...; see `ko_event_kind_t`),
/// or NULL when this kind of event has no such string field.
///
/// Ownership: borrowed from `event`; valid until the callback returns. `field` is borrowed for
/// the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_event_string(event: *const ko_event_t, field: *const c_char) -> *const c_char {
    infallible(std::ptr::null(), || {
        // SAFETY: NULL or live pointers, as the header requires.
        let (Some(event), false) = (unsafe { event.as_ref() }, field.is_null()) else { return std::ptr::null() };
        let field = unsafe { CStr::from_ptr(field) }.to_str().unwrap_or_default();
        event.string(field).map_or(std::ptr::null(), CStr::as_ptr)
    })
}

/// Stores the number field `field` of the event (`"size"`, `"sent"`, `"total"`, `"durationMs"`,
/// `"references"`, or the flag `"cached"` as 0 or 1) in `*value` and returns true; returns false
/// (leaving `*value` alone) when this kind of event has no such number.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_event_number(event: *const ko_event_t, field: *const c_char, value: *mut u64) -> bool {
    infallible(false, || {
        // SAFETY: NULL or live pointers, as the header requires.
        let (Some(event), Some(out), false) = (unsafe { event.as_ref() }, unsafe { value.as_mut() }, field.is_null())
        else {
            return false;
        };
        let field = unsafe { CStr::from_ptr(field) }.to_str().unwrap_or_default();
        event.number(field).map(|n| *out = n).is_some()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_by_their_json_names() {
        let event = ko_event_t::new(&Event::LayerReady {
            import_path: "example.com/a".into(),
            platform: "linux/amd64".into(),
            layer: ko_core::LayerRole::Binary,
            digest: "sha256:1".into(),
            diff_id: "sha256:2".into(),
            size: 42,
            cached: true,
        });
        unsafe {
            assert_eq!(ko_event_kind(&event), ko_event_kind_t::KO_EVENT_LAYER_READY as u32);
            assert_eq!(CStr::from_ptr(ko_event_kind_name(&event)), c"layerReady");
            assert_eq!(CStr::from_ptr(ko_event_string(&event, c"diffId".as_ptr())), c"sha256:2");
            assert_eq!(CStr::from_ptr(ko_event_string(&event, c"layer".as_ptr())), c"binary");
            assert!(ko_event_string(&event, c"size".as_ptr()).is_null());
            assert!(ko_event_string(&event, c"nope".as_ptr()).is_null());
            let mut n = 7;
            assert!(ko_event_number(&event, c"size".as_ptr(), &mut n));
            assert_eq!(n, 42);
            assert!(ko_event_number(&event, c"cached".as_ptr(), &mut n));
            assert_eq!(n, 1);
            assert!(!ko_event_number(&event, c"digest".as_ptr(), &mut n));
            assert_eq!(n, 1);
            assert!(CStr::from_ptr(ko_event_json(&event)).to_str().unwrap().starts_with(r#"{"kind":"layerReady""#));
            assert!(ko_event_json(std::ptr::null()).is_null());
            assert_eq!(ko_event_kind(std::ptr::null()), 0);
        }
    }
}
