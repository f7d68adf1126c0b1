//! The engine's events, as JavaScript receives them: [`KoEvent`] mirrors [`ko_core::Event`] field
//! for field (the exhaustive `match` below fails to compile when the core gains an event), so that
//! napi-rs generates its TypeScript union, `{ kind: 'buildStarted', importPath, platform } | …`,
//! into index.d.ts. The shape is the core's serde form: camelCase keys, a camelCase `kind` tag.
//!
//! Events reach JavaScript through a threadsafe function over the session's dispatcher (index.js's),
//! on the JS thread, in the order the engine emitted them ([`Dispatcher`]). Before a call's promise
//! settles, the call waits until every event queued before it has been delivered
//! ([`CallChannel::flush`]), so a tool that awaits a call has seen all of that call's events.

use std::sync::{Arc, Mutex};

use ko_core::{Event, EventSink, LayerRole, OutputStream};
use napi::bindgen_prelude::Function;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

/// Something that happened during a call (the engine's typed events).
#[napi(discriminant = "kind", discriminant_case = "camelCase")]
pub enum KoEvent {
    /// `go build` of `importPath` for `platform` started.
    BuildStarted { import_path: String, platform: String },
    /// One line `go build` printed (warnings; errors also end up in the `KO_BUILD` error).
    GoOutput { import_path: String, platform: String, line: String },
    /// `go build` of `importPath` for `platform` finished successfully.
    BuildFinished { import_path: String, platform: String, duration_ms: f64 },
    /// A layer of ko's own is ready to publish: computed now, or known from the layer cache.
    LayerReady {
        import_path: String,
        platform: String,
        #[napi(ts_type = "'kodata' | 'binary'")]
        layer: String,
        digest: String,
        diff_id: String,
        size: f64,
        cached: bool,
    },
    /// A blob is already in the destination repository; nothing was sent.
    BlobExisting { repository: String, digest: String, size: f64 },
    /// A blob was mounted from another repository of the same registry; nothing was sent.
    BlobMounted { repository: String, digest: String, size: f64, from: String },
    /// Bytes of a blob upload sent so far; the last one of an upload has `sent === total`.
    BlobProgress { repository: String, digest: String, sent: f64, total: f64 },
    /// A blob upload finished and the registry confirmed its digest.
    BlobUploaded { repository: String, digest: String, size: f64 },
    /// A manifest (or index) was put at `reference` (a tag or a digest).
    ManifestPublished { reference: String, digest: String, media_type: String },
    /// An import path is published; `reference` is what a user refers to it by.
    Published { import_path: String, reference: String },
    /// One input of a resolve is done, with how many references it held.
    ResolveFileDone { name: String, references: f64 },
    /// A line kubectl printed (also written to `process.stdout` / `process.stderr`).
    KubectlOutput {
        #[napi(ts_type = "'stdout' | 'stderr'")]
        stream: String,
        line: String,
    },
}

impl From<&Event> for KoEvent {
    fn from(event: &Event) -> KoEvent {
        // Sizes are byte counts far below 2^53, exact as JavaScript numbers.
        let n = |v: u64| v as f64;
        match event.clone() {
            Event::BuildStarted { import_path, platform } => KoEvent::BuildStarted { import_path, platform },
            Event::GoOutput { import_path, platform, line } => KoEvent::GoOutput { import_path, platform, line },
            Event::BuildFinished { import_path, platform, duration } => {
                KoEvent::BuildFinished { import_path, platform, duration_ms: duration.as_millis() as f64 }
            }
            Event::LayerReady { import_path, platform, layer, digest, diff_id, size, cached } => KoEvent::LayerReady {
                import_path,
                platform,
                layer: match layer {
                    LayerRole::Kodata => "kodata".into(),
                    LayerRole::Binary => "binary".into(),
                },
                digest,
                diff_id,
                size: n(size),
                cached,
            },
            Event::BlobExisting { repository, digest, size } => {
                KoEvent::BlobExisting { repository, digest, size: n(size) }
            }
            Event::BlobMounted { repository, digest, size, from } => {
                KoEvent::BlobMounted { repository, digest, size: n(size), from }
            }
            Event::BlobProgress { repository, digest, sent, total } => {
                KoEvent::BlobProgress { repository, digest, sent: n(sent), total: n(total) }
            }
            Event::BlobUploaded { repository, digest, size } => {
                KoEvent::BlobUploaded { repository, digest, size: n(size) }
            }
            Event::ManifestPublished { reference, digest, media_type } => {
                KoEvent::ManifestPublished { reference, digest, media_type }
            }
            Event::Published { import_path, reference } => KoEvent::Published { import_path, reference },
            Event::ResolveFileDone { name, references } => {
                KoEvent::ResolveFileDone { name, references: references as f64 }
            }
            Event::KubectlOutput { stream, line } => KoEvent::KubectlOutput {
                stream: match stream {
                    OutputStream::Stdout => "stdout".into(),
                    OutputStream::Stderr => "stderr".into(),
                },
                line,
            },
        }
    }
}

