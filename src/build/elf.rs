//! ELF inspection (which QEMU to run) and ELF → flat binary, byte-identical to GNU
//! `objcopy -O binary`, done in-process so no `rust-objcopy` is needed.
//!
//! What GNU objcopy (BFD) writes, and so what [`to_bin`] writes:
//! - the *sections* (not segments) that are allocated, have contents (not `SHT_NOBITS`, not
//!   `SHT_NULL`) and are non-empty, each at its load address (LMA) minus the lowest such LMA;
//! - a section's LMA is `p_paddr + sh_offset - p_offset` of the `PT_LOAD` (`PT_TLS` for TLS
//!   sections) segment holding it, else its `sh_addr`; when every `p_paddr` is zero and there
//!   are several non-empty `PT_LOAD`s, LMA = `sh_addr` (BFD's rule for such linkers);
//! - sections are written in section-header order (a later overlapping one wins), gaps are
//!   zero-filled, and the output ends where the last written byte ends (trailing `.bss` adds
//!   nothing).
//!
//! Deliberate differences: an ELF with nothing to write is an error (objcopy writes an empty
//! file), and an output over 1 GiB is refused (objcopy writes a sparse file), because both are
//! linker-script mistakes that would otherwise surface as a silent boot hang.

use std::path::Path;

use crate::arch::Arch;
use crate::error::Error;

/// The architecture an ELF image was built for, from its header.
pub fn elf_arch(bytes: &[u8]) -> Result<Arch, Error> {
    let header = Header::parse(bytes)?;
    machine_arch(header.machine, header.class64)
}

/// [`elf_arch`] of a file (only its header is read), with the file named in every error.
pub fn kernel_arch(path: &Path) -> Result<Arch, Error> {
    let bytes = read_head(path)?;
    elf_arch(&bytes).map_err(|e| Error {
        message: match e.message.strip_prefix("the kernel") {
            Some(rest) => format!("kernel {}{rest}", path.display()),
            None => format!("{}: {}", path.display(), e.message),
        },
        ..e
    })
}

/// The flat binary `objcopy -O binary` would write for this ELF.
pub fn to_bin(bytes: &[u8]) -> Result<Vec<u8>, Error> {
    Ok(to_bin_at(bytes)?.1)
}

/// [`to_bin`] and the address its first byte belongs at (the lowest load address), where a
/// board's U-Boot loads it.
pub fn to_bin_at(bytes: &[u8]) -> Result<(u64, Vec<u8>), Error> {
    let elf = Elf::parse(bytes)?;
    let pieces = elf.loadable_pieces()?;
    let Some(low) = pieces.iter().map(|p| p.lma).min() else {
        return Err(Error::usage(
            "the kernel ELF has no allocated sections with contents, so its flat binary would be empty",
        )
        .help("check the linker script, or pass the ELF itself (to_bin = false)"));
    };
    let end = pieces
        .iter()
        .map(|p| (p.lma - low).saturating_add(p.data.len() as u64))
        .max()
        .unwrap_or(0);
    if end > MAX_BIN_SIZE {
        return Err(too_large(&elf, &pieces, low, end));
    }
    let mut out = vec![0u8; end as usize];
    for piece in &pieces {
        let start = (piece.lma - low) as usize;
        out[start..start + piece.data.len()].copy_from_slice(piece.data);
    }
    Ok((low, out))
}

/// Largest flat binary we produce; beyond this the sections' LMAs are far apart by mistake.
const MAX_BIN_SIZE: u64 = 1 << 30;

const PT_LOAD: u32 = 1;
const PT_TLS: u32 = 7;
const SHT_NULL: u32 = 0;
const SHT_NOBITS: u32 = 8;
const SHF_ALLOC: u64 = 0x2;
const SHF_TLS: u64 = 0x400;

fn read_head(path: &Path) -> Result<Vec<u8>, Error> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| Error::input_io(path, "kernel", &e))?;
    let mut head = Vec::with_capacity(64);
    file.take(64)
        .read_to_end(&mut head)
        .map_err(|e| Error::input_io(path, "kernel", &e))?;
    Ok(head)
}

