//! A real Kubernetes API server on loopback: `etcd` plus `kube-apiserver`,
//! built from their Go modules by `tests/k8s/build.sh`, for tests that drive
//! the real `kubectl`.
//!
//! ```no_run
//! let api = ko_tests::k8s::ApiServer::start();
//! let out = ko_tests::run(api.kubectl().args(["get", "ns", "default"]), std::time::Duration::from_secs(60));
//! assert!(out.status.success());
//! ```
//!
//! Each [`ApiServer`] has its own etcd (data in a temp dir) and listens on
//! free loopback ports; it is ready (`/readyz`) when `start` returns, which
//! takes a few seconds. Authentication is a static bearer token for a user in
//! `system:masters`; authorization is `AlwaysAllow`. No controllers run, so a
//! Deployment is stored but never rolled out: check objects with
//! `kubectl get … -o jsonpath=…`. Both processes are killed on drop.
//!
//! The binaries come from `$KO_K8S_BIN` (a directory holding `etcd` and
//! `kube-apiserver`; `.ci/run` sets it). Without it, and outside CI, the
//! harness runs `tests/k8s/build.sh` itself (a few minutes the first time,
//! instant afterwards: the binaries are cached in `~/.cache/ko-tests/k8s`).

use std::ffi::OsString;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::{Output, require_tool, run, run_with_stdin, workspace_root};

/// The bearer token of the test user (member of `system:masters`).
pub const TOKEN: &str = "ko-tests-token";
/// The test user's name.
pub const USER: &str = "ko-tests";

/// How long etcd and kube-apiserver may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// Port clashes (a free port taken between probe and bind) are retried.
const START_ATTEMPTS: usize = 4;

/// The directory holding `etcd` and `kube-apiserver` (see the module docs).
pub fn k8s_bin_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let script = workspace_root().join("tests/k8s/build.sh");
        let dir = if let Some(d) = std::env::var_os("KO_K8S_BIN") {
            PathBuf::from(d)
        } else if std::env::var_os("CI").is_some() {
            panic!(
                "KO_K8S_BIN is not set: the Kubernetes tests need etcd and kube-apiserver. \
                 .ci/run builds them with `bash tests/k8s/build.sh` and exports KO_K8S_BIN=<the \
                 directory it prints on its last line>"
            );
        } else {
            eprintln!("ko-tests: KO_K8S_BIN is not set; running {} (minutes on first use)", script.display());
            let out = Command::new("bash")
                .arg(&script)
                .stdin(Stdio::null())
                .stderr(Stdio::inherit())
                .output()
                .unwrap_or_else(|e| panic!("cannot run bash {}: {e}", script.display()));
            assert!(
                out.status.success(),
                "bash {} failed ({}): cannot build etcd and kube-apiserver for the Kubernetes tests",
                script.display(),
                out.status
            );
            let stdout = String::from_utf8_lossy(&out.stdout);
            PathBuf::from(stdout.lines().last().unwrap_or_default().trim())
        };
        for bin in ["etcd", "kube-apiserver"] {
            if !dir.join(bin).is_file() {
                panic!(
                    "{} not found: build etcd and kube-apiserver with `bash {}` and set KO_K8S_BIN to \
                     the directory it prints",
                    dir.join(bin).display(),
                    script.display()
                );
            }
        }
        dir
    })
    .clone()
}

/// A running etcd + kube-apiserver pair. Killed on drop.
pub struct ApiServer {
    dir: TempDir,
    etcd: Child,
    apiserver: Child,
    port: u16,
    kubeconfig: PathBuf,
}

