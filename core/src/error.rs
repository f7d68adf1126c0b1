//! The one error type of ko-core. Every front end maps it once: the kind decides the exception
//! class / error code, the message is what a user reads (it says what to do), and the cause chain
//! is kept for `--verbose` output and Python's `__cause__`.
//!
//! Messages never contain credentials: registry errors are built from status codes and the
//! registry's own error envelope, never from request headers.

use std::fmt;

/// A stable classification of what went wrong, mirrored by every front end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A flag, argument, reference or file the user gave is malformed.
    InvalidInput,
    /// A package, base image, file or tag does not exist.
    NotFound,
    /// `go list` / `go build` failed, or the package cannot be built into an image.
    Build,
    /// The registry answered with an error or could not be reached.
    Registry,
    /// The registry refused our credentials.
    Auth,
    /// Reading or writing a local file failed.
    Io,
    /// `.ko.yaml` or a `KO_*` variable is invalid.
    Config,
    /// `kubectl` failed or is missing.
    Kubectl,
}

impl ErrorKind {
    /// The kind's stable name, as front ends expose it (`code` in Node, `ko_error_kind` in C).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "InvalidInput",
            ErrorKind::NotFound => "NotFound",
            ErrorKind::Build => "Build",
            ErrorKind::Registry => "Registry",
            ErrorKind::Auth => "Auth",
            ErrorKind::Io => "Io",
            ErrorKind::Config => "Config",
            ErrorKind::Kubectl => "Kubectl",
        }
    }
}

/// An error from ko-core: a kind, a message for the user, and an optional cause.
pub struct Error {
    kind: ErrorKind,
    message: String,
    /// The exit status of a failed `kubectl`, which ko's CLI exits with too.
    exit_code: Option<i32>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// `Result` with ko-core's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` with `message` and no cause.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into(), exit_code: None, source: None }
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// `kubectl` exited with `code`.
    pub fn kubectl_exit(code: i32, message: impl Into<String>) -> Self {
        Error { exit_code: Some(code), ..Self::new(ErrorKind::Kubectl, message) }
    }

    /// The exit status to propagate, when this error is a failed `kubectl`.
    pub fn exit_code(&self) -> Option<i32> {
        self.exit_code
    }

    /// The message alone, without the cause chain.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Prefixes the message with context, keeping kind and cause.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    pub(crate) fn build(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Build, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    pub(crate) fn registry(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Registry, message)
    }

    /// An I/O failure on `path`, naming it.
    pub(crate) fn io(what: impl fmt::Display, err: std::io::Error) -> Self {
        Self::new(ErrorKind::Io, format!("{what}: {err}")).with_source(err)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)?;
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            write!(f, "\n  caused by: {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}
