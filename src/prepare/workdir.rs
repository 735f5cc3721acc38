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

/// Writes `bytes` to `path` through a temporary name, so a reader never sees half a file.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| Error::io(path, "write", &e))
}

/// Copies `from` to `to` (replacing it), through a temporary name.
pub fn copy_file(from: &Path, to: &Path) -> Result<(), Error> {
    let tmp = to.with_extension("tmp");
    std::fs::copy(from, &tmp)
        .and_then(|_| std::fs::rename(&tmp, to))
        .map(|_| ())
        .map_err(|e| Error::io(from, &format!("copy to {}", to.display()), &e))
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
}
