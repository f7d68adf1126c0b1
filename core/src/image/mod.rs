//! The OCI image model: media types, descriptors, platforms, manifests and indexes as they travel
//! over the wire, and the in-memory [`Image`] / [`Index`] values that builders produce and
//! publishers consume.
//!
//! Manifests and configs are kept as the exact bytes that will be published, with their digest,
//! so that every publisher (registry, OCI layout, tarball) writes the same content and the digest
//! a user sees is the digest of those bytes.

pub mod compress;
pub mod docker_save;
pub mod layer;
pub mod mutate;
pub mod platform;
pub mod static_base;
pub mod tar;
pub mod time;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

pub use layer::{BlobSource, Layer};
pub use platform::Platform;

use crate::error::{Error, Result};

/// Media types ko reads and writes.
pub mod media_type {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

    /// Whether `mt` names an image index or a Docker manifest list.
    pub fn is_index(mt: &str) -> bool {
        mt == OCI_INDEX || mt == DOCKER_LIST
    }

    /// Whether `mt` names a single-image manifest.
    pub fn is_manifest(mt: &str) -> bool {
        mt == OCI_MANIFEST || mt == DOCKER_MANIFEST
    }

    /// Whether the image family of `manifest_type` is Docker's (else OCI's).
    pub fn is_docker(manifest_type: &str) -> bool {
        manifest_type == DOCKER_MANIFEST || manifest_type == DOCKER_LIST
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A content descriptor. Field order follows go-containerregistry's `v1.Descriptor`, so the JSON
/// we write reads like upstream's; fields we do not model are kept in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub size: u64,
    pub digest: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub urls: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub platform: Option<Platform>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Descriptor {
    /// A plain descriptor of `media_type` for content with `digest` and `size`.
    pub fn new(media_type: &str, digest: &str, size: u64) -> Self {
        Descriptor {
            media_type: media_type.to_string(),
            size,
            digest: digest.to_string(),
            urls: None,
            annotations: None,
            platform: None,
            extra: Default::default(),
        }
    }
}

/// An image manifest (OCI or Docker schema 2).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", skip_serializing_if = "Option::is_none", default)]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An image index (OCI) or manifest list (Docker).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexManifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", skip_serializing_if = "Option::is_none", default)]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// Serialized JSON content with its digest: a manifest, an index or a config blob.
#[derive(Debug, Clone)]
pub struct RawJson {
    pub bytes: bytes::Bytes,
    pub digest: String,
}

impl RawJson {
    /// Serializes `value` compactly, as upstream does, and digests the bytes.
    pub fn encode<T: Serialize>(value: &T) -> Result<Self> {
        let bytes = serde_json::to_vec(value).map_err(|e| Error::build(format!("cannot encode JSON: {e}")))?;
        Ok(Self::from_bytes(bytes.into()))
    }

    /// Wraps bytes received from elsewhere, digesting them.
    pub fn from_bytes(bytes: bytes::Bytes) -> Self {
        let digest = sha256_digest(&bytes);
        RawJson { bytes, digest }
    }
}

/// A complete single-platform image: manifest and config bytes plus the layers they name.
#[derive(Clone)]
pub struct Image {
    pub media_type: String,
    pub manifest: RawJson,
    pub config: RawJson,
    pub layers: Vec<Layer>,
    /// The platform from the config, if known; used for index entries and log lines.
    pub platform: Option<Platform>,
    /// The image's SPDX SBOM, when SBOMs are on (registries get it as an attachment).
    pub sbom: Option<bytes::Bytes>,
}

impl Image {
    /// The descriptor another manifest (an index) uses to point at this image.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(&self.media_type, &self.manifest.digest, self.manifest.bytes.len() as u64)
    }

    /// The config blob's media type, as the manifest names it.
    pub fn config_media_type(&self) -> Result<String> {
        Ok(self.parsed_manifest()?.config.media_type)
    }

    /// The manifest parsed back, for publishers that need its descriptors.
    pub fn parsed_manifest(&self) -> Result<Manifest> {
        serde_json::from_slice(&self.manifest.bytes)
            .map_err(|e| Error::build(format!("invalid manifest {}: {e}", self.manifest.digest)))
    }
}

/// A multi-platform image: the index bytes plus its child images, in index order.
#[derive(Clone)]
pub struct Index {
    pub media_type: String,
    pub manifest: RawJson,
    pub images: Vec<Image>,
    /// The index's SPDX SBOM, when SBOMs are on.
    pub sbom: Option<bytes::Bytes>,
}

/// What a build produces: one image, or an index of per-platform images.
#[derive(Clone)]
pub enum Artifact {
    Image(Arc<Image>),
    Index(Arc<Index>),
}

impl Artifact {
    /// The digest of the top-level manifest: the digest a user pulls.
    pub fn digest(&self) -> &str {
        match self {
            Artifact::Image(i) => &i.manifest.digest,
            Artifact::Index(i) => &i.manifest.digest,
        }
    }

    /// The top-level manifest's media type.
    pub fn media_type(&self) -> &str {
        match self {
            Artifact::Image(i) => &i.media_type,
            Artifact::Index(i) => &i.media_type,
        }
    }

    /// The top-level manifest's bytes.
    pub fn manifest_bytes(&self) -> &bytes::Bytes {
        match self {
            Artifact::Image(i) => &i.manifest.bytes,
            Artifact::Index(i) => &i.manifest.bytes,
        }
    }
}

/// `dir/blobs/<alg>/<hex>`: where an OCI image layout keeps blob `digest`; digests that are not
/// `alg:hex` are refused, so a digest from a file can never name a path outside `dir`.
pub fn layout_blob_path(dir: &Path, digest: &str) -> Result<PathBuf> {
    match digest.split_once(':') {
        Some((alg, hex))
            if !alg.is_empty()
                && alg.chars().all(|c| c.is_ascii_alphanumeric())
                && !hex.is_empty()
                && hex.chars().all(|c| c.is_ascii_hexdigit()) =>
        {
            Ok(dir.join("blobs").join(alg).join(hex))
        }
        _ => Err(Error::invalid(format!("invalid digest {digest:?}"))),
    }
}
