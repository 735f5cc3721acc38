//! The slice of the Linux KVM ABI the probe needs (`<linux/kvm.h>`), with owned fds and mappings
//! so that every exit path closes and unmaps what it opened.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

const KVMIO: u64 = 0xAE;

const fn ioc(dir: u64, nr: u64, size: usize) -> u64 {
    (dir << 30) | ((size as u64) << 16) | (KVMIO << 8) | nr
}
const fn io(nr: u64) -> u64 {
    ioc(0, nr, 0)
}
const fn iow<T>(nr: u64) -> u64 {
    ioc(1, nr, size_of::<T>())
}
#[cfg(target_arch = "x86_64")]
const fn ior<T>(nr: u64) -> u64 {
    ioc(2, nr, size_of::<T>())
}
#[cfg(target_arch = "x86_64")]
const fn iowr<T>(nr: u64) -> u64 {
    ioc(3, nr, size_of::<T>())
}

pub const KVM_GET_API_VERSION: u64 = io(0x00);
pub const KVM_CREATE_VM: u64 = io(0x01);
pub const KVM_CHECK_EXTENSION: u64 = io(0x03);
pub const KVM_GET_VCPU_MMAP_SIZE: u64 = io(0x04);
pub const KVM_CREATE_VCPU: u64 = io(0x41);
pub const KVM_SET_USER_MEMORY_REGION: u64 = iow::<UserMemoryRegion>(0x46);
#[cfg(target_arch = "x86_64")]
pub const KVM_GET_SUPPORTED_CPUID: u64 = iowr::<[u32; 2]>(0x05);
#[cfg(target_arch = "x86_64")]
pub const KVM_GET_MSR_FEATURE_INDEX_LIST: u64 = iowr::<u32>(0x0a);
#[cfg(target_arch = "x86_64")]
pub const KVM_RUN: u64 = io(0x80);
#[cfg(target_arch = "x86_64")]
pub const KVM_GET_REGS: u64 = ior::<Regs>(0x81);
#[cfg(target_arch = "x86_64")]
pub const KVM_SET_REGS: u64 = iow::<Regs>(0x82);
#[cfg(target_arch = "x86_64")]
pub const KVM_GET_SREGS: u64 = ior::<Sregs>(0x83);
#[cfg(target_arch = "x86_64")]
pub const KVM_SET_SREGS: u64 = iow::<Sregs>(0x84);
#[cfg(target_arch = "x86_64")]
pub const KVM_SET_CPUID2: u64 = iow::<[u32; 2]>(0x90);

pub const KVM_API_VERSION: i32 = 12;
pub const KVM_CAP_USER_MEMORY: u64 = 3;

#[cfg(target_arch = "x86_64")]
pub mod exit {
    pub const IO: u32 = 2;
    pub const SHUTDOWN: u32 = 8;
    pub const HLT: u32 = 5;
    pub const FAIL_ENTRY: u32 = 9;
    pub const INTERNAL_ERROR: u32 = 17;
}

#[repr(C)]
pub struct UserMemoryRegion {
    pub slot: u32,
    pub flags: u32,
    pub guest_phys_addr: u64,
    pub memory_size: u64,
    pub userspace_addr: u64,
}

/// `struct kvm_regs`.
#[cfg(target_arch = "x86_64")]
#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct Regs {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rsp: u64,
    pub rbp: u64,
    pub r8_to_r15: [u64; 8],
    pub rip: u64,
    pub rflags: u64,
}

/// `struct kvm_segment`.
#[cfg(target_arch = "x86_64")]
#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct Segment {
    pub base: u64,
    pub limit: u32,
    pub selector: u16,
    pub type_: u8,
    pub present: u8,
    pub dpl: u8,
    pub db: u8,
    pub s: u8,
    pub l: u8,
    pub g: u8,
    pub avl: u8,
    pub unusable: u8,
    pub padding: u8,
}

/// `struct kvm_dtable`.
#[cfg(target_arch = "x86_64")]
#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct Dtable {
    pub base: u64,
    pub limit: u16,
    pub padding: [u16; 3],
}

/// `struct kvm_sregs`.
#[cfg(target_arch = "x86_64")]
#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct Sregs {
    pub cs: Segment,
    pub ds: Segment,
    pub es: Segment,
    pub fs: Segment,
    pub gs: Segment,
    pub ss: Segment,
    pub tr: Segment,
    pub ldt: Segment,
    pub gdt: Dtable,
    pub idt: Dtable,
    pub cr0: u64,
    pub cr2: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub cr8: u64,
    pub efer: u64,
    pub apic_base: u64,
    pub interrupt_bitmap: [u64; 4],
}

