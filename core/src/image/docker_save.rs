//! Reading a `docker save` archive — what a Docker engine's `GET /images/get` streams — into an
//! image ko can build on and publish. `manifest.json` names the image's config and layers; the
//! engine sends layers as uncompressed tars (or, when it stores images in containerd, as the gzip
//! blobs it pulled). Each layer is written once into a directory as a gzip blob while its digests
//! are computed, in the same pass as it is read, so the archive is never held in memory and an
//! uncompressed layer's diff id is checked against the config on the way.
//!
//! Both layouts engines write are read: the classic one (`<id>/layer.tar`, `<id>.json`, links for
//! repeated layers) and the OCI one of newer engines (`blobs/sha256/<hex>`).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use serde::Deserialize;

use super::tar::HashingWriter;
use super::{Descriptor, Manifest, RawJson, media_type};
use crate::error::{Error, Result};

/// JSON entries (configs, manifests) bigger than this are refused rather than read into memory.
const MAX_JSON: u64 = 16 << 20;

/// An image read from an archive: a Docker schema 2 manifest made for it, its config, and the
/// file holding each layer's gzip bytes by the digest the manifest gives it.
pub struct SavedImage {
    pub manifest: RawJson,
    pub config: RawJson,
    pub blobs: HashMap<String, PathBuf>,
}

/// One entry of `manifest.json`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SaveEntry {
    config: String,
    layers: Vec<String>,
}

/// What an archive member turned out to be.
enum Member {
    Json(bytes::Bytes),
    Layer(StoredLayer),
}

struct StoredLayer {
    path: PathBuf,
    /// Of the gzip bytes as stored.
    digest: String,
    size: u64,
    /// Known when the archive held the layer uncompressed.
    diff_id: Option<String>,
}

/// Reads the archive of exactly one image (as an export by image ID gives) from `archive`,
/// writing its layers into `dir`; `name` names the image in errors.
pub fn read(archive: impl Read, dir: &Path, name: &str) -> Result<SavedImage> {
    let bad = |why: String| Error::build(format!("base image {name}: {why}"));
    let io =
        |e: std::io::Error| Error::io(format!("base image {name}: cannot read the image from the Docker engine"), e);
    let mut members: HashMap<String, Member> = HashMap::new();
    let mut links: HashMap<String, String> = HashMap::new();
    let mut tar = ::tar::Archive::new(archive);
    for (n, entry) in tar.entries().map_err(io)?.enumerate() {
        let mut entry = entry.map_err(io)?;
        let path = normalize("", &String::from_utf8_lossy(&entry.path_bytes()));
        match entry.header().entry_type() {
            ::tar::EntryType::Symlink | ::tar::EntryType::Link => {
                let target = entry.link_name_bytes().map(|t| String::from_utf8_lossy(&t).into_owned());
                let Some(target) = target else { continue };
                // A symbolic link is relative to its directory; a hard link names a member.
                let from = match entry.header().entry_type() {
                    ::tar::EntryType::Symlink => path.rsplit_once('/').map_or("", |(d, _)| d).to_string(),
                    _ => String::new(),
                };
                links.insert(path, normalize(&from, &target));
            }
            ::tar::EntryType::Regular | ::tar::EntryType::Continuous => {
                if is_legacy_metadata(&path) {
                    continue;
                }
                let member = store(&mut entry, &dir.join(format!("layer-{n}.tar.gz")), &path)
                    .map_err(|e| e.context(format!("base image {name}")))?;
                members.insert(path, member);
            }
            _ => {}
        }
    }
    let resolve = |path: &str| -> Option<&Member> {
        let mut path = normalize("", path);
        for _ in 0..16 {
            match links.get(&path) {
                Some(target) => path = target.clone(),
                None => return members.get(&path),
            }
        }
        None
    };
    let json = |path: &str| match resolve(path) {
        Some(Member::Json(bytes)) => Ok(bytes.clone()),
        _ => Err(bad(format!("the archive from the Docker engine has no {path}"))),
    };
    let entries: Vec<SaveEntry> =
        serde_json::from_slice(&json("manifest.json")?).map_err(|e| bad(format!("invalid manifest.json: {e}")))?;
    let [entry] = &entries[..] else {
        return Err(bad(format!("the archive from the Docker engine holds {} images, not one", entries.len())));
    };
    let config = RawJson::from_bytes(json(&entry.config)?);
    let parsed: serde_json::Value =
        serde_json::from_slice(&config.bytes).map_err(|e| bad(format!("invalid config: {e}")))?;
    let diff_ids: Vec<&str> = parsed["rootfs"]["diff_ids"]
        .as_array()
        .map(|a| a.iter().filter_map(|d| d.as_str()).collect())
        .unwrap_or_default();
    let mut layers = Vec::new();
    let mut blobs = HashMap::new();
    for (i, layer_path) in entry.layers.iter().enumerate() {
        let Some(Member::Layer(layer)) = resolve(layer_path) else {
            return Err(bad(format!("the archive from the Docker engine has no layer {layer_path}")));
        };
        if let Some(diff_id) = &layer.diff_id
            && diff_ids.get(i) != Some(&diff_id.as_str())
        {
            return Err(bad(format!(
                "layer {i} ({layer_path}) has diff id {diff_id}, and the config says {}",
                diff_ids.get(i).unwrap_or(&"nothing")
            )));
        }
        layers.push(Descriptor::new(media_type::DOCKER_LAYER_GZIP, &layer.digest, layer.size));
        blobs.insert(layer.digest.clone(), layer.path.clone());
    }
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media_type::DOCKER_MANIFEST.to_string()),
        config: Descriptor::new(media_type::DOCKER_CONFIG, &config.digest, config.bytes.len() as u64),
        layers,
        annotations: None,
    };
    Ok(SavedImage { manifest: RawJson::encode(&manifest)?, config, blobs })
}

