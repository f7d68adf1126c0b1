//! Publishing to a registry. Per image: every blob is checked (HEAD) and only then mounted from
//! the base's repository or uploaded as a stream; the manifest goes up only after all its blobs
//! are confirmed, and an index only after all its children. The first tag is pushed, then the
//! others are pointed at the same manifest, so a tag never names a partially pushed image.
//!
//! SBOMs go up between the two: the manifest is put by digest, then its SBOM (and each child's)
//! at `sha256-<hex>.sbom`, and only then are the tags moved. An SBOM the registry refuses fails
//! the publish with the tags where they were (upstream pushes SBOMs alongside its tags).
//!
//! A blob is uploaded at most once per session: images that share it (the built-in base layer, an
//! empty kodata layer) wait for the first upload, then mount it into their own repository.
//! Each blob's fate (existing, mounted, bytes sent, uploaded) and each manifest put is an event.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};

use super::Publisher;
use crate::error::Result;
use crate::events::{Event, Events};
use crate::image::layer::{BlobSource, ByteStream, MemoryBlob};
use crate::image::{Artifact, Image, Layer, media_type};
use crate::name::{Destination, Repository};
use crate::registry::RegistryClient;
use crate::sbom;

/// Bytes between two progress events of one upload.
const PROGRESS_STEP: u64 = 1 << 20;

/// Blobs uploaded at once per image.
const BLOB_JOBS: usize = 4;
/// Child images of an index published at once.
const CHILD_JOBS: usize = 4;

/// Which repository of the destination registry this run first placed a blob in.
type Placement = Arc<tokio::sync::Mutex<Option<String>>>;

pub struct RegistryPublisher {
    client: Arc<RegistryClient>,
    destination: Destination,
    /// Where SBOMs go instead of each image's repository (`COSIGN_REPOSITORY`).
    sbom_repository: Option<Repository>,
    events: Events,
    placed: tokio::sync::Mutex<HashMap<String, Placement>>,
}

impl RegistryPublisher {
    pub fn new(
        client: Arc<RegistryClient>,
        destination: Destination,
        sbom_repository: Option<Repository>,
        events: Events,
    ) -> Self {
        RegistryPublisher { client, destination, sbom_repository, events, placed: Default::default() }
    }

