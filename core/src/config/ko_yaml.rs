//! `.ko.yaml` as upstream reads it: found through the `config_path` option, `KO_CONFIG_PATH` or in
//! the working directory; every top-level key also read from `KO_<KEY>` (upstream's viper
//! `AutomaticEnv`), which wins over the file. Keys match case-insensitively, as viper's do.
//!
//! The file is read into a tree that knows every node's line and column ([`super::yaml_tree`]),
//! then decoded here field by field, so that an unknown key (with the nearest valid name) or a
//! value of the wrong shape (with the shape expected and an example) is reported as
//! `file:line:column`. Those are warnings, and the value is ignored, as upstream's viper ignores
//! what it cannot use; with `KO_STRICT_CONFIG=1` they are errors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::yaml_tree::{self, Node, ScalarKind, Value};
use crate::builder::caps::FileCaps;
use crate::env::Env;
use crate::error::{Error, Result};

/// The parsed `.ko.yaml`, with environment overrides applied.
#[derive(Debug, Clone, Default)]
pub struct KoConfig {
    pub default_base_image: Option<String>,
    /// Keys are compared lower-cased, as upstream (viper lower-cases them).
    pub base_image_overrides: BTreeMap<String, String>,
    pub default_platforms: Vec<String>,
    /// `strict: false`: `resolve` also takes bare import paths of main packages (the 2018 mode).
    pub strict: Option<bool>,
    /// Environment for `go build` when a build has no `env` of its own (replaces, does not merge).
    pub default_env: Vec<String>,
    /// `go build` flags when a build has no `flags` of its own.
    pub default_flags: Vec<String>,
    /// Linker flags when a build has no `ldflags` of its own.
    pub default_ldflags: Vec<String>,
    /// `gzip` (default) or `zstd`: how ko compresses its layers (not upstream's; ko's own).
    pub layer_compression: Option<String>,
    /// Image settings for builds that set none of their own (`defaultImageEnv`, `defaultLabels`…).
    pub image_defaults: ImageConfig,
    /// Per-package build settings, as upstream's `builds:`.
    pub builds: Vec<BuildConfig>,
    /// Where the config came from, for error messages.
    pub source: Option<PathBuf>,
    /// `KO_STRICT_CONFIG=1`: problems with the config are errors, not warnings.
    pub strict_config: bool,
    /// The warnings reading the config gave (each `file:line:column: …`), in order.
    pub diagnostics: Vec<String>,
}

/// What a build (or the defaults) sets in the image config and manifest; issues #800, #1126,
/// #1018 and #323 upstream asked for these.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageConfig {
    /// `KEY=VALUE` entries for the config's `Env` (`imageEnv`).
    pub env: Vec<String>,
    /// Config `Labels`.
    pub labels: Vec<(String, String)>,
    /// Manifest (and index) annotations.
    pub annotations: Vec<(String, String)>,
    /// Config `User`.
    pub user: Option<String>,
    /// Config `Cmd`: the program's default arguments (`args`).
    pub args: Vec<String>,
    /// Arguments fixed after the binary in the config's `Entrypoint` (`entrypoint`).
    pub entrypoint: Vec<String>,
}

/// One entry of `builds:`: how to build the `main` package it names.
#[derive(Debug, Clone, Default)]
pub struct BuildConfig {
    /// Shown in the log (`Using build config <id> for <import path>`).
    pub id: Option<String>,
    /// Where `go` runs for this build, relative to the working directory (multi-module repos).
    pub dir: Option<String>,
    /// The package directory (or a `.go` file in it), relative to `dir`; default `.`.
    pub main: Option<String>,
    pub env: Vec<String>,
    /// A list, or one string split at white space.
    pub flags: Vec<String>,
    /// A list, or one string.
    pub ldflags: Vec<String>,
    /// File capabilities set on the binary (Linux images): names or `cap_from_text(3)` clauses.
    pub linux_capabilities: Vec<String>,
    /// Image settings for this build, over the defaults.
    pub image: ImageConfig,
    /// Its place in `builds:` (upstream's id when it has none is `#<index>`).
    pub index: usize,
    /// `builds[N] (id …)` and where the entry starts, for messages.
    pub name: String,
    pub at: String,
    /// Where `main` is written (else where the entry starts).
    pub main_at: String,
}

/// How a list-valued key takes one string instead of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Split {
    /// As one element (upstream's `StringArray`).
    Whole,
    /// At white space (upstream's `FlagArray`).
    Fields,
    /// At commas and white space (platform lists).
    Commas,
}

/// The shape a key's value must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Str,
    Bool,
    List(Split),
    Map,
    Builds,
}

/// A key ko reads, with what its value must look like.
struct Field {
    name: &'static str,
    shape: Shape,
    example: &'static str,
}

