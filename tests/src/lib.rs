//! Harness for ko's integration tests.
//!
//! Every test runs the real `ko` binary (built by `cargo build -p ko-cli`), or
//! for the engine tests (`tests/engine.rs`) a `ko_core::Session`, against a
//! private `docker-registry` (distribution 2.8) on loopback, or a private
//! `dockerd` ([`docker`], for `tests/daemon.rs`), and checks the result with
//! independent tools: skopeo, umoci, the docker CLI, Go's `archive/tar` (the
//! `gotar` helper) and the tar/gzip readers here. This harness itself uses
//! none of ko's code.
//!
//! Missing tools are a hard failure with a clear message, never a skip; the
//! one exception is a Docker engine that cannot start (it needs root) outside
//! CI, whose tests print why they were skipped.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

pub mod docker;
pub mod fake_registry;
pub mod fault_proxy;
pub mod k8s;
pub mod secure_registry;
pub mod tls;
pub mod token_server;

/// Default time limit for one `ko` run.
pub const KO_TIMEOUT: Duration = Duration::from_secs(300);

/// md5 of the lower-cased import paths, as used by ko's default namer.
pub const HELLO_IP: &str = "example.com/app/cmd/hello";
pub const HELLO_MD5: &str = "a60355639e70c972f171c1cc04b2df15";
pub const SECOND_IP: &str = "example.com/app/cmd/second";
pub const SECOND_MD5: &str = "c7b677c7000a359e59d04a540eb5e525";

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const ANN_BASE_NAME: &str = "org.opencontainers.image.base.name";
pub const ANN_BASE_DIGEST: &str = "org.opencontainers.image.base.digest";

// ---------------------------------------------------------------------------
// Paths and tools

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests crate has a parent directory").to_path_buf()
}

/// `tests/fixtures` in the repository (read-only for tests: copy before use).
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

pub(crate) fn find_on_path(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(tool)).find(|p| p.is_file())
}

/// Panics with a clear message when an external tool is missing.
pub fn require_tool(tool: &str) -> PathBuf {
    find_on_path(tool).unwrap_or_else(|| {
        panic!(
            "required tool `{tool}` is not on PATH; the integration tests need \
             docker-registry, skopeo, umoci and go (CI installs them: \
             `apt-get install -y docker-registry skopeo umoci`)"
        )
    })
}

/// An `umoci` that reads zstd layers (0.5 and later): the system's when it is new enough, else
/// umoci v0.6.0 built from the Go module proxy into `~/.cache/ko-tests` (about 30 s, once).
pub fn umoci_zstd() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(system) = find_on_path("umoci") {
            let version = Command::new(&system).arg("--version").output().map(|o| o.stdout).unwrap_or_default();
            let version = String::from_utf8_lossy(&version);
            let minor =
                version.split_whitespace().nth(2).and_then(|v| v.split('.').nth(1)).and_then(|m| m.parse::<u32>().ok());
            if version.contains("version 0.") && minor.is_some_and(|m| m >= 5) || version.contains("version 1.") {
                return system;
            }
        }
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
        let out = home.join(".cache/ko-tests/umoci-v0.6.0/umoci");
        if out.is_file() {
            return out;
        }
        let info = run_tool(Command::new(go_bin()).args([
            "mod",
            "download",
            "-json",
            "github.com/opencontainers/umoci@v0.6.0",
        ]));
        let info: Value = serde_json::from_slice(&info).unwrap();
        let src = tempfile::Builder::new().prefix("ko-tests-umoci").tempdir().unwrap();
        copy_tree(Path::new(info["Dir"].as_str().unwrap()), src.path());
        run_tool(
            Command::new(go_bin())
                .args(["build", "-mod=mod", "-o"])
                .arg(&out)
                .arg("./cmd/umoci")
                .current_dir(src.path())
                .env("CGO_ENABLED", "0"),
        );
        out
    })
    .clone()
}

/// The `go` binary used by the tests (and passed to ko as `KO_GO_PATH` when
/// `go` is not on PATH but lives in /usr/local/go/bin).
pub fn go_bin() -> PathBuf {
    if let Some(p) = find_on_path("go") {
        return p;
    }
    let fallback = PathBuf::from("/usr/local/go/bin/go");
    if fallback.is_file() {
        return fallback;
    }
    panic!("required tool `go` is not on PATH (nor at /usr/local/go/bin/go)")
}

/// Path of the ko binary under test: `$KO_BIN`, else
/// `$CARGO_TARGET_DIR/debug/ko`, else `<workspace>/target/debug/ko`.
pub fn ko_bin() -> PathBuf {
    let path = if let Some(p) = std::env::var_os("KO_BIN") {
        PathBuf::from(p)
    } else if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        let t = PathBuf::from(t);
        let t = if t.is_absolute() { t } else { workspace_root().join(t) };
        t.join("debug").join("ko")
    } else {
        workspace_root().join("target").join("debug").join("ko")
    };
    if !path.is_file() {
        panic!("ko binary not found at {}: run `cargo build -p ko-cli` first (or set KO_BIN)", path.display());
    }
    path
}

