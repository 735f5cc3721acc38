//! Preparing AxVisor's real VM configs and QEMU configs in a per-case work dir: memory-mode
//! patching, fs-mode injection into FAT and ext4 rootfs copies, disk removal, and a checkout
//! that is byte-for-byte unchanged afterwards.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use qemu_test_action::arch::Arch;
use qemu_test_action::prepare::{ImageFiles, PrepareRequest, Prepared, prepare, workdir};
use sha2::{Digest, Sha256};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/axvisor");

/// A temporary copy of AxVisor's files, so nothing under tests/data is ever written.
fn workspace() -> tempfile::TempDir {
    let ws = tempfile::tempdir().unwrap();
    copy_tree(Path::new(DATA), ws.path());
    ws
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// SHA-256 of every file under `root`, by relative path.
fn hash_tree(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let digest = Sha256::digest(std::fs::read(&path).unwrap());
                let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                out.insert(path.strip_prefix(root).unwrap().to_path_buf(), hex);
            }
        }
    }
    out
}

/// The `args` of one of AxVisor's QEMU TOMLs with `${workspaceFolder}` substituted.
fn qemu_args(ws: &Path, arch: &str) -> Vec<String> {
    let path = ws.join(format!(".github/workflows/qemu-{arch}.toml"));
    let doc: toml_edit::DocumentMut = std::fs::read_to_string(path).unwrap().parse().unwrap();
    doc["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            v.as_str()
                .unwrap()
                .replace("${workspaceFolder}", &ws.to_string_lossy())
        })
        .collect()
}

/// An extracted image in the axvisor-guest layout with the given files.
fn image_dir(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    dir
}

