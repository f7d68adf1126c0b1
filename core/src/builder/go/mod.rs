//! The Go builder: `go list` to qualify and check import paths, then for the import paths of a
//! call: a plan of what to make ([`plan`]: base, platforms, kodata), the binaries ([`compile`]:
//! one `go build` for every group that shares flags and platform), and the images ([`layers`]:
//! the kodata and binary layers appended to the base and the config edited, exactly as
//! upstream's `gobuild` does), each image (and index) with its SBOM when SBOMs are on. `jobs`
//! bounds concurrent `go build`s (and `go list`s) across everything this builder does.
//!
//! - [`toolchain`]: the `go` commands and their environment;
//! - [`flags`]: `builds:` entries, flags and ldflags, templating.

mod compile;
mod flags;
mod layers;
mod plan;
mod toolchain;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use futures::FutureExt;
use tokio::sync::{Mutex, OnceCell, Semaphore};

use super::Builder;
use super::base::BaseResolver;
use crate::blocking;
use crate::builder::kodata::Layout;
use crate::cache::Cache;
use crate::config::{BuildConfig, Settings};
use crate::error::{Error, Result};
use crate::events::Events;
use crate::image::platform::PlatformSelection;
use crate::image::{Artifact, Image, Platform};
use crate::sbom::{self, BinaryInfo};
use compile::Wanted;
use layers::{APP_DIR, LayerContext, Parts};
use plan::Plan;
pub(crate) use toolchain::reject_toolexec;
use toolchain::{Listed, Package, Toolchain};

/// Arguments per `go list` run (well below any command-line length limit).
const LIST_CHUNK: usize = 256;

