//! KVM in three levels (device opens, API works, guests really run) plus the VMX/SVM facts a
//! guest hypervisor needs. `/dev/kvm` existing proves little: on some hosts every ioctl succeeds
//! while real guests are emulated at a crawl or die with "emulation failure", so "runs guests"
//! is decided by running one (see `guest.rs`).

use std::collections::HashSet;
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

use super::kvm_sys::{self as sys, Vm};
use super::model::{KvmAccess, KvmProbe, Nested, Status};

/// What the probe needs to know about the host CPU.
pub struct HostCpu<'a> {
    pub is_x86_64: bool,
    pub arch_name: &'a str,
    pub flags: &'a HashSet<String>,
}

/// Probes `device` and, on x86_64, runs the test guest with `loop_limit` for its timed loop.
pub fn probe(device: &Path, cpu: &HostCpu<'_>, loop_limit: Duration) -> KvmProbe {
    let kvm = match sys::open(device) {
        Ok(fd) => fd,
        Err(err) => return not_present(device, cpu, &err),
    };
    let version = sys::ioctl(&kvm, sys::KVM_GET_API_VERSION, 0);
    let features = Features::read(&kvm, cpu);
    let vm = check_api(&kvm, &version);
    let api = match &vm {
        Ok(_) => Status::Yes,
        Err(reason) => Status::no(reason.clone()),
    };
    let (runs_guests, guest) = match vm {
        Ok(vm) => run_guest(&kvm, vm, &features, cpu, loop_limit),
        Err(reason) => (
            Status::not_checked(format!("the KVM API failed: {reason}")),
            None,
        ),
    };
    let unavailable =
        (!runs_guests.is_yes()).then(|| runs_guests.reason().unwrap_or_default().to_string());
    let nested = nested(
        cpu,
        &features,
        &NestedParams::read(),
        unavailable.as_deref(),
    );
    KvmProbe {
        device: device.to_path_buf(),
        access: KvmAccess::ReadWrite,
        present: Status::Yes,
        api,
        runs_guests,
        api_version: version.ok(),
        guest,
        nested,
    }
}

fn not_present(device: &Path, cpu: &HostCpu<'_>, err: &io::Error) -> KvmProbe {
    let (access, reason) = match err.kind() {
        io::ErrorKind::NotFound => (
            KvmAccess::Missing,
            format!("{} does not exist", device.display()),
        ),
        io::ErrorKind::PermissionDenied => (
            KvmAccess::PermissionDenied,
            format!(
                "{}: permission denied (opening read-write)",
                device.display()
            ),
        ),
        _ => (
            KvmAccess::Failed,
            format!("cannot open {}: {err}", device.display()),
        ),
    };
    let nested = nested(
        cpu,
        &Features::default(),
        &NestedParams::read(),
        Some(&reason),
    );
    KvmProbe {
        device: device.to_path_buf(),
        access,
        present: Status::no(reason.clone()),
        api: Status::not_checked(reason.clone()),
        runs_guests: Status::not_checked(reason),
        api_version: None,
        guest: None,
        nested,
    }
}

/// Guest memory size: one 2 MiB page, identity-mapped by the test guest.
pub const GUEST_MEMORY: usize = 0x20_0000;

fn check_api(kvm: &OwnedFd, version: &io::Result<i32>) -> Result<Vm, String> {
    match version {
        Ok(sys::KVM_API_VERSION) => {}
        Ok(v) => {
            return Err(format!(
                "KVM_GET_API_VERSION returned {v}, expected {}",
                sys::KVM_API_VERSION
            ));
        }
        Err(e) => return Err(format!("KVM_GET_API_VERSION failed: {e}")),
    }
    if sys::ioctl(
        kvm,
        sys::KVM_CHECK_EXTENSION,
        sys::KVM_CAP_USER_MEMORY as usize,
    )
    .unwrap_or(0)
        <= 0
    {
        return Err("KVM_CAP_USER_MEMORY is not supported".to_string());
    }
    let fd = sys::ioctl_fd(kvm, sys::KVM_CREATE_VM, 0)
        .map_err(|e| format!("KVM_CREATE_VM failed: {e}"))?;
    let memory = sys::Mapping::anonymous(GUEST_MEMORY)
        .map_err(|e| format!("cannot map guest memory: {e}"))?;
    let region = sys::UserMemoryRegion {
        slot: 0,
        flags: 0,
        guest_phys_addr: 0,
        memory_size: GUEST_MEMORY as u64,
        userspace_addr: memory.as_ptr() as u64,
    };
    sys::ioctl(
        &fd,
        sys::KVM_SET_USER_MEMORY_REGION,
        &region as *const _ as usize,
    )
    .map_err(|e| format!("KVM_SET_USER_MEMORY_REGION failed: {e}"))?;
    let vcpu0 = sys::ioctl_fd(&fd, sys::KVM_CREATE_VCPU, 0)
        .map_err(|e| format!("KVM_CREATE_VCPU failed: {e}"))?;
    Ok(Vm { fd, memory, vcpu0 })
}