async fn run(ws: &Path, out: &Path, configs: &[&str], image: &ImageFiles, arch: &str) -> Prepared {
    let configs: Vec<PathBuf> = configs
        .iter()
        .map(|c| ws.join("configs/vms").join(c))
        .collect();
    let args = qemu_args(ws, arch);
    let work = workdir::case_dir(out, "case");
    let req = PrepareRequest {
        work_dir: &work,
        vm_configs: &configs,
        image: Some(image),
        extra_images: &[],
        qemu_args: &args,
    };
    prepare(&req).await.unwrap()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn memory_configs_get_image_paths_and_keep_their_comments() {
    let ws = workspace();
    let out = tempfile::tempdir().unwrap();
    let img = image_dir(&[
        ("qemu-aarch64", b"kernel"),
        ("rootfs.img", b"disk"),
        ("initramfs.cpio.gz", b"cpio"),
    ]);
    let files = ImageFiles::discover(img.path(), Arch::Aarch64);
    let kernel = img.path().join("qemu-aarch64");
    let configs = [
        "arceos-aarch64-qemu-smp1.toml",
        "linux-aarch64-qemu-smp1.toml",
    ];
    let p = run(ws.path(), out.path(), &configs, &files, "aarch64").await;

    let arceos = read(&ws.path().join("configs/vms").join(configs[0]));
    let expected = arceos.replace(
        "kernel_path = \"path/arceos-aarch64-dyn-smp1.bin\"",
        &format!("kernel_path = \"{}\"", kernel.display()),
    );
    assert_ne!(arceos, expected);
    assert_eq!(read(&p.vm_configs[0]), expected);

    // Linux: the live key changes, the commented-out one above it stays.
    let linux = read(&p.vm_configs[1]);
    assert!(
        linux.contains("# kernel_path = \"linux-6.6.62.bin\"\n"),
        "{linux}"
    );
    assert!(
        linux.contains(&format!("\nkernel_path = \"{}\"\n", kernel.display())),
        "{linux}"
    );
    assert!(
        !linux.contains("/tmp/axvisor/qemu_aarch64_linux"),
        "{linux}"
    );
    // The image's initramfs is not forced on configs that set no ramdisk_path.
    assert!(!linux.contains("initramfs"), "{linux}");
    assert!(p.vm_configs.iter().all(|c| c.starts_with(out.path())));

    // The rootfs disk now uses the per-run copy.
    let copy = p.rootfs.clone().unwrap();
    assert_eq!(std::fs::read(&copy).unwrap(), b"disk");
    assert!(p.qemu_args.contains(&format!(
        "id=disk0,if=none,format=raw,file={}",
        copy.display()
    )));
    assert!(
        p.qemu_args
            .contains(&"root=/dev/vda rw init=/init".to_string())
    );
    assert!(
        p.notes
            .iter()
            .any(|n| n.contains("-drive id=disk0 now uses")),
        "{:?}",
        p.notes
    );
}

#[tokio::test(flavor = "current_thread")]
async fn nimbos_memory_config_gets_kernel_and_bios() {
    let ws = workspace();
    let out = tempfile::tempdir().unwrap();
    let img = image_dir(&[
        ("qemu-x86_64", b"k"),
        ("axvm-bios.bin", b"b"),
        ("rootfs.img", b"d"),
    ]);
    let files = ImageFiles::discover(img.path(), Arch::X86_64);
    let p = run(
        ws.path(),
        out.path(),
        &["nimbos-x86_64-qemu-smp1.toml"],
        &files,
        "x86_64",
    )
    .await;
    let original = read(&ws.path().join("configs/vms/nimbos-x86_64-qemu-smp1.toml"));
    let dir = "/tmp/.axvisor-images/qemu_x86_64_nimbos";
    let expected = original.replace(dir, &img.path().to_string_lossy());
    assert_eq!(read(&p.vm_configs[0]), expected);
    assert!(expected.contains("# NimbOS x86_64 needs axvm-bios at 0x8000"));
}

#[tokio::test(flavor = "current_thread")]
async fn image_without_rootfs_drops_the_disk_by_id() {
    let ws = workspace();
    let out = tempfile::tempdir().unwrap();
    let img = image_dir(&[("qemu-aarch64", b"kernel")]);
    let files = ImageFiles::discover(img.path(), Arch::Aarch64);
    let p = run(
        ws.path(),
        out.path(),
        &["arceos-aarch64-qemu-smp1.toml"],
        &files,
        "aarch64",
    )
    .await;
    let expected: Vec<String> = [
        "-nographic",
        "-cpu",
        "cortex-a72",
        "-machine",
        "virt,virtualization=on,gic-version=3",
        "-smp",
        "4",
        "-append",
        "rw init=/init",
        "-m",
        "8g",
    ]
    .map(String::from)
    .to_vec();
    assert_eq!(p.qemu_args, expected);
    assert_eq!(p.rootfs, None);
    let removed = p.notes.iter().filter(|n| n.contains("removed")).count();
    assert_eq!(removed, 3, "{:?}", p.notes);
}

/// AxVisor's x86_64 NimbOS config as it was in fs mode (axvisor.md §7.1): paths on the disk.
fn nimbos_fs_config(ws: &Path, kernel_path: &str) -> &'static str {
    let path = ws.join("configs/vms/nimbos-x86_64-qemu-smp1.toml");
    let text = read(&path)
        .replace("image_location = \"memory\"", "image_location = \"fs\"")
        .replace(
            "/tmp/.axvisor-images/qemu_x86_64_nimbos/qemu-x86_64",
            kernel_path,
        )
        .replace(
            "/tmp/.axvisor-images/qemu_x86_64_nimbos/axvm-bios.bin",
            "axvm-bios.bin",
        );
    std::fs::write(ws.join("configs/vms/nimbos-fs.toml"), text).unwrap();
    "nimbos-fs.toml"
}

fn fat_image(path: &Path, old_kernel: &[u8]) {
    let file = std::fs::File::create(path).unwrap();
    file.set_len(64 << 20).unwrap();
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    fatfs::format_volume(
        &mut file,
        fatfs::FormatVolumeOptions::new().fat_type(fatfs::FatType::Fat32),
    )
    .unwrap();
    let fs = fatfs::FileSystem::new(file, fatfs::FsOptions::new()).unwrap();
    let mut f = fs.root_dir().create_file("nimbos-x86_64.bin").unwrap();
    std::io::Write::write_all(&mut f, old_kernel).unwrap();
    drop(f);
    fs.unmount().unwrap();
}

fn fat_read(image: &Path, path: &str) -> Vec<u8> {
    let file = std::fs::File::open(image).unwrap();
    let fs = fatfs::FileSystem::new(file, fatfs::FsOptions::new()).unwrap();
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut fs.root_dir().open_file(path).unwrap(), &mut bytes).unwrap();
    bytes
}

