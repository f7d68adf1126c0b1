//! The bad-input matrix: what a new user gets wrong, and the faults a registry can throw, each as
//! a case of a table run against the real `ko` binary. For every case: the exit status; stderr
//! names the offending flag, file (with line and column), variable or value and says what to do
//! (every needle must appear, and no forbidden text may); no panic; no hang (each case has a
//! deadline); no process left running and nothing left in the case's own `TMPDIR`; and the image
//! published before the case, in the repository the case publishes to, still has its tags.
//!
//! The README's "Troubleshooting" section lists these cases by category.

use std::any::Any;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ko_tests::fake_registry::{FakeRegistry, Reply};
use ko_tests::*;

/// What a case's setup can see and change.
struct Ctx {
    fx: GoFixture,
    /// The real registry (`127.0.0.1:PORT`).
    reg: String,
    env: BTreeMap<String, String>,
    /// `{name}` in needles is replaced by these.
    vars: BTreeMap<String, String>,
    /// Servers and files that must live as long as the case.
    keep: Vec<Box<dyn Any + Send>>,
    stdin: Option<String>,
}

impl Ctx {
    fn path(&self, rel: &str) -> PathBuf {
        self.fx.path().join(rel)
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn set(&mut self, k: &str, v: impl Into<String>) {
        self.env.insert(k.to_string(), v.into());
    }

    /// Starts a fake registry (forwarding to the real one when the handler says so) and makes it
    /// `{fake}` in needles.
    fn fake(&mut self, handler: impl Fn(&str, &str) -> Reply + Send + Sync + 'static) -> String {
        let fake = FakeRegistry::start(Some(self.reg.clone()), handler);
        let host = fake.host();
        self.vars.insert("fake".into(), host.clone());
        self.keep.push(Box::new(fake));
        host
    }
}

type Setup = Box<dyn Fn(&mut Ctx) + Send + Sync>;
type Check = Box<dyn Fn(&Output, &Ctx) + Send + Sync>;
type Ready = Box<dyn Fn(&Ctx, &Path) -> bool + Send + Sync>;

/// A signal sent once `ready` holds (polled), and what the exit status must then be.
struct Signal {
    number: i32,
    ready: Ready,
}

struct Case {
    name: &'static str,
    args: Vec<String>,
    setup: Option<Setup>,
    code: i32,
    needles: Vec<&'static str>,
    absent: Vec<&'static str>,
    deadline: Duration,
    check: Option<Check>,
    signal: Option<Signal>,
}

fn case(name: &'static str, args: &[&str]) -> Case {
    Case {
        name,
        args: args.iter().map(|a| a.to_string()).collect(),
        setup: None,
        code: 1,
        needles: Vec::new(),
        absent: Vec::new(),
        deadline: Duration::from_secs(60),
        check: None,
        signal: None,
    }
}

impl Case {
    fn setup(mut self, f: impl Fn(&mut Ctx) + Send + Sync + 'static) -> Case {
        self.setup = Some(Box::new(f));
        self
    }

    fn env(self, k: &'static str, v: &'static str) -> Case {
        let previous = self.setup;
        Case {
            setup: Some(Box::new(move |cx: &mut Ctx| {
                if let Some(p) = &previous {
                    p(cx);
                }
                cx.set(k, v);
            })),
            ..self
        }
    }

