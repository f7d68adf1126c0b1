//! The distribution-protocol client ko uses to pull bases and publish images. It wraps
//! `oci-client` (one client per registry host, so each host gets its own scheme and TLS policy)
//! and adds what ko needs on top: credentials from the Docker config, HTTP for loopback and
//! `--insecure-registry` hosts, cross-repository mounts that fall back to uploads, streamed blob
//! uploads, and errors that name the registry, repository and status — never a credential.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::TryStreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};

use crate::error::{Error, ErrorKind, Result};
use crate::image::layer::ByteStream;
use crate::image::media_type;

const USER_AGENT: &str = concat!("ko/", env!("CARGO_PKG_VERSION"), " (rust)");

/// A registry client shared by every pull and push of one ko invocation. Thread-safe.
pub struct RegistryClient {
    insecure: bool,
    clients: Mutex<HashMap<String, Arc<Client>>>,
    credentials: tokio::sync::Mutex<HashMap<String, RegistryAuth>>,
    authorized: tokio::sync::Mutex<HashSet<(String, String, bool)>>,
}

/// Whether ko speaks plain HTTP to `registry`: always with `--insecure-registry`, and for
/// loopback hosts, as docker and go-containerregistry do.
pub fn uses_http(registry: &str, insecure: bool) -> bool {
    let host = match registry.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => registry,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    insecure || host == "localhost" || host.starts_with("127.") || host == "::1"
}

impl RegistryClient {
    /// A client; `insecure` allows plain HTTP and unverified TLS to every registry.
    pub fn new(insecure: bool) -> Self {
        RegistryClient {
            insecure,
            clients: Mutex::default(),
            credentials: Default::default(),
            authorized: Default::default(),
        }
    }

    fn client(&self, registry: &str) -> Arc<Client> {
        let mut clients = self.clients.lock().expect("registry client map poisoned");
        clients
            .entry(registry.to_string())
            .or_insert_with(|| {
                let protocol =
                    if uses_http(registry, self.insecure) { ClientProtocol::Http } else { ClientProtocol::Https };
                Arc::new(Client::new(ClientConfig {
                    protocol,
                    accept_invalid_certificates: self.insecure,
                    use_monolithic_push: true,
                    connect_timeout: Some(Duration::from_secs(30)),
                    read_timeout: Some(Duration::from_secs(300)),
                    user_agent: USER_AGENT,
                    ..Default::default()
                }))
            })
            .clone()
    }

    /// Credentials for `registry` from the Docker config (or podman's auth file); anonymous when
    /// none are configured.
    async fn credentials(&self, registry: &str) -> Result<RegistryAuth> {
        let mut cache = self.credentials.lock().await;
        if let Some(auth) = cache.get(registry) {
            return Ok(auth.clone());
        }
        let server = match registry {
            "docker.io" | "index.docker.io" | "registry-1.docker.io" => "https://index.docker.io/v1/".to_string(),
            r => r.to_string(),
        };
        let lookup = tokio::task::spawn_blocking(move || {
            docker_credential::get_credential(&server).or_else(|_| docker_credential::get_podman_credential(&server))
        });
        let auth = match lookup.await {
            Ok(Ok(docker_credential::DockerCredential::UsernamePassword(u, p))) => RegistryAuth::Basic(u, p),
            Ok(Ok(docker_credential::DockerCredential::IdentityToken(_))) => {
                tracing::warn!(
                    "{registry}: identity tokens from the Docker config are not supported yet; trying anonymously"
                );
                RegistryAuth::Anonymous
            }
            _ => RegistryAuth::Anonymous,
        };
        cache.insert(registry.to_string(), auth.clone());
        Ok(auth)
    }

    /// The client for `reference`'s registry, authorised for `op` on its repository.
    async fn authorized(&self, reference: &Reference, op: RegistryOperation) -> Result<Arc<Client>> {
        let client = self.client(reference.registry());
        let key = (
            reference.registry().to_string(),
            reference.repository().to_string(),
            matches!(op, RegistryOperation::Push),
        );
        let mut done = self.authorized.lock().await;
        if !done.contains(&key) {
            let auth = self.credentials(reference.registry()).await?;
            client.auth(reference, &auth, op).await.map_err(|e| registry_error(e, "authenticating to", reference))?;
            done.insert(key);
        }
        Ok(client)
    }

