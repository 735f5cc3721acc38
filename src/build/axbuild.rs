//! AxVisor's and ArceOS' test packages' builds as tgoskits' `axbuild` runs them for a build file
//! of the new shape (top-level `target`/`features`/`log`/`vm_configs`/`env`, no `[build]` table,
//! the kernel a workspace member): the Rust-`std` build through the workspace's musl PIE target
//! spec, `build-std` and a linker wrapper, with its pinned nightly (the workspace's
//! `rust-toolchain.toml`, since cargo runs from the workspace root). [`Flow`] says which of
//! axbuild's flows a file goes through.
//!
//! What it reproduces, read from rcore-os/tgoskits `scripts/axbuild/src/` (commit 759e69c) and
//! the `ostool` 0.24.1 crate it drives (`build/cargo_pipeline.rs`):
//! - `axvisor/build/mod.rs`: `-p axvisor --bin axvisor`, `AX_ARCH`, `AX_TARGET`,
//!   `AXVISOR_VM_CONFIGS` (only when there are VM configs), features sorted;
//! - `axvisor/build/{features,metadata}.rs`: features naming a platform of the workspace's
//!   `cargo metadata` refused (see `metadata`);
//! - `build/platform.rs` `apply_makefile_features`: the features of the `FEATURES` variable
//!   join the build file's in every flow, checked as its own are;
//! - `build/info.rs` `BuildInfo`: `AX_LOG`, `SMP` from `max_cpu_num`, `smp` for more than one
//!   CPU, rejected features (`axstd`, dynamic-platform features), the file's `env`;
//!   `toolchain_rustflags_for_features` (`DWARF`, `BACKTRACE`, `stack-protector`);
//! - `build/std_build.rs`: the target `scripts/targets/std/pie/<musl>.json` with
//!   `-Z json-target-spec` and `CARGO_UNSTABLE_JSON_TARGET_SPEC=true`, the C toolchain variables
//!   (`CC_`/`AR_`/`CFLAGS_`/`CXXFLAGS_<musl>`), a generated `--config` file (`build-std =
//!   ["std", "panic_abort"]`, release `lto = false`/`panic = "abort"`, the target's linker and
//!   rustflags), empty `libc.a`/`libunwind.a` and the linker wrapper (see
//!   [`crate::build::axbuild_link`]); the features passed through `ax-std` as
//!   `pass_std_build_nested_features` does;
//! - `arceos/test/{rust_qemu,axtest_qemu}.rs`, `arceos/build/cargo_config.rs`: ArceOS'
//!   test-suit packages through the same std build (no `--bin`, `AX_ARCH`,
//!   `AXVISOR_VM_CONFIGS`); the axtest group's `--cfg axtest` and coverage's flags and feature
//!   (`support/axtest_coverage.rs`) through `append_encoded_rustflags` (`build/info.rs`);
//!   a build file's `package` as the package when the file has no `Cargo.toml` beside it
//!   (`context/{resolve,workspace}.rs`, [`named_package_dir`]);
//! - ostool: `cargo build --config <file> -p … --target … -Z unstable-options --target-dir …
//!   --features … <args> --release --message-format json-render-diagnostics`, run in the
//!   workspace root with `WORKSPACE_FOLDER` set first and the other variables sorted by name,
//!   the `log/release_max_level_<lvl>` feature last when the package depends on `log`.
//!
//! Deliberate differences: the generated files go under the run's out dir (axbuild writes them
//! to `<workspace>/tmp/axbuild/`), `--target-dir` is the per-VM-config-set dir under the out dir
//! (axbuild: `<workspace>/target`), and a VM config list is the patched copies (see
//! `prepare`). `BINDGEN_EXTRA_CLANG_ARGS_<musl>` is derived from the host's musl cross
//! compiler as axbuild derives it ([`StdTarget::bindgen_env`]), so it depends on the host as
//! axbuild's does; without that compiler it is left out (as axbuild does) and a build note says so.

use std::path::{Path, PathBuf};

use toml_edit::{Document, Item};

mod metadata;
mod starry;

use crate::build::board::BoardConfig;
use crate::build::cargo::{CargoRequest, cargo_recipe, target_dir};
use crate::build::recipe::{Artifact, BuildCommand, GeneratedFile, Recipe};
use crate::config::qemu::syntax_error;
use crate::config::source::SourceText;
use crate::error::Error;

/// The package axbuild builds this way (`AXVISOR_PACKAGE`).
pub const PACKAGE: &str = "axvisor";

/// The workspace directory holding axbuild's std target specs.
pub const TARGET_SPEC_DIR: &str = "scripts/targets/std/pie";

/// The musl "identity" axbuild builds a bare-metal target as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StdTarget {
    /// `x86_64-unknown-linux-musl`: the target spec's file stem, cargo's output directory name.
    pub name: &'static str,
    /// `x86_64-linux-musl`: the C cross tools' prefix.
    pub tool_prefix: &'static str,
    /// `AX_ARCH`.
    pub arch: &'static str,
    /// rust-lld's `-m` emulation.
    pub lld_machine: &'static str,
    /// C flags for kernel C code (no FPU/SIMD registers, the kernel's ABI).
    pub c_flags: &'static [&'static str],
}

const STD_TARGETS: [(&str, StdTarget); 4] = [
    (
        "x86_64-",
        StdTarget {
            name: "x86_64-unknown-linux-musl",
            tool_prefix: "x86_64-linux-musl",
            arch: "x86_64",
            lld_machine: "elf_x86_64",
            c_flags: &[
                "-mno-mmx",
                "-mno-sse",
                "-mno-sse2",
                "-mno-sse3",
                "-mno-ssse3",
                "-mno-sse4.1",
                "-mno-sse4.2",
                "-mno-avx",
                "-mno-avx2",
                "-msoft-float",
            ],
        },
    ),
    (
        "aarch64-",
        StdTarget {
            name: "aarch64-unknown-linux-musl",
            tool_prefix: "aarch64-linux-musl",
            arch: "aarch64",
            lld_machine: "aarch64elf",
            c_flags: &["-mgeneral-regs-only"],
        },
    ),
    (
        "riscv64",
        StdTarget {
            name: "riscv64gc-unknown-linux-musl",
            tool_prefix: "riscv64-linux-musl",
            arch: "riscv64",
            lld_machine: "elf64lriscv",
            c_flags: &["-march=rv64gc", "-mabi=lp64d", "-mcmodel=medany"],
        },
    ),
    (
        "loongarch64-",
        StdTarget {
            name: "loongarch64-unknown-linux-musl",
            tool_prefix: "loongarch64-linux-musl",
            arch: "loongarch64",
            lld_machine: "elf64loongarch",
            c_flags: &["-mabi=lp64s", "-msoft-float"],
        },
    ),
];

