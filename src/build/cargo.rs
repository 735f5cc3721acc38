//! AxVisor's build as `cargo build` (axvisor.md §3.2 step 5): the same target, features, log
//! level and environment as `cargo xtask qemu`, but built, not run, so the runner starts QEMU
//! itself; and the ELF found in cargo's JSON messages instead of guessed from `target/`.
//!
//! Deliberate differences from xtask: no `-Z unstable-options` (nothing here needs it, and it
//! breaks stable toolchains), no `-- … qemu` runner arguments, `--message-format json` (our own
//! rendering of diagnostics, so the first error can be named), and a `--target-dir` per distinct
//! set of VM configs so two sets never share one ELF (tgoskits #1969).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use toml_edit::{Document, Item, Table};

use crate::build::board::BoardConfig;
use crate::build::recipe::{Artifact, BuildCommand, Recipe};
use crate::config::source::SourceText;
use crate::error::{Error, Location};

/// The package to build, as the workspace's `Cargo.toml` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageInfo {
    /// `-p <name>`.
    pub name: String,
    /// `--bin <bin>` (xtask uses the package name).
    pub bin: String,
    /// Whether the package depends on the `log` crate, which decides whether the
    /// `log/release_max_level_<lvl>` feature is added (xtask asks `cargo metadata` the same).
    pub uses_log: bool,
    /// The package's `[features]` names (axbuild keeps a feature on the package only when it
    /// declares it).
    pub features: Vec<String>,
    /// Whether the package has a bin target named like itself (a `[[bin]]` of that name, or
    /// cargo's automatic one from `src/main.rs`): axbuild's StarryOS build passes `--bin` only
    /// then (`ensure_starry_bin_arg`).
    pub own_bin: bool,
}

impl PackageInfo {
    /// Reads `<workspace>/Cargo.toml` without running cargo (so a dry run needs no toolchain).
    pub fn read(workspace: &Path) -> Result<PackageInfo, Error> {
        let path = workspace.join("Cargo.toml");
        let text = crate::config::source::read_input(&path, "Cargo.toml")?;
        Self::parse(&path, &text)
    }

    /// Parses a manifest's text; `path` is used in messages only.
    pub fn parse(path: &Path, text: &str) -> Result<PackageInfo, Error> {
        let source = SourceText::new(path, text.to_string());
        let doc = Document::parse(text).map_err(|e| {
            Error::config(format!(
                "invalid TOML in Cargo.toml: {}",
                e.message().trim()
            ))
            .at(source.location(e.span().map_or(0, |s| s.start)))
        })?;
        let name = doc
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(Item::as_str)
            .ok_or_else(|| {
                Error::config("Cargo.toml has no `[package]` with a `name`, so there is no package to build")
                    .at(source.location(0))
                    .help("run from the package's directory, or name the package and bin to build explicitly")
            })?;
        let declared = doc
            .get("bin")
            .and_then(Item::as_array_of_tables)
            .is_some_and(|bins| {
                bins.iter()
                    .any(|b| b.get("name").and_then(Item::as_str) == Some(name))
            });
        let autobins = doc
            .get("package")
            .and_then(|p| p.get("autobins"))
            .and_then(Item::as_bool)
            .unwrap_or(true);
        let main = path.with_file_name("src").join("main.rs");
        Ok(PackageInfo {
            name: name.to_string(),
            bin: name.to_string(),
            uses_log: depends_on_log(doc.as_table()),
            features: feature_names(doc.as_table()),
            own_bin: declared || (autobins && main.is_file()),
        })
    }
}

/// The keys of a manifest's `[features]`.
pub fn feature_names(manifest: &Table) -> Vec<String> {
    manifest
        .get("features")
        .and_then(Item::as_table_like)
        .map(|t| t.iter().map(|(k, _)| k.to_string()).collect())
        .unwrap_or_default()
}

