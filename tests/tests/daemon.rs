//! ko and a real Docker engine: `ko build -L` and `KO_DOCKER_REPO=ko.local` loads that
//! `docker run` runs, upstream's names and tags, one platform of a multi-platform build, bases
//! read from the engine, a refused load that leaves the engine's images as they were, `tcp://`
//! with TLS, an engine that is not running, and a cancelled load.
//!
//! dockerd with vfs storage is slow to start, so one engine serves every case and this binary has
//! its own small harness (`harness = false`): the cases run one after another, then the engine is
//! stopped by pid (and must leave no process behind), then the cases about a stopped engine run.
//! Under `CI=true` an engine that cannot start fails the run; elsewhere its cases are skipped,
//! with the reason printed. Arguments: an optional name filter, and `--list`.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use ko_core::{CancelToken, ErrorKind, Event, Options, Session, embed};
use ko_tests::docker::{Dockerd, start_or_skip};
use ko_tests::tls::TestCa;
use ko_tests::*;
use serde_json::{Value, json};

type Case = (&'static str, fn(&Dockerd));

/// Cases that need no engine.
const WITHOUT_ENGINE: &[(&str, fn())] = &[("cancelling_a_load_breaks_the_stream_and_tags_nothing", cancelled_load)];

/// Cases run against the running engine, in this order.
const WITH_ENGINE: &[Case] = &[
    ("build_local_runs_in_docker_with_upstream_names", build_local_runs_in_docker),
    ("naming_flags_and_ko_local_prefixes", naming_flags_and_prefixes),
    ("resolve_to_ko_local_gives_references_docker_runs", resolve_to_ko_local),
    ("an_image_in_the_engine_is_a_base", engine_image_is_a_base),
    ("a_refused_load_keeps_what_the_engine_had", refused_load_keeps_images),
    ("a_multi_platform_build_loads_the_engines_platform", multi_platform_loads_one),
    ("tcp_with_tls_from_docker_cert_path", tcp_with_tls),
    ("options_json_local_loads_through_the_engine_api", options_json_local),
];

/// Cases run after the engine was stopped.
const ENGINE_STOPPED: &[Case] = &[("a_stopped_engine_fails_fast_naming_docker_host", stopped_engine_fails_fast)];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let names = WITHOUT_ENGINE.iter().map(|c| c.0).chain(WITH_ENGINE.iter().chain(ENGINE_STOPPED).map(|c| c.0));
    if args.iter().any(|a| a == "--list") {
        for name in names {
            println!("{name}: test");
        }
        return;
    }
    // libtest's flags that take a value; anything else not starting with '-' is a name filter.
    let mut filter = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if ["--test-threads", "--skip", "--format", "--color", "--logfile", "-Z"].contains(&a.as_str()) {
            it.next();
        } else if !a.starts_with('-') {
            filter = Some(a.clone());
        }
    }
    let selected = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let started = Instant::now();
    let mut report = Report::default();
    let engine_cases: Vec<&Case> = WITH_ENGINE.iter().chain(ENGINE_STOPPED).filter(|c| selected(c.0)).collect();
    // With the engine comes one more check: that it stops cleanly.
    let count = names.filter(|n| selected(n)).count() + usize::from(!engine_cases.is_empty());
    println!("\nrunning {count} tests");
    for (name, case) in WITHOUT_ENGINE.iter().filter(|c| selected(c.0)) {
        report.run(name, case);
    }
    if !engine_cases.is_empty() {
        match start_or_skip() {
            Some(mut engine) => {
                for (name, case) in WITH_ENGINE.iter().filter(|c| selected(c.0)) {
                    report.run(name, || case(&engine));
                }
                let left = engine.stop();
                report.run("the_engine_stops_and_leaves_no_process", || {
                    assert!(left.is_empty(), "still running after dockerd stopped (killed now): {left:?}")
                });
                for (name, case) in ENGINE_STOPPED.iter().filter(|c| selected(c.0)) {
                    report.run(name, || case(&engine));
                }
            }
            None => {
                let stop = "the_engine_stops_and_leaves_no_process";
                for name in engine_cases.iter().map(|c| c.0).chain([stop]) {
                    println!("test {name} ... ignored");
                    report.ignored += 1;
                }
            }
        }
    }
    report.finish(started.elapsed());
}