/// Environment variables that would change ko's behaviour and are therefore
/// removed from every ko invocation; tests set what they need explicitly.
const SCRUBBED_ENV: &[&str] = &[
    "KO_DOCKER_REPO",
    "KO_CONFIG_PATH",
    "KO_DEFAULTBASEIMAGE",
    "KO_DEFAULTPLATFORMS",
    "KO_BASEIMAGEOVERRIDES",
    "KO_STRICT",
    "KO_DEFAULTENV",
    "KO_DEFAULTFLAGS",
    "KO_DEFAULTLDFLAGS",
    "KO_LAYERCOMPRESSION",
    "KO_DEFAULTIMAGEENV",
    "KO_DEFAULTLABELS",
    "KO_DEFAULTANNOTATIONS",
    "KO_DEFAULTUSER",
    "KO_DEFAULTARGS",
    "KO_DEFAULTENTRYPOINT",
    "KO_BUILDS",
    "KO_STRICT_CONFIG",
    "COSIGN_REPOSITORY",
    "KO_DATA_DATE_EPOCH",
    "KO_DATA_PATH_ALLOWED_ROOT",
    "KO_GO_PATH",
    "KOCACHE",
    "SOURCE_DATE_EPOCH",
    "GOOS",
    "GOARCH",
    "GOARM",
    "GOAMD64",
    "GOFLAGS",
    "CGO_ENABLED",
    "RUST_BACKTRACE",
    "RUST_LOG",
];

/// The environment every ko run of the tests gets: this process's, without the variables that
/// would change ko's behaviour, with an empty Docker config (the machine's credentials stay out
/// of the way) and `KO_GO_PATH` when `go` is not on `PATH`. Engine tests pass it as the
/// session's environment map.
pub fn ko_env() -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> =
        std::env::vars().filter(|(k, _)| !SCRUBBED_ENV.contains(&k.as_str())).collect();
    if find_on_path("go").is_none() {
        env.insert("KO_GO_PATH".into(), go_bin().display().to_string());
    }
    let empty = shared_tempdir().join("docker-config");
    fs::create_dir_all(&empty).unwrap();
    env.insert("DOCKER_CONFIG".into(), empty.display().to_string());
    env
}

/// A `Command` for the ko binary with [`ko_env`] as its environment. Callers set
/// `current_dir` (usually a [`GoFixture`]) and the env they need.
pub fn ko() -> Command {
    let mut cmd = Command::new(ko_bin());
    cmd.env_clear().envs(ko_env());
    cmd.stdin(Stdio::null());
    cmd
}

/// The processes (other than zombies) whose environment holds `name=value`, as `pid comm state`:
/// how tests find what a run left behind. Zombies are dead and only wait for their parent; on
/// this machine pid 1 does not reap orphans, so they are not counted.
pub fn live_processes_with_env(name: &str, value: &str) -> Vec<String> {
    let needle = format!("{name}={value}");
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid = entry.file_name().to_string_lossy().to_string();
        if !pid.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let Ok(environ) = fs::read(entry.path().join("environ")) else { continue };
        if !environ.split(|b| *b == 0).any(|v| v == needle.as_bytes()) {
            continue;
        }
        let stat = fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let state = stat[close + 1..].split_whitespace().next().unwrap_or("");
        if state != "Z" {
            found.push(format!("{pid} {} {state}", &stat[open + 1..close]));
        }
    }
    found
}

/// Every file and directory under `dir`, relative, sorted.
pub fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(dir).unwrap_or(&p).display().to_string());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

fn shared_tempdir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| tempfile::Builder::new().prefix("ko-tests-shared").tempdir().unwrap().keep())
}

// ---------------------------------------------------------------------------
// Running processes

/// Output of a finished process.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    pub command: String,
}

impl Output {
    /// Non-empty stdout lines.
    pub fn lines(&self) -> Vec<String> {
        self.stdout.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect()
    }

