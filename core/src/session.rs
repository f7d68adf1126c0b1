//! [`Session`]: the handle every front end keeps. Made once from [`Options`], it wires a builder
//! and a publisher and keeps, for every call made on it, what is worth keeping: registry tokens
//! and pings, resolved base images, `go list` results (until the package's files change), and
//! which blobs it already placed in which repository. Calls may run concurrently on one session,
//! from any thread. Sinks written at the end (`--tarball`, `--image-refs`) are written once, by
//! [`Session::finish`].

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use crate::builder::base::BaseResolver;
use crate::builder::{Builder, GoBuilder};
use crate::cache::Cache;
use crate::cancel::CancelToken;
use crate::config::{Options, Settings};
use crate::daemon::Engine;
use crate::error::{Error, ErrorKind, Result};
use crate::events::{Event, EventSink, Events};
use crate::image::Artifact;
use crate::kubectl;
use crate::publish::{
    DaemonPublisher, LayoutPublisher, MultiPublisher, NopPublisher, Publisher, RegistryPublisher, TarballPublisher,
};
use crate::registry::RegistryClient;
use crate::resolve::{Input, Plan, ResolveOptions, read_inputs};

/// One published import path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Published {
    /// The fully qualified import path that was built.
    pub import_path: String,
    /// The reference to use it by (`repo@sha256:…`, `repo:tag@sha256:…`, or `repo:tag`).
    pub reference: String,
    /// For a multi-platform index, each child image's reference by digest.
    pub children: Vec<String>,
}

/// How `apply`/`create` hand resolved YAML to kubectl.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubectlVerb {
    Apply,
    Create,
}

impl KubectlVerb {
    fn as_str(self) -> &'static str {
        match self {
            KubectlVerb::Apply => "apply",
            KubectlVerb::Create => "create",
        }
    }
}

/// A configured engine: builder, publisher, caches and event sink. Thread-safe; share it behind
/// an `Arc` to call it from several tasks or threads at once.
pub struct Session {
    settings: Arc<Settings>,
    builder: Arc<dyn Builder>,
    publisher: Arc<dyn Publisher>,
    events: Events,
    /// Everything published so far, in order, for `--image-refs`.
    published: Mutex<Vec<Published>>,
    /// Held (shared) by every running call, and by `finish` (alone) while it writes.
    calls: tokio::sync::RwLock<()>,
    /// No call may start any more.
    finished: AtomicBool,
    /// What `finish` writes has been written.
    closed: AtomicBool,
    /// Threads started by `new` that work ahead of the calls; joined on drop, so that nothing of
    /// a session outlives it (an embedder may unload the library right after).
    background: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl Session {
    /// Reads the environment (`opts.env`, else the process's, now) and `.ko.yaml`, validates
    /// `opts` and wires builder and publisher. Touches neither the network nor `go`.
    pub fn new(opts: Options) -> Result<Session> {
        let settings = Arc::new(Settings::resolve(&opts)?);
        let events = Events::default();
        let registry = Arc::new(RegistryClient::new(settings.publish.insecure_registry, &settings.env));
        let mut background = Vec::new();
        if settings.publish.push && !settings.publish.local {
            background.extend(registry.warm_up(settings.publish.destination.repository.registry_address()));
        }
        let engine = Arc::new(Engine::new(settings.env.clone()));
        let cache = Cache::from_env(&settings.env);
        if let Some(c) = cache.clone() {
            // Off the call's path: it only reads directory times and deletes leftovers.
            background.extend(std::thread::Builder::new().name("ko-cache-prune".into()).spawn(move || c.prune()).ok());
        }
        let bases = Arc::new(BaseResolver::new(
            registry.clone(),
            engine.clone(),
            cache.clone(),
            settings.working_dir.clone(),
            settings.env.temp_dir(),
        ));
        let builder: Arc<dyn Builder> = Arc::new(GoBuilder::new(settings.clone(), cache, bases, events.clone()));
        let publisher = make_publisher(&settings, registry, engine, &events);
        let session = Session::from_parts(settings, builder, publisher, events);
        *session.background.lock().unwrap() = background;
        Ok(session)
    }

    /// A session over a given builder and publisher (fixed ones in tests of `resolve`).
    pub fn from_parts(
        settings: Arc<Settings>,
        builder: Arc<dyn Builder>,
        publisher: Arc<dyn Publisher>,
        events: Events,
    ) -> Session {
        Session {
            settings,
            builder,
            publisher,
            events,
            published: Mutex::default(),
            calls: tokio::sync::RwLock::new(()),
            finished: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            background: Mutex::default(),
        }
    }

    /// This session, delivering its events to `sink` (from any thread).
    pub fn with_events(self, sink: EventSink) -> Session {
        self.events.set_sink(sink);
        self
    }

    /// Delivers this session's events to `sink` from now on (for a session already shared).
    pub fn set_event_sink(&self, sink: EventSink) {
        self.events.set_sink(sink);
    }

    /// The effective settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Starts a call: an error once the session has finished, or when the files written at the
    /// end (`tarball`, `image_refs`) or the OCI layout cannot be written (so that a bad path
    /// fails now rather than after the images were pushed and tagged); else a guard that
    /// `finish` waits for, so nothing a running call publishes misses the tarball or the image
    /// refs.
    async fn enter(&self) -> Result<tokio::sync::RwLockReadGuard<'_, ()>> {
        let guard = self.calls.read().await;
        if self.finished.load(Ordering::SeqCst) {
            return Err(Error::invalid("this ko session has finished; make a new one"));
        }
        let publish = &self.settings.publish;
        for (field, path, replaced) in [("tarball", &publish.tarball, true), ("image_refs", &publish.image_refs, false)]
        {
            if let Some(path) = path {
                check_writable_file(path, replaced).map_err(|(why, e)| {
                    let message = format!("{} {}: {why}", self.settings.option(field), path.display());
                    Error::new(ErrorKind::Io, message).with_source(e)
                })?;
            }
        }
        if let Some(dir) = &publish.oci_layout_path {
            check_writable_dir(dir).map_err(|(why, e)| {
                let message = format!("{} {}: {why}", self.settings.option("oci_layout_path"), dir.display());
                Error::new(ErrorKind::Io, message).with_source(e)
            })?;
        }
        Ok(guard)
    }

