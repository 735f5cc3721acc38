//! What a host probe found, as plain data with public fields: the profile logic and the tests
//! can build one by hand (see [`HostProbe::with_kvm`]) instead of probing a real machine.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::arch::Arch;

/// One answer: does `cpu` (as passed to `-cpu`) of `program` offer `feature`? Asked by
/// [`super::qemu_cpu`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CpuFeature {
    pub arch: Arch,
    /// The QEMU binary asked (name or path, as the case runs it).
    pub program: String,
    /// The `-cpu` value asked about: a model with optional `,prop=value` overrides.
    pub cpu: String,
    /// The CPU property (`h`, `lvz`).
    pub feature: String,
    /// Yes, or no with what QEMU said; not checked when QEMU could not be asked.
    pub status: Status,
}

/// The outcome of one check, with the reason whenever the answer is not a plain yes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    Yes,
    No {
        reason: String,
    },
    /// The check does not apply or could not run here; the reason says which.
    NotChecked {
        reason: String,
    },
}

impl Status {
    /// A negative answer and why.
    pub fn no(reason: impl Into<String>) -> Self {
        Status::No {
            reason: reason.into(),
        }
    }

    /// A check that was not made and why.
    pub fn not_checked(reason: impl Into<String>) -> Self {
        Status::NotChecked {
            reason: reason.into(),
        }
    }

    /// True only for a positive answer.
    pub fn is_yes(&self) -> bool {
        matches!(self, Status::Yes)
    }

    /// The reason of a negative or missing answer.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Status::Yes => None,
            Status::No { reason } | Status::NotChecked { reason } => Some(reason),
        }
    }
}

/// The machine itself: what QEMU would run on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostInfo {
    /// `None` when the host is an architecture QEMU has no `qemu-system-*` name for.
    pub arch: Option<Arch>,
    /// `uname -m`, kept even when `arch` is known.
    pub machine: String,
    /// `PRETTY_NAME` from `/etc/os-release`, else the Rust OS name.
    pub os: String,
    /// Kernel release (`uname -r`).
    pub kernel: String,
    pub cpu_vendor: Option<String>,
    pub cpu_model: Option<String>,
    /// CPUs this process may use (affinity and cgroup limits applied).
    pub cpus: usize,
    pub memory_total_bytes: Option<u64>,
    pub memory_available_bytes: Option<u64>,
}

/// Free space where images are cached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiskSpace {
    /// The cache directory asked about (it may not exist yet).
    pub path: PathBuf,
    /// Free bytes for an unprivileged user on the file system that holds `path`.
    pub free_bytes: Option<u64>,
    pub error: Option<String>,
}

/// One `qemu-system-<arch>` looked for on `PATH`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QemuBinary {
    pub arch: Arch,
    pub binary: String,
    /// The Debian/Ubuntu package that ships it.
    pub package: String,
    /// `None` when not on `PATH`.
    pub path: Option<PathBuf>,
    /// The version number, e.g. `10.0.2`.
    pub version: Option<String>,
    /// The first line `--version` printed, e.g. `QEMU emulator version 10.0.2 (Debian …)`.
    pub version_line: Option<String>,
    /// Why the version is unknown although the binary exists.
    pub error: Option<String>,
}

/// UEFI firmware images for one architecture (only needed by `uefi = true` cases).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Firmware {
    pub arch: Arch,
    /// Existing files, best first.
    pub found: Vec<PathBuf>,
    /// The file a firmware-only `uefi = true` guest gets with `-bios` (the same rule as a run's);
    /// `None` when no found file boots that way (only split CODE images, say).
    pub bios: Option<PathBuf>,
    /// The code and variable store a `uefi = true` kernel boots through (the same rule as a
    /// run's, [`crate::qemu::firmware::find_pflash`]); `None` when no pair is complete.
    pub pflash: Option<crate::qemu::firmware::Pflash>,
    /// The package that provides them, where one is known.
    pub package: Option<String>,
}

