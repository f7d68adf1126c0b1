//! The Go builder: `go list` to qualify and check import paths, `go build` per platform, then the
//! kodata and binary layers appended to the base and the config edited, exactly as upstream's
//! `gobuild` does. Builds of several platforms run concurrently; `jobs` bounds concurrent
//! `go build`s across everything this builder does.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{Mutex, Semaphore};

use super::base::{Base, BaseResolver, Synthetic};
use super::template::{self, TemplateData};
use super::{Builder, ZERO_TIME, kodata, rfc3339};
use crate::config::{BuildConfig, KoConfig};
use crate::error::{Error, ErrorKind, Result};
use crate::image::layer::FileBlob;
use crate::image::mutate::{History, ImageBuilder};
use crate::image::platform::PlatformSelection;
use crate::image::tar::{LayerDigests, LayerWriter};
use crate::image::{
    Artifact, Descriptor, Image, Index, IndexManifest, Layer, Platform, RawJson, media_type, static_base,
};

const APP_DIR: &str = "/ko-app";
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

/// What the Go builder needs to know, resolved from options, environment and `.ko.yaml`.
#[derive(Debug, Clone)]
pub struct GoSettings {
    pub working_dir: PathBuf,
    /// The `go` binary (`KO_GO_PATH`, else `go` on PATH).
    pub go: String,
    pub config: KoConfig,
    /// A base for every import path, overriding `.ko.yaml`.
    pub base_image: Option<String>,
    pub platforms: PlatformSelection,
    pub ldflags: Vec<String>,
    pub disable_optimizations: bool,
    pub labels: Vec<(String, String)>,
    pub annotations: Vec<(String, String)>,
    pub user: Option<String>,
    /// `KO_DATA_DATE_EPOCH`: mtime of kodata entries.
    pub kodata_epoch: Option<i64>,
    /// `SOURCE_DATE_EPOCH`: config `created`.
    pub source_epoch: Option<i64>,
    /// Concurrent `go build`s (at least 1).
    pub jobs: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Package {
    import_path: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    dir: PathBuf,
    module: Option<Module>,
    error: Option<PackageError>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Module {
    dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PackageError {
    err: String,
}

/// Builds Go `main` packages into images.
pub struct GoBuilder {
    settings: GoSettings,
    bases: Arc<BaseResolver>,
    go_builds: Semaphore,
    packages: Mutex<HashMap<String, Package>>,
    /// `.ko.yaml` `builds:` keyed by the import path each one's `main` names, resolved once.
    build_configs: tokio::sync::OnceCell<HashMap<String, BuildConfig>>,
}

/// A finished kodata layer file, shared by every platform of one import path.
struct KodataLayer {
    digests: LayerDigests,
    path: PathBuf,
}

impl GoBuilder {
    pub fn new(settings: GoSettings, bases: Arc<BaseResolver>) -> Self {
        let jobs = settings.jobs.max(1);
        GoBuilder {
            settings,
            bases,
            go_builds: Semaphore::new(jobs),
            packages: Mutex::default(),
            build_configs: Default::default(),
        }
    }

    async fn go_list(&self, pattern: &str) -> Result<Package> {
        self.go_list_in(&self.settings.working_dir, pattern).await
    }

    async fn go_list_in(&self, dir: &Path, pattern: &str) -> Result<Package> {
        let output = tokio::process::Command::new(&self.settings.go)
            .args(["list", "-e", "-json", pattern])
            .current_dir(dir)
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| self.go_missing(e))?;
        let packages: Vec<Package> = serde_json::Deserializer::from_slice(&output.stdout)
            .into_iter::<Package>()
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::build(format!("go list {pattern}: unexpected output: {e}")))?;
        if !output.status.success() || packages.is_empty() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(Error::not_found(format!("{pattern}: {}", stderr.trim())));
        }
        if packages.len() != 1 {
            return Err(Error::invalid(format!(
                "{pattern} matches {} packages; name exactly one main package",
                packages.len()
            )));
        }
        Ok(packages.into_iter().next().expect("one package"))
    }

    fn go_missing(&self, e: std::io::Error) -> Error {
        Error::build(format!("cannot run {:?}: {e}; install Go or set KO_GO_PATH to the go binary", self.settings.go))
    }

    async fn package(&self, import_path: &str) -> Result<Package> {
        if let Some(p) = self.packages.lock().await.get(import_path) {
            return Ok(p.clone());
        }
        self.qualify(import_path).await?;
        Ok(self.packages.lock().await[import_path].clone())
    }