fn machine_arch(machine: u16, class64: bool) -> Result<Arch, Error> {
    Ok(match (machine, class64) {
        (183, _) => Arch::Aarch64,
        (62, _) => Arch::X86_64,
        (3, _) => Arch::I386,
        (40, _) => Arch::Arm,
        (243, true) => Arch::Riscv64,
        (243, false) => Arch::Riscv32,
        (258, true) => Arch::Loongarch64,
        _ => {
            let name =
                machine_name(machine, class64).map_or_else(String::new, |n| format!(" ({n})"));
            return Err(Error::usage(format!(
                "the kernel is an ELF for machine {machine}{name}, which qemu-test cannot boot"
            ))
            .help("pass --arch with one of aarch64, arm, x86_64, i386, riscv64, riscv32, loongarch64 if the ELF header is wrong"));
        }
    })
}

/// Names of e_machine values a user might plausibly hand us, for the error message.
fn machine_name(machine: u16, class64: bool) -> Option<&'static str> {
    Some(match machine {
        2 | 18 | 43 => "SPARC",
        8 => "MIPS",
        20 => "PowerPC",
        21 => "PowerPC64",
        22 => "S/390",
        42 => "SuperH",
        50 => "IA-64",
        94 => "Xtensa",
        258 if !class64 => "LoongArch32",
        _ => return None,
    })
}

fn not_elf(bytes: &[u8]) -> Error {
    let shown: Vec<String> = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect();
    Error::usage(format!(
        "the kernel is not an ELF file (it starts with bytes {})",
        if shown.is_empty() {
            "nothing: it is empty".to_string()
        } else {
            shown.join(" ")
        }
    ))
    .help("pass --arch to boot a raw binary")
}

fn corrupt(what: impl std::fmt::Display) -> Error {
    Error::usage(format!("the kernel ELF is truncated or corrupt: {what}"))
        .help("rebuild the kernel; check that the file was copied completely")
}

/// Bounds-checked, endian-aware field reads.
#[derive(Clone, Copy)]
struct Reader<'a> {
    bytes: &'a [u8],
    class64: bool,
    big_endian: bool,
}

impl<'a> Reader<'a> {
    fn slice(&self, offset: u64, len: u64, what: &str) -> Result<&'a [u8], Error> {
        let end = offset.checked_add(len);
        match end {
            Some(end) if end <= self.bytes.len() as u64 => {
                Ok(&self.bytes[offset as usize..end as usize])
            }
            _ => Err(corrupt(format!(
                "{what} (bytes {offset:#x}..+{len:#x}) lies beyond the end of the {}-byte file",
                self.bytes.len()
            ))),
        }
    }

    fn uint(&self, offset: u64, width: u64, what: &str) -> Result<u64, Error> {
        let raw = self.slice(offset, width, what)?;
        let fold = |acc: u64, b: &u8| (acc << 8) | u64::from(*b);
        Ok(if self.big_endian {
            raw.iter().fold(0, fold)
        } else {
            raw.iter().rev().fold(0, fold)
        })
    }

    fn u16(&self, offset: u64, what: &str) -> Result<u16, Error> {
        Ok(self.uint(offset, 2, what)? as u16)
    }

    fn u32(&self, offset: u64, what: &str) -> Result<u32, Error> {
        Ok(self.uint(offset, 4, what)? as u32)
    }

    /// An address, offset or size: 4 bytes in ELF32, 8 in ELF64.
    fn word(&self, offset: u64, what: &str) -> Result<u64, Error> {
        self.uint(offset, if self.class64 { 8 } else { 4 }, what)
    }
}

/// The ELF file header fields we use.
struct Header {
    class64: bool,
    big_endian: bool,
    machine: u16,
    phoff: u64,
    phentsize: u64,
    phnum: u64,
    shoff: u64,
    shentsize: u64,
    shnum: u64,
    shstrndx: u64,
}

impl Header {
    fn parse(bytes: &[u8]) -> Result<Header, Error> {
        if !crate::magic::is_elf(bytes) {
            return Err(not_elf(bytes));
        }
        if bytes.len() < 52 {
            return Err(corrupt("the ELF header is cut short"));
        }
        let class64 = match bytes[4] {
            1 => false,
            2 => true,
            other => return Err(corrupt(format!("unknown ELF class {other}"))),
        };
        let big_endian = match bytes[5] {
            1 => false,
            2 => true,
            other => return Err(corrupt(format!("unknown ELF data encoding {other}"))),
        };
        if class64 && bytes.len() < 64 {
            return Err(corrupt("the ELF header is cut short"));
        }
        let r = Reader {
            bytes,
            class64,
            big_endian,
        };
        let (ph, sh, ent) = if class64 { (32, 40, 54) } else { (28, 32, 42) };
        Ok(Header {
            class64,
            big_endian,
            machine: r.u16(18, "e_machine")?,
            phoff: r.word(ph, "e_phoff")?,
            shoff: r.word(sh, "e_shoff")?,
            phentsize: r.u16(ent, "e_phentsize")?.into(),
            phnum: r.u16(ent + 2, "e_phnum")?.into(),
            shentsize: r.u16(ent + 4, "e_shentsize")?.into(),
            shnum: r.u16(ent + 6, "e_shnum")?.into(),
            shstrndx: r.u16(ent + 8, "e_shstrndx")?.into(),
        })
    }
}

