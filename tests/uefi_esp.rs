//! `uefi = true` boots a kernel as ostool 0.24.1 (tgoskits' lock) boots it (`run/qemu.rs`
//! `prepare_uefi`, `run/qemu_plan.rs` `QemuBootSource::UefiPflash`): the firmware's code as
//! read-only pflash unit 0, a writable copy of its variable store as unit 1, and the kernel as
//! `EFI/BOOT/BOOTX64.EFI` of a directory QEMU serves as a FAT drive (`fat:rw:`), no `-kernel`.
//! The ESP and the variable store copy live in the case's work dir under the out dir.
//!
//! Real parts: Debian's amd64 kernel (an EFI application through its EFI stub) under Debian's
//! OVMF (`ovmf`, installed by scripts/install-deps.sh) with TCG. Booted from BOOTX64.EFI the
//! kernel gets no command line (no `console=ttyS0`), so its own console lines never reach the
//! serial port; what proves the ESP's EFI binary was started is OVMF's boot manager on the
//! serial console: `BdsDxe: starting Boot0002 "UEFI QEMU HARDDISK …"` is printed only after
//! the firmware found `\EFI\BOOT\BOOTX64.EFI` on that disk (the only hard disk: the FAT drive)
//! and loaded it as an EFI image; a file it cannot load gives `BdsDxe: failed to load Boot0002
//! "UEFI QEMU HARDDISK …": Not Found` instead (the second test). About 4 s of TCG each.
//! Debian's arm64 kernel goes further under AAVMF (~8 s): its EFI stub prints `EFI stub: Booting
//! Linux Kernel...` on the firmware's console, and the kernel its first lines (`Booting Linux on
//! physical CPU`) on the serial port the firmware describes to it.

pub mod common;

use std::path::{Path, PathBuf};

use common::{Scratch, fixtures, text};
use qemu_test_action::arch::Arch;

const CONFIG: &str = r#"args = ["-m", "256M", "-machine", "q35"]
uefi = true
success_regex = ["BdsDxe: starting Boot[0-9A-F]{4} \"UEFI QEMU HARDDISK"]
fail_regex = ["BdsDxe: failed to load Boot[0-9A-F]{4} \"UEFI QEMU HARDDISK"]
timeout = 60
"#;

/// `file` copied into the scratch dir's `user/` (the user's tree) as `kernel`.
fn user_kernel(s: &Scratch, file: &Path) -> PathBuf {
    let dir = s.path().join("user");
    std::fs::create_dir_all(&dir).unwrap();
    let kernel = dir.join("kernel");
    std::fs::copy(file, &kernel).unwrap();
    kernel
}

