//! Resolve with a fixed builder and a recording publisher: no Go, no registry. The golden corpus
//! in `tests/fixtures/resolve` pairs each input with the expected output, which differs from the
//! input only in the reference scalars.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::*;
use crate::builder::Builder;
use crate::image::mutate::ImageBuilder;
use crate::image::{Artifact, Platform};
use crate::publish::Publisher;
use crate::{Events, Options, Session, Settings};

/// Builds a tiny distinct image per import path and counts builds; `…/pkg/…` is not a main package.
#[derive(Default)]
struct FixedBuilder {
    builds: Mutex<HashMap<String, usize>>,
}

#[async_trait]
impl Builder for FixedBuilder {
    async fn qualify(&self, import_paths: &[&str]) -> Result<Vec<Result<String>>> {
        Ok(import_paths
            .iter()
            .map(|import_path| {
                let ip = import_path.trim_start_matches("ko://");
                if ip.contains("/pkg/") {
                    return Err(Error::invalid(format!("{ip} is not a main package")));
                }
                Ok(ip.to_string())
            })
            .collect())
    }

    async fn build(&self, import_paths: &[&str]) -> Result<Vec<Artifact>> {
        let mut out = Vec::new();
        for import_path in import_paths {
            *self.builds.lock().unwrap().entry(import_path.to_string()).or_default() += 1;
            let mut b = ImageBuilder::empty(&Platform::new("linux", "amd64", None));
            b.annotations().insert("import-path".into(), import_path.to_string());
            out.push(Artifact::Image(Arc::new(b.build()?)));
        }
        Ok(out)
    }

    async fn main_packages(&self) -> Result<Vec<String>> {
        Ok(vec!["example.com/app/cmd/web".into()])
    }
}

/// Names images `registry.example/<last element>@<digest>` and records what it published.
#[derive(Default)]
struct RecordingPublisher {
    published: Mutex<Vec<String>>,
}

#[async_trait]
impl Publisher for RecordingPublisher {
    async fn publish(&self, artifact: &Artifact, import_path: &str) -> Result<String> {
        self.published.lock().unwrap().push(import_path.to_string());
        let name = import_path.rsplit('/').next().unwrap();
        Ok(format!("registry.example/{name}@{}", artifact.digest()))
    }
}

fn session() -> (Session, Arc<FixedBuilder>, Arc<RecordingPublisher>) {
    let (b, p) = (Arc::new(FixedBuilder::default()), Arc::new(RecordingPublisher::default()));
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        push: Some(false),
        env: Some(Default::default()),
        working_dir: Some(dir.path().into()),
        ..Default::default()
    };
    let settings = Arc::new(Settings::resolve(&opts).unwrap());
    (Session::from_parts(settings, b.clone(), p.clone(), Events::default()), b, p)
}

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/resolve")
}

fn inputs() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.to_string_lossy().contains(".want"))
        .collect();
    files.sort();
    files
}

fn want_path(input: &Path) -> PathBuf {
    let name = input.file_name().unwrap().to_string_lossy();
    let (stem, ext) = name.rsplit_once('.').unwrap();
    input.with_file_name(format!("{stem}.want.{ext}"))
}

async fn resolve_one(path: &Path, ro: &ResolveOptions) -> Result<String> {
    let (s, _, _) = session();
    let inputs = read_inputs(&[path.to_path_buf()], false, Path::new("/"), None)?;
    s.resolve_inputs(inputs, ro).await
}

#[tokio::test]
async fn golden_corpus_changes_only_reference_scalars() {
    let update = std::env::var_os("KO_UPDATE_GOLDEN").is_some();
    let corpus = inputs();
    assert!(corpus.len() >= 8, "the golden corpus is missing: {corpus:?}");
    let mut rewritten = Vec::new();
    for input in corpus {
        let got = resolve_one(&input, &ResolveOptions::default()).await.unwrap();
        let want_file = want_path(&input);
        let want = std::fs::read_to_string(&want_file).unwrap_or_default();
        if update && got != want {
            std::fs::write(&want_file, &got).unwrap();
            rewritten.push(want_file);
            continue;
        }
        assert_eq!(got, want, "{}", input.display());
    }
    assert!(rewritten.is_empty(), "KO_UPDATE_GOLDEN rewrote {rewritten:?}: review the diff, then run again without it");
}

