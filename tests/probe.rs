//! The real probe on this project's machines: `/dev/kvm` opens and its API works, but guests
//! are emulated (they crawl and die at `lock cmpxchg16b`), no VMX is offered, and QEMU for
//! aarch64 and x86_64 is installed. Profile decisions are then made from that real probe.

use std::time::Instant;

use qemu_test_action::arch::Arch;
use qemu_test_action::host::{self, HostProbe, ProbeOptions, Status};
use qemu_test_action::profile::{self, Accel, AccelRequest, Policy, ProfileDecision, Requirement};

fn real_probe() -> HostProbe {
    let started = Instant::now();
    let probe = host::probe(&ProbeOptions::default());
    println!("{}", probe.render());
    println!("probe took {:.3} s", started.elapsed().as_secs_f64());
    probe
}

#[test]
fn kvm_is_present_with_a_working_api_but_cannot_run_guests() {
    let probe = real_probe();
    let kvm = &probe.kvm;
    assert_eq!(kvm.present, Status::Yes, "{:?}", kvm.present);
    assert_eq!(kvm.api, Status::Yes, "{:?}", kvm.api);
    assert_eq!(kvm.api_version, Some(12));
    let Status::No { reason } = &kvm.runs_guests else {
        panic!(
            "KVM must be reported unusable here, got {:?}",
            kvm.runs_guests
        )
    };
    assert!(
        reason.contains("emulation failure") || reason.contains("KVM emulates guest code"),
        "the reason must name emulation or slowness: {reason}"
    );
    assert!(!kvm.usable());
    assert!(!kvm.nested.vmx.is_yes(), "{:?}", kvm.nested.vmx);
    assert!(!kvm.nested.host_vmx);
    assert!(probe.findings.iter().any(|f| {
        f.message.contains("cannot run guests")
            && f.fix
                .as_deref()
                .is_some_and(|fix| fix.contains("accel=tcg"))
    }));

    let json = serde_json::to_value(&probe).unwrap();
    assert_eq!(json["kvm"]["runs_guests"]["status"], "no");
    assert_eq!(json["kvm"]["nested"]["vmx"]["status"], "no");
}

#[test]
fn qemu_for_aarch64_and_x86_64_is_found_with_its_version() {
    let probe = real_probe();
    for arch in [Arch::Aarch64, Arch::X86_64] {
        let qemu = probe
            .qemu_for(arch)
            .unwrap_or_else(|| panic!("{} not found", arch.qemu_binary()));
        let version = qemu
            .version
            .as_deref()
            .unwrap_or_else(|| panic!("no version: {qemu:?}"));
        assert!(
            version.chars().next().is_some_and(|c| c.is_ascii_digit()),
            "{version}"
        );
        assert!(
            qemu.version_line
                .as_deref()
                .is_some_and(|l| l.starts_with("QEMU emulator version"))
        );
    }
}

#[test]
fn auto_picks_tcg_here_and_says_why() {
    let probe = real_probe();
    let decision = profile::choose(AccelRequest::Auto, &[], Arch::X86_64, &probe, Policy::Skip);
    let ProfileDecision::Use {
        accel, warnings, ..
    } = &decision
    else {
        panic!("{decision:?}")
    };
    assert_eq!(*accel, Accel::Tcg);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("KVM is present but not usable") && w.contains("→ TCG")),
        "{warnings:?}"
    );
}

/// AxVisor's NimbOS case (`qemu-x86_64.toml`: `-accel kvm -cpu host`, a guest hypervisor that
/// needs VT-x) can only be skipped or failed here, before any build.
#[test]
fn axvisor_nimbos_x86_64_is_skipped_or_failed_with_the_reason() {
    let probe = real_probe();
    let requires = [Requirement::Kvm, Requirement::Vmx];
    let skip = profile::choose(
        AccelRequest::Auto,
        &requires,
        Arch::X86_64,
        &probe,
        Policy::Skip,
    );
    let ProfileDecision::Skip { reason } = &skip else {
        panic!("expected Skip, got {skip:?}")
    };
    println!("skip reason: {reason}");
    assert!(reason.contains("KVM is present but not usable"), "{reason}");
    assert!(
        reason.contains("requires vmx, but guests cannot use VT-x"),
        "{reason}"
    );
    assert!(reason.contains("TCG never provides"), "{reason}");

    let fail = profile::choose(
        AccelRequest::Auto,
        &requires,
        Arch::X86_64,
        &probe,
        Policy::Fail,
    );
    assert_eq!(
        fail,
        ProfileDecision::Fail {
            reason: reason.clone()
        }
    );
}

/// `qemu-test probe --json` exits 0 here: problems are findings, and QEMU exists.
#[test]
fn the_cli_entry_succeeds_here() {
    assert_eq!(host::cli(true), 0);
}
