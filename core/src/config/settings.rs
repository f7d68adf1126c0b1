//! The effective settings of a session: [`Options`] with every default applied, every comma list
//! split, every `key=value` parsed and every check done, read against `.ko.yaml` and the
//! session's environment. Front ends and tests call [`Settings::resolve`] to see exactly what a
//! session would do; nothing here touches the network or runs `go`.

use std::path::PathBuf;

use super::{FrontEnd, KeyValue, KeyValues, KoConfig, KubectlOutput, Options};
use crate::env::Env;
use crate::error::{Error, Result};
use crate::image::compress::Compression;
use crate::image::platform::{Platform, PlatformSelection};
use crate::image::time::LAST_RFC3339_SECOND;
use crate::name::{Destination, KIND_DOMAIN, LOCAL_DOMAIN, Naming, Repository, is_under};

/// What shapes a build.
#[derive(Debug, Clone)]
pub struct BuildSettings {
    /// The `go` binary (`KO_GO_PATH`, else `go` on the session's `PATH`).
    pub go: String,
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
    /// `KO_DATA_PATH_ALLOWED_ROOT`: the boundary for kodata symlinks.
    pub kodata_allowed_root: Option<PathBuf>,
    /// Concurrent `go build`s (at least 1).
    pub jobs: usize,
    /// How ko's own layers are compressed.
    pub compression: Compression,
    /// Make an SPDX SBOM for every image and index (`--sbom`, default `spdx`).
    pub sbom: bool,
    /// Also write the SBOMs here (`--sbom-dir`).
    pub sbom_dir: Option<PathBuf>,
}

/// Where images go.
#[derive(Debug, Clone)]
pub struct PublishSettings {
    pub destination: Destination,
    /// Push to the registry.
    pub push: bool,
    /// Load into the Docker engine instead of pushing (`local`, or a destination under `ko.local`).
    pub local: bool,
    pub insecure_registry: bool,
    pub oci_layout_path: Option<PathBuf>,
    pub tarball: Option<PathBuf>,
    pub image_refs: Option<PathBuf>,
    /// Where SBOM attachments go instead of each image's repository (`COSIGN_REPOSITORY`).
    pub sbom_repository: Option<Repository>,
}

/// Everything a session runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub front_end: FrontEnd,
    pub env: Env,
    /// Absolute.
    pub working_dir: PathBuf,
    /// The `.ko.yaml` in effect (with `KO_DEFAULTBASEIMAGE`/`KO_DEFAULTPLATFORMS` applied).
    pub config: KoConfig,
    pub build: BuildSettings,
    pub publish: PublishSettings,
    pub kubectl_output: KubectlOutput,
}

impl Settings {
    /// The settings `opts` give: the environment from `opts.env` (else the process's, now),
    /// `.ko.yaml`, defaults, and validation, with messages naming options as `opts.front_end`
    /// spells them.
    pub fn resolve(opts: &Options) -> Result<Settings> {
        let env = match &opts.env {
            Some(map) => Env::from_map(map.clone()),
            None => Env::from_process(),
        };
        let front = opts.front_end;
        let name = |field: &str| front.option(field);
        let cwd = std::env::current_dir().map_err(|e| Error::io("cannot read the current directory", e))?;
        let working_dir = match &opts.working_dir {
            Some(d) => cwd.join(d),
            None => cwd,
        };
        let config = KoConfig::load(opts.config_path.as_deref(), &working_dir, &env, &name("config_path"))?;
        let jobs = match opts.jobs {
            0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            n => n,
        };
        let build = BuildSettings {
            go: env.get("KO_GO_PATH").unwrap_or_else(|| "go".into()),
            base_image: opts.base_image.clone(),
            platforms: platforms(opts, &config, &env, &name("platforms"))?,
            ldflags: opts.ldflags.clone(),
            disable_optimizations: opts.disable_optimizations,
            labels: parse_pairs(&opts.image_labels, &name("image_labels"))?,
            annotations: parse_pairs(&opts.image_annotations, &name("image_annotations"))?,
            user: opts.image_user.clone(),
            kodata_epoch: epoch(&env, "KO_DATA_DATE_EPOCH")?,
            source_epoch: epoch(&env, "SOURCE_DATE_EPOCH")?,
            kodata_allowed_root: env.path("KO_DATA_PATH_ALLOWED_ROOT"),
            jobs,
            compression: compression(opts, &config, &name("layer_compression"))?,
            sbom: sbom(opts.sbom.as_deref(), &name("sbom")),
            sbom_dir: opts.sbom_dir.as_ref().map(|d| working_dir.join(d)),
        };
        check_no_toolexec(&env, &config)?;
        let publish = publish_settings(opts, &env, &working_dir, front)?;
        Ok(Settings { front_end: front, env, working_dir, config, build, publish, kubectl_output: opts.kubectl_output })
    }