/// `struct kvm_cpuid_entry2`.
#[cfg(target_arch = "x86_64")]
#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct CpuidEntry {
    pub function: u32,
    pub index: u32,
    pub flags: u32,
    pub eax: u32,
    pub ebx: u32,
    pub ecx: u32,
    pub edx: u32,
    pub padding: [u32; 3],
}

/// `struct kvm_cpuid2` with room for the entries.
#[cfg(target_arch = "x86_64")]
#[repr(C)]
pub struct Cpuid {
    pub nent: u32,
    pub padding: u32,
    pub entries: [CpuidEntry; 256],
}

/// `struct kvm_msr_list` with room for the indices.
#[cfg(target_arch = "x86_64")]
#[repr(C)]
pub struct MsrList {
    pub nmsrs: u32,
    pub indices: [u32; 1024],
}

/// The head of `struct kvm_run` (the exit data union starts at `data`).
#[cfg(target_arch = "x86_64")]
#[repr(C)]
pub struct RunHead {
    pub request_interrupt_window: u8,
    pub immediate_exit: u8,
    pub padding1: [u8; 6],
    pub exit_reason: u32,
    pub ready_for_interrupt_injection: u8,
    pub if_flag: u8,
    pub flags: u16,
    pub cr8: u64,
    pub apic_base: u64,
    pub data: [u64; 32],
}

/// Opens the KVM device read-write (close-on-exec).
pub fn open(device: &Path) -> io::Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(device)?;
    Ok(OwnedFd::from(file))
}

/// `ioctl(fd, request, arg)`, with the errno as an error.
pub fn ioctl(fd: &impl AsRawFd, request: u64, arg: usize) -> io::Result<i32> {
    // SAFETY: every request used with this wrapper takes either an integer or a pointer to a
    // live, correctly sized `#[repr(C)]` value owned by the caller for the call's duration.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, arg) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// An ioctl that returns a new file descriptor.
pub fn ioctl_fd(fd: &impl AsRawFd, request: u64, arg: usize) -> io::Result<OwnedFd> {
    let raw = ioctl(fd, request, arg)?;
    // SAFETY: the kernel just returned this descriptor to us and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// A VM with 2 MiB of guest memory at guest-physical 0 and vCPU 0: proof that the API works.
/// Only x86_64 hosts go on to run a guest in it.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub struct Vm {
    pub fd: OwnedFd,
    pub memory: Mapping,
    pub vcpu0: OwnedFd,
}

/// A shared memory mapping, unmapped on drop.
pub struct Mapping {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain memory; `Mapping` hands out raw pointers only, and their users
// synchronise through the KVM ioctls (the kernel writes `kvm_run` only inside KVM_RUN).
unsafe impl Send for Mapping {}

impl Mapping {
    /// Anonymous zeroed memory for a guest.
    pub fn anonymous(len: usize) -> io::Result<Mapping> {
        let flags = libc::MAP_SHARED | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
        Self::map(len, flags, -1)
    }

    /// The `kvm_run` area of a vCPU.
    #[cfg(target_arch = "x86_64")]
    pub fn of_fd(fd: &impl AsRawFd, len: usize) -> io::Result<Mapping> {
        Self::map(len, libc::MAP_SHARED, fd.as_raw_fd())
    }

    fn map(len: usize, flags: i32, fd: i32) -> io::Result<Mapping> {
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        // SAFETY: a fresh mapping chosen by the kernel; nothing else refers to that range.
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, fd, 0) };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping {
            ptr: ptr.cast(),
            len,
        })
    }

    /// The start of the mapping.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// Its length in bytes.
    #[cfg(target_arch = "x86_64")]
    pub fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned, unmapped once.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request numbers `<linux/kvm.h>` defines (checked with a C program on x86_64).
    #[test]
    fn ioctl_numbers_match_the_kernel_header() {
        assert_eq!(KVM_GET_API_VERSION, 0xae00);
        assert_eq!(KVM_CREATE_VCPU, 0xae41);
        assert_eq!(KVM_SET_USER_MEMORY_REGION, 0x4020_ae46);
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(KVM_GET_SUPPORTED_CPUID, 0xc008_ae05);
            assert_eq!(KVM_GET_MSR_FEATURE_INDEX_LIST, 0xc004_ae0a);
            assert_eq!(KVM_GET_REGS, 0x8090_ae81);
            assert_eq!(KVM_SET_SREGS, 0x4138_ae84);
            assert_eq!(KVM_SET_CPUID2, 0x4008_ae90);
            assert_eq!(size_of::<Sregs>(), 0x138);
            assert_eq!(size_of::<CpuidEntry>(), 0x28);
            assert_eq!(std::mem::offset_of!(Sregs, cr0), 0xe0);
            assert_eq!(std::mem::offset_of!(RunHead, data), 0x20);
        }
    }
}