    /// The environment of `go build`: ko's defaults for `platform`, then the user's environment.
    /// Go's scratch directory defaults to `scratch`, inside ko's temporary directory, so that it
    /// is removed with it even when the build is cancelled.
    fn go_env(&self, platform: &Platform, scratch: &Path, build_env: &[String]) -> Result<Vec<(OsString, OsString)>> {
        let mut env: Vec<(OsString, OsString)> = vec![
            ("CGO_ENABLED".into(), "0".into()),
            ("GOOS".into(), platform.os.clone().into()),
            ("GOARCH".into(), platform.architecture.clone().into()),
            ("GOTMPDIR".into(), scratch.as_os_str().to_owned()),
        ];
        match (platform.architecture.as_str(), platform.variant.as_deref()) {
            ("arm", Some(v)) => {
                let n: u32 = v.trim_start_matches('v').parse().unwrap_or(7);
                env.push(("GOARM".into(), n.clamp(5, 7).to_string().into()));
            }
            ("amd64", Some(v)) => env.push(("GOAMD64".into(), v.into())),
            _ => {}
        }
        // The user's environment comes after the defaults, so it wins (e.g. CGO_ENABLED=1).
        // Then the build's own `env` (or `defaultEnv`), as upstream.
        let configured = build_env.iter().map(|e| match e.split_once('=') {
            Some((k, v)) => Ok((OsString::from(k), OsString::from(v))),
            None => Err(Error::config(format!("build env entry {e:?} in .ko.yaml is not KEY=VALUE"))),
        });
        for pair in std::env::vars_os().map(Ok).chain(configured) {
            let (k, v) = pair?;
            env.retain(|(ek, _)| ek != &k);
            env.push((k, v));
        }
        if let Some((_, flags)) = env.iter().find(|(k, _)| k == "GOFLAGS") {
            reject_toolexec(flags.to_string_lossy().split_whitespace(), "GOFLAGS")?;
        }
        Ok(env)
    }

    /// `builds:` by import path: each entry's `main` (relative to its `dir`) qualified with `go list`.
    async fn build_configs(&self) -> Result<&HashMap<String, BuildConfig>> {
        self.build_configs
            .get_or_try_init(|| async {
                let mut by_path = HashMap::new();
                for (i, b) in self.settings.config.builds.iter().enumerate() {
                    let dir = self.settings.working_dir.join(b.dir.as_deref().unwrap_or("."));
                    let main = b.main.as_deref().unwrap_or(".");
                    // A .go file names its package's directory.
                    let main = if main.ends_with(".go") {
                        Path::new(main).parent().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default()
                    } else {
                        main.to_string()
                    };
                    let pattern = if main.is_empty() || main == "." {
                        ".".to_string()
                    } else if main.starts_with("./") || main.starts_with('/') {
                        main
                    } else {
                        format!("./{main}")
                    };
                    let pkg = self.go_list_in(&dir, &pattern).await.map_err(|e| {
                        e.context(format!("builds[{i}] ({}) in .ko.yaml", b.id.as_deref().unwrap_or("no id")))
                    })?;
                    by_path.insert(pkg.import_path, b.clone());
                }
                Ok::<_, Error>(by_path)
            })
            .await
    }

