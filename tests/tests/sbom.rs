//! SBOMs, on by default as upstream's: the SPDX document attached to each pushed image (and
//! index) at `sha256-<hex>.sbom`, fetched here with skopeo by that tag and read as JSON, never
//! with ko's code; `--sbom-dir` files; the same build giving the same document; `--sbom=none`;
//! `COSIGN_REPOSITORY`; and a refused SBOM leaving the image's tags where they were.

use std::fs;
use std::process::Command;

use ko_tests::*;
use serde_json::Value;

const IDS_IP: &str = "example.com/deps/cmd/ids";

fn go_version() -> String {
    String::from_utf8(run_tool(Command::new(go_bin()).args(["env", "GOVERSION"]))).unwrap().trim().to_string()
}

fn package<'a>(doc: &'a Value, name: &str) -> &'a Value {
    let packages = doc["packages"].as_array().expect("packages");
    packages.iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("no package {name:?} in {doc:#}"))
}

fn purl(package: &Value) -> &str {
    package["externalRefs"][0]["referenceLocator"].as_str().unwrap()
}

#[test]
fn an_spdx_sbom_is_attached_to_each_image() {
    let reg = Registry::start();
    let fx = GoFixture::copy("deps");
    let repo = format!("{}/sbom", reg.host());
    let dir = fx.scratch("sboms");
    let out = ko_ok(fx.ko().args(["build", "./cmd/ids", "--sbom-dir"]).arg(&dir).env("KO_DOCKER_REPO", &repo));
    let reference = refs(&out, 1).remove(0);
    let (name, digest) = split_digest(&reference);
    let tag = format!("sha256-{}.sbom", &digest[7..]);
    assert!(out.stderr.contains(&format!("Building {IDS_IP} for linux/amd64")), "{}", out.describe());
    assert!(out.stderr.contains(&format!("Published SBOM {name}:{tag}")), "{}", out.describe());

    let (manifest, document) = fetch_sbom(&name, &digest);
    assert_eq!(manifest["layers"][0]["mediaType"], "text/spdx+json", "{manifest}");
    let doc: Value = serde_json::from_slice(&document).expect("the SBOM is JSON");
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    assert_eq!(doc["dataLicense"], "CC0-1.0");
    assert_eq!(doc["documentNamespace"], format!("http://spdx.org/spdxdocs/ko/{digest}"));
    let image = package(&doc, &digest);
    assert_eq!(image["primaryPackagePurpose"], "CONTAINER");
    assert!(purl(image).starts_with(&format!("pkg:oci/image@{digest}?mediaType=")), "{image}");

    let main = package(&doc, "example.com/deps");
    assert_eq!(purl(main), "pkg:golang/example.com/deps@(devel)?type=module");
    let uuid = package(&doc, "github.com/google/uuid");
    assert_eq!(uuid["versionInfo"], "v1.6.0");
    assert_eq!(uuid["downloadLocation"], "https://proxy.golang.org/github.com/google/uuid/@v/v1.6.0.zip");
    // go.sum's h1: hash, as upstream reports it (base64 decoded to hex).
    assert_eq!(
        uuid["checksums"][0]["checksumValue"],
        "348bda24330eb231c0f27d630212d2833ac0cf2d4782bfa136b6f9edefbde05d"
    );
    let stdlib = package(&doc, "stdlib");
    assert_eq!(stdlib["versionInfo"], go_version(), "the Go version the binary was built with");

    // The binary, with the SHA-256 of what the image holds.
    let img = pull(&docker(&reference));
    let binary = binary_from_layer(&img.layer_entries(img.layer_count() - 1), "ids");
    assert_eq!(doc["files"][0]["fileName"], "/ko-app/ids");
    assert_eq!(doc["files"][0]["checksums"][0]["checksumValue"], digest_of(&binary)[7..]);
    let created = img.config()["created"].as_str().map(str::to_string).unwrap_or("0001-01-01T00:00:00Z".into());
    assert_eq!(doc["creationInfo"]["created"], created.as_str(), "the config's time, not the clock");
    let relationships: Vec<(String, String)> = doc["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["relationshipType"].as_str().unwrap().into(), r["relatedSpdxElement"].as_str().unwrap().into()))
        .collect();
    assert!(
        relationships.contains(&("DEPENDS_ON".into(), uuid["SPDXID"].as_str().unwrap().into())),
        "{relationships:?}"
    );
    assert!(relationships.iter().any(|(k, _)| k == "DESCENDANT_OF"), "the built-in base: {relationships:?}");

    // --sbom-dir holds the same bytes, named as upstream names them.
    assert_eq!(fs::read(dir.join("ids-linux-amd64.spdx.json")).unwrap(), document);
    assert_eq!(tree(&dir), ["ids-linux-amd64.spdx.json"]);

    // The same build gives the same image and the same SBOM digest, and uploads nothing.
    let sbom_tag = docker(&format!("{name}:{tag}"));
    let sbom_digest = digest_of(&inspect_raw(&sbom_tag).0);
    let mark = reg.mark();
    let again = ko_ok(fx.ko().args(["build", "./cmd/ids"]).env("KO_DOCKER_REPO", &repo));
    assert_eq!(refs(&again, 1)[0], reference);
    let uploads: Vec<Request> = reg.requests_since(mark).into_iter().filter(Request::is_blob_upload).collect();
    assert!(uploads.is_empty(), "a rebuild uploaded {uploads:?}\n{}", again.describe());
    assert_eq!(digest_of(&inspect_raw(&sbom_tag).0), sbom_digest, "the SBOM tag did not move");
    assert_eq!(fetch_sbom(&name, &digest).1, document);
}

#[test]
fn an_index_gets_its_own_sbom_and_each_platform_one() {
    let reg = Registry::start();
    let fx = GoFixture::copy("deps");
    let repo = format!("{}/sbomidx", reg.host());
    let dir = fx.scratch("sboms");
    let out = ko_ok(
        fx.ko()
            .args(["build", "./cmd/ids", "--platform=linux/amd64,linux/arm64", "--sbom-dir"])
            .arg(&dir)
            .env("KO_DOCKER_REPO", &repo),
    );
    let (name, digest) = split_digest(&refs(&out, 1)[0]);
    let (_, index) = inspect_raw(&docker(&format!("{name}@{digest}")));
    let children: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let p = &m["platform"];
            (
                m["digest"].as_str().unwrap().to_string(),
                format!("{}/{}", p["os"].as_str().unwrap(), p["architecture"].as_str().unwrap()),
            )
        })
        .collect();
    assert_eq!(children.len(), 2);

    let (_, document) = fetch_sbom(&name, &digest);
    let doc: Value = serde_json::from_slice(&document).unwrap();
    assert!(purl(package(&doc, &digest)).starts_with(&format!("pkg:oci/index@{digest}?mediaType=")));
    assert_eq!(fs::read(dir.join("ids-index.spdx.json")).unwrap(), document);
    for (child, platform) in &children {
        let entry = package(&doc, child);
        assert_eq!(entry["versionInfo"], platform.as_str());
        let (_, child_document) = fetch_sbom(&name, child);
        let child_doc: Value = serde_json::from_slice(&child_document).unwrap();
        assert_eq!(package(&child_doc, "github.com/google/uuid")["versionInfo"], "v1.6.0");
        let file = format!("ids-{}.spdx.json", platform.replace('/', "-"));
        assert_eq!(fs::read(dir.join(&file)).unwrap(), child_document, "{file}");
    }
    let mut files = tree(&dir);
    files.sort();
    assert_eq!(files, ["ids-index.spdx.json", "ids-linux-amd64.spdx.json", "ids-linux-arm64.spdx.json"]);
}

