//! Failures: exit code 1, a message naming the culprit, no panic, no output
//! reference, bounded time.

use std::time::Duration;

use ko_tests::*;

fn assert_mentions(out: &Output, needles: &[&str]) {
    assert!(
        needles.iter().any(|n| out.stderr.contains(n)),
        "stderr should mention one of {needles:?}\n{}",
        out.describe()
    );
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
    assert_mentions(&out, &["pkg/lib"]);
    assert_mentions(&out, &["main"]);
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
    assert_mentions(&out, &["cmd/nope"]);
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
    assert_mentions(&out, &["thisDoesNotExist"]);
}

#[test]
fn failure_of_one_argument_fails_the_command() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let out = ko_fail(
        fx.ko().args(["build", "./cmd/hello", "./cmd/broken"]).env("KO_DOCKER_REPO", format!("{}/err", reg.host())),
        KO_TIMEOUT,
    );
    assert_mentions(&out, &["thisDoesNotExist"]);
}

#[test]
fn unreachable_registry_fails_fast() {
    let fx = GoFixture::app();
    let out = ko_fail(
        fx.ko().args(["build", "./cmd/hello"]).env("KO_DOCKER_REPO", "127.0.0.1:1/unreachable"),
        Duration::from_secs(60),
    );
    assert_no_ref(&out);
    assert_mentions(&out, &["127.0.0.1:1"]);
}

#[test]
fn invalid_ko_docker_repo() {
    let fx = GoFixture::app();
    let out = ko_fail(fx.ko().args(["build", "./cmd/hello"]).env("KO_DOCKER_REPO", "UPPER CASE!!"), KO_TIMEOUT);
    assert_no_ref(&out);
    assert_mentions(&out, &["UPPER CASE!!", "KO_DOCKER_REPO"]);
}

#[test]
fn missing_ko_docker_repo() {
    let fx = GoFixture::app();
    let out = ko_fail(fx.ko().args(["build", "./cmd/hello"]), KO_TIMEOUT);
    assert_no_ref(&out);
    assert_mentions(&out, &["KO_DOCKER_REPO"]);
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
    assert_mentions(&out, &[base.as_str(), "nope:missing", "/nope"]);
}

#[test]
fn kodata_symlink_escaping_the_module() {
    let reg = Registry::start();
    let fx = GoFixture::badlink();
    let out =
        ko_fail(fx.ko().args(["build", "./cmd/app"]).env("KO_DOCKER_REPO", format!("{}/err", reg.host())), KO_TIMEOUT);
    assert_no_ref(&out);
    assert_mentions(&out, &["escape.txt", "/etc/passwd"]);
    let writes: Vec<Request> = reg.requests().into_iter().filter(Request::is_write).collect();
    assert!(writes.is_empty(), "nothing pushed: {writes:?}");
}

#[test]
fn unknown_flag_and_bad_platform() {
    let fx = GoFixture::app();
    // A usage error: any non-zero code (clap uses 2, cobra 1).
    let out = run(
        fx.ko().args(["build", "--no-such-flag", "./cmd/hello"]).env("KO_DOCKER_REPO", "127.0.0.1:1/unreachable"),
        KO_TIMEOUT,
    );
    assert!(!out.status.success(), "unknown flag accepted\n{}", out.describe());
    assert_no_panic(&out);
    assert_mentions(&out, &["no-such-flag"]);
    let out = ko_fail(
        fx.ko()
            .args(["build", "--platform=all,linux/amd64", "./cmd/hello"])
            .env("KO_DOCKER_REPO", "127.0.0.1:1/unreachable"),
        KO_TIMEOUT,
    );
    assert_mentions(&out, &["all"]);
}
