//! UEFI firmware for `uefi = true`, taken from the distribution's packages (or a file the user
//! names), never downloaded: ostool fetches OVMF from the network, which fails offline and adds
//! an unpinned dependency to every run.
//!
//! A kernel boots as ostool 0.24 boots it (`run/qemu.rs` `prepare_uefi`, `run/qemu_plan.rs`):
//! the firmware's code as read-only pflash unit 0, a writable copy of its variable store as unit
//! 1, and the kernel as `EFI/BOOT/BOOT<ARCH>.EFI` of a directory QEMU serves as a FAT drive
//! ([`Pflash`], [`EspBoot`]). A firmware-only guest (no kernel: the firmware's own shell) boots
//! its firmware with `-bios` ([`find`]).

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
    /// Split images for pflash, `(code, variable store template)`, most preferred first
    /// (Debian's first): what a kernel with `uefi = true` boots through ([`find_pflash`]).
    pub pflash: &'static [(&'static str, &'static str)],
    /// Other known images (other distributions' and QEMU's own builds): found and reported by
    /// the probe, never chosen.
    pub other: &'static [&'static str],
}

impl Uefi {
    /// Every known file once: `-bios` ones, then the pflash pairs', then the others.
    pub fn paths(&self) -> Vec<&'static str> {
        let pflash = self.pflash.iter().flat_map(|(c, v)| [*c, *v]);
        let mut out: Vec<&'static str> = Vec::new();
        for p in self
            .bios
            .iter()
            .copied()
            .chain(pflash)
            .chain(self.other.iter().copied())
        {
            if !out.contains(&p) {
                out.push(p);
            }
        }
        out
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
        pflash: &[
            (
                "/usr/share/OVMF/OVMF_CODE_4M.fd",
                "/usr/share/OVMF/OVMF_VARS_4M.fd",
            ),
            (
                "/usr/share/OVMF/OVMF_CODE.fd",
                "/usr/share/OVMF/OVMF_VARS.fd",
            ),
            (
                "/usr/share/edk2/ovmf/OVMF_CODE.fd",
                "/usr/share/edk2/ovmf/OVMF_VARS.fd",
            ),
            (
                "/usr/share/edk2/x64/OVMF_CODE.fd",
                "/usr/share/edk2/x64/OVMF_VARS.fd",
            ),
            (
                "/usr/share/qemu/edk2-x86_64-code.fd",
                "/usr/share/qemu/edk2-i386-vars.fd",
            ),
        ],
        other: &[],
    },
    Uefi {
        arch: Arch::Aarch64,
        package: Some("qemu-efi-aarch64"),
        package_note: None,
        bios: &[
            "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd",
            "/usr/share/AAVMF/AAVMF_CODE.fd",
        ],
        pflash: &[
            (
                "/usr/share/AAVMF/AAVMF_CODE.fd",
                "/usr/share/AAVMF/AAVMF_VARS.fd",
            ),
            (
                "/usr/share/qemu/edk2-aarch64-code.fd",
                "/usr/share/qemu/edk2-arm-vars.fd",
            ),
        ],
        other: &["/usr/share/edk2/aarch64/QEMU_EFI.fd"],
    },
    Uefi {
        arch: Arch::Arm,
        package: Some("qemu-efi-arm"),
        package_note: None,
        bios: &["/usr/share/AAVMF/AAVMF32_CODE.fd"],
        pflash: &[
            (
                "/usr/share/AAVMF/AAVMF32_CODE.fd",
                "/usr/share/AAVMF/AAVMF32_VARS.fd",
            ),
            (
                "/usr/share/qemu/edk2-arm-code.fd",
                "/usr/share/qemu/edk2-arm-vars.fd",
            ),
        ],
        other: &[],
    },
    // EDK2 for riscv64 needs pflash plus OpenSBI, so nothing is offered for -bios.
    // Debian 13's qemu-efi-riscv64 and QEMU's own build name their pairs so.
    Uefi {
        arch: Arch::Riscv64,
        package: Some("qemu-efi-riscv64"),
        package_note: Some("Debian 13 (trixie) and later"),
        bios: &[],
        pflash: &[
            (
                "/usr/share/qemu-efi-riscv64/RISCV_VIRT_CODE.fd",
                "/usr/share/qemu-efi-riscv64/RISCV_VIRT_VARS.fd",
            ),
            (
                "/usr/share/qemu/edk2-riscv-code.fd",
                "/usr/share/qemu/edk2-riscv-vars.fd",
            ),
        ],
        other: &[],
    },
    // Debian ships it from edk2 2025.02 on (trixie); bookworm and bookworm-backports have no
    // LoongArch firmware package.
    Uefi {
        arch: Arch::Loongarch64,
        package: Some("qemu-efi-loongarch64"),
        package_note: Some("Debian 13 (trixie) and later; not in Debian 12 or its backports"),
        bios: &["/usr/share/qemu-efi-loongarch64/QEMU_EFI.fd"],
        pflash: &[
            (
                "/usr/share/qemu-efi-loongarch64/QEMU_EFI.fd",
                "/usr/share/qemu-efi-loongarch64/QEMU_VARS.fd",
            ),
            (
                "/usr/share/qemu/edk2-loongarch64-code.fd",
                "/usr/share/qemu/edk2-loongarch64-vars.fd",
            ),
        ],
        other: &[],
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
            Error::infra(format!(
                "`uefi = true` needs UEFI firmware for {arch}, but none was found (looked for {})",
                known.bios.join(", ")
            ))
            .help(format!("{}, or {GIVE_FILE}", install_hint(known)))
        })
}

