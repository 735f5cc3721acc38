//! Pointing the QEMU rootfs disk at the per-run copy, or removing it when the image has none:
//! by drive id (`-drive id=X` and the `-device …,drive=X` that uses it), never by line ranges
//! like the CI's `sed`.

use std::path::Path;

use crate::qemu::options;

/// The QEMU arguments after the rootfs change, and one sentence per change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootfsArgs {
    /// The rewritten arguments.
    pub args: Vec<String>,
    /// One sentence per change.
    pub notes: Vec<String>,
    /// Whether a drive now uses the rootfs copy.
    pub attached: bool,
}

/// The file name that marks a `-drive` as the rootfs disk (AxVisor's `…/tmp/rootfs.img`).
const ROOTFS_NAME: &str = "rootfs.img";
/// Where axbuild puts the rootfs images a QEMU config names.
pub const ROOTFS_DIR: &str = "tmp/axbuild/rootfs/";

/// Rewrites every `-drive` that is image `image`'s disk ([`replaced_by`]) to use `rootfs`, or,
/// when `rootfs` is `None`, removes it, the `-device` that references its id and
/// `root=/dev/vda` in `-append`. Pure: usable for dry runs.
pub fn rootfs_args(args: &[String], rootfs: Option<&Path>, image: &str) -> RootfsArgs {
    rewrite(args, rootfs, |v| replaced_by(v, image))
}

/// Rewrites the `-drive`s naming `image`'s own file in axbuild's rootfs directory (a further
/// disk of the config, StarryOS' busybox beside alpine) to use `copy`, its per-run copy.
pub fn extra_disk_args(args: &[String], copy: &Path, image: &str) -> RootfsArgs {
    rewrite(args, Some(copy), |v| names_in_rootfs_dir(v, image))
}

fn rewrite(args: &[String], rootfs: Option<&Path>, is_disk: impl Fn(&str) -> bool) -> RootfsArgs {
    let mut out = RootfsArgs {
        args: Vec::with_capacity(args.len()),
        notes: Vec::new(),
        attached: false,
    };
    let mut removed_ids = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let (flag, value) = (&args[i], args.get(i + 1));
        match value.filter(|_| is_flag(flag, "drive")) {
            Some(v) if is_disk(v) => {
                let parts = options::split(v);
                let id = options::value(&parts, "id").unwrap_or_default().to_string();
                match rootfs {
                    Some(copy) => {
                        out.args.push(flag.clone());
                        out.args.push(with_file(v, copy));
                        out.attached = true;
                        out.notes.push(format!(
                            "-drive {} now uses the per-run rootfs copy {}.",
                            label(&id),
                            copy.display()
                        ));
                    }
                    None => removed_ids.push(id),
                }
                i += 2;
            }
            _ => {
                out.args.push(flag.clone());
                i += 1;
            }
        }
    }
    if !removed_ids.is_empty() {
        out.args = remove_users(&out.args, &removed_ids, &mut out.notes);
    }
    out
}

fn is_flag(arg: &str, name: &str) -> bool {
    arg.strip_prefix("--")
        .or_else(|| arg.strip_prefix('-'))
        .is_some_and(|a| a == name)
}

fn label(id: &str) -> String {
    if id.is_empty() {
        "(no id)".into()
    } else {
        format!("id={id}")
    }
}

/// Whether the `-drive` value is the disk that image `image`'s rootfs copy replaces (so the
/// user's tree is never written): a `rootfs.img` (AxVisor's `…/tmp/rootfs.img`), or the file of
/// that name in axbuild's rootfs directory (tgoskits' `${workspace}/tmp/axbuild/rootfs/
/// rootfs-<arch>-alpine.img` for the image `rootfs-<arch>-alpine.img`). Another file there (a
/// second image, StarryOS' `rootfs-<arch>-busybox.img`) is not this image's disk.
pub fn replaced_by(value: &str, image: &str) -> bool {
    let rootfs_img = options::value(&options::split(value), "file")
        .is_some_and(|f| Path::new(f).file_name().is_some_and(|n| n == ROOTFS_NAME));
    rootfs_img || names_in_rootfs_dir(value, image)
}

/// Whether the `-drive` value names the file `name` in axbuild's rootfs directory.
fn names_in_rootfs_dir(value: &str, name: &str) -> bool {
    options::value(&options::split(value), "file").is_some_and(|f| {
        let p = Path::new(f);
        p.parent().is_some_and(|d| d.ends_with(ROOTFS_DIR))
            && p.file_name().is_some_and(|n| n == name)
    })
}

