//! The archive formats guest images come in, and what each may look like before a byte of it is
//! trusted: its magic number and how far it may expand. One row per format; a new format (e.g.
//! `.tar.xz`) is one more variant and one more row.

use std::fmt;

/// A compressed tar format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ArchiveKind {
    /// gzip-compressed tar (`.tar.gz`, `.tgz`): axvisor-guest's format.
    #[default]
    TarGz,
    /// xz-compressed tar (`.tar.xz`, `.txz`): tgosimages' format.
    TarXz,
}

/// What is known about one [`ArchiveKind`].
#[derive(Debug)]
pub struct KindSpec {
    pub kind: ArchiveKind,
    /// File name endings that select this kind.
    pub suffixes: &'static [&'static str],
    /// The compression's name in messages ("gzip").
    pub compression: &'static str,
    /// The bytes every stream of this kind starts with.
    pub magic: &'static [u8],
    /// Most decompressed bytes per compressed byte a real archive reaches; a stream that expands
    /// more (once past [`RATIO_FLOOR`]) is refused as a decompression bomb. Deflate cannot pass
    /// ~1032×, so for gzip this refuses streams of almost nothing but zeros.
    pub max_ratio: u64,
}

/// The table: one row per kind.
const KINDS: &[KindSpec] = &[
    KindSpec {
        kind: ArchiveKind::TarGz,
        suffixes: &[".tar.gz", ".tgz"],
        compression: "gzip",
        magic: &[0x1f, 0x8b],
        max_ratio: 1000,
    },
    KindSpec {
        kind: ArchiveKind::TarXz,
        suffixes: &[".tar.xz", ".txz"],
        compression: "xz",
        magic: &[0xfd, b'7', b'z', b'X', b'Z', 0],
        // LZMA2 reaches far higher ratios than deflate on real data (zero-filled disk images
        // inside rootfs archives); still bounded.
        max_ratio: 10_000,
    },
];

/// The expansion ratio is judged only once this many bytes came out, so a small archive of a
/// sparse file is never refused for its (harmless) ratio.
pub const RATIO_FLOOR: u64 = 64 << 20;

impl ArchiveKind {
    /// The kind a URL or file name ends in; gzip when the name says nothing (axvisor-guest
    /// registries serve only `.tar.gz`).
    pub fn of_name(name: &str) -> ArchiveKind {
        let path = name.split(['?', '#']).next().unwrap_or(name);
        KINDS
            .iter()
            .find(|s| s.suffixes.iter().any(|suffix| path.ends_with(suffix)))
            .map_or(ArchiveKind::default(), |s| s.kind)
    }

    /// Every kind, in the table's order.
    pub fn all() -> impl Iterator<Item = ArchiveKind> {
        KINDS.iter().map(|s| s.kind)
    }

    pub fn spec(self) -> &'static KindSpec {
        KINDS
            .iter()
            .find(|s| s.kind == self)
            .expect("every ArchiveKind has a row in KINDS")
    }

    /// Checks the first bytes of a stream (`prefix` may be shorter than the magic while the
    /// stream is still arriving): `Err` with a message as soon as they cannot be this kind.
    pub fn check_magic(self, prefix: &[u8]) -> Result<(), String> {
        let magic = self.spec().magic;
        let n = prefix.len().min(magic.len());
        if prefix[..n] == magic[..n] {
            return Ok(());
        }
        let shown: String = prefix
            .iter()
            .take(16)
            .map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    (b as char).to_string()
                } else {
                    format!("\\x{b:02x}")
                }
            })
            .collect();
        Err(format!(
            "the data is not {} (it starts with \"{shown}\"; a {self} starts with {})",
            self.spec().compression,
            magic
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        ))
    }
}

impl ArchiveKind {
    /// The decompressing reader of this kind over `r` (multi-member/multi-stream, as the
    /// download's decoders are), for re-reading a kept archive.
    pub fn decoder<'a, R: std::io::Read + 'a>(self, r: R) -> Box<dyn std::io::Read + 'a> {
        match self {
            ArchiveKind::TarGz => Box::new(flate2::read::MultiGzDecoder::new(r)),
            ArchiveKind::TarXz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(r)),
        }
    }
}

impl fmt::Display for ArchiveKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.spec().suffixes[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_select_kinds_and_magic_is_checked_incrementally() {
        assert_eq!(
            ArchiveKind::of_name("https://x/a.tar.gz?dl=1"),
            ArchiveKind::TarGz
        );
        assert_eq!(ArchiveKind::of_name("a.tgz"), ArchiveKind::TarGz);
        let gz = ArchiveKind::TarGz;
        assert!(gz.check_magic(&[]).is_ok());
        assert!(gz.check_magic(&[0x1f]).is_ok());
        assert!(gz.check_magic(&[0x1f, 0x8b, 8, 0]).is_ok());
        let err = gz.check_magic(b"<html>").unwrap_err();
        assert!(err.contains("not gzip (it starts with \"<html>\""), "{err}");
        assert!(err.contains("1f 8b"), "{err}");
        assert!(gz.check_magic(&[0x1f, 0x00]).is_err());
        assert_eq!(
            ArchiveKind::of_name("https://x/qemu-aarch64.tar.xz"),
            ArchiveKind::TarXz
        );
        let xz = ArchiveKind::TarXz;
        assert!(xz.check_magic(&[0xfd, b'7', b'z']).is_ok());
        let err = xz.check_magic(&[0x1f, 0x8b]).unwrap_err();
        assert!(err.contains("not xz"), "{err}");
    }
}