/// What the session's JS dispatcher receives: an event, or `null` for a flush marker.
type Message = Option<KoEvent>;
type Tsfn = ThreadsafeFunction<Message, (), Message, napi::Status, false>;

/// Where a session's events go: the channel of the calls in flight, if any. Every call on the
/// session shares one channel (one FIFO queue, so a call's flush marker follows all of that call's
/// events even when calls overlap); the last call to end closes it. Between calls nothing native
/// holds the JS dispatcher, so a session that JavaScript drops can be collected.
#[derive(Clone, Default)]
pub struct Dispatcher {
    slot: Arc<Mutex<Option<Open>>>,
}

struct Open {
    channel: Channel,
    calls: usize,
}

impl Dispatcher {
    /// The engine's event sink: every event goes to the open channel, without blocking the worker
    /// that emitted it (the queue is unbounded). Events only happen while a call runs.
    pub fn sink(&self) -> EventSink {
        let slot = self.slot.clone();
        Arc::new(move |event: &Event| {
            let channel = slot.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(|o| o.channel.clone());
            if let Some(channel) = channel {
                channel.tsfn.call(Some(KoEvent::from(event)), ThreadsafeFunctionCallMode::NonBlocking);
            }
        })
    }

    /// Opens (or joins) the channel for one call, on the JS thread; `dispatch` is the session's
    /// dispatcher function.
    pub fn open(&self, dispatch: Function<'_, Message, ()>) -> napi::Result<CallChannel> {
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        let channel = match slot.as_mut() {
            Some(open) => {
                open.calls += 1;
                open.channel.clone()
            }
            None => {
                let tsfn = dispatch.build_threadsafe_function::<Message>().callee_handled::<false>().build()?;
                let channel = Channel { tsfn: Arc::new(tsfn) };
                *slot = Some(Open { channel: channel.clone(), calls: 1 });
                channel
            }
        };
        Ok(CallChannel { channel, dispatcher: self.clone() })
    }
}

/// A threadsafe function over the JS dispatcher. It is referenced: node stays alive while it is
/// open, i.e. while a call runs.
#[derive(Clone)]
struct Channel {
    tsfn: Arc<Tsfn>,
}

/// One call's hold on its session's channel; dropping it leaves the channel (and closes it when
/// this was the last call in flight).
pub struct CallChannel {
    channel: Channel,
    dispatcher: Dispatcher,
}

impl CallChannel {
    /// Resolves once the dispatcher has handled everything queued before this call (right away
    /// when node is shutting down and nothing will be delivered any more).
    pub async fn flush(&self) {
        let (done, delivered) = tokio::sync::oneshot::channel::<()>();
        let status =
            self.channel.tsfn.call_with_return_value(None, ThreadsafeFunctionCallMode::NonBlocking, move |_, _| {
                let _ = done.send(());
                Ok(())
            });
        if status == napi::Status::Ok {
            // A dropped sender (the environment tore down first) ends the wait too.
            let _ = delivered.await;
        }
    }
}

impl Drop for CallChannel {
    fn drop(&mut self) {
        let mut slot = self.dispatcher.slot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(open) = slot.as_mut() {
            open.calls -= 1;
            if open.calls == 0 {
                // Dropping the last clone releases the threadsafe function (allowed on any thread).
                *slot = None;
            }
        }
    }
}
