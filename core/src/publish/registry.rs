//! Publishing to a registry. Per image: every blob is checked (HEAD) and only then mounted from
//! the base's repository or uploaded as a stream; the manifest goes up only after all its blobs
//! are confirmed, and an index only after all its children. The first tag is pushed, then the
//! others are pointed at the same manifest, so a tag never names a partially pushed image.
//!
//! A blob is uploaded at most once per run: images that share it (the built-in base layer, an
//! empty kodata layer) wait for the first upload, then mount it into their own repository.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};

use super::{Destination, Publisher};
use crate::error::Result;
use crate::image::layer::MemoryBlob;
use crate::image::{Artifact, Image, Layer, media_type};
use crate::name::Repository;
use crate::registry::RegistryClient;

/// Blobs uploaded at once per image.
const BLOB_JOBS: usize = 4;

/// Which repository of the destination registry this run first placed a blob in.
type Placement = Arc<tokio::sync::Mutex<Option<String>>>;

pub struct RegistryPublisher {
    client: Arc<RegistryClient>,
    destination: Destination,
    placed: tokio::sync::Mutex<HashMap<String, Placement>>,
}

impl RegistryPublisher {
    pub fn new(client: Arc<RegistryClient>, destination: Destination) -> Self {
        RegistryPublisher { client, destination, placed: Default::default() }
    }

    async fn push_blob(&self, repo: &Repository, layer: &Layer) -> Result<()> {
        let target = repo.tag("latest");
        let digest = layer.digest();
        let slot = self.placed.lock().await.entry(digest.to_string()).or_default().clone();
        // Held until this blob is in `repo`, so another image needing it waits and then mounts.
        let mut placed = slot.lock().await;
        if self.client.blob_exists(&target, digest).await? {
            tracing::info!("existing blob: {digest}");
            placed.get_or_insert_with(|| repo.path.clone());
            return Ok(());
        }
        let base = layer.source.mount_origin().filter(|o| o.registry == repo.registry).map(|o| o.repository.clone());
        for from in base.iter().chain(placed.iter()) {
            if from != &repo.path && self.client.mount_blob(&target, from, digest).await? {
                tracing::info!("mounted blob: {digest}");
                placed.get_or_insert_with(|| repo.path.clone());
                return Ok(());
            }
        }
        self.client.push_blob(&target, digest, layer.descriptor.size, layer.source.as_ref()).await?;
        tracing::info!("pushed blob: {digest}");
        placed.get_or_insert_with(|| repo.path.clone());
        Ok(())
    }

    /// Uploads an image's config and layers (not its manifest).
    async fn push_blobs(&self, repo: &Repository, image: &Image) -> Result<()> {
        let config = Layer {
            descriptor: crate::image::Descriptor::new(
                &image.config_media_type()?,
                &image.config.digest,
                image.config.bytes.len() as u64,
            ),
            diff_id: String::new(),
            source: Arc::new(MemoryBlob(image.config.bytes.clone())),
        };
        let mut blobs: Vec<&Layer> = Vec::with_capacity(image.layers.len() + 1);
        blobs.push(&config);
        for l in &image.layers {
            if !blobs.iter().any(|b| b.digest() == l.digest()) {
                blobs.push(l);
            }
        }
        let pushes: Vec<_> = blobs.into_iter().map(|b| Box::pin(self.push_blob(repo, b))).collect();
        futures::stream::iter(pushes).buffer_unordered(BLOB_JOBS).try_collect::<Vec<()>>().await?;
        Ok(())
    }

    /// Puts a manifest at `tag` unless the tag already names exactly this digest.
    async fn put_tag(&self, repo: &Repository, tag: &str, artifact: &Artifact) -> Result<()> {
        let reference = repo.tag(tag);
        if self.client.manifest_digest(&reference).await?.as_deref() == Some(artifact.digest()) {
            tracing::info!("existing manifest: {repo}:{tag}@{}", artifact.digest());
            return Ok(());
        }
        self.client.push_manifest(&reference, artifact.manifest_bytes().clone(), artifact.media_type()).await?;
        tracing::info!("{repo}:{tag}: digest: {} size: {}", artifact.digest(), artifact.manifest_bytes().len());
        Ok(())
    }
}

#[async_trait]
impl Publisher for RegistryPublisher {
    async fn publish(&self, artifact: &Artifact, import_path: &str) -> Result<String> {
        let repo = self.destination.repository_for(import_path);
        let tags = &self.destination.tags;
        tracing::info!("Publishing {repo}:{}", tags[0]);
        match artifact {
            Artifact::Image(image) => self.push_blobs(&repo, image).await?,
            Artifact::Index(index) => {
                for child in &index.images {
                    self.push_blobs(&repo, child).await?;
                    let by_digest = repo.digest(&child.manifest.digest);
                    debug_assert!(media_type::is_manifest(&child.media_type));
                    self.client.push_manifest(&by_digest, child.manifest.bytes.clone(), &child.media_type).await?;
                }
            }
        }
        self.put_tag(&repo, &tags[0], artifact).await?;
        for tag in &tags[1..] {
            tracing::info!("Tagging {repo}:{tag}");
            self.put_tag(&repo, tag, artifact).await?;
        }
        let reference = self.destination.reference(&repo, artifact.digest());
        tracing::info!("Published {reference}");
        Ok(reference)
    }
}
