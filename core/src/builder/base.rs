//! Base images: where the layers under a Go binary come from. A base is named by a registry
//! reference (`cgr.dev/chainguard/static:latest`), an OCI layout (`oci-layout:/path[@sha256:…]`),
//! an image in the Docker engine (`ko.local/…` as upstream, or `docker-daemon:NAME[:TAG]` as
//! skopeo names it), `scratch` (no layers) or `static` (ko's built-in base). Each name is resolved
//! once per run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use futures::TryStreamExt;
use oci_client::Reference;
use tokio::sync::{Mutex, OnceCell};

use crate::blocking::{self, Checked};
use crate::cache::Cache;
use crate::daemon::Engine;
use crate::error::{Error, Result};
use crate::image::layer::{ByteStream, FileBlob, MountOrigin};
use crate::image::{
    BlobSource, Descriptor, Image, IndexManifest, Layer, Manifest, Platform, RawJson, docker_save, layout_blob_path,
    media_type, static_base,
};
use crate::name::{LOCAL_DOMAIN, is_under};
use crate::registry::RegistryClient;

/// The prefix that names an OCI layout directory as a base.
pub const OCI_LAYOUT_PREFIX: &str = "oci-layout:";
/// The prefix that names an image in the Docker engine as a base (skopeo's transport name).
pub const DOCKER_DAEMON_PREFIX: &str = "docker-daemon:";
/// The name of the empty base.
pub const SCRATCH: &str = "scratch";
/// Configs bigger than this are refused rather than read into memory.
const MAX_CONFIG_SIZE: u64 = 16 << 20;

/// A base that produces an image for any platform (nothing in it is platform-specific).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synthetic {
    Scratch,
    Static,
}

/// A resolved base image.
pub enum Base {
    /// A single-platform image.
    Image { reference: String, image: Image },
    /// A multi-platform index; child images are loaded on demand.
    Index {
        reference: String,
        media_type: String,
        manifest: RawJson,
        index: IndexManifest,
        source: Arc<dyn ImageSource>,
    },
    /// `scratch` or the built-in base.
    Synthetic(Synthetic),
}

impl Base {
    /// The name to print and annotate (`org.opencontainers.image.base.name`).
    pub fn reference(&self) -> &str {
        match self {
            Base::Image { reference, .. } | Base::Index { reference, .. } => reference,
            Base::Synthetic(Synthetic::Scratch) => SCRATCH,
            Base::Synthetic(Synthetic::Static) => static_base::NAME,
        }
    }

    /// The digest of the base's top-level manifest (`None` for `scratch`).
    pub fn digest(&self) -> Result<Option<String>> {
        Ok(match self {
            Base::Image { image, .. } => Some(image.manifest.digest.clone()),
            Base::Index { manifest, .. } => Some(manifest.digest.clone()),
            Base::Synthetic(Synthetic::Scratch) => None,
            Base::Synthetic(Synthetic::Static) => Some(static_base::digest()?),
        })
    }
}

/// Somewhere child images of an index can be loaded from.
#[async_trait]
pub trait ImageSource: Send + Sync {
    /// Loads the image that `descriptor` (an entry of this source's index) points at.
    async fn image(&self, descriptor: &Descriptor) -> Result<Image>;
}

/// Resolves base names, each once per run, sharing one registry client and one Docker engine.
pub struct BaseResolver {
    registry: Arc<RegistryClient>,
    engine: Arc<Engine>,
    /// The on-disk cache, which keeps base manifests and configs by digest across sessions.
    disk: Option<Cache>,
    working_dir: PathBuf,
    /// Where layers read from the Docker engine are kept while the session lives.
    temp_dir: PathBuf,
    loaded: Mutex<HashMap<String, Arc<OnceCell<Arc<Base>>>>>,
}

impl BaseResolver {
    pub fn new(
        registry: Arc<RegistryClient>,
        engine: Arc<Engine>,
        disk: Option<Cache>,
        working_dir: PathBuf,
        temp_dir: PathBuf,
    ) -> Self {
        BaseResolver { registry, engine, disk, working_dir, temp_dir, loaded: Mutex::default() }
    }

    /// The base named `name`, fetched on first use.
    pub async fn resolve(&self, name: &str) -> Result<Arc<Base>> {
        let cell = self.loaded.lock().await.entry(name.to_string()).or_default().clone();
        cell.get_or_try_init(|| async { self.load(name).await.map(Arc::new) }).await.cloned()
    }

