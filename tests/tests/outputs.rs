//! Output sinks and naming: --push=false, --oci-layout-path, --tarball,
//! --image-refs, --tags, --tag-only, -B, --bare, -P.

use std::fs;
use std::io::Read;

use ko_tests::*;
use serde_json::Value;

#[test]
fn push_false_pushes_nothing() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let repo = format!("{}/nopush", reg.host());
    let out = ko_ok(fx.ko().args(["build", "--push=false", "./cmd/hello"]).env("KO_DOCKER_REPO", &repo));
    let r = refs(&out, 1).remove(0);
    assert!(r.starts_with(&format!("{repo}/hello-{HELLO_MD5}")), "ref is named as if pushed: {r}");
    let writes: Vec<Request> = reg.requests().into_iter().filter(Request::is_write).collect();
    assert!(writes.is_empty(), "--push=false wrote to the registry: {writes:?}");
    assert!(!exists(&docker(&r)), "{r} must not exist in the registry");

    // The digest is the one a real push produces.
    let pushed = ko_ok(fx.ko().args(["build", "./cmd/hello"]).env("KO_DOCKER_REPO", &repo));
    assert_eq!(
        split_digest(&refs(&pushed, 1)[0]).1,
        split_digest(&r).1,
        "--push=false computes the same digest as a push"
    );
}

#[test]
fn oci_layout_path_writes_a_valid_layout() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let layout = fx.scratch("layout");
    let out = ko_ok(
        fx.ko()
            .args(["build", "./cmd/hello", "--oci-layout-path"])
            .arg(&layout)
            .env("KO_DOCKER_REPO", format!("{}/layout", reg.host())),
    );
    let r = refs(&out, 1).remove(0);
    let (_, digest) = split_digest(&r);

    let oci_layout: Value =
        serde_json::from_slice(&fs::read(layout.join("oci-layout")).expect("oci-layout file")).unwrap();
    assert_eq!(oci_layout["imageLayoutVersion"], "1.0.0");
    let index: Value = serde_json::from_slice(&fs::read(layout.join("index.json")).expect("index.json")).unwrap();
    assert_eq!(index["schemaVersion"], 2, "index.json: {index}");
    let manifests = index["manifests"].as_array().expect("index.json manifests");
    let desc = manifests
        .iter()
        .find(|m| m["digest"] == digest.as_str())
        .unwrap_or_else(|| panic!("index.json lacks {digest}: {index}"));
    assert_eq!(desc["mediaType"], OCI_MANIFEST);
    let blob = fs::read(layout.join("blobs/sha256").join(&digest[7..])).expect("manifest blob");
    assert_eq!(desc["size"].as_u64(), Some(blob.len() as u64));
    assert_eq!(digest_of(&blob), digest);

    // skopeo reads the layout, and every blob is there.
    let transport = format!("oci:{}", layout.display());
    let info = inspect(&transport);
    assert_eq!(info["Digest"], digest.as_str());
    let img = pull(&transport);
    assert_eq!(img.layer_count(), 3);
    assert_binary_layer(&img.layer_entries(2), "hello");

    // umoci can unpack it once it has a tag name.
    let tagged = fx.scratch("tagged");
    skopeo_copy(&transport, &format!("oci:{}:t", tagged.display()), false);
    let bundle = fx.scratch("bundle").join("b");
    run_tool(
        std::process::Command::new(require_tool("umoci"))
            .args(["unpack", "--rootless", "--image"])
            .arg(format!("{}:t", tagged.display()))
            .arg(&bundle),
    );
    let unpacked = bundle.join("rootfs/ko-app/hello");
    assert!(unpacked.is_file(), "umoci unpacked /ko-app/hello");
    assert_eq!(fs::read_to_string(bundle.join("rootfs/var/run/ko/greeting.txt")).unwrap(), "greetings from kodata\n");
    let listed = run_tool(std::process::Command::new(require_tool("umoci")).args(["ls", "--layout"]).arg(&tagged));
    assert_eq!(String::from_utf8_lossy(&listed).trim(), "t");
}