    async fn push_blob(&self, repo: &Repository, layer: &Layer) -> Result<()> {
        let target = repo.tag("latest");
        let digest = layer.digest();
        let slot = self.placed.lock().await.entry(digest.to_string()).or_default().clone();
        // Held until this blob is in `repo`, so another image needing it waits and then mounts.
        let mut placed = slot.lock().await;
        let (repository, size) = (repo.to_string(), layer.descriptor.size);
        if self.client.blob_exists(&target, digest).await? {
            tracing::info!("existing blob: {digest}");
            placed.get_or_insert_with(|| repo.path.clone());
            drop(placed);
            self.events.emit(Event::BlobExisting { repository, digest: digest.into(), size });
            return Ok(());
        }
        let base = layer.source.mount_origin().filter(|o| o.registry == repo.registry).map(|o| o.repository.clone());
        for from in base.iter().chain(placed.iter()) {
            if from != &repo.path && self.client.mount_blob(&target, from, digest).await? {
                tracing::info!("mounted blob: {digest}");
                let from = format!("{}/{from}", repo.registry);
                placed.get_or_insert_with(|| repo.path.clone());
                drop(placed);
                self.events.emit(Event::BlobMounted { repository, digest: digest.into(), size, from });
                return Ok(());
            }
        }
        let source = Progress {
            inner: layer.source.clone(),
            events: self.events.clone(),
            repository: repository.clone(),
            total: size,
        };
        self.client.push_blob(&target, digest, size, &source).await?;
        tracing::info!("pushed blob: {digest}");
        placed.get_or_insert_with(|| repo.path.clone());
        drop(placed);
        self.events.emit(Event::BlobUploaded { repository, digest: digest.into(), size });
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

    /// Pushes a child image of an index: its blobs, then its manifest by digest, then its SBOM.
    async fn push_child(&self, repo: &Repository, child: &Image) -> Result<()> {
        self.push_blobs(repo, child).await?;
        let by_digest = repo.digest(&child.manifest.digest);
        debug_assert!(media_type::is_manifest(&child.media_type));
        self.client.push_manifest(&by_digest, child.manifest.bytes.clone(), &child.media_type).await?;
        self.events.emit(Event::ManifestPublished {
            reference: format!("{repo}@{}", child.manifest.digest),
            digest: child.manifest.digest.clone(),
            media_type: child.media_type.clone(),
        });
        if let Some(document) = &child.sbom {
            self.push_sbom(repo, &child.manifest.digest, document).await?;
        }
        Ok(())
    }

    /// Puts a manifest by its digest unless the repository has it already (so that its SBOM can
    /// name it before any tag does).
    async fn put_digest(&self, repo: &Repository, digest: &str, bytes: &bytes::Bytes, media_type: &str) -> Result<()> {
        let by_digest = repo.digest(digest);
        if self.client.manifest_digest(&by_digest).await?.as_deref() == Some(digest) {
            tracing::info!("existing manifest: {repo}@{digest}");
            return Ok(());
        }
        self.client.push_manifest(&by_digest, bytes.clone(), media_type).await?;
        self.events.emit(Event::ManifestPublished {
            reference: format!("{repo}@{digest}"),
            digest: digest.to_string(),
            media_type: media_type.to_string(),
        });
        Ok(())
    }

    /// Pushes the SBOM of the manifest with `digest` (already in `repo`) as an attachment at
    /// `sha256-<hex>.sbom`, in `repo` or `COSIGN_REPOSITORY`.
    async fn push_sbom(&self, repo: &Repository, digest: &str, document: &bytes::Bytes) -> Result<()> {
        let target = self.sbom_repository.as_ref().unwrap_or(repo);
        let tag = sbom::tag_for(digest);
        let attachment = Artifact::Image(Arc::new(sbom::attachment(document)?));
        let Artifact::Image(image) = &attachment else { unreachable!("made as an image") };
        let pushed = async {
            // A tag naming this attachment already has its blobs (a registry takes no manifest
            // without them): an unchanged rebuild asks once, not once per blob.
            if self.tag_names(target, &tag, attachment.digest()).await? {
                tracing::info!("existing manifest: {target}:{tag}@{}", attachment.digest());
                return Ok(());
            }
            self.push_blobs(target, image).await?;
            self.put_tag(target, &tag, &attachment).await
        };
        pushed.await.map_err(|e| {
            e.context(format!(
                "cannot publish the SBOM of {repo}@{digest} (its tags were not moved; --sbom=none publishes without SBOMs)"
            ))
        })?;
        tracing::info!("Published SBOM {target}:{tag}");
        Ok(())
    }

    /// Whether `repo:tag` names `digest` now.
    async fn tag_names(&self, repo: &Repository, tag: &str, digest: &str) -> Result<bool> {
        Ok(self.client.manifest_digest(&repo.tag(tag)).await?.as_deref() == Some(digest))
    }

    /// Puts a manifest at `tag` unless the tag already names exactly this digest.
    async fn put_tag(&self, repo: &Repository, tag: &str, artifact: &Artifact) -> Result<()> {
        let current = self.tag_names(repo, tag, artifact.digest()).await?;
        self.put_tag_unless(repo, tag, artifact, current).await
    }

    /// Puts a manifest at `tag` unless `current` (the tag names exactly this digest already).
    async fn put_tag_unless(&self, repo: &Repository, tag: &str, artifact: &Artifact, current: bool) -> Result<()> {
        let reference = repo.tag(tag);
        if current {
            tracing::info!("existing manifest: {repo}:{tag}@{}", artifact.digest());
            return Ok(());
        }
        self.client.push_manifest(&reference, artifact.manifest_bytes().clone(), artifact.media_type()).await?;
        tracing::info!("{repo}:{tag}: digest: {} size: {}", artifact.digest(), artifact.manifest_bytes().len());
        self.events.emit(Event::ManifestPublished {
            reference: format!("{repo}:{tag}"),
            digest: artifact.digest().into(),
            media_type: artifact.media_type().into(),
        });
        Ok(())
    }
}

#[async_trait]
impl Publisher for RegistryPublisher {
    /// The credentials files are valid and the destination registry answers: checked while the
    /// images are built, not after.
    async fn ready(&self) -> Result<()> {
        let repository = &self.destination.repository;
        self.client.ready(&repository.registry, &repository.path).await
    }

