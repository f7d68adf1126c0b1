//! `ko resolve`, `apply`, `create`, `delete`: the real Go builds and registry, output checked
//! byte for byte against the input files, and kubectl's argv/stdin recorded by a wrapper.

use std::fs;
use std::path::{Path, PathBuf};

use ko_tests::*;

const HELLO: &str = "example.com/app/cmd/hello";
const SECOND: &str = "example.com/app/cmd/second";

/// References `ko build` prints for hello and second (builds are reproducible, so resolve must
/// produce the same ones).
fn built_refs(fx: &GoFixture, repo: &str) -> (String, String) {
    let out = ko_ok(fx.ko().args(["build", HELLO, SECOND]).env("KO_DOCKER_REPO", repo));
    let lines = out.lines();
    assert_eq!(lines.len(), 2, "{}", out.describe());
    (lines[0].clone(), lines[1].clone())
}

fn read(fx: &GoFixture, rel: &str) -> String {
    fs::read_to_string(fx.path().join(rel)).unwrap()
}

/// The input with exactly the reference scalars replaced, written independently of ko's parser.
fn expected_deployment(fx: &GoFixture, hello: &str, second: &str) -> String {
    read(fx, "config/deployment.yaml")
        .replace(&format!("image: ko://{HELLO}    #"), &format!("image: {hello}    #"))
        .replace(&format!("image: 'ko://{SECOND}'"), &format!("image: '{second}'"))
}

fn expected_job(fx: &GoFixture, second: &str) -> String {
    read(fx, "config/job.yml").replace(&format!("\"ko://{SECOND}\""), &format!("\"{second}\""))
}

#[test]
fn resolve_directory_is_byte_for_byte_the_input_with_references_replaced() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let repo = format!("{}/resolve", reg.host());
    let (hello, second) = built_refs(&fx, &repo);

    let out = ko_ok(fx.ko().args(["resolve", "-f", "config"]).env("KO_DOCKER_REPO", &repo));
    let want = format!("{}---\n{}", expected_deployment(&fx, &hello, &second), expected_job(&fx, &second));
    assert_eq!(out.stdout, want, "{}", out.describe());
    assert!(out.stdout.contains("echo ko://example.com/app/cmd/hello is not replaced"));
    // Each image was built once, and what the YAML names is in the registry.
    assert_eq!(out.stderr.matches(&format!("Building {HELLO} for")).count(), 1, "{}", out.describe());
    for r in [&hello, &second] {
        let (_, digest) = split_digest(r);
        assert_eq!(inspect(&docker(r))["Digest"], digest.as_str());
    }

    let out = ko_ok(fx.ko().args(["resolve", "-R", "-f", "config"]).env("KO_DOCKER_REPO", &repo));
    let nested = read(&fx, "config/more/pod.yaml").replace(&format!("ko://{HELLO}"), &hello);
    assert_eq!(out.stdout, format!("{want}---\n{nested}"), "-R adds config/more in sorted order");
}

#[test]
fn resolve_reads_stdin_and_several_files_in_order() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let repo = format!("{}/stdin", reg.host());
    let (hello, second) = built_refs(&fx, &repo);
    let input = "a: ko://example.com/app/cmd/hello\r\n# keep me\r\nb: [ko://example.com/app/cmd/hello]\r\n";
    let out = run_with_stdin(
        fx.ko().args(["resolve", "-f", "config/job.yml", "-f", "-"]).env("KO_DOCKER_REPO", &repo),
        input.as_bytes(),
        KO_TIMEOUT,
    );
    assert!(out.status.success(), "{}", out.describe());
    let want = format!("{}---\n{}", expected_job(&fx, &second), input.replace(&format!("ko://{HELLO}"), &hello));
    assert_eq!(out.stdout, want);
}

#[test]
fn resolve_selector_keeps_matching_documents() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let repo = format!("{}/selector", reg.host());
    let out = ko_ok(fx.ko().args(["resolve", "-l", "app=once", "-f", "config"]).env("KO_DOCKER_REPO", &repo));
    assert!(out.stdout.contains("kind: Job") && !out.stdout.contains("kind: Deployment"), "{}", out.describe());
    assert!(!out.stderr.contains(&format!("Building {HELLO}")), "unselected documents are not built");
}

#[test]
fn resolve_errors_name_the_place() {
    let fx = GoFixture::app();
    fs::write(fx.path().join("bad.yaml"), "a: 1\nb: [unclosed\n").unwrap();
    let out = ko_fail(fx.ko().args(["resolve", "-f", "bad.yaml"]).env("KO_DOCKER_REPO", "127.0.0.1:1/x"), KO_TIMEOUT);
    assert!(out.stderr.contains("bad.yaml:"), "{}", out.describe());

    fs::write(fx.path().join("lib.yaml"), "image: ko://example.com/app/pkg/lib\n").unwrap();
    let out = ko_fail(fx.ko().args(["resolve", "-f", "lib.yaml"]).env("KO_DOCKER_REPO", "127.0.0.1:1/x"), KO_TIMEOUT);
    assert!(out.stderr.contains("lib.yaml:1:8") && out.stderr.contains("not a main package"), "{}", out.describe());

    let out =
        ko_fail(fx.ko().args(["resolve", "-f", "missing.yaml"]).env("KO_DOCKER_REPO", "127.0.0.1:1/x"), KO_TIMEOUT);
    assert!(out.stderr.contains("missing.yaml"), "{}", out.describe());
}

