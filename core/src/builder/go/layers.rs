//! Assembling the image for one platform, as upstream's `buildOne`: the kodata layer and the
//! binary layer appended to the base with their history entries, then the config edited
//! (entrypoint, `Cmd`, `PATH`, `KO_DATA_PATH`, env, labels, user, `created`) and the annotations
//! set. Windows images get Windows' layout (`Hives/`, `Files/…`, `C:\ko-app\<name>`); a Linux
//! binary may carry file capabilities. A layer whose inputs the layer cache knows (a binary's Go
//! build ID, a kodata tree's fingerprint, and every setting that changes the layer's bytes) is not
//! made at all unless a publisher asks for its bytes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};

use crate::blocking::{self, Checked};
use crate::builder::caps::{self, FileCaps};
use crate::builder::kodata::{self, Layout, WINDOWS_SD};
use crate::cache::{self, Cache};
use crate::config::{BuildSettings, ImageConfig};
use crate::error::{Error, Result};
use crate::events::{Event, Events, LayerRole};
use crate::image::compress::Compression;
use crate::image::layer::{BlobSource, FileBlob, LazyBlob, Recipe};
use crate::image::mutate::{History, ImageBuilder};
use crate::image::tar::{LayerDigests, LayerWriter};
use crate::image::time::{ZERO_TIME, rfc3339};
use crate::image::{Descriptor, Image, Index, IndexManifest, Layer, Platform, RawJson};

pub const APP_DIR: &str = "/ko-app";
/// Where a Windows image's binary runs from.
const WINDOWS_APP_DIR: &str = r"C:\ko-app";
const WINDOWS_KODATA: &str = r"C:\var\run\ko";

/// What the config and manifest get besides the entrypoint and kodata: a build's image settings
/// over the `.ko.yaml` defaults, and the flags (`--image-label`, `--image-annotation`,
/// `--image-user`) over both. Labels and annotations merge key by key; env, args and entrypoint
/// extras of a build replace the defaults' (as a build's `env` replaces `defaultEnv`).
pub fn effective_image(defaults: &ImageConfig, build: &ImageConfig, flags: &BuildSettings) -> ImageConfig {
    let merged = |layers: [&[(String, String)]; 3]| {
        let mut out: Vec<(String, String)> = Vec::new();
        for (k, v) in layers.into_iter().flatten() {
            match out.iter_mut().find(|(ok, _)| ok == k) {
                Some(slot) => slot.1 = v.clone(),
                None => out.push((k.clone(), v.clone())),
            }
        }
        out
    };
    let either = |own: &Vec<String>, default: &Vec<String>| if own.is_empty() { default } else { own }.clone();
    ImageConfig {
        env: either(&build.env, &defaults.env),
        labels: merged([&defaults.labels, &build.labels, &flags.labels]),
        annotations: merged([&defaults.annotations, &build.annotations, &flags.annotations]),
        user: flags.user.clone().or_else(|| build.user.clone()).or_else(|| defaults.user.clone()),
        args: either(&build.args, &defaults.args),
        entrypoint: either(&build.entrypoint, &defaults.entrypoint),
    }
}

/// Where a build's layers are made and remembered.
pub struct LayerContext<'a> {
    pub cache: Option<&'a Cache>,
    pub compression: Compression,
    /// The build's working directory; layer files live in it.
    pub tmp: &'a Arc<tempfile::TempDir>,
}

/// A layer of ko's: its digests and where its bytes come from (a file written now, or a recipe
/// run only if a publisher needs the bytes).
pub struct MadeLayer {
    pub digests: LayerDigests,
    pub source: Arc<dyn BlobSource>,
    /// Known from the layer cache: nothing was tarred or compressed.
    pub cached: bool,
}

