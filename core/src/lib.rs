//! ko-core: build Go programs into container images and publish them, with no Dockerfile and no
//! Docker engine, and resolve `ko://` references in Kubernetes YAML. Everything ko does lives
//! here; the CLI and the language bindings only translate options, results and errors.
//!
//! The face every front end uses is the engine: make a [`Session`] from [`Options`], call
//! `build`, `resolve_files`, `resolve_str`, `apply`, `delete`, `run` on it (each with a
//! [`CancelToken`]), receive typed [`Event`]s, then [`Session::finish`]. Errors are [`Error`]s
//! with a stable [`ErrorKind`]. [`embed`] runs the async engine from blocking callers.
//!
//! Inside, the pipeline is upstream ko's: a [`builder::Builder`] turns an import path into an
//! image (or index), a [`publish::Publisher`] puts it somewhere and returns a reference, and the
//! resolver splices references into YAML. Those modules are public for tests and tools that need
//! a part; their interfaces may change between versions, the engine's do not.

pub mod blocking;
pub mod builder;
pub mod cache;
mod cancel;
pub mod config;
pub mod daemon;
pub mod embed;
mod env;
mod error;
mod events;
mod files;
pub mod image;
mod kubectl;
pub mod name;
pub mod process;
pub mod publish;
pub mod registry;
pub mod resolve;
pub mod sbom;
mod session;

pub use cancel::CancelToken;
pub use config::{FrontEnd, KeyValue, KeyValues, KubectlOutput, Options, Settings};
pub use env::Env;
pub use error::{Error, ErrorKind, Result};
pub use events::{Event, EventSink, Events, LayerRole, OutputStream};
pub use resolve::ResolveOptions;
pub use session::{KubectlVerb, Published, Session, delete};
