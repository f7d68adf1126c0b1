//! Manifests and indexes: fetched by tag or digest (checked against the digest asked for),
//! looked up by tag, and put at a tag or digest.

use oci_client::Reference;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use sha2::{Digest, Sha256};

use super::errors::{Op, status_error, transport_error};
use super::{Auth, RegistryClient, join, pull_scope, push_scope, registry_of};
use crate::error::{Error, Result};
use crate::image::media_type;

impl RegistryClient {
    /// Fetches a manifest or index by tag or digest: its bytes, digest and media type.
    pub async fn get_manifest(&self, reference: &Reference) -> Result<(bytes::Bytes, String, String)> {
        let registry = registry_of(reference);
        let repo = reference.repository();
        let tag_or_digest = reference.digest().or(reference.tag()).unwrap_or("latest");
        let sep = if tag_or_digest.contains(':') { "@" } else { ":" };
        let op = Op::new("fetching", registry, repo);
        let shown = format!("{registry}/{repo}{sep}{tag_or_digest}");
        let host = self.host(registry)?;
        let base = self.base(&host, &op).await?;
        let url = join(&base, &format!("v2/{repo}/manifests/{tag_or_digest}"), &op)?;
        let scopes = [pull_scope(repo)];
        let accept = manifest_accept();
        let auth = Auth { host: &host, repository: repo, scopes: &scopes };
        let http = host.http().await?;
        let resp = self.send(&op, Some(&auth), &|| http.get(url.clone()).header(ACCEPT, &accept)).await?;
        if !resp.status().is_success() {
            let e = status_error(resp, &op).await;
            let message = e.message().replacen(&op.target(), &shown, 1);
            return Err(e.with_message(message));
        }
        let bytes = resp.bytes().await.map_err(|e| transport_error(e, &op, &format!("GET {}", url.path())))?;
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
        let op = Op::new("checking", registry, repo);
        let host = self.host(registry)?;
        let base = self.base(&host, &op).await?;
        let url = join(&base, &format!("v2/{repo}/manifests/{tag}"), &op)?;
        let scopes = [push_scope(repo)];
        let accept = manifest_accept();
        let auth = Auth { host: &host, repository: repo, scopes: &scopes };
        let http = host.http().await?;
        let resp = self.send(&op, Some(&auth), &|| http.head(url.clone()).header(ACCEPT, &accept)).await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => {
                if let Some(d) = resp.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()) {
                    return Ok(Some(d.to_string()));
                }
                let resp = self.send(&op, Some(&auth), &|| http.get(url.clone()).header(ACCEPT, &accept)).await?;
                if !resp.status().is_success() {
                    return Err(status_error(resp, &op).await);
                }
                let bytes = resp.bytes().await.map_err(|e| transport_error(e, &op, &format!("GET {}", url.path())))?;
                Ok(Some(format!("sha256:{}", hex::encode(Sha256::digest(&bytes)))))
            }
            _ => Err(status_error(resp, &op).await),
        }
    }

    /// Puts manifest `bytes` of `media_type` at `reference` (a tag or a digest).
    pub async fn push_manifest(&self, reference: &Reference, bytes: bytes::Bytes, media_type: &str) -> Result<()> {
        let registry = registry_of(reference);
        let repo = reference.repository();
        let tag = reference.digest().or(reference.tag()).unwrap_or("latest");
        let op = Op::new("publishing manifest", registry, repo);
        let host = self.host(registry)?;
        let base = self.base(&host, &op).await?;
        let url = join(&base, &format!("v2/{repo}/manifests/{tag}"), &op)?;
        let scopes = [push_scope(repo)];
        let auth = Auth { host: &host, repository: repo, scopes: &scopes };
        let http = host.http().await?;
        let resp = self
            .send(&op, Some(&auth), &|| http.put(url.clone()).header(CONTENT_TYPE, media_type).body(bytes.clone()))
            .await?;
        if !resp.status().is_success() {
            let sep = if tag.contains(':') { "@" } else { ":" };
            let e = status_error(resp, &op).await;
            let shown = format!("{}{sep}{tag}", op.target());
            let message = e.message().replacen(&op.target(), &shown, 1);
            return Err(e.with_message(message));
        }
        Ok(())
    }
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
}
