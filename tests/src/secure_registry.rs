//! Registries as users meet them: `docker-registry` (distribution 2.8) with TLS from a test CA,
//! htpasswd Basic auth, or token auth against the harness's [`TokenServer`]; plus skopeo helpers
//! that pass credentials, and a check that pulls every blob of an image and verifies its digest.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::tls::{ServerCert, TokenSigningKey};
use crate::token_server::{ISSUER, SERVICE};
use crate::{Registry, digest_of, free_port, require_tool, run_tool};

/// How to start a registry.
#[derive(Default)]
pub struct RegistryConfig<'a> {
    /// Serve HTTPS with this certificate.
    pub tls: Option<&'a ServerCert>,
    /// htpasswd Basic auth with these users (bcrypt-hashed here).
    pub htpasswd: Vec<(&'a str, &'a str)>,
    /// Token auth: realm URL and the key whose certificate signs tokens.
    pub token: Option<(String, &'a TokenSigningKey)>,
}

impl Registry {
    /// Starts a registry with TLS and/or auth; waits until it answers on its port.
    pub fn start_with(config: RegistryConfig<'_>) -> Registry {
        let bin = require_tool("docker-registry");
        let dir = tempfile::Builder::new().prefix("ko-tests-registry").tempdir().unwrap();
        let port = free_port();
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: info\n  formatter: json\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  \
             maintenance:\n    uploadpurging:\n      enabled: false\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: ko-tests\n",
            dir.path().join("data").display()
        );
        if let Some(tls) = config.tls {
            yaml += &format!("  tls:\n    certificate: {}\n    key: {}\n", tls.cert.display(), tls.key.display());
        }
        if !config.htpasswd.is_empty() {
            let file = dir.path().join("htpasswd");
            let lines: Vec<String> =
                config.htpasswd.iter().map(|(u, p)| format!("{u}:{}", bcrypt::hash(p, 5).unwrap())).collect();
            fs::write(&file, lines.join("\n") + "\n").unwrap();
            yaml += &format!("auth:\n  htpasswd:\n    realm: ko-tests\n    path: {}\n", file.display());
        } else if let Some((realm, key)) = &config.token {
            yaml += &format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
                key.bundle.display()
            );
        }
        let config_path = dir.path().join("config.yml");
        fs::write(&config_path, yaml).unwrap();
        let log = dir.path().join("registry.log");
        let child = Command::new(&bin)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(fs::File::create(dir.path().join("access.log")).unwrap())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut reg = Registry { child, port, log, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = reg.child.try_wait().unwrap() {
                panic!("registry exited with {status}: {}", reg.log_text());
            }
            if std::net::TcpStream::connect(reg.host()).is_ok() {
                return reg;
            }
            if Instant::now() > deadline {
                panic!("registry did not listen within 20s: {}", reg.log_text());
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A skopeo command with `--insecure-policy`.
pub fn skopeo() -> Command {
    let mut c = Command::new(require_tool("skopeo"));
    c.arg("--insecure-policy");
    c
}

/// `skopeo inspect --raw` of `docker://<reference>` with credentials (TLS not verified).
pub fn inspect_raw_with(reference: &str, creds: Option<&str>) -> Value {
    let mut c = skopeo();
    c.args(["inspect", "--raw", "--tls-verify=false"]);
    if let Some(cr) = creds {
        c.arg("--creds").arg(cr);
    }
    c.arg(format!("docker://{reference}"));
    serde_json::from_slice(&run_tool(&mut c)).expect("skopeo prints JSON")
}

/// Copies an OCI layout (`oci:DIR:tag`) or any transport ref to `docker://dest` with credentials.
pub fn copy_to_with(src: &str, dest: &str, creds: Option<&str>) {
    let mut c = skopeo();
    c.args(["copy", "--dest-tls-verify=false"]);
    if let Some(cr) = creds {
        c.arg("--dest-creds").arg(cr);
    }
    c.arg(src).arg(format!("docker://{dest}"));
    run_tool(&mut c);
}

/// Pulls `reference` (an image, or every child of an index) with skopeo into a directory and
/// checks that every blob's bytes match its digest. Returns the number of blobs checked.
pub fn verify_all_blobs(reference: &str, creds: Option<&str>) -> usize {
    let manifest = inspect_raw_with(reference, creds);
    let (name, _) = reference.split_once('@').unwrap_or((reference, ""));
    let children: Vec<String> = match manifest.get("manifests").and_then(Value::as_array) {
        Some(ms) => ms.iter().map(|m| format!("{name}@{}", m["digest"].as_str().unwrap())).collect(),
        None => vec![reference.to_string()],
    };
    let mut checked = 0;
    for child in children {
        let dir = tempfile::Builder::new().prefix("ko-tests-verify").tempdir().unwrap();
        let mut c = skopeo();
        c.args(["copy", "--src-tls-verify=false"]);
        if let Some(cr) = creds {
            c.arg("--src-creds").arg(cr);
        }
        c.arg(format!("docker://{child}")).arg(format!("dir:{}", dir.path().display()));
        run_tool(&mut c);
        let m: Value = serde_json::from_slice(&fs::read(dir.path().join("manifest.json")).unwrap()).unwrap();
        let mut digests = vec![m["config"]["digest"].as_str().unwrap().to_string()];
        for l in m["layers"].as_array().unwrap() {
            digests.push(l["digest"].as_str().unwrap().to_string());
        }
        for d in digests {
            let bytes = read_blob(dir.path(), &d);
            assert_eq!(digest_of(&bytes), d, "blob {d} of {child} does not match its digest");
            checked += 1;
        }
    }
    checked
}

fn read_blob(dir: &Path, digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").unwrap();
    fs::read(dir.join(hex)).or_else(|_| fs::read(dir.join(digest))).unwrap_or_else(|e| panic!("blob {digest}: {e}"))
}

/// A Docker config directory holding `config` as config.json.
pub fn docker_config(config: &Value) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new().prefix("ko-tests-docker-config").tempdir().unwrap();
    let path = dir.path().to_path_buf();
    fs::write(path.join("config.json"), serde_json::to_vec_pretty(config).unwrap()).unwrap();
    (dir, path)
}

/// `user:pass` base64-encoded, as config.json's `auth`.
pub fn basic_auth(user: &str, pass: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
}

/// Asserts none of `secrets` (nor their base64 in a Basic header) occurs in ko's output.
pub fn assert_no_secrets(out: &crate::Output, secrets: &[&str]) {
    for s in secrets {
        assert!(!s.is_empty());
        for (stream, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            assert!(!text.contains(s), "a credential appears in ko's {stream}\n{}", out.describe());
        }
    }
    for text in [&out.stdout, &out.stderr] {
        assert!(
            !text.contains("Authorization:") && !text.contains("Basic "),
            "an auth header leaked\n{}",
            out.describe()
        );
    }
}
