//! Building: the [`Builder`] trait (import path in, image or index out), its Go implementation,
//! and where base images come from. Cross-cutting behaviour (job limits, caching) wraps a builder
//! rather than living inside it, as upstream's `build.Caching`/`build.Limiter` do.

pub mod base;
pub mod go;
mod kodata;
pub mod template;

use async_trait::async_trait;

use crate::error::Result;
use crate::image::Artifact;

pub use go::GoBuilder;

/// Turns import paths into images.
#[async_trait]
pub trait Builder: Send + Sync {
    /// Resolves what a user wrote (`./cmd/app`, `ko://example.com/app`, `.`) to a fully
    /// qualified import path, checking that it names exactly one `main` package.
    async fn qualify(&self, import_path: &str) -> Result<String>;

    /// Builds a qualified import path into an image, or an index when several platforms are built.
    async fn build(&self, import_path: &str) -> Result<Artifact>;

    /// The import paths of every `main` package of the current module (for non-strict resolve).
    async fn main_packages(&self) -> Result<Vec<String>>;
}