    /// How this session's user spells the option `field`.
    pub fn option(&self, field: &str) -> String {
        self.front_end.option(field)
    }
}

/// Splits comma lists, trims, drops empty entries.
fn comma_list(values: &[String]) -> Vec<String> {
    values.iter().flat_map(|v| v.split(',')).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// The pairs of `values`: exact pairs as they are; flag strings as `key=value`, several to an
/// entry when separated by commas, where a comma-separated piece without `=` continues the
/// previous value (`team=a,b` is `team` = `a,b`), as pflag's `StringToString` reads
/// `--image-label`.
pub fn parse_pairs(values: &KeyValues, option: &str) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for entry in &values.0 {
        let value = match entry {
            KeyValue::Pair(k, v) if !k.is_empty() => {
                out.push((k.clone(), v.clone()));
                continue;
            }
            KeyValue::Pair(_, v) => {
                return Err(Error::invalid(format!("{option}: a key is empty (with the value {v:?})")));
            }
            KeyValue::Flag(value) => value,
        };
        for piece in value.split(',') {
            match piece.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => out.push((k.trim().to_string(), v.to_string())),
                None if !out.is_empty() => {
                    let last = out.last_mut().expect("not empty");
                    last.1.push(',');
                    last.1.push_str(piece);
                }
                _ => {
                    return Err(Error::invalid(format!("{option} {value:?}: expected key=value (e.g. team=web)")));
                }
            }
        }
    }
    Ok(out)
}

/// Whether SBOMs are made: as upstream, `none` turns them off and anything else means SPDX (the
/// removed `cyclonedx` and `go.version-m` included, with a warning, so old scripts still run).
fn sbom(value: Option<&str>, option: &str) -> bool {
    match value {
        Some("none") => false,
        None | Some("spdx") => true,
        Some(other) => {
            tracing::warn!("{option} {other:?}: ko writes SPDX SBOMs (or none, with {option} none); writing SPDX");
            true
        }
    }
}

/// The layer compression: the option, else `.ko.yaml` `layerCompression`, else gzip.
fn compression(opts: &Options, config: &KoConfig, option: &str) -> Result<Compression> {
    let (value, whence) = match (&opts.layer_compression, &config.layer_compression) {
        (Some(v), _) => (v, option.to_string()),
        (None, Some(v)) => (v, "layerCompression in .ko.yaml".to_string()),
        (None, None) => return Ok(Compression::Gzip),
    };
    Compression::parse(value).ok_or_else(|| Error::invalid(format!("{whence} {value:?}: expected gzip or zstd")))
}

/// A Unix time from `var`, within what RFC 3339 can write.
fn epoch(env: &Env, var: &str) -> Result<Option<i64>> {
    let Some(v) = env.get(var) else { return Ok(None) };
    match v.trim().parse::<i64>() {
        Ok(secs) if (0..=LAST_RFC3339_SECOND).contains(&secs) => Ok(Some(secs)),
        _ => Err(Error::config(format!(
            "{var}={v:?} is not a number of seconds since 1970 between 0 and {LAST_RFC3339_SECOND} (9999-12-31T23:59:59Z)"
        ))),
    }
}

