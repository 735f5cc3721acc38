//! The "does KVM really run guests?" check: two tiny 64-bit guests entered directly in long mode
//! (identity-mapped 2 MiB page). Guest A runs `lock cmpxchg16b` then `hlt` (Linux needs the
//! instruction early; KVM's instruction emulator lacks it, so emulating hosts die there). Guest B
//! times a 1M-iteration `dec rcx; jnz` loop between two `out` exits: natively ~1 ms, emulated
//! over a second. Each vCPU runs in its own thread under a deadline; an overrunning vCPU is
//! stopped with KVM's `immediate_exit` plus a signal, so the whole check stays well under 1 s.

use std::os::fd::OwnedFd;
use std::os::unix::thread::JoinHandleExt;
use std::sync::OnceLock;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::kvm_sys::{self as sys, Mapping, Vm, exit};
use super::model::{GuestRun, Status};

/// Where things live in guest-physical memory.
const CX16_TARGET: usize = 0x800;
const CODE_CX16: usize = 0x1000;
const CODE_LOOP: usize = 0x1100;
const PML4: usize = 0x2000;
const STACK_TOP: u64 = 0x1f_0000;
const SERIAL_PORT: u16 = 0x3f8;
const LOOP_ITERATIONS: u64 = 1_000_000;

/// `lock cmpxchg16b [0x800]` with RDX:RAX = 0 (matches the zeroed memory), storing
/// RCX:RBX = 0x22:0x11; then `out 'C'` and `hlt`.
const GUEST_CX16: &[u8] = &[
    0x31, 0xc0, // xor eax, eax
    0x31, 0xd2, // xor edx, edx
    0xbb, 0x11, 0x00, 0x00, 0x00, // mov ebx, 0x11
    0xb9, 0x22, 0x00, 0x00, 0x00, // mov ecx, 0x22
    0xbf, 0x00, 0x08, 0x00, 0x00, // mov edi, 0x800
    0xf0, 0x48, 0x0f, 0xc7, 0x0f, // lock cmpxchg16b [rdi]
    0x66, 0xba, 0xf8, 0x03, // mov dx, 0x3f8
    0xb0, b'C', 0xee, // mov al, 'C'; out dx, al
    0xf4, // hlt
];

/// `out 'S'`, 1M iterations of `dec rcx; jnz`, `out 'L'`, `hlt`.
const GUEST_LOOP: &[u8] = &[
    0x66, 0xba, 0xf8, 0x03, // mov dx, 0x3f8
    0xb0, b'S', 0xee, // mov al, 'S'; out dx, al
    0x48, 0xc7, 0xc1, 0x40, 0x42, 0x0f, 0x00, // mov rcx, 1000000
    0x48, 0xff, 0xc9, // 1: dec rcx
    0x75, 0xfb, // jnz 1b
    0xb0, b'L', 0xee, // mov al, 'L'; out dx, al
    0xf4, // hlt
];

/// Budget for guest A (natively microseconds) and for a vCPU to stop once kicked.
const CX16_LIMIT: Duration = Duration::from_millis(100);
const STOP_GRACE: Duration = Duration::from_millis(100);

/// Runs both guests in `vm` and says whether KVM runs guests, with the measurements.
pub fn run(
    kvm: &OwnedFd,
    vm: Vm,
    cpuid: Option<&sys::Cpuid>,
    loop_limit: Duration,
) -> (Status, GuestRun) {
    let started = Instant::now();
    load_memory(&vm.memory);
    let mut run = GuestRun {
        cmpxchg16b: Status::not_checked("not run"),
        loop_seconds: None,
        loop_completed: false,
        elapsed_seconds: 0.0,
    };
    let mut problems = Vec::new();
    let Vm {
        fd: vm_fd,
        memory,
        vcpu0,
    } = vm;
    let outcome = check_cx16(kvm, vcpu0, cpuid, &memory).and_then(|cx16| {
        run.cmpxchg16b = cx16;
        let vcpu1 = sys::ioctl_fd(&vm_fd, sys::KVM_CREATE_VCPU, 1)
            .map_err(|e| Abort::Setup(format!("KVM_CREATE_VCPU failed: {e}")))?;
        check_loop(kvm, vcpu1, cpuid, loop_limit, &mut run)
    });
    match outcome {
        Ok(loop_status) => {
            problems.extend(run.cmpxchg16b.reason().map(str::to_string));
            problems.extend(loop_status.reason().map(str::to_string));
        }
        Err(Abort::Setup(reason)) => problems.push(reason),
        Err(Abort::Hung(reason)) => {
            // A vCPU thread that never stopped may still touch guest memory: keep it mapped.
            std::mem::forget(memory);
            std::mem::forget(vm_fd);
            problems.push(reason);
        }
    }
    run.elapsed_seconds = started.elapsed().as_secs_f64();
    let status = if problems.is_empty() {
        Status::Yes
    } else {
        Status::no(problems.join("; "))
    };
    (status, run)
}

