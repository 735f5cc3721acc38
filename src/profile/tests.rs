//! Every branch of `choose` and `rewrite_args`, with hand-built probes.

use super::*;
use crate::arch::Arch;
use crate::host::{HostProbe, KvmAccess, KvmProbe, Status};

const EMULATED: &str = "emulation failure (KVM internal error, suberror 1) at lock cmpxchg16b";

fn usable() -> HostProbe {
    HostProbe::fake_kvm_ok()
}

fn unusable() -> HostProbe {
    HostProbe::with_kvm(Arch::X86_64, KvmProbe::unusable(EMULATED))
}

fn absent() -> HostProbe {
    HostProbe::with_kvm(Arch::X86_64, KvmProbe::absent())
}

fn with_vmx() -> HostProbe {
    HostProbe::with_kvm(Arch::X86_64, KvmProbe::working().with_vmx())
}

fn amd() -> HostProbe {
    HostProbe::with_kvm(Arch::X86_64, KvmProbe::working().with_svm())
}

/// An aarch64 host: the API works, but the guest check only runs on x86_64.
fn arm_unverified() -> HostProbe {
    let mut kvm = KvmProbe::working();
    kvm.runs_guests = Status::not_checked("the guest check runs on x86_64 hosts only");
    HostProbe::with_kvm(Arch::Aarch64, kvm)
}

fn decide(
    accel: AccelRequest,
    requires: &[Requirement],
    guest: Arch,
    probe: &HostProbe,
) -> ProfileDecision {
    choose(accel, requires, guest, probe, Policy::Skip)
}

#[track_caller]
fn expect_use(d: &ProfileDecision, accel: Accel, reason_has: &str, warning_has: Option<&str>) {
    let ProfileDecision::Use {
        accel: got,
        reason,
        warnings,
    } = d
    else {
        panic!("expected Use, got {d:?}")
    };
    assert_eq!(*got, accel, "{d:?}");
    assert!(
        reason.contains(reason_has),
        "reason {reason:?} lacks {reason_has:?}"
    );
    match warning_has {
        None => assert!(warnings.is_empty(), "unexpected warnings {warnings:?}"),
        Some(w) => assert!(
            warnings.len() == 1 && warnings[0].contains(w),
            "warnings {warnings:?} lack {w:?}"
        ),
    }
}

#[track_caller]
fn expect_skip(d: &ProfileDecision, reason_has: &[&str]) {
    let ProfileDecision::Skip { reason } = d else {
        panic!("expected Skip, got {d:?}")
    };
    for part in reason_has {
        assert!(reason.contains(part), "reason {reason:?} lacks {part:?}");
    }
}

// ---- choose: accel = auto ----

#[test]
fn auto_uses_kvm_where_it_runs_guests() {
    expect_use(
        &decide(AccelRequest::Auto, &[], Arch::X86_64, &usable()),
        Accel::Kvm,
        "KVM runs guests",
        None,
    );
}

#[test]
fn auto_falls_back_to_tcg_loudly_when_kvm_is_unusable() {
    let d = decide(AccelRequest::Auto, &[], Arch::X86_64, &unusable());
    let expected = format!("KVM is present but not usable ({EMULATED}) → TCG");
    expect_use(&d, Accel::Tcg, &expected, Some(&expected));
}

#[test]
fn auto_falls_back_to_tcg_loudly_without_dev_kvm_or_access() {
    let d = decide(AccelRequest::Auto, &[], Arch::X86_64, &absent());
    expect_use(
        &d,
        Accel::Tcg,
        "KVM is not available (/dev/kvm does not exist)",
        Some("→ TCG"),
    );

    let mut denied = KvmProbe::absent();
    denied.access = KvmAccess::PermissionDenied;
    denied.present = Status::no("/dev/kvm: permission denied (opening read-write)");
    let d = decide(
        AccelRequest::Auto,
        &[],
        Arch::X86_64,
        &HostProbe::with_kvm(Arch::X86_64, denied),
    );
    expect_use(
        &d,
        Accel::Tcg,
        "permission denied",
        Some("permission denied"),
    );

    let mut broken = KvmProbe::working();
    broken.api = Status::no("KVM_CREATE_VM failed: Invalid argument");
    let d = decide(
        AccelRequest::Auto,
        &[],
        Arch::X86_64,
        &HostProbe::with_kvm(Arch::X86_64, broken),
    );
    expect_use(
        &d,
        Accel::Tcg,
        "API fails (KVM_CREATE_VM failed",
        Some("KVM_CREATE_VM"),
    );
}

