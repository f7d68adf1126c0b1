//! The engine every front end embeds (`ko_core::Session`), against the real registry and `go`:
//! what a session keeps between calls (tokens, the base), what `finish` writes once, the events a
//! build emits, and cancellation mid-`go build` and mid-upload leaving no process, no temporary
//! file and no changed tag behind. Calls run the way bindings run them: `embed::block_on` from a
//! plain thread, the work on the shared runtime's workers.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use ko_core::{CancelToken, ErrorKind, Event, Options, ResolveOptions, Session, embed};
use ko_tests::fault_proxy::{FaultProxy, Faults};
use ko_tests::secure_registry::*;
use ko_tests::tls::{TestCa, TokenSigningKey};
use ko_tests::token_server::{TokenPolicy, TokenServer};
use ko_tests::*;
use serde_json::json;

const USER: &str = "engine-user";
const PASS: &str = "engine-pass-9";

/// Options for a session building in `fx` with `env` (this process's scrubbed environment plus
/// `extra`) as its whole environment.
fn options(fx: &GoFixture, extra: &[(&str, &str)]) -> Options {
    let mut env = ko_env();
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    Options { working_dir: Some(fx.path().to_path_buf()), env: Some(env), ..Default::default() }
}

/// Runs a session call the way bindings do.
fn block_on<T: Send + 'static>(
    work: impl std::future::Future<Output = ko_core::Result<T>> + Send + 'static,
) -> ko_core::Result<T> {
    embed::block_on(work, &CancelToken::new(), || false)
}

fn build(session: &Arc<Session>, import_path: &'static str) -> ko_core::Result<Vec<ko_core::Published>> {
    let s = session.clone();
    block_on(async move { s.build(&[import_path], &CancelToken::new()).await })
}

/// Events with the name of the thread each arrived on.
type Recorded = Arc<Mutex<Vec<(Event, String)>>>;

fn recorder(session: &Session, delay: Duration) -> Recorded {
    let seen: Recorded = Arc::default();
    let s = seen.clone();
    session.set_event_sink(Arc::new(move |e: &Event| {
        std::thread::sleep(delay);
        let thread = std::thread::current().name().unwrap_or("").to_string();
        s.lock().unwrap().push((e.clone(), thread));
    }));
    seen
}

fn take(seen: &Recorded) -> Vec<Event> {
    std::mem::take(&mut *seen.lock().unwrap()).into_iter().map(|(e, _)| e).collect()
}

fn position(events: &[Event], what: &str, pred: impl Fn(&Event) -> bool) -> usize {
    events.iter().position(pred).unwrap_or_else(|| panic!("no {what} event in {events:#?}"))
}

#[test]
fn one_session_fetches_each_token_and_the_base_once() {
    let ca = TestCa::new("engine");
    let key = TokenSigningKey::new(ca.dir());
    let policy = TokenPolicy { users: [(USER.to_string(), PASS.to_string())].into(), ..Default::default() };
    let tokens = TokenServer::start(&key, policy);
    let reg = Registry::start_with(RegistryConfig { tls: None, htpasswd: vec![], token: Some((tokens.realm(), &key)) });
    let mut layout = OciLayout::new();
    let img = layout.image("amd64", &[vec![("etc/base-release", b"engine base\n")]]);
    layout.tag(&img.manifest, "v1");
    let base = format!("{}/base/img:v1", reg.host());
    copy_to_with(&format!("oci:{}:v1", layout.path().display()), &base, Some(&format!("{USER}:{PASS}")));

    let fx = GoFixture::app();
    let (_d, docker_dir) = docker_config(&json!({"auths": {reg.host(): {"auth": basic_auth(USER, PASS)}}}));
    let docker_dir = docker_dir.display().to_string();
    let opts = Options {
        docker_repo: Some(format!("{}/app", reg.host())),
        ..options(&fx, &[("DOCKER_CONFIG", &docker_dir), ("KO_DEFAULTBASEIMAGE", &base)])
    };
    let before_tokens = tokens.requests().len();
    let mark = reg.mark();
    let session = Arc::new(Session::new(opts).unwrap());
    let mut digests = Vec::new();
    for _ in 0..3 {
        digests.push(build(&session, "./cmd/hello").unwrap().remove(0).reference);
    }
    let s = session.clone();
    let yaml = block_on(async move {
        s.resolve_files(&[PathBuf::from("config")], &ResolveOptions::default(), &CancelToken::new()).await
    })
    .unwrap();
    block_on({
        let s = session.clone();
        async move { s.finish().await }
    })
    .unwrap();
    assert!(digests.windows(2).all(|w| w[0] == w[1]), "a rebuild gives the same image: {digests:?}");
    assert!(yaml.contains(&digests[0]), "resolve publishes hello again under the same reference:\n{yaml}");

    let asked: Vec<_> = tokens.requests().into_iter().skip(before_tokens).collect();
    let mut per_scope: BTreeMap<String, usize> = BTreeMap::new();
    for r in &asked {
        *per_scope.entry(r.scopes.join(" ")).or_default() += 1;
    }
    assert!(!per_scope.is_empty(), "the registry wants tokens");
    assert!(per_scope.values().all(|&n| n == 1), "each token was fetched once in the session: {per_scope:#?}");
    let base_gets: Vec<_> = reg
        .requests_since(mark)
        .into_iter()
        .filter(|r| r.method == "GET" && r.decoded_uri().contains("/v2/base/img/manifests/v1"))
        .collect();
    assert_eq!(base_gets.len(), 1, "the base is fetched once for 3 builds and a resolve: {base_gets:?}");
}

