//! The distribution-protocol client ko uses to pull bases and publish images, on `reqwest`.
//!
//! - Each registry host gets one HTTP client (its own TLS roots: system, `SSL_CERT_FILE`,
//!   `SSL_CERT_DIR`, `/etc/docker/certs.d/<host>/*.crt`) and one ping of `/v2/`: HTTPS first,
//!   plain HTTP next for loopback hosts and `--insecure-registry` (which also skips certificate
//!   checks), as go-containerregistry does.
//! - Credentials come from the [`auth::Keychain`] (docker config, credential helpers, podman).
//!   A registry that answers with a Basic challenge gets Basic auth; a Bearer challenge starts
//!   the token flow ([`token`]): tokens are fetched per set of scopes (`repository:R:pull`,
//!   `…:push,pull`, and for a cross-repository mount both the destination's push,pull and the
//!   source's pull), cached until they expire, and fetched again when the registry answers 401.
//! - Every request has an overall deadline, longer for blobs by their size, and is logged when
//!   it goes unanswered for a while ([`transport::DEADLINES`]); a blob transfer that stops
//!   moving fails before its deadline. Requests are retried with backoff and jitter on resets,
//!   timeouts (once), 408, 429 (`Retry-After`), 5xx, within a bounded total time
//!   ([`retry::RetryPolicy`]); a `Retry-After` beyond that fails at once. A blob upload
//!   ([`blobs`]: POST, one streaming PATCH from disk, PUT `?digest=`) that fails restarts cleanly
//!   in a new upload session; a `Location` that leaves the registry's host is refused; the upload
//!   counts only when the registry confirms the digest. Manifests: [`manifests`].
//! - Errors ([`errors`]) name the operation, registry, repository and HTTP status (with the
//!   registry's own error codes), never a credential or a header.
//!
//! A client lives as long as its session: tokens, pings and credentials are reused by every call.

pub mod auth;
mod blobs;
mod errors;
pub mod login;
mod manifests;
pub mod retry;
mod token;
pub mod transport;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use oci_client::Reference;
use reqwest::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Response, StatusCode, Url};

use crate::env::Env;
use crate::error::{Error, ErrorKind, Result};

pub use auth::{Credential, Keychain};
use errors::{Op, innermost, redact_url, status_error, transport_error};
pub use manifests::sniff_media_type;
use retry::RetryPolicy;
use token::{AuthScheme, Token};
use transport::DEADLINES;

/// A registry client shared by every pull and push of one ko invocation. Thread-safe.
pub struct RegistryClient {
    insecure: bool,
    /// `SSL_CERT_FILE` and `SSL_CERT_DIR` certificates, read once.
    roots: Arc<TlsRoots>,
    certs_d: PathBuf,
    keychain: Arc<Keychain>,
    policy: RetryPolicy,
    hosts: Mutex<HashMap<String, Arc<Host>>>,
    /// Upload sessions a registry opened when it declined a mount (202), by (registry, repo, digest).
    sessions: Mutex<HashMap<(String, String, String), Url>>,
}

/// The certificates `SSL_CERT_FILE` and `SSL_CERT_DIR` of the session's environment name, read
/// on first use. Parsing them can take tens of milliseconds (a system's whole `/etc/ssl/certs`),
/// so nothing reads them before a registry is contacted over TLS. When they are the ones the
/// process itself has, they are not read at all: the platform verifier already trusts those.
struct TlsRoots {
    roots: std::sync::OnceLock<Vec<reqwest::Certificate>>,
    env: Env,
}

impl TlsRoots {
    fn get(&self) -> &[reqwest::Certificate] {
        self.roots.get_or_init(|| {
            let same_as_process = ["SSL_CERT_FILE", "SSL_CERT_DIR"]
                .iter()
                .all(|v| self.env.get_os(v) == std::env::var_os(v).as_deref().filter(|x| !x.is_empty()));
            if same_as_process { Vec::new() } else { transport::env_roots(&self.env) }
        })
    }
}