#[test]
fn auto_uses_tcg_quietly_for_another_architecture() {
    let d = decide(AccelRequest::Auto, &[], Arch::Aarch64, &usable());
    expect_use(&d, Accel::Tcg, "guest aarch64, host x86_64", None);
}

#[test]
fn auto_does_not_trust_unverified_kvm_but_kvm_requests_may() {
    let d = decide(AccelRequest::Auto, &[], Arch::Aarch64, &arm_unverified());
    expect_use(
        &d,
        Accel::Tcg,
        "could not be verified",
        Some("set accel=kvm to use it anyway"),
    );

    let d = decide(AccelRequest::Kvm, &[], Arch::Aarch64, &arm_unverified());
    expect_use(&d, Accel::Kvm, "no guest check", Some("without proof"));

    let d = decide(
        AccelRequest::Auto,
        &[Requirement::Kvm],
        Arch::Aarch64,
        &arm_unverified(),
    );
    expect_use(
        &d,
        Accel::Kvm,
        "only KVM meets the requirements",
        Some("without proof"),
    );
}

// ---- choose: explicit accel ----

#[test]
fn explicit_kvm_is_used_or_refused_by_policy() {
    expect_use(
        &decide(AccelRequest::Kvm, &[], Arch::X86_64, &usable()),
        Accel::Kvm,
        "accel=kvm requested",
        None,
    );

    expect_skip(
        &decide(AccelRequest::Kvm, &[], Arch::X86_64, &unusable()),
        &["accel=kvm requested", EMULATED],
    );
    let fail = choose(
        AccelRequest::Kvm,
        &[],
        Arch::X86_64,
        &unusable(),
        Policy::Fail,
    );
    assert!(
        matches!(&fail, ProfileDecision::Fail { reason } if reason.contains(EMULATED)),
        "{fail:?}"
    );

    expect_skip(
        &decide(AccelRequest::Kvm, &[], Arch::Aarch64, &usable()),
        &["host's architecture"],
    );
    expect_skip(
        &decide(AccelRequest::Kvm, &[], Arch::X86_64, &absent()),
        &["does not exist"],
    );
}

#[test]
fn explicit_tcg_never_pretends_to_give_kvm_or_vmx() {
    expect_use(
        &decide(AccelRequest::Tcg, &[], Arch::X86_64, &usable()),
        Accel::Tcg,
        "accel=tcg requested",
        None,
    );
    expect_skip(
        &decide(
            AccelRequest::Tcg,
            &[Requirement::Kvm],
            Arch::X86_64,
            &usable(),
        ),
        &["requires kvm"],
    );
    expect_skip(
        &decide(
            AccelRequest::Tcg,
            &[Requirement::Vmx],
            Arch::X86_64,
            &with_vmx(),
        ),
        &["TCG never provides"],
    );
    let d = decide(
        AccelRequest::Tcg,
        &[Requirement::Svm],
        Arch::X86_64,
        &unusable(),
    );
    expect_use(&d, Accel::Tcg, "accel=tcg requested", None);
    expect_skip(
        &decide(
            AccelRequest::Tcg,
            &[Requirement::Svm],
            Arch::Aarch64,
            &usable(),
        ),
        &["x86 feature"],
    );
}

// ---- choose: requirements ----

#[test]
fn requires_kvm() {
    let d = decide(
        AccelRequest::Auto,
        &[Requirement::Kvm],
        Arch::X86_64,
        &usable(),
    );
    expect_use(&d, Accel::Kvm, "KVM runs guests", None);
    expect_skip(
        &decide(
            AccelRequest::Auto,
            &[Requirement::Kvm],
            Arch::X86_64,
            &unusable(),
        ),
        &[EMULATED, "TCG is no alternative (the case requires kvm)"],
    );
    let fail = choose(
        AccelRequest::Auto,
        &[Requirement::Kvm],
        Arch::X86_64,
        &absent(),
        Policy::Fail,
    );
    assert!(
        matches!(&fail, ProfileDecision::Fail { reason } if reason.contains("does not exist")),
        "{fail:?}"
    );
}

