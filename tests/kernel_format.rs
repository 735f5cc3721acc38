//! Kernel formats are read at plan time: the architecture comes from the file when `--arch` is
//! not given (ELF, Linux arm64 Image, x86 bzImage), a kernel for another architecture or a file
//! that is no kernel at all is refused before QEMU starts (exit 2, the reason), with the real
//! Debian kernels and bare-metal fixtures.

pub mod common;

use common::fixtures::fixture;
use common::{Scratch, text};

/// `qemu-test run --dry-run` with `args`: (exit code, stdout, stderr); a refusal writes nothing.
fn dry_run(s: &Scratch, args: &[&str]) -> (Option<i32>, String, String) {
    let before = s.tree();
    let mut all = vec!["run", "--dry-run"];
    all.extend_from_slice(args);
    let out = s.run(&all);
    let (stdout, stderr) = text(&out);
    if out.status.code() != Some(0) {
        assert_eq!(s.tree(), before, "a refused kernel wrote files");
    }
    (out.status.code(), stdout, stderr)
}

fn path(rel: &str) -> String {
    fixture(rel).display().to_string()
}

#[test]
fn linux_image_and_bzimage_tell_their_arch() {
    let s = Scratch::new();
    let (code, stdout, stderr) = dry_run(&s, &["--kernel", &path("arm64-linux/kernel")]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.starts_with("qemu-system-aarch64 "), "{stdout}");
    let (code, stdout, stderr) = dry_run(&s, &["--kernel", &path("amd64-linux/kernel")]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.starts_with("qemu-system-x86_64 "), "{stdout}");
    // A 32-bit-capable emulator is refused for the 64-bit Debian kernel.
    let (code, _, stderr) = dry_run(
        &s,
        &["--kernel", &path("amd64-linux/kernel"), "--arch", "i386"],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("it is an x86 bzImage (64-bit kernel), but the guest architecture is i386"),
        "{stderr}"
    );
}

#[test]
fn a_kernel_for_another_arch_is_refused_with_the_reason() {
    let s = Scratch::new();
    let arm = path("arm64-linux/kernel");
    let (code, _, stderr) = dry_run(&s, &["--kernel", &arm, "--arch", "x86_64"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: kernel {arm} cannot boot: it is a Linux arm64 Image, but the guest \
             architecture is x86_64"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("--arch aarch64"), "{stderr}");
    let (code, _, stderr) = dry_run(
        &s,
        &["--kernel", &path("amd64-linux/kernel"), "--arch", "arm64"],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "it is an x86 bzImage (64-bit kernel), but the guest architecture is aarch64"
        ),
        "{stderr}"
    );
    let (code, _, stderr) = dry_run(
        &s,
        &[
            "--kernel",
            &path("amd64-linux/vmlinux"),
            "--arch",
            "aarch64",
        ],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("it is an ELF for x86_64, but the guest architecture is aarch64"),
        "{stderr}"
    );
    let (code, _, stderr) = dry_run(
        &s,
        &[
            "--kernel",
            &path("aarch64-baremetal/hello.elf"),
            "--arch",
            "riscv64",
        ],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("it is an ELF for aarch64"), "{stderr}");
    // A raw binary has no header: --arch decides, and is needed.
    let bin = path("aarch64-baremetal/hello.bin");
    let (code, stdout, stderr) = dry_run(&s, &["--kernel", &bin, "--arch", "aarch64"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.starts_with("qemu-system-aarch64 "), "{stdout}");
    let (code, _, stderr) = dry_run(&s, &["--kernel", &bin]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("is a raw binary"), "{stderr}");
    assert!(stderr.contains("pass --arch"), "{stderr}");
}

#[test]
fn files_that_are_no_kernel_are_refused() {
    let s = Scratch::new();
    s.write("empty.bin", "");
    s.write(
        "lfs.bin",
        "version https://git-lfs.github.com/spec/v1\noid sha256:0123\nsize 12345\n",
    );
    let mut dtb = vec![0xd0u8, 0x0d, 0xfe, 0xed];
    dtb.resize(0x300, 0);
    std::fs::write(s.path().join("board.itb"), &dtb).unwrap();
    for (file, why) in [
        ("empty.bin", "it is empty (0 bytes)"),
        (
            "lfs.bin",
            "it is a text file, not a kernel (it starts with 'version \
             https://git-lfs.github.com/spec/v1'); it is a Git LFS pointer",
        ),
        (
            "board.itb",
            "it is a device tree blob (a DTB or a FIT image)",
        ),
    ] {
        let (code, _, stderr) = dry_run(&s, &["--kernel", file, "--arch", "aarch64"]);
        assert_eq!(code, Some(2), "{file}: {stderr}");
        assert!(
            stderr.contains(&format!("{file} cannot boot: {why}")),
            "{stderr}"
        );
    }
}

/// With the architecture read from the kernel, ostool's default `qemu-<arch>.toml` in the
/// workspace is found without `--arch` (as ostool finds it from the ELF).
#[test]
fn the_inferred_arch_picks_the_default_config_name() {
    let s = Scratch::new();
    s.write("qemu-aarch64.toml", "args = [\"-m\", \"321M\"]\n");
    s.write("qemu-x86_64.toml", "args = [\"-m\", \"123M\"]\n");
    let (code, stdout, stderr) = dry_run(&s, &["--kernel", &path("arm64-linux/kernel")]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains(" -m 321M"), "{stdout}");
    let (code, stdout, stderr) = dry_run(&s, &["--kernel", &path("amd64-linux/kernel")]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains(" -m 123M"), "{stdout}");
}
