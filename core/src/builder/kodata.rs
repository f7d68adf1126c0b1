//! The kodata layer: `<package dir>/kodata/**` shipped at `/var/run/ko/**` (`$KO_DATA_PATH`),
//! laid out as upstream lays it out — the three parent directories, then every file (symlinks
//! dereferenced, symlinked directories walked) in lexical walk order, each directory before its
//! contents, all mode 0555, owned by root, with one fixed mtime.
//!
//! Windows images lay a layer out as Windows expects it: `Hives/`, and the file system under
//! `Files/` (`Files/var/run/ko/**`), each file with the security descriptor upstream gives it
//! (`MSWINDOWS.rawsd`); symlinks are skipped, as upstream skips them there.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::blocking::{Abandoned, Checked};
use crate::error::{Error, Result};
use crate::image::compress::Compression;
use crate::image::tar::{LayerDigests, LayerWriter};

/// Where kodata lives in the image.
pub const KODATA_ROOT: &str = "/var/run/ko";

/// The PAX record Windows reads a file's security descriptor from, and the value upstream writes
/// (owner and group BUILTIN\Users, `O:BUG:BU`), without which Windows cannot run the binary.
pub const WINDOWS_SD: (&str, &[u8]) =
    ("MSWINDOWS.rawsd", b"AQAAgBQAAAAkAAAAAAAAAAAAAAABAgAAAAAABSAAAAAhAgAAAQIAAAAAAAUgAAAAIQIAAA==");

/// How a layer of ko's is laid out: for a Linux (or any other Unix) image, or a Windows one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    Linux,
    Windows,
}

impl Layout {
    /// The layout for images of `os`.
    pub fn for_os(os: &str) -> Layout {
        if os == "windows" { Layout::Windows } else { Layout::Linux }
    }

    /// What a layer cache key adds for this layout (nothing for Linux, whose keys predate it).
    pub fn key(self) -> &'static str {
        match self {
            Layout::Linux => "",
            Layout::Windows => " windows",
        }
    }
}

/// Writes the kodata layer for the package in `package_dir` to `out`. Symlink targets must stay
/// inside `allowed_root`. Stops early, with an error, once `abandoned` is raised.
#[allow(clippy::too_many_arguments)]
pub fn write_layer(
    package_dir: &Path,
    allowed_root: &Path,
    layout: Layout,
    mtime: u64,
    out: &Path,
    compression: Compression,
    abandoned: &Abandoned,
) -> Result<LayerDigests> {
    let mut w = LayerWriter::create(out, compression)?;
    walk(package_dir, allowed_root, layout, &mut Writing { w: &mut w, mtime, layout, abandoned })?;
    w.finish().map(|(_, d)| d)
}

/// What the kodata layer of `package_dir` would hold, without reading any file: each entry's
/// path in the image, its source, size and modification time, hashed. Equal fingerprints give
/// equal layers (for the layer cache); an edited, added or removed file changes it.
pub fn fingerprint(package_dir: &Path, allowed_root: &Path, layout: Layout) -> Result<String> {
    let mut f = Fingerprint(Sha256::new());
    walk(package_dir, allowed_root, layout, &mut f)?;
    Ok(hex::encode(f.0.finalize()))
}

/// Receives the kodata layer's entries, in layer order.
trait Entries {
    fn dir(&mut self, image_path: &str) -> Result<()>;
    fn file(&mut self, image_path: &str, source: &Path, meta: &std::fs::Metadata) -> Result<()>;
}

struct Writing<'a, W: Write + Send> {
    w: &'a mut LayerWriter<W>,
    mtime: u64,
    layout: Layout,
    abandoned: &'a Abandoned,
}

impl<W: Write + Send> Entries for Writing<'_, W> {
    fn dir(&mut self, image_path: &str) -> Result<()> {
        self.abandoned.check().map_err(|e| Error::io("kodata", e))?;
        self.w.append_dir(image_path, 0o555, self.mtime)
    }

    fn file(&mut self, image_path: &str, source: &Path, meta: &std::fs::Metadata) -> Result<()> {
        // Checked again at open: a file swapped for a FIFO since the walk must not block the build.
        let file = crate::files::open_regular(source).map_err(|e| {
            Error::io(
                format!("kodata: cannot read {} (kodata holds regular files and directories)", source.display()),
                e,
            )
        })?;
        let records: &[(&str, &[u8])] = match self.layout {
            Layout::Linux => &[],
            Layout::Windows => &[WINDOWS_SD],
        };
        self.w.append_file_with(image_path, 0o555, self.mtime, meta.len(), Checked::new(file, self.abandoned), records)
    }
}

struct Fingerprint(Sha256);

impl Entries for Fingerprint {
    // The image paths differ by layout (and Windows skips symlinks), so the fingerprint does too.
    fn dir(&mut self, image_path: &str) -> Result<()> {
        self.0.update(format!("d {image_path}\n"));
        Ok(())
    }

