//! The one table of what a guest hypervisor (AxVisor) needs from its virtual CPU, per
//! architecture, and the rule that turns it into a reason not to run (`requires = ["hypervisor"]`).
//!
//! | arch | needs | under TCG | under KVM |
//! |---|---|---|---|
//! | x86_64, i386 | VT-x (`vmx`) or AMD-V (`svm`): the case says which | vmx never; svm yes | what the probe found ([`super::Requirement::Vmx`], [`super::Requirement::Svm`]) |
//! | aarch64, arm | EL2 | yes, with `-machine virt,virtualization=on` | not probed: refused |
//! | riscv64, riscv32 | the H extension | when QEMU says the case's `-cpu` has `h` on | not probed: refused |
//! | loongarch64 | LVZ | when QEMU says the case's `-cpu` has `lvz` on (upstream QEMU has no such property) | not probed: refused |

use crate::arch::Arch;
use crate::host::CpuFeature;

use super::Accel;

/// How an architecture's hypervisor extension is found out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// VT-x or AMD-V; the case must name one (`vmx`/`svm`), whose own rules then apply.
    X86,
    /// EL2: TCG emulates it (with `virtualization=on`), arm64 nested KVM is not probed.
    El2,
    /// A property of the QEMU CPU object, asked of the QEMU that runs the case
    /// ([`crate::host::qemu_cpu`]); `default_cpu` is what `-machine virt` uses without `-cpu`.
    CpuProperty {
        property: &'static str,
        default_cpu: &'static str,
    },
}

/// One row: what a hypervisor needs on these architectures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub archs: &'static [Arch],
    /// The extension's name, as the skip reason says it.
    pub extension: &'static str,
    pub check: Check,
    /// Said after the reason when the extension is missing: where to get it.
    pub hint: &'static str,
}

/// The requirement table (one row per architecture family).
pub const TABLE: &[Rule] = &[
    Rule {
        archs: &[Arch::X86_64, Arch::I386],
        extension: "VT-x (vmx) or AMD-V (svm)",
        check: Check::X86,
        hint: "name the one the case is built for: requires vmx (Intel) or svm (AMD)",
    },
    Rule {
        archs: &[Arch::Aarch64, Arch::Arm],
        extension: "EL2",
        check: Check::El2,
        hint: "use accel=tcg: TCG gives a full EL2 with -machine virt,virtualization=on",
    },
    Rule {
        archs: &[Arch::Riscv64],
        extension: "the H extension",
        check: Check::CpuProperty {
            property: "h",
            default_cpu: "rv64",
        },
        hint: "use a CPU model with it (rv64 and max have h=on in QEMU 7 and later)",
    },
    Rule {
        archs: &[Arch::Riscv32],
        extension: "the H extension",
        check: Check::CpuProperty {
            property: "h",
            default_cpu: "rv32",
        },
        hint: "use a CPU model with it (rv32 and max have h=on in QEMU 7 and later)",
    },
    Rule {
        archs: &[Arch::Loongarch64],
        extension: "LVZ (the LoongArch virtualization extension)",
        check: Check::CpuProperty {
            property: "lvz",
            default_cpu: "la464",
        },
        hint: "upstream QEMU does not emulate LVZ under TCG: run the case with a QEMU that does \
               (`qemu = \"/path/to/qemu-system-loongarch64\"` in the QEMU config, or first on PATH)",
    },
];

/// The row for `arch` (every architecture has one).
pub fn rule(arch: Arch) -> &'static Rule {
    TABLE
        .iter()
        .find(|r| r.archs.contains(&arch))
        .unwrap_or_else(|| unreachable!("the hypervisor table covers every Arch"))
}

/// The QEMU question a hypervisor case on `arch` needs answered before it is decided, for the
/// arguments it would run with under TCG: `(property, -cpu value)`.
pub fn cpu_question(arch: Arch, tcg_args: &[String]) -> Option<(&'static str, String)> {
    let Check::CpuProperty {
        property,
        default_cpu,
    } = rule(arch).check
    else {
        return None;
    };
    let given = tcg_args
        .windows(2)
        .filter(|w| w[0] == "-cpu" || w[0] == "--cpu")
        .map(|w| w[1].clone())
        .next_back();
    Some((property, given.unwrap_or_else(|| default_cpu.to_string())))
}

