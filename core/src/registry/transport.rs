//! HTTP clients per registry host: which roots TLS trusts (the system's, `SSL_CERT_FILE`,
//! `SSL_CERT_DIR`, docker's `certs.d/<host>/*.crt`), whether plain HTTP may be tried (loopback
//! hosts and `--insecure-registry`), the check that a `Location` a registry hands out stays on
//! that registry, and how long a request may take ([`DEADLINES`]): every request has an overall
//! deadline that grows with the bytes it moves, a blob transfer that stops moving fails early
//! ([`Watched`], [`stalled`]), and a request with no answer after a while is logged.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use reqwest::Url;
use tokio::time::Instant;

use crate::env::Env;
use crate::error::{Error, ErrorKind, Result};

pub const USER_AGENT: &str = concat!("ko/", env!("CARGO_PKG_VERSION"), " (rust)");

/// A client builder with ko's user agent, after making ring rustls's process-wide crypto
/// provider unless the process already chose one (an embedder's choice stands). Not aws-lc-rs,
/// reqwest's default: its random generator first gathers CPU jitter entropy, about 40 ms of CPU
/// at the start of every process that speaks TLS (the first ping of a loopback registry does),
/// where ring reads the kernel's.
pub fn client_builder() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().user_agent(USER_AGENT)
}

/// Docker's per-registry certificate directory.
pub const DOCKER_CERTS_D: &str = "/etc/docker/certs.d";

/// What a request moves besides headers, which decides how long it may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transfer {
    /// Pings, tokens, HEADs, manifests, mounts: small bodies, if any.
    #[default]
    Small,
    /// A blob of this many bytes going up (the PATCH).
    Upload(u64),
    /// A blob of this many bytes coming down.
    Download(u64),
    /// Closing the upload of a blob of this many bytes (the PUT `?digest=`, which a registry may
    /// answer only once it has hashed or moved the blob).
    Finalize(u64),
}

/// How long registry requests may take. The README's "Troubleshooting" section states these.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// A request that moves no blob: from sending it to having the whole answer.
    pub request: Duration,
    /// Blob transfers get `request` plus their size at this rate (bytes per second): a 100 MB
    /// layer may take 13 minutes on a 1 Mbit/s link.
    pub min_rate: u64,
    /// Closing an upload gets `request` plus the blob's size at this rate.
    pub finalize_rate: u64,
    /// A request not answered after this long (plus its transfer at `slow_rate`) is logged.
    pub slow_after: Duration,
    pub slow_rate: u64,
    /// A blob transfer that moves fewer than `stall_bytes` in any `stall_window` has stalled,
    /// whatever its deadline says.
    pub stall_window: Duration,
    pub stall_bytes: u64,
    /// Connecting (TCP and TLS).
    pub connect: Duration,
}

/// The deadlines ko uses.
pub const DEADLINES: Deadlines = Deadlines {
    request: Duration::from_secs(20),
    min_rate: 128 * 1024,
    finalize_rate: 1024 * 1024,
    slow_after: Duration::from_secs(10),
    slow_rate: 1024 * 1024,
    stall_window: Duration::from_secs(30),
    stall_bytes: 16 * 1024,
    connect: Duration::from_secs(10),
};

impl Deadlines {
    /// The overall deadline of one attempt of a request moving `transfer`.
    pub fn total(&self, transfer: Transfer) -> Duration {
        let per_byte = |bytes: u64, rate: u64| Duration::from_secs(bytes.div_ceil(rate.max(1)));
        match transfer {
            Transfer::Small => self.request,
            Transfer::Upload(n) | Transfer::Download(n) => self.request + per_byte(n, self.min_rate),
            Transfer::Finalize(n) => self.request + per_byte(n, self.finalize_rate),
        }
    }

    /// When an attempt still unanswered is worth a log line.
    pub fn slow(&self, transfer: Transfer) -> Duration {
        match transfer {
            Transfer::Upload(n) | Transfer::Download(n) | Transfer::Finalize(n) => {
                self.slow_after + Duration::from_secs(n.div_ceil(self.slow_rate.max(1)))
            }
            Transfer::Small => self.slow_after,
        }
    }
}

