//! The per-case work directory: where patched VM configs and the rootfs copy live, so the
//! user's checkout is never written (`<out>/cases/<case>/` unless a directory is given).

use std::path::{Path, PathBuf};

use crate::error::Error;

/// `<out_dir>/cases/<case>`, with the case name reduced to characters safe in a file name.
pub fn case_dir(out_dir: &Path, case: &str) -> PathBuf {
    let safe: String = case
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let safe = if safe.trim_matches('.').is_empty() {
        "case".to_string()
    } else {
        safe
    };
    out_dir.join("cases").join(safe)
}

/// Where the per-run copy of the image's `rootfs.img` goes.
pub fn rootfs_copy(work_dir: &Path) -> PathBuf {
    work_dir.join("rootfs.img")
}

/// The patched copy of the `index`-th VM config: its own file name under `vmconfigs/`,
/// prefixed with the index when an earlier config has the same name.
pub fn config_copy(work_dir: &Path, configs: &[PathBuf], index: usize) -> PathBuf {
    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    let own = name(&configs[index]).unwrap_or_else(|| format!("vm{index}.toml"));
    let clash = configs[..index]
        .iter()
        .any(|p| name(p).as_deref() == Some(own.as_str()));
    let file = if clash { format!("{index}-{own}") } else { own };
    work_dir.join("vmconfigs").join(file)
}

/// Creates `dir` and the directories under it that preparation writes to.
pub fn create(dir: &Path) -> Result<(), Error> {
    let vms = dir.join("vmconfigs");
    std::fs::create_dir_all(&vms).map_err(|e| Error::io(&vms, "create work directory", &e))
}

/// Writes `bytes` to `path` through a new temporary file in the same directory (created
/// with `O_EXCL`, so never through a planted symlink) renamed over `path`: a reader never sees
/// half a file, and a symlink planted at `path` is replaced, not followed. Every writer into
/// the out dir goes through this, [`copy_file`] or [`create_file`].
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    use std::io::Write;
    let mut tmp = temp_beside(path)?;
    tmp.write_all(bytes)
        .map_err(|e| Error::io(tmp.path(), "write", &e))?;
    persist(tmp, path)
}

/// Copies `from` to `to` (replacing it, never writing through a symlink at `to`), through a
/// temporary name; the copy keeps `from`'s permission bits.
pub fn copy_file(from: &Path, to: &Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let fail = |e: &std::io::Error| Error::io(from, &format!("copy to {}", to.display()), e);
    let mut src = std::fs::File::open(from).map_err(|e| fail(&e))?;
    let mode = src.metadata().map_err(|e| fail(&e))?.permissions().mode();
    let mut tmp = temp_beside(to)?;
    // std::io::copy between files uses copy_file_range, as std::fs::copy does.
    std::io::copy(&mut src, tmp.as_file_mut()).map_err(|e| fail(&e))?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))
        .map_err(|e| fail(&e))?;
    let tmp = tmp.into_temp_path();
    tmp.persist(to)
        .map_err(|e| Error::io(to, "write", &e.error))
}

/// Lays a `uefi = true` boot out under `out_dir` (never through a symlink planted there): a
/// fresh ESP holding only `kernel` at [`EspBoot::boot_file`] (QEMU may have written into the
/// last run's), a fresh copy of the variable store template at [`EspBoot::vars`], writable
/// whatever the template's mode (the firmware writes its variables into it).
pub fn lay_out_esp(
    esp: &crate::qemu::firmware::EspBoot,
    out_dir: &Path,
    kernel: &Path,
) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::symlink_metadata(&esp.esp_dir) {
        let removed = match m.is_dir() {
            true => std::fs::remove_dir_all(&esp.esp_dir),
            false => std::fs::remove_file(&esp.esp_dir),
        };
        removed.map_err(|e| Error::io(&esp.esp_dir, "replace", &e))?;
    }
    if let Some(dir) = esp.boot_file.parent() {
        create_dir_in(out_dir, dir)?;
    }
    copy_file(kernel, &esp.boot_file)?;
    copy_file(&esp.firmware.vars, &esp.vars)?;
    std::fs::set_permissions(&esp.vars, std::fs::Permissions::from_mode(0o644))
        .map_err(|e| Error::io(&esp.vars, "make writable", &e))
}

/// Creates `path` afresh for streaming (a console log): whatever entry is there — an old log
/// or a planted symlink — is removed (unlink never follows a symlink), and the new file is
/// opened with `O_CREAT | O_EXCL | O_NOFOLLOW`, so it is never a symlink's target.
pub fn create_file(path: &Path) -> Result<std::fs::File, Error> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            return Err(Error::infra(format!(
                "cannot create {}: a directory is in the way",
                path.display()
            )));
        }
        Ok(_) => std::fs::remove_file(path).map_err(|e| Error::io(path, "replace", &e))?,
        Err(_) => {}
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| Error::io(path, "create", &e))
}