impl StdTarget {
    /// The musl identity of a bare-metal target triple, by its architecture prefix.
    pub fn for_target(target: &str) -> Option<StdTarget> {
        STD_TARGETS
            .iter()
            .find(|(prefix, _)| target.starts_with(prefix))
            .map(|(_, t)| *t)
    }

    /// The target spec's path as axbuild passes it: relative to the workspace root.
    pub fn spec(&self) -> PathBuf {
        Path::new(TARGET_SPEC_DIR).join(format!("{}.json", self.name))
    }

    /// `CC_<t>`, `AR_<t>`, `CFLAGS_<t>`, `CXXFLAGS_<t>` for the `cc` crate (`<t>` the musl name
    /// with `_`); kernel C code is also built without a stack protector (no runtime for it).
    fn c_toolchain_env(&self) -> Vec<(String, String)> {
        let t = self.name.replace('-', "_");
        let mut flags = self.c_flags.to_vec();
        flags.push("-fno-stack-protector");
        let flags = flags.join(" ");
        vec![
            (format!("CC_{t}"), format!("{}-cc", self.tool_prefix)),
            (format!("AR_{t}"), format!("{}-ar", self.tool_prefix)),
            (format!("CFLAGS_{t}"), flags.clone()),
            (format!("CXXFLAGS_{t}"), flags),
        ]
    }

    /// `BINDGEN_EXTRA_CLANG_ARGS_<t>` as axbuild derives it (`std_c_toolchain_env`,
    /// `musl_toolchain_sysroot`, `musl_toolchain_bindgen_args`) from the musl cross compiler
    /// `<prefix>-cc` found on `path` (a `PATH`-style list): `--target=<prefix>
    /// --sysroot=<its -print-sysroot>`, then, when that sysroot is inside the compiler's
    /// toolchain (the directory above its `bin/`), `--gcc-toolchain=<toolchain>`, `-isystem
    /// <sysroot>/include` and `-isystem <toolchain>/lib/gcc/<prefix>/<version>/include` where
    /// they are directories, then the target's C flags. `Err` says why there is none: no such
    /// compiler, or it names no sysroot; axbuild leaves the variable out then too.
    pub fn bindgen_env(&self, path: Option<&std::ffi::OsStr>) -> Result<(String, String), String> {
        let cc = format!("{}-cc", self.tool_prefix);
        let found = path
            .and_then(|p| crate::host::which(p, &cc))
            .ok_or_else(|| format!("no {cc} on PATH"))?;
        let out = std::process::Command::new(&found)
            .arg("-print-sysroot")
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .map_err(|e| format!("{} -print-sysroot: {e}", found.display()))?;
        let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success() || sysroot.is_empty() {
            return Err(format!(
                "{} -print-sysroot names no sysroot",
                found.display()
            ));
        }
        let mut args = vec![
            format!("--target={}", self.tool_prefix),
            format!("--sysroot={sysroot}"),
        ];
        let root = found.parent().and_then(Path::parent);
        let inside = |root: &Path| {
            let canonical = |p: &Path| std::fs::canonicalize(p).ok();
            matches!((canonical(Path::new(&sysroot)), canonical(root)),
                (Some(s), Some(r)) if s.starts_with(&r))
        };
        if let Some(root) = root.filter(|r| inside(r)) {
            args.push(format!("--gcc-toolchain={}", root.display()));
            let include = Path::new(&sysroot).join("include");
            if include.is_dir() {
                args.extend(["-isystem".into(), include.display().to_string()]);
            }
            let gcc = root.join("lib/gcc").join(self.tool_prefix);
            // The first version directory with an include/, in directory order, as axbuild.
            let gcc_include = std::fs::read_dir(gcc).ok().and_then(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path().join("include"))
                    .find(|p| p.is_dir())
            });
            if let Some(dir) = gcc_include {
                args.extend(["-isystem".into(), dir.display().to_string()]);
            }
        }
        args.extend(self.c_flags.iter().map(|f| f.to_string()));
        let key = format!("BINDGEN_EXTRA_CLANG_ARGS_{}", self.name.replace('-', "_"));
        Ok((key, args.join(" ")))
    }
}

/// Where a run keeps axbuild's generated build files: `<target root>/axbuild/`.
pub fn support_dir(target_root: &Path) -> PathBuf {
    target_root.join("axbuild")
}

/// Which of axbuild's build flows a build file of the new shape goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// `axvisor test qemu`/`axvisor build` (`axvisor/build/mod.rs`): the package `axvisor`,
    /// `--bin axvisor`, `AX_ARCH` and `AXVISOR_VM_CONFIGS`, AxVisor's own feature checks.
    Axvisor,
    /// `arceos test qemu` for a case of a `test-suit/arceos/<group>/` other than its `rust` and
    /// `c` groups (`arceos/test/{generic_qemu,axtest_qemu,rust_qemu}.rs`): the case's own
    /// package through the same std build, no `--bin`, no `AX_ARCH`. The `axtest` group adds
    /// its test rustflags (and coverage's, when the build file's `env` turns it on).
    Arceos {
        /// The `axtest` group.
        axtest: bool,
    },
    /// `starry test qemu` (`starry/test/qemu_run.rs`, `starry/build.rs`): the package `starryos`
    /// as a freestanding PIE, not the std build (see [`starry`]).
    Starry,
}

impl Flow {
    /// The flow for `req`: AxVisor and StarryOS by package name, ArceOS and StarryOS by the
    /// build file's place in a `test-suit/arceos/<group>/` or `test-suit/starryos/` tree (as
    /// axbuild picks the flow from the tree it walks);
    /// `None` for the older xtask shape and for every other package.
    pub fn of(req: &CargoRequest<'_>) -> Option<Flow> {
        Flow::for_package(req.board, &req.package.name)
    }

