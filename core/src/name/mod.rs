//! Image names: destination repositories (`KO_DOCKER_REPO`), references with tags and digests,
//! and the upstream namers that turn an import path into a repository name.

use std::fmt;

use md5::{Digest as _, Md5};
use oci_client::Reference;

use crate::error::{Error, Result};

mod reference;
pub use reference::parse_reference;

/// The destination that means "the Docker engine" (`KO_DOCKER_REPO=ko.local[/prefix]`), and the
/// prefix of base images read from it, as upstream.
pub const LOCAL_DOMAIN: &str = "ko.local";

/// Upstream's destination for loading images into kind's nodes.
pub const KIND_DOMAIN: &str = "kind.local";

/// Whether `name` is `domain` or a name under it (`ko.local/app`, not `ko.localhost`).
pub fn is_under(name: &str, domain: &str) -> bool {
    name.strip_prefix(domain).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// A repository in a registry: `registry/path`, no tag or digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Repository {
    /// `host[:port]`, as written (Docker Hub as `docker.io`).
    pub registry: String,
    pub path: String,
}

impl Repository {
    /// Parses a repository such as `KO_DOCKER_REPO`: a registry host with an optional path, or a
    /// Docker Hub name (`user/app` → `docker.io/user/app`). Tags and digests are refused.
    pub fn parse(s: &str) -> Result<Self> {
        // `user:token@host/…` (a URL habit) would put a secret into the message: never quoted.
        let userinfo = |t: &str| t.split('/').next().is_some_and(|host| host.contains('@'));
        let after_scheme = s.split_once("://").map_or(s, |(_, rest)| rest);
        if userinfo(after_scheme) {
            return Err(Error::invalid(
                "invalid repository: it holds credentials (user:password@host); write only the registry and path, and log in with `ko login` or `docker login`",
            ));
        }
        let bad = |why: &str| {
            Error::invalid(format!(
                "invalid repository {s:?}: {why}; expected e.g. registry.example.com/team or 127.0.0.1:5000/images"
            ))
        };
        if s.is_empty() {
            return Err(bad("it is empty"));
        }
        if let Some((_, rest)) = s.split_once("://") {
            return Err(bad(&format!(
                "a repository has no scheme (write {rest:?}); ko speaks plain HTTP by itself to loopback registries, and to others with --insecure-registry"
            )));
        }
        if s.contains(char::is_whitespace) {
            return Err(bad("it contains white space"));
        }
        if s.contains('@') {
            return Err(bad("a repository cannot carry a digest"));
        }
        let (first, rest) = match s.split_once('/') {
            Some((f, r)) => (f, Some(r)),
            None => (s, None),
        };
        let host_like = first.contains('.') || first.contains(':') || first == "localhost";
        let (registry, path) = match rest {
            Some(r) if host_like => (first.to_string(), r.to_string()),
            None if host_like => (first.to_string(), String::new()),
            _ => ("docker.io".to_string(), s.to_string()),
        };
        if path.rsplit('/').next().is_some_and(|last| last.contains(':')) {
            return Err(bad("a repository cannot carry a tag"));
        }
        // Validate the whole name with the distribution grammar, through a tagged reference.
        let valid = |registry: &str, path: &str| {
            let probe =
                if path.is_empty() { format!("{registry}/x:latest") } else { format!("{registry}/{path}:latest") };
            parse_reference(&probe).map(drop)
        };
        if let Err(e) = valid(&registry, &path) {
            // Upper case is the usual slip: say so, with the name to write, when that is all.
            if path.chars().any(|c| c.is_ascii_uppercase()) && valid(&registry, &path.to_lowercase()).is_ok() {
                let lower = match rest {
                    Some(_) if host_like => format!("{registry}/{}", path.to_lowercase()),
                    _ => s.to_lowercase(),
                };
                return Err(bad(&format!("repository names are lower-case (write {lower:?})")));
            }
            return Err(bad(&e.to_string()));
        }
        Ok(Repository { registry, path })
    }

    /// The host ko talks to for this repository (Docker Hub's `docker.io` is `index.docker.io`).
    pub fn registry_address(&self) -> &str {
        if self.registry == "docker.io" { "index.docker.io" } else { &self.registry }
    }

    /// This repository with `/name` appended (or itself when `name` is empty).
    pub fn join(&self, name: &str) -> Repository {
        let path = match (self.path.is_empty(), name.is_empty()) {
            (_, true) => self.path.clone(),
            (true, false) => name.to_string(),
            (false, false) => format!("{}/{}", self.path, name),
        };
        Repository { registry: self.registry.clone(), path }
    }

    /// `repo:tag`.
    pub fn tag(&self, tag: &str) -> Reference {
        Reference::with_tag(self.registry.clone(), self.path.clone(), tag.to_string())
    }

    /// `repo@digest`.
    pub fn digest(&self, digest: &str) -> Reference {
        Reference::with_digest(self.registry.clone(), self.path.clone(), digest.to_string())
    }
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() { f.write_str(&self.registry) } else { write!(f, "{}/{}", self.registry, self.path) }
    }
}

/// Checks a tag against the distribution grammar.
pub fn validate_tag(tag: &str) -> Result<()> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag.chars().next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && tag.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "invalid tag {tag:?}: tags are up to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"
        )))
    }
}

/// How an import path becomes a repository name under the destination, as upstream's namers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Naming {
    /// `<last element>-<md5 of the import path>` (upstream's default).
    #[default]
    Md5,
    /// The whole import path (`-P`).
    PreserveImportPaths,
    /// The last element only (`-B`).
    BaseImportPaths,
    /// Nothing: the destination itself (`--bare`).
    Bare,
}