/// A directory made for one use of a boot (its core dump, its debugging sockets), created
/// as every directory under the out dir is ([`create_dir_in`]); when it did not exist before,
/// it is removed again on drop if it is empty then.
pub struct MadeDir {
    made: Option<PathBuf>,
}

impl MadeDir {
    pub fn new(root: &Path, dir: &Path) -> Result<MadeDir, Error> {
        let made = (!dir.exists()).then(|| dir.to_path_buf());
        create_dir_in(root, dir)?;
        Ok(MadeDir { made })
    }
}

impl Drop for MadeDir {
    fn drop(&mut self) {
        if let Some(dir) = &self.made {
            // Only an empty directory is removed.
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Creates `dir` and the directories between `root` and it, refusing a symlink (or a file) on
/// the way below `root`: a symlink planted in the out dir (`cases -> /elsewhere`) must not
/// send our writes elsewhere. `root` itself, and a `dir` outside it, are created as given.
pub fn create_dir_in(root: &Path, dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(root).map_err(|e| Error::io(root, "create", &e))?;
    let Ok(rest) = dir.strip_prefix(root) else {
        return std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create", &e));
    };
    let mut at = root.to_path_buf();
    for part in rest.components() {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => {}
            Ok(m) => {
                let what = if m.file_type().is_symlink() {
                    "a symlink"
                } else {
                    "not a directory"
                };
                return Err(Error::infra(format!(
                    "refusing to write under {}: it is {what} inside the out dir {}",
                    at.display(),
                    root.display()
                ))
                .help("remove it, or use a fresh --out-dir"));
            }
            Err(_) => match std::fs::create_dir(&at) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::io(&at, "create", &e)),
            },
        }
    }
    Ok(())
}

/// `flock(LOCK_EX | LOCK_NB)`: by hand because `File::try_lock` needs Rust 1.89 (our MSRV is
/// 1.88). The lock belongs to the open file, so it ends with the process however it ends.
fn try_flock(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor we own; no memory is passed.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// A new temporary file next to `path` (same file system, so the rename is atomic).
fn temp_beside(path: &Path) -> Result<tempfile::NamedTempFile, Error> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    tempfile::Builder::new()
        .prefix(".qemu-test-")
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, "create a temporary file in", &e))
}

/// Makes the temporary file an ordinary report (0644, not tempfile's 0600) and renames it to
/// `path`. An old file (or planted symlink) at `path` is unlinked first: renamed *over* an
/// existing file, ext4 (`auto_da_alloc`) starts writing the new file's data out during the
/// rename, which costs a loaded runner milliseconds per report (BENCHMARKS.md); a reader then
/// sees the old file, none, or the new one — never half of one.
fn persist(tmp: tempfile::NamedTempFile, path: &Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .map_err(|e| Error::io(tmp.path(), "set permissions of", &e))?;
    match std::fs::symlink_metadata(path) {
        // A directory in the way: the rename fails and says so.
        Ok(m) if !m.is_dir() => {
            std::fs::remove_file(path).map_err(|e| Error::io(path, "replace", &e))?;
        }
        _ => {}
    }
    tmp.persist(path)
        .map(|_| ())
        .map_err(|e| Error::io(path, "write", &e.error))
}

/// Holds the out dir for one run: an exclusive `flock` on `<out>/.qemu-test.lock`, released
/// when dropped (or when the process dies, so a killed run never leaves a stale lock).
#[derive(Debug)]
pub struct OutDirLock {
    _file: std::fs::File,
}

/// The lock file's name in the out dir.
pub const LOCK_FILE: &str = ".qemu-test.lock";

