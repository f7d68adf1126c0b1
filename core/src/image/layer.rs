//! Layers and where their bytes come from. A [`Layer`] is a descriptor plus a diff id plus a
//! [`BlobSource`] that can stream the compressed bytes on demand, so an image can be published
//! without ever materialising its layers: a base layer on the same registry is mounted, a layer
//! already present is skipped, and only what must move is read, once, as a stream.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

use super::Descriptor;
use super::tar::LayerDigests;
use crate::blocking::Abandoned;
use crate::error::{Error, Result};

/// A stream of blob bytes.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// Where a registry holds a blob, for cross-repository mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOrigin {
    /// `host[:port]` as the user wrote it (`docker.io` resolved to `index.docker.io`).
    pub registry: String,
    pub repository: String,
}

/// A source of blob bytes. Implementations are cheap to clone behind an `Arc` and thread-safe.
#[async_trait]
pub trait BlobSource: Send + Sync {
    /// Opens the blob with `digest` for reading, from the start.
    async fn open(&self, digest: &str) -> Result<ByteStream>;

    /// The registry repository already holding this blob, if any.
    fn mount_origin(&self) -> Option<&MountOrigin> {
        None
    }
}

/// One layer of an image.
#[derive(Clone)]
pub struct Layer {
    /// The manifest entry: media type, compressed digest and size (plus any urls/annotations).
    pub descriptor: Descriptor,
    /// sha256 of the uncompressed tar.
    pub diff_id: String,
    pub source: Arc<dyn BlobSource>,
}

impl Layer {
    /// The compressed digest.
    pub fn digest(&self) -> &str {
        &self.descriptor.digest
    }

    /// Opens the compressed bytes.
    pub async fn open(&self) -> Result<ByteStream> {
        self.source.open(&self.descriptor.digest).await
    }
}

/// A blob in a local file. Holds `keep_alive` (typically the build's temporary directory) so the
/// file outlives every image that refers to it, and is removed with the last of them.
pub struct FileBlob {
    pub path: PathBuf,
    pub keep_alive: Option<Arc<tempfile::TempDir>>,
}

#[async_trait]
impl BlobSource for FileBlob {
    async fn open(&self, _digest: &str) -> Result<ByteStream> {
        let file = tokio::fs::File::open(&self.path)
            .await
            .map_err(|e| Error::io(format!("cannot open {}", self.path.display()), e))?;
        Ok(Box::pin(tokio_util::io::ReaderStream::with_capacity(file, 1 << 20)))
    }
}

/// A small blob held in memory (the built-in base's layer, configs).
pub struct MemoryBlob(pub Bytes);

#[async_trait]
impl BlobSource for MemoryBlob {
    async fn open(&self, _digest: &str) -> Result<ByteStream> {
        let bytes = self.0.clone();
        Ok(Box::pin(futures::stream::once(async move { Ok(bytes) })))
    }
}

/// How to make a layer's file again: writes it to the given path and returns its digests.
pub type Recipe = Arc<dyn Fn(&Path, &Abandoned) -> Result<LayerDigests> + Send + Sync>;

/// A layer known from the layer cache, made only if a publisher asks for its bytes (a registry
/// that already holds it never does). What is made is checked against the digests the image was
/// built with; a mismatch (the source changed since) is an error, never a wrong blob.
pub struct LazyBlob {
    expected: LayerDigests,
    path: PathBuf,
    recipe: Recipe,
    /// Told what the recipe really made, when that is not what was expected (so that the cache
    /// that said otherwise is corrected for the next build).
    on_mismatch: Box<dyn Fn(&LayerDigests) + Send + Sync>,
    made: tokio::sync::OnceCell<()>,
    keep_alive: Arc<tempfile::TempDir>,
}

impl LazyBlob {
    /// A blob that `recipe` makes at `path` (inside `keep_alive`) when first opened.
    pub fn new(
        expected: LayerDigests,
        path: PathBuf,
        recipe: Recipe,
        on_mismatch: Box<dyn Fn(&LayerDigests) + Send + Sync>,
        keep_alive: Arc<tempfile::TempDir>,
    ) -> Self {
        LazyBlob { expected, path, recipe, on_mismatch, made: tokio::sync::OnceCell::new(), keep_alive }
    }
}

#[async_trait]
impl BlobSource for LazyBlob {
    async fn open(&self, digest: &str) -> Result<ByteStream> {
        self.made
            .get_or_try_init(|| {
                let (recipe, path, expected) = (self.recipe.clone(), self.path.clone(), self.expected.clone());
                let keep_alive = self.keep_alive.clone();
                async move {
                    let made = crate::blocking::run("layer", move |abandoned| {
                        let _keep_alive = keep_alive;
                        // Made under another name and renamed, so a reader never sees half of it.
                        let partial = path.with_extension("partial");
                        let made = recipe(&partial, abandoned)?;
                        std::fs::rename(&partial, &path)
                            .map_err(|e| Error::io(format!("cannot rename {}", partial.display()), e))?;
                        Ok(made)
                    })
                    .await?;
                    if made != expected {
                        (self.on_mismatch)(&made);
                        return Err(Error::build(format!(
                            "layer {} came out as {} from its cached recipe (its source changed since the image was built, or the cache was wrong; it is corrected now): build again",
                            expected.digest, made.digest
                        )));
                    }
                    Ok(())
                }
            })
            .await?;
        FileBlob { path: self.path.clone(), keep_alive: Some(self.keep_alive.clone()) }.open(digest).await
    }
}
