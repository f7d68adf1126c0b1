//! Publishing: the [`Publisher`] trait (image in, reference out) and its sinks — a registry, a
//! Docker engine, an OCI layout directory, a `docker save` tarball, or nowhere (`--push=false`) —
//! plus [`MultiPublisher`], which tees one image into several sinks as upstream does.

mod daemon;
mod layout;
mod registry;
mod tarball;

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::Result;
use crate::image::Artifact;
use crate::name::Destination;

pub use daemon::DaemonPublisher;
pub use layout::LayoutPublisher;
pub use registry::RegistryPublisher;
pub use tarball::TarballPublisher;

/// Puts built images somewhere and says how to refer to them.
#[async_trait]
pub trait Publisher: Send + Sync {
    /// Publishes `artifact`, built from `import_path`, and returns its reference.
    async fn publish(&self, artifact: &Artifact, import_path: &str) -> Result<String>;

    /// Checks that the destination can be reached at all. Called while the images are being
    /// built, so that an engine that is not running fails the call before minutes of building.
    async fn ready(&self) -> Result<()> {
        Ok(())
    }

    /// Finishes anything written at the end (e.g. a tarball). Called once, after every publish.
    async fn close(&self) -> Result<()> {
        Ok(())
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

    async fn ready(&self) -> Result<()> {
        futures::future::try_join_all(self.publishers.iter().map(|p| p.ready())).await.map(drop)
    }

    async fn close(&self) -> Result<()> {
        for p in &self.publishers {
            p.close().await?;
        }
        Ok(())
    }
}