#[test]
fn sbom_none_attaches_nothing_and_cosign_repository_moves_them() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let repo = format!("{}/nosbom", reg.host());
    let out = ko_ok(fx.ko().args(["build", "--sbom=none", "./cmd/hello"]).env("KO_DOCKER_REPO", &repo));
    let (name, _) = split_digest(&refs(&out, 1)[0]);
    assert_eq!(list_tags(&name), ["latest"], "no SBOM tag with --sbom=none");
    assert!(!out.stderr.contains("SBOM"), "{}", out.describe());

    let sboms = format!("{}/sboms", reg.host());
    let out =
        ko_ok(fx.ko().args(["build", "./cmd/second"]).env("KO_DOCKER_REPO", &repo).env("COSIGN_REPOSITORY", &sboms));
    let (name, digest) = split_digest(&refs(&out, 1)[0]);
    assert_eq!(list_tags(&name), ["latest"], "the SBOM went elsewhere");
    let (_, document) = fetch_sbom(&sboms, &digest);
    let doc: Value = serde_json::from_slice(&document).unwrap();
    assert_eq!(package(&doc, "example.com/app")["name"], "example.com/app");
}

/// Decided here (upstream pushes the SBOM alongside its tags): the image's manifest goes up by
/// digest, then its SBOM, and only then the tags, so an SBOM the registry refuses fails the
/// build with no tag moved.
#[test]
fn a_refused_sbom_moves_no_tag() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let repo = format!("{}/refused", reg.host());
    let out = ko_fail(
        fx.ko()
            .args(["build", "./cmd/hello"])
            .env("KO_DOCKER_REPO", &repo)
            .env("COSIGN_REPOSITORY", "127.0.0.1:1/nowhere"),
        KO_TIMEOUT,
    );
    assert!(out.stderr.contains("cannot publish the SBOM of"), "{}", out.describe());
    assert!(out.stderr.contains("--sbom=none"), "says how to publish without: {}", out.describe());
    let image = format!("{repo}/hello-{HELLO_MD5}");
    assert!(!exists(&docker(&format!("{image}:latest"))), "the tag was moved\n{}", out.describe());
}
