//! `.ko.yaml` as upstream reads it: found through the `config_path` option, `KO_CONFIG_PATH` or in
//! the working directory, with `KO_<KEY>` environment overrides.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::env::Env;
use crate::error::{Error, Result};

/// The parsed `.ko.yaml`, with environment overrides applied.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KoConfig {
    pub default_base_image: Option<String>,
    /// Keys are compared lower-cased, as upstream (viper lower-cases them).
    #[serde(default)]
    pub base_image_overrides: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "string_or_list")]
    pub default_platforms: Vec<String>,
    /// `strict: false`: `resolve` also takes bare import paths of main packages (the 2018 mode).
    pub strict: Option<bool>,
    /// Environment for `go build` when a build has no `env` of its own (replaces, does not merge).
    #[serde(default)]
    pub default_env: Vec<String>,
    /// `go build` flags when a build has no `flags` of its own.
    #[serde(default, deserialize_with = "flag_list")]
    pub default_flags: Vec<String>,
    /// Linker flags when a build has no `ldflags` of its own.
    #[serde(default, deserialize_with = "string_list")]
    pub default_ldflags: Vec<String>,
    /// `gzip` (default) or `zstd`: how ko compresses its layers (not upstream's; ko's own).
    pub layer_compression: Option<String>,
    /// Per-package build settings, as upstream's `builds:`.
    #[serde(default)]
    pub builds: Vec<BuildConfig>,
    /// Where the config came from, for error messages.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// One entry of `builds:`: how to build the `main` package it names.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildConfig {
    /// Shown in the log (`Using build config <id> for <import path>`).
    pub id: Option<String>,
    /// Where `go` runs for this build, relative to the working directory (multi-module repos).
    pub dir: Option<String>,
    /// The package directory (or a `.go` file in it), relative to `dir`; default `.`.
    pub main: Option<String>,
    #[serde(default)]
    pub env: Vec<String>,
    /// A list, or one string split at white space.
    #[serde(default, deserialize_with = "flag_list")]
    pub flags: Vec<String>,
    /// A list, or one string.
    #[serde(default, deserialize_with = "string_list")]
    pub ldflags: Vec<String>,
    /// Upstream sets file capabilities on the binary; not supported here (refused when set).
    #[serde(default, rename = "linux_capabilities", deserialize_with = "flag_list")]
    pub linux_capabilities: Vec<String>,
}

impl KoConfig {
    /// Loads `.ko.yaml` from `config_path` (a file or a directory holding `.ko.yaml`), else
    /// `KO_CONFIG_PATH`, else `<working_dir>/.ko.yaml`; a missing default file is fine.
    /// Then applies `KO_DEFAULTBASEIMAGE` and `KO_DEFAULTPLATFORMS` from `env`.
    /// `option` names the `config_path` option as the user's front end spells it.
    pub fn load(config_path: Option<&Path>, working_dir: &Path, env: &Env, option: &str) -> Result<Self> {
        let explicit = config_path.map(Path::to_path_buf).or_else(|| env.path("KO_CONFIG_PATH"));
        let path = match &explicit {
            Some(p) => {
                let p = if p.is_absolute() { p.clone() } else { working_dir.join(p) };
                if p.is_dir() { p.join(".ko.yaml") } else { p }
            }
            None => working_dir.join(".ko.yaml"),
        };
        let mut config = match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text, &path)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => KoConfig::default(),
            Err(e) => {
                return Err(Error::config(format!(
                    "cannot read config {} (named by KO_CONFIG_PATH or {option}): {e}",
                    path.display()
                )));
            }
        };
        if let Some(base) = env.get("KO_DEFAULTBASEIMAGE") {
            config.default_base_image = Some(base);
        }
        if let Some(p) = env.get("KO_DEFAULTPLATFORMS") {
            config.default_platforms = p.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        }
        Ok(config)
    }

    /// Parses `.ko.yaml` text read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(|e| yaml_error(path, e))?;
        let mut config: KoConfig = match value {
            serde_yaml_ng::Value::Null => KoConfig::default(),
            v => serde_yaml_ng::from_value(v).map_err(|e| yaml_error(path, e))?,
        };
        config.base_image_overrides =
            config.base_image_overrides.into_iter().map(|(k, v)| (k.to_lowercase(), v)).collect();
        config.source = Some(path.to_path_buf());
        if let Some(b) = config.builds.iter().find(|b| !b.linux_capabilities.is_empty()) {
            return Err(Error::unsupported(format!(
                "{}: build {:?} sets linux_capabilities, which this version of ko does not support; remove it",
                path.display(),
                b.id.as_deref().unwrap_or("")
            )));
        }
        Ok(config)
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
}

