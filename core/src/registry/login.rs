//! `ko login` / `ko logout`: store or remove a registry's credentials the way docker does — in
//! the credential helper config.json names for that registry (`credHelpers`, else `credsStore`),
//! else as `auths.<registry>.auth` in config.json itself. Every other key of the file is kept;
//! the file is written atomically with mode 0600.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::{Map, Value, json};

use super::auth::{config_key, docker_config_dir, normalize_host, run_helper};
use crate::env::Env;
use crate::error::{Error, ErrorKind, Result};

/// Where `ko login` put the credentials (for its message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// In this config.json.
    File(PathBuf),
    /// With `docker-credential-<name>`.
    Helper(String),
}

impl std::fmt::Display for Stored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stored::File(p) => write!(f, "{}", p.display()),
            Stored::Helper(h) => write!(f, "docker-credential-{h}"),
        }
    }
}

fn config_dir(env: &Env) -> Result<PathBuf> {
    docker_config_dir(env).ok_or_else(|| {
        Error::new(ErrorKind::Config, "cannot find the Docker config directory: set DOCKER_CONFIG or HOME")
    })
}

/// Stores `username`/`password` for `server` in the Docker config (`$DOCKER_CONFIG` or ~/.docker
/// of `env`), through a credential helper when the config names one (run with `env`).
pub fn login(server: &str, username: &str, password: &str, env: &Env) -> Result<Stored> {
    login_in(&config_dir(env)?, server, username, password, env)
}

/// Removes `server`'s credentials; `false` when there were none.
pub fn logout(server: &str, env: &Env) -> Result<bool> {
    logout_in(&config_dir(env)?, server, env)
}

fn validate(server: &str) -> Result<String> {
    let key = config_key(server);
    let host = normalize_host(&key);
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::new(ErrorKind::InvalidInput, format!("invalid registry name {server:?}")));
    }
    Ok(key)
}

fn helper_for(config: &Map<String, Value>, key: &str) -> Option<String> {
    config
        .get("credHelpers")
        .and_then(Value::as_object)
        .and_then(|h| h.get(key).or_else(|| h.get(&normalize_host(key))))
        .and_then(Value::as_str)
        .or_else(|| config.get("credsStore").and_then(Value::as_str))
        .filter(|h| !h.is_empty())
        .map(String::from)
}

/// [`login`] with an explicit config directory.
pub fn login_in(dir: &Path, server: &str, username: &str, password: &str, env: &Env) -> Result<Stored> {
    if username.is_empty() {
        return Err(Error::new(ErrorKind::InvalidInput, "a username is required (-u)"));
    }
    if password.is_empty() {
        return Err(Error::new(ErrorKind::InvalidInput, "a password is required (-p or --password-stdin)"));
    }
    let key = validate(server)?;
    let path = dir.join("config.json");
    let mut config = read_config(&path)?;
    if let Some(helper) = helper_for(&config, &key) {
        let input = json!({"ServerURL": key, "Username": username, "Secret": password}).to_string();
        let out = run_helper(&helper, "store", input.as_bytes(), env)?;
        if !out.status.success() {
            return Err(Error::new(
                ErrorKind::Auth,
                format!(
                    "credential helper docker-credential-{helper} could not store credentials for {key} ({})",
                    out.status
                ),
            ));
        }
        return Ok(Stored::Helper(helper));
    }
    let auths = config.entry("auths").or_insert_with(|| Value::Object(Map::new()));
    if !auths.is_object() {
        *auths = Value::Object(Map::new());
    }
    let auths = auths.as_object_mut().expect("just made an object");
    // One entry per registry: drop other spellings of the same host.
    let host = normalize_host(&key);
    auths.retain(|k, _| k == &key || normalize_host(k) != host);
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    auths.insert(key, json!({ "auth": encoded }));
    write_config(&path, &config)?;
    Ok(Stored::File(path))
}