/// One registry host: its HTTP client (made on first use, or ahead by [`RegistryClient::warm_up`]),
/// its base URL once pinged, how it authenticates, tokens.
struct Host {
    registry: String,
    insecure: bool,
    certs_d: PathBuf,
    roots: Arc<TlsRoots>,
    client: std::sync::OnceLock<std::result::Result<reqwest::Client, String>>,
    /// Turns true when a warm-up thread, if one was started, has made `client`.
    warmed: Mutex<Option<tokio::sync::watch::Receiver<bool>>>,
    base: tokio::sync::OnceCell<Url>,
    scheme: Mutex<AuthScheme>,
    tokens: tokio::sync::Mutex<HashMap<String, Token>>,
}

impl Host {
    /// The host's client, for any URL (plain HTTP, and TLS with the system's roots, the
    /// session's extra ones and docker's `certs.d` for this host, which setting it up loads).
    /// Made once: a caller that comes while [`RegistryClient::warm_up`] makes it awaits it
    /// (blocking would stall every other future of the call, such as starting `go`).
    async fn http(&self) -> Result<&reqwest::Client> {
        if self.client.get().is_none() {
            let warming = self.warmed.lock().expect("poisoned").clone();
            if let Some(mut warmed) = warming {
                // An error means the thread is gone without making it: it is made here.
                let _ = warmed.wait_for(|done| *done).await;
            }
        }
        self.make_client().as_ref().map_err(|message| Error::new(ErrorKind::Registry, message.clone()))
    }

    fn make_client(&self) -> &std::result::Result<reqwest::Client, String> {
        self.client.get_or_init(|| {
            transport::http_client(&self.registry, self.insecure, self.roots.get(), &self.certs_d)
                .map_err(|e| e.message().to_string())
        })
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
    /// A client reading credentials and TLS roots as `env` says; `insecure` allows plain HTTP
    /// and unverified TLS to every registry.
    pub fn new(insecure: bool, env: &Env) -> Self {
        RegistryClient::with_keychain(insecure, Keychain::from_env(env), env)
    }

    /// A client with its own keychain (for tests and embedders).
    pub fn with_keychain(insecure: bool, keychain: Keychain, env: &Env) -> Self {
        RegistryClient {
            insecure,
            roots: Arc::new(TlsRoots { roots: std::sync::OnceLock::new(), env: env.clone() }),
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
            insecure: self.insecure,
            certs_d: self.certs_d.clone(),
            roots: self.roots.clone(),
            client: std::sync::OnceLock::new(),
            warmed: Mutex::new(None),
            base: tokio::sync::OnceCell::new(),
            scheme: Mutex::new(AuthScheme::None),
            tokens: Default::default(),
        });
        hosts.insert(registry.to_string(), host.clone());
        Ok(host)
    }

    /// Sets up `registry`'s client on a thread of its own (loading TLS roots takes tens of
    /// milliseconds), so that it is ready when the session first needs it. The caller joins
    /// the thread before it is done with the client.
    pub fn warm_up(self: &Arc<Self>, registry: &str) -> Option<std::thread::JoinHandle<()>> {
        let host = self.host(registry).ok()?;
        let (done, warmed) = tokio::sync::watch::channel(false);
        *host.warmed.lock().expect("poisoned") = Some(warmed);
        std::thread::Builder::new()
            .name("ko-registry-warm-up".into())
            .spawn(move || {
                host.make_client();
                let _ = done.send(true);
            })
            .ok()
    }

    /// The registry's base URL (`https://host/` or `http://host/`), pinging `/v2/` once. The
    /// credentials files are checked first, once: a broken one fails every registry call.
    async fn base(&self, host: &Host, op: &Op<'_>) -> Result<Url> {
        self.keychain.check()?;
        host.base.get_or_try_init(|| self.ping(host, op)).await.cloned()
    }

    /// Checks, before anything is built, that `registry` can be published to: the credentials
    /// files are valid and the registry answers its ping.
    pub async fn ready(&self, registry: &str, repository: &str) -> Result<()> {
        let op = Op::new("checking", registry, repository);
        let host = self.host(registry)?;
        self.base(&host, &op).await.map(drop)
    }

