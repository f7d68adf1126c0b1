//! Windows images, as upstream builds them, from a small Windows-shaped base index made by hand
//! (a layer with `Files/` and `Hives/`) and pushed with skopeo: `Hives`/`Files` layers whose
//! bytes equal what upstream's Go code writes (checked with the gotar helper), the security
//! descriptor PAX record on each file, the `C:\ko-app` entrypoint, `--platform=all` picking the
//! Windows image up, and an SBOM read from the Windows binary.

use std::fs;

use ko_tests::*;
use serde_json::{Value, json};

const OS_VERSION: &str = "10.0.17763.1234";

/// A base index with linux/amd64 and windows/amd64 (`OS_VERSION`) images, pushed to `repo:1`.
fn push_base(reg: &Registry, repo: &str) -> (String, Vec<HandImage>) {
    let mut layout = OciLayout::new();
    let linux = layout.image("amd64", &[vec![("etc/base-release", b"linux base\n")]]);
    let windows = layout.windows_image("amd64", OS_VERSION, &[("Windows/System32/placeholder.txt", b"windows base\n")]);
    let index = layout.index(&[&linux, &windows]);
    layout.tag(&index, "1");
    let reference = format!("{}/{repo}:1", reg.host());
    layout.push("1", &reference, true);
    (reference, vec![linux, windows])
}

fn with_base(fx: &GoFixture, base: &str) {
    fs::write(fx.path().join(".ko.yaml"), format!("defaultBaseImage: {base}\n")).unwrap();
}

#[test]
fn a_windows_image_is_laid_out_as_upstream_lays_it_out() {
    let reg = Registry::start();
    let (base, hand) = push_base(&reg, "winbase");
    let fx = GoFixture::app();
    with_base(&fx, &base);
    let repo = format!("{}/win", reg.host());
    let out = ko_ok(fx.ko().args(["build", "--platform=windows/amd64", "./cmd/hello"]).env("KO_DOCKER_REPO", &repo));
    let reference = refs(&out, 1).remove(0);
    assert!(out.stderr.contains(&format!("Building {HELLO_IP} for windows/amd64")), "{}", out.describe());

    let (_, manifest) = inspect_raw(&docker(&reference));
    assert_eq!(manifest["mediaType"], OCI_MANIFEST, "one matching platform: a plain image");
    assert_eq!(manifest["annotations"][ANN_BASE_NAME], base.as_str());
    assert_eq!(manifest["annotations"][ANN_BASE_DIGEST], hand[1].manifest.digest.as_str());
    let config = inspect_config(&docker(&reference));
    assert_eq!((config["os"].as_str(), config["architecture"].as_str()), (Some("windows"), Some("amd64")));
    assert_eq!(config["os.version"], OS_VERSION);
    assert_eq!(config["config"]["Entrypoint"], json!([r"C:\ko-app\hello"]));
    let env = env_map(&config);
    assert_eq!(env.get("PATH").map(String::as_str), Some(r"C:\ko-app"), "{env:?}");
    assert_eq!(env.get("KO_DATA_PATH").map(String::as_str), Some(r"C:\var\run\ko"));
    assert_eq!(env.get("BASE_ARCH").map(String::as_str), Some("amd64"), "the base's env is kept");
    let comments: Vec<&str> =
        config["history"].as_array().unwrap().iter().filter_map(|h| h["comment"].as_str()).collect();
    assert_eq!(comments, ["kodata contents, at $KO_DATA_PATH", "go build output, at /ko-app/hello"]);

    let img = pull(&docker(&reference));
    assert_eq!(img.layer_count(), 3, "the base layer, kodata, the binary");
    assert_eq!(img.layers()[2]["mediaType"], OCI_LAYER_GZIP, "layer types follow the base");

    // kodata: Hives, Files, Files/var/run/ko/**, the symlink skipped, byte for byte upstream's.
    let kodata = img.layer_tar(1);
    let names: Vec<String> = pax_entries(&kodata).into_iter().map(|e| e.name).collect();
    assert_eq!(
        names,
        [
            "Hives",
            "Files",
            "Files/var",
            "Files/var/run",
            "Files/var/run/ko",
            "Files/var/run/ko/greeting.txt",
            "Files/var/run/ko/nested",
            "Files/var/run/ko/nested/deep.txt"
        ]
    );
    assert_eq!(digest_of(&kodata), digest_of(&gotar_kodata(&fx.path().join("cmd/hello"), "windows", 0)));

    // The binary: Files/ko-app/hello (no .exe, as upstream since v0.8) with the security
    // descriptor Windows needs to run it.
    let tar = img.layer_tar(2);
    let entries = pax_entries(&tar);
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["Hives", "Files", "Files/ko-app", "Files/ko-app/hello"]);
    let sd = b"AQAAgBQAAAAkAAAAAAAAAAAAAAABAgAAAAAABSAAAAAhAgAAAQIAAAAAAAUgAAAAIQIAAA==";
    assert_eq!(entries[3].records.get("MSWINDOWS.rawsd").map(Vec::as_slice), Some(&sd[..]));
    let binary = entry(&tar_entries(&tar), "Files/ko-app/hello").content.clone();
    assert_eq!(&binary[..2], b"MZ", "a Windows executable");
    assert_eq!(digest_of(&tar), digest_of(&gotar_binary(&binary, "hello", "windows", None)));

    // Its SBOM comes from the Windows binary's build information.
    let (name, digest) = split_digest(&reference);
    let (_, document) = fetch_sbom(&name, &digest);
    let doc: Value = serde_json::from_slice(&document).unwrap();
    assert_eq!(doc["files"][0]["fileName"], "/ko-app/hello");
    assert_eq!(doc["files"][0]["checksums"][0]["checksumValue"], digest_of(&binary)[7..]);
    let packages = doc["packages"].as_array().unwrap();
    assert!(packages.iter().any(|p| p["name"] == "example.com/app"), "{doc:#}");

    // An os.version prefix matches, as upstream matches it.
    let out = ko_ok(
        fx.ko().args(["build", "--platform=windows/amd64:10.0.17763", "./cmd/hello"]).env("KO_DOCKER_REPO", &repo),
    );
    assert_eq!(refs(&out, 1)[0], reference);
}

