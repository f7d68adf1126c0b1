//! Where the Docker engine listens and how to speak to it, from the session's environment as the
//! docker CLI reads it: `DOCKER_HOST` (`unix://PATH`, the default `/var/run/docker.sock`, or
//! `tcp://HOST:PORT`), and for TCP, TLS when `DOCKER_CERT_PATH` or `DOCKER_TLS_VERIFY` is set:
//! `ca.pem`, `cert.pem` and `key.pem` from `DOCKER_CERT_PATH` (else `~/.docker`), the server's
//! certificate verified only with `DOCKER_TLS_VERIFY`, as Docker's own client does.

use std::path::PathBuf;
use std::time::Duration;

use crate::env::Env;
use crate::error::{Error, Result};
use crate::registry::transport;

/// The engine's socket when `DOCKER_HOST` is unset.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// A connection attempt to an engine that is not there should fail fast; a load, once connected,
/// may take as long as it takes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A client for one engine, and how to name the engine in messages.
pub struct Host {
    pub client: reqwest::Client,
    /// `http://localhost` over a unix socket, else `http(s)://HOST:PORT`.
    pub base_url: String,
    /// `DOCKER_HOST=…`, or the default socket and that `DOCKER_HOST` is unset.
    pub described: String,
}

/// How the endpoint in `DOCKER_HOST` is reached.
#[derive(Debug, PartialEq, Eq)]
enum Endpoint {
    Unix(PathBuf),
    Tcp { authority: String, tls: bool },
}

impl Host {
    /// The engine `env` names, with a client ready to reach it (nothing is sent yet).
    pub fn from_env(env: &Env) -> Result<Host> {
        let (endpoint, described) = match env.get("DOCKER_HOST") {
            Some(value) => (parse(&value, wants_tls(env))?, format!("DOCKER_HOST={value}")),
            None => (
                Endpoint::Unix(DEFAULT_SOCKET.into()),
                format!("unix://{DEFAULT_SOCKET} (the default: DOCKER_HOST is not set)"),
            ),
        };
        let builder = transport::client_builder().connect_timeout(CONNECT_TIMEOUT);
        let (builder, base_url) = match endpoint {
            Endpoint::Unix(path) => (builder.unix_socket(path), "http://localhost".to_string()),
            Endpoint::Tcp { authority, tls: false } => (builder, format!("http://{authority}")),
            Endpoint::Tcp { authority, tls: true } => (tls(builder, env)?, format!("https://{authority}")),
        };
        let client = builder
            .build()
            .map_err(|e| Error::config(format!("cannot set up a client for the Docker engine at {described}: {e}")))?;
        Ok(Host { client, base_url, described })
    }
}

/// Whether TCP connections use TLS: with `DOCKER_CERT_PATH` or `DOCKER_TLS_VERIFY` set.
fn wants_tls(env: &Env) -> bool {
    env.get_os("DOCKER_CERT_PATH").is_some() || env.get_os("DOCKER_TLS_VERIFY").is_some()
}

/// Parses a `DOCKER_HOST` value.
fn parse(value: &str, tls: bool) -> Result<Endpoint> {
    let bad = |why: &str| {
        Error::config(format!("DOCKER_HOST={value}: {why}; expected unix:///path/to/docker.sock or tcp://host:port"))
    };
    let (scheme, rest) = value.split_once("://").ok_or_else(|| bad("no scheme"))?;
    match scheme {
        "unix" if rest.is_empty() => Err(bad("no socket path")),
        "unix" => Ok(Endpoint::Unix(PathBuf::from(rest))),
        "tcp" | "http" | "https" => {
            let authority = rest.strip_suffix('/').unwrap_or(rest);
            if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
                return Err(bad("expected only a host and a port"));
            }
            let tls = tls || scheme == "https";
            // The engine's conventional ports, as the docker CLI fills them in.
            let has_port =
                authority.rsplit_once(':').is_some_and(|(_, p)| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
            let authority =
                if has_port { authority.to_string() } else { format!("{authority}:{}", if tls { 2376 } else { 2375 }) };
            Ok(Endpoint::Tcp { authority, tls })
        }
        "ssh" => Err(Error::unsupported(format!(
            "DOCKER_HOST={value}: ssh connections are not supported by this version of ko; forward the engine's socket (ssh -NL /tmp/docker.sock:/var/run/docker.sock HOST) and set DOCKER_HOST=unix:///tmp/docker.sock"
        ))),
        _ => Err(bad(&format!("unsupported scheme {scheme:?}"))),
    }
}

