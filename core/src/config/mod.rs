//! Configuration: the [`Options`] every front end fills (the CLI from flags, Python from keyword
//! arguments, Node from an object, C from setters or JSON), `.ko.yaml` ([`KoConfig`]), and the
//! effective [`Settings`] a session runs with, which [`Settings::resolve`] derives from both and
//! the environment: defaults, comma lists, `key=value` pairs and every validation live there.

mod ko_yaml;
mod settings;
mod yaml_tree;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use ko_yaml::{BuildConfig, ImageConfig, KoConfig};
pub use settings::{BuildSettings, PublishSettings, Settings};

/// Everything a session takes. Unset fields fall back to the environment and `.ko.yaml`, as
/// upstream. The serde form is camelCase (`{"dockerRepo": …, "tagOnly": true}`); unknown keys are
/// an error. List fields also take one string, and comma-separated entries (`"linux/amd64,
/// linux/arm64"`) are split, as the CLI's flags are; `imageLabels`/`imageAnnotations` also take a
/// `{key: value}` map.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Options {
    /// Destination repository (`KO_DOCKER_REPO` when unset).
    pub docker_repo: Option<String>,
    /// Base image for every import path, overriding `.ko.yaml` and `KO_DEFAULTBASEIMAGE`.
    pub base_image: Option<String>,
    /// `all`, or `os/arch[/variant][:osversion]` platforms.
    #[serde(deserialize_with = "string_list")]
    pub platforms: Vec<String>,
    /// Tags to publish (`latest` when empty).
    #[serde(deserialize_with = "string_list")]
    pub tags: Vec<String>,
    /// Publish `repo:tag` only and refer to images by it, without a digest.
    pub tag_only: bool,
    /// Push to the registry (default true); `false` builds without pushing.
    pub push: Option<bool>,
    /// Load into the Docker daemon instead of pushing.
    pub local: bool,
    /// Name images `repo/<import path>`.
    pub preserve_import_paths: bool,
    /// Name images `repo/<last path element>`.
    pub base_import_paths: bool,
    /// Name images `repo` itself.
    pub bare: bool,
    /// Allow plain HTTP and unverified TLS to registries, for this session only.
    pub insecure_registry: bool,
    /// Also write every image to this OCI layout directory.
    pub oci_layout_path: Option<PathBuf>,
    /// Also write a `docker load`-able tarball here, when the session finishes.
    pub tarball: Option<PathBuf>,
    /// Write the published references to this file, one per line, when the session finishes.
    pub image_refs: Option<PathBuf>,
    /// Concurrent builds (0 = number of CPUs).
    pub jobs: usize,
    /// SBOM kind: `spdx` (the default) or `none`.
    pub sbom: Option<String>,
    /// Also write each SBOM into this directory (`<app>-<os>-<arch>.spdx.json`, `<app>-index.spdx.json`).
    pub sbom_dir: Option<PathBuf>,
    /// Config labels.
    pub image_labels: KeyValues,
    /// Manifest (and index) annotations.
    pub image_annotations: KeyValues,
    /// Config `User`.
    pub image_user: Option<String>,
    /// Linker flags, joined with spaces into one `-ldflags=`.
    #[serde(deserialize_with = "string_list")]
    pub ldflags: Vec<String>,
    /// Build with `-gcflags all=-N -l`.
    pub disable_optimizations: bool,
    /// How ko's layers are compressed: `gzip` (the default) or `zstd` (`.ko.yaml` `layerCompression`).
    pub layer_compression: Option<String>,
    /// `.ko.yaml` file or directory (`KO_CONFIG_PATH` when unset).
    pub config_path: Option<PathBuf>,
    /// Where `go` runs and relative paths resolve (the current directory when unset).
    pub working_dir: Option<PathBuf>,
    /// The environment to read `KO_*`, `GOFLAGS`, `SOURCE_DATE_EPOCH`, `DOCKER_CONFIG`… from and
    /// to give `go` and `kubectl`; when unset, the process environment at `Session::new`.
    pub env: Option<BTreeMap<String, String>>,
    /// Which front end is asking: decides how error messages spell option names.
    #[serde(skip)]
    pub front_end: FrontEnd,
    /// Where kubectl's output goes.
    #[serde(skip)]
    pub kubectl_output: KubectlOutput,
}

