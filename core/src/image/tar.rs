//! Layer writing: tar entries encoded exactly as Go's `archive/tar` encodes them (USTAR, Go's
//! `%06o\0 ` checksum, zeroed device numbers), so the uncompressed layer — and so its diffid —
//! equals upstream ko's for the same entries; then compressed on every core ([`super::compress`]);
//! with both sha256 digests and the size computed in the same streaming pass. Nothing is held in
//! memory beyond the codec buffers.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use sha2::{Digest as _, Sha256};

use super::compress::{self, Compression, Compressor};
use crate::error::{Error, Result};

const NAME_SIZE: usize = 100;
const PREFIX_SIZE: usize = 155;

/// A writer that hashes and counts everything passing through it.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashingWriter { inner, hasher: Sha256::new(), written: 0 }
    }

    pub(crate) fn finish(self) -> (W, String, u64) {
        (self.inner, format!("sha256:{}", hex::encode(self.hasher.finalize())), self.written)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The digests and size of a finished layer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerDigests {
    /// sha256 of the compressed bytes (the blob's digest).
    pub digest: String,
    /// sha256 of the uncompressed tar (the diff id).
    pub diff_id: String,
    /// Size of the compressed bytes.
    pub size: u64,
}

type Pipeline<W> = HashingWriter<Compressor<HashingWriter<W>>>;

/// Writes a compressed tar layer into `W` (a file, or memory for small generated layers), entry
/// by entry.
pub struct LayerWriter<W: Write + Send> {
    tar: ::tar::Builder<Pipeline<W>>,
}

impl LayerWriter<BufWriter<File>> {
    /// Creates the file at `path` and starts a layer there.
    pub fn create(path: &Path, compression: Compression) -> Result<Self> {
        let file = File::create(path).map_err(|e| Error::io(format!("cannot create {}", path.display()), e))?;
        Self::new(BufWriter::with_capacity(1 << 20, file), compression)
    }
}

impl<W: Write + Send> LayerWriter<W> {
    /// Starts a layer written into `out`, compressed on every core.
    pub fn new(out: W, compression: Compression) -> Result<Self> {
        let compressor =
            Compressor::new(compression, HashingWriter::new(out), compress::threads()).map_err(write_error)?;
        Ok(LayerWriter { tar: ::tar::Builder::new(HashingWriter::new(compressor)) })
    }

    /// Appends a directory entry owned by root.
    pub fn append_dir(&mut self, name: &str, mode: u32, mtime: u64) -> Result<()> {
        self.append_dir_owned(name, mode, mtime, 0)
    }

    /// Appends a directory entry owned by `owner` (uid and gid).
    pub fn append_dir_owned(&mut self, name: &str, mode: u32, mtime: u64, owner: u64) -> Result<()> {
        let header = self.start_entry(name, ::tar::EntryType::Directory, mode, mtime, 0, owner, &[])?;
        self.tar.append(&header, io::empty()).map_err(write_error)
    }

    /// Appends a regular file of exactly `size` bytes read from `data`.
    pub fn append_file(&mut self, name: &str, mode: u32, mtime: u64, size: u64, data: impl Read) -> Result<()> {
        self.append_file_with(name, mode, mtime, size, data, &[])
    }

    /// Appends a regular file carrying PAX `records` (`SCHILY.xattr.…` extended attributes,
    /// `MSWINDOWS.rawsd`), written as Go's `archive/tar` writes a header with `PAXRecords`.
    pub fn append_file_with(
        &mut self,
        name: &str,
        mode: u32,
        mtime: u64,
        size: u64,
        data: impl Read,
        records: &[(&str, &[u8])],
    ) -> Result<()> {
        let header = self.start_entry(name, ::tar::EntryType::Regular, mode, mtime, size, 0, records)?;
        let mut counted = CountingReader { inner: data.take(size), read: 0 };
        self.tar.append(&header, &mut counted).map_err(write_error)?;
        if counted.read != size {
            return Err(Error::build(format!("{name} changed size while it was being added to a layer")));
        }
        Ok(())
    }

    /// The header for an entry, as Go writes it: USTAR when the name fits (whole, or split into
    /// prefix and name) and there are no `records`; otherwise a PAX extended header first, with
    /// the records and, when the name does not fit the 100-byte field as ASCII, a `path` record,
    /// sorted by key, and then the entry's own header with Go's best-effort ASCII name.
    #[allow(clippy::too_many_arguments)]
    fn start_entry(
        &mut self,
        name: &str,
        kind: ::tar::EntryType,
        mode: u32,
        mtime: u64,
        size: u64,
        owner: u64,
        records: &[(&str, &[u8])],
    ) -> Result<::tar::Header> {
        if name.is_empty() {
            return Err(Error::build("cannot add an entry with an empty name to a layer"));
        }
        if records.is_empty()
            && let Some((prefix, suffix)) = split_ustar_path(name)
        {
            return go_header(suffix, prefix, kind, mode, mtime, size, owner);
        }
        let mut all: Vec<(&str, &[u8])> = records.to_vec();
        if name.len() > NAME_SIZE || !name.is_ascii() {
            all.push(("path", name.as_bytes()));
        }
        all.sort_by(|a, b| a.0.cmp(b.0));
        let data: Vec<u8> = all.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
        // Go names the extended header path.Join(dir, "PaxHeaders.0", file).
        let pax_name = match name.rfind('/') {
            Some(i) => format!("{}/PaxHeaders.0/{}", &name[..i], &name[i + 1..]),
            None => format!("PaxHeaders.0/{name}"),
        };
        // Go writes the extended header's device fields as NULs, unlike an entry's zeros.
        let x_name = best_effort_name(&pax_name);
        let mut x =
            ustar_fields(x_name.trim_end_matches('/'), "", ::tar::EntryType::XHeader, 0, 0, data.len() as u64, 0);
        set_go_checksum(&mut x);
        self.tar.append(&x, &data[..]).map_err(write_error)?;
        go_header(&best_effort_name(name), "", kind, mode, mtime, size, owner)
    }

    /// Writes the tar trailer, flushes the gzip stream and returns the output with the digests.
    pub fn finish(self) -> Result<(W, LayerDigests)> {
        let uncompressed = self.tar.into_inner().map_err(write_error)?;
        let (compressor, diff_id, _) = uncompressed.finish();
        let compressed = compressor.finish().map_err(write_error)?;
        let (mut out, digest, size) = compressed.finish();
        out.flush().map_err(write_error)?;
        Ok((out, LayerDigests { digest, diff_id, size }))
    }
}

fn write_error(e: io::Error) -> Error {
    Error::io("cannot write layer", e)
}

struct CountingReader<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

/// A USTAR header laid out byte for byte as Go's `archive/tar` writes it, for a name already
/// split into `name` (at most 100 bytes) and `prefix` (at most 155).
fn go_header(
    name: &str,
    prefix: &str,
    kind: ::tar::EntryType,
    mode: u32,
    mtime: u64,
    size: u64,
    owner: u64,
) -> Result<::tar::Header> {
    let mut h = ustar_fields(name, prefix, kind, mode, mtime, size, owner);
    h.set_device_major(0).and_then(|_| h.set_device_minor(0)).map_err(|e| Error::build(e.to_string()))?;
    set_go_checksum(&mut h);
    Ok(h)
}

/// A USTAR header with names, type, mode, owner, size and mtime set; no device numbers, no checksum.
fn ustar_fields(
    name: &str,
    prefix: &str,
    kind: ::tar::EntryType,
    mode: u32,
    mtime: u64,
    size: u64,
    owner: u64,
) -> ::tar::Header {
    let mut h = ::tar::Header::new_ustar();
    set_name(&mut h, name, prefix);
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(owner);
    h.set_gid(owner);
    h.set_size(size);
    h.set_mtime(mtime);
    h
}

/// Copies `name` and `prefix` into their fields, cut to the field sizes as Go's formatter cuts.
fn set_name(h: &mut ::tar::Header, name: &str, prefix: &str) {
    let ustar = h.as_ustar_mut().expect("new_ustar() makes a USTAR header");
    let (name, prefix) = (name.as_bytes(), prefix.as_bytes());
    let (n, p) = (name.len().min(NAME_SIZE), prefix.len().min(PREFIX_SIZE));
    ustar.name[..n].copy_from_slice(&name[..n]);
    ustar.prefix[..p].copy_from_slice(&prefix[..p]);
}

/// Go's `toASCII`: the name without its non-ASCII characters (the header field of a PAX entry).
fn best_effort_name(name: &str) -> String {
    name.chars().filter(char::is_ascii).collect()
}

/// One PAX record, `"<len> <key>=<value>\n"`, where `<len>` counts the whole record. Values
/// are bytes: an extended attribute's may hold anything but NUL-free keys.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3;
    let mut len = body + body.to_string().len();
    if len.to_string().len() != body.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut record = format!("{len} {key}=").into_bytes();
    record.extend_from_slice(value);
    record.push(b'\n');
    record
}