/// Bytes moved by a transfer, shared between the body that moves them and [`stalled`].
#[derive(Clone, Default)]
pub struct Moved(Arc<AtomicU64>);

impl Moved {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Resolves once `moved` grows by fewer than `stall_bytes` within one `stall_window` (checked
/// every second), with the number of seconds it has been stuck; never, while data flows or once
/// all `size` bytes moved (then the request's deadline rules). Raced against an upload, whose
/// body hyper stops reading once the socket stops draining.
pub async fn stalled(moved: &Moved, size: u64, deadlines: &Deadlines) -> u64 {
    let mut window = (Instant::now(), moved.get());
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = moved.get();
        if now >= size {
            std::future::pending::<()>().await;
        }
        if now.saturating_sub(window.1) >= deadlines.stall_bytes {
            window = (Instant::now(), now);
        } else if window.0.elapsed() >= deadlines.stall_window {
            return window.0.elapsed().as_secs();
        }
    }
}

/// A downloaded body that fails once it moves fewer than `stall_bytes` in a `stall_window`
/// (a registry trickling bytes, or gone silent), or runs past its deadline.
pub struct Watched<S> {
    inner: S,
    what: String,
    deadlines: Deadlines,
    window: (Instant, u64),
    moved: u64,
    deadline: Instant,
    tick: Pin<Box<tokio::time::Sleep>>,
}

impl<S> Watched<S> {
    /// `inner`, which must end within `total`; `what` names it in errors.
    pub fn new(inner: S, what: String, total: Duration, deadlines: Deadlines) -> Self {
        let now = Instant::now();
        Watched {
            inner,
            what,
            deadlines,
            window: (now, 0),
            moved: 0,
            deadline: now + total,
            tick: Box::pin(tokio::time::sleep(Duration::from_secs(1))),
        }
    }
}

impl<S, B, E> Stream for Watched<S>
where
    S: Stream<Item = std::result::Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    E: Into<std::io::Error>,
{
    type Item = std::io::Result<B>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.moved += chunk.as_ref().len() as u64;
                return Poll::Ready(Some(Ok(chunk)));
            }
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {}
        }
        // Waiting for data: check the clock every second.
        while this.tick.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            if now >= this.deadline {
                let e = format!("{}: not complete within its deadline", this.what);
                return Poll::Ready(Some(Err(std::io::Error::new(std::io::ErrorKind::TimedOut, e))));
            }
            if this.moved - this.window.1 >= this.deadlines.stall_bytes {
                this.window = (now, this.moved);
            } else if now - this.window.0 >= this.deadlines.stall_window {
                let e = format!(
                    "{}: stalled (less than {} KiB in {} s)",
                    this.what,
                    this.deadlines.stall_bytes / 1024,
                    (now - this.window.0).as_secs()
                );
                return Poll::Ready(Some(Err(std::io::Error::new(std::io::ErrorKind::TimedOut, e))));
            }
            this.tick.as_mut().reset(now + Duration::from_secs(1));
        }
        Poll::Pending
    }
}

/// `host` of `host[:port]` (brackets of an IPv6 literal removed).
pub fn host_of(registry: &str) -> &str {
    let host = match registry.rsplit_once(':') {
        Some((h, port)) if !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => registry,
    };
    host.trim_start_matches('[').trim_end_matches(']')
}

/// Whether `registry` is on this machine (`localhost`, `127.*`, `::1`): docker lets those speak
/// plain HTTP.
pub fn is_loopback(registry: &str) -> bool {
    let host = host_of(registry);
    // Not `*.localhost`: the system resolver may send those names to DNS.
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The schemes ko tries for `registry`, in order: HTTPS, then plain HTTP for loopback hosts and
/// with `--insecure-registry` (go-containerregistry's ping does the same).
pub fn schemes(registry: &str, insecure: bool) -> &'static [&'static str] {
    if insecure || is_loopback(registry) { &["https", "http"] } else { &["https"] }
}