/// Whether `[dependencies]` or any `[target.*.dependencies]` names the `log` crate.
fn depends_on_log(manifest: &Table) -> bool {
    let has_log = |deps: Option<&Item>| {
        deps.and_then(Item::as_table_like).is_some_and(|t| {
            t.iter().any(|(key, dep)| {
                let renamed = dep.get("package").and_then(Item::as_str);
                renamed.unwrap_or(key) == "log"
            })
        })
    };
    let in_targets = manifest
        .get("target")
        .and_then(Item::as_table_like)
        .is_some_and(|targets| targets.iter().any(|(_, t)| has_log(t.get("dependencies"))));
    has_log(manifest.get("dependencies")) || in_targets
}

/// Where a run's cargo builds write: `<out-dir>/cargo-target/`, one `vmcfg-<hash>` target dir
/// per VM-config set below it (see [`cargo_recipe`]). Under the out dir, never the checkout's
/// `target/`, so a run writes nothing in the user's tree; the action caches this directory
/// between jobs and never uploads it.
pub fn target_root(out_dir: &Path) -> PathBuf {
    out_dir.join("cargo-target")
}

/// The `--target-dir` of a cargo build command.
pub fn target_dir_arg(args: &mut [String]) -> Option<&mut String> {
    let i = args.iter().position(|a| a == "--target-dir")?;
    args.get_mut(i + 1)
}

/// Target dirs a build of this process has started in (see [`seed_target_dir`]).
static CLAIMED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Prepares `target_dir` (`<root>/vmcfg-<hash>`) for a build. When it does not exist yet but
/// its root holds other `vmcfg-*` dirs that no build of this run uses (an earlier job's, restored
/// by the action's build cache, whose VM configs or image paths differed), the most recently
/// modified one is renamed to it: cargo then rebuilds what the VM configs change (the
/// hypervisor crate, whose build script reads them) and reuses every dependency, instead of
/// building everything again beside a dir nobody uses. Returns the dir it started from.
///
/// A rename never copies, and a dir another case of this run builds in is never taken; two
/// cases racing for one restored dir only cost the loser a cold build.
pub fn seed_target_dir(target_dir: &Path) -> Option<PathBuf> {
    let mut claimed = CLAIMED.lock().unwrap_or_else(|p| p.into_inner());
    claimed.push(target_dir.to_path_buf());
    if target_dir.exists() {
        return None;
    }
    let root = target_dir.parent()?;
    let mut candidates: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(root)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("vmcfg-"))
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| !claimed.contains(&e.path()))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    candidates.sort();
    let (_, newest) = candidates.pop()?;
    std::fs::rename(&newest, target_dir).ok()?;
    Some(newest)
}

/// Everything [`cargo_recipe`] needs.
#[derive(Debug, Clone)]
pub struct CargoRequest<'a> {
    /// Target, features, log level, extra cargo args.
    pub board: &'a BoardConfig,
    /// `-p`, `--bin` and whether to add the `log` feature.
    pub package: &'a PackageInfo,
    /// The (patched) VM configs to embed, absolute, in order.
    pub vm_configs: &'a [PathBuf],
    /// The workspace root: cargo runs there so its `rust-toolchain.toml` and `.cargo/config.toml`
    /// apply.
    pub workspace: &'a Path,
    /// Parent of the per-VM-config-set target directories.
    pub target_root: &'a Path,
    /// `--release` (xtask always builds release).
    pub release: bool,
}