const fn field(name: &'static str, shape: Shape, example: &'static str) -> Field {
    Field { name, shape, example }
}

const TOP: &[Field] = &[
    field("defaultBaseImage", Shape::Str, "defaultBaseImage: cgr.dev/chainguard/static"),
    field(
        "baseImageOverrides",
        Shape::Map,
        "baseImageOverrides: {example.com/app/cmd/tool: registry.example.com/base:debug}",
    ),
    field("defaultPlatforms", Shape::List(Split::Commas), "defaultPlatforms: [linux/amd64, linux/arm64]"),
    field("strict", Shape::Bool, "strict: false"),
    field("defaultEnv", Shape::List(Split::Whole), "defaultEnv: [GOPRIVATE=example.com]"),
    field("defaultFlags", Shape::List(Split::Fields), "defaultFlags: [-tags, netgo]"),
    field("defaultLdflags", Shape::List(Split::Whole), "defaultLdflags: [-s -w]"),
    field("layerCompression", Shape::Str, "layerCompression: zstd"),
    field("defaultImageEnv", Shape::List(Split::Whole), "defaultImageEnv: [LOG_LEVEL=info]"),
    field("defaultLabels", Shape::Map, "defaultLabels: {org.opencontainers.image.source: https://example.com/app}"),
    field("defaultAnnotations", Shape::Map, "defaultAnnotations: {example.com/team: web}"),
    field("defaultUser", Shape::Str, "defaultUser: \"65532\""),
    field("defaultArgs", Shape::List(Split::Fields), "defaultArgs: [--port=8080]"),
    field("defaultEntrypoint", Shape::List(Split::Fields), "defaultEntrypoint: [--log-format=json]"),
    field("builds", Shape::Builds, "builds: [{id: server, main: ./cmd/server}]"),
];

const BUILD: &[Field] = &[
    field("id", Shape::Str, "id: server"),
    field("dir", Shape::Str, "dir: ./services/api"),
    field("main", Shape::Str, "main: ./cmd/server"),
    field("env", Shape::List(Split::Whole), "env: [CGO_ENABLED=0]"),
    field("flags", Shape::List(Split::Fields), "flags: [-tags, netgo]"),
    field("ldflags", Shape::List(Split::Whole), "ldflags: [-s -w, -X main.version={{.Env.VERSION}}]"),
    field("linux_capabilities", Shape::List(Split::Fields), "linux_capabilities: [net_bind_service]"),
    field("imageEnv", Shape::List(Split::Whole), "imageEnv: [LOG_LEVEL=debug]"),
    field("labels", Shape::Map, "labels: {org.opencontainers.image.title: server}"),
    field("annotations", Shape::Map, "annotations: {example.com/owner: web}"),
    field("user", Shape::Str, "user: \"65532:65532\""),
    field("args", Shape::List(Split::Fields), "args: [--port=8080]"),
    field("entrypoint", Shape::List(Split::Fields), "entrypoint: [--log-format=json]"),
];

/// GoReleaser build settings upstream leaves out of its `builds:` (`pkg/build/config.go`).
const GORELEASER_ONLY: &[&str] = &[
    "goos",
    "goarch",
    "goarm",
    "gomips",
    "targets",
    "binary",
    "lang",
    "asmflags",
    "gcflags",
    "mod_timestamp",
    "gobinary",
];