#[derive(Default)]
struct Report {
    passed: usize,
    failed: Vec<String>,
    ignored: usize,
}

impl Report {
    fn run(&mut self, name: &str, case: impl FnOnce()) {
        let t = Instant::now();
        let ok = catch_unwind(AssertUnwindSafe(case)).is_ok();
        println!("test {name} ... {} ({:.1}s)", if ok { "ok" } else { "FAILED" }, t.elapsed().as_secs_f64());
        if ok {
            self.passed += 1;
        } else {
            self.failed.push(name.to_string());
        }
    }

    fn finish(self, took: Duration) {
        if !self.failed.is_empty() {
            println!("\nfailures:");
            for f in &self.failed {
                println!("    {f}");
            }
        }
        let verdict = if self.failed.is_empty() { "ok" } else { "FAILED" };
        println!(
            "\ntest result: {verdict}. {} passed; {} failed; {} ignored; 0 measured; 0 filtered out; finished in {:.2}s\n",
            self.passed,
            self.failed.len(),
            self.ignored,
            took.as_secs_f64()
        );
        if !self.failed.is_empty() {
            std::process::exit(101);
        }
    }
}

// ---------------------------------------------------------------------------
// Helpers

/// ko in `fx`, loading into `engine`.
fn ko_local(fx: &GoFixture, engine: &Dockerd) -> Command {
    let mut c = fx.ko();
    c.env("DOCKER_HOST", engine.host());
    c
}

/// `docker ARGS`, which must succeed; its stdout.
fn docker(engine: &Dockerd, args: &[&str]) -> String {
    String::from_utf8(run_tool(engine.docker().args(args))).unwrap()
}

/// `docker image inspect NAME`.
fn inspect_image(engine: &Dockerd, name: &str) -> Value {
    let v: Value = serde_json::from_str(&docker(engine, &["image", "inspect", name])).unwrap();
    v[0].clone()
}

/// `docker run --rm --network none REF ARGS`: what the program printed.
fn docker_run(engine: &Dockerd, reference: &str, args: &[&str]) -> String {
    let mut all = vec!["run", "--rm", "--network", "none", reference];
    all.extend_from_slice(args);
    docker(engine, &all)
}

/// Splits `ko.local/…:<hex>` and checks the tag is a sha256 hex.
fn split_local(reference: &str) -> (String, String) {
    let (name, hex) = reference.rsplit_once(':').unwrap_or_else(|| panic!("{reference:?} has no tag"));
    assert!(
        hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
        "the tag of {reference:?} is not a digest's hex"
    );
    (name.to_string(), hex.to_string())
}

/// The single reference ko printed.
fn one_ref(out: &Output) -> String {
    let lines = out.lines();
    assert_eq!(lines.len(), 1, "one reference expected\n{}", out.describe());
    lines[0].clone()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect()).unwrap_or_default()
}

fn hello_output() -> String {
    let kodata = fixtures_dir().join("app/cmd/hello/kodata");
    format!(
        "hello from ko\n{}{}",
        fs::read_to_string(kodata.join("greeting.txt")).unwrap(),
        fs::read_to_string(kodata.join("nested/deep.txt")).unwrap()
    )
}

/// `skopeo copy SRC docker-daemon:DEST` into `engine`.
fn copy_into_engine(engine: &Dockerd, src: &str, dest: &str) {
    run_tool(
        Command::new(require_tool("skopeo"))
            .args(["--insecure-policy", "copy", "--dest-daemon-host"])
            .arg(engine.host())
            .arg(src)
            .arg(format!("docker-daemon:{dest}")),
    );
}

// ---------------------------------------------------------------------------
// Cases with the engine