    pub fn describe(&self) -> String {
        format!(
            "command: {}\nstatus: {}\nelapsed: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command, self.status, self.elapsed, self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` with a time limit; a process that overruns is killed and the
/// test fails.
pub fn run(cmd: &mut Command, timeout: Duration) -> Output {
    run_with_input(cmd, None, timeout)
}

/// Runs `cmd` with `input` written to its stdin, with a time limit.
pub fn run_with_stdin(cmd: &mut Command, input: &[u8], timeout: Duration) -> Output {
    run_with_input(cmd, Some(input), timeout)
}

fn run_with_input(cmd: &mut Command, input: Option<&[u8]>, timeout: Duration) -> Output {
    let command = format!("{cmd:?}");
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    if input.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {command}: {e}"));
    let t_in = input.map(|bytes| {
        let mut stdin = child.stdin.take().unwrap();
        let bytes = bytes.to_vec();
        thread::spawn(move || {
            let _ = stdin.write_all(&bytes);
        })
    });
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            let stdout = String::from_utf8_lossy(&t_out.join().unwrap()).into_owned();
            let stderr = String::from_utf8_lossy(&t_err.join().unwrap()).into_owned();
            panic!("timed out after {timeout:?}: {command}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    if let Some(t) = t_in {
        let _ = t.join();
    }
    let elapsed = start.elapsed();
    Output {
        status,
        stdout: String::from_utf8_lossy(&t_out.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&t_err.join().unwrap()).into_owned(),
        elapsed,
        command,
    }
}

/// Runs ko and asserts success.
pub fn ko_ok(cmd: &mut Command) -> Output {
    let out = run(cmd, KO_TIMEOUT);
    assert!(out.status.success(), "ko failed unexpectedly\n{}", out.describe());
    assert_no_panic(&out);
    out
}

/// Runs ko and asserts it failed with exit code 1, without a panic.
pub fn ko_fail(cmd: &mut Command, timeout: Duration) -> Output {
    let out = run(cmd, timeout);
    assert_eq!(out.status.code(), Some(1), "ko should exit with code 1\n{}", out.describe());
    assert_no_panic(&out);
    out
}

pub fn assert_no_panic(out: &Output) {
    for bad in ["panicked at", "RUST_BACKTRACE", "stack backtrace"] {
        assert!(!out.stderr.contains(bad), "ko's stderr shows a panic ({bad:?})\n{}", out.describe());
    }
}

/// Runs an arbitrary tool and returns its stdout as bytes; panics on failure.
pub fn run_tool(cmd: &mut Command) -> Vec<u8> {
    let command = format!("{cmd:?}");
    let out = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("cannot run {command}: {e}"));
    if !out.status.success() {
        panic!(
            "{command} failed: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out.stdout
}

// ---------------------------------------------------------------------------
// Registry

/// One request as logged by the registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub uri: String,
    pub status: u16,
}

impl Request {
    /// The URI with `%XX` escapes decoded (`mount=sha256%3A…` → `mount=sha256:…`).
    pub fn decoded_uri(&self) -> String {
        let b = self.uri.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%'
                && i + 2 < b.len()
                && let Ok(v) = u8::from_str_radix(&self.uri[i + 1..i + 3], 16)
            {
                out.push(v);
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// A request that uploads (or mounts) a blob: POST/PATCH/PUT under
    /// `/blobs/uploads/`.
    pub fn is_blob_upload(&self) -> bool {
        self.uri.contains("/blobs/uploads") && self.method != "GET" && self.method != "HEAD"
    }

    pub fn is_write(&self) -> bool {
        matches!(self.method.as_str(), "PUT" | "POST" | "PATCH" | "DELETE")
    }
}

/// A private `docker-registry serve` on 127.0.0.1, killed on drop.
pub struct Registry {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: TempDir,
}

impl Registry {
    /// Starts a registry with filesystem storage in a fresh temp dir and
    /// waits until `GET /v2/` answers.
    pub fn start() -> Registry {
        let bin = require_tool("docker-registry");
        let mut last_err = String::new();
        for _attempt in 0..5 {
            let dir = tempfile::Builder::new().prefix("ko-tests-registry").tempdir().unwrap();
            let port = free_port();
            let log = dir.path().join("registry.log");
            let config = dir.path().join("config.yml");
            fs::write(
                &config,
                format!(
                    "version: 0.1\n\
                     log:\n  level: info\n  formatter: json\n\
                     storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  \
                     maintenance:\n    uploadpurging:\n      enabled: false\n\
                     http:\n  addr: 127.0.0.1:{port}\n  secret: ko-tests\n",
                    dir.path().join("data").display()
                ),
            )
            .unwrap();
            let access = dir.path().join("access.log");
            let child = Command::new(&bin)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(fs::File::create(&access).unwrap())
                .stderr(fs::File::create(&log).unwrap())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            let mut reg = Registry { child, port, log, _dir: dir };
            match reg.wait_ready() {
                Ok(()) => return reg,
                Err(e) => last_err = e,
            }
        }
        panic!("docker-registry did not come up: {last_err}");
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Err(format!(
                    "registry exited with {status}: {}",
                    fs::read_to_string(&self.log).unwrap_or_default()
                ));
            }
            if let Ok(resp) = http_get(&self.host(), "/v2/")
                && (resp.starts_with("HTTP/1.1 200") || resp.starts_with("HTTP/1.0 200"))
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no answer on {} after 20s: {}",
                    self.host(),
                    fs::read_to_string(&self.log).unwrap_or_default()
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every request the registry logged so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        // The log line is written just after the response is sent; give the
        // registry a moment so a client that just exited is fully logged.
        thread::sleep(Duration::from_millis(300));
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["msg"].as_str().is_some_and(|m| m.starts_with("response completed")))
            .map(|v| Request {
                method: v["http.request.method"].as_str().unwrap_or("").to_string(),
                uri: v["http.request.uri"].as_str().unwrap_or("").to_string(),
                status: v["http.response.status"].as_u64().unwrap_or(0) as u16,
            })
            .collect()
    }

    /// A mark: the number of requests logged so far.
    pub fn mark(&self) -> usize {
        self.requests().len()
    }

    /// Requests logged after `mark`.
    pub fn requests_since(&self, mark: usize) -> Vec<Request> {
        self.requests().into_iter().skip(mark).collect()
    }

    /// The raw registry log (for failure messages).
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A tiny HTTP/1.1 GET, used only for the registry's readiness probe.
fn http_get(host: &str, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&host.parse().unwrap(), Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line)?;
    Ok(line)
}

// ---------------------------------------------------------------------------
// Fixtures

/// A copy of a fixture module in a temp dir (symlinks preserved), so ko can
/// run in it without writing into the repository.
pub struct GoFixture {
    dir: TempDir,
    root: PathBuf,
}

impl GoFixture {
    /// `tests/fixtures/app` (module `example.com/app`).
    pub fn app() -> GoFixture {
        GoFixture::copy("app")
    }

    /// `tests/fixtures/badlink` (kodata symlink escaping the module).
    pub fn badlink() -> GoFixture {
        GoFixture::copy("badlink")
    }

    pub fn copy(name: &str) -> GoFixture {
        let src = fixtures_dir().join(name);
        assert!(src.is_dir(), "fixture {} missing", src.display());
        let dir = lowercase_tempdir("ko-tests-fixture");
        let root = dir.path().join(name);
        copy_tree(&src, &root);
        GoFixture { dir, root }
    }

    /// The module root (working directory for ko).
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// A scratch directory next to the module, for outputs.
    pub fn scratch(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        fs::create_dir_all(&p).unwrap();
        p
    }

    /// `ko()` with this fixture as working directory.
    pub fn ko(&self) -> Command {
        let mut c = ko();
        c.current_dir(&self.root);
        c
    }
}

/// A temp dir whose path has no upper-case letters (ko derives image names
/// from some paths, e.g. `--oci-layout-path`, and names must be lower-case).
pub fn lowercase_tempdir(prefix: &str) -> TempDir {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let base = std::env::temp_dir();
    assert!(
        !base.to_string_lossy().chars().any(|c| c.is_ascii_uppercase()),
        "the temp dir {} has upper-case letters; set TMPDIR",
        base.display()
    );
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    loop {
        let n = N.fetch_add(1, Ordering::SeqCst);
        let name = format!("{prefix}-{}-{nanos}-{n}", std::process::id());
        if let Ok(d) = tempfile::Builder::new().prefix(&name).rand_bytes(0).tempdir_in(&base) {
            return d;
        }
    }
}

/// Recursive copy that keeps symlinks as symlinks.
pub fn copy_tree(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for entry in fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let meta = fs::symlink_metadata(&from).unwrap();
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&from).unwrap();
            std::os::unix::fs::symlink(&target, &to).unwrap();
        } else if meta.is_dir() {
            copy_tree(&from, &to);
        } else {
            fs::copy(&from, &to).unwrap();
        }
    }
}

