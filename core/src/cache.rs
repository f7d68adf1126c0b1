//! ko's cache on disk, so that a rebuild with nothing changed costs close to nothing: `go build`
//! finds its previous output and does not link again, a known binary's layer is neither tarred
//! nor compressed, and base manifests and configs fetched by digest are not fetched again.
//!
//! Where: `$KOCACHE`, else `$XDG_CACHE_HOME/ko`, else `~/.cache/ko`; `KOCACHE=off` turns it off.
//!
//! - `bin/<platform>/<invocation>/`: the binaries `go build` last wrote for one set of flags,
//!   directory, environment and packages, with a `lock` file; a build holds that lock (`flock`) from `go
//!   build` until it has its own copies, so concurrent ko processes never read a half-written
//!   binary.
//! - `layers/<sha256 of the layer's key>.json`: a layer's digest, diff id and size, by what it was
//!   made from (a binary's Go build ID, a kodata tree's names, sizes and times) and how.
//! - `list/<sha256 of the key>.json`: what `go list` said a path names, with the state of the
//!   package's files then (reused only while they are unchanged).
//! - `binfo/<sha256 of the key>.json`: what a binary's embedded build information and SHA-256
//!   are (for its SBOM), by its Go build ID, so an unchanged binary is not read again.
//! - `blobs/sha256/<hex>`: manifests and configs of base images, by digest.
//! - `tmp/`: each build's working directory (on the same file system as `bin/`, so that `go`
//!   moves its output into place with a rename and a build can hard-link its copy).
//!
//! Every entry is written to a temporary name and renamed into place, so a reader never sees a
//! torn entry. Every read is checked (a checksum over a layer entry's fields, the digest of a
//! blob); a damaged entry is ignored and written again. Nothing read from here is published
//! unchecked: a layer produced from a cached entry is verified against its digest.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::env::Env;
use crate::error::{Error, Result};
use crate::image::tar::LayerDigests;

