//! The real probe on whatever machine runs the tests. Each test checks that the probe's
//! findings and the decisions made from them agree with what it measured (and, where a fact
//! can be read independently, with that fact): a host where KVM really runs guests passes as
//! well as this project's machines, where `/dev/kvm` opens but guests are emulated.

pub mod common;

use std::time::{Duration, Instant};

use common::Scratch;
use common::fake_qemu::script;
use qemu_test_action::arch::Arch;
use qemu_test_action::host::{self, HostProbe, KvmAccess, ProbeOptions, Status};
use qemu_test_action::profile::{self, Accel, AccelRequest, Policy, ProfileDecision, Requirement};

/// The probe of this host. What these tests check is what the real QEMU answers, not how fast:
/// its `--version` gets a deadline a loaded host meets (the deadline itself is tested below with
/// a QEMU that never answers).
fn real_probe() -> HostProbe {
    let started = Instant::now();
    let probe = host::probe(&ProbeOptions {
        qemu_timeout: Duration::from_secs(60),
        ..ProbeOptions::default()
    });
    println!("{}", probe.render());
    println!("probe took {:.3} s", started.elapsed().as_secs_f64());
    probe
}

/// KVM as measured independently: (device exists, opens read-write, CPU flags vmx/svm).
fn host_facts() -> (bool, bool, bool) {
    let device = std::path::Path::new("/dev/kvm");
    let opens = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(device)
        .is_ok();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let vmx = cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags"))
        .any(|l| l.split_whitespace().any(|f| f == "vmx"));
    (device.exists(), opens, vmx)
}

#[test]
fn kvm_findings_agree_with_the_measurements() {
    let probe = real_probe();
    let kvm = &probe.kvm;
    let (exists, opens, host_vmx) = host_facts();
    // The three levels follow the device as this process sees it.
    assert_eq!(
        kvm.access == KvmAccess::Missing,
        !exists,
        "{:?}",
        kvm.access
    );
    assert_eq!(kvm.present.is_yes(), opens, "{:?}", kvm.present);
    assert_eq!(kvm.nested.host_vmx, host_vmx);
    if kvm.api.is_yes() {
        assert!(kvm.present.is_yes());
        assert_eq!(kvm.api_version, Some(12));
    }
    // "Runs guests" is exactly what the test guest measured.
    match &kvm.runs_guests {
        Status::Yes => {
            assert!(kvm.api.is_yes());
            let guest = kvm.guest.as_ref().expect("a yes needs the guest run");
            assert!(guest.cmpxchg16b.is_yes(), "{guest:?}");
            assert!(guest.loop_completed, "{guest:?}");
            assert!(kvm.usable());
        }
        Status::No { reason } => {
            assert!(!reason.is_empty());
            assert!(!kvm.usable());
            if let Some(guest) = &kvm.guest {
                let failed = guest
                    .cmpxchg16b
                    .reason()
                    .is_some_and(|r| reason.contains(r))
                    || !guest.loop_completed
                    || !guest.cmpxchg16b.is_yes();
                assert!(failed, "a no without a failed measurement: {guest:?}");
            }
        }
        Status::NotChecked { reason } => {
            assert!(!kvm.api.is_yes() || kvm.guest.is_none(), "{reason}");
            assert!(!kvm.usable());
        }
    }
    // The finding says so exactly when KVM opens, its API works, and guests fail.
    let says_unusable = probe.findings.iter().any(|f| {
        f.message.contains("cannot run guests")
            && f.fix
                .as_deref()
                .is_some_and(|fix| fix.contains("accel=tcg"))
    });
    let unusable =
        kvm.present.is_yes() && kvm.api.is_yes() && matches!(kvm.runs_guests, Status::No { .. });
    assert_eq!(says_unusable, unusable, "{:?}", probe.findings);
    // A guest hypervisor can use VT-x only when KVM runs guests on a VMX host.
    if kvm.nested.vmx.is_yes() {
        assert!(kvm.usable() && host_vmx, "{:?}", kvm.nested);
    }

    let json = serde_json::to_value(&probe).unwrap();
    let status = |s: &Status| match s {
        Status::Yes => "yes",
        Status::No { .. } => "no",
        Status::NotChecked { .. } => "not_checked",
    };
    assert_eq!(
        json["kvm"]["runs_guests"]["status"],
        status(&kvm.runs_guests)
    );
    assert_eq!(
        json["kvm"]["nested"]["vmx"]["status"],
        status(&kvm.nested.vmx)
    );
}

