//! `ko build` to a registry with the built-in base: naming, image layout,
//! config, layer contents, upstream-identical binary layer, reproducibility.

use std::collections::BTreeSet;
use std::fs;
use std::process::Command;

use ko_tests::*;
use serde_json::Value;

/// Expected kodata layer of cmd/hello, in upstream's order (dirs first, then
/// a lexical `filepath.Walk` of kodata/ with subdirectories as entries).
const HELLO_KODATA: &[(&str, bool)] = &[
    ("/var", true),
    ("/var/run", true),
    ("/var/run/ko", true),
    ("/var/run/ko/greeting.txt", false),
    ("/var/run/ko/link.txt", false),
    ("/var/run/ko/nested", true),
    ("/var/run/ko/nested/deep.txt", false),
];

fn fixture_file(rel: &str) -> Vec<u8> {
    fs::read(fixtures_dir().join("app").join(rel)).unwrap()
}

fn assert_kodata_layer(entries: &[TarEntry], mtime: u64) {
    let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    let want: Vec<&str> = HELLO_KODATA.iter().map(|(p, _)| *p).collect();
    assert_eq!(paths, want, "kodata layer entries (names and order)");
    for (e, (_, is_dir)) in entries.iter().zip(HELLO_KODATA) {
        if *is_dir {
            assert!(e.is_dir(), "{} should be a directory: {e:?}", e.path);
        } else {
            // Symlinks are chased: link.txt must be a regular file too.
            assert!(e.is_file(), "{} should be a regular file: {e:?}", e.path);
            assert!(e.link_name.as_deref().unwrap_or("").is_empty(), "{} has a link name", e.path);
        }
        assert_eq!(e.mode & 0o7777, 0o555, "mode of {}", e.path);
        assert_eq!((e.uid, e.gid), (0, 0), "owner of {}", e.path);
        assert_eq!(e.mtime, mtime, "mtime of {}", e.path);
    }
    assert_eq!(entry(entries, "/var/run/ko/greeting.txt").content, fixture_file("cmd/hello/kodata/greeting.txt"));
    assert_eq!(entry(entries, "/var/run/ko/nested/deep.txt").content, fixture_file("cmd/hello/kodata/nested/deep.txt"));
    assert_eq!(
        entry(entries, "/var/run/ko/link.txt").content,
        fixture_file("README.md"),
        "the kodata symlink is stored with its target's content"
    );
}

/// Writes the regular files of a layer below `root` (for KO_DATA_PATH).
fn extract_files(entries: &[TarEntry], root: &std::path::Path) {
    for e in entries {
        let rel = e.path.trim_start_matches('/');
        let p = root.join(rel);
        if e.is_dir() {
            fs::create_dir_all(&p).unwrap();
        } else {
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, &e.content).unwrap();
        }
    }
}

fn assert_hello_config(config: &Value, name: &str, ip: &str) {
    assert_eq!(config["os"], "linux");
    assert_eq!(config["architecture"], "amd64");
    let c = &config["config"];
    assert_eq!(c["Entrypoint"], serde_json::json!([format!("/ko-app/{name}")]), "Entrypoint");
    assert!(c["Cmd"].is_null(), "Cmd must be absent or null, got {}", c["Cmd"]);
    let env = env_map(config);
    assert_eq!(env.get("KO_DATA_PATH").map(String::as_str), Some("/var/run/ko"), "env {env:?}");
    let path = env.get("PATH").unwrap_or_else(|| panic!("no PATH in env {env:?}"));
    assert_eq!(path.split(':').next_back(), Some("/ko-app"), "PATH={path}");
    let history = config["history"].as_array().expect("config has history");
    let created_by = format!("ko build ko://{ip}");
    let ko_entries = history.iter().filter(|h| h["created_by"].as_str() == Some(created_by.as_str())).count();
    assert_eq!(ko_entries, 2, "two history entries (kodata, binary) by {created_by:?}: {history:?}");
}

