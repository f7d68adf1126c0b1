//! Typed events: the moments a progress display or a tool cares about (a build starting, a layer
//! ready, bytes going up, a manifest published), delivered to the session's optional callback.
//!
//! Logs (`tracing`, upstream's words on stderr in the CLI) describe the same moments in prose;
//! events carry them as data, so no front end has to parse log text. The callback is called on
//! whichever worker thread reached the moment, possibly on several threads at once, and never while
//! ko holds a lock other work waits on: a slow callback slows that piece of work down, nothing
//! else. The call that emitted the event is still in progress, so the callback must not call into
//! the session and wait for it (`finish`, for one, waits for calls in progress).
//!
//! The serde form (`{"kind": "buildStarted", "importPath": …}`) is what Node receives, C's
//! `ko_event_json` returns and Python's `on_event` gets (with snake_case keys).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Serialize;

/// Something that happened during a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Event {
    /// `go build` of `import_path` for `platform` started.
    BuildStarted { import_path: String, platform: String },
    /// One line `go build` printed (warnings; errors also end up in the `Build` error).
    GoOutput { import_path: String, platform: String, line: String },
    /// `go build` of `import_path` for `platform` finished successfully.
    BuildFinished {
        import_path: String,
        platform: String,
        #[serde(rename = "durationMs", serialize_with = "millis")]
        duration: Duration,
    },
    /// A layer of ko's own (kodata or binary) is ready to publish: computed now, or known from
    /// the layer cache (`cached`).
    LayerReady {
        import_path: String,
        platform: String,
        layer: LayerRole,
        digest: String,
        diff_id: String,
        size: u64,
        cached: bool,
    },
    /// A blob is already in the destination repository; nothing was sent.
    BlobExisting { repository: String, digest: String, size: u64 },
    /// A blob was mounted from another repository of the same registry; nothing was sent.
    BlobMounted { repository: String, digest: String, size: u64, from: String },
    /// Bytes of a blob upload sent so far (this attempt); the last one of an upload has `sent == total`.
    BlobProgress { repository: String, digest: String, sent: u64, total: u64 },
    /// A blob upload finished and the registry confirmed its digest.
    BlobUploaded { repository: String, digest: String, size: u64 },
    /// A manifest (or index) was put at `reference` (a tag or a digest).
    ManifestPublished { reference: String, digest: String, media_type: String },
    /// An import path is published; `reference` is what a user refers to it by.
    Published { import_path: String, reference: String },
    /// One input of a resolve is done, with how many references it held.
    ResolveFileDone { name: String, references: usize },
    /// A line kubectl printed, when the session captures kubectl's output.
    KubectlOutput { stream: OutputStream, line: String },
}

/// Which of ko's layers an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum LayerRole {
    Kodata,
    Binary,
}

/// Standard output or standard error of a child process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum OutputStream {
    Stdout,
    Stderr,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

impl Event {
    /// The event's kind as its serde tag (`"buildStarted"`).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Event::BuildStarted { .. } => "buildStarted",
            Event::GoOutput { .. } => "goOutput",
            Event::BuildFinished { .. } => "buildFinished",
            Event::LayerReady { .. } => "layerReady",
            Event::BlobExisting { .. } => "blobExisting",
            Event::BlobMounted { .. } => "blobMounted",
            Event::BlobProgress { .. } => "blobProgress",
            Event::BlobUploaded { .. } => "blobUploaded",
            Event::ManifestPublished { .. } => "manifestPublished",
            Event::Published { .. } => "published",
            Event::ResolveFileDone { .. } => "resolveFileDone",
            Event::KubectlOutput { .. } => "kubectlOutput",
        }
    }

    /// The event as JSON (the serde form).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| format!("{{\"kind\":\"{}\"}}", self.kind_name()))
    }
}

/// A callback receiving events, from any thread.
pub type EventSink = Arc<dyn Fn(&Event) + Send + Sync>;

/// Where a session's components send events: cheap to clone; a no-op until a sink is set.
#[derive(Clone, Default)]
pub struct Events {
    sink: Arc<RwLock<Option<EventSink>>>,
}

impl Events {
    /// Sets (or replaces) the callback.
    pub fn set_sink(&self, sink: EventSink) {
        *self.sink.write().unwrap_or_else(|p| p.into_inner()) = Some(sink);
    }

    /// Whether anyone listens (so that costly events can be skipped).
    pub fn enabled(&self) -> bool {
        self.sink.read().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    /// Delivers `event` to the callback, if any. The lock is released before the call.
    pub fn emit(&self, event: Event) {
        let sink = self.sink.read().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(sink) = sink {
            sink(&event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_form_is_camel_case_with_a_kind_tag() {
        let e = Event::BuildFinished {
            import_path: "example.com/a".into(),
            platform: "linux/amd64".into(),
            duration: Duration::from_millis(1500),
        };
        assert_eq!(
            e.to_json(),
            r#"{"kind":"buildFinished","importPath":"example.com/a","platform":"linux/amd64","durationMs":1500}"#
        );
        let k = Event::KubectlOutput { stream: OutputStream::Stderr, line: "x".into() };
        assert_eq!(k.to_json(), r#"{"kind":"kubectlOutput","stream":"stderr","line":"x"}"#);
        assert_eq!(k.kind_name(), "kubectlOutput");
    }

    #[test]
    fn emits_only_with_a_sink() {
        let events = Events::default();
        events.emit(Event::ResolveFileDone { name: "a".into(), references: 1 });
        assert!(!events.enabled());
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        events.set_sink(Arc::new(move |e: &Event| s.lock().unwrap().push(e.kind_name())));
        events.clone().emit(Event::ResolveFileDone { name: "a".into(), references: 1 });
        assert_eq!(*seen.lock().unwrap(), ["resolveFileDone"]);
    }
}
