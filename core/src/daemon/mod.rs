//! The Docker Engine API client behind `-L`/`ko.local` and daemon bases: where the engine is
//! ([`host`]: `DOCKER_HOST`, TLS from `DOCKER_CERT_PATH`/`DOCKER_TLS_VERIFY`, all read from the
//! session's environment), the API version both sides speak, negotiated once on first use, and
//! the few calls ko makes: load a streamed `docker save` archive, tag, inspect, export, and the
//! engine's own platform. Nothing connects until a call needs the engine, so a session that never
//! uses it never reads `DOCKER_HOST`.
//!
//! Failures are `Registry` errors (the engine is where images are published) naming the engine
//! as the user configured it; a missing image is `NotFound`.

mod host;

use std::io;

use futures::TryStreamExt;
use serde::Deserialize;
use tokio::sync::OnceCell;

use crate::env::Env;
use crate::error::{Error, ErrorKind, Result};
use crate::image::Platform;
use crate::image::layer::ByteStream;
use host::Host;

/// The newest Engine API version ko speaks; an older engine is spoken to in its own version.
const MAX_API_VERSION: (u32, u32) = (1, 47);

/// The engine's replies to loads and its error bodies are messages, not data: longer ones are cut.
const MAX_MESSAGE_BODY: usize = 1 << 20;

/// A Docker engine, connected to on first use and shared by a session's publisher and bases.
pub struct Engine {
    env: Env,
    connection: OnceCell<Connection>,
}

struct Connection {
    host: Host,
    /// `v1.41`: the path prefix of every versioned call.
    api: String,
    platform: Platform,
}

/// What `GET /version` says that ko uses.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Version {
    api_version: String,
    os: String,
    arch: String,
}

/// `GET /images/{name}/json`, the part ko uses.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInfo {
    /// `sha256:…` of the image's config: what the engine calls the image ID.
    pub id: String,
}

/// One line of the engine's JSON progress stream.
#[derive(Deserialize)]
struct StreamMessage {
    stream: Option<String>,
    error: Option<String>,
    #[serde(rename = "errorDetail")]
    error_detail: Option<ErrorDetail>,
}

#[derive(Deserialize)]
struct ErrorDetail {
    message: Option<String>,
}

impl Engine {
    /// The engine `env` names (`DOCKER_HOST`, …), not contacted yet.
    pub fn new(env: Env) -> Engine {
        Engine { env, connection: OnceCell::new() }
    }

    async fn connection(&self) -> Result<&Connection> {
        self.connection.get_or_try_init(|| self.connect()).await
    }

    /// Asks the engine its version and platform, and settles the API version: `DOCKER_API_VERSION`
    /// when set (as Docker's client), else the engine's own, capped at the newest ko speaks.
    async fn connect(&self) -> Result<Connection> {
        let host = Host::from_env(&self.env)?;
        let resp = host
            .client
            .get(format!("{}/version", host.base_url))
            .send()
            .await
            .map_err(|e| unreachable(&host, &e).with_source(e))?;
        if !resp.status().is_success() {
            return Err(status_error(resp, &host, "report its version").await);
        }
        let body = read_limited(resp).await.map_err(|e| unreachable(&host, &e).with_source(e))?;
        let version: Version = serde_json::from_slice(&body).map_err(|e| {
            Error::registry(format!("{} does not answer as a Docker engine: GET /version: {e}", host.described))
        })?;
        let api = match self.env.get("DOCKER_API_VERSION") {
            Some(v) => v,
            None => negotiate(&version.api_version),
        };
        let platform = Platform::new(&version.os, &version.arch, None);
        tracing::debug!("Docker engine at {}: API {api}, platform {platform}", host.described);
        Ok(Connection { host, api: format!("v{}", api.trim_start_matches('v')), platform })
    }

    /// The platform the engine runs images for (`linux/amd64`); connects on first use.
    pub async fn platform(&self) -> Result<Platform> {
        Ok(self.connection().await?.platform.clone())
    }