#[test]
fn build_two_mains_to_registry() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let repo = format!("{}/test", reg.host());
    let out = ko_ok(fx.ko().args(["build", "./cmd/hello", "example.com/app/cmd/second"]).env("KO_DOCKER_REPO", &repo));
    let refs = refs(&out, 2);
    assert!(!out.stderr.contains("retrying"), "a plain-HTTP loopback registry needs no retries\n{}", out.describe());
    assert!(refs[0].starts_with(&format!("{repo}/hello-{HELLO_MD5}@sha256:")), "first ref names hello: {}", refs[0]);
    assert!(
        refs[1].starts_with(&format!("{repo}/second-{SECOND_MD5}@sha256:")),
        "second ref names second: {}",
        refs[1]
    );
    for want in [
        format!("Building {HELLO_IP} for linux/amd64"),
        format!("Building {SECOND_IP} for linux/amd64"),
        format!("Published {}", refs[0]),
        format!("Published {}", refs[1]),
    ] {
        assert!(out.stderr.contains(&want), "stderr lacks {want:?}\n{}", out.describe());
    }

    let scratch = fx.scratch("run");
    for (r, name, ip, expect) in
        [(&refs[0], "hello", HELLO_IP, "hello from ko\n"), (&refs[1], "second", SECOND_IP, "second app\n")]
    {
        let (_, digest) = split_digest(r);
        let info = inspect(&docker(r));
        assert_eq!(info["Digest"], digest.as_str(), "skopeo sees the printed digest");

        let img = pull(&docker(r));
        assert_eq!(digest_of(&img.manifest_bytes), digest);
        assert_eq!(img.layer_count(), 3, "built-in base layer + kodata + binary");
        let config = img.config();
        assert_hello_config(&config, name, ip);
        assert_eq!(config, inspect_config(&docker(r)), "skopeo --config agrees");

        // Each diff id is the sha256 of the uncompressed layer.
        let diff_ids: Vec<String> =
            config["rootfs"]["diff_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
        assert_eq!(diff_ids.len(), 3);
        for (i, d) in diff_ids.iter().enumerate() {
            assert_eq!(&digest_of(&img.layer_tar(i)), d, "diff id of layer {i}");
        }

        let bin_entries = img.layer_entries(2);
        assert_binary_layer(&bin_entries, name);
        let binary = binary_from_layer(&bin_entries, name);
        assert_eq!(elf_machine(&binary), 0x3E, "linux/amd64 binary");
        let exe = write_executable(&scratch, name, &binary);
        let got = run_tool(&mut Command::new(&exe));
        assert_eq!(String::from_utf8_lossy(&got), expect);

        let kodata = img.layer_entries(1);
        if name == "hello" {
            assert_kodata_layer(&kodata, 0);
            // The binary finds its kodata at $KO_DATA_PATH.
            let root = scratch.join("rootfs");
            extract_files(&kodata, &root);
            let got = run_tool(Command::new(&exe).arg("kodata").env("KO_DATA_PATH", root.join("var/run/ko")));
            assert_eq!(String::from_utf8_lossy(&got), "hello from ko\ngreetings from kodata\ndeep inside kodata\n");
        } else {
            // No kodata dir: the layer still exists with the three dirs.
            let paths: Vec<&str> = kodata.iter().map(|e| e.path.as_str()).collect();
            assert_eq!(paths, vec!["/var", "/var/run", "/var/run/ko"]);
            for e in &kodata {
                assert!(e.is_dir());
                assert_eq!(e.mode & 0o7777, 0o555);
                assert_eq!(e.mtime, 0);
            }
        }
    }
}

#[test]
fn kodata_mtime_follows_ko_data_date_epoch() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let repo = format!("{}/epoch", reg.host());
    let out = ko_ok(
        fx.ko().args(["build", "./cmd/hello"]).env("KO_DOCKER_REPO", &repo).env("KO_DATA_DATE_EPOCH", "1700000000"),
    );
    let r = &refs(&out, 1)[0];
    let img = pull(&docker(r));
    assert_kodata_layer(&img.layer_entries(1), 1_700_000_000);
    // The binary layer is unaffected.
    assert_binary_layer(&img.layer_entries(2), "hello");
}

#[test]
fn source_date_epoch_sets_created() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let repo = format!("{}/sde", reg.host());
    let out = ko_ok(
        fx.ko().args(["build", "./cmd/hello"]).env("KO_DOCKER_REPO", &repo).env("SOURCE_DATE_EPOCH", "1700000000"),
    );
    let r = &refs(&out, 1)[0];
    let config = inspect_config(&docker(r));
    assert_eq!(config["created"], "2023-11-14T22:13:20Z", "config created");
}

#[test]
fn binary_layer_is_byte_identical_to_go_archive_tar() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let repo = format!("{}/gotar", reg.host());
    let out =
        ko_ok(fx.ko().args(["build", "ko://example.com/app/cmd/hello", "./cmd/second"]).env("KO_DOCKER_REPO", &repo));
    for (r, name) in refs(&out, 2).iter().zip(["hello", "second"]) {
        let img = pull(&docker(r));
        let config = img.config();
        let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
        let last = diff_ids.last().unwrap().as_str().unwrap();
        let ours = img.layer_tar(img.layer_count() - 1);
        assert_eq!(digest_of(&ours), last, "the binary layer is the last layer");
        let binary = binary_from_layer(&tar_entries(&ours), name);
        let theirs = gotar(&binary, name);
        assert_eq!(
            digest_of(&theirs),
            last,
            "binary layer of {name} differs from Go archive/tar's (ours {} bytes, Go {} bytes)",
            ours.len(),
            theirs.len()
        );
    }
}

