//! The distribution-protocol client ko uses to pull bases and publish images, on `reqwest`.
//!
//! - Each registry host gets one HTTP client (its own TLS roots: system, `SSL_CERT_FILE`,
//!   `SSL_CERT_DIR`, `/etc/docker/certs.d/<host>/*.crt`) and one ping of `/v2/`: HTTPS first,
//!   plain HTTP next for loopback hosts and `--insecure-registry` (which also skips certificate
//!   checks), as go-containerregistry does.
//! - Credentials come from the [`auth::Keychain`] (docker config, credential helpers, podman).
//!   A registry that answers with a Basic challenge gets Basic auth; a Bearer challenge starts
//!   the token flow: tokens are fetched per set of scopes (`repository:R:pull`, `…:push,pull`, and
//!   for a cross-repository mount both the destination's push,pull and the source's pull), cached
//!   until they expire, and fetched again when the registry answers 401.
//! - Every request is retried with backoff and jitter on resets, timeouts, 408, 429
//!   (`Retry-After`), 5xx, within a bounded total time ([`retry::RetryPolicy`]). A blob upload
//!   (POST, one streaming PATCH from disk, PUT `?digest=`) that fails restarts cleanly in a new
//!   upload session; a `Location` that leaves the registry's host is refused; the upload counts
//!   only when the registry confirms the digest.
//! - Errors name the operation, registry, repository and HTTP status (with the registry's own
//!   error codes), never a credential or a header.

pub mod auth;
pub mod login;
pub mod retry;
pub mod transport;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures::TryStreamExt;
use oci_client::Reference;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Response, StatusCode, Url};
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind, Result};
use crate::image::layer::{BlobSource, ByteStream};
use crate::image::media_type;

pub use auth::{Credential, Keychain};
use retry::RetryPolicy;

/// A registry client shared by every pull and push of one ko invocation. Thread-safe.
pub struct RegistryClient {
    insecure: bool,
    certs_d: PathBuf,
    keychain: Arc<Keychain>,
    policy: RetryPolicy,
    hosts: Mutex<HashMap<String, Arc<Host>>>,
    /// Upload sessions a registry opened when it declined a mount (202), by (registry, repo, digest).
    sessions: Mutex<HashMap<(String, String, String), Url>>,
}

/// How a registry wants to be authenticated, learnt from its challenges.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AuthScheme {
    None,
    Basic,
    Bearer { realm: String, service: Option<String> },
}

impl AuthScheme {
    fn from_header(value: Option<&str>) -> AuthScheme {
        let challenges = value.map(auth::parse_www_authenticate).unwrap_or_default();
        if let Some(b) = challenges.iter().find(|c| c.scheme == "bearer")
            && let Some(realm) = b.param("realm")
        {
            return AuthScheme::Bearer { realm: realm.to_string(), service: b.param("service").map(String::from) };
        }
        if challenges.iter().any(|c| c.scheme == "basic") { AuthScheme::Basic } else { AuthScheme::None }
    }
}

struct Token {
    value: String,
    valid_until: Instant,
}

/// One registry host: its HTTP client, its base URL once pinged, how it authenticates, tokens.
struct Host {
    registry: String,
    http: reqwest::Client,
    base: tokio::sync::OnceCell<Url>,
    scheme: Mutex<AuthScheme>,
    tokens: tokio::sync::Mutex<HashMap<String, Token>>,
}

/// What a request is for, to name it in errors.
struct Op<'a> {
    doing: String,
    registry: &'a str,
    repository: &'a str,
}

impl Op<'_> {
    fn target(&self) -> String {
        if self.repository.is_empty() {
            self.registry.to_string()
        } else {
            format!("{}/{}", self.registry, self.repository)
        }
    }

    fn error(&self, kind: ErrorKind, reason: impl std::fmt::Display) -> Error {
        let hint = match kind {
            ErrorKind::Auth => " (check your credentials: `ko login`, `docker login` or DOCKER_CONFIG)",
            _ => "",
        };
        Error::new(kind, format!("{} {}: {reason}{hint}", self.doing, self.target()))
    }
}

/// Authentication for one request: the host, the repository whose credentials apply, scopes.
struct Auth<'a> {
    host: &'a Host,
    repository: &'a str,
    scopes: &'a [String],
}

fn pull_scope(repo: &str) -> String {
    format!("repository:{repo}:pull")
}

fn push_scope(repo: &str) -> String {
    format!("repository:{repo}:push,pull")
}