impl Options {
    /// Options from their JSON form (`{"dockerRepo": "…", "platforms": ["linux/amd64"]}`).
    pub fn from_json(json: &str) -> crate::Result<Options> {
        serde_json::from_str(json).map_err(|e| crate::Error::invalid(format!("invalid options JSON: {e}")))
    }

    /// The JSON form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The names of every option, in declaration order, as the Rust fields (snake_case) spell
    /// them; bindings check their own lists against this one.
    pub fn names() -> Vec<&'static str> {
        OPTION_NAMES.to_vec()
    }
}

/// Every field of [`Options`] that has a serde form.
const OPTION_NAMES: &[&str] = &[
    "docker_repo",
    "base_image",
    "platforms",
    "tags",
    "tag_only",
    "push",
    "local",
    "preserve_import_paths",
    "base_import_paths",
    "bare",
    "insecure_registry",
    "oci_layout_path",
    "tarball",
    "image_refs",
    "jobs",
    "sbom",
    "sbom_dir",
    "image_labels",
    "image_annotations",
    "image_user",
    "ldflags",
    "disable_optimizations",
    "layer_compression",
    "config_path",
    "working_dir",
    "env",
];

/// The front end a session serves, so that messages name options as its user writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FrontEnd {
    /// The Rust API: `Options::tag_only`.
    #[default]
    Rust,
    /// `ko`: `--tag-only`.
    Cli,
    /// `ko.build(…, tag_only=…)`.
    Python,
    /// `{tagOnly: …}`.
    Node,
    /// `ko_options_set_tag_only()`.
    C,
    /// `ko::Options::tag_only()`.
    Cpp,
}

impl FrontEnd {
    /// How this front end's user spells the option `field` (a snake_case field of [`Options`]).
    pub fn option(self, field: &str) -> String {
        match self {
            FrontEnd::Rust => format!("Options::{field}"),
            FrontEnd::Cli => cli_flag(field),
            FrontEnd::Python => format!("{field}="),
            FrontEnd::Node => camel_case(field),
            FrontEnd::C => format!("ko_options_set_{field}()"),
            FrontEnd::Cpp => format!("ko::Options::{field}()"),
        }
    }
}

fn cli_flag(field: &str) -> String {
    match field {
        "platforms" => "--platform".into(),
        "image_labels" => "--image-label".into(),
        "image_annotations" => "--image-annotation".into(),
        "docker_repo" => "KO_DOCKER_REPO".into(),
        "config_path" => "KO_CONFIG_PATH".into(),
        "base_image" => "KO_DEFAULTBASEIMAGE".into(),
        "working_dir" => "the working directory".into(),
        "env" => "the environment".into(),
        "local" => "-L/--local".into(),
        _ => format!("--{}", field.replace('_', "-")),
    }
}

/// `tag_only` → `tagOnly`.
pub fn camel_case(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Where kubectl's standard output and error go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KubectlOutput {
    /// Line by line as [`Event::KubectlOutput`](crate::Event::KubectlOutput) (bindings).
    #[default]
    Events,
    /// Straight to ko's own standard output and error, with ko's standard input (the CLI).
    Inherit,
}

/// `key=value` settings (labels, annotations), as a front end received them: strings as the CLI
/// flag takes them (`k=v`, several separated by commas: `team=web,tier=a,b`), or exact pairs (a
/// map's entries, kept as they are whatever they contain). The serde form is a list of strings
/// or a `{key: value}` map; a single string is one entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyValues(pub Vec<KeyValue>);

/// One entry of [`KeyValues`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyValue {
    /// `k=v[,k2=v2…]`, split as the flag is.
    Flag(String),
    /// One key and its value, exactly.
    Pair(String, String),
}