// ---------------------------------------------------------------------------
// References and digests

/// `sha256:<hex>` of bytes.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Splits `name[:tag]@sha256:hex` into (name-with-tag, digest); panics when
/// there is no digest.
pub fn split_digest(reference: &str) -> (String, String) {
    let (name, digest) = reference.rsplit_once('@').unwrap_or_else(|| panic!("reference {reference:?} has no @digest"));
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "bad digest in reference {reference:?}");
    assert!(
        digest[7..].chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
        "bad digest in reference {reference:?}"
    );
    (name.to_string(), digest.to_string())
}

// ---------------------------------------------------------------------------
// skopeo

fn skopeo() -> Command {
    let mut c = Command::new(require_tool("skopeo"));
    c.arg("--insecure-policy");
    c
}

/// Adds `--tls-verify=false` (or the given flag name) for docker:// refs.
fn tls_args(flag: &str, transport_ref: &str) -> Vec<String> {
    if transport_ref.starts_with("docker://") { vec![format!("--{flag}=false")] } else { vec![] }
}

/// `docker://<reference>`
pub fn docker(reference: &str) -> String {
    format!("docker://{reference}")
}

/// `skopeo inspect` of a transport reference (e.g. `docker://HOST/x@sha256:…`).
pub fn inspect(transport_ref: &str) -> Value {
    let out = run_tool(skopeo().arg("inspect").args(tls_args("tls-verify", transport_ref)).arg(transport_ref));
    serde_json::from_slice(&out).expect("skopeo inspect prints JSON")
}

/// `skopeo inspect --config`: the image config JSON.
pub fn inspect_config(transport_ref: &str) -> Value {
    let out = run_tool(
        skopeo().arg("inspect").arg("--config").args(tls_args("tls-verify", transport_ref)).arg(transport_ref),
    );
    serde_json::from_slice(&out).expect("skopeo inspect --config prints JSON")
}

/// `skopeo inspect --raw`: the manifest (or index) bytes and JSON.
pub fn inspect_raw(transport_ref: &str) -> (Vec<u8>, Value) {
    let out =
        run_tool(skopeo().arg("inspect").arg("--raw").args(tls_args("tls-verify", transport_ref)).arg(transport_ref));
    let v = serde_json::from_slice(&out).expect("skopeo inspect --raw prints JSON");
    (out, v)
}

