//! The Go builder: `go list` to qualify and check import paths, `go build` per platform, then the
//! kodata and binary layers appended to the base and the config edited, exactly as upstream's
//! `gobuild` does. Builds of several platforms run concurrently; `jobs` bounds concurrent
//! `go build`s (and `go list`s) across everything this builder does.
//!
//! - [`toolchain`]: the `go` commands and their environment;
//! - [`flags`]: `builds:` entries, flags and ldflags, templating;
//! - [`layers`]: the layers and config of one platform's image.

mod flags;
mod layers;
mod toolchain;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::{Mutex, OnceCell, Semaphore};

use super::base::{Base, BaseResolver, Synthetic};
use super::{Builder, kodata};
use crate::config::{BuildConfig, Settings};
use crate::error::{Error, Result};
use crate::events::Events;
use crate::image::mutate::ImageBuilder;
use crate::image::platform::PlatformSelection;
use crate::image::{Artifact, Descriptor, Image, Platform, media_type, static_base};
use layers::{APP_DIR, LayerFile, Parts};
use toolchain::{Listed, Package, Toolchain};

const BASE_NAME: &str = "org.opencontainers.image.base.name";
const BASE_DIGEST: &str = "org.opencontainers.image.base.digest";

/// The platforms `--platform=all` means for a base that can serve any platform (`static`,
/// `scratch`): the Linux ports Go supports and registries commonly carry.
const ALL_LINUX: &[(&str, Option<&str>)] = &[
    ("386", None),
    ("amd64", None),
    ("arm", Some("v6")),
    ("arm", Some("v7")),
    ("arm64", None),
    ("ppc64le", None),
    ("riscv64", None),
    ("s390x", None),
];

/// Builds Go `main` packages into images. Shared by every call of a session.
pub struct GoBuilder {
    settings: Arc<Settings>,
    go: Toolchain,
    bases: Arc<BaseResolver>,
    events: Events,
    go_builds: Semaphore,
    go_lists: Semaphore,
    /// `go list` results by what the user wrote and by qualified path, until their files change.
    packages: Mutex<HashMap<String, Listed>>,
    /// `.ko.yaml` `builds:` keyed by the import path each one's `main` names, resolved once.
    build_configs: OnceCell<HashMap<String, BuildConfig>>,
}

impl GoBuilder {
    pub fn new(settings: Arc<Settings>, bases: Arc<BaseResolver>, events: Events) -> Self {
        let jobs = settings.build.jobs.max(1);
        let go = Toolchain {
            go: settings.build.go.clone(),
            env: settings.env.clone(),
            working_dir: settings.working_dir.clone(),
        };
        GoBuilder {
            settings,
            go,
            bases,
            events,
            go_builds: Semaphore::new(jobs),
            go_lists: Semaphore::new(jobs),
            packages: Mutex::default(),
            build_configs: OnceCell::new(),
        }
    }

    /// The package `arg` names, from the cache while its files are unchanged, else `go list`.
    async fn package(&self, arg: &str) -> Result<Package> {
        if let Some(listed) = self.packages.lock().await.get(arg)
            && listed.is_current()
        {
            return Ok(listed.package.clone());
        }
        let pkg = {
            let _permit = self.go_lists.acquire().await.map_err(|_| Error::cancelled())?;
            self.go.list(&self.settings.working_dir, arg).await?
        };
        if pkg.error.is_none() && pkg.name == "main" {
            let listed = Listed::new(pkg.clone());
            let mut packages = self.packages.lock().await;
            packages.insert(arg.to_string(), listed.clone());
            packages.insert(pkg.import_path.clone(), listed);
        }
        Ok(pkg)
    }

    async fn build_config(&self, import_path: &str) -> Result<BuildConfig> {
        let configs =
            self.build_configs.get_or_try_init(|| flags::build_configs(&self.settings.config, &self.go)).await?;
        Ok(configs.get(import_path).cloned().unwrap_or_default())
    }

    async fn go_build(&self, import_path: &str, platform: &Platform, out: &Path) -> Result<()> {
        let build = self.build_config(import_path).await?;
        let scratch = out.parent().unwrap_or(&self.settings.working_dir);
        let env = self.go.build_env(platform, scratch, &flags::env_entries(&build, &self.settings.config))?;
        let (args, dir) = flags::invocation(import_path, &build, &self.settings, &self.go, &env).await?;
        let _permit = self.go_builds.acquire().await.map_err(|_| Error::cancelled())?;
        tracing::info!("Building {import_path} for {platform}");
        self.go.build(import_path, platform, &args, &dir, env, out, &self.events).await
    }

