//! `ko resolve`'s YAML side: read the inputs, select documents, find every image reference
//! (`ko://…` scalars, and in non-strict mode bare import paths of the module's main packages) and,
//! once the session has built and published each distinct one, splice the references into the
//! original text. Every byte that is not a replaced scalar is kept: comments, order,
//! indentation, quoting, CRLF, anchors.

mod fast;
pub mod scan;
pub mod select;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use scan::{RefSpan, scan, scan_refs, splice, strict_reference};
use select::Selector;

/// How `resolve` reads its inputs (the `-f`/`-R`/`-l`/`--strict` flags).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ResolveOptions {
    /// Walk directories recursively (`-R`).
    pub recursive: bool,
    /// Keep only documents (and `List` items) matching this label selector (`-l`).
    pub selector: Option<String>,
    /// Only `ko://` scalars are references (default). `false` also takes bare import paths of
    /// the module's `main` packages, as the 2018 ko did; `.ko.yaml` `strict: false` does the same.
    pub strict: bool,
    /// The text `-` stands for among the paths (the CLI's standard input); ko never reads its
    /// process's standard input itself.
    pub stdin: Option<String>,
}

impl Default for ResolveOptions {
    fn default() -> Self {
        ResolveOptions { recursive: false, selector: None, strict: true, stdin: None }
    }
}

/// One YAML input: a file, or standard input (`-`).
#[derive(Debug, Clone)]
pub struct Input {
    /// The path as the user named it (or `-`), for messages.
    pub name: String,
    pub text: String,
}

/// The inputs `paths` name: files as given, directories' `*.yaml`, `*.yml` and `*.json` in sorted
/// order (recursively with `recursive`, each directory once even through symlink loops), `-` for
/// `stdin`.
pub fn read_inputs(paths: &[PathBuf], recursive: bool, working_dir: &Path, stdin: Option<&str>) -> Result<Vec<Input>> {
    if paths.is_empty() {
        return Err(Error::invalid("no input: name a YAML file, a directory, or - (standard input)"));
    }
    let mut inputs = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            let text = stdin.ok_or_else(|| {
                Error::invalid(
                    "\"-\" (standard input) is not available here: pass the YAML text to resolve_string instead",
                )
            })?;
            inputs.push(Input { name: "-".into(), text: text.to_string() });
            continue;
        }
        let full = working_dir.join(path);
        let meta = std::fs::metadata(&full)
            .map_err(|e| Error::not_found(format!("{}: {e}", path.display())).with_source(e))?;
        let mut files = Vec::new();
        if meta.is_dir() {
            collect_dir(&full, recursive, &mut files, &mut HashSet::new())?;
            files.sort();
            if files.is_empty() {
                tracing::warn!("{}: no *.yaml, *.yml or *.json files in this directory", path.display());
            }
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

fn collect_dir(dir: &Path, recursive: bool, out: &mut Vec<PathBuf>, seen: &mut HashSet<PathBuf>) -> Result<()> {
    let real = dir.canonicalize().map_err(|e| Error::io(format!("cannot read {}", dir.display()), e))?;
    if !seen.insert(real) {
        return Ok(());
    }
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(format!("cannot read {}", dir.display()), e))?;
    for entry in entries {
        let path = entry.map_err(|e| Error::io(format!("cannot read {}", dir.display()), e))?.path();
        if path.is_dir() {
            if recursive {
                collect_dir(&path, recursive, out, seen)?;
            }
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml" || e == "json") {
            // A FIFO or socket named like YAML would block the read: only files are taken.
            if path.is_file() {
                out.push(path);
            } else {
                tracing::warn!("skipping {}: not a regular file", path.display());
            }
        }
    }
    Ok(())
}

/// Inputs read and scanned: what to build and where to splice.
pub struct Plan {
    files: Vec<(String, String, Vec<RefSpan>)>,
}

impl Plan {
    /// Selects documents of `inputs` (with `selector`) and finds their references: `ko://`
    /// scalars, and with `mains` (non-strict mode) bare import paths of those packages.
    pub fn new(inputs: Vec<Input>, selector: Option<&str>, mains: Option<&HashSet<String>>) -> Result<Plan> {
        let selector = selector.map(Selector::parse).transpose()?;
        let find = |value: &str| -> Option<String> {
            strict_reference(value)
                .or_else(|| mains.filter(|m| m.contains(value.trim())).map(|_| value.trim().to_string()))
        };
        let mut files = Vec::with_capacity(inputs.len());
        for input in inputs {
            let text = match &selector {
                Some(sel) => select_documents(&input, sel)?,
                None => input.text,
            };
            let refs = scan_refs(&text, &input.name, &find)?;
            files.push((input.name, text, refs));
        }
        Ok(Plan { files })
    }

    /// Each distinct import path, as written, with the `file:line:column` of its first use.
    pub fn import_paths(&self) -> Vec<(String, String)> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for (name, _, refs) in &self.files {
            for r in refs {
                if seen.insert(r.import_path.as_str()) {
                    out.push((r.import_path.clone(), format!("{name}:{}:{}", r.line, r.column)));
                }
            }
        }
        out
    }

    /// The output: each input with its references replaced by `reference_for(import path)`,
    /// inputs separated by `---`; `done(name, references)` is called for each input.
    pub fn render(&self, reference_for: &dyn Fn(&str) -> String, done: &dyn Fn(&str, usize)) -> String {
        let mut out = String::new();
        for (name, text, refs) in &self.files {
            let resolved = splice(text, refs, reference_for);
            done(name, refs.len());
            if out.is_empty() {
                out = resolved;
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
        out
    }
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