/// PEM certificates from `SSL_CERT_FILE` and every file in each `SSL_CERT_DIR` directory.
pub fn env_roots(env: &Env) -> Vec<reqwest::Certificate> {
    let mut out = Vec::new();
    if let Some(file) = env.path("SSL_CERT_FILE") {
        out.extend(pem_file(&file));
    }
    if let Some(dirs) = env.get_os("SSL_CERT_DIR") {
        for dir in std::env::split_paths(dirs) {
            out.extend(pem_dir(&dir, |_| true));
        }
    }
    out
}

/// The CA files docker reads for `registry` under `root` (`<root>/<host[:port]>/*.crt`).
pub fn certs_d_files(root: &Path, registry: &str) -> Vec<PathBuf> {
    let dir = root.join(registry);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "crt") && p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn pem_dir(dir: &Path, keep: impl Fn(&Path) -> bool) -> Vec<reqwest::Certificate> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut paths: Vec<PathBuf> =
        rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file() && keep(p)).collect();
    paths.sort();
    paths.iter().flat_map(|p| pem_file(p)).collect()
}

fn pem_file(path: &Path) -> Vec<reqwest::Certificate> {
    match std::fs::read(path) {
        Ok(bytes) => match reqwest::Certificate::from_pem_bundle(&bytes) {
            Ok(certs) => certs,
            Err(e) => {
                tracing::warn!("ignoring {}: not a PEM certificate bundle ({e})", path.display());
                Vec::new()
            }
        },
        Err(e) => {
            tracing::warn!("cannot read {}: {e}", path.display());
            Vec::new()
        }
    }
}

/// An HTTP client for one registry host: system roots, `extra_roots` and the host's `certs.d`
/// ones; with `insecure`,
/// certificates are not verified.
pub fn http_client(
    registry: &str,
    insecure: bool,
    extra_roots: &[reqwest::Certificate],
    certs_d_root: &Path,
) -> Result<reqwest::Client> {
    let mut roots = extra_roots.to_vec();
    for f in certs_d_files(certs_d_root, registry) {
        tracing::debug!("{registry}: trusting {}", f.display());
        roots.extend(pem_file(&f));
    }
    client_builder()
        .connect_timeout(DEADLINES.connect)
        .pool_idle_timeout(Duration::from_secs(60))
        .tls_certs_merge(roots)
        .tls_danger_accept_invalid_certs(insecure)
        .build()
        .map_err(|e| Error::new(ErrorKind::Registry, format!("cannot set up an HTTP client for {registry}: {e}")))
}