/// How `/dev/kvm` answered `open(O_RDWR)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KvmAccess {
    ReadWrite,
    Missing,
    PermissionDenied,
    /// Another error; the reason is in [`KvmProbe::present`].
    Failed,
}

/// What the guest run through the KVM ioctls measured (x86_64 hosts only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuestRun {
    /// `lock cmpxchg16b` then `hlt` in a 64-bit guest: Linux's SLUB needs it, emulators lack it.
    pub cmpxchg16b: Status,
    /// Seconds the 1M-iteration loop took, or would take by extrapolation when it was stopped.
    pub loop_seconds: Option<f64>,
    /// Whether the loop finished before the limit.
    pub loop_completed: bool,
    /// Wall time of the whole guest check.
    pub elapsed_seconds: f64,
}

/// VMX/SVM facts that decide whether a guest hypervisor can run under KVM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nested {
    /// `vmx` in the host's `/proc/cpuinfo` flags.
    pub host_vmx: bool,
    /// `svm` in the host's `/proc/cpuinfo` flags.
    pub host_svm: bool,
    /// `KVM_GET_SUPPORTED_CPUID` leaf 1 ECX bit 5; `None` when not readable.
    pub kvm_cpuid_vmx: Option<bool>,
    /// `KVM_GET_SUPPORTED_CPUID` leaf 0x8000_0001 ECX bit 2.
    pub kvm_cpuid_svm: Option<bool>,
    /// `IA32_VMX_BASIC` (0x480) listed by `KVM_GET_MSR_FEATURE_INDEX_LIST`.
    pub vmx_basic_msr: Option<bool>,
    /// `/sys/module/kvm_intel/parameters/nested`; `None` when the module is not loaded.
    pub kvm_intel_nested: Option<bool>,
    /// `/sys/module/kvm_amd/parameters/nested`.
    pub kvm_amd_nested: Option<bool>,
    /// Can a KVM guest use VT-x (run a hypervisor such as AxVisor x86_64)?
    pub vmx: Status,
    /// Can a KVM guest use AMD-V?
    pub svm: Status,
}

/// KVM in three levels: the device opens, the API works, and it really runs guests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KvmProbe {
    pub device: PathBuf,
    pub access: KvmAccess,
    /// `/dev/kvm` opens read-write.
    pub present: Status,
    /// API version 12, `KVM_CAP_USER_MEMORY`, a VM with memory and a vCPU can be created.
    pub api: Status,
    /// A tiny 64-bit guest runs at native speed and executes `lock cmpxchg16b`.
    pub runs_guests: Status,
    pub api_version: Option<i32>,
    pub guest: Option<GuestRun>,
    pub nested: Nested,
}

impl KvmProbe {
    /// True when KVM ran the test guest correctly and fast: the only proof that counts.
    pub fn usable(&self) -> bool {
        self.runs_guests.is_yes()
    }
}

/// How much a [`Finding`] matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Limits some cases (e.g. missing firmware for UEFI cases).
    Info,
    /// Changes what runs (KVM unusable → TCG; requirement cases skipped).
    Warning,
    /// Nothing can run (no QEMU at all).
    Error,
}

/// A known setup problem, said so that the user can fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub message: String,
    pub fix: Option<String>,
}

/// Everything the probe learnt about the runner, probed once per run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostProbe {
    pub host: HostInfo,
    pub disk: Option<DiskSpace>,
    pub qemu: Vec<QemuBinary>,
    pub firmware: Vec<Firmware>,
    pub kvm: KvmProbe,
    pub findings: Vec<Finding>,
    /// Wall time of the probe.
    pub duration_seconds: f64,
    /// The KVM answer was read from this cache file (probed earlier in this host boot).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kvm_cached_from: Option<PathBuf>,
    /// What QEMU CPU models offer guests (riscv64's H, loongarch64's LVZ), asked only for the
    /// cases whose requirements need it ([`crate::profile::hypervisor`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpu_features: Vec<CpuFeature>,
}

