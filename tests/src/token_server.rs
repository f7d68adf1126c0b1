//! A small token service for distribution's `auth: token`: it checks Basic credentials (or an
//! OAuth2 refresh token), grants what is asked, and signs ES256 JWTs whose `x5c` header carries
//! the signing certificate the registry trusts through its `rootcertbundle`. It records every
//! request (scopes, account, grant type) and every token it issued, for the tests to check.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::{Value, json};

use crate::tls::TokenSigningKey;

pub const SERVICE: &str = "ko-tests-registry";
pub const ISSUER: &str = "ko-tests-token-issuer";

/// One request to the token service.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub method: String,
    /// `scope` parameters, each split on spaces.
    pub scopes: Vec<String>,
    /// The user the request authenticated as, if any.
    pub user: Option<String>,
    pub grant_type: Option<String>,
    pub status: u16,
}

#[derive(Default)]
struct State {
    requests: Vec<TokenRequest>,
    issued: Vec<String>,
}

/// The token service, on `127.0.0.1:<port>/token`; stopped on drop.
pub struct TokenServer {
    port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

/// Who may get tokens.
#[derive(Clone, Default)]
pub struct TokenPolicy {
    /// username → password
    pub users: HashMap<String, String>,
    /// refresh token → username
    pub refresh_tokens: HashMap<String, String>,
    /// The first this-many tokens are issued already expired (the registry answers 401 to them).
    pub expired_first: usize,
}

impl TokenServer {
    pub fn start(key: &TokenSigningKey, policy: TokenPolicy) -> TokenServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let signer = Arc::new(Signer {
            key: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &key.key_pkcs8, &SystemRandom::new())
                .unwrap(),
            x5c: STANDARD.encode(&key.cert_der),
            issued: AtomicUsize::new(0),
        });
        let policy = Arc::new(policy);
        {
            let (state, stop) = (state.clone(), stop.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((conn, _)) => {
                            let (state, signer, policy) = (state.clone(), signer.clone(), policy.clone());
                            thread::spawn(move || {
                                let _ = serve(conn, &state, &signer, &policy);
                            });
                        }
                        Err(_) => thread::sleep(Duration::from_millis(10)),
                    }
                }
            });
        }
        TokenServer { port, state, stop }
    }

    /// `http://127.0.0.1:<port>/token`
    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    pub fn requests(&self) -> Vec<TokenRequest> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Every token issued so far.
    pub fn issued(&self) -> Vec<String> {
        self.state.lock().unwrap().issued.clone()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

struct Signer {
    key: EcdsaKeyPair,
    x5c: String,
    issued: AtomicUsize,
}

impl Signer {
    fn token(&self, user: &str, scopes: &[String], expired: bool) -> String {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let access: Vec<Value> = scopes
            .iter()
            .filter_map(|s| {
                let mut parts = s.splitn(3, ':');
                let (t, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                Some(json!({"type": t, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
            })
            .collect();
        let n = self.issued.fetch_add(1, Ordering::SeqCst);
        let (nbf, exp) = if expired { (now - 600, now - 300) } else { (now - 10, now + 600) };
        let header = json!({"typ": "JWT", "alg": "ES256", "x5c": [self.x5c]});
        let claims = json!({
            "iss": ISSUER, "sub": user, "aud": SERVICE, "exp": exp, "nbf": nbf, "iat": nbf,
            "jti": format!("ko-tests-{n}-{now}"), "access": access,
        });
        let signing_input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let sig = self.key.sign(&SystemRandom::new(), signing_input.as_bytes()).unwrap();
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }
}

fn decode_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'+' {
            out.push(b' ');
        } else if b[i] == b'%'
            && let Some(v) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        } else {
            out.push(b[i]);
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn serve(conn: TcpStream, state: &Mutex<State>, signer: &Signer, policy: &TokenPolicy) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut writer = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body)?;

        let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
        let mut params = decode_query(query);
        if method == "POST" {
            params.extend(decode_query(&String::from_utf8_lossy(&body)));
        }
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let scopes: Vec<String> =
            params.iter().filter(|(k, _)| k == "scope").flat_map(|(_, v)| v.split(' ').map(String::from)).collect();
        let grant_type = get("grant_type");

        let user = if grant_type.as_deref() == Some("refresh_token") {
            get("refresh_token").and_then(|t| policy.refresh_tokens.get(&t).cloned())
        } else {
            headers.get("authorization").and_then(|a| a.strip_prefix("Basic ")).and_then(|b| {
                let decoded = String::from_utf8(STANDARD.decode(b).ok()?).ok()?;
                let (u, p) = decoded.split_once(':')?;
                (policy.users.get(u).map(String::as_str) == Some(p)).then(|| u.to_string())
            })
        };
        let path_ok = target.starts_with("/token");
        let (status, body) = match (&user, path_ok) {
            (Some(user), true) => {
                let mut st = state.lock().unwrap();
                let expired = st.issued.len() < policy.expired_first;
                let token = signer.token(user, &scopes, expired);
                st.issued.push(token.clone());
                let body = if grant_type.is_some() {
                    json!({"access_token": token, "expires_in": 300, "refresh_token": get("refresh_token")})
                } else {
                    json!({"token": token, "access_token": token, "expires_in": 300})
                };
                (200, body.to_string())
            }
            (None, true) => (401, r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#.to_string()),
            _ => (404, "{}".to_string()),
        };
        state.lock().unwrap().requests.push(TokenRequest {
            method: method.clone(),
            scopes,
            user: user.clone(),
            grant_type,
            status,
        });
        let reason = match status {
            200 => "OK",
            401 => "Unauthorized",
            _ => "Not Found",
        };
        write!(
            writer,
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
        writer.flush()?;
    }
}
