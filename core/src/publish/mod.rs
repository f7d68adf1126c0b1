//! Publishing: the [`Publisher`] trait (image in, reference out) and its sinks — a registry, an
//! OCI layout directory, a `docker save` tarball, or nowhere (`--push=false`) — plus
//! [`MultiPublisher`], which tees one image into several sinks as upstream does.

mod layout;
mod registry;
mod tarball;

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::Result;
use crate::image::Artifact;
use crate::name::{Naming, Repository};

pub use layout::LayoutPublisher;
pub use registry::RegistryPublisher;
pub use tarball::TarballPublisher;

/// Puts built images somewhere and says how to refer to them.
#[async_trait]
pub trait Publisher: Send + Sync {
    /// Publishes `artifact`, built from `import_path`, and returns its reference.
    async fn publish(&self, artifact: &Artifact, import_path: &str) -> Result<String>;

    /// Finishes anything written at the end (e.g. a tarball). Called once, after every publish.
    async fn close(&self) -> Result<()> {
        Ok(())
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

/// `--push=false` with no other sink: names the image as if published, publishes nothing.
pub struct NopPublisher {
    pub destination: Destination,
}

#[async_trait]
impl Publisher for NopPublisher {
    async fn publish(&self, artifact: &Artifact, import_path: &str) -> Result<String> {
        let repo = self.destination.repository_for(import_path);
        Ok(self.destination.reference(&repo, artifact.digest()))
    }
}

/// Publishes to every sink in order; the last sink's reference is the result (upstream's order:
/// OCI layout, tarball, registry).
pub struct MultiPublisher {
    pub publishers: Vec<Arc<dyn Publisher>>,
}

#[async_trait]
impl Publisher for MultiPublisher {
    async fn publish(&self, artifact: &Artifact, import_path: &str) -> Result<String> {
        let mut reference = None;
        for p in &self.publishers {
            reference = Some(p.publish(artifact, import_path).await?);
        }
        Ok(reference.expect("a MultiPublisher has at least one publisher"))
    }

    async fn close(&self) -> Result<()> {
        for p in &self.publishers {
            p.close().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