fn build_local_runs_in_docker(engine: &Dockerd) {
    let fx = GoFixture::app();
    let outputs = fx.scratch("outputs");
    let (layout, tarball) = (outputs.join("layout"), outputs.join("images.tar"));
    let out = ko_ok(
        ko_local(&fx, engine)
            .args(["build", "-L", "-t", "v1,latest", "--image-label", "team=daemon", "--oci-layout-path"])
            .arg(&layout)
            .arg("--tarball")
            .arg(&tarball)
            .arg("./cmd/hello"),
    );
    let reference = one_ref(&out);
    let (name, hex) = split_local(&reference);
    let repo = format!("ko.local/hello-{HELLO_MD5}");
    assert_eq!(name, repo, "named as upstream's md5 namer names it");
    for line in [
        format!("Loading {reference}"),
        format!("Loaded {reference}"),
        "Adding tag v1".into(),
        "Adding tag latest".into(),
    ] {
        assert!(out.stderr.contains(&line), "no {line:?} in the log\n{}", out.describe());
    }
    assert_eq!(docker_run(engine, &reference, &["kodata"]), hello_output(), "the program runs, reading $KO_DATA_PATH");

    let info = inspect_image(engine, &reference);
    let config = &info["Config"];
    assert_eq!(strings(&config["Entrypoint"]), ["/ko-app/hello"]);
    let env = strings(&config["Env"]);
    assert!(env.contains(&"KO_DATA_PATH=/var/run/ko".to_string()), "{env:?}");
    assert!(env.iter().any(|e| e.starts_with("PATH=") && e.ends_with(":/ko-app")), "{env:?}");
    assert_eq!(config["Labels"], json!({"team": "daemon"}));
    assert_eq!(config["User"], "65532", "the built-in base's nonroot user");
    let mut tags = strings(&info["RepoTags"]);
    tags.sort();
    assert_eq!(tags, [format!("{repo}:{hex}"), format!("{repo}:latest"), format!("{repo}:v1")]);
    // The tag is the manifest's digest (the OCI layout written alongside holds that manifest), and
    // the engine's image ID is the config's digest (as the tarball written alongside names it).
    let index: Value = serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], format!("sha256:{hex}").as_str());
    let entries = tar_entries(&fs::read(&tarball).unwrap());
    let saved: Value = serde_json::from_slice(&entry(&entries, "manifest.json").content).unwrap();
    assert_eq!(saved[0]["Config"], info["Id"], "image ID = config digest");
}

fn naming_flags_and_prefixes(engine: &Dockerd) {
    let fx = GoFixture::app();
    let md5 = format!("ko.local/hello-{HELLO_MD5}");
    let cases: [(&[&str], Option<&str>, &str); 5] = [
        (&["-L", "-B"], None, "ko.local/hello"),
        (&["-P"], Some("ko.local/team"), "ko.local/team/example.com/app/cmd/hello"),
        (&["--bare"], Some("ko.local/solo"), "ko.local/solo"),
        (&[], Some("ko.local"), &md5),
        // As upstream: -L loads under KO_DOCKER_REPO, whatever it is, and pushes nothing.
        (&["-L", "-B"], Some("registry.invalid/team"), "registry.invalid/team/hello"),
    ];
    for (flags, repo, want) in cases {
        let mut cmd = ko_local(&fx, engine);
        if let Some(r) = repo {
            cmd.env("KO_DOCKER_REPO", r);
        }
        let out = ko_ok(cmd.arg("build").args(flags).arg("./cmd/hello"));
        let (name, hex) = split_local(&one_ref(&out));
        assert_eq!(name, want, "{flags:?} with KO_DOCKER_REPO={repo:?}");
        let latest = inspect_image(engine, &format!("{want}:latest"));
        assert_eq!(latest["Id"], inspect_image(engine, &format!("{want}:{hex}"))["Id"]);
    }
}

