//! Smoke test of the guest fixtures themselves, booted with plain `std::process` rather than the
//! crate, so that a broken fixture is told apart from a broken runner. Needs `fixtures/build.sh`.

pub mod common {
    pub mod fixtures;
}

use common::fixtures::fixture;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Generous bound for a guest that powers off in about 0.03 s when the host is idle.
const BOOT_DEADLINE: Duration = Duration::from_secs(30);
/// More console output than any powering-off variant prints; beyond it the guest is broken.
const OUTPUT_LIMIT: u64 = 1 << 20;

/// Every bare-metal variant `fixtures/build.sh` makes (see fixtures/README.md).
const VARIANTS: &[&str] = &[
    "hello",
    "hello_noexit",
    "panic",
    "hang",
    "shell",
    "reset",
    "flood",
    "noisy",
    "silent_off",
    "late_fail",
    "injection",
    "cases",
    "prompt",
    "wfi",
    "backtrace",
];

/// Every other file of the documented layout.
const LINUX_AND_DISK: &[&str] = &[
    "arm64-linux/kernel",
    "arm64-linux/initramfs.cpio.gz",
    "arm64-linux/initramfs-shell.cpio.gz",
    "arm64-linux/initramfs-panic.cpio.gz",
    "arm64-linux/initramfs-fatcheck.cpio.gz",
    "arm64-linux/initramfs-net.cpio.gz",
    "arm64-linux/loader.cpio.gz",
    "arm64-linux/rootfs.img",
    "arm64-linux/VERSIONS",
    "amd64-linux/kernel",
    "amd64-linux/vmlinux",
    "amd64-linux/initramfs.cpio.gz",
    "amd64-linux/initramfs-shell.cpio.gz",
    "amd64-linux/initramfs-panic.cpio.gz",
    "amd64-linux/initramfs-fatcheck.cpio.gz",
    "amd64-linux/initramfs-net.cpio.gz",
    "amd64-linux/loader.cpio.gz",
    "amd64-linux/rootfs.img",
    "amd64-linux/VERSIONS",
    "fat32/disk.img",
];

/// A running QEMU that is killed and reaped when dropped (deadline or failed assertion).
struct Qemu(Child);

impl Drop for Qemu {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Boot `image` the way the docs do and return QEMU's exit status and everything it printed.
fn boot(image: &Path) -> (ExitStatus, Vec<u8>) {
    let child = Command::new("qemu-system-aarch64")
        .args(["-machine", "virt,virtualization=on,gic-version=3"])
        .args(["-cpu", "cortex-a72", "-nographic", "-no-reboot", "-kernel"])
        .arg(image)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start qemu-system-aarch64 ({e}): apt-get install qemu-system-arm, or run scripts/install-deps.sh")
        });
    let mut qemu = Qemu(child);
    let stdout = qemu.0.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let read = stdout.take(OUTPUT_LIMIT).read_to_end(&mut out);
        let _ = tx.send(read.map(|_| out));
    });
    let out = match rx.recv_timeout(BOOT_DEADLINE) {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => panic!("reading QEMU's stdout for {}: {e}", image.display()),
        Err(_) => panic!(
            "{} did not power off within {BOOT_DEADLINE:?}",
            image.display()
        ),
    };
    assert!(
        (out.len() as u64) < OUTPUT_LIMIT,
        "{} printed more than {OUTPUT_LIMIT} bytes",
        image.display()
    );
    let status = qemu.0.wait().expect("wait for QEMU");
    (status, out)
}

/// Boot both the ELF and the raw binary of a variant; they must behave identically.
fn boot_variant(variant: &str) -> Vec<u8> {
    let (elf_status, elf_out) = boot(&fixture(&format!("aarch64-baremetal/{variant}.elf")));
    let (bin_status, bin_out) = boot(&fixture(&format!("aarch64-baremetal/{variant}.bin")));
    assert!(elf_status.success(), "{variant}.elf: QEMU {elf_status}");
    assert!(bin_status.success(), "{variant}.bin: QEMU {bin_status}");
    assert!(
        elf_out == bin_out,
        "{variant}: .elf printed {:?} but .bin printed {:?}",
        String::from_utf8_lossy(&elf_out),
        String::from_utf8_lossy(&bin_out)
    );
    elf_out
}