/// Why a guest check could not give an answer.
enum Abort {
    /// A setup ioctl failed.
    Setup(String),
    /// A vCPU did not stop when told to; its thread still owns it.
    Hung(String),
}

impl From<String> for Abort {
    fn from(reason: String) -> Self {
        Abort::Setup(reason)
    }
}

fn check_cx16(
    kvm: &OwnedFd,
    fd: OwnedFd,
    cpuid: Option<&sys::Cpuid>,
    memory: &Mapping,
) -> Result<Status, Abort> {
    let vcpu = Vcpu::prepare(kvm, fd, cpuid, CODE_CX16)?;
    let trace = vcpu.run_bounded(CX16_LIMIT)?;
    let result = read_u64(memory, CX16_TARGET) == 0x11 && read_u64(memory, CX16_TARGET + 8) == 0x22;
    Ok(match trace.stop {
        Stop::Hlt if trace.outs.iter().any(|o| o.byte == b'C') && result => Status::Yes,
        Stop::Hlt => Status::no("lock cmpxchg16b gave a wrong result"),
        Stop::Interrupted { .. } => Status::no(format!(
            "lock cmpxchg16b did not finish within {} ms",
            CX16_LIMIT.as_millis()
        )),
        ref stop => Status::no(format!("{} at lock cmpxchg16b", stop.describe())),
    })
}

fn check_loop(
    kvm: &OwnedFd,
    fd: OwnedFd,
    cpuid: Option<&sys::Cpuid>,
    limit: Duration,
    run: &mut GuestRun,
) -> Result<Status, Abort> {
    let vcpu = Vcpu::prepare(kvm, fd, cpuid, CODE_LOOP)?;
    let trace = vcpu.run_bounded(limit)?;
    let at = |byte: u8| trace.outs.iter().find(|o| o.byte == byte).map(|o| o.at);
    let Some(start) = at(b'S') else {
        return Ok(Status::no(format!(
            "{} before the timed loop",
            trace.stop.describe()
        )));
    };
    if let Some(end) = at(b'L') {
        let took = end.duration_since(start);
        run.loop_seconds = Some(took.as_secs_f64());
        run.loop_completed = true;
        return Ok(match trace.stop {
            _ if took >= limit => Status::no(slow(took.as_secs_f64(), None)),
            Stop::Hlt => Status::Yes,
            ref stop => Status::no(format!("{} after the timed loop", stop.describe())),
        });
    }
    Ok(match trace.stop {
        Stop::Interrupted { rcx } => {
            let ran = trace.stopped_at.duration_since(start).as_secs_f64();
            let done = rcx
                .map(|left| LOOP_ITERATIONS.saturating_sub(left))
                .unwrap_or(0);
            let estimate = (done > 0).then(|| ran * LOOP_ITERATIONS as f64 / done as f64);
            run.loop_seconds = estimate;
            Status::no(slow(estimate.unwrap_or(ran), Some((ran, done))))
        }
        ref stop => Status::no(format!("{} in the timed loop", stop.describe())),
    })
}

/// The reason for a loop that is far slower than native execution.
fn slow(seconds: f64, stopped: Option<(f64, u64)>) -> String {
    let took = match stopped {
        None => format!("guest loop took {seconds:.2} s"),
        Some((ran, 0)) => format!("guest loop made no progress in {ran:.2} s"),
        Some((ran, done)) => format!(
            "guest loop would take ~{seconds:.1} s (stopped after {ran:.2} s at {:.0} % done)",
            done as f64 * 100.0 / LOOP_ITERATIONS as f64
        ),
    };
    format!("{took}, native takes ~1 ms: KVM emulates guest code here")
}

