//! What makes rebuilds cheap, checked for correctness (never for time): the layer cache (a
//! damaged entry still gives a correct image; a cached layer the registry lacks is made and
//! checked; two ko processes share one cache; base manifests and configs are kept by digest),
//! remembered `go list` answers (kept across code edits, not across a package clause's),
//! batched `go build`s (one run for several mains, byte-identical binaries), ko's parallel gzip (read by Go's compress/gzip and `gzip -d`) and
//! zstd layers (pulled and unpacked by skopeo and umoci).

use std::fs;
use std::process::{Command, Stdio};

use ko_tests::secure_registry::verify_all_blobs;
use ko_tests::*;

/// Every file under `dir` cut to half its length.
fn truncate_all(dir: &std::path::Path) -> usize {
    let mut n = 0;
    for rel in tree(dir) {
        let p = dir.join(rel);
        if p.is_file() {
            let len = fs::metadata(&p).unwrap().len();
            fs::OpenOptions::new().write(true).open(&p).unwrap().set_len(len / 2).unwrap();
            n += 1;
        }
    }
    n
}

#[test]
fn damaged_cache_entries_and_cached_layers_a_registry_lacks_still_give_correct_images() {
    let (reg_a, reg_b, reg_c) = (Registry::start(), Registry::start(), Registry::start());
    let fx = GoFixture::app();
    let cache = fx.scratch("kocache");
    let build = |repo: String| {
        let out =
            ko_ok(fx.ko().args(["build", "-v", "./cmd/hello"]).env("KO_DOCKER_REPO", repo).env("KOCACHE", &cache));
        (refs(&out, 1).remove(0), out)
    };
    let (first, _) = build(format!("{}/a", reg_a.host()));
    // The cache knows the layers now; registry B has none of them, so they must be made again
    // from what the cache says, and checked.
    let (second, out) = build(format!("{}/b", reg_b.host()));
    assert_eq!(split_digest(&first).1, split_digest(&second).1, "the same image from the cache");
    assert!(out.stderr.contains("pushed blob"), "{}", out.describe());
    assert_eq!(verify_all_blobs(&second, None), 4, "config, base, kodata and binary layers pulled and checked");

    let damaged = truncate_all(&cache.join("layers")) + truncate_all(&cache.join("list"));
    assert!(damaged >= 3, "the cache held entries to damage");
    let (third, _) = build(format!("{}/c", reg_c.host()));
    assert_eq!(split_digest(&third).1, split_digest(&first).1, "damaged entries are rebuilt, the image is the same");
    assert_eq!(verify_all_blobs(&third, None), 4);
    let img = pull(&docker(&third));
    for (i, diff_id) in img.config()["rootfs"]["diff_ids"].as_array().unwrap().iter().enumerate() {
        assert_eq!(digest_of(&img.layer_tar(i)), diff_id.as_str().unwrap(), "layer {i} unpacks to its diff id");
    }
}

#[test]
fn base_manifests_and_configs_are_kept_by_digest_and_a_damaged_one_is_fetched_again() {
    let reg = Registry::start();
    let base = push_base_index(&reg, "base", "v1", &["amd64"]);
    let fx = GoFixture::app();
    let cache = fx.scratch("kocache");
    let build = || {
        let out = ko_ok(
            fx.ko()
                .args(["build", "./cmd/hello"])
                .env("KO_DOCKER_REPO", format!("{}/app", reg.host()))
                .env("KO_DEFAULTBASEIMAGE", &base.reference)
                .env("KOCACHE", &cache),
        );
        refs(&out, 1).remove(0)
    };
    let first = build();
    let kept = tree(&cache.join("blobs")).iter().filter(|p| cache.join("blobs").join(p).is_file()).count();
    assert_eq!(kept, 2, "the base's image manifest and config, by digest");
    let damaged = truncate_all(&cache.join("blobs"));
    assert_eq!(damaged, 2);
    assert_eq!(build(), first, "damaged kept blobs are fetched again; the image is the same");
    let img = pull(&docker(&first));
    assert_eq!(img.layer_count(), 3, "the base's layer, kodata and the binary");
}

