//! Blocking work (tar, gzip, directory walks) on tokio's blocking pool, abandoned when its caller
//! is: a cancelled call drops the future awaiting the work, which raises the work's [`Abandoned`]
//! flag, and the work stops at its next check (readers wrapped in [`Checked`] check on every
//! read) instead of running to the end of a 200 MB layer.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

/// Raised when nobody waits for the work any more.
#[derive(Clone, Default)]
pub struct Abandoned(Arc<AtomicBool>);

impl Abandoned {
    /// An error once the work is abandoned.
    pub fn check(&self) -> std::io::Result<()> {
        if self.0.load(Ordering::Relaxed) {
            // Not `Interrupted`: `io::copy` retries on that.
            Err(std::io::Error::other("cancelled"))
        } else {
            Ok(())
        }
    }

    fn raise(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Raises the flag when dropped before the work finished.
struct RaiseOnDrop {
    flag: Abandoned,
    armed: bool,
}

impl Drop for RaiseOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.flag.raise();
        }
    }
}

/// Runs `work` on the blocking pool; `what` names it if the pool fails.
pub async fn run<T, F>(what: &str, work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&Abandoned) -> Result<T> + Send + 'static,
{
    let flag = Abandoned::default();
    let mut guard = RaiseOnDrop { flag: flag.clone(), armed: true };
    let result = tokio::task::spawn_blocking(move || work(&flag)).await;
    guard.armed = false;
    match result {
        Ok(r) => r,
        Err(e) if e.is_panic() => {
            Err(Error::internal(format!("{what} panicked: {}", crate::embed::panic_message(&e.into_panic()))))
        }
        Err(e) => Err(Error::internal(format!("{what}: {e}"))),
    }
}

/// A reader that fails once its work is abandoned.
pub struct Checked<'a, R> {
    inner: R,
    abandoned: &'a Abandoned,
}

impl<'a, R> Checked<'a, R> {
    pub fn new(inner: R, abandoned: &'a Abandoned) -> Self {
        Checked { inner, abandoned }
    }
}

impl<R: Read> Read for Checked<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.abandoned.check()?;
        self.inner.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn dropping_the_caller_stops_the_work() {
        let (tx, rx) = std::sync::mpsc::channel();
        let work = run("test work", move |abandoned| {
            let mut reads = 0u64;
            let mut r = Checked::new(std::io::repeat(0), abandoned);
            let mut buf = [0u8; 1024];
            let result = loop {
                match r.read_exact(&mut buf) {
                    Ok(()) => reads += 1,
                    Err(e) => break e,
                }
            };
            tx.send((reads, result.kind())).unwrap();
            Ok(())
        });
        assert!(tokio::time::timeout(Duration::from_millis(50), work).await.is_err());
        let (reads, kind) = rx.recv_timeout(Duration::from_secs(5)).expect("the work stopped");
        assert!(reads > 0);
        assert_eq!(kind, std::io::ErrorKind::Other);
    }
}
