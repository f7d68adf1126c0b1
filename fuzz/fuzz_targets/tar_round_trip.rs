//! Fuzzes the layer writer: any entries ko may write (names without NUL, modes, mtimes, contents)
//! come back from the `tar` crate's reader, after gzip or zstd, with the same path, type, mode,
//! mtime, owner and bytes, in the same order; and the digests it reports are those of the bytes.
#![no_main]

use std::io::Read;

use ko_core::image::compress::Compression;
use ko_core::image::tar::LayerWriter;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Entry {
    name: String,
    dir: bool,
    mode: u16,
    mtime: u64,
    owner: u8,
    content: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
struct Layer {
    zstd: bool,
    entries: Vec<Entry>,
}

fuzz_target!(|layer: Layer| {
    let compression = if layer.zstd { Compression::Zstd } else { Compression::Gzip };
    let mut w = LayerWriter::new(Vec::new(), compression).unwrap();
    let mut written = Vec::new();
    for e in layer.entries.iter().take(16) {
        // File names on Linux cannot hold NUL; ko never writes an empty name (it refuses one).
        // A newline is left out too: the tar crate's reader cuts PAX records at newlines, so it
        // cannot read such a name back (Go's can; see a_long_name_with_a_newline_matches_go).
        if e.name.contains(['\0', '\n']) {
            continue;
        }
        let mode = u32::from(e.mode) & 0o7777;
        let mtime = e.mtime % 253_402_300_800;
        let result = if e.dir {
            w.append_dir_owned(&e.name, mode, mtime, u64::from(e.owner))
        } else {
            w.append_file(&e.name, mode, mtime, e.content.len() as u64, &e.content[..])
        };
        match result {
            Ok(()) => written.push((e, mode, mtime)),
            Err(err) => assert!(e.name.is_empty(), "{:?} refused: {err}", e.name),
        }
    }
    let (bytes, digests) = w.finish().unwrap();
    assert_eq!(digests.size, bytes.len() as u64);
    let tar = match compression {
        Compression::Gzip => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut out).unwrap();
            out
        }
        Compression::Zstd => zstd::decode_all(&bytes[..]).unwrap(),
    };
    let mut archive = tar::Archive::new(&tar[..]);
    let mut read = 0;
    for (entry, (e, mode, mtime)) in archive.entries().unwrap().zip(&written) {
        let mut entry = entry.unwrap();
        let h = entry.header().clone();
        let path = entry.path_bytes().into_owned();
        assert_eq!(path, e.name.as_bytes(), "path of {e:?}");
        let kind = if e.dir { tar::EntryType::Directory } else { tar::EntryType::Regular };
        assert_eq!(h.entry_type(), kind, "{e:?}");
        assert_eq!(h.mode().unwrap() & 0o7777, *mode, "{e:?}");
        assert_eq!(h.mtime().unwrap(), *mtime, "{e:?}");
        let owner = if e.dir { u64::from(e.owner) } else { 0 };
        assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (owner, owner), "{e:?}");
        let mut body = Vec::new();
        entry.read_to_end(&mut body).unwrap();
        assert_eq!(body, if e.dir { &[][..] } else { &e.content[..] }, "{e:?}");
        read += 1;
    }
    assert_eq!(read, written.len());
});