    /// [`Flow::of`] for `board` built as the package named `package`.
    pub fn for_package(board: &BoardConfig, package: &str) -> Option<Flow> {
        if !board.axbuild {
            return None;
        }
        if package == PACKAGE {
            return Some(Flow::Axvisor);
        }
        if package == starry::PACKAGE {
            return Some(Flow::Starry);
        }
        match suite_place(&board.path)? {
            ("starryos", _) => Some(Flow::Starry),
            ("arceos", group) if group != "rust" && group != "c" => Some(Flow::Arceos {
                axtest: group == "axtest",
            }),
            _ => None,
        }
    }
}

/// `(<os>, <group>)` of a file under `…/test-suit/<os>/<group>/…`.
fn suite_place(path: &Path) -> Option<(&str, &str)> {
    let parts: Vec<&str> = path
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect();
    let at = parts.iter().rposition(|p| *p == "test-suit")?;
    // The group must be a directory: the build file sits below it.
    (parts.len() > at + 3).then(|| (parts[at + 1], parts[at + 2]))
}

/// The cargo build of a board config: axbuild's (below) for a build file of the new shape that
/// one of its flows builds ([`Flow::of`]); else the plain one of [`cargo_recipe`] (the older
/// xtask layout, and other packages of the new shape).
pub fn board_recipe(req: &CargoRequest<'_>) -> Result<Recipe, Error> {
    match Flow::of(req) {
        Some(flow) => recipe(req, &target_dir(req)?, flow),
        None => cargo_recipe(req),
    }
}

/// `--cfg axtest`: what ArceOS' axtest group (`ARCEOS_AXTEST_RUSTFLAGS`) adds to its builds.
const AXTEST_RUSTFLAGS: [&str; 4] = ["--cfg", "axtest", "--check-cfg", "cfg(axtest)"];

/// What axtest coverage (`support/axtest_coverage.rs`, on when the build file's `env` has a
/// truthy `AXTEST_COVERAGE`) adds to the rustflags; it adds the `axtest/coverage` feature too.
const AXTEST_COVERAGE_RUSTFLAGS: [&str; 6] = [
    "--cfg",
    "axtest_coverage",
    "--check-cfg",
    "cfg(axtest_coverage)",
    "-Cinstrument-coverage",
    "-Zno-profiler-runtime",
];

/// The cargo command, environment and generated files of axbuild's build of `req.board`.
/// Reads the workspace's manifests (the package's and `ax-std`'s features), writes nothing.
fn recipe(req: &CargoRequest<'_>, target_dir: &Path, flow: Flow) -> Result<Recipe, Error> {
    let board = req.board;
    let std = StdTarget::for_target(&board.target).ok_or_else(|| {
        Error::config(format!(
            "axbuild has no std build for the target `{}`",
            board.target
        ))
        .at_file(&board.path)
        .help("use one of x86_64-unknown-none, aarch64-unknown-none-softfloat, riscv64gc-unknown-none-elf, loongarch64-unknown-none-softfloat")
    })?;
    let (board_features, mut notes) = checked_features(board, flow, req.workspace)?;
    if flow == Flow::Starry {
        return starry::recipe(req, target_dir, std, board_features, notes);
    }
    let spec = std.spec();
    if !req.workspace.join(&spec).is_file() {
        return Err(Error::config(format!(
            "the workspace has no {}: axbuild builds {} through that target spec",
            spec.display(),
            board.target
        ))
        .at_file(&board.path)
        .help(format!(
            "run from a tgoskits checkout that has {TARGET_SPEC_DIR}/ (workspace: {}), or build \
             the kernel your own way with --build-command/--artifact",
            req.workspace.display()
        )));
    }
    let axstd = axstd_features(req.workspace)?;
    let mut features = cargo_features(&board_features, &req.package.features, &axstd);

    let mut env = base_env(board);
    let mut set = |k: &str, v: String| set_var(&mut env, k, v);
    set("CARGO_UNSTABLE_JSON_TARGET_SPEC", "true".into());
    for (k, v) in std.c_toolchain_env() {
        set(&k, v);
    }
    use crate::environment::Lookup;
    match std.bindgen_env(crate::environment::process().get_os("PATH").as_deref()) {
        Ok((k, v)) => set(&k, v),
        Err(why) => notes.push(format!(
            "BINDGEN_EXTRA_CLANG_ARGS_{} is not set: {why} (axbuild derives it from that \
             compiler's -print-sysroot and leaves it out without one too; a crate that runs \
             bindgen for this target then gets no musl headers)",
            std.name.replace('-', "_")
        )),
    }
    set("AX_TARGET", board.target.clone());
    let mut unset = Vec::new();
    if flow == Flow::Axvisor {
        set("AX_ARCH", std.arch.into());
        let joined: Vec<String> = req
            .vm_configs
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        if joined.is_empty() {
            // AxVisor's build.rs reads an empty value as one empty path (and fails); axbuild
            // leaves the variable out, and so must a value in the caller's environment.
            unset.push("AXVISOR_VM_CONFIGS".to_string());
        } else {
            set("AXVISOR_VM_CONFIGS", joined.join(":"));
        }
    }
    // The target's rustflags (in the --config file) are decided before the test flows add
    // theirs, as axbuild does.
    let rustflags = rustflags(&env, &features);
    if flow == (Flow::Arceos { axtest: true }) {
        axtest_flags(&mut env, None, &mut features);
    }
    let env = ostool_env(env, req.workspace);

    let dir = support_dir(req.target_root);
    let fake_libs = dir.join("std-libs").join(std.name).join("release");
    let wrapper = dir.join(format!("linker-{}-dynamic.sh", std.name));
    let config = dir.join(format!("config-{}-dynamic.toml", std.name));
    let generated = vec![
        GeneratedFile {
            path: config.clone(),
            contents: cargo_config(std.name, &wrapper, &rustflags),
            executable: false,
            purpose:
                "cargo --config: build-std, release profile, the target's linker and rustflags"
                    .into(),
        },
        GeneratedFile {
            path: wrapper,
            contents: crate::build::axbuild_link::wrapper_script(std.lld_machine, &fake_libs)?,
            executable: true,
            purpose: format!(
                "linker wrapper: rust-lld -flavor gnu -m {} with the crate's linker.x",
                std.lld_machine
            ),
        },
        GeneratedFile {
            path: fake_libs.join("libc.a"),
            contents: EMPTY_ARCHIVE.into(),
            executable: false,
            purpose: "empty archive for -lc".into(),
        },
        GeneratedFile {
            path: fake_libs.join("libunwind.a"),
            contents: EMPTY_ARCHIVE.into(),
            executable: false,
            purpose: "empty archive for -lunwind".into(),
        },
    ];

    push_log_feature(req, &mut features);
    let mut args: Vec<String> = vec![
        "build".into(),
        "--config".into(),
        config.to_string_lossy().into_owned(),
        "-p".into(),
        req.package.name.clone(),
        "--target".into(),
        spec.to_string_lossy().into_owned(),
        "-Z".into(),
        "unstable-options".into(),
        "--target-dir".into(),
        target_dir.to_string_lossy().into_owned(),
    ];
    if !features.is_empty() {
        args.extend(["--features".into(), features.join(",")]);
    }
    args.extend(["-Z", "json-target-spec"].map(String::from));
    if flow == Flow::Axvisor {
        args.extend(["--bin".into(), req.package.bin.clone()]);
    }
    if req.release {
        args.push("--release".into());
    }
    args.extend(["--message-format".into(), "json-render-diagnostics".into()]);
    Ok(Recipe {
        command: Some(BuildCommand {
            program: "cargo".into(),
            args,
            env,
            unset,
            cwd: req.workspace.to_path_buf(),
        }),
        artifact: Artifact::CargoBin(req.package.bin.clone()),
        generated,
        notes,
        post: Vec::new(),
    })
}