#[test]
fn finish_writes_the_tarball_and_image_refs_once() {
    let fx = GoFixture::app();
    let out = tempfile::tempdir().unwrap();
    let (tarball, refs) = (out.path().join("images.tar"), out.path().join("refs.txt"));
    let opts = Options {
        docker_repo: Some("registry.example/team".into()),
        push: Some(false),
        tarball: Some(tarball.clone()),
        image_refs: Some(refs.clone()),
        ..options(&fx, &[])
    };
    let session = Arc::new(Session::new(opts).unwrap());
    let hello = build(&session, "./cmd/hello").unwrap().remove(0).reference;
    let second = build(&session, "./cmd/second").unwrap().remove(0).reference;
    assert!(!tarball.exists() && !refs.exists(), "nothing is written before finish");
    let finish = |s: &Arc<Session>| {
        let s = s.clone();
        block_on(async move { s.finish().await })
    };
    finish(&session).unwrap();
    let bytes = std::fs::read(&tarball).unwrap();
    let entries = tar_entries(&bytes);
    let manifest: serde_json::Value = serde_json::from_slice(&entry(&entries, "manifest.json").content).unwrap();
    let tags: Vec<&str> = manifest.as_array().unwrap().iter().map(|m| m["RepoTags"][0].as_str().unwrap()).collect();
    assert_eq!(tags.len(), 2, "both builds are in the one tarball: {manifest}");
    assert!(tags.iter().any(|t| t.contains("/hello-")) && tags.iter().any(|t| t.contains("/second-")), "{tags:?}");
    assert_eq!(std::fs::read_to_string(&refs).unwrap(), format!("{hello}\n{second}\n"));

    let written = std::fs::metadata(&tarball).unwrap().modified().unwrap();
    finish(&session).unwrap();
    assert_eq!(std::fs::metadata(&tarball).unwrap().modified().unwrap(), written, "a second finish writes nothing");
    let err = build(&session, "./cmd/hello").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}

