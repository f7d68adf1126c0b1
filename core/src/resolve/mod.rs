//! `ko resolve`: read YAML files, find every image reference (`ko://…` scalars, and in non-strict
//! mode bare import paths of the module's main packages), build and publish each distinct one
//! once, concurrently, and splice the published references into the original text. Every byte
//! that is not a replaced scalar is kept: comments, order, indentation, quoting, CRLF, anchors.

pub mod scan;
pub mod select;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::Session;
use crate::error::{Error, Result};
use scan::{scan, splice, strict_reference};
use select::Selector;

/// How `resolve` reads its inputs (the `-f`/`-R`/`-l`/`--strict` flags).
#[derive(Debug, Clone)]
pub struct ResolveOptions {
    /// Walk directories recursively (`-R`).
    pub recursive: bool,
    /// Keep only documents (and `List` items) matching this label selector (`-l`).
    pub selector: Option<String>,
    /// Only `ko://` scalars are references (default). `false` also takes bare import paths of
    /// the module's `main` packages, as the 2018 ko did; `.ko.yaml` `strict: false` does the same.
    pub strict: bool,
}

impl Default for ResolveOptions {
    fn default() -> Self {
        ResolveOptions { recursive: false, selector: None, strict: true }
    }
}

/// One YAML input: a file, or standard input (`-`).
#[derive(Debug, Clone)]
pub struct Input {
    /// The path as the user named it (or `-`), for messages.
    pub name: String,
    pub text: String,
}

/// The inputs `-f` names: files as given, directories' `*.yaml`, `*.yml` and `*.json` in sorted
/// order (recursively with `recursive`), `-` for standard input.
pub fn read_inputs(paths: &[PathBuf], recursive: bool, working_dir: &Path) -> Result<Vec<Input>> {
    if paths.is_empty() {
        return Err(Error::invalid("no input: pass -f FILE, -f DIR or -f - (standard input)"));
    }
    let mut inputs = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).map_err(|e| Error::io("cannot read standard input", e))?;
            inputs.push(Input { name: "-".into(), text });
            continue;
        }
        let full = working_dir.join(path);
        let meta = std::fs::metadata(&full)
            .map_err(|e| Error::not_found(format!("-f {}: {e}", path.display())).with_source(e))?;
        let mut files = Vec::new();
        if meta.is_dir() {
            collect_dir(&full, recursive, &mut files)?;
            files.sort();
        } else {
            files.push(full);
        }
        for file in files {
            let text =
                std::fs::read_to_string(&file).map_err(|e| Error::io(format!("cannot read {}", file.display()), e))?;
            let name = file.strip_prefix(working_dir).unwrap_or(&file).display().to_string();
            inputs.push(Input { name, text });
        }
    }
    Ok(inputs)
}

fn collect_dir(dir: &Path, recursive: bool, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(format!("cannot read {}", dir.display()), e))?;
    for entry in entries {
        let path = entry.map_err(|e| Error::io(format!("cannot read {}", dir.display()), e))?.path();
        if path.is_dir() {
            if recursive {
                collect_dir(&path, recursive, out)?;
            }
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml" || e == "json") {
            out.push(path);
        }
    }
    Ok(())
}

