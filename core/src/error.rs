//! The one error type of ko-core. Every front end maps it once: the kind decides the exception
//! class / error code, the message is what a user reads (it says what to do), and the cause chain
//! is kept for `--verbose` output and Python's `__cause__`.
//!
//! Messages never contain credentials: registry errors are built from status codes and the
//! registry's own error envelope, never from request headers.

use std::fmt;

/// A stable classification of what went wrong, mirrored by every front end. The numbers are part
/// of the C ABI (`ko_error_code`) and are never changed or reused; new kinds get new numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A flag, argument, reference or file the user gave is malformed.
    InvalidInput = 1,
    /// A package, base image, file or tag does not exist.
    NotFound = 2,
    /// `go list` / `go build` failed, or the package cannot be built into an image.
    Build = 3,
    /// The registry (or the Docker engine) answered with an error or could not be reached.
    Registry = 4,
    /// The registry refused our credentials.
    Auth = 5,
    /// Reading or writing a local file failed.
    Io = 6,
    /// `.ko.yaml` or a `KO_*` variable is invalid.
    Config = 7,
    /// `kubectl` failed or is missing.
    Kubectl = 8,
    /// The call was cancelled (Ctrl-C, a cancel token, an `AbortSignal`).
    Cancelled = 9,
    /// Something upstream ko does that this version does not (yet).
    Unsupported = 10,
    /// A bug in ko: a panic caught at the boundary, or an impossible state.
    Internal = 11,
}

impl ErrorKind {
    /// Every kind, in code order.
    pub const ALL: [ErrorKind; 11] = [
        ErrorKind::InvalidInput,
        ErrorKind::NotFound,
        ErrorKind::Build,
        ErrorKind::Registry,
        ErrorKind::Auth,
        ErrorKind::Io,
        ErrorKind::Config,
        ErrorKind::Kubectl,
        ErrorKind::Cancelled,
        ErrorKind::Unsupported,
        ErrorKind::Internal,
    ];

    /// The kind's stable number (`ko_error_code` in C).
    pub fn code(self) -> u32 {
        self as u32
    }

    /// The kind with number `code`, if any.
    pub fn from_code(code: u32) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|k| k.code() == code)
    }

    /// The kind's stable name, as Python's `e.kind` shows it (`"InvalidInput"`).
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
            ErrorKind::Cancelled => "Cancelled",
            ErrorKind::Unsupported => "Unsupported",
            ErrorKind::Internal => "Internal",
        }
    }

    /// The kind as an error code string, as Node's `e.code` shows it (`"KO_INVALID_INPUT"`).
    pub fn code_name(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "KO_INVALID_INPUT",
            ErrorKind::NotFound => "KO_NOT_FOUND",
            ErrorKind::Build => "KO_BUILD",
            ErrorKind::Registry => "KO_REGISTRY",
            ErrorKind::Auth => "KO_AUTH",
            ErrorKind::Io => "KO_IO",
            ErrorKind::Config => "KO_CONFIG",
            ErrorKind::Kubectl => "KO_KUBECTL",
            ErrorKind::Cancelled => "KO_CANCELLED",
            ErrorKind::Unsupported => "KO_UNSUPPORTED",
            ErrorKind::Internal => "KO_INTERNAL",
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

    pub(crate) fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }

    /// The error every cancelled call returns.
    pub fn cancelled() -> Self {
        Self::new(ErrorKind::Cancelled, "cancelled")
    }

    /// A bug: a caught panic (its payload in the message) or an impossible state.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, format!("{} (this is a bug in ko; please report it)", message.into()))
    }

    /// This error with its message replaced, keeping kind, exit code and cause.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        let codes: Vec<(u32, &str)> = ErrorKind::ALL.iter().map(|k| (k.code(), k.code_name())).collect();
        assert_eq!(
            codes,
            [
                (1, "KO_INVALID_INPUT"),
                (2, "KO_NOT_FOUND"),
                (3, "KO_BUILD"),
                (4, "KO_REGISTRY"),
                (5, "KO_AUTH"),
                (6, "KO_IO"),
                (7, "KO_CONFIG"),
                (8, "KO_KUBECTL"),
                (9, "KO_CANCELLED"),
                (10, "KO_UNSUPPORTED"),
                (11, "KO_INTERNAL"),
            ]
        );
        assert_eq!(ErrorKind::from_code(9), Some(ErrorKind::Cancelled));
        assert_eq!(ErrorKind::from_code(0), None);
    }

    #[test]
    fn context_and_messages_keep_the_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let e = Error::io("cannot read x", io).context("while building").with_message("replaced");
        assert_eq!(e.kind(), ErrorKind::Io);
        assert_eq!(e.to_string(), "replaced");
        assert!(std::error::Error::source(&e).is_some());
    }
}