#[test]
fn events_trace_a_build_then_a_rebuild_that_uploads_nothing() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let opts = Options { docker_repo: Some(format!("{}/events", reg.host())), ..options(&fx, &[]) };
    let session = Arc::new(Session::new(opts).unwrap());
    // A slow callback: events still arrive, from the runtime's workers, and the build finishes.
    let seen = recorder(&session, Duration::from_millis(15));
    let reference = build(&session, "./cmd/hello").unwrap().remove(0).reference;
    let threads: Vec<String> = seen.lock().unwrap().iter().map(|(_, t)| t.clone()).collect();
    assert!(threads.iter().all(|t| t == "ko-runtime"), "events come from worker threads: {threads:?}");
    let first = take(&seen);

    let started = position(&first, "buildStarted", |e| matches!(e, Event::BuildStarted { .. }));
    let finished = position(&first, "buildFinished", |e| matches!(e, Event::BuildFinished { .. }));
    let layer = position(&first, "layerReady", |e| matches!(e, Event::LayerReady { cached: false, .. }));
    let uploaded = position(&first, "blobUploaded", |e| matches!(e, Event::BlobUploaded { .. }));
    let manifest = position(&first, "manifestPublished", |e| matches!(e, Event::ManifestPublished { .. }));
    let published = position(&first, "published", |e| matches!(e, Event::Published { .. }));
    assert!(started < finished && finished < layer && layer < uploaded, "{first:#?}");
    assert!(uploaded < manifest && manifest < published, "{first:#?}");
    let Event::Published { reference: said, .. } = &first[published] else { unreachable!() };
    assert_eq!(said, &reference);

    // Every blob of the pushed manifest and of its SBOM's went up, and the progress of each
    // reached its size.
    let (raw, parsed) = inspect_raw(&docker(&reference));
    let (name, digest) = split_digest(&reference);
    let (_, sbom) = inspect_raw(&docker(&format!("{name}:{}.sbom", digest.replacen(':', "-", 1))));
    let blobs = |m: &serde_json::Value| -> HashMap<String, u64> {
        m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .chain([&m["config"]])
            .map(|d| (d["digest"].as_str().unwrap().into(), d["size"].as_u64().unwrap()))
            .collect()
    };
    let mut want = blobs(&parsed);
    want.extend(blobs(&sbom));
    let mut got = HashMap::new();
    for e in &first {
        if let Event::BlobUploaded { digest, size, .. } = e {
            got.insert(digest.clone(), *size);
            let last = first.iter().rev().find_map(|p| match p {
                Event::BlobProgress { digest: d, sent, total, .. } if d == digest => Some((*sent, *total)),
                _ => None,
            });
            assert_eq!(last, Some((*size, *size)), "progress of {digest} ends at its size");
        }
    }
    assert_eq!(got, want, "uploaded blobs = the manifest's and its SBOM's blobs ({} bytes of manifest)", raw.len());

    build(&session, "./cmd/hello").unwrap();
    let second = take(&seen);
    assert!(
        !second.iter().any(|e| matches!(e, Event::BlobUploaded { .. } | Event::BlobProgress { .. })),
        "{second:#?}"
    );
    let existing: HashMap<String, u64> = second
        .iter()
        .filter_map(|e| match e {
            Event::BlobExisting { digest, size, .. } => Some((digest.clone(), *size)),
            _ => None,
        })
        .collect();
    // The SBOM's tag already names its attachment, so its blobs are not asked about again.
    assert_eq!(existing, blobs(&parsed), "a rebuild finds every blob of the image in the registry");
}

#[test]
fn a_rebuild_in_a_new_session_takes_its_layers_from_the_cache() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().display().to_string();
    let opts =
        || Options { docker_repo: Some(format!("{}/cached", reg.host())), ..options(&fx, &[("KOCACHE", &cache_dir)]) };
    let first = Arc::new(Session::new(opts()).unwrap());
    let seen = recorder(&first, Duration::ZERO);
    let reference = build(&first, "./cmd/hello").unwrap().remove(0).reference;
    let cold = take(&seen);
    assert!(cold.iter().any(|e| matches!(e, Event::LayerReady { cached: false, .. })), "{cold:#?}");
    // Another session (as another ko process would be) with the same cache.
    let second = Arc::new(Session::new(opts()).unwrap());
    let seen = recorder(&second, Duration::ZERO);
    assert_eq!(build(&second, "./cmd/hello").unwrap().remove(0).reference, reference);
    let warm = take(&seen);
    let layers: Vec<bool> = warm
        .iter()
        .filter_map(|e| if let Event::LayerReady { cached, .. } = e { Some(*cached) } else { None })
        .collect();
    assert_eq!(layers, [true, true], "kodata and binary layers come from the cache, untarred and uncompressed");
    assert!(!warm.iter().any(|e| matches!(e, Event::BlobUploaded { .. } | Event::BlobProgress { .. })), "{warm:#?}");
}

/// Windows images are built (tests/windows.rs), on a Windows base: the built-in one has no
/// Windows files.
#[test]
fn windows_platforms_need_a_windows_base() {
    let fx = GoFixture::app();
    let opts = Options { push: Some(false), platforms: vec!["windows/amd64".into()], ..options(&fx, &[]) };
    let err = build(&Arc::new(Session::new(opts).unwrap()), "./cmd/hello").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("needs a Windows base image"), "{err}");
}

/// The digest `reference` (a tag) names now.
fn tag_digest(reference: &str) -> String {
    let (raw, _) = inspect_raw(&docker(reference));
    digest_of(&raw)
}

