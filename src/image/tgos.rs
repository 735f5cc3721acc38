//! tgoskits' image settings, read as its `axbuild` reads them (`scripts/axbuild/src/image/`):
//!
//! - `TGOS_IMAGE_LOCAL_STORAGE`: axbuild's image storage (by default
//!   `<workspace>/tmp/axbuild/rootfs`). An archive already downloaded there
//!   (`<storage>/<last segment of the entry's url>`, e.g. `rootfs-aarch64-alpine.img.tar.xz`) is
//!   used instead of the network on a cache miss: streamed through the same verifying pipeline as
//!   a download (SHA-256, magic, hostile-archive rules), so a stale or tampered copy is refused
//!   and downloaded instead. The storage is only read, never written.
//! - `TGOS_IMAGE_REGISTRY_FALLBACK_URL`: the registry read when the configured one cannot be
//!   fetched (before the last good copy kept in the image cache).
//!
//! `images pull --output-dir DIR` writes axbuild's storage layout, so DIR can be axbuild's
//! `TGOS_IMAGE_LOCAL_STORAGE` (or ours) afterwards: [`export`].

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::LocalImage;
use super::registry::{FALLBACK_URL_ENV, ImageEntry, ImageSpec};
use crate::error::Error;

/// The variable naming axbuild's image storage.
pub const LOCAL_STORAGE_ENV: &str = "TGOS_IMAGE_LOCAL_STORAGE";

/// The marker axbuild writes into an extracted image directory: the archive's SHA-256.
pub const ARCHIVE_MARKER: &str = ".archive.sha256";

/// The two settings, as set in the environment (blank counts as unset, as in axbuild).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TgosEnv {
    pub local_storage: Option<PathBuf>,
    pub fallback_url: Option<String>,
}

impl TgosEnv {
    /// The settings of this process's environment.
    pub fn from_env() -> TgosEnv {
        use crate::environment::Lookup;
        TgosEnv::from_vars(|k| crate::environment::process().get(k))
    }

    fn from_vars(get: impl Fn(&str) -> Option<String>) -> TgosEnv {
        let set = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        TgosEnv {
            local_storage: set(LOCAL_STORAGE_ENV).map(PathBuf::from),
            fallback_url: set(FALLBACK_URL_ENV).map(|v| v.trim().to_string()),
        }
    }
}

/// axbuild's file name for an entry's archive: the last segment of its url
/// (`rootfs-aarch64-alpine.img.tar.xz`); `None` when that is no plain file name.
pub fn archive_file_name(entry: &ImageEntry) -> Option<String> {
    let url = reqwest::Url::parse(&entry.url).ok()?;
    let last = url.path_segments()?.next_back()?.to_string();
    let plain = !last.is_empty()
        && last != "."
        && last != ".."
        && !last.contains(['\\', '%'])
        && !last.chars().any(char::is_control);
    plain.then_some(last)
}

/// The archive for `entry` in the local storage `dir`, if a regular file is there.
pub fn stored_archive(dir: &Path, entry: &ImageEntry) -> Option<PathBuf> {
    let path = dir.join(archive_file_name(entry)?);
    fs::metadata(&path).ok()?.is_file().then_some(path)
}

/// axbuild's directory name for an extracted image: `<name>` when pulled by bare name,
/// `<name>-<version>` when the version was given.
pub fn extract_dir_name(spec: &ImageSpec) -> String {
    match &spec.version {
        Some(v) => format!("{}-{v}", spec.name),
        None => spec.name.clone(),
    }
}

/// Copies a pulled image out of the cache into `dir` in axbuild's storage layout: the verified
/// archive as `dir/<archive file name>`, the unpacked files under `dir/<extract dir name>/` with
/// axbuild's `.archive.sha256`. Each is staged beside its final name and renamed into place, so
/// `dir` never holds a half-written image; an older extract dir of that name is replaced.
/// Returns the extract dir.
pub fn export(
    image: &LocalImage,
    entry: &ImageEntry,
    spec: &ImageSpec,
    archive: &Path,
    dir: &Path,
) -> Result<PathBuf, Error> {
    let io = |p: &Path, what: &str, e: io::Error| {
        Error::io(p, what, &e).help("check that --output-dir names a writable directory")
    };
    fs::create_dir_all(dir).map_err(|e| io(dir, "create", e))?;
    let stage = |name: &str| dir.join(format!(".{name}.qemu-test-{}", std::process::id()));

    let name = archive_file_name(entry).unwrap_or_else(|| format!("{}.tar", entry.name));
    let (tmp, dest) = (stage(&name), dir.join(&name));
    fs::copy(archive, &tmp).map_err(|e| io(&tmp, "write", e))?;
    fs::rename(&tmp, &dest).map_err(|e| io(&dest, "write", e))?;

    let extract = extract_dir_name(spec);
    let (tmp, dest) = (stage(&extract), dir.join(&extract));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir(&tmp).map_err(|e| io(&tmp, "create", e))?;
    for rel in &image.files {
        let to = tmp.join(rel);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).map_err(|e| io(parent, "create", e))?;
        }
        let from = image.dir.join(rel);
        fs::copy(&from, &to).map_err(|e| io(&to, "write", e))?;
    }
    let marker = tmp.join(ARCHIVE_MARKER);
    fs::write(&marker, &image.sha256).map_err(|e| io(&marker, "write", e))?;
    // Take the old one away first (a link only unlinked, never followed), then rename in.
    match fs::symlink_metadata(&dest) {
        Ok(m) if m.is_dir() => {
            let old = stage(&format!("{extract}.old"));
            fs::rename(&dest, &old).map_err(|e| io(&dest, "replace", e))?;
            fs::remove_dir_all(&old).map_err(|e| io(&old, "remove", e))?;
        }
        Ok(_) => fs::remove_file(&dest).map_err(|e| io(&dest, "replace", e))?,
        Err(_) => {}
    }
    fs::rename(&tmp, &dest).map_err(|e| io(&dest, "create", e))?;
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(url: &str) -> ImageEntry {
        ImageEntry {
            name: "rootfs-aarch64-alpine.img".into(),
            version: "0.0.15".into(),
            released_at: None,
            description: String::new(),
            sha256: String::new(),
            arch: "aarch64".into(),
            url: url.into(),
            source: String::new(),
        }
    }

    #[test]
    fn blank_settings_are_unset_and_names_follow_axbuild() {
        let env = TgosEnv::from_vars(|k| match k {
            LOCAL_STORAGE_ENV => Some("  ".into()),
            FALLBACK_URL_ENV => Some(" http://m/v.toml ".into()),
            _ => None,
        });
        assert_eq!(env.local_storage, None);
        assert_eq!(env.fallback_url.as_deref(), Some("http://m/v.toml"));
        let e = entry("https://h/releases/download/v0.0.15/rootfs-aarch64-alpine.img.tar.xz?x=1");
        assert_eq!(
            archive_file_name(&e).as_deref(),
            Some("rootfs-aarch64-alpine.img.tar.xz")
        );
        for bad in [
            "https://h/",
            "https://h/a/%2e%2e",
            "https://h/a/x%2Fy.tar.xz",
        ] {
            assert_eq!(archive_file_name(&entry(bad)), None, "{bad}");
        }
        let spec: ImageSpec = "qemu-aarch64".parse().unwrap();
        assert_eq!(extract_dir_name(&spec), "qemu-aarch64");
        let spec: ImageSpec = "qemu-aarch64:0.0.15".parse().unwrap();
        assert_eq!(extract_dir_name(&spec), "qemu-aarch64-0.0.15");
    }
}