#[tokio::test(flavor = "current_thread")]
async fn fs_config_kernel_and_bios_are_injected_into_a_fat_copy() {
    let ws = workspace();
    let out = tempfile::tempdir().unwrap();
    let img = image_dir(&[("qemu-x86_64", b"new kernel"), ("axvm-bios.bin", b"bios")]);
    let rootfs = img.path().join("rootfs.img");
    fat_image(&rootfs, &[7u8; 100_000]);
    let before = std::fs::read(&rootfs).unwrap();
    let files = ImageFiles::discover(img.path(), Arch::X86_64);
    let cfg = nimbos_fs_config(ws.path(), "nimbos-x86_64.bin");
    let p = run(ws.path(), out.path(), &[cfg], &files, "x86_64").await;

    let copy = p.rootfs.clone().unwrap();
    assert_eq!(fat_read(&copy, "nimbos-x86_64.bin"), b"new kernel");
    assert_eq!(fat_read(&copy, "axvm-bios.bin"), b"bios");
    assert_eq!(
        std::fs::read(&rootfs).unwrap(),
        before,
        "the image's own rootfs.img is untouched"
    );
    // fs mode keeps the config's paths: they name files on the guest disk.
    assert!(read(&p.vm_configs[0]).contains("kernel_path = \"nimbos-x86_64.bin\""));
    assert!(
        p.notes
            .iter()
            .any(|n| n.contains("injected as /axvm-bios.bin into the FAT rootfs copy"))
    );
}

fn debugfs_cat(image: &Path, path: &str) -> Vec<u8> {
    let out = Command::new("/sbin/debugfs")
        .args(["-R", &format!("cat {path}")])
        .arg(image)
        .output()
        .expect("e2fsprogs must be installed");
    out.stdout
}

#[tokio::test(flavor = "current_thread")]
async fn fs_config_kernel_is_injected_into_an_ext4_copy() {
    let ws = workspace();
    let out = tempfile::tempdir().unwrap();
    let img = image_dir(&[("qemu-aarch64", &[42u8; 300_000])]);
    let tree = tempfile::tempdir().unwrap();
    std::fs::write(tree.path().join("nimbos-aarch64.bin"), [1u8; 500_000]).unwrap();
    let rootfs = img.path().join("rootfs.img");
    let status = Command::new("/sbin/mkfs.ext4")
        .args(["-q", "-F", "-d"])
        .arg(tree.path())
        .arg(&rootfs)
        .arg("32M")
        .output()
        .expect("e2fsprogs must be installed");
    assert!(status.status.success(), "{status:?}");
    let files = ImageFiles::discover(img.path(), Arch::Aarch64);
    // AxVisor's real fs-mode config (kernel_path = "nimbos-aarch64.bin"), plus one with a
    // nested path so directories get created.
    let nested = read(&ws.path().join("configs/vms/nimbos-aarch64-qemu-smp1.toml")).replace(
        "kernel_path = \"nimbos-aarch64.bin\"",
        "kernel_path = \"guest/vm1/kernel.bin\"",
    );
    std::fs::write(ws.path().join("configs/vms/nested.toml"), nested).unwrap();
    let configs = ["nimbos-aarch64-qemu-smp1.toml", "nested.toml"];
    let p = run(ws.path(), out.path(), &configs, &files, "aarch64").await;

    let copy = p.rootfs.clone().unwrap();
    assert_eq!(
        debugfs_cat(&copy, "/nimbos-aarch64.bin"),
        vec![42u8; 300_000]
    );
    assert_eq!(
        debugfs_cat(&copy, "/guest/vm1/kernel.bin"),
        vec![42u8; 300_000]
    );
    assert_eq!(
        debugfs_cat(&rootfs, "/nimbos-aarch64.bin"),
        vec![1u8; 500_000]
    );
    assert!(
        p.notes
            .iter()
            .any(|n| n.contains("into the ext4 rootfs copy")),
        "{:?}",
        p.notes
    );
}

#[tokio::test(flavor = "current_thread")]
async fn fs_config_without_a_rootfs_is_an_error() {
    let ws = workspace();
    let out = tempfile::tempdir().unwrap();
    let img = image_dir(&[("qemu-aarch64", b"k")]);
    let files = ImageFiles::discover(img.path(), Arch::Aarch64);
    let configs = vec![ws.path().join("configs/vms/nimbos-aarch64-qemu-smp1.toml")];
    let work = workdir::case_dir(out.path(), "c");
    let req = PrepareRequest {
        work_dir: &work,
        vm_configs: &configs,
        image: Some(&files),
        extra_images: &[],
        qemu_args: &[],
    };
    let e = prepare(&req).await.unwrap_err();
    assert!(e.message.contains("no rootfs.img"), "{e}");
}

