//! SBOMs, as upstream makes them (on by default; `--sbom=none` turns them off): an SPDX 2.3 JSON
//! document for each image, from the Go build information embedded in its binary
//! ([`buildinfo`]), and one for each index ([`spdx`]). Registries get each as a cosign-style
//! attachment: a one-layer image (layer media type `text/spdx+json`) at the tag
//! `sha256-<hex of the image's digest>.sbom`, in the image's repository or `COSIGN_REPOSITORY`.
//! `--sbom-dir` also writes them as `<app>-<os>-<arch>.spdx.json` and `<app>-index.spdx.json`.
//!
//! Documents depend only on the image (its digest, config `created`, base annotations) and the
//! binary, never on the clock or the checkout's path, so the same build gives the same SBOM.

pub mod buildinfo;
pub mod spdx;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::cache::{self, Cache};
use crate::error::{Error, Result};
use crate::image::layer::MemoryBlob;
use crate::image::{Descriptor, Image, Index, Layer, Manifest, Platform, RawJson, media_type};
pub use buildinfo::BuildInfo;

/// The media type of an SPDX JSON document, as upstream attaches it.
pub const MEDIA_TYPE: &str = "text/spdx+json";

const BASE_NAME: &str = "org.opencontainers.image.base.name";
const BASE_DIGEST: &str = "org.opencontainers.image.base.digest";

/// What an image's SBOM says about its binary: the build information and the file's SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinaryInfo {
    pub build: BuildInfo,
    pub sha256: String,
}

impl BinaryInfo {
    /// The binary at `path`, from the cache when its Go build ID is known there (a binary's build
    /// ID names its content), else read from the file. Blocking.
    pub fn of(path: &Path, cache: Option<&Cache>) -> Result<BinaryInfo> {
        let key = cache.and_then(|_| cache::go_build_id(path)).map(|id| format!("binary-info v1 {id}"));
        if let (Some(cache), Some(key)) = (cache, &key)
            && let Some(known) = cache.binary_info(key)
        {
            return Ok(known);
        }
        let info = BinaryInfo { build: buildinfo::read(path)?, sha256: cache::content_hash(path)? };
        if let (Some(cache), Some(key)) = (cache, &key) {
            cache.put_binary_info(key, &info);
        }
        Ok(info)
    }
}

/// The repository (as a purl's `repository_url`) and tag of a base named `name`: registry
/// references as go-containerregistry spells them (`index.docker.io/library/ubuntu`); ko's own
/// bases (`static`, `scratch`, `oci-layout:…`, `docker-daemon:…`) as written.
pub fn base_repository(name: &str) -> (String, Option<String>) {
    let own = name == crate::image::static_base::NAME
        || name == "scratch"
        || name.starts_with("oci-layout:")
        || name.starts_with("docker-daemon:");
    if !own && let Ok(r) = crate::name::parse_reference(name) {
        let repository = format!("{}/{}", r.resolve_registry(), r.repository());
        // A reference with a digest is a digest reference, tag or not (as ggcr parses it).
        let tag = if r.digest().is_some() { None } else { r.tag().map(str::to_string) };
        return (repository, tag);
    }
    (name.split('@').next().unwrap_or(name).to_string(), None)
}

/// The SBOM of `image`, whose binary (at `binary_path` in the image) `binary` describes.
pub fn image_document(image: &Image, binary_path: &str, binary: &BinaryInfo) -> Result<bytes::Bytes> {
    let manifest = image.parsed_manifest()?;
    let annotations = manifest.annotations.unwrap_or_default();
    let base = annotations.get(BASE_NAME).zip(annotations.get(BASE_DIGEST));
    let created = config_created(&image.config)?;
    let subject = spdx::Subject {
        digest: &image.manifest.digest,
        media_type: &image.media_type,
        created: created.as_deref(),
        base: base.map(|(n, d)| (n.as_str(), d.as_str())),
    };
    let binary = spdx::Binary { path: binary_path, sha256: &binary.sha256, info: &binary.build };
    Ok(spdx::image(&subject, &binary).to_bytes())
}

/// The SBOM of `index`: its images, by platform.
pub fn index_document(index: &Index) -> Result<bytes::Bytes> {
    let manifest: crate::image::IndexManifest = serde_json::from_slice(&index.manifest.bytes)
        .map_err(|e| Error::build(format!("invalid index {}: {e}", index.manifest.digest)))?;
    let annotations = manifest.annotations.clone().unwrap_or_default();
    let base = annotations.get(BASE_NAME).zip(annotations.get(BASE_DIGEST));
    let created = match index.images.first() {
        Some(first) => config_created(&first.config)?,
        None => None,
    };
    let unknown = Platform::new("", "", None);
    let children: Vec<spdx::Child<'_>> = manifest
        .manifests
        .iter()
        .map(|d| spdx::Child {
            digest: &d.digest,
            media_type: &d.media_type,
            platform: d.platform.as_ref().unwrap_or(&unknown),
        })
        .collect();
    let subject = spdx::Subject {
        digest: &index.manifest.digest,
        media_type: &index.media_type,
        created: created.as_deref(),
        base: base.map(|(n, d)| (n.as_str(), d.as_str())),
    };
    Ok(spdx::index(&subject, &children).to_bytes())
}