/// The firmware a kernel with `uefi = true` boots through: its code (read-only pflash unit 0)
/// and the template of its variable store (copied, the copy writable pflash unit 1).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Pflash {
    pub code: PathBuf,
    pub vars: PathBuf,
}

/// The packaged pflash pair for `arch` ([`Uefi::pflash`]), the first one installed.
pub fn find_pflash(arch: Arch) -> Result<Pflash, Error> {
    find_pflash_with(arch, &|p: &Path| p.is_file())
}

/// [`find_pflash`] with the file test given.
pub fn find_pflash_with(arch: Arch, exists: &dyn Fn(&Path) -> bool) -> Result<Pflash, Error> {
    let known = UEFI
        .iter()
        .find(|u| u.arch == arch && !u.pflash.is_empty())
        .ok_or_else(|| {
            Error::usage(format!(
                "`uefi = true` needs UEFI firmware for {arch} that boots from pflash, and no \
                 distribution package provides one"
            ))
            .help(GIVE_FILE)
        })?;
    known
        .pflash
        .iter()
        .find(|(code, vars)| exists(Path::new(code)) && exists(Path::new(vars)))
        .map(|(code, vars)| Pflash {
            code: code.into(),
            vars: vars.into(),
        })
        .ok_or_else(|| {
            let looked: Vec<String> = known
                .pflash
                .iter()
                .map(|(c, v)| format!("{c} with {v}"))
                .collect();
            Error::infra(format!(
                "`uefi = true` needs UEFI firmware for {arch}, but none was found (looked for {})",
                looked.join(", ")
            ))
            .help(format!("{}, or {GIVE_FILE}", install_hint(known)))
        })
}

/// The pflash pair of a firmware file named with `--firmware`: it is the code; its variable
/// store template is the file beside it named as the packages name theirs (`CODE` → `VARS`,
/// `code` → `vars`, `QEMU_EFI` → `QEMU_VARS`: `OVMF_CODE_4M.fd` → `OVMF_VARS_4M.fd`,
/// `edk2-x86_64-code.fd` → `edk2-x86_64-vars.fd`, `QEMU_EFI.fd` → `QEMU_VARS.fd`).
pub fn given_pflash(code: &Path) -> Result<Pflash, Error> {
    let name = code.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let swap = |part: &str, with: &str| {
        name.rfind(part)
            .map(|i| format!("{}{with}{}", &name[..i], &name[i + part.len()..]))
    };
    let vars_name = swap("CODE", "VARS")
        .or_else(|| swap("code", "vars"))
        .or_else(|| swap("QEMU_EFI", "QEMU_VARS"));
    let vars = vars_name.map(|n| code.with_file_name(n));
    match vars {
        Some(vars) if vars.is_file() => Ok(Pflash {
            code: code.to_path_buf(),
            vars,
        }),
        other => Err(Error::usage(format!(
            "--firmware {}: `uefi = true` boots a kernel from pflash (ostool 0.24), which needs \
             the firmware's variable store too, and {}",
            code.display(),
            match other {
                Some(v) => format!("{} is not there", v.display()),
                None => "its name has no CODE, code or QEMU_EFI part to find it by".to_string(),
            }
        ))
        .help(
            "name the split code image (e.g. OVMF_CODE_4M.fd) with its variable store template \
             beside it (OVMF_VARS_4M.fd), or leave --firmware out to use the packaged pair",
        )),
    }
}