#[test]
fn platform_all_includes_the_windows_image() {
    let reg = Registry::start();
    let (base, hand) = push_base(&reg, "winall");
    let fx = GoFixture::app();
    with_base(&fx, &base);
    let repo = format!("{}/winall", reg.host());
    let out = ko_ok(fx.ko().args(["build", "--platform=all", "./cmd/hello"]).env("KO_DOCKER_REPO", &repo));
    let (name, digest) = split_digest(&refs(&out, 1)[0]);
    let (_, index) = inspect_raw(&docker(&format!("{name}@{digest}")));
    let manifests = index["manifests"].as_array().unwrap();
    let platforms: Vec<&Value> = manifests.iter().map(|m| &m["platform"]).collect();
    assert_eq!(
        platforms,
        [
            &json!({"architecture": "amd64", "os": "linux"}),
            &json!({"architecture": "amd64", "os": "windows", "os.version": OS_VERSION})
        ]
    );
    let linux = inspect_config(&docker(&format!("{name}@{}", manifests[0]["digest"].as_str().unwrap())));
    assert_eq!(linux["config"]["Entrypoint"], json!(["/ko-app/hello"]));
    let windows = inspect_config(&docker(&format!("{name}@{}", manifests[1]["digest"].as_str().unwrap())));
    assert_eq!(windows["config"]["Entrypoint"], json!([r"C:\ko-app\hello"]));
    assert_eq!(index["annotations"][ANN_BASE_DIGEST], digest_of(&inspect_raw(&docker(&base)).0).as_str());
    assert_eq!(hand.len(), 2);
}

#[test]
fn a_windows_platform_needs_a_windows_base() {
    let fx = GoFixture::app();
    let out = ko_fail(
        fx.ko()
            .args(["build", "--push=false", "--platform=windows/amd64", "./cmd/hello"])
            .env("KO_DOCKER_REPO", "127.0.0.1:1/x"),
        KO_TIMEOUT,
    );
    assert!(
        out.stderr.contains("windows/amd64 needs a Windows base image, and static has no Windows files"),
        "{}",
        out.describe()
    );
}
