//! Credentials and challenges: where ko finds a registry's credentials (docker's config.json —
//! `auths`, `credHelpers`, `credsStore` — then podman's auth.json), the `docker-credential-*`
//! helper protocol, and parsing of `WWW-Authenticate` challenges.
//!
//! A [`Credential`] never prints its secret: its `Debug` shows only the username.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use base64::Engine;
use serde_json::Value;

use crate::env::Env;
use crate::error::{Error, ErrorKind, Result};

/// The key Docker Hub's credentials are stored under.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// What ko presents to a registry.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum Credential {
    /// No credentials: anonymous access (tokens are still requested when the registry asks).
    #[default]
    Anonymous,
    /// A username and password (or token used as password): sent as Basic auth, to the registry
    /// itself or to its token service.
    Basic { username: String, password: String },
    /// An OAuth2 refresh token (`identitytoken` in config.json), exchanged at the token service.
    IdentityToken(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Anonymous => f.write_str("Anonymous"),
            Credential::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Credential::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
        }
    }
}

impl Credential {
    /// `Basic base64(user:pass)`, for a Basic credential.
    pub fn basic_header(&self) -> Option<String> {
        match self {
            Credential::Basic { username, password } => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
            )),
            _ => None,
        }
    }

    /// A secret this credential carries (for scrubbing messages).
    pub fn secret(&self) -> Option<&str> {
        match self {
            Credential::Anonymous => None,
            Credential::Basic { password, .. } => Some(password),
            Credential::IdentityToken(t) => Some(t),
        }
    }
}

/// The server name ko looks credentials up by: Docker Hub's aliases map to its legacy key.
pub fn config_key(registry: &str) -> String {
    match normalize_host(registry).as_str() {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "" => DOCKER_HUB_KEY.to_string(),
        host => host.to_string(),
    }
}

/// `https://host:port/path` → `host:port` (docker's `ConvertToHostname`).
pub fn normalize_host(server: &str) -> String {
    let s = server.trim();
    let s = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://")).unwrap_or(s);
    s.split('/').next().unwrap_or("").to_string()
}

/// The Docker config directory: `$DOCKER_CONFIG`, else `~/.docker`.
pub fn docker_config_dir(env: &Env) -> Option<PathBuf> {
    env.path("DOCKER_CONFIG").or_else(|| env.home().map(|h| h.join(".docker")))
}

/// Podman's auth files, in the order podman reads them.
pub fn podman_auth_files(env: &Env) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(f) = env.path("REGISTRY_AUTH_FILE") {
        files.push(f);
    }
    if let Some(d) = env.path("XDG_RUNTIME_DIR") {
        files.push(d.join("containers/auth.json"));
    }
    if let Some(h) = env.home() {
        files.push(h.join(".config/containers/auth.json"));
    }
    files
}

/// Runs a `docker-credential-<helper>` for one server.
pub trait HelperRunner: Sync {
    /// `get`: the credential, or `None` when the helper has none for `server`.
    fn get(&self, helper: &str, server: &str) -> Result<Option<Credential>>;
}

/// The real helpers: `docker-credential-<name>` on the session's `PATH`, run with its environment.
pub struct ExecHelpers<'a>(pub &'a Env);

impl HelperRunner for ExecHelpers<'_> {
    fn get(&self, helper: &str, server: &str) -> Result<Option<Credential>> {
        let out = run_helper(helper, "get", server.as_bytes(), self.0)?;
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
            if text.to_ascii_lowercase().contains("credentials not found") {
                return Ok(None);
            }
            return Err(Error::new(
                ErrorKind::Auth,
                format!("credential helper docker-credential-{helper} failed for {server} ({})", out.status),
            ));
        }
        parse_helper_output(&out.stdout).map_err(|why| {
            Error::new(
                ErrorKind::Auth,
                format!("credential helper docker-credential-{helper} printed {why} for {server}"),
            )
        })
    }
}