impl KoConfig {
    /// Loads `.ko.yaml` from `config_path` (a file or a directory holding `.ko.yaml`), else
    /// `KO_CONFIG_PATH`, else `<working_dir>/.ko.yaml`; a missing default file is fine. Then
    /// applies `KO_<KEY>` from `env`, and reports what it found wrong: as warnings, or as one
    /// error under `KO_STRICT_CONFIG=1`. `option` names the `config_path` option as the user's
    /// front end spells it.
    pub fn load(config_path: Option<&Path>, working_dir: &Path, env: &Env, option: &str) -> Result<Self> {
        let explicit = config_path.map(Path::to_path_buf).or_else(|| env.path("KO_CONFIG_PATH"));
        let path = match &explicit {
            Some(p) => {
                let p = if p.is_absolute() { p.clone() } else { working_dir.join(p) };
                if p.is_dir() { p.join(".ko.yaml") } else { p }
            }
            None => working_dir.join(".ko.yaml"),
        };
        // Opened as kodata is: a FIFO named by KO_CONFIG_PATH must not block ko where no cancel reaches.
        let read = crate::files::read_regular(&path).and_then(|bytes| {
            String::from_utf8(bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
        });
        let mut config = match read {
            Ok(text) => Self::parse(&text, &path)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => KoConfig::default(),
            Err(e) => {
                return Err(Error::config(format!(
                    "cannot read config {} (named by KO_CONFIG_PATH or {option}): {e}",
                    path.display()
                )));
            }
        };
        config.apply_env(env)?;
        config.strict_config = env.get("KO_STRICT_CONFIG").is_some_and(|v| parse_bool(&v) == Some(true));
        if config.strict_config && !config.diagnostics.is_empty() {
            return Err(Error::config(format!(
                "{} (KO_STRICT_CONFIG is set: fix these, or unset it to only warn)",
                config.diagnostics.join("\n")
            )));
        }
        for d in &config.diagnostics {
            tracing::warn!("{d}");
        }
        Ok(config)
    }

    /// Parses `.ko.yaml` text read from `path`. Syntax errors and invalid capabilities are
    /// errors; unknown keys and values of the wrong shape are collected in `diagnostics`.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let name = path.display().to_string();
        let mut config = KoConfig { source: Some(path.to_path_buf()), ..KoConfig::default() };
        let Some(root) = yaml_tree::parse(text, &name)? else { return Ok(config) };
        let mut d = Decoder { origin: Origin::File(name), diagnostics: Vec::new() };
        match &root.value {
            Value::Map(entries) => {
                let mut seen: Vec<(&str, String)> = Vec::new();
                for (key, value) in entries {
                    let Some(f) = d.key(key, TOP, None) else { continue };
                    if let Some((_, first)) = seen.iter().find(|(n, _)| *n == f.name) {
                        let message = format!("{} is set twice (first at {first}); the last one is used", f.name);
                        d.warn(key, message);
                    }
                    seen.push((f.name, d.at(key)));
                    config.set(&mut d, f, value)?;
                }
            }
            _ if root.is_null() => {}
            _ => d.warn(
                &root,
                format!("expected a map of settings (e.g. `{}`), found {}", TOP[0].example, root.describe()),
            ),
        }
        config.diagnostics = d.diagnostics;
        Ok(config)
    }

    /// `KO_<KEY>` for every top-level key (upstream's viper `AutomaticEnv`; an empty value is
    /// unset). Lists are split at white space, `KO_DEFAULTPLATFORMS` also at commas; maps are
    /// JSON (`{"k": "v"}`) or `k=v,k2=v2`; `KO_BUILDS` is a JSON (or YAML) list.
    fn apply_env(&mut self, env: &Env) -> Result<()> {
        for f in TOP {
            let var = format!("KO_{}", f.name.to_ascii_uppercase());
            let Some(text) = env.get(&var) else { continue };
            let mut d = Decoder { origin: Origin::Env(var.clone()), diagnostics: Vec::new() };
            let at = |value| Node { value, line: 1, column: 1 };
            let scalar = |text: &str, resolved| at(Value::Scalar(yaml_tree::Scalar { text: text.into(), resolved }));
            let node = match f.shape {
                Shape::Str => scalar(&text, false),
                Shape::Bool => scalar(&text, true),
                Shape::List(split) => {
                    let seps: &[char] =
                        if split == Split::Commas { &[',', ' ', '\t', '\n'] } else { &[' ', '\t', '\n'] };
                    let items = text.split(seps).filter(|s| !s.is_empty()).map(|s| scalar(s, false)).collect();
                    at(Value::Seq(items))
                }
                Shape::Map if !text.trim_start().starts_with('{') => {
                    let mut entries = Vec::new();
                    for pair in super::settings::parse_pairs(&super::KeyValues::flags([text.as_str()]), &var)? {
                        entries.push((scalar(&pair.0, false), scalar(&pair.1, false)));
                    }
                    at(Value::Map(entries))
                }
                Shape::Map | Shape::Builds => match yaml_tree::parse(&text, &var)? {
                    Some(node) => node,
                    None => continue,
                },
            };
            self.set(&mut d, f, &node)?;
            self.diagnostics.extend(d.diagnostics);
        }
        Ok(())
    }

    /// Sets top-level key `f` from `value`.
    fn set(&mut self, d: &mut Decoder, f: &Field, value: &Node) -> Result<()> {
        let path = f.name;
        match f.name {
            "defaultBaseImage" => set(&mut self.default_base_image, d.string(path, f, value)),
            "baseImageOverrides" => {
                if let Some(pairs) = d.map(path, f, value) {
                    self.base_image_overrides = pairs.into_iter().map(|(k, v)| (k.to_lowercase(), v)).collect();
                }
            }
            "defaultPlatforms" => set_list(&mut self.default_platforms, d.list(path, f, value)),
            "strict" => set(&mut self.strict, d.boolean(path, f, value)),
            "defaultEnv" => set_list(&mut self.default_env, d.list(path, f, value)),
            "defaultFlags" => set_list(&mut self.default_flags, d.list(path, f, value)),
            "defaultLdflags" => set_list(&mut self.default_ldflags, d.list(path, f, value)),
            "layerCompression" => set(&mut self.layer_compression, d.string(path, f, value)),
            "builds" => {
                if let Some(builds) = d.builds(value)? {
                    self.builds = builds;
                }
            }
            _ => d.image_setting(&mut self.image_defaults, f, path, value),
        }
        Ok(())
    }

