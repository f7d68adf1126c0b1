//! ko-core: build Go programs into container images and publish them, with no Dockerfile and no
//! Docker engine. Everything ko does lives here; the CLI and the language bindings only translate
//! options, results and errors.
//!
//! The pipeline is upstream ko's: a [`build::Builder`] turns an import path into an
//! [`image::Artifact`], a [`publish::Publisher`] puts it somewhere and returns a reference.
//! [`Session`] wires both from [`Options`]; [`build()`] is the one-call entry point.

pub mod build;
pub mod config;
pub mod error;
pub mod image;
pub mod kubectl;
pub mod name;
pub mod publish;
pub mod registry;
pub mod resolve;

use std::path::PathBuf;
use std::sync::Arc;

use futures::future::try_join_all;

pub use config::{KoConfig, Options};
pub use error::{Error, ErrorKind, Result};
pub use resolve::ResolveOptions;

use build::base::BaseResolver;
use build::go::GoSettings;
use build::{Builder, GoBuilder};
use image::Artifact;
use image::platform::{Platform, PlatformSelection};
use name::{Naming, Repository};
use publish::{
    Destination, LayoutPublisher, MultiPublisher, NopPublisher, Publisher, RegistryPublisher, TarballPublisher,
};
use registry::RegistryClient;

/// One published import path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The fully qualified import path that was built.
    pub import_path: String,
    /// The reference to use it by (`repo@sha256:…`, `repo:tag@sha256:…`, or `repo:tag`).
    pub reference: String,
    /// For a multi-platform index, each child image's reference by digest.
    pub children: Vec<String>,
}

/// A builder and a publisher configured from [`Options`], shared by every import path of a call.
pub struct Session {
    pub builder: Arc<dyn Builder>,
    pub publisher: Arc<dyn Publisher>,
    /// The `.ko.yaml` in effect.
    pub config: KoConfig,
    image_refs: Option<PathBuf>,
}

impl Session {
    /// Reads `.ko.yaml` and the environment, validates `opts` and wires builder and publisher.
    pub fn new(opts: &Options) -> Result<Self> {
        let working_dir = opts.working_dir()?;
        let config = KoConfig::load(opts.config_path.as_deref(), &working_dir)?;
        let registry = Arc::new(RegistryClient::new(opts.insecure_registry));
        let settings = go_settings(opts, config.clone(), working_dir.clone())?;
        let bases = Arc::new(BaseResolver::new(registry.clone(), working_dir));
        let builder: Arc<dyn Builder> = Arc::new(GoBuilder::new(settings, bases));
        let publisher = make_publisher(opts, registry)?;
        Ok(Session { builder, publisher, config, image_refs: opts.image_refs.clone() })
    }

    /// A session over a given builder and publisher (e.g. fixed ones in tests of `resolve`).
    pub fn from_parts(builder: Arc<dyn Builder>, publisher: Arc<dyn Publisher>, config: KoConfig) -> Self {
        Session { builder, publisher, config, image_refs: None }
    }

    /// Builds and publishes each import path once (concurrently), returning one result per
    /// argument, in argument order. With no arguments, builds `.`.
    pub async fn build(&self, import_paths: &[&str]) -> Result<Vec<Published>> {
        let args: Vec<&str> = if import_paths.is_empty() { vec!["."] } else { import_paths.to_vec() };
        let qualified = try_join_all(args.iter().map(|a| self.builder.qualify(a))).await?;
        let mut unique: Vec<&String> = Vec::new();
        for q in &qualified {
            if !unique.contains(&q) {
                unique.push(q);
            }
        }
        let results = try_join_all(unique.iter().map(|ip| self.build_one(ip))).await?;
        self.publisher.close().await?;
        let published: Vec<Published> = qualified
            .iter()
            .map(|q| results.iter().find(|p| &p.import_path == q).cloned().expect("every path was built"))
            .collect();
        if let Some(path) = &self.image_refs {
            let mut text = String::new();
            for p in &results {
                text.push_str(&p.reference);
                text.push('\n');
                for c in &p.children {
                    text.push_str(c);
                    text.push('\n');
                }
            }
            std::fs::write(path, text)
                .map_err(|e| Error::io(format!("cannot write --image-refs {}", path.display()), e))?;
        }
        Ok(published)
    }

    async fn build_one(&self, import_path: &str) -> Result<Published> {
        let artifact = self.builder.build(import_path).await?;
        let reference = self.publisher.publish(&artifact, import_path).await?;
        let name = reference.split('@').next().unwrap_or(&reference);
        let name = match name.rsplit_once(':') {
            Some((n, tag)) if !tag.contains('/') => n,
            _ => name,
        };
        let children = match &artifact {
            Artifact::Index(index) => index.images.iter().map(|i| format!("{name}@{}", i.manifest.digest)).collect(),
            Artifact::Image(_) => Vec::new(),
        };
        Ok(Published { import_path: import_path.to_string(), reference, children })
    }
}