#[test]
fn requires_vmx() {
    let d = decide(
        AccelRequest::Auto,
        &[Requirement::Vmx],
        Arch::X86_64,
        &with_vmx(),
    );
    expect_use(&d, Accel::Kvm, "KVM runs guests", None);
    expect_skip(
        &decide(
            AccelRequest::Auto,
            &[Requirement::Vmx],
            Arch::X86_64,
            &usable(),
        ),
        &[
            "requires vmx, but guests cannot use VT-x",
            "TCG is no alternative",
            "never provides",
        ],
    );
    expect_skip(
        &decide(
            AccelRequest::Auto,
            &[Requirement::Vmx],
            Arch::X86_64,
            &amd(),
        ),
        &["AMD (SVM only)", "Intel host"],
    );
    expect_skip(
        &decide(
            AccelRequest::Kvm,
            &[Requirement::Vmx],
            Arch::X86_64,
            &usable(),
        ),
        &["accel=kvm requested"],
    );
    expect_skip(
        &decide(
            AccelRequest::Auto,
            &[Requirement::Vmx],
            Arch::Aarch64,
            &usable(),
        ),
        &["x86 feature"],
    );
}

#[test]
fn requires_svm() {
    let d = decide(
        AccelRequest::Auto,
        &[Requirement::Svm],
        Arch::X86_64,
        &amd(),
    );
    expect_use(&d, Accel::Kvm, "KVM runs guests", None);
    let d = decide(
        AccelRequest::Auto,
        &[Requirement::Svm],
        Arch::X86_64,
        &usable(),
    );
    expect_use(
        &d,
        Accel::Tcg,
        "requires svm, but KVM offers no AMD-V",
        Some("→ TCG"),
    );
    expect_skip(
        &decide(
            AccelRequest::Kvm,
            &[Requirement::Svm],
            Arch::X86_64,
            &usable(),
        ),
        &["no AMD-V"],
    );
}

#[test]
fn the_nimbos_case_on_an_emulating_host_is_skipped_with_every_reason() {
    let mut probe = unusable();
    probe.kvm.nested.vmx = Status::no("the host CPU has no vmx flag");
    let requires = [Requirement::Kvm, Requirement::Vmx, Requirement::Kvm];
    let d = decide(AccelRequest::Auto, &requires, Arch::X86_64, &probe);
    expect_skip(
        &d,
        &[EMULATED, "no vmx flag", "requires kvm", "never provides"],
    );
    let ProfileDecision::Skip { reason } = d else {
        unreachable!()
    };
    assert_eq!(
        reason.matches("requires kvm").count(),
        1,
        "requirements are deduplicated: {reason}"
    );
}

#[test]
fn inputs_parse_with_helpful_errors() {
    assert_eq!("VMX".parse::<Requirement>(), Ok(Requirement::Vmx));
    assert_eq!("amd-v".parse::<Requirement>(), Ok(Requirement::Svm));
    assert!(
        "ept"
            .parse::<Requirement>()
            .unwrap_err()
            .contains("kvm, vmx, svm")
    );
    assert_eq!("auto".parse::<AccelRequest>(), Ok(AccelRequest::Auto));
    assert_eq!("tcg".parse::<AccelRequest>(), Ok(AccelRequest::Tcg));
    assert!(
        "hvf"
            .parse::<AccelRequest>()
            .unwrap_err()
            .contains("auto, kvm, tcg")
    );
    assert_eq!("fail".parse::<Policy>(), Ok(Policy::Fail));
    assert!("ignore".parse::<Policy>().is_err());
    assert_eq!(Accel::Kvm.to_string(), "kvm");
    let json = serde_json::to_value(ProfileDecision::Skip { reason: "r".into() }).unwrap();
    assert_eq!(json, serde_json::json!({"decision": "skip", "reason": "r"}));
}

// ---- rewrite_args ----

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

fn rewrite(args: &[&str], accel: Accel, arch: Arch) -> (Vec<String>, Vec<String>) {
    rewrite_args(&strings(args), accel, Profiles::builtin().get(arch))
}

/// AxVisor's `.github/workflows/qemu-x86_64.toml` arguments.
const AXVISOR_X86: &[&str] = &[
    "-m",
    "128M",
    "-smp",
    "1",
    "-machine",
    "q35",
    "-device",
    "virtio-blk-pci,drive=disk0",
    "-drive",
    "id=disk0,if=none,format=raw,file=${workspaceFolder}/tmp/rootfs.img",
    "-nographic",
    "-accel",
    "kvm",
    "-cpu",
    "host",
];