/// Whether `skopeo inspect` finds the reference (no panic on failure).
pub fn exists(transport_ref: &str) -> bool {
    skopeo()
        .arg("inspect")
        .arg("--raw")
        .args(tls_args("tls-verify", transport_ref))
        .arg(transport_ref)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// `skopeo list-tags` of a repository (`HOST/repo`), sorted.
pub fn list_tags(repository: &str) -> Vec<String> {
    let reference = docker(repository);
    let out = run_tool(skopeo().arg("list-tags").args(tls_args("tls-verify", &reference)).arg(&reference));
    let v: Value = serde_json::from_slice(&out).expect("skopeo list-tags prints JSON");
    let mut tags: Vec<String> = v["Tags"]
        .as_array()
        .map(|a| a.iter().filter_map(|t| t.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    tags.sort();
    tags
}

/// The SBOM attached (as upstream attaches it) to the manifest with `digest` in `repository`:
/// the attachment's manifest, fetched by its tag `sha256-<hex>.sbom`, and its one layer's bytes.
pub fn fetch_sbom(repository: &str, digest: &str) -> (Value, Vec<u8>) {
    let tag = format!("{}.sbom", digest.replacen(':', "-", 1));
    let pulled = pull(&docker(&format!("{repository}:{tag}")));
    assert_eq!(pulled.layer_count(), 1, "an SBOM attachment has one layer: {}", pulled.manifest);
    (pulled.manifest.clone(), pulled.layer_blob(0))
}

/// `skopeo copy` between two transport references.
pub fn skopeo_copy(src: &str, dst: &str, all: bool) {
    let mut c = skopeo();
    c.arg("copy");
    if all {
        c.arg("--all");
    }
    c.args(tls_args("src-tls-verify", src));
    c.args(tls_args("dest-tls-verify", dst));
    c.arg(src).arg(dst);
    run_tool(&mut c);
}

/// An image copied with `skopeo copy … dir:` (every blob downloaded).
pub struct PulledImage {
    dir: TempDir,
    pub manifest_bytes: Vec<u8>,
    pub manifest: Value,
}

/// Downloads one image (not an index: use a child digest) into a dir.
pub fn pull(transport_ref: &str) -> PulledImage {
    let dir = tempfile::Builder::new().prefix("ko-tests-pull").tempdir().unwrap();
    let dst = format!("dir:{}", dir.path().join("img").display());
    skopeo_copy(transport_ref, &dst, false);
    let manifest_bytes = fs::read(dir.path().join("img").join("manifest.json")).unwrap();
    let manifest = serde_json::from_slice(&manifest_bytes).unwrap();
    PulledImage { dir, manifest_bytes, manifest }
}

impl PulledImage {
    /// A blob by digest (verified against its digest).
    pub fn blob(&self, digest: &str) -> Vec<u8> {
        let hexpart = digest.strip_prefix("sha256:").expect("sha256 digest");
        let img = self.dir.path().join("img");
        let p1 = img.join(hexpart);
        let p2 = img.join(digest);
        let bytes = fs::read(&p1)
            .or_else(|_| fs::read(&p2))
            .unwrap_or_else(|e| panic!("blob {digest} not in {}: {e}", img.display()));
        assert_eq!(digest_of(&bytes), digest, "blob content does not match its digest");
        bytes
    }

    pub fn config(&self) -> Value {
        let d = self.manifest["config"]["digest"].as_str().unwrap();
        serde_json::from_slice(&self.blob(d)).unwrap()
    }

    pub fn layers(&self) -> Vec<Value> {
        self.manifest["layers"].as_array().cloned().unwrap_or_default()
    }

    pub fn layer_count(&self) -> usize {
        self.layers().len()
    }

    /// Compressed bytes of layer `i`.
    pub fn layer_blob(&self, i: usize) -> Vec<u8> {
        let layers = self.layers();
        let d = layers[i]["digest"].as_str().unwrap();
        self.blob(d)
    }

    /// Uncompressed tar of layer `i`.
    pub fn layer_tar(&self, i: usize) -> Vec<u8> {
        gunzip(&self.layer_blob(i))
    }

    /// Entries of layer `i`.
    pub fn layer_entries(&self, i: usize) -> Vec<TarEntry> {
        tar_entries(&self.layer_tar(i))
    }
}

// ---------------------------------------------------------------------------
// tar and gzip

/// One tar entry, with raw header fields.
#[derive(Clone, Debug)]
pub struct TarEntry {
    /// The path as stored (prefix + name; a leading `/` is kept).
    pub path: String,
    pub entry_type: u8,
    pub mode: u32,
    pub mtime: u64,
    pub uid: u64,
    pub gid: u64,
    pub uname: String,
    pub gname: String,
    pub link_name: Option<String>,
    pub content: Vec<u8>,
}

impl TarEntry {
    pub fn is_dir(&self) -> bool {
        self.entry_type == b'5'
    }
    pub fn is_file(&self) -> bool {
        self.entry_type == b'0' || self.entry_type == 0
    }
}

pub fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).expect("layer is valid gzip");
    out
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Lists every entry of an uncompressed tar.
pub fn tar_entries(tar_bytes: &[u8]) -> Vec<TarEntry> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut out = Vec::new();
    for entry in archive.entries().expect("valid tar") {
        let mut entry = entry.expect("valid tar entry");
        let h = entry.header().clone();
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let link_name = entry.link_name_bytes().map(|b| String::from_utf8_lossy(&b).into_owned());
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        let bad = |field: &str, e: std::io::Error| -> ! { panic!("tar entry {path:?}: bad {field} field: {e}") };
        out.push(TarEntry {
            entry_type: h.entry_type().as_byte(),
            mode: h.mode().unwrap_or_else(|e| bad("mode", e)),
            mtime: h.mtime().unwrap_or_else(|e| bad("mtime", e)),
            uid: h.uid().unwrap_or_else(|e| bad("uid", e)),
            gid: h.gid().unwrap_or_else(|e| bad("gid", e)),
            uname: h.username_bytes().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default(),
            gname: h.groupname_bytes().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default(),
            link_name,
            content,
            path,
        });
    }
    out
}

/// Builds an uncompressed tar with regular files (mode 0644) and their
/// parent dirs, in the given order.
pub fn make_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut dirs_done = std::collections::BTreeSet::new();
    for (path, content) in files {
        let parts: Vec<&str> = path.split('/').collect();
        for i in 1..parts.len() {
            let d = parts[..i].join("/");
            if dirs_done.insert(d.clone()) {
                let mut h = tar::Header::new_ustar();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                h.set_mtime(0);
                h.set_uid(0);
                h.set_gid(0);
                b.append_data(&mut h, format!("{d}/"), std::io::empty()).unwrap();
            }
        }
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(content.len() as u64);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        b.append_data(&mut h, path, *content).unwrap();
    }
    b.into_inner().unwrap()
}