/// The remembered `go list` answer survives an edit of the code, which is built, and not an edit
/// of the package clause, which makes the package no longer a main one.
#[test]
fn a_remembered_go_list_answer_follows_the_package_clause() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let cache = fx.scratch("kocache");
    let main_go = fx.path().join("cmd/hello/main.go");
    let original = fs::read_to_string(&main_go).unwrap();
    let build = || {
        fx.ko()
            .args(["build", "./cmd/hello"])
            .env("KO_DOCKER_REPO", format!("{}/app", reg.host()))
            .env("KOCACHE", &cache)
            .output()
            .unwrap()
    };
    let reference = |out: &std::process::Output| {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let digest = |out: &std::process::Output| split_digest(&reference(out)).1;
    let first = digest(&build());
    let edited = original.replace("fmt.Println(lib.Greeting())", "fmt.Println(\"edited:\", lib.Greeting())");
    assert_ne!(edited, original);
    fs::write(&main_go, &edited).unwrap();
    let second = reference(&build());
    assert_ne!(split_digest(&second).1, first, "the edited code is built");
    let img = pull(&docker(&second));
    let binary_layer = img.layer_tar(img.layer_count() - 1);
    assert!(binary_layer.windows(7).any(|w| w == b"edited:"), "the binary holds the edited code");

    fs::write(&main_go, edited.replacen("package main", "package hello", 1)).unwrap();
    let out = build();
    assert!(!out.status.success(), "a package hello is not built as a command");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("./cmd/hello is not a main package (it is package hello)"), "{stderr}");

    fs::write(&main_go, &original).unwrap();
    assert_eq!(digest(&build()), first, "the original source gives the original image");
}

#[test]
fn two_ko_processes_share_one_cache() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let cache = fx.scratch("kocache");
    let spawn = |repo: &str| {
        fx.ko()
            .args(["build", "./cmd/hello", "./cmd/second"])
            .env("KO_DOCKER_REPO", format!("{}/{repo}", reg.host()))
            .env("KOCACHE", &cache)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn("one"), spawn("two"));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    for out in [&a, &b] {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let digests = |o: &std::process::Output| -> Vec<String> {
        String::from_utf8_lossy(&o.stdout).lines().map(|l| split_digest(l).1).collect()
    };
    assert_eq!(digests(&a), digests(&b), "both built the same images");
    assert_eq!(digests(&a).len(), 2);
}

#[test]
fn several_mains_are_built_by_one_go_build_with_the_same_binaries() {
    let fx = GoFixture::app();
    // A go that records each `go build` it is asked for.
    let log = fx.scratch("calls").join("go-calls");
    let wrapper = write_executable(
        &fx.scratch("bin"),
        "go",
        format!(
            "#!/bin/sh\n[ \"$1\" = build ] && echo \"$@\" >> {}\nexec {} \"$@\"\n",
            log.display(),
            go_bin().display()
        )
        .as_bytes(),
    );
    let layout = |name: &str| fx.scratch(name).join("layout");
    let build = |dir: &std::path::Path, args: &[&str]| {
        let out = ko_ok(
            fx.ko()
                .args(["build", "--push=false", "--oci-layout-path"])
                .arg(dir)
                .args(args)
                .env("KO_GO_PATH", &wrapper)
                .env("KOCACHE", "off"),
        );
        out.lines()
    };
    let together = build(&layout("together"), &["./cmd/hello", "./cmd/second"]);
    let calls = fs::read_to_string(&log).unwrap();
    let builds: Vec<&str> = calls.lines().collect();
    assert_eq!(builds.len(), 1, "one go build for both: {calls}");
    assert!(
        builds[0].contains("example.com/app/cmd/hello") && builds[0].contains("example.com/app/cmd/second"),
        "{calls}"
    );
    let alone = [build(&layout("hello"), &["./cmd/hello"]), build(&layout("second"), &["./cmd/second"])];
    // The binary in the last layer of the image `reference` (`LAYOUT@sha256:…`) names.
    let binary = |reference: &str, name: &str| {
        let (dir, digest) = reference.split_once('@').unwrap();
        let blob = |d: &str| fs::read(std::path::Path::new(dir).join("blobs/sha256").join(&d[7..])).unwrap();
        let manifest: serde_json::Value = serde_json::from_slice(&blob(digest)).unwrap();
        let layers = manifest["layers"].as_array().unwrap();
        let last = layers[layers.len() - 1]["digest"].as_str().unwrap();
        binary_from_layer(&tar_entries(&gunzip(&blob(last))), name)
    };
    for (i, name) in ["hello", "second"].iter().enumerate() {
        assert_eq!(binary(&together[i], name), binary(&alone[i][0], name), "{name} built alone and in the batch");
        assert_eq!(split_digest(&together[i]).1, split_digest(&alone[i][0]).1, "so the images are the same");
    }
}