impl HostProbe {
    /// A probe result for a host of `arch` with the given KVM facts and nothing else found:
    /// for tests and for reasoning about a runner other than this one.
    pub fn with_kvm(arch: Arch, kvm: KvmProbe) -> HostProbe {
        HostProbe {
            host: HostInfo {
                arch: Some(arch),
                machine: arch.name().to_string(),
                os: "synthetic".to_string(),
                kernel: String::new(),
                cpu_vendor: None,
                cpu_model: None,
                cpus: 1,
                memory_total_bytes: None,
                memory_available_bytes: None,
            },
            disk: None,
            qemu: Vec::new(),
            firmware: Vec::new(),
            kvm,
            findings: Vec::new(),
            duration_seconds: 0.0,
            kvm_cached_from: None,
            cpu_features: Vec::new(),
        }
    }

    /// An x86_64 host whose KVM runs guests, without VMX/SVM for guests.
    pub fn fake_kvm_ok() -> HostProbe {
        HostProbe::with_kvm(Arch::X86_64, KvmProbe::working())
    }

    /// The answer about `feature` of `cpu` on `program`, when it was asked.
    pub fn cpu_feature(&self, program: &str, cpu: &str, feature: &str) -> Option<&CpuFeature> {
        self.cpu_features
            .iter()
            .find(|f| f.program == program && f.cpu == cpu && f.feature == feature)
    }

    /// The QEMU binary for `arch` when it was found.
    pub fn qemu_for(&self, arch: Arch) -> Option<&QemuBinary> {
        self.qemu
            .iter()
            .find(|q| q.arch == arch && q.path.is_some())
    }
}

impl KvmProbe {
    /// KVM that opens, works and runs guests; no nested virtualisation.
    pub fn working() -> KvmProbe {
        KvmProbe {
            device: PathBuf::from("/dev/kvm"),
            access: KvmAccess::ReadWrite,
            present: Status::Yes,
            api: Status::Yes,
            runs_guests: Status::Yes,
            api_version: Some(12),
            guest: None,
            nested: Nested::none("not offered (synthetic probe)"),
        }
    }

    /// KVM whose device and API work but which cannot run guests, for `reason`.
    pub fn unusable(reason: &str) -> KvmProbe {
        KvmProbe {
            runs_guests: Status::no(reason),
            ..KvmProbe::working()
        }
    }

    /// No `/dev/kvm` at all.
    pub fn absent() -> KvmProbe {
        let missing = "/dev/kvm does not exist";
        KvmProbe {
            access: KvmAccess::Missing,
            present: Status::no(missing),
            api: Status::not_checked(missing),
            runs_guests: Status::not_checked(missing),
            api_version: None,
            ..KvmProbe::working()
        }
    }

    /// This KVM with VT-x offered to guests (as on an Intel host with `kvm_intel nested=Y`).
    pub fn with_vmx(mut self) -> KvmProbe {
        self.nested.host_vmx = true;
        self.nested.kvm_cpuid_vmx = Some(true);
        self.nested.vmx_basic_msr = Some(true);
        self.nested.kvm_intel_nested = Some(true);
        self.nested.vmx = Status::Yes;
        self
    }

    /// This KVM with AMD-V offered to guests (as on an AMD host with `kvm_amd nested=1`).
    pub fn with_svm(mut self) -> KvmProbe {
        self.nested.host_svm = true;
        self.nested.kvm_cpuid_svm = Some(true);
        self.nested.kvm_amd_nested = Some(true);
        self.nested.svm = Status::Yes;
        self
    }
}

impl Nested {
    /// Neither VMX nor SVM, for `reason`.
    pub fn none(reason: &str) -> Nested {
        Nested {
            host_vmx: false,
            host_svm: false,
            kvm_cpuid_vmx: None,
            kvm_cpuid_svm: None,
            vmx_basic_msr: None,
            kvm_intel_nested: None,
            kvm_amd_nested: None,
            vmx: Status::no(reason),
            svm: Status::no(reason),
        }
    }
}
