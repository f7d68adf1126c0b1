//! Bounds and races outside the bad-input matrix: many arguments cost few `go list` runs, never
//! more at once than `--jobs`; two ko processes publishing the same image race cleanly; the
//! completion scripts are real scripts.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ko_tests::secure_registry::verify_all_blobs;
use ko_tests::*;

/// A `go` that logs each `go list` (start and end, with its pid) to `log`, then runs the real go.
fn logging_go(dir: &Path, log: &Path) -> std::path::PathBuf {
    let script = format!(
        "#!/bin/sh\nif [ \"$1\" = list ]; then\n  echo \"start $$\" >> {log}\n  {go} \"$@\"; status=$?\n  echo \"end $$\" >> {log}\n  exit $status\nfi\nexec {go} \"$@\"\n",
        log = log.display(),
        go = go_bin().display()
    );
    write_executable(dir, "go", script.as_bytes())
}

/// The most `go list` runs the log shows running at once, and how many there were.
fn list_runs(log: &Path) -> (usize, usize) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let (mut running, mut most, mut runs) = (0usize, 0usize, 0usize);
    for line in text.lines() {
        if line.starts_with("start") {
            running += 1;
            runs += 1;
            most = most.max(running);
        } else {
            running -= 1;
        }
    }
    (most, runs)
}

/// 1000 arguments (distinct spellings of two packages) are listed by a few `go list` runs of up
/// to 256 arguments each, one at a time with `--jobs=1`, and the build ends well within a minute.
#[test]
fn a_thousand_arguments_take_a_few_go_lists() {
    let fx = GoFixture::app();
    let log = fx.scratch("log").join("go.log");
    let go = logging_go(&fx.scratch("bin"), &log);
    let args: Vec<String> = (0..1000)
        .map(|i| {
            let pkg = if i % 2 == 0 { "hello" } else { "second" };
            format!("./cmd/{pkg}{}", "/.".repeat(i / 2))
        })
        .collect();
    assert_eq!(args.iter().collect::<BTreeSet<_>>().len(), 1000, "distinct arguments");
    let out = run(
        fx.ko().args(["build", "--push=false", "--jobs=1"]).args(&args).env("KO_GO_PATH", &go),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", out.describe());
    let lines = out.lines();
    assert_eq!(lines.len(), 1000, "one reference per argument");
    assert_eq!(lines.iter().collect::<BTreeSet<_>>().len(), 2, "two packages, two references");
    assert!(lines[0].contains("/hello-") && lines[1].contains("/second-"), "in argument order: {:?}", &lines[..2]);
    let (most, runs) = list_runs(&log);
    assert_eq!(most, 1, "go list runs at once with --jobs=1");
    assert!((1..=4).contains(&runs), "1000 arguments in chunks of 256 take at most 4 go list runs, not {runs}");
}

/// Two ko processes publishing the same import path to the same repository at once both succeed;
/// the tag ends on one of their two digests, with every blob of that image in the registry.
#[test]
fn two_processes_publishing_the_same_image_race_cleanly() {
    let reg = Registry::start();
    let fx = GoFixture::app();
    let repo = format!("{}/race", reg.host());
    for round in 0..3 {
        let spawn = |label: &str| {
            fx.ko()
                .args(["build", "--image-label", &format!("writer={label}-{round}"), "./cmd/hello"])
                .env("KO_DOCKER_REPO", &repo)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn("a"), spawn("b"));
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        let mut digests = Vec::new();
        for out in [&a, &b] {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "round {round}: {}{}", text, String::from_utf8_lossy(&out.stderr));
            digests.push(split_digest(text.trim()).1);
        }
        assert_ne!(digests[0], digests[1], "the two images differ");
        let tag = format!("{repo}/hello-{HELLO_MD5}:latest");
        let (raw, _) = inspect_raw(&docker(&tag));
        let now = digest_of(&raw);
        assert!(digests.contains(&now), "round {round}: the tag names {now}, neither of {digests:?}");
        verify_all_blobs(&format!("{repo}/hello-{HELLO_MD5}@{now}"), None);
        for d in &digests {
            verify_all_blobs(&format!("{repo}/hello-{HELLO_MD5}@{d}"), None);
        }
    }
}

/// `ko completion SHELL` prints a script the shell accepts (where the shell is installed) that
/// knows ko's commands and flags.
#[test]
fn completion_scripts() {
    for (shell, marker) in [
        ("bash", "complete -F _ko"),
        ("zsh", "#compdef ko"),
        ("fish", "complete -c ko"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = ko_ok(ko().args(["completion", shell]));
        assert!(out.stdout.contains(marker), "{shell}: {marker:?} missing");
        for word in ["build", "resolve", "platform", "image-refs"] {
            assert!(out.stdout.contains(word), "{shell}: {word} missing");
        }
    }
    let bash = ko_ok(ko().args(["completion", "bash"]));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ko.bash");
    std::fs::write(&file, &bash.stdout).unwrap();
    let checked = Command::new("bash").arg("-n").arg(&file).status().unwrap();
    assert!(checked.success(), "bash -n rejects the completion script");
    // Sourced, it completes `ko bu` to `build`.
    let words = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; COMP_WORDS=(ko bu); COMP_CWORD=1; _ko ko bu ko; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            file.display()
        ))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&words.stdout).lines().any(|l| l == "build"), "{words:?}");
}