    /// The inputs `paths` name, read off the async threads: a slow or blocking read (a FIFO
    /// named with `-f`) never keeps a cancelled call from returning.
    async fn inputs(&self, paths: &[PathBuf], ro: &ResolveOptions) -> Result<Vec<Input>> {
        let (paths, recursive, wd, stdin) =
            (paths.to_vec(), ro.recursive, self.settings.working_dir.clone(), ro.stdin.clone());
        crate::blocking::run("reading the YAML files", move |_| read_inputs(&paths, recursive, &wd, stdin.as_deref()))
            .await
    }

    /// Builds and publishes each import path once (concurrently), returning one result per
    /// argument, in argument order. With no arguments, builds `.`.
    pub async fn build(&self, import_paths: &[&str], cancel: &CancelToken) -> Result<Vec<Published>> {
        cancel
            .run(async {
                let _open = self.enter().await?;
                let args: Vec<&str> = if import_paths.is_empty() { vec!["."] } else { import_paths.to_vec() };
                let qualified = self.builder.qualify(&args).await?.into_iter().collect::<Result<Vec<_>>>()?;
                self.publish_all(&qualified).await
            })
            .await
    }

    /// Builds and publishes qualified import paths, each once; one result per entry, in order.
    async fn publish_all(&self, qualified: &[String]) -> Result<Vec<Published>> {
        let mut unique: Vec<&str> = Vec::new();
        for q in qualified {
            if !unique.contains(&q.as_str()) {
                unique.push(q);
            }
        }
        // The destination is checked while the builds run: an engine that is not running fails
        // the call now, not after the builds. The builds go first, so that `go` starts before
        // the check's own work (setting up TLS) runs.
        let (artifacts, _) = futures::future::try_join(self.builder.build(&unique), self.publisher.ready()).await?;
        // At most `jobs` images are published at once (each uploads a few blobs at once).
        // Boxed before streaming: a lazy `map` adaptor here defeats the Send inference that
        // the bindings' `async_trait` futures need.
        let publishing: Vec<_> =
            unique.iter().zip(&artifacts).map(|(ip, artifact)| Box::pin(self.publish_one(ip, artifact))).collect();
        let results: Vec<Published> =
            futures::stream::iter(publishing).buffered(self.settings.build.jobs.max(1)).try_collect().await?;
        self.published.lock().unwrap_or_else(|p| p.into_inner()).extend(results.iter().cloned());
        let by_path: HashMap<&str, &Published> = results.iter().map(|p| (p.import_path.as_str(), p)).collect();
        Ok(qualified.iter().map(|q| by_path[q.as_str()].clone()).collect())
    }