/// Removes the `-device`s that use the removed drives and their `root=/dev/vda` boot argument.
fn remove_users(args: &[String], ids: &[String], notes: &mut Vec<String>) -> Vec<String> {
    for id in ids {
        notes.push(format!(
            "-drive {} removed: the image has no {ROOTFS_NAME}.",
            label(id)
        ));
    }
    let mut out = Vec::with_capacity(args.len());
    let mut i = 0;
    while i < args.len() {
        let (flag, value) = (&args[i], args.get(i + 1));
        if let Some(v) = value.filter(|_| is_flag(flag, "device")) {
            let parts = options::split(v);
            if options::value(&parts, "drive").is_some_and(|d| ids.iter().any(|i| i == d)) {
                notes.push(format!("-device {v} removed: its drive was removed."));
                i += 2;
                continue;
            }
        }
        if let Some(v) = value.filter(|_| is_flag(flag, "append")) {
            let kept: Vec<&str> = v
                .split_whitespace()
                .filter(|w| *w != "root=/dev/vda")
                .collect();
            if kept.len() != v.split_whitespace().count() {
                notes.push("root=/dev/vda removed from -append: its disk was removed.".into());
                if !kept.is_empty() {
                    out.extend([flag.clone(), kept.join(" ")]);
                }
                i += 2;
                continue;
            }
        }
        out.push(flag.clone());
        i += 1;
    }
    out
}

/// The drive option string with `file=` replaced (commas in the path escaped).
fn with_file(value: &str, file: &Path) -> String {
    let escaped = options::escape(&file.to_string_lossy());
    options::split(value)
        .into_iter()
        .map(|p| {
            if p.starts_with("file=") {
                format!("file={escaped}")
            } else {
                options::escape(&p)
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    const AARCH64: [&str; 8] = [
        "-device",
        "virtio-blk-device,drive=disk0",
        "-drive",
        "id=disk0,if=none,format=raw,file=/ws/tmp/rootfs.img",
        "-append",
        "root=/dev/vda rw init=/init",
        "-m",
        "8g",
    ];

    #[test]
    fn rootfs_drive_points_at_the_copy() {
        let r = rootfs_args(
            &args(&AARCH64),
            Some(Path::new("/out/cases/a,b/rootfs.img")),
            "qemu_aarch64_linux",
        );
        assert_eq!(
            r.args[3],
            "id=disk0,if=none,format=raw,file=/out/cases/a,,b/rootfs.img"
        );
        assert_eq!(r.args.len(), 8);
        assert!(r.attached);
        assert_eq!(r.notes.len(), 1);
    }

    #[test]
    fn no_rootfs_removes_drive_device_and_root_arg_by_id() {
        // The device comes before its drive and an unrelated disk stays.
        let mut list = args(&AARCH64);
        list.extend(args(&[
            "-drive",
            "id=d1,if=none,file=/x/other.img",
            "-device",
            "virtio-blk-pci,drive=d1",
        ]));
        let r = rootfs_args(&list, None, "qemu_aarch64_linux");
        assert_eq!(
            r.args,
            args(&[
                "-append",
                "rw init=/init",
                "-m",
                "8g",
                "-drive",
                "id=d1,if=none,file=/x/other.img",
                "-device",
                "virtio-blk-pci,drive=d1"
            ])
        );
        assert!(!r.attached);
        assert_eq!(r.notes.len(), 3, "{:?}", r.notes);
    }

    #[test]
    fn escaped_commas_are_one_option() {
        let alpine = "rootfs-riscv64-alpine.img";
        assert!(!replaced_by("file=/x/rootfs.img,,bak", alpine));
        assert!(replaced_by("if=virtio,file=rootfs.img", alpine));
        assert!(replaced_by(
            "id=disk0,if=none,format=raw,file=/ws/tmp/axbuild/rootfs/rootfs-riscv64-alpine.img",
            alpine
        ));
        assert!(!replaced_by("file=/ws/tmp/axbuild/other/x.img", alpine));
    }

    /// StarryOS' configs name two images under axbuild's rootfs directory (alpine on NVMe,
    /// busybox on USB, `snapshot=on`): only the case's image's drive gets its copy; pointing both
    /// at one copy booted the wrong disk, and QEMU refused the second (its "write" lock).
    #[test]
    fn only_the_images_own_drive_is_replaced() {
        let list = args(&[
            "-drive",
            "id=nvm,if=none,format=raw,file=/ws/tmp/axbuild/rootfs/rootfs-riscv64-alpine.img",
            "-drive",
            "id=usbdisk,if=none,format=raw,snapshot=on,file=/ws/tmp/axbuild/rootfs/rootfs-riscv64-busybox.img",
        ]);
        let r = rootfs_args(
            &list,
            Some(Path::new("/out/c/rootfs.img")),
            "rootfs-riscv64-alpine.img",
        );
        assert_eq!(
            r.args,
            args(&[
                "-drive",
                "id=nvm,if=none,format=raw,file=/out/c/rootfs.img",
                "-drive",
                "id=usbdisk,if=none,format=raw,snapshot=on,file=/ws/tmp/axbuild/rootfs/rootfs-riscv64-busybox.img",
            ])
        );
        assert_eq!(r.notes.len(), 1);
    }
}