    /// Fetches a manifest or index by tag or digest: its bytes, digest and media type.
    pub async fn get_manifest(&self, reference: &Reference) -> Result<(bytes::Bytes, String, String)> {
        let client = self.authorized(reference, RegistryOperation::Pull).await?;
        let accepted =
            [media_type::OCI_MANIFEST, media_type::OCI_INDEX, media_type::DOCKER_MANIFEST, media_type::DOCKER_LIST];
        let auth = self.credentials(reference.registry()).await?;
        let (bytes, digest) = client
            .pull_manifest_raw(reference, &auth, &accepted)
            .await
            .map_err(|e| registry_error(e, "fetching", reference))?;
        let media_type = sniff_media_type(&bytes).ok_or_else(|| {
            Error::registry(format!(
                "{reference}: the registry returned something that is not an image manifest or index"
            ))
        })?;
        Ok((bytes, digest, media_type))
    }

    /// The digest `reference` (a tag) points at, or `None` when it does not exist.
    pub async fn manifest_digest(&self, reference: &Reference) -> Result<Option<String>> {
        let client = self.authorized(reference, RegistryOperation::Pull).await?;
        let auth = self.credentials(reference.registry()).await?;
        match client.fetch_manifest_digest(reference, &auth).await {
            Ok(d) => Ok(Some(d)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(registry_error(e, "checking", reference)),
        }
    }

    /// Streams blob `digest` from `repository`.
    pub async fn blob_stream(&self, repository: &Reference, digest: &str) -> Result<ByteStream> {
        let client = self.authorized(repository, RegistryOperation::Pull).await?;
        let sized = client
            .pull_blob_stream(repository, digest)
            .await
            .map_err(|e| registry_error(e, &format!("fetching blob {digest} from"), repository))?;
        Ok(Box::pin(sized.stream.map_err(std::io::Error::other)))
    }

    /// Whether `repository` already holds blob `digest`.
    pub async fn blob_exists(&self, repository: &Reference, digest: &str) -> Result<bool> {
        let client = self.authorized(repository, RegistryOperation::Push).await?;
        client
            .blob_exists(repository, digest)
            .await
            .map_err(|e| registry_error(e, &format!("checking blob {digest} in"), repository))
    }

    /// Asks the registry to mount blob `digest` from `from_repository` into `repository`.
    /// `Ok(false)` when the registry declined (it then expects a normal upload).
    pub async fn mount_blob(&self, repository: &Reference, from_repository: &str, digest: &str) -> Result<bool> {
        let client = self.authorized(repository, RegistryOperation::Push).await?;
        let source = Reference::with_digest(repository.registry().into(), from_repository.into(), digest.into());
        match client.mount_blob(repository, &source, digest).await {
            Ok(()) => Ok(true),
            Err(OciDistributionError::SpecViolationError(_)) => Ok(false),
            Err(e) if matches!(classify(&e), ErrorKind::Auth) => Ok(false),
            Err(e) => Err(registry_error(e, &format!("mounting blob {digest} into"), repository)),
        }
    }

    /// Uploads a blob of known digest and size from a stream, in one request.
    pub async fn push_blob(&self, repository: &Reference, digest: &str, size: u64, data: ByteStream) -> Result<()> {
        let client = self.authorized(repository, RegistryOperation::Push).await?;
        let stream = data.map_err(OciDistributionError::IoError);
        client
            .push_blob_stream(repository, stream, digest, Some(size))
            .await
            .map_err(|e| registry_error(e, &format!("uploading blob {digest} to"), repository))?;
        Ok(())
    }

    /// Puts manifest `bytes` of `media_type` at `reference` (a tag or a digest).
    pub async fn push_manifest(&self, reference: &Reference, bytes: bytes::Bytes, media_type: &str) -> Result<()> {
        let client = self.authorized(reference, RegistryOperation::Push).await?;
        let content_type =
            media_type.parse().map_err(|_| Error::invalid(format!("invalid media type {media_type:?}")))?;
        client
            .push_manifest_raw(reference, bytes, content_type)
            .await
            .map_err(|e| registry_error(e, "publishing manifest", reference))?;
        Ok(())
    }
}

/// The media type a manifest declares, or the one its shape implies.
pub fn sniff_media_type(bytes: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    if let Some(mt) = v.get("mediaType").and_then(|m| m.as_str()) {
        return Some(mt.to_string());
    }
    if v.get("manifests").is_some() {
        Some(media_type::OCI_INDEX.into())
    } else if v.get("layers").is_some() {
        Some(media_type::OCI_MANIFEST.into())
    } else {
        None
    }
}

fn is_not_found(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::ServerError { code: 404, .. } => true,
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|e| {
            matches!(e.code, OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown | OciErrorCode::BlobUnknown)
        }),
        _ => false,
    }
}