struct Segment {
    p_type: u32,
    offset: u64,
    vaddr: u64,
    paddr: u64,
    filesz: u64,
    memsz: u64,
}

struct Section {
    index: usize,
    name: u32,
    sh_type: u32,
    flags: u64,
    addr: u64,
    offset: u64,
    size: u64,
}

/// A section's bytes and where they load.
struct Piece<'a> {
    section: usize,
    lma: u64,
    data: &'a [u8],
}

struct Elf<'a> {
    reader: Reader<'a>,
    segments: Vec<Segment>,
    sections: Vec<Section>,
    shstrndx: u64,
}

impl<'a> Elf<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Elf<'a>, Error> {
        let h = Header::parse(bytes)?;
        let reader = Reader {
            bytes,
            class64: h.class64,
            big_endian: h.big_endian,
        };
        let (sections, shstrndx) = read_sections(&reader, &h)?;
        let segments = read_segments(&reader, &h, &sections)?;
        Ok(Elf {
            reader,
            segments,
            sections,
            shstrndx,
        })
    }

    /// The sections objcopy writes, in section-header order, with their LMAs.
    fn loadable_pieces(&self) -> Result<Vec<Piece<'a>>, Error> {
        let vma_is_lma = self.all_paddr_zero();
        self.sections
            .iter()
            .filter(|s| s.index != 0 && s.sh_type != SHT_NULL && s.sh_type != SHT_NOBITS)
            .filter(|s| s.flags & SHF_ALLOC != 0 && s.size > 0)
            .map(|s| {
                let what = format!("section {}", self.section_name(s));
                Ok(Piece {
                    section: s.index,
                    lma: if vma_is_lma { s.addr } else { self.lma(s) },
                    data: self.reader.slice(s.offset, s.size, &what)?,
                })
            })
            .collect()
    }

    /// BFD's rule: all `p_paddr` zero and more than one non-empty `PT_LOAD` → LMA = VMA.
    fn all_paddr_zero(&self) -> bool {
        self.segments.iter().all(|p| p.paddr == 0)
            && self
                .segments
                .iter()
                .filter(|p| p.p_type == PT_LOAD && p.memsz != 0)
                .count()
                > 1
    }

    /// The LMA of an allocated section with contents.
    fn lma(&self, s: &Section) -> u64 {
        let tls = s.flags & SHF_TLS != 0;
        let mut lma = s.addr;
        for p in &self.segments {
            let kind_fits = if tls {
                p.p_type == PT_TLS
            } else {
                p.p_type == PT_LOAD
            };
            if !kind_fits || !in_segment(s, p) {
                continue;
            }
            lma = p.paddr.wrapping_add(s.offset).wrapping_sub(p.offset);
            if s.addr >= p.vaddr && s.addr.wrapping_add(s.size) <= p.vaddr.wrapping_add(p.memsz) {
                break;
            }
        }
        lma
    }

    fn section_name(&self, s: &Section) -> String {
        self.name_at(s.name)
            .unwrap_or_else(|| format!("#{}", s.index))
    }

    fn name_at(&self, offset: u32) -> Option<String> {
        let strtab = self.sections.get(usize::try_from(self.shstrndx).ok()?)?;
        let table = self.reader.slice(strtab.offset, strtab.size, "").ok()?;
        let rest = table.get(offset as usize..)?;
        let name = &rest[..rest.iter().position(|&b| b == 0)?];
        Some(String::from_utf8_lossy(name).into_owned())
    }
}

/// BFD's `ELF_SECTION_IN_SEGMENT` for an allocated, non-`NOBITS` section and a `PT_LOAD` or
/// `PT_TLS` segment: its file bytes and its addresses both lie inside the segment.
fn in_segment(s: &Section, p: &Segment) -> bool {
    s.offset >= p.offset
        && s.offset.wrapping_sub(p.offset).wrapping_add(s.size) <= p.filesz
        && s.addr >= p.vaddr
        && s.addr.wrapping_sub(p.vaddr).wrapping_add(s.size) <= p.memsz
}

