//! HTTP clients per registry host: which roots TLS trusts (the system's, `SSL_CERT_FILE`,
//! `SSL_CERT_DIR`, docker's `certs.d/<host>/*.crt`), whether plain HTTP may be tried (loopback
//! hosts and `--insecure-registry`), timeouts, and the check that a `Location` a registry hands
//! out stays on that registry.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;

use crate::env::Env;
use crate::error::{Error, ErrorKind, Result};

pub const USER_AGENT: &str = concat!("ko/", env!("CARGO_PKG_VERSION"), " (rust)");

/// Docker's per-registry certificate directory.
pub const DOCKER_CERTS_D: &str = "/etc/docker/certs.d";

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
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(300))
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