impl OutDirLock {
    /// Creates `out_dir` and locks it; a second run on the same out dir gets a usage error
    /// (exit 2) naming the holder, before it writes anything.
    pub fn acquire(out_dir: &Path) -> Result<OutDirLock, Error> {
        use std::io::Read;
        use std::os::unix::fs::{FileExt, OpenOptionsExt};
        std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, "create", &e))?;
        let path = out_dir.join(LOCK_FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| Error::io(&path, "open the lock file", &e))?;
        match try_flock(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let mut holder = String::new();
                let _ = Read::by_ref(&mut file).take(32).read_to_string(&mut holder);
                // The first word: the pid is written over what an earlier holder left.
                let by = match holder.split_whitespace().next() {
                    Some(pid) => format!(" (pid {pid})"),
                    None => String::new(),
                };
                return Err(Error::usage(format!(
                    "the out dir {} is in use by another qemu-test run{by}",
                    out_dir.display()
                ))
                .help("give this run its own --out-dir, or wait for the other run to end"));
            }
            Err(e) => return Err(Error::io(&path, "lock", &e)),
        }
        // Our pid, padded to a fixed width (wider than any pid) and written over the old one:
        // truncating instead waits, on ext4, for the last run's write of this file to reach
        // the disk (milliseconds on a busy runner, BENCHMARKS.md). Readers trim it.
        let _ = file.write_all_at(format!("{:<10}\n", std::process::id()).as_bytes(), 0);
        Ok(OutDirLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_names_become_safe_directory_names() {
        let out = Path::new("/out");
        assert_eq!(
            case_dir(out, "aarch64 / Linux"),
            Path::new("/out/cases/aarch64___Linux")
        );
        assert_eq!(case_dir(out, ".."), Path::new("/out/cases/case"));
    }

    #[test]
    fn same_named_configs_do_not_clash() {
        let configs = [PathBuf::from("a/vm.toml"), PathBuf::from("b/vm.toml")];
        let w = Path::new("/w");
        assert_eq!(
            config_copy(w, &configs, 0),
            Path::new("/w/vmconfigs/vm.toml")
        );
        assert_eq!(
            config_copy(w, &configs, 1),
            Path::new("/w/vmconfigs/1-vm.toml")
        );
    }

    #[test]
    fn writers_replace_a_planted_symlink_and_leave_its_target_alone() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside.txt");
        std::fs::write(&outside, "precious").unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        for (name, write) in [("a.json", 0), ("b.bin", 1), ("c.log", 2)] {
            let link = out.join(name);
            std::os::unix::fs::symlink(&outside, &link).unwrap();
            match write {
                0 => write_file(&link, b"new").unwrap(),
                1 => copy_file(&dir.path().join("outside.txt"), &link).unwrap(),
                _ => drop(create_file(&link).unwrap()),
            }
            assert!(
                !std::fs::symlink_metadata(&link)
                    .unwrap()
                    .file_type()
                    .is_symlink()
            );
            assert_eq!(
                std::fs::read_to_string(&outside).unwrap(),
                "precious",
                "{name}"
            );
        }
        assert_eq!(std::fs::read_to_string(out.join("a.json")).unwrap(), "new");
    }

    #[test]
    fn directories_below_the_out_dir_may_not_be_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        std::os::unix::fs::symlink(dir.path(), out.join("cases")).unwrap();
        let e = create_dir_in(&out, &out.join("cases/x/vmconfigs")).unwrap_err();
        assert!(
            e.message.contains("it is a symlink inside the out dir"),
            "{e}"
        );
        assert!(!dir.path().join("x").exists());
        create_dir_in(&out, &out.join("logs/deep")).unwrap();
        assert!(out.join("logs/deep").is_dir());
    }

    #[test]
    fn a_locked_out_dir_refuses_a_second_run() {
        let dir = tempfile::tempdir().unwrap();
        let held = OutDirLock::acquire(dir.path()).unwrap();
        let e = OutDirLock::acquire(dir.path()).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::exit::USAGE);
        let pid = std::process::id();
        assert!(
            e.message
                .contains(&format!("in use by another qemu-test run (pid {pid})")),
            "{e}"
        );
        drop(held);
        OutDirLock::acquire(dir.path()).unwrap();
    }

    #[test]
    fn the_lock_names_its_holder_over_what_an_earlier_holder_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE);
        // An earlier run's longer pid (older versions wrote it unpadded).
        std::fs::write(&path, "4194303").unwrap();
        let _held = OutDirLock::acquire(dir.path()).unwrap();
        let pid = std::process::id().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.split_whitespace().collect::<Vec<_>>(), [pid.as_str()]);
        let e = OutDirLock::acquire(dir.path()).unwrap_err();
        assert!(e.message.contains(&format!("(pid {pid})")), "{e}");
    }

    #[test]
    fn a_report_replaces_the_old_one_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.json");
        std::fs::write(&path, "an earlier, longer report").unwrap();
        write_file(&path, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        // Only the report: no temporary file is left beside it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // A directory in the way is an error naming the path, and stays.
        let blocked = dir.path().join("junit.xml");
        std::fs::create_dir(&blocked).unwrap();
        let e = write_file(&blocked, b"x").unwrap_err();
        assert!(e.to_string().contains("junit.xml"), "{e}");
        assert!(blocked.is_dir());
    }
}
