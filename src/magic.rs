//! File magic: whether bytes, or a file, start like an ELF. One rule for the build stage (kernel
//! format detection, ELF → binary) and the post-mortem (which files have symbols). Ground
//! level: uses nothing of the crate.

use std::io::Read;
use std::path::Path;

/// The first four bytes of every ELF file.
pub const ELF: &[u8; 4] = b"\x7fELF";

/// Whether `head` (a file's first bytes) starts like an ELF.
pub fn is_elf(head: &[u8]) -> bool {
    head.starts_with(ELF)
}

/// Whether the file at `path` starts like an ELF (a file that cannot be read does not).
pub fn file_is_elf(path: &Path) -> bool {
    let mut head = [0u8; ELF.len()];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && is_elf(&head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elf_by_its_first_four_bytes() {
        assert!(is_elf(b"\x7fELF\x02\x01"));
        assert!(!is_elf(b"\x7fEL"));
        assert!(!is_elf(b"MZ\x40\x91"));
        let dir = tempfile::tempdir().unwrap();
        let (elf, short, missing) = (
            dir.path().join("k.elf"),
            dir.path().join("short"),
            dir.path().join("missing"),
        );
        std::fs::write(&elf, b"\x7fELF\x02\x01\x01").unwrap();
        std::fs::write(&short, b"\x7fE").unwrap();
        assert!(file_is_elf(&elf));
        assert!(!file_is_elf(&short));
        assert!(!file_is_elf(&missing));
    }
}