/// The registry as ko addresses it (`docker.io` → `index.docker.io`).
fn registry_of(reference: &Reference) -> &str {
    reference.resolve_registry()
}

impl RegistryClient {
    /// A client; `insecure` allows plain HTTP and unverified TLS to every registry.
    pub fn new(insecure: bool) -> Self {
        RegistryClient::with_keychain(insecure, Keychain::from_env())
    }

    /// A client with its own keychain (for tests and embedders).
    pub fn with_keychain(insecure: bool, keychain: Keychain) -> Self {
        RegistryClient {
            insecure,
            certs_d: PathBuf::from(transport::DOCKER_CERTS_D),
            keychain: Arc::new(keychain),
            policy: RetryPolicy::default(),
            hosts: Mutex::default(),
            sessions: Mutex::default(),
        }
    }

    fn host(&self, registry: &str) -> Result<Arc<Host>> {
        let mut hosts = self.hosts.lock().expect("registry host map poisoned");
        if let Some(h) = hosts.get(registry) {
            return Ok(h.clone());
        }
        let host = Arc::new(Host {
            registry: registry.to_string(),
            http: transport::http_client(registry, self.insecure, &self.certs_d)?,
            base: tokio::sync::OnceCell::new(),
            scheme: Mutex::new(AuthScheme::None),
            tokens: Default::default(),
        });
        hosts.insert(registry.to_string(), host.clone());
        Ok(host)
    }

    /// The registry's base URL (`https://host/` or `http://host/`), pinging `/v2/` once.
    async fn base(&self, host: &Host, op: &Op<'_>) -> Result<Url> {
        host.base.get_or_try_init(|| self.ping(host, op)).await.cloned()
    }

    async fn ping(&self, host: &Host, op: &Op<'_>) -> Result<Url> {
        let mut failures = Vec::new();
        for scheme in transport::schemes(&host.registry, self.insecure) {
            let url = format!("{scheme}://{}/v2/", host.registry);
            let ping_op = Op { doing: op.doing.clone(), registry: op.registry, repository: op.repository };
            match self.send_plain(&ping_op, &|| host.http.get(&url)).await {
                // Anything but what a registry answers on /v2/ (e.g. a TLS server's 400 to plain
                // HTTP) means this scheme is wrong.
                Ok(resp) if !(resp.status().is_success() || matches!(resp.status().as_u16(), 401 | 403)) => {
                    let e =
                        ping_op.error(ErrorKind::Registry, format!("HTTP {} on /v2/: not a registry", resp.status()));
                    tracing::debug!("{}: {scheme} failed: {}", host.registry, e.message());
                    failures.push((scheme, e));
                }
                Ok(resp) => {
                    let challenge = resp.headers().get(WWW_AUTHENTICATE).and_then(|v| v.to_str().ok());
                    let scheme_found = AuthScheme::from_header(challenge);
                    tracing::debug!("{}: {scheme}, auth {:?}", host.registry, scheme_found);
                    *host.scheme.lock().expect("poisoned") = scheme_found;
                    return Url::parse(&format!("{scheme}://{}/", host.registry))
                        .map_err(|e| op.error(ErrorKind::InvalidInput, format!("invalid registry name: {e}")));
                }
                Err(e) => {
                    tracing::debug!("{}: {scheme} failed: {}", host.registry, e.message());
                    failures.push((scheme, e));
                }
            }
        }
        let (_, first) = failures.remove(0);
        let mut message = first.message().to_string();
        if let Some((scheme, e)) = failures.first() {
            let reason = e.message().split_once(": ").map(|(_, r)| r).unwrap_or(e.message());
            message.push_str(&format!(" (over {scheme}: {reason})"));
        }
        if message.contains("cannot connect") {
            message.push_str(" (is the registry running and reachable?)");
        }
        Err(Error::new(first.kind(), message))
    }

    /// The `Authorization` header for `scopes`, fetching a token when the registry wants one.
    async fn authorization(&self, auth: &Auth<'_>, op: &Op<'_>) -> Result<Option<String>> {
        let scheme = auth.host.scheme.lock().expect("poisoned").clone();
        match scheme {
            AuthScheme::None => Ok(None),
            AuthScheme::Basic => Ok(self.credential(auth.host, auth.repository).await?.basic_header()),
            AuthScheme::Bearer { realm, service } => {
                let key = scope_key(auth.scopes);
                let mut tokens = auth.host.tokens.lock().await;
                if let Some(t) = tokens.get(&key)
                    && t.valid_until > Instant::now()
                {
                    return Ok(Some(format!("Bearer {}", t.value)));
                }
                let cred = self.credential(auth.host, auth.repository).await?;
                let token = self.fetch_token(auth.host, &realm, service.as_deref(), auth.scopes, &cred, op).await?;
                let header = format!("Bearer {}", token.value);
                tokens.insert(key, token);
                Ok(Some(header))
            }
        }
    }