/// The features of `board`'s build in `flow` as axbuild assembles and checks them before it
/// builds: `FEATURES` applied ([`with_makefile_features`]), every refusal of [`check_features`],
/// and AxVisor's of features naming a platform of the workspace ([`check_platform_features`]);
/// with the notes on what `FEATURES` added or what could not be checked.
fn checked_features(
    board: &BoardConfig,
    flow: Flow,
    workspace: &Path,
) -> Result<(Vec<String>, Vec<String>), Error> {
    let (features, mut notes) =
        with_makefile_features(board, crate::environment::axbuild_features().as_deref())?;
    check_features(board, &features, flow)?;
    if flow == Flow::Axvisor {
        check_platform_features(board, &features, workspace, &mut notes)?;
    }
    Ok((features, notes))
}

/// The directory of the package a build file's `package` names (ArceOS' board and axtest
/// builds), as axbuild resolves it when no `--package` is given (`context/resolve.rs`
/// `prepare_arceos_request`: the CLI's package, else the build file's; `context/workspace.rs`:
/// the workspace member of that name in `cargo metadata`). `None` when the file names none.
/// axbuild's QEMU test flows pass the case's own package (its `Cargo.toml`) as the CLI's, so a
/// caller with that package uses it instead.
pub fn named_package_dir(board: &BoardConfig, workspace: &Path) -> Result<Option<PathBuf>, Error> {
    let Some(package) = &board.package else {
        return Ok(None);
    };
    metadata::member_dir(workspace, &package.name)
        .map(Some)
        .map_err(|why| {
            Error::config(format!(
                "`package = \"{}\"` names no package of the workspace: {why}",
                package.name
            ))
            .at(package.location.clone())
            .help(
                "name a package of the workspace's members (its `[package] name`), or run \
                 from the workspace root that has it",
            )
        })
}

/// What `check` learns of a build file of the new shape that `package` (its package's name)
/// builds: the refusals axbuild makes of its features before it builds (an error at the file, or
/// naming `FEATURES`), and notes on what `FEATURES` adds or what could not be checked. Nothing
/// for a file no axbuild flow here builds.
pub fn check_build_file(
    board: &BoardConfig,
    package: &str,
    workspace: &Path,
) -> Result<Vec<String>, Error> {
    match Flow::for_package(board, package) {
        Some(flow) => Ok(checked_features(board, flow, workspace)?.1),
        None => Ok(Vec::new()),
    }
}

/// axbuild's `FEATURES` (`build/platform.rs` `parse_makefile_features`): the names between
/// commas and blanks, each once, in order.
fn makefile_features(value: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in value.split(|c: char| c == ',' || c.is_whitespace()) {
        if !f.is_empty() && !out.iter().any(|o| o == f) {
            out.push(f.to_string());
        }
    }
    out
}

/// The build file's features with `FEATURES` (the variable's value, `None` when unset) applied
/// as axbuild's `apply_makefile_features` does for every flow, before anything else reads them:
/// each one refused as a build file's would be (`validate_feature`), named without `ax-std/`,
/// added when not there yet. Also the note `--dry-run` shows when the variable adds any.
fn with_makefile_features(
    board: &BoardConfig,
    value: Option<&str>,
) -> Result<(Vec<String>, Vec<String>), Error> {
    let mut features = board.features.clone();
    let Some(value) = value else {
        return Ok((features, Vec::new()));
    };
    let mut added = Vec::new();
    for f in makefile_features(value) {
        if let Some(why) = refused_everywhere(&f) {
            return Err(refusal(board, &f, why, true));
        }
        let f = normalize(&f).to_string();
        if !features.contains(&f) {
            features.push(f.clone());
            added.push(f);
        }
    }
    let notes = match added.is_empty() {
        true => Vec::new(),
        false => vec![format!(
            "FEATURES={} (environment) adds {} to the build file's features, as axbuild does",
            crate::shell::quote(value),
            added.join(", ")
        )],
    };
    Ok((features, notes))
}

/// The environment every flow starts from (`BuildInfo::into_base_cargo_config_with_log`): the
/// build file's `env`, `AX_LOG` from `log`, `SMP` from `max_cpu_num`.
fn base_env(board: &BoardConfig) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    for (k, v) in &board.env {
        set_var(&mut env, k, v.clone());
    }
    if let Some(level) = board.log {
        set_var(&mut env, "AX_LOG", level.lower().into());
    }
    if let Some(n) = board.max_cpu_num {
        set_var(&mut env, "SMP", n.to_string());
    }
    env
}

/// Sets `key` (replacing an earlier value).
fn set_var(env: &mut Vec<(String, String)>, key: &str, value: String) {
    env.retain(|(k, _)| k != key);
    env.push((key.to_string(), value));
}