fn read_sections(r: &Reader<'_>, h: &Header) -> Result<(Vec<Section>, u64), Error> {
    if h.shoff == 0 {
        return Ok((Vec::new(), 0));
    }
    let min_entry = if h.class64 { 64 } else { 40 };
    if h.shentsize < min_entry {
        return Err(corrupt(format!(
            "section header size {} is below {min_entry}",
            h.shentsize
        )));
    }
    let first = read_section(r, h, 0)?;
    // Extended numbering: counts that do not fit in the header live in section 0.
    let count = if h.shnum == 0 { first.size } else { h.shnum };
    let shstrndx = if h.shstrndx == 0xffff {
        u64::from(r.u32(
            section_offset(h, 0) + if h.class64 { 40 } else { 24 },
            "sh_link",
        )?)
    } else {
        h.shstrndx
    };
    r.slice(
        h.shoff,
        count.saturating_mul(h.shentsize),
        "the section header table",
    )?;
    let sections = (0..count)
        .map(|i| read_section(r, h, i))
        .collect::<Result<_, _>>()?;
    Ok((sections, shstrndx))
}

fn section_offset(h: &Header, index: u64) -> u64 {
    h.shoff.saturating_add(index.saturating_mul(h.shentsize))
}

fn read_section(r: &Reader<'_>, h: &Header, index: u64) -> Result<Section, Error> {
    let base = section_offset(h, index);
    let what = format!("section header {index}");
    let w = if h.class64 { 8 } else { 4 };
    // sh_name, sh_type (4 bytes each), then sh_flags, sh_addr, sh_offset, sh_size (words).
    Ok(Section {
        index: index as usize,
        name: r.u32(base, &what)?,
        sh_type: r.u32(base + 4, &what)?,
        flags: r.word(base + 8, &what)?,
        addr: r.word(base + 8 + w, &what)?,
        offset: r.word(base + 8 + 2 * w, &what)?,
        size: r.word(base + 8 + 3 * w, &what)?,
    })
}

fn read_segments(r: &Reader<'_>, h: &Header, sections: &[Section]) -> Result<Vec<Segment>, Error> {
    if h.phoff == 0 || h.phnum == 0 {
        return Ok(Vec::new());
    }
    let min_entry = if h.class64 { 56 } else { 32 };
    if h.phentsize < min_entry {
        return Err(corrupt(format!(
            "program header size {} is below {min_entry}",
            h.phentsize
        )));
    }
    // Extended numbering: PN_XNUM means the count is section 0's sh_info.
    let count = if h.phnum == 0xffff && !sections.is_empty() {
        let info_at = section_offset(h, 0) + if h.class64 { 44 } else { 28 };
        u64::from(r.u32(info_at, "sh_info")?)
    } else {
        h.phnum
    };
    r.slice(
        h.phoff,
        count.saturating_mul(h.phentsize),
        "the program header table",
    )?;
    (0..count)
        .map(|i| read_segment(r, h.phoff.saturating_add(i.saturating_mul(h.phentsize)), i))
        .collect()
}

fn read_segment(r: &Reader<'_>, base: u64, index: u64) -> Result<Segment, Error> {
    let what = format!("program header {index}");
    Ok(if r.class64 {
        // p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align
        Segment {
            p_type: r.u32(base, &what)?,
            offset: r.word(base + 8, &what)?,
            vaddr: r.word(base + 16, &what)?,
            paddr: r.word(base + 24, &what)?,
            filesz: r.word(base + 32, &what)?,
            memsz: r.word(base + 40, &what)?,
        }
    } else {
        // p_type, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_flags, p_align
        Segment {
            p_type: r.u32(base, &what)?,
            offset: r.word(base + 4, &what)?,
            vaddr: r.word(base + 8, &what)?,
            paddr: r.word(base + 12, &what)?,
            filesz: r.word(base + 16, &what)?,
            memsz: r.word(base + 20, &what)?,
        }
    })
}

