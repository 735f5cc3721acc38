//! `probe()`: everything about the runner in one bounded pass (≈0.6 s when KVM must be timed).
//! The KVM check and the `qemu-system-* --version` runs go in parallel.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::model::HostProbe;
use super::{emulators, findings, firmware, kvm, probe_cache, system};

/// What to probe and how long to wait; `Default` is the real host.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// Image cache directory whose free space matters; `None` skips the disk check.
    pub cache_dir: Option<PathBuf>,
    /// The KVM device (tests point it elsewhere).
    pub kvm_device: PathBuf,
    /// `PATH`-style list to look for `qemu-system-*` in; `None` = the process's `PATH`.
    pub search_path: Option<OsString>,
    /// Deadline shared by all `--version` runs.
    pub qemu_timeout: Duration,
    /// The test guest's 1M-iteration loop must finish within this (native: ~1 ms).
    pub guest_loop_limit: Duration,
    /// The KVM answer's cache file (see [`super::probe_cache`]); `None` always probes.
    pub kvm_cache: Option<PathBuf>,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            // The directory the image cache really uses, so its free space is the one that counts.
            cache_dir: crate::image::Cache::locate(None).ok(),
            kvm_device: PathBuf::from("/dev/kvm"),
            search_path: None,
            // `--version` answers in ~20 ms; a loaded runner (parallel jobs, cold page cache) can
            // take far longer, and a version reported missing is worse than a hung emulator
            // delaying the probe by this much.
            qemu_timeout: Duration::from_secs(5),
            guest_loop_limit: Duration::from_millis(500),
            kvm_cache: None,
        }
    }
}

/// Probes the host (synchronously; it blocks up to about `guest_loop_limit` + 0.3 s, or
/// `qemu_timeout` if an emulator hangs). Never fails: what cannot be learnt is reported with why.
pub fn probe(opts: &ProbeOptions) -> HostProbe {
    let started = Instant::now();
    let cpu = system::cpuinfo();
    let host = system::host_info(&cpu);
    let path = opts
        .search_path
        .clone()
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_default();
    let arch_name = host.machine.clone();
    let ((kvm, kvm_source), qemu) = std::thread::scope(|scope| {
        let kvm = scope.spawn(|| {
            let host_cpu = kvm::HostCpu {
                is_x86_64: cfg!(target_arch = "x86_64"),
                arch_name: &arch_name,
                flags: &cpu.flags,
            };
            let probe = || kvm::probe(&opts.kvm_device, &host_cpu, opts.guest_loop_limit);
            match &opts.kvm_cache {
                Some(file) => probe_cache::kvm_probe(
                    file,
                    probe_cache::CacheKey::current(&opts.kvm_device, &path),
                    probe,
                ),
                None => (probe(), probe_cache::Source::Probed),
            }
        });
        let qemu = emulators::find_all(&path, opts.qemu_timeout);
        (
            kvm.join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            qemu,
        )
    });
    let mut probe = HostProbe {
        host,
        disk: opts.cache_dir.as_deref().map(system::disk_space),
        qemu,
        firmware: firmware::find_all(std::path::Path::new("/")),
        kvm,
        findings: Vec::new(),
        duration_seconds: 0.0,
        kvm_cached_from: match kvm_source {
            probe_cache::Source::Cached(file) => Some(file),
            probe_cache::Source::Probed => None,
        },
        cpu_features: Vec::new(),
    };
    probe.findings = findings::derive(&probe);
    probe.duration_seconds = started.elapsed().as_secs_f64();
    probe
}
