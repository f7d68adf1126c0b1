//! Opening files that must be regular files, without ever blocking on one that is not: a FIFO
//! opened for reading waits for a writer, forever, in a system call that no cancellation
//! reaches. Such files are opened non-blocking and refused unless they turn out to be regular.

use std::fs::File;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Opens `path` for reading when it is (or its symlink resolves to) a regular file; anything
/// else (FIFO, socket, device, directory) is an `InvalidInput` error saying so.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let file =
        std::fs::OpenOptions::new().read(true).custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32).open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    // Reads of a regular file never block on O_NONBLOCK's account; nothing more to undo.
    Ok(file)
}

/// The contents of the regular file `path` (see [`open_regular`]).
pub fn read_regular(path: &Path) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    io::Read::read_to_end(&mut open_regular(path)?, &mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn fifos_and_directories_are_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let start = Instant::now();
        let e = open_regular(&fifo).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(start.elapsed() < Duration::from_secs(1));
        assert_eq!(open_regular(dir.path()).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        std::fs::write(dir.path().join("f"), "data").unwrap();
        std::os::unix::fs::symlink("f", dir.path().join("link")).unwrap();
        assert_eq!(read_regular(&dir.path().join("link")).unwrap(), b"data");
        assert_eq!(open_regular(&dir.path().join("missing")).unwrap_err().kind(), io::ErrorKind::NotFound);
    }
}