impl Naming {
    /// The name appended to the destination for `import_path` (any `ko://` prefix removed;
    /// lower-cased first, as upstream).
    pub fn name(self, import_path: &str) -> String {
        let ip = import_path.trim_start_matches("ko://").to_lowercase();
        let base = ip.rsplit('/').next().unwrap_or(&ip).to_string();
        match self {
            Naming::Md5 => format!("{base}-{}", hex::encode(Md5::digest(ip.as_bytes()))),
            Naming::PreserveImportPaths => ip,
            Naming::BaseImportPaths => base,
            Naming::Bare => String::new(),
        }
    }
}

/// Where images go and what they are called: the destination repository, the namer and tags.
#[derive(Debug, Clone)]
pub struct Destination {
    pub repository: Repository,
    pub naming: Naming,
    /// At least one tag; `latest` by default.
    pub tags: Vec<String>,
    /// Refer to images by `repo:tag` alone (exactly one tag, not `latest`).
    pub tag_only: bool,
}

impl Destination {
    /// The repository an import path is published to.
    pub fn repository_for(&self, import_path: &str) -> Repository {
        self.repository.join(&self.naming.name(import_path))
    }

    /// The reference users get back, as upstream forms it: `repo:tag` with `--tag-only`;
    /// `repo:tag@digest` when exactly one tag other than `latest` was asked for; else `repo@digest`.
    pub fn reference(&self, repository: &Repository, digest: &str) -> String {
        match self.tags.as_slice() {
            [tag] if self.tag_only => format!("{repository}:{tag}"),
            [tag] if tag != "latest" => format!("{repository}:{tag}@{digest}"),
            _ => format!("{repository}@{digest}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories() {
        let r = Repository::parse("127.0.0.1:5000/test").unwrap();
        assert_eq!((r.registry.as_str(), r.path.as_str()), ("127.0.0.1:5000", "test"));
        assert_eq!(Repository::parse("user/app").unwrap().to_string(), "docker.io/user/app");
        assert_eq!(Repository::parse("ghcr.io").unwrap().join("x").to_string(), "ghcr.io/x");
        assert!(Repository::parse("UPPER CASE!!").is_err());
        assert!(Repository::parse("host:5000/x:tag").is_err());
        assert!(Repository::parse("host/x@sha256:abc").is_err());
        assert!(Repository::parse("").is_err());
        let says = |s: &str| Repository::parse(s).unwrap_err().to_string();
        for with_secret in ["https://me:s3cret@reg.example/x", "me:s3cret@reg.example/x", "tok3n@reg.example"] {
            let e = says(with_secret);
            assert!(!e.contains("s3cret") && !e.contains("tok3n") && e.contains("holds credentials"), "{e}");
        }
        assert!(
            says("UPPER/case").contains("repository names are lower-case (write \"upper/case\")"),
            "{}",
            says("UPPER/case")
        );
        assert!(
            says("Reg.Example:5000/Team").contains("(write \"Reg.Example:5000/team\")"),
            "{}",
            says("Reg.Example:5000/Team")
        );
        assert!(says("http://127.0.0.1:5000/x").contains("has no scheme (write \"127.0.0.1:5000/x\")"));
        assert!(says("reg.example/a b").contains("white space"));
        assert!(!says("UPPER/!!bad").contains("write"), "no suggestion that is invalid too: {}", says("UPPER/!!bad"));
    }

    #[test]
    fn local_domains() {
        assert!(is_under("ko.local", LOCAL_DOMAIN) && is_under("ko.local/team/app:v1", LOCAL_DOMAIN));
        assert!(!is_under("ko.localhost:5000/app", LOCAL_DOMAIN) && !is_under("reg.example/ko.local", LOCAL_DOMAIN));
    }

    #[test]
    fn namers_match_upstream() {
        // md5sum of the lower-cased import path, as upstream computes it.
        assert_eq!(Naming::Md5.name("ko://github.com/google/ko/test"), "test-46c4b272b3716c422d5ff6dfc7547fa9");
        assert_eq!(Naming::PreserveImportPaths.name("Example.com/App/cmd/X"), "example.com/app/cmd/x");
        assert_eq!(Naming::BaseImportPaths.name("example.com/app/cmd/x"), "x");
        assert_eq!(Naming::Bare.name("example.com/app/cmd/x"), "");
        assert!(validate_tag("v1.2.3_rc-1").is_ok());
        assert!(validate_tag("-x").is_err());
    }

    fn dest(tags: &[&str], tag_only: bool) -> Destination {
        Destination {
            repository: Repository::parse("reg.example/team").unwrap(),
            naming: Naming::BaseImportPaths,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            tag_only,
        }
    }

    #[test]
    fn references_as_upstream_forms_them() {
        let r = dest(&["latest"], false).repository_for("example.com/app/cmd/x");
        assert_eq!(r.to_string(), "reg.example/team/x");
        assert_eq!(dest(&["latest"], false).reference(&r, "sha256:ab"), "reg.example/team/x@sha256:ab");
        assert_eq!(dest(&["v1"], false).reference(&r, "sha256:ab"), "reg.example/team/x:v1@sha256:ab");
        assert_eq!(dest(&["v1", "v2"], false).reference(&r, "sha256:ab"), "reg.example/team/x@sha256:ab");
        assert_eq!(dest(&["v1"], true).reference(&r, "sha256:ab"), "reg.example/team/x:v1");
    }
}
