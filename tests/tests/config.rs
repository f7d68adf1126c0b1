//! `.ko.yaml` in full: every top-level key in the file and as `KO_<KEY>`, image settings per
//! build and as defaults (precedence: flags, then the build, then the defaults), diagnostics for
//! unknown keys and wrong shapes (warnings, errors under `KO_STRICT_CONFIG=1`), `builds:` entries
//! that name no package or the same one twice, and `linux_capabilities` as upstream writes it.

use std::fs;
use std::path::Path;
use std::process::Command;

use ko_tests::*;
use serde_json::Value;

/// What one build gave: the reference, the image config and manifest, and ko's stderr.
struct Built {
    reference: String,
    config: Value,
    manifest: Value,
    stderr: String,
}

fn build(fx: &GoFixture, repo: &str, args: &[&str], env: &[(&str, &str)]) -> Built {
    let mut cmd = fx.ko();
    cmd.arg("build").args(args).env("KO_DOCKER_REPO", repo);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = ko_ok(&mut cmd);
    let reference = refs(&out, 1).remove(0);
    let config = inspect_config(&docker(&reference));
    let (_, manifest) = inspect_raw(&docker(&reference));
    Built { reference, config, manifest, stderr: out.stderr }
}

fn run_binary(fx: &GoFixture, reference: &str, name: &str) -> String {
    let img = pull(&docker(reference));
    let binary = binary_from_layer(&img.layer_entries(img.layer_count() - 1), name);
    let exe = write_executable(&fx.scratch("bin"), name, &binary);
    String::from_utf8_lossy(&run_tool(&mut Command::new(&exe))).into_owned()
}

fn layers(b: &Built) -> usize {
    b.manifest["layers"].as_array().unwrap().len()
}

/// One top-level key: the `.ko.yaml` that sets it, the same setting as `KO_<KEY>` (with any other
/// file content it needs), what to build, and what the image must show.
struct Case {
    key: &'static str,
    yaml: &'static str,
    var: (&'static str, &'static str),
    /// `.ko.yaml` the variable's run keeps (settings the key works with).
    with: &'static str,
    path: &'static str,
    check: fn(&GoFixture, &Built),
}