/// Go's checksum field is six octal digits, a NUL and a space; tar-rs writes seven and a NUL.
fn set_go_checksum(h: &mut ::tar::Header) {
    h.as_old_mut().cksum = *b"        ";
    let sum: u32 = h.as_bytes().iter().map(|&b| u32::from(b)).sum();
    h.as_old_mut().cksum.copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

/// Go's `splitUSTARPath`: names up to 100 bytes go whole into `name`; longer ones are split at a
/// '/' into a prefix of at most 155 bytes and a name of at most 100. `None` when USTAR cannot hold it.
fn split_ustar_path(name: &str) -> Option<(&str, &str)> {
    if !name.is_ascii() || name.is_empty() {
        return None;
    }
    if name.len() <= NAME_SIZE {
        return Some(("", name));
    }
    let mut length = name.len();
    if length > PREFIX_SIZE + 1 {
        length = PREFIX_SIZE + 1;
    } else if name.as_bytes()[length - 1] == b'/' {
        length -= 1;
    }
    let i = name[..length].rfind('/')?;
    let (plen, nlen) = (i, name.len() - i - 1);
    if i == 0 || nlen > NAME_SIZE || nlen == 0 || plen > PREFIX_SIZE {
        return None;
    }
    Some((&name[..i], &name[i + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_matches_go_layout() {
        let h = go_header("/ko-app/app", "", ::tar::EntryType::Regular, 0o555, 0, 5, 0).unwrap();
        let b = h.as_bytes();
        assert_eq!(&b[0..11], b"/ko-app/app");
        assert_eq!(&b[100..108], b"0000555\0");
        assert_eq!(&b[108..116], b"0000000\0");
        assert_eq!(&b[124..136], b"00000000005\0");
        assert_eq!(&b[136..148], b"00000000000\0");
        assert_eq!(b[156], b'0');
        assert_eq!(&b[257..265], b"ustar\x0000");
        assert_eq!(&b[329..337], b"0000000\0");
        assert_eq!(&b[337..345], b"0000000\0");
        assert_eq!(&b[154..156], b"\0 ");
        let sum: u32 =
            b.iter().enumerate().map(|(i, &x)| if (148..156).contains(&i) { 32 } else { u32::from(x) }).sum();
        assert_eq!(std::str::from_utf8(&b[148..154]).unwrap(), format!("{sum:06o}"));
    }

    /// Names USTAR cannot hold get Go's PAX records. The digest is what Go 1.26's `archive/tar`
    /// writes for the same three entries (checked with a throwaway Go program).
    #[test]
    fn pax_fallback_matches_go() {
        let long = format!("/var/run/ko/{}/{}/file.txt", "d".repeat(150), "e".repeat(120));
        let mut w = LayerWriter::new(Vec::new(), Compression::Gzip).unwrap();
        w.append_dir("/var", 0o555, 0).unwrap();
        for name in ["/var/run/ko/café.txt", long.as_str()] {
            w.append_file(name, 0o555, 0, 3, &b"hi\n"[..]).unwrap();
        }
        let (_, digests) = w.finish().unwrap();
        assert_eq!(digests.diff_id, "sha256:85b50fd4de4bb92f7b63a377c9cbb7c2053f7e7163e61c71add221c97a43c69b");
    }

    /// A long name holding a newline goes into a PAX `path` record as Go writes it (the digest is
    /// Go 1.26's `archive/tar` for that header, whose reader gives the name back whole). Found by
    /// fuzzing: the tar crate's reader cuts PAX records at newlines, so it is no oracle for these.
    #[test]
    fn a_long_name_with_a_newline_matches_go() {
        let name = format!("{}\nB", "y".repeat(119));
        let mut w = LayerWriter::new(Vec::new(), Compression::Gzip).unwrap();
        w.append_file(&name, 0o555, 0, 3, &b"hi\n"[..]).unwrap();
        let (_, digests) = w.finish().unwrap();
        assert_eq!(digests.diff_id, "sha256:0e57a60426d2f98b4557226f1d953af9930633ab307dbc7203f101e5b02e205a");
    }

    /// Entries with PAX records (a capability attribute, Windows' security descriptor, one
    /// with a long path as well, one at the root): the digest is what Go 1.26's `archive/tar`
    /// writes for headers with these `PAXRecords` (checked with a throwaway Go program).
    #[test]
    fn pax_records_match_go() {
        let caps: &[u8] = &[0, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let sd: &[u8] = b"AQAAgBQAAAAkAAAAAAAAAAAAAAABAgAAAAAABSAAAAAhAgAAAQIAAAAAAAUgAAAAIQIAAA==";
        let long = format!("Files/var/run/ko/{}/file.txt", "d".repeat(120));
        let entries: [(&str, (&str, &[u8])); 4] = [
            ("/ko-app/app", ("SCHILY.xattr.security.capability", caps)),
            ("Files/ko-app/app", ("MSWINDOWS.rawsd", sd)),
            (long.as_str(), ("MSWINDOWS.rawsd", sd)),
            ("/x", ("MSWINDOWS.rawsd", sd)),
        ];
        let mut w = LayerWriter::new(Vec::new(), Compression::Gzip).unwrap();
        for (name, record) in entries {
            w.append_file_with(name, 0o555, 0, 3, &b"hi\n"[..], &[record]).unwrap();
        }
        let (_, digests) = w.finish().unwrap();
        assert_eq!(digests.diff_id, "sha256:804d3b710e4191d3acbd4cdc50606a4769b1795e6c5fd41d07a74ace127c7837");
    }

    #[test]
    fn long_paths_split_like_go() {
        let long = format!("/var/run/ko/{}/file.txt", "d".repeat(120));
        let (prefix, name) = split_ustar_path(&long).unwrap();
        assert_eq!(prefix, format!("/var/run/ko/{}", "d".repeat(120)));
        assert_eq!(name, "file.txt");
        assert!(split_ustar_path(&"x".repeat(101)).is_none());
        assert!(split_ustar_path("/var/run/ko/é").is_none());
    }

    #[test]
    fn layer_digests_describe_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("layer.tar.gz");
        let mut w = LayerWriter::create(&path, Compression::Gzip).unwrap();
        w.append_dir("ko-app", 0o555, 0).unwrap();
        w.append_file("/ko-app/x", 0o555, 0, 3, &b"abc"[..]).unwrap();
        let (_, out) = w.finish().unwrap();
        let gz = std::fs::read(&path).unwrap();
        assert_eq!(out.size, gz.len() as u64);
        assert_eq!(out.digest, crate::image::sha256_digest(&gz));
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut tar).unwrap();
        assert_eq!(out.diff_id, crate::image::sha256_digest(&tar));
        assert_eq!(tar.len(), 512 * 5, "two headers, one data block, two zero blocks, no record padding");
        assert!(w_is_err_on_short_read());
    }

    fn w_is_err_on_short_read() -> bool {
        let dir = tempfile::tempdir().unwrap();
        let mut w = LayerWriter::create(&dir.path().join("l"), Compression::Gzip).unwrap();
        w.append_file("f", 0o555, 0, 10, &b"abc"[..]).is_err()
    }
}