/// Page tables for an identity-mapped 2 MiB page at 0, and both guests' code.
fn load_memory(memory: &Mapping) {
    write_u64(memory, PML4, (PML4 + 0x1000) as u64 | 3);
    write_u64(memory, PML4 + 0x1000, (PML4 + 0x2000) as u64 | 3);
    write_u64(memory, PML4 + 0x2000, 0x83); // present, writable, 2 MiB page at 0
    write_bytes(memory, CODE_CX16, GUEST_CX16);
    write_bytes(memory, CODE_LOOP, GUEST_LOOP);
}

fn write_u64(memory: &Mapping, offset: usize, value: u64) {
    assert!(offset + 8 <= memory.len());
    // SAFETY: in bounds (checked above) and 8-aligned (the mapping is page-aligned, offsets are
    // multiples of 8); no vCPU runs yet.
    unsafe {
        memory
            .as_ptr()
            .add(offset)
            .cast::<u64>()
            .write_volatile(value)
    }
}

fn read_u64(memory: &Mapping, offset: usize) -> u64 {
    assert!(offset + 8 <= memory.len());
    // SAFETY: in bounds and aligned as in `write_u64`; the vCPUs have stopped.
    unsafe { memory.as_ptr().add(offset).cast::<u64>().read_volatile() }
}

fn write_bytes(memory: &Mapping, offset: usize, bytes: &[u8]) {
    assert!(offset + bytes.len() <= memory.len());
    // SAFETY: in bounds (checked above); no vCPU runs yet.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), memory.as_ptr().add(offset), bytes.len())
    }
}

/// A byte the guest wrote to the serial port, and when.
struct Out {
    byte: u8,
    at: Instant,
}

/// Why KVM_RUN stopped for good.
enum Stop {
    Hlt,
    InternalError {
        suberror: u32,
    },
    FailEntry {
        reason: u64,
    },
    Shutdown,
    UnexpectedIo {
        port: u16,
    },
    Other {
        reason: u32,
    },
    TooManyExits,
    /// Stopped by us at the deadline; RCX tells how far the loop got.
    Interrupted {
        rcx: Option<u64>,
    },
    RunFailed(String),
}

impl Stop {
    fn describe(&self) -> String {
        match self {
            Stop::Hlt => "hlt".to_string(),
            Stop::InternalError { suberror } => {
                let what = match suberror {
                    1 => "emulation failure",
                    2 => "simultaneous exceptions",
                    3 => "event delivery error",
                    4 => "unexpected exit reason",
                    _ => "internal error",
                };
                format!("{what} (KVM internal error, suberror {suberror})")
            }
            Stop::FailEntry { reason } => format!("VM entry failed (hardware reason {reason:#x})"),
            Stop::Shutdown => "guest shut down (triple fault)".to_string(),
            Stop::UnexpectedIo { port } => format!("unexpected I/O exit on port {port:#x}"),
            Stop::Other { reason } => format!("unexpected exit reason {reason}"),
            Stop::TooManyExits => "too many exits".to_string(),
            Stop::Interrupted { .. } => "stopped at the deadline".to_string(),
            Stop::RunFailed(err) => format!("KVM_RUN failed: {err}"),
        }
    }
}

/// What a vCPU did until it stopped.
struct Trace {
    outs: Vec<Out>,
    stop: Stop,
    stopped_at: Instant,
}

/// A vCPU set up for a long-mode guest, with its `kvm_run` area.
struct Vcpu {
    fd: OwnedFd,
    run: Mapping,
}

