//! `check --test-suit DIR`: every TOML of a tgoskits test-suit tree read by the reader its kind
//! needs — `build-<target>.toml` as a build config (with the VM configs it names), `qemu-*.toml`
//! as a QEMU config, `board-*.toml` (board run configs) and the workspace's
//! `.github/workflows/uboot*.toml` (ostool's U-Boot configs of the board jobs) as U-Boot configs
//! ([`crate::board::uboot`]) — and the tree's case layout discovered as `run --test-suit`
//! discovers it. `Cargo.toml` (a case's own Rust package) is not ours to read. The U-Boot
//! configs' `${env:…}` are the board job's variables: one unset here leaves its value unchecked,
//! said in a note. ArceOS' `rust` and `c` groups run through axbuild's own flows, not as cases
//! here: their build files are not read, also said in a note.

use std::path::{Path, PathBuf};

use super::{Target, from_config, from_uboot};
use crate::board::UbootConfig;
use crate::build::board::{BoardConfig, is_generated};
use crate::config::QemuConfig;
use crate::config::grammar::GrammarSpec;
use crate::config::qemu::Warning;
use crate::error::{Error, Location};
use crate::plan::testsuit;

/// What a file in the tree is, by its name (as axbuild tells them apart).
enum Kind {
    Build,
    Run,
    Board,
    Package,
    Other,
}

fn kind(path: &Path) -> Kind {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name == "Cargo.toml" {
        Kind::Package
    } else if name.starts_with("build-") {
        Kind::Build
    } else if name.starts_with("qemu-") {
        Kind::Run
    } else if name.starts_with("board-") {
        Kind::Board
    } else {
        Kind::Other
    }
}

/// The run configs as check targets, and the findings about the build configs and the tree.
pub(super) fn targets(root: &Path) -> Result<(Vec<Target>, Vec<Warning>), Error> {
    if !root.is_dir() {
        return Err(
            Error::usage(format!("--test-suit {}: not a directory", root.display()))
                .help("pass tgoskits' test-suit directory (e.g. --test-suit test-suit)"),
        );
    }
    // The layout: the same discovery `run --test-suit` does (no cases is an error there too).
    testsuit::discover(root, &testsuit::Filter::default())?;
    let workspace = testsuit::workspace_of(root);
    let (mut targets, mut warnings) = (Vec::new(), Vec::new());
    for path in uboot_workflows(&workspace)? {
        let config = UbootConfig::load_deferring_unset(&path, &workspace)?;
        targets.push(from_uboot(&config, path.display().to_string()));
    }
    for path in testsuit::toml_files(root)? {
        match kind(&path) {
            Kind::Package => {}
            Kind::Build if arceos_flow(root, &path).is_some() => {}
            Kind::Build => {
                let mut board = BoardConfig::load(&path)?;
                warnings.append(&mut board.warnings);
                // VM configs under tmp/ are written by axbuild before it builds: not there yet.
                board.vm_configs.retain(|p| !is_generated(&p.path));
                board.resolve_vm_configs(&workspace, &[])?;
            }
            Kind::Run => {
                let config = QemuConfig::load(&path)?;
                let name = path.display().to_string();
                targets.push(from_config(&config, &GrammarSpec::default(), name));
            }
            Kind::Board => {
                let config = UbootConfig::load_deferring_unset(&path, &workspace)?;
                targets.push(from_uboot(&config, path.display().to_string()));
            }
            Kind::Other => warnings.push(Warning {
                location: Location {
                    path: path.clone(),
                    line: 1,
                    column: 1,
                },
                message: "not a test-suit file axbuild reads (build-<target>.toml, \
                          qemu-<arch>.toml, board-<name>.toml, Cargo.toml): nothing in it is \
                          checked or used"
                    .into(),
            }),
        }
    }
    Ok((targets, warnings))
}

/// ArceOS' `rust` and `c` groups, which axbuild runs through flows of their own (one build of
/// its package per feature; C apps, `app-c`), by name (`arceos/test/mod.rs`): what each is.
const ARCEOS_FLOW_GROUPS: [(&str, &str); 2] = [
    ("rust", "one build of its package per feature"),
    ("c", "C apps, `app-c`"),
];