/// Publishes `cmd/hello` (stripped, so that its binary layer differs from what a cancelled build
/// would upload) to `repo`, returning its tag reference.
fn publish_previous(fx: &GoFixture, repo: &str) -> String {
    let opts = Options { docker_repo: Some(repo.into()), ldflags: vec!["-s -w".into()], ..options(fx, &[]) };
    let published = build(&Arc::new(Session::new(opts).unwrap()), "./cmd/hello").unwrap().remove(0);
    let (name, _) = split_digest(&published.reference);
    format!("{name}:latest")
}

/// Starts a build of `cmd/hello` on another thread; once an event matches `ready` and then
/// `then()` (polled here, not in the callback, which would hold the build up) says the moment
/// has come, cancels it. Returns the error and how long the cancelled call took to return.
fn cancel_when(
    opts: Options,
    ready: impl Fn(&Event) -> bool + Send + Sync + 'static,
    then: impl Fn() -> bool,
) -> (ko_core::Error, Duration) {
    let session = Arc::new(Session::new(opts).unwrap());
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    session.set_event_sink(Arc::new(move |e: &Event| {
        if ready(e) {
            let _ = tx.lock().unwrap().send(());
        }
    }));
    let cancel = CancelToken::new();
    let (s, c, token) = (session.clone(), cancel.clone(), cancel.clone());
    let call = std::thread::spawn(move || {
        let result = embed::block_on(async move { s.build(&["./cmd/hello"], &c).await }, &token, || false);
        (result, Instant::now())
    });
    rx.recv_timeout(Duration::from_secs(240)).expect("the event to wait for came");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !then() {
        assert!(Instant::now() < deadline, "the moment to cancel never came");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let cancelled_at = Instant::now();
    cancel.cancel();
    let (result, returned_at) = call.join().unwrap();
    (result.unwrap_err(), returned_at - cancelled_at)
}

#[test]
fn cancelling_a_cold_go_build_leaves_no_process_no_file_and_the_old_tag() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let repo = format!("{}/cancel", reg.host());
    let tag = publish_previous(&fx, &repo);
    let before = tag_digest(&tag);

    let (gocache, tmp, kocache) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (cache, tmpdir) = (gocache.path().display().to_string(), tmp.path().display().to_string());
    let kocache_dir = kocache.path().display().to_string();
    let env = [("GOCACHE", cache.as_str()), ("TMPDIR", tmpdir.as_str()), ("KOCACHE", kocache_dir.as_str())];
    let opts = Options { docker_repo: Some(repo), ..options(&fx, &env) };
    // With an empty GOCACHE, `go build` compiles the runtime for many seconds: cancel once the
    // compiler runs.
    let (err, took) = cancel_when(opts, |e| matches!(e, Event::BuildStarted { .. }), || compiler_running(&cache));
    assert_eq!(err.kind(), ErrorKind::Cancelled, "{err}");
    assert!(took < Duration::from_secs(1), "the cancelled call returned after {took:?}");
    let left = live_processes_with_env("GOCACHE", &cache);
    assert!(left.is_empty(), "processes left running: {left:?}");
    assert_eq!(tree(tmp.path()), Vec::<String>::new(), "TMPDIR is as it was");
    assert_eq!(tree(&kocache.path().join("tmp")), Vec::<String>::new(), "no working directory is left in the cache");
    assert_eq!(tag_digest(&tag), before, "the tag still names the image published before");
}

/// Whether a `compile` runs with this `GOCACHE`.
fn compiler_running(gocache: &str) -> bool {
    live_processes_with_env("GOCACHE", gocache).iter().any(|p| p.contains(" compile "))
}