/// A directory holding a `kubectl` that records its argv and stdin, then runs `then`.
struct KubectlRecorder {
    dir: tempfile::TempDir,
}

impl KubectlRecorder {
    fn new(then: &str) -> KubectlRecorder {
        let dir = tempfile::tempdir().unwrap();
        let script =
            format!("#!/bin/sh\nprintf '%s\\n' \"$@\" > '{0}/argv'\ncat > '{0}/stdin'\n{then}\n", dir.path().display());
        write_executable(dir.path(), "kubectl", script.as_bytes());
        KubectlRecorder { dir }
    }

    fn path_env(&self) -> String {
        format!("{}:{}", self.dir.path().display(), std::env::var("PATH").unwrap_or_default())
    }

    fn argv(&self) -> Option<Vec<String>> {
        fs::read_to_string(self.dir.path().join("argv")).ok().map(|s| s.lines().map(String::from).collect())
    }

    fn stdin(&self) -> String {
        fs::read_to_string(self.dir.path().join("stdin")).unwrap()
    }
}

#[test]
fn apply_and_create_pipe_the_resolved_yaml_to_kubectl() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let repo = format!("{}/apply", reg.host());
    let (hello, second) = built_refs(&fx, &repo);
    for verb in ["apply", "create"] {
        let rec = KubectlRecorder::new("exit 0");
        let out = ko_ok(
            fx.ko()
                .args([verb, "-f", "config/deployment.yaml", "--context=ctx", "-n", "team", "--", "--dry-run=server"])
                .env("KO_DOCKER_REPO", &repo)
                .env("PATH", rec.path_env()),
        );
        assert_eq!(
            rec.argv().unwrap(),
            [verb, "-f", "-", "--context=ctx", "--namespace=team", "--dry-run=server"],
            "{}",
            out.describe()
        );
        assert_eq!(rec.stdin(), expected_deployment(&fx, &hello, &second));
    }
}

#[test]
fn kubectl_status_becomes_ko_status_and_failed_builds_apply_nothing() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let repo = format!("{}/status", reg.host());
    let rec = KubectlRecorder::new("echo 'error: from kubectl' >&2; exit 3");
    let out = run(
        fx.ko().args(["apply", "-f", "config/job.yml"]).env("KO_DOCKER_REPO", &repo).env("PATH", rec.path_env()),
        KO_TIMEOUT,
    );
    assert_eq!(out.status.code(), Some(3), "{}", out.describe());
    assert!(out.stderr.contains("error: from kubectl"), "kubectl's stderr reaches the user");

    fs::write(fx.path().join("broken.yaml"), "image: ko://example.com/app/cmd/broken\n").unwrap();
    let rec = KubectlRecorder::new("exit 0");
    let out = ko_fail(
        fx.ko()
            .args(["apply", "-f", "config/job.yml", "-f", "broken.yaml"])
            .env("KO_DOCKER_REPO", &repo)
            .env("PATH", rec.path_env()),
        KO_TIMEOUT,
    );
    assert!(out.stderr.contains("thisDoesNotExist"), "{}", out.describe());
    assert_eq!(rec.argv(), None, "kubectl must not run when a build fails");

    let out = ko_fail(
        fx.ko().args(["apply", "-f", "config/job.yml"]).env("KO_DOCKER_REPO", &repo).env("PATH", empty_path_with_go()),
        KO_TIMEOUT,
    );
    assert!(out.stderr.contains("kubectl was not found"), "{}", out.describe());
}

#[test]
fn delete_passes_everything_to_kubectl() {
    let fx = GoFixture::app();
    let rec = KubectlRecorder::new("exit 0");
    ko_ok(fx.ko().args(["delete", "-f", "config", "-R", "--ignore-not-found"]).env("PATH", rec.path_env()));
    assert_eq!(rec.argv().unwrap(), ["delete", "-f", "config", "-R", "--ignore-not-found"]);
}

/// A PATH with only the directory holding `go` (so no kubectl).
fn empty_path_with_go() -> String {
    go_bin().parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/usr/bin")).display().to_string()
}