#[test]
fn axvisor_x86_64_args_become_tcg_with_max() {
    let (args, notes) = rewrite(AXVISOR_X86, Accel::Tcg, Arch::X86_64);
    let mut expected = strings(AXVISOR_X86);
    expected[12] = "tcg".to_string();
    expected[14] = "max".to_string();
    assert_eq!(args, expected);
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(
        notes[0].starts_with("`-cpu host` → `-cpu max`: `host` needs KVM"),
        "{notes:?}"
    );
    assert!(
        notes[1].starts_with("replaced `-accel kvm` with `-accel tcg`"),
        "{notes:?}"
    );
}

#[test]
fn rewriting_is_idempotent_and_kvm_args_stay_for_kvm() {
    let (kvm, notes) = rewrite(AXVISOR_X86, Accel::Kvm, Arch::X86_64);
    assert_eq!(kvm, strings(AXVISOR_X86));
    assert!(notes.is_empty(), "{notes:?}");
    let (tcg, _) = rewrite(AXVISOR_X86, Accel::Tcg, Arch::X86_64);
    let (again, notes) = rewrite_args(&tcg, Accel::Tcg, Profiles::builtin().get(Arch::X86_64));
    assert_eq!(again, tcg);
    assert!(notes.is_empty(), "{notes:?}");
}

#[test]
fn enable_kvm_and_machine_accel_collapse_into_one_accel() {
    let (args, notes) = rewrite(&["-enable-kvm", "-m", "1G"], Accel::Tcg, Arch::X86_64);
    assert_eq!(args, strings(&["-accel", "tcg", "-m", "1G"]));
    assert!(
        notes[0].contains("replaced `-enable-kvm` with `-accel tcg`"),
        "{notes:?}"
    );

    let (args, notes) = rewrite(
        &["-machine", "q35,accel=kvm,smm=off", "-m", "1G"],
        Accel::Tcg,
        Arch::X86_64,
    );
    assert_eq!(
        args,
        strings(&["-machine", "q35,smm=off", "-accel", "tcg", "-m", "1G"])
    );
    assert!(
        notes[0].contains("`accel=kvm in -machine q35,accel=kvm,smm=off`"),
        "{notes:?}"
    );

    let (args, _) = rewrite(
        &["-M", "accel=kvm:tcg", "-nographic"],
        Accel::Kvm,
        Arch::X86_64,
    );
    assert_eq!(
        args,
        strings(&["-accel", "kvm", "-nographic", "-cpu", "host"])
    );

    let (args, notes) = rewrite(
        &["--accel", "kvm", "-accel", "tcg", "-enable-kvm"],
        Accel::Kvm,
        Arch::X86_64,
    );
    assert_eq!(args, strings(&["-accel", "kvm", "-cpu", "host"]));
    assert!(
        notes[0].contains("`-accel kvm`, `-accel tcg`, `-enable-kvm`")
            && notes[0].contains("no silent fallback")
    );
}

#[test]
fn cpu_models_follow_the_profile() {
    let (args, _) = rewrite(&["-cpu", "host,+x2apic,-pmu"], Accel::Tcg, Arch::X86_64);
    assert_eq!(
        args,
        strings(&["-cpu", "max,+x2apic,-pmu", "-accel", "tcg"])
    );
    let (args, notes) = rewrite(&["-cpu", "Skylake-Client"], Accel::Kvm, Arch::X86_64);
    assert_eq!(
        args,
        strings(&["-cpu", "Skylake-Client", "-accel", "kvm"]),
        "named models work under x86 KVM"
    );
    assert_eq!(notes.len(), 1, "{notes:?}");
    let (args, notes) = rewrite(&["-m", "1G"], Accel::Kvm, Arch::X86_64);
    assert_eq!(
        args,
        strings(&["-m", "1G", "-accel", "kvm", "-cpu", "host"])
    );
    assert!(
        notes.iter().any(|n| n.starts_with("added `-cpu host`")),
        "{notes:?}"
    );
    let (args, _) = rewrite(&["-m", "1G"], Accel::Tcg, Arch::X86_64);
    assert_eq!(
        args,
        strings(&["-m", "1G", "-accel", "tcg"]),
        "TCG keeps QEMU's default CPU"
    );
    let (args, _) = rewrite(&["-cpu", "la464"], Accel::Kvm, Arch::Loongarch64);
    assert_eq!(
        args,
        strings(&["-cpu", "la464", "-accel", "kvm"]),
        "no KVM cpu: the user's stays"
    );
}