/// Whether KVM can run an x86_64 guest here, by the probe's own measurements.
fn kvm_runs_x86_64(probe: &HostProbe) -> bool {
    probe.kvm.usable() && probe.host.arch == Some(Arch::X86_64)
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

/// The `--version` deadline is the probe's parameter: an emulator that does not answer within
/// it is reported with the deadline, killed and reaped, and the probe does not wait for it.
#[test]
fn an_emulator_silent_past_the_version_deadline_is_reported_killed_and_not_waited_for() {
    let s = Scratch::new();
    // Its command line names the scratch dir, so the leak check below sees it.
    let bin = script(
        &s,
        "qemu-system-aarch64",
        "exec python3 -c 'import time; time.sleep(600)' \"$0\"",
    );
    let started = Instant::now();
    let probe = host::probe(&ProbeOptions {
        search_path: Some(bin.clone().into()),
        qemu_timeout: Duration::from_millis(300),
        ..ProbeOptions::default()
    });
    let took = started.elapsed();
    common::assert_no_qemu_left(s.path());
    let qemu = probe.qemu_for(Arch::Aarch64).expect("the fake is found");
    assert_eq!(
        qemu.path.as_deref(),
        Some(bin.join("qemu-system-aarch64").as_path())
    );
    assert_eq!(qemu.version, None, "{qemu:?}");
    assert_eq!(
        qemu.error.as_deref(),
        Some("no answer to --version within 300 ms"),
        "{qemu:?}"
    );
    assert!(took < Duration::from_secs(300), "waited for it: {took:?}");
}

#[test]
fn auto_follows_what_the_probe_measured_and_says_why() {
    let probe = real_probe();
    let decision = profile::choose(AccelRequest::Auto, &[], Arch::X86_64, &probe, Policy::Skip);
    let ProfileDecision::Use {
        accel, warnings, ..
    } = &decision
    else {
        panic!("{decision:?}")
    };
    if kvm_runs_x86_64(&probe) {
        assert_eq!(*accel, Accel::Kvm, "{warnings:?}");
        return;
    }
    assert_eq!(*accel, Accel::Tcg);
    if probe.host.arch != Some(Arch::X86_64) {
        // KVM cannot run another architecture: TCG is expected, no warning needed.
        let ProfileDecision::Use { reason, .. } = &decision else {
            unreachable!()
        };
        assert!(
            reason.contains("KVM runs only guests of the host's architecture"),
            "{reason}"
        );
    } else {
        // Not proven to run guests here: TCG, and the user is told why.
        assert!(warnings.iter().any(|w| w.contains("→ TCG")), "{warnings:?}");
        if probe.kvm.present.is_yes() && probe.kvm.api.is_yes() {
            assert!(
                warnings
                    .iter()
                    .any(|w| w.contains("KVM is present but not usable")),
                "{warnings:?}"
            );
        }
    }
}

/// AxVisor's NimbOS case (`qemu-x86_64.toml`: `-accel kvm -cpu host`, a guest hypervisor that
/// needs VT-x) runs under KVM only where the probe saw KVM run guests and offer VT-x to them;
/// anywhere else it is skipped or failed with the reason, before any build.
#[test]
fn axvisor_nimbos_x86_64_runs_only_where_kvm_and_vtx_were_measured() {
    let probe = real_probe();
    let requires = [Requirement::Kvm, Requirement::Vmx];
    let choose =
        |policy| profile::choose(AccelRequest::Auto, &requires, Arch::X86_64, &probe, policy);
    let skip = choose(Policy::Skip);
    if kvm_runs_x86_64(&probe) && probe.kvm.nested.vmx.is_yes() {
        assert!(
            matches!(
                &skip,
                ProfileDecision::Use {
                    accel: Accel::Kvm,
                    ..
                }
            ),
            "{skip:?}"
        );
        return;
    }
    let ProfileDecision::Skip { reason } = &skip else {
        panic!("expected Skip, got {skip:?}")
    };
    println!("skip reason: {reason}");
    if !kvm_runs_x86_64(&probe) {
        assert!(
            reason.contains("KVM is present but not usable")
                || reason.contains("KVM is not available")
                || reason.contains("KVM runs only guests of the host's architecture")
                || reason.contains("KVM is present but its API fails"),
            "{reason}"
        );
    } else {
        assert!(reason.contains("requires vmx"), "{reason}");
    }
    assert!(reason.contains("TCG never provides"), "{reason}");
    assert_eq!(
        choose(Policy::Fail),
        ProfileDecision::Fail {
            reason: reason.clone()
        }
    );
}

/// `qemu-test probe --json` exits 0: problems are findings, and QEMU exists.
#[test]
fn the_cli_entry_succeeds_here() {
    assert_eq!(qemu_test_action::cmd::probe::probe(true), 0);
}