/// An open cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// The cache `env` names, or `None` when it is turned off, there is no home to put it in,
    /// or it cannot be written (a read-only file system, a home that is not ours): then ko
    /// builds without it, as it would with `KOCACHE=off`, and says so once.
    pub fn from_env(env: &Env) -> Option<Cache> {
        let root = match env.get_os("KOCACHE") {
            Some(v) if v == "off" => return None,
            Some(v) => PathBuf::from(v),
            None => env
                .path("XDG_CACHE_HOME")
                .map(|d| d.join("ko"))
                .or_else(|| env.home().map(|h| h.join(".cache").join("ko")))?,
        };
        let usable = ["tmp", "bin"]
            .iter()
            .try_for_each(|d| std::fs::create_dir_all(root.join(d)))
            .and_then(|()| tempfile::tempfile_in(root.join("tmp")).map(drop));
        match usable {
            Ok(()) => Some(Cache { root }),
            Err(e) => {
                tracing::warn!(
                    "cannot use the cache at {} ({e}); building without it (KOCACHE names another)",
                    root.display()
                );
                None
            }
        }
    }

    /// Removes what builds that ended without cleaning up left in `tmp/` (older than a day), and
    /// output directories of `bin/` unused for two weeks. At most once a day; best effort.
    pub fn prune(&self) {
        const DAY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
        let stamp = self.root.join("pruned");
        let age = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
        if age(&stamp).is_some_and(|a| a < DAY) {
            return;
        }
        let _ = std::fs::write(&stamp, b"");
        let remove_older = |dir: &Path, limit: std::time::Duration| {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if age(&path).is_some_and(|a| a > limit) {
                    let _ = std::fs::remove_dir_all(&path);
                }
            }
        };
        remove_older(&self.root.join("tmp"), DAY);
        for platform in std::fs::read_dir(self.root.join("bin")).into_iter().flatten().flatten() {
            remove_older(&platform.path(), 14 * DAY);
        }
    }

    /// The cache's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A fresh working directory for one build, removed when dropped.
    pub fn temp_dir(&self) -> Result<tempfile::TempDir> {
        let dir = self.root.join("tmp");
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        tempfile::Builder::new()
            .prefix("ko")
            .tempdir_in(&dir)
            .map_err(|e| Error::io(format!("cannot create a directory in {}", dir.display()), e))
    }

    /// Where `go build` runs described by `invocation` (its flags, directory, environment and
    /// packages) for `platform` put their binaries (created if need be).
    pub fn build_dir(&self, platform: &str, invocation: &str) -> Result<PathBuf> {
        let platform = platform.replace(|c: char| !(c.is_ascii_alphanumeric() || "._-".contains(c)), "_");
        let hash = hex::encode(&Sha256::digest(invocation.as_bytes())[..8]);
        let dir = self.root.join("bin").join(platform).join(hash);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        Ok(dir)
    }

    /// Holds `dir`'s lock exclusively until the guard is dropped, waiting for other holders (a
    /// cancelled call stops waiting). A file system without locks (some NFS) gives no lock: the
    /// build goes on, as it would with one ko process.
    pub async fn lock(dir: &Path) -> Result<Option<DirLock>> {
        let path = dir.join("lock");
        let open = || std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path);
        // Pruning may have just removed a directory unused for weeks: make it again.
        let file = open()
            .or_else(|_| std::fs::create_dir_all(dir).and_then(|()| open()))
            .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
        // Polled rather than waited for in the kernel, so that cancelling the call ends the wait.
        let mut logged = false;
        loop {
            match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {
                    // Touched, so that pruning sees the directory in use.
                    let _ = file.set_modified(std::time::SystemTime::now());
                    return Ok(Some(DirLock { _file: file }));
                }
                Err(rustix::io::Errno::WOULDBLOCK) => {
                    if !logged {
                        tracing::info!("waiting for another ko build using {}", dir.display());
                        logged = true;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(e) => {
                    tracing::debug!("cannot lock {} ({e}); going on without the lock", path.display());
                    return Ok(None);
                }
            }
        }
    }

    fn entry_path(&self, kind: &str, key: &str) -> PathBuf {
        self.root.join(kind).join(format!("{}.json", key_hash(key)))
    }

    /// The value stored under `kind`/`key`, if there is one, it parses, and its checksum holds.
    fn get<T: serde::de::DeserializeOwned + serde::Serialize>(&self, kind: &str, key: &str) -> Option<T> {
        let bytes = std::fs::read(self.entry_path(kind, key)).ok()?;
        let entry: Entry<T> = serde_json::from_slice(&bytes).ok()?;
        (entry.key == key_hash(key) && entry.check == check(key, &entry.value)).then_some(entry.value)
    }

    /// Stores `value` under `kind`/`key`. Best effort: a cache that cannot be written only makes
    /// the next build slower.
    fn put<T: serde::Serialize>(&self, kind: &str, key: &str, value: T) {
        let entry = Entry { key: key_hash(key), check: check(key, &value), value };
        if let Ok(bytes) = serde_json::to_vec(&entry) {
            self.write_atomic(&self.entry_path(kind, key), &bytes);
        }
    }

    /// The digests of the layer made as `key` says, if known and intact.
    pub fn layer(&self, key: &str) -> Option<LayerDigests> {
        self.get::<LayerDigests>("layers", key).filter(|d| is_digest(&d.digest) && is_digest(&d.diff_id))
    }

    /// Remembers the digests of the layer made as `key` says.
    pub fn put_layer(&self, key: &str, d: &LayerDigests) {
        self.put("layers", key, d);
    }

    /// The SBOM facts of the binary `key` names, if known and intact.
    pub fn binary_info(&self, key: &str) -> Option<crate::sbom::BinaryInfo> {
        self.get("binfo", key)
    }

    /// Remembers the SBOM facts of the binary `key` names.
    pub fn put_binary_info(&self, key: &str, info: &crate::sbom::BinaryInfo) {
        self.put("binfo", key, info);
    }

    /// A `go list` result stored under `key`, if intact.
    pub fn listed<T: serde::de::DeserializeOwned + serde::Serialize>(&self, key: &str) -> Option<T> {
        self.get("list", key)
    }

    /// Remembers a `go list` result under `key`.
    pub fn put_listed<T: serde::Serialize>(&self, key: &str, value: &T) {
        self.put("list", key, value);
    }

    fn blob_path(&self, digest: &str) -> Option<PathBuf> {
        let hex =
            digest.strip_prefix("sha256:").filter(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()))?;
        Some(self.root.join("blobs").join("sha256").join(hex))
    }

    /// The blob with `digest`, if cached and intact.
    pub fn blob(&self, digest: &str) -> Option<bytes::Bytes> {
        let bytes = std::fs::read(self.blob_path(digest)?).ok()?;
        (crate::image::sha256_digest(&bytes) == digest).then(|| bytes.into())
    }

    /// Keeps `bytes`, whose digest is `digest` (best effort).
    pub fn put_blob(&self, digest: &str, bytes: &[u8]) {
        if let Some(path) = self.blob_path(digest)
            && crate::image::sha256_digest(bytes) == digest
        {
            self.write_atomic(&path, bytes);
        }
    }

    fn write_atomic(&self, path: &Path, bytes: &[u8]) {
        let Some(dir) = path.parent() else { return };
        let written = std::fs::create_dir_all(dir).and_then(|()| {
            let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
            tmp.write_all(bytes)?;
            tmp.persist(path).map_err(|e| e.error)?;
            Ok(())
        });
        if let Err(e) = written {
            tracing::debug!("cannot write {} to the cache: {e}", path.display());
        }
    }
}