#[test]
fn gzip_layers_decompress_with_go_and_gzip_to_their_diff_ids() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let out = ko_ok(fx.ko().args(["build", "./cmd/hello"]).env("KO_DOCKER_REPO", format!("{}/gz", reg.host())));
    let img = pull(&docker(&refs(&out, 1)[0]));
    let diff_ids = img.config()["rootfs"]["diff_ids"].clone();
    let binary_layer = img.layer_count() - 1;
    let gz = img.layer_blob(binary_layer);
    assert!(gz.len() > 512 * 1024, "the binary layer spans several compression blocks");
    let want = diff_ids[binary_layer].as_str().unwrap();
    assert_eq!(digest_of(&go_gunzip(&gz)), want, "Go's compress/gzip");
    let mut child = Command::new("gzip").arg("-dc").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &gz).unwrap());
    let tar = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert!(tar.status.success());
    assert_eq!(digest_of(&tar.stdout), want, "gzip -d");
}

#[test]
fn zstd_layers_pull_and_unpack_with_skopeo_and_umoci() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let out = ko_ok(
        fx.ko()
            .args(["build", "--layer-compression=zstd", "./cmd/hello"])
            .env("KO_DOCKER_REPO", format!("{}/zstd", reg.host())),
    );
    let reference = refs(&out, 1).remove(0);
    let (_, manifest) = inspect_raw(&docker(&reference));
    let types: Vec<&str> =
        manifest["layers"].as_array().unwrap().iter().map(|l| l["mediaType"].as_str().unwrap()).collect();
    assert_eq!(&types[types.len() - 2..], [OCI_LAYER_ZSTD, OCI_LAYER_ZSTD], "ko's two layers are zstd: {types:?}");
    assert_eq!(verify_all_blobs(&reference, None), 4);
    let dir = fx.scratch("unpack");
    let layout = dir.join("layout");
    skopeo_copy(&docker(&reference), &format!("oci:{}:img", layout.display()), false);
    let bundle = dir.join("bundle");
    run_tool(
        Command::new(umoci_zstd())
            .args(["unpack", "--rootless", "--image"])
            .arg(format!("{}:img", layout.display()))
            .arg(&bundle),
    );
    let binary = bundle.join("rootfs/ko-app/hello");
    let data = bundle.join("rootfs/var/run/ko");
    let said = run_tool(Command::new(&binary).arg("kodata").env("KO_DATA_PATH", &data));
    let said = String::from_utf8_lossy(&said);
    assert!(said.starts_with("hello from ko\n"), "{said}");
    assert!(
        said.contains(&fs::read_to_string(fixtures_dir().join("app/cmd/hello/kodata/greeting.txt")).unwrap()),
        "{said}"
    );
    // Tell a second zstd build apart from a gzip one: the same source, other layer digests.
    let gz = ko_ok(fx.ko().args(["build", "./cmd/hello"]).env("KO_DOCKER_REPO", format!("{}/zstd", reg.host())));
    assert_ne!(split_digest(&refs(&gz, 1)[0]).1, split_digest(&reference).1);
}
