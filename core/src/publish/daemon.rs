//! Publishing into a Docker engine (`-L`, `KO_DOCKER_REPO=ko.local[/…]`), as upstream: the image
//! goes to `POST /images/load` as a `docker save` archive streamed while it is written (the
//! tarball publisher's writer), named `<repo>/<name>:<hex of the manifest digest>`; then each
//! tag is added. `docker load` keeps no manifest digest, which is why the digest travels in the
//! tag, and that tag is the reference returned: one `docker run` accepts.
//!
//! An engine holds one platform of an image: from a multi-platform build, the image for the
//! engine's own platform is loaded, and the log says so. Tags move only after a load succeeded, so
//! a failed (or cancelled) load leaves what the engine had as it was.

use std::io::{self, Write};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use super::Publisher;
use super::tarball::write_archive;
use crate::blocking::{self, Abandoned};
use crate::daemon::Engine;
use crate::error::{Error, Result};
use crate::image::{Artifact, Image, Index};
use crate::name::Destination;

/// Bytes of the archive handed to the engine at a time.
const CHUNK: usize = 256 << 10;

pub struct DaemonPublisher {
    engine: Arc<Engine>,
    destination: Destination,
    /// How the user names the platforms option, for messages.
    platforms_option: String,
}

impl DaemonPublisher {
    /// Loads into `engine`; `platforms_option` is how the user spells the platforms option.
    pub fn new(engine: Arc<Engine>, destination: Destination, platforms_option: String) -> Self {
        DaemonPublisher { engine, destination, platforms_option }
    }

    /// The child of `index` the engine can run.
    async fn pick(&self, index: &Index, import_path: &str) -> Result<Arc<Image>> {
        let engine = self.engine.platform().await?;
        let built: Vec<String> =
            index.images.iter().filter_map(|i| i.platform.as_ref().map(ToString::to_string)).collect();
        let image = index
            .images
            .iter()
            .find(|i| i.platform.as_ref().is_some_and(|p| p.os == engine.os && p.architecture == engine.architecture))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "{import_path} was built for {}, and the Docker engine runs {engine} images: a Docker engine holds one platform of an image, so build for {engine} too, or for one platform only ({})",
                    built.join(", "),
                    self.platforms_option
                ))
            })?;
        let platform = image.platform.as_ref().map(ToString::to_string).unwrap_or_default();
        tracing::info!(
            "Loading only the {platform} image of {import_path} (built for {}): the Docker engine runs {engine} images",
            built.join(", ")
        );
        Ok(Arc::new(image.clone()))
    }

    /// Streams `image`, named `name`, into the engine.
    async fn load(&self, name: String, image: Arc<Image>) -> Result<()> {
        let (tx, mut rx) = mpsc::channel::<io::Result<Bytes>>(4);
        let runtime = tokio::runtime::Handle::current();
        let described = format!("the image {name} for the Docker engine");
        let writer = blocking::run("docker load stream", move |abandoned| {
            let what = format!("cannot write {described}");
            let images = [(vec![name], image)];
            let out =
                ChannelWriter { tx: tx.clone(), buf: BytesMut::with_capacity(CHUNK), abandoned: abandoned.clone() };
            let result = write_archive(out, &images, &runtime, &what)
                .and_then(|mut w| w.flush().map_err(|e| Error::io(&what, e)));
            if let Err(e) = &result {
                // The engine must see a broken stream, not a short one it could take for whole.
                let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
            }
            result
        });
        let body = reqwest::Body::wrap_stream(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)));
        let (written, loaded) = tokio::join!(writer, self.engine.load(body));
        match (written, loaded) {
            (Ok(()), loaded) => loaded,
            // The engine stopped reading because it refused the image: its message says why.
            (Err(e), Err(refused)) if is_closed(&e) => Err(refused),
            (Err(e), _) => Err(e),
        }
    }
}

#[async_trait]
impl Publisher for DaemonPublisher {
    async fn ready(&self) -> Result<()> {
        self.engine.platform().await.map(drop)
    }

    async fn publish(&self, artifact: &Artifact, import_path: &str) -> Result<String> {
        let image = match artifact {
            Artifact::Image(image) => image.clone(),
            Artifact::Index(index) => self.pick(index, import_path).await?,
        };
        let repository = self.destination.repository_for(import_path);
        let hex = image.manifest.digest.trim_start_matches("sha256:");
        let reference = format!("{repository}:{hex}");
        tracing::info!("Loading {reference}");
        self.load(reference.clone(), image).await?;
        tracing::info!("Loaded {reference}");
        for tag in &self.destination.tags {
            tracing::info!("Adding tag {tag}");
            self.engine.tag(&reference, &repository.to_string(), tag).await?;
            tracing::info!("Added tag {tag}");
        }
        Ok(reference)
    }
}

/// Whether the writer stopped because nobody reads the stream any more.
fn is_closed(e: &Error) -> bool {
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<io::Error>())
        .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
}

/// A blocking writer feeding an async body in chunks; fails once the body is dropped (the engine
/// answered early) or the call is cancelled, which ends the writer.
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: BytesMut,
    abandoned: Abandoned,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = self.buf.split().freeze();
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the Docker engine stopped reading the image"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.abandoned.check()?;
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}