/// Builds and publishes `import_paths` as `ko build` does; one result per argument, in order.
pub async fn build(import_paths: &[&str], opts: &Options) -> Result<Vec<Published>> {
    Session::new(opts)?.build(import_paths).await
}

/// Resolves the YAML in `paths` (files, directories, `-` for stdin) as `ko resolve` does.
pub async fn resolve_files(paths: &[PathBuf], ro: &ResolveOptions, opts: &Options) -> Result<String> {
    let inputs = resolve::read_inputs(paths, ro.recursive, &opts.working_dir()?)?;
    resolve::resolve_inputs(inputs, ro, &Session::new(opts)?).await
}

/// Resolves one YAML text (named `-` in messages).
pub async fn resolve_str(yaml: &str, ro: &ResolveOptions, opts: &Options) -> Result<String> {
    let input = resolve::Input { name: "-".into(), text: yaml.to_string() };
    resolve::resolve_inputs(vec![input], ro, &Session::new(opts)?).await
}

/// How `apply`/`create` hand resolved YAML to kubectl.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubectlVerb {
    Apply,
    Create,
}

/// Resolves `paths`, then runs `kubectl apply|create -f - kubectl_args…` with the result on its
/// standard input. Nothing reaches kubectl when any build or publish fails.
pub async fn apply(
    verb: KubectlVerb,
    paths: &[PathBuf],
    kubectl_args: &[String],
    ro: &ResolveOptions,
    opts: &Options,
) -> Result<()> {
    let yaml = resolve_files(paths, ro, opts).await?;
    let verb = match verb {
        KubectlVerb::Apply => "apply",
        KubectlVerb::Create => "create",
    };
    let mut args = vec![verb.to_string(), "-f".into(), "-".into()];
    args.extend(kubectl_args.iter().cloned());
    kubectl::run(&args, Some(yaml)).await
}

/// `kubectl delete args…`, as upstream's passthrough.
pub async fn delete(kubectl_args: &[String]) -> Result<()> {
    let mut args = vec!["delete".to_string()];
    args.extend(kubectl_args.iter().cloned());
    kubectl::run(&args, None).await
}

/// Builds and publishes `import_path`, then runs it in the cluster as upstream's `ko run`:
/// `kubectl run <image name> --image=<ref> --restart=Never --rm --attach kubectl_args…`.
pub async fn run(import_path: &str, kubectl_args: &[String], opts: &Options) -> Result<()> {
    let published = build(&[import_path], opts).await?.remove(0);
    // The pod is named after the image: the repository's last element, without tag or digest.
    let repository = published.reference.split('@').next().unwrap_or_default();
    let last = repository.rsplit('/').next().unwrap_or(repository);
    let name = last.split(':').next().unwrap_or(last).to_string();
    let mut args = vec![
        "run".to_string(),
        name,
        format!("--image={}", published.reference),
        "--restart=Never".into(),
        "--rm".into(),
        "--attach".into(),
        "--log-flush-frequency=1s".into(),
    ];
    args.extend(kubectl_args.iter().cloned());
    kubectl::run(&args, None).await
}

fn parse_pairs(values: &[String], flag: &str) -> Result<Vec<(String, String)>> {
    values
        .iter()
        .map(|v| match v.split_once('=') {
            Some((k, val)) if !k.is_empty() => Ok((k.to_string(), val.to_string())),
            _ => Err(Error::invalid(format!("{flag} {v:?}: expected key=value"))),
        })
        .collect()
}

fn epoch(var: &str) -> Result<Option<i64>> {
    match config::env(var) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| Error::config(format!("{var}={v:?} is not a number of seconds since 1970"))),
    }
}