    async fn credential(&self, host: &Host, repository: &str) -> Result<Credential> {
        let keychain = self.keychain.clone();
        let (registry, repository) = (host.registry.clone(), repository.to_string());
        tokio::task::spawn_blocking(move || keychain.resolve(&registry, &repository))
            .await
            .map_err(|e| Error::new(ErrorKind::Auth, format!("credential lookup failed: {e}")))?
    }

    /// Gets a token for `scopes` from the registry's token service: an OAuth2 refresh-token
    /// grant for an identity token, else a GET with Basic credentials (or none).
    async fn fetch_token(
        &self,
        host: &Host,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        cred: &Credential,
        op: &Op<'_>,
    ) -> Result<Token> {
        let realm_url = Url::parse(realm).map_err(|_| {
            op.error(ErrorKind::Registry, format!("the registry named an invalid token service {realm:?}"))
        })?;
        let token_op = Op {
            doing: format!("{} (token service {})", op.doing, realm_url.host_str().unwrap_or("?")),
            registry: op.registry,
            repository: op.repository,
        };
        let resp = match cred {
            Credential::IdentityToken(refresh) => {
                let mut form = Url::parse("http://form/").expect("static URL");
                {
                    let mut q = form.query_pairs_mut();
                    q.append_pair("grant_type", "refresh_token");
                    q.append_pair("refresh_token", refresh);
                    q.append_pair("client_id", "ko");
                    if let Some(s) = service {
                        q.append_pair("service", s);
                    }
                    q.append_pair("scope", &scopes.join(" "));
                }
                let body = form.query().unwrap_or_default().to_string();
                let make = || {
                    host.http
                        .post(realm_url.clone())
                        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .body(body.clone())
                };
                self.send_plain(&token_op, &make).await?
            }
            _ => {
                let mut url = realm_url.clone();
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(s) = service {
                        q.append_pair("service", s);
                    }
                    for s in scopes {
                        q.append_pair("scope", s);
                    }
                    if let Credential::Basic { username, .. } = cred {
                        q.append_pair("account", username);
                    }
                }
                let basic = cred.basic_header();
                let make = || {
                    let rb = host.http.get(url.clone());
                    match &basic {
                        Some(b) => rb.header(AUTHORIZATION, b),
                        None => rb,
                    }
                };
                self.send_plain(&token_op, &make).await?
            }
        };
        let status = resp.status();
        if !status.is_success() {
            return Err(status_error(resp, &token_op).await);
        }
        let body = resp.bytes().await.map_err(|e| transport_error(&e, &token_op))?;
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|_| token_op.error(ErrorKind::Auth, "the token service did not answer with JSON"))?;
        let value = v
            .get("token")
            .or_else(|| v.get("access_token"))
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| token_op.error(ErrorKind::Auth, "the token service answered without a token"))?;
        let lifetime = Duration::from_secs(v.get("expires_in").and_then(|e| e.as_u64()).unwrap_or(60).max(1));
        let margin = (lifetime / 2).min(Duration::from_secs(10));
        tracing::debug!("{}: got a token for {}", host.registry, scopes.join(" "));
        Ok(Token { value: value.to_string(), valid_until: Instant::now() + lifetime - margin })
    }

    /// Sends an unauthenticated request built by `make` (called once per attempt), retrying
    /// transient failures. Returns the last response whatever its status.
    async fn send_plain(
        &self,
        op: &Op<'_>,
        make: &(dyn Fn() -> reqwest::RequestBuilder + Send + Sync),
    ) -> Result<Response> {
        let start = Instant::now();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match self.after_attempt(make().send().await, op, attempt, start) {
                Next::Done(r) => return r,
                Next::Retry(delay) => tokio::time::sleep(delay).await,
            }
        }
    }

    /// Like [`send_plain`](Self::send_plain), with the `Authorization` `auth` calls for; a 401
    /// drops the cached tokens, learns the registry's challenge (and any scope it names) and
    /// tries once more with fresh credentials.
    async fn send(
        &self,
        op: &Op<'_>,
        auth: Option<&Auth<'_>>,
        make: &(dyn Fn() -> reqwest::RequestBuilder + Send + Sync),
    ) -> Result<Response> {
        let Some(a) = auth else { return self.send_plain(op, make).await };
        let start = Instant::now();
        let mut attempt = 0u32;
        let mut reauthed = false;
        let mut scopes = a.scopes.to_vec();
        loop {
            attempt += 1;
            let mut rb = make();
            let with_scopes = Auth { host: a.host, repository: a.repository, scopes: &scopes };
            if let Some(h) = self.authorization(&with_scopes, op).await? {
                rb = rb.header(AUTHORIZATION, h);
            }
            let result = rb.send().await;
            if let Ok(resp) = &result
                && resp.status() == StatusCode::UNAUTHORIZED
                && !reauthed
            {
                reauthed = true;
                let header = resp.headers().get(WWW_AUTHENTICATE).and_then(|v| v.to_str().ok());
                let learnt = AuthScheme::from_header(header);
                for c in header.map(auth::parse_www_authenticate).unwrap_or_default() {
                    for s in c.param("scope").unwrap_or_default().split_whitespace() {
                        if !scopes.iter().any(|x| x == s) {
                            scopes.push(s.to_string());
                        }
                    }
                }
                if learnt != AuthScheme::None {
                    tracing::debug!("{}: HTTP 401, authenticating again", a.host.registry);
                    *a.host.scheme.lock().expect("poisoned") = learnt;
                    a.host.tokens.lock().await.clear();
                    attempt -= 1;
                    continue;
                }
            }
            match self.after_attempt(result, op, attempt, start) {
                Next::Done(r) => return r,
                Next::Retry(delay) => tokio::time::sleep(delay).await,
            }
        }
    }

    /// Decides, after one attempt, whether to return or to wait and try again.
    fn after_attempt(
        &self,
        result: std::result::Result<Response, reqwest::Error>,
        op: &Op<'_>,
        attempt: u32,
        start: Instant,
    ) -> Next {
        let out_of_time = attempt >= self.policy.attempts || start.elapsed() >= self.policy.max_total;
        let (retry_after, failure) = match result {
            Ok(resp) => {
                let status = resp.status();
                tracing::debug!("{} {} -> {}", op.doing, redact_url(resp.url()), status.as_u16());
                if !retry::retryable_status(status) || out_of_time {
                    return Next::Done(Ok(resp));
                }
                let ra = resp
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| retry::parse_retry_after(v, SystemTime::now()));
                (ra, format!("HTTP {}", status.as_u16()))
            }
            Err(e) => {
                tracing::debug!("{} {}: {}", op.doing, op.target(), innermost(&e));
                if !retry::retryable_error(&e) || out_of_time {
                    return Next::Done(Err(transport_error(&e, op)));
                }
                (None, innermost(&e))
            }
        };
        let delay = self.policy.delay(attempt, retry_after);
        tracing::warn!(
            "{} {}: {failure}; retrying in {:.1}s (attempt {}/{})",
            op.doing,
            op.target(),
            delay.as_secs_f64(),
            attempt + 1,
            self.policy.attempts
        );
        Next::Retry(delay)
    }

    /// Fetches a manifest or index by tag or digest: its bytes, digest and media type.
    pub async fn get_manifest(&self, reference: &Reference) -> Result<(bytes::Bytes, String, String)> {
        let registry = registry_of(reference);
        let repo = reference.repository();
        let tag_or_digest = reference.digest().or(reference.tag()).unwrap_or("latest");
        let sep = if tag_or_digest.contains(':') { "@" } else { ":" };
        let op = Op { doing: "fetching".into(), registry, repository: repo };
        let shown = format!("{registry}/{repo}{sep}{tag_or_digest}");
        let host = self.host(registry)?;
        let base = self.base(&host, &op).await?;
        let url = join(&base, &format!("v2/{repo}/manifests/{tag_or_digest}"), &op)?;
        let scopes = [pull_scope(repo)];
        let accept = manifest_accept();
        let auth = Auth { host: &host, repository: repo, scopes: &scopes };
        let resp = self.send(&op, Some(&auth), &|| host.http.get(url.clone()).header(ACCEPT, &accept)).await?;
        if !resp.status().is_success() {
            let e = status_error(resp, &op).await;
            return Err(Error::new(e.kind(), e.message().replacen(&op.target(), &shown, 1)));
        }
        let bytes = resp.bytes().await.map_err(|e| transport_error(&e, &op))?;
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        if let Some(d) = reference.digest()
            && d != digest
        {
            return Err(Error::registry(format!("{shown}: the registry returned a manifest whose digest is {digest}")));
        }
        let media_type = sniff_media_type(&bytes).ok_or_else(|| {
            Error::registry(format!("{shown}: the registry returned something that is not an image manifest or index"))
        })?;
        Ok((bytes, digest, media_type))
    }

    /// The digest `reference` (a tag) points at, or `None` when it does not exist.
    pub async fn manifest_digest(&self, reference: &Reference) -> Result<Option<String>> {
        let registry = registry_of(reference);
        let repo = reference.repository();
        let tag = reference.digest().or(reference.tag()).unwrap_or("latest");
        let op = Op { doing: "checking".into(), registry, repository: repo };
        let host = self.host(registry)?;
        let base = self.base(&host, &op).await?;
        let url = join(&base, &format!("v2/{repo}/manifests/{tag}"), &op)?;
        let scopes = [push_scope(repo)];
        let accept = manifest_accept();
        let auth = Auth { host: &host, repository: repo, scopes: &scopes };
        let resp = self.send(&op, Some(&auth), &|| host.http.head(url.clone()).header(ACCEPT, &accept)).await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => {
                if let Some(d) = resp.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()) {
                    return Ok(Some(d.to_string()));
                }
                let resp = self.send(&op, Some(&auth), &|| host.http.get(url.clone()).header(ACCEPT, &accept)).await?;
                if !resp.status().is_success() {
                    return Err(status_error(resp, &op).await);
                }
                let bytes = resp.bytes().await.map_err(|e| transport_error(&e, &op))?;
                Ok(Some(format!("sha256:{}", hex::encode(Sha256::digest(&bytes)))))
            }
            _ => Err(status_error(resp, &op).await),
        }
    }

    /// Streams blob `digest` from `repository`.
    pub async fn blob_stream(&self, repository: &Reference, digest: &str) -> Result<ByteStream> {
        let registry = registry_of(repository);
        let repo = repository.repository();
        let op = Op { doing: format!("fetching blob {digest} from"), registry, repository: repo };
        let host = self.host(registry)?;
        let base = self.base(&host, &op).await?;
        let url = join(&base, &format!("v2/{repo}/blobs/{digest}"), &op)?;
        let scopes = [pull_scope(repo)];
        let auth = Auth { host: &host, repository: repo, scopes: &scopes };
        let resp = self.send(&op, Some(&auth), &|| host.http.get(url.clone())).await?;
        if !resp.status().is_success() {
            return Err(status_error(resp, &op).await);
        }
        Ok(Box::pin(resp.bytes_stream().map_err(std::io::Error::other)))
    }

    /// Whether `repository` already holds blob `digest`.
    pub async fn blob_exists(&self, repository: &Reference, digest: &str) -> Result<bool> {
        let registry = registry_of(repository);
        let repo = repository.repository();
        let op = Op { doing: format!("checking blob {digest} in"), registry, repository: repo };
        let host = self.host(registry)?;
        let base = self.base(&host, &op).await?;
        let url = join(&base, &format!("v2/{repo}/blobs/{digest}"), &op)?;
        let scopes = [push_scope(repo)];
        let auth = Auth { host: &host, repository: repo, scopes: &scopes };
        let resp = self.send(&op, Some(&auth), &|| host.http.head(url.clone())).await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(status_error(resp, &op).await),
        }
    }

    /// Asks the registry to mount blob `digest` from `from_repository` into `repository`, with a
    /// token for both (push,pull on the destination, pull on the source). `Ok(false)` when the
    /// registry declined; when it opened an upload session instead (202), the next
    /// [`push_blob`](Self::push_blob) of that digest continues in it.
    pub async fn mount_blob(&self, repository: &Reference, from_repository: &str, digest: &str) -> Result<bool> {
        let registry = registry_of(repository);
        let repo = repository.repository();
        let op = Op { doing: format!("mounting blob {digest} into"), registry, repository: repo };
        let host = self.host(registry)?;
        let base = self.base(&host, &op).await?;
        let mut url = join(&base, &format!("v2/{repo}/blobs/uploads/"), &op)?;
        url.query_pairs_mut().append_pair("mount", digest).append_pair("from", from_repository);
        let scopes = [push_scope(repo), pull_scope(from_repository)];
        let auth = Auth { host: &host, repository: repo, scopes: &scopes };
        let resp = self.send(&op, Some(&auth), &|| host.http.post(url.clone()).header(CONTENT_LENGTH, "0")).await?;
        match resp.status() {
            StatusCode::CREATED => Ok(true),
            StatusCode::ACCEPTED => {
                if let Some(loc) = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok())
                    && let Ok(loc) = transport::checked_location(&base, loc)
                {
                    self.sessions
                        .lock()
                        .expect("poisoned")
                        .insert((registry.to_string(), repo.to_string(), digest.to_string()), loc);
                }
                tracing::debug!("{registry}/{repo}: mount of {digest} declined, uploading");
                Ok(false)
            }
            s if s.is_server_error() => Err(status_error(resp, &op).await),
            s => {
                tracing::debug!("{registry}/{repo}: mount of {digest} refused (HTTP {}), uploading", s.as_u16());
                Ok(false)
            }
        }
    }

    /// Uploads blob `digest` of `size` bytes, streamed from `source` (opened once per attempt,
    /// never held whole in memory): POST (or the session a declined mount opened), one PATCH,
    /// PUT `?digest=`. A failed attempt starts over in a new session, with backoff, a bounded
    /// number of times; success means the registry confirmed the digest.
    pub async fn push_blob(
        &self,
        repository: &Reference,
        digest: &str,
        size: u64,
        source: &dyn BlobSource,
    ) -> Result<()> {
        let registry = registry_of(repository);
        let repo = repository.repository();
        let op = Op { doing: format!("uploading blob {digest} to"), registry, repository: repo };
        let host = self.host(registry)?;
        let base = self.base(&host, &op).await?;
        let scopes = [push_scope(repo)];
        let auth = Auth { host: &host, repository: repo, scopes: &scopes };
        let mut session = self.sessions.lock().expect("poisoned").remove(&(
            registry.to_string(),
            repo.to_string(),
            digest.to_string(),
        ));
        let start = Instant::now();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let (error, retry_after) =
                match self.upload_once(&auth, &base, &op, digest, size, source, session.take()).await {
                    Ok(()) => return Ok(()),
                    Err(Upload::Fatal(e)) => return Err(e),
                    Err(Upload::Retry(e, ra)) => (e, ra),
                };
            if attempt >= self.policy.attempts || start.elapsed() >= self.policy.max_total {
                return Err(Error::new(
                    error.kind(),
                    format!("{} (gave up after {attempt} attempts)", error.message()),
                ));
            }
            let delay = self.policy.delay(attempt, retry_after);
            tracing::warn!("{}; restarting the upload in {:.1}s", error.message(), delay.as_secs_f64());
            tokio::time::sleep(delay).await;
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn upload_once(
        &self,
        auth: &Auth<'_>,
        base: &Url,
        op: &Op<'_>,
        digest: &str,
        size: u64,
        source: &dyn BlobSource,
        session: Option<Url>,
    ) -> std::result::Result<(), Upload> {
        let host = auth.host;
        let location = match session {
            Some(loc) => loc,
            None => {
                let url = join(base, &format!("v2/{}/blobs/uploads/", op.repository), op).map_err(Upload::Fatal)?;
                let resp = self
                    .send(op, Some(auth), &|| host.http.post(url.clone()).header(CONTENT_LENGTH, "0"))
                    .await
                    .map_err(Upload::Fatal)?;
                if resp.status() != StatusCode::ACCEPTED {
                    return Err(Upload::Fatal(status_error(resp, op).await));
                }
                location_of(&resp, base, op)?
            }
        };

        // One PATCH streaming the whole blob from its source.
        let data = source.open(digest).await.map_err(Upload::Fatal)?;
        let mut rb = host
            .http
            .patch(location.clone())
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, size.to_string())
            .body(reqwest::Body::wrap_stream(data));
        if let Some(h) = self.authorization(auth, op).await.map_err(Upload::Fatal)? {
            rb = rb.header(AUTHORIZATION, h);
        }
        let location = match rb.send().await {
            Err(e) => {
                let err = transport_error(&e, op);
                return Err(if retry::retryable_error(&e) { Upload::Retry(err, None) } else { Upload::Fatal(err) });
            }
            Ok(resp) => {
                let status = resp.status();
                tracing::debug!("{} PATCH {} -> {}", op.doing, redact_url(resp.url()), status.as_u16());
                if status == StatusCode::ACCEPTED || status == StatusCode::NO_CONTENT {
                    if resp.headers().contains_key(LOCATION) { location_of(&resp, base, op)? } else { location }
                } else if status == StatusCode::UNAUTHORIZED {
                    host.tokens.lock().await.clear();
                    return Err(Upload::Retry(status_error(resp, op).await, None));
                } else if retry::retryable_status(status) {
                    let ra = resp
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| retry::parse_retry_after(v, SystemTime::now()));
                    return Err(Upload::Retry(status_error(resp, op).await, ra));
                } else {
                    return Err(Upload::Fatal(status_error(resp, op).await));
                }
            }
        };

        // PUT ?digest= closes the session; the registry checks the digest.
        let mut put = location;
        put.query_pairs_mut().append_pair("digest", digest);
        let resp = self
            .send(op, Some(auth), &|| host.http.put(put.clone()).header(CONTENT_LENGTH, "0"))
            .await
            .map_err(|e| Upload::Retry(e, None))?;
        let status = resp.status();
        if status == StatusCode::CREATED || status == StatusCode::NO_CONTENT || status == StatusCode::OK {
            if let Some(d) = resp.headers().get("docker-content-digest").and_then(|v| v.to_str().ok())
                && d != digest
            {
                return Err(Upload::Fatal(
                    op.error(ErrorKind::Registry, format!("the registry stored digest {d} instead")),
                ));
            }
            return Ok(());
        }
        let err = status_error(resp, op).await;
        // The PUT may have landed before its answer was lost: then the blob is there.
        if let Ok(url) = join(base, &format!("v2/{}/blobs/{digest}", op.repository), op)
            && let Ok(r) = self.send(op, Some(auth), &|| host.http.head(url.clone())).await
            && r.status().is_success()
        {
            return Ok(());
        }
        Err(if status.is_client_error() && status != StatusCode::NOT_FOUND {
            Upload::Fatal(err)
        } else {
            Upload::Retry(err, None)
        })
    }

    /// Puts manifest `bytes` of `media_type` at `reference` (a tag or a digest).
    pub async fn push_manifest(&self, reference: &Reference, bytes: bytes::Bytes, media_type: &str) -> Result<()> {
        let registry = registry_of(reference);
        let repo = reference.repository();
        let tag = reference.digest().or(reference.tag()).unwrap_or("latest");
        let op = Op { doing: "publishing manifest".into(), registry, repository: repo };
        let host = self.host(registry)?;
        let base = self.base(&host, &op).await?;
        let url = join(&base, &format!("v2/{repo}/manifests/{tag}"), &op)?;
        let scopes = [push_scope(repo)];
        let auth = Auth { host: &host, repository: repo, scopes: &scopes };
        let resp = self
            .send(&op, Some(&auth), &|| host.http.put(url.clone()).header(CONTENT_TYPE, media_type).body(bytes.clone()))
            .await?;
        if !resp.status().is_success() {
            let sep = if tag.contains(':') { "@" } else { ":" };
            let e = status_error(resp, &op).await;
            let shown = format!("{}{sep}{tag}", op.target());
            return Err(Error::new(e.kind(), e.message().replacen(&op.target(), &shown, 1)));
        }
        Ok(())
    }
}