#[tokio::test]
async fn each_reference_is_built_and_published_once_across_files() {
    let (s, builder, publisher) = session();
    let inputs = read_inputs(&inputs(), false, Path::new("/"), None).unwrap();
    s.resolve_inputs(inputs, &ResolveOptions::default()).await.unwrap();
    let builds = builder.builds.lock().unwrap().clone();
    assert_eq!(builds.len(), 2, "{builds:?}");
    assert!(builds.values().all(|&n| n == 1), "{builds:?}");
    assert_eq!(publisher.published.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn non_main_reference_fails_with_its_location_and_publishes_nothing() {
    let (s, _, publisher) = session();
    let text = "a: ko://example.com/app/cmd/web\nb:\n  c: ko://example.com/app/pkg/lib\n";
    let err = s
        .resolve_inputs(vec![Input { name: "d.yaml".into(), text: text.into() }], &ResolveOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("d.yaml:3:6: "), "{err}");
    assert!(publisher.published.lock().unwrap().is_empty());
}

#[tokio::test]
async fn selector_filters_documents_and_list_items() {
    let ro = ResolveOptions { selector: Some("tier=web".into()), ..Default::default() };
    let out = resolve_one(&corpus().join("list-kind.yaml"), &ro).await.unwrap();
    assert!(out.contains("name: one") && !out.contains("name: two"), "{out}");
    let ro = ResolveOptions { selector: Some("app=web".into()), ..Default::default() };
    let out = resolve_one(&corpus().join("multi-document.yaml"), &ro).await.unwrap();
    assert_eq!(out, "", "no document of multi-document.yaml has app=web");
    let err = resolve_one(&corpus().join("anchors-and-keys.yaml"), &ro).await.unwrap_err();
    assert!(err.to_string().contains("no apiVersion or kind"), "{err}");
}

#[tokio::test]
async fn non_strict_mode_takes_bare_main_packages() {
    let (s, _, _) = session();
    let text = "a: example.com/app/cmd/web\nb: example.com/app/cmd/other\n";
    let ro = ResolveOptions { strict: false, ..Default::default() };
    let out = s.resolve_inputs(vec![Input { name: "-".into(), text: text.into() }], &ro).await.unwrap();
    assert!(out.starts_with("a: registry.example/web@sha256:"), "{out}");
    assert!(out.ends_with("\nb: example.com/app/cmd/other\n"), "{out}");
}

#[tokio::test]
async fn joined_inputs_stay_valid_yaml() {
    let (s, _, _) = session();
    let inputs = vec![
        Input { name: "1.yaml".into(), text: "a: ko://example.com/app/cmd/web\n".into() },
        Input { name: "2.yaml".into(), text: "\u{feff}b: ko://example.com/app/cmd/web\n".into() },
        Input { name: "3.yaml".into(), text: "%YAML 1.2\n---\nc: 1\n".into() },
    ];
    let out = s.resolve_inputs(inputs, &ResolveOptions::default()).await.unwrap();
    assert!(!out.contains('\u{feff}'), "{out:?}");
    assert!(out.contains("\n---\nb: registry.example/web@") && out.ends_with("\n...\n%YAML 1.2\n---\nc: 1\n"), "{out}");
    let docs = scan::scan(&out, "out", &|_| None).unwrap().documents;
    assert_eq!(docs.len(), 3, "{out}");
}

#[tokio::test]
async fn selector_keeps_a_document_with_its_directive() {
    let text = "apiVersion: v1\nkind: A\nmetadata: {labels: {x: \"1\"}}\n...\n%YAML 1.2\n---\napiVersion: v1\nkind: B\nmetadata: {labels: {x: \"2\"}}\n";
    let (s, _, _) = session();
    let ro = ResolveOptions { selector: Some("x=2".into()), ..Default::default() };
    let out = s.resolve_inputs(vec![Input { name: "s.yaml".into(), text: text.into() }], &ro).await.unwrap();
    assert_eq!(out, "%YAML 1.2\n---\napiVersion: v1\nkind: B\nmetadata: {labels: {x: \"2\"}}\n");
}

#[test]
fn directories_are_read_sorted_and_filtered() {
    let t = tempfile::tempdir().unwrap();
    for f in ["b.yaml", "a.yml", "c.json", "d.txt", "sub/e.yaml"] {
        let p = t.path().join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, f).unwrap();
    }
    let names = |recursive| -> Vec<String> {
        read_inputs(&[PathBuf::from(".")], recursive, t.path(), None).unwrap().into_iter().map(|i| i.text).collect()
    };
    assert_eq!(names(false), ["a.yml", "b.yaml", "c.json"]);
    assert_eq!(names(true), ["a.yml", "b.yaml", "c.json", "sub/e.yaml"]);
    assert!(read_inputs(&[PathBuf::from("missing.yaml")], false, t.path(), None).is_err());
    // A symlink back up the tree is walked once, not until the path is too long.
    std::os::unix::fs::symlink("..", t.path().join("sub/up")).unwrap();
    assert_eq!(names(true), ["a.yml", "b.yaml", "c.json", "sub/e.yaml"]);
    let stdin = read_inputs(&[PathBuf::from("-")], false, t.path(), Some("x: 1\n")).unwrap();
    assert_eq!((stdin[0].name.as_str(), stdin[0].text.as_str()), ("-", "x: 1\n"));
    assert!(read_inputs(&[PathBuf::from("-")], false, t.path(), None).is_err());
}