    async fn publish_one(&self, import_path: &str, artifact: &Artifact) -> Result<Published> {
        let reference = self.publisher.publish(artifact, import_path).await?;
        let name = reference.split('@').next().unwrap_or(&reference);
        let name = match name.rsplit_once(':') {
            Some((n, tag)) if !tag.contains('/') => n,
            _ => name,
        };
        let children = match artifact {
            Artifact::Index(index) => index.images.iter().map(|i| format!("{name}@{}", i.manifest.digest)).collect(),
            Artifact::Image(_) => Vec::new(),
        };
        self.events.emit(Event::Published { import_path: import_path.into(), reference: reference.clone() });
        Ok(Published { import_path: import_path.to_string(), reference, children })
    }

    /// Resolves the YAML in `paths` (files, directories; `-` is `ro.stdin`) as `ko resolve` does.
    pub async fn resolve_files(&self, paths: &[PathBuf], ro: &ResolveOptions, cancel: &CancelToken) -> Result<String> {
        cancel
            .run(async {
                let _open = self.enter().await?;
                let inputs = self.inputs(paths, ro).await?;
                self.resolve_inputs(inputs, ro).await
            })
            .await
    }

    /// Resolves one YAML text (named `-` in messages).
    pub async fn resolve_str(&self, yaml: &str, ro: &ResolveOptions, cancel: &CancelToken) -> Result<String> {
        cancel
            .run(async {
                let _open = self.enter().await?;
                self.resolve_inputs(vec![Input { name: "-".into(), text: yaml.to_string() }], ro).await
            })
            .await
    }

    pub(crate) async fn resolve_inputs(&self, inputs: Vec<Input>, ro: &ResolveOptions) -> Result<String> {
        let strict = ro.strict && self.settings.config.strict.unwrap_or(true);
        let mains: Option<HashSet<String>> =
            if strict { None } else { Some(self.builder.main_packages().await?.into_iter().collect()) };
        let plan = Plan::new(inputs, ro.selector.as_deref(), mains.as_ref())?;
        let paths = plan.import_paths();
        let written: Vec<&str> = paths.iter().map(|(ip, _)| ip.as_str()).collect();
        let qualified = self
            .builder
            .qualify(&written)
            .await?
            .into_iter()
            .zip(&paths)
            .map(|(q, (_, at))| q.map_err(|e| e.context(at)))
            .collect::<Result<Vec<_>>>()?;
        let published = if qualified.is_empty() { Vec::new() } else { self.publish_all(&qualified).await? };
        let by_path: HashMap<&str, &str> =
            paths.iter().zip(&published).map(|((ip, _), p)| (ip.as_str(), p.reference.as_str())).collect();
        let done = |name: &str, references: usize| {
            self.events.emit(Event::ResolveFileDone { name: name.to_string(), references });
        };
        Ok(plan.render(&|ip| by_path[ip].to_string(), &done))
    }

    /// Resolves `paths`, then runs `kubectl apply|create -f - kubectl_args…` with the result on
    /// its standard input. Nothing reaches kubectl when any build or publish fails.
    pub async fn apply(
        &self,
        verb: KubectlVerb,
        paths: &[PathBuf],
        ro: &ResolveOptions,
        kubectl_args: &[String],
        cancel: &CancelToken,
    ) -> Result<()> {
        cancel
            .run(async {
                let _open = self.enter().await?;
                kubectl::find(&self.settings.env)?;
                let inputs = self.inputs(paths, ro).await?;
                let yaml = self.resolve_inputs(inputs, ro).await?;
                let mut args = vec![verb.as_str().to_string(), "-f".into(), "-".into()];
                args.extend(kubectl_args.iter().cloned());
                self.kubectl(&args, Some(yaml)).await
            })
            .await
    }