/// An exclusive lock on a cache directory, released when dropped (or when the process ends).
pub struct DirLock {
    _file: std::fs::File,
}

/// What a cache file holds: the key's hash (also its name; a key may hold environment values,
/// which are not written to disk), the value, and a checksum over both that catches a damaged
/// file.
#[derive(serde::Serialize, serde::Deserialize)]
struct Entry<T> {
    key: String,
    value: T,
    check: String,
}

/// What every key starts with: the cache format and this ko's version (an upgrade may change the
/// bytes a layer compresses to, so a new version starts afresh).
const KEY_PREFIX: &str = concat!("ko-cache 2 ", env!("CARGO_PKG_VERSION"), " ");

fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(format!("{KEY_PREFIX}{key}").as_bytes()))
}

fn check<T: serde::Serialize>(key: &str, value: &T) -> String {
    let value = serde_json::to_vec(value).unwrap_or_default();
    let mut h = Sha256::new();
    h.update(key_hash(key).as_bytes());
    h.update(b"\n");
    h.update(&value);
    hex::encode(h.finalize())
}

fn is_digest(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The Go build ID of the binary at `path` (`actionID/…/contentID`), read from its ELF
/// `.note.go.buildid` note in the first pages; `None` when there is none (then a binary is keyed
/// by its content instead). The content ID part hashes the binary itself, so equal build IDs
/// mean equal binaries.
pub fn go_build_id(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut head = Vec::with_capacity(64 * 1024);
    std::fs::File::open(path).ok()?.take(64 * 1024).read_to_end(&mut head).ok()?;
    // A note: namesz = 4, descsz, type = 4, "Go\0\0", then descsz bytes of build ID.
    let marker: &[u8] = b"\x04\x00\x00\x00";
    let mut at = 0;
    while let Some(i) =
        head[at..].windows(16).position(|w| &w[..4] == marker && &w[8..16] == b"\x04\x00\x00\x00Go\x00\x00")
    {
        let start = at + i;
        let size = u32::from_le_bytes(head[start + 4..start + 8].try_into().ok()?) as usize;
        let id = head.get(start + 16..start + 16 + size)?;
        if let Ok(id) = std::str::from_utf8(id)
            && id.contains('/')
            && id.chars().all(|c| c.is_ascii_graphic())
        {
            return Some(id.to_string());
        }
        at = start + 1;
    }
    None
}

/// sha256 of the file at `path`, for keying a binary without a build ID.
pub fn content_hash(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        use std::io::Read;
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(format!("cannot read {}", path.display()), e)),
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digests(n: u8) -> LayerDigests {
        LayerDigests {
            digest: format!("sha256:{}", hex::encode([n; 32])),
            diff_id: format!("sha256:{}", hex::encode([n + 1; 32])),
            size: 42,
        }
    }

    #[test]
    fn where_the_cache_is() {
        let t = tempfile::tempdir().unwrap();
        let (c, x, h) = (t.path().join("c"), t.path().join("x"), t.path().join("h"));
        let s = |p: &Path| p.display().to_string();
        let at = |vars: &[(&str, &str)]| Cache::from_env(&Env::from_map(vars.iter().copied())).map(|c| c.root);
        assert_eq!(at(&[("KOCACHE", &s(&c)), ("HOME", &s(&h))]), Some(c.clone()));
        assert_eq!(at(&[("KOCACHE", "off"), ("HOME", &s(&h))]), None);
        assert_eq!(at(&[("XDG_CACHE_HOME", &s(&x)), ("HOME", &s(&h))]), Some(x.join("ko")));
        assert_eq!(at(&[("HOME", &s(&h))]), Some(h.join(".cache/ko")));
        assert_eq!(at(&[]), None);
        // A cache that cannot be written is no cache, not a failed build.
        let file = t.path().join("a-file");
        std::fs::write(&file, "").unwrap();
        assert_eq!(at(&[("KOCACHE", &s(&file.join("ko")))]), None);
    }

    #[test]
    fn pruning_removes_leftovers_only() {
        let t = tempfile::tempdir().unwrap();
        let cache = Cache { root: t.path().to_path_buf() };
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(30 * 24 * 3600);
        for dir in ["tmp/ko-old", "tmp/ko-new", "bin/linux_amd64/old", "bin/linux_amd64/new"] {
            std::fs::create_dir_all(t.path().join(dir)).unwrap();
        }
        for dir in ["tmp/ko-old", "bin/linux_amd64/old"] {
            std::fs::File::open(t.path().join(dir)).unwrap().set_modified(old).unwrap();
        }
        cache.prune();
        let left = |d: &str| t.path().join(d).exists();
        assert!(
            !left("tmp/ko-old") && left("tmp/ko-new") && !left("bin/linux_amd64/old") && left("bin/linux_amd64/new")
        );
    }

    #[test]
    fn damaged_entries_are_ignored_and_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache { root: dir.path().to_path_buf() };
        assert!(cache.layer("binary k1").is_none());
        cache.put_layer("binary k1", &digests(1));
        assert_eq!(cache.layer("binary k1").map(|d| d.digest), Some(digests(1).digest));
        let path = cache.entry_path("layers", "binary k1");
        // Truncated.
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        assert!(cache.layer("binary k1").is_none());
        // A changed digest no longer matches the entry's checksum.
        cache.put_layer("binary k1", &digests(1));
        let text = std::fs::read_to_string(&path).unwrap().replace(&hex::encode([1u8; 32]), &hex::encode([9u8; 32]));
        std::fs::write(&path, text).unwrap();
        assert!(cache.layer("binary k1").is_none());
        cache.put_layer("binary k1", &digests(1));
        assert!(cache.layer("binary k1").is_some());

        let blob = b"{\"config\":1}";
        let digest = crate::image::sha256_digest(blob);
        cache.put_blob(&digest, blob);
        assert_eq!(cache.blob(&digest).as_deref(), Some(&blob[..]));
        std::fs::write(cache.blob_path(&digest).unwrap(), b"{\"config\":2}").unwrap();
        assert!(cache.blob(&digest).is_none(), "a blob that does not hash to its name is not used");
        cache.put_blob("sha256:0000", blob);
        assert!(cache.blob("sha256:0000").is_none());
    }

    #[test]
    fn reads_the_go_build_id_note() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bin");
        let id = b"aaaa/bbbb/cccc/dddd";
        let mut file = vec![0x7f, b'E', b'L', b'F'];
        file.extend([0u8; 100]);
        file.extend([4, 0, 0, 0]);
        file.extend((id.len() as u32).to_le_bytes());
        file.extend([4, 0, 0, 0]);
        file.extend(b"Go\0\0");
        file.extend(id);
        std::fs::write(&path, &file).unwrap();
        assert_eq!(go_build_id(&path).as_deref(), Some("aaaa/bbbb/cccc/dddd"));
        std::fs::write(&path, b"no note here").unwrap();
        assert_eq!(go_build_id(&path), None);
        assert_eq!(content_hash(&path).unwrap(), hex::encode(Sha256::digest(b"no note here")));
    }
}