/// TLS as Docker's client sets it up from the environment.
fn tls(builder: reqwest::ClientBuilder, env: &Env) -> Result<reqwest::ClientBuilder> {
    let dir = match (env.path("DOCKER_CERT_PATH"), env.home()) {
        (Some(dir), _) => dir,
        (None, Some(home)) => home.join(".docker"),
        (None, None) => PathBuf::from(".docker"),
    };
    let read = |name: &str| -> Result<Option<Vec<u8>>> {
        let path = dir.join(name);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("cannot read {} (DOCKER_CERT_PATH)", path.display()), e)),
        }
    };
    let invalid = |name: &str, e: reqwest::Error| {
        Error::config(format!("{} is not a valid PEM file (DOCKER_CERT_PATH): {e}", dir.join(name).display()))
    };
    let mut builder = builder;
    if let Some(ca) = read("ca.pem")? {
        let roots = reqwest::Certificate::from_pem_bundle(&ca).map_err(|e| invalid("ca.pem", e))?;
        builder = builder.tls_certs_only(roots);
    }
    match (read("cert.pem")?, read("key.pem")?) {
        (Some(mut cert), Some(key)) => {
            cert.push(b'\n');
            cert.extend_from_slice(&key);
            builder = builder.identity(reqwest::Identity::from_pem(&cert).map_err(|e| invalid("cert.pem", e))?);
        }
        (None, None) => {}
        _ => {
            return Err(Error::config(format!(
                "{} needs both cert.pem and key.pem for a client certificate (DOCKER_CERT_PATH)",
                dir.display()
            )));
        }
    }
    // Docker's client verifies the engine's certificate only when DOCKER_TLS_VERIFY is set.
    let verify = env.get_os("DOCKER_TLS_VERIFY").is_some();
    Ok(builder.tls_danger_accept_invalid_certs(!verify))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_host_forms() {
        assert_eq!(parse("unix:///run/d.sock", false).unwrap(), Endpoint::Unix("/run/d.sock".into()));
        let tcp = |a: &str, tls| Endpoint::Tcp { authority: a.into(), tls };
        assert_eq!(parse("tcp://10.0.0.2:2375", false).unwrap(), tcp("10.0.0.2:2375", false));
        assert_eq!(parse("tcp://engine.example", false).unwrap(), tcp("engine.example:2375", false));
        assert_eq!(parse("tcp://engine.example/", true).unwrap(), tcp("engine.example:2376", true));
        assert_eq!(parse("https://[::1]", false).unwrap(), tcp("[::1]:2376", true));
        assert_eq!(parse("tcp://[::1]:5000", false).unwrap(), tcp("[::1]:5000", false));
        for bad in ["/var/run/docker.sock", "unix://", "tcp://", "tcp://h:1/path", "npipe:////./pipe/docker"] {
            let e = parse(bad, false).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Config, "{bad}: {e}");
            assert!(e.to_string().starts_with(&format!("DOCKER_HOST={bad}: ")), "{e}");
        }
        assert_eq!(parse("ssh://me@host", false).unwrap_err().kind(), crate::ErrorKind::Unsupported);
    }

    #[test]
    fn the_environment_decides_where_and_how() {
        let host = Host::from_env(&Env::from_map([("HOME", "/nonexistent")])).unwrap();
        assert_eq!(host.base_url, "http://localhost");
        assert!(host.described.contains("/var/run/docker.sock") && host.described.contains("DOCKER_HOST is not set"));
        let host = Host::from_env(&Env::from_map([("DOCKER_HOST", "tcp://127.0.0.1:1")])).unwrap();
        assert_eq!(
            (host.base_url.as_str(), host.described.as_str()),
            ("http://127.0.0.1:1", "DOCKER_HOST=tcp://127.0.0.1:1")
        );
        // Certificates are read only for TLS, and a half pair is refused.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cert.pem"), "x").unwrap();
        let certs = dir.path().to_str().unwrap();
        let env = Env::from_map([("DOCKER_HOST", "tcp://127.0.0.1:1"), ("DOCKER_CERT_PATH", certs)]);
        let e = Host::from_env(&env).err().unwrap();
        assert!(e.to_string().contains("needs both cert.pem and key.pem"), "{e}");
        let env = Env::from_map([("DOCKER_HOST", "unix:///x.sock"), ("DOCKER_CERT_PATH", certs)]);
        assert!(Host::from_env(&env).is_ok(), "no TLS over a unix socket");
        let env = Env::from_map([("DOCKER_HOST", "tcp://127.0.0.1:1"), ("DOCKER_TLS_VERIFY", "1"), ("HOME", "/none")]);
        assert_eq!(Host::from_env(&env).unwrap().base_url, "https://127.0.0.1:1");
    }
}