impl LayerContext<'_> {
    /// The layer `key` names: from the cache (made lazily by `recipe` at `path`), or made now and
    /// remembered.
    async fn layer(&self, key: Option<String>, path: PathBuf, recipe: Recipe) -> Result<MadeLayer> {
        if let (Some(cache), Some(key)) = (self.cache, &key)
            && let Some(digests) = cache.layer(key)
        {
            let (cache, key) = (cache.clone(), key.clone());
            let correct = Box::new(move |made: &LayerDigests| cache.put_layer(&key, made));
            let source = LazyBlob::new(digests.clone(), path, recipe, correct, self.tmp.clone());
            return Ok(MadeLayer { digests, source: Arc::new(source), cached: true });
        }
        let (out, keep_alive) = (path.clone(), self.tmp.clone());
        let digests = blocking::run("layer", move |abandoned| {
            let _keep_alive = keep_alive;
            recipe(&out, abandoned)
        })
        .await?;
        if let (Some(cache), Some(key)) = (self.cache, &key) {
            cache.put_layer(key, &digests);
        }
        let source = FileBlob { path, keep_alive: Some(self.tmp.clone()) };
        Ok(MadeLayer { digests, source: Arc::new(source), cached: false })
    }

    /// The kodata layer of the package in `package_dir` for images laid out as `layout`, made in
    /// `dir`.
    pub async fn kodata(
        &self,
        package_dir: PathBuf,
        allowed_root: PathBuf,
        layout: Layout,
        mtime: u64,
        dir: &Path,
    ) -> Result<MadeLayer> {
        let compression = self.compression;
        let key = match self.cache {
            Some(_) => {
                let (p, a) = (package_dir.clone(), allowed_root.clone());
                let fingerprint = blocking::run("kodata", move |_| kodata::fingerprint(&p, &a, layout)).await?;
                Some(format!("kodata v1 {} mtime={mtime}{} {fingerprint}", compression.cache_name(), layout.key()))
            }
            None => None,
        };
        let recipe: Recipe = Arc::new(move |out, abandoned| {
            kodata::write_layer(&package_dir, &allowed_root, layout, mtime, out, compression, abandoned)
        });
        let file = match layout {
            Layout::Linux => "kodata.tar.gz",
            Layout::Windows => "kodata-windows.tar.gz",
        };
        self.layer(key, dir.join(file), recipe).await
    }

    /// The binary layer (the `ko-app` directory, then `binary` at `entry`, as upstream's
    /// `tarBinary`; for Windows `Hives`, `Files`, `Files/ko-app`, then `Files<entry>`), made in
    /// `dir`, with `caps` as the binary's `security.capability` attribute. `binary` stays where
    /// it is while the image may need it.
    pub async fn binary(
        &self,
        binary: PathBuf,
        entry: String,
        layout: Layout,
        caps: Option<FileCaps>,
        dir: &Path,
    ) -> Result<MadeLayer> {
        let compression = self.compression;
        let xattr = caps.filter(|_| layout == Layout::Linux).map(|c| c.xattr());
        let key = match self.cache {
            Some(_) => {
                let b = binary.clone();
                let id = blocking::run("binary id", move |_| match cache::go_build_id(&b) {
                    Some(id) => Ok(format!("go-build-id {id}")),
                    None => cache::content_hash(&b).map(|h| format!("sha256 {h}")),
                })
                .await?;
                let size = std::fs::metadata(&binary)
                    .map_err(|e| Error::io(format!("cannot stat {}", binary.display()), e))?
                    .len();
                let caps = xattr.map(|x| format!(" caps={}", hex::encode(x))).unwrap_or_default();
                Some(format!("binary v1 {} {entry}{}{caps} size={size} {id}", compression.cache_name(), layout.key()))
            }
            None => None,
        };
        let recipe: Recipe = Arc::new(move |out, abandoned| {
            let file =
                std::fs::File::open(&binary).map_err(|e| Error::io(format!("cannot open {}", binary.display()), e))?;
            let size = file.metadata().map_err(|e| Error::io(format!("cannot stat {}", binary.display()), e))?.len();
            let mut w = LayerWriter::create(out, compression)?;
            let data = Checked::new(file, abandoned);
            match layout {
                Layout::Linux => {
                    w.append_dir("ko-app", 0o555, 0)?;
                    match &xattr {
                        Some(x) => w.append_file_with(&entry, 0o555, 0, size, data, &[(caps::XATTR_RECORD, x)])?,
                        None => w.append_file(&entry, 0o555, 0, size, data)?,
                    }
                }
                Layout::Windows => {
                    for d in ["Hives", "Files", "Files/ko-app"] {
                        w.append_dir(d, 0o555, 0)?;
                    }
                    w.append_file_with(&format!("Files{entry}"), 0o555, 0, size, data, &[WINDOWS_SD])?;
                }
            }
            w.finish().map(|(_, d)| d)
        });
        let file = match layout {
            Layout::Linux => "binary.tar.gz",
            Layout::Windows => "binary-windows.tar.gz",
        };
        self.layer(key, dir.join(file), recipe).await
    }
}

