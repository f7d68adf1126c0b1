//! What to build for an import path, before anything is compiled: its base (resolved once per
//! session), the platforms that base and the request have in common (upstream's matching: base
//! order kept, one match gives a plain image, several an index), the kodata layer shared by all
//! of them (one per layout: Linux, Windows), the image settings of its `builds:` entry, and the
//! working directory their files go in.

use std::sync::Arc;

use super::GoBuilder;
use super::layers::{MadeLayer, effective_image};
use crate::builder::base::{Base, Synthetic};
use crate::builder::caps::FileCaps;
use crate::builder::kodata::{self, Layout};
use crate::error::{Error, Result};
use crate::image::mutate::ImageBuilder;
use crate::image::platform::PlatformSelection;
use crate::image::{Descriptor, Platform, media_type, static_base};

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

/// One image to make: an import path for one platform on its base.
pub struct Target {
    pub platform: Platform,
    pub base: ImageBuilder,
    pub base_annotations: Vec<(&'static str, String)>,
    /// The index entry whose platform, urls and annotations this image's entry copies.
    pub template: Descriptor,
}

/// Everything to make for one import path.
pub struct Plan {
    pub import_path: String,
    /// The build's working directory (removed when the last image using it is dropped).
    pub tmp: Arc<tempfile::TempDir>,
    /// The kodata layer for each layout the targets need.
    pub kodata: Vec<(Layout, MadeLayer)>,
    pub targets: Vec<Target>,
    pub image: crate::config::ImageConfig,
    /// `linux_capabilities` of its `builds:` entry.
    pub caps: Option<FileCaps>,
    /// With several targets: the index's media type and annotations.
    pub index: Option<(String, Vec<(String, String)>)>,
}

impl Plan {
    /// The kodata layer for images of `platform`.
    pub fn kodata_for(&self, platform: &Platform) -> &MadeLayer {
        let layout = Layout::for_os(&platform.os);
        &self.kodata.iter().find(|(l, _)| *l == layout).expect("planned for every target's layout").1
    }
}

impl GoBuilder {
    /// A build's working directory: in the cache's `tmp/`, else under the temporary directory.
    pub(super) fn work_dir(&self) -> Result<Arc<tempfile::TempDir>> {
        Ok(Arc::new(match &self.cache {
            Some(cache) => cache.temp_dir()?,
            None => tempfile::Builder::new()
                .prefix("ko")
                .tempdir_in(self.settings.env.temp_dir())
                .map_err(|e| Error::io("cannot create a temporary directory", e))?,
        }))
    }