impl Vcpu {
    fn prepare(
        kvm: &OwnedFd,
        fd: OwnedFd,
        cpuid: Option<&sys::Cpuid>,
        entry: usize,
    ) -> Result<Vcpu, String> {
        let size = sys::ioctl(kvm, sys::KVM_GET_VCPU_MMAP_SIZE, 0)
            .map_err(|e| format!("KVM_GET_VCPU_MMAP_SIZE failed: {e}"))?;
        let run =
            Mapping::of_fd(&fd, size as usize).map_err(|e| format!("cannot map kvm_run: {e}"))?;
        if let Some(cpuid) = cpuid {
            sys::ioctl(
                &fd,
                sys::KVM_SET_CPUID2,
                cpuid as *const sys::Cpuid as usize,
            )
            .map_err(|e| format!("KVM_SET_CPUID2 failed: {e}"))?;
        }
        let mut sregs = sys::Sregs::default();
        sys::ioctl(&fd, sys::KVM_GET_SREGS, &mut sregs as *mut _ as usize)
            .map_err(|e| format!("KVM_GET_SREGS failed: {e}"))?;
        long_mode(&mut sregs);
        sys::ioctl(&fd, sys::KVM_SET_SREGS, &sregs as *const _ as usize)
            .map_err(|e| format!("KVM_SET_SREGS (long mode) failed: {e}"))?;
        let regs = sys::Regs {
            rip: entry as u64,
            rflags: 2,
            rsp: STACK_TOP,
            ..sys::Regs::default()
        };
        sys::ioctl(&fd, sys::KVM_SET_REGS, &regs as *const _ as usize)
            .map_err(|e| format!("KVM_SET_REGS failed: {e}"))?;
        Ok(Vcpu { fd, run })
    }

    /// Runs the vCPU in a thread; past `limit` it is kicked out of KVM_RUN. `Abort::Hung` when it
    /// does not stop even then: the thread keeps the vCPU, and the caller must keep guest memory.
    fn run_bounded(self, limit: Duration) -> Result<Trace, Abort> {
        let immediate_exit =
            self.run.as_ptr() as usize + std::mem::offset_of!(sys::RunHead, immediate_exit);
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("kvm-probe-vcpu".to_string())
            .spawn(move || {
                let trace = self.drive();
                // Send the vCPU back so that its kvm_run stays mapped until the receiver is done.
                let _ = tx.send((self, trace));
            })
            .map_err(|e| Abort::Setup(format!("cannot start the vCPU thread: {e}")))?;
        let received = match rx.recv_timeout(limit) {
            Err(RecvTimeoutError::Timeout) => {
                kick(immediate_exit, &thread);
                rx.recv_timeout(STOP_GRACE)
            }
            other => other,
        };
        match received {
            Ok((_vcpu, trace)) => {
                let _ = thread.join();
                Ok(trace)
            }
            Err(RecvTimeoutError::Timeout) => Err(Abort::Hung(format!(
                "the test guest's vCPU did not stop within {} ms of being interrupted",
                STOP_GRACE.as_millis()
            ))),
            Err(RecvTimeoutError::Disconnected) => {
                Err(Abort::Hung("the vCPU thread died".to_string()))
            }
        }
    }

    /// The vCPU thread: KVM_RUN until anything other than a serial `out`.
    fn drive(&self) -> Trace {
        unblock_kick_signal();
        let mut outs = Vec::new();
        let stop = loop {
            if let Err(err) = sys::ioctl(&self.fd, sys::KVM_RUN, 0) {
                break if err.raw_os_error() == Some(libc::EINTR) {
                    Stop::Interrupted { rcx: self.rcx() }
                } else {
                    Stop::RunFailed(err.to_string())
                };
            }
            match self.exit() {
                Exit::Out(byte) if outs.len() < 4 => outs.push(Out {
                    byte,
                    at: Instant::now(),
                }),
                Exit::Out(_) => break Stop::TooManyExits,
                Exit::Stop(stop) => break stop,
            }
        };
        Trace {
            outs,
            stop,
            stopped_at: Instant::now(),
        }
    }

    fn exit(&self) -> Exit {
        let head = self.run.as_ptr().cast::<sys::RunHead>();
        // SAFETY: kvm_run is mapped for this vCPU's lifetime and the kernel is not writing it
        // (KVM_RUN has returned); the exit data union is part of `RunHead`.
        let (reason, data) = unsafe { ((*head).exit_reason, (*head).data) };
        match reason {
            exit::IO => {
                let (direction, size, port) =
                    (data[0] as u8, (data[0] >> 8) as u8, (data[0] >> 16) as u16);
                if direction != 1
                    || size != 1
                    || port != SERIAL_PORT
                    || data[1] as usize >= self.run.len()
                {
                    return Exit::Stop(Stop::UnexpectedIo { port });
                }
                // SAFETY: `data_offset` (data[1]) points inside the kvm_run mapping (checked).
                Exit::Out(unsafe { *self.run.as_ptr().add(data[1] as usize) })
            }
            exit::HLT => Exit::Stop(Stop::Hlt),
            exit::INTERNAL_ERROR => Exit::Stop(Stop::InternalError {
                suberror: data[0] as u32,
            }),
            exit::FAIL_ENTRY => Exit::Stop(Stop::FailEntry { reason: data[0] }),
            exit::SHUTDOWN => Exit::Stop(Stop::Shutdown),
            reason => Exit::Stop(Stop::Other { reason }),
        }
    }