/// What one platform's image is made of, besides its base.
pub struct Parts<'a> {
    pub import_path: &'a str,
    pub platform: &'a Platform,
    /// `/ko-app/<name>` (the history entry says so for Windows images too, as upstream's).
    pub app_path: &'a str,
    pub kodata: &'a MadeLayer,
    pub binary: &'a MadeLayer,
    pub base_annotations: Vec<(&'static str, String)>,
    pub image: &'a ImageConfig,
}

/// Appends ko's two layers to `builder` (the base), edits the config and annotations, and
/// serialises the image.
pub fn assemble(
    mut builder: ImageBuilder,
    parts: Parts<'_>,
    settings: &BuildSettings,
    events: &Events,
) -> Result<Image> {
    let layer_type = builder.layer_media_type(settings.compression);
    let layer = |made: &MadeLayer| Layer {
        descriptor: Descriptor::new(layer_type, &made.digests.digest, made.digests.size),
        diff_id: made.digests.diff_id.clone(),
        source: made.source.clone(),
    };
    for (role, made) in [(LayerRole::Kodata, parts.kodata), (LayerRole::Binary, parts.binary)] {
        events.emit(Event::LayerReady {
            import_path: parts.import_path.into(),
            platform: parts.platform.to_string(),
            layer: role,
            digest: made.digests.digest.clone(),
            diff_id: made.digests.diff_id.clone(),
            size: made.digests.size,
            cached: made.cached,
        });
    }
    let created_by = format!("ko build ko://{}", parts.import_path);
    let time = |epoch: Option<i64>| epoch.map(rfc3339).unwrap_or_else(|| ZERO_TIME.to_string());
    builder.append(
        layer(parts.kodata),
        History {
            author: "ko".into(),
            created: time(settings.kodata_epoch),
            created_by: created_by.clone(),
            comment: "kodata contents, at $KO_DATA_PATH".into(),
        },
    );
    builder.append(
        layer(parts.binary),
        History {
            author: "ko".into(),
            created: time(settings.source_epoch),
            created_by,
            comment: format!("go build output, at {}", parts.app_path),
        },
    );
    edit_config(&mut builder, &parts, settings);
    let annotations = builder.annotations();
    for (k, v) in parts.base_annotations {
        annotations.insert(k.to_string(), v);
    }
    for (k, v) in &parts.image.annotations {
        annotations.insert(k.clone(), v.clone());
    }
    builder.build()
}

fn edit_config(builder: &mut ImageBuilder, parts: &Parts<'_>, settings: &BuildSettings) {
    let image = parts.image;
    let (program, app_dir, separator, kodata_path) = match Layout::for_os(&parts.platform.os) {
        Layout::Linux => (parts.app_path.to_string(), APP_DIR, ':', kodata::KODATA_ROOT),
        Layout::Windows => {
            let name = parts.app_path.rsplit('/').next().unwrap_or_default();
            // Windows separates PATH entries with ';' (upstream writes ':', which breaks a PATH
            // the base sets; with none, both give `PATH=C:\ko-app`).
            (format!(r"{WINDOWS_APP_DIR}\{name}"), WINDOWS_APP_DIR, ';', WINDOWS_KODATA)
        }
    };
    let rc = builder.runtime_config();
    let entrypoint: Vec<&str> =
        std::iter::once(program.as_str()).chain(image.entrypoint.iter().map(String::as_str)).collect();
    rc.insert("Entrypoint".into(), json!(entrypoint));
    if image.args.is_empty() {
        rc.remove("Cmd");
    } else {
        rc.insert("Cmd".into(), json!(image.args));
    }
    let mut env: Vec<String> = rc
        .get("Env")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    match env.iter_mut().find(|e| e.starts_with("PATH=")) {
        Some(path) => path.push_str(&format!("{separator}{app_dir}")),
        None => env.push(format!("PATH={app_dir}")),
    }
    env.push(format!("KO_DATA_PATH={kodata_path}"));
    // imageEnv entries replace a variable of the same name, else are added.
    for entry in &image.env {
        let name = entry.split('=').next().unwrap_or(entry);
        match env.iter_mut().find(|e| e.split('=').next() == Some(name)) {
            Some(slot) => slot.clone_from(entry),
            None => env.push(entry.clone()),
        }
    }
    rc.insert("Env".into(), json!(env));
    if !image.labels.is_empty() {
        let labels = rc.entry("Labels").or_insert_with(|| json!({}));
        if !labels.is_object() {
            *labels = json!({});
        }
        let labels = labels.as_object_mut().expect("just made an object");
        for (k, v) in &image.labels {
            labels.insert(k.clone(), json!(v));
        }
    }
    if let Some(user) = &image.user {
        rc.insert("User".into(), json!(user));
    }
    let top = builder.config_file();
    top.insert("author".into(), json!("github.com/ko-build/ko"));
    if let Some(epoch) = settings.source_epoch {
        top.insert("created".into(), json!(rfc3339(epoch)));
    }
}

