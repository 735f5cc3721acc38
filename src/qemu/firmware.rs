//! UEFI firmware for `uefi = true`, taken from the distribution's packages (or a file the user
//! names), never downloaded: ostool fetches OVMF from the network, which fails offline and adds
//! an unpinned dependency to every run.

use std::path::{Path, PathBuf};

use crate::arch::Arch;
use crate::error::Error;

/// The one table of UEFI firmware files per architecture: what `uefi = true` passes to `-bios`
/// ([`find`]) and what `qemu-test probe` reports ([`crate::host`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uefi {
    pub arch: Arch,
    /// The Debian/Ubuntu package to install, where one exists.
    pub package: Option<&'static str>,
    /// When the package is not in every supported release, which ones have it.
    pub package_note: Option<&'static str>,
    /// Files that boot with `-bios`, most preferred first (Debian's first).
    pub bios: &'static [&'static str],
    /// Other known images (split CODE images for `-pflash`, other distributions' and QEMU's own
    /// builds): found and reported by the probe, never chosen for `-bios`.
    pub other: &'static [&'static str],
}

impl Uefi {
    /// Every known file, `-bios` ones first.
    pub fn paths(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.bios.iter().chain(self.other).copied()
    }
}

pub const UEFI: &[Uefi] = &[
    Uefi {
        arch: Arch::X86_64,
        package: Some("ovmf"),
        package_note: None,
        bios: &[
            "/usr/share/ovmf/OVMF.fd",
            "/usr/share/OVMF/OVMF.fd",
            "/usr/share/qemu/OVMF.fd",
        ],
        other: &[
            "/usr/share/OVMF/OVMF_CODE.fd",
            "/usr/share/OVMF/OVMF_CODE_4M.fd",
            "/usr/share/edk2/ovmf/OVMF_CODE.fd",
            "/usr/share/edk2/x64/OVMF_CODE.fd",
            "/usr/share/qemu/edk2-x86_64-code.fd",
        ],
    },
    Uefi {
        arch: Arch::Aarch64,
        package: Some("qemu-efi-aarch64"),
        package_note: None,
        bios: &[
            "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd",
            "/usr/share/AAVMF/AAVMF_CODE.fd",
        ],
        other: &[
            "/usr/share/edk2/aarch64/QEMU_EFI.fd",
            "/usr/share/qemu/edk2-aarch64-code.fd",
        ],
    },
    Uefi {
        arch: Arch::Arm,
        package: Some("qemu-efi-arm"),
        package_note: None,
        bios: &["/usr/share/AAVMF/AAVMF32_CODE.fd"],
        other: &["/usr/share/qemu/edk2-arm-code.fd"],
    },
    // EDK2 for riscv64 needs pflash plus OpenSBI, so nothing is offered for -bios.
    Uefi {
        arch: Arch::Riscv64,
        package: Some("qemu-efi-riscv64"),
        package_note: Some("Debian 13 (trixie) and later"),
        bios: &[],
        other: &[
            "/usr/share/qemu-efi-riscv64/RISCV_VIRT_CODE.fd",
            "/usr/share/qemu/edk2-riscv-code.fd",
        ],
    },
    // Debian ships it from edk2 2025.02 on (trixie); bookworm and bookworm-backports have no
    // LoongArch firmware package.
    Uefi {
        arch: Arch::Loongarch64,
        package: Some("qemu-efi-loongarch64"),
        package_note: Some("Debian 13 (trixie) and later; not in Debian 12 or its backports"),
        bios: &["/usr/share/qemu-efi-loongarch64/QEMU_EFI.fd"],
        other: &["/usr/share/qemu/edk2-loongarch64-code.fd"],
    },
];

/// The table's entry for `arch`, when it has files that boot with `-bios`.
pub fn installed(arch: Arch) -> Option<&'static Uefi> {
    UEFI.iter().find(|u| u.arch == arch && !u.bios.is_empty())
}