/// ELF `e_machine` of a binary (0x3E x86-64, 0xB7 aarch64).
pub fn elf_machine(binary: &[u8]) -> u16 {
    assert!(binary.len() > 20 && &binary[..4] == b"\x7fELF", "not an ELF binary");
    assert_eq!(binary[5], 1, "expected a little-endian ELF");
    u16::from_le_bytes([binary[18], binary[19]])
}

/// Writes `bytes` as an executable file and returns its path.
///
/// The executable is written by a child `install`, never through a descriptor of this process:
/// tests run on many threads, and a `fork` on another thread while this process held the file
/// open for writing would leave the child a copy of that descriptor until its `exec`, so running
/// the file in that window fails with ETXTBSY ("Text file busy").
pub fn write_executable(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let staged = dir.join(format!(".{name}.staged"));
    fs::write(&staged, bytes).unwrap();
    let p = dir.join(name);
    run_tool(Command::new("install").arg("-m").arg("755").arg(&staged).arg(&p));
    fs::remove_file(&staged).unwrap();
    p
}

// ---------------------------------------------------------------------------
// gotar (Go's archive/tar, as upstream ko writes the binary layer)

/// Builds `tests/gotar` once per test process and returns the binary.
pub fn gotar_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("gotar");
        let out = shared_tempdir().join("gotar");
        run_tool(Command::new(go_bin()).current_dir(&src).args(["build", "-o"]).arg(&out).arg("."));
        out
    })
    .clone()
}

/// Runs gotar on `binary` and returns the tar it wrote.
pub fn gotar(binary: &[u8], name: &str) -> Vec<u8> {
    gotar_binary(binary, name, "linux", None)
}

/// The binary layer upstream writes for `binary` at `/ko-app/<name>` in an `os` image, with
/// `caps` as the `security.capability` attribute.
pub fn gotar_binary(binary: &[u8], name: &str, os: &str, caps: Option<&[u8]>) -> Vec<u8> {
    let dir = tempfile::Builder::new().prefix("ko-tests-gotar").tempdir().unwrap();
    let input = dir.path().join("input");
    fs::write(&input, binary).unwrap();
    let out = dir.path().join("out.tar");
    let mut cmd = Command::new(gotar_bin());
    cmd.args(["-os", os]);
    if let Some(caps) = caps {
        cmd.args(["-caps", &hex::encode(caps)]);
    }
    run_tool(cmd.arg(&input).arg(name).arg(&out));
    fs::read(&out).unwrap()
}

/// The kodata layer upstream writes for the package in `package_dir` in an `os` image.
pub fn gotar_kodata(package_dir: &Path, os: &str, mtime: u64) -> Vec<u8> {
    let dir = tempfile::Builder::new().prefix("ko-tests-gotar").tempdir().unwrap();
    let out = dir.path().join("out.tar");
    run_tool(
        Command::new(gotar_bin()).args(["kodata", "-os", os, "-mtime", &mtime.to_string()]).arg(package_dir).arg(&out),
    );
    fs::read(&out).unwrap()
}

/// One entry of a tar as Go's `archive/tar` reads it: name, type flag and PAX records.
#[derive(Clone, Debug)]
pub struct PaxEntry {
    pub name: String,
    pub entry_type: String,
    pub records: BTreeMap<String, Vec<u8>>,
}

/// Every entry of `tar` with its PAX records, read by Go (gotar pax).
pub fn pax_entries(tar: &[u8]) -> Vec<PaxEntry> {
    use base64::Engine as _;
    let dir = tempfile::Builder::new().prefix("ko-tests-pax").tempdir().unwrap();
    let input = dir.path().join("in.tar");
    fs::write(&input, tar).unwrap();
    let out = run_tool(Command::new(gotar_bin()).arg("pax").arg(&input));
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let records = v["pax"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, b64)| {
                    (k.clone(), base64::engine::general_purpose::STANDARD.decode(b64.as_str().unwrap()).unwrap())
                })
                .collect();
            PaxEntry {
                name: v["name"].as_str().unwrap().to_string(),
                entry_type: v["type"].as_str().unwrap().to_string(),
                records,
            }
        })
        .collect()
}