impl KeyValues {
    /// Entries as the CLI flag takes them.
    pub fn flags<S: Into<String>>(values: impl IntoIterator<Item = S>) -> KeyValues {
        KeyValues(values.into_iter().map(|v| KeyValue::Flag(v.into())).collect())
    }

    /// Exact pairs.
    pub fn pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> KeyValues {
        KeyValues(pairs.into_iter().map(|(k, v)| KeyValue::Pair(k.into(), v.into())).collect())
    }
}

impl Serialize for KeyValues {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        if !self.0.is_empty() && self.0.iter().all(|e| matches!(e, KeyValue::Pair(..))) {
            let mut map = s.serialize_map(Some(self.0.len()))?;
            for e in &self.0 {
                if let KeyValue::Pair(k, v) = e {
                    map.serialize_entry(k, v)?;
                }
            }
            return map.end();
        }
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for e in &self.0 {
            match e {
                KeyValue::Flag(f) => seq.serialize_element(f)?,
                KeyValue::Pair(k, v) => seq.serialize_element(&format!("{k}={v}"))?,
            }
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for KeyValues {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            One(String),
            Many(Vec<String>),
            Map(BTreeMap<String, String>),
        }
        Ok(match Option::<Form>::deserialize(d)? {
            None => KeyValues::default(),
            Some(Form::One(s)) => KeyValues::flags([s]),
            Some(Form::Many(v)) => KeyValues::flags(v),
            Some(Form::Map(m)) => KeyValues::pairs(m),
        })
    }
}

/// A list of strings, or one string.
fn string_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => Vec::new(),
        Some(OneOrMany::One(s)) => vec![s],
        Some(OneOrMany::Many(v)) => v,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_round_trip_through_json() {
        let opts = Options {
            docker_repo: Some("reg.example/team".into()),
            platforms: vec!["linux/amd64".into(), "linux/arm64".into()],
            tags: vec!["v1".into()],
            push: Some(false),
            jobs: 3,
            image_labels: KeyValues::flags(["a=b"]),
            image_annotations: KeyValues::pairs([("x", "y,z=w")]),
            oci_layout_path: Some("out".into()),
            env: Some([("KO_DOCKER_REPO".to_string(), "x".to_string())].into()),
            ..Default::default()
        };
        let json = opts.to_json();
        assert!(json.contains(r#""dockerRepo":"reg.example/team""#), "{json}");
        assert!(json.contains(r#""ociLayoutPath":"out""#), "{json}");
        assert_eq!(Options::from_json(&json).unwrap(), opts);
    }

    #[test]
    fn json_takes_single_strings_and_maps() {
        let o = Options::from_json(r#"{"platforms":"linux/amd64","imageLabels":{"team":"web","tier":"a,b"}}"#).unwrap();
        assert_eq!(o.platforms, ["linux/amd64"]);
        assert_eq!(o.image_labels, KeyValues::pairs([("team", "web"), ("tier", "a,b")]));
        let err = Options::from_json(r#"{"dockerrepo":"x"}"#).unwrap_err().to_string();
        assert!(err.contains("unknown field `dockerrepo`"), "{err}");
    }

    #[test]
    fn every_option_is_named_once() {
        let json: serde_json::Value = serde_json::from_str(&Options::default().to_json()).unwrap();
        let keys: Vec<String> = json.as_object().unwrap().keys().cloned().collect();
        let names: Vec<String> = Options::names().iter().map(|n| camel_case(n)).collect();
        assert_eq!(keys, names);
    }

    #[test]
    fn option_names_per_front_end() {
        assert_eq!(FrontEnd::Cli.option("tag_only"), "--tag-only");
        assert_eq!(FrontEnd::Cli.option("platforms"), "--platform");
        assert_eq!(FrontEnd::Python.option("tag_only"), "tag_only=");
        assert_eq!(FrontEnd::Node.option("oci_layout_path"), "ociLayoutPath");
        assert_eq!(FrontEnd::C.option("tag_only"), "ko_options_set_tag_only()");
    }
}