/// What to do after one attempt of a request.
enum Next {
    Done(Result<Response>),
    Retry(Duration),
}

/// How one upload attempt failed.
enum Upload {
    /// Worth another attempt in a new session (after `Retry-After`, when given).
    Retry(Error, Option<Duration>),
    Fatal(Error),
}

fn location_of(resp: &Response, base: &Url, op: &Op<'_>) -> std::result::Result<Url, Upload> {
    let loc = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Upload::Fatal(op.error(ErrorKind::Registry, "the registry gave no upload location")))?;
    transport::checked_location(base, loc).map_err(|e| Upload::Fatal(op.error(ErrorKind::Registry, e)))
}

fn join(base: &Url, path: &str, op: &Op<'_>) -> Result<Url> {
    base.join(path).map_err(|e| op.error(ErrorKind::InvalidInput, format!("invalid name: {e}")))
}

fn scope_key(scopes: &[String]) -> String {
    let mut s: Vec<&str> = scopes.iter().map(String::as_str).collect();
    s.sort_unstable();
    s.dedup();
    s.join(" ")
}

/// A URL for logs: no query (upload state), no user info.
fn redact_url(url: &Url) -> String {
    format!(
        "{}://{}{}",
        url.scheme(),
        url.host_str().unwrap_or("?"),
        url.port().map(|p| format!(":{p}")).unwrap_or_default()
    ) + url.path()
}