/// `/ko-app/<name>`: the import path's last element, or `ko-app` when it has none.
pub fn app_filename(import_path: &str) -> String {
    match import_path.trim_end_matches('/').rsplit('/').next() {
        None | Some("") | Some(".") => "ko-app".to_string(),
        Some(name) => name.to_string(),
    }
}

/// An index of `children`, each entry copying platform, urls and annotations from its template.
pub fn make_index(
    media_type: &str,
    children: Vec<(Descriptor, Image)>,
    annotations: Vec<(String, String)>,
) -> Result<Index> {
    let mut manifests = Vec::with_capacity(children.len());
    let mut images = Vec::with_capacity(children.len());
    for (template, image) in children {
        let mut d = image.descriptor();
        d.platform = template.platform.clone().or_else(|| image.platform.clone());
        d.urls = template.urls.clone();
        d.annotations = template.annotations.clone();
        manifests.push(d);
        images.push(image);
    }
    let index = IndexManifest {
        schema_version: 2,
        media_type: Some(media_type.to_string()),
        manifests,
        annotations: (!annotations.is_empty()).then(|| annotations.into_iter().collect()),
    };
    Ok(Index { media_type: media_type.to_string(), manifest: RawJson::encode(&index)?, images, sbom: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wrong_cache_entry_fails_the_blob_and_is_corrected() {
        let dir = tempfile::tempdir().unwrap();
        let env = crate::env::Env::from_map([("KOCACHE", dir.path().join("cache").display().to_string())]);
        let cache = Cache::from_env(&env).unwrap();
        let tmp = Arc::new(tempfile::tempdir().unwrap());
        let cx = LayerContext { cache: Some(&cache), compression: Compression::Gzip, tmp: &tmp };
        let recipe: Recipe = Arc::new(|out: &Path, _: &crate::blocking::Abandoned| {
            let mut w = LayerWriter::create(out, Compression::Gzip)?;
            w.append_file("f", 0o644, 0, 3, &b"abc"[..])?;
            w.finish().map(|(_, d)| d)
        });
        let real = cx.layer(None, tmp.path().join("real.tar.gz"), recipe.clone()).await.unwrap().digests;
        let wrong = LayerDigests { digest: format!("sha256:{}", "0".repeat(64)), ..real.clone() };
        cache.put_layer("k", &wrong);
        let made = cx.layer(Some("k".into()), tmp.path().join("l.tar.gz"), recipe.clone()).await.unwrap();
        assert!(made.cached);
        let err = made.source.open(&wrong.digest).await.err().expect("the made blob does not match");
        assert!(err.to_string().contains("build again"), "{err}");
        assert_eq!(cache.layer("k"), Some(real.clone()), "the entry now says what the recipe makes");
        let again = cx.layer(Some("k".into()), tmp.path().join("m.tar.gz"), recipe).await.unwrap();
        assert_eq!(again.digests, real);
        assert!(again.source.open(&real.digest).await.is_ok());
    }

    #[test]
    fn app_names_follow_upstream() {
        assert_eq!(app_filename("example.com/app/cmd/server"), "server");
        assert_eq!(app_filename("example.com/app"), "app");
        assert_eq!(app_filename("."), "ko-app");
    }
}
