//! Cancelling a call: every [`Session`](crate::Session) call takes a [`CancelToken`]; cancelling
//! it (from any thread) ends the call with an error of kind `Cancelled`. The call's future is
//! dropped, and dropping is what cleans up: `go` and `kubectl` are killed with their whole process
//! groups ([`crate::process`]), blocking layer work stops ([`crate::blocking`]), uploads are
//! abandoned mid-stream and temporary directories are removed. Nothing half-published is tagged:
//! a manifest goes up only after all its blobs.

use std::future::Future;

use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};

/// A handle that cancels the calls it was given to. Cheap to clone; thread-safe.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(CancellationToken);

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Cancels every call using this token (now and later).
    pub fn cancel(&self) {
        self.0.cancel();
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.is_cancelled()
    }

    /// Runs `work` until it finishes or this token is cancelled; then `work` is dropped and the
    /// result is a `Cancelled` error.
    pub async fn run<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        tokio::select! {
            biased;
            _ = self.0.cancelled() => Err(Error::cancelled()),
            result = work => result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_cancelled_call_returns_cancelled() {
        let token = CancelToken::new();
        let t = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            t.cancel();
        });
        let err = token.run(std::future::pending::<Result<()>>()).await.unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Cancelled);
        assert_eq!(token.run(async { Ok(1) }).await.unwrap_err().kind(), crate::ErrorKind::Cancelled);
        assert_eq!(CancelToken::new().run(async { Ok(1) }).await.unwrap(), 1);
    }
}
