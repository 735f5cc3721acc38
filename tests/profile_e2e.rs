//! KVM/TCG profiles end to end with the real probe of this runner (KVM present but unable to
//! run guests, no VT-x): AxVisor's NimbOS case is skipped or failed by policy before anything
//! runs, and `-accel kvm -cpu host` is rewritten for TCG with notes.

mod common;

use common::fixtures::fixture;
use common::{Scratch, text};

fn axvisor(rel: &str) -> String {
    format!("{}/tests/data/axvisor/{rel}", env!("CARGO_MANIFEST_DIR"))
}

/// A workspace holding the `tmp/rootfs.img` AxVisor's QEMU TOMLs attach.
fn workspace(s: &Scratch) -> String {
    std::fs::create_dir_all(s.path().join("tmp")).unwrap();
    std::fs::write(s.path().join("tmp/rootfs.img"), vec![0u8; 4096]).unwrap();
    s.path().display().to_string()
}

fn nimbos(s: &Scratch, policy: &str) -> std::process::Output {
    let kernel = fixture("amd64-linux/vmlinux");
    let ws = workspace(s);
    s.run(&[
        "run",
        "--workspace",
        &ws,
        "--kernel",
        kernel.to_str().unwrap(),
        "--qemu-config",
        &axvisor(".github/workflows/qemu-x86_64.toml"),
        "--name",
        "nimbos",
        "--requires",
        "kvm",
        "--requires",
        "vmx",
        "--on-unsupported",
        policy,
    ])
}

#[test]
fn nimbos_needing_vmx_is_skipped_with_the_reason() {
    let s = Scratch::new();
    let out = nimbos(&s, "skip");
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let r = s.results();
    let v = &r["cases"][0]["verdict"];
    assert_eq!(v["outcome"], "skipped");
    let reason = v["reason"].as_str().unwrap();
    assert!(reason.contains("vmx"), "{reason}");
    assert!(reason.contains("KVM is present but not usable"), "{reason}");
    // Nothing was booted: no console log.
    assert!(!s.out().join("nimbos.log").exists());
    assert!(stderr.contains("SKIP nimbos"), "{stderr}");
}

#[test]
fn nimbos_fails_by_policy_as_an_infrastructure_error() {
    let s = Scratch::new();
    let out = nimbos(&s, "fail");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out).1);
    let r = s.results();
    assert_eq!(r["cases"][0]["verdict"]["outcome"], "error");
}

#[test]
fn kvm_arguments_are_rewritten_for_tcg_when_kvm_cannot_run_guests() {
    let s = Scratch::new();
    let kernel = fixture("amd64-linux/vmlinux");
    let ws = workspace(&s);
    let out = s.run(&[
        "run",
        "--workspace",
        &ws,
        "--kernel",
        kernel.to_str().unwrap(),
        "--qemu-config",
        &axvisor(".github/workflows/qemu-x86_64.toml"),
        "--dry-run",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let cmd = stdout.lines().next().unwrap();
    assert!(cmd.contains("-accel tcg -cpu max"), "{cmd}");
    assert!(!cmd.contains("kvm") && !cmd.contains("-cpu host"), "{cmd}");
    assert!(stdout.contains("KVM is present but not usable"), "{stdout}");
    assert!(stdout.contains("→ TCG"), "{stdout}");
}

#[test]
fn explicit_kvm_on_this_runner_is_skipped_not_silently_downgraded() {
    let s = Scratch::new();
    let kernel = fixture("amd64-linux/vmlinux");
    let out = s.run(&[
        "run",
        "--kernel",
        kernel.to_str().unwrap(),
        "--accel",
        "kvm",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let r = s.results();
    assert_eq!(r["cases"][0]["verdict"]["outcome"], "skipped");
    assert!(
        r["cases"][0]["verdict"]["reason"]
            .as_str()
            .unwrap()
            .contains("accel=kvm requested")
    );
}

/// AxVisor's unmodified aarch64 workflow TOML through the CLI's `--dry-run`: ostool's command
/// line, plus our additions (each with a note), nothing run and nothing written.
#[test]
fn axvisor_aarch64_toml_dry_run_prints_the_exact_command() {
    let s = Scratch::new();
    let kernel = fixture("aarch64-baremetal/hello.elf");
    let ws = workspace(&s);
    let out = s.run(&[
        "run",
        "--kernel",
        kernel.to_str().unwrap(),
        "--qemu-config",
        &axvisor(".github/workflows/qemu-aarch64.toml"),
        "--workspace",
        &ws,
        "--name",
        "axvisor",
        "--dry-run",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let bin = s.out().join("axvisor.bin");
    assert_eq!(
        stdout.lines().next().unwrap(),
        format!(
            "qemu-system-aarch64 -nographic -cpu cortex-a72 -machine virt,virtualization=on,gic-version=3 \
             -smp 4 -device virtio-blk-device,drive=disk0 -drive id=disk0,if=none,format=raw,file={ws}/tmp/rootfs.img \
             -append 'root=/dev/vda rw init=/init' -m 8g -kernel {} -no-reboot -accel tcg",
            bin.display()
        )
    );
    assert!(stdout.contains("# fail pattern: panicked at"), "{stdout}");
    assert!(
        stdout.contains("# success pattern: Hello, world!"),
        "{stdout}"
    );
    assert!(stdout.contains("# success pattern: test pass!"), "{stdout}");
    assert!(stdout.contains("# note: added `-no-reboot`"), "{stdout}");
    assert!(stdout.contains("# to_bin: "), "{stdout}");
    assert_eq!(s.tree(), ["tmp", "tmp/rootfs.img"], "dry run wrote files");
}
