//! The build information Go embeds in every binary it links (what `go version -m` prints), read
//! straight from the file: the `.go.buildinfo` section of an ELF binary, or the start of a
//! Windows (PE) binary's data section. Reading it takes well under a millisecond, where running
//! `go version -m` takes about 35 ms. Binaries from Go 1.18 on are understood (their strings are
//! stored inline); older ones are refused with a message saying so.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

const MAGIC: &[u8] = b"\xff Go buildinf:";
const HEADER_SIZE: usize = 32;
const ALIGN: usize = 16;
/// Set in the header's flags byte when the version and module strings follow the header.
const FLAGS_VERSION_INLINE: u8 = 0x2;
/// The longest data section read looking for the header (it sits at the section's start).
const MAX_SECTION: u64 = 16 << 20;

/// A module as build information lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Module {
    pub path: String,
    pub version: String,
    /// The `h1:` checksum, when go.sum had one.
    pub sum: String,
}

/// What a Go binary says about how it was built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildInfo {
    /// `go1.26.8`.
    pub go_version: String,
    /// The main package's import path.
    pub path: String,
    /// The main module (none in GOPATH mode).
    pub main: Option<Module>,
    /// Every module the binary holds code from, in the order go lists them.
    pub deps: Vec<Module>,
}

/// Reads the build information of the binary at `path`.
pub fn read(path: &Path) -> Result<BuildInfo> {
    let file = File::open(path).map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    let fail = |why: &str| Error::build(format!("cannot read the Go build information of {}: {why}", path.display()));
    let io = |e: std::io::Error| Error::io(format!("cannot read {}", path.display()), e);
    let mut head = [0u8; 64];
    let n = file.read_at(&mut head, 0).map_err(io)?;
    let head = &head[..n];
    let (offset, size) = if head.starts_with(b"\x7fELF") {
        elf_section(&file, head, b".go.buildinfo").map_err(io)?.ok_or_else(|| fail("no .go.buildinfo section"))?
    } else if head.starts_with(b"MZ") {
        pe_data_section(&file).map_err(io)?.ok_or_else(|| fail("no data section"))?
    } else {
        return Err(fail("not an ELF or Windows executable"));
    };
    let mut data = vec![0u8; size.min(MAX_SECTION) as usize];
    let n = file.read_at(&mut data, offset).map_err(io)?;
    data.truncate(n);
    let at = (0..data.len().saturating_sub(HEADER_SIZE - 1))
        .step_by(ALIGN)
        .find(|&i| data[i..].starts_with(MAGIC))
        .ok_or_else(|| fail("no build information header (not built by go?)"))?;
    let header = &data[at..];
    if header[15] & FLAGS_VERSION_INLINE == 0 {
        return Err(fail("it was built by a Go older than 1.18; build with Go 1.18 or later, or turn SBOMs off"));
    }
    let (version, rest) = uvarint_string(&header[HEADER_SIZE..]).ok_or_else(|| fail("truncated version"))?;
    let (modinfo, _) = uvarint_string(rest).ok_or_else(|| fail("truncated module information"))?;
    // The module information is framed by 16-byte sentinels.
    let modinfo = if modinfo.len() >= 33 && modinfo[modinfo.len() - 17] == b'\n' {
        &modinfo[16..modinfo.len() - 16]
    } else {
        &[][..]
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    Ok(parse_modinfo(text(version), &text(modinfo)))
}

/// The `path`, `mod` and `dep` lines of the module information, as `debug.ParseBuildInfo`
/// reads them; `=>` replacement lines are passed over, so a replaced module keeps the path and
/// version it is required at (as upstream's SBOM lists it).
fn parse_modinfo(go_version: String, modinfo: &str) -> BuildInfo {
    let mut info = BuildInfo { go_version, path: String::new(), main: None, deps: Vec::new() };
    let module = |fields: &[&str]| Module {
        path: fields.first().unwrap_or(&"").to_string(),
        version: fields.get(1).unwrap_or(&"").to_string(),
        sum: fields.get(2).unwrap_or(&"").to_string(),
    };
    for line in modinfo.lines() {
        let mut fields = line.split('\t');
        let kind = fields.next().unwrap_or("");
        let fields: Vec<&str> = fields.collect();
        match kind {
            "path" => info.path = fields.first().unwrap_or(&"").to_string(),
            "mod" => info.main = Some(module(&fields)),
            "dep" => info.deps.push(module(&fields)),
            _ => {}
        }
    }
    info
}

/// A uvarint-length-prefixed string and what follows it.
fn uvarint_string(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let (mut len, mut shift, mut used) = (0u64, 0u32, 0usize);
    for &byte in b.iter().take(10) {
        used += 1;
        len |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            let len = usize::try_from(len).ok()?;
            let rest = &b[used..];
            return (rest.len() >= len).then(|| rest.split_at(len));
        }
        shift += 7;
    }
    None
}