/// Resolves `location` (absolute or relative) against `base`, and refuses one that leaves the
/// registry (another scheme, host or port): a registry must not be able to send ko's uploads —
/// and credentials — elsewhere.
pub fn checked_location(base: &Url, location: &str) -> std::result::Result<Url, String> {
    let url = base.join(location).map_err(|e| format!("invalid upload location {location:?}: {e}"))?;
    if url.scheme() != base.scheme()
        || url.host_str() != base.host_str()
        || url.port_or_known_default() != base.port_or_known_default()
    {
        return Err(format!(
            "the registry sent an upload location on another host ({}://{}), refusing to follow it",
            url.scheme(),
            url.host_str().unwrap_or("?")
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_schemes() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("localhost"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("ghcr.io"));
        assert!(is_loopback("127.1.2.3:80"));
        assert!(!is_loopback("127.example.com:443"));
        assert_eq!(schemes("127.0.0.1:5000", false), ["https", "http"]);
        assert_eq!(schemes("ghcr.io", false), ["https"]);
        assert_eq!(schemes("ghcr.io", true), ["https", "http"]);
        assert_eq!(host_of("[::1]:5000"), "::1");
        assert_eq!(host_of("reg:5000"), "reg");
    }

    #[test]
    fn locations_stay_on_the_registry() {
        let base = Url::parse("https://reg.example.com/").unwrap();
        let rel = checked_location(&base, "/v2/a/blobs/uploads/123?_state=x").unwrap();
        assert_eq!(rel.as_str(), "https://reg.example.com/v2/a/blobs/uploads/123?_state=x");
        assert!(checked_location(&base, "https://reg.example.com:443/v2/a/blobs/uploads/1").is_ok());
        assert!(checked_location(&base, "https://evil.example.com/v2/a/blobs/uploads/1").is_err());
        assert!(checked_location(&base, "http://reg.example.com/v2/a/blobs/uploads/1").is_err());
        assert!(checked_location(&base, "https://reg.example.com:8443/x").is_err());
        assert!(checked_location(&base, "//evil.example.com/x").is_err());
        let local = Url::parse("http://127.0.0.1:5000/").unwrap();
        assert!(checked_location(&local, "http://127.0.0.1:5000/v2/x").is_ok());
        assert!(checked_location(&local, "http://127.0.0.1:5001/v2/x").is_err());
        let err = checked_location(&base, "https://u:p@evil.example.com/").unwrap_err();
        assert!(!err.contains("u:p"), "{err}");
    }

    #[test]
    fn deadlines_grow_with_the_bytes_moved() {
        let d = DEADLINES;
        assert_eq!(d.total(Transfer::Small), Duration::from_secs(20));
        assert_eq!(d.total(Transfer::Upload(100 << 20)), Duration::from_secs(20 + 800), "100 MiB at 128 KiB/s");
        assert_eq!(d.total(Transfer::Download(1)), Duration::from_secs(21));
        assert_eq!(d.total(Transfer::Finalize(100 << 20)), Duration::from_secs(120));
        assert_eq!(d.slow(Transfer::Small), Duration::from_secs(10));
        assert_eq!(d.slow(Transfer::Upload(50 << 20)), Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn a_transfer_that_stops_moving_has_stalled() {
        let d = Deadlines { stall_window: Duration::from_secs(30), stall_bytes: 100, ..DEADLINES };
        let moved = Moved::default();
        let feeder = {
            let moved = moved.clone();
            async move {
                // Flowing for 60 s, then 1 byte a second: under 100 per window.
                for _ in 0..60 {
                    moved.add(1000);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                loop {
                    moved.add(1);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        let start = tokio::time::Instant::now();
        let stuck = tokio::select! { s = stalled(&moved, u64::MAX, &d) => s, _ = feeder => unreachable!() };
        assert!(stuck >= 30, "{stuck}");
        let took = start.elapsed().as_secs();
        assert!((88..=92).contains(&took), "detected at {took} s, 30 s after the flow stopped");
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickling_download_fails() {
        let d = Deadlines { stall_window: Duration::from_secs(30), stall_bytes: 100, ..DEADLINES };
        // One byte every 20 s.
        let trickle = futures::stream::unfold((), |()| async {
            tokio::time::sleep(Duration::from_secs(20)).await;
            Some((Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"x")), ()))
        });
        let mut watched = Watched::new(Box::pin(trickle), "GET /v2/x/blobs/y".into(), Duration::from_secs(3600), d);
        let start = tokio::time::Instant::now();
        let err = loop {
            match futures::StreamExt::next(&mut watched).await {
                Some(Ok(_)) => continue,
                Some(Err(e)) => break e,
                None => unreachable!(),
            }
        };
        assert!(err.to_string().contains("GET /v2/x/blobs/y: stalled"), "{err}");
        assert!(start.elapsed() <= Duration::from_secs(32), "{:?}", start.elapsed());
        let mut late = Watched::new(
            Box::pin(futures::stream::pending::<std::io::Result<bytes::Bytes>>()),
            "GET x".into(),
            Duration::from_secs(5),
            DEADLINES,
        );
        let e = futures::StreamExt::next(&mut late).await.unwrap().unwrap_err();
        assert!(e.to_string().contains("not complete within its deadline"), "{e}");
    }

    #[test]
    fn certs_d_lookup() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("reg.example.com:5000");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.crt"), "x").unwrap();
        std::fs::write(dir.join("extra.crt"), "x").unwrap();
        std::fs::write(dir.join("client.key"), "x").unwrap();
        std::fs::write(dir.join("client.cert"), "x").unwrap();
        let files = certs_d_files(root.path(), "reg.example.com:5000");
        assert_eq!(files, vec![dir.join("ca.crt"), dir.join("extra.crt")]);
        assert!(certs_d_files(root.path(), "reg.example.com").is_empty());
        assert!(certs_d_files(Path::new("/nonexistent"), "x").is_empty());
    }
}