/// The cargo command and environment for a board config and a set of VM configs. Reads the VM
/// configs (to hash them) but changes nothing.
pub fn cargo_recipe(req: &CargoRequest<'_>) -> Result<Recipe, Error> {
    let target_dir = target_dir(req)?;
    let mut args: Vec<String> = [
        "build",
        "-p",
        &req.package.name,
        "--target",
        &req.board.target,
    ]
    .map(String::from)
    .to_vec();
    args.extend([
        "--target-dir".into(),
        target_dir.to_string_lossy().into_owned(),
    ]);
    let features = features(req);
    if !features.is_empty() {
        args.extend(["--features".into(), features.join(",")]);
    }
    args.extend(["--bin".into(), req.package.bin.clone()]);
    args.extend(req.board.cargo_args.iter().cloned());
    if req.release {
        args.push("--release".into());
    }
    args.extend(["--message-format".into(), "json".into()]);
    Ok(Recipe {
        command: Some(BuildCommand {
            program: "cargo".into(),
            args,
            env: build_env(Some(req.board), req.vm_configs, req.workspace),
            unset: Vec::new(),
            cwd: req.workspace.to_path_buf(),
        }),
        artifact: Artifact::CargoBin(req.package.bin.clone()),
        generated: Vec::new(),
        notes: Vec::new(),
        post: Vec::new(),
    })
}

/// `<target root>/vmcfg-<hash>`: the `--target-dir` of this set of VM configs.
pub fn target_dir(req: &CargoRequest<'_>) -> Result<PathBuf, Error> {
    Ok(req.target_root.join(config_set_dir(req.vm_configs)?))
}

/// The board's features plus `log/[release_]max_level_<lvl>` when the package uses `log`.
fn features(req: &CargoRequest<'_>) -> Vec<String> {
    let mut features = req.board.features.clone();
    if let (Some(level), true) = (req.board.log, req.package.uses_log) {
        let prefix = if req.release { "release_" } else { "" };
        features.push(format!("log/{prefix}max_level_{}", level.lower()));
    }
    features
}

/// The environment AxVisor's build reads: `AX_LOG`, `AXVISOR_SMP` (xtask) or `SMP`, `AX_ARCH`,
/// `AX_TARGET` and the file's `env` (axbuild), `AXVISOR_VM_CONFIGS` and `WORKSPACE_FOLDER`. Also given to `--build-command` builds. `AXVISOR_VM_CONFIGS` is always
/// set (empty for none) so a value left in the user's shell cannot leak into the build.
pub fn build_env(
    board: Option<&BoardConfig>,
    vm_configs: &[PathBuf],
    workspace: &Path,
) -> Vec<(String, String)> {
    let mut env = Vec::new();
    if let Some(level) = board.and_then(|b| b.log) {
        env.push(("AX_LOG".into(), level.lower().into()));
    }
    if let Some(smp) = board.and_then(|b| b.smp) {
        env.push(("AXVISOR_SMP".into(), smp.to_string()));
    }
    if let Some(b) = board.filter(|b| b.axbuild) {
        // What tgoskits' axbuild sets: `SMP` from `max_cpu_num`, `AX_ARCH`, `AX_TARGET`, then
        // the build file's own `env` table.
        if let Some(n) = b.max_cpu_num {
            env.push(("SMP".into(), n.to_string()));
        }
        let arch = b.target.split('-').next().unwrap_or_default();
        let arch = if arch.starts_with("riscv64") {
            "riscv64"
        } else {
            arch
        };
        env.push(("AX_ARCH".into(), arch.into()));
        env.push(("AX_TARGET".into(), b.target.clone()));
        env.extend(b.env.iter().cloned());
    }
    let joined: Vec<String> = vm_configs
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    env.push(("AXVISOR_VM_CONFIGS".into(), joined.join(":")));
    env.push((
        "WORKSPACE_FOLDER".into(),
        workspace.to_string_lossy().into_owned(),
    ));
    env
}

