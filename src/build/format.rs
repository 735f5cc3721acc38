//! What kind of file a kernel is, read from its first bytes, so a kernel that cannot boot is
//! refused when the case is planned (with the reason) instead of timing out with no output.
//!
//! Recognised (each layout as its project documents it):
//! - ELF: the `e_machine` of the header ([`super::elf`]);
//! - Linux arm64 `Image`: magic `ARM\x64` at 0x38 (Documentation/arch/arm64/booting.rst);
//! - Linux RISC-V `Image`: magic `RSC\x05` at 0x38, or the older `RISCV\0\0\0` at 0x30
//!   (Documentation/arch/riscv/boot-image-header.rst);
//! - x86 bzImage: `HdrS` at 0x202, the boot protocol at 0x206, `xloadflags` bit 0 (64-bit
//!   kernel) at 0x236 from protocol 2.12 (Documentation/arch/x86/boot.rst);
//! - U-Boot legacy uImage: big-endian 0x27051956 at 0, `ih_arch` at byte 29 (U-Boot image.h);
//! - a flattened device tree (a DTB, or a FIT image, which is one): big-endian 0xd00dfeed at 0;
//! - an empty file, and text (a Git LFS pointer, a script, an HTML error page): never kernels.
//!
//! Anything else is a raw binary whose architecture only `--arch` can tell.
//! Hand-written because these are a handful of fixed-offset magic numbers; the crates that parse
//! such images (`goblin`, `object`) cover ELF/PE only.

use std::io::Read;
use std::path::Path;

use crate::arch::Arch;
use crate::error::Error;

/// How many leading bytes the checks need (the bzImage `xloadflags` end at 0x238).
const HEAD: u64 = 0x240;

/// The format of a kernel file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelFormat {
    /// An ELF for this architecture.
    Elf(Arch),
    /// An ELF for a machine qemu-test cannot boot (the ELF reader names it).
    ForeignElf,
    /// A Linux arm64 `Image`.
    Arm64Image,
    /// A Linux RISC-V `Image` (rv64 or rv32: the header does not say).
    RiscvImage,
    /// An x86 bzImage; `kernel_64` when `xloadflags` says the kernel is 64-bit.
    BzImage {
        kernel_64: bool,
    },
    /// A U-Boot legacy image for this architecture (`Err`: an `ih_arch` number QEMU has no
    /// system emulator for here).
    UImage(Result<Arch, u8>),
    /// A flattened device tree: a DTB or a FIT image.
    DeviceTree,
    Empty,
    /// Printable text; the first line, shortened, for the message.
    Text(String),
    /// None of the above.
    Raw,
}

impl KernelFormat {
    /// Reads the head of `path` and tells its format.
    pub fn read(path: &Path) -> Result<KernelFormat, Error> {
        let file = std::fs::File::open(path).map_err(|e| Error::input_io(path, "kernel", &e))?;
        if file.metadata().is_ok_and(|m| m.is_dir()) {
            return Err(Error::usage(format!(
                "kernel {} is a directory",
                path.display()
            )));
        }
        let mut head = Vec::with_capacity(HEAD as usize);
        file.take(HEAD)
            .read_to_end(&mut head)
            .map_err(|e| Error::input_io(path, "kernel", &e))?;
        Ok(KernelFormat::sniff(&head))
    }

