//! The workspace's members as axbuild reads them: the package a build file's `package` names
//! (`context/workspace.rs` `workspace_member_dir`), and the platform packages for AxVisor's build
//! (`axvisor/build/metadata.rs` `platform_feature_names`, over `build/platform.rs`
//! `cached_workspace_metadata`): `cargo metadata --no-deps` of the workspace root manifest, every
//! package's `[package.metadata.axplat]` read as its `AxplatMetadata` (kebab-case `platform`,
//! `arch`, `default-for-arch`, `dynamic`, all optional; a table that does not fit is skipped),
//! the `platform` names sorted and deduplicated.
//!
//! cargo runs from `/` with `--manifest-path`, so the host's default toolchain answers, not the
//! workspace's pinned nightly (axbuild runs inside the workspace): `--no-deps` reads the
//! manifests only, which any recent cargo does alike, and a dry run needs no nightly.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// `[package.metadata.axplat]` as axbuild deserializes it.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, rename_all = "kebab-case")]
#[allow(dead_code)]
struct AxplatMetadata {
    platform: String,
    arch: String,
    default_for_arch: bool,
    dynamic: bool,
}

/// A platform name and the package that declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub name: String,
    pub package: String,
}

/// The workspace's members as `cargo metadata --no-deps` lists them, or why it gave none (its
/// first line of errors).
type Answer = Result<Vec<cargo_metadata::Package>, String>;

/// Answers per workspace root, for this process (axbuild caches its metadata the same way).
static CACHE: Mutex<Vec<(PathBuf, Answer)>> = Mutex::new(Vec::new());

/// The platforms the workspace's packages declare, sorted by name; `Err` is why `cargo
/// metadata` gave none (its first line of errors).
pub fn platforms(workspace: &Path) -> Result<Vec<Platform>, String> {
    members(workspace).map(|packages| from_packages(&packages))
}

/// The directory of the workspace member named `package`, as axbuild finds the package a build
/// file's `package` names (`context/workspace.rs` `workspace_member_dir`: the member's manifest
/// in `cargo metadata`, its directory); `Err` says why there is none.
pub fn member_dir(workspace: &Path, package: &str) -> Result<PathBuf, String> {
    let packages = members(workspace)?;
    packages
        .iter()
        .find(|p| p.name.as_str() == package)
        .and_then(|p| p.manifest_path.parent())
        .map(|dir| dir.as_std_path().to_path_buf())
        .ok_or_else(|| {
            format!(
                "the workspace {} has no member package `{package}` (cargo metadata lists {})",
                workspace.display(),
                list(&packages)
            )
        })
}

/// Up to ten member names, for messages.
fn list(packages: &[cargo_metadata::Package]) -> String {
    let mut names: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
    names.sort_unstable();
    match names.len() {
        0 => "none".into(),
        n if n > 10 => format!("{}, … ({n} in all)", names[..10].join(", ")),
        _ => names.join(", "),
    }
}

/// The workspace's members, from the cache or `cargo metadata`.
fn members(workspace: &Path) -> Answer {
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, answer)) = cache.iter().find(|(w, _)| w == workspace) {
        return answer.clone();
    }
    let answer = read(workspace);
    cache.push((workspace.to_path_buf(), answer.clone()));
    answer
}

fn read(workspace: &Path) -> Answer {
    // Absolute: cargo runs from `/`.
    let manifest = std::path::absolute(workspace.join("Cargo.toml"))
        .unwrap_or_else(|_| workspace.join("Cargo.toml"));
    let metadata = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .manifest_path(&manifest)
        .current_dir("/")
        .exec()
        .map_err(|e| {
            let text = match &e {
                cargo_metadata::Error::CargoMetadata { stderr } => stderr.clone(),
                other => other.to_string(),
            };
            let first = text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("no message");
            format!(
                "`cargo metadata` over {} failed: {first}",
                manifest.display()
            )
        })?;
    let members: std::collections::HashSet<_> = metadata.workspace_members.iter().collect();
    Ok(metadata
        .packages
        .iter()
        .filter(|p| members.contains(&p.id))
        .cloned()
        .collect())
}

/// The platforms of `packages` (one entry per name, the first package declaring it).
fn from_packages(packages: &[cargo_metadata::Package]) -> Vec<Platform> {
    let mut out: Vec<Platform> = packages
        .iter()
        .filter_map(|p| {
            let table = p.metadata.get("axplat")?.clone();
            let axplat: AxplatMetadata = serde_json::from_value(table).ok()?;
            Some(Platform {
                name: axplat.platform,
                package: p.name.to_string(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup_by(|a, b| a.name == b.name);
    out
}

/// The platform a feature names, as AxVisor's build refuses it
/// (`reject_unsupported_nested_platform_features`): `ax-std/<platform>` (or `ax-std/plat-dyn`),
/// or a platform's bare name.
pub fn named_platform<'a>(feature: &str, platforms: &'a [Platform]) -> Option<&'a Platform> {
    let name = feature.strip_prefix("ax-std/").unwrap_or(feature);
    platforms.iter().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(name: &str, metadata: serde_json::Value) -> cargo_metadata::Package {
        serde_json::from_value(serde_json::json!({
            "name": name, "version": "0.1.0", "id": format!("path+file:///{name}#0.1.0"),
            "license": null, "license_file": null, "description": null, "source": null,
            "dependencies": [], "targets": [], "features": {},
            "manifest_path": format!("/{name}/Cargo.toml"), "metadata": metadata,
            "publish": null, "authors": [], "categories": [], "keywords": [],
            "readme": null, "repository": null, "homepage": null, "documentation": null,
            "edition": "2021", "links": null, "default_run": null, "rust_version": null
        }))
        .unwrap()
    }

    /// axbuild's `AxplatMetadata`: every key optional, a table that does not fit skipped, one
    /// entry per platform name.
    #[test]
    fn axplat_tables_are_read_as_axbuild_reads_them() {
        let got = from_packages(&[
            package(
                "axplat-dyn",
                serde_json::json!({"axplat": {"platform": "dyn", "arch": "aarch64",
                    "crate": "axplat_dyn", "dynamic": true}}),
            ),
            package("other", serde_json::json!({"vendor-filter": {}})),
            package("bad", serde_json::json!({"axplat": {"platform": 3}})),
            package("again", serde_json::json!({"axplat": {"platform": "dyn"}})),
            package(
                "a-board",
                serde_json::json!({"axplat": {"platform": "board-x"}}),
            ),
        ]);
        let names: Vec<(&str, &str)> = got
            .iter()
            .map(|p| (p.name.as_str(), p.package.as_str()))
            .collect();
        assert_eq!(names, [("board-x", "a-board"), ("dyn", "axplat-dyn")]);
        assert_eq!(
            named_platform("ax-std/dyn", &got).unwrap().package,
            "axplat-dyn"
        );
        assert_eq!(named_platform("board-x", &got).unwrap().name, "board-x");
        assert!(named_platform("ax-hal/dyn", &got).is_none());
        assert!(named_platform("fs", &got).is_none());
    }
}
