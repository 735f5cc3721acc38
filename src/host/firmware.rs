//! UEFI firmware images (needed by `uefi = true` cases), looked for where distributions and
//! QEMU's own install put them.

use std::path::{Path, PathBuf};

use crate::arch::Arch;

use super::model::Firmware;

/// Known locations per architecture, best first, and the Debian package that ships them.
const KNOWN: &[(Arch, Option<&str>, &[&str])] = &[
    (
        Arch::X86_64,
        Some("ovmf"),
        &[
            "/usr/share/ovmf/OVMF.fd",
            "/usr/share/OVMF/OVMF.fd",
            "/usr/share/qemu/OVMF.fd",
            "/usr/share/OVMF/OVMF_CODE.fd",
            "/usr/share/OVMF/OVMF_CODE_4M.fd",
            "/usr/share/edk2/ovmf/OVMF_CODE.fd",
            "/usr/share/edk2/x64/OVMF_CODE.fd",
            "/usr/share/qemu/edk2-x86_64-code.fd",
        ],
    ),
    (
        Arch::Aarch64,
        Some("qemu-efi-aarch64"),
        &[
            "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd",
            "/usr/share/AAVMF/AAVMF_CODE.fd",
            "/usr/share/edk2/aarch64/QEMU_EFI.fd",
            "/usr/share/qemu/edk2-aarch64-code.fd",
        ],
    ),
    (
        Arch::Arm,
        Some("qemu-efi-arm"),
        &[
            "/usr/share/AAVMF/AAVMF32_CODE.fd",
            "/usr/share/qemu/edk2-arm-code.fd",
        ],
    ),
    (Arch::Riscv64, None, &["/usr/share/qemu/edk2-riscv-code.fd"]),
    (
        Arch::Loongarch64,
        None,
        &["/usr/share/qemu/edk2-loongarch64-code.fd"],
    ),
];

/// Firmware found under `root` (`/` on a real host) for every architecture with known paths.
pub fn find_all(root: &Path) -> Vec<Firmware> {
    KNOWN
        .iter()
        .map(|(arch, package, paths)| Firmware {
            arch: *arch,
            found: paths
                .iter()
                .map(PathBuf::from)
                .filter(|p| rooted(root, p).is_file())
                .collect(),
            package: package.map(str::to_string),
        })
        .collect()
}

fn rooted(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_files_in_preference_order() {
        let root = tempfile::tempdir().unwrap();
        for p in ["usr/share/OVMF/OVMF_CODE.fd", "usr/share/ovmf/OVMF.fd"] {
            let file = root.path().join(p);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, b"fd").unwrap();
        }
        let all = find_all(root.path());
        let x86 = all.iter().find(|f| f.arch == Arch::X86_64).unwrap();
        assert_eq!(
            x86.found,
            vec![
                PathBuf::from("/usr/share/ovmf/OVMF.fd"),
                PathBuf::from("/usr/share/OVMF/OVMF_CODE.fd")
            ]
        );
        let arm64 = all.iter().find(|f| f.arch == Arch::Aarch64).unwrap();
        assert!(arm64.found.is_empty());
        assert_eq!(arm64.package.as_deref(), Some("qemu-efi-aarch64"));
    }
}
