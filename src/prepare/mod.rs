//! Per-case work directories: patched VM configs, rootfs copies and injected kernels.
//!
//! Replaces the CI's `sed` on tracked files: the user's VM configs are copied into the work
//! dir and patched there, the image's `rootfs.img` is copied per run (QEMU writes to it), `fs`
//! guests get their kernel injected into that copy, and the QEMU disk arguments are pointed at
//! it. Every change is reported as one sentence.

pub mod drives;
pub mod rootfs;
pub mod vmconfig;
pub mod workdir;

use std::path::{Path, PathBuf};

use crate::arch::Arch;
use crate::error::Error;

/// The files of an extracted guest image that preparation can use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageFiles {
    /// The extracted image directory (absolute).
    pub dir: PathBuf,
    /// For `kernel_path` (axvisor-guest: `qemu-<arch>`).
    pub kernel: Option<PathBuf>,
    /// For `bios_path` (`axvm-bios.bin`).
    pub bios: Option<PathBuf>,
    /// For `dtb_path`.
    pub dtb: Option<PathBuf>,
    /// For `ramdisk_path`.
    pub ramdisk: Option<PathBuf>,
    /// The guest disk, copied per run (`rootfs.img`).
    pub rootfs: Option<PathBuf>,
}

impl ImageFiles {
    /// Finds the files of the axvisor-guest layout (axvisor.md §5.3) in `dir`: `qemu-<arch>`,
    /// `axvm-bios.bin`, a single `*.dtb`, `initramfs.cpio.gz` (ramdisk) and `rootfs.img`.
    pub fn discover(dir: &Path, arch: Arch) -> ImageFiles {
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let file = |name: &str| Some(dir.join(name)).filter(|p| p.is_file());
        ImageFiles {
            kernel: file(&format!("qemu-{}", arch.name())),
            bios: file("axvm-bios.bin"),
            dtb: single_dtb(&dir),
            ramdisk: file("initramfs.cpio.gz"),
            rootfs: file("rootfs.img"),
            dir,
        }
    }
}

impl ImageFiles {
    /// The files of a pulled image: [`ImageFiles::discover`] in its directory, with the rootfs
    /// the image names ([`crate::image::LocalImage::rootfs`]: `rootfs.img`, or the file a
    /// tgosimages rootfs image is named after, `rootfs-aarch64-alpine.img`).
    pub fn of(image: &crate::image::LocalImage, arch: Arch) -> ImageFiles {
        let mut files = ImageFiles::discover(&image.dir, arch);
        files.rootfs = image
            .rootfs()
            .map(|p| files.dir.join(p.strip_prefix(&image.dir).unwrap_or(&p)));
        files
    }
}

fn single_dtb(dir: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut dtbs = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "dtb"));
    let first = dtbs.next()?;
    dtbs.next().is_none().then_some(first)
}

/// What to prepare for one case.
#[derive(Debug, Clone)]
pub struct PrepareRequest<'a> {
    /// From [`workdir::case_dir`] or given by the user; created if missing.
    pub work_dir: &'a Path,
    /// The user's VM configs, read only.
    pub vm_configs: &'a [PathBuf],
    /// The extracted guest image, if the case uses one.
    pub image: Option<&'a ImageFiles>,
    /// Further images whose rootfs is another disk of the config, by image name: each copied
    /// per run and put on the drive that names its file.
    pub extra_images: &'a [(String, ImageFiles)],
    /// QEMU arguments after `${workspaceFolder}` substitution.
    pub qemu_args: &'a [String],
}

/// The prepared case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// Patched copies, in order: the value of `AXVISOR_VM_CONFIGS` for the build.
    pub vm_configs: Vec<PathBuf>,
    /// The QEMU arguments with the rootfs disk pointed at the copy (or removed).
    pub qemu_args: Vec<String>,
    /// The per-run copy of the image's `rootfs.img`.
    pub rootfs: Option<PathBuf>,
    /// One sentence per change, for the log and the summary.
    pub notes: Vec<String>,
    /// The host files of the guests' kernels the VM configs boot, in config order (see
    /// [`vmconfig::PatchedConfig::guest_kernel`]); they may not exist or be ELF files.
    pub guest_kernels: Vec<PathBuf>,
}

/// Prepares the work dir for one case. Reads the user's files, writes only under `work_dir`.
pub async fn prepare(req: &PrepareRequest<'_>) -> Result<Prepared, Error> {
    workdir::create(req.work_dir)?;
    let mut notes = Vec::new();
    let mut configs = Vec::new();
    let mut injections = Vec::new();
    let mut guest_kernels = Vec::new();
    for (index, original) in req.vm_configs.iter().enumerate() {
        let patched = vmconfig::patch(original, req.image)?;
        let copy = workdir::config_copy(req.work_dir, req.vm_configs, index);
        workdir::write_file(&copy, patched.text.as_bytes())?;
        notes.push(format!(
            "{} is used as the patched copy {}.",
            original.display(),
            copy.display()
        ));
        notes.extend(patched.notes);
        injections.extend(patched.injections);
        guest_kernels.extend(patched.guest_kernel);
        configs.push(copy);
    }
    let rootfs = copy_rootfs(req, &mut notes)?;
    if !injections.is_empty() {
        let Some(copy) = &rootfs else {
            return Err(Error::config(
                "a VM config has image_location = \"fs\", but the image has no rootfs.img to put its kernel on",
            )
            .help("use an image with a rootfs.img, or set image_location = \"memory\""));
        };
        notes.extend(rootfs::inject(copy, &injections).await?);
    }
    let qemu_args = match req.image {
        Some(image) => {
            // The rootfs's own file name: a tgosimages rootfs image's file is named after the
            // image (`rootfs-riscv64-alpine.img`), the one drive under axbuild's directory it is.
            let name = image
                .rootfs
                .as_ref()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let disks = drives::rootfs_args(req.qemu_args, rootfs.as_deref(), &name);
            if rootfs.is_some() && !disks.attached {
                notes.push("The image's rootfs.img is not attached: no -drive in the QEMU arguments has file=…/rootfs.img.".into());
            }
            notes.extend(disks.notes);
            let mut args = disks.args;
            for (name, files) in req.extra_images {
                let Some(source) = &files.rootfs else {
                    continue;
                };
                let copy = req.work_dir.join(name);
                copy_for_run(source, &copy, &mut notes)?;
                let disks = drives::extra_disk_args(&args, &copy, name);
                notes.extend(disks.notes);
                args = disks.args;
            }
            args
        }
        None => req.qemu_args.to_vec(),
    };
    Ok(Prepared {
        vm_configs: configs,
        qemu_args,
        rootfs,
        notes,
        guest_kernels,
    })
}

fn copy_rootfs(
    req: &PrepareRequest<'_>,
    notes: &mut Vec<String>,
) -> Result<Option<PathBuf>, Error> {
    let Some(source) = req.image.and_then(|i| i.rootfs.as_deref()) else {
        return Ok(None);
    };
    let copy = workdir::rootfs_copy(req.work_dir);
    copy_for_run(source, &copy, notes)?;
    Ok(Some(copy))
}

/// Copies an image's disk `source` to `copy` in the work dir, which the guest then writes.
fn copy_for_run(source: &Path, copy: &Path, notes: &mut Vec<String>) -> Result<(), Error> {
    workdir::copy_file(source, copy)?;
    notes.push(format!(
        "{} copied to {} so the guest writes to a per-run copy.",
        source.display(),
        copy.display()
    ));
    Ok(())
}
