//! The 2018 GOPATH mode (`GO111MODULE=off`, working directory inside `$GOPATH/src`, no
//! `go.mod`), as the 2018 README describes it: `ko build` of full and relative import paths,
//! `ko resolve` strict (only `ko://`) and not (bare import paths of main packages too), and
//! `ko apply` against a real API server; the images' binaries run.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use ko_tests::*;

const HI: &str = "example.com/gp/cmd/hi";
const BYE: &str = "example.com/gp/cmd/bye";

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: gp
spec:
  selector:
    matchLabels: {app: gp}
  template:
    metadata:
      labels: {app: gp}
    spec:
      containers:
      - name: hi
        image: example.com/gp/cmd/hi
      - name: bye
        image: ko://example.com/gp/cmd/bye
";

/// A GOPATH holding `example.com/gp` (two commands and a library, no go.mod).
struct GoPath {
    _dir: tempfile::TempDir,
    gopath: PathBuf,
    repo_dir: PathBuf,
}

impl GoPath {
    fn new() -> GoPath {
        let dir = lowercase_tempdir("ko-tests-gopath");
        let gopath = dir.path().join("gopath");
        let repo_dir = gopath.join("src/example.com/gp");
        let files = [
            (
                "pkg/words/words.go",
                "package words\n\n// Hi is what cmd/hi prints.\nfunc Hi() string { return \"hi from GOPATH\" }\n",
            ),
            (
                "cmd/hi/main.go",
                "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.com/gp/pkg/words\"\n)\n\nfunc main() { fmt.Println(words.Hi()) }\n",
            ),
            ("cmd/hi/kodata/note.txt", "kodata in GOPATH mode\n"),
            ("cmd/bye/main.go", "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"bye from GOPATH\") }\n"),
            ("config/deploy.yaml", DEPLOYMENT),
        ];
        for (path, text) in files {
            let p = repo_dir.join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        }
        GoPath { _dir: dir, gopath, repo_dir }
    }

    fn ko(&self) -> Command {
        let mut c = ko();
        c.current_dir(&self.repo_dir).env("GO111MODULE", "off").env("GOPATH", &self.gopath);
        c
    }
}

fn runs(reference: &str, name: &str, scratch: &Path) -> String {
    let img = pull(&docker(reference));
    let binary = binary_from_layer(&img.layer_entries(img.layer_count() - 1), name);
    let exe = write_executable(scratch, name, &binary);
    String::from_utf8_lossy(&run_tool(&mut Command::new(&exe))).into_owned()
}

#[test]
fn build_and_resolve_in_gopath_mode() {
    let reg = Registry::start();
    let gp = GoPath::new();
    assert!(!gp.repo_dir.join("go.mod").exists());
    let repo = format!("{}/gopath", reg.host());
    let scratch = tempfile::tempdir().unwrap();

    let out = ko_ok(gp.ko().args(["build", "./cmd/hi", BYE]).env("KO_DOCKER_REPO", &repo));
    let built = refs(&out, 2);
    assert!(out.stderr.contains(&format!("Building {HI} for linux/amd64")), "{}", out.describe());
    assert_eq!(runs(&built[0], "hi", scratch.path()), "hi from GOPATH\n");
    assert_eq!(runs(&built[1], "bye", scratch.path()), "bye from GOPATH\n");
    let img = pull(&docker(&built[0]));
    assert!(img.layer_entries(1).iter().any(|e| e.path == "/var/run/ko/note.txt"), "kodata is shipped");
    let out = ko_ok(gp.ko().args(["build", HI]).env("KO_DOCKER_REPO", &repo));
    assert_eq!(refs(&out, 1)[0], built[0], "the full import path names the same image");

    // The SBOM stands the package in for the main module GOPATH builds lack.
    let (name, digest) = split_digest(&built[0]);
    let (_, document) = fetch_sbom(&name, &digest);
    let doc: serde_json::Value = serde_json::from_slice(&document).unwrap();
    assert!(doc["packages"].as_array().unwrap().iter().any(|p| p["name"] == HI), "{doc:#}");

    // Strict (the default): only ko:// references.
    let out = ko_ok(gp.ko().args(["resolve", "-f", "config/deploy.yaml"]).env("KO_DOCKER_REPO", &repo));
    assert!(out.stdout.contains(&format!("image: {HI}\n")), "a bare path stays\n{}", out.describe());
    assert!(out.stdout.contains(&format!("image: {}\n", built[1])), "{}", out.describe());

    // Not strict: bare import paths of main packages too, as in 2018.
    let out =
        ko_ok(gp.ko().args(["resolve", "--strict=false", "-f", "config/deploy.yaml"]).env("KO_DOCKER_REPO", &repo));
    assert!(out.stdout.contains(&format!("image: {}\n", built[0])), "{}", out.describe());
    assert!(out.stdout.contains(&format!("image: {}\n", built[1])), "{}", out.describe());
}

/// `ko apply` of GOPATH import paths stores the published references in the cluster.
#[test]
fn apply_in_gopath_mode() {
    let api = ko_tests::k8s::ApiServer::start();
    let reg = Registry::start();
    let gp = GoPath::new();
    let repo = format!("{}/gopath", reg.host());
    let kubeconfig = format!("--kubeconfig={}", api.kubeconfig_path().display());
    let out = ko_ok(
        gp.ko().args(["apply", "--strict=false", "-f", "config/deploy.yaml", &kubeconfig]).env("KO_DOCKER_REPO", &repo),
    );
    assert!(out.stdout.contains("deployment.apps/gp created"), "{}", out.describe());
    let images = run_tool(api.kubectl().args([
        "get",
        "deployment",
        "gp",
        "-o",
        "jsonpath={.spec.template.spec.containers[*].image}",
    ]));
    let images = String::from_utf8(images).unwrap();
    let images: Vec<&str> = images.split(' ').collect();
    assert_eq!(images.len(), 2, "{images:?}");
    let scratch = tempfile::tempdir().unwrap();
    assert_eq!(runs(images[0], "hi", scratch.path()), "hi from GOPATH\n");
    assert_eq!(runs(images[1], "bye", scratch.path()), "bye from GOPATH\n");
}