    /// `POST /images/load`: the engine reads `archive` (a `docker save` stream) and stores the
    /// images and tags it names. Fails with the engine's own message when it refuses them.
    pub async fn load(&self, archive: reqwest::Body) -> Result<()> {
        let c = self.connection().await?;
        let resp = c
            .host
            .client
            .post(format!("{}/{}/images/load?quiet=1", c.host.base_url, c.api))
            .header(reqwest::header::CONTENT_TYPE, "application/x-tar")
            .body(archive)
            .send()
            .await
            .map_err(|e| c.transport_error("load the image", e))?;
        if !resp.status().is_success() {
            return Err(status_error(resp, &c.host, "load the image").await);
        }
        // The reply streams while the engine works; a refusal after it started is a message in it.
        let body = read_limited(resp).await.map_err(|e| c.transport_error("load the image", e))?;
        for line in body.split(|b| *b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)) {
            let Ok(message) = serde_json::from_slice::<StreamMessage>(line) else { continue };
            if let Some(error) = message.error_detail.and_then(|d| d.message).or(message.error) {
                return Err(Error::registry(format!(
                    "the Docker engine at {} refused the image: {}",
                    c.host.described,
                    error.trim()
                )));
            }
            if let Some(text) = message.stream {
                tracing::debug!("docker load: {}", text.trim());
            }
        }
        Ok(())
    }

    /// `POST /images/{image}/tag`: `repository:tag` names `image` from now on.
    pub async fn tag(&self, image: &str, repository: &str, tag: &str) -> Result<()> {
        let c = self.connection().await?;
        let doing = format!("tag {image} as {repository}:{tag}");
        let resp = c
            .host
            .client
            .post(format!("{}/{}/images/{image}/tag", c.host.base_url, c.api))
            .query(&[("repo", repository), ("tag", tag)])
            .send()
            .await
            .map_err(|e| c.transport_error(&doing, e))?;
        if !resp.status().is_success() {
            return Err(status_error(resp, &c.host, &doing).await);
        }
        Ok(())
    }

    /// `GET /images/{name}/json`: the image `name` (`repo:tag`, `repo@digest` or an ID).
    pub async fn inspect(&self, name: &str) -> Result<ImageInfo> {
        let c = self.connection().await?;
        let doing = format!("inspect image {name}");
        let resp = c
            .host
            .client
            .get(format!("{}/{}/images/{name}/json", c.host.base_url, c.api))
            .send()
            .await
            .map_err(|e| c.transport_error(&doing, e))?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(Error::not_found(format!(
                "the Docker engine at {} has no image {name}; pull, load or build it first",
                c.host.described
            )));
        }
        if !resp.status().is_success() {
            return Err(status_error(resp, &c.host, &doing).await);
        }
        let body = read_limited(resp).await.map_err(|e| c.transport_error(&doing, e))?;
        serde_json::from_slice(&body)
            .map_err(|e| Error::registry(format!("the Docker engine at {}: {doing}: {e}", c.host.described)))
    }

    /// `GET /images/get`: image `id` as a `docker save` archive, streamed.
    pub async fn export(&self, id: &str) -> Result<ByteStream> {
        let c = self.connection().await?;
        let doing = format!("export image {id}");
        let resp = c
            .host
            .client
            .get(format!("{}/{}/images/get", c.host.base_url, c.api))
            .query(&[("names", id)])
            .send()
            .await
            .map_err(|e| c.transport_error(&doing, e))?;
        if !resp.status().is_success() {
            return Err(status_error(resp, &c.host, &doing).await);
        }
        Ok(Box::pin(resp.bytes_stream().map_err(io::Error::other)))
    }
}

impl Connection {
    fn transport_error(&self, doing: &str, e: reqwest::Error) -> Error {
        let error = if e.is_connect() {
            unreachable(&self.host, &e)
        } else {
            Error::registry(format!("the Docker engine at {}: cannot {doing}: {}", self.host.described, innermost(&e)))
        };
        error.with_source(e)
    }
}

/// The engine is not there: say where ko looked and how to point it elsewhere.
fn unreachable(host: &Host, e: &reqwest::Error) -> Error {
    Error::registry(format!(
        "cannot reach the Docker engine at {}: {}; is it running? Start it, or set DOCKER_HOST to where it listens",
        host.described,
        innermost(e)
    ))
}

/// The innermost cause of a transport error ("Connection refused", "No such file or directory").
fn innermost(e: &reqwest::Error) -> String {
    let mut inner: &dyn std::error::Error = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    inner.to_string()
}

/// An error for a failed call, with the engine's `{"message": …}`.
async fn status_error(resp: reqwest::Response, host: &Host, doing: &str) -> Error {
    let status = resp.status();
    let kind = if status == reqwest::StatusCode::NOT_FOUND { ErrorKind::NotFound } else { ErrorKind::Registry };
    let body = read_limited(resp).await.unwrap_or_default();
    #[derive(Deserialize)]
    struct Message {
        message: String,
    }
    let reason = match serde_json::from_slice::<Message>(&body) {
        Ok(m) => m.message.trim().to_string(),
        Err(_) => format!("HTTP {status}"),
    };
    Error::new(kind, format!("the Docker engine at {} cannot {doing}: {reason}", host.described))
}

/// The body, up to [`MAX_MESSAGE_BODY`] bytes.
async fn read_limited(resp: reqwest::Response) -> std::result::Result<Vec<u8>, reqwest::Error> {
    let mut out = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.try_next().await? {
        let room = MAX_MESSAGE_BODY.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
    Ok(out)
}

/// The API version to speak to an engine that speaks up to `engine` (`1.41`).
fn negotiate(engine: &str) -> String {
    let parsed = engine.split_once('.').and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)));
    match parsed {
        Some(v) if v < MAX_API_VERSION => format!("{}.{}", v.0, v.1),
        _ => format!("{}.{}", MAX_API_VERSION.0, MAX_API_VERSION.1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_older_side_sets_the_api_version() {
        assert_eq!(negotiate("1.41"), "1.41");
        assert_eq!(negotiate("1.52"), "1.47");
        assert_eq!(negotiate("2.0"), "1.47");
        assert_eq!(negotiate("garbage"), "1.47");
    }

    #[tokio::test]
    async fn an_engine_that_is_not_there_is_named_with_docker_host() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("docker.sock");
        let engine = Engine::new(Env::from_map([("DOCKER_HOST", format!("unix://{}", socket.display()))]));
        let e = engine.platform().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Registry);
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("cannot reach the Docker engine at DOCKER_HOST=unix://{}", socket.display())),
            "{text}"
        );
        assert!(text.contains("is it running?"), "{text}");
    }
}