fn too_large(elf: &Elf<'_>, pieces: &[Piece<'_>], low: u64, end: u64) -> Error {
    let name = |p: Option<&Piece<'_>>| p.map(|p| elf.section_name(&elf.sections[p.section]));
    let first = name(pieces.iter().min_by_key(|p| p.lma)).unwrap_or_default();
    let last = name(
        pieces
            .iter()
            .max_by_key(|p| p.lma.saturating_add(p.data.len() as u64)),
    )
    .unwrap_or_default();
    Error::usage(format!(
        "the flat binary would be {end} bytes: section {first} loads at {low:#x} and section {last} ends at {:#x}",
        low.wrapping_add(end)
    ))
    .help("sections this far apart usually mean a linker-script mistake; fix their load addresses or pass the ELF (to_bin = false)")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 LE image: header, program headers, section headers (no names).
    struct Builder {
        machine: u16,
        segments: Vec<[u64; 6]>,
        sections: Vec<(u32, u64, u64, u64, Vec<u8>)>,
    }

    impl Builder {
        fn new() -> Self {
            Builder {
                machine: 183,
                segments: Vec::new(),
                sections: Vec::new(),
            }
        }

        /// p_type, offset, vaddr, paddr, filesz, memsz.
        fn segment(mut self, s: [u64; 6]) -> Self {
            self.segments.push(s);
            self
        }

        /// type, flags, addr, file offset, contents.
        fn section(mut self, ty: u32, flags: u64, addr: u64, offset: u64, data: &[u8]) -> Self {
            self.sections.push((ty, flags, addr, offset, data.to_vec()));
            self
        }

        fn build(&self) -> Vec<u8> {
            let phoff = 64u64;
            let data_end = self
                .sections
                .iter()
                .map(|s| s.3 + s.4.len() as u64)
                .max()
                .unwrap_or(0);
            let shoff = data_end
                .max(phoff + 56 * self.segments.len() as u64)
                .next_multiple_of(8);
            let mut f = vec![0u8; shoff as usize + 64 * (self.sections.len() + 1)];
            f[..4].copy_from_slice(crate::magic::ELF);
            f[4] = 2;
            f[5] = 1;
            f[6] = 1;
            f[18..20].copy_from_slice(&self.machine.to_le_bytes());
            f[32..40].copy_from_slice(&phoff.to_le_bytes());
            f[40..48].copy_from_slice(&shoff.to_le_bytes());
            f[54..56].copy_from_slice(&56u16.to_le_bytes());
            f[56..58].copy_from_slice(&(self.segments.len() as u16).to_le_bytes());
            f[58..60].copy_from_slice(&64u16.to_le_bytes());
            f[60..62].copy_from_slice(&(self.sections.len() as u16 + 1).to_le_bytes());
            for (i, s) in self.segments.iter().enumerate() {
                let b = (phoff + 56 * i as u64) as usize;
                f[b..b + 4].copy_from_slice(&(s[0] as u32).to_le_bytes());
                for (k, v) in s[1..].iter().enumerate() {
                    f[b + 8 + 8 * k..b + 16 + 8 * k].copy_from_slice(&v.to_le_bytes());
                }
            }
            for (i, (ty, flags, addr, offset, data)) in self.sections.iter().enumerate() {
                let b = shoff as usize + 64 * (i + 1);
                f[b + 4..b + 8].copy_from_slice(&ty.to_le_bytes());
                f[b + 8..b + 16].copy_from_slice(&flags.to_le_bytes());
                f[b + 16..b + 24].copy_from_slice(&addr.to_le_bytes());
                f[b + 24..b + 32].copy_from_slice(&offset.to_le_bytes());
                f[b + 32..b + 40].copy_from_slice(&(data.len() as u64).to_le_bytes());
                if *ty != SHT_NOBITS {
                    f[*offset as usize..*offset as usize + data.len()].copy_from_slice(data);
                }
            }
            f
        }
    }

    const PROGBITS: u32 = 1;

    #[test]
    fn machines_map_to_qemu_arches() {
        let mut h = Builder::new().build();
        assert_eq!(elf_arch(&h).unwrap(), Arch::Aarch64);
        for (machine, class, arch) in [
            (62u16, 2u8, Arch::X86_64),
            (3, 1, Arch::I386),
            (40, 1, Arch::Arm),
            (243, 2, Arch::Riscv64),
            (243, 1, Arch::Riscv32),
            (258, 2, Arch::Loongarch64),
        ] {
            h[4] = class;
            h[18..20].copy_from_slice(&machine.to_le_bytes());
            assert_eq!(elf_arch(&h).unwrap(), arch, "machine {machine}");
        }
        h[5] = 2;
        h[18..20].copy_from_slice(&183u16.to_be_bytes());
        assert_eq!(elf_arch(&h).unwrap(), Arch::Aarch64, "big endian");
    }

    #[test]
    fn unknown_machine_and_non_elf_are_usage_errors_suggesting_arch() {
        let mut h = Builder::new().build();
        h[18..20].copy_from_slice(&21u16.to_le_bytes());
        let err = elf_arch(&h).unwrap_err();
        assert_eq!(err.kind, crate::error::ErrorKind::Usage);
        assert!(err.message.contains("machine 21 (PowerPC64)"), "{err}");
        assert!(err.help.unwrap().contains("--arch"));
        let err = elf_arch(b"MZ\x90\x00 raw").unwrap_err();
        assert!(err.message.contains("is not an ELF file"), "{err}");
        assert_eq!(
            err.help.as_deref(),
            Some("pass --arch to boot a raw binary")
        );
        assert!(elf_arch(b"").unwrap_err().message.contains("empty"));
    }

    #[test]
    fn kernel_arch_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("Image");
        std::fs::write(&raw, b"\x4d\x5a\x40\x91 arm64 Image").unwrap();
        let err = kernel_arch(&raw).unwrap_err();
        let want = format!(
            "kernel {} is not an ELF file (it starts with bytes 4d 5a 40 91)",
            raw.display()
        );
        assert_eq!(err.message, want);
        let err = kernel_arch(&dir.path().join("missing")).unwrap_err();
        assert!(err.message.contains("cannot read kernel"), "{err}");
    }

    #[test]
    fn truncated_and_garbage_headers_never_panic() {
        let full = Builder::new()
            .segment([1, 0x1000, 0x8000, 0x8000, 4, 4])
            .section(PROGBITS, SHF_ALLOC, 0x8000, 0x1000, b"abcd")
            .build();
        for len in 0..full.len() {
            let _ = elf_arch(&full[..len]);
            assert!(to_bin(&full[..len]).is_err(), "cut at {len}");
        }
        let mut state = 0x2545_f491_u32;
        for _ in 0..2000 {
            let mut junk = full.clone();
            for _ in 0..8 {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let at = state as usize % junk.len();
                junk[at] = (state >> 24) as u8;
            }
            let _ = elf_arch(&junk);
            let _ = to_bin(&junk);
        }
    }

    #[test]
    fn sections_land_at_lma_with_zero_gaps_and_no_bss() {
        let elf = Builder::new()
            .segment([PT_LOAD.into(), 0x1000, 0x8000, 0x8000, 0x10, 0x10])
            .segment([PT_LOAD.into(), 0x2000, 0x9000, 0x8020, 0x4, 0x100])
            .section(PROGBITS, SHF_ALLOC, 0x8000, 0x1000, b"text")
            .section(PROGBITS, SHF_ALLOC, 0x9000, 0x2000, b"data")
            .section(SHT_NOBITS, SHF_ALLOC | 1, 0x9004, 0x2004, &[0; 0x20])
            .section(PROGBITS, 0, 0, 0x3000, b"comment")
            .build();
        let mut want = vec![0u8; 0x24];
        want[..4].copy_from_slice(b"text");
        want[0x20..].copy_from_slice(b"data");
        assert_eq!(to_bin(&elf).unwrap(), want);
    }

    #[test]
    fn all_zero_paddr_with_several_loads_uses_vma() {
        let elf = Builder::new()
            .segment([PT_LOAD.into(), 0x1000, 0x8000, 0, 4, 4])
            .segment([PT_LOAD.into(), 0x2000, 0x8010, 0, 4, 4])
            .section(PROGBITS, SHF_ALLOC, 0x8000, 0x1000, b"AAAA")
            .section(PROGBITS, SHF_ALLOC, 0x8010, 0x2000, b"BBBB")
            .build();
        let bin = to_bin(&elf).unwrap();
        assert_eq!(bin.len(), 0x14);
        assert_eq!(&bin[0x10..], b"BBBB");
    }

    #[test]
    fn empty_and_huge_outputs_are_refused() {
        let nothing = Builder::new().section(PROGBITS, 0, 0, 0x100, b"x").build();
        assert!(
            to_bin(&nothing)
                .unwrap_err()
                .message
                .contains("no allocated sections")
        );
        let far = Builder::new()
            .section(PROGBITS, SHF_ALLOC, 0, 0x100, b"a")
            .section(PROGBITS, SHF_ALLOC, 0x8000_0000, 0x200, b"b")
            .build();
        let err = to_bin(&far).unwrap_err();
        assert!(err.message.contains("2147483649 bytes"), "{err}");
        assert!(err.help.unwrap().contains("linker-script"));
    }
}