/// The environment as ostool gives it to cargo: `WORKSPACE_FOLDER` first, then the rest sorted.
fn ostool_env(mut env: Vec<(String, String)>, workspace: &Path) -> Vec<(String, String)> {
    env.sort();
    env.insert(
        0,
        (
            "WORKSPACE_FOLDER".into(),
            workspace.to_string_lossy().into_owned(),
        ),
    );
    env
}

/// ostool's `log/[release_]max_level_<lvl>` feature, last, when the package depends on `log`.
fn push_log_feature(req: &CargoRequest<'_>, features: &mut Vec<String>) {
    if let (Some(level), true) = (req.board.log, req.package.uses_log) {
        let prefix = if req.release { "release_" } else { "" };
        features.push(format!("log/{prefix}max_level_{}", level.lower()));
    }
}

/// What a test flow adds for axtest: `--cfg axtest` (ArceOS' axtest group always, StarryOS when
/// the build file's `env` has a truthy `AXTEST`; the caller decides), then, when `env` has a
/// truthy `AXTEST_COVERAGE` (`support/axtest_coverage.rs`), the `axtest/coverage` feature and
/// coverage's rustflags; each through [`append_rustflags`].
fn axtest_flags(
    env: &mut Vec<(String, String)>,
    mut inline: Option<&mut Vec<String>>,
    features: &mut Vec<String>,
) {
    append_rustflags(env, inline.as_deref_mut(), &AXTEST_RUSTFLAGS);
    coverage_flags(env, inline, features);
}

/// Coverage's feature and rustflags when `env` turns it on (`axtest_coverage::prepare_cargo`).
fn coverage_flags(
    env: &mut Vec<(String, String)>,
    inline: Option<&mut Vec<String>>,
    features: &mut Vec<String>,
) {
    if truthy(env, "AXTEST_COVERAGE") {
        if !features.iter().any(|f| f == "axtest/coverage") {
            features.push("axtest/coverage".into());
        }
        append_rustflags(env, inline, &AXTEST_COVERAGE_RUSTFLAGS);
    }
}

/// axbuild's `append_encoded_rustflags`: `flags` join the inline `--config target.….rustflags=`
/// argument's list (`inline`, the freestanding build's) unless the environment already has
/// `CARGO_ENCODED_RUSTFLAGS` (cargo takes its rustflags from one source only); else, and for a
/// std build (whose rustflags are in the `--config` file, not inline), they are appended to
/// `CARGO_ENCODED_RUSTFLAGS`. Either way not when that sequence is there already.
fn append_rustflags(
    env: &mut Vec<(String, String)>,
    inline: Option<&mut Vec<String>>,
    flags: &[&str],
) {
    if let Some(list) = inline
        && !env.iter().any(|(k, _)| k == "CARGO_ENCODED_RUSTFLAGS")
    {
        if !list.windows(flags.len()).any(|w| w == flags) {
            list.extend(flags.iter().map(|f| f.to_string()));
        }
        return;
    }
    append_encoded_rustflags(env, flags);
}

/// Appends `flags` to `CARGO_ENCODED_RUSTFLAGS` (0x1f-separated) unless that sequence is there
/// already. Cargo then takes its rustflags from this variable only.
fn append_encoded_rustflags(env: &mut Vec<(String, String)>, flags: &[&str]) {
    const KEY: &str = "CARGO_ENCODED_RUSTFLAGS";
    let i = match env.iter().position(|(k, _)| k == KEY) {
        Some(i) => i,
        None => {
            env.push((KEY.into(), String::new()));
            env.len() - 1
        }
    };
    let value = &mut env[i].1;
    let present: Vec<&str> = value.split('\x1f').collect();
    if present.windows(flags.len()).any(|w| w == flags) {
        return;
    }
    if !value.is_empty() {
        value.push('\x1f');
    }
    value.push_str(&flags.join("\x1f"));
}

/// An archive with no members, as `ar crs` writes it.
const EMPTY_ARCHIVE: &str = "!<arch>\n";

/// Why axbuild's `BuildInfo::validate_feature` refuses a feature in every flow (and in
/// `FEATURES`): the removed `axstd` alias and the removed dynamic-platform features.
fn refused_everywhere(f: &str) -> Option<&'static str> {
    if f == "axstd" || f.starts_with("axstd/") {
        return Some("the removed `axstd` alias; use the declared feature name");
    }
    matches!(
        f,
        "dyn-plat"
            | "plat-dyn"
            | "axplat-dyn"
            | "ax-hal/plat-dyn"
            | "ax-std/plat-dyn"
            | "axvm/plat-dyn"
            | "ax-driver/plat-dyn"
    )
    .then_some("dynamic platform selection is automatic")
}

/// [`refusal`] for a feature of the build file with `FEATURES` applied: from `FEATURES` when
/// the build file itself does not name it.
fn refused(board: &BoardConfig, feature: &str, why: &str) -> Error {
    let from_env = !board.features.iter().any(|f| f == feature);
    refusal(board, feature, why, from_env)
}

/// The error for a refused feature: at the build file, or in `FEATURES` when it came from there.
fn refusal(board: &BoardConfig, feature: &str, why: &str, from_env: bool) -> Error {
    if from_env {
        return Error::config(format!(
            "feature `{feature}` in the FEATURES environment variable: {why}"
        ))
        .help(format!(
            "remove `{feature}` from FEATURES (tgoskits' axbuild refuses it too)"
        ));
    }
    Error::config(format!("feature `{feature}` in `features`: {why}"))
        .at_file(&board.path)
        .help(format!(
            "remove `{feature}` from `features` (tgoskits' axbuild refuses it too)"
        ))
}

/// The features axbuild rejects among `features` (the build file's with `FEATURES` applied), as
/// errors at the build file (or naming `FEATURES` for one only that added): every flow's
/// (`BuildInfo::validate_features`), AxVisor's own (`reject_unsupported_nested_platform_
/// features`: any `axplat-dyn/…`, `vmx`/`svm`) and StarryOS' (`std-compat`).
fn check_features(board: &BoardConfig, features: &[String], flow: Flow) -> Result<(), Error> {
    let fail = |feature: &str, why: &str| Err(refused(board, feature, why));
    // A feature by its own name, whichever crate's it is (`ax-std/tls` is `tls`).
    let named = |m: &str| features.iter().find(|f| f.rsplit('/').next() == Some(m));
    if let (Some(f), Some(_)) = (named("uspace"), named("tls")) {
        return fail(
            f,
            "`uspace` and `tls` select incompatible CPU-local register ownership modes",
        );
    }
    if flow == Flow::Starry
        && let Some(f) = named("std-compat")
    {
        // `reject_freestanding_std_compat`.
        return fail(
            f,
            "StarryOS is built freestanding (no std), which `std-compat` needs",
        );
    }
    let axvisor = flow == Flow::Axvisor;
    for f in features {
        if let Some(why) = refused_everywhere(f) {
            return fail(f, why);
        }
        if axvisor && f.starts_with("axplat-dyn/") {
            return fail(f, "dynamic platform selection is automatic");
        }
        if axvisor && (f == "vmx" || f == "svm") {
            return fail(
                f,
                "AxVisor selects the x86 virtualization backend from the CPU at run time",
            );
        }
    }
    Ok(())
}