    async fn load(&self, name: &str) -> Result<Base> {
        if name == SCRATCH {
            return Ok(Base::Synthetic(Synthetic::Scratch));
        }
        if name == static_base::NAME {
            return Ok(Base::Synthetic(Synthetic::Static));
        }
        if let Some(spec) = name.strip_prefix(OCI_LAYOUT_PREFIX) {
            return load_layout(name, spec, &self.working_dir).await;
        }
        if let Some(image) = daemon_image(name)? {
            return self.load_daemon(name, &image).await;
        }
        let reference = crate::name::parse_reference(name).map_err(|e| {
            Error::config(format!(
                "invalid base image {name:?}: {e}; use a registry reference, `{OCI_LAYOUT_PREFIX}DIR`, `{DOCKER_DAEMON_PREFIX}NAME`, `scratch` or `static`"
            ))
        })?;
        let (bytes, digest, mt) = self.registry.get_manifest(&reference).await.map_err(|e| e.context("base image"))?;
        let manifest = RawJson { bytes, digest };
        let repo = Reference::with_tag(reference.registry().into(), reference.repository().into(), "latest".into());
        let source =
            Arc::new(RegistrySource { registry: self.registry.clone(), repository: repo, disk: self.disk.clone() });
        if media_type::is_index(&mt) {
            let index = parse_index(&manifest, name)?;
            Ok(Base::Index { reference: name.to_string(), media_type: mt, manifest, index, source })
        } else {
            let image = source.load(manifest, mt).await?;
            Ok(Base::Image { reference: name.to_string(), image })
        }
    }

    /// Reads image `image` from the Docker engine: found by name, then exported by its ID (so a
    /// tag moving meanwhile cannot mix two images), its layers streamed into gzip files.
    async fn load_daemon(&self, name: &str, image: &str) -> Result<Base> {
        let info = self.engine.inspect(image).await.map_err(|e| e.context(format!("base image {name}")))?;
        let stream = self.engine.export(&info.id).await.map_err(|e| e.context(format!("base image {name}")))?;
        let dir = Arc::new(
            tempfile::Builder::new()
                .prefix("ko-base")
                .tempdir_in(&self.temp_dir)
                .map_err(|e| Error::io("cannot create a temporary directory", e))?,
        );
        let (into, label) = (dir.clone(), name.to_string());
        let runtime = tokio::runtime::Handle::current();
        let saved = blocking::run("reading a base image from the Docker engine", move |abandoned| {
            let reader =
                tokio_util::io::SyncIoBridge::new_with_handle(tokio_util::io::StreamReader::new(stream), runtime);
            docker_save::read(Checked::new(reader, abandoned), into.path(), &label)
        })
        .await?;
        let blobs = Arc::new(DaemonBlobs { files: saved.blobs, _keep_alive: dir });
        let image = assemble(saved.manifest, media_type::DOCKER_MANIFEST.to_string(), saved.config, blobs, name)?;
        Ok(Base::Image { reference: name.to_string(), image })
    }
}

/// The engine's name for base `name` when it names an image in the Docker engine: `ko.local/…`
/// or `docker-daemon:NAME`; `:latest` when it has no tag, as docker and skopeo read it.
fn daemon_image(name: &str) -> Result<Option<String>> {
    let image = match name.strip_prefix(DOCKER_DAEMON_PREFIX) {
        Some("") => {
            return Err(Error::config(format!(
                "invalid base image {name:?}: name the image after {DOCKER_DAEMON_PREFIX} (e.g. {DOCKER_DAEMON_PREFIX}alpine:3.20)"
            )));
        }
        Some(image) => image,
        None if is_under(name, LOCAL_DOMAIN) => name,
        None => return Ok(None),
    };
    let last = image.rsplit('/').next().unwrap_or(image);
    // An image ID (`sha256:…`) or a name with a tag or digest is taken as it is.
    Ok(Some(if last.contains(':') { image.to_string() } else { format!("{image}:latest") }))
}

/// Layers read from the Docker engine, kept in the base's temporary directory.
struct DaemonBlobs {
    files: HashMap<String, PathBuf>,
    _keep_alive: Arc<tempfile::TempDir>,
}

#[async_trait]
impl BlobSource for DaemonBlobs {
    async fn open(&self, digest: &str) -> Result<ByteStream> {
        let path =
            self.files.get(digest).ok_or_else(|| Error::internal(format!("no layer {digest} in a daemon base")))?;
        FileBlob { path: path.clone(), keep_alive: None }.open(digest).await
    }
}