    fn fails(self, code: i32, needles: &[&'static str]) -> Case {
        Case { code, needles: needles.to_vec(), ..self }
    }

    fn not(self, absent: &[&'static str]) -> Case {
        Case { absent: absent.to_vec(), ..self }
    }

    fn within(self, secs: u64) -> Case {
        Case { deadline: Duration::from_secs(secs), ..self }
    }

    fn check(self, f: impl Fn(&Output, &Ctx) + Send + Sync + 'static) -> Case {
        Case { check: Some(Box::new(f)), ..self }
    }

    fn signal(self, number: i32, ready: impl Fn(&Ctx, &Path) -> bool + Send + Sync + 'static) -> Case {
        Case { signal: Some(Signal { number, ready: Box::new(ready) }), code: 128 + number, ..self }
    }
}

/// The image every case's destination already holds: published with tags `latest` and
/// `stable`, built differently (stripped) from what a case would build, so that a case that
/// pushed would move `latest`.
struct Previous {
    tags: Vec<(String, String)>,
}

impl Previous {
    fn publish(reg: &Registry) -> Previous {
        let fx = GoFixture::app();
        let repo = format!("{}/prev", reg.host());
        let out = ko_ok(
            fx.ko()
                .args(["build", "-t", "latest,stable", "--ldflags=-s -w", "./cmd/hello"])
                .env("KO_DOCKER_REPO", &repo),
        );
        let (name, digest) = split_digest(&refs(&out, 1)[0]);
        let tags = ["latest", "stable"].iter().map(|t| (format!("{name}:{t}"), digest.clone())).collect();
        Previous { tags }
    }

    fn unchanged(&self) -> Result<(), String> {
        for (tag, digest) in &self.tags {
            let (raw, _) = inspect_raw(&docker(tag));
            if &digest_of(&raw) != digest {
                return Err(format!("{tag} moved from {digest} to {}", digest_of(&raw)));
            }
        }
        Ok(())
    }
}

/// Runs `cases` (a few at a time) against a fresh registry holding a [`Previous`] image in the
/// default destination `{reg}/prev`; fails with every failed case's story.
fn run_matrix(cases: Vec<Case>) {
    let reg = Registry::start();
    let prev = Previous::publish(&reg);
    let queue = Mutex::new(cases.into_iter().collect::<std::collections::VecDeque<_>>());
    let failures = Mutex::new(Vec::new());
    let ran = Mutex::new(0usize);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let Some(c) = queue.lock().unwrap().pop_front() else { break };
                    let name = c.name;
                    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_case(&c, &reg)));
                    let result = match result {
                        Ok(r) => r,
                        Err(p) => Err(p
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default()),
                    };
                    let result = match (result, prev.unchanged()) {
                        (Ok(()), Ok(())) => Ok(()),
                        (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
                        (Err(a), Err(b)) => Err(format!("{b}\n{a}")),
                    };
                    *ran.lock().unwrap() += 1;
                    match result {
                        Ok(()) => eprintln!("ok   {name}"),
                        Err(e) => {
                            eprintln!("FAIL {name}");
                            failures.lock().unwrap().push(format!("=== {name}\n{e}"));
                        }
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        ran.into_inner().unwrap(),
        failures.join("\n")
    );
}

fn run_case(c: &Case, reg: &Registry) -> Result<(), String> {
    let tmp = tempfile::Builder::new().prefix("ko-tests-case").tempdir().unwrap();
    let marker = format!("{}-{}", c.name, std::process::id());
    let mut cx = Ctx {
        fx: GoFixture::app(),
        reg: reg.host(),
        env: BTreeMap::new(),
        vars: BTreeMap::from([("reg".to_string(), reg.host())]),
        keep: Vec::new(),
        stdin: None,
    };
    cx.set("KO_DOCKER_REPO", format!("{}/prev", reg.host()));
    cx.set("TMPDIR", tmp.path().display().to_string());
    cx.set("KOCACHE", tmp.path().join("kocache").display().to_string());
    cx.set("KO_TESTS_CASE", marker.clone());
    if let Some(setup) = &c.setup {
        setup(&mut cx);
    }
    let mut cmd = cx.fx.ko();
    cmd.args(&c.args);
    for (k, v) in &cx.env {
        if v.is_empty() {
            cmd.env_remove(k);
        } else {
            cmd.env(k, v);
        }
    }
    let out = match &c.signal {
        None => match &cx.stdin {
            Some(input) => run_with_stdin(&mut cmd, input.as_bytes(), c.deadline),
            None => run(&mut cmd, c.deadline),
        },
        Some(signal) => signalled(&mut cmd, signal, &cx, tmp.path(), c.deadline),
    };
    let story = || out.describe();
    // What the user reads, in the test's log (shown with --nocapture).
    let last = out.stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or_default();
    eprintln!("     {} [{:?}, {:.1}s] {last}", c.name, out.status.code(), out.elapsed.as_secs_f64());
    assert_no_panic(&out);
    if out.status.code() != Some(c.code) {
        return Err(format!("exit status {:?}, expected {}\n{}", out.status.code(), c.code, story()));
    }
    for needle in &c.needles {
        let mut want = needle.to_string();
        for (k, v) in &cx.vars {
            want = want.replace(&format!("{{{k}}}"), v);
        }
        if !out.stderr.contains(&want) {
            return Err(format!("stderr lacks {want:?}\n{}", story()));
        }
    }
    for bad in &c.absent {
        if out.stderr.contains(bad) {
            return Err(format!("stderr has {bad:?}\n{}", story()));
        }
    }
    if c.code != 0 && out.stdout.contains("@sha256:") {
        return Err(format!("a failed run printed a reference\n{}", story()));
    }
    if let Some(check) = &c.check {
        check(&out, &cx);
    }
    // Children go with ko; so does ko's working directory.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = live_processes_with_env("KO_TESTS_CASE", &marker);
        if left.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("processes left running: {left:?}\n{}", story()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let left: Vec<String> = tree(tmp.path()).into_iter().filter(|p| !p.starts_with("kocache")).collect();
    if !left.is_empty() {
        return Err(format!("left in TMPDIR: {left:?}\n{}", story()));
    }
    let cache_tmp = tree(&tmp.path().join("kocache/tmp"));
    if !cache_tmp.is_empty() {
        return Err(format!("left in the cache's tmp: {cache_tmp:?}\n{}", story()));
    }
    drop(cx);
    Ok(())
}

/// Starts `cmd`, sends the signal once `ready` holds, and waits (within `deadline`) for the end.
fn signalled(cmd: &mut Command, signal: &Signal, cx: &Ctx, tmp: &Path, deadline: Duration) -> Output {
    let command = format!("{cmd:?}");
    let start = Instant::now();
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    while !(signal.ready)(cx, tmp) {
        assert!(start.elapsed() < deadline, "the moment to signal never came: {command}");
        assert!(child.try_wait().unwrap().is_none(), "ko ended before the signal: {command}\n{}", err.join().unwrap());
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let sent = Instant::now();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        rustix::process::Signal::from_named_raw(signal.number).unwrap(),
    )
    .unwrap();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if sent.elapsed() > Duration::from_secs(3) {
            let _ = child.kill();
            panic!("ko did not end within 3 s of signal {}: {command}", signal.number);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stdout = String::new();
    let _ = std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout);
    Output { status, stdout, stderr: err.join().unwrap(), elapsed: start.elapsed(), command }
}

fn kodata_dir(cx: &Ctx) -> PathBuf {
    let dir = cx.path("cmd/hello/kodata");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn mkfifo(path: &Path) {
    assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
}

const ENVELOPE_429: &str = r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#;

#[test]
fn ko_yaml() {
    run_matrix(vec![
        case("ko.yaml syntax error", &["build", "./cmd/hello"])
            .setup(|cx| cx.write(".ko.yaml", "defaultBaseImage: [unclosed\n"))
            .fails(1, &[".ko.yaml:1:19:", "invalid YAML: unclosed bracket '['"]),
        case("KO_CONFIG_PATH names a missing file", &["build", "./cmd/hello"])
            .env("KO_CONFIG_PATH", "missing.yaml")
            .fails(1, &["cannot read config", "missing.yaml", "KO_CONFIG_PATH"])
            .not(&["--config"]),
        case("linux_capabilities naming no capability", &["build", "./cmd/hello"])
            .setup(|cx| {
                cx.write(".ko.yaml", "builds:\n- id: app\n  main: ./cmd/hello\n  linux_capabilities: cap_nope\n")
            })
            .fails(1, &["unknown capability \"cap_nope\"", "e.g. net_bind_service"]),
        case("layerCompression unknown", &["build", "./cmd/hello"])
            .setup(|cx| cx.write(".ko.yaml", "layerCompression: brotli\n"))
            .fails(1, &["layerCompression in .ko.yaml \"brotli\": expected gzip or zstd"]),
        case("defaultPlatforms with a variant Go cannot build", &["build", "./cmd/hello"])
            .setup(|cx| cx.write(".ko.yaml", "defaultPlatforms: [linux/arm/v9]\n"))
            .fails(1, &["invalid platform \"linux/arm/v9\"", "arm variants are v5, v6 and v7"]),
        case("defaultBaseImage not a reference", &["build", "./cmd/hello"])
            .setup(|cx| cx.write(".ko.yaml", "defaultBaseImage: \"UPPER CASE\"\n"))
            .fails(1, &["invalid base image \"UPPER CASE\"", "use a registry reference"]),
        case("build env not KEY=VALUE", &["build", "./cmd/hello"])
            .setup(|cx| cx.write(".ko.yaml", "builds:\n- main: ./cmd/hello\n  env: [NOEQUALS]\n"))
            .fails(1, &["build env entry \"NOEQUALS\" in .ko.yaml is not KEY=VALUE"]),
        case("build env GOOS=windows", &["build", "./cmd/hello"])
            .setup(|cx| cx.write(".ko.yaml", "builds:\n- main: ./cmd/hello\n  env: [GOOS=windows]\n"))
            .fails(
                1,
                &["GOOS=windows in the build's env in .ko.yaml", "linux/amd64", "--platform or defaultPlatforms"],
            ),
        case("defaultEnv GOARCH=arm64 against linux/amd64", &["build", "./cmd/hello"])
            .setup(|cx| cx.write(".ko.yaml", "defaultEnv: [GOARCH=arm64]\n"))
            .fails(1, &["GOARCH=arm64 in the build's env in .ko.yaml", "another platform than linux/amd64"]),
        case("defaultFlags with -toolexec", &["build", "./cmd/hello"])
            .setup(|cx| cx.write(".ko.yaml", "defaultFlags: [-toolexec=./evil.sh]\n"))
            .fails(1, &["cannot set -toolexec=./evil.sh in the flags of .ko.yaml", "ko does not allow -toolexec"]),
        case("build env GOFLAGS with -toolexec", &["build", "./cmd/hello"])
            .setup(|cx| {
                cx.write(".ko.yaml", "builds:\n- id: x\n  main: ./cmd/hello\n  env: [GOFLAGS=-toolexec=./evil.sh]\n")
            })
            .fails(1, &["GOFLAGS in the env of build \"x\" in .ko.yaml", "ko does not allow -toolexec"]),
        case("template with an unknown key", &["build", "./cmd/hello"])
            .setup(|cx| cx.write(".ko.yaml", "defaultLdflags: [\"-X main.v={{.Env.NOPE}}\"]\n"))
            .fails(1, &["ldflags", "NOPE"]),
    ]);
}

#[test]
fn flags() {
    run_matrix(vec![
        case("--platform with a variant Go cannot build", &["build", "--platform=linux/arm/v9", "./cmd/hello"]).fails(
            1,
            &["--platform: invalid platform \"linux/arm/v9\"", "arm variants are v5, v6 and v7", "linux/arm64"],
        ),
        case("--platform amd64/v5", &["build", "--platform=linux/amd64/v5", "./cmd/hello"])
            .fails(1, &["invalid platform \"linux/amd64/v5\"", "v1, v2, v3 and v4 (GOAMD64)"]),
        case("--platform with a variant on 386", &["build", "--platform=linux/386/sse2", "./cmd/hello"])
            .fails(1, &["386 takes no variant"]),
        case("--platform all mixed", &["build", "--platform=all,linux/amd64", "./cmd/hello"])
            .fails(1, &["--platform", "`all` cannot be combined with other platforms"]),
        case("--platform malformed", &["build", "--platform=linux//x", "./cmd/hello"])
            .fails(1, &["invalid platform \"linux//x\"", "expected os[/arch[/variant]][:osversion], e.g. linux/arm64"]),
        case("--tags with a space", &["build", "--tags=bad tag!", "./cmd/hello"])
            .fails(1, &["--tags: invalid tag \"bad tag!\"", "letters, digits"]),
        case("--tag-only with latest", &["build", "--tag-only", "./cmd/hello"])
            .fails(1, &["--tag-only needs exactly one tag, other than latest", "--tags"]),
        case("--image-label without =", &["build", "--image-label=novalue", "./cmd/hello"])
            .fails(1, &["--image-label \"novalue\": expected key=value (e.g. team=web)"]),
        case("--image-annotation without a key", &["build", "--image-annotation==x", "./cmd/hello"])
            .fails(1, &["--image-annotation \"=x\": expected key=value"]),
        case("--layer-compression unknown", &["build", "--layer-compression=brotli", "./cmd/hello"])
            .fails(1, &["--layer-compression \"brotli\": expected gzip or zstd"]),
        case("--tarball in a missing directory", &["build", "--tarball=no/such/dir/x.tar", "./cmd/hello"])
            .fails(1, &["--tarball", "no/such/dir does not exist; create it first"]),
        case("--tarball is a directory", &["build", "--tarball=cmd", "./cmd/hello"])
            .fails(1, &["--tarball", "cmd: is a directory; name a file"]),
        case("--image-refs under a file", &["build", "--image-refs=go.mod/refs.txt", "./cmd/hello"])
            .fails(1, &["--image-refs", "go.mod is not a directory"]),
        case("--image-refs in /proc", &["build", "--image-refs=/proc/ko-refs.txt", "./cmd/hello"])
            .fails(1, &["--image-refs /proc/ko-refs.txt: cannot write in /proc"]),
        case("--oci-layout-path under a file", &["build", "--oci-layout-path=go.mod/layout", "./cmd/hello"])
            .fails(1, &["--oci-layout-path", "go.mod is not a directory"]),
        case(
            "--tarball of resolve, before anything is pushed",
            &["resolve", "--tarball=nodir/x.tar", "-f", "config/deployment.yaml"],
        )
        .fails(1, &["--tarball", "nodir does not exist"]),
        case("unknown flag", &["build", "--no-such-flag", "./cmd/hello"])
            .fails(2, &["unexpected argument '--no-such-flag'", "--help"]),
        case("--jobs not a number", &["build", "--jobs=abc", "./cmd/hello"])
            .fails(2, &["invalid value 'abc' for '--jobs <JOBS>'"]),
        case("--push=maybe", &["build", "--push=maybe", "./cmd/hello"])
            .fails(2, &["invalid value 'maybe' for '--push", "[possible values: true, false]"]),
        case("resolve without -f", &["resolve"]).fails(2, &["--filename <FILENAMES>"]),
        case("completion for an unknown shell", &["completion", "tcsh"])
            .fails(2, &["invalid value 'tcsh'", "bash", "zsh", "fish", "powershell"]),
    ]);
}

#[test]
fn environment() {
    run_matrix(vec![
        case("KO_DOCKER_REPO unset", &["build", "./cmd/hello"])
            .env("KO_DOCKER_REPO", "")
            .fails(1, &["KO_DOCKER_REPO is not set: set it to the repository", "--push=false"])
            .not(&["(or KO_DOCKER_REPO)"]),
        case("KO_DOCKER_REPO upper case", &["build", "./cmd/hello"])
            .env("KO_DOCKER_REPO", "UPPER/case")
            .fails(1, &["KO_DOCKER_REPO: invalid repository \"UPPER/case\"", "lower-case (write \"upper/case\")"]),
        case("KO_DOCKER_REPO with a scheme", &["build", "./cmd/hello"])
            .env("KO_DOCKER_REPO", "http://127.0.0.1:5000/x")
            .fails(1, &["KO_DOCKER_REPO: invalid repository", "has no scheme (write \"127.0.0.1:5000/x\")"]),
        case("KO_DOCKER_REPO with a tag", &["build", "./cmd/hello"])
            .env("KO_DOCKER_REPO", "127.0.0.1:5000/x:v1")
            .fails(1, &["KO_DOCKER_REPO", "a repository cannot carry a tag"]),
        case("KO_DOCKER_REPO kind.local", &["build", "./cmd/hello"])
            .env("KO_DOCKER_REPO", "kind.local")
            .fails(1, &["KO_DOCKER_REPO \"kind.local\"", "kind load docker-image"]),
        case("SOURCE_DATE_EPOCH past year 9999", &["build", "./cmd/hello"])
            .env("SOURCE_DATE_EPOCH", "253402300800000")
            .fails(1, &["SOURCE_DATE_EPOCH=\"253402300800000\"", "between 0 and 253402300799 (9999-12-31T23:59:59Z)"]),
        case("SOURCE_DATE_EPOCH negative", &["build", "./cmd/hello"])
            .env("SOURCE_DATE_EPOCH", "-1")
            .fails(1, &["SOURCE_DATE_EPOCH=\"-1\"", "between 0 and"]),
        case("KO_DATA_DATE_EPOCH not a number", &["build", "./cmd/hello"])
            .env("KO_DATA_DATE_EPOCH", "yesterday")
            .fails(1, &["KO_DATA_DATE_EPOCH=\"yesterday\"", "seconds since 1970"]),
        case("GOFLAGS with -toolexec, refused before go runs", &["build", "./cmd/hello"])
            .setup(|cx| {
                let marker = cx.path("toolexec-ran");
                write_executable(
                    cx.fx.path(),
                    "evil.sh",
                    format!("#!/bin/sh\ntouch {}\nexec \"$@\"\n", marker.display()).as_bytes(),
                );
                cx.set("GOFLAGS", "-toolexec=./evil.sh");
            })
            .fails(1, &["cannot set -toolexec=./evil.sh in GOFLAGS in the environment", "ko does not allow -toolexec"])
            .check(|_, cx| assert!(!cx.path("toolexec-ran").exists(), "go ran the -toolexec program")),
        case("GOFLAGS with -toolexec in go env -w", &["build", "./cmd/hello"])
            .setup(|cx| {
                cx.write("goenv", "GOFLAGS=-toolexec=/bin/true\n");
                let p = cx.path("goenv").display().to_string();
                cx.set("GOENV", p);
            })
            .fails(1, &["GOFLAGS in", "goenv (go env -w)", "ko does not allow -toolexec"]),
        case("GOOS alone", &["build", "./cmd/hello"]).env("GOOS", "windows").fails(
            1,
            &["GOOS=windows in the environment would build for another platform than linux/amd64", "--platform"],
        ),
        case("GOARM out of range", &["build", "./cmd/hello"])
            .env("GOOS", "linux")
            .env("GOARCH", "arm")
            .env("GOARM", "9")
            .fails(1, &["GOOS/GOARCH/GOARM in the environment", "arm variants are v5, v6 and v7"]),
        case("--platform while GOARCH is set", &["build", "--platform=linux/arm64", "./cmd/hello"])
            .env("GOARCH", "amd64")
            .fails(1, &["cannot use --platform or defaultPlatforms while GOARCH is set", "unset it"]),
        case("KO_DEFAULTPLATFORMS with a bad variant", &["build", "./cmd/hello"])
            .env("KO_DEFAULTPLATFORMS", "linux/arm64,linux/arm/v9")
            .fails(1, &["invalid platform \"linux/arm/v9\""]),
        case("KO_GO_PATH missing", &["build", "./cmd/hello"])
            .env("KO_GO_PATH", "/nonexistent/go")
            .fails(1, &["cannot run \"/nonexistent/go\"", "install Go or set KO_GO_PATH"]),
        case("config.json that is not JSON", &["build", "./cmd/hello"])
            .setup(|cx| {
                let dir = cx.path("docker-config");
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(dir.join("config.json"), "{\"auths\": {\"x\": {\"auth\": \"c2VjcmV0OnB3\"}},\n oops")
                    .unwrap();
                cx.vars.insert("config".into(), dir.join("config.json").display().to_string());
                cx.set("DOCKER_CONFIG", dir.display().to_string());
            })
            .fails(1, &["{config}:2:2: it is not valid JSON", "fix the file, or point DOCKER_CONFIG"])
            .not(&["c2VjcmV0"]),
        case("config.json is a FIFO", &["build", "./cmd/hello"])
            .setup(|cx| {
                let dir = cx.path("docker-config");
                std::fs::create_dir_all(&dir).unwrap();
                mkfifo(&dir.join("config.json"));
                cx.set("DOCKER_CONFIG", dir.display().to_string());
            })
            .fails(1, &["config.json", "not a regular file"])
            .within(30),
        case("KO_DEFAULTBASEIMAGE not found", &["build", "./cmd/hello"])
            .setup(|cx| {
                let base = format!("{}/nope:missing", cx.reg);
                cx.set("KO_DEFAULTBASEIMAGE", base);
            })
            .fails(1, &["{reg}/nope:missing", "404", "MANIFEST_UNKNOWN"]),
    ]);
}

#[test]
fn import_paths() {
    run_matrix(vec![
        case("not a main package", &["build", "./pkg/lib"])
            .fails(1, &["./pkg/lib is not a main package (it is package lib)", "declares `package main`"]),
        case("no such directory", &["build", "./cmd/nope"])
            .fails(1, &["./cmd/nope:", "directory not found", "name a main package of the module"]),
        case("a .go file", &["build", "./cmd/hello/main.go"])
            .fails(1, &["./cmd/hello/main.go is a Go file", "name its directory (./cmd/hello)"])
            .not(&["command-line-arguments"]),
        case("a pattern", &["build", "./..."]).fails(1, &["\"./...\" is not an import path of one package"]),
        case("a flag-like argument", &["build", "--", "-x"]).fails(1, &["\"-x\" is not an import path of one package"]),
        case("outside the module", &["build", "example.com/elsewhere/cmd"])
            .fails(1, &["example.com/elsewhere/cmd:", "no required module provides package"]),
        case("does not compile", &["build", "ko://example.com/app/cmd/broken"])
            .fails(1, &["go build example.com/app/cmd/broken", "thisDoesNotExist"]),
        case("one bad among many", &["build", "./cmd/hello", "./cmd/nope", "./cmd/second"]).fails(1, &["./cmd/nope"]),
    ]);
}

#[test]
fn kodata() {
    run_matrix(vec![
        case("a FIFO", &["build", "./cmd/hello"])
            .setup(|cx| mkfifo(&kodata_dir(cx).join("pipe")))
            .fails(1, &["kodata/pipe is not a regular file, a directory or a symlink to one", "remove it from kodata"])
            .within(30),
        case("a socket", &["build", "./cmd/hello"])
            .setup(|cx| {
                let listener = std::os::unix::net::UnixListener::bind(kodata_dir(cx).join("sock")).unwrap();
                cx.keep.push(Box::new(listener));
            })
            .fails(1, &["kodata/sock is not a regular file"])
            .within(30),
        case("a symlink to a FIFO", &["build", "./cmd/hello"])
            .setup(|cx| {
                mkfifo(&cx.path("pipe"));
                std::os::unix::fs::symlink("../../../pipe", kodata_dir(cx).join("link")).unwrap();
            })
            .fails(1, &["kodata/link is not a regular file"])
            .within(30),
        case("a symlink leaving the repository", &["build", "./cmd/hello"])
            .setup(|cx| std::os::unix::fs::symlink("/etc/hostname", kodata_dir(cx).join("escape")).unwrap())
            .fails(1, &["kodata/escape points to", "outside", "KO_DATA_PATH_ALLOWED_ROOT"]),
        case("a symlink loop", &["build", "./cmd/hello"])
            .setup(|cx| {
                std::os::unix::fs::symlink(
                    "..",
                    kodata_dir(cx)
                        .join("sub/up")
                        .parent()
                        .map(|p| {
                            std::fs::create_dir_all(p).unwrap();
                            p.join("up")
                        })
                        .unwrap(),
                )
                .unwrap()
            })
            .fails(1, &["kodata: symlink loop at", "sub/up"]),
        case("a dangling symlink", &["build", "./cmd/hello"])
            .setup(|cx| std::os::unix::fs::symlink("missing", kodata_dir(cx).join("dangling")).unwrap())
            .fails(1, &["kodata: cannot resolve", "kodata/dangling"]),
        case("a file name that is not UTF-8", &["build", "./cmd/hello"])
            .setup(|cx| {
                use std::os::unix::ffi::OsStrExt;
                std::fs::write(kodata_dir(cx).join(std::ffi::OsStr::from_bytes(b"bad\xff")), "x").unwrap();
            })
            .fails(1, &["kodata file name", "is not valid UTF-8"]),
    ]);
}

#[test]
fn yaml_inputs() {
    run_matrix(vec![
        case("missing file", &["resolve", "-f", "missing.yaml"]).fails(1, &["missing.yaml: No such file or directory"]),
        case("directory without YAML", &["resolve", "-f", "empty"])
            .setup(|cx| std::fs::create_dir_all(cx.path("empty")).unwrap())
            .fails(0, &["empty: no *.yaml, *.yml or *.json files in this directory"]),
        case("invalid YAML", &["resolve", "-f", "bad.yaml"])
            .setup(|cx| cx.write("bad.yaml", "a: 1\nb: 'unclosed\n"))
            .fails(1, &["bad.yaml:"]),
        case("tab indentation from stdin", &["resolve", "-f", "-"])
            .setup(|cx| cx.stdin = Some("a:\n\t- ko://example.com/app/cmd/hello\n".into()))
            .fails(1, &["-:2:"]),
        case("reference to a package that is not main", &["resolve", "-f", "deploy.yaml"])
            .setup(|cx| cx.write("deploy.yaml", "kind: Pod\nspec:\n  image: ko://example.com/app/pkg/lib\n"))
            .fails(1, &["deploy.yaml:3:10", "is not a main package"]),
        case("reference that is a pattern", &["resolve", "-f", "deploy.yaml"])
            .setup(|cx| cx.write("deploy.yaml", "image: ko://./...\n"))
            .fails(1, &["deploy.yaml:1:8", "is not an import path of one package"]),
        case("-R through a symlinked directory cycle", &["resolve", "-R", "-f", "tree"])
            .setup(|cx| {
                cx.write("tree/a.yaml", "kind: ConfigMap\nmetadata: {name: cycle-a}\n");
                cx.write("tree/sub/b.yaml", "kind: ConfigMap\nmetadata: {name: cycle-b}\n");
                std::os::unix::fs::symlink("..", cx.path("tree/sub/up")).unwrap();
            })
            .fails(0, &[])
            .check(|out, _| {
                assert_eq!(out.stdout.matches("name: cycle-a").count(), 1, "{}", out.describe());
                assert_eq!(out.stdout.matches("name: cycle-b").count(), 1, "{}", out.describe());
            }),
        case("a FIFO named like YAML in a directory", &["resolve", "-f", "dir"])
            .setup(|cx| {
                cx.write("dir/a.yaml", "kind: ConfigMap\n");
                mkfifo(&cx.path("dir/b.yaml"));
            })
            .fails(0, &["skipping", "b.yaml: not a regular file"])
            .within(30),
        case("apply without kubectl", &["apply", "-f", "config/deployment.yaml"])
            .setup(|cx| {
                cx.set("KO_GO_PATH", go_bin().display().to_string());
                cx.set("PATH", "/nonexistent");
            })
            .fails(1, &["kubectl was not found on PATH", "install kubectl"]),
        case("run without kubectl", &["run", "./cmd/hello"])
            .setup(|cx| {
                cx.set("KO_GO_PATH", go_bin().display().to_string());
                cx.set("PATH", "/nonexistent");
            })
            .fails(1, &["kubectl was not found on PATH"]),
    ]);
}

#[test]
fn selectors() {
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {app: web}}\nspec: {image: ko://example.com/app/cmd/hello}\n";
    let with = move |cx: &mut Ctx| cx.write("pod.yaml", yaml);
    run_matrix(vec![
        case("unbalanced parentheses", &["resolve", "-l", "app in (a", "-f", "pod.yaml"])
            .setup(with)
            .fails(1, &["invalid selector \"app in (a\": unbalanced parentheses", "expected e.g. app=web"]),
        case("empty requirement", &["resolve", "-l", "a=b,,c", "-f", "pod.yaml"])
            .setup(with)
            .fails(1, &["invalid selector \"a=b,,c\": empty requirement"]),
        case("bad key", &["resolve", "-l", "=x", "-f", "pod.yaml"])
            .setup(with)
            .fails(1, &["invalid selector \"=x\": bad key"]),
        case("set without parentheses", &["resolve", "-l", "app notin a", "-f", "pod.yaml"])
            .setup(with)
            .fails(1, &["invalid selector \"app notin a\": a set needs (…)"]),
        case("a document that is not an object", &["resolve", "-l", "app=web", "-f", "doc.yaml"])
            .setup(|cx| cx.write("doc.yaml", "just: data\n"))
            .fails(1, &["doc.yaml: document 1 has no apiVersion or kind", "Kubernetes objects only"]),
    ]);
}

/// The registry misbehaving: ko gives up within the documented bounds, naming the registry and
/// the request, and what it says matches what the registry did. Each case labels its image
/// differently, so that its config is a new blob the faults meet on the way up.
#[test]
fn registry_faults() {
    run_matrix(vec![
        case("a registry that never answers", &["build", "--image-label=ko-tests-case=1", "./cmd/hello"])
            .setup(|cx| {
                let fake = cx.fake(|_, _| Reply::Silent);
                cx.set("KO_DOCKER_REPO", format!("{fake}/prev"));
            })
            .fails(
                1,
                &[
                    "{fake}",
                    "GET /v2/: no complete answer within 20 s",
                    "gave up after 2 attempts",
                    "no answer after 10 s",
                ],
            )
            .within(70),
        case("a base registry that trickles the manifest", &["build", "--image-label=ko-tests-case=2", "./cmd/hello"])
            .setup(|cx| {
                let fake = cx.fake(|_, path| match path {
                    "/v2/" => Reply::status(200, &[], "{}"),
                    _ => Reply::TrickleBody { status: 200, body: vec![b' '; 400], every: Duration::from_secs(20) },
                });
                cx.set("KO_DEFAULTBASEIMAGE", format!("{fake}/base:1"));
            })
            .fails(1, &["{fake}/base", "GET /v2/base/manifests/1", "no complete answer within 20 s"])
            .within(60),
        case("HTTP 500 everywhere", &["build", "--image-label=ko-tests-case=3", "./cmd/hello"])
            .setup(|cx| {
                let fake = cx.fake(|_, _| Reply::status(500, &[], "oops"));
                cx.set("KO_DOCKER_REPO", format!("{fake}/prev"));
            })
            .fails(1, &["checking {fake}/prev: GET /v2/: HTTP 500 Internal Server Error: the registry is failing"])
            .not(&["corrupt message", "cannot connect"])
            .within(60),
        case("HTTP 429 with a long Retry-After on the tag", &["build", "--image-label=ko-tests-case=4", "./cmd/hello"])
            .setup(|cx| {
                let fake = cx.fake(|method, path| match (method, path.contains("/manifests/")) {
                    ("PUT", true) => Reply::status(429, &[("Retry-After", "3600")], ENVELOPE_429),
                    _ => Reply::Forward,
                });
                cx.set("KO_DOCKER_REPO", format!("{fake}/prev"));
            })
            .fails(
                1,
                &[
                    "publishing manifest {fake}/prev/hello-",
                    "HTTP 429 Too Many Requests",
                    "asks to wait 3600 s",
                    "try again later",
                ],
            )
            .within(60),
        case("bytes that are not HTTP", &["build", "--image-label=ko-tests-case=5", "./cmd/hello"])
            .setup(|cx| {
                let fake = cx.fake(|_, _| Reply::Garbage(b"SSH-2.0-OpenSSH_9.2\r\n".to_vec()));
                cx.set("KO_DOCKER_REPO", format!("{fake}/prev"));
            })
            .fails(
                1,
                &["{fake}", "answered with something that is not HTTP", "is this the registry's address and port?"],
            )
            .not(&["corrupt message"])
            .within(60),
        case("a redirect loop", &["build", "--image-label=ko-tests-case=6", "./cmd/hello"])
            .setup(|cx| {
                let fake = cx.fake(|_, _| Reply::status(302, &[("Location", "/v2/")], ""));
                cx.set("KO_DOCKER_REPO", format!("{fake}/prev"));
            })
            .fails(1, &["{fake}", "redirected too often, probably in a loop"])
            .within(60),
        case("an upload Location on another host", &["build", "--image-label=ko-tests-case=7", "./cmd/hello"])
            .setup(|cx| {
                // The registry names uploads by the address it was asked on: the fake's own.
                let own = Arc::new(Mutex::new(String::new()));
                let seen = own.clone();
                let fake = cx.fake(move |method, path| match (method, path.ends_with("/blobs/uploads/")) {
                    ("POST", true) => Reply::ForwardRewriting {
                        from: format!("Location: http://{}", seen.lock().unwrap()),
                        to: "Location: http://evil.example.invalid".into(),
                    },
                    _ => Reply::Forward,
                });
                *own.lock().unwrap() = fake.clone();
                cx.set("KO_DOCKER_REPO", format!("{fake}/prev"));
            })
            .fails(
                1,
                &[
                    "uploading blob",
                    "upload location on another host (http://evil.example.invalid)",
                    "refusing to follow it",
                ],
            )
            .within(60),
        case("an upload Location that is not a URL", &["build", "--image-label=ko-tests-case=8", "./cmd/hello"])
            .setup(|cx| {
                let fake = cx.fake(|method, path| match (method, path.ends_with("/blobs/uploads/")) {
                    ("POST", true) => Reply::status(202, &[("Location", "http://[::garbage")], ""),
                    _ => Reply::Forward,
                });
                cx.set("KO_DOCKER_REPO", format!("{fake}/prev"));
            })
            .fails(1, &["uploading blob", "invalid upload location \"http://[::garbage\""])
            .within(60),
        case("nothing listening", &["build", "--image-label=ko-tests-case=9", "./cmd/hello"])
            .env("KO_DOCKER_REPO", "127.0.0.1:1/prev")
            .fails(1, &["127.0.0.1:1", "cannot connect", "is the registry running and reachable?"])
            .within(60),
        case("credentials refused", &["build", "--image-label=ko-tests-case=10", "./cmd/hello"])
            .setup(|cx| {
                let fake = cx.fake(|_, _| Reply::status(401, &[("WWW-Authenticate", "Basic realm=\"fake\"")], ""));
                cx.set("KO_DOCKER_REPO", format!("{fake}/prev"));
            })
            .fails(1, &["{fake}/prev", "HTTP 401 Unauthorized", "check your credentials: `ko login`"])
            .within(60),
        case("a manifest the registry refuses", &["build", "--image-label=ko-tests-case=11", "./cmd/hello"])
            .setup(|cx| {
                let fake = cx.fake(|method, path| match (method, path.contains("/manifests/")) {
                    ("PUT", true) => Reply::status(
                        400,
                        &[],
                        r#"{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid"}]}"#,
                    ),
                    _ => Reply::Forward,
                });
                cx.set("KO_DOCKER_REPO", format!("{fake}/prev"));
            })
            .fails(
                1,
                &["publishing manifest {fake}/prev/hello-", "HTTP 400 Bad Request: MANIFEST_INVALID: manifest invalid"],
            )
            .within(60),
        case(
            "uploads answered 429 with a Retry-After date 97,000 years away",
            &["build", "--image-label=ko-tests-case=13", "./cmd/hello"],
        )
        .setup(|cx| {
            let fake = cx.fake(|method, _| match method {
                "PATCH" => Reply::status(429, &[("Retry-After", "Sun, 06 Nov 98941 0:49:37 GMT")], ENVELOPE_429),
                _ => Reply::Forward,
            });
            cx.set("KO_DOCKER_REPO", format!("{fake}/prev"));
        })
        .fails(1, &["uploading blob", "HTTP 429 Too Many Requests: TOOMANYREQUESTS: slow down", "gave up after"])
        .within(60),
        case(
            "uploads answered 429 with a day's Retry-After",
            &["build", "--image-label=ko-tests-case=14", "./cmd/hello"],
        )
        .setup(|cx| {
            let fake = cx.fake(|method, _| match method {
                "PATCH" => Reply::status(429, &[("Retry-After", "86400")], ENVELOPE_429),
                _ => Reply::Forward,
            });
            cx.set("KO_DOCKER_REPO", format!("{fake}/prev"));
        })
        .fails(1, &["uploading blob", "HTTP 429 Too Many Requests", "asks to wait 86400 s", "try again later"])
        .within(30),
        case("uploads that always fail with 503", &["build", "--image-label=ko-tests-case=12", "./cmd/hello"])
            .setup(|cx| {
                let fake = cx.fake(|method, _| match method {
                    "PATCH" => Reply::status(503, &[], r#"{"errors":[{"code":"UNAVAILABLE","message":"down"}]}"#),
                    _ => Reply::Forward,
                });
                cx.set("KO_DOCKER_REPO", format!("{fake}/prev"));
            })
            .fails(
                1,
                &["uploading blob", "HTTP 503 Service Unavailable: UNAVAILABLE: down", "gave up after 5 attempts"],
            )
            .within(90),
    ]);
}

/// Signals end ko at once with 128 + the signal, wherever it is, leaving nothing behind.
#[test]
fn signals() {
    fn compiling(cx: &Ctx, _: &Path) -> bool {
        live_processes_with_env("KO_TESTS_CASE", &cx.env["KO_TESTS_CASE"]).iter().any(|p| p.contains(" compile "))
    }
    // An empty GOCACHE: go build compiles the standard library for many seconds.
    let cold = |cx: &mut Ctx| {
        let cache = cx.path("../gocache").display().to_string();
        cx.set("GOCACHE", cache);
    };
    run_matrix(vec![
        case("SIGINT during go build", &["build", "--push=false", "./cmd/hello"])
            .setup(cold)
            .signal(2, compiling)
            .within(120),
        case("SIGTERM during go build", &["build", "--push=false", "./cmd/hello"])
            .setup(cold)
            .signal(15, compiling)
            .within(120),
        case("SIGHUP during go build", &["build", "--push=false", "./cmd/hello"])
            .setup(cold)
            .signal(1, compiling)
            .within(120),
        case("SIGINT while a registry does not answer", &["build", "./cmd/hello"])
            .setup(|cx| {
                let fake = cx.fake(|_, _| Reply::Silent);
                cx.set("KO_DOCKER_REPO", format!("{fake}/prev"));
            })
            .signal(2, |_, _| true)
            .within(60),
        case("SIGINT while reading kodata", &["build", "--push=false", "./cmd/hello"])
            .setup(|cx| {
                let f = std::fs::File::create(kodata_dir(cx).join("big")).unwrap();
                f.set_len(16 << 30).unwrap();
            })
            .signal(2, |_, tmp| std::fs::read_dir(tmp.join("kocache/tmp")).is_ok_and(|mut d| d.next().is_some()))
            .within(120),
        case("SIGTERM while writing a large kodata layer", &["build", "--push=false", "./cmd/hello"])
            .setup(|cx| {
                let f = std::fs::File::create(kodata_dir(cx).join("big")).unwrap();
                f.set_len(16 << 30).unwrap();
            })
            .signal(15, |_, tmp| std::fs::read_dir(tmp.join("kocache/tmp")).is_ok_and(|mut d| d.next().is_some()))
            .within(120),
    ]);
}
