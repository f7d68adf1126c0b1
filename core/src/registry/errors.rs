//! Registry errors as users read them: the operation, registry, repository and HTTP status, with
//! the registry's own error codes from its JSON envelope; never a header, a credential or other
//! body text. URLs in logs lose their query (upload state) and user info.

use std::time::Duration;

use reqwest::{Response, Url};

use super::transport::{DEADLINES, Transfer};
use crate::error::{Error, ErrorKind};

/// What a request is for, to name it in errors, and what it moves (which sets its deadline).
pub(super) struct Op<'a> {
    pub doing: String,
    pub registry: &'a str,
    pub repository: &'a str,
    pub transfer: Transfer,
}

impl<'a> Op<'a> {
    /// An operation moving no blob.
    pub fn new(doing: impl Into<String>, registry: &'a str, repository: &'a str) -> Op<'a> {
        Op { doing: doing.into(), registry, repository, transfer: Transfer::Small }
    }

    /// This operation, moving `transfer`.
    pub fn moving(self, transfer: Transfer) -> Op<'a> {
        Op { transfer, ..self }
    }

    /// How long one attempt may take.
    pub fn deadline(&self) -> Duration {
        DEADLINES.total(self.transfer)
    }
    pub fn target(&self) -> String {
        if self.repository.is_empty() {
            self.registry.to_string()
        } else {
            format!("{}/{}", self.registry, self.repository)
        }
    }

    pub fn error(&self, kind: ErrorKind, reason: impl std::fmt::Display) -> Error {
        let hint = match kind {
            ErrorKind::Auth => " (check your credentials: `ko login`, `docker login` or DOCKER_CONFIG)",
            _ => "",
        };
        Error::new(kind, format!("{} {}: {reason}{hint}", self.doing, self.target()))
    }
}

/// A URL for logs: no query (upload state), no user info.
pub(super) fn redact_url(url: &Url) -> String {
    format!(
        "{}://{}{}",
        url.scheme(),
        url.host_str().unwrap_or("?"),
        url.port().map(|p| format!(":{p}")).unwrap_or_default()
    ) + url.path()
}

/// The innermost cause of a transport error ("Connection refused", "connection reset by peer").
pub(super) fn innermost(e: &reqwest::Error) -> String {
    let mut inner: &dyn std::error::Error = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    let text = inner.to_string();
    if e.is_timeout() && !text.contains("timed out") { format!("timed out ({text})") } else { text }
}

/// Whether the other end answered with bytes that are not HTTP (hyper could not parse them).
pub(super) fn is_not_http(e: &reqwest::Error) -> bool {
    let chain = std::iter::successors(Some(e as &(dyn std::error::Error + 'static)), |c| c.source());
    chain.map(|c| c.to_string()).any(|t| t.starts_with("invalid HTTP") || t.contains("message head is too large"))
}

/// `METHOD /path` of a request, for messages (no query: it may carry upload state).
pub(super) fn request_line(method: &str, url: &Url) -> String {
    format!("{method} {}", url.path())
}

/// A transport failure of `what` (`GET /v2/…`, or empty when unknown) as a user reads it: what
/// happened, in words that say what is wrong, naming the registry and the request.
pub(super) fn transport_error(e: reqwest::Error, op: &Op<'_>, what: &str) -> Error {
    let at = if what.is_empty() {
        e.url().map(|u| format!("{}: ", u.path())).unwrap_or_default()
    } else {
        format!("{what}: ")
    };
    let reason = if e.is_timeout() {
        format!(
            "no complete answer within {} s (the registry accepted the request but did not answer, or answered too slowly)",
            op.deadline().as_secs()
        )
    } else if e.is_redirect() {
        format!(
            "the registry redirected too often, probably in a loop ({}); check the registry's address",
            innermost(&e)
        )
    } else if is_not_http(&e) {
        format!(
            "the registry answered with something that is not HTTP ({}); is this the registry's address and port?",
            innermost(&e)
        )
    } else if e.is_connect() {
        format!("cannot connect: {}", innermost(&e))
    } else {
        format!("connection failed: {}", innermost(&e))
    };
    // The cause keeps reqwest's chain, without the URL (an upload URL carries upload state).
    op.error(ErrorKind::Registry, format!("{at}{reason}")).with_source(e.without_url())
}

/// An error for an unexpected status: `HTTP 401 Unauthorized` plus the registry's error codes
/// and messages from its JSON envelope (never headers or other body text).
pub(super) async fn status_error(resp: Response, op: &Op<'_>) -> Error {
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
pub(super) fn parse_error_envelope(body: &[u8]) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