/// The platforms to build: `--platform`, else `defaultPlatforms`, else `GOOS/GOARCH[/vGOARM]`,
/// else linux/amd64 — and, as upstream, an error when an explicit list meets GOOS/GOARCH/GOARM.
fn platforms(opts: &Options, config: &KoConfig) -> Result<PlatformSelection> {
    let explicit = if !opts.platforms.is_empty() { &opts.platforms } else { &config.default_platforms };
    let env_set: Vec<&str> = ["GOOS", "GOARCH", "GOARM"].into_iter().filter(|v| config::env(v).is_some()).collect();
    if !explicit.is_empty() {
        if !env_set.is_empty() {
            return Err(Error::config(format!(
                "cannot use --platform or defaultPlatforms while {} is set in the environment; unset it or drop the platform list",
                env_set.join("/")
            )));
        }
        return PlatformSelection::parse(explicit);
    }
    match (config::env("GOOS"), config::env("GOARCH")) {
        (Some(os), Some(arch)) => {
            let variant = config::env("GOARM").map(|v| format!("v{v}"));
            Ok(PlatformSelection::Only(vec![Platform::new(&os, &arch, variant.as_deref())]))
        }
        _ => Ok(PlatformSelection::Only(vec![Platform::new("linux", "amd64", None)])),
    }
}

fn go_settings(opts: &Options, config: KoConfig, working_dir: PathBuf) -> Result<GoSettings> {
    if let Some(sbom) = &opts.sbom
        && sbom != "none"
    {
        return Err(Error::invalid(format!(
            "--sbom={sbom}: SBOM generation is not supported by this version of ko; pass --sbom=none"
        )));
    }
    let jobs = match opts.jobs {
        0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        n => n,
    };
    Ok(GoSettings {
        go: config::env("KO_GO_PATH").unwrap_or_else(|| "go".into()),
        platforms: platforms(opts, &config)?,
        config,
        working_dir,
        base_image: opts.base_image.clone(),
        ldflags: opts.ldflags.clone(),
        disable_optimizations: opts.disable_optimizations,
        labels: parse_pairs(&opts.image_labels, "--image-label")?,
        annotations: parse_pairs(&opts.image_annotations, "--image-annotation")?,
        user: opts.image_user.clone(),
        kodata_epoch: epoch("KO_DATA_DATE_EPOCH")?,
        source_epoch: epoch("SOURCE_DATE_EPOCH")?,
        jobs,
    })
}

fn make_destination(opts: &Options, repo: Repository) -> Result<Destination> {
    let mut tags: Vec<String> = Vec::new();
    for t in &opts.tags {
        name::validate_tag(t)?;
        if !tags.contains(t) {
            tags.push(t.clone());
        }
    }
    if tags.is_empty() {
        tags.push("latest".into());
    }
    if opts.tag_only && (tags.len() != 1 || tags[0] == "latest") {
        return Err(Error::invalid("--tag-only needs exactly one tag, other than latest (e.g. -t v1.2.3)"));
    }
    if opts.bare && opts.base_import_paths {
        tracing::warn!("--bare and --base-import-paths (-B) both given; -B wins");
    }
    let naming = if opts.preserve_import_paths {
        Naming::PreserveImportPaths
    } else if opts.base_import_paths {
        Naming::BaseImportPaths
    } else if opts.bare {
        Naming::Bare
    } else {
        Naming::Md5
    };
    Ok(Destination { repository: repo, naming, tags, tag_only: opts.tag_only })
}

fn make_publisher(opts: &Options, registry: Arc<RegistryClient>) -> Result<Arc<dyn Publisher>> {
    let push = opts.push.unwrap_or(true);
    let repo_text = opts.docker_repo();
    if opts.local || repo_text.as_deref().is_some_and(|r| r.starts_with("ko.local") || r.starts_with("kind.local")) {
        return Err(Error::invalid(
            "publishing to the Docker daemon or kind (-L, ko.local, kind.local) is not supported by this version of ko yet; publish to a registry, --oci-layout-path or --tarball",
        ));
    }
    let repo = match repo_text {
        Some(r) => Repository::parse(&r).map_err(|e| e.context("KO_DOCKER_REPO"))?,
        None if push => {
            return Err(Error::config(
                "KO_DOCKER_REPO is not set: set it to the repository to publish to (e.g. KO_DOCKER_REPO=ghcr.io/you), or pass --push=false",
            ));
        }
        None => Repository { registry: "ko.local".into(), path: String::new() },
    };
    let destination = make_destination(opts, repo)?;
    let mut sinks: Vec<Arc<dyn Publisher>> = Vec::new();
    if let Some(dir) = &opts.oci_layout_path {
        sinks.push(Arc::new(LayoutPublisher::new(opts.working_dir()?.join(dir))));
    }
    if let Some(file) = &opts.tarball {
        sinks.push(Arc::new(TarballPublisher::new(opts.working_dir()?.join(file), destination.clone())));
    }
    if push {
        sinks.push(Arc::new(RegistryPublisher::new(registry, destination.clone())));
    }
    Ok(match sinks.len() {
        0 => Arc::new(NopPublisher { destination }),
        1 => sinks.remove(0),
        _ => Arc::new(MultiPublisher { publishers: sinks }),
    })
}