    async fn ping(&self, host: &Host, op: &Op<'_>) -> Result<Url> {
        // Each scheme's failure, and whether the other end spoke HTTP there (then its answer
        // is what to report: a TLS error from the other scheme would only hide it).
        let mut failures: Vec<(&str, Error, bool)> = Vec::new();
        for scheme in transport::schemes(&host.registry, self.insecure) {
            let url = Url::parse(&format!("{scheme}://{}/v2/", host.registry))
                .map_err(|e| op.error(ErrorKind::InvalidInput, format!("invalid registry name: {e}")))?;
            let ping_op = Op::new(op.doing.clone(), op.registry, op.repository);
            let http = host.http().await?;
            match self.send_plain(&ping_op, &|| http.get(url.clone())).await {
                Ok(resp) if resp.status().is_success() || matches!(resp.status().as_u16(), 401 | 403) => {
                    let challenge = resp.headers().get(WWW_AUTHENTICATE).and_then(|v| v.to_str().ok());
                    let scheme_found = AuthScheme::from_header(challenge);
                    tracing::debug!("{}: {scheme}, auth {:?}", host.registry, scheme_found);
                    *host.scheme.lock().expect("poisoned") = scheme_found;
                    return Url::parse(&format!("{scheme}://{}/", host.registry))
                        .map_err(|e| op.error(ErrorKind::InvalidInput, format!("invalid registry name: {e}")));
                }
                Ok(resp) => {
                    let status = resp.status();
                    let why = if retry::retryable_status(status) {
                        "the registry is failing; try again later, or ask its operators"
                    } else {
                        "not a registry (the distribution API answers 200 or 401 there)"
                    };
                    let e = status_error(resp, &ping_op).await;
                    let prefix = format!("{} {}: ", ping_op.doing, ping_op.target());
                    let answer = e.message().strip_prefix(&prefix).unwrap_or(e.message()).to_string();
                    let message = format!("{prefix}GET /v2/: {answer}: {why}");
                    tracing::debug!("{}: {scheme} failed: {message}", host.registry);
                    // A TLS server's 400 to plain HTTP says to try HTTPS, nothing about the registry;
                    // any other answer comes from an HTTP server, which is all there is to know.
                    let tls_server = status == StatusCode::BAD_REQUEST;
                    failures.push((scheme, e.with_message(message), !tls_server));
                    if !tls_server {
                        break;
                    }
                }
                Err(e) => {
                    tracing::debug!("{}: {scheme} failed: {}", host.registry, e.message());
                    let silent = e.message().contains("no complete answer within");
                    let redirected = e.message().contains("redirected too often");
                    // Bytes that are not HTTP may be a TLS server's alert: HTTPS is still tried.
                    let garbage = e.message().contains("not HTTP");
                    failures.push((scheme, e, garbage || redirected));
                    // A server that accepted the connection and said nothing will not say more
                    // over the other scheme (the wait is not repeated); one that redirects
                    // speaks HTTP.
                    if silent || redirected {
                        break;
                    }
                }
            }
        }
        // Reported: what an HTTP-speaking end said, else what HTTPS (what a registry should speak) said.
        let primary = failures
            .iter()
            .position(|(_, _, spoke)| *spoke)
            .or_else(|| failures.iter().position(|(scheme, _, _)| *scheme == "https"))
            .unwrap_or(0);
        let (_, first, spoke) = failures.remove(primary);
        let mut message = first.message().to_string();
        let prefix = format!("{} {}: ", op.doing, op.target());
        if let Some((scheme, e, _)) = failures.first()
            && !spoke
            && e.message() != first.message()
        {
            let reason = e.message().strip_prefix(&prefix).unwrap_or(e.message());
            message.push_str(&format!(" (over {scheme}: {reason})"));
        }
        if message.contains("cannot connect") {
            message.push_str(" (is the registry running and reachable?)");
        }
        Err(first.with_message(message))
    }

    /// One attempt of the request `rb`: with the deadline `op` gets, and a log line when no
    /// answer came for a while. Returns the request line (`GET /v2/…`) for messages too.
    async fn attempt(&self, op: &Op<'_>, rb: reqwest::RequestBuilder) -> (String, reqwest::Result<Response>) {
        let (client, request) = rb.build_split();
        let mut request = match request {
            Ok(r) => r,
            Err(e) => return (String::new(), Err(e)),
        };
        let what = errors::request_line(request.method().as_str(), request.url());
        let deadline = op.deadline();
        *request.timeout_mut() = Some(deadline);
        let sent = client.execute(request);
        tokio::pin!(sent);
        let slow = DEADLINES.slow(op.transfer);
        let result = tokio::select! {
            r = &mut sent => r,
            () = tokio::time::sleep(slow) => {
                tracing::warn!(
                    "{} {}: {what}: no answer after {} s, still waiting (for up to {} s)",
                    op.doing,
                    op.target(),
                    slow.as_secs(),
                    deadline.as_secs()
                );
                sent.await
            }
        };
        (what, result)
    }

