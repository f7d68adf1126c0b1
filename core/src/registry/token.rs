//! Bearer tokens and Basic credentials: which `Authorization` a request gets, learnt from the
//! registry's challenge; tokens fetched per set of scopes (an OAuth2 refresh-token grant for an
//! identity token, else a GET with Basic credentials), cached until they expire.

use std::time::{Duration, Instant};

use reqwest::Url;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};

use super::errors::{Op, status_error, transport_error};
use super::{Auth, Credential, Host, RegistryClient, auth};
use crate::error::{Error, ErrorKind, Result};

/// How a registry wants to be authenticated, learnt from its challenges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum AuthScheme {
    None,
    Basic,
    Bearer { realm: String, service: Option<String> },
}

impl AuthScheme {
    pub(super) fn from_header(value: Option<&str>) -> AuthScheme {
        let challenges = value.map(auth::parse_www_authenticate).unwrap_or_default();
        if let Some(b) = challenges.iter().find(|c| c.scheme == "bearer")
            && let Some(realm) = b.param("realm")
        {
            return AuthScheme::Bearer { realm: realm.to_string(), service: b.param("service").map(String::from) };
        }
        if challenges.iter().any(|c| c.scheme == "basic") { AuthScheme::Basic } else { AuthScheme::None }
    }
}

pub(super) struct Token {
    value: String,
    valid_until: Instant,
}

impl RegistryClient {
    /// The `Authorization` header for `scopes`, fetching a token when the registry wants one.
    pub(super) async fn authorization(&self, auth: &Auth<'_>, op: &Op<'_>) -> Result<Option<String>> {
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
        let token_op = Op::new(
            format!("{} (token service {})", op.doing, realm_url.host_str().unwrap_or("?")),
            op.registry,
            op.repository,
        );
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
                let http = host.http().await?;
                let make = || {
                    http.post(realm_url.clone())
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
                let http = host.http().await?;
                let make = || {
                    let rb = http.get(url.clone());
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
        let body = resp.bytes().await.map_err(|e| transport_error(e, &token_op, ""))?;
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
}

fn scope_key(scopes: &[String]) -> String {
    let mut s: Vec<&str> = scopes.iter().map(String::as_str).collect();
    s.sort_unstable();
    s.dedup();
    s.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{pull_scope, push_scope};

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
}