    /// `kubectl delete kubectl_args…`, as upstream's passthrough, with this session's
    /// environment and output (see [`delete`] for one without a session).
    pub async fn delete(&self, kubectl_args: &[String], cancel: &CancelToken) -> Result<()> {
        let _open = self.enter().await?;
        delete(kubectl_args, &self.settings.env, self.settings.kubectl_output, &self.events, cancel).await
    }

    /// Builds and publishes `import_path`, then runs it in the cluster as upstream's `ko run`:
    /// `kubectl run <image name> --image=<ref> --restart=Never --rm --attach kubectl_args…`.
    pub async fn run(&self, import_path: &str, kubectl_args: &[String], cancel: &CancelToken) -> Result<()> {
        cancel
            .run(async {
                let _open = self.enter().await?;
                kubectl::find(&self.settings.env)?;
                let qualified = self.builder.qualify(&[import_path]).await?.remove(0)?;
                let published = self.publish_all(&[qualified]).await?.remove(0);
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
                self.kubectl(&args, None).await
            })
            .await
    }

    async fn kubectl(&self, args: &[String], stdin: Option<String>) -> Result<()> {
        kubectl::run(args, stdin, &self.settings.env, self.settings.kubectl_output, &self.events).await
    }

    /// Writes what is written at the end: the `tarball` (every image this session published) and
    /// the `image_refs` file (every reference, and each index's children), once the calls
    /// running now have returned. Later calls on this session fail; after a `finish` that
    /// succeeded, another does nothing; after one that failed, another tries again.
    pub async fn finish(&self) -> Result<()> {
        self.finished.store(true, Ordering::SeqCst);
        let _alone = self.calls.write().await;
        if self.closed.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.publisher.close().await?;
        if let Some(path) = &self.settings.publish.image_refs {
            let mut text = String::new();
            let mut seen = HashSet::new();
            for p in self.published.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                if !seen.insert(p.reference.clone()) {
                    continue;
                }
                for line in std::iter::once(&p.reference).chain(&p.children) {
                    text.push_str(line);
                    text.push('\n');
                }
            }
            let option = self.settings.option("image_refs");
            tokio::fs::write(path, text)
                .await
                .map_err(|e| Error::io(format!("cannot write {option} {}", path.display()), e))?;
        }
        self.closed.store(true, Ordering::SeqCst);
        Ok(())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for thread in self.background.get_mut().map(std::mem::take).unwrap_or_default() {
            let _ = thread.join();
        }
    }
}

/// Why a file cannot be written at `path` (without writing it: it is written at the end), if
/// it cannot: a directory there, a missing or read-only parent directory; with the I/O error
/// that says so. `replaced`: the file is written beside and renamed over `path` (the tarball),
/// so only a regular file may be there; otherwise anything but a directory is written into
/// (`--image-refs=/dev/stdout`).
fn check_writable_file(path: &Path, replaced: bool) -> std::result::Result<(), (String, std::io::Error)> {
    use std::io::ErrorKind::*;
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => return Err(("is a directory; name a file".into(), IsADirectory.into())),
        // Written in place: the file itself must take writes, whatever its directory allows.
        Ok(m) if m.is_file() && !replaced => {
            return std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map(drop)
                .map_err(|e| (format!("cannot write {}: {e}", path.display()), e));
        }
        Ok(m) if m.is_file() => {}
        Ok(_) if replaced => return Err(("exists and is not a regular file; name a file".into(), InvalidInput.into())),
        Ok(_) => return Ok(()),
        Err(_) => {}
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match std::fs::metadata(parent) {
        Ok(m) if m.is_dir() => probe(parent),
        Ok(_) => Err((format!("{} is not a directory", parent.display()), NotADirectory.into())),
        Err(e) if e.kind() == NotFound => {
            Err((format!("the directory {} does not exist; create it first", parent.display()), e))
        }
        Err(e) => Err((format!("cannot use {}: {e}", parent.display()), e)),
    }
}

