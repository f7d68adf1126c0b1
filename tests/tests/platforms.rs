//! Multi-platform builds against a base index.

use std::fs;

use ko_tests::*;
use serde_json::Value;

const EM_X86_64: u16 = 0x3E;
const EM_AARCH64: u16 = 0xB7;

fn child_binary(host_repo_child: &str) -> (PulledImage, Vec<u8>) {
    let img = pull(&docker(host_repo_child));
    let entries = img.layer_entries(img.layer_count() - 1);
    assert_binary_layer(&entries, "hello");
    let bin = binary_from_layer(&entries, "hello");
    (img, bin)
}

#[test]
fn two_platforms_give_an_index_in_base_order() {
    let reg = Registry::start();
    // Base order: amd64 then arm64; the flag lists them the other way round.
    let base = push_base_index(&reg, "multi", "v1", &["amd64", "arm64"]);
    let fx = GoFixture::app();
    let out = ko_ok(
        fx.ko()
            .args(["build", "--platform=linux/arm64,linux/amd64", "./cmd/hello"])
            .env("KO_DOCKER_REPO", format!("{}/plat", reg.host()))
            .env("KO_DEFAULTBASEIMAGE", &base.reference),
    );
    for p in ["linux/amd64", "linux/arm64"] {
        assert!(
            out.stderr.contains(&format!("Building {HELLO_IP} for {p}")),
            "stderr lacks the {p} build\n{}",
            out.describe()
        );
    }
    let r = refs(&out, 1).remove(0);
    let (name, digest) = split_digest(&r);
    let (raw, index) = inspect_raw(&docker(&r));
    assert_eq!(digest_of(&raw), digest);
    assert_eq!(index["mediaType"], OCI_INDEX, "index media type follows the base: {index}");
    let manifests = index["manifests"].as_array().expect("an index");
    let arches: Vec<&str> = manifests.iter().map(|m| m["platform"]["architecture"].as_str().unwrap_or("?")).collect();
    assert_eq!(arches, vec!["amd64", "arm64"], "children in base order: {index}");
    for m in manifests {
        assert_eq!(m["platform"]["os"], "linux");
        assert_eq!(m["mediaType"], OCI_MANIFEST);
    }
    let ann = &index["annotations"];
    assert_eq!(ann[ANN_BASE_NAME], base.reference.as_str(), "index base.name: {index}");
    assert_eq!(ann[ANN_BASE_DIGEST], base.digest.as_str(), "index base.digest: {index}");

    for (m, (hand, machine)) in manifests.iter().zip(base.images.iter().zip([EM_X86_64, EM_AARCH64])) {
        let child = format!("{name}@{}", m["digest"].as_str().unwrap());
        let (img, bin) = child_binary(&child);
        assert_eq!(elf_machine(&bin), machine, "{} binary ELF machine", hand.arch);
        let config = img.config();
        assert_eq!(config["architecture"], hand.arch.as_str());
        assert_eq!(config["os"], "linux");
        assert_eq!(img.layer_count(), 3, "one base layer + kodata + binary");
        assert_eq!(img.layers()[0]["digest"], hand.layers[0].digest.as_str());
        let ann = &img.manifest["annotations"];
        assert_eq!(
            ann[ANN_BASE_DIGEST],
            hand.manifest.digest.as_str(),
            "child base.digest is the base's platform manifest: {ann}"
        );
        // The binary layer matches Go's archive/tar for this platform too.
        let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
        assert_eq!(
            digest_of(&gotar(&bin, "hello")),
            diff_ids.last().unwrap().as_str().unwrap(),
            "{} binary layer vs Go archive/tar",
            hand.arch
        );
    }
}

#[test]
fn one_platform_of_an_index_gives_a_plain_image() {
    let reg = Registry::start();
    let base = push_base_index(&reg, "multi", "v1", &["amd64", "arm64"]);
    let fx = GoFixture::app();
    let out = ko_ok(
        fx.ko()
            .args(["build", "--platform=linux/arm64", "./cmd/hello"])
            .env("KO_DOCKER_REPO", format!("{}/single", reg.host()))
            .env("KO_DEFAULTBASEIMAGE", &base.reference),
    );
    let r = refs(&out, 1).remove(0);
    let (_, manifest) = inspect_raw(&docker(&r));
    assert_eq!(manifest["mediaType"], OCI_MANIFEST, "a plain image, not an index: {manifest}");
    assert!(manifest.get("manifests").is_none());
    let (img, bin) = child_binary(&r);
    assert_eq!(elf_machine(&bin), EM_AARCH64);
    assert_eq!(img.config()["architecture"], "arm64");
    assert_eq!(img.layers()[0]["digest"], base.images[1].layers[0].digest.as_str());
}