fn resolve_to_ko_local(engine: &Dockerd) {
    let fx = GoFixture::app();
    let out = ko_ok(ko_local(&fx, engine).env("KO_DOCKER_REPO", "ko.local").args(["resolve", "-f", "config/"]));
    let mut references: Vec<String> = out
        .stdout
        .split(|c: char| c.is_whitespace() || c == '\'' || c == '"' || c == '}' || c == ',')
        .filter(|w| w.starts_with("ko.local/"))
        .map(String::from)
        .collect();
    references.sort();
    references.dedup();
    assert_eq!(references.len(), 2, "hello and second, each once: {references:?}\n{}", out.describe());
    for reference in &references {
        let (name, _) = split_local(reference);
        let printed = docker_run(engine, reference, &[]);
        match name.rsplit('/').next().unwrap().split('-').next().unwrap() {
            "hello" => assert_eq!(printed, "hello from ko\n"),
            "second" => assert_eq!(printed, "second app\n"),
            other => panic!("unexpected image {other} in {reference}"),
        }
    }
    assert!(!out.stdout.contains("image: ko://"), "every image was replaced:\n{}", out.stdout);
}

fn engine_image_is_a_base(engine: &Dockerd) {
    let mut layout = OciLayout::new();
    let hand = layout.image(
        "amd64",
        &[vec![("etc/base-release", b"a base from the engine\n")], vec![("usr/share/base/marker.txt", b"layer two\n")]],
    );
    layout.tag(&hand.manifest, "v1");
    copy_into_engine(engine, &format!("oci:{}:v1", layout.path().display()), "ko.local/handbase:v1");
    let hand_config: Value = serde_json::from_slice(&hand.config.bytes).unwrap();
    let hand_diff_ids = strings(&hand_config["rootfs"]["diff_ids"]);
    assert_eq!(hand_diff_ids.len(), 2);

    // Loaded back into the engine: the base's layers lie under ours.
    let fx = GoFixture::app();
    let out = ko_ok(ko_local(&fx, engine).env("KO_DEFAULTBASEIMAGE", "ko.local/handbase:v1").args([
        "build",
        "-L",
        "-B",
        "./cmd/hello",
    ]));
    assert!(out.stderr.contains("Using base ko.local/handbase:v1@sha256:"), "{}", out.describe());
    let reference = one_ref(&out);
    let info = inspect_image(engine, &reference);
    let layers = strings(&info["RootFS"]["Layers"]);
    assert_eq!(layers.len(), 4, "two base layers, kodata, binary: {layers:?}");
    assert_eq!(layers[..2], hand_diff_ids[..]);
    assert_eq!(info["Config"]["Labels"], json!({"ko-tests.base": "yes"}));
    assert!(strings(&info["Config"]["Env"]).contains(&"BASE_ARCH=amd64".to_string()));
    assert_eq!(docker_run(engine, &reference, &["kodata"]), hello_output());
    // By image ID, as skopeo names it.
    let id = inspect_image(engine, "ko.local/handbase:v1")["Id"].as_str().unwrap().to_string();
    let out = ko_ok(ko_local(&fx, engine).env("KO_DEFAULTBASEIMAGE", format!("docker-daemon:{id}")).args([
        "build",
        "-L",
        "-B",
        "./cmd/second",
    ]));
    let layers = strings(&inspect_image(engine, &one_ref(&out))["RootFS"]["Layers"]);
    assert_eq!(layers[..2], hand_diff_ids[..], "{layers:?}");

    // Pushed to a registry, named as skopeo names daemon images, through .ko.yaml.
    let reg = Registry::start();
    fs::write(
        fx.path().join(".ko.yaml"),
        "baseImageOverrides:\n  example.com/app/cmd/second: docker-daemon:ko.local/handbase:v1\n",
    )
    .unwrap();
    let out = ko_ok(
        fx.ko().env("DOCKER_HOST", engine.host()).env("KO_DOCKER_REPO", reg.host()).args(["build", "./cmd/second"]),
    );
    let pulled = pull(&ko_tests::docker(&one_ref(&out)));
    assert_eq!(pulled.layer_count(), 4);
    assert_eq!(entry(&pulled.layer_entries(0), "etc/base-release").content, b"a base from the engine\n");
    assert_eq!(entry(&pulled.layer_entries(1), "usr/share/base/marker.txt").content, b"layer two\n");
    assert_eq!(strings(&pulled.config()["rootfs"]["diff_ids"])[..2], hand_diff_ids[..]);
    assert_eq!(
        pulled.manifest["mediaType"], "application/vnd.docker.distribution.manifest.v2+json",
        "docker's media types, as the base's"
    );

    let out = ko_fail(
        ko_local(&fx, engine).env("KO_DEFAULTBASEIMAGE", "docker-daemon:ko.local/absent").args([
            "build",
            "-L",
            "./cmd/hello",
        ]),
        KO_TIMEOUT,
    );
    assert!(
        out.stderr.contains("base image docker-daemon:ko.local/absent: the Docker engine at DOCKER_HOST=")
            && out.stderr.contains("has no image ko.local/absent:latest"),
        "{}",
        out.describe()
    );
}