    /// Sends an unauthenticated request built by `make` (called once per attempt), retrying
    /// transient failures. Returns the last response whatever its status.
    async fn send_plain(
        &self,
        op: &Op<'_>,
        make: &(dyn Fn() -> reqwest::RequestBuilder + Send + Sync),
    ) -> Result<Response> {
        let mut tries = Tries::new();
        loop {
            let (what, result) = self.attempt(op, make()).await;
            match self.after_attempt(result, op, &what, &mut tries) {
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
        let mut tries = Tries::new();
        let mut reauthed = false;
        let mut scopes = a.scopes.to_vec();
        loop {
            let mut rb = make();
            let with_scopes = Auth { host: a.host, repository: a.repository, scopes: &scopes };
            if let Some(h) = self.authorization(&with_scopes, op).await? {
                rb = rb.header(AUTHORIZATION, h);
            }
            let (what, result) = self.attempt(op, rb).await;
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
                    continue;
                }
            }
            match self.after_attempt(result, op, &what, &mut tries) {
                Next::Done(r) => return r,
                Next::Retry(delay) => tokio::time::sleep(delay).await,
            }
        }
    }

    /// Decides, after one attempt of `what`, whether to return or to wait and try again: up to
    /// [`RetryPolicy::attempts`] attempts, [`RetryPolicy::timeout_attempts`] of them timing out,
    /// none started after [`RetryPolicy::max_total`]; a `Retry-After` longer than what is left
    /// of that ends the request now, saying so.
    fn after_attempt(
        &self,
        result: std::result::Result<Response, reqwest::Error>,
        op: &Op<'_>,
        what: &str,
        tries: &mut Tries,
    ) -> Next {
        tries.attempts += 1;
        let attempt = tries.attempts;
        let left = self.policy.max_total.saturating_sub(tries.start.elapsed());
        let out_of_time = attempt >= self.policy.attempts || left.is_zero();
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
                if let Some(wait) = ra.filter(|w| *w > left) {
                    return Next::Done(Err(op.error(
                        ErrorKind::Registry,
                        format!(
                            "{what}: HTTP {} {}: the registry asks to wait {} s before trying again, longer than ko waits ({} s in all); try again later",
                            status.as_u16(),
                            status.canonical_reason().unwrap_or(""),
                            wait.as_secs(),
                            self.policy.max_total.as_secs()
                        ),
                    )));
                }
                (ra, format!("HTTP {}", status.as_u16()))
            }
            Err(e) => {
                tracing::debug!("{} {}: {what}: {}", op.doing, op.target(), innermost(&e));
                if e.is_timeout() {
                    tries.timeouts += 1;
                }
                let timed_out_enough = tries.timeouts >= self.policy.timeout_attempts;
                if !retry::retryable_error(&e) || out_of_time || timed_out_enough {
                    let err = transport_error(e, op, what);
                    let message = match attempt {
                        1 => err.message().to_string(),
                        n => format!("{} (gave up after {n} attempts)", err.message()),
                    };
                    return Next::Done(Err(err.with_message(message)));
                }
                (None, innermost(&e))
            }
        };
        let delay = self.policy.delay(attempt, retry_after).min(left);
        tracing::warn!(
            "{} {}: {what}: {failure}; retrying in {:.1}s (attempt {}/{})",
            op.doing,
            op.target(),
            delay.as_secs_f64(),
            attempt + 1,
            self.policy.attempts
        );
        Next::Retry(delay)
    }
}

/// The attempts of one request so far.
struct Tries {
    start: Instant,
    attempts: u32,
    timeouts: u32,
}

impl Tries {
    fn new() -> Tries {
        Tries { start: Instant::now(), attempts: 0, timeouts: 0 }
    }
}

/// What to do after one attempt of a request.
enum Next {
    Done(Result<Response>),
    Retry(Duration),
}

fn join(base: &Url, path: &str, op: &Op<'_>) -> Result<Url> {
    base.join(path).map_err(|e| op.error(ErrorKind::InvalidInput, format!("invalid name: {e}")))
}