#[test]
fn option_values_are_never_taken_for_options() {
    let args = [
        "-append",
        "-cpu host -enable-kvm",
        "-append",
        "-enable-kvm",
        "-nographic",
    ];
    let (out, _) = rewrite(&args, Accel::Tcg, Arch::X86_64);
    assert_eq!(out[..5], strings(&args)[..]);
    let (out, _) = rewrite(
        &["-machine", "virt,dumpdtb=a,,b.dtb,accel=kvm"],
        Accel::Tcg,
        Arch::Aarch64,
    );
    assert_eq!(
        out,
        strings(&["-machine", "virt,dumpdtb=a,,b.dtb", "-accel", "tcg"]),
        "`,,` stays escaped"
    );
    let (out, _) = rewrite(&["-cpu"], Accel::Tcg, Arch::X86_64);
    assert_eq!(
        out,
        strings(&["-cpu", "-accel", "tcg"]),
        "a dangling option is left for QEMU to reject"
    );
}

/// AxVisor's `.github/workflows/qemu-aarch64.toml` arguments (trimmed to the relevant ones).
const AXVISOR_ARM64: &[&str] = &[
    "-nographic",
    "-cpu",
    "cortex-a72",
    "-machine",
    "virt,virtualization=on,gic-version=3",
    "-smp",
    "4",
];

#[test]
fn aarch64_tcg_keeps_the_users_cpu_and_gic() {
    let (args, notes) = rewrite(AXVISOR_ARM64, Accel::Tcg, Arch::Aarch64);
    let mut expected = strings(AXVISOR_ARM64);
    expected.extend(strings(&["-accel", "tcg"]));
    assert_eq!(args, expected);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].starts_with("added `-accel tcg`"));

    let (args, notes) = rewrite(
        &["-machine", "virt,gic-version=host", "-cpu", "host"],
        Accel::Tcg,
        Arch::Aarch64,
    );
    assert_eq!(
        args,
        strings(&[
            "-machine",
            "virt,gic-version=max",
            "-cpu",
            "max",
            "-accel",
            "tcg"
        ])
    );
    assert!(
        notes
            .iter()
            .any(|n| n
                .contains("`gic-version=host` → `gic-version=max`: gic-version=host needs KVM"))
    );
}

#[test]
fn aarch64_kvm_uses_the_host_cpu_and_gic() {
    let (args, notes) = rewrite(AXVISOR_ARM64, Accel::Kvm, Arch::Aarch64);
    assert_eq!(
        args,
        strings(&[
            "-nographic",
            "-cpu",
            "host",
            "-machine",
            "virt,virtualization=on,gic-version=3",
            "-smp",
            "4",
            "-accel",
            "kvm",
        ])
    );
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("`-cpu cortex-a72` → `-cpu host`: KVM on arm64")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("warning: `virtualization=on`")),
        "{notes:?}"
    );
    assert!(
        !notes.iter().any(|n| n.contains("gic-version=host")),
        "an explicit gic-version is kept"
    );

    let (args, notes) = rewrite(&["-machine", "virt"], Accel::Kvm, Arch::Aarch64);
    assert_eq!(
        args,
        strings(&[
            "-machine",
            "virt,gic-version=host",
            "-accel",
            "kvm",
            "-cpu",
            "host"
        ])
    );
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("added `gic-version=host` to -machine")),
        "{notes:?}"
    );
}

#[test]
fn remove_rules_from_a_user_profile() {
    let mut profiles = Profiles::builtin();
    let text = "[[x86_64.tcg.machine]]\nprop = \"kernel-irqchip\"\nremove = true\nwhy = \"TCG has no in-kernel irqchip\"\n";
    profiles
        .overlay(std::path::Path::new("mine.toml"), text)
        .unwrap();
    let (args, notes) = rewrite_args(
        &strings(&["-machine", "q35,kernel-irqchip=split"]),
        Accel::Tcg,
        profiles.get(Arch::X86_64),
    );
    assert_eq!(args, strings(&["-machine", "q35", "-accel", "tcg"]));
    assert!(
        notes[0]
            .contains("removed `kernel-irqchip=split` from -machine: TCG has no in-kernel irqchip")
    );
}

