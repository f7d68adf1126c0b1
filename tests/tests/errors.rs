//! Failures: exit code 1, a message naming the culprit and saying what to do, no panic, no
//! output reference, bounded time. (The bad-input matrix, `bad_input.rs`, has many more.)

use std::time::Duration;

use ko_tests::*;

/// Every needle must be in stderr.
fn assert_mentions(out: &Output, needles: &[&str]) {
    for n in needles {
        assert!(out.stderr.contains(n), "stderr should mention {n:?}\n{}", out.describe());
    }
}

fn assert_no_ref(out: &Output) {
    assert!(!out.stdout.contains("@sha256:"), "a failed build printed a reference\n{}", out.describe());
}

#[test]
fn non_main_package() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let out =
        ko_fail(fx.ko().args(["build", "./pkg/lib"]).env("KO_DOCKER_REPO", format!("{}/err", reg.host())), KO_TIMEOUT);
    assert_no_ref(&out);
    assert_mentions(&out, &["./pkg/lib is not a main package (it is package lib)", "declares `package main`"]);
    let writes: Vec<Request> = reg.requests().into_iter().filter(Request::is_write).collect();
    assert!(writes.is_empty(), "nothing pushed: {writes:?}");
}

#[test]
fn missing_package() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let out =
        ko_fail(fx.ko().args(["build", "./cmd/nope"]).env("KO_DOCKER_REPO", format!("{}/err", reg.host())), KO_TIMEOUT);
    assert_no_ref(&out);
    assert_mentions(&out, &["./cmd/nope: ", "directory not found", "name a main package of the module"]);
}

#[test]
fn go_build_failure_shows_compiler_output() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let out = ko_fail(
        fx.ko().args(["build", "./cmd/broken"]).env("KO_DOCKER_REPO", format!("{}/err", reg.host())),
        KO_TIMEOUT,
    );
    assert_no_ref(&out);
    assert_mentions(&out, &["go build example.com/app/cmd/broken for linux/amd64", "undefined: thisDoesNotExist"]);
}

#[test]
fn failure_of_one_argument_fails_the_command() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let out = ko_fail(
        fx.ko().args(["build", "./cmd/hello", "./cmd/broken"]).env("KO_DOCKER_REPO", format!("{}/err", reg.host())),
        KO_TIMEOUT,
    );
    assert_mentions(&out, &["go build example.com/app/cmd/broken", "undefined: thisDoesNotExist"]);
    assert_no_ref(&out);
}

#[test]
fn unreachable_registry_fails_fast() {
    let fx = GoFixture::app();
    let out = ko_fail(
        fx.ko().args(["build", "./cmd/hello"]).env("KO_DOCKER_REPO", "127.0.0.1:1/unreachable"),
        Duration::from_secs(60),
    );
    assert_no_ref(&out);
    assert_mentions(&out, &["127.0.0.1:1/unreachable", "cannot connect", "is the registry running and reachable?"]);
}

#[test]
fn invalid_ko_docker_repo() {
    let fx = GoFixture::app();
    let out = ko_fail(fx.ko().args(["build", "./cmd/hello"]).env("KO_DOCKER_REPO", "UPPER CASE!!"), KO_TIMEOUT);
    assert_no_ref(&out);
    assert_mentions(&out, &["KO_DOCKER_REPO: invalid repository \"UPPER CASE!!\"", "white space", "expected e.g."]);
}

#[test]
fn missing_ko_docker_repo() {
    let fx = GoFixture::app();
    let out = ko_fail(fx.ko().args(["build", "./cmd/hello"]), KO_TIMEOUT);
    assert_no_ref(&out);
    assert_mentions(&out, &["KO_DOCKER_REPO is not set", "--push=false"]);
}

#[test]
fn base_image_not_found() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let base = format!("{}/nope:missing", reg.host());
    let out = ko_fail(
        fx.ko()
            .args(["build", "./cmd/hello"])
            .env("KO_DOCKER_REPO", format!("{}/err", reg.host()))
            .env("KO_DEFAULTBASEIMAGE", &base),
        KO_TIMEOUT,
    );
    assert_no_ref(&out);
    assert_mentions(&out, &[&format!("fetching {base}"), "HTTP 404 Not Found", "MANIFEST_UNKNOWN"]);
}

#[test]
fn kodata_symlink_escaping_the_module() {
    let reg = Registry::start();
    let fx = GoFixture::badlink();
    let out =
        ko_fail(fx.ko().args(["build", "./cmd/app"]).env("KO_DOCKER_REPO", format!("{}/err", reg.host())), KO_TIMEOUT);
    assert_no_ref(&out);
    assert_mentions(&out, &["kodata/escape.txt points to /etc/passwd", "outside", "KO_DATA_PATH_ALLOWED_ROOT"]);
    let writes: Vec<Request> = reg.requests().into_iter().filter(Request::is_write).collect();
    assert!(writes.is_empty(), "nothing pushed: {writes:?}");
}

#[test]
fn unknown_flag_and_bad_platform() {
    let fx = GoFixture::app();
    // A usage error: clap's code 2 (cobra's is 1).
    let out = run(
        fx.ko().args(["build", "--no-such-flag", "./cmd/hello"]).env("KO_DOCKER_REPO", "127.0.0.1:1/unreachable"),
        KO_TIMEOUT,
    );
    assert!(!out.status.success(), "unknown flag accepted\n{}", out.describe());
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(2), "a usage error\n{}", out.describe());
    assert_mentions(&out, &["unexpected argument '--no-such-flag'"]);
    let out = ko_fail(
        fx.ko()
            .args(["build", "--platform=all,linux/amd64", "./cmd/hello"])
            .env("KO_DOCKER_REPO", "127.0.0.1:1/unreachable"),
        KO_TIMEOUT,
    );
    assert_mentions(&out, &["--platform: `all` cannot be combined with other platforms"]);
}
