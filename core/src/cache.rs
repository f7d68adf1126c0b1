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
    /// The cache `env` names, or `None` when it is turned off (or there is no home to put it in).
    pub fn from_env(env: &Env) -> Option<Cache> {
        let root = match env.get_os("KOCACHE") {
            Some(v) if v == "off" => return None,
            Some(v) => PathBuf::from(v),
            None => env
                .path("XDG_CACHE_HOME")
                .map(|d| d.join("ko"))
                .or_else(|| env.home().map(|h| h.join(".cache").join("ko")))?,
        };
        Some(Cache { root })
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

    /// Holds `dir`'s lock exclusively until the guard is dropped (waiting for other holders).
    pub async fn lock(dir: &Path) -> Result<DirLock> {
        let path = dir.join("lock");
        crate::blocking::run("cache lock", move |_| {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
            rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
                .map_err(|e| Error::io(format!("cannot lock {}", path.display()), e.into()))?;
            Ok(DirLock { _file: file })
        })
        .await
    }

    fn entry_path(&self, kind: &str, key: &str) -> PathBuf {
        self.root.join(kind).join(format!("{}.json", hex::encode(Sha256::digest(key.as_bytes()))))
    }

    /// The value stored under `kind`/`key`, if there is one, it parses, and its checksum holds.
    fn get<T: serde::de::DeserializeOwned + serde::Serialize>(&self, kind: &str, key: &str) -> Option<T> {
        let bytes = std::fs::read(self.entry_path(kind, key)).ok()?;
        let entry: Entry<T> = serde_json::from_slice(&bytes).ok()?;
        (entry.key == key && entry.check == check(key, &entry.value)).then_some(entry.value)
    }

    /// Stores `value` under `kind`/`key`. Best effort: a cache that cannot be written only makes
    /// the next build slower.
    fn put<T: serde::Serialize>(&self, kind: &str, key: &str, value: T) {
        let entry = Entry { key: key.to_string(), check: check(key, &value), value };
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

/// What a cache file holds: the full key (the file name is its hash), the value, and a checksum
/// over both that catches a damaged file.
#[derive(serde::Serialize, serde::Deserialize)]
struct Entry<T> {
    key: String,
    value: T,
    check: String,
}

fn check<T: serde::Serialize>(key: &str, value: &T) -> String {
    let value = serde_json::to_vec(value).unwrap_or_default();
    let mut h = Sha256::new();
    h.update(key.as_bytes());
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
        let at = |vars: &[(&str, &str)]| Cache::from_env(&Env::from_map(vars.iter().copied())).map(|c| c.root);
        assert_eq!(at(&[("KOCACHE", "/c"), ("HOME", "/h")]), Some(PathBuf::from("/c")));
        assert_eq!(at(&[("KOCACHE", "off"), ("HOME", "/h")]), None);
        assert_eq!(at(&[("XDG_CACHE_HOME", "/x"), ("HOME", "/h")]), Some(PathBuf::from("/x/ko")));
        assert_eq!(at(&[("HOME", "/h")]), Some(PathBuf::from("/h/.cache/ko")));
        assert_eq!(at(&[]), None);
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