fn parse_index(raw: &RawJson, name: &str) -> Result<IndexManifest> {
    serde_json::from_slice(&raw.bytes).map_err(|e| Error::build(format!("base image {name}: invalid index: {e}")))
}

fn parse_manifest(raw: &RawJson, name: &str) -> Result<Manifest> {
    serde_json::from_slice(&raw.bytes).map_err(|e| Error::build(format!("base image {name}: invalid manifest: {e}")))
}

/// Builds an [`Image`] from a manifest, its config and a blob source for its layers.
fn assemble(
    manifest_raw: RawJson,
    mt: String,
    config: RawJson,
    blobs: Arc<dyn BlobSource>,
    name: &str,
) -> Result<Image> {
    let manifest = parse_manifest(&manifest_raw, name)?;
    let cfg: serde_json::Value = serde_json::from_slice(&config.bytes)
        .map_err(|e| Error::build(format!("base image {name}: invalid config: {e}")))?;
    let diff_ids: Vec<String> = cfg["rootfs"]["diff_ids"]
        .as_array()
        .map(|a| a.iter().filter_map(|d| d.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    if diff_ids.len() != manifest.layers.len() {
        return Err(Error::build(format!(
            "base image {name}: the manifest has {} layers but the config lists {} diff ids",
            manifest.layers.len(),
            diff_ids.len()
        )));
    }
    let layers = manifest
        .layers
        .iter()
        .zip(diff_ids)
        .map(|(d, diff_id)| Layer { descriptor: d.clone(), diff_id, source: blobs.clone() })
        .collect();
    let platform = serde_json::from_value::<Platform>(cfg.clone()).ok();
    Ok(Image { media_type: mt, manifest: manifest_raw, config, layers, platform, sbom: None })
}

/// Images and blobs in one registry repository.
struct RegistrySource {
    registry: Arc<RegistryClient>,
    repository: Reference,
    /// Manifests by digest and configs come from here when kept by an earlier session.
    disk: Option<Cache>,
}

impl RegistrySource {
    async fn load(&self, manifest: RawJson, mt: String) -> Result<Image> {
        let name = format!("{}/{}@{}", self.repository.registry(), self.repository.repository(), manifest.digest);
        let parsed = parse_manifest(&manifest, &name)?;
        if parsed.config.size > MAX_CONFIG_SIZE {
            return Err(Error::build(format!(
                "base image {name}: config of {} bytes is too large",
                parsed.config.size
            )));
        }
        let config = match self.disk.as_ref().and_then(|d| d.blob(&parsed.config.digest)) {
            Some(kept) => RawJson::from_bytes(kept),
            None => {
                let stream =
                    self.registry.blob_stream(&self.repository, &parsed.config.digest, parsed.config.size).await?;
                let chunks: Vec<bytes::Bytes> = stream
                    .try_collect()
                    .await
                    .map_err(|e| Error::io(format!("base image {name}: reading config"), e))?;
                let config = RawJson::from_bytes(chunks.concat().into());
                if config.digest != parsed.config.digest {
                    return Err(Error::registry(format!(
                        "base image {name}: config digest mismatch ({})",
                        config.digest
                    )));
                }
                if let Some(disk) = &self.disk {
                    disk.put_blob(&config.digest, &config.bytes);
                }
                config
            }
        };
        let blobs = Arc::new(RegistryBlobs {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            sizes: parsed.layers.iter().map(|l| (l.digest.clone(), l.size)).collect(),
            origin: MountOrigin {
                registry: self.repository.registry().to_string(),
                repository: self.repository.repository().to_string(),
            },
        });
        assemble(manifest, mt, config, blobs, &name)
    }
}

#[async_trait]
impl ImageSource for RegistrySource {
    async fn image(&self, descriptor: &Descriptor) -> Result<Image> {
        let reference = Reference::with_digest(
            self.repository.registry().into(),
            self.repository.repository().into(),
            descriptor.digest.clone(),
        );
        // A manifest by digest never changes; one kept with its media type inside is used as is.
        let kept = self.disk.as_ref().and_then(|d| d.blob(&descriptor.digest)).and_then(|bytes| {
            let mt = embedded_media_type(&bytes)?;
            Some((RawJson::from_bytes(bytes), mt))
        });
        let (manifest, mt) = match kept {
            Some(found) => found,
            None => {
                let (bytes, digest, mt) = self.registry.get_manifest(&reference).await?;
                if let Some(disk) = &self.disk
                    && embedded_media_type(&bytes).as_deref() == Some(mt.as_str())
                {
                    disk.put_blob(&digest, &bytes);
                }
                (RawJson { bytes, digest }, mt)
            }
        };
        if !media_type::is_manifest(&mt) {
            return Err(Error::build(format!("base image {reference}: nested indexes are not supported")));
        }
        self.load(manifest, mt).await
    }
}

/// The `mediaType` a manifest names itself (optional in OCI manifests).
fn embedded_media_type(manifest: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Typed {
        #[serde(rename = "mediaType")]
        media_type: String,
    }
    serde_json::from_slice::<Typed>(manifest).ok().map(|t| t.media_type)
}

/// Blobs of one registry repository; mountable into other repositories of the same registry.
struct RegistryBlobs {
    registry: Arc<RegistryClient>,
    repository: Reference,
    /// The size of each layer, which sets the deadline of its download.
    sizes: std::collections::HashMap<String, u64>,
    origin: MountOrigin,
}

#[async_trait]
impl BlobSource for RegistryBlobs {
    async fn open(&self, digest: &str) -> Result<ByteStream> {
        let size = self.sizes.get(digest).copied().unwrap_or_default();
        self.registry.blob_stream(&self.repository, digest, size).await
    }

    fn mount_origin(&self) -> Option<&MountOrigin> {
        Some(&self.origin)
    }
}

/// An OCI image layout directory (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`).
struct LayoutSource {
    dir: PathBuf,
}

impl LayoutSource {
    fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        layout_blob_path(&self.dir, digest)
    }

    async fn read_blob(&self, digest: &str) -> Result<RawJson> {
        let path = self.blob_path(digest)?;
        let bytes =
            tokio::fs::read(&path).await.map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        let raw = RawJson::from_bytes(bytes.into());
        if raw.digest != digest {
            return Err(Error::build(format!("{}: content does not match its digest {digest}", path.display())));
        }
        Ok(raw)
    }
}

#[async_trait]
impl ImageSource for LayoutSource {
    async fn image(&self, descriptor: &Descriptor) -> Result<Image> {
        let manifest = self.read_blob(&descriptor.digest).await?;
        let name = format!("{}@{}", self.dir.display(), descriptor.digest);
        let parsed = parse_manifest(&manifest, &name)?;
        let config = self.read_blob(&parsed.config.digest).await?;
        let blobs = Arc::new(LayoutBlobs { dir: self.dir.clone() });
        assemble(manifest, descriptor.media_type.clone(), config, blobs, &name)
    }
}

struct LayoutBlobs {
    dir: PathBuf,
}

#[async_trait]
impl BlobSource for LayoutBlobs {
    async fn open(&self, digest: &str) -> Result<ByteStream> {
        FileBlob { path: layout_blob_path(&self.dir, digest)?, keep_alive: None }.open(digest).await
    }
}

/// `oci-layout:DIR` (the layout's single entry, or its whole index) or `oci-layout:DIR@sha256:…`.
async fn load_layout(name: &str, spec: &str, working_dir: &Path) -> Result<Base> {
    let (dir, digest) = match spec.rsplit_once('@') {
        Some((d, digest)) => (d, Some(digest)),
        None => (spec, None),
    };
    let dir = working_dir.join(dir);
    let index_path = dir.join("index.json");
    let bytes = tokio::fs::read(&index_path)
        .await
        .map_err(|e| Error::not_found(format!("base image {name}: cannot read {}: {e}", index_path.display())))?;
    let top = RawJson::from_bytes(bytes.into());
    let index = parse_index(&top, name)?;
    let source = Arc::new(LayoutSource { dir });
    let entry =
        match digest {
            Some(d) => Some(index.manifests.iter().find(|m| m.digest == d).cloned().ok_or_else(|| {
                Error::not_found(format!("base image {name}: {d} is not in {}", index_path.display()))
            })?),
            None if index.manifests.len() == 1 => Some(index.manifests[0].clone()),
            None => None,
        };
    match entry {
        None => Ok(Base::Index {
            reference: name.to_string(),
            media_type: media_type::OCI_INDEX.to_string(),
            manifest: top,
            index,
            source,
        }),
        Some(e) if media_type::is_index(&e.media_type) => {
            let manifest = source.read_blob(&e.digest).await?;
            let index = parse_index(&manifest, name)?;
            Ok(Base::Index { reference: name.to_string(), media_type: e.media_type, manifest, index, source })
        }
        Some(e) => Ok(Base::Image { reference: name.to_string(), image: source.image(&e).await? }),
    }
}