/// Where a kernel with `uefi = true` boots from, as ostool 0.24's `prepare_uefi` lays it out in
/// the artifact's directory (here the case's work dir): the EFI system partition
/// `<stem>.esp/EFI/BOOT/BOOT<ARCH>.EFI` (the kernel copied there) and the variable store copy
/// `<stem>.vars.fd`, `<stem>` the booted file's stem; the prepare stage lays it out
/// (`prepare::workdir::lay_out_esp`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EspBoot {
    pub firmware: Pflash,
    /// The directory QEMU serves as a FAT drive.
    pub esp_dir: PathBuf,
    /// `<esp_dir>/EFI/BOOT/BOOT<ARCH>.EFI`.
    pub boot_file: PathBuf,
    /// The writable copy of the variable store template.
    pub vars: PathBuf,
}

impl EspBoot {
    /// The layout for booting `kernel` on `arch` from `work_dir`; `None` for an architecture
    /// UEFI has no removable-media boot file name for.
    pub fn new(firmware: Pflash, arch: Arch, kernel: &Path, work_dir: &Path) -> Option<EspBoot> {
        let stem = kernel
            .file_stem()
            .map_or("kernel".into(), |s| s.to_string_lossy());
        let esp_dir = work_dir.join(format!("{stem}.esp"));
        Some(EspBoot {
            boot_file: esp_dir.join("EFI/BOOT").join(boot_file_name(arch)?),
            vars: work_dir.join(format!("{stem}.vars.fd")),
            esp_dir,
            firmware,
        })
    }

    /// QEMU's arguments, as ostool's `QemuBootSource::UefiPflash` renders them (a comma in a
    /// path doubled, as QEMU's option syntax needs).
    pub fn args(&self) -> [String; 6] {
        let q = |p: &Path| crate::qemu::options::escape(&p.to_string_lossy());
        [
            "-drive".into(),
            format!(
                "if=pflash,format=raw,unit=0,readonly=on,file={}",
                q(&self.firmware.code)
            ),
            "-drive".into(),
            format!("if=pflash,format=raw,unit=1,file={}", q(&self.vars)),
            "-drive".into(),
            format!("format=raw,file=fat:rw:{}", q(&self.esp_dir)),
        ]
    }
}

/// UEFI's removable-media boot file for `arch` (ostool's `default_uefi_boot_filename`).
fn boot_file_name(arch: Arch) -> Option<&'static str> {
    match arch {
        Arch::X86_64 => Some("BOOTX64.EFI"),
        Arch::I386 => Some("BOOTIA32.EFI"),
        Arch::Aarch64 => Some("BOOTAA64.EFI"),
        Arch::Riscv64 => Some("BOOTRISCV64.EFI"),
        Arch::Loongarch64 => Some("BOOTLOONGARCH64.EFI"),
        _ => None,
    }
}