#[test]
fn rebuild_is_reproducible_and_uploads_nothing() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let repo = format!("{}/repro", reg.host());
    let first = ko_ok(fx.ko().args(["build", "./cmd/hello"]).env("KO_DOCKER_REPO", &repo));
    let r1 = refs(&first, 1).remove(0);
    let uploads_first = reg.requests().iter().filter(|r| r.is_blob_upload()).count();
    assert!(uploads_first > 0, "first build uploads blobs\n{}", reg.log_text());

    let mark = reg.mark();
    let second = ko_ok(fx.ko().args(["build", "./cmd/hello"]).env("KO_DOCKER_REPO", &repo));
    let r2 = refs(&second, 1).remove(0);
    assert_eq!(r1, r2, "same inputs give the same reference");
    let after = reg.requests_since(mark);
    let uploads: Vec<&Request> = after.iter().filter(|r| r.is_blob_upload()).collect();
    assert!(
        uploads.is_empty(),
        "second build uploaded blobs: {uploads:?}\nall requests: {after:?}\n{}",
        second.describe()
    );
    assert!(!second.stderr.contains("pushed blob"), "second build says it pushed a blob\n{}", second.describe());
    // A third build from a fresh copy of the module is identical too.
    let fx2 = GoFixture::app();
    let third = ko_ok(fx2.ko().args(["build", "./cmd/hello"]).env("KO_DOCKER_REPO", &repo));
    assert_eq!(refs(&third, 1)[0], r1, "build does not depend on the checkout path");
}

#[test]
fn import_path_forms_name_the_same_image() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let repo = format!("{}/forms", reg.host());
    let mut refs = Vec::new();
    for form in ["./cmd/hello", "example.com/app/cmd/hello", "ko://example.com/app/cmd/hello"] {
        let out = ko_ok(fx.ko().args(["build", form]).env("KO_DOCKER_REPO", &repo));
        refs.push(refs_of_one(&out, form));
    }
    let unique: BTreeSet<&String> = refs.iter().collect();
    assert_eq!(unique.len(), 1, "all forms give one reference: {refs:?}");
    assert!(refs[0].starts_with(&format!("{repo}/hello-{HELLO_MD5}@")));

    // `.` in the package directory, and the `publish` alias.
    let out =
        ko_ok(fx.ko().current_dir(fx.path().join("cmd/hello")).args(["publish", "."]).env("KO_DOCKER_REPO", &repo));
    assert_eq!(out.lines(), vec![refs[0].clone()]);
}

fn refs_of_one(out: &Output, form: &str) -> String {
    let lines = out.lines();
    assert_eq!(lines.len(), 1, "{form}: one reference\n{}", out.describe());
    split_digest(&lines[0]);
    lines[0].clone()
}

#[test]
fn image_label_annotation_and_user() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let repo = format!("{}/meta", reg.host());
    let out = ko_ok(
        fx.ko()
            .args([
                "build",
                "./cmd/hello",
                "--image-label",
                "org.example.team=blue",
                "--image-label=tier=backend",
                "--image-annotation",
                "org.example.note=hi",
                "--image-user",
                "1234:5678",
            ])
            .env("KO_DOCKER_REPO", &repo),
    );
    let r = &refs(&out, 1)[0];
    let config = inspect_config(&docker(r));
    assert_eq!(config["config"]["Labels"]["org.example.team"], "blue");
    assert_eq!(config["config"]["Labels"]["tier"], "backend");
    assert_eq!(config["config"]["User"], "1234:5678");
    let (_, manifest) = inspect_raw(&docker(r));
    assert_eq!(manifest["annotations"]["org.example.note"], "hi", "manifest: {manifest}");
}

#[test]
fn scratch_base_has_no_base_layers() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    fs::write(fx.path().join(".ko.yaml"), "defaultBaseImage: scratch\n").unwrap();
    let repo = format!("{}/scratch", reg.host());
    let out = ko_ok(fx.ko().args(["build", "./cmd/hello"]).env("KO_DOCKER_REPO", &repo));
    let r = &refs(&out, 1)[0];
    let img = pull(&docker(r));
    assert_eq!(img.layer_count(), 2, "scratch: kodata + binary only");
    assert_kodata_layer(&img.layer_entries(0), 0);
    assert_binary_layer(&img.layer_entries(1), "hello");
    let env = env_map(&img.config());
    assert_eq!(env.get("PATH").map(String::as_str), Some("/ko-app"), "PATH without a base PATH");
}