/// The classic layout's per-layer metadata, which ko does not need.
fn is_legacy_metadata(path: &str) -> bool {
    path == "repositories" || path == "oci-layout" || path.ends_with("/json") || path.ends_with("/VERSION")
}

/// Reads one member: JSON into memory; a layer into `file` as gzip, with its digests.
fn store(entry: &mut impl Read, file: &Path, path: &str) -> Result<Member> {
    let io = |e: std::io::Error| Error::io(format!("cannot read {path} from the Docker engine"), e);
    let mut head = Vec::with_capacity(512);
    entry.by_ref().take(512).read_to_end(&mut head).map_err(io)?;
    let mut rest = (&head[..]).chain(entry);
    if head.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|b| *b == b'{' || *b == b'[') {
        let mut bytes = Vec::new();
        rest.take(MAX_JSON + 1).read_to_end(&mut bytes).map_err(io)?;
        if bytes.len() as u64 > MAX_JSON {
            return Err(Error::build(format!("{path} is larger than {MAX_JSON} bytes")));
        }
        return Ok(Member::Json(bytes.into()));
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Err(Error::unsupported(format!(
            "layer {path} is compressed with zstd, which this version of ko cannot use in a base image"
        )));
    }
    let write_err = |e: std::io::Error| Error::io(format!("cannot write {}", file.display()), e);
    let out = HashingWriter::new(BufWriter::with_capacity(1 << 20, File::create(file).map_err(write_err)?));
    if head.starts_with(&[0x1f, 0x8b]) {
        // Already gzip: kept byte for byte, so its digest is the one the engine's registry knows.
        let mut out = out;
        std::io::copy(&mut rest, &mut out).map_err(io)?;
        let (buffered, digest, size) = out.finish();
        buffered.into_inner().map_err(|e| write_err(e.into_error()))?;
        return Ok(Member::Layer(StoredLayer { path: file.to_path_buf(), digest, size, diff_id: None }));
    }
    // Gzip level 1, as ko's own layers and upstream's.
    let mut tar = HashingWriter::new(GzEncoder::new(out, Compression::fast()));
    std::io::copy(&mut rest, &mut tar).map_err(io)?;
    let (gz, diff_id, _) = tar.finish();
    let (buffered, digest, size) = gz.finish().map_err(write_err)?.finish();
    buffered.into_inner().map_err(|e| write_err(e.into_error()))?;
    Ok(Member::Layer(StoredLayer { path: file.to_path_buf(), digest, size, diff_id: Some(diff_id) }))
}