fn config_created(config: &RawJson) -> Result<Option<String>> {
    let v: serde_json::Value = serde_json::from_slice(&config.bytes)
        .map_err(|e| Error::build(format!("invalid config {}: {e}", config.digest)))?;
    Ok(v.get("created").and_then(|c| c.as_str()).map(str::to_string))
}

/// The tag an SBOM of the image (or index) with `digest` is published at.
pub fn tag_for(digest: &str) -> String {
    format!("{}.sbom", digest.replacen(':', "-", 1))
}

/// The image an SBOM travels in to a registry: an empty OCI config and the document as its one
/// layer, as cosign's static files (and so upstream's attachments) are made.
pub fn attachment(document: &bytes::Bytes) -> Result<Image> {
    let digest = crate::image::sha256_digest(document);
    let config = serde_json::json!({
        "architecture": "",
        "created": crate::image::time::ZERO_TIME,
        "history": [{"created": crate::image::time::ZERO_TIME}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": [digest]},
        "config": {},
    });
    let config = RawJson::encode(&config)?;
    let layer = Layer {
        descriptor: Descriptor::new(MEDIA_TYPE, &digest, document.len() as u64),
        diff_id: digest,
        source: Arc::new(MemoryBlob(document.clone())),
    };
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media_type::OCI_MANIFEST.into()),
        config: Descriptor::new(media_type::OCI_CONFIG, &config.digest, config.bytes.len() as u64),
        layers: vec![layer.descriptor.clone()],
        annotations: None,
    };
    Ok(Image {
        media_type: media_type::OCI_MANIFEST.into(),
        manifest: RawJson::encode(&manifest)?,
        config,
        layers: vec![layer],
        platform: None,
        sbom: None,
    })
}

/// Where `--sbom-dir` puts the SBOM of `app`'s image for `platform` (`None`: its index), as
/// upstream names them.
pub fn file_in(dir: &Path, app: &str, platform: Option<&Platform>) -> PathBuf {
    let which = match platform {
        Some(p) => p.to_string().replace(['/', ':'], "-"),
        None => "index".into(),
    };
    dir.join(format!("{app}-{which}.spdx.json"))
}

/// Writes `document` to `path` (creating its directory), by way of a temporary name.
pub fn write_file(path: &Path, document: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    tracing::info!("Writing SBOM to {}", path.display());
    let mut tmp =
        tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(format!("cannot write in {}", dir.display()), e))?;
    std::io::Write::write_all(&mut tmp, document)
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
    tmp.persist(path).map_err(|e| Error::io(format!("cannot write {}", path.display()), e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bases_are_named_as_upstream_names_them() {
        assert_eq!(base_repository("127.0.0.1:5000/base:v1"), ("127.0.0.1:5000/base".into(), Some("v1".into())));
        assert_eq!(base_repository("ubuntu"), ("index.docker.io/library/ubuntu".into(), Some("latest".into())));
        let pinned = format!("ghcr.io/x/y@sha256:{}", "a".repeat(64));
        assert_eq!(base_repository(&pinned), ("ghcr.io/x/y".into(), None));
        assert_eq!(base_repository("static"), ("static".into(), None));
    }

    #[test]
    fn attachments_carry_the_document_as_their_layer() {
        let doc = bytes::Bytes::from_static(b"{\"spdxVersion\":\"SPDX-2.3\"}\n");
        let image = attachment(&doc).unwrap();
        let manifest: serde_json::Value = serde_json::from_slice(&image.manifest.bytes).unwrap();
        assert_eq!(manifest["layers"][0]["mediaType"], MEDIA_TYPE);
        assert_eq!(manifest["layers"][0]["digest"], crate::image::sha256_digest(&doc));
        assert_eq!(manifest["config"]["mediaType"], media_type::OCI_CONFIG);
        assert_eq!(tag_for(&format!("sha256:{}", "f".repeat(64))), format!("sha256-{}.sbom", "f".repeat(64)));
        let p = Platform::parse("windows/amd64:10.0.17763.1").unwrap();
        assert_eq!(file_in(Path::new("/s"), "app", Some(&p)), Path::new("/s/app-windows-amd64-10.0.17763.1.spdx.json"));
        assert_eq!(file_in(Path::new("/s"), "app", None), Path::new("/s/app-index.spdx.json"));
    }
}