/// Decompresses `gz` with Go's `compress/gzip` (through gotar).
pub fn go_gunzip(gz: &[u8]) -> Vec<u8> {
    let dir = tempfile::Builder::new().prefix("ko-tests-gunzip").tempdir().unwrap();
    let (input, out) = (dir.path().join("in.gz"), dir.path().join("out"));
    fs::write(&input, gz).unwrap();
    run_tool(Command::new(gotar_bin()).arg("gunzip").arg(&input).arg(&out));
    fs::read(&out).unwrap()
}

// ---------------------------------------------------------------------------
// Hand-made OCI layouts, pushed with skopeo (bases for ko)

/// An OCI image layout written by hand (no ko code involved).
pub struct OciLayout {
    dir: TempDir,
    manifests: Vec<Value>,
}

/// A descriptor plus the bytes it describes.
#[derive(Clone, Debug)]
pub struct Blob {
    pub media_type: String,
    pub digest: String,
    pub size: usize,
    pub bytes: Vec<u8>,
}

impl Blob {
    pub fn descriptor(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }
}

/// A hand-made image: manifest plus its layers' digests.
#[derive(Clone, Debug)]
pub struct HandImage {
    pub manifest: Blob,
    pub config: Blob,
    pub layers: Vec<Blob>,
    pub arch: String,
    pub os: String,
    pub os_version: Option<String>,
}

impl Default for OciLayout {
    fn default() -> Self {
        Self::new()
    }
}

impl OciLayout {
    pub fn new() -> OciLayout {
        let dir = tempfile::Builder::new().prefix("ko-tests-layout").tempdir().unwrap();
        fs::create_dir_all(dir.path().join("blobs/sha256")).unwrap();
        fs::write(dir.path().join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        OciLayout { dir, manifests: Vec::new() }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write_blob(&self, media_type: &str, bytes: Vec<u8>) -> Blob {
        let digest = digest_of(&bytes);
        fs::write(self.dir.path().join("blobs/sha256").join(&digest[7..]), &bytes).unwrap();
        Blob { media_type: media_type.to_string(), digest, size: bytes.len(), bytes }
    }

    /// Writes an image (linux/`arch`) whose layers hold the given files.
    /// The config has `PATH` and a label so inheritance can be checked.
    pub fn image(&self, arch: &str, layers: &[Vec<(&str, &[u8])>]) -> HandImage {
        let env = vec!["PATH=/usr/local/bin:/usr/bin:/bin".to_string(), format!("BASE_ARCH={arch}")];
        self.image_for("linux", arch, None, env, layers)
    }

    /// Writes a Windows-shaped image (windows/`arch`, `os.version`): one layer holding the given
    /// files under `Files/` and a `Hives/` entry, as Windows base layers are laid out, and no
    /// `PATH` in its config (as Microsoft's bases have none).
    pub fn windows_image(&self, arch: &str, os_version: &str, files: &[(&str, &[u8])]) -> HandImage {
        let mut entries: Vec<(String, Vec<u8>)> =
            vec![("Hives/SOFTWARE_BASE".to_string(), b"hive placeholder\n".to_vec())];
        entries.extend(files.iter().map(|(p, c)| (format!("Files/{p}"), c.to_vec())));
        let entries: Vec<(&str, &[u8])> = entries.iter().map(|(p, c)| (p.as_str(), c.as_slice())).collect();
        let env = vec![format!("BASE_ARCH={arch}")];
        self.image_for("windows", arch, Some(os_version), env, &[entries])
    }

    /// Writes an image for `os`/`arch` (and `os.version`) with `env` whose layers hold the files.
    pub fn image_for(
        &self,
        os: &str,
        arch: &str,
        os_version: Option<&str>,
        env: Vec<String>,
        layers: &[Vec<(&str, &[u8])>],
    ) -> HandImage {
        let mut layer_blobs = Vec::new();
        let mut diff_ids = Vec::new();
        for files in layers {
            let tar = make_tar(files);
            diff_ids.push(digest_of(&tar));
            layer_blobs.push(self.write_blob(OCI_LAYER_GZIP, gzip(&tar)));
        }
        let history: Vec<Value> = layers
            .iter()
            .map(|_| json!({"created": "1970-01-01T00:00:00Z", "created_by": "ko-tests hand-made base"}))
            .collect();
        let mut config = json!({
            "architecture": arch,
            "os": os,
            "created": "1970-01-01T00:00:00Z",
            "config": {
                "Env": env,
                "WorkingDir": "/",
                "Labels": {"ko-tests.base": "yes"}
            },
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        });
        if let Some(v) = os_version {
            config["os.version"] = json!(v);
        }
        let config = self.write_blob(OCI_CONFIG, serde_json::to_vec(&config).unwrap());
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config.descriptor(),
            "layers": layer_blobs.iter().map(Blob::descriptor).collect::<Vec<_>>(),
        });
        let manifest = self.write_blob(OCI_MANIFEST, serde_json::to_vec(&manifest).unwrap());
        HandImage {
            manifest,
            config,
            layers: layer_blobs,
            arch: arch.to_string(),
            os: os.to_string(),
            os_version: os_version.map(str::to_string),
        }
    }