#[tokio::test(flavor = "current_thread")]
async fn the_checkout_is_unchanged_after_prepare() {
    let ws = workspace();
    let before = hash_tree(ws.path());
    let out = tempfile::tempdir().unwrap();
    let img = image_dir(&[
        ("qemu-aarch64", b"k"),
        ("qemu-x86_64", b"k"),
        ("axvm-bios.bin", b"b"),
    ]);
    fat_image(&img.path().join("rootfs.img"), b"old");
    let aarch64 = ImageFiles::discover(img.path(), Arch::Aarch64);
    let x86 = ImageFiles::discover(img.path(), Arch::X86_64);
    let memory = [
        "arceos-aarch64-qemu-smp1.toml",
        "linux-aarch64-qemu-smp1.toml",
    ];
    run(ws.path(), out.path(), &memory, &aarch64, "aarch64").await;
    run(
        ws.path(),
        out.path(),
        &["nimbos-aarch64-qemu-smp1.toml"],
        &aarch64,
        "aarch64",
    )
    .await;
    run(
        ws.path(),
        out.path(),
        &["nimbos-x86_64-qemu-smp1.toml"],
        &x86,
        "x86_64",
    )
    .await;
    assert_eq!(hash_tree(ws.path()), before);
    assert!(!ws.path().join("tmp").exists());
}

/// StarryOS' system configs name two tgosimages rootfs files under
/// `${workspace}/tmp/axbuild/rootfs/`: the case's image (alpine, NVMe) and a further one
/// (busybox, USB, `snapshot=on`). Each drive gets its own image's per-run copy, with the
/// image's bytes; the cached files and the workspace are not written (nothing under `tmp/`).
#[tokio::test(flavor = "current_thread")]
async fn each_rootfs_drive_gets_its_own_images_copy() {
    let ws = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let alpine = image_dir(&[("rootfs-riscv64-alpine.img", b"alpine disk")]);
    let busybox = image_dir(&[("rootfs-riscv64-busybox.img", b"busybox disk")]);
    let files = |dir: &tempfile::TempDir, name: &str| {
        let mut f = ImageFiles::discover(dir.path(), Arch::Riscv64);
        f.rootfs = Some(dir.path().join(name));
        f
    };
    let main = files(&alpine, "rootfs-riscv64-alpine.img");
    let extra = vec![(
        "rootfs-riscv64-busybox.img".to_string(),
        files(&busybox, "rootfs-riscv64-busybox.img"),
    )];
    let dir = ws.path().join("tmp/axbuild/rootfs");
    let args: Vec<String> = [
        "-device",
        "nvme,serial=deadbeef,drive=nvm",
        "-drive",
        &format!(
            "id=nvm,if=none,format=raw,file={}/rootfs-riscv64-alpine.img",
            dir.display()
        ),
        "-drive",
        &format!(
            "id=usbdisk,if=none,format=raw,snapshot=on,file={}/rootfs-riscv64-busybox.img",
            dir.display()
        ),
        "-device",
        "usb-storage,bus=xhci.0,drive=usbdisk,serial=starry-usb-storage",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let work = workdir::case_dir(out.path(), "case");
    let before = (hash_tree(alpine.path()), hash_tree(busybox.path()));
    let prepared = prepare(&PrepareRequest {
        work_dir: &work,
        vm_configs: &[],
        image: Some(&main),
        extra_images: &extra,
        qemu_args: &args,
    })
    .await
    .unwrap();
    let (nvm, usb) = (
        work.join("rootfs.img"),
        work.join("rootfs-riscv64-busybox.img"),
    );
    assert_eq!(
        prepared.qemu_args[3],
        format!("id=nvm,if=none,format=raw,file={}", nvm.display())
    );
    assert_eq!(
        prepared.qemu_args[5],
        format!(
            "id=usbdisk,if=none,format=raw,snapshot=on,file={}",
            usb.display()
        )
    );
    assert_eq!(std::fs::read(&nvm).unwrap(), b"alpine disk");
    assert_eq!(std::fs::read(&usb).unwrap(), b"busybox disk");
    assert_eq!(
        (hash_tree(alpine.path()), hash_tree(busybox.path())),
        before
    );
    assert!(!ws.path().join("tmp").exists());
}