    /// The base image for `import_path`: its override, else the default, else the built-in base.
    pub fn base_for(&self, import_path: &str) -> String {
        let key = import_path.trim_start_matches("ko://").to_lowercase();
        self.base_image_overrides
            .get(&key)
            .or(self.default_base_image.as_ref())
            .cloned()
            .unwrap_or_else(|| crate::image::static_base::NAME.to_string())
    }

    /// Reports a problem found after loading (a `builds:` entry naming no package): a warning,
    /// or under `KO_STRICT_CONFIG=1` an error.
    pub fn report(&self, problem: String) -> Result<()> {
        if self.strict_config {
            return Err(Error::config(format!(
                "{problem} (KO_STRICT_CONFIG is set: fix this, or unset it to only warn)"
            )));
        }
        tracing::warn!("{problem}");
        Ok(())
    }
}

fn set<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

fn set_list(slot: &mut Vec<String>, value: Option<Vec<String>>) {
    if let Some(v) = value {
        *slot = v;
    }
}

/// Go's `strconv.ParseBool`, which viper's `GetBool` uses.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Where the values being decoded come from.
enum Origin {
    File(String),
    Env(String),
}

/// Decodes nodes into values, collecting what it cannot use.
struct Decoder {
    origin: Origin,
    diagnostics: Vec<String>,
}

impl Decoder {
    /// `file:line:column`, or the variable's name.
    fn at(&self, n: &Node) -> String {
        match &self.origin {
            Origin::File(name) => format!("{name}:{}:{}", n.line, n.column),
            Origin::Env(var) => var.clone(),
        }
    }

    fn warn(&mut self, n: &Node, message: String) {
        let at = self.at(n);
        self.diagnostics.push(format!("{at}: {message}"));
    }

    /// The field `key` names among `fields` (case-insensitively, as viper and mapstructure
    /// match); unknown keys are reported with the nearest valid name. `within` names the
    /// `builds:` entry the key is in.
    fn key(&mut self, key: &Node, fields: &'static [Field], within: Option<&str>) -> Option<&'static Field> {
        let inside = within.map(|w| format!(" in {w}")).unwrap_or_default();
        let Value::Scalar(s) = &key.value else {
            self.warn(key, format!("keys{inside} must be names, found {}", key.describe()));
            return None;
        };
        if let Some(f) = fields.iter().find(|f| f.name.eq_ignore_ascii_case(&s.text)) {
            return Some(f);
        }
        let message = if within.is_some() && GORELEASER_ONLY.contains(&s.text.to_ascii_lowercase().as_str()) {
            format!("{}{inside} is a GoReleaser setting that ko does not support; remove it", s.text)
        } else {
            let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
            match nearest(&s.text, &names) {
                Some(best) => format!("unknown key {:?}{inside} (did you mean {best}?)", s.text),
                None => format!("unknown key {:?}{inside} (valid keys: {})", s.text, names.join(", ")),
            }
        };
        self.warn(key, message);
        None
    }

    fn wrong(&mut self, path: &str, f: &Field, n: &Node) {
        let expected = match f.shape {
            Shape::Str => "a string".to_string(),
            Shape::Bool => "true or false".to_string(),
            Shape::List(Split::Whole) => "a list of strings, or one string".to_string(),
            Shape::List(Split::Fields) => "a list of strings, or one string of space-separated words".to_string(),
            Shape::List(Split::Commas) => "a list of strings, or one comma-separated string".to_string(),
            Shape::Map => "a map of names to strings".to_string(),
            Shape::Builds => "a list of build entries (maps)".to_string(),
        };
        let found = n.describe();
        self.warn(n, format!("{path}: expected {expected}, e.g. `{}`; found {found}; ignoring it", f.example));
    }

    /// A scalar as text: strings, and numbers or booleans as written (`user: 65532`).
    fn string(&mut self, path: &str, f: &Field, n: &Node) -> Option<String> {
        match &n.value {
            _ if n.is_null() => None,
            Value::Scalar(s) => Some(s.text.clone()),
            _ => {
                self.wrong(path, f, n);
                None
            }
        }
    }

    fn boolean(&mut self, path: &str, f: &Field, n: &Node) -> Option<bool> {
        match &n.value {
            _ if n.is_null() => None,
            Value::Scalar(s) if matches!(s.kind(), ScalarKind::Bool | ScalarKind::Str) => {
                let value = parse_bool(&s.text);
                if value.is_none() {
                    self.wrong(path, f, n);
                }
                value
            }
            _ => {
                self.wrong(path, f, n);
                None
            }
        }
    }

    /// A list of scalars, or one string split as the field says. A lone number or boolean is
    /// refused: `defaultPlatforms: 5` is a mistake, not a platform.
    fn list(&mut self, path: &str, f: &Field, n: &Node) -> Option<Vec<String>> {
        let Shape::List(split) = f.shape else { unreachable!("list() of a {:?} field", f.shape) };
        match &n.value {
            _ if n.is_null() => None,
            Value::Scalar(s) if s.kind() == ScalarKind::Str => Some(match split {
                Split::Whole => vec![s.text.clone()],
                Split::Fields => s.text.split_whitespace().map(str::to_string).collect(),
                Split::Commas => s.text.split([',', ' ']).filter(|p| !p.is_empty()).map(str::to_string).collect(),
            }),
            Value::Seq(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    match &item.value {
                        Value::Scalar(s) if !item.is_null() => out.push(s.text.clone()),
                        _ => {
                            let found = item.describe();
                            self.warn(
                                item,
                                format!("{path}: list entries must be strings, found {found}; ignoring it"),
                            );
                        }
                    }
                }
                Some(out)
            }
            _ => {
                self.wrong(path, f, n);
                None
            }
        }
    }