/// Why `dir` cannot hold new files, if it cannot; it need not exist yet (it is created with its
/// parents), and then its nearest existing ancestor decides.
fn check_writable_dir(dir: &Path) -> std::result::Result<(), (String, std::io::Error)> {
    let Some(existing) = dir.ancestors().find(|d| std::fs::metadata(d).is_ok()) else {
        return Err(("no part of it exists".into(), std::io::ErrorKind::NotFound.into()));
    };
    if !existing.is_dir() {
        return Err((format!("{} is not a directory", existing.display()), std::io::ErrorKind::NotADirectory.into()));
    }
    probe(existing)
}

/// Whether a file can be created in `dir`: writing a probe is the only test that holds for root
/// and for read-only mounts alike.
fn probe(dir: &Path) -> std::result::Result<(), (String, std::io::Error)> {
    tempfile::Builder::new()
        .prefix(".ko-write-check")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|e| (format!("cannot write in {}: {e}", dir.display()), e))
}

/// `kubectl delete kubectl_args…` with `env`, as upstream's `ko delete`: nothing is read or
/// checked first (not `.ko.yaml`, not `KO_DOCKER_REPO`), so a broken configuration never stops it.
pub async fn delete(
    kubectl_args: &[String],
    env: &crate::env::Env,
    output: crate::config::KubectlOutput,
    events: &Events,
    cancel: &CancelToken,
) -> Result<()> {
    let mut args = vec!["delete".to_string()];
    args.extend(kubectl_args.iter().cloned());
    cancel.run(kubectl::run(&args, None, env, output, events)).await
}

fn make_publisher(
    settings: &Settings,
    registry: Arc<RegistryClient>,
    engine: Arc<Engine>,
    events: &Events,
) -> Arc<dyn Publisher> {
    let publish = &settings.publish;
    let destination = publish.destination.clone();
    let mut sinks: Vec<Arc<dyn Publisher>> = Vec::new();
    if let Some(dir) = &publish.oci_layout_path {
        sinks.push(Arc::new(LayoutPublisher::new(dir.clone())));
    }
    if let Some(file) = &publish.tarball {
        let options = (settings.option("tarball"), settings.option("platforms"));
        sinks.push(Arc::new(TarballPublisher::new(file.clone(), destination.clone(), options)));
    }
    if publish.local {
        sinks.push(Arc::new(DaemonPublisher::new(engine, destination.clone(), settings.option("platforms"))));
    } else if publish.push {
        sinks.push(Arc::new(RegistryPublisher::new(
            registry,
            destination.clone(),
            publish.sbom_repository.clone(),
            events.clone(),
        )));
    }
    match sinks.len() {
        0 => Arc::new(NopPublisher { destination }),
        1 => sinks.remove(0),
        _ => Arc::new(MultiPublisher { publishers: sinks }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_paths_are_checked_before_anything_is_built() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("file"), "x").unwrap();
        assert_eq!(check_writable_file(&d.join("new.tar"), true).map_err(|e| e.0), Ok(()));
        assert!(check_writable_file(&d.join("file"), true).is_ok(), "an old tarball is replaced");
        assert!(check_writable_file(d, true).unwrap_err().0.contains("is a directory"));
        let (missing, cause) = check_writable_file(&d.join("no/such/x.tar"), true).unwrap_err();
        assert!(missing.contains("no/such does not exist; create it first"), "{missing}");
        assert_eq!(cause.kind(), std::io::ErrorKind::NotFound);
        assert!(check_writable_file(&d.join("file/x"), false).unwrap_err().0.contains("is not a directory"));
        assert!(check_writable_file(Path::new("/dev/null"), true).unwrap_err().0.contains("not a regular file"));
        assert!(check_writable_file(Path::new("/dev/null"), false).is_ok());
        // An existing file written in place needs no writable directory (nothing can be created in /proc/self).
        assert_eq!(check_writable_file(Path::new("/proc/self/comm"), false).map_err(|e| e.0), Ok(()));
        assert!(check_writable_dir(&d.join("a/b/c")).is_ok(), "created with its parents");
        assert!(check_writable_dir(&d.join("file/sub")).unwrap_err().0.contains("is not a directory"));
        assert!(
            check_writable_file(Path::new("/proc/ko-test.tar"), true).unwrap_err().0.contains("cannot write in /proc")
        );
        assert_eq!(std::fs::read_dir(d).unwrap().count(), 1, "the probes are gone");
    }
}