/// AxVisor's refusal of features that name a platform (`reject_unsupported_nested_platform_
/// features`, with `platform_feature_names` over the workspace's `cargo metadata`): `ax-std/<p>`
/// or `<p>` for a platform `<p>` a workspace package declares in `[package.metadata.axplat]`.
/// When `cargo metadata` gives no answer the check is not made, and a note says so (the build
/// then meets the same broken workspace).
fn check_platform_features(
    board: &BoardConfig,
    features: &[String],
    workspace: &Path,
    notes: &mut Vec<String>,
) -> Result<(), Error> {
    let platforms = match metadata::platforms(workspace) {
        Ok(p) => p,
        Err(why) => {
            notes.push(format!(
                "AxVisor's check of features that name a platform was not made: {why} (axbuild \
                 stops there)"
            ));
            return Ok(());
        }
    };
    for f in features {
        if let Some(p) = metadata::named_platform(f, &platforms) {
            return Err(refused(
                board,
                f,
                &format!(
                    "it names the platform `{}` (package `{}`); AxVisor's build files select \
                     platforms through ax-hal's features, not ax-std's or a platform's own",
                    p.name, p.package
                ),
            ));
        }
    }
    Ok(())
}

/// `ax-std/<f>` → `<f>`: the std build names ax-std's own features bare.
fn normalize(feature: &str) -> &str {
    feature.strip_prefix("ax-std/").unwrap_or(feature)
}

/// ax-std's features that a build file may name bare (axbuild's list).
const AXSTD_KNOWN: [&str; 33] = [
    "smp",
    "fp-simd",
    "uspace",
    "hv",
    "irq",
    "ipi",
    "alloc",
    "paging",
    "dma",
    "tls",
    "multitask",
    "lockdep",
    "task-ext",
    "tracepoint-hooks",
    "sched-rr",
    "sched-cfs",
    "stack-guard-page",
    "stack-protector",
    "fs",
    "ext4fs",
    "fatfs",
    "net",
    "vsock",
    "aic8800-wifi",
    "dns",
    "display",
    "input",
    "usb",
    "rtc",
    "backtrace",
    "dwarf",
    "ext-ld",
    "wake-ipi",
];

/// Whether a feature is one ax-std may provide (checked against ax-std's own features).
fn is_axstd_feature(feature: &str) -> bool {
    feature == "ax-std"
        || ["ax-hal/", "ax-driver/", "ax-runtime/"]
            .iter()
            .any(|p| feature.starts_with(p))
        || AXSTD_KNOWN.contains(&feature)
        || feature == "std-compat"
}

/// The cargo features of the std build: the build file's (`smp` already added for more than
/// one CPU), each one that ax-std provides passed as `ax-std/<name>` (`ax-hal/x` and
/// `ax-driver/x` by their bare name) and kept on the package only when the package declares it;
/// log-level features dropped (the log level is `log`'s); sorted.
pub fn cargo_features(
    features: &[String],
    package_features: &[String],
    axstd_features: &[String],
) -> Vec<String> {
    let mut out = Vec::new();
    for feature in features {
        let feature = normalize(feature);
        let log_level = feature.starts_with("log-level-")
            && ["off", "error", "warn", "info", "debug", "trace"]
                .contains(&&feature["log-level-".len()..]);
        if feature == "ax-std" || log_level {
            continue;
        }
        if !is_axstd_feature(feature) {
            out.push(feature.to_string());
            continue;
        }
        if feature == "arceos" || package_features.iter().any(|f| f == feature) {
            out.push(feature.to_string());
        }
        let bare = feature
            .strip_prefix("ax-hal/")
            .or_else(|| feature.strip_prefix("ax-driver/"))
            .unwrap_or(feature);
        if axstd_features.iter().any(|f| f == bare) {
            out.push(format!("ax-std/{bare}"));
        } else if feature.contains('/') {
            out.push(feature.to_string());
        }
    }
    out.sort();
    out.dedup();
    out
}

/// axbuild's `env_truthy`: the variable is set to `y`, `yes`, `1`, `true` or `on` (any case,
/// surrounding blanks ignored).
fn truthy(env: &[(String, String)], key: &str) -> bool {
    env.iter().any(|(k, v)| {
        k == key
            && matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "y" | "yes" | "1" | "true" | "on"
            )
    })
}

/// The target's rustflags: `DWARF` (truthy in the build environment) keeps full debug info,
/// `BACKTRACE` or `DWARF` forces frame pointers, a `stack-protector` feature turns it on.
fn rustflags(env: &[(String, String)], features: &[String]) -> Vec<String> {
    let mut flags = Vec::new();
    let dwarf = truthy(env, "DWARF");
    if dwarf {
        flags.extend(["-Cdebuginfo=2", "-Cstrip=none"]);
    }
    if dwarf || truthy(env, "BACKTRACE") {
        flags.push("-Cforce-frame-pointers=yes");
    }
    let protector = [
        "stack-protector",
        "ax-std/stack-protector",
        "starry-kernel/stack-protector",
    ];
    if features.iter().any(|f| protector.contains(&f.as_str())) {
        flags.push("-Zstack-protector=strong");
    }
    flags.into_iter().map(String::from).collect()
}