    fn file(&mut self, image_path: &str, source: &Path, meta: &std::fs::Metadata) -> Result<()> {
        use std::os::unix::fs::MetadataExt;
        // The change time too: a file replaced with its old size and modification time restored
        // (an archive unpacked over it) still gets a new one.
        let line = format!(
            "f {image_path} {} {} {}.{} {}.{} {}\n",
            source.display(),
            meta.len(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec(),
            meta.ino()
        );
        self.0.update(line);
        Ok(())
    }
}

/// The layer's entries: the parent directories, then `<package_dir>/kodata/**`.
fn walk(package_dir: &Path, allowed_root: &Path, layout: Layout, entries: &mut dyn Entries) -> Result<()> {
    let (dirs, chroot): (&[&str], &str) = match layout {
        Layout::Linux => (&["/var", "/var/run", KODATA_ROOT], KODATA_ROOT),
        Layout::Windows => (&["Hives", "Files", "Files/var", "Files/var/run", "Files/var/run/ko"], "Files/var/run/ko"),
    };
    for dir in dirs {
        entries.dir(dir)?;
    }
    let root = package_dir.join("kodata");
    if root.exists() {
        let allowed = allowed_root
            .canonicalize()
            .map_err(|e| Error::io(format!("cannot resolve {}", allowed_root.display()), e))?;
        let skip_symlinks = layout == Layout::Windows;
        let mut walker = Walker { entries, allowed: &allowed, ancestors: Vec::new(), skip_symlinks };
        walker.walk(&root, chroot)?;
    }
    Ok(())
}

struct Walker<'a> {
    entries: &'a mut dyn Entries,
    allowed: &'a Path,
    /// Directories being walked, to catch symlink loops.
    ancestors: Vec<PathBuf>,
    /// Windows images: symlinks are left out (a cross-built image cannot hold them).
    skip_symlinks: bool,
}

impl Walker<'_> {
    fn walk(&mut self, dir: &Path, chroot: &str) -> Result<()> {
        let read_err = |e| Error::io(format!("cannot read kodata directory {}", dir.display()), e);
        let mut entries: Vec<_> =
            std::fs::read_dir(dir).map_err(read_err)?.collect::<std::io::Result<_>>().map_err(read_err)?;
        // filepath.Walk order: lexical by name.
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let host_path = entry.path();
            let name = entry.file_name();
            let name = name
                .to_str()
                .ok_or_else(|| Error::build(format!("kodata file name {} is not valid UTF-8", host_path.display())))?;
            let image_path = format!("{chroot}/{name}");
            let file_type = entry.file_type().map_err(read_err)?;
            if self.skip_symlinks && file_type.is_symlink() {
                tracing::info!("skipping symlink in kodata for windows: {name}");
                continue;
            }
            if file_type.is_dir() {
                self.entries.dir(&image_path)?;
                self.walk(&host_path, &image_path)?;
                continue;
            }
            let target = host_path
                .canonicalize()
                .map_err(|e| Error::io(format!("kodata: cannot resolve {}", host_path.display()), e))?;
            if !target.starts_with(self.allowed) {
                return Err(Error::build(format!(
                    "kodata: {} points to {}, outside {}; symlinks in kodata must stay inside the repository (set KO_DATA_PATH_ALLOWED_ROOT to widen this)",
                    host_path.display(),
                    target.display(),
                    self.allowed.display()
                )));
            }
            let meta = std::fs::metadata(&target)
                .map_err(|e| Error::io(format!("kodata: cannot stat {}", target.display()), e))?;
            if meta.is_dir() {
                if self.ancestors.contains(&target) {
                    return Err(Error::build(format!("kodata: symlink loop at {}", host_path.display())));
                }
                self.entries.dir(&image_path)?;
                self.ancestors.push(target.clone());
                self.walk(&target, &image_path)?;
                self.ancestors.pop();
                continue;
            }
            // A FIFO, socket or device would block or never end: only regular files are data.
            if !meta.is_file() {
                return Err(Error::build(format!(
                    "kodata: {} is not a regular file, a directory or a symlink to one; remove it from kodata",
                    host_path.display()
                )));
            }
            self.entries.file(&image_path, &target, &meta)?;
        }
        Ok(())
    }
}