fn yaml_error(path: &Path, e: serde_yaml_ng::Error) -> Error {
    let at = e.location().map(|l| format!(":{}:{}", l.line(), l.column())).unwrap_or_default();
    Error::config(format!("{}{at}: {e}", path.display())).with_source(e)
}

fn string_or_list<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => Vec::new(),
        Some(OneOrMany::One(s)) => s.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
        Some(OneOrMany::Many(v)) => v,
    })
}

/// A list of strings, or one string taken as a single element (upstream's `StringArray`).
fn string_list<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => Vec::new(),
        Some(OneOrMany::One(s)) => vec![s],
        Some(OneOrMany::Many(v)) => v,
    })
}

/// A list of strings, or one string split at white space (upstream's `FlagArray`).
fn flag_list<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => Vec::new(),
        Some(OneOrMany::One(s)) => s.split_whitespace().map(str::to_string).collect(),
        Some(OneOrMany::Many(v)) => v,
    })
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ko_yaml_like_upstream() {
        let text = "defaultBaseImage: registry.example/base:1\nbaseImageOverrides:\n  Example.com/App/cmd/X: other/base\ndefaultPlatforms: linux/arm64,linux/amd64\n";
        let c = KoConfig::parse(text, Path::new(".ko.yaml")).unwrap();
        assert_eq!(c.base_for("ko://example.com/app/cmd/x"), "other/base");
        assert_eq!(c.base_for("example.com/app/cmd/y"), "registry.example/base:1");
        assert_eq!(c.default_platforms, ["linux/arm64", "linux/amd64"]);
        assert_eq!(KoConfig::default().base_for("a/b"), "static");
    }

    #[test]
    fn parses_builds_like_upstream() {
        let text = "defaultFlags: -tags netgo\ndefaultLdflags: -s -w\nbuilds:\n- id: app\n  main: ./cmd/app\n  flags: [-v]\n  ldflags: [\"-X main.v={{.Env.V}}\"]\n  env: [A=b]\n";
        let c = KoConfig::parse(text, Path::new(".ko.yaml")).unwrap();
        assert_eq!(c.default_flags, ["-tags", "netgo"]);
        assert_eq!(c.default_ldflags, ["-s -w"]);
        assert_eq!(c.builds[0].id.as_deref(), Some("app"));
        assert_eq!(c.builds[0].ldflags, ["-X main.v={{.Env.V}}"]);
        assert_eq!(c.builds[0].env, ["A=b"]);
        let caps = "builds:\n- main: .\n  linux_capabilities: bpf\n";
        let err = KoConfig::parse(caps, Path::new(".ko.yaml")).unwrap_err();
        assert!(err.to_string().contains("linux_capabilities"), "{err}");
        assert_eq!(err.kind(), crate::ErrorKind::Unsupported);
    }

    #[test]
    fn environment_overrides_come_from_the_session_env() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".ko.yaml"), "defaultBaseImage: from/file\n").unwrap();
        let env = Env::from_map([("KO_DEFAULTPLATFORMS", "linux/arm64, linux/amd64")]);
        let c = KoConfig::load(None, dir.path(), &env, "config_path").unwrap();
        assert_eq!(c.default_base_image.as_deref(), Some("from/file"));
        assert_eq!(c.default_platforms, ["linux/arm64", "linux/amd64"]);
        let env = Env::from_map([("KO_CONFIG_PATH", "missing.yaml")]);
        let err = KoConfig::load(None, dir.path(), &env, "config_path=").unwrap_err().to_string();
        assert!(err.contains("KO_CONFIG_PATH or config_path="), "{err}");
    }

    #[test]
    fn bad_yaml_names_file_and_line() {
        let err = KoConfig::parse("defaultBaseImage: [unclosed\n", Path::new("/x/.ko.yaml")).unwrap_err();
        assert!(err.to_string().starts_with("/x/.ko.yaml:"), "{err}");
        let err = KoConfig::parse("defaultPlatforms: {a: 1}\n", Path::new("/x/.ko.yaml")).unwrap_err();
        assert!(err.to_string().contains("/x/.ko.yaml"), "{err}");
    }
}