    /// `go build`'s arguments before `-o`, and the directory it runs in, for `import_path`:
    /// the build's (or default) flags, `-trimpath`, `-gcflags`, and `-ldflags` (`--ldflags` wins
    /// over the build's, which win over `defaultLdflags`), templated as upstream.
    async fn build_invocation(
        &self,
        import_path: &str,
        env: &[(OsString, OsString)],
    ) -> Result<(Vec<String>, PathBuf)> {
        let config = &self.settings.config;
        let build = self.build_configs().await?.get(import_path).cloned().unwrap_or_default();
        if let Some(id) = &build.id {
            tracing::info!("Using build config {id} for {import_path}");
        }
        let flags = if build.flags.is_empty() { config.default_flags.clone() } else { build.flags.clone() };
        let ldflags = if !self.settings.ldflags.is_empty() {
            self.settings.ldflags.clone()
        } else if !build.ldflags.is_empty() {
            build.ldflags.clone()
        } else {
            config.default_ldflags.clone()
        };
        let dir = self.settings.working_dir.join(build.dir.as_deref().unwrap_or("."));
        let mut data = TemplateData::default();
        data.insert("Env.LDFLAGS", "");
        for (k, v) in env {
            data.insert(format!("Env.{}", k.to_string_lossy()), v.to_string_lossy());
        }
        let templated = [flags.clone(), ldflags.clone()].concat();
        if template::references(&templated, ".GoEnv") {
            self.go_env_values(env, &mut data).await?;
        }
        if template::references(&templated, ".Git") {
            let dir = dir.clone();
            let mut git = TemplateData::default();
            git = tokio::task::spawn_blocking(move || {
                template::git_values(&dir, &mut git);
                git
            })
            .await
            .map_err(|e| Error::build(format!("git information: {e}")))?;
            data.extend(git);
        }
        let when = self.settings.source_epoch.unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
        });
        data.insert("Date", rfc3339(when));
        data.insert("Timestamp", when.to_string());
        let mut args = Vec::new();
        for f in &flags {
            args.push(template::render(f, &data, "flags")?);
        }
        args.push("-trimpath".into());
        if self.settings.disable_optimizations {
            args.extend(["-gcflags".to_string(), "all=-N -l".to_string()]);
        }
        if !ldflags.is_empty() {
            let rendered: Vec<String> =
                ldflags.iter().map(|l| template::render(l, &data, "ldflags")).collect::<Result<_>>()?;
            args.push(format!("-ldflags={}", rendered.join(" ")));
        }
        reject_toolexec(args.iter().map(String::as_str), "build flags")?;
        Ok((args, dir))
    }

    /// `.GoEnv.*`: `go env`, overridden by the build environment where both name a variable.
    async fn go_env_values(&self, env: &[(OsString, OsString)], data: &mut TemplateData) -> Result<()> {
        let output = tokio::process::Command::new(&self.settings.go)
            .args(["env", "-json"])
            .current_dir(&self.settings.working_dir)
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| self.go_missing(e))?;
        let go_env: HashMap<String, String> = serde_json::from_slice(&output.stdout)
            .map_err(|e| Error::build(format!("go env -json: unexpected output: {e}")))?;
        for (k, v) in go_env {
            let v = env
                .iter()
                .find(|(ek, _)| ek.to_string_lossy() == k)
                .map(|(_, ev)| ev.to_string_lossy().into_owned())
                .unwrap_or(v);
            data.insert(format!("GoEnv.{k}"), v);
        }
        Ok(())
    }

    async fn go_build(&self, import_path: &str, platform: &Platform, out: &Path) -> Result<()> {
        let _permit = self.go_builds.acquire().await.map_err(|_| Error::build("build cancelled"))?;
        tracing::info!("Building {import_path} for {platform}");
        let scratch = out.parent().unwrap_or(&self.settings.working_dir);
        let build_env = self.build_configs().await?.get(import_path).map(|b| b.env.clone()).unwrap_or_default();
        let build_env = if build_env.is_empty() { self.settings.config.default_env.clone() } else { build_env };
        let env = self.go_env(platform, scratch, &build_env)?;
        let (args, dir) = self.build_invocation(import_path, &env).await?;
        let mut cmd = tokio::process::Command::new(&self.settings.go);
        cmd.arg("build").args(&args).arg("-o").arg(out).arg(import_path);
        cmd.current_dir(&dir).env_clear().envs(env).kill_on_drop(true);
        let output = cmd.output().await.map_err(|e| self.go_missing(e))?;
        if !output.status.success() {
            let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
            text.push_str(&String::from_utf8_lossy(&output.stdout));
            return Err(Error::build(format!(
                "go build {import_path} for {platform}: {}:\n{}",
                output.status,
                text.trim_end()
            )));
        }
        Ok(())
    }

    async fn kodata_layer(&self, pkg: &Package, dir: &Path) -> Result<KodataLayer> {
        let package_dir = pkg.dir.clone();
        let allowed = kodata::allowed_root(&package_dir, pkg.module.as_ref().and_then(|m| m.dir.as_deref()));
        let mtime = self.settings.kodata_epoch.unwrap_or(0).max(0) as u64;
        let path = dir.join("kodata.tar.gz");
        let out = path.clone();
        let digests = tokio::task::spawn_blocking(move || kodata::write_layer(&package_dir, &allowed, mtime, &out))
            .await
            .map_err(|e| Error::build(format!("kodata layer task failed: {e}")))??;
        Ok(KodataLayer { digests, path })
    }

    /// Builds the image for one platform on top of `builder` (the base, already loaded).
    #[allow(clippy::too_many_arguments)]
    async fn build_one(
        &self,
        import_path: &str,
        mut builder: ImageBuilder,
        platform: &Platform,
        base_annotations: Vec<(&'static str, String)>,
        kodata: &KodataLayer,
        tmp: &Arc<tempfile::TempDir>,
    ) -> Result<Image> {
        if platform.os == "windows" {
            return Err(Error::build(format!(
                "{import_path}: windows images are not supported by this version of ko; choose linux platforms"
            )));
        }
        let dir = tmp.path().join(platform.to_string().replace(['/', ':'], "_"));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        let binary = dir.join("out");
        self.go_build(import_path, platform, &binary).await?;

        let app_name = app_filename(import_path);
        let app_path = format!("{APP_DIR}/{app_name}");
        let layer_path = dir.join("binary.tar.gz");
        let (bin, entry, out) = (binary.clone(), app_path.clone(), layer_path.clone());
        let bin_digests = tokio::task::spawn_blocking(move || write_binary_layer(&bin, &entry, &out))
            .await
            .map_err(|e| Error::build(format!("binary layer task failed: {e}")))??;

        let layer_type = builder.layer_media_type();
        let file_layer = |digests: &LayerDigests, path: &Path| Layer {
            descriptor: Descriptor::new(layer_type, &digests.digest, digests.size),
            diff_id: digests.diff_id.clone(),
            source: Arc::new(FileBlob { path: path.to_path_buf(), keep_alive: Some(tmp.clone()) }),
        };
        let created_by = format!("ko build ko://{import_path}");
        let time = |epoch: Option<i64>| epoch.map(rfc3339).unwrap_or_else(|| ZERO_TIME.to_string());
        builder.append(
            file_layer(&kodata.digests, &kodata.path),
            History {
                author: "ko".into(),
                created: time(self.settings.kodata_epoch),
                created_by: created_by.clone(),
                comment: "kodata contents, at $KO_DATA_PATH".into(),
            },
        );
        builder.append(
            file_layer(&bin_digests, &layer_path),
            History {
                author: "ko".into(),
                created: time(self.settings.source_epoch),
                created_by,
                comment: format!("go build output, at {app_path}"),
            },
        );
        // The binary is in the layer now; the layer file is what publishers read.
        let _ = std::fs::remove_file(&binary);

        self.edit_config(&mut builder, &app_path);
        let annotations = builder.annotations();
        for (k, v) in base_annotations {
            annotations.insert(k.to_string(), v);
        }
        for (k, v) in &self.settings.annotations {
            annotations.insert(k.clone(), v.clone());
        }
        builder.build()
    }

    fn edit_config(&self, builder: &mut ImageBuilder, app_path: &str) {
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
        if !self.settings.labels.is_empty() {
            let labels = rc.entry("Labels").or_insert_with(|| json!({}));
            if !labels.is_object() {
                *labels = json!({});
            }
            let labels = labels.as_object_mut().expect("just made an object");
            for (k, v) in &self.settings.labels {
                labels.insert(k.clone(), json!(v));
            }
        }
        if let Some(user) = &self.settings.user {
            rc.insert("User".into(), json!(user));
        }
        let top = builder.config_file();
        top.insert("author".into(), json!("github.com/ko-build/ko"));
        if let Some(epoch) = self.settings.source_epoch {
            top.insert("created".into(), json!(rfc3339(epoch)));
        }
    }

    fn synthetic_platforms(&self, import_path: &str) -> Result<Vec<Platform>> {
        let platforms = match &self.settings.platforms {
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

/// Refuses `-toolexec`, which would run an arbitrary program as the compiler (as upstream).
fn reject_toolexec<'a>(args: impl Iterator<Item = &'a str>, whence: &str) -> Result<()> {
    for a in args {
        let name = a.trim_start_matches('-').split('=').next().unwrap_or("");
        if a.starts_with('-') && name == "toolexec" {
            return Err(Error::config(format!("cannot set {a} in {whence}: ko does not allow -toolexec")));
        }
    }
    Ok(())
}

/// `/ko-app/<name>`: the import path's last element, or `ko-app` when it has none.
fn app_filename(import_path: &str) -> String {
    match import_path.trim_end_matches('/').rsplit('/').next() {
        None | Some("") | Some(".") => "ko-app".to_string(),
        Some(name) => name.to_string(),
    }
}

/// The binary layer: the `ko-app` directory, then the binary at `entry`, as upstream's `tarBinary`.
fn write_binary_layer(binary: &Path, entry: &str, out: &Path) -> Result<LayerDigests> {
    let file = std::fs::File::open(binary).map_err(|e| Error::io(format!("cannot open {}", binary.display()), e))?;
    let size = file.metadata().map_err(|e| Error::io(format!("cannot stat {}", binary.display()), e))?.len();
    let mut w = LayerWriter::create(out)?;
    w.append_dir("ko-app", 0o555, 0)?;
    w.append_file(entry, 0o555, 0, size, file)?;
    w.finish().map(|(_, d)| d)
}

/// An index of `images`, each entry copying platform, urls and annotations from its template.
fn make_index(
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

#[async_trait]
impl Builder for GoBuilder {
    async fn qualify(&self, import_path: &str) -> Result<String> {
        let arg = import_path.strip_prefix("ko://").unwrap_or(import_path);
        if arg.is_empty() || arg.starts_with('-') {
            return Err(Error::invalid(format!("{import_path:?} is not an import path")));
        }
        if let Some(p) = self.packages.lock().await.get(arg) {
            return Ok(p.import_path.clone());
        }
        let pkg = self.go_list(arg).await?;
        if let Some(e) = &pkg.error {
            return Err(Error::not_found(format!("{import_path}: {}", e.err.trim())));
        }
        if pkg.name != "main" {
            return Err(Error::invalid(format!(
                "{import_path} is not a main package (it is package {}): ko builds commands, so name a package that declares `package main`",
                pkg.name
            )));
        }
        let qualified = pkg.import_path.clone();
        let mut packages = self.packages.lock().await;
        packages.insert(arg.to_string(), pkg.clone());
        packages.insert(qualified.clone(), pkg);
        Ok(qualified)
    }

    async fn main_packages(&self) -> Result<Vec<String>> {
        let output = tokio::process::Command::new(&self.settings.go)
            .args(["list", "-e", "-f", "{{if eq .Name \"main\"}}{{.ImportPath}}{{end}}", "./..."])
            .current_dir(&self.settings.working_dir)
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| self.go_missing(e))?;
        if !output.status.success() {
            return Err(Error::build(format!(
                "go list ./... in {}: {}",
                self.settings.working_dir.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&output.stdout).lines().filter(|l| !l.is_empty()).map(str::to_string).collect())
    }

    async fn build(&self, import_path: &str) -> Result<Artifact> {
        let pkg = self.package(import_path).await?;
        let base_name = self.settings.base_image.clone().unwrap_or_else(|| self.settings.config.base_for(import_path));
        let base = self.bases.resolve(&base_name).await?;
        let base_digest = base.digest()?;
        match &base_digest {
            Some(d) => tracing::info!("Using base {}@{d} for {import_path}", base.reference()),
            None => tracing::info!("Using base {} for {import_path}", base.reference()),
        }
        let tmp = Arc::new(
            tempfile::Builder::new()
                .prefix("ko")
                .tempdir()
                .map_err(|e| Error::io("cannot create a temporary directory", e))?,
        );
        let kodata = self.kodata_layer(&pkg, tmp.path()).await?;
        let base_ref = base.reference().to_string();
        let annotate = |digest: &str| vec![(BASE_NAME, base_ref.clone()), (BASE_DIGEST, digest.to_string())];

        match &*base {
            Base::Image { reference, image } => {
                let platform = image.platform.clone().unwrap_or_else(|| Platform::new("linux", "amd64", None));
                if !self.settings.platforms.matches(&platform) {
                    return Err(Error::new(
                        ErrorKind::Build,
                        format!(
                            "base image {reference} is for {platform}, which does not match the platforms asked for ({}); use a multi-platform base or a matching --platform",
                            describe(&self.settings.platforms)
                        ),
                    ));
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
                        return Err(Error::build(format!(
                            "base image {reference}: entry {} has media type {}; nested indexes are not supported",
                            d.digest, d.media_type
                        )));
                    }
                    if d.platform.as_ref().is_some_and(|p| self.settings.platforms.matches(p)) {
                        matches.push(d.clone());
                    }
                }
                if matches.is_empty() {
                    let offered: Vec<String> =
                        index.manifests.iter().filter_map(|d| d.platform.as_ref().map(|p| p.to_string())).collect();
                    return Err(Error::build(format!(
                        "no matching platforms in base image index {reference}: it has [{}], and {} was asked for",
                        offered.join(", "),
                        describe(&self.settings.platforms)
                    )));
                }
                let build_child = |d: Descriptor| {
                    let source = source.clone();
                    let tmp = &tmp;
                    let kodata = &kodata;
                    let annotate = &annotate;
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
                annotations.extend(self.settings.annotations.iter().cloned());
                Ok(Artifact::Index(Arc::new(make_index(index_type, children, annotations)?)))
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
                annotations.extend(self.settings.annotations.iter().cloned());
                Ok(Artifact::Index(Arc::new(make_index(media_type::OCI_INDEX, children, annotations)?)))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names_follow_upstream() {
        assert_eq!(app_filename("example.com/app/cmd/server"), "server");
        assert_eq!(app_filename("example.com/app"), "app");
        assert_eq!(app_filename("."), "ko-app");
    }
}