/// What `docker-credential-<helper> get` printed (`{"Username": …, "Secret": …}`): a Basic
/// credential, an identity token (user `<token>`), or none (no secret). `Err` says what was wrong
/// with the output, without repeating it (it may hold a secret).
pub fn parse_helper_output(stdout: &[u8]) -> std::result::Result<Option<Credential>, String> {
    let v: Value = serde_json::from_slice(stdout).map_err(|_| "something that is not JSON".to_string())?;
    if !v.is_object() {
        return Err("JSON that is not an object".into());
    }
    let field = |name: &str| match v.get(name) {
        None | Some(Value::Null) => Ok(""),
        Some(Value::String(s)) => Ok(s.as_str()),
        Some(_) => Err(format!("a {name} that is not a string")),
    };
    let (user, secret) = (field("Username")?, field("Secret")?);
    Ok(match (user, secret) {
        (_, "") => None,
        ("<token>", s) => Some(Credential::IdentityToken(s.to_string())),
        (u, s) => Some(Credential::Basic { username: u.to_string(), password: s.to_string() }),
    })
}

/// Runs `docker-credential-<helper> <action>` with `input` on stdin.
pub(crate) fn run_helper(helper: &str, action: &str, input: &[u8], env: &Env) -> Result<std::process::Output> {
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .env_clear()
        .envs(env.vars())
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::new(ErrorKind::Auth, format!("cannot run credential helper {program}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading its input is not an error here.
        let _ = stdin.write_all(input);
    }
    child
        .wait_with_output()
        .map_err(|e| Error::new(ErrorKind::Auth, format!("credential helper {program} failed: {e}")))
}

/// Finds the credential for `registry` (and `repository`) in a parsed config.json: a
/// `credHelpers` entry, else `credsStore`, else `auths` (the `registry/repository` key, then
/// the registry's, then any key naming the same host).
pub fn lookup_docker_config(
    config: &Value,
    registry: &str,
    repository: &str,
    helpers: &dyn HelperRunner,
) -> Result<Option<Credential>> {
    let key = config_key(registry);
    let host = normalize_host(&key);
    let cred_helpers = config.get("credHelpers").and_then(Value::as_object);
    let helper = cred_helpers
        .and_then(|h| h.get(&key).or_else(|| h.get(&host)).or_else(|| h.get(registry)))
        .and_then(Value::as_str)
        .or_else(|| config.get("credsStore").and_then(Value::as_str))
        .filter(|h| !h.is_empty());
    if let Some(helper) = helper {
        match helpers.get(helper, &key) {
            Ok(Some(c)) => return Ok(Some(c)),
            Ok(None) => {}
            Err(e) => tracing::warn!("{e}; trying the other credential sources"),
        }
    }
    Ok(lookup_auths(config, &key, &format!("{}/{repository}", normalize_host(registry))))
}

/// An `auths` entry for `key` (or `repo_key`, or any key with the same host).
pub fn lookup_auths(config: &Value, key: &str, repo_key: &str) -> Option<Credential> {
    let auths = config.get("auths")?.as_object()?;
    let host = normalize_host(key);
    let entry = auths
        .get(repo_key)
        .or_else(|| auths.get(key))
        .or_else(|| auths.iter().find(|(k, _)| normalize_host(k) == host).map(|(_, v)| v))?;
    decode_auth_entry(entry)
}

fn decode_auth_entry(entry: &Value) -> Option<Credential> {
    let s = |k: &str| entry.get(k).and_then(Value::as_str).filter(|v| !v.is_empty());
    if let Some(token) = s("identitytoken") {
        return Some(Credential::IdentityToken(token.to_string()));
    }
    if let (Some(u), Some(p)) = (s("username"), s("password")) {
        return Some(Credential::Basic { username: u.to_string(), password: p.to_string() });
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(s("auth")?.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (u, p) = decoded.split_once(':')?;
    Some(Credential::Basic { username: u.to_string(), password: p.to_string() })
}

fn read_json(path: &Path) -> Result<Option<Value>> {
    match crate::files::read_regular(path) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(None),
        Ok(bytes) => parse_config(&bytes).map(Some).map_err(|why| {
            Error::new(
                ErrorKind::Config,
                format!(
                    "{}{why}; fix the file, or point DOCKER_CONFIG (or REGISTRY_AUTH_FILE) elsewhere",
                    path.display()
                ),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
    }
}

/// A credentials file (docker's `config.json`, podman's `auth.json`) as JSON, which must be an
/// object. `Err` is `:line:column: what is wrong`, to follow the file's name (never the
/// file's text: it holds secrets).
pub fn parse_config(bytes: &[u8]) -> std::result::Result<Value, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Eof => "it ends too early",
            serde_json::error::Category::Data => "unexpected data",
            _ => "it is not valid JSON",
        };
        format!(":{}:{}: {what}", e.line(), e.column())
    })?;
    if !v.is_object() {
        return Err(": it is JSON, but not an object ({\"auths\": …})".into());
    }
    for key in ["auths", "credHelpers"] {
        if v.get(key).is_some_and(|x| !x.is_object() && !x.is_null()) {
            return Err(format!(": \"{key}\" is not an object"));
        }
    }
    if v.get("credsStore").is_some_and(|x| !x.is_string() && !x.is_null()) {
        return Err(": \"credsStore\" is not a string".into());
    }
    Ok(v)
}

/// Credentials per registry, looked up once per run (the lookup may run helper programs).
pub struct Keychain {
    env: Env,
    docker_config: Option<PathBuf>,
    podman: Vec<PathBuf>,
    cache: Mutex<HashMap<String, Credential>>,
    /// What [`check`](Keychain::check) found, once.
    checked: std::sync::OnceLock<std::result::Result<(), (ErrorKind, String)>>,
}

impl Keychain {
    /// Docker's config from `$DOCKER_CONFIG` / `~/.docker`, podman's auth files as fallback, as
    /// `env` names them; helpers run with `env`.
    pub fn from_env(env: &Env) -> Self {
        Keychain {
            env: env.clone(),
            docker_config: docker_config_dir(env).map(|d| d.join("config.json")),
            podman: podman_auth_files(env),
            cache: Mutex::default(),
            checked: std::sync::OnceLock::new(),
        }
    }

    /// Reads every credentials file this keychain would read and fails when one is not valid,
    /// naming it with the line and column: a broken `config.json` must not turn into an
    /// anonymous push (upstream fails too). Done once; registries that ask for no credentials
    /// are checked as well, before anything is sent to them.
    pub fn check(&self) -> Result<()> {
        let result = self.checked.get_or_init(|| {
            for path in self.docker_config.iter().chain(&self.podman) {
                read_json(path).map_err(|e| (e.kind(), e.message().to_string()))?;
            }
            Ok(())
        });
        result.clone().map_err(|(kind, message)| Error::new(kind, message))
    }

    /// The credential for `registry`/`repository`; anonymous when nothing matches. Blocking:
    /// it may run a credential helper.
    pub fn resolve(&self, registry: &str, repository: &str) -> Result<Credential> {
        let cache_key = format!("{registry}/{repository}");
        if let Some(c) = self.cache.lock().expect("keychain poisoned").get(&cache_key) {
            return Ok(c.clone());
        }
        let mut found = None;
        if let Some(path) = &self.docker_config
            && let Some(config) = read_json(path)?
        {
            found = lookup_docker_config(&config, registry, repository, &ExecHelpers(&self.env))?;
            if found.is_some() {
                tracing::debug!("{registry}: using credentials from {}", path.display());
            }
        }
        if found.is_none() {
            let key = config_key(registry);
            let repo_key = format!("{}/{repository}", normalize_host(registry));
            for path in &self.podman {
                if let Some(config) = read_json(path)?
                    && let Some(c) = lookup_auths(&config, &key, &repo_key)
                {
                    tracing::debug!("{registry}: using credentials from {}", path.display());
                    found = Some(c);
                    break;
                }
            }
        }
        let cred = found.unwrap_or_default();
        self.cache.lock().expect("keychain poisoned").insert(cache_key, cred.clone());
        Ok(cred)
    }
}

/// One challenge of a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Lower-cased: `basic`, `bearer`, …
    pub scheme: String,
    /// Parameter names lower-cased, values unquoted.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Parses a `WWW-Authenticate` value into its challenges (RFC 7235: several challenges, each a
/// scheme and comma-separated `name=value` / `name="quoted"` parameters).
pub fn parse_www_authenticate(header: &str) -> Vec<Challenge> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut in_quotes = false;
    let mut escaped = false;
    for ch in header.chars() {
        if escaped {
            current.push(ch);
            escaped = false;
            continue;
        }
        match ch {
            '\\' if in_quotes => {
                current.push(ch);
                escaped = true;
            }
            '"' => {
                in_quotes = !in_quotes;
                current.push(ch);
            }
            ',' if !in_quotes => items.push(std::mem::take(&mut current)),
            _ => current.push(ch),
        }
    }
    items.push(current);

    let mut challenges: Vec<Challenge> = Vec::new();
    for item in items {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let (first, rest) = match item.find(char::is_whitespace) {
            Some(i) => (&item[..i], item[i..].trim_start()),
            None => (item, ""),
        };
        let param = if !first.contains('=') {
            challenges.push(Challenge { scheme: first.to_ascii_lowercase(), params: Vec::new() });
            rest
        } else {
            item
        };
        if param.is_empty() {
            continue;
        }
        let Some(challenge) = challenges.last_mut() else { continue };
        if let Some((k, v)) = param.split_once('=') {
            challenge.params.push((k.trim().to_ascii_lowercase(), unquote(v.trim())));
        }
    }
    challenges
}

