//! Linux file capabilities for `builds[].linux_capabilities`, as upstream's `pkg/caps`: the terms
//! (`net_bind_service`, `cap_chown`, `42`, or `cap_from_text(3)` clauses such as `bpf,perfmon=ep`)
//! parsed into permitted, inheritable and effective sets, and encoded as the kernel's
//! `security.capability` extended attribute (`vfs_ns_cap_data`, revision 2), which the binary's
//! tar entry carries as a `SCHILY.xattr.security.capability` PAX record.

use crate::error::{Error, Result};

/// Capability names by bit, as the kernel numbers them.
const NAMES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The PAX record key the attribute travels in.
pub const XATTR_RECORD: &str = "SCHILY.xattr.security.capability";

/// One capability (`chown`, `CAP_CHOWN`, `Chown`, a bit number below 64, or `all`) as a mask.
fn parse_one(s: &str) -> Result<u64> {
    if let Ok(bit) = s.parse::<u8>()
        && bit < 64
    {
        return Ok(1 << bit);
    }
    let name = s.to_ascii_uppercase();
    if name == "ALL" {
        return Ok((1u64 << NAMES.len()) - 1);
    }
    let name = name.strip_prefix("CAP_").unwrap_or(&name);
    NAMES.iter().position(|n| *n == name).map(|bit| 1 << bit).ok_or_else(|| {
        Error::config(format!("unknown capability {s:?} (e.g. net_bind_service, cap_chown, bpf, or a number below 64)"))
    })
}

/// File capabilities: what the binary's `security.capability` attribute says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileCaps {
    permitted: u64,
    inheritable: u64,
    effective: bool,
}

impl FileCaps {
    /// The capabilities `terms` give: a bare name is added to the permitted set; a clause
    /// `caps[+-=]flags…` works as `cap_from_text(3)`. `None` when the terms grant nothing.
    pub fn parse<S: AsRef<str>>(terms: &[S]) -> Result<Option<FileCaps>> {
        let (mut permitted, mut inheritable, mut effective) = (0u64, 0u64, 0u64);
        for term in terms {
            let term = term.as_ref();
            let Some(at) = term.find(['+', '-', '=']) else {
                permitted |= parse_one(term)?;
                continue;
            };
            let (names, actions) = term.split_at(at);
            let names = if names.is_empty() && actions.starts_with('=') { "all" } else { names };
            let mut mask = 0u64;
            for name in names.split(',') {
                mask |= parse_one(name).map_err(|e| e.context(format!("{term:?}")))?;
            }
            let mut keep = !0u64;
            for c in actions.chars() {
                match c {
                    '+' => keep = !0,
                    '-' => keep = !mask,
                    '=' => {
                        keep = !0;
                        permitted &= !mask;
                        inheritable &= !mask;
                        effective &= !mask;
                    }
                    'p' => permitted = (permitted | mask) & keep,
                    'i' => inheritable = (inheritable | mask) & keep,
                    'e' => effective = (effective | mask) & keep,
                    other => {
                        return Err(Error::config(format!(
                            "{term:?}: unknown flag '{other}' (expected p, i or e after +, - or =)"
                        )));
                    }
                }
            }
        }
        Ok((permitted != 0 || inheritable != 0).then_some(FileCaps {
            permitted,
            inheritable,
            effective: effective != 0,
        }))
    }

    /// The `security.capability` attribute: `magic_etc` (revision 2, plus the effective flag),
    /// then permitted and inheritable for bits 0–31 and 32–63, each a little-endian u32.
    pub fn xattr(&self) -> [u8; 20] {
        const REVISION_2: u32 = 0x0200_0000;
        let magic = REVISION_2 | u32::from(self.effective);
        let words = [
            magic,
            self.permitted as u32,
            self.inheritable as u32,
            (self.permitted >> 32) as u32,
            (self.inheritable >> 32) as u32,
        ];
        let mut out = [0u8; 20];
        for (chunk, word) in out.chunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xattr(terms: &[&str]) -> Option<[u8; 20]> {
        FileCaps::parse(terms).unwrap().map(|c| c.xattr())
    }

    #[test]
    fn encodes_as_the_kernel_and_upstream_do() {
        // cap_net_bind_service is bit 10: permitted 0x400, revision 2, not effective.
        let want = [0, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(xattr(&["cap_net_bind_service"]), Some(want));
        assert_eq!(xattr(&["NET_BIND_SERVICE"]), Some(want));
        assert_eq!(xattr(&["10"]), Some(want));
        // bpf (39) and perfmon (38), permitted and effective: the high word holds them.
        let got = xattr(&["bpf,perfmon=ep"]).unwrap();
        assert_eq!(&got[..4], &[1, 0, 0, 2], "effective flag");
        assert_eq!(u32::from_le_bytes(got[12..16].try_into().unwrap()), (1 << 7) | (1 << 6));
        assert_eq!(u32::from_le_bytes(got[4..8].try_into().unwrap()), 0);
        assert_eq!(xattr(&["chown", "net_bind_service"]).map(|b| b[4..8].to_vec()), Some(vec![1, 4, 0, 0]));
    }

    #[test]
    fn clauses_add_and_remove() {
        assert_eq!(xattr(&["chown=p", "chown-p"]), None, "granting nothing gives no attribute");
        let got = xattr(&["=p", "sys_admin-p"]).unwrap();
        assert_eq!(u32::from_le_bytes(got[4..8].try_into().unwrap()) & (1 << 21), 0);
        assert!(FileCaps::parse(&["cap_flying"]).unwrap_err().to_string().contains("unknown capability"));
        assert!(FileCaps::parse(&["chown=x"]).unwrap_err().to_string().contains("unknown flag 'x'"));
    }
}
