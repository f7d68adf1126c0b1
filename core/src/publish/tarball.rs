//! Publishing into a `docker save` tarball (`--tarball`): images are collected as they are
//! published and the file is written once, when the session finishes, with every tag in
//! `manifest.json`. Layers
//! are streamed into the archive. Indexes cannot be stored in this format.

use std::collections::HashSet;
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::Serialize;

use super::Publisher;
use crate::error::{Error, Result};
use crate::image::{Artifact, Image};
use crate::name::Destination;

pub struct TarballPublisher {
    file: PathBuf,
    destination: Destination,
    /// How the user names the tarball and platforms options, for messages.
    options: (String, String),
    images: Mutex<Vec<(Vec<String>, Arc<Image>)>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SaveManifestEntry {
    config: String,
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

impl TarballPublisher {
    /// A tarball at `file`; `options` are how the user spells the tarball and platforms options.
    pub fn new(file: PathBuf, destination: Destination, options: (String, String)) -> Self {
        TarballPublisher { file, destination, options, images: Mutex::default() }
    }
}

#[async_trait]
impl Publisher for TarballPublisher {
    async fn publish(&self, artifact: &Artifact, import_path: &str) -> Result<String> {
        let Artifact::Image(image) = artifact else {
            return Err(Error::invalid(format!(
                "{} {}: {import_path} built a multi-platform index, which a docker tarball cannot hold; build a single platform ({})",
                self.options.0,
                self.file.display(),
                self.options.1
            )));
        };
        let repo = self.destination.repository_for(import_path);
        let tags = self.destination.tags.iter().map(|t| format!("{repo}:{t}")).collect();
        self.images.lock().expect("tarball image list poisoned").push((tags, image.clone()));
        Ok(self.destination.reference(&repo, artifact.digest()))
    }

    async fn close(&self) -> Result<()> {
        // Kept until the file is written, so that a close that failed (a full disk) can be retried.
        let images = self.images.lock().expect("tarball image list poisoned").clone();
        if images.is_empty() {
            return Ok(());
        }
        let file = self.file.clone();
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || write_tarball(&file, &images, &runtime))
            .await
            .map_err(|e| Error::io("tarball writer", std::io::Error::other(e)))??;
        self.images.lock().expect("tarball image list poisoned").clear();
        Ok(())
    }
}

fn write_tarball(
    path: &std::path::Path,
    images: &[(Vec<String>, Arc<Image>)],
    rt: &tokio::runtime::Handle,
) -> Result<()> {
    let what = format!("cannot write tarball {}", path.display());
    let io_err = |e: std::io::Error| Error::io(&what, e);
    let tmp = path.with_extension("tmp");
    let out = std::fs::File::create(&tmp).map_err(io_err)?;
    let out = write_archive(std::io::BufWriter::new(out), images, rt, &what)?;
    out.into_inner().map_err(|e| io_err(e.into_error()))?.sync_all().map_err(io_err)?;
    std::fs::rename(&tmp, path).map_err(io_err)?;
    tracing::info!("Wrote {}", path.display());
    Ok(())
}

/// Writes `images`, each with its `repo:tag` names, into `out` as a `docker save` archive:
/// each config and layer once, then `manifest.json`. Layers are streamed from their sources on
/// `rt`; `what` says what is being written, in errors. The tarball and the Docker engine's load
/// stream are both written here.
pub(super) fn write_archive<W: std::io::Write>(
    out: W,
    images: &[(Vec<String>, Arc<Image>)],
    rt: &tokio::runtime::Handle,
    what: &str,
) -> Result<W> {
    let io_err = |e: std::io::Error| Error::io(what, e);
    let mut tar = ::tar::Builder::new(out);
    let mut written = HashSet::new();
    let mut manifest = Vec::new();
    let append = |tar: &mut ::tar::Builder<W>, name: &str, size: u64, data: &mut dyn Read| -> Result<()> {
        let mut h = ::tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(size);
        h.set_mtime(0);
        tar.append_data(&mut h, name, data).map_err(io_err)
    };
    for (tags, image) in images {
        let config_name = image.config.digest.clone();
        if written.insert(config_name.clone()) {
            append(&mut tar, &config_name, image.config.bytes.len() as u64, &mut &image.config.bytes[..])?;
        }
        let mut layers = Vec::new();
        for layer in &image.layers {
            let name = format!("{}.tar.gz", layer.digest().trim_start_matches("sha256:"));
            if written.insert(name.clone()) {
                let stream = rt.block_on(layer.open())?;
                let reader = tokio_util::io::StreamReader::new(stream);
                let mut sync = tokio_util::io::SyncIoBridge::new_with_handle(reader, rt.clone());
                append(&mut tar, &name, layer.descriptor.size, &mut sync)?;
            }
            layers.push(name);
        }
        manifest.push(SaveManifestEntry { config: config_name, repo_tags: tags.clone(), layers });
    }
    let json = serde_json::to_vec(&manifest).map_err(|e| Error::io("manifest.json", std::io::Error::other(e)))?;
    append(&mut tar, "manifest.json", json.len() as u64, &mut &json[..])?;
    tar.into_inner().map_err(io_err)
}
