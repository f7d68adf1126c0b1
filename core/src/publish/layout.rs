//! Publishing into an OCI image layout directory (`--oci-layout-path`): blobs are streamed into
//! `blobs/sha256/`, verified against their digest and renamed into place, and only then is the
//! image added to `index.json` (rewritten atomically), so a reader never sees a dangling entry.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use futures::StreamExt;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;

use super::Publisher;
use crate::error::{Error, Result};
use crate::image::{Artifact, Descriptor, Image, IndexManifest, Layer, RawJson, layout_blob_path, media_type};

pub struct LayoutPublisher {
    dir: PathBuf,
    index_lock: tokio::sync::Mutex<()>,
}

impl LayoutPublisher {
    pub fn new(dir: PathBuf) -> Self {
        LayoutPublisher { dir, index_lock: Default::default() }
    }

    fn io(&self, what: &str, path: &Path, e: std::io::Error) -> Error {
        Error::io(format!("OCI layout {}: cannot {what} {}", self.dir.display(), path.display()), e)
    }

    async fn ensure_layout(&self) -> Result<()> {
        let blobs = self.dir.join("blobs").join("sha256");
        tokio::fs::create_dir_all(&blobs).await.map_err(|e| self.io("create", &blobs, e))?;
        let marker = self.dir.join("oci-layout");
        if tokio::fs::metadata(&marker).await.is_err() {
            tokio::fs::write(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#)
                .await
                .map_err(|e| self.io("write", &marker, e))?;
        }
        Ok(())
    }

    /// Writes bytes we hold (manifests, configs) as a blob.
    async fn write_bytes(&self, raw: &RawJson) -> Result<()> {
        let path = layout_blob_path(&self.dir, &raw.digest)?;
        if tokio::fs::metadata(&path).await.is_ok() {
            return Ok(());
        }
        let tmp = temp_name(&path);
        tokio::fs::write(&tmp, &raw.bytes).await.map_err(|e| self.io("write", &tmp, e))?;
        tokio::fs::rename(&tmp, &path).await.map_err(|e| self.io("rename", &tmp, e))
    }

    /// Streams a layer into the layout, checking its digest before it becomes visible.
    async fn write_layer(&self, layer: &Layer) -> Result<()> {
        let path = layout_blob_path(&self.dir, layer.digest())?;
        if tokio::fs::metadata(&path).await.is_ok() {
            return Ok(());
        }
        let tmp = temp_name(&path);
        let mut file = tokio::fs::File::create(&tmp).await.map_err(|e| self.io("create", &tmp, e))?;
        let mut stream = layer.open().await?;
        let mut hasher = Sha256::new();
        let result = async {
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| self.io("read blob for", &path, e))?;
                hasher.update(&chunk);
                file.write_all(&chunk).await.map_err(|e| self.io("write", &tmp, e))?;
            }
            file.flush().await.map_err(|e| self.io("write", &tmp, e))?;
            let got = format!("sha256:{}", hex::encode(hasher.finalize()));
            if got != layer.digest() {
                return Err(Error::registry(format!("blob {} arrived with digest {got}", layer.digest())));
            }
            tokio::fs::rename(&tmp, &path).await.map_err(|e| self.io("rename", &tmp, e))
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }

    async fn write_image(&self, image: &Image) -> Result<()> {
        for layer in &image.layers {
            self.write_layer(layer).await?;
        }
        self.write_bytes(&image.config).await?;
        self.write_bytes(&image.manifest).await
    }

    async fn append_to_index(&self, descriptor: Descriptor) -> Result<()> {
        let _guard = self.index_lock.lock().await;
        let path = self.dir.join("index.json");
        let mut index = match tokio::fs::read(&path).await {
            Ok(bytes) => serde_json::from_slice::<IndexManifest>(&bytes)
                .map_err(|e| Error::invalid(format!("{} is not a valid OCI index: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => IndexManifest {
                schema_version: 2,
                media_type: Some(media_type::OCI_INDEX.into()),
                manifests: Vec::new(),
                annotations: None,
            },
            Err(e) => return Err(self.io("read", &path, e)),
        };
        if index.manifests.iter().any(|m| m.digest == descriptor.digest) {
            return Ok(());
        }
        index.manifests.push(descriptor);
        let raw = RawJson::encode(&index)?;
        let tmp = temp_name(&path);
        tokio::fs::write(&tmp, &raw.bytes).await.map_err(|e| self.io("write", &tmp, e))?;
        tokio::fs::rename(&tmp, &path).await.map_err(|e| self.io("rename", &tmp, e))
    }
}

/// A name next to `path` that no other writer in this or another process uses.
fn temp_name(path: &Path) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}-{n}", std::process::id()));
    path.with_file_name(name)
}

#[async_trait]
impl Publisher for LayoutPublisher {
    async fn publish(&self, artifact: &Artifact, _import_path: &str) -> Result<String> {
        self.ensure_layout().await?;
        match artifact {
            Artifact::Image(image) => self.write_image(image).await?,
            Artifact::Index(index) => {
                for child in &index.images {
                    self.write_image(child).await?;
                }
                self.write_bytes(&index.manifest).await?;
            }
        }
        let top = Descriptor::new(artifact.media_type(), artifact.digest(), artifact.manifest_bytes().len() as u64);
        self.append_to_index(top).await?;
        let reference = format!("{}@{}", self.dir.display(), artifact.digest());
        tracing::info!("Published {reference}");
        Ok(reference)
    }
}