/// The `--config` file: build `std` and `panic_abort` from source, release without LTO and
/// with `panic = "abort"`, and the musl target's linker (the wrapper) and rustflags.
fn cargo_config(target: &str, linker: &Path, rustflags: &[String]) -> String {
    let mut doc = toml_edit::DocumentMut::new();
    let strings = |v: &[&str]| {
        let mut a = toml_edit::Array::new();
        a.extend(v.iter().copied());
        toml_edit::value(a)
    };
    doc["unstable"] = toml_edit::table();
    doc["unstable"]["build-std"] = strings(&["std", "panic_abort"]);
    doc["unstable"]["build-std-features"] = strings(&[]);
    doc["profile"] = toml_edit::table();
    doc["profile"]["release"] = toml_edit::table();
    doc["profile"]["release"]["lto"] = toml_edit::value(false);
    doc["profile"]["release"]["panic"] = toml_edit::value("abort");
    if let Some(t) = doc["profile"].as_table_mut() {
        t.set_implicit(true);
    }
    let mut target_table = toml_edit::Table::new();
    target_table["linker"] = toml_edit::value(linker.to_string_lossy().into_owned());
    let flags: Vec<&str> = rustflags.iter().map(String::as_str).collect();
    target_table["rustflags"] = strings(&flags);
    let mut targets = toml_edit::Table::new();
    targets.set_implicit(true);
    targets.insert(target, Item::Table(target_table));
    doc["target"] = Item::Table(targets);
    doc.to_string()
}