fn refused_load_keeps_images(engine: &Dockerd) {
    let fx = GoFixture::app();
    let good = one_ref(&ko_ok(ko_local(&fx, engine).args(["build", "-L", "-B", "./cmd/hello"])));
    let before = inspect_image(engine, "ko.local/hello:latest");
    assert_eq!(before["Id"], inspect_image(engine, &good)["Id"]);
    let tags_before = tags(engine, "ko.local/hello");
    assert!(tags_before.contains(&split_local(&good).1), "{tags_before:?}");

    // A base whose config lies about its layer: a registry would take the image, the engine
    // checks each layer's diff id and refuses it.
    let layout = OciLayout::new();
    let layer = layout.write_blob(OCI_LAYER_GZIP, gzip(&make_tar(&[("etc/lie", b"not what the config says\n")])));
    let config = json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", "0".repeat(64))]},
        "config": {}
    });
    let config = layout.write_blob(OCI_CONFIG, serde_json::to_vec(&config).unwrap());
    let manifest = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config.descriptor(), "layers": [layer.descriptor()]});
    let manifest = layout.write_blob(OCI_MANIFEST, serde_json::to_vec(&manifest).unwrap());
    let mut layout = layout;
    layout.tag(&manifest, "lie");
    let base = format!("oci-layout:{}", layout.path().display());
    let out = ko_fail(
        ko_local(&fx, engine).env("KO_DEFAULTBASEIMAGE", &base).args(["build", "-L", "-B", "./cmd/hello"]),
        KO_TIMEOUT,
    );
    assert!(out.stderr.contains("the Docker engine at DOCKER_HOST="), "{}", out.describe());
    assert!(
        out.stderr.contains("refused the image: invalid diffID for layer 0"),
        "the engine's own message is shown\n{}",
        out.describe()
    );
    assert!(!out.stderr.contains("Adding tag"), "{}", out.describe());

    let after = inspect_image(engine, "ko.local/hello:latest");
    assert_eq!(after["Id"], before["Id"], "latest still names the image loaded before");
    assert_eq!(tags(engine, "ko.local/hello"), tags_before, "nothing of the refused image was tagged");
}

/// The tags of `repository` in the engine, sorted.
fn tags(engine: &Dockerd, repository: &str) -> Vec<String> {
    let mut tags: Vec<String> =
        docker(engine, &["image", "ls", repository, "--format", "{{.Tag}}"]).lines().map(String::from).collect();
    tags.sort();
    tags
}

fn multi_platform_loads_one(engine: &Dockerd) {
    let arch = docker(engine, &["version", "--format", "{{.Server.Arch}}"]).trim().to_string();
    let other = if arch == "amd64" { "arm64" } else { "amd64" };
    let fx = GoFixture::app();
    let platforms = format!("--platform=linux/{other},linux/{arch}");
    let out = ko_ok(ko_local(&fx, engine).args(["build", "-L", "-B", &platforms, "./cmd/second"]));
    let want = format!(
        "Loading only the linux/{arch} image of example.com/app/cmd/second (built for linux/{other}, linux/{arch}): the Docker engine runs linux/{arch} images"
    );
    assert!(out.stderr.contains(&want), "no {want:?}\n{}", out.describe());
    assert_eq!(inspect_image(engine, &one_ref(&out))["Architecture"], arch.as_str());
    assert_eq!(docker_run(engine, &one_ref(&out), &[]), "second app\n");

    let out =
        ko_ok(ko_local(&fx, engine).args(["build", "-L", "-B", &format!("--platform=linux/{other}"), "./cmd/second"]));
    assert!(!out.stderr.contains("Loading only"), "{}", out.describe());
    assert_eq!(inspect_image(engine, &one_ref(&out))["Architecture"], other, "the one platform named is loaded");
}