const CASES: &[Case] = &[
    Case {
        key: "defaultBaseImage",
        yaml: "defaultBaseImage: scratch\n",
        var: ("KO_DEFAULTBASEIMAGE", "scratch"),
        with: "",
        path: "./cmd/hello",
        check: |_, b| assert_eq!(layers(b), 2, "scratch: kodata and binary only"),
    },
    Case {
        key: "baseImageOverrides",
        yaml: "baseImageOverrides:\n  example.com/app/cmd/hello: scratch\n",
        var: ("KO_BASEIMAGEOVERRIDES", r#"{"example.com/app/cmd/hello": "scratch"}"#),
        with: "",
        path: "./cmd/hello",
        check: |_, b| assert_eq!(layers(b), 2),
    },
    Case {
        key: "defaultPlatforms",
        yaml: "defaultPlatforms: [linux/arm64]\n",
        var: ("KO_DEFAULTPLATFORMS", "linux/arm64"),
        with: "",
        path: "./cmd/hello",
        check: |_, b| assert_eq!(b.config["architecture"], "arm64"),
    },
    Case {
        key: "defaultEnv",
        yaml: "defaultEnv: [KO_TEST_BUILD_ENV=from-default-env]\ndefaultLdflags: ['-X main.buildEnv={{.Env.KO_TEST_BUILD_ENV}}']\n",
        var: ("KO_DEFAULTENV", "KO_TEST_BUILD_ENV=from-default-env"),
        with: "defaultLdflags: ['-X main.buildEnv={{.Env.KO_TEST_BUILD_ENV}}']\n",
        path: "./cmd/version",
        check: |fx, b| {
            assert_eq!(
                run_binary(fx, &b.reference, "version"),
                "version=dev env=from-default-env date=unset tags=none\n"
            )
        },
    },
    Case {
        key: "defaultFlags",
        yaml: "defaultFlags: -tags special\n",
        var: ("KO_DEFAULTFLAGS", "-tags special"),
        with: "",
        path: "./cmd/version",
        check: |fx, b| {
            assert_eq!(run_binary(fx, &b.reference, "version"), "version=dev env=unset date=unset tags=special\n")
        },
    },
    Case {
        key: "defaultLdflags",
        yaml: "defaultLdflags: [-X main.version=1.0]\n",
        var: ("KO_DEFAULTLDFLAGS", "-X main.version=1.0"),
        with: "",
        path: "./cmd/version",
        check: |fx, b| {
            assert_eq!(run_binary(fx, &b.reference, "version"), "version=1.0 env=unset date=unset tags=none\n")
        },
    },
    Case {
        key: "layerCompression",
        yaml: "layerCompression: zstd\n",
        var: ("KO_LAYERCOMPRESSION", "zstd"),
        with: "",
        path: "./cmd/hello",
        check: |_, b| assert_eq!(b.manifest["layers"][2]["mediaType"], OCI_LAYER_ZSTD),
    },
    Case {
        key: "defaultImageEnv",
        yaml: "defaultImageEnv: [GREETING=hi]\n",
        var: ("KO_DEFAULTIMAGEENV", "GREETING=hi"),
        with: "",
        path: "./cmd/hello",
        check: |_, b| assert_eq!(env_map(&b.config).get("GREETING").map(String::as_str), Some("hi")),
    },
    Case {
        key: "defaultLabels",
        yaml: "defaultLabels: {team: web}\n",
        var: ("KO_DEFAULTLABELS", "team=web"),
        with: "",
        path: "./cmd/hello",
        check: |_, b| assert_eq!(b.config["config"]["Labels"]["team"], "web"),
    },
    Case {
        key: "defaultAnnotations",
        yaml: "defaultAnnotations: {example.com/note: hi}\n",
        var: ("KO_DEFAULTANNOTATIONS", r#"{"example.com/note": "hi"}"#),
        with: "",
        path: "./cmd/hello",
        check: |_, b| assert_eq!(b.manifest["annotations"]["example.com/note"], "hi", "{}", b.manifest),
    },
    Case {
        key: "defaultUser",
        yaml: "defaultUser: 1234\n",
        var: ("KO_DEFAULTUSER", "1234"),
        with: "",
        path: "./cmd/hello",
        check: |_, b| assert_eq!(b.config["config"]["User"], "1234"),
    },
    Case {
        key: "defaultArgs",
        yaml: "defaultArgs: [--port=8080, -v]\n",
        var: ("KO_DEFAULTARGS", "--port=8080 -v"),
        with: "",
        path: "./cmd/hello",
        check: |_, b| assert_eq!(b.config["config"]["Cmd"], serde_json::json!(["--port=8080", "-v"])),
    },
    Case {
        key: "defaultEntrypoint",
        yaml: "defaultEntrypoint: [--log-format=json]\n",
        var: ("KO_DEFAULTENTRYPOINT", "--log-format=json"),
        with: "",
        path: "./cmd/hello",
        check: |_, b| {
            assert_eq!(b.config["config"]["Entrypoint"], serde_json::json!(["/ko-app/hello", "--log-format=json"]))
        },
    },
    Case {
        key: "builds",
        yaml: "builds:\n- id: from-builds\n  main: ./cmd/version\n  ldflags: [-X main.version=from-builds]\n",
        var: (
            "KO_BUILDS",
            r#"[{"id": "from-builds", "main": "./cmd/version", "ldflags": ["-X main.version=from-builds"]}]"#,
        ),
        with: "",
        path: "./cmd/version",
        check: |fx, b| {
            assert!(
                b.stderr.contains("Using build config from-builds for example.com/app/cmd/version"),
                "{}",
                b.stderr
            );
            assert_eq!(run_binary(fx, &b.reference, "version"), "version=from-builds env=unset date=unset tags=none\n")
        },
    },
];

#[test]
fn every_top_level_key_works_in_the_file_and_as_ko_key() {
    let reg = Registry::start();
    let repo = format!("{}/keys", reg.host());
    let mut checked = Vec::new();
    for case in CASES {
        let fx = GoFixture::app();
        fs::write(fx.path().join(".ko.yaml"), case.yaml).unwrap();
        let from_file = build(&fx, &repo, &[case.path], &[]);
        assert!(!from_file.stderr.contains("WARNING"), "{}: {}", case.key, from_file.stderr);
        (case.check)(&fx, &from_file);

        let fx = GoFixture::app();
        fs::write(fx.path().join(".ko.yaml"), case.with).unwrap();
        let from_env = build(&fx, &repo, &[case.path], &[case.var]);
        (case.check)(&fx, &from_env);
        assert_eq!(from_env.reference, from_file.reference, "{} and {} give the same image", case.key, case.var.0);
        checked.push(case.key);
    }
    // `strict` changes resolve, not build.
    for (yaml, env) in [("strict: false\n", None), ("", Some(("KO_STRICT", "false")))] {
        let fx = GoFixture::app();
        fs::write(fx.path().join(".ko.yaml"), yaml).unwrap();
        fs::write(fx.path().join("bare.yaml"), "image: example.com/app/cmd/second\n").unwrap();
        let mut cmd = fx.ko();
        cmd.args(["resolve", "-f", "bare.yaml"]).env("KO_DOCKER_REPO", &repo);
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let out = ko_ok(&mut cmd);
        assert!(out.stdout.starts_with(&format!("image: {repo}/second-{SECOND_MD5}@sha256:")), "{}", out.describe());
    }
    checked.push("strict");
    assert_eq!(checked.len(), 15, "every key of .ko.yaml is covered");
}

#[test]
fn image_settings_flags_win_over_the_build_over_the_defaults() {
    let reg = Registry::start();
    let repo = format!("{}/precedence", reg.host());
    let fx = GoFixture::app();
    fs::write(
        fx.path().join(".ko.yaml"),
        "defaultLabels: {a: default, b: default, c: default}\n\
         defaultAnnotations: {example.com/x: default, example.com/y: default}\n\
         defaultUser: \"1\"\n\
         defaultImageEnv: [FROM=default, ONLY_DEFAULT=yes]\n\
         defaultArgs: [--from=default]\n\
         builds:\n\
         - id: hello\n  main: ./cmd/hello\n  labels: {b: build, c: build}\n  annotations: {example.com/y: build}\n  user: \"2\"\n  imageEnv: [FROM=build]\n  args: [serve, --port=1]\n  entrypoint: [--json]\n",
    )
    .unwrap();
    let b = build(
        &fx,
        &repo,
        &["./cmd/hello", "--image-label", "c=cli", "--image-user", "3", "--image-annotation=example.com/x=cli"],
        &[],
    );
    let c = &b.config["config"];
    assert_eq!(c["Labels"]["a"], "default");
    assert_eq!(c["Labels"]["b"], "build");
    assert_eq!(c["Labels"]["c"], "cli");
    assert_eq!(c["User"], "3", "the flag wins");
    assert_eq!(b.manifest["annotations"]["example.com/x"], "cli");
    assert_eq!(b.manifest["annotations"]["example.com/y"], "build");
    let env = env_map(&b.config);
    assert_eq!(env.get("FROM").map(String::as_str), Some("build"));
    assert_eq!(env.get("ONLY_DEFAULT"), None, "a build's imageEnv replaces the default's, as env replaces defaultEnv");
    assert_eq!(env.get("KO_DATA_PATH").map(String::as_str), Some("/var/run/ko"));
    assert_eq!(c["Cmd"], serde_json::json!(["serve", "--port=1"]));
    assert_eq!(c["Entrypoint"], serde_json::json!(["/ko-app/hello", "--json"]));

    let b = build(&fx, &repo, &["./cmd/hello"], &[]);
    assert_eq!(b.config["config"]["User"], "2", "the build wins over the default");
    let b = build(&fx, &repo, &["./cmd/second"], &[]);
    let c = &b.config["config"];
    assert_eq!(
        (c["User"].as_str(), c["Labels"]["b"].as_str()),
        (Some("1"), Some("default")),
        "no build entry: the defaults"
    );
    assert_eq!(env_map(&b.config).get("ONLY_DEFAULT").map(String::as_str), Some("yes"));
    assert_eq!(c["Cmd"], serde_json::json!(["--from=default"]));
    assert_eq!(c["Entrypoint"], serde_json::json!(["/ko-app/second"]));
    assert_eq!(run_binary(&fx, &b.reference, "second"), "second app\n");

    // A multi-platform build carries the build's annotations on the index too.
    let b = build(&fx, &repo, &["./cmd/hello", "--platform=linux/amd64,linux/arm64"], &[]);
    assert_eq!(b.manifest["mediaType"], OCI_INDEX);
    assert_eq!(b.manifest["annotations"]["example.com/y"], "build", "{}", b.manifest);
}

fn ko_yaml(fx: &GoFixture, text: &str) -> String {
    let path = fx.path().join(".ko.yaml");
    fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn unknown_keys_and_wrong_types_warn_or_fail_under_strict_config() {
    let reg = Registry::start();
    let repo = format!("{}/typos", reg.host());
    let fx = GoFixture::app();
    let path = ko_yaml(&fx, "defaultBaseImg: scratch\nbuilds:\n- main: ./cmd/hello\n  ldflag: -s\n");
    let out = ko_ok(fx.ko().args(["build", "./cmd/hello"]).env("KO_DOCKER_REPO", &repo));
    for want in [
        format!("{path}:1:1: unknown key \"defaultBaseImg\" (did you mean defaultBaseImage?)"),
        format!("{path}:4:3: unknown key \"ldflag\" in builds[0] (did you mean ldflags?)"),
    ] {
        assert!(out.stderr.contains(&want), "stderr lacks {want:?}\n{}", out.describe());
    }
    let reference = refs(&out, 1).remove(0);
    assert_eq!(pull(&docker(&reference)).layer_count(), 3, "the misspelt key changed nothing: the built-in base");
    let out = ko_fail(
        fx.ko().args(["build", "./cmd/hello"]).env("KO_DOCKER_REPO", &repo).env("KO_STRICT_CONFIG", "1"),
        KO_TIMEOUT,
    );
    assert!(
        out.stderr.contains(&format!("{path}:1:1: unknown key \"defaultBaseImg\" (did you mean defaultBaseImage?)")),
        "{}",
        out.describe()
    );
    assert!(out.stderr.contains("KO_STRICT_CONFIG"), "{}", out.describe());

    // Wrong shapes name the key, the place, the shape expected with an example (issue 14).
    let path = ko_yaml(
        &fx,
        "defaultPlatforms: 5\nbaseImageOverrides:\n- example.com/app/cmd/hello\nbuilds:\n- id: v\n  main: ./cmd/version\n  ldflags:\n    version: 1\n",
    );
    let out = ko_ok(fx.ko().args(["build", "./cmd/version"]).env("KO_DOCKER_REPO", &repo));
    for want in [
        format!(
            "{path}:1:19: defaultPlatforms: expected a list of strings, or one comma-separated string, e.g. `defaultPlatforms: [linux/amd64, linux/arm64]`; found an integer (5); ignoring it"
        ),
        format!(
            "{path}:3:3: baseImageOverrides: expected a map of names to strings, e.g. `baseImageOverrides: {{example.com/app/cmd/tool: registry.example.com/base:debug}}`; found a list; ignoring it"
        ),
        format!(
            "{path}:8:5: builds[0] (id v).ldflags: expected a list of strings, or one string, e.g. `ldflags: [-s -w, -X main.version={{{{.Env.VERSION}}}}]`; found a map; ignoring it"
        ),
    ] {
        assert!(out.stderr.contains(&want), "stderr lacks {want:?}\n{}", out.describe());
    }
    assert!(!out.stderr.contains("untagged enum") && !out.stderr.contains("invalid type"), "{}", out.describe());
    let out = ko_fail(
        fx.ko().args(["build", "./cmd/version"]).env("KO_DOCKER_REPO", &repo).env("KO_STRICT_CONFIG", "true"),
        KO_TIMEOUT,
    );
    assert!(out.stderr.contains(&format!("{path}:1:19: defaultPlatforms: expected")), "{}", out.describe());

    // A variable of the wrong shape is named as the variable.
    ko_yaml(&fx, "");
    let out = ko_ok(fx.ko().args(["build", "./cmd/hello"]).env("KO_DOCKER_REPO", &repo).env("KO_STRICT", "maybe"));
    assert!(out.stderr.contains("KO_STRICT: strict: expected true or false"), "{}", out.describe());
}

#[test]
fn builds_naming_a_missing_main_or_one_main_twice_warn() {
    let reg = Registry::start();
    let repo = format!("{}/entries", reg.host());
    let fx = GoFixture::app();
    let path = ko_yaml(
        &fx,
        "builds:\n- id: gone\n  main: ./cmd/gone\n- id: first\n  main: ./cmd/version\n  ldflags: [-X main.version=first]\n- id: second\n  main: cmd/version/main.go\n  ldflags: [-X main.version=second]\n",
    );
    let out = ko_ok(fx.ko().args(["build", "./cmd/version"]).env("KO_DOCKER_REPO", &repo));
    let gone = format!("{path}:3:9: builds[0] (id gone) names main \"./cmd/gone\", which does not exist in");
    let twice = format!(
        "{path}:7:3: builds[1] (id first) and builds[2] (id second) both name example.com/app/cmd/version; builds[2] (id second) is used (the last one, as upstream)"
    );
    for want in [&gone, &twice] {
        assert!(out.stderr.contains(want.as_str()), "stderr lacks {want:?}\n{}", out.describe());
    }
    let reference = refs(&out, 1).remove(0);
    assert_eq!(run_binary(&fx, &reference, "version"), "version=second env=unset date=unset tags=none\n");
    let out = ko_fail(
        fx.ko().args(["build", "./cmd/version"]).env("KO_DOCKER_REPO", &repo).env("KO_STRICT_CONFIG", "1"),
        KO_TIMEOUT,
    );
    assert!(out.stderr.contains(&gone), "{}", out.describe());
}

/// The `security.capability` attribute upstream writes for `cap_net_bind_service`: revision 2,
/// permitted bit 10, not effective.
const NET_BIND_SERVICE: [u8; 20] = [0, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

#[test]
fn linux_capabilities_are_an_xattr_on_the_binary_as_upstream_writes_it() {
    let reg = Registry::start();
    let repo = format!("{}/caps", reg.host());
    let fx = GoFixture::app();
    let cache = fx.scratch("kocache");
    let caps_yaml = |caps: &str| format!("builds:\n- main: ./cmd/hello\n  linux_capabilities: {caps}\n");
    ko_yaml(&fx, &caps_yaml("[cap_net_bind_service]"));
    let kocache = cache.display().to_string();
    let b = build(&fx, &repo, &["./cmd/hello"], &[("KOCACHE", &kocache)]);
    let img = pull(&docker(&b.reference));
    let tar = img.layer_tar(img.layer_count() - 1);

    // Go's archive/tar reads the record with the kernel's bytes.
    let entries = pax_entries(&tar);
    let file = entries.iter().find(|e| e.name == "/ko-app/hello").expect("the binary's entry");
    assert_eq!(file.records.get("SCHILY.xattr.security.capability").map(Vec::as_slice), Some(&NET_BIND_SERVICE[..]));
    // Byte for byte what upstream writes for the same binary and capabilities.
    let binary = binary_from_layer(&tar_entries(&tar), "hello");
    assert_eq!(digest_of(&tar), digest_of(&gotar_binary(&binary, "hello", "linux", Some(&NET_BIND_SERVICE))));

    // GNU tar restores it as the file's extended attribute (this needs root, as setcap does).
    let out = tempfile::tempdir().unwrap();
    let layer = out.path().join("layer.tar");
    fs::write(&layer, &tar).unwrap();
    let root = out.path().join("root");
    fs::create_dir(&root).unwrap();
    run_tool(Command::new("tar").args(["--xattrs", "--xattrs-include=*", "-xf"]).arg(&layer).arg("-C").arg(&root));
    let extracted = root.join("ko-app/hello");
    assert_eq!(xattr(&extracted, "security.capability"), NET_BIND_SERVICE.to_vec(), "extracted with tar --xattrs");
    if let Some(getcap) = ["/usr/sbin/getcap", "/sbin/getcap"].into_iter().find(|p| Path::new(p).is_file()) {
        let shown = String::from_utf8(run_tool(Command::new(getcap).arg(&extracted))).unwrap();
        assert!(shown.contains("cap_net_bind_service=p"), "getcap says {shown:?}");
    }

    // Other capabilities give another layer, never the cached one (the cache key holds them).
    ko_yaml(&fx, &caps_yaml("chown"));
    let again = build(&fx, &repo, &["./cmd/hello"], &[("KOCACHE", &kocache)]);
    let img = pull(&docker(&again.reference));
    let tar = img.layer_tar(img.layer_count() - 1);
    let chown: [u8; 20] = [0, 0, 0, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(digest_of(&tar), digest_of(&gotar_binary(&binary, "hello", "linux", Some(&chown))));
    ko_yaml(&fx, "");
    let none = build(&fx, &repo, &["./cmd/hello"], &[("KOCACHE", &kocache)]);
    let img = pull(&docker(&none.reference));
    assert_eq!(digest_of(&img.layer_tar(img.layer_count() - 1)), digest_of(&gotar(&binary, "hello")));
}

/// An extended attribute of `path`, read with Python's `os.getxattr` (the Rust standard library
/// has no call for it).
fn xattr(path: &Path, name: &str) -> Vec<u8> {
    let script =
        format!("import os,sys; sys.stdout.buffer.write(os.getxattr({:?}, {name:?}))", path.display().to_string());
    let out = Command::new("python3").args(["-c", &script]).output().expect("python3 runs");
    assert!(
        out.status.success(),
        "no {name} on {} (extracting security.* attributes needs root): {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