#[cfg(target_arch = "x86_64")]
fn run_guest(
    kvm: &OwnedFd,
    vm: Vm,
    features: &Features,
    _cpu: &HostCpu<'_>,
    loop_limit: Duration,
) -> (Status, Option<super::model::GuestRun>) {
    let (status, run) = super::guest::run(kvm, vm, features.cpuid.as_deref(), loop_limit);
    (status, Some(run))
}

#[cfg(not(target_arch = "x86_64"))]
fn run_guest(
    _kvm: &OwnedFd,
    _vm: Vm,
    _features: &Features,
    cpu: &HostCpu<'_>,
    _loop_limit: Duration,
) -> (Status, Option<super::model::GuestRun>) {
    let reason = format!(
        "the guest check runs on x86_64 hosts only (this host is {}); the KVM API works",
        cpu.arch_name
    );
    (Status::not_checked(reason), None)
}

/// What KVM offers guests (x86 only): its supported CPUID and feature MSRs.
#[derive(Default)]
pub struct Features {
    #[cfg(target_arch = "x86_64")]
    pub cpuid: Option<Box<sys::Cpuid>>,
    pub cpuid_vmx: Option<bool>,
    pub cpuid_svm: Option<bool>,
    pub vmx_basic_msr: Option<bool>,
}

#[cfg(target_arch = "x86_64")]
const MSR_IA32_VMX_BASIC: u32 = 0x480;