    /// Plans `import_path` (qualified) in its working directory `tmp`: base, platforms, kodata.
    pub(super) async fn plan(&self, import_path: &str, tmp: Arc<tempfile::TempDir>) -> Result<Plan> {
        let pkg = self.package(import_path).await?;
        let settings = &self.settings.build;
        let base_name = settings.base_image.clone().unwrap_or_else(|| self.settings.config.base_for(import_path));
        let base = self.bases.resolve(&base_name).await?;
        let base_digest = base.digest()?;
        match &base_digest {
            Some(d) => tracing::info!("Using base {}@{d} for {import_path}", base.reference()),
            None => tracing::info!("Using base {} for {import_path}", base.reference()),
        }
        let build = self.build_config(import_path).await?;
        let image = effective_image(&self.settings.config.image_defaults, &build.image, settings);
        let caps = FileCaps::parse(&build.linux_capabilities).map_err(|e| e.context(&build.name))?;
        let base_ref = base.reference().to_string();
        let annotate = |digest: &str| vec![(BASE_NAME, base_ref.clone()), (BASE_DIGEST, digest.to_string())];
        let entry = |platform: &Platform| {
            let mut d = Descriptor::new(media_type::OCI_MANIFEST, "", 0);
            d.platform = Some(platform.clone());
            d
        };

        let (targets, index) = match &*base {
            Base::Image { reference, image } => {
                let platform = image.platform.clone().unwrap_or_else(|| Platform::new("linux", "amd64", None));
                if !settings.platforms.matches(&platform) {
                    return Err(Error::build(format!(
                        "base image {reference} is for {platform}, which does not match the platforms asked for ({}); use a multi-platform base or a matching {}",
                        describe(&settings.platforms),
                        self.settings.option("platforms")
                    )));
                }
                let target = Target {
                    base: ImageBuilder::from_base(image)?,
                    base_annotations: annotate(&image.manifest.digest),
                    template: entry(&platform),
                    platform,
                };
                (vec![target], None)
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
                let targets = futures::future::try_join_all(matches.into_iter().map(|d| {
                    let (source, annotate) = (source.clone(), &annotate);
                    async move {
                        let image = source.image(&d).await?;
                        Ok::<_, Error>(Target {
                            platform: d.platform.clone().expect("matched entries have platforms"),
                            base: ImageBuilder::from_base(&image)?,
                            base_annotations: annotate(&d.digest),
                            template: d,
                        })
                    }
                }))
                .await?;
                let mut annotations =
                    vec![(BASE_NAME.to_string(), base_ref.clone()), (BASE_DIGEST.to_string(), manifest.digest.clone())];
                annotations.extend(image.annotations.iter().cloned());
                (targets, Some((index_type.clone(), annotations)))
            }
            Base::Synthetic(kind) => {
                let mut targets = Vec::new();
                for platform in self.synthetic_platforms(import_path)? {
                    if platform.os == "windows" {
                        return Err(Error::invalid(format!(
                            "{import_path}: {platform} needs a Windows base image, and {base_ref} has no Windows files; name one as defaultBaseImage or in baseImageOverrides (e.g. mcr.microsoft.com/windows/nanoserver:ltsc2022)"
                        )));
                    }
                    let (base, digest) = match kind {
                        Synthetic::Scratch => (ImageBuilder::empty(&platform), None),
                        Synthetic::Static => {
                            let image = static_base::image(&platform)?;
                            let digest = image.manifest.digest.clone();
                            (ImageBuilder::from_base(&image)?, Some(digest))
                        }
                    };
                    let base_annotations = match digest.or_else(|| base_digest.clone()) {
                        Some(d) => annotate(&d),
                        None => vec![(BASE_NAME, base_ref.clone())],
                    };
                    targets.push(Target { template: entry(&platform), platform, base, base_annotations });
                }
                let mut annotations = vec![(BASE_NAME.to_string(), base_ref.clone())];
                if let Some(d) = &base_digest {
                    annotations.push((BASE_DIGEST.to_string(), d.clone()));
                }
                annotations.extend(image.annotations.iter().cloned());
                (targets, Some((media_type::OCI_INDEX.to_string(), annotations)))
            }
        };
        let index = if targets.len() > 1 { index } else { None };
        let module_dir = pkg.module.as_ref().and_then(|m| m.dir.as_deref());
        let allowed = kodata::allowed_root(&pkg.dir, module_dir, settings.kodata_allowed_root.as_deref());
        let mtime = settings.kodata_epoch.unwrap_or(0).max(0) as u64;
        let mut kodata = Vec::new();
        for target in &targets {
            let layout = Layout::for_os(&target.platform.os);
            if !kodata.iter().any(|(l, _)| *l == layout) {
                let layer = self
                    .layer_context(&tmp)
                    .kodata(pkg.dir.clone(), allowed.clone(), layout, mtime, tmp.path())
                    .await?;
                kodata.push((layout, layer));
            }
        }
        Ok(Plan { import_path: import_path.to_string(), tmp, kodata, targets, index, image, caps })
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

fn describe(sel: &PlatformSelection) -> String {
    match sel {
        PlatformSelection::All => "all".to_string(),
        PlatformSelection::Only(list) => list.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
    }
}