#[test]
fn tarball_is_a_docker_archive() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let tarball = fx.scratch("out").join("image.tar");
    let repo = format!("{}/tarball", reg.host());
    let out = ko_ok(fx.ko().args(["build", "./cmd/hello", "--tarball"]).arg(&tarball).env("KO_DOCKER_REPO", &repo));
    let r = refs(&out, 1).remove(0);
    assert!(tarball.is_file(), "--tarball wrote {}", tarball.display());

    let transport = format!("docker-archive:{}", tarball.display());
    let info = inspect(&transport);
    assert_eq!(info["Layers"].as_array().map(Vec::len), Some(3), "{info}");
    let config = inspect_config(&transport);
    assert_eq!(config["config"]["Entrypoint"], serde_json::json!(["/ko-app/hello"]));

    // Same config as the pushed image.
    let (_, pushed) = inspect_raw(&docker(&r));
    let config_digest = pushed["config"]["digest"].as_str().unwrap().to_string();
    let mut manifest_json = None;
    let mut names = Vec::new();
    let f = fs::File::open(&tarball).unwrap();
    let mut archive = tar::Archive::new(f);
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let p = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        if p == "manifest.json" {
            let mut s = String::new();
            e.read_to_string(&mut s).unwrap();
            manifest_json = Some(serde_json::from_str::<Value>(&s).unwrap());
        }
        names.push(p);
    }
    let manifest_json = manifest_json.unwrap_or_else(|| panic!("no manifest.json in {names:?}"));
    let m = &manifest_json[0];
    assert!(
        m["Config"].as_str().unwrap_or("").contains(&config_digest[7..]),
        "tarball config {} is the pushed config {config_digest}",
        m["Config"]
    );
    let tags: Vec<&str> =
        m["RepoTags"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    assert!(tags.contains(&format!("{repo}/hello-{HELLO_MD5}:latest").as_str()), "RepoTags {tags:?}");
}

#[test]
fn image_refs_file_lists_printed_refs() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let file = fx.scratch("out").join("refs.txt");
    fs::write(&file, "stale content\n").unwrap();
    let out = ko_ok(
        fx.ko()
            .args(["build", "./cmd/second", "./cmd/hello", "--image-refs"])
            .arg(&file)
            .env("KO_DOCKER_REPO", format!("{}/refs", reg.host())),
    );
    let printed = refs(&out, 2);
    let written: Vec<String> =
        fs::read_to_string(&file).unwrap().lines().filter(|l| !l.trim().is_empty()).map(String::from).collect();
    assert_eq!(written, printed, "--image-refs holds the printed refs");
}

#[test]
fn tags_point_at_the_printed_digest() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let repo = format!("{}/tags", reg.host());
    let out = ko_ok(fx.ko().args(["build", "-t", "v1,v2", "./cmd/hello"]).env("KO_DOCKER_REPO", &repo));
    let r = refs(&out, 1).remove(0);
    let (_, digest) = split_digest(&r);
    let name = format!("{repo}/hello-{HELLO_MD5}");
    for tag in ["v1", "v2"] {
        let info = inspect(&docker(&format!("{name}:{tag}")));
        assert_eq!(info["Digest"], digest.as_str(), "tag {tag}");
    }
    assert!(!exists(&docker(&format!("{name}:latest"))), "latest is only the default when no -t is given");

    // Default tag: latest.
    let out = ko_ok(fx.ko().args(["build", "./cmd/second"]).env("KO_DOCKER_REPO", &repo));
    let r = refs(&out, 1).remove(0);
    let info = inspect(&docker(&format!("{repo}/second-{SECOND_MD5}:latest")));
    assert_eq!(info["Digest"], split_digest(&r).1.as_str());

    // One non-latest tag: name:tag@digest.
    let out = ko_ok(fx.ko().args(["build", "--tags=v3", "./cmd/hello"]).env("KO_DOCKER_REPO", &repo));
    let r = refs(&out, 1).remove(0);
    assert_eq!(r, format!("{name}:v3@{digest}"));
}

#[test]
fn tag_only_prints_tag_without_digest() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let repo = format!("{}/tagonly", reg.host());
    let out = ko_ok(fx.ko().args(["build", "--tag-only", "-t", "v9", "./cmd/hello"]).env("KO_DOCKER_REPO", &repo));
    let lines = out.lines();
    let name = format!("{repo}/hello-{HELLO_MD5}:v9");
    assert_eq!(lines, vec![name.clone()], "--tag-only prints repo:tag\n{}", out.describe());
    assert!(exists(&docker(&name)));
}