/// `run --kernel <kernel> --qemu-config <cfg> --arch x86_64 --accel tcg --dry-run`: its stdout
/// (exit 0).
fn dry_run(s: &Scratch, kernel: &Path, cfg: &Path) -> String {
    let kernel = kernel.to_str().unwrap();
    let cfg = cfg.to_str().unwrap();
    let out = s.run(&[
        "run",
        "--kernel",
        kernel,
        "--qemu-config",
        cfg,
        "--arch",
        "x86_64",
        "--accel",
        "tcg",
        "--dry-run",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    stdout
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn debian_amd64_kernel_boots_from_the_esp_under_ovmf() {
    let s = Scratch::new();
    let cfg = s.write("uefi.toml", CONFIG);
    let source = fixtures::fixture("amd64-linux/kernel");
    let kernel = user_kernel(&s, &source);
    let args = ["--arch", "x86_64", "--accel", "tcg"];
    let pflash = qemu_test_action::qemu::firmware::find_pflash(Arch::X86_64)
        .unwrap_or_else(|e| panic!("{e} (scripts/install-deps.sh installs ovmf)"));
    let work = s.out().join("cases/kernel");

    // The command, exactly: ostool's drives after the machine, no -kernel, no -bios.
    let stdout = dry_run(&s, &kernel, &cfg);
    let argv: Vec<&str> = stdout.lines().next().unwrap().split(' ').collect();
    let code = format!(
        "if=pflash,format=raw,unit=0,readonly=on,file={}",
        pflash.code.display()
    );
    let vars = format!(
        "if=pflash,format=raw,unit=1,file={}",
        work.join("kernel.vars.fd").display()
    );
    let esp = format!(
        "format=raw,file=fat:rw:{}",
        work.join("kernel.esp").display()
    );
    assert_eq!(
        argv,
        [
            "qemu-system-x86_64",
            "-m",
            "256M",
            "-machine",
            "q35",
            "-drive",
            &code,
            "-drive",
            &vars,
            "-drive",
            &esp,
            "-nographic",
            "-no-reboot",
            "-accel",
            "tcg"
        ],
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "# uefi: {} -> {}; {} -> {}",
            kernel.display(),
            work.join("kernel.esp/EFI/BOOT/BOOTX64.EFI").display(),
            pflash.vars.display(),
            work.join("kernel.vars.fd").display()
        )),
        "{stdout}"
    );

    // The boot: OVMF starts BOOTX64.EFI from the FAT drive.
    let out = s.run_kernel(&kernel, &cfg, &args);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(s.verdict()["outcome"], "pass", "{stdout}{stderr}");
    assert!(stdout.contains("BdsDxe: starting Boot"), "{stdout}");
    assert_booted_from_the_work_dir(&s, &source, "BOOTX64.EFI", &pflash);
}

/// After a boot of `user/kernel` (a copy of `source`): the ESP in the case's work dir holds the
/// kernel as `boot_file`, byte for byte; the variable store there is a copy of `pflash`'s that
/// the firmware wrote its variables into (so pflash unit 1 was the writable copy); nothing was
/// written beside the user's kernel.
fn assert_booted_from_the_work_dir(
    s: &Scratch,
    source: &Path,
    boot_file: &str,
    pflash: &qemu_test_action::qemu::firmware::Pflash,
) {
    let work = s.out().join("cases/kernel");
    let boot = work.join("kernel.esp/EFI/BOOT").join(boot_file);
    assert_eq!(
        std::fs::read(&boot).unwrap(),
        std::fs::read(source).unwrap()
    );
    let template = std::fs::read(&pflash.vars).unwrap();
    let copy = std::fs::read(work.join("kernel.vars.fd")).unwrap();
    assert_eq!(copy.len(), template.len());
    assert_ne!(
        copy, template,
        "the firmware wrote nothing to its variable store"
    );
    assert_eq!(listing(&s.path().join("user")), ["kernel"]);
}

#[test]
fn a_file_the_firmware_cannot_load_is_not_started() {
    let s = Scratch::new();
    let cfg = s.write("uefi.toml", CONFIG);
    let kernel = user_kernel(&s, &fixtures::fixture("amd64-linux/initramfs.cpio.gz"));
    let out = s.run_kernel(&kernel, &cfg, &["--arch", "x86_64", "--accel", "tcg"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert_eq!(s.verdict()["outcome"], "fail", "{stdout}{stderr}");
    assert!(
        stdout.contains("BdsDxe: failed to load Boot0002 \"UEFI QEMU HARDDISK"),
        "{stdout}"
    );
    assert!(!stdout.contains("BdsDxe: starting Boot0002"), "{stdout}");
}

/// ostool 0.24 boots a `uefi = true` ELF kernel from its flat binary even with `to_bin = false`
/// (`QemuConfig::requires_bin_artifact`: `uefi || to_bin`, then `ensure_runtime_bin`): the ESP
/// gets the bin, named after the case (`<case>.esp`, `<case>.vars.fd`), as ostool names them
/// after the bin's stem.
#[test]
fn an_elf_kernel_boots_as_its_flat_binary() {
    let s = Scratch::new();
    let cfg = s.write(
        "uefi.toml",
        &CONFIG.replace("uefi = true", "uefi = true\nto_bin = false"),
    );
    let elf = fixtures::fixture("amd64-linux/vmlinux");
    let stdout = dry_run(&s, &elf, &cfg);
    let bin = s.out().join("vmlinux.bin");
    let work = s.out().join("cases/vmlinux");
    assert!(
        stdout.contains(&format!("# to_bin: {} -> {}", elf.display(), bin.display())),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "# uefi: {} -> {}",
            bin.display(),
            work.join("vmlinux.esp/EFI/BOOT/BOOTX64.EFI").display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.lines().next().unwrap().contains(&format!(
            "-drive if=pflash,format=raw,unit=1,file={} ",
            work.join("vmlinux.vars.fd").display()
        )),
        "{stdout}"
    );
}

/// Debian's arm64 kernel from `EFI/BOOT/BOOTAA64.EFI` under AAVMF (`qemu-efi-aarch64`): its EFI
/// stub runs, then the kernel reaches its first console lines.
#[test]
fn debian_arm64_kernel_boots_from_the_esp_to_its_console() {
    let s = Scratch::new();
    let cfg = s.write(
        "uefi.toml",
        r#"args = ["-m", "512M", "-machine", "virt", "-cpu", "cortex-a57"]
uefi = true
success_regex = ["Booting Linux on physical CPU"]
timeout = 60
"#,
    );
    let source = fixtures::fixture("arm64-linux/kernel");
    let kernel = user_kernel(&s, &source);
    let pflash = qemu_test_action::qemu::firmware::find_pflash(Arch::Aarch64)
        .unwrap_or_else(|e| panic!("{e} (scripts/install-deps.sh installs qemu-efi-aarch64)"));
    let out = s.run_kernel(&kernel, &cfg, &["--arch", "aarch64", "--accel", "tcg"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let stub = stdout
        .find("EFI stub: Booting Linux Kernel")
        .expect(&stdout);
    let linux = stdout.find("Booting Linux on physical CPU").expect(&stdout);
    assert!(stub < linux, "{stdout}");
    assert_booted_from_the_work_dir(&s, &source, "BOOTAA64.EFI", &pflash);
}
