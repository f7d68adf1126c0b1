//! Reproducible anywhere: two checkouts of the same commit, in different directories and with
//! different `$HOME` and `GOPATH`, give the same image digest and the same SBOM bytes; and
//! `SOURCE_DATE_EPOCH` dates the config, the binary's history entry and the SBOM.

use std::fs;
use std::path::Path;
use std::process::Command;

use ko_tests::*;
use serde_json::Value;

/// Commits everything in `dir` as the same commit wherever it is (fixed names and dates).
fn commit(dir: &Path) {
    let git = |args: &[&str]| {
        run_tool(
            Command::new("git")
                .args(args)
                .current_dir(dir)
                .env("GIT_AUTHOR_NAME", "ko tests")
                .env("GIT_AUTHOR_EMAIL", "ko@example.com")
                .env("GIT_AUTHOR_DATE", "2024-01-02T03:04:05Z")
                .env("GIT_COMMITTER_NAME", "ko tests")
                .env("GIT_COMMITTER_EMAIL", "ko@example.com")
                .env("GIT_COMMITTER_DATE", "2024-01-02T03:04:05Z")
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .env("GIT_CONFIG_NOSYSTEM", "1"),
        )
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "fixture"]);
}

fn go_cache() -> String {
    String::from_utf8(run_tool(Command::new(go_bin()).args(["env", "GOCACHE"]))).unwrap().trim().to_string()
}

#[test]
fn two_checkouts_of_one_commit_give_identical_images_and_sboms() {
    let reg = Registry::start();
    let repo = format!("{}/repro", reg.host());
    // The Go build cache is shared only to keep the test fast; it does not change outputs.
    let gocache = go_cache();
    let mut built = Vec::new();
    for _ in 0..2 {
        let fx = GoFixture::copy("deps");
        commit(fx.path());
        let (home, gopath, sboms) = (fx.scratch("home"), fx.scratch("gopath"), fx.scratch("sboms"));
        let out = ko_ok(
            fx.ko()
                .args(["build", "./cmd/ids", "--sbom-dir"])
                .arg(&sboms)
                .env("KO_DOCKER_REPO", &repo)
                .env("HOME", &home)
                .env("GOPATH", &gopath)
                .env("GOCACHE", &gocache),
        );
        let reference = refs(&out, 1).remove(0);
        let sbom = fs::read(sboms.join("ids-linux-amd64.spdx.json")).unwrap();
        built.push((fx.path().to_path_buf(), reference, sbom, fx));
    }
    let (a, b) = (&built[0], &built[1]);
    assert_ne!(a.0, b.0, "two checkouts in two places");
    assert_eq!(a.1, b.1, "the same image digest");
    assert_eq!(a.2, b.2, "the same SBOM bytes");

    // The commit is in the binary (go stamps it), so the checkouts really were of one commit.
    let img = pull(&docker(&a.1));
    let binary = binary_from_layer(&img.layer_entries(img.layer_count() - 1), "ids");
    let exe = write_executable(&a.3.scratch("bin"), "ids", &binary);
    let info = String::from_utf8(run_tool(Command::new(go_bin()).args(["version", "-m"]).arg(&exe))).unwrap();
    assert!(info.contains("vcs.revision=") && info.contains("vcs.modified=false"), "{info}");
    let (name, digest) = split_digest(&a.1);
    assert_eq!(fetch_sbom(&name, &digest).1, a.2, "what was pushed is what --sbom-dir holds");
}

#[test]
fn source_date_epoch_dates_config_history_and_sbom() {
    let reg = Registry::start();
    let repo = format!("{}/sde", reg.host());
    let fx = GoFixture::copy("deps");
    let out =
        ko_ok(fx.ko().args(["build", "./cmd/ids"]).env("KO_DOCKER_REPO", &repo).env("SOURCE_DATE_EPOCH", "1700000000"));
    let reference = refs(&out, 1).remove(0);
    let config = inspect_config(&docker(&reference));
    let date = "2023-11-14T22:13:20Z";
    assert_eq!(config["created"], date);
    let history = config["history"].as_array().unwrap();
    let binary = history.iter().find(|h| h["comment"] == "go build output, at /ko-app/ids").unwrap();
    assert_eq!(binary["created"], date);
    let kodata = history.iter().find(|h| h["comment"] == "kodata contents, at $KO_DATA_PATH").unwrap();
    assert_eq!(kodata["created"], "0001-01-01T00:00:00Z", "kodata follows KO_DATA_DATE_EPOCH, unset here");
    let (name, digest) = split_digest(&reference);
    let doc: Value = serde_json::from_slice(&fetch_sbom(&name, &digest).1).unwrap();
    assert_eq!(doc["creationInfo"]["created"], date);
}
