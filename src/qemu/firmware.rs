//! UEFI firmware for `uefi = true`, taken from the distribution's packages (or a file the user
//! names), never downloaded: ostool fetches OVMF from the network, which fails offline and adds
//! an unpinned dependency to every run.

use std::path::{Path, PathBuf};

use crate::arch::Arch;
use crate::error::Error;

/// Where Debian and Ubuntu install a UEFI firmware usable with `-bios`, and the package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Installed {
    /// The Debian/Ubuntu package to install.
    pub package: &'static str,
    /// Candidate files, most preferred first.
    pub paths: &'static [&'static str],
}

/// The packaged firmware for `arch`, if Debian ships one that boots with `-bios`.
/// (riscv64's EDK2 build needs pflash plus OpenSBI, so it is not offered here.)
pub fn installed(arch: Arch) -> Option<Installed> {
    match arch {
        Arch::Aarch64 => Some(Installed {
            package: "qemu-efi-aarch64",
            paths: &[
                "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd",
                "/usr/share/AAVMF/AAVMF_CODE.fd",
            ],
        }),
        Arch::Arm => Some(Installed {
            package: "qemu-efi-arm",
            paths: &["/usr/share/AAVMF/AAVMF32_CODE.fd"],
        }),
        Arch::X86_64 => Some(Installed {
            package: "ovmf",
            paths: &[
                "/usr/share/ovmf/OVMF.fd",
                "/usr/share/OVMF/OVMF.fd",
                "/usr/share/qemu/OVMF.fd",
            ],
        }),
        _ => None,
    }
}

/// The firmware file to pass to `-bios` for `arch`, from the installed packages.
pub fn find(arch: Arch) -> Result<PathBuf, Error> {
    find_with(arch, &|p: &Path| p.is_file())
}

fn find_with(arch: Arch, exists: &dyn Fn(&Path) -> bool) -> Result<PathBuf, Error> {
    let Some(known) = installed(arch) else {
        return Err(Error::usage(format!(
            "`uefi = true` needs UEFI firmware, and none is packaged for {arch} that boots with -bios"
        ))
        .help("pass --firmware FILE with a firmware image for this architecture"));
    };
    known
        .paths
        .iter()
        .map(Path::new)
        .find(|p| exists(p))
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            Error::infra(format!(
                "`uefi = true` needs UEFI firmware for {arch}, but none was found (looked for {})",
                known.paths.join(", ")
            ))
            .help(format!(
                "install it with `apt-get install {}`, or pass --firmware FILE",
                known.package
            ))
        })
}

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
