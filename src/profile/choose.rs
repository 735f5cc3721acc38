//! Deciding KVM or TCG for a case — or skipping/failing it — from the probe, the case's
//! requirements and the `accel` input. Every outcome carries its reason; a case never moves from
//! KVM to TCG without a warning that says why.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::arch::Arch;
use crate::host::{CpuFeature, HostProbe, KvmAccess, Status};

use super::{Accel, hypervisor};

/// The `accel` input: `auto` picks KVM only where it really runs guests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccelRequest {
    #[default]
    Auto,
    Kvm,
    Tcg,
}

/// Something a case needs from the host (`requires = ["kvm", "vmx"]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Requirement {
    /// Hardware acceleration (performance-sensitive or KVM-specific tests).
    Kvm,
    /// Intel VT-x inside the guest, for a guest hypervisor (AxVisor x86_64).
    Vmx,
    /// AMD-V inside the guest.
    Svm,
    /// A guest hypervisor (AxVisor): the architecture's virtualization extension, as the one
    /// table says ([`super::hypervisor`]): VT-x/AMD-V, EL2, the H extension, LVZ.
    Hypervisor,
}

/// What to do with a case the host cannot run as asked (`--on-unsupported`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    #[default]
    Skip,
    Fail,
}

/// The outcome for one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "lowercase")]
pub enum ProfileDecision {
    /// Run under `accel`; `warnings` must reach the user (e.g. as annotations).
    Use {
        accel: Accel,
        reason: String,
        warnings: Vec<String>,
    },
    /// Do not run; not a failure (policy `skip`).
    Skip { reason: String },
    /// Do not run; count as a failure (policy `fail`).
    Fail { reason: String },
}

/// Picks the accelerator for a case whose guest is `guest_arch`.
pub fn choose(
    accel: AccelRequest,
    requires: &[Requirement],
    guest_arch: Arch,
    probe: &HostProbe,
    on_unsupported: Policy,
) -> ProfileDecision {
    choose_with_cpu(accel, requires, guest_arch, probe, on_unsupported, None)
}

/// [`choose`] for a case whose CPU QEMU was asked about (`cpu`: the answer to
/// [`super::hypervisor::cpu_question`], for `requires = ["hypervisor"]`).
pub fn choose_with_cpu(
    accel: AccelRequest,
    requires: &[Requirement],
    guest_arch: Arch,
    probe: &HostProbe,
    on_unsupported: Policy,
    cpu: Option<&CpuFeature>,
) -> ProfileDecision {
    let kvm = KvmFit::of(probe, guest_arch);
    let needs = Needs {
        requires,
        guest: guest_arch,
        probe,
        kvm: &kvm,
        cpu,
    };
    let kvm_gaps = needs.gaps(Accel::Kvm);
    let tcg_gaps = needs.gaps(Accel::Tcg);
    let unsupported = |reason: String| match on_unsupported {
        Policy::Skip => ProfileDecision::Skip { reason },
        Policy::Fail => ProfileDecision::Fail { reason },
    };
    match accel {
        AccelRequest::Tcg if tcg_gaps.is_empty() => {
            use_tcg("accel=tcg requested".to_string(), Vec::new())
        }
        AccelRequest::Tcg => {
            unsupported(format!("accel=tcg requested, but {}", tcg_gaps.join("; ")))
        }
        AccelRequest::Kvm if kvm_gaps.is_empty() => use_kvm("accel=kvm requested", &kvm),
        AccelRequest::Kvm => {
            unsupported(format!("accel=kvm requested, but {}", kvm_gaps.join("; ")))
        }
        AccelRequest::Auto if kvm_gaps.is_empty() && kvm.verified() => use_kvm("accel=auto", &kvm),
        AccelRequest::Auto if tcg_gaps.is_empty() => auto_tcg(&kvm, &kvm_gaps),
        AccelRequest::Auto if kvm_gaps.is_empty() => {
            use_kvm("accel=auto and only KVM meets the requirements", &kvm)
        }
        AccelRequest::Auto => {
            let mut reasons = kvm_gaps;
            reasons.push(format!("TCG is no alternative ({})", tcg_gaps.join("; ")));
            unsupported(reasons.join("; "))
        }
    }
}

fn use_kvm(why: &str, kvm: &KvmFit) -> ProfileDecision {
    let mut warnings = Vec::new();
    let reason = match kvm {
        KvmFit::Unverified(detail) => {
            warnings.push(format!(
                "KVM is used without proof that it runs guests here ({detail})"
            ));
            format!("{why}: KVM API works (no guest check on this host)")
        }
        _ => format!("{why}: KVM runs guests on this host"),
    };
    ProfileDecision::Use {
        accel: Accel::Kvm,
        reason,
        warnings,
    }
}

fn use_tcg(reason: String, warnings: Vec<String>) -> ProfileDecision {
    ProfileDecision::Use {
        accel: Accel::Tcg,
        reason,
        warnings,
    }
}

/// `auto` falling back to TCG: said as a reason, and as a warning unless it was expected.
fn auto_tcg(kvm: &KvmFit, kvm_gaps: &[String]) -> ProfileDecision {
    match kvm {
        KvmFit::OtherArch(why) => use_tcg(format!("accel=auto: TCG, {why}"), Vec::new()),
        KvmFit::Unverified(detail) => {
            let why = format!(
                "KVM could not be verified on this host ({detail}) → TCG; set accel=kvm to use it anyway"
            );
            use_tcg(format!("accel=auto: {why}"), vec![why])
        }
        _ => {
            let why = format!("{} → TCG", kvm_gaps.join("; "));
            use_tcg(format!("accel=auto: {why}"), vec![why])
        }
    }
}

