//! Blobs: existence checks, streamed downloads, cross-repository mounts, and uploads (POST, one
//! streaming PATCH from the source, PUT `?digest=`), restarted in a new session when they fail.

use std::time::{Duration, Instant, SystemTime};

use futures::TryStreamExt;
use oci_client::Reference;
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use reqwest::{Response, StatusCode, Url};

use super::errors::{Op, redact_url, status_error, transport_error};
use super::transport::{DEADLINES, Transfer};
use super::{Auth, RegistryClient, join, pull_scope, push_scope, registry_of, retry, transport};
use crate::error::{Error, ErrorKind, Result};
use crate::image::layer::{BlobSource, ByteStream};

impl RegistryClient {
    /// Streams blob `digest` (of `size` bytes, which sets the deadline) from `repository`. The
    /// stream fails when the registry stalls or trickles, or runs past the deadline.
    pub async fn blob_stream(&self, repository: &Reference, digest: &str, size: u64) -> Result<ByteStream> {
        let registry = registry_of(repository);
        let repo = repository.repository();
        let op = Op::new(format!("fetching blob {digest} from"), registry, repo).moving(Transfer::Download(size));
        let host = self.host(registry)?;
        let base = self.base(&host, &op).await?;
        let url = join(&base, &format!("v2/{repo}/blobs/{digest}"), &op)?;
        let scopes = [pull_scope(repo)];
        let auth = Auth { host: &host, repository: repo, scopes: &scopes };
        let http = host.http().await?;
        let resp = self.send(&op, Some(&auth), &|| http.get(url.clone())).await?;
        if !resp.status().is_success() {
            return Err(status_error(resp, &op).await);
        }
        let what = format!("{} {}: GET {}", op.doing, op.target(), url.path());
        let body = resp.bytes_stream().map_err(std::io::Error::other);
        Ok(Box::pin(transport::Watched::new(body, what, op.deadline(), DEADLINES)))
    }

    /// Whether `repository` already holds blob `digest`.
    pub async fn blob_exists(&self, repository: &Reference, digest: &str) -> Result<bool> {
        let registry = registry_of(repository);
        let repo = repository.repository();
        let op = Op::new(format!("checking blob {digest} in"), registry, repo);
        let host = self.host(registry)?;
        let base = self.base(&host, &op).await?;
        let url = join(&base, &format!("v2/{repo}/blobs/{digest}"), &op)?;
        let scopes = [push_scope(repo)];
        let auth = Auth { host: &host, repository: repo, scopes: &scopes };
        let http = host.http().await?;
        let resp = self.send(&op, Some(&auth), &|| http.head(url.clone())).await?;
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
        let op = Op::new(format!("mounting blob {digest} into"), registry, repo);
        let host = self.host(registry)?;
        let base = self.base(&host, &op).await?;
        let mut url = join(&base, &format!("v2/{repo}/blobs/uploads/"), &op)?;
        url.query_pairs_mut().append_pair("mount", digest).append_pair("from", from_repository);
        let scopes = [push_scope(repo), pull_scope(from_repository)];
        let auth = Auth { host: &host, repository: repo, scopes: &scopes };
        let http = host.http().await?;
        let resp = self.send(&op, Some(&auth), &|| http.post(url.clone()).header(CONTENT_LENGTH, "0")).await?;
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
        let op = Op::new(format!("uploading blob {digest} to"), registry, repo);
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
        let (mut attempt, mut stuck) = (0u32, 0u32);
        loop {
            attempt += 1;
            let (error, retry_after) =
                match self.upload_once(&auth, &base, &op, digest, size, source, session.take()).await {
                    Ok(()) => return Ok(()),
                    Err(Upload::Fatal(e)) => return Err(e),
                    Err(Upload::Retry(e, ra)) => (e, ra),
                    Err(Upload::Stuck(e)) => {
                        stuck += 1;
                        (e, None)
                    }
                };
            if attempt >= self.policy.attempts
                || stuck >= self.policy.timeout_attempts
                || start.elapsed() >= self.policy.max_total
            {
                let message = format!("{} (gave up after {attempt} attempts)", error.message());
                return Err(error.with_message(message));
            }
            let left = self.policy.max_total.saturating_sub(start.elapsed());
            if let Some(wait) = retry_after.filter(|w| *w > left) {
                let message = format!(
                    "{}: the registry asks to wait {} s before trying again, longer than ko waits ({} s in all); try again later",
                    error.message(),
                    wait.as_secs(),
                    self.policy.max_total.as_secs()
                );
                return Err(error.with_message(message));
            }
            let delay = self.policy.delay(attempt, retry_after).min(left);
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
                let http = host.http().await.map_err(Upload::Fatal)?;
                let resp = self
                    .send(op, Some(auth), &|| http.post(url.clone()).header(CONTENT_LENGTH, "0"))
                    .await
                    .map_err(Upload::Fatal)?;
                if resp.status() != StatusCode::ACCEPTED {
                    return Err(Upload::Fatal(status_error(resp, op).await));
                }
                location_of(&resp, base, op)?
            }
        };

