//! Probing the runner: host architecture, QEMU binaries, KVM that really runs guests, VMX/SVM.
//!
//! The entry is [`probe`]; its result, [`HostProbe`], is plain data that the profile logic
//! reads and that tests may build by hand. Linux only (KVM, `/proc`).

mod emulators;
mod findings;
mod firmware;
#[cfg(target_arch = "x86_64")]
mod guest;
mod kvm;
mod kvm_sys;
mod model;
mod probe;
pub mod probe_cache;
pub mod qemu_cpu;
mod render;
mod system;

pub use emulators::which;
pub use findings::KVM_UDEV_FIX;
pub use model::{
    CpuFeature, DiskSpace, Finding, Firmware, GuestRun, HostInfo, HostProbe, KvmAccess, KvmProbe,
    Nested, QemuBinary, Severity, Status,
};
pub use probe::{ProbeOptions, probe};
pub use system::available_memory;
