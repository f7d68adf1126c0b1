//! A real Docker engine for the tests of `-L`, `ko.local` and daemon bases: `dockerd` from
//! Debian's `docker.io` with vfs storage, no bridge and no iptables rules, its data root, exec root
//! and socket under one short temporary directory (a unix socket path must stay under ~108 bytes),
//! and besides the socket a TLS listener on loopback (`--tlsverify`, certificates from a test CA)
//! for the `tcp://` tests.
//!
//! dockerd starts its own containerd, which starts a shim per container: every one of them
//! carries [`Dockerd::MARKER`] in its environment, so that [`Dockerd::stop`] can tell whether the
//! engine left anything running. `stop` (also run on drop) sends SIGTERM to dockerd by pid, waits,
//! then kills by pid whatever is left and removes the directory.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::tls::TestCa;
use crate::{find_on_path, free_port, live_processes_with_env};

/// A running engine.
pub struct Dockerd {
    child: Option<Child>,
    dir: PathBuf,
    /// The engine's socket.
    pub socket: PathBuf,
    /// `127.0.0.1:PORT` of the TLS listener.
    pub tls_address: String,
    /// A directory with `ca.pem`, `cert.pem` and `key.pem` for `DOCKER_CERT_PATH`.
    pub client_certs: PathBuf,
    _ca: TestCa,
}

impl Dockerd {
    /// The environment variable every process of a test engine carries.
    pub const MARKER: &'static str = "KO_TESTS_DOCKERD";

    /// Starts an engine and waits until it answers, or says why it could not.
    pub fn start() -> Result<Dockerd, String> {
        let dockerd = find_on_path("dockerd").ok_or("dockerd is not installed (apt-get install -y docker.io)")?;
        if find_on_path("docker").is_none() {
            return Err("the docker CLI is not installed (apt-get install -y docker.io)".into());
        }
        let mut last = String::new();
        for _attempt in 0..3 {
            let ca = TestCa::new("dockerd");
            let server = ca.server_cert("dockerd");
            let client = ca.server_cert("client");
            let client_certs = ca.dir().join("client");
            fs::create_dir_all(&client_certs).unwrap();
            fs::copy(&ca.ca_pem, client_certs.join("ca.pem")).unwrap();
            fs::copy(&client.cert, client_certs.join("cert.pem")).unwrap();
            fs::copy(&client.key, client_certs.join("key.pem")).unwrap();
            // /tmp, not $TMPDIR: the socket's path must be short.
            let dir = tempfile::Builder::new().prefix("kod").tempdir_in("/tmp").unwrap().keep();
            let socket = dir.join("d.sock");
            // Another process may take the port before dockerd binds it: then the next attempt.
            let tls_address = format!("127.0.0.1:{}", free_port());
            let log = dir.join("dockerd.log");
            let out = fs::File::create(&log).unwrap();
            let child = Command::new(&dockerd)
                .args(["--storage-driver=vfs", "--iptables=false", "--ip6tables=false", "--bridge=none"])
                .arg("--data-root")
                .arg(dir.join("data"))
                .arg("--exec-root")
                .arg(dir.join("x"))
                .arg("--pidfile")
                .arg(dir.join("dockerd.pid"))
                .arg("-H")
                .arg(format!("unix://{}", socket.display()))
                .arg("-H")
                .arg(format!("tcp://{tls_address}"))
                .arg("--tlsverify")
                .arg("--tlscacert")
                .arg(&ca.ca_pem)
                .arg("--tlscert")
                .arg(&server.cert)
                .arg("--tlskey")
                .arg(&server.key)
                .env(Self::MARKER, &dir)
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .map_err(|e| format!("cannot run {}: {e}", dockerd.display()))?;
            let mut engine = Dockerd { child: Some(child), dir, socket, tls_address, client_certs, _ca: ca };
            match engine.wait_ready(&log) {
                Ok(()) => return Ok(engine),
                Err(e) => last = format!("{} did not start: {e}", dockerd.display()),
            }
        }
        Err(last)
    }

    fn wait_ready(&mut self, log: &Path) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Err(format!("it exited with {status}: {}", tail(log)));
            }
            if ping(&self.socket) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("no answer on {} after 60 s: {}", self.socket.display(), tail(log)));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// `unix://<socket>`, for `DOCKER_HOST`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// The docker CLI, talking to this engine.
    pub fn docker(&self) -> Command {
        let mut c = Command::new(find_on_path("docker").expect("docker CLI"));
        c.env("DOCKER_HOST", self.host()).env_remove("DOCKER_CONTEXT").stdin(Stdio::null());
        c
    }

    /// The engine's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
    }

    /// Stops the engine (SIGTERM to dockerd, which stops its containerd), then kills by pid
    /// whatever is still running, and removes its directory. Returns what had to be killed (empty
    /// when the engine stopped cleanly).
    pub fn stop(&mut self) -> Vec<String> {
        let Some(mut child) = self.child.take() else { return Vec::new() };
        let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("a child has a pid");
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        let marker = self.dir.display().to_string();
        let mut left = Vec::new();
        for _ in 0..50 {
            left = live_processes_with_env(Self::MARKER, &marker);
            if left.is_empty() {
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
        for process in &left {
            let pid = process.split_whitespace().next().and_then(|p| p.parse::<i32>().ok());
            if let Some(pid) = pid.and_then(rustix::process::Pid::from_raw) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
        left
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether an engine answers `GET /_ping` on `socket`.
fn ping(socket: &Path) -> bool {
    let Ok(mut s) = UnixStream::connect(socket) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n").is_err() {
        return false;
    }
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200")
}

fn tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// The engine for a test binary: started, or the reason it could not be. Under `CI=true` an
/// engine that cannot start fails the run; elsewhere the caller skips, printing the reason.
pub fn start_or_skip() -> Option<Dockerd> {
    match Dockerd::start() {
        Ok(engine) => Some(engine),
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true and the Docker engine for the tests cannot start: {why}")
        }
        Err(why) => {
            eprintln!("skipping the Docker engine tests: {why}");
            None
        }
    }
}