/// Against a real kube-apiserver (tests/k8s/build.sh): `ko apply` stores the Deployment with the
/// published digest, `ko create` of the same object fails with kubectl's status, `ko delete` removes it.
#[test]
fn apply_and_delete_against_a_real_api_server() {
    let api = ko_tests::k8s::ApiServer::start();
    let reg = Registry::start();
    let fx = GoFixture::app();
    let repo = format!("{}/cluster", reg.host());
    let (hello, second) = built_refs(&fx, &repo);
    let kubeconfig = format!("--kubeconfig={}", api.kubeconfig_path().display());

    let out = ko_ok(fx.ko().args(["apply", "-f", "config/deployment.yaml", &kubeconfig]).env("KO_DOCKER_REPO", &repo));
    assert!(out.stdout.contains("deployment.apps/hello created"), "{}", out.describe());
    let images = run_tool(api.kubectl().args([
        "get",
        "deployment",
        "hello",
        "-o",
        "jsonpath={.spec.template.spec.containers[*].image}",
    ]));
    assert_eq!(String::from_utf8_lossy(&images), format!("{hello} {second}"));

    let out = run(
        fx.ko().args(["create", "-f", "config/deployment.yaml", &kubeconfig]).env("KO_DOCKER_REPO", &repo),
        KO_TIMEOUT,
    );
    assert_eq!(out.status.code(), Some(1), "create of an existing object fails in kubectl\n{}", out.describe());
    assert!(out.stderr.contains("AlreadyExists") || out.stderr.contains("already exists"), "{}", out.describe());

    let out = ko_ok(fx.ko().args(["delete", &kubeconfig, "-f", "config/deployment.yaml"]));
    assert!(out.stdout.contains("deleted"), "{}", out.describe());
    let gone = run(api.kubectl().args(["get", "deployment", "hello"]), KO_TIMEOUT);
    assert!(!gone.status.success() && gone.stderr.contains("NotFound"), "{}", gone.describe());
}

/// `ko run` builds, publishes and hands kubectl upstream's `run` arguments (no kubelet runs here,
/// so the recorder stands in for the cluster side).
#[test]
fn run_builds_then_runs_kubectl_run() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let repo = format!("{}/run", reg.host());
    let (hello, _) = built_refs(&fx, &repo);
    let rec = KubectlRecorder::new("exit 0");
    ko_ok(
        fx.ko()
            .args(["run", "./cmd/hello", "--", "--namespace=x", "--", "kodata"])
            .env("KO_DOCKER_REPO", &repo)
            .env("PATH", rec.path_env()),
    );
    let name = hello.split('@').next().unwrap().rsplit('/').next().unwrap().to_string();
    assert_eq!(
        rec.argv().unwrap(),
        [
            "run",
            &name,
            &format!("--image={hello}"),
            "--restart=Never",
            "--rm",
            "--attach",
            "--log-flush-frequency=1s",
            "--namespace=x",
            "--",
            "kodata"
        ]
    );
}

/// `--strict=false` (or `strict: false` in .ko.yaml) also resolves bare import paths of the
/// module's main packages, as the 2018 ko did; other strings, and non-main packages, stay.
#[test]
fn non_strict_mode_resolves_bare_main_packages() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let repo = format!("{}/nonstrict", reg.host());
    let (hello, _) = built_refs(&fx, &repo);
    let input = format!("a: {HELLO}\nb: example.com/app/pkg/lib\nc: {HELLO}/extra\n");
    fs::write(fx.path().join("bare.yaml"), &input).unwrap();
    let strict = ko_ok(fx.ko().args(["resolve", "-f", "bare.yaml"]).env("KO_DOCKER_REPO", &repo));
    assert_eq!(strict.stdout, input, "strict mode leaves bare paths alone");
    let want = input.replacen(&format!("a: {HELLO}\n"), &format!("a: {hello}\n"), 1);
    let flag = ko_ok(fx.ko().args(["resolve", "--strict=false", "-f", "bare.yaml"]).env("KO_DOCKER_REPO", &repo));
    assert_eq!(flag.stdout, want);
    fs::write(fx.path().join(".ko.yaml"), "strict: false\n").unwrap();
    let config = ko_ok(fx.ko().args(["resolve", "-f", "bare.yaml"]).env("KO_DOCKER_REPO", &repo));
    assert_eq!(config.stdout, want);
}

/// kubectl's `--token` reaches kubectl but never ko's logs, even at `-v`.
#[test]
fn kubectl_token_is_not_logged() {
    let fx = GoFixture::app();
    let rec = KubectlRecorder::new("exit 0");
    let out = ko_ok(
        fx.ko()
            .args([
                "-v",
                "apply",
                "--push=false",
                "-f",
                "config/job.yml",
                "--token=SEKRET-TOKEN",
                "--",
                "--password",
                "PW-SEKRET",
            ])
            .env("PATH", rec.path_env()),
    );
    assert!(rec.argv().unwrap().contains(&"--token=SEKRET-TOKEN".to_string()));
    for secret in ["SEKRET-TOKEN", "PW-SEKRET"] {
        assert!(!out.stderr.contains(secret) && !out.stdout.contains(secret), "{}", out.describe());
    }
}
