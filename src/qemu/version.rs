//! QEMU's version for reports, without slowing the boot: remembered per binary (path, size,
//! mtime) in the cache directory, and asked of QEMU (`--version`) only when unknown, while the
//! guest boots.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long `qemu-system-* --version` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(5);

/// Identity of a QEMU binary: a changed file (upgrade) gets asked again.
fn fingerprint(program: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(program).ok()?;
    Some(format!("{}|{}|{}", program.display(), m.len(), m.mtime()))
}

/// The remembered versions, in `<cache>/qemu-versions.json`.
pub struct VersionCache {
    path: Option<PathBuf>,
}

impl VersionCache {
    /// `cache_root = None` remembers nothing (every lookup asks QEMU).
    pub fn new(cache_root: Option<&Path>) -> VersionCache {
        VersionCache {
            path: cache_root.map(|r| r.join("qemu-versions.json")),
        }
    }

    fn load(&self) -> BTreeMap<String, String> {
        self.path
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// The remembered version of `program`, if any.
    pub fn cached(&self, program: &Path) -> Option<String> {
        self.load().remove(&fingerprint(program)?)
    }

    /// Asks QEMU and remembers the answer (best effort: a cache that cannot be written only
    /// costs the next run a `--version`).
    pub async fn query(&self, program: &Path) -> Option<String> {
        let out = tokio::time::timeout(
            VERSION_TIMEOUT,
            tokio::process::Command::new(program)
                .arg("--version")
                .kill_on_drop(true)
                .output(),
        )
        .await
        .ok()?
        .ok()?;
        let version = parse(&String::from_utf8_lossy(&out.stdout))?;
        if let (Some(path), Some(key)) = (&self.path, fingerprint(program)) {
            let mut all = self.load();
            all.insert(key, version.clone());
            if let (Some(dir), Ok(text)) = (path.parent(), serde_json::to_vec_pretty(&all)) {
                let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
                if std::fs::create_dir_all(dir).is_ok() && std::fs::write(&tmp, text).is_ok() {
                    let _ = std::fs::rename(&tmp, path);
                }
            }
        }
        Some(version)
    }
}

/// `QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2…)` → `10.0.2`.
pub fn parse(text: &str) -> Option<String> {
    let rest = text.lines().next()?.split("version ").nth(1)?;
    let v = rest.split_whitespace().next()?;
    (!v.is_empty()).then(|| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_qemu_version_lines() {
        assert_eq!(
            parse("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)\nCopyright"),
            Some("10.0.2".into())
        );
        assert_eq!(
            parse("QEMU emulator version 7.2.22\n"),
            Some("7.2.22".into())
        );
        assert_eq!(parse("garbage"), None);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn remembers_a_version_per_binary() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("qemu-fake");
        std::fs::write(
            &fake,
            "#!/bin/sh\necho 'QEMU emulator version 9.9.9 (test)'\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let cache = VersionCache::new(Some(dir.path()));
        assert_eq!(cache.cached(&fake), None);
        assert_eq!(cache.query(&fake).await, Some("9.9.9".into()));
        assert_eq!(cache.cached(&fake), Some("9.9.9".into()));
    }
}