impl ApiServer {
    /// Starts etcd and kube-apiserver on free loopback ports and waits until
    /// the API server's `/readyz` passes (checked with the real kubectl).
    pub fn start() -> ApiServer {
        let bin = k8s_bin_dir();
        let kubectl = require_tool("kubectl");
        let dir = tempfile::Builder::new().prefix("ko-tests-k8s").tempdir().unwrap();
        let d = dir.path();

        fs::write(d.join("tokens.csv"), format!("{TOKEN},{USER},{USER},\"system:masters\"\n")).unwrap();
        let sa_key = d.join("service-account.key");
        let out = run(
            Command::new(require_tool("openssl"))
                .args(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out"])
                .arg(&sa_key),
            Duration::from_secs(60),
        );
        assert!(out.status.success(), "cannot make the service-account key\n{}", out.describe());

        let (mut etcd, etcd_url) = start_etcd(&bin, d);
        let started = Instant::now();
        let mut last_err = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let kubeconfig = d.join("kubeconfig");
            write_kubeconfig(&kubeconfig, port, &d.join("certs/apiserver.crt"));
            let log = d.join("kube-apiserver.log");
            let mut apiserver = Command::new(bin.join("kube-apiserver"))
                .arg(format!("--etcd-servers={etcd_url}"))
                .args(["--bind-address=127.0.0.1", "--advertise-address=127.0.0.1"])
                .arg(format!("--secure-port={port}"))
                .arg(format!("--cert-dir={}", d.join("certs").display()))
                .arg(format!("--token-auth-file={}", d.join("tokens.csv").display()))
                .arg("--authorization-mode=AlwaysAllow")
                .arg("--service-account-issuer=https://kubernetes.default.svc")
                .arg(format!("--service-account-key-file={}", sa_key.display()))
                .arg(format!("--service-account-signing-key-file={}", sa_key.display()))
                // No controller creates service accounts here: admitting Pods
                // must not require one.
                .arg("--disable-admission-plugins=ServiceAccount")
                .arg("--profiling=false")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(fs::File::create(&log).unwrap())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.join("kube-apiserver").display()));
            loop {
                if let Some(status) = apiserver.try_wait().unwrap() {
                    last_err = format!("kube-apiserver exited ({status})\n{}", tail(&log, 40));
                    break;
                }
                let probe = run(
                    Command::new(&kubectl)
                        .arg(format!("--kubeconfig={}", kubeconfig.display()))
                        .arg(format!("--cache-dir={}", d.join("kube-cache").display()))
                        .args(["get", "--raw=/readyz", "--request-timeout=5s"])
                        .stdin(Stdio::null()),
                    Duration::from_secs(30),
                );
                if probe.status.success() && probe.stdout.trim() == "ok" {
                    return ApiServer { dir, etcd, apiserver, port, kubeconfig };
                }
                if started.elapsed() > READY_TIMEOUT {
                    let _ = apiserver.kill();
                    let _ = apiserver.wait();
                    let _ = etcd.kill();
                    let _ = etcd.wait();
                    panic!(
                        "kube-apiserver not ready after {READY_TIMEOUT:?}\nlast probe:\n{}\n--- kube-apiserver log ---\n{}\n--- etcd log ---\n{}",
                        probe.describe(),
                        tail(&log, 40),
                        tail(&d.join("etcd.log"), 20)
                    );
                }
                thread::sleep(Duration::from_millis(250));
            }
            if !last_err.contains("address already in use") {
                break;
            }
        }
        let _ = etcd.kill();
        let _ = etcd.wait();
        panic!("cannot start kube-apiserver: {last_err}")
    }

    /// `https://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A kubeconfig for the test user (current context, namespace `default`;
    /// the server's self-signed certificate is its CA).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// Sets `KUBECONFIG` (and kubectl's cache dir) on `cmd`, for programs such
    /// as ko that run kubectl themselves.
    pub fn configure(&self, cmd: &mut Command) {
        cmd.env("KUBECONFIG", &self.kubeconfig);
        cmd.env("KUBECACHEDIR", self.dir.path().join("kube-cache"));
    }

    /// The environment [`configure`](Self::configure) sets.
    pub fn env(&self) -> Vec<(&'static str, OsString)> {
        vec![
            ("KUBECONFIG", self.kubeconfig.clone().into_os_string()),
            ("KUBECACHEDIR", self.dir.path().join("kube-cache").into_os_string()),
        ]
    }

    /// The real `kubectl`, preset with `--kubeconfig` for this server (and a
    /// private cache dir); stdin is null unless the caller sets it.
    pub fn kubectl(&self) -> Command {
        let mut cmd = Command::new(require_tool("kubectl"));
        cmd.arg(format!("--kubeconfig={}", self.kubeconfig.display()));
        cmd.arg(format!("--cache-dir={}", self.dir.path().join("kube-cache").display()));
        cmd.env_remove("KUBECONFIG");
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs `kubectl ARGS` with `input` on stdin (e.g. `apply -f -`).
    pub fn kubectl_stdin(&self, args: &[&str], input: &str) -> Output {
        run_with_stdin(self.kubectl().args(args), input.as_bytes(), Duration::from_secs(120))
    }

    /// Process ids of (etcd, kube-apiserver).
    pub fn pids(&self) -> (u32, u32) {
        (self.etcd.id(), self.apiserver.id())
    }

    /// The last lines of both logs (for failure messages).
    pub fn logs(&self) -> String {
        format!(
            "--- kube-apiserver log ---\n{}\n--- etcd log ---\n{}",
            tail(&self.dir.path().join("kube-apiserver.log"), 60),
            tail(&self.dir.path().join("etcd.log"), 30)
        )
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        let _ = self.apiserver.kill();
        let _ = self.apiserver.wait();
        let _ = self.etcd.kill();
        let _ = self.etcd.wait();
    }
}

