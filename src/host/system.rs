//! The machine's basic facts, read from `/proc`, `/etc/os-release` and `statvfs`.

use std::collections::HashSet;
use std::path::Path;

use crate::arch::Arch;

use super::model::{DiskSpace, HostInfo};

/// What `/proc/cpuinfo` says about the first CPU.
#[derive(Debug, Default)]
pub struct CpuInfo {
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub flags: HashSet<String>,
}

/// Reads `/proc/cpuinfo`; empty when unreadable (non-Linux).
pub fn cpuinfo() -> CpuInfo {
    parse_cpuinfo(&std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default())
}

fn parse_cpuinfo(text: &str) -> CpuInfo {
    let mut info = CpuInfo::default();
    let mut flags_seen = false;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "vendor_id" if info.vendor.is_none() => info.vendor = Some(value.to_string()),
            "CPU implementer" if info.vendor.is_none() => {
                info.vendor = Some(arm_implementer(value))
            }
            "model name" if info.model.is_none() => info.model = Some(value.to_string()),
            "flags" | "Features" if !flags_seen => {
                info.flags = value.split_whitespace().map(str::to_string).collect();
                flags_seen = true;
            }
            _ => {}
        }
    }
    info
}

fn arm_implementer(code: &str) -> String {
    let name = match code {
        "0x41" => "ARM",
        "0x61" => "Apple",
        "0x48" => "HiSilicon",
        "0x51" => "Qualcomm",
        "0xc0" => "Ampere",
        "0x4e" => "NVIDIA",
        _ => return format!("implementer {code}"),
    };
    name.to_string()
}

/// Host architecture, OS, kernel, CPUs and memory.
pub fn host_info(cpu: &CpuInfo) -> HostInfo {
    let (total, available) = meminfo();
    HostInfo {
        arch: Arch::host(),
        machine: std::env::consts::ARCH.to_string(),
        os: os_name(),
        kernel: read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_default(),
        cpu_vendor: cpu.vendor.clone(),
        cpu_model: cpu.model.clone(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_total_bytes: total,
        memory_available_bytes: available,
    }
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

fn os_name() -> String {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    parse_os_release(&text).unwrap_or_else(|| std::env::consts::OS.to_string())
}

fn parse_os_release(text: &str) -> Option<String> {
    let value = text.lines().find_map(|l| l.strip_prefix("PRETTY_NAME="))?;
    Some(value.trim().trim_matches('"').to_string())
}

/// Memory available for new work (`MemAvailable`), in bytes.
pub fn available_memory() -> Option<u64> {
    meminfo().1
}

fn meminfo() -> (Option<u64>, Option<u64>) {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    (
        meminfo_field(&text, "MemTotal"),
        meminfo_field(&text, "MemAvailable"),
    )
}

fn meminfo_field(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.split(':').next() == Some(key))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Free space for the cache directory, measured on its nearest existing ancestor.
pub fn disk_space(dir: &Path) -> DiskSpace {
    let existing = dir
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    match free_bytes(existing) {
        Ok(free) => DiskSpace {
            path: dir.to_path_buf(),
            free_bytes: Some(free),
            error: None,
        },
        Err(err) => DiskSpace {
            path: dir.to_path_buf(),
            free_bytes: None,
            error: Some(format!("statvfs {}: {err}", existing.display())),
        },
    }
}

fn free_bytes(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "path contains NUL"))?;
    // SAFETY: a valid NUL-terminated path and a zeroed out-struct that statvfs fills.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(stat.f_bavail as u64 * stat.f_frsize as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuinfo_gives_vendor_model_and_first_flags_line() {
        let text = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Xeon\nflags\t\t: fpu vmx sse2\n\n\
                    processor\t: 1\nflags\t\t: fpu\n";
        let info = parse_cpuinfo(text);
        assert_eq!(info.vendor.as_deref(), Some("GenuineIntel"));
        assert_eq!(info.model.as_deref(), Some("Xeon"));
        assert!(info.flags.contains("vmx") && info.flags.contains("sse2"));
        let arm = parse_cpuinfo("Features\t: fp asimd\nCPU implementer\t: 0x41\n");
        assert_eq!(arm.vendor.as_deref(), Some("ARM"));
        assert!(arm.flags.contains("asimd"));
    }

    #[test]
    fn meminfo_and_os_release_fields() {
        let mem = "MemTotal:       24684084 kB\nMemFree:  1 kB\nMemAvailable:   23967116 kB\n";
        assert_eq!(meminfo_field(mem, "MemTotal"), Some(24_684_084 * 1024));
        assert_eq!(meminfo_field(mem, "MemAvailable"), Some(23_967_116 * 1024));
        assert_eq!(meminfo_field(mem, "SwapTotal"), None);
        let os = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n";
        assert_eq!(
            parse_os_release(os).as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
    }

    #[test]
    fn disk_space_of_a_missing_dir_uses_its_existing_parent() {
        let dir = tempfile::tempdir().unwrap();
        let space = disk_space(&dir.path().join("not/yet/created"));
        assert!(space.free_bytes.unwrap() > 0, "{space:?}");
        assert!(space.path.ends_with("not/yet/created"));
    }
}