/// The firmware file to pass to `-bios` for `arch`, from the installed packages.
pub fn find(arch: Arch) -> Result<PathBuf, Error> {
    find_with(arch, &|p: &Path| p.is_file())
}

/// [`find`] with the file test given: the probe asks it of a root other than `/` in its tests.
pub fn find_with(arch: Arch, exists: &dyn Fn(&Path) -> bool) -> Result<PathBuf, Error> {
    let Some(known) = installed(arch) else {
        return Err(Error::usage(format!(
            "`uefi = true` needs UEFI firmware for {arch} that boots with -bios, and no \
             distribution package provides one"
        ))
        .help(GIVE_FILE));
    };
    known
        .bios
        .iter()
        .map(Path::new)
        .find(|p| exists(p))
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            let install = match (known.package, known.package_note) {
                (Some(p), Some(note)) => format!("install it with `apt-get install {p}` ({note})"),
                (Some(p), None) => format!("install it with `apt-get install {p}`"),
                (None, _) => "install UEFI firmware for it".to_string(),
            };
            Error::infra(format!(
                "`uefi = true` needs UEFI firmware for {arch}, but none was found (looked for {})",
                known.bios.join(", ")
            ))
            .help(format!("{install}, or {GIVE_FILE}"))
        })
}

/// A [`find`] error as the reason a case is skipped: which firmware is missing, where it was
/// looked for, and how to provide it (the package, or a file named with `--firmware`).
pub fn gap_reason(e: &Error) -> String {
    match &e.help {
        Some(help) => format!("{}: {help}", e.message),
        None => e.message.clone(),
    }
}

/// How to name a firmware file: the flag, the action input and the suite key are one setting,
/// which applies to every `uefi = true` case of the run.
const GIVE_FILE: &str = "pass --firmware FILE (action input `firmware`, or a suite case's \
                         `firmware` key; the flag applies to every `uefi = true` case of the \
                         run, so narrow a test-suit run to the arch with --arch)";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn first_existing_candidate_wins() {
        let only_aavmf = |p: &Path| p.ends_with("AAVMF_CODE.fd");
        assert_eq!(
            find_with(Arch::Aarch64, &only_aavmf).unwrap(),
            Path::new("/usr/share/AAVMF/AAVMF_CODE.fd")
        );
        let all = |_: &Path| true;
        assert_eq!(
            find_with(Arch::X86_64, &all).unwrap(),
            Path::new("/usr/share/ovmf/OVMF.fd")
        );
    }

    #[test]
    fn missing_firmware_names_the_package_and_the_option() {
        let none = |_: &Path| false;
        let err = find_with(Arch::X86_64, &none).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Infra);
        assert!(
            err.help
                .as_deref()
                .unwrap()
                .contains("apt-get install ovmf")
        );
        assert!(err.help.unwrap().contains("--firmware FILE"));
        let err = find_with(Arch::Aarch64, &none).unwrap_err();
        assert!(err.help.unwrap().contains("qemu-efi-aarch64"));
        let err = find_with(Arch::Loongarch64, &none).unwrap_err();
        assert!(
            err.message
                .contains("/usr/share/qemu-efi-loongarch64/QEMU_EFI.fd"),
            "{err}"
        );
        assert!(
            err.help
                .unwrap()
                .contains("apt-get install qemu-efi-loongarch64` (Debian 13 (trixie) and later")
        );
        let err = find_with(Arch::Riscv64, &none).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Usage);
        assert!(err.help.unwrap().contains("--firmware FILE"));
    }

    #[test]
    fn this_host_has_the_packaged_firmware() {
        // The CI image installs qemu-efi-aarch64 and ovmf; the path must resolve for real.
        for arch in [Arch::Aarch64, Arch::X86_64] {
            let path = find(arch).unwrap_or_else(|e| panic!("{e}"));
            assert!(path.is_file(), "{}", path.display());
        }
    }
}
