//! Building a new image value from a base: append layers (with their history entries), edit the
//! config, set annotations, then serialise config and manifest once. The base's config is kept as
//! JSON so that fields ko does not model survive untouched.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::compress::Compression;
use super::{Descriptor, Image, Layer, Manifest, Platform, RawJson, media_type};
use crate::error::{Error, Result};

/// A history entry for an appended layer.
pub struct History {
    pub author: String,
    pub created: String,
    pub created_by: String,
    pub comment: String,
}

/// An image under construction.
pub struct ImageBuilder {
    media_type: String,
    config_media_type: String,
    config: Map<String, Value>,
    layers: Vec<Layer>,
    annotations: BTreeMap<String, String>,
}

impl ImageBuilder {
    /// Starts from `base`: its layers, config and manifest annotations.
    pub fn from_base(base: &Image) -> Result<Self> {
        let manifest = base.parsed_manifest()?;
        let config = match serde_json::from_slice(&base.config.bytes) {
            Ok(Value::Object(map)) => map,
            _ => return Err(Error::build(format!("base config {} is not a JSON object", base.config.digest))),
        };
        Ok(ImageBuilder {
            media_type: base.media_type.clone(),
            config_media_type: manifest.config.media_type,
            config,
            layers: base.layers.clone(),
            annotations: manifest.annotations.unwrap_or_default(),
        })
    }

    /// Starts from nothing (`scratch`): an OCI image for `platform` with no layers.
    pub fn empty(platform: &Platform) -> Self {
        let mut config = Map::new();
        config.insert("architecture".into(), json!(platform.architecture));
        config.insert("os".into(), json!(platform.os));
        if let Some(v) = &platform.variant {
            config.insert("variant".into(), json!(v));
        }
        if let Some(v) = &platform.os_version {
            config.insert("os.version".into(), json!(v));
        }
        config.insert("config".into(), json!({}));
        config.insert("rootfs".into(), json!({"type": "layers", "diff_ids": []}));
        ImageBuilder {
            media_type: media_type::OCI_MANIFEST.into(),
            config_media_type: media_type::OCI_CONFIG.into(),
            config,
            layers: Vec::new(),
            annotations: BTreeMap::new(),
        }
    }

    /// The media type of a layer of ko's compressed with `compression`: for gzip, the one that
    /// matches this image's family (Docker or OCI), as upstream does; zstd has only an OCI type.
    pub fn layer_media_type(&self, compression: Compression) -> &'static str {
        match compression {
            Compression::Zstd => media_type::OCI_LAYER_ZSTD,
            Compression::Gzip if media_type::is_docker(&self.media_type) => media_type::DOCKER_LAYER_GZIP,
            Compression::Gzip => media_type::OCI_LAYER_GZIP,
        }
    }

    /// The platform the config declares (linux/amd64 when it declares none, as upstream assumes).
    pub fn platform(&self) -> Platform {
        let s = |k: &str| self.config.get(k).and_then(Value::as_str);
        let mut p = Platform::new(s("os").unwrap_or("linux"), s("architecture").unwrap_or("amd64"), s("variant"));
        p.os_version = s("os.version").map(str::to_string);
        p
    }

    /// Appends a layer, its diff id and its history entry.
    pub fn append(&mut self, layer: Layer, history: History) {
        let rootfs = self.object("rootfs");
        rootfs.entry("type").or_insert_with(|| json!("layers"));
        array(rootfs, "diff_ids").push(json!(layer.diff_id));
        let entry = json!({
            "created": history.created,
            "author": history.author,
            "created_by": history.created_by,
            "comment": history.comment,
        });
        array(&mut self.config, "history").push(entry);
        self.layers.push(layer);
    }

    /// The top-level config JSON, for edits such as `created` and `author`.
    pub fn config_file(&mut self) -> &mut Map<String, Value> {
        &mut self.config
    }

    /// The runtime part of the config (`config.config`: Env, Entrypoint, Cmd, Labels, User…).
    pub fn runtime_config(&mut self) -> &mut Map<String, Value> {
        self.object("config")
    }

    /// Manifest annotations; later inserts win.
    pub fn annotations(&mut self) -> &mut BTreeMap<String, String> {
        &mut self.annotations
    }

    fn object(&mut self, key: &str) -> &mut Map<String, Value> {
        let v = self.config.entry(key).or_insert_with(|| json!({}));
        if !v.is_object() {
            *v = json!({});
        }
        v.as_object_mut().expect("just made an object")
    }

    /// Serialises config and manifest.
    pub fn build(self) -> Result<Image> {
        let platform = self.platform();
        let config = RawJson::encode(&Value::Object(self.config))?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(self.media_type.clone()),
            config: Descriptor::new(&self.config_media_type, &config.digest, config.bytes.len() as u64),
            layers: self.layers.iter().map(|l| l.descriptor.clone()).collect(),
            annotations: (!self.annotations.is_empty()).then_some(self.annotations),
        };
        Ok(Image {
            media_type: self.media_type,
            manifest: RawJson::encode(&manifest)?,
            config,
            layers: self.layers,
            platform: Some(platform),
            sbom: None,
        })
    }
}

fn array<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Vec<Value> {
    let v = map.entry(key).or_insert_with(|| json!([]));
    if !v.is_array() {
        *v = json!([]);
    }
    v.as_array_mut().expect("just made an array")
}