        // One PATCH streaming the whole blob from its source, with a deadline for its size,
        // abandoned when the registry stops taking the bytes.
        let moved = transport::Moved::default();
        let counter = moved.clone();
        let data = source.open(digest).await.map_err(Upload::Fatal)?.inspect_ok(move |b| counter.add(b.len() as u64));
        let mut rb = host
            .http()
            .await
            .map_err(Upload::Fatal)?
            .patch(location.clone())
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, size.to_string())
            .body(reqwest::Body::wrap_stream(data));
        if let Some(h) = self.authorization(auth, op).await.map_err(Upload::Fatal)? {
            rb = rb.header(AUTHORIZATION, h);
        }
        let patch_op = Op::new(op.doing.clone(), op.registry, op.repository).moving(Transfer::Upload(size));
        let sent = tokio::select! {
            sent = self.attempt(&patch_op, rb) => sent,
            secs = transport::stalled(&moved, size, &DEADLINES) => {
                return Err(Upload::Stuck(op.error(
                    ErrorKind::Registry,
                    format!(
                        "PATCH {}: the upload stalled: the registry took less than {} KiB in {secs} s",
                        location.path(),
                        DEADLINES.stall_bytes / 1024
                    ),
                )));
            }
        };
        let resp = match sent {
            (what, Err(e)) => {
                let timed_out = e.is_timeout();
                let retry = retry::retryable_error(&e);
                let err = transport_error(e, &patch_op, &what);
                return Err(if timed_out {
                    Upload::Stuck(err)
                } else if retry {
                    Upload::Retry(err, None)
                } else {
                    Upload::Fatal(err)
                });
            }
            (_, Ok(resp)) => resp,
        };
        let status = resp.status();
        tracing::debug!("{} PATCH {} -> {}", op.doing, redact_url(resp.url()), status.as_u16());
        let location = if status == StatusCode::ACCEPTED || status == StatusCode::NO_CONTENT {
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
        };

        // PUT ?digest= closes the session; the registry checks the digest (which may take a
        // while for a large blob: the deadline grows with its size).
        let mut put = location;
        put.query_pairs_mut().append_pair("digest", digest);
        let http = host.http().await.map_err(Upload::Fatal)?;
        let put_op = Op::new(op.doing.clone(), op.registry, op.repository).moving(Transfer::Finalize(size));
        let resp = self
            .send(&put_op, Some(auth), &|| http.put(put.clone()).header(CONTENT_LENGTH, "0"))
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
            && let Ok(http) = host.http().await
            && let Ok(r) = self.send(op, Some(auth), &|| http.head(url.clone())).await
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
}

/// How one upload attempt failed.
enum Upload {
    /// Worth another attempt in a new session (after `Retry-After`, when given).
    Retry(Error, Option<Duration>),
    /// Timed out or stalled: worth another attempt, a bounded number of times.
    Stuck(Error),
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