    fn rcx(&self) -> Option<u64> {
        let mut regs = sys::Regs::default();
        sys::ioctl(&self.fd, sys::KVM_GET_REGS, &mut regs as *mut _ as usize).ok()?;
        Some(regs.rcx)
    }
}

enum Exit {
    Out(u8),
    Stop(Stop),
}

/// Flat 64-bit code and data segments, paging on with the identity map, EFER.LME|LMA.
fn long_mode(sregs: &mut sys::Sregs) {
    let code = sys::Segment {
        base: 0,
        limit: 0xffff_ffff,
        selector: 8,
        type_: 11,
        present: 1,
        dpl: 0,
        db: 0,
        s: 1,
        l: 1,
        g: 1,
        ..sys::Segment::default()
    };
    let data = sys::Segment {
        selector: 16,
        type_: 3,
        db: 1,
        l: 0,
        ..code
    };
    sregs.cs = code;
    (sregs.ds, sregs.es, sregs.fs, sregs.gs, sregs.ss) = (data, data, data, data, data);
    sregs.cr3 = PML4 as u64;
    sregs.cr4 = 1 << 5; // PAE
    sregs.cr0 = 0x8005_0033; // PG | AM | WP | NE | ET | MP | PE
    sregs.efer = 0x500; // LMA | LME
}

/// Makes the vCPU's next or current KVM_RUN return EINTR.
fn kick(immediate_exit: usize, thread: &std::thread::JoinHandle<()>) {
    // SAFETY: the address is the `immediate_exit` byte of a kvm_run mapping that stays mapped
    // while the receiver lives (the vCPU thread sends the mapping back instead of dropping it);
    // KVM reads this byte at KVM_RUN entry, it is designed to be written concurrently.
    unsafe { (immediate_exit as *mut u8).write_volatile(1) };
    if let Some(signal) = kick_signal() {
        // SAFETY: the thread has not been joined, so its pthread_t is valid.
        unsafe { libc::pthread_kill(thread.as_pthread_t(), signal) };
    }
}

/// The real-time signal used to interrupt KVM_RUN, with a no-op handler installed without
/// SA_RESTART. `None` when the signal already has a handler (we never replace one).
fn kick_signal() -> Option<libc::c_int> {
    static SIGNAL: OnceLock<Option<libc::c_int>> = OnceLock::new();
    *SIGNAL.get_or_init(|| {
        let signal = libc::SIGRTMIN();
        // SAFETY: plain sigaction calls on zero-initialised structs; the handler does nothing.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, std::ptr::null(), &mut old) != 0
                || old.sa_sigaction != libc::SIG_DFL
            {
                return None;
            }
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_kick as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            (libc::sigaction(signal, &action, std::ptr::null_mut()) == 0).then_some(signal)
        }
    })
}

extern "C" fn on_kick(_: libc::c_int) {}

fn unblock_kick_signal() {
    if let Some(signal) = kick_signal() {
        // SAFETY: a local signal set, changed for this thread only.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, signal);
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_reasons_say_how_slow_and_why() {
        assert_eq!(
            slow(1.23, None),
            "guest loop took 1.23 s, native takes ~1 ms: KVM emulates guest code here"
        );
        let stopped = slow(1.2, Some((0.5, 410_000)));
        assert!(
            stopped.starts_with("guest loop would take ~1.2 s (stopped after 0.50 s at 41 % done)")
        );
        assert!(slow(0.5, Some((0.5, 0))).contains("no progress"));
    }

    #[test]
    fn internal_errors_are_named() {
        let stop = Stop::InternalError { suberror: 1 };
        assert_eq!(
            stop.describe(),
            "emulation failure (KVM internal error, suberror 1)"
        );
        assert!(Stop::FailEntry { reason: 0x21 }.describe().contains("0x21"));
    }
}