fn tcp_with_tls(engine: &Dockerd) {
    let fx = GoFixture::app();
    let host = format!("tcp://{}", engine.tls_address);
    let certs = engine.client_certs.display().to_string();
    let out =
        ko_ok(fx.ko().env("DOCKER_HOST", &host).env("DOCKER_TLS_VERIFY", "1").env("DOCKER_CERT_PATH", &certs).args([
            "build",
            "-L",
            "-B",
            "-t",
            "tls",
            "./cmd/second",
        ]));
    let reference = one_ref(&out);
    assert_eq!(inspect_image(engine, "ko.local/second:tls")["Id"], inspect_image(engine, &reference)["Id"]);

    // Plain HTTP to the TLS port, and TLS trusting another CA, both fail naming DOCKER_HOST.
    let out = ko_fail(fx.ko().env("DOCKER_HOST", &host).args(["build", "-L", "./cmd/second"]), KO_TIMEOUT);
    assert!(out.stderr.contains(&format!("DOCKER_HOST={host}")), "{}", out.describe());
    let other = TestCa::new("not-the-engines");
    let wrong = other.dir().join("certs");
    fs::create_dir_all(&wrong).unwrap();
    fs::copy(&other.ca_pem, wrong.join("ca.pem")).unwrap();
    fs::copy(engine.client_certs.join("cert.pem"), wrong.join("cert.pem")).unwrap();
    fs::copy(engine.client_certs.join("key.pem"), wrong.join("key.pem")).unwrap();
    let out = ko_fail(
        fx.ko().env("DOCKER_HOST", &host).env("DOCKER_TLS_VERIFY", "1").env("DOCKER_CERT_PATH", &wrong).args([
            "build",
            "-L",
            "./cmd/second",
        ]),
        KO_TIMEOUT,
    );
    assert!(
        out.stderr.contains(&format!("cannot reach the Docker engine at DOCKER_HOST={host}")),
        "{}",
        out.describe()
    );
    assert!(out.stderr.to_lowercase().contains("certificate"), "the TLS failure is named\n{}", out.describe());
}

fn options_json_local(engine: &Dockerd) {
    // What C and Node hand the core: options as JSON.
    let fx = GoFixture::app();
    let mut env: BTreeMap<String, String> = ko_env();
    env.insert("DOCKER_HOST".into(), engine.host());
    let json = json!({"local": true, "baseImportPaths": true, "tags": ["json"], "workingDir": fx.path(), "env": env});
    let session = Arc::new(Session::new(Options::from_json(&json.to_string()).unwrap()).unwrap());
    let s = session.clone();
    let published = embed::block_on(
        async move { s.build(&["./cmd/second"], &CancelToken::new()).await },
        &CancelToken::new(),
        || false,
    )
    .unwrap();
    let (name, _) = split_local(&published[0].reference);
    assert_eq!(name, "ko.local/second");
    assert_eq!(docker_run(engine, &published[0].reference, &[]), "second app\n");
    assert_eq!(
        inspect_image(engine, "ko.local/second:json")["Id"],
        inspect_image(engine, &published[0].reference)["Id"]
    );
}

// ---------------------------------------------------------------------------
// Cases with the engine stopped

fn stopped_engine_fails_fast(engine: &Dockerd) {
    let fx = GoFixture::app();
    let closed =
        format!("tcp://127.0.0.1:{}", std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port());
    for host in [engine.host(), closed] {
        let out =
            ko_fail(fx.ko().env("DOCKER_HOST", &host).args(["build", "-L", "./cmd/hello"]), Duration::from_secs(60));
        assert!(out.elapsed < Duration::from_secs(5), "took {:?}\n{}", out.elapsed, out.describe());
        assert!(
            out.stderr.contains(&format!("cannot reach the Docker engine at DOCKER_HOST={host}: ")),
            "{}",
            out.describe()
        );
        assert!(out.stderr.contains("is it running?"), "{}", out.describe());
    }
}