/// The file offset and size of the ELF section called `name`.
fn elf_section(file: &File, head: &[u8], name: &[u8]) -> std::io::Result<Option<(u64, u64)>> {
    if head.len() < 64 {
        return Ok(None);
    }
    let wide = head[4] == 2;
    let big = head[5] == 2;
    let u16_at = |b: &[u8], at: usize| {
        let v = [b[at], b[at + 1]];
        u64::from(if big { u16::from_be_bytes(v) } else { u16::from_le_bytes(v) })
    };
    let u32_at = |b: &[u8], at: usize| {
        let v: [u8; 4] = b[at..at + 4].try_into().expect("4 bytes");
        u64::from(if big { u32::from_be_bytes(v) } else { u32::from_le_bytes(v) })
    };
    let u64_at = |b: &[u8], at: usize| {
        let v: [u8; 8] = b[at..at + 8].try_into().expect("8 bytes");
        if big { u64::from_be_bytes(v) } else { u64::from_le_bytes(v) }
    };
    let word = |b: &[u8], at: usize| if wide { u64_at(b, at) } else { u32_at(b, at) };
    let (shoff, shentsize, shnum, shstrndx) = if wide {
        (u64_at(head, 0x28), u16_at(head, 0x3a), u16_at(head, 0x3c), u16_at(head, 0x3e))
    } else {
        (u32_at(head, 0x20), u16_at(head, 0x2e), u16_at(head, 0x30), u16_at(head, 0x32))
    };
    if shentsize < 40 || shnum == 0 || shnum > 65_535 || shstrndx >= shnum {
        return Ok(None);
    }
    // The table must lie in the file: its size comes from the header, not from what was read.
    let file_len = file.metadata()?.len();
    if shoff.checked_add(shentsize * shnum).is_none_or(|end| end > file_len) {
        return Ok(None);
    }
    let mut table = vec![0u8; (shentsize * shnum) as usize];
    file.read_exact_at(&mut table, shoff)?;
    // sh_name, sh_type, sh_flags, sh_addr, then sh_offset and sh_size (words).
    let entry = |i: u64| &table[(i * shentsize) as usize..((i + 1) * shentsize) as usize];
    let (offset_at, size_at) = if wide { (24, 32) } else { (16, 20) };
    let strtab = entry(shstrndx);
    let (str_offset, str_size) = (word(strtab, offset_at), word(strtab, size_at));
    let mut names = vec![0u8; str_size.min(1 << 20) as usize];
    file.read_exact_at(&mut names, str_offset)?;
    for i in 0..shnum {
        let e = entry(i);
        let at = u32_at(e, 0) as usize;
        let Some(rest) = names.get(at..) else { continue };
        let end = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
        if &rest[..end] == name {
            return Ok(Some((word(e, offset_at), word(e, size_at))));
        }
    }
    Ok(None)
}

/// The file offset and size of a PE file's first initialized, readable and writable section
/// (`.data`), where Go's linker puts the build information (what `debug/buildinfo` reads).
fn pe_data_section(file: &File) -> std::io::Result<Option<(u64, u64)>> {
    let mut dos = [0u8; 64];
    file.read_exact_at(&mut dos, 0)?;
    let pe = u64::from(u32::from_le_bytes(dos[0x3c..0x40].try_into().expect("4 bytes")));
    let mut coff = [0u8; 24];
    file.read_exact_at(&mut coff, pe)?;
    if &coff[..4] != b"PE\0\0" {
        return Ok(None);
    }
    let sections = u64::from(u16::from_le_bytes([coff[6], coff[7]]));
    let optional = u64::from(u16::from_le_bytes([coff[20], coff[21]]));
    let mut table = vec![0u8; (sections * 40) as usize];
    file.read_exact_at(&mut table, pe + 24 + optional)?;
    const WANTED: u32 = 0x0000_0040 | 0x4000_0000 | 0x8000_0000;
    const ALIGN_32: u32 = 0x0060_0000;
    for s in table.chunks_exact(40) {
        let u32_at = |at: usize| u32::from_le_bytes(s[at..at + 4].try_into().expect("4 bytes"));
        let (virtual_address, raw_size, raw_at, characteristics) = (u32_at(12), u32_at(16), u32_at(20), u32_at(36));
        if virtual_address != 0 && raw_size != 0 && characteristics & !ALIGN_32 == WANTED {
            return Ok(Some((u64::from(raw_at), u64::from(raw_size))));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_lines_parse_as_go_reads_them() {
        let modinfo = "path\texample.com/app/cmd/hello\nmod\texample.com/app\t(devel)\t\ndep\tgithub.com/google/uuid\tv1.6.0\th1:NIvaJDMOsjHA8n1jAhLSgzrAzy1Hgr+hNrb57e+94F0=\ndep\texample.com/lib\tv1.0.0\n=>\t../lib\t(devel)\t\nbuild\t-trimpath=true\n";
        let info = parse_modinfo("go1.26.8".into(), modinfo);
        assert_eq!(info.path, "example.com/app/cmd/hello");
        assert_eq!(
            info.main.as_ref().map(|m| (m.path.as_str(), m.version.as_str())),
            Some(("example.com/app", "(devel)"))
        );
        assert_eq!(info.deps.len(), 2);
        assert_eq!(info.deps[0].sum, "h1:NIvaJDMOsjHA8n1jAhLSgzrAzy1Hgr+hNrb57e+94F0=");
        assert_eq!((info.deps[1].version.as_str(), info.deps[1].sum.as_str()), ("v1.0.0", ""));
    }

    #[test]
    fn strings_are_length_prefixed() {
        assert_eq!(uvarint_string(b"\x03abcdef"), Some((&b"abc"[..], &b"def"[..])));
        assert_eq!(uvarint_string(b"\x05abc"), None);
        let mut long = vec![0x80 | 0x2c, 0x01];
        long.extend(std::iter::repeat_n(b'x', 172));
        assert_eq!(uvarint_string(&long).map(|(s, _)| s.len()), Some(172));
    }

    #[test]
    fn other_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("script");
        std::fs::write(&path, "#!/bin/sh\necho hi\n").unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("not an ELF or Windows executable"), "{err}");
    }
}