fn classify(e: &OciDistributionError) -> ErrorKind {
    match e {
        OciDistributionError::AuthenticationFailure(_) | OciDistributionError::UnauthorizedError { .. } => {
            ErrorKind::Auth
        }
        OciDistributionError::ServerError { code: 401 | 403, .. } => ErrorKind::Auth,
        OciDistributionError::RegistryError { envelope, .. }
            if envelope.errors.iter().any(|e| matches!(e.code, OciErrorCode::Unauthorized | OciErrorCode::Denied)) =>
        {
            ErrorKind::Auth
        }
        e if is_not_found(e) => ErrorKind::NotFound,
        _ => ErrorKind::Registry,
    }
}

/// Turns an oci-client error into ours, naming the operation and reference, with the registry's
/// own reason; the innermost cause of a transport error (e.g. "Connection refused") is spelled out.
fn registry_error(e: OciDistributionError, doing: &str, reference: &Reference) -> Error {
    let kind = classify(&e);
    let target = format!("{}/{}", reference.registry(), reference.repository());
    let reason = match &e {
        OciDistributionError::ServerError { code, message, .. } => {
            format!("HTTP {code}: {}", message.trim())
        }
        OciDistributionError::RegistryError { envelope, .. } => {
            envelope.errors.iter().map(|x| format!("{:?}: {}", x.code, x.message)).collect::<Vec<_>>().join("; ")
        }
        OciDistributionError::UnauthorizedError { .. } => "HTTP 401 Unauthorized".to_string(),
        OciDistributionError::RequestError(re) => {
            let mut innermost: &dyn std::error::Error = re;
            while let Some(next) = innermost.source() {
                innermost = next;
            }
            let what = if re.is_timeout() { "timed out" } else { "cannot connect" };
            format!("{what}: {innermost}")
        }
        other => other.to_string(),
    };
    let hint = match kind {
        ErrorKind::Auth => " (check your credentials: `docker login` / `ko login`, or DOCKER_CONFIG)",
        ErrorKind::NotFound => "",
        _ if matches!(e, OciDistributionError::RequestError(_)) => {
            " (is the registry running and reachable? for a plain-HTTP registry pass --insecure-registry)"
        }
        _ => "",
    };
    let shown = match reference.digest().or(reference.tag()) {
        Some(t) if doing.starts_with("fetching") && !doing.contains("blob") => {
            format!("{target}{}{t}", if t.starts_with("sha256:") { "@" } else { ":" })
        }
        _ => target,
    };
    Error::new(kind, format!("{doing} {shown}: {reason}{hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_http() {
        assert!(uses_http("127.0.0.1:5000", false));
        assert!(uses_http("localhost:5000", false));
        assert!(uses_http("[::1]:5000", false));
        assert!(!uses_http("ghcr.io", false));
        assert!(uses_http("ghcr.io", true));
    }

    #[test]
    fn sniffs_media_types() {
        assert_eq!(sniff_media_type(br#"{"schemaVersion":2,"manifests":[]}"#).unwrap(), media_type::OCI_INDEX);
        assert_eq!(
            sniff_media_type(br#"{"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}"#).unwrap(),
            media_type::DOCKER_MANIFEST
        );
        assert!(sniff_media_type(b"not json").is_none());
    }
}