/// The platforms to build: `platforms`, else `defaultPlatforms`, else `GOOS/GOARCH[/vGOARM]`,
/// else linux/amd64; and, as upstream, an error when an explicit list meets GOOS/GOARCH/GOARM.
fn platforms(opts: &Options, config: &KoConfig, env: &Env, option: &str) -> Result<PlatformSelection> {
    let given = comma_list(&opts.platforms);
    let explicit = if !given.is_empty() { given } else { config.default_platforms.clone() };
    let env_set: Vec<&str> = ["GOOS", "GOARCH", "GOARM"].into_iter().filter(|v| env.get(v).is_some()).collect();
    if !explicit.is_empty() {
        if !env_set.is_empty() {
            return Err(Error::config(format!(
                "cannot use {option} or defaultPlatforms while {} is set in the environment; unset it or drop the platform list",
                env_set.join("/")
            )));
        }
        return PlatformSelection::parse(&explicit).map_err(|e| e.context(option));
    }
    match (env.get("GOOS"), env.get("GOARCH")) {
        (Some(os), Some(arch)) => {
            // GOARM's float mode (`7,softfloat`) is not part of the platform.
            let text = match env.get("GOARM") {
                Some(v) if arch == "arm" => format!("{os}/{arch}/v{}", v.split(',').next().unwrap_or_default()),
                _ => format!("{os}/{arch}"),
            };
            let platform = Platform::parse(&text).map_err(|e| e.context("GOOS/GOARCH/GOARM in the environment"))?;
            Ok(PlatformSelection::Only(vec![platform]))
        }
        _ => Ok(PlatformSelection::Only(vec![Platform::new("linux", "amd64", None)])),
    }
}

/// Refuses `-toolexec` wherever `go` would read it — `GOFLAGS` in the environment or in Go's own
/// env file (`go env -w`), a `.ko.yaml` build's or the default `env` and `flags` — now, before any
/// `go` command runs: `go list` would already run the program.
fn check_no_toolexec(env: &Env, config: &KoConfig) -> Result<()> {
    use crate::builder::go::reject_toolexec;
    if let Some(flags) = env.get("GOFLAGS") {
        reject_toolexec(flags.split_whitespace(), "GOFLAGS in the environment")?;
    }
    if let Some(file) = go_env_file(env)
        && let Ok(text) = std::fs::read_to_string(&file)
        && let Some(flags) = text.lines().find_map(|l| l.trim().strip_prefix("GOFLAGS="))
    {
        reject_toolexec(flags.split_whitespace(), &format!("GOFLAGS in {} (go env -w)", file.display()))?;
    }
    let builds = config.builds.iter().map(|b| (b.env.as_slice(), b.flags.as_slice(), b.id.as_deref()));
    let defaults = std::iter::once((config.default_env.as_slice(), config.default_flags.as_slice(), None));
    for (envs, flags, id) in defaults.chain(builds) {
        let whence = match id {
            Some(id) => format!("build {id:?} in .ko.yaml"),
            None => ".ko.yaml".to_string(),
        };
        reject_toolexec(flags.iter().map(String::as_str), &format!("the flags of {whence}"))?;
        for flags in envs.iter().filter_map(|e| e.strip_prefix("GOFLAGS=")) {
            reject_toolexec(flags.split_whitespace(), &format!("GOFLAGS in the env of {whence}"))?;
        }
    }
    Ok(())
}

/// Go's env file, as `go env GOENV` names it: `$GOENV` (`off`: none), else
/// `$XDG_CONFIG_HOME/go/env`, else `~/.config/go/env`.
fn go_env_file(env: &Env) -> Option<PathBuf> {
    match env.get("GOENV") {
        Some(off) if off == "off" => None,
        Some(file) => Some(PathBuf::from(file)),
        None => env.path("XDG_CONFIG_HOME").or_else(|| env.home().map(|h| h.join(".config"))).map(|d| d.join("go/env")),
    }
}