/// How fit KVM is for this guest, before requirements.
enum KvmFit {
    Runs,
    /// The API works but no guest check ran (non-x86_64 hosts).
    Unverified(String),
    OtherArch(String),
    Unusable(String),
}

impl KvmFit {
    fn of(probe: &HostProbe, guest: Arch) -> KvmFit {
        let k = &probe.kvm;
        match probe.host.arch {
            Some(host) if guest.kvm_runs_on(host) => {}
            host => {
                let host = host.map_or(probe.host.machine.clone(), |a| a.name().to_string());
                return KvmFit::OtherArch(format!(
                    "KVM runs only guests of the host's architecture (guest {guest}, host {host})"
                ));
            }
        }
        if k.access != KvmAccess::ReadWrite {
            let why = k.present.reason().unwrap_or("/dev/kvm cannot be opened");
            return KvmFit::Unusable(format!("KVM is not available ({why})"));
        }
        if let Some(why) = k.api.reason() {
            return KvmFit::Unusable(format!("KVM is present but its API fails ({why})"));
        }
        match &k.runs_guests {
            Status::Yes => KvmFit::Runs,
            Status::No { reason } => {
                KvmFit::Unusable(format!("KVM is present but not usable ({reason})"))
            }
            Status::NotChecked { reason } => KvmFit::Unverified(reason.clone()),
        }
    }

    fn verified(&self) -> bool {
        matches!(self, KvmFit::Runs)
    }
}

/// What a case needs, for [`Needs::gaps`].
struct Needs<'a> {
    requires: &'a [Requirement],
    guest: Arch,
    probe: &'a HostProbe,
    kvm: &'a KvmFit,
    cpu: Option<&'a CpuFeature>,
}

impl Needs<'_> {
    /// Why `accel` cannot give this case what it requires (empty = it can).
    fn gaps(&self, accel: Accel) -> Vec<String> {
        let (guest, probe) = (self.guest, self.probe);
        let mut gaps = Vec::new();
        let mut kvm_out = false;
        if let (Accel::Kvm, KvmFit::OtherArch(why) | KvmFit::Unusable(why)) = (accel, self.kvm) {
            gaps.push(why.clone());
            kvm_out = true;
        }
        let x86 = matches!(guest, Arch::X86_64 | Arch::I386);
        let nested = &probe.kvm.nested;
        let requires = dedup(self.requires);
        let x86_named = requires
            .iter()
            .any(|r| matches!(r, Requirement::Vmx | Requirement::Svm));
        for requirement in requires {
            let gap = match (requirement, accel) {
                (Requirement::Kvm, Accel::Tcg) => Some("the case requires kvm".to_string()),
                (Requirement::Kvm, Accel::Kvm) => None,
                // KVM that cannot run this guest at all is reason enough.
                (Requirement::Hypervisor, Accel::Kvm) if kvm_out => None,
                (Requirement::Hypervisor, accel) => {
                    hypervisor::gap(accel, guest, x86_named, self.cpu)
                }
                (Requirement::Vmx | Requirement::Svm, _) if !x86 => Some(format!(
                    "the case requires {}, an x86 feature, but the guest is {guest}",
                    name(requirement)
                )),
                (Requirement::Vmx, Accel::Tcg) => {
                    Some("the case requires vmx, which TCG never provides".to_string())
                }
                (Requirement::Vmx, Accel::Kvm) => vmx_gap(probe),
                (Requirement::Svm, Accel::Tcg) => None,
                (Requirement::Svm, Accel::Kvm) => nested.svm.reason().map(|why| {
                    format!("the case requires svm, but KVM offers no AMD-V to guests ({why})")
                }),
            };
            gaps.extend(gap);
        }
        gaps
    }
}

fn vmx_gap(probe: &HostProbe) -> Option<String> {
    let n = &probe.kvm.nested;
    let why = n.vmx.reason()?;
    let amd = if n.host_svm && !n.host_vmx {
        "; the host CPU is AMD (SVM only): VT-x needs an Intel host"
    } else {
        ""
    };
    Some(format!(
        "the case requires vmx, but guests cannot use VT-x here ({why}){amd}"
    ))
}

fn dedup(requires: &[Requirement]) -> Vec<Requirement> {
    let mut out: Vec<Requirement> = Vec::new();
    for r in requires {
        if !out.contains(r) {
            out.push(*r);
        }
    }
    out
}

fn name(r: Requirement) -> &'static str {
    match r {
        Requirement::Kvm => "kvm",
        Requirement::Vmx => "vmx",
        Requirement::Svm => "svm",
        Requirement::Hypervisor => "hypervisor",
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(name(*self))
    }
}

impl FromStr for Requirement {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "kvm" => Ok(Requirement::Kvm),
            "vmx" | "vt-x" => Ok(Requirement::Vmx),
            "svm" | "amd-v" => Ok(Requirement::Svm),
            "hypervisor" => Ok(Requirement::Hypervisor),
            other => Err(format!(
                "unknown requirement '{other}' (expected one of: kvm, vmx, svm, hypervisor)"
            )),
        }
    }
}

impl FromStr for AccelRequest {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(AccelRequest::Auto),
            "kvm" => Ok(AccelRequest::Kvm),
            "tcg" => Ok(AccelRequest::Tcg),
            other => Err(format!(
                "unknown accel '{other}' (expected one of: auto, kvm, tcg)"
            )),
        }
    }
}

impl FromStr for Policy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "skip" => Ok(Policy::Skip),
            "fail" => Ok(Policy::Fail),
            other => Err(format!("unknown policy '{other}' (expected skip or fail)")),
        }
    }
}