fn unquote(v: &str) -> String {
    let Some(inner) = v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) else {
        return v.to_string();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct FakeHelpers(Vec<(&'static str, &'static str, Credential)>);
    impl HelperRunner for FakeHelpers {
        fn get(&self, helper: &str, server: &str) -> Result<Option<Credential>> {
            Ok(self.0.iter().find(|(h, s, _)| *h == helper && *s == server).map(|(_, _, c)| c.clone()))
        }
    }

    fn basic(u: &str, p: &str) -> Credential {
        Credential::Basic { username: u.into(), password: p.into() }
    }

    #[test]
    fn parses_bearer_and_basic_challenges() {
        let c = parse_www_authenticate(
            r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push repository:c:pull""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some("https://auth.example.com/token"));
        assert_eq!(c[0].param("service"), Some("registry.example.com"));
        assert_eq!(c[0].param("scope"), Some("repository:a/b:pull,push repository:c:pull"));

        let c = parse_www_authenticate(r#"Basic realm="Registry Realm""#);
        assert_eq!(
            c,
            vec![Challenge { scheme: "basic".into(), params: vec![("realm".into(), "Registry Realm".into())] }]
        );

        let c = parse_www_authenticate(r#"Basic, Bearer realm=https://x/t , service=x, error="invalid_token""#);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].scheme, "basic");
        assert!(c[0].params.is_empty());
        assert_eq!(c[1].param("realm"), Some("https://x/t"));
        assert_eq!(c[1].param("error"), Some("invalid_token"));

        let c = parse_www_authenticate(r#"BEARER Realm="a\"b""#);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some("a\"b"));
        assert!(parse_www_authenticate("").is_empty());
    }

    #[test]
    fn docker_hub_keys() {
        assert_eq!(config_key("docker.io"), DOCKER_HUB_KEY);
        assert_eq!(config_key("index.docker.io"), DOCKER_HUB_KEY);
        assert_eq!(config_key("registry-1.docker.io"), DOCKER_HUB_KEY);
        assert_eq!(config_key("ghcr.io"), "ghcr.io");
        assert_eq!(config_key("https://127.0.0.1:5000/v2/"), "127.0.0.1:5000");
    }

    #[test]
    fn auths_entries() {
        let config = json!({"auths": {
            "https://index.docker.io/v1/": {"auth": "aHViOmh1YnB3"},
            "https://reg.example.com/v1/": {"username": "u", "password": "p"},
            "tok.example.com": {"auth": "", "identitytoken": "refresh-me"},
            "repo.example.com/team/app": {"auth": "dGVhbTp0cHc="},
            "repo.example.com": {"auth": "YW55OmFwdw=="},
            "bad.example.com": {"auth": "!!!"}
        }});
        let none = FakeHelpers(vec![]);
        let get = |r: &str, repo: &str| lookup_docker_config(&config, r, repo, &none).unwrap();
        assert_eq!(get("docker.io", "library/x"), Some(basic("hub", "hubpw")));
        assert_eq!(get("index.docker.io", "x"), Some(basic("hub", "hubpw")));
        assert_eq!(get("reg.example.com", "x"), Some(basic("u", "p")));
        assert_eq!(get("tok.example.com", "x"), Some(Credential::IdentityToken("refresh-me".into())));
        assert_eq!(get("repo.example.com", "team/app"), Some(basic("team", "tpw")));
        assert_eq!(get("repo.example.com", "other"), Some(basic("any", "apw")));
        assert_eq!(get("bad.example.com", "x"), None);
        assert_eq!(get("unknown.example.com", "x"), None);
    }

    #[test]
    fn helpers_take_precedence() {
        let config = json!({
            "auths": {"a.example.com": {"auth": "ZmlsZTpmcHc="}, "b.example.com": {"auth": "ZmlsZTpmcHc="}},
            "credHelpers": {"a.example.com": "ahelper"},
            "credsStore": "store"
        });
        let helpers = FakeHelpers(vec![
            ("ahelper", "a.example.com", basic("helper", "hpw")),
            ("store", DOCKER_HUB_KEY, Credential::IdentityToken("hubtoken".into())),
        ]);
        let get = |r: &str| lookup_docker_config(&config, r, "x", &helpers).unwrap();
        assert_eq!(get("a.example.com"), Some(basic("helper", "hpw")));
        assert_eq!(get("docker.io"), Some(Credential::IdentityToken("hubtoken".into())));
        // The store has nothing for b: the file entry is used.
        assert_eq!(get("b.example.com"), Some(basic("file", "fpw")));
        assert_eq!(get("c.example.com"), None);
    }

    #[test]
    fn helper_output() {
        assert_eq!(parse_helper_output(br#"{"Username":"u","Secret":"s"}"#), Ok(Some(basic("u", "s"))));
        assert_eq!(
            parse_helper_output(br#"{"Username":"<token>","Secret":"t"}"#),
            Ok(Some(Credential::IdentityToken("t".into())))
        );
        assert_eq!(parse_helper_output(br#"{"Username":"u","Secret":""}"#), Ok(None));
        assert_eq!(parse_helper_output(br#"{"ServerURL":"x"}"#), Ok(None));
        assert!(parse_helper_output(b"oops").unwrap_err().contains("not JSON"));
        assert!(parse_helper_output(b"[1]").unwrap_err().contains("not an object"));
        assert!(parse_helper_output(br#"{"Secret":5}"#).unwrap_err().contains("Secret that is not a string"));
    }

    #[test]
    fn broken_config_files_are_named_with_line_and_column() {
        assert_eq!(parse_config(b"{\n  \"auths\": {,\n}").unwrap_err(), ":2:13: it is not valid JSON");
        assert!(parse_config(b"{\"auths\": {").unwrap_err().contains("ends too early"));
        assert!(parse_config(b"[]").unwrap_err().contains("not an object"));
        assert!(parse_config(br#"{"auths": []}"#).unwrap_err().contains("\"auths\" is not an object"));
        assert!(parse_config(br#"{"credsStore": 1}"#).unwrap_err().contains("credsStore"));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), "{\"auths\": {\"r\": {\"auth\": \"c2VjcmV0OnB3\"}}, oops")
            .unwrap();
        let env = Env::from_map([("DOCKER_CONFIG", dir.path())]);
        let keychain = Keychain::from_env(&env);
        let e = keychain.check().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        let at = format!("{}:1:44: it is not valid JSON", dir.path().join("config.json").display());
        assert!(e.to_string().starts_with(&at), "{e}");
        assert!(!e.to_string().contains("c2VjcmV0"), "{e}");
        assert!(keychain.resolve("r", "x").is_err());
    }

    #[test]
    fn debug_never_shows_secrets() {
        let text = format!("{:?} {:?}", basic("me", "s3cret"), Credential::IdentityToken("t0ken".into()));
        assert!(!text.contains("s3cret") && !text.contains("t0ken"), "{text}");
        assert!(text.contains("me"));
    }
}