/// Drop CSI (`ESC [ … final`) and OSC (`ESC ] … BEL`) sequences, as a console judge would.
fn strip_escapes(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match (raw[i], raw.get(i + 1)) {
            (0x1b, Some(b'[')) => {
                i += 2;
                while i < raw.len() && !(0x40..=0x7e).contains(&raw[i]) {
                    i += 1;
                }
                i += 1;
            }
            (0x1b, Some(b']')) => {
                while i < raw.len() && raw[i] != 0x07 {
                    i += 1;
                }
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn hello_prints_success_and_powers_off() {
    assert_eq!(boot_variant("hello"), b"Hello, world!\r\n");
}

#[test]
fn noisy_hides_success_text_behind_escapes_and_invalid_utf8() {
    let raw = boot_variant("noisy");
    for seq in [
        &b"\x1b[31m"[..],
        b"\x1b[0m",
        b"\x1b[2J",
        b"\x1b[?25l",
        b"\x1b]0;guest title\x07",
        b"progress 50%\rprogress 100%\r\n",
        b"\xff\xfe\xc3 ",
        b"Hel\x1b[1mlo, wor\x1b[0mld!\r\n",
    ] {
        assert!(contains(&raw, seq), "noisy lacks {seq:?}: {raw:?}");
    }
    assert!(std::str::from_utf8(&raw).is_err());
    assert!(
        !contains(&raw, b"Hello, world!"),
        "success text must be split"
    );
    assert!(contains(&strip_escapes(&raw), b"Hello, world!\r\n"));
}

#[test]
fn silent_off_powers_off_without_success_text() {
    assert_eq!(boot_variant("silent_off"), b"booting...\r\n");
}

#[test]
fn cases_reports_usertests_and_ktap_then_passes() {
    let out = String::from_utf8(boot_variant("cases")).expect("cases prints UTF-8");
    for line in [
        "Usertests: Running 'hello_world':\r\n",
        "Usertests: Test 'hello_world' in Process 2 exited with code 0.\r\n",
        "Usertests: Test 'exit_code' in Process 5 exited with code 42.\r\n",
        "Usertests: Test 'yield' in Process 6 exited with code 0.\r\n",
        "KTAP version 1\r\n1..3\r\nok 1 test_a\r\nnot ok 2 test_b\r\nok 3 test_c # SKIP not here\r\n",
    ] {
        assert!(out.contains(line), "cases lacks {line:?}:\n{out}");
    }
    assert_eq!(out.matches("Usertests: Running '").count(), 5);
    assert!(out.ends_with("usertests passed!\r\n"), "{out}");
}

#[test]
fn bin_is_objcopy_of_elf() {
    let dir = tempfile::tempdir().expect("temp dir");
    for variant in VARIANTS {
        let elf = fixture(&format!("aarch64-baremetal/{variant}.elf"));
        let expected = dir.path().join(format!("{variant}.bin"));
        let status = Command::new("aarch64-linux-gnu-objcopy")
            .args(["-O", "binary"])
            .arg(&elf)
            .arg(&expected)
            .status()
            .unwrap_or_else(|e| {
                panic!(
                    "aarch64-linux-gnu-objcopy ({e}): apt-get install binutils-aarch64-linux-gnu"
                )
            });
        assert!(status.success(), "objcopy {variant}.elf: {status}");
        let built = std::fs::read(fixture(&format!("aarch64-baremetal/{variant}.bin")))
            .expect("read built .bin");
        let fresh = std::fs::read(&expected).expect("read objcopy output");
        assert!(
            built == fresh,
            "{variant}.bin differs from objcopy -O binary"
        );
    }
}

#[test]
fn layout_is_complete() {
    for rel in LINUX_AND_DISK {
        let path = fixture(rel);
        let len = std::fs::metadata(&path).expect("stat fixture").len();
        assert!(len > 0, "{} is empty", path.display());
    }
}