    /// The format of a file that starts with `head` (at least [`HEAD`] bytes when it is that long).
    pub fn sniff(head: &[u8]) -> KernelFormat {
        let at =
            |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
        let le16 = |offset: usize| {
            head.get(offset..offset + 2)
                .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]))
        };
        if head.is_empty() {
            return KernelFormat::Empty;
        }
        if crate::magic::is_elf(head) {
            // An ELF of a machine QEMU cannot run is reported by `elf::elf_arch` itself.
            return match super::elf::elf_arch(head) {
                Ok(a) => KernelFormat::Elf(a),
                Err(_) => KernelFormat::ForeignElf,
            };
        }
        if at(0x38, b"ARM\x64") {
            return KernelFormat::Arm64Image;
        }
        if at(0x38, b"RSC\x05") || at(0x30, b"RISCV\0\0\0") {
            return KernelFormat::RiscvImage;
        }
        if at(0x202, b"HdrS") {
            let kernel_64 = le16(0x206) >= 0x020c && le16(0x236) & 1 == 1;
            return KernelFormat::BzImage { kernel_64 };
        }
        if at(0, &[0x27, 0x05, 0x19, 0x56]) && head.len() >= 64 {
            return KernelFormat::UImage(uimage_arch(head[29]));
        }
        if at(0, &[0xd0, 0x0d, 0xfe, 0xed]) {
            return KernelFormat::DeviceTree;
        }
        if let Some(line) = text_head(head) {
            return KernelFormat::Text(line);
        }
        KernelFormat::Raw
    }

    /// Whether this is an ELF file (for `to_bin`).
    pub fn is_elf(&self) -> bool {
        matches!(self, KernelFormat::Elf(_))
    }

    /// What the format is, in words, for messages.
    pub fn describe(&self) -> String {
        match self {
            KernelFormat::Elf(a) => format!("an ELF for {a}"),
            KernelFormat::Arm64Image => "a Linux arm64 Image".into(),
            KernelFormat::RiscvImage => "a Linux RISC-V Image".into(),
            KernelFormat::BzImage { kernel_64: true } => "an x86 bzImage (64-bit kernel)".into(),
            KernelFormat::BzImage { kernel_64: false } => "an x86 bzImage".into(),
            KernelFormat::UImage(Ok(a)) => format!("a U-Boot uImage for {a}"),
            KernelFormat::UImage(Err(n)) => format!("a U-Boot uImage for U-Boot arch {n}"),
            KernelFormat::DeviceTree => "a device tree blob (DTB or FIT image)".into(),
            KernelFormat::Empty => "empty".into(),
            KernelFormat::Text(line) => format!("a text file (it starts with '{line}')"),
            KernelFormat::Raw => "a raw binary".into(),
            KernelFormat::ForeignElf => "an ELF for another machine".into(),
        }
    }

    /// The architecture the format implies (`None` for raw binaries), refusing formats that are
    /// never bootable as `-kernel`.
    fn implied(&self) -> Result<Option<Arch>, String> {
        match self {
            KernelFormat::Elf(a) => Ok(Some(*a)),
            KernelFormat::Arm64Image => Ok(Some(Arch::Aarch64)),
            KernelFormat::RiscvImage => Ok(Some(Arch::Riscv64)),
            KernelFormat::BzImage { .. } => Ok(Some(Arch::X86_64)),
            KernelFormat::UImage(Ok(a)) => Ok(Some(*a)),
            KernelFormat::UImage(Err(n)) => Err(format!(
                "it is a U-Boot uImage for U-Boot architecture {n}, which qemu-test cannot boot"
            )),
            KernelFormat::DeviceTree => Err(
                "it is a device tree blob (a DTB or a FIT image), which QEMU's -kernel cannot \
                 boot; pass the kernel itself, or boot the FIT image from U-Boot (a \
                 firmware-only guest: -bios u-boot.bin in the QEMU config, no --kernel)"
                    .into(),
            ),
            KernelFormat::Empty => Err("it is empty (0 bytes)".into()),
            KernelFormat::Text(line) => Err(format!(
                "it is a text file, not a kernel (it starts with '{line}'){}",
                if line.starts_with("version https://git-lfs") {
                    "; it is a Git LFS pointer: fetch the real file (git lfs pull)"
                } else {
                    ""
                }
            )),
            KernelFormat::Raw | KernelFormat::ForeignElf => Ok(None),
        }
    }

    /// The guest architecture for this kernel: `declared` (`--arch`) when the format allows it,
    /// else the one the format implies; an error when they disagree, when the file can never
    /// boot, or when neither says (a raw binary without `--arch`).
    pub fn arch(&self, path: &Path, declared: Option<Arch>) -> Result<Arch, Error> {
        let refuse =
            |why: String| Error::usage(format!("kernel {} cannot boot: {why}", path.display()));
        let implied = self.implied().map_err(|why| {
            refuse(why).help("pass the kernel image (ELF, Linux Image/bzImage, or a raw binary)")
        })?;
        match (declared, implied) {
            (Some(d), Some(_)) if self.runs_on(d) => Ok(d),
            (Some(d), Some(i)) => Err(refuse(format!(
                "it is {}, but the guest architecture is {d}",
                self.describe()
            ))
            .help(format!(
                "pass --arch {i} (or drop --arch: this format tells it), or the {d} kernel"
            ))),
            (Some(d), None) => Ok(d),
            (None, Some(i)) => Ok(i),
            (None, None) => Err(Error::usage(format!(
                "kernel {} is {}, so its architecture cannot be read from it",
                path.display(),
                self.describe()
            ))
            .help("pass --arch (e.g. --arch aarch64) to boot a raw binary")),
        }
    }

    /// Whether `qemu-system-<arch>` can boot this format.
    fn runs_on(&self, arch: Arch) -> bool {
        match self {
            // 32-bit ELFs run on the 64-bit emulator of the same family (multiboot kernels are
            // i386 ELFs; qemu-system-aarch64/riscv64 run 32-bit CPUs too).
            KernelFormat::Elf(a) | KernelFormat::UImage(Ok(a)) => {
                *a == arch
                    || matches!(
                        (*a, arch),
                        (Arch::I386, Arch::X86_64)
                            | (Arch::Arm, Arch::Aarch64)
                            | (Arch::Riscv32, Arch::Riscv64)
                    )
            }
            KernelFormat::Arm64Image => arch == Arch::Aarch64,
            KernelFormat::RiscvImage => matches!(arch, Arch::Riscv64 | Arch::Riscv32),
            KernelFormat::BzImage { kernel_64 } => {
                arch == Arch::X86_64 || (arch == Arch::I386 && !kernel_64)
            }
            _ => true,
        }
    }
}