    async fn publish(&self, artifact: &Artifact, import_path: &str) -> Result<String> {
        let repo = self.destination.repository_for(import_path);
        let tags = &self.destination.tags;
        tracing::info!("Publishing {repo}:{}", tags[0]);
        // Asked once, while the blobs go up (which leave tags alone): what the first tag names.
        let current = self.tag_names(&repo, &tags[0], artifact.digest());
        let current = match artifact {
            Artifact::Image(image) => {
                let (current, ()) = futures::future::try_join(current, self.push_blobs(&repo, image)).await?;
                if let Some(document) = &image.sbom {
                    // The first tag naming this image means the repository has it by digest.
                    if !current {
                        self.put_digest(&repo, &image.manifest.digest, &image.manifest.bytes, &image.media_type)
                            .await?;
                    }
                    self.push_sbom(&repo, &image.manifest.digest, document).await?;
                }
                current
            }
            Artifact::Index(index) => {
                // Children concurrently (a few at a time), each by digest once its blobs are in;
                // the index, below, only after all of them.
                let children: Vec<_> =
                    index.images.iter().map(|child| Box::pin(self.push_child(&repo, child))).collect();
                let children = futures::stream::iter(children).buffer_unordered(CHILD_JOBS).try_collect::<Vec<()>>();
                let (current, _) = futures::future::try_join(current, children).await?;
                if let Some(document) = &index.sbom {
                    if !current {
                        self.put_digest(&repo, &index.manifest.digest, &index.manifest.bytes, &index.media_type)
                            .await?;
                    }
                    self.push_sbom(&repo, &index.manifest.digest, document).await?;
                }
                current
            }
        };
        self.put_tag_unless(&repo, &tags[0], artifact, current).await?;
        for tag in &tags[1..] {
            tracing::info!("Tagging {repo}:{tag}");
            self.put_tag(&repo, tag, artifact).await?;
        }
        let reference = self.destination.reference(&repo, artifact.digest());
        tracing::info!("Published {reference}");
        Ok(reference)
    }
}

/// A blob source whose streams report the bytes read from them as [`Event::BlobProgress`]:
/// every [`PROGRESS_STEP`] bytes and at the end, from 0 again for each attempt of an upload.
struct Progress {
    inner: Arc<dyn BlobSource>,
    events: Events,
    repository: String,
    total: u64,
}

#[async_trait]
impl BlobSource for Progress {
    async fn open(&self, digest: &str) -> Result<ByteStream> {
        let stream = self.inner.open(digest).await?;
        if !self.events.enabled() {
            return Ok(stream);
        }
        let (events, repository, digest, total) =
            (self.events.clone(), self.repository.clone(), digest.to_string(), self.total);
        let (mut sent, mut reported) = (0u64, 0u64);
        Ok(Box::pin(stream.inspect(move |chunk| {
            if let Ok(bytes) = chunk {
                sent += bytes.len() as u64;
                if sent - reported >= PROGRESS_STEP || sent == total {
                    reported = sent;
                    events.emit(Event::BlobProgress {
                        repository: repository.clone(),
                        digest: digest.clone(),
                        sent,
                        total,
                    });
                }
            }
        })))
    }
}