/// The boundary for kodata symlink targets: `override_root` (`KO_DATA_PATH_ALLOWED_ROOT`), else
/// the enclosing git repository, else the Go module, else the package itself.
pub fn allowed_root(package_dir: &Path, module_dir: Option<&Path>, override_root: Option<&Path>) -> PathBuf {
    if let Some(root) = override_root {
        return root.to_path_buf();
    }
    package_dir.ancestors().find(|d| d.join(".git").exists()).or(module_dir).unwrap_or(package_dir).to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn entries(layer: &Path) -> Vec<(String, u32, u64, String)> {
        let gz = std::fs::read(layer).unwrap();
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut tar).unwrap();
        let mut a = ::tar::Archive::new(&tar[..]);
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let h = e.header().clone();
                let mut body = String::new();
                e.read_to_string(&mut body).unwrap();
                (String::from_utf8(h.path_bytes().to_vec()).unwrap(), h.mode().unwrap(), h.mtime().unwrap(), body)
            })
            .collect()
    }

    #[test]
    fn lays_out_kodata_like_upstream() {
        let t = tempfile::tempdir().unwrap();
        let pkg = t.path().join("cmd/app");
        std::fs::create_dir_all(pkg.join("kodata/b/c")).unwrap();
        std::fs::write(pkg.join("kodata/b/c/deep.txt"), "deep").unwrap();
        std::fs::write(pkg.join("kodata/a.txt"), "a").unwrap();
        std::fs::write(t.path().join("README"), "readme").unwrap();
        std::os::unix::fs::symlink("../../../README", pkg.join("kodata/link")).unwrap();
        let out = t.path().join("layer");
        write_layer(&pkg, t.path(), Layout::Linux, 42, &out, Compression::Gzip, &Abandoned::default()).unwrap();
        let got = entries(&out);
        let names: Vec<_> = got.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "/var",
                "/var/run",
                "/var/run/ko",
                "/var/run/ko/a.txt",
                "/var/run/ko/b",
                "/var/run/ko/b/c",
                "/var/run/ko/b/c/deep.txt",
                "/var/run/ko/link"
            ]
        );
        assert!(got.iter().all(|e| e.1 == 0o555 && e.2 == 42));
        assert_eq!(got[7].3, "readme");
    }

    #[test]
    fn the_fingerprint_follows_what_the_layer_would_hold() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("kodata/sub")).unwrap();
        std::fs::write(t.path().join("kodata/sub/a"), "one").unwrap();
        let f1 = fingerprint(t.path(), t.path(), Layout::Linux).unwrap();
        assert_eq!(fingerprint(t.path(), t.path(), Layout::Linux).unwrap(), f1);
        std::fs::write(t.path().join("kodata/sub/a"), "two, longer").unwrap();
        let f2 = fingerprint(t.path(), t.path(), Layout::Linux).unwrap();
        assert_ne!(f2, f1, "an edited file");
        std::fs::write(t.path().join("kodata/b"), "").unwrap();
        assert_ne!(fingerprint(t.path(), t.path(), Layout::Linux).unwrap(), f2, "an added file");
    }

    #[test]
    fn refuses_symlinks_leaving_the_root() {
        let t = tempfile::tempdir().unwrap();
        let pkg = t.path().join("app");
        std::fs::create_dir_all(pkg.join("kodata")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", pkg.join("kodata/escape")).unwrap();
        let err = write_layer(
            &pkg,
            &pkg,
            Layout::Linux,
            0,
            &t.path().join("layer"),
            Compression::Gzip,
            &Abandoned::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("outside"), "{err}");
    }

    #[test]
    fn refuses_what_is_not_a_file_or_directory() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("kodata")).unwrap();
        let fifo = t.path().join("kodata/pipe");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let err = write_layer(
            t.path(),
            t.path(),
            Layout::Linux,
            0,
            &t.path().join("layer"),
            Compression::Gzip,
            &Abandoned::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("kodata/pipe is not a regular file"), "{err}");
    }

    #[test]
    fn windows_layout_puts_files_under_files_and_skips_symlinks() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("kodata/sub")).unwrap();
        std::fs::write(t.path().join("kodata/sub/a.txt"), "a").unwrap();
        std::os::unix::fs::symlink("sub/a.txt", t.path().join("kodata/link")).unwrap();
        let out = t.path().join("layer");
        write_layer(t.path(), t.path(), Layout::Windows, 0, &out, Compression::Gzip, &Abandoned::default()).unwrap();
        let names: Vec<String> = entries(&out).into_iter().map(|e| e.0).collect();
        assert_eq!(
            names,
            [
                "Hives",
                "Files",
                "Files/var",
                "Files/var/run",
                "Files/var/run/ko",
                "Files/var/run/ko/sub",
                "Files/var/run/ko/sub/a.txt"
            ]
        );
        assert_ne!(
            fingerprint(t.path(), t.path(), Layout::Windows).unwrap(),
            fingerprint(t.path(), t.path(), Layout::Linux).unwrap()
        );
    }

    #[test]
    fn missing_kodata_still_makes_the_directories() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("layer");
        write_layer(t.path(), t.path(), Layout::Linux, 0, &out, Compression::Gzip, &Abandoned::default()).unwrap();
        assert_eq!(entries(&out).len(), 3);
    }
}