/// `path` (relative to directory `dir`) as a plain member name: no `.`, `..` resolved, no
/// leading or doubled `/`.
fn normalize(dir: &str, path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in dir.split('/').chain(path.split('/')) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::sha256_digest;
    use std::io::Write;

    fn tar_of(members: &[(&str, &[u8])], links: &[(&str, &str)]) -> Vec<u8> {
        let mut b = ::tar::Builder::new(Vec::new());
        for (path, data) in members {
            let mut h = ::tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, path, *data).unwrap();
        }
        for (path, target) in links {
            let mut h = ::tar::Header::new_ustar();
            h.set_entry_type(::tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, path, target).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn gunzip(path: &Path) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(File::open(path).unwrap()).read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn reads_the_classic_layout_with_a_linked_layer() {
        let layer = tar_of(&[("etc/hello", b"hi\n")], &[]);
        let diff_id = sha256_digest(&layer);
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{diff_id}","{diff_id}"]}}}}"#
        );
        let manifest = r#"[{"Config":"cfg.json","RepoTags":null,"Layers":["a/layer.tar","b/layer.tar"]}]"#;
        let archive = tar_of(
            &[
                ("a/VERSION", b"1.0"),
                ("a/json", b"{}"),
                ("a/layer.tar", &layer),
                ("cfg.json", config.as_bytes()),
                ("manifest.json", manifest.as_bytes()),
            ],
            &[("b/layer.tar", "../a/layer.tar")],
        );
        let dir = tempfile::tempdir().unwrap();
        let saved = read(&archive[..], dir.path(), "test").unwrap();
        assert_eq!(saved.config.bytes, config.as_bytes());
        let m: Manifest = serde_json::from_slice(&saved.manifest.bytes).unwrap();
        assert_eq!(m.media_type.as_deref(), Some(media_type::DOCKER_MANIFEST));
        assert_eq!(m.layers.len(), 2);
        assert_eq!(m.layers[0], m.layers[1], "the linked layer is the same blob");
        let file = &saved.blobs[&m.layers[0].digest];
        assert_eq!(gunzip(file), layer, "the blob is the layer, gzipped");
        let gz = std::fs::read(file).unwrap();
        assert_eq!((sha256_digest(&gz), gz.len() as u64), (m.layers[0].digest.clone(), m.layers[0].size));
    }

    #[test]
    fn keeps_gzip_layers_and_checks_diff_ids() {
        let layer = tar_of(&[("x", b"x")], &[]);
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&layer).unwrap();
        let gz = gz.finish().unwrap();
        let config = format!(r#"{{"rootfs":{{"diff_ids":["{}"]}}}}"#, sha256_digest(&layer));
        let manifest = r#"[{"Config":"blobs/sha256/c","Layers":["blobs/sha256/l"]}]"#;
        let dir = tempfile::tempdir().unwrap();
        let archive = tar_of(
            &[("blobs/sha256/l", &gz), ("blobs/sha256/c", config.as_bytes()), ("manifest.json", manifest.as_bytes())],
            &[],
        );
        let saved = read(&archive[..], dir.path(), "test").unwrap();
        let m: Manifest = serde_json::from_slice(&saved.manifest.bytes).unwrap();
        assert_eq!(m.layers[0].digest, sha256_digest(&gz), "a gzip layer is kept byte for byte");

        let wrong = r#"{"rootfs":{"diff_ids":["sha256:0000"]}}"#;
        let archive = tar_of(
            &[
                ("l.tar", &layer),
                ("c.json", wrong.as_bytes()),
                ("manifest.json", br#"[{"Config":"c.json","Layers":["l.tar"]}]"#),
            ],
            &[],
        );
        let e = read(&archive[..], dir.path(), "test").err().unwrap().to_string();
        assert!(e.contains("the config says sha256:0000"), "{e}");
        let archive = tar_of(&[("manifest.json", b"[]")], &[]);
        let e = read(&archive[..], dir.path(), "test").err().unwrap().to_string();
        assert!(e.contains("holds 0 images, not one"), "{e}");
    }

    #[test]
    fn member_names() {
        assert_eq!(normalize("", "./a//b/"), "a/b");
        assert_eq!(normalize("b", "../a/layer.tar"), "a/layer.tar");
        assert_eq!(normalize("", "../../x"), "x");
    }
}