    /// Writes an OCI index of the given images (with their platforms).
    pub fn index(&self, images: &[&HandImage]) -> Blob {
        let manifests: Vec<Value> = images
            .iter()
            .map(|img| {
                let mut d = img.manifest.descriptor();
                d["platform"] = json!({"os": img.os, "architecture": img.arch});
                if let Some(v) = &img.os_version {
                    d["platform"]["os.version"] = json!(v);
                }
                d
            })
            .collect();
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
        self.write_blob(OCI_INDEX, serde_json::to_vec(&index).unwrap())
    }

    /// Adds `blob` (a manifest or index) to index.json under `tag`.
    pub fn tag(&mut self, blob: &Blob, tag: &str) {
        let mut d = blob.descriptor();
        d["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
        self.manifests.push(d);
        let index = json!({"schemaVersion": 2, "manifests": self.manifests});
        fs::write(self.dir.path().join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    }

    /// `skopeo copy [--all] oci:DIR:tag docker://dest`.
    pub fn push(&self, tag: &str, dest: &str, all: bool) {
        let src = format!("oci:{}:{tag}", self.dir.path().display());
        skopeo_copy(&src, &docker(dest), all);
    }
}

/// A base image pushed to a registry.
pub struct PushedBase {
    /// `HOST/repo:tag`
    pub reference: String,
    /// Digest of the manifest (or index) in the registry.
    pub digest: String,
    pub images: Vec<HandImage>,
}

/// Pushes a single-platform (linux/amd64) base with two layers to
/// `HOST/<repo>:<tag>`.
pub fn push_base_image(reg: &Registry, repo: &str, tag: &str) -> PushedBase {
    let mut layout = OciLayout::new();
    let img = layout.image(
        "amd64",
        &[
            vec![("etc/base-release", b"ko-tests base amd64\n")],
            vec![("usr/share/base/marker.txt", b"second base layer\n")],
        ],
    );
    layout.tag(&img.manifest, tag);
    let reference = format!("{}/{repo}:{tag}", reg.host());
    layout.push(tag, &reference, false);
    let (raw, _) = inspect_raw(&docker(&reference));
    let digest = digest_of(&raw);
    assert_eq!(digest, img.manifest.digest, "skopeo changed the hand-made manifest on push");
    PushedBase { reference, digest, images: vec![img] }
}

/// Pushes a base OCI index with one image per arch (in this order) to
/// `HOST/<repo>:<tag>`.
pub fn push_base_index(reg: &Registry, repo: &str, tag: &str, arches: &[&str]) -> PushedBase {
    let mut layout = OciLayout::new();
    let contents: Vec<String> = arches.iter().map(|a| format!("ko-tests base {a}\n")).collect();
    let images: Vec<HandImage> = arches
        .iter()
        .zip(&contents)
        .map(|(a, c)| layout.image(a, &[vec![("etc/base-release", c.as_bytes())]]))
        .collect();
    let index = layout.index(&images.iter().collect::<Vec<_>>());
    layout.tag(&index, tag);
    let reference = format!("{}/{repo}:{tag}", reg.host());
    layout.push(tag, &reference, true);
    let (raw, _) = inspect_raw(&docker(&reference));
    let digest = digest_of(&raw);
    assert_eq!(digest, index.digest, "skopeo changed the hand-made index on push");
    PushedBase { reference, digest, images }
}

// ---------------------------------------------------------------------------
// Image checks shared by several tests

/// The config's Env as a map.
pub fn env_map(config: &Value) -> BTreeMap<String, String> {
    config["config"]["Env"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e.as_str())
                .filter_map(|e| e.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Finds the entry with exactly this stored path.
pub fn entry<'a>(entries: &'a [TarEntry], path: &str) -> &'a TarEntry {
    entries.iter().find(|e| e.path == path).unwrap_or_else(|| {
        panic!("no tar entry {path:?}; entries: {:?}", entries.iter().map(|e| &e.path).collect::<Vec<_>>())
    })
}

/// Extracts `/ko-app/<name>` from a binary layer's entries.
pub fn binary_from_layer(entries: &[TarEntry], name: &str) -> Vec<u8> {
    entry(entries, &format!("/ko-app/{name}")).content.clone()
}

/// Checks a ko binary layer against upstream's format: `ko-app` dir 0555,
/// then `/ko-app/<name>` regular 0555, uid/gid 0, mtime 0, nothing else.
pub fn assert_binary_layer(entries: &[TarEntry], name: &str) {
    let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    let file = format!("/ko-app/{name}");
    assert_eq!(paths, vec!["ko-app", file.as_str()], "binary layer entries");
    let d = &entries[0];
    assert!(d.is_dir(), "ko-app is a directory: {d:?}");
    assert_eq!(d.mode & 0o7777, 0o555, "ko-app dir mode");
    let f = &entries[1];
    assert!(f.is_file(), "{file} is a regular file");
    assert_eq!(f.mode & 0o7777, 0o555, "{file} mode");
    assert_eq!((f.uid, f.gid), (0, 0), "{file} owner");
    assert_eq!(f.mtime, 0, "{file} mtime");
    assert!(!f.content.is_empty(), "{file} is empty");
}

/// Reads the stdout lines of ko and checks one digest ref per argument.
pub fn refs(out: &Output, n: usize) -> Vec<String> {
    let lines = out.lines();
    assert_eq!(lines.len(), n, "expected {n} reference(s) on stdout\n{}", out.describe());
    for l in &lines {
        split_digest(l);
    }
    lines
}