/// Asks each QEMU in `probe` whose architecture's hypervisor extension is a CPU property
/// (riscv64, riscv32, loongarch64) about the machine's default CPU, for `qemu-test probe`.
pub fn ask_defaults(probe: &mut crate::host::HostProbe) {
    let asked: Vec<CpuFeature> = probe
        .qemu
        .iter()
        .filter(|q| q.path.is_some())
        .filter_map(|q| {
            let (property, cpu) = cpu_question(q.arch, &[])?;
            Some(CpuFeature::ask(q.arch, &q.binary, &cpu, property))
        })
        .collect();
    probe.cpu_features.extend(asked);
}

/// Why `accel` cannot run a hypervisor on a `guest` CPU (`None` = it can). `x86_named` says
/// whether the case also requires `vmx` or `svm` (which then decide); `fact` is QEMU's answer
/// to [`cpu_question`], when it was asked.
pub fn gap(
    accel: Accel,
    guest: Arch,
    x86_named: bool,
    fact: Option<&CpuFeature>,
) -> Option<String> {
    let r = rule(guest);
    let missing = |why: &str| {
        format!(
            "the case requires a hypervisor, which on {guest} needs {}, but {why}; {}",
            r.extension, r.hint
        )
    };
    match (r.check, accel) {
        (Check::X86, _) if x86_named => None,
        (Check::X86, _) => Some(missing("the case does not say which")),
        (Check::El2, Accel::Tcg) => None,
        (Check::El2 | Check::CpuProperty { .. }, Accel::Kvm) => Some(missing(
            "whether KVM offers it to guests is not probed (nested virtualisation)",
        )),
        (Check::CpuProperty { .. }, Accel::Tcg) => match fact.map(|f| &f.status) {
            Some(s) if s.is_yes() => None,
            Some(s) => Some(missing(s.reason().unwrap_or("QEMU says no"))),
            None => Some(missing("QEMU was not asked")),
        },
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::host::Status;

    /// QEMU's answer about `h` on `rv64`, as `status` says (for the profile's tests too).
    pub(in crate::profile) fn rv64_h(status: Status) -> CpuFeature {
        CpuFeature {
            arch: Arch::Riscv64,
            program: "qemu-system-riscv64".into(),
            cpu: "rv64".into(),
            feature: "h".into(),
            status,
        }
    }

    #[test]
    fn every_arch_has_one_row() {
        for arch in Arch::ALL {
            let rows = TABLE.iter().filter(|r| r.archs.contains(&arch)).count();
            assert_eq!(rows, 1, "{arch}");
        }
    }

    #[test]
    fn the_cpu_asked_about_is_the_last_given_or_the_machines_default() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            cpu_question(Arch::Riscv64, &args(&["-machine", "virt"])),
            Some(("h", "rv64".to_string()))
        );
        assert_eq!(
            cpu_question(
                Arch::Riscv64,
                &args(&["-cpu", "max", "-cpu", "rv64,h=false"])
            ),
            Some(("h", "rv64,h=false".to_string()))
        );
        assert_eq!(
            cpu_question(Arch::Loongarch64, &[]),
            Some(("lvz", "la464".to_string()))
        );
        assert_eq!(cpu_question(Arch::Aarch64, &[]), None);
        assert_eq!(cpu_question(Arch::X86_64, &[]), None);
    }

    #[test]
    fn gaps_name_the_extension_and_the_way_out() {
        assert_eq!(
            gap(Accel::Tcg, Arch::Riscv64, false, Some(&rv64_h(Status::Yes))),
            None
        );
        let no = gap(
            Accel::Tcg,
            Arch::Riscv64,
            false,
            Some(&rv64_h(Status::no(
                "QEMU's CPU `rv64,h=false` has h=off (q)",
            ))),
        )
        .unwrap();
        assert!(
            no.contains(
                "on riscv64 needs the H extension, but QEMU's CPU `rv64,h=false` has h=off"
            ),
            "{no}"
        );
        assert!(
            gap(Accel::Tcg, Arch::Riscv64, false, None)
                .unwrap()
                .contains("not asked")
        );
        let lvz = gap(Accel::Kvm, Arch::Loongarch64, false, None).unwrap();
        assert!(
            lvz.contains("needs LVZ") && lvz.contains("not probed"),
            "{lvz}"
        );
        assert_eq!(gap(Accel::Tcg, Arch::Aarch64, false, None), None);
        assert!(
            gap(Accel::Kvm, Arch::Aarch64, false, None)
                .unwrap()
                .contains("needs EL2")
        );
        let x86 = gap(Accel::Kvm, Arch::X86_64, false, None).unwrap();
        assert!(
            x86.contains("does not say which") && x86.contains("requires vmx (Intel) or svm (AMD)"),
            "{x86}"
        );
        assert_eq!(gap(Accel::Tcg, Arch::X86_64, true, None), None);
    }
}