impl Features {
    #[cfg(target_arch = "x86_64")]
    fn read(kvm: &OwnedFd, _cpu: &HostCpu<'_>) -> Features {
        let cpuid = supported_cpuid(kvm);
        let leaf_ecx = |function: u32| {
            cpuid.as_ref().map(|c| {
                c.entries[..c.nent as usize]
                    .iter()
                    .find(|e| e.function == function)
                    .map_or(0, |e| e.ecx)
            })
        };
        Features {
            cpuid_vmx: leaf_ecx(1).map(|ecx| ecx & (1 << 5) != 0),
            cpuid_svm: leaf_ecx(0x8000_0001).map(|ecx| ecx & (1 << 2) != 0),
            vmx_basic_msr: feature_msrs(kvm).map(|msrs| msrs.contains(&MSR_IA32_VMX_BASIC)),
            cpuid,
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn read(_kvm: &OwnedFd, _cpu: &HostCpu<'_>) -> Features {
        Features::default()
    }
}

#[cfg(target_arch = "x86_64")]
fn supported_cpuid(kvm: &OwnedFd) -> Option<Box<sys::Cpuid>> {
    let mut cpuid = Box::new(sys::Cpuid {
        nent: 256,
        padding: 0,
        entries: [sys::CpuidEntry::default(); 256],
    });
    let ptr = &mut *cpuid as *mut sys::Cpuid as usize;
    sys::ioctl(kvm, sys::KVM_GET_SUPPORTED_CPUID, ptr).ok()?;
    Some(cpuid)
}

#[cfg(target_arch = "x86_64")]
fn feature_msrs(kvm: &OwnedFd) -> Option<Vec<u32>> {
    let mut list = Box::new(sys::MsrList {
        nmsrs: 1024,
        indices: [0; 1024],
    });
    let ptr = &mut *list as *mut sys::MsrList as usize;
    sys::ioctl(kvm, sys::KVM_GET_MSR_FEATURE_INDEX_LIST, ptr).ok()?;
    Some(list.indices[..list.nmsrs as usize].to_vec())
}

/// The `nested` parameters of the vendor KVM modules (`None` = module not loaded).
pub struct NestedParams {
    pub intel: Option<bool>,
    pub amd: Option<bool>,
}

impl NestedParams {
    fn read() -> NestedParams {
        let param = |module: &str| {
            let text =
                std::fs::read_to_string(format!("/sys/module/{module}/parameters/nested")).ok()?;
            Some(matches!(text.trim(), "Y" | "y" | "1"))
        };
        NestedParams {
            intel: param("kvm_intel"),
            amd: param("kvm_amd"),
        }
    }
}

/// Decides whether KVM guests can use VT-x / AMD-V from every fact gathered; `unusable` is why
/// KVM itself cannot run guests, if so.
pub fn nested(
    cpu: &HostCpu<'_>,
    features: &Features,
    params: &NestedParams,
    unusable: Option<&str>,
) -> Nested {
    let host_vmx = cpu.flags.contains("vmx");
    let host_svm = cpu.flags.contains("svm");
    let (vmx, svm) = if !cpu.is_x86_64 {
        let why = format!(
            "VMX and SVM are x86 features; the host is {}",
            cpu.arch_name
        );
        (Status::not_checked(why.clone()), Status::not_checked(why))
    } else {
        (
            vmx_status(host_vmx, features, params, unusable),
            svm_status(host_svm, features, params, unusable),
        )
    };
    Nested {
        host_vmx,
        host_svm,
        kvm_cpuid_vmx: features.cpuid_vmx,
        kvm_cpuid_svm: features.cpuid_svm,
        vmx_basic_msr: features.vmx_basic_msr,
        kvm_intel_nested: params.intel,
        kvm_amd_nested: params.amd,
        vmx,
        svm,
    }
}

fn vmx_status(
    host_vmx: bool,
    f: &Features,
    params: &NestedParams,
    unusable: Option<&str>,
) -> Status {
    let mut missing = Vec::new();
    if !host_vmx {
        missing.push("the host CPU has no vmx flag".to_string());
    }
    match f.cpuid_vmx {
        Some(false) => {
            missing.push("KVM offers no VMX to guests (CPUID.1:ECX bit 5 = 0)".to_string())
        }
        None => missing.push("KVM's supported CPUID is not readable".to_string()),
        Some(true) => {}
    }
    if f.vmx_basic_msr == Some(false) {
        missing.push("IA32_VMX_BASIC is not among KVM's feature MSRs".to_string());
    }
    if params.intel == Some(false) {
        missing.push("kvm_intel nested=N".to_string());
    }
    if unusable.is_some() {
        missing.push("KVM itself cannot run guests here".to_string());
    }
    verdict(missing)
}

fn svm_status(
    host_svm: bool,
    f: &Features,
    params: &NestedParams,
    unusable: Option<&str>,
) -> Status {
    let mut missing = Vec::new();
    if !host_svm {
        missing.push("the host CPU has no svm flag".to_string());
    }
    match f.cpuid_svm {
        Some(false) => {
            missing.push("KVM offers no SVM to guests (CPUID.80000001h:ECX bit 2 = 0)".to_string())
        }
        None => missing.push("KVM's supported CPUID is not readable".to_string()),
        Some(true) => {}
    }
    if params.amd == Some(false) {
        missing.push("kvm_amd nested=0".to_string());
    }
    if unusable.is_some() {
        missing.push("KVM itself cannot run guests here".to_string());
    }
    verdict(missing)
}

fn verdict(missing: Vec<String>) -> Status {
    if missing.is_empty() {
        Status::Yes
    } else {
        Status::no(missing.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(list: &[&str]) -> HashSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn features(vmx: Option<bool>, svm: Option<bool>, msr: Option<bool>) -> Features {
        Features {
            cpuid_vmx: vmx,
            cpuid_svm: svm,
            vmx_basic_msr: msr,
            ..Features::default()
        }
    }

    const NO_PARAMS: NestedParams = NestedParams {
        intel: None,
        amd: None,
    };

    #[test]
    fn vmx_needs_every_fact() {
        let f = flags(&["vmx"]);
        let cpu = HostCpu {
            is_x86_64: true,
            arch_name: "x86_64",
            flags: &f,
        };
        let params = NestedParams {
            intel: Some(true),
            amd: None,
        };
        let ok = nested(
            &cpu,
            &features(Some(true), Some(false), Some(true)),
            &params,
            None,
        );
        assert!(ok.vmx.is_yes());
        assert!(!ok.svm.is_yes());

        let no_msr = nested(
            &cpu,
            &features(Some(true), None, Some(false)),
            &params,
            None,
        );
        assert!(no_msr.vmx.reason().unwrap().contains("IA32_VMX_BASIC"));

        let off = NestedParams {
            intel: Some(false),
            amd: None,
        };
        let nested_off = nested(&cpu, &features(Some(true), None, Some(true)), &off, None);
        assert!(nested_off.vmx.reason().unwrap().contains("nested=N"));

        let unusable = nested(
            &cpu,
            &features(Some(true), None, Some(true)),
            &params,
            Some("too slow"),
        );
        assert_eq!(
            unusable.vmx.reason(),
            Some("KVM itself cannot run guests here")
        );
    }

    #[test]
    fn this_kind_of_host_has_neither() {
        let f = flags(&["hypervisor", "sse2"]);
        let cpu = HostCpu {
            is_x86_64: true,
            arch_name: "x86_64",
            flags: &f,
        };
        let n = nested(
            &cpu,
            &features(Some(false), Some(false), Some(false)),
            &NO_PARAMS,
            None,
        );
        let reason = n.vmx.reason().unwrap();
        assert!(
            reason.contains("no vmx flag") && reason.contains("bit 5 = 0"),
            "{reason}"
        );
        assert!(n.svm.reason().unwrap().contains("bit 2 = 0"));
    }

    #[test]
    fn svm_with_nested_amd() {
        let f = flags(&["svm"]);
        let cpu = HostCpu {
            is_x86_64: true,
            arch_name: "x86_64",
            flags: &f,
        };
        let on = NestedParams {
            intel: None,
            amd: Some(true),
        };
        assert!(
            nested(
                &cpu,
                &features(Some(false), Some(true), Some(false)),
                &on,
                None
            )
            .svm
            .is_yes()
        );
        let off = NestedParams {
            intel: None,
            amd: Some(false),
        };
        let n = nested(
            &cpu,
            &features(Some(false), Some(true), Some(false)),
            &off,
            None,
        );
        assert!(n.svm.reason().unwrap().contains("kvm_amd nested=0"));
    }

    #[test]
    fn non_x86_hosts_are_not_checked() {
        let f = flags(&[]);
        let cpu = HostCpu {
            is_x86_64: false,
            arch_name: "aarch64",
            flags: &f,
        };
        let n = nested(&cpu, &Features::default(), &NO_PARAMS, None);
        assert!(matches!(n.vmx, Status::NotChecked { .. }));
        assert!(n.vmx.reason().unwrap().contains("aarch64"));
    }

    #[test]
    fn missing_device_is_reported_as_missing() {
        let f = flags(&[]);
        let cpu = HostCpu {
            is_x86_64: true,
            arch_name: "x86_64",
            flags: &f,
        };
        let dir = tempfile::tempdir().unwrap();
        let probe = probe(&dir.path().join("kvm"), &cpu, Duration::from_millis(500));
        assert_eq!(probe.access, KvmAccess::Missing);
        assert!(probe.present.reason().unwrap().contains("does not exist"));
        assert!(matches!(probe.runs_guests, Status::NotChecked { .. }));
        assert!(!probe.nested.vmx.is_yes());
    }

    #[test]
    fn a_device_that_is_not_kvm_fails_the_api_level() {
        let f = flags(&[]);
        let cpu = HostCpu {
            is_x86_64: true,
            arch_name: "x86_64",
            flags: &f,
        };
        let probe = probe(Path::new("/dev/null"), &cpu, Duration::from_millis(500));
        assert_eq!(probe.access, KvmAccess::ReadWrite);
        assert!(probe.present.is_yes());
        assert!(
            probe.api.reason().unwrap().contains("KVM_GET_API_VERSION"),
            "{:?}",
            probe.api
        );
        assert!(!probe.usable());
    }
}