/// `vmcfg-<hash>`: one directory per distinct ordered set of VM config contents.
fn config_set_dir(vm_configs: &[PathBuf]) -> Result<String, Error> {
    let mut hasher = Sha256::new();
    for path in vm_configs {
        let bytes = crate::config::source::read_input(path, "VM config")?.into_bytes();
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    let digest = hasher.finalize();
    Ok(format!("vmcfg-{}", crate::image::stream::hex(&digest[..8])))
}

/// What cargo's JSON messages said, accumulated line by line.
#[derive(Debug, Default)]
pub struct CargoMessages {
    /// The executable of the wanted bin target.
    pub executable: Option<PathBuf>,
    /// The first compiler error, preferring one with a source position.
    pub first_error: Option<CompilerError>,
    /// `build-finished` said `success: true`.
    pub success: bool,
}

/// One compiler error: `error[E0308]: mismatched types` at a source position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompilerError {
    /// `error[CODE]: message`.
    pub message: String,
    /// The primary span, with the path made absolute.
    pub location: Option<Location>,
}

impl CargoMessages {
    /// Takes one line of cargo's stdout; returns the text to show the user (rendered
    /// diagnostics, or the line itself when it is not a JSON message), if any.
    pub fn take_line(&mut self, line: &[u8], bin: &str, workspace: &Path) -> Option<Vec<u8>> {
        let Ok(msg) = serde_json::from_slice::<serde_json::Value>(line) else {
            return Some(line.to_vec());
        };
        match msg["reason"].as_str() {
            Some("compiler-message") => {
                self.note_error(&msg["message"], workspace);
                msg["message"]["rendered"]
                    .as_str()
                    .map(|r| r.as_bytes().to_vec())
            }
            Some("compiler-artifact") => {
                let target = &msg["target"];
                let is_bin = target["kind"]
                    .as_array()
                    .is_some_and(|k| k.iter().any(|k| k == "bin"));
                if is_bin
                    && target["name"] == bin
                    && let Some(exe) = msg["executable"].as_str()
                {
                    self.executable = Some(PathBuf::from(exe));
                }
                None
            }
            Some("build-finished") => {
                self.success = msg["success"].as_bool().unwrap_or(false);
                None
            }
            _ => None,
        }
    }

    fn note_error(&mut self, diag: &serde_json::Value, workspace: &Path) {
        if diag["level"] != "error" {
            return;
        }
        let has_place =
            |e: &Option<CompilerError>| e.as_ref().is_some_and(|e| e.location.is_some());
        if has_place(&self.first_error) {
            return;
        }
        let error = compiler_error(diag, workspace);
        if self.first_error.is_none() || error.location.is_some() {
            self.first_error = Some(error);
        }
    }
}

