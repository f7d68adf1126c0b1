//! Building: the [`Builder`] trait (import path in, image or index out), its Go implementation,
//! and where base images come from. Cross-cutting behaviour (job limits, caching) wraps a builder
//! rather than living inside it, as upstream's `build.Caching`/`build.Limiter` do.

pub mod base;
pub mod caps;
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
    /// Resolves what a user wrote (`./cmd/app`, `ko://example.com/app`, `.`) to fully qualified
    /// import paths, checking that each names exactly one `main` package: one result per
    /// argument, in order. The outer error is a failure of the whole lookup (no `go`).
    async fn qualify(&self, import_paths: &[&str]) -> Result<Vec<Result<String>>>;

    /// Builds qualified import paths (each named once) into images, or indexes where several
    /// platforms are built: one artifact per import path, in order. Building them together lets
    /// a builder share work between them.
    async fn build(&self, import_paths: &[&str]) -> Result<Vec<Artifact>>;

    /// The import paths of every `main` package of the current module (for non-strict resolve).
    async fn main_packages(&self) -> Result<Vec<String>>;
}