// ---------------------------------------------------------------------------
// A cancelled load, against a fake engine that reads slowly

/// What the fake engine saw.
#[derive(Default)]
struct Seen {
    load_bytes: usize,
    load_tail: Vec<u8>,
    load_ended: Option<Instant>,
    tags: Vec<String>,
}

fn cancelled_load() {
    let dir = tempfile::Builder::new().prefix("kofake").tempdir_in("/tmp").unwrap();
    let socket = dir.path().join("d.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (started_tx, started_rx) = mpsc::channel();
    let hurry = Arc::new(AtomicBool::new(false));
    {
        let (seen, hurry) = (seen.clone(), hurry.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { return };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                if path == "/version" {
                    let body = r#"{"ApiVersion":"1.41","Os":"linux","Arch":"amd64"}"#;
                    let _ = write!(
                        s,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                } else if path.contains("/images/load") {
                    // Read slowly, until the client goes away; never answer.
                    let mut buf = vec![0u8; 16 << 10];
                    let mut told = false;
                    loop {
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                let mut seen = seen.lock().unwrap();
                                seen.load_bytes += n;
                                seen.load_tail.extend_from_slice(&buf[..n]);
                                let keep = seen.load_tail.len().saturating_sub(16);
                                seen.load_tail.drain(..keep);
                                if !told && seen.load_bytes > 64 << 10 {
                                    told = true;
                                    let _ = started_tx.send(());
                                }
                            }
                        }
                        if !hurry.load(Ordering::SeqCst) {
                            thread::sleep(Duration::from_millis(20));
                        }
                    }
                    seen.lock().unwrap().load_ended = Some(Instant::now());
                } else {
                    seen.lock().unwrap().tags.push(path);
                }
            }
        });
    }

    let fx = GoFixture::app();
    let tmp = tempfile::tempdir().unwrap();
    let mut env = ko_env();
    env.insert("DOCKER_HOST".into(), format!("unix://{}", socket.display()));
    env.insert("TMPDIR".into(), tmp.path().display().to_string());
    let opts =
        Options { local: true, working_dir: Some(fx.path().to_path_buf()), env: Some(env), ..Default::default() };
    let session = Arc::new(Session::new(opts).unwrap());
    let built = Arc::new(AtomicBool::new(false));
    let b = built.clone();
    session.set_event_sink(Arc::new(move |e: &Event| {
        if matches!(e, Event::BuildFinished { .. }) {
            b.store(true, Ordering::SeqCst);
        }
    }));
    let token = CancelToken::new();
    let (t, call_token, s) = (token.clone(), token.clone(), session.clone());
    let call = thread::spawn(move || {
        embed::block_on(async move { s.build(&["./cmd/hello"], &t).await }, &call_token, || false)
    });
    started_rx.recv_timeout(Duration::from_secs(120)).expect("the load starts");
    assert!(built.load(Ordering::SeqCst), "the image was built before it was loaded");
    hurry.store(true, Ordering::SeqCst);
    let cancelled_at = Instant::now();
    token.cancel();
    let err = call.join().unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Cancelled, "{err}");
    assert!(cancelled_at.elapsed() < Duration::from_secs(1), "the call returned after {:?}", cancelled_at.elapsed());

    // The stream stops: the engine sees the connection end, without the chunked body's final
    // chunk, so it can never take what it got for a whole archive.
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.lock().unwrap().load_ended.is_none() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let seen = seen.lock().unwrap();
    assert!(seen.load_ended.is_some(), "the load stream still runs 5 s after the cancel ({} bytes)", seen.load_bytes);
    assert!(!seen.load_tail.ends_with(b"0\r\n\r\n"), "the body was ended as if complete");
    assert!(seen.tags.is_empty(), "nothing is tagged: {:?}", seen.tags);
    // The writer let go of the image: the build's temporary directory is gone.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !tree(tmp.path()).is_empty() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(tree(tmp.path()), Vec::<String>::new(), "temporary files left");
}