/// The innermost cause of a transport error ("Connection refused", "connection reset by peer").
fn innermost(e: &reqwest::Error) -> String {
    let mut inner: &dyn std::error::Error = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    let text = inner.to_string();
    if e.is_timeout() && !text.contains("timed out") { format!("timed out ({text})") } else { text }
}

fn transport_error(e: &reqwest::Error, op: &Op<'_>) -> Error {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "connection failed"
    };
    op.error(ErrorKind::Registry, format!("{what}: {}", innermost(e)))
}

/// An error for an unexpected status: `HTTP 401 Unauthorized` plus the registry's error codes
/// and messages from its JSON envelope (never headers or other body text).
async fn status_error(resp: Response, op: &Op<'_>) -> Error {
    let status = resp.status();
    let kind = match status.as_u16() {
        401 | 403 => ErrorKind::Auth,
        404 => ErrorKind::NotFound,
        _ => ErrorKind::Registry,
    };
    let body = resp.bytes().await.unwrap_or_default();
    let mut reason = format!("HTTP {} {}", status.as_u16(), status.canonical_reason().unwrap_or(""));
    let reason_trimmed = reason.trim_end().to_string();
    reason = reason_trimmed;
    if let Some(envelope) = parse_error_envelope(&body[..body.len().min(64 * 1024)]) {
        reason = format!("{reason}: {envelope}");
    }
    op.error(kind, reason)
}