/// Starts etcd with its data in `dir/etcd` and waits for `/health`.
/// Returns the child and its client URL.
fn start_etcd(bin: &Path, dir: &Path) -> (Child, String) {
    let log = dir.join("etcd.log");
    let mut last_err = String::new();
    for _ in 0..START_ATTEMPTS {
        let (client, peer) = (free_port(), free_port());
        let client_url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let data = dir.join("etcd");
        let _ = fs::remove_dir_all(&data);
        let mut child = Command::new(bin.join("etcd"))
            .args(["--name=default", "--log-level=warn", "--unsafe-no-fsync"])
            .arg(format!("--data-dir={}", data.display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=default={peer_url}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.join("etcd").display()));
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                last_err = format!("etcd exited ({status})\n{}", tail(&log, 40));
                break;
            }
            if http_get(client, "/health").is_ok_and(|body| body.contains("\"health\":\"true\"")) {
                return (child, client_url);
            }
            if started.elapsed() > READY_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                panic!("etcd not healthy after {READY_TIMEOUT:?}\n{}", tail(&log, 40));
            }
            thread::sleep(Duration::from_millis(100));
        }
        if !last_err.contains("address already in use") {
            break;
        }
    }
    panic!("cannot start etcd: {last_err}")
}

fn write_kubeconfig(path: &Path, port: u16, ca: &Path) {
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: ko-tests
  cluster:
    server: https://127.0.0.1:{port}
    certificate-authority: {ca:?}
users:
- name: {USER}
  user:
    token: {TOKEN}
contexts:
- name: ko-tests
  context:
    cluster: ko-tests
    user: {USER}
    namespace: default
current-context: ko-tests
",
        ca = ca.display().to_string()
    );
    fs::write(path, text).unwrap();
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A plain-HTTP GET on loopback returning the whole response.
fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    let addr = format!("127.0.0.1:{port}");
    let mut s = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut body = String::new();
    BufReader::new(s).read_to_string(&mut body)?;
    Ok(body)
}

/// The last `n` lines of a log file.
fn tail(path: &Path, n: usize) -> String {
    let Ok(f) = fs::File::open(path) else {
        return format!("({} missing)", path.display());
    };
    let lines: Vec<String> = BufReader::new(f).lines().map_while(Result::ok).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