/// How to install `known`'s package.
fn install_hint(known: &Uefi) -> String {
    match (known.package, known.package_note) {
        (Some(p), Some(note)) => format!("install it with `apt-get install {p}` ({note})"),
        (Some(p), None) => format!("install it with `apt-get install {p}`"),
        (None, _) => "install UEFI firmware for it".to_string(),
    }
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

    /// The first pair with both files wins; the message lists the pairs looked for.
    #[test]
    fn pflash_pairs_need_both_files() {
        let code_only = |p: &Path| p.ends_with("OVMF_CODE_4M.fd") || p.ends_with("OVMF_CODE.fd");
        let with_vars = |p: &Path| code_only(p) || p.ends_with("OVMF/OVMF_VARS.fd");
        assert_eq!(
            find_pflash_with(Arch::X86_64, &with_vars).unwrap(),
            Pflash {
                code: "/usr/share/OVMF/OVMF_CODE.fd".into(),
                vars: "/usr/share/OVMF/OVMF_VARS.fd".into()
            }
        );
        let e = find_pflash_with(Arch::X86_64, &code_only).unwrap_err();
        assert!(
            e.message.contains(
                "(looked for /usr/share/OVMF/OVMF_CODE_4M.fd with /usr/share/OVMF/OVMF_VARS_4M.fd, "
            ),
            "{e}"
        );
        assert!(e.help.unwrap().contains("apt-get install ovmf"));
        assert_eq!(
            find_pflash_with(Arch::I386, &|_| true).unwrap_err().kind,
            ErrorKind::Usage
        );
    }

    /// ostool's `default_uefi_boot_filename`, and its layout: `<stem>.esp`, `<stem>.vars.fd`.
    #[test]
    fn esp_layout_is_ostools() {
        let fw = Pflash {
            code: "/fw/CODE.fd".into(),
            vars: "/fw/VARS.fd".into(),
        };
        for (arch, file) in [
            (Arch::X86_64, "BOOTX64.EFI"),
            (Arch::Aarch64, "BOOTAA64.EFI"),
            (Arch::Riscv64, "BOOTRISCV64.EFI"),
            (Arch::Loongarch64, "BOOTLOONGARCH64.EFI"),
            (Arch::I386, "BOOTIA32.EFI"),
        ] {
            let esp =
                EspBoot::new(fw.clone(), arch, Path::new("/o/a.bin"), Path::new("/w")).unwrap();
            assert_eq!(esp.boot_file, Path::new("/w/a.esp/EFI/BOOT").join(file));
            assert_eq!(esp.vars, Path::new("/w/a.vars.fd"));
        }
        assert!(EspBoot::new(fw.clone(), Arch::Arm, Path::new("/k"), Path::new("/w")).is_none());
        // A comma in a path is doubled, as QEMU's option syntax needs.
        let esp =
            EspBoot::new(fw, Arch::X86_64, Path::new("/k/kernel"), Path::new("/a,b")).unwrap();
        assert_eq!(esp.args()[5], "format=raw,file=fat:rw:/a,,b/kernel.esp");
    }

    /// `--firmware CODE` finds its variable store beside it by the packages' naming.
    #[test]
    fn given_firmware_finds_its_vars_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        for (code, vars) in [
            ("OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd"),
            ("edk2-x86_64-code.fd", "edk2-x86_64-vars.fd"),
            ("QEMU_EFI.fd", "QEMU_VARS.fd"),
        ] {
            std::fs::write(dir.path().join(code), b"c").unwrap();
            std::fs::write(dir.path().join(vars), b"v").unwrap();
            let got = given_pflash(&dir.path().join(code)).unwrap();
            assert_eq!(got.vars, dir.path().join(vars));
        }
        std::fs::write(dir.path().join("OVMF.fd"), b"c").unwrap();
        let e = given_pflash(&dir.path().join("OVMF.fd")).unwrap_err();
        assert!(e.message.contains("no CODE, code or QEMU_EFI part"), "{e}");
    }

    #[test]
    fn this_host_has_the_packaged_firmware() {
        // The CI image installs qemu-efi-aarch64 and ovmf; the path must resolve for real.
        for arch in [Arch::Aarch64, Arch::X86_64] {
            let path = find(arch).unwrap_or_else(|e| panic!("{e}"));
            assert!(path.is_file(), "{}", path.display());
            let pair = find_pflash(arch).unwrap_or_else(|e| panic!("{e}"));
            assert!(pair.code.is_file() && pair.vars.is_file(), "{pair:?}");
        }
    }
}