    /// Builds the image for one platform on top of `base` (already loaded).
    async fn build_one(
        &self,
        import_path: &str,
        base: ImageBuilder,
        platform: &Platform,
        base_annotations: Vec<(&'static str, String)>,
        kodata: &LayerFile,
        tmp: &Arc<tempfile::TempDir>,
    ) -> Result<Image> {
        if platform.os == "windows" {
            return Err(Error::unsupported(format!(
                "{import_path}: windows images are not supported by this version of ko; choose linux platforms"
            )));
        }
        let dir = tmp.path().join(platform.to_string().replace(['/', ':'], "_"));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        let binary = dir.join("out");
        self.go_build(import_path, platform, &binary).await?;
        let app_path = format!("{APP_DIR}/{}", layers::app_filename(import_path));
        let binary_layer =
            layers::binary_layer(binary.clone(), app_path.clone(), dir.join("binary.tar.gz"), tmp).await?;
        // The binary is in the layer now; the layer file is what publishers read.
        let _ = std::fs::remove_file(&binary);
        let parts = Parts {
            import_path,
            platform: platform.to_string(),
            app_path: &app_path,
            kodata,
            binary: &binary_layer,
            base_annotations,
            tmp,
        };
        layers::assemble(base, parts, &self.settings.build, &self.events)
    }

    fn synthetic_platforms(&self, import_path: &str) -> Result<Vec<Platform>> {
        let platforms = match &self.settings.build.platforms {
            PlatformSelection::All => {
                ALL_LINUX.iter().map(|(arch, variant)| Platform::new("linux", arch, *variant)).collect()
            }
            PlatformSelection::Only(list) => list.clone(),
        };
        if let Some(p) = platforms.iter().find(|p| p.architecture.is_empty()) {
            return Err(Error::invalid(format!(
                "{import_path}: platform {p} needs an architecture (e.g. {p}/amd64) with a scratch or static base"
            )));
        }
        Ok(platforms)
    }
}

#[async_trait]
impl Builder for GoBuilder {
    async fn qualify(&self, import_path: &str) -> Result<String> {
        let arg = import_path.strip_prefix("ko://").unwrap_or(import_path);
        if arg.is_empty() || arg.starts_with('-') {
            return Err(Error::invalid(format!("{import_path:?} is not an import path")));
        }
        let pkg = self.package(arg).await?;
        if let Some(e) = &pkg.error {
            return Err(Error::not_found(format!("{import_path}: {}", e.err.trim())));
        }
        if pkg.name != "main" {
            return Err(Error::invalid(format!(
                "{import_path} is not a main package (it is package {}): ko builds commands, so name a package that declares `package main`",
                pkg.name
            )));
        }
        Ok(pkg.import_path)
    }

    async fn main_packages(&self) -> Result<Vec<String>> {
        self.go.main_packages().await
    }