/// The message (with its code) and primary span of a rustc diagnostic.
fn compiler_error(diag: &serde_json::Value, workspace: &Path) -> CompilerError {
    let text = diag["message"].as_str().unwrap_or("unknown error");
    let message = match diag["code"]["code"].as_str() {
        Some(code) => format!("error[{code}]: {text}"),
        None => format!("error: {text}"),
    };
    let primary = diag["spans"]
        .as_array()
        .and_then(|spans| spans.iter().find(|s| s["is_primary"] == true));
    let location = primary.and_then(|span| {
        Some(Location {
            path: workspace.join(span["file_name"].as_str()?),
            line: span["line_start"].as_u64()? as usize,
            column: span["column_start"].as_u64()? as usize,
        })
    });
    CompilerError { message, location }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_target_dir_takes_over_the_newest_unused_sibling() {
        let root = tempfile::tempdir().unwrap();
        let dir = |n: &str| root.path().join(n);
        for (name, age) in [("vmcfg-old", 300), ("vmcfg-new", 100), ("vmcfg-busy", 0)] {
            std::fs::create_dir_all(dir(name).join("release")).unwrap();
            let t = std::time::SystemTime::now() - std::time::Duration::from_secs(age);
            std::fs::File::open(dir(name))
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
        std::fs::create_dir_all(dir("not-a-target-dir")).unwrap();
        // A dir this run builds in is never taken, even when it is the newest.
        assert_eq!(seed_target_dir(&dir("vmcfg-busy")), None);
        assert_eq!(seed_target_dir(&dir("vmcfg-a")), Some(dir("vmcfg-new")));
        assert!(dir("vmcfg-a/release").is_dir() && !dir("vmcfg-new").exists());
        assert_eq!(seed_target_dir(&dir("vmcfg-b")), Some(dir("vmcfg-old")));
        assert_eq!(
            seed_target_dir(&dir("vmcfg-c")),
            None,
            "nothing left to take"
        );
        assert!(dir("vmcfg-busy").is_dir() && dir("not-a-target-dir").is_dir());
        // An existing dir is used as it is.
        assert_eq!(seed_target_dir(&dir("vmcfg-a")), None);
    }

    #[test]
    fn log_dependency_is_found_directly_renamed_or_per_target() {
        let parse = |t: &str| PackageInfo::parse(Path::new("Cargo.toml"), t).unwrap();
        let base = "[package]\nname = \"k\"\n";
        assert!(!parse(base).uses_log);
        assert!(parse(&format!("{base}[dependencies]\nlog = \"0.4\"\n")).uses_log);
        assert!(
            parse(&format!(
                "{base}[dependencies]\nl = {{ package = \"log\", version = \"0.4\" }}\n"
            ))
            .uses_log
        );
        assert!(
            parse(&format!(
                "{base}[target.'cfg(unix)'.dependencies]\nlog.workspace = true\n"
            ))
            .uses_log
        );
        assert!(!parse(&format!("{base}[dev-dependencies]\nlog = \"0.4\"\n")).uses_log);
        let e = PackageInfo::parse(Path::new("Cargo.toml"), "[workspace]\n").unwrap_err();
        assert!(e.message.contains("[package]"), "{e}");
    }

    #[test]
    fn first_error_prefers_one_with_a_position() {
        let ws = Path::new("/ws");
        let mut m = CargoMessages::default();
        let plain = r#"{"reason":"compiler-message","message":{"level":"error","message":"linking failed","code":null,"spans":[],"rendered":"error: linking failed\n"}}"#;
        let placed = r#"{"reason":"compiler-message","message":{"level":"error","message":"mismatched types","code":{"code":"E0308"},"spans":[{"file_name":"src/main.rs","line_start":39,"column_start":5,"is_primary":true}],"rendered":"error[E0308]\n"}}"#;
        let later = placed.replace("39", "50");
        assert_eq!(
            m.take_line(plain.as_bytes(), "k", ws).unwrap(),
            b"error: linking failed\n"
        );
        m.take_line(placed.as_bytes(), "k", ws);
        m.take_line(later.as_bytes(), "k", ws);
        let e = m.first_error.unwrap();
        assert_eq!(e.message, "error[E0308]: mismatched types");
        let at = e.location.unwrap();
        assert_eq!(
            (at.path, at.line, at.column),
            (PathBuf::from("/ws/src/main.rs"), 39, 5)
        );
    }

    #[test]
    fn executable_is_taken_from_the_wanted_bin_only() {
        let ws = Path::new("/ws");
        let mut m = CargoMessages::default();
        let art = |name: &str, kind: &str, exe: &str| {
            format!(
                r#"{{"reason":"compiler-artifact","target":{{"kind":["{kind}"],"name":"{name}"}},"executable":{exe}}}"#
            )
        };
        m.take_line(
            art("build-script-build", "custom-build", "null").as_bytes(),
            "k",
            ws,
        );
        m.take_line(art("other", "bin", "\"/t/other\"").as_bytes(), "k", ws);
        assert_eq!(m.executable, None);
        m.take_line(art("k", "bin", "\"/t/k\"").as_bytes(), "k", ws);
        m.take_line(br#"{"reason":"build-finished","success":true}"#, "k", ws);
        assert_eq!(m.executable, Some(PathBuf::from("/t/k")));
        assert!(m.success);
        assert_eq!(m.take_line(b"not json", "k", ws).unwrap(), b"not json");
    }
}
