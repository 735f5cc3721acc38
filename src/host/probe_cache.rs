//! The KVM probe's answer, cached for one host boot: running the test guest costs about half a
//! second, and the answer cannot change until the host reboots, `/dev/kvm` is re-created (the
//! module reloaded, its permissions changed) or QEMU is upgraded. So the first run of a boot
//! probes and writes `<cache dir>/host/kvm-probe.json`; later runs read it while its key still
//! matches:
//! - `/proc/sys/kernel/random/boot_id` (a new boot);
//! - the identity of `/dev/kvm`: device and inode numbers, device id, mode, owner, group and
//!   change time (a udev rule or `chmod` changes the change time);
//! - the identity of `qemu-system-<host arch>` on `PATH` (path, inode, size, modification
//!   time): a QEMU upgrade replaces the file;
//! - this tool's version (the probe's logic may change).
//!
//! No boot id (not Linux, `/proc` hidden) means no caching. A cache file that does not parse,
//! is too large or has another key is probed over; failing to write it only costs the next run
//! a probe.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::model::KvmProbe;

/// The cache file under the cache root.
pub fn cache_file(cache_root: &Path) -> PathBuf {
    cache_root.join("host").join("kvm-probe.json")
}

/// Largest cache file read (a real one is about 2 KiB).
const MAX_CACHE_FILE: u64 = 1 << 20;

/// What the cached answer depends on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheKey {
    pub boot_id: String,
    /// `None`: the device does not exist.
    pub kvm_device: Option<FileId>,
    /// `None`: no `qemu-system-<host arch>` on `PATH`.
    pub qemu: Option<FileId>,
    pub tool_version: String,
}

/// Enough of a file's metadata to notice that it was replaced or changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileId {
    pub path: PathBuf,
    pub dev: u64,
    pub ino: u64,
    pub rdev: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
}

impl FileId {
    fn of(path: &Path) -> Option<FileId> {
        let m = std::fs::metadata(path).ok()?;
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Some(FileId {
            path: path.to_path_buf(),
            dev: m.dev(),
            ino: m.ino(),
            rdev: m.rdev(),
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
            size: m.size(),
            mtime_ns: ns(m.mtime(), m.mtime_nsec()),
            ctime_ns: ns(m.ctime(), m.ctime_nsec()),
        })
    }
}

/// The cache file's contents.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    key: CacheKey,
    kvm: KvmProbe,
}

/// Where a probe's KVM answer came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Read from this cache file.
    Cached(PathBuf),
    /// Probed now (and written to the cache when it could be).
    Probed,
}

impl CacheKey {
    /// The key of this host now; `None` when there is no boot id to tie the answer to.
    pub fn current(kvm_device: &Path, search_path: &std::ffi::OsStr) -> Option<CacheKey> {
        let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let qemu = crate::arch::Arch::host().and_then(|a| {
            let binary = a.qemu_binary();
            std::env::split_paths(search_path)
                .map(|d| d.join(&binary))
                .find(|p| p.is_file())
        });
        Some(CacheKey {
            boot_id: boot_id.trim().to_string(),
            kvm_device: FileId::of(kvm_device),
            qemu: qemu.as_deref().and_then(FileId::of),
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
        })
    }
}

/// The cached answer for `key` in `file`, else `probe()`'s, written to `file` for the next run.
pub fn kvm_probe(
    file: &Path,
    key: Option<CacheKey>,
    probe: impl FnOnce() -> KvmProbe,
) -> (KvmProbe, Source) {
    let Some(key) = key else {
        return (probe(), Source::Probed);
    };
    if let Some(entry) = read(file)
        && entry.key == key
    {
        return (entry.kvm, Source::Cached(file.to_path_buf()));
    }
    let kvm = probe();
    // Best effort: a read-only cache only means the next run probes again.
    let _ = write(
        file,
        &Entry {
            key,
            kvm: kvm.clone(),
        },
    );
    (kvm, Source::Probed)
}

fn read(file: &Path) -> Option<Entry> {
    let f = std::fs::File::open(file).ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    f.take(MAX_CACHE_FILE).read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

/// Writes through a unique temporary file and a rename, so concurrent runs never see half a
/// file (the work dir's `write_file` uses one fixed temporary name, which two runs would share).
fn write(file: &Path, entry: &Entry) -> std::io::Result<()> {
    let dir = file.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer_pretty(&mut tmp, entry)?;
    tmp.persist(file).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(boot: &str) -> Option<CacheKey> {
        Some(CacheKey {
            boot_id: boot.into(),
            kvm_device: None,
            qemu: None,
            tool_version: "1".into(),
        })
    }

    #[test]
    fn a_matching_key_reads_the_cache_and_another_probes_again() {
        let dir = tempfile::tempdir().unwrap();
        let file = cache_file(dir.path());
        let probes = std::cell::Cell::new(0);
        let probe = || {
            probes.set(probes.get() + 1);
            KvmProbe::unusable(&format!("probe {}", probes.get()))
        };
        let (k, src) = kvm_probe(&file, key("a"), probe);
        assert_eq!(src, Source::Probed);
        assert_eq!(k.runs_guests.reason(), Some("probe 1"));
        let (k, src) = kvm_probe(&file, key("a"), probe);
        assert_eq!(src, Source::Cached(file.clone()));
        assert_eq!(k.runs_guests.reason(), Some("probe 1"));
        assert_eq!(probes.get(), 1);
        let (k, src) = kvm_probe(&file, key("b"), probe);
        assert_eq!(
            (src, k.runs_guests.reason()),
            (Source::Probed, Some("probe 2"))
        );
        // No boot id: never cached.
        let (_, src) = kvm_probe(&file, None, probe);
        assert_eq!(src, Source::Probed);
        // A corrupt file is probed over.
        std::fs::write(&file, "{ not json").unwrap();
        let (_, src) = kvm_probe(&file, key("b"), probe);
        assert_eq!(src, Source::Probed);
        assert_eq!(probes.get(), 4);
        let (_, src) = kvm_probe(&file, key("b"), probe);
        assert_eq!(src, Source::Cached(file.clone()));
    }

    #[test]
    fn the_key_follows_the_device_identity() {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("kvm");
        std::fs::write(&dev, "").unwrap();
        let a = CacheKey::current(&dev, std::ffi::OsStr::new("")).unwrap();
        assert_eq!(
            a,
            CacheKey::current(&dev, std::ffi::OsStr::new("")).unwrap()
        );
        std::fs::remove_file(&dev).unwrap();
        let b = CacheKey::current(&dev, std::ffi::OsStr::new("")).unwrap();
        assert_eq!(b.kvm_device, None);
        assert_ne!(a, b);
        assert!(!a.boot_id.is_empty());
    }
}