#[test]
fn naming_flags() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let repo = format!("{}/naming", reg.host());
    for (flag, name) in [
        ("-B", format!("{repo}/hello")),
        ("--base-import-paths", format!("{repo}/hello")),
        ("--bare", repo.clone()),
        ("-P", format!("{repo}/{HELLO_IP}")),
        ("--preserve-import-paths", format!("{repo}/{HELLO_IP}")),
    ] {
        let out = ko_ok(fx.ko().args(["build", flag, "./cmd/hello"]).env("KO_DOCKER_REPO", &repo));
        let r = refs(&out, 1).remove(0);
        let (got_name, digest) = split_digest(&r);
        assert_eq!(got_name, name, "{flag}\n{}", out.describe());
        assert_eq!(inspect(&docker(&r))["Digest"], digest.as_str(), "{flag}: image exists");
        assert_eq!(inspect(&docker(&format!("{name}:latest")))["Digest"], digest.as_str(), "{flag}: latest tag");
    }
}

#[test]
fn build_flags_change_the_binary() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let repo = format!("{}/flags", reg.host());
    let plain = ko_ok(fx.ko().args(["build", "./cmd/hello"]).env("KO_DOCKER_REPO", &repo));
    let plain = refs(&plain, 1).remove(0);

    let stripped =
        ko_ok(fx.ko().args(["build", "--ldflags=-s -w", "-j", "1", "./cmd/hello"]).env("KO_DOCKER_REPO", &repo));
    let stripped = refs(&stripped, 1).remove(0);
    let noopt = ko_ok(fx.ko().args(["build", "--disable-optimizations", "./cmd/hello"]).env("KO_DOCKER_REPO", &repo));
    let noopt = refs(&noopt, 1).remove(0);

    let size = |r: &str| {
        let img = pull(&docker(r));
        binary_from_layer(&img.layer_entries(2), "hello").len()
    };
    let (p, s, n) = (size(&plain), size(&stripped), size(&noopt));
    assert!(s < p, "--ldflags=-s -w strips the binary ({s} >= {p})");
    assert_ne!(n, p, "--disable-optimizations changes the binary");
    assert_ne!(split_digest(&plain).1, split_digest(&noopt).1);
}

/// `--json` gives tools the import path, reference and (for an index) children of each argument.
#[test]
fn json_output_describes_each_argument() {
    let fx = GoFixture::app();
    let out = ko_ok(fx.ko().args(["build", "--json", "--push=false", "./cmd/hello", "example.com/app/cmd/second"]));
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let plain = ko_ok(fx.ko().args(["build", "--push=false", "./cmd/hello", "example.com/app/cmd/second"]));
    let entries = v.as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(plain.lines().len(), 2, "{}", plain.describe());
    assert_eq!(entries[0]["importPath"], "example.com/app/cmd/hello");
    assert_eq!(entries[1]["importPath"], "example.com/app/cmd/second");
    for (e, line) in entries.iter().zip(plain.lines()) {
        assert_eq!(e["reference"], line.as_str(), "same reference as the plain output");
        assert_eq!(e["children"], serde_json::json!([]));
    }
}

/// A bare `--push` means true and leaves the next word to be an import path (as upstream's cobra
/// flags do); a variable that is not UTF-8 in the environment is passed along to `go build`,
/// byte for byte, not a crash.
#[test]
fn bare_push_flag_and_a_non_utf8_environment() {
    use std::os::unix::ffi::OsStrExt;
    let reg = Registry::start();
    let fx = GoFixture::app();
    let repo = format!("{}/flags", reg.host());
    // A go that keeps the environment `go build` got.
    let seen = fx.scratch("env").join("build.env");
    let go = write_executable(
        &fx.scratch("bin"),
        "go",
        format!(
            "#!/bin/sh
[ \"$1\" = build ] && env > {}
exec {} \"$@\"
",
            seen.display(),
            go_bin().display()
        )
        .as_bytes(),
    );
    let out = ko_ok(
        fx.ko()
            .args(["build", "--push", "./cmd/hello"])
            .env("KO_DOCKER_REPO", &repo)
            .env("KO_GO_PATH", &go)
            .env("KO_TEST_NOT_UTF8", std::ffi::OsStr::from_bytes(b"\xff\xfe")),
    );
    let r = refs(&out, 1).remove(0);
    assert!(r.starts_with(&format!("{repo}/hello-")), "{}", out.describe());
    assert!(exists(&docker(&r)), "--push pushed {r}");
    let env = fs::read(&seen).unwrap();
    assert!(
        env.split(|b| *b == b'\n').any(|l| l == b"KO_TEST_NOT_UTF8=\xff\xfe"),
        "go build got the variable's bytes: {}",
        String::from_utf8_lossy(&env)
    );
}