    /// A map of scalars to scalars, or a list of `key=value` strings.
    fn map(&mut self, path: &str, f: &Field, n: &Node) -> Option<Vec<(String, String)>> {
        match &n.value {
            _ if n.is_null() => None,
            Value::Map(entries) => {
                let mut out = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    match (&k.value, &v.value) {
                        (Value::Scalar(k), Value::Scalar(s)) => {
                            out.push((k.text.clone(), if v.is_null() { String::new() } else { s.text.clone() }))
                        }
                        _ => {
                            let found = v.describe();
                            self.warn(v, format!("{path}: values must be strings, found {found}; ignoring it"));
                        }
                    }
                }
                Some(out)
            }
            Value::Seq(items) if f.name != "baseImageOverrides" => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    match &item.value {
                        Value::Scalar(s) if s.text.contains('=') => {
                            let (k, v) = s.text.split_once('=').expect("contains =");
                            out.push((k.to_string(), v.to_string()));
                        }
                        _ => {
                            let found = item.describe();
                            self.warn(item, format!("{path}: expected key=value, found {found}; ignoring it"));
                        }
                    }
                }
                Some(out)
            }
            _ => {
                self.wrong(path, f, n);
                None
            }
        }
    }

    /// The `builds:` list.
    fn builds(&mut self, n: &Node) -> Result<Option<Vec<BuildConfig>>> {
        let f = TOP.iter().find(|f| f.name == "builds").expect("builds is a key");
        let items = match &n.value {
            _ if n.is_null() => return Ok(None),
            Value::Seq(items) => items,
            _ => {
                self.wrong("builds", f, n);
                return Ok(None);
            }
        };
        let mut builds = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let Value::Map(entries) = &item.value else {
                let found = item.describe();
                self.warn(
                    item,
                    format!("builds[{i}]: expected a map (e.g. `- main: ./cmd/server`), found {found}; ignoring it"),
                );
                continue;
            };
            // The id names the entry in messages about its other keys, wherever it is written.
            let id = entries.iter().find_map(|(k, v)| match (&k.value, &v.value) {
                (Value::Scalar(k), Value::Scalar(v)) if k.text.eq_ignore_ascii_case("id") && !v.text.is_empty() => {
                    Some(v.text.clone())
                }
                _ => None,
            });
            let name = match &id {
                Some(id) => format!("builds[{i}] (id {id})"),
                None => format!("builds[{i}]"),
            };
            let mut b = BuildConfig {
                index: i,
                name: name.clone(),
                at: self.at(item),
                main_at: self.at(item),
                ..Default::default()
            };
            for (key, value) in entries {
                let Some(f) = self.key(key, BUILD, Some(&name)) else { continue };
                let path = format!("{name}.{}", f.name);
                match f.name {
                    "id" => b.id = self.string(&path, f, value),
                    "dir" => b.dir = self.string(&path, f, value),
                    "main" => {
                        b.main = self.string(&path, f, value);
                        b.main_at = self.at(value);
                    }
                    "env" => set_list(&mut b.env, self.list(&path, f, value)),
                    "flags" => set_list(&mut b.flags, self.list(&path, f, value)),
                    "ldflags" => set_list(&mut b.ldflags, self.list(&path, f, value)),
                    "linux_capabilities" => {
                        if let Some(terms) = self.list(&path, f, value) {
                            // An unknown capability would build an image that fails at run
                            // time: an error, as upstream's build fails.
                            FileCaps::parse(&terms)
                                .map_err(|e| Error::config(format!("{}: {path}: {}", self.at(value), e.message())))?;
                            b.linux_capabilities = terms;
                        }
                    }
                    _ => self.image_setting(&mut b.image, f, &path, value),
                }
            }
            builds.push(b);
        }
        Ok(Some(builds))
    }

    /// One of the image settings (`imageEnv`, `labels`, … or their `default…` forms).
    fn image_setting(&mut self, image: &mut ImageConfig, f: &Field, path: &str, value: &Node) {
        let key = f.name.strip_prefix("default").unwrap_or(f.name).to_ascii_lowercase();
        match key.as_str() {
            "imageenv" => {
                let entries = self.list(path, f, value).map(|entries| {
                    // `FOO` alone would replace the base's `FOO=bar` with nothing at all.
                    let (kept, bare): (Vec<String>, Vec<String>) = entries.into_iter().partition(|e| e.contains('='));
                    for entry in bare {
                        self.warn(
                            value,
                            format!("{path}: {entry:?} is not KEY=VALUE (e.g. LOG_LEVEL=debug); ignoring it"),
                        );
                    }
                    kept
                });
                set_list(&mut image.env, entries)
            }
            "labels" => {
                if let Some(pairs) = self.map(path, f, value) {
                    image.labels = pairs;
                }
            }
            "annotations" => {
                if let Some(pairs) = self.map(path, f, value) {
                    image.annotations = pairs;
                }
            }
            "user" => set(&mut image.user, self.string(path, f, value)),
            "args" => set_list(&mut image.args, self.list(path, f, value)),
            "entrypoint" => set_list(&mut image.entrypoint, self.list(path, f, value)),
            other => unreachable!("no image setting {other}"),
        }
    }
}