    async fn build(&self, import_path: &str) -> Result<Artifact> {
        let pkg = self.package(import_path).await?;
        let settings = &self.settings.build;
        let base_name = settings.base_image.clone().unwrap_or_else(|| self.settings.config.base_for(import_path));
        let base = self.bases.resolve(&base_name).await?;
        let base_digest = base.digest()?;
        match &base_digest {
            Some(d) => tracing::info!("Using base {}@{d} for {import_path}", base.reference()),
            None => tracing::info!("Using base {} for {import_path}", base.reference()),
        }
        let tmp = Arc::new(
            tempfile::Builder::new()
                .prefix("ko")
                .tempdir_in(self.settings.env.temp_dir())
                .map_err(|e| Error::io("cannot create a temporary directory", e))?,
        );
        let module_dir = pkg.module.as_ref().and_then(|m| m.dir.as_deref());
        let allowed = kodata::allowed_root(&pkg.dir, module_dir, settings.kodata_allowed_root.as_deref());
        let mtime = settings.kodata_epoch.unwrap_or(0).max(0) as u64;
        let kodata = layers::kodata_layer(pkg.dir.clone(), allowed, mtime, tmp.path(), &tmp).await?;
        let base_ref = base.reference().to_string();
        let annotate = |digest: &str| vec![(BASE_NAME, base_ref.clone()), (BASE_DIGEST, digest.to_string())];

        match &*base {
            Base::Image { reference, image } => {
                let platform = image.platform.clone().unwrap_or_else(|| Platform::new("linux", "amd64", None));
                if !settings.platforms.matches(&platform) {
                    return Err(Error::build(format!(
                        "base image {reference} is for {platform}, which does not match the platforms asked for ({}); use a multi-platform base or a matching {}",
                        describe(&settings.platforms),
                        self.settings.option("platforms")
                    )));
                }
                let builder = ImageBuilder::from_base(image)?;
                let img = self
                    .build_one(import_path, builder, &platform, annotate(&image.manifest.digest), &kodata, &tmp)
                    .await?;
                Ok(Artifact::Image(Arc::new(img)))
            }
            Base::Index { reference, media_type: index_type, manifest, index, source } => {
                let mut matches = Vec::new();
                for d in &index.manifests {
                    if !media_type::is_manifest(&d.media_type) {
                        return Err(Error::unsupported(format!(
                            "base image {reference}: entry {} has media type {}; nested indexes are not supported",
                            d.digest, d.media_type
                        )));
                    }
                    if d.platform.as_ref().is_some_and(|p| settings.platforms.matches(p)) {
                        matches.push(d.clone());
                    }
                }
                if matches.is_empty() {
                    let offered: Vec<String> =
                        index.manifests.iter().filter_map(|d| d.platform.as_ref().map(|p| p.to_string())).collect();
                    return Err(Error::build(format!(
                        "no matching platforms in base image index {reference}: it has [{}], and {} was asked for",
                        offered.join(", "),
                        describe(&settings.platforms)
                    )));
                }
                let build_child = |d: Descriptor| {
                    let source = source.clone();
                    let (tmp, kodata, annotate) = (&tmp, &kodata, &annotate);
                    async move {
                        let base_image = source.image(&d).await?;
                        let platform = d.platform.clone().expect("matched entries have platforms");
                        let builder = ImageBuilder::from_base(&base_image)?;
                        let img =
                            self.build_one(import_path, builder, &platform, annotate(&d.digest), kodata, tmp).await?;
                        Ok::<_, Error>((d, img))
                    }
                };
                if matches.len() == 1 {
                    let (_, img) = build_child(matches.remove(0)).await?;
                    return Ok(Artifact::Image(Arc::new(img)));
                }
                let children = futures::future::try_join_all(matches.into_iter().map(build_child)).await?;
                let mut annotations =
                    vec![(BASE_NAME.to_string(), base_ref.clone()), (BASE_DIGEST.to_string(), manifest.digest.clone())];
                annotations.extend(settings.annotations.iter().cloned());
                Ok(Artifact::Index(Arc::new(layers::make_index(index_type, children, annotations)?)))
            }
            Base::Synthetic(kind) => {
                let platforms = self.synthetic_platforms(import_path)?;
                let build_child = |platform: Platform| {
                    let (tmp, kodata, base_digest, base_ref) = (&tmp, &kodata, &base_digest, &base_ref);
                    async move {
                        let (builder, digest) = match kind {
                            Synthetic::Scratch => (ImageBuilder::empty(&platform), None),
                            Synthetic::Static => {
                                let base = static_base::image(&platform)?;
                                let digest = base.manifest.digest.clone();
                                (ImageBuilder::from_base(&base)?, Some(digest))
                            }
                        };
                        let ann = match digest.or_else(|| base_digest.clone()) {
                            Some(d) => annotate(&d),
                            None => vec![(BASE_NAME, base_ref.clone())],
                        };
                        let img = self.build_one(import_path, builder, &platform, ann, kodata, tmp).await?;
                        let mut d = Descriptor::new(&img.media_type, &img.manifest.digest, 0);
                        d.platform = Some(platform);
                        Ok::<_, Error>((d, img))
                    }
                };
                if platforms.len() == 1 {
                    let (_, img) = build_child(platforms[0].clone()).await?;
                    return Ok(Artifact::Image(Arc::new(img)));
                }
                let children = futures::future::try_join_all(platforms.into_iter().map(build_child)).await?;
                let mut annotations = vec![(BASE_NAME.to_string(), base_ref.clone())];
                if let Some(d) = &base_digest {
                    annotations.push((BASE_DIGEST.to_string(), d.clone()));
                }
                annotations.extend(settings.annotations.iter().cloned());
                Ok(Artifact::Index(Arc::new(layers::make_index(media_type::OCI_INDEX, children, annotations)?)))
            }
        }
    }
}

fn describe(sel: &PlatformSelection) -> String {
    match sel {
        PlatformSelection::All => "all".to_string(),
        PlatformSelection::Only(list) => list.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
    }
}