fn publish_settings(
    opts: &Options,
    env: &Env,
    working_dir: &std::path::Path,
    front: FrontEnd,
) -> Result<PublishSettings> {
    let name = |field: &str| front.option(field);
    let push = opts.push.unwrap_or(true);
    let repo_text = opts.docker_repo.clone().or_else(|| env.get("KO_DOCKER_REPO"));
    if let Some(repo) = repo_text.as_deref().filter(|r| is_under(r, KIND_DOMAIN)) {
        return Err(Error::unsupported(format!(
            "{} {repo:?}: loading images into kind's nodes is not supported by this version of ko; load them into the Docker engine ({}) and then run `kind load docker-image <reference>`",
            name("docker_repo"),
            name("local")
        )));
    }
    // As upstream: `local` loads into the engine under the destination given (ko.local when none).
    let local = opts.local || repo_text.as_deref().is_some_and(|r| is_under(r, LOCAL_DOMAIN));
    let repository = match repo_text {
        Some(r) => Repository::parse(&r).map_err(|e| e.context(name("docker_repo")))?,
        None if push && !local => {
            let option = match name("docker_repo") {
                same if same == "KO_DOCKER_REPO" => String::new(),
                other => format!(" (or {other})"),
            };
            return Err(Error::config(format!(
                "KO_DOCKER_REPO is not set: set it{option} to the repository to publish to (e.g. ghcr.io/you), or build without pushing ({})",
                match front {
                    FrontEnd::Cli => "--push=false".to_string(),
                    other => format!("{} false", other.option("push")),
                }
            )));
        }
        None => Repository { registry: LOCAL_DOMAIN.into(), path: String::new() },
    };
    let mut tags: Vec<String> = Vec::new();
    for t in comma_list(&opts.tags) {
        crate::name::validate_tag(&t).map_err(|e| e.context(name("tags")))?;
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    if tags.is_empty() {
        tags.push("latest".into());
    }
    if opts.tag_only && (tags.len() != 1 || tags[0] == "latest") {
        return Err(Error::invalid(format!(
            "{} needs exactly one tag, other than latest (set {} to e.g. v1.2.3)",
            name("tag_only"),
            name("tags")
        )));
    }
    if opts.bare && opts.base_import_paths {
        tracing::warn!(
            "{} and {} both given; {} wins",
            name("bare"),
            name("base_import_paths"),
            name("base_import_paths")
        );
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
    let absolute = |p: &Option<PathBuf>| p.as_ref().map(|p| working_dir.join(p));
    let sbom_repository = match env.get("COSIGN_REPOSITORY") {
        Some(r) => Some(Repository::parse(&r).map_err(|e| e.context("COSIGN_REPOSITORY"))?),
        None => None,
    };
    Ok(PublishSettings {
        destination: Destination { repository, naming, tags, tag_only: opts.tag_only },
        push,
        local,
        insecure_registry: opts.insecure_registry,
        oci_layout_path: absolute(&opts.oci_layout_path),
        tarball: absolute(&opts.tarball),
        image_refs: absolute(&opts.image_refs),
        sbom_repository,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(env: &[(&str, &str)]) -> Options {
        let dir = std::env::temp_dir();
        Options {
            env: Some(env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            working_dir: Some(dir),
            ..Default::default()
        }
    }

    #[test]
    fn effective_settings_ignore_the_process_environment() {
        // Whatever this process has (the test runner may set KO_DOCKER_REPO or GOOS), the map wins.
        let s = Settings::resolve(&Options { push: Some(false), ..opts(&[]) }).unwrap();
        assert_eq!(s.publish.destination.repository.registry, "ko.local");
        assert_eq!(s.build.go, "go");
        assert_eq!(s.build.platforms, PlatformSelection::Only(vec![Platform::new("linux", "amd64", None)]));
        let s = Settings::resolve(&opts(&[
            ("KO_DOCKER_REPO", "reg.example/team"),
            ("KO_GO_PATH", "/opt/go/bin/go"),
            ("GOOS", "linux"),
            ("GOARCH", "arm"),
            ("GOARM", "7"),
            ("SOURCE_DATE_EPOCH", "1700000000"),
        ]))
        .unwrap();
        assert_eq!(s.publish.destination.repository.to_string(), "reg.example/team");
        assert_eq!(s.build.go, "/opt/go/bin/go");
        assert_eq!(s.build.platforms, PlatformSelection::Only(vec![Platform::new("linux", "arm", Some("v7"))]));
        assert_eq!(s.build.source_epoch, Some(1_700_000_000));
        assert_eq!(s.env.get("GOOS").as_deref(), Some("linux"));
    }

    #[test]
    fn lists_and_pairs_are_split_in_the_core() {
        let o = Options {
            tags: vec!["v1,v2".into(), "v1".into()],
            platforms: vec!["linux/amd64, linux/arm64".into()],
            image_labels: KeyValues::flags(["a=1,b=2", "team=x,y"]),
            image_annotations: KeyValues::pairs([("desc", "x,b=y")]),
            ..opts(&[("KO_DOCKER_REPO", "reg.example/t")])
        };
        let s = Settings::resolve(&o).unwrap();
        assert_eq!(s.publish.destination.tags, ["v1", "v2"]);
        assert_eq!(
            s.build.platforms,
            PlatformSelection::Only(vec![Platform::new("linux", "amd64", None), Platform::new("linux", "arm64", None)])
        );
        let want: Vec<(String, String)> =
            [("a", "1"), ("b", "2"), ("team", "x,y")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(s.build.labels, want);
        let exact = vec![("desc".to_string(), "x,b=y".to_string())];
        assert_eq!(s.build.annotations, exact, "a map's values are not split");
    }

    #[test]
    fn messages_name_options_as_the_front_end_spells_them() {
        let base = Options { tag_only: true, ..opts(&[("KO_DOCKER_REPO", "reg.example/t")]) };
        let cli = Settings::resolve(&Options { front_end: FrontEnd::Cli, ..base.clone() }).unwrap_err();
        assert!(cli.to_string().starts_with("--tag-only needs exactly one tag"), "{cli}");
        let py = Settings::resolve(&Options { front_end: FrontEnd::Python, ..base.clone() }).unwrap_err();
        assert!(py.to_string().starts_with("tag_only= needs exactly one tag"), "{py}");
        let node = Settings::resolve(&Options { front_end: FrontEnd::Node, ..base }).unwrap_err();
        assert!(node.to_string().starts_with("tagOnly needs"), "{node}");
        let bad = Options { image_labels: KeyValues::flags(["novalue"]), front_end: FrontEnd::Python, ..opts(&[]) };
        let e = Settings::resolve(&Options { push: Some(false), ..bad }).unwrap_err().to_string();
        assert!(e.starts_with("image_labels= \"novalue\": expected key=value"), "{e}");
    }

    #[test]
    fn toolexec_is_refused_before_go_runs() {
        let dir = tempfile::tempdir().unwrap();
        let goenv = dir.path().join("goenv");
        std::fs::write(&goenv, "GOPRIVATE=x\nGOFLAGS=-mod=mod -toolexec=/bin/evil\n").unwrap();
        let goenv = goenv.display().to_string();
        for (env, says) in [
            (vec![("GOFLAGS", "-trimpath -toolexec=./evil.sh")], "GOFLAGS in the environment"),
            (vec![("GOENV", goenv.as_str())], "(go env -w)"),
        ] {
            let mut env = env;
            env.push(("KO_DOCKER_REPO", "reg.example/t"));
            let e = Settings::resolve(&opts(&env)).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Config);
            assert!(e.to_string().contains("ko does not allow -toolexec") && e.to_string().contains(says), "{e}");
        }
        std::fs::write(dir.path().join(".ko.yaml"), "builds:\n- id: x\n  env: [GOFLAGS=--toolexec=x]\n").unwrap();
        let o = Options { working_dir: Some(dir.path().into()), ..opts(&[("KO_DOCKER_REPO", "reg.example/t")]) };
        let e = Settings::resolve(&o).unwrap_err().to_string();
        assert!(e.contains("GOFLAGS in the env of build \"x\" in .ko.yaml"), "{e}");
        std::fs::write(dir.path().join(".ko.yaml"), "defaultFlags: [-v, -toolexec, x]\n").unwrap();
        let e = Settings::resolve(&o).unwrap_err().to_string();
        assert!(e.contains("the flags of .ko.yaml"), "{e}");
    }

    #[test]
    fn platforms_from_the_environment_are_checked() {
        let env = [("KO_DOCKER_REPO", "reg.example/t"), ("GOOS", "linux"), ("GOARCH", "arm"), ("GOARM", "9")];
        let e = Settings::resolve(&opts(&env)).unwrap_err().to_string();
        assert!(e.contains("GOOS/GOARCH/GOARM in the environment") && e.contains("v5, v6 and v7"), "{e}");
        let env = [("KO_DOCKER_REPO", "reg.example/t"), ("GOOS", "linux"), ("GOARCH", "arm"), ("GOARM", "6,softfloat")];
        let s = Settings::resolve(&opts(&env)).unwrap();
        assert_eq!(s.build.platforms, PlatformSelection::Only(vec![Platform::new("linux", "arm", Some("v6"))]));
        let env = [("KO_DOCKER_REPO", "reg.example/t"), ("GOOS", "linux"), ("GOARCH", "amd64"), ("GOARM", "7")];
        let s = Settings::resolve(&opts(&env)).unwrap();
        assert_eq!(s.build.platforms, PlatformSelection::Only(vec![Platform::new("linux", "amd64", None)]));
        let e = Settings::resolve(&Options {
            platforms: vec!["linux/arm/v9".into()],
            ..opts(&[("KO_DOCKER_REPO", "r.example/t")])
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("invalid platform \"linux/arm/v9\"") && e.contains("v5, v6 and v7"), "{e}");
    }

    #[test]
    fn source_date_epoch_must_fit_rfc3339() {
        for bad in ["253402300800000", "253402300800", "-1", "soon", "1e9"] {
            let e =
                Settings::resolve(&opts(&[("KO_DOCKER_REPO", "r.example/t"), ("SOURCE_DATE_EPOCH", bad)])).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Config, "{bad}");
            assert!(e.to_string().contains("between 0 and 253402300799 (9999-12-31T23:59:59Z)"), "{bad}: {e}");
        }
        let s = Settings::resolve(&opts(&[("KO_DOCKER_REPO", "r.example/t"), ("SOURCE_DATE_EPOCH", "253402300799")]))
            .unwrap();
        assert_eq!(s.build.source_epoch, Some(253_402_300_799));
        let e =
            Settings::resolve(&opts(&[("KO_DOCKER_REPO", "r.example/t"), ("KO_DATA_DATE_EPOCH", "-5")])).unwrap_err();
        assert!(e.to_string().starts_with("KO_DATA_DATE_EPOCH=\"-5\""), "{e}");
    }

    #[test]
    fn sboms_are_on_unless_none() {
        let sbom = |v: Option<&str>| {
            let o = Options { sbom: v.map(str::to_string), push: Some(false), ..opts(&[]) };
            Settings::resolve(&o).unwrap().build.sbom
        };
        assert!(sbom(None), "SPDX by default, as upstream");
        assert!(sbom(Some("spdx")));
        assert!(!sbom(Some("none")));
        assert!(sbom(Some("cyclonedx")), "anything else is SPDX, as upstream");
        let o = Options { push: Some(false), ..opts(&[("COSIGN_REPOSITORY", "reg.example/sboms")]) };
        let repo = Settings::resolve(&o).unwrap().publish.sbom_repository.map(|r| r.to_string());
        assert_eq!(repo.as_deref(), Some("reg.example/sboms"));
    }

    #[test]
    fn not_supported_paths_are_unsupported() {
        for repo in ["kind.local", "kind.local/team"] {
            let o = Options { front_end: FrontEnd::Cli, ..opts(&[("KO_DOCKER_REPO", repo)]) };
            let e = Settings::resolve(&o).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Unsupported, "{repo}");
            assert!(e.to_string().contains("-L/--local) and then run `kind load docker-image"), "{e}");
        }
        let o = opts(&[]);
        assert_eq!(Settings::resolve(&o).unwrap_err().kind(), crate::ErrorKind::Config, "no KO_DOCKER_REPO");
    }

    #[test]
    fn local_loads_into_the_docker_engine_as_upstream() {
        let local = |o: Options| {
            let p = Settings::resolve(&o).unwrap().publish;
            (p.local, p.destination.repository.to_string())
        };
        assert_eq!(local(Options { local: true, ..opts(&[]) }), (true, "ko.local".into()), "no KO_DOCKER_REPO needed");
        assert_eq!(local(opts(&[("KO_DOCKER_REPO", "ko.local")])), (true, "ko.local".into()));
        assert_eq!(local(opts(&[("KO_DOCKER_REPO", "ko.local/team")])), (true, "ko.local/team".into()));
        assert_eq!(
            local(Options { local: true, ..opts(&[("KO_DOCKER_REPO", "reg.example/team")]) }),
            (true, "reg.example/team".into()),
            "-L names images under KO_DOCKER_REPO in the engine"
        );
        assert_eq!(local(opts(&[("KO_DOCKER_REPO", "ko.localhost:5000/x")])), (false, "ko.localhost:5000/x".into()));
    }
}
