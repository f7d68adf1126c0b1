//! Assembling the image for one platform, as upstream's `buildOne`: the kodata layer and the
//! binary layer appended to the base with their history entries, then the config edited
//! (entrypoint, `PATH`, `KO_DATA_PATH`, labels, user, `created`) and the annotations set.
//! A layer whose inputs the layer cache knows (a binary's Go build ID, a kodata tree's
//! fingerprint) is not made at all unless a publisher asks for its bytes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};

use crate::blocking::{self, Checked};
use crate::builder::kodata;
use crate::cache::{self, Cache};
use crate::config::BuildSettings;
use crate::error::{Error, Result};
use crate::events::{Event, Events, LayerRole};
use crate::image::compress::Compression;
use crate::image::layer::{BlobSource, FileBlob, LazyBlob, Recipe};
use crate::image::mutate::{History, ImageBuilder};
use crate::image::tar::{LayerDigests, LayerWriter};
use crate::image::time::{ZERO_TIME, rfc3339};
use crate::image::{Descriptor, Image, Index, IndexManifest, Layer, RawJson};

pub const APP_DIR: &str = "/ko-app";

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

    /// The kodata layer of the package in `package_dir`, made in `dir`.
    pub async fn kodata(
        &self,
        package_dir: PathBuf,
        allowed_root: PathBuf,
        mtime: u64,
        dir: &Path,
    ) -> Result<MadeLayer> {
        let compression = self.compression;
        let key = match self.cache {
            Some(_) => {
                let (p, a) = (package_dir.clone(), allowed_root.clone());
                let fingerprint = blocking::run("kodata", move |_| kodata::fingerprint(&p, &a)).await?;
                Some(format!("kodata v1 {} mtime={mtime} {fingerprint}", compression.name()))
            }
            None => None,
        };
        let recipe: Recipe = Arc::new(move |out, abandoned| {
            kodata::write_layer(&package_dir, &allowed_root, mtime, out, compression, abandoned)
        });
        self.layer(key, dir.join("kodata.tar.gz"), recipe).await
    }

    /// The binary layer (the `ko-app` directory, then `binary` at `entry`, as upstream's
    /// `tarBinary`), made in `dir`. `binary` stays where it is while the image may need it.
    pub async fn binary(&self, binary: PathBuf, entry: String, dir: &Path) -> Result<MadeLayer> {
        let compression = self.compression;
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
                Some(format!("binary v1 {} {entry} size={size} {id}", compression.name()))
            }
            None => None,
        };
        let recipe: Recipe = Arc::new(move |out, abandoned| {
            let file =
                std::fs::File::open(&binary).map_err(|e| Error::io(format!("cannot open {}", binary.display()), e))?;
            let size = file.metadata().map_err(|e| Error::io(format!("cannot stat {}", binary.display()), e))?.len();
            let mut w = LayerWriter::create(out, compression)?;
            w.append_dir("ko-app", 0o555, 0)?;
            w.append_file(&entry, 0o555, 0, size, Checked::new(file, abandoned))?;
            w.finish().map(|(_, d)| d)
        });
        self.layer(key, dir.join("binary.tar.gz"), recipe).await
    }
}

/// What one platform's image is made of, besides its base.
pub struct Parts<'a> {
    pub import_path: &'a str,
    pub platform: String,
    pub app_path: &'a str,
    pub kodata: &'a MadeLayer,
    pub binary: &'a MadeLayer,
    pub base_annotations: Vec<(&'static str, String)>,
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
            platform: parts.platform.clone(),
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
    edit_config(&mut builder, parts.app_path, settings);
    let annotations = builder.annotations();
    for (k, v) in parts.base_annotations {
        annotations.insert(k.to_string(), v);
    }
    for (k, v) in &settings.annotations {
        annotations.insert(k.clone(), v.clone());
    }
    builder.build()
}

fn edit_config(builder: &mut ImageBuilder, app_path: &str, settings: &BuildSettings) {
    let rc = builder.runtime_config();
    rc.insert("Entrypoint".into(), json!([app_path]));
    rc.remove("Cmd");
    let mut env: Vec<String> = rc
        .get("Env")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    match env.iter_mut().find(|e| e.starts_with("PATH=")) {
        Some(path) => path.push_str(&format!(":{APP_DIR}")),
        None => env.push(format!("PATH={APP_DIR}")),
    }
    env.push(format!("KO_DATA_PATH={}", kodata::KODATA_ROOT));
    rc.insert("Env".into(), json!(env));
    if !settings.labels.is_empty() {
        let labels = rc.entry("Labels").or_insert_with(|| json!({}));
        if !labels.is_object() {
            *labels = json!({});
        }
        let labels = labels.as_object_mut().expect("just made an object");
        for (k, v) in &settings.labels {
            labels.insert(k.clone(), json!(v));
        }
    }
    if let Some(user) = &settings.user {
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
    Ok(Index { media_type: media_type.to_string(), manifest: RawJson::encode(&index)?, images })
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