/// A `build-*.toml` of such a group (`test-suit/arceos/c/build-….toml`): discovery leaves the
/// group alone, so its build files are not read as ours; the flow it belongs to, if so.
fn arceos_flow(root: &Path, path: &Path) -> Option<&'static str> {
    let rel = path.strip_prefix(root).ok()?;
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    match parts.as_slice() {
        [os, group, _] if os == "arceos" => ARCEOS_FLOW_GROUPS
            .iter()
            .find(|(g, _)| g == group)
            .map(|(_, flow)| *flow),
        _ => None,
    }
}

/// One note per ArceOS flow group whose build files [`arceos_flow`] left unread, saying why;
/// then, for each build file an axbuild flow here builds, what its build would refuse (the
/// first refusal ends the check, at the file) and notes on what `FEATURES` adds or what could
/// not be checked (see `build::axbuild::check_build_file`).
pub(super) fn notes(root: &Path) -> Result<Vec<Warning>, Error> {
    let files = testsuit::toml_files(root)?;
    let mut notes = arceos_flow_notes(root, &files);
    let workspace = testsuit::workspace_of(root);
    for path in files {
        if !matches!(kind(&path), Kind::Build) || arceos_flow(root, &path).is_some() {
            continue;
        }
        let board = BoardConfig::load(&path)?;
        let package = match testsuit::package_dir(root, &path)
            .and_then(|dir| crate::build::cargo::PackageInfo::read(&dir))
        {
            Ok(p) => p.name,
            Err(e) => {
                notes.push(note_at(
                    &path,
                    format!("its features were not checked against axbuild's rules: {e}"),
                ));
                continue;
            }
        };
        // The case's own Cargo.toml wins, as axbuild's QEMU flows pass it as `--package`; its
        // board tests build the one the file names.
        if let Some(named) = board.package.as_ref().filter(|n| n.name != package) {
            notes.push(Warning {
                message: format!(
                    "`package = \"{}\"` is not what the QEMU cases here build: the `Cargo.toml` \
                     beside this file is `{package}`, which axbuild's QEMU flows (and qemu-test) \
                     build; its board tests build `{}`",
                    named.name, named.name
                ),
                location: named.location.clone(),
            });
        }
        for n in crate::build::axbuild::check_build_file(&board, &package, &workspace)? {
            // One of a workspace's (what FEATURES adds, cargo metadata's failure) said once.
            if !notes.iter().any(|w| w.message == n) {
                notes.push(note_at(&path, n));
            }
        }
    }
    Ok(notes)
}

/// A note at the first line of `path`.
fn note_at(path: &Path, message: String) -> Warning {
    Warning {
        message,
        location: Location {
            path: path.to_path_buf(),
            line: 1,
            column: 1,
        },
    }
}

/// One note per ArceOS flow group whose build files [`arceos_flow`] left unread, saying why.
/// `files` are the tree's TOML files, in [`testsuit::toml_files`]' order.
fn arceos_flow_notes(root: &Path, files: &[PathBuf]) -> Vec<Warning> {
    let mut groups: Vec<(&Path, &str, usize)> = Vec::new();
    for path in files {
        let Some(flow) = arceos_flow(root, path).filter(|_| matches!(kind(path), Kind::Build))
        else {
            continue;
        };
        match groups.last_mut() {
            Some((first, _, n)) if first.parent() == path.parent() => *n += 1,
            _ => groups.push((path, flow, 1)),
        }
    }
    groups
        .into_iter()
        .map(|(first, flow, n)| {
            let message = format!(
                "ArceOS' group {} runs through axbuild's own flow ({flow}), which qemu-test \
                 does not run: its {n} build file(s) are not read",
                first.parent().unwrap_or(root).display()
            );
            note_at(first, message)
        })
        .collect()
}

/// The workspace's `.github/workflows/uboot*.toml` (the board jobs' U-Boot configs), sorted;
/// none when the directory is not there.
fn uboot_workflows(workspace: &Path) -> Result<Vec<PathBuf>, Error> {
    let dir = workspace.join(".github/workflows");
    let list = match std::fs::read_dir(&dir) {
        Ok(list) => list,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::input_io(&dir, "workflow directory", &e)),
    };
    let mut out = Vec::new();
    for item in list {
        let path = item
            .map_err(|e| Error::input_io(&dir, "workflow directory", &e))?
            .path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("uboot") && name.ends_with(".toml") && path.is_file() {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}
