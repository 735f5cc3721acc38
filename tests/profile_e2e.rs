//! KVM/TCG profiles end to end with the real probe of this runner. Where the probe finds KVM
//! unable to run guests or no VT-x for them (this project's machines, GitHub's hosted runners),
//! AxVisor's NimbOS case is skipped or failed by policy before anything runs and
//! `-accel kvm -cpu host` is rewritten for TCG with notes; where it finds them working, the
//! same inputs keep KVM. Each test asks the probe which host it is on.

pub mod common;

use common::fixtures::fixture;
use common::{Scratch, text};
use qemu_test_action::arch::Arch;
use qemu_test_action::host::{self, ProbeOptions};

/// (KVM runs x86_64 guests here, and also offers them VT-x), by the real probe.
fn host_kvm() -> (bool, bool) {
    let probe = host::probe(&ProbeOptions::default());
    let kvm = probe.kvm.usable() && probe.host.arch == Some(Arch::X86_64);
    (kvm, kvm && probe.kvm.nested.vmx.is_yes())
}

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
    // Where KVM and VT-x work, the case would boot: only plan it.
    let dry = if host_kvm().1 { "--dry-run" } else { "--quiet" };
    s.run(&[
        "run",
        dry,
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
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let (kvm, vmx) = host_kvm();
    if vmx {
        assert!(!stdout.contains("# skipped"), "{stdout}");
        assert!(stdout.lines().next().unwrap().contains("kvm"), "{stdout}");
        return;
    }
    let r = s.results();
    let v = &r["cases"][0]["verdict"];
    assert_eq!(v["outcome"], "skipped");
    let reason = v["reason"].as_str().unwrap();
    assert!(reason.contains("vmx"), "{reason}");
    if !kvm {
        assert!(
            reason.contains("KVM is present but not usable")
                || reason.contains("KVM is not available"),
            "{reason}"
        );
    }
    // Nothing was booted: no console log.
    assert!(!s.out().join("nimbos.log").exists());
    assert!(stderr.contains("SKIP nimbos"), "{stderr}");
}

#[test]
fn nimbos_fails_by_policy_as_an_infrastructure_error() {
    let s = Scratch::new();
    let out = nimbos(&s, "fail");
    if host_kvm().1 {
        assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
        assert!(!text(&out).0.contains("# cannot run here"));
        return;
    }
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
    if host_kvm().0 {
        // KVM runs guests here: the config's `-accel kvm -cpu host` stays.
        assert!(cmd.contains("kvm") && cmd.contains("-cpu host"), "{cmd}");
        assert!(!stdout.contains("→ TCG"), "{stdout}");
        return;
    }
    assert!(cmd.contains("-accel tcg -cpu max"), "{cmd}");
    assert!(!cmd.contains("kvm") && !cmd.contains("-cpu host"), "{cmd}");
    assert!(stdout.contains("KVM is present but not usable"), "{stdout}");
    assert!(stdout.contains("→ TCG"), "{stdout}");
}

#[test]
fn explicit_kvm_on_this_runner_is_skipped_not_silently_downgraded() {
    let s = Scratch::new();
    let kernel = fixture("amd64-linux/vmlinux");
    if host_kvm().0 {
        let out = s.run(&[
            "run",
            "--kernel",
            kernel.to_str().unwrap(),
            "--accel",
            "kvm",
            "--dry-run",
        ]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert!(!stdout.contains("# skipped"), "{stdout}");
        assert!(stdout.lines().next().unwrap().contains("kvm"), "{stdout}");
        return;
    }
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