/// Waits (up to 60 s) until a `compile` runs with this `GOCACHE`.
fn wait_for_compiler(gocache: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if compiler_running(gocache) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn cancelling_mid_upload_returns_at_once_and_keeps_the_old_tag() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let tag = publish_previous(&fx, &format!("{}/upload", reg.host()));
    let before = tag_digest(&tag);
    // Through a proxy that stops forwarding for a minute once 64 KiB went up: the upload hangs.
    let proxy = FaultProxy::start(
        &reg.host(),
        Faults { stall_after_bytes: Some(64 * 1024), stall_for: Duration::from_secs(60), ..Default::default() },
    );
    let (tmp, kocache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (tmpdir, kocache_dir) = (tmp.path().display().to_string(), kocache.path().display().to_string());
    let env = [("TMPDIR", tmpdir.as_str()), ("KOCACHE", kocache_dir.as_str())];
    let opts = Options { docker_repo: Some(format!("{}/upload", proxy.host())), ..options(&fx, &env) };
    let (err, took) = cancel_when(opts, |e| matches!(e, Event::BlobProgress { .. }), || proxy.injected().stalls > 0);
    assert_eq!(err.kind(), ErrorKind::Cancelled, "{err}");
    assert!(took < Duration::from_secs(1), "the cancelled call returned after {took:?}");
    assert_eq!(tree(tmp.path()), Vec::<String>::new(), "TMPDIR is as it was");
    assert_eq!(tree(&kocache.path().join("tmp")), Vec::<String>::new(), "no working directory is left in the cache");
    assert_eq!(tag_digest(&tag), before, "the tag still names the image published before");
    drop(proxy);
}

/// `ko build` on a terminal draws its progress display; off a terminal, stderr is the log lines
/// alone, as before.
#[test]
fn progress_display_on_a_terminal_and_plain_log_lines_off_it() {
    let script = require_tool("script");
    let fx = GoFixture::app();
    // A go whose `build` takes a second, so that the display has something to draw.
    let slow_go = fx.scratch("bin").join("go");
    std::fs::create_dir_all(slow_go.parent().unwrap()).unwrap();
    write_executable(
        slow_go.parent().unwrap(),
        "go",
        format!("#!/bin/sh\n[ \"$1\" = build ] && sleep 1\nexec {} \"$@\"\n", go_bin().display()).as_bytes(),
    );
    let command = format!("{} build --push=false ./cmd/hello", ko_bin().display());
    let out = run(
        Command::new(script)
            .args(["-qfec", &command, "/dev/null"])
            .current_dir(fx.path())
            .env_clear()
            .envs(ko_env())
            .env("KO_GO_PATH", &slow_go),
        KO_TIMEOUT,
    );
    assert!(out.status.success(), "{}", out.describe());
    assert!(out.stdout.contains("go build example.com/app/cmd/hello (linux/amd64)"), "{}", out.describe());
    assert!(out.stdout.contains('\u{1b}'), "the display redraws with escape sequences: {}", out.describe());

    let plain = ko_ok(fx.ko().args(["build", "--push=false", "./cmd/hello"]).env("KO_GO_PATH", &slow_go));
    assert!(!plain.stderr.contains('\u{1b}'), "{}", plain.describe());
    let messages: Vec<&str> = plain
        .stderr
        .lines()
        .map(|l| {
            let (date, rest) = l.split_at(20);
            assert!(date.as_bytes()[4] == b'/' && date.ends_with(' '), "Go's log prefix: {l:?}");
            rest
        })
        .collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages[0].starts_with("Using base static@sha256:") && messages[0].ends_with(" for example.com/app/cmd/hello")
    );
    assert_eq!(messages[1], "Building example.com/app/cmd/hello for linux/amd64");
}

/// SIGINT, SIGTERM and SIGHUP cancel `ko build` mid-`go build`: exit 128+signal at once, with no
/// `go`/`compile` left and nothing left in `TMPDIR`.
#[test]
fn signals_cancel_the_cli_and_clean_up() {
    for (signal, number) in [("INT", 2), ("TERM", 15), ("HUP", 1)] {
        let fx = GoFixture::app();
        let (gocache, tmp, kocache) =
            (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let cache = gocache.path().display().to_string();
        let mut child = fx
            .ko()
            .args(["build", "--push=false", "./cmd/hello"])
            .env("GOCACHE", &cache)
            .env("TMPDIR", tmp.path())
            .env("KOCACHE", kocache.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        assert!(wait_for_compiler(&cache), "go build started");
        std::thread::sleep(Duration::from_millis(300));
        let sent = Instant::now();
        assert!(
            Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status().unwrap().success()
        );
        let status = child.wait().unwrap();
        let took = sent.elapsed();
        assert_eq!(status.code(), Some(128 + number), "SIG{signal}: {status:?}");
        assert!(took < Duration::from_secs(2), "SIG{signal}: ko took {took:?} to exit");
        let left = live_processes_with_env("GOCACHE", &cache);
        assert!(left.is_empty(), "SIG{signal}: processes left running: {left:?}");
        assert_eq!(tree(tmp.path()), Vec::<String>::new(), "SIG{signal}: TMPDIR is as it was");
        assert_eq!(
            tree(&kocache.path().join("tmp")),
            Vec::<String>::new(),
            "SIG{signal}: nothing left in the cache's tmp"
        );
    }
}