#[test]
fn default_platforms_and_all() {
    let reg = Registry::start();
    let base = push_base_index(&reg, "multi", "v1", &["amd64", "arm64"]);
    let fx = GoFixture::app();

    // No --platform and no defaultPlatforms: linux/amd64 only, a plain image.
    let out = ko_ok(
        fx.ko()
            .args(["build", "./cmd/hello"])
            .env("KO_DOCKER_REPO", format!("{}/dflt", reg.host()))
            .env("KO_DEFAULTBASEIMAGE", &base.reference),
    );
    let r = refs(&out, 1).remove(0);
    let (_, m) = inspect_raw(&docker(&r));
    assert_eq!(m["mediaType"], OCI_MANIFEST);
    assert_eq!(inspect_config(&docker(&r))["architecture"], "amd64");

    // --platform=all: every platform of the base.
    let out = ko_ok(
        fx.ko()
            .args(["build", "--platform=all", "./cmd/hello"])
            .env("KO_DOCKER_REPO", format!("{}/all", reg.host()))
            .env("KO_DEFAULTBASEIMAGE", &base.reference),
    );
    let index = index_of(&refs(&out, 1)[0]);
    assert_eq!(arches(&index), vec!["amd64", "arm64"]);

    // defaultPlatforms in .ko.yaml.
    fs::write(
        fx.path().join(".ko.yaml"),
        format!("defaultBaseImage: {}\ndefaultPlatforms:\n- linux/arm64\n- linux/amd64\n", base.reference),
    )
    .unwrap();
    let out = ko_ok(fx.ko().args(["build", "./cmd/hello"]).env("KO_DOCKER_REPO", format!("{}/yaml", reg.host())));
    let index = index_of(&refs(&out, 1)[0]);
    assert_eq!(arches(&index), vec!["amd64", "arm64"]);

    // KO_DEFAULTPLATFORMS (comma list) overrides the YAML.
    let out = ko_ok(
        fx.ko()
            .args(["build", "./cmd/hello"])
            .env("KO_DOCKER_REPO", format!("{}/envp", reg.host()))
            .env("KO_DEFAULTPLATFORMS", "linux/arm64"),
    );
    let r = refs(&out, 1).remove(0);
    assert_eq!(inspect_config(&docker(&r))["architecture"], "arm64");
}

#[test]
fn platform_missing_from_single_base_is_an_error() {
    let reg = Registry::start();
    let base = push_base_image(&reg, "amd64only", "v1");
    let fx = GoFixture::app();
    let out = ko_fail(
        fx.ko()
            .args(["build", "--platform=linux/arm64", "./cmd/hello"])
            .env("KO_DOCKER_REPO", format!("{}/wrongplatform", reg.host()))
            .env("KO_DEFAULTBASEIMAGE", &base.reference),
        KO_TIMEOUT,
    );
    assert!(out.stdout.trim().is_empty(), "no reference printed\n{}", out.describe());
    assert!(out.stderr.contains("arm64"), "error names the platform\n{}", out.describe());
}

fn index_of(r: &str) -> Value {
    let (_, v) = inspect_raw(&docker(r));
    assert!(v["manifests"].is_array(), "expected an index: {v}");
    v
}

fn arches(index: &Value) -> Vec<String> {
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// Builds for named platforms start before the base is read; one the base does not have is
/// dropped as before, even when the program does not compile for it.
#[test]
fn a_named_platform_the_base_lacks_is_dropped_even_when_it_would_not_compile() {
    let reg = Registry::start();
    let base = push_base_index(&reg, "multi", "v1", &["amd64", "arm64"]);
    let fx = GoFixture::app();
    fs::write(fx.path().join("cmd/hello/broken_s390x.go"), "//go:build s390x\n\npackage main\n\nthis is not Go\n")
        .unwrap();
    let out = ko_ok(
        fx.ko()
            .args(["build", "--platform=linux/arm64,linux/s390x", "./cmd/hello"])
            .env("KO_DOCKER_REPO", format!("{}/dropped", reg.host()))
            .env("KO_DEFAULTBASEIMAGE", &base.reference),
    );
    let (img, bin) = child_binary(&refs(&out, 1).remove(0));
    assert_eq!(elf_machine(&bin), EM_AARCH64);
    assert_eq!(img.config()["architecture"], "arm64");
    // The same program with the platform the base has broken fails with go's error.
    fs::write(fx.path().join("cmd/hello/broken_arm64.go"), "//go:build arm64\n\npackage main\n\nthis is not Go\n")
        .unwrap();
    let out = ko_fail(
        fx.ko()
            .args(["build", "--platform=linux/arm64,linux/s390x", "./cmd/hello"])
            .env("KO_DOCKER_REPO", format!("{}/dropped", reg.host()))
            .env("KO_DEFAULTBASEIMAGE", &base.reference),
        KO_TIMEOUT,
    );
    assert!(out.stderr.contains("broken_arm64.go"), "{}", out.describe());
}