#[test]
fn i386_guests_use_kvm_on_an_x86_64_host() {
    let d = decide(AccelRequest::Auto, &[], Arch::I386, &usable());
    expect_use(&d, Accel::Kvm, "KVM runs guests on this host", None);
    let d = decide(AccelRequest::Kvm, &[], Arch::I386, &usable());
    expect_use(&d, Accel::Kvm, "accel=kvm requested", None);
    // Not the other way round, and not across families.
    let i386_host = HostProbe::with_kvm(Arch::I386, KvmProbe::working());
    let d = decide(AccelRequest::Auto, &[], Arch::X86_64, &i386_host);
    expect_use(&d, Accel::Tcg, "host's architecture", None);
    let d = decide(AccelRequest::Auto, &[], Arch::Arm, &arm_unverified());
    expect_use(&d, Accel::Tcg, "host's architecture", None);
}

// ---- choose: the hypervisor requirement (tgoskits' AxVisor cases) ----

/// `smoke-vmx` and `smoke-svm` as the test-suit plans them (kvm + their extension +
/// hypervisor), on injected Intel and AMD hosts: each runs under KVM on its own vendor and is
/// skipped on the other with the reason naming its own extension, never the other's.
#[test]
fn svm_and_vmx_cases_each_run_on_their_vendor_and_name_their_extension_elsewhere() {
    use Requirement::{Hypervisor, Kvm, Svm, Vmx};
    let vmx = [Kvm, Vmx, Hypervisor];
    let svm = [Kvm, Svm, Hypervisor];
    for (requires, probe) in [(&vmx, with_vmx()), (&svm, amd())] {
        let d = decide(AccelRequest::Auto, requires, Arch::X86_64, &probe);
        expect_use(&d, Accel::Kvm, "KVM runs guests", None);
    }
    for (requires, probe, own, other) in [
        (&vmx, amd(), "requires vmx", "svm"),
        (&svm, with_vmx(), "requires svm", "vmx"),
        (&vmx, usable(), "requires vmx", "svm"),
        (&svm, absent(), "requires kvm", "vmx"),
    ] {
        let d = decide(AccelRequest::Auto, requires, Arch::X86_64, &probe);
        expect_skip(&d, &[own]);
        let ProfileDecision::Skip { reason } = d else {
            unreachable!()
        };
        assert!(!reason.contains(&format!("requires {other}")), "{reason}");
        assert!(
            !reason.contains("hypervisor"),
            "the named extension decides: {reason}"
        );
    }
}

#[test]
fn a_riscv64_hypervisor_runs_under_tcg_when_qemu_says_h() {
    let req = [Requirement::Hypervisor];
    let h = super::hypervisor::tests::rv64_h;
    let riscv = |fact| {
        choose_with_cpu(
            AccelRequest::Auto,
            &req,
            Arch::Riscv64,
            &usable(),
            Policy::Skip,
            Some(&fact),
        )
    };
    expect_use(&riscv(h(Status::Yes)), Accel::Tcg, "accel=auto: TCG", None);
    expect_skip(
        &riscv(h(Status::no("QEMU's CPU `rv64` has h=off (q)"))),
        &["on riscv64 needs the H extension, but QEMU's CPU `rv64` has h=off"],
    );
    // Not asked at all: never assumed.
    expect_skip(
        &decide(AccelRequest::Auto, &req, Arch::Riscv64, &usable()),
        &["QEMU was not asked"],
    );
    // aarch64 under TCG has EL2; x86 needs the case to say which extension.
    expect_use(
        &decide(AccelRequest::Auto, &req, Arch::Aarch64, &usable()),
        Accel::Tcg,
        "TCG",
        None,
    );
    expect_skip(
        &decide(AccelRequest::Auto, &req, Arch::X86_64, &with_vmx()),
        &["does not say which", "requires vmx (Intel) or svm (AMD)"],
    );
    assert_eq!(
        "hypervisor".parse::<Requirement>(),
        Ok(Requirement::Hypervisor)
    );
}