/// ax-std's declared features, from the manifest the workspace's `[workspace.dependencies]`
/// names for it (axbuild asks `cargo metadata` for the workspace member `ax-std`).
fn axstd_features(workspace: &Path) -> Result<Vec<String>, Error> {
    let root = workspace.join("Cargo.toml");
    let text = crate::config::source::read_input(&root, "workspace Cargo.toml")?;
    let source = SourceText::new(&root, text.clone());
    let doc = Document::parse(text.as_str()).map_err(|e| syntax_error(&source, &e))?;
    let path = doc
        .get("workspace")
        .and_then(|w| w.get("dependencies")?.get("ax-std")?.get("path")?.as_str())
        .map(PathBuf::from)
        .ok_or_else(|| {
            Error::config("the workspace's Cargo.toml names no path for `ax-std`")
                .at_file(&root)
                .help(
                    "axbuild's std build passes features through the workspace's ax-std \
                     package: add `ax-std = { path = \"…\" }` to [workspace.dependencies]",
                )
        })?;
    let manifest = workspace.join(path).join("Cargo.toml");
    let text = crate::config::source::read_input(&manifest, "ax-std's Cargo.toml")?;
    let source = SourceText::new(&manifest, text.clone());
    let doc = Document::parse(text.as_str()).map_err(|e| syntax_error(&source, &e))?;
    Ok(crate::build::cargo::feature_names(doc.as_table()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// axbuild's `pass_std_build_nested_features` on AxVisor's riscv64 QEMU file.
    #[test]
    fn features_pass_through_ax_std() {
        let package = strings(&["default", "fs", "sstc", "stack-protector"]);
        let axstd = strings(&["fs", "smp", "virtio-blk", "stack-protector", "irq"]);
        let got = cargo_features(
            &strings(&[
                "ax-driver/virtio-blk",
                "fs",
                "sstc",
                "smp",
                "ax-std/irq",
                "log-level-info",
                "ax-std",
            ]),
            &package,
            &axstd,
        );
        assert_eq!(
            got,
            [
                "ax-std/fs",
                "ax-std/irq",
                "ax-std/smp",
                "ax-std/virtio-blk",
                "fs",
                "sstc"
            ]
        );
        // A driver ax-std does not re-export stays as written; ax-hal/x by its bare name.
        let got = cargo_features(
            &strings(&["ax-driver/rockchip-soc", "ax-hal/irq"]),
            &[],
            &axstd,
        );
        assert_eq!(got, ["ax-driver/rockchip-soc", "ax-std/irq"]);
    }

    #[test]
    fn rustflags_follow_dwarf_backtrace_and_stack_protector() {
        let env = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        assert!(rustflags(&env("DWARF", "n"), &[]).is_empty());
        assert_eq!(
            rustflags(&env("DWARF", " Yes"), &strings(&["ax-std/stack-protector"])),
            [
                "-Cdebuginfo=2",
                "-Cstrip=none",
                "-Cforce-frame-pointers=yes",
                "-Zstack-protector=strong"
            ]
        );
        assert_eq!(
            rustflags(&env("BACKTRACE", "on"), &[]),
            ["-Cforce-frame-pointers=yes"]
        );
    }

    #[test]
    fn cargo_config_is_what_cargo_reads() {
        let text = cargo_config(
            "x86_64-unknown-linux-musl",
            Path::new("/o/linker.sh"),
            &strings(&["-Cforce-frame-pointers=yes"]),
        );
        let doc: toml_edit::DocumentMut = text.parse().unwrap();
        assert_eq!(
            doc["unstable"]["build-std"].to_string().trim(),
            r#"["std", "panic_abort"]"#
        );
        assert_eq!(doc["profile"]["release"]["panic"].as_str(), Some("abort"));
        assert_eq!(doc["profile"]["release"]["lto"].as_bool(), Some(false));
        let t = &doc["target"]["x86_64-unknown-linux-musl"];
        assert_eq!(t["linker"].as_str(), Some("/o/linker.sh"));
        assert_eq!(
            t["rustflags"].to_string().trim(),
            r#"["-Cforce-frame-pointers=yes"]"#
        );
        assert!(
            text.contains("[target.x86_64-unknown-linux-musl]"),
            "{text}"
        );
    }

    /// A workspace manifest that is not TOML is said to be so, at its place (not "names no
    /// path for `ax-std`"); so is ax-std's own.
    #[test]
    fn a_manifest_that_is_not_toml_is_a_syntax_error_at_its_line() {
        let ws = tempfile::tempdir().unwrap();
        let root = ws.path().join("Cargo.toml");
        std::fs::write(
            &root,
            "[workspace]\nmembers = [\"a\"\n[workspace.dependencies]\n",
        )
        .unwrap();
        let e = axstd_features(ws.path()).unwrap_err();
        assert!(e.message.starts_with("invalid TOML"), "{e}");
        let at = e.location.clone().unwrap();
        assert_eq!((at.path.as_path(), at.line), (root.as_path(), 3), "{e}");
        std::fs::write(
            &root,
            "[workspace.dependencies]\nax-std = { path = \"std\" }\n",
        )
        .unwrap();
        std::fs::create_dir(ws.path().join("std")).unwrap();
        std::fs::write(ws.path().join("std/Cargo.toml"), "[features\n").unwrap();
        let e = axstd_features(ws.path()).unwrap_err();
        assert!(e.message.starts_with("invalid TOML"), "{e}");
        assert_eq!(e.location.unwrap().line, 1);
    }

    fn board(features: &str) -> BoardConfig {
        BoardConfig::parse(
            Path::new("/ws/build-aarch64-unknown-none-softfloat.toml"),
            &format!("features = [{features}]\nlog = \"Info\"\n"),
        )
        .unwrap()
    }

    /// `parse_makefile_features`: commas and blanks separate, empty entries and repeats go.
    #[test]
    fn makefile_features_split_at_commas_and_blanks() {
        assert_eq!(
            makefile_features(" fs,,net  fs\tax-std/irq,"),
            ["fs", "net", "ax-std/irq"]
        );
        assert!(makefile_features(" , ").is_empty());
    }

    /// `apply_makefile_features`: `ax-std/x` added as `x`, one the file has already not twice,
    /// the refused ones refused naming FEATURES; the note names what was added.
    #[test]
    fn features_from_the_environment_are_applied_as_axbuild_does() {
        let b = board(r#""fs""#);
        let (features, notes) =
            with_makefile_features(&b, Some("ax-std/fs ax-std/irq,sstc")).unwrap();
        assert_eq!(features, ["fs", "irq", "sstc"]);
        assert_eq!(
            notes,
            [
                "FEATURES='ax-std/fs ax-std/irq,sstc' (environment) adds irq, sstc to the build \
              file's features, as axbuild does"
            ]
        );
        assert_eq!(
            with_makefile_features(&b, None).unwrap(),
            (strings(&["fs"]), vec![])
        );
        assert_eq!(
            with_makefile_features(&b, Some("fs")).unwrap(),
            (strings(&["fs"]), vec![])
        );
        for refused in ["axstd/fs", "ax-std/plat-dyn"] {
            let e = with_makefile_features(&b, Some(refused)).unwrap_err();
            assert!(
                e.message.contains("in the FEATURES environment variable") && e.location.is_none(),
                "{e}"
            );
        }
        // AxVisor's own refusals apply to what FEATURES added, naming FEATURES.
        let (features, _) = with_makefile_features(&b, Some("vmx")).unwrap();
        let e = check_features(&b, &features, Flow::Axvisor).unwrap_err();
        assert!(
            e.message.starts_with("feature `vmx` in the FEATURES"),
            "{e}"
        );
        assert!(check_features(&b, &features, Flow::Arceos { axtest: false }).is_ok());
        // A file's own refused feature is reported at the file.
        let b = board(r#""svm""#);
        let e = check_features(&b, &b.features, Flow::Axvisor).unwrap_err();
        assert!(e.message.starts_with("feature `svm` in `features`"), "{e}");
        assert!(e.location.is_some(), "{e}");
    }

    /// A musl cross toolchain laid out as musl.cc's (`<root>/bin/<prefix>-cc`, the sysroot
    /// `<root>/<prefix>` with `include/`, `<root>/lib/gcc/<prefix>/<version>/include`), whose
    /// compiler prints `sysroot` for `-print-sysroot`.
    fn toolchain(root: &Path, sysroot: &str) -> std::ffi::OsString {
        use std::os::unix::fs::PermissionsExt;
        let bin = root.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let cc = bin.join("aarch64-linux-musl-cc");
        std::fs::write(&cc, format!("#!/bin/sh\necho '{sysroot}'\n")).unwrap();
        std::fs::set_permissions(&cc, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir_all(root.join("aarch64-linux-musl/include")).unwrap();
        std::fs::create_dir_all(root.join("lib/gcc/aarch64-linux-musl/11.2.1/include")).unwrap();
        std::ffi::OsString::from(format!("/nonexistent:{}", bin.display()))
    }

    /// `std_c_toolchain_env`'s bindgen variable: `--target`/`--sysroot`, the toolchain's own
    /// dirs only when the sysroot is inside it, the target's C flags (no -fno-stack-protector);
    /// none without a compiler or a sysroot, saying why.
    #[test]
    fn bindgen_args_come_from_the_musl_cross_compiler() {
        let aarch64 = StdTarget::for_target("aarch64-unknown-none-softfloat").unwrap();
        let d = tempfile::tempdir().unwrap();
        let root = d.path().canonicalize().unwrap();
        let path = toolchain(&root, &format!("{}/aarch64-linux-musl", root.display()));
        let (key, value) = aarch64.bindgen_env(Some(&path)).unwrap();
        assert_eq!(key, "BINDGEN_EXTRA_CLANG_ARGS_aarch64_unknown_linux_musl");
        let r = root.display();
        assert_eq!(
            value,
            format!(
                "--target=aarch64-linux-musl --sysroot={r}/aarch64-linux-musl \
                 --gcc-toolchain={r} -isystem {r}/aarch64-linux-musl/include \
                 -isystem {r}/lib/gcc/aarch64-linux-musl/11.2.1/include -mgeneral-regs-only"
            )
        );
        // A sysroot outside the toolchain (a distribution's /usr/lib/musl): no toolchain dirs.
        let path = toolchain(&root, "/usr/lib/musl");
        let (_, value) = aarch64.bindgen_env(Some(&path)).unwrap();
        assert_eq!(
            value,
            "--target=aarch64-linux-musl --sysroot=/usr/lib/musl -mgeneral-regs-only"
        );
        let path = toolchain(&root, "");
        let e = aarch64.bindgen_env(Some(&path)).unwrap_err();
        assert!(
            e.ends_with("aarch64-linux-musl-cc -print-sysroot names no sysroot"),
            "{e}"
        );
        let e = aarch64
            .bindgen_env(Some(std::ffi::OsStr::new("/nonexistent")))
            .unwrap_err();
        assert_eq!(e, "no aarch64-linux-musl-cc on PATH");
    }

    #[test]
    fn every_axbuild_target_has_a_std_identity() {
        for t in crate::build::board::AXBUILD_TARGETS {
            let s = StdTarget::for_target(t).unwrap();
            assert!(
                s.name.ends_with("-linux-musl") && t.starts_with(s.arch),
                "{t}"
            );
        }
        assert!(StdTarget::for_target("mips-unknown-none").is_none());
    }
}