/// Builds Go `main` packages into images. Shared by every call of a session.
pub struct GoBuilder {
    settings: Arc<Settings>,
    /// The on-disk cache (`KOCACHE`), unless turned off.
    cache: Option<Cache>,
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
    pub fn new(settings: Arc<Settings>, cache: Option<Cache>, bases: Arc<BaseResolver>, events: Events) -> Self {
        let jobs = settings.build.jobs.max(1);
        let go = Toolchain::new(settings.build.go.clone(), settings.env.clone(), settings.working_dir.clone());
        GoBuilder {
            cache,
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

    /// The packages `args` name, from the cache while their files are unchanged, the rest from
    /// one `go list` (per [`LIST_CHUNK`] arguments). `None` where go listed nothing for one.
    async fn packages(&self, args: &[&str]) -> Result<Vec<Option<Package>>> {
        let mut found: Vec<Option<Package>> = Vec::with_capacity(args.len());
        {
            let mut cache = self.packages.lock().await;
            let wd = &self.settings.working_dir;
            for arg in args {
                let remembered = cache.get(*arg).filter(|l| l.is_current()).cloned().or_else(|| {
                    let on_disk: Listed = self.cache.as_ref()?.listed(&self.go.list_key(wd, arg))?;
                    on_disk.is_current().then(|| {
                        // Under the qualified path too: the build asks for it by that name.
                        cache.insert(on_disk.package.import_path.clone(), on_disk.clone());
                        cache.insert(arg.to_string(), on_disk.clone());
                        on_disk
                    })
                });
                found.push(remembered.map(|l| l.package));
            }
        }
        let mut missing: Vec<&str> = Vec::new();
        for (arg, pkg) in args.iter().zip(&found) {
            if pkg.is_none() && !missing.contains(arg) {
                missing.push(arg);
            }
        }
        for chunk in missing.chunks(LIST_CHUNK) {
            let listed = {
                let _permit = self.go_lists.acquire().await.map_err(|_| Error::cancelled())?;
                self.go.list_many(&self.settings.working_dir, chunk).await?
            };
            let mut cache = self.packages.lock().await;
            for arg in chunk {
                let Some(pkg) = toolchain::listed_for(arg, &listed, &self.settings.working_dir) else { continue };
                if pkg.error.is_none() && pkg.name == "main" {
                    let entry = Listed::new(pkg.clone());
                    if let Some(disk) = &self.cache {
                        disk.put_listed(&self.go.list_key(&self.settings.working_dir, arg), &entry);
                    }
                    cache.insert(arg.to_string(), entry.clone());
                    cache.insert(pkg.import_path.clone(), entry);
                }
                for (a, slot) in args.iter().zip(found.iter_mut()) {
                    if a == arg {
                        *slot = Some(pkg.clone());
                    }
                }
            }
        }
        Ok(found)
    }

    /// The package `import_path` (qualified) names.
    async fn package(&self, import_path: &str) -> Result<Package> {
        self.packages(&[import_path])
            .await?
            .remove(0)
            .ok_or_else(|| Error::not_found(format!("{import_path}: go list found no such package")))
    }

    async fn build_config(&self, import_path: &str) -> Result<BuildConfig> {
        let configs =
            self.build_configs.get_or_try_init(|| flags::build_configs(&self.settings.config, &self.go)).await?;
        Ok(configs.get(import_path).cloned().unwrap_or_default())
    }

    /// The images of `plan`, once `binaries` (one per target, in order) are built, each with its
    /// SBOM when SBOMs are on (and the index with its own).
    async fn assemble(&self, mut plan: Plan, binaries: Vec<std::path::PathBuf>) -> Result<Artifact> {
        let app = layers::app_filename(&plan.import_path);
        let app_path = format!("{APP_DIR}/{app}");
        let targets = std::mem::take(&mut plan.targets);
        let mut children = Vec::with_capacity(targets.len());
        for (target, binary) in targets.into_iter().zip(binaries) {
            let dir = binary.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
            // Read before the binary layer is made: a binary not in the layer cache is removed then.
            let binary_info = match self.settings.build.sbom {
                true => {
                    let (path, cache) = (binary.clone(), self.cache.clone());
                    Some(blocking::run("binary info", move |_| BinaryInfo::of(&path, cache.as_ref())).await?)
                }
                false => None,
            };
            let layout = Layout::for_os(&target.platform.os);
            let binary_layer =
                self.layer_context(&plan.tmp).binary(binary.clone(), app_path.clone(), layout, plan.caps, &dir).await?;
            if !binary_layer.cached {
                // The binary is in the layer file now, which is what publishers read.
                let _ = std::fs::remove_file(&binary);
            }
            let parts = Parts {
                import_path: &plan.import_path,
                platform: &target.platform,
                app_path: &app_path,
                kodata: plan.kodata_for(&target.platform),
                binary: &binary_layer,
                base_annotations: target.base_annotations,
                image: &plan.image,
            };
            let mut image: Image = layers::assemble(target.base, parts, &self.settings.build, &self.events)?;
            if let Some(info) = &binary_info {
                let document = sbom::image_document(&image, &app_path, info)?;
                self.keep_sbom(&app, Some(&target.platform), &document)?;
                image.sbom = Some(document);
            }
            children.push((target.template, image));
        }
        Ok(match plan.index {
            None => Artifact::Image(Arc::new(children.remove(0).1)),
            Some((media_type, annotations)) => {
                let mut index = layers::make_index(&media_type, children, annotations)?;
                if self.settings.build.sbom {
                    let document = sbom::index_document(&index)?;
                    self.keep_sbom(&app, None, &document)?;
                    index.sbom = Some(document);
                }
                Artifact::Index(Arc::new(index))
            }
        })
    }

    /// Writes an SBOM into `--sbom-dir`, when one is set.
    fn keep_sbom(&self, app: &str, platform: Option<&crate::image::Platform>, document: &[u8]) -> Result<()> {
        match &self.settings.build.sbom_dir {
            Some(dir) => sbom::write_file(&sbom::file_in(dir, app, platform), document),
            None => Ok(()),
        }
    }

    fn layer_context<'a>(&'a self, tmp: &'a Arc<tempfile::TempDir>) -> LayerContext<'a> {
        LayerContext { cache: self.cache.as_ref(), compression: self.settings.build.compression, tmp }
    }
}

#[async_trait]
impl Builder for GoBuilder {
    async fn qualify(&self, import_paths: &[&str]) -> Result<Vec<Result<String>>> {
        let args: Vec<&str> = import_paths.iter().map(|ip| ip.strip_prefix("ko://").unwrap_or(ip)).collect();
        let is_file = |arg: &str| arg.ends_with(".go") && self.settings.working_dir.join(arg).is_file();
        let valid = |arg: &&str| !arg.is_empty() && !arg.starts_with('-') && !arg.contains("...") && !is_file(arg);
        let listable: Vec<&str> = args.iter().copied().filter(valid).collect();
        let mut listed = self.packages(&listable).await?.into_iter();
        let mut out = Vec::with_capacity(args.len());
        for (import_path, arg) in import_paths.iter().zip(&args) {
            if is_file(arg) {
                let dir = match std::path::Path::new(arg).parent().map(|p| p.to_string_lossy().into_owned()) {
                    Some(d) if d.is_empty() || d == "." => ".".to_string(),
                    Some(d) if d.starts_with('.') || d.starts_with('/') => d,
                    Some(d) => format!("./{d}"),
                    None => ".".to_string(),
                };
                out.push(Err(Error::invalid(format!(
                    "{import_path} is a Go file: ko builds packages, so name its directory ({dir}) or its import path"
                ))));
                continue;
            }
            if !valid(arg) {
                out.push(Err(Error::invalid(format!(
                    "{import_path:?} is not an import path of one package (e.g. ./cmd/server or example.com/app/cmd/server)"
                ))));
                continue;
            }
            out.push(match listed.next().flatten() {
                None => Err(Error::not_found(format!("{import_path}: go list found no such package"))),
                Some(pkg) => match &pkg.error {
                    Some(e) => Err(Error::not_found(format!(
                        "{import_path}: {}; name a main package of the module ko runs in (e.g. ./cmd/app) or its full import path",
                        e.err.trim()
                    ))),
                    None if pkg.name != "main" => Err(Error::invalid(format!(
                        "{import_path} is not a main package (it is package {}): ko builds commands, so name a package that declares `package main`",
                        pkg.name
                    ))),
                    None => Ok(pkg.import_path),
                },
            });
        }
        Ok(out)
    }

    async fn main_packages(&self) -> Result<Vec<String>> {
        self.go.main_packages().await
    }

    async fn build(&self, import_paths: &[&str]) -> Result<Vec<Artifact>> {
        let dirs = import_paths.iter().map(|_| self.work_dir()).collect::<Result<Vec<_>>>()?;
        let target_dir = |tmp: &tempfile::TempDir, platform: &Platform| {
            tmp.path().join(platform.to_string().replace(['/', ':'], "_"))
        };
        // Named platforms are what go builds whatever the base holds (a base can only take some
        // away), so those builds run while the bases are fetched, one group per platform. A group
        // that fails only matters if a plan keeps its platform, and then its error is the build's.
        // What a base's platforms add or change is built after.
        let named: &[Platform] = match &self.settings.build.platforms {
            PlatformSelection::Only(list) => list,
            PlatformSelection::All => &[],
        };
        let early: Vec<Vec<Wanted>> = named
            .iter()
            .filter(|p| !p.os.is_empty() && !p.architecture.is_empty())
            .map(|platform| {
                import_paths
                    .iter()
                    .zip(&dirs)
                    .map(|(import_path, tmp)| Wanted { import_path, platform, dir: target_dir(tmp, platform) })
                    .collect()
            })
            .collect();
        let planning =
            futures::future::try_join_all(import_paths.iter().zip(&dirs).map(|(ip, tmp)| self.plan(ip, tmp.clone())));
        // Early builds never fail the join, so a failing plan ends it at once (and them with it).
        let building = futures::future::join_all(early.iter().map(|group| self.compile(group))).map(Ok);
        let (plans, early_binaries) = futures::future::try_join(planning, building).await?;
        let mut built: HashMap<PathBuf, PathBuf> = HashMap::new();
        let mut errors = Vec::new();
        let mut failed: HashMap<PathBuf, usize> = HashMap::new();
        for (group, binaries) in early.into_iter().zip(early_binaries) {
            match binaries {
                Ok(binaries) => built.extend(group.into_iter().map(|w| w.dir).zip(binaries)),
                Err(e) => {
                    failed.extend(group.into_iter().map(|w| (w.dir, errors.len())));
                    errors.push(Some(e));
                }
            }
        }
        let mut late = Vec::new();
        for plan in &plans {
            for target in &plan.targets {
                let dir = target_dir(&plan.tmp, &target.platform);
                if let Some(e) = failed.get(&dir).and_then(|&i| errors[i].take()) {
                    return Err(e);
                }
                if !built.contains_key(&dir) {
                    late.push(Wanted { import_path: &plan.import_path, platform: &target.platform, dir });
                }
            }
        }
        let late_binaries = self.compile(&late).await?;
        built.extend(late.into_iter().map(|w| w.dir).zip(late_binaries));
        let mut assembling = Vec::with_capacity(plans.len());
        for plan in plans {
            let mine = plan.targets.iter().map(|t| built[&target_dir(&plan.tmp, &t.platform)].clone()).collect();
            assembling.push(self.assemble(plan, mine));
        }
        futures::future::try_join_all(assembling).await
    }
}
