//! Credentials, TLS and tokens against real `docker-registry` instances: htpasswd Basic auth over
//! TLS with a CA made by the test, token auth against the harness's token service (scopes,
//! cross-repository mounts, refresh on 401, identity tokens), credential helpers, podman's auth
//! file, `ko login`/`ko logout` — and no credential in ko's output at any log level.

use std::fs;
use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use ko_tests::secure_registry::*;
use ko_tests::tls::{TestCa, TokenSigningKey};
use ko_tests::token_server::{TokenPolicy, TokenServer};
use ko_tests::*;
use serde_json::json;

const USER: &str = "kouser";
const PASS: &str = "pw-Zq8x1-s3cret";

fn hello_ref(host: &str) -> String {
    format!("{host}/auth/hello-{HELLO_MD5}")
}

/// A TLS registry with htpasswd auth, its CA.
fn tls_basic_registry() -> (Registry, TestCa) {
    let ca = TestCa::new("basic");
    let cert = ca.server_cert("registry");
    let reg = Registry::start_with(RegistryConfig { tls: Some(&cert), htpasswd: vec![(USER, PASS)], token: None });
    (reg, ca)
}

#[test]
fn login_then_build_to_a_tls_registry_with_basic_auth() {
    let (reg, ca) = tls_basic_registry();
    let fx = GoFixture::app();
    let config_dir = fx.scratch("docker-config");
    fs::write(config_dir.join("config.json"), r#"{"psFormat":"table","auths":{"other.example.com":{"auth":"eDp5"}}}"#)
        .unwrap();

    // ko login with --password-stdin.
    let mut login = fx.ko();
    login
        .args(["login", &reg.host(), "-u", USER, "--password-stdin"])
        .env("DOCKER_CONFIG", &config_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = login.spawn().unwrap();
    child.stdin.take().unwrap().write_all(format!("{PASS}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ko login failed: {stderr}");
    assert!(!stderr.contains(PASS) && !String::from_utf8_lossy(&out.stdout).contains(PASS));
    let config: serde_json::Value = serde_json::from_slice(&fs::read(config_dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["auths"][reg.host()]["auth"], basic_auth(USER, PASS));
    assert_eq!(config["psFormat"], "table", "other keys are kept");
    assert_eq!(config["auths"]["other.example.com"]["auth"], "eDp5");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(config_dir.join("config.json")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "config.json must be private");
    }

    // Build over HTTPS, trusting the test CA through SSL_CERT_FILE; at -v, nothing secret shows.
    let out = ko_ok(
        fx.ko()
            .args(["build", "-v", "./cmd/hello"])
            .env("KO_DOCKER_REPO", format!("{}/auth", reg.host()))
            .env("DOCKER_CONFIG", &config_dir)
            .env("SSL_CERT_FILE", &ca.ca_pem),
    );
    assert_no_secrets(&out, &[PASS, &basic_auth(USER, PASS)]);
    let reference = refs(&out, 1).remove(0);
    assert!(reference.starts_with(&hello_ref(&reg.host())), "{reference}");
    let creds = format!("{USER}:{PASS}");
    let blobs = verify_all_blobs(&reference, Some(&creds));
    assert!(blobs >= 3, "config and layers checked: {blobs}");
    // Without credentials the registry refuses: the image really is behind auth.
    let anon =
        skopeo().args(["inspect", "--raw", "--tls-verify=false", &format!("docker://{reference}")]).output().unwrap();
    assert!(!anon.status.success());

    // ko logout removes the entry, keeps the rest.
    let out = ko_ok(fx.ko().args(["logout", &reg.host()]).env("DOCKER_CONFIG", &config_dir));
    assert!(out.stderr.contains("Removing login credentials"), "{}", out.describe());
    let config: serde_json::Value = serde_json::from_slice(&fs::read(config_dir.join("config.json")).unwrap()).unwrap();
    assert!(config["auths"].get(reg.host()).is_none());
    assert_eq!(config["psFormat"], "table");

    // Logged out: a clear 401 naming registry and repository.
    let out = ko_fail(
        fx.ko()
            .args(["build", "./cmd/hello"])
            .env("KO_DOCKER_REPO", format!("{}/auth", reg.host()))
            .env("DOCKER_CONFIG", &config_dir)
            .env("SSL_CERT_FILE", &ca.ca_pem),
        KO_TIMEOUT,
    );
    assert!(out.stderr.contains("401") && out.stderr.contains(&format!("{}/auth/", reg.host())), "{}", out.describe());
}

#[test]
fn wrong_password_is_a_clear_401_without_the_password() {
    let (reg, ca) = tls_basic_registry();
    let fx = GoFixture::app();
    let wrong = "wrong-Pw-77-unique";
    let (_d, dir) = docker_config(&json!({"auths": {reg.host(): {"auth": basic_auth(USER, wrong)}}}));
    for verbose in [false, true] {
        let mut cmd = fx.ko();
        cmd.args(["build", "./cmd/hello"])
            .env("KO_DOCKER_REPO", format!("{}/auth", reg.host()))
            .env("DOCKER_CONFIG", &dir)
            .env("SSL_CERT_FILE", &ca.ca_pem);
        if verbose {
            cmd.arg("-v");
        }
        let out = ko_fail(&mut cmd, KO_TIMEOUT);
        assert!(out.stderr.contains("HTTP 401"), "{}", out.describe());
        assert!(out.stderr.contains(&reg.host()), "names the registry\n{}", out.describe());
        assert!(out.stderr.contains("/auth/hello-"), "names the repository\n{}", out.describe());
        assert!(out.stderr.contains("credentials"), "says what to check\n{}", out.describe());
        assert_no_secrets(&out, &[wrong, &basic_auth(USER, wrong)]);
        assert!(!out.stdout.contains("@sha256:"));
    }
}

#[test]
fn untrusted_ca_is_refused_and_insecure_registry_allows_it() {
    let (reg, _ca) = tls_basic_registry();
    let fx = GoFixture::app();
    let (_d, dir) = docker_config(&json!({"auths": {reg.host(): {"username": USER, "password": PASS}}}));
    let out = ko_fail(
        fx.ko()
            .args(["build", "./cmd/hello"])
            .env("KO_DOCKER_REPO", format!("{}/auth", reg.host()))
            .env("DOCKER_CONFIG", &dir),
        Duration::from_secs(120),
    );
    assert!(
        out.stderr.to_lowercase().contains("certificate"),
        "says the certificate is the problem\n{}",
        out.describe()
    );
    assert!(out.stderr.contains(&reg.host()), "{}", out.describe());

    let out = ko_ok(
        fx.ko()
            .args(["build", "--insecure-registry", "./cmd/hello"])
            .env("KO_DOCKER_REPO", format!("{}/auth", reg.host()))
            .env("DOCKER_CONFIG", &dir),
    );
    verify_all_blobs(&refs(&out, 1)[0], Some(&format!("{USER}:{PASS}")));
}

#[test]
fn credential_helper_on_path_is_called_and_used() {
    let (reg, ca) = tls_basic_registry();
    let fx = GoFixture::app();
    let bin = fx.scratch("helper-bin");
    let calls = fx.scratch("helper-log").join("calls.txt");
    let script = format!(
        "#!/bin/sh\nread server\necho \"$1 $server\" >> {}\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASS}\"}}' \"$server\"\n",
        calls.display()
    );
    write_executable(&bin, "docker-credential-kotest", script.as_bytes());
    let (_d, dir) = docker_config(&json!({"credHelpers": {reg.host(): "kotest"}}));
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let out = ko_ok(
        fx.ko()
            .args(["build", "-v", "./cmd/hello"])
            .env("KO_DOCKER_REPO", format!("{}/auth", reg.host()))
            .env("DOCKER_CONFIG", &dir)
            .env("SSL_CERT_FILE", &ca.ca_pem)
            .env("PATH", path),
    );
    assert_no_secrets(&out, &[PASS]);
    let log = fs::read_to_string(&calls).expect("the helper was called");
    assert!(log.lines().any(|l| l == format!("get {}", reg.host())), "helper calls: {log}");
    verify_all_blobs(&refs(&out, 1)[0], Some(&format!("{USER}:{PASS}")));
}

#[test]
fn podman_auth_file_is_the_fallback() {
    let (reg, ca) = tls_basic_registry();
    let fx = GoFixture::app();
    let auth_file = fx.scratch("podman").join("auth.json");
    fs::write(&auth_file, json!({"auths": {reg.host(): {"auth": basic_auth(USER, PASS)}}}).to_string()).unwrap();
    let out = ko_ok(
        fx.ko()
            .args(["build", "./cmd/hello"])
            .env("KO_DOCKER_REPO", format!("{}/auth", reg.host()))
            .env("REGISTRY_AUTH_FILE", &auth_file)
            .env("SSL_CERT_FILE", &ca.ca_pem),
    );
    verify_all_blobs(&refs(&out, 1)[0], Some(&format!("{USER}:{PASS}")));
}

/// A registry with `auth: token`, its token service (the first token it issues is expired),
/// and a base image pushed to `base/img`.
fn token_registry(policy: TokenPolicy) -> (Registry, TokenServer, TestCa) {
    let ca = TestCa::new("token");
    let key = TokenSigningKey::new(ca.dir());
    let tokens = TokenServer::start(&key, policy);
    let reg = Registry::start_with(RegistryConfig { tls: None, htpasswd: vec![], token: Some((tokens.realm(), &key)) });
    (reg, tokens, ca)
}

#[test]
fn token_auth_scopes_cross_repo_mount_and_refresh_on_401() {
    let policy =
        TokenPolicy { users: [(USER.to_string(), PASS.to_string())].into(), expired_first: 0, ..Default::default() };
    let (reg, tokens, _ca) = token_registry(policy);
    let creds = format!("{USER}:{PASS}");

    // A base image in base/img, pushed by skopeo (its own token flow).
    let mut layout = OciLayout::new();
    let img = layout.image("amd64", &[vec![("etc/base-release", b"token base\n")]]);
    layout.tag(&img.manifest, "v1");
    let base = format!("{}/base/img:v1", reg.host());
    copy_to_with(&format!("oci:{}:v1", layout.path().display()), &base, Some(&creds));

    let fx = GoFixture::app();
    let (_d, dir) = docker_config(&json!({"auths": {reg.host(): {"auth": basic_auth(USER, PASS)}}}));
    let before = tokens.requests().len();
    let mark = reg.mark();
    let out = ko_ok(
        fx.ko()
            .args(["build", "-v", "./cmd/hello"])
            .env("KO_DOCKER_REPO", format!("{}/app", reg.host()))
            .env("KO_DEFAULTBASEIMAGE", &base)
            .env("DOCKER_CONFIG", &dir),
    );
    let issued = tokens.issued();
    let secrets: Vec<&str> = issued.iter().map(String::as_str).chain([PASS]).collect();
    assert_no_secrets(&out, &secrets);
    let reference = refs(&out, 1).remove(0);
    verify_all_blobs(&reference, Some(&creds));

    let asked: Vec<_> = tokens.requests().into_iter().skip(before).collect();
    assert!(asked.iter().all(|r| r.user.as_deref() == Some(USER) && r.status == 200), "token requests: {asked:?}");
    assert!(asked.iter().any(|r| r.scopes == ["repository:base/img:pull"]), "pull scope for the base: {asked:?}");
    let dest = format!("app/hello-{HELLO_MD5}");
    let mount_scopes = asked.iter().find(|r| {
        r.scopes.contains(&format!("repository:{dest}:push,pull"))
            && r.scopes.contains(&"repository:base/img:pull".to_string())
    });
    assert!(mount_scopes.is_some(), "one token covers push,pull on {dest} and pull on base/img: {asked:?}");
    let reqs = reg.requests_since(mark);
    let mounts: Vec<_> = reqs.iter().filter(|r| r.method == "POST" && r.decoded_uri().contains("mount=")).collect();
    assert!(!mounts.is_empty() && mounts.iter().all(|r| r.status == 201), "mounts succeed: {mounts:?}");
    assert!(out.stderr.contains("mounted blob"), "{}", out.describe());
}

#[test]
fn expired_token_is_refreshed_on_401() {
    let policy =
        TokenPolicy { users: [(USER.to_string(), PASS.to_string())].into(), expired_first: 1, ..Default::default() };
    let (reg, tokens, _ca) = token_registry(policy);
    let fx = GoFixture::app();
    let (_d, dir) = docker_config(&json!({"auths": {reg.host(): {"auth": basic_auth(USER, PASS)}}}));
    let out = ko_ok(
        fx.ko()
            .args(["build", "-v", "./cmd/hello"])
            .env("KO_DOCKER_REPO", format!("{}/app", reg.host()))
            .env("DOCKER_CONFIG", &dir),
    );
    // The registry rejected the expired token (its log says so) and ko fetched a fresh one.
    assert!(reg.log_text().contains("token"), "the registry logged the rejected token\n{}", reg.log_text());
    assert!(out.stderr.contains("HTTP 401, authenticating again"), "{}", out.describe());
    let secrets: Vec<String> = tokens.issued().into_iter().chain([PASS.to_string()]).collect();
    assert_no_secrets(&out, &secrets.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(tokens.issued().len() >= 2, "a fresh token was fetched");
    verify_all_blobs(&refs(&out, 1)[0], Some(&format!("{USER}:{PASS}")));
}

#[test]
fn identity_token_is_exchanged_at_the_token_service() {
    let refresh = "refresh-Tok-5521-unique";
    let policy = TokenPolicy {
        users: [(USER.to_string(), PASS.to_string())].into(),
        refresh_tokens: [(refresh.to_string(), USER.to_string())].into(),
        expired_first: 0,
    };
    let (reg, tokens, _ca) = token_registry(policy);
    let fx = GoFixture::app();
    let (_d, dir) = docker_config(&json!({"auths": {reg.host(): {"auth": "", "identitytoken": refresh}}}));
    let out = ko_ok(
        fx.ko()
            .args(["build", "-v", "./cmd/hello"])
            .env("KO_DOCKER_REPO", format!("{}/app", reg.host()))
            .env("DOCKER_CONFIG", &dir),
    );
    assert_no_secrets(&out, &[refresh]);
    let asked = tokens.requests();
    assert!(
        asked.iter().any(|r| r.method == "POST" && r.grant_type.as_deref() == Some("refresh_token") && r.status == 200),
        "{asked:?}"
    );
    verify_all_blobs(&refs(&out, 1)[0], Some(&format!("{USER}:{PASS}")));
}