/// [`logout`] with an explicit config directory.
pub fn logout_in(dir: &Path, server: &str, env: &Env) -> Result<bool> {
    let key = validate(server)?;
    let path = dir.join("config.json");
    let mut config = read_config(&path)?;
    let mut removed = false;
    if let Some(helper) = helper_for(&config, &key) {
        let out = run_helper(&helper, "erase", key.as_bytes(), env)?;
        removed |= out.status.success();
    }
    let host = normalize_host(&key);
    if let Some(auths) = config.get_mut("auths").and_then(Value::as_object_mut) {
        let before = auths.len();
        auths.retain(|k, _| normalize_host(k) != host);
        if auths.len() != before {
            removed = true;
            write_config(&path, &config)?;
        }
    }
    Ok(removed)
}

fn read_config(path: &Path) -> Result<Map<String, Value>> {
    match std::fs::read(path) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(Map::new()),
        Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(m)) => Ok(m),
            _ => {
                Err(Error::new(ErrorKind::Config, format!("{} is not a JSON object; fix or remove it", path.display())))
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
        Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
    }
}

/// Writes `config` next to `path` with mode 0600 and renames it into place.
fn write_config(path: &Path, config: &Map<String, Value>) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    // Tab-indented, as docker writes it.
    let mut text = Vec::new();
    let mut ser =
        serde_json::Serializer::with_formatter(&mut text, serde_json::ser::PrettyFormatter::with_indent(b"\t"));
    serde::Serialize::serialize(config, &mut ser).expect("JSON values serialise");
    text.push(b'\n');
    let mut tmp = tempfile::Builder::new()
        .prefix(".config.json")
        .tempfile_in(dir)
        .map_err(|e| Error::io(format!("cannot write in {}", dir.display()), e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::io(format!("cannot set the mode of {}", tmp.path().display()), e))?;
    }
    tmp.write_all(&text).map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
    tmp.persist(path).map_err(|e| Error::io(format!("cannot replace {}", path.display()), e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::auth::{Credential, ExecHelpers, lookup_docker_config};

    #[test]
    fn login_keeps_other_keys_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"auths":{"https://other.example.com/v1/":{"auth":"eDp5"},"reg.example.com":{"auth":"b2xkOm9sZA=="}},"psFormat":"table","proxies":{"default":{"httpProxy":"http://p"}}}"#,
        )
        .unwrap();
        let stored = login_in(dir.path(), "https://reg.example.com/v2/", "me", "s3cret", &Env::default()).unwrap();
        assert_eq!(stored, Stored::File(path.clone()));
        let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["psFormat"], "table");
        assert_eq!(v["proxies"]["default"]["httpProxy"], "http://p");
        assert_eq!(v["auths"]["https://other.example.com/v1/"]["auth"], "eDp5");
        assert_eq!(v["auths"]["reg.example.com"]["auth"], "bWU6czNjcmV0");
        assert_eq!(
            lookup_docker_config(&v, "reg.example.com", "x", &ExecHelpers(&Env::default())).unwrap(),
            Some(Credential::Basic { username: "me".into(), password: "s3cret".into() })
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }

        assert!(logout_in(dir.path(), "reg.example.com", &Env::default()).unwrap());
        assert!(!logout_in(dir.path(), "reg.example.com", &Env::default()).unwrap());
        let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert!(v["auths"].get("reg.example.com").is_none());
        assert_eq!(v["auths"]["https://other.example.com/v1/"]["auth"], "eDp5");
        assert_eq!(v["psFormat"], "table");
    }

    #[test]
    fn docker_hub_and_fresh_directories() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("new");
        login_in(&sub, "docker.io", "u", "p", &Env::default()).unwrap();
        let v: Value = serde_json::from_slice(&std::fs::read(sub.join("config.json")).unwrap()).unwrap();
        assert_eq!(v["auths"]["https://index.docker.io/v1/"]["auth"], "dTpw");
        assert!(login_in(&sub, "docker.io", "", "p", &Env::default()).is_err());
        assert!(login_in(&sub, "docker.io", "u", "", &Env::default()).is_err());
        assert!(login_in(&sub, "bad name", "u", "p", &Env::default()).is_err());
        std::fs::write(sub.join("config.json"), "[1]").unwrap();
        assert!(login_in(&sub, "docker.io", "u", "p", &Env::default()).is_err());
    }
}
