//! Firmware-only guests: no `--kernel`; the QEMU config's own `-bios` is the thing under test.
//! Boots Debian's U-Boot for QEMU (package `u-boot-qemu`, installed by scripts/install-deps.sh)
//! to its prompt and runs a command there.

pub mod common;

use std::path::Path;

use common::{Scratch, text};

const UBOOT: &str = "/usr/lib/u-boot/qemu_arm64/u-boot.bin";

fn uboot() -> &'static str {
    assert!(
        Path::new(UBOOT).is_file(),
        "{UBOOT} missing: install Debian's u-boot-qemu (scripts/install-deps.sh)"
    );
    UBOOT
}

#[test]
fn uboot_boots_to_its_prompt_without_a_kernel() {
    let s = Scratch::new();
    let cfg = s.write(
        "uboot.toml",
        &format!(
            r#"
args = ["-machine", "virt", "-cpu", "cortex-a57", "-m", "256M", "-bios", "{}"]
success_regex = ["^fw-only-ok$"]
fail_regex = ["(?i)panic", "Unknown command"]
[[steps]]
expect = "Hit any key to stop autoboot"
send = " "
[[steps]]
expect = "=> $"
send = "echo fw-only-ok\n"
"#,
            uboot()
        ),
    );
    let out = s.run(&[
        "run",
        "--arch",
        "aarch64",
        "--qemu-config",
        cfg.to_str().unwrap(),
        "--timeout",
        "60s",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let r = s.results();
    let case = &r["cases"][0];
    assert_eq!(case["name"], "u-boot", "named after the firmware file");
    let args: Vec<&str> = case["command"]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(!args.contains(&"-kernel"), "{args:?}");
    assert!(args.contains(&UBOOT), "{args:?}");
    assert_eq!(case["verdict"]["decided_by"]["pattern"], "^fw-only-ok$");
    let log = std::fs::read_to_string(s.out().join("u-boot.log")).unwrap();
    assert!(log.contains("U-Boot 20"), "{log}");
}

#[test]
fn no_kernel_and_no_firmware_is_a_usage_error() {
    let s = Scratch::new();
    let cfg = s.write("plain.toml", "args = [\"-m\", \"256M\"]\n");
    let out = s.run(&[
        "run",
        "--arch",
        "aarch64",
        "--qemu-config",
        cfg.to_str().unwrap(),
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("error: no kernel to boot"), "{stderr}");
    assert!(
        stderr.contains("-bios, -pflash, -drive or -cdrom"),
        "{stderr}"
    );
    // A firmware-only config still needs the architecture: nothing in U-Boot's binary says it.
    let fw = s.write("fw.toml", &format!("args = [\"-bios\", \"{}\"]\n", uboot()));
    let out = s.run(&["run", "--qemu-config", fw.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: the firmware-only guest {UBOOT} needs --arch: a firmware file does not say \
             which architecture it is for"
        )),
        "{stderr}"
    );
}

/// `uefi = true` alone is a firmware-only guest too (the UEFI firmware's own shell): Debian's
/// packaged firmware goes to `-bios`, no `-kernel`, and the case is named after the config.
#[test]
fn uefi_config_without_a_kernel_boots_the_firmware_itself() {
    let s = Scratch::new();
    let cfg = s.write(
        "efi-shell.toml",
        "args = [\"-machine\", \"virt\", \"-cpu\", \"cortex-a57\"]\nuefi = true\n\
         success_regex = [\"Shell> \"]\n",
    );
    let out = s.run(&[
        "run",
        "--dry-run",
        "--arch",
        "aarch64",
        "--qemu-config",
        cfg.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let command = stdout.lines().next().unwrap();
    assert!(
        command.starts_with("qemu-system-aarch64 ")
            && command.contains(" -bios /usr/share/")
            && !command.contains("-kernel"),
        "{command}"
    );
    assert!(
        stdout.contains("qemu-test-out/efi-shell.log"),
        "named after the config: {stdout}"
    );
}