/// The name in `names` closest to `wrong` (case-insensitive edit distance), if close enough to
/// be what was meant.
fn nearest<'a>(wrong: &str, names: &[&'a str]) -> Option<&'a str> {
    let wrong = wrong.to_ascii_lowercase();
    let (best, distance) =
        names.iter().map(|n| (*n, edit_distance(&wrong, &n.to_ascii_lowercase()))).min_by_key(|(_, d)| *d)?;
    let contains = best.to_ascii_lowercase().contains(&wrong) || wrong.contains(&best.to_ascii_lowercase());
    (distance <= (best.len() / 3).max(2) || (contains && wrong.len() >= 3)).then_some(best)
}

/// Levenshtein distance.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1).min(row[j] + 1).min(diagonal + usize::from(ca != *cb));
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> KoConfig {
        KoConfig::parse(text, Path::new("/x/.ko.yaml")).unwrap()
    }

    #[test]
    fn parses_ko_yaml_like_upstream() {
        let text = "defaultBaseImage: registry.example/base:1\nbaseImageOverrides:\n  Example.com/App/cmd/X: other/base\ndefaultPlatforms: linux/arm64,linux/amd64\n";
        let c = parse(text);
        assert_eq!(c.base_for("ko://example.com/app/cmd/x"), "other/base");
        assert_eq!(c.base_for("example.com/app/cmd/y"), "registry.example/base:1");
        assert_eq!(c.default_platforms, ["linux/arm64", "linux/amd64"]);
        assert_eq!(KoConfig::default().base_for("a/b"), "static");
        assert!(c.diagnostics.is_empty(), "{:?}", c.diagnostics);
        let c = parse("DefaultBaseImage: a/b\ndefaultplatforms: [linux/arm64]\n");
        assert_eq!(c.default_base_image.as_deref(), Some("a/b"), "keys match case-insensitively, as viper's");
        assert_eq!(c.default_platforms, ["linux/arm64"]);
        assert!(c.diagnostics.is_empty(), "{:?}", c.diagnostics);
        assert!(parse("").diagnostics.is_empty());
    }

    #[test]
    fn parses_builds_like_upstream() {
        let text = "defaultFlags: -tags netgo\ndefaultLdflags: -s -w\nbuilds:\n- id: app\n  main: ./cmd/app\n  flags: [-v]\n  ldflags: [\"-X main.v={{.Env.V}}\"]\n  env: [A=b]\n  linux_capabilities: net_bind_service chown\n";
        let c = parse(text);
        assert_eq!(c.default_flags, ["-tags", "netgo"]);
        assert_eq!(c.default_ldflags, ["-s -w"]);
        let b = &c.builds[0];
        assert_eq!(b.id.as_deref(), Some("app"));
        assert_eq!(b.ldflags, ["-X main.v={{.Env.V}}"]);
        assert_eq!(b.env, ["A=b"]);
        assert_eq!(b.linux_capabilities, ["net_bind_service", "chown"]);
        assert_eq!((b.name.as_str(), b.main_at.as_str()), ("builds[0] (id app)", "/x/.ko.yaml:5:9"));
        let err = KoConfig::parse("builds:\n- main: .\n  linux_capabilities: [cap_flying]\n", Path::new("/x/.ko.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("/x/.ko.yaml:3:23: builds[0].linux_capabilities: unknown capability"), "{err}");
    }

    #[test]
    fn image_settings_per_build_and_as_defaults() {
        let text = "defaultImageEnv: [A=1]\ndefaultLabels: {team: web}\ndefaultUser: 65532\ndefaultArgs: --port=1 -v\nbuilds:\n- main: .\n  imageEnv: [B=2]\n  labels: [tier=x]\n  annotations: {note: hi}\n  user: \"1000\"\n  args: [serve]\n  entrypoint: [--json]\n";
        let c = parse(text);
        assert!(c.diagnostics.is_empty(), "{:?}", c.diagnostics);
        let d = &c.image_defaults;
        assert_eq!(d.env, ["A=1"]);
        assert_eq!(d.labels, [("team".to_string(), "web".to_string())]);
        assert_eq!(d.user.as_deref(), Some("65532"), "a number is read as written");
        assert_eq!(d.args, ["--port=1", "-v"]);
        let b = &c.builds[0].image;
        assert_eq!(b.env, ["B=2"]);
        assert_eq!(b.labels, [("tier".to_string(), "x".to_string())]);
        assert_eq!(b.annotations, [("note".to_string(), "hi".to_string())]);
        assert_eq!(
            (b.user.as_deref(), b.args.as_slice(), b.entrypoint.as_slice()),
            (Some("1000"), &["serve".to_string()][..], &["--json".to_string()][..])
        );
    }

    #[test]
    fn unknown_keys_are_reported_with_a_suggestion() {
        let c = parse("defaultBaseImg: x\nbuilds:\n- main: .\n  ldflag: -s\n  goos: [linux]\nfoo: 1\n");
        assert_eq!(
            c.diagnostics,
            [
                "/x/.ko.yaml:1:1: unknown key \"defaultBaseImg\" (did you mean defaultBaseImage?)",
                "/x/.ko.yaml:4:3: unknown key \"ldflag\" in builds[0] (did you mean ldflags?)",
                "/x/.ko.yaml:5:3: goos in builds[0] is a GoReleaser setting that ko does not support; remove it",
                "/x/.ko.yaml:6:1: unknown key \"foo\" (valid keys: defaultBaseImage, baseImageOverrides, defaultPlatforms, strict, defaultEnv, defaultFlags, defaultLdflags, layerCompression, defaultImageEnv, defaultLabels, defaultAnnotations, defaultUser, defaultArgs, defaultEntrypoint, builds)",
            ]
        );
        assert_eq!(c.default_base_image, None, "an unknown key sets nothing");
    }

    /// Issue 14's cases: each names the key, the place and the shape expected, with an example.
    #[test]
    fn wrong_types_name_key_place_and_shape() {
        let c = parse(
            "defaultPlatforms: 5\nbaseImageOverrides:\n- a\nbuilds:\n- id: x\n  ldflags: {a: 1}\nstrict: maybe\n",
        );
        assert_eq!(
            c.diagnostics,
            [
                "/x/.ko.yaml:1:19: defaultPlatforms: expected a list of strings, or one comma-separated string, e.g. `defaultPlatforms: [linux/amd64, linux/arm64]`; found an integer (5); ignoring it",
                "/x/.ko.yaml:3:3: baseImageOverrides: expected a map of names to strings, e.g. `baseImageOverrides: {example.com/app/cmd/tool: registry.example.com/base:debug}`; found a list; ignoring it",
                "/x/.ko.yaml:6:12: builds[0] (id x).ldflags: expected a list of strings, or one string, e.g. `ldflags: [-s -w, -X main.version={{.Env.VERSION}}]`; found a map; ignoring it",
                "/x/.ko.yaml:7:9: strict: expected true or false, e.g. `strict: false`; found a string (\"maybe\"); ignoring it",
            ]
        );
        assert!(c.default_platforms.is_empty() && c.base_image_overrides.is_empty() && c.builds[0].ldflags.is_empty());
        let c = parse("- just\n- a list\n");
        assert!(c.diagnostics[0].starts_with("/x/.ko.yaml:1:1: expected a map of settings"), "{:?}", c.diagnostics);
        let c = parse("builds: [./cmd/x]\ndefaultEnv: [[A]]\n");
        assert!(
            c.diagnostics[0].contains("builds[0]: expected a map (e.g. `- main: ./cmd/server`), found a string"),
            "{:?}",
            c.diagnostics
        );
        assert!(
            c.diagnostics[1].contains("defaultEnv: list entries must be strings, found a list"),
            "{:?}",
            c.diagnostics
        );
    }

    #[test]
    fn an_image_env_entry_without_a_value_is_ignored_with_a_warning() {
        let c = parse("defaultImageEnv: [A=1, BARE, B=]\n");
        assert_eq!(c.image_defaults.env, ["A=1", "B="]);
        assert_eq!(
            c.diagnostics,
            ["/x/.ko.yaml:1:18: defaultImageEnv: \"BARE\" is not KEY=VALUE (e.g. LOG_LEVEL=debug); ignoring it"]
        );
    }

    #[test]
    fn every_top_level_key_is_read_from_ko_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".ko.yaml"), "defaultBaseImage: from/file\ndefaultEnv: [FROM=file]\n").unwrap();
        let env = Env::from_map([
            ("KO_DEFAULTPLATFORMS", "linux/arm64, linux/amd64 linux/386"),
            ("KO_DEFAULTENV", "A=1 B=2"),
            ("KO_DEFAULTFLAGS", "-tags netgo"),
            ("KO_DEFAULTLDFLAGS", "-s -w"),
            ("KO_BASEIMAGEOVERRIDES", r#"{"Example.com/X": "b/x"}"#),
            ("KO_STRICT", "false"),
            ("KO_LAYERCOMPRESSION", "zstd"),
            ("KO_DEFAULTLABELS", "team=web,tier=a"),
            ("KO_DEFAULTUSER", "nobody"),
            ("KO_BUILDS", r#"[{"id": "e", "main": "./cmd/e"}]"#),
        ]);
        let c = KoConfig::load(None, dir.path(), &env, "config_path").unwrap();
        assert_eq!(c.default_base_image.as_deref(), Some("from/file"));
        assert_eq!(c.default_platforms, ["linux/arm64", "linux/amd64", "linux/386"]);
        assert_eq!(c.default_env, ["A=1", "B=2"], "KO_DEFAULTENV wins over the file");
        assert_eq!(c.default_flags, ["-tags", "netgo"]);
        assert_eq!(c.default_ldflags, ["-s", "-w"]);
        assert_eq!(c.base_for("example.com/x"), "b/x");
        assert_eq!(c.strict, Some(false));
        assert_eq!(c.layer_compression.as_deref(), Some("zstd"));
        assert_eq!(c.image_defaults.labels, [("team".into(), "web".into()), ("tier".into(), "a".into())]);
        assert_eq!(c.image_defaults.user.as_deref(), Some("nobody"));
        assert_eq!(c.builds[0].id.as_deref(), Some("e"));
        let env = Env::from_map([("KO_CONFIG_PATH", "missing.yaml")]);
        let err = KoConfig::load(None, dir.path(), &env, "config_path=").unwrap_err().to_string();
        assert!(err.contains("KO_CONFIG_PATH or config_path="), "{err}");
        let env = Env::from_map([("KO_STRICT", "maybe")]);
        let c = KoConfig::load(None, dir.path(), &env, "config_path").unwrap();
        assert_eq!(
            c.diagnostics,
            [
                "KO_STRICT: strict: expected true or false, e.g. `strict: false`; found a string (\"maybe\"); ignoring it"
            ]
        );
    }

    #[test]
    fn strict_config_turns_warnings_into_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".ko.yaml"), "defaultBaseImag: x\n").unwrap();
        let lax = KoConfig::load(None, dir.path(), &Env::default(), "config_path").unwrap();
        assert_eq!(lax.diagnostics.len(), 1);
        let env = Env::from_map([("KO_STRICT_CONFIG", "1")]);
        let err = KoConfig::load(None, dir.path(), &env, "config_path").unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Config);
        assert!(
            err.to_string().contains(".ko.yaml:1:1: unknown key \"defaultBaseImag\" (did you mean defaultBaseImage?)"),
            "{err}"
        );
        assert!(err.to_string().contains("KO_STRICT_CONFIG is set"), "{err}");
    }

    #[test]
    fn bad_yaml_names_file_and_line() {
        let err = KoConfig::parse("defaultBaseImage: [unclosed\n", Path::new("/x/.ko.yaml")).unwrap_err();
        assert!(err.to_string().starts_with("/x/.ko.yaml:"), "{err}");
        let c = parse("defaultPlatforms: {a: 1}\ndefaultPlatforms: [linux/arm64]\n");
        assert!(c.diagnostics[0].starts_with("/x/.ko.yaml:1:19: defaultPlatforms: expected"), "{:?}", c.diagnostics);
        assert!(
            c.diagnostics[1].contains("defaultPlatforms is set twice (first at /x/.ko.yaml:1:1)"),
            "{:?}",
            c.diagnostics
        );
        assert_eq!(c.default_platforms, ["linux/arm64"]);
    }

    #[test]
    fn suggestions_are_near_misses_only() {
        let names = ["defaultBaseImage", "builds", "defaultPlatforms"];
        assert_eq!(nearest("defaultbaseimg", &names), Some("defaultBaseImage"));
        assert_eq!(nearest("build", &names), Some("builds"));
        assert_eq!(nearest("platforms", &names), Some("defaultPlatforms"));
        assert_eq!(nearest("zzz", &names), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