/// Resolves `inputs` with `session`'s builder and publisher and returns the output text:
/// each input's (selected) documents in order, inputs separated by `---`.
pub async fn resolve_inputs(inputs: Vec<Input>, ro: &ResolveOptions, session: &Session) -> Result<String> {
    let selector = ro.selector.as_deref().map(Selector::parse).transpose()?;
    let strict = ro.strict && session.config.strict.unwrap_or(true);
    let mains: HashSet<String> =
        if strict { HashSet::new() } else { session.builder.main_packages().await?.into_iter().collect() };
    let find = |value: &str| -> Option<String> {
        strict_reference(value).or_else(|| mains.contains(value.trim()).then(|| value.trim().to_string()))
    };

    let mut files = Vec::with_capacity(inputs.len());
    for input in inputs {
        let text = match &selector {
            Some(sel) => select_documents(&input, sel)?,
            None => input.text,
        };
        let refs = scan(&text, &input.name, &find)?.refs;
        files.push((input.name, text, refs));
    }

    // Each distinct import path once, qualified with the location of its first use.
    let mut first_use: Vec<(&str, String)> = Vec::new();
    let mut seen = HashSet::new();
    for (name, _, refs) in &files {
        for r in refs {
            if seen.insert(r.import_path.as_str()) {
                first_use.push((&r.import_path, format!("{name}:{}:{}", r.line, r.column)));
            }
        }
    }
    let qualified = futures::future::try_join_all(
        first_use.iter().map(|(ip, at)| async move { session.builder.qualify(ip).await.map_err(|e| e.context(at)) }),
    )
    .await?;
    let args: Vec<&str> = qualified.iter().map(String::as_str).collect();
    let published = if args.is_empty() { Vec::new() } else { session.build(&args).await? };
    let by_path: HashMap<&str, &str> =
        first_use.iter().zip(&published).map(|((ip, _), p)| (*ip, p.reference.as_str())).collect();

    let mut out = String::new();
    for (_, text, refs) in &files {
        let resolved = splice(text, refs, &|ip| by_path[ip].to_string());
        if out.is_empty() {
            out.push_str(&resolved);
            continue;
        }
        // Joining files: a byte-order mark is only valid at the very start of the stream, and
        // directives (`%YAML`) need the previous document ended with `...` rather than a `---`.
        let resolved = resolved.strip_prefix('\u{feff}').unwrap_or(&resolved);
        if !out.ends_with('\n') {
            out.push('\n');
        }
        if resolved.starts_with('%') {
            out.push_str("...\n");
        } else if !resolved.starts_with("---") {
            out.push_str("---\n");
        }
        out.push_str(resolved);
    }
    Ok(out)
}

/// Drops documents the selector does not match (and empty ones), and non-matching items of
/// `List` documents. Kept documents keep their bytes; a `List` that lost items is re-encoded.
fn select_documents(input: &Input, selector: &Selector) -> Result<String> {
    let scanned = scan(&input.text, &input.name, &|_| None)?;
    let mut out = String::new();
    for (i, range) in scanned.documents.iter().enumerate() {
        let text = &input.text[range.clone()];
        let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(text)
            .map_err(|e| Error::invalid(format!("{}: document {}: {e}", input.name, i + 1)))?;
        if value.is_null() {
            continue;
        }
        let (api_version, kind) = (value.get("apiVersion"), value.get("kind"));
        if api_version.is_none() || kind.is_none() {
            return Err(Error::invalid(format!(
                "{}: document {} has no apiVersion or kind; a selector (-l) applies to Kubernetes objects only",
                input.name,
                i + 1
            )));
        }
        if let Some(items) = value.get("items").and_then(|v| v.as_sequence())
            && kind.and_then(|k| k.as_str()).is_some_and(|k| k.ends_with("List"))
        {
            let kept: Vec<_> = items.iter().filter(|item| selector.matches(&labels(item))).cloned().collect();
            if kept.len() == items.len() {
                out.push_str(text);
            } else {
                let mut list = value.clone();
                list["items"] = serde_yaml_ng::Value::Sequence(kept);
                let encoded = serde_yaml_ng::to_string(&list)
                    .map_err(|e| Error::invalid(format!("{}: document {}: {e}", input.name, i + 1)))?;
                if text.starts_with("---") {
                    out.push_str("---\n");
                }
                out.push_str(&encoded);
            }
        } else if selector.matches(&labels(&value)) {
            out.push_str(text);
        }
    }
    Ok(out)
}

fn labels(object: &serde_yaml_ng::Value) -> BTreeMap<String, String> {
    object
        .get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(|l| l.as_mapping())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| {
                    let v = match v {
                        serde_yaml_ng::Value::String(s) => s.clone(),
                        serde_yaml_ng::Value::Bool(b) => b.to_string(),
                        serde_yaml_ng::Value::Number(n) => n.to_string(),
                        _ => return None,
                    };
                    Some((k.as_str()?.to_string(), v))
                })
                .collect()
        })
        .unwrap_or_default()
}