/// U-Boot's `IH_ARCH_*` numbers (include/image.h) for the architectures QEMU runs here.
fn uimage_arch(code: u8) -> Result<Arch, u8> {
    Ok(match code {
        2 => Arch::Arm,
        3 => Arch::I386,
        22 => Arch::Aarch64,
        24 => Arch::X86_64,
        26 => Arch::Riscv64,
        other => return Err(other),
    })
}

/// The first line of `head` when the bytes look like text (no NUL, no control bytes other than
/// whitespace and ESC, valid UTF-8 up to a cut character), shortened for a message.
fn text_head(head: &[u8]) -> Option<String> {
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        // A multi-byte character cut at the end of the head is still text.
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&head[..e.valid_up_to()]).ok()?,
        Err(_) => return None,
    };
    let texty = |c: char| !c.is_control() || matches!(c, '\n' | '\r' | '\t' | '\x0c' | '\x1b');
    if !text.chars().all(texty) {
        return None;
    }
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    Some(match line.char_indices().nth(60) {
        Some((i, _)) => format!("{}...", &line[..i]),
        None => line.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(offset: usize, magic: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; HEAD as usize];
        v[offset..offset + magic.len()].copy_from_slice(magic);
        v
    }

    fn bz(protocol: u16, xloadflags: u16) -> Vec<u8> {
        let mut v = image(0x202, b"HdrS");
        v[0x206..0x208].copy_from_slice(&protocol.to_le_bytes());
        v[0x236..0x238].copy_from_slice(&xloadflags.to_le_bytes());
        v
    }

    #[test]
    fn headers_are_recognised() {
        assert_eq!(
            KernelFormat::sniff(&image(0x38, b"ARM\x64")),
            KernelFormat::Arm64Image
        );
        assert_eq!(
            KernelFormat::sniff(&image(0x38, b"RSC\x05")),
            KernelFormat::RiscvImage
        );
        assert_eq!(
            KernelFormat::sniff(&image(0x30, b"RISCV\0\0\0")),
            KernelFormat::RiscvImage
        );
        assert_eq!(
            KernelFormat::sniff(&bz(0x020f, 1)),
            KernelFormat::BzImage { kernel_64: true }
        );
        assert_eq!(
            KernelFormat::sniff(&bz(0x020b, 1)),
            KernelFormat::BzImage { kernel_64: false }
        );
        let mut u = image(0, &[0x27, 0x05, 0x19, 0x56]);
        u[29] = 22;
        assert_eq!(
            KernelFormat::sniff(&u),
            KernelFormat::UImage(Ok(Arch::Aarch64))
        );
        u[29] = 5;
        assert_eq!(KernelFormat::sniff(&u), KernelFormat::UImage(Err(5)));
        assert_eq!(
            KernelFormat::sniff(&image(0, &[0xd0, 0x0d, 0xfe, 0xed])),
            KernelFormat::DeviceTree
        );
        assert_eq!(KernelFormat::sniff(b""), KernelFormat::Empty);
        assert_eq!(KernelFormat::sniff(&[0u8, 1, 2, 0xff]), KernelFormat::Raw);
        assert_eq!(
            KernelFormat::sniff(b"\n  version https://git-lfs.github.com/spec/v1\noid sha256:ab\n"),
            KernelFormat::Text("version https://git-lfs.github.com/spec/v1".into())
        );
    }

    #[test]
    fn arch_is_inferred_checked_or_asked_for() {
        let p = Path::new("k");
        let arm = KernelFormat::Arm64Image;
        assert_eq!(arm.arch(p, None).unwrap(), Arch::Aarch64);
        let e = arm.arch(p, Some(Arch::X86_64)).unwrap_err();
        assert_eq!(
            e.message,
            "kernel k cannot boot: it is a Linux arm64 Image, but the guest architecture is x86_64"
        );
        assert!(e.help.unwrap().contains("--arch aarch64"));
        let bz64 = KernelFormat::BzImage { kernel_64: true };
        assert_eq!(bz64.arch(p, None).unwrap(), Arch::X86_64);
        assert!(bz64.arch(p, Some(Arch::I386)).is_err());
        let bz32 = KernelFormat::BzImage { kernel_64: false };
        assert_eq!(bz32.arch(p, Some(Arch::I386)).unwrap(), Arch::I386);
        let e = bz64.arch(p, Some(Arch::Aarch64)).unwrap_err();
        assert!(e.message.contains("x86 bzImage"), "{e}");
        let multiboot = KernelFormat::Elf(Arch::I386);
        assert_eq!(multiboot.arch(p, Some(Arch::X86_64)).unwrap(), Arch::X86_64);
        let e = KernelFormat::Elf(Arch::X86_64)
            .arch(p, Some(Arch::Riscv64))
            .unwrap_err();
        assert!(e.message.contains("it is an ELF for x86_64"), "{e}");
        assert_eq!(
            KernelFormat::Raw.arch(p, Some(Arch::Riscv64)).unwrap(),
            Arch::Riscv64
        );
        let e = KernelFormat::Raw.arch(p, None).unwrap_err();
        assert!(e.help.unwrap().contains("--arch"));
        let e = KernelFormat::Empty
            .arch(p, Some(Arch::Aarch64))
            .unwrap_err();
        assert_eq!(e.message, "kernel k cannot boot: it is empty (0 bytes)");
        let e = KernelFormat::DeviceTree.arch(p, None).unwrap_err();
        assert!(e.message.contains("device tree"), "{e}");
    }
}