/// Build output lives in a temporary directory that is removed afterwards, whether the build
/// succeeds or fails.
#[test]
fn temporary_build_output_is_always_cleaned() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let repo = format!("{}/tmp", reg.host());
    let tmp = fx.scratch("tmpdir");
    let leftovers = || std::fs::read_dir(&tmp).unwrap().map(|e| e.unwrap().path()).collect::<Vec<_>>();
    ko_ok(fx.ko().args(["build", "./cmd/hello"]).env("KO_DOCKER_REPO", &repo).env("TMPDIR", &tmp));
    assert_eq!(leftovers(), Vec::<std::path::PathBuf>::new(), "after a successful build");
    ko_fail(
        fx.ko().args(["build", "./cmd/hello", "./cmd/broken"]).env("KO_DOCKER_REPO", &repo).env("TMPDIR", &tmp),
        KO_TIMEOUT,
    );
    assert_eq!(leftovers(), Vec::<std::path::PathBuf>::new(), "after a failed build");
}

/// Images published in one run upload a blob they share once, then mount it into the other
/// repositories (here: the built-in base layer and the config-independent empty kodata layer).
#[test]
fn shared_blobs_are_uploaded_once_per_run_and_mounted_elsewhere() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let repo = format!("{}/shared", reg.host());
    let out = ko_ok(fx.ko().args(["build", "./cmd/hello", "./cmd/second", "-j", "2"]).env("KO_DOCKER_REPO", &repo));
    let refs = refs(&out, 2);
    let layers = |r: &str| inspect(&docker(r))["Layers"].as_array().unwrap().clone();
    let base_layer = layers(&refs[0])[0].as_str().unwrap().to_string();
    assert_eq!(layers(&refs[1])[0].as_str().unwrap(), base_layer, "both images start from the built-in base");
    let requests = reg.requests();
    let uploads = requests
        .iter()
        .filter(|r| r.method == "PUT" && r.decoded_uri().contains(&format!("digest={base_layer}")))
        .count();
    let mounts = requests
        .iter()
        .filter(|r| r.method == "POST" && r.decoded_uri().contains(&format!("mount={base_layer}")))
        .count();
    assert_eq!((uploads, mounts), (1, 1), "one upload, one mount of the shared base layer\n{}", out.describe());
    assert!(out.stderr.contains(&format!("mounted blob: {base_layer}")), "{}", out.describe());
}

/// `.ko.yaml` `builds:` as upstream: the entry whose `main` is the package supplies flags, env and
/// templated ldflags; `--ldflags` overrides them; a template naming a missing value fails clearly.
#[test]
fn ko_yaml_builds_set_flags_env_and_templated_ldflags() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let repo = format!("{}/builds", reg.host());
    std::fs::write(
        fx.path().join(".ko.yaml"),
        "builds:\n- id: versioned\n  main: ./cmd/version\n  flags: -tags special\n  env: [KO_TEST_BUILD_ENV=from-build-env]\n  ldflags:\n  - -s -w\n  - -X main.version={{.Env.VERSION}} -X main.buildEnv={{ .Env.KO_TEST_BUILD_ENV }}\n  - -X main.date={{.Date}}\n",
    )
    .unwrap();
    let run_image = |r: &str| {
        let img = pull(&docker(r));
        let entries = img.layer_entries(img.layer_count() - 1);
        let binary = binary_from_layer(&entries, "version");
        let exe = write_executable(&fx.scratch("bin"), "version", &binary);
        String::from_utf8_lossy(&run_tool(&mut std::process::Command::new(&exe))).into_owned()
    };

    let out = ko_ok(
        fx.ko()
            .args(["build", "./cmd/version"])
            .env("KO_DOCKER_REPO", &repo)
            .env("VERSION", "1.2.3")
            .env("SOURCE_DATE_EPOCH", "0"),
    );
    assert!(out.stderr.contains("Using build config versioned for example.com/app/cmd/version"), "{}", out.describe());
    let r = refs(&out, 1).remove(0);
    assert_eq!(run_image(&r), "version=1.2.3 env=from-build-env date=1970-01-01T00:00:00Z tags=special\n");

    let out = ko_ok(
        fx.ko()
            .args(["build", "--ldflags=-X main.version=from-cli", "./cmd/version"])
            .env("KO_DOCKER_REPO", &repo)
            .env("VERSION", "1.2.3"),
    );
    assert_eq!(run_image(&refs(&out, 1)[0]), "version=from-cli env=unset date=unset tags=special\n");

    let out = ko_fail(fx.ko().args(["build", "./cmd/version"]).env("KO_DOCKER_REPO", &repo), KO_TIMEOUT);
    assert!(out.stderr.contains("no value for .Env.VERSION"), "{}", out.describe());
}
