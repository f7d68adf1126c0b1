//! Self-checks of the harness itself (no ko involved): the registry, the
//! hand-made bases pushed with skopeo, gotar, and the fixture copy.

use std::fs;
use std::process::Command;

use ko_tests::*;

#[test]
fn registry_answers_and_logs_requests() {
    let reg = Registry::start();
    let reg2 = Registry::start();
    assert_ne!(reg.port(), reg2.port());
    let mark = reg.mark();
    assert!(!exists(&docker(&format!("{}/none:tag", reg.host()))));
    let reqs = reg.requests_since(mark);
    assert!(
        reqs.iter().any(|r| r.uri.contains("/v2/none/manifests/tag") && r.status == 404),
        "the failed lookup is logged: {reqs:?}"
    );
    assert!(reqs.iter().all(|r| !r.is_write()));
}

#[test]
fn hand_made_base_image_round_trips() {
    let reg = Registry::start();
    let mark = reg.mark();
    let base = push_base_image(&reg, "base", "v1");
    let reqs = reg.requests_since(mark);
    assert!(reqs.iter().any(|r| r.is_blob_upload()), "{reqs:?}");
    let info = inspect(&docker(&base.reference));
    assert_eq!(info["Digest"], base.digest.as_str());
    let img = pull(&docker(&base.reference));
    assert_eq!(img.layer_count(), 2);
    let entries = img.layer_entries(0);
    assert_eq!(entry(&entries, "etc/base-release").content, b"ko-tests base amd64\n");
    let config = img.config();
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["rootfs"]["diff_ids"][1], digest_of(&img.layer_tar(1)).as_str());
}

#[test]
fn hand_made_base_index_round_trips() {
    let reg = Registry::start();
    let base = push_base_index(&reg, "multi", "v1", &["amd64", "arm64"]);
    let (_, index) = inspect_raw(&docker(&base.reference));
    assert_eq!(index["mediaType"], OCI_INDEX);
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 2);
    for (m, hand) in manifests.iter().zip(&base.images) {
        assert_eq!(m["platform"]["architecture"], hand.arch.as_str());
        let child = format!("{}/multi@{}", reg.host(), hand.manifest.digest);
        assert_eq!(inspect_config(&docker(&child))["architecture"], hand.arch.as_str());
    }
}

#[test]
fn gotar_writes_upstream_binary_layer() {
    let fx = GoFixture::app();
    let out = fx.scratch("bin").join("hello");
    run_tool(
        Command::new(go_bin())
            .current_dir(fx.path())
            .env("CGO_ENABLED", "0")
            .args(["build", "-trimpath", "-o"])
            .arg(&out)
            .arg("./cmd/hello"),
    );
    let binary = fs::read(&out).unwrap();
    let tar = gotar(&binary, "hello");
    let entries = tar_entries(&tar);
    assert_binary_layer(&entries, "hello");
    assert_eq!(entries[1].content, binary);
    // USTAR, no 10 KiB record padding: headers + data + two zero blocks.
    assert_eq!(&tar[257..263], b"ustar\0");
    let data_blocks = binary.len().div_ceil(512);
    assert_eq!(tar.len(), 512 * (2 + data_blocks + 2));
    // Deterministic.
    assert_eq!(gotar(&binary, "hello"), tar);
}

#[test]
fn fixture_copy_keeps_symlinks() {
    let fx = GoFixture::app();
    let link = fx.path().join("cmd/hello/kodata/link.txt");
    assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_eq!(fs::read_to_string(&link).unwrap(), fs::read_to_string(fx.path().join("README.md")).unwrap());
    let bad = GoFixture::badlink();
    let esc = bad.path().join("cmd/app/kodata/escape.txt");
    assert_eq!(fs::read_link(esc).unwrap(), std::path::PathBuf::from("/etc/passwd"));
}
