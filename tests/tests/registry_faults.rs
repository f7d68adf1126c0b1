//! ko through a fault-injecting proxy in front of a real registry: connection resets, 503s with
//! `Retry-After`, a stall mid-upload. Builds still publish correct images (every blob pulled and
//! checked against its digest, straight from the registry), or fail within bounded time with an
//! error naming registry, repository and status, leaving the previous tag untouched.

use std::time::Duration;

use ko_tests::fault_proxy::{FaultProxy, Faults};
use ko_tests::secure_registry::verify_all_blobs;
use ko_tests::*;

fn tag_digest(reference: &str) -> String {
    let (raw, _) = inspect_raw(&docker(reference));
    digest_of(&raw)
}

#[test]
fn build_survives_resets_503s_and_a_stall_mid_upload() {
    let reg = Registry::start();
    let proxy = FaultProxy::start(
        &reg.host(),
        Faults {
            reset_every: Some(4),
            first_503s: 3,
            stall_after_bytes: Some(400 * 1024),
            stall_for: Duration::from_secs(2),
            ..Default::default()
        },
    );
    let fx = GoFixture::app();
    let out = ko_ok(
        fx.ko()
            .args(["build", "-t", "v1,latest", "./cmd/hello", "./cmd/second"])
            .env("KO_DOCKER_REPO", format!("{}/faults", proxy.host())),
    );
    let injected = proxy.injected();
    println!("fault proxy: {injected}; the build succeeded (all survived)");
    eprintln!("fault proxy: {injected}; the build succeeded (all survived)");
    assert!(injected.resets >= 1, "{injected}");
    assert_eq!(injected.http_503s, 3, "{injected}");
    assert_eq!(injected.stalls, 1, "{injected}");
    assert!(out.stderr.contains("retrying") || out.stderr.contains("restarting"), "{}", out.describe());

    // Verify straight from the registry, not through the proxy.
    let mut blobs = 0;
    for r in refs(&out, 2) {
        let direct = r.replacen(&proxy.host(), &reg.host(), 1);
        blobs += verify_all_blobs(&direct, None);
        let (name, digest) = split_digest(&direct);
        for tag in ["v1", "latest"] {
            assert_eq!(tag_digest(&format!("{name}:{tag}")), digest, "tag {tag} names the printed digest");
        }
    }
    println!("verified {blobs} blobs by digest");
}

#[test]
fn persistent_503_fails_in_bounded_time_naming_registry_repository_and_status() {
    let reg = Registry::start();
    let proxy = FaultProxy::start(&reg.host(), Faults { always_503: true, ..Default::default() });
    let fx = GoFixture::app();
    let out = ko_fail(
        fx.ko().args(["build", "./cmd/hello"]).env("KO_DOCKER_REPO", format!("{}/down", proxy.host())),
        Duration::from_secs(120),
    );
    let injected = proxy.injected();
    println!("fault proxy: {injected}; the build failed as it should");
    // The destination is checked while the image builds: its ping is what fails.
    let says = format!("checking {}/down: GET /v2/: HTTP 503 Service Unavailable: UNAVAILABLE", proxy.host());
    assert!(out.stderr.contains(&says), "{}", out.describe());
    assert!(out.stderr.contains("the registry is failing; try again later"), "{}", out.describe());
    assert!(out.elapsed < Duration::from_secs(90), "gave up in bounded time: {:?}", out.elapsed);
    assert!(injected.http_503s >= 5, "{injected}");
    assert!(!out.stdout.contains("@sha256:"));
}

#[test]
fn failed_upload_leaves_the_previous_tag_untouched() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let repo = format!("{}/keep", reg.host());
    let first = ko_ok(fx.ko().args(["build", "-t", "stable", "./cmd/hello"]).env("KO_DOCKER_REPO", &repo));
    let (name, old_digest) = split_digest(&refs(&first, 1)[0]);
    let name = name.trim_end_matches(":stable").to_string();
    let tagged = format!("{name}:stable");
    assert_eq!(tag_digest(&tagged), old_digest);

    // A different binary, pushed through a proxy that resets every connection carrying more
    // than 64 KiB: the binary layer can never be uploaded.
    let proxy =
        FaultProxy::start(&reg.host(), Faults { max_bytes_per_connection: Some(64 * 1024), ..Default::default() });
    let out = ko_fail(
        fx.ko()
            .args(["build", "-t", "stable", "--ldflags=-s -w", "./cmd/hello"])
            .env("KO_DOCKER_REPO", format!("{}/keep", proxy.host())),
        Duration::from_secs(180),
    );
    let injected = proxy.injected();
    println!("fault proxy: {injected}; the build failed and the tag was kept");
    assert!(injected.upload_resets >= 2, "{injected}");
    assert!(out.stderr.contains("uploading blob") && out.stderr.contains("/keep/hello-"), "{}", out.describe());
    assert!(out.stderr.contains("gave up after"), "{}", out.describe());
    assert_eq!(tag_digest(&tagged), old_digest, "the tag still names the previous image");
    verify_all_blobs(&format!("{name}@{old_digest}"), None);
}