/// `CODE: message; CODE: message` from a distribution error envelope.
fn parse_error_envelope(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let errors = v.get("errors")?.as_array()?;
    let parts: Vec<String> = errors
        .iter()
        .map(|e| {
            let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("UNKNOWN");
            let msg = e.get("message").and_then(|m| m.as_str()).unwrap_or("");
            let msg: String = msg.chars().take(300).collect();
            if msg.is_empty() { code.to_string() } else { format!("{code}: {msg}") }
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// The `Accept` header of manifest requests: every image and index type ko reads.
fn manifest_accept() -> String {
    [media_type::OCI_MANIFEST, media_type::OCI_INDEX, media_type::DOCKER_MANIFEST, media_type::DOCKER_LIST].join(", ")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_media_types() {
        assert_eq!(sniff_media_type(br#"{"schemaVersion":2,"manifests":[]}"#).unwrap(), media_type::OCI_INDEX);
        assert_eq!(
            sniff_media_type(br#"{"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}"#).unwrap(),
            media_type::DOCKER_MANIFEST
        );
        assert!(sniff_media_type(b"not json").is_none());
    }

    #[test]
    fn auth_schemes_from_challenges() {
        assert_eq!(
            AuthScheme::from_header(Some(r#"Bearer realm="https://auth/t",service="reg""#)),
            AuthScheme::Bearer { realm: "https://auth/t".into(), service: Some("reg".into()) }
        );
        assert_eq!(AuthScheme::from_header(Some(r#"Basic realm="r""#)), AuthScheme::Basic);
        assert_eq!(AuthScheme::from_header(None), AuthScheme::None);
        // A Bearer challenge without a realm cannot be followed.
        assert_eq!(AuthScheme::from_header(Some("Bearer service=x")), AuthScheme::None);
    }

    #[test]
    fn scope_keys_ignore_order() {
        let a = scope_key(&[push_scope("a"), pull_scope("b")]);
        let b = scope_key(&[pull_scope("b"), push_scope("a"), push_scope("a")]);
        assert_eq!(a, b);
        assert_eq!(a, "repository:a:push,pull repository:b:pull");
    }

    #[test]
    fn error_envelopes() {
        let body = br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":[{"Type":"repository"}]}]}"#;
        assert_eq!(parse_error_envelope(body).unwrap(), "UNAUTHORIZED: authentication required");
        assert!(parse_error_envelope(b"<html>").is_none());
        assert!(parse_error_envelope(br#"{"errors":[]}"#).is_none());
    }

    #[test]
    fn logged_urls_drop_query_and_userinfo() {
        let u = Url::parse("https://user:pw@reg.example.com:5000/v2/a/blobs/uploads/1?_state=abc").unwrap();
        assert_eq!(redact_url(&u), "https://reg.example.com:5000/v2/a/blobs/uploads/1");
    }
}
