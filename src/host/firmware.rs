//! UEFI firmware images (needed by `uefi = true` cases), looked for where distributions and
//! QEMU's own install put them.

use std::path::{Path, PathBuf};

use super::model::Firmware;

/// Firmware found under `root` (`/` on a real host) for every architecture in the one firmware
/// table ([`crate::qemu::firmware::UEFI`]).
/// `pflash` is what a run with `uefi = true` boots a kernel through
/// ([`crate::qemu::firmware::find_pflash_with`]), `bios` what a firmware-only guest takes
/// ([`crate::qemu::firmware::find_with`]).
pub fn find_all(root: &Path) -> Vec<Firmware> {
    let exists = |p: &Path| rooted(root, p).is_file();
    crate::qemu::firmware::UEFI
        .iter()
        .map(|u| Firmware {
            arch: u.arch,
            found: u
                .paths()
                .into_iter()
                .map(PathBuf::from)
                .filter(|p| exists(p))
                .collect(),
            bios: crate::qemu::firmware::find_with(u.arch, &exists).ok(),
            pflash: crate::qemu::firmware::find_pflash_with(u.arch, &exists).ok(),
            package: u.package.map(str::to_string),
        })
        .collect()
}

fn rooted(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Arch;

    #[test]
    fn finds_files_in_preference_order() {
        let root = tempfile::tempdir().unwrap();
        for p in [
            "usr/share/OVMF/OVMF_CODE.fd",
            "usr/share/ovmf/OVMF.fd",
            "usr/share/qemu/edk2-x86_64-code.fd",
            "usr/share/qemu/edk2-i386-vars.fd",
        ] {
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
                PathBuf::from("/usr/share/OVMF/OVMF_CODE.fd"),
                PathBuf::from("/usr/share/qemu/edk2-x86_64-code.fd"),
                PathBuf::from("/usr/share/qemu/edk2-i386-vars.fd"),
            ]
        );
        // OVMF_CODE.fd has no OVMF_VARS.fd here: QEMU's own pair is what a kernel boots with.
        assert_eq!(
            x86.pflash.as_ref().map(|p| p.code.as_path()),
            Some(Path::new("/usr/share/qemu/edk2-x86_64-code.fd"))
        );
        assert_eq!(
            x86.bios.as_deref(),
            Some(Path::new("/usr/share/ovmf/OVMF.fd"))
        );
        let arm64 = all.iter().find(|f| f.arch == Arch::Aarch64).unwrap();
        assert!(arm64.found.is_empty());
        assert_eq!(arm64.bios, None);
        assert_eq!(arm64.pflash, None);
        assert_eq!(arm64.package.as_deref(), Some("qemu-efi-aarch64"));
    }
}
