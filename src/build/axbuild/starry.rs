//! StarryOS' test-suit builds as tgoskits' `axbuild` runs them for `cargo xtask starry test
//! qemu`: the package `starryos` as a freestanding PIE against `core` and `alloc`, not the
//! Rust-`std` build AxVisor's and ArceOS' test packages go through ([`crate::build::axbuild`]).
//!
//! Read from rcore-os/tgoskits `scripts/axbuild/src/` (commit 759e69c):
//! - `starry/test/qemu_run.rs` (`test_qemu`, `qemu_group_build_context`): the package
//!   `starryos`, the case's `build-<target>.toml` as the build info, `--cfg axtest` when its
//!   `env` has a truthy `AXTEST`, coverage when `AXTEST_COVERAGE` is;
//! - `starry/build.rs` (`load_cargo_config`, `patch_starry_cargo_config`): `FEATURES` applied,
//!   the `smp` feature always (StarryOS compiles its SMP paths; `SMP` limits the CPUs), features
//!   sorted, `--bin starryos` when the package has that bin, `AXBUILD_STARRY_BIN` in `env`
//!   choosing another, `AX_ARCH`, `AX_TARGET`;
//! - `build/info.rs` (`into_prepared_no_std_cargo_config_with_metadata`,
//!   `BareKernelLinkMode::Pie`, `build_cargo_args`): `std-compat` refused, `AX_LOG`, `SMP`,
//!   `-Z build-std=core,alloc` and one `--config target.<target>.rustflags=[…]` with the
//!   `DWARF`/`BACKTRACE`/`stack-protector` flags, the PIE link flags (`--no-relax` on riscv64)
//!   and `-Ctarget-feature=-ual` on loongarch64;
//! - ostool 0.24.1 `build/cargo_pipeline.rs`: the argument order and the environment order (as
//!   for the std build).
//!
//! After cargo, the kernel's symbol table is written into its `.kallsyms` section as axbuild's
//! `generate_kallsyms` does ([`crate::build::kallsyms`]); StarryOS reads it when it mounts
//! procfs. Not reproduced (said by `--dry-run` as a `# build note:`): a case's own programs
//! (its `CMakeLists.txt`, `c/`, `sh/`, `python/` assets) are built and injected into a copy of
//! the rootfs by axbuild before the boot; qemu-test boots the rootfs image as it is.

use std::path::Path;

use super::{
    StdTarget, axtest_flags, base_env, coverage_flags, ostool_env, push_log_feature, rustflags,
    set_var, truthy,
};
use crate::build::cargo::CargoRequest;
use crate::build::recipe::{Artifact, BuildCommand, PostStep, Recipe};
use crate::error::Error;

/// The package `starry test qemu` builds (axbuild's `STARRY_PACKAGE`).
pub const PACKAGE: &str = "starryos";

/// The link flags of axbuild's `BareKernelLinkMode::Pie` for `target`.
fn pie_rustflags(target: &str) -> Vec<String> {
    let mut flags = vec!["-Crelocation-model=pic", "-Clink-args=-pie"];
    if target.starts_with("riscv64") {
        flags.push("-Clink-args=--no-relax");
    }
    flags.extend([
        "-Clink-args=--gc-sections",
        "-Clink-args=-znorelro",
        "-Clink-args=-znostart-stop-gc",
        "-Clink-args=-Tlinker.x",
        "-Clink-args=-u _head",
    ]);
    flags.into_iter().map(String::from).collect()
}

/// `--config target.<target>.rustflags=[…]` as axbuild writes it (a TOML array of strings).
fn rustflags_config(target: &str, flags: &[String]) -> String {
    let mut array = toml_edit::Array::new();
    array.extend(flags.iter().map(String::as_str));
    format!("target.{target}.rustflags={array}")
}

/// The cargo command and environment of StarryOS' build of `req.board`, `features` the build
/// file's with `FEATURES` applied (and checked), `notes` what `--dry-run` says already.
pub fn recipe(
    req: &CargoRequest<'_>,
    target_dir: &Path,
    std: StdTarget,
    mut features: Vec<String>,
    mut notes: Vec<String>,
) -> Result<Recipe, Error> {
    let board = req.board;
    features.push("smp".into());
    features.sort();
    features.dedup();
    let mut env = base_env(board);
    let mut flags = rustflags(&env, &features);
    flags.extend(pie_rustflags(&board.target));
    if board.target.starts_with("loongarch64-") {
        flags.push("-Ctarget-feature=-ual".into());
    }
    let mut bin = req.package.own_bin.then(|| req.package.name.clone());
    if let Some((_, chosen)) = env.iter().find(|(k, _)| k == "AXBUILD_STARRY_BIN") {
        if chosen.trim().is_empty() {
            return Err(Error::config("`AXBUILD_STARRY_BIN` in `env` is empty")
                .at_file(&board.path)
                .help("name the bin target to build, or remove the variable"));
        }
        bin = Some(chosen.clone());
    }
    set_var(&mut env, "AX_ARCH", std.arch.into());
    set_var(&mut env, "AX_TARGET", board.target.clone());
    if truthy(&env, "AXTEST") {
        axtest_flags(&mut env, Some(&mut flags), &mut features);
    } else {
        coverage_flags(&mut env, Some(&mut flags), &mut features);
    }
    let env = ostool_env(env, req.workspace);
    push_log_feature(req, &mut features);

    let mut args: Vec<String> = [
        "build",
        "-p",
        &req.package.name,
        "--target",
        &board.target,
        "-Z",
        "unstable-options",
        "--target-dir",
        &target_dir.to_string_lossy(),
    ]
    .map(String::from)
    .to_vec();
    if !features.is_empty() {
        args.extend(["--features".into(), features.join(",")]);
    }
    args.extend([
        "-Z".into(),
        "build-std=core,alloc".into(),
        "--config".into(),
        rustflags_config(&board.target, &flags),
    ]);
    if let Some(b) = &bin {
        args.extend(["--bin".into(), b.clone()]);
    }
    if req.release {
        args.push("--release".into());
    }
    args.extend(["--message-format".into(), "json-render-diagnostics".into()]);
    notes.push(
        "axbuild builds a case's own programs (CMakeLists.txt, c/, sh/, python/ assets) into a \
         copy of the rootfs before the boot; not done here: the rootfs image boots as it is"
            .into(),
    );
    Ok(Recipe {
        command: Some(BuildCommand {
            program: "cargo".into(),
            args,
            env,
            unset: Vec::new(),
            cwd: req.workspace.to_path_buf(),
        }),
        artifact: Artifact::CargoBin(bin.unwrap_or_else(|| req.package.bin.clone())),
        generated: Vec::new(),
        notes,
        post: vec![PostStep::Kallsyms],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::axbuild::append_rustflags;

    /// `build_cargo_args`' TOML array, and `BareKernelLinkMode::Pie`'s riscv64 `--no-relax`.
    #[test]
    fn rustflags_are_one_inline_toml_array() {
        let flags = pie_rustflags("riscv64gc-unknown-none-elf");
        assert_eq!(flags[2], "-Clink-args=--no-relax");
        assert!(!pie_rustflags("aarch64-unknown-none-softfloat").contains(&flags[2]));
        let arg = rustflags_config("x86_64-unknown-none", &flags[..2]);
        assert_eq!(
            arg,
            r#"target.x86_64-unknown-none.rustflags=["-Crelocation-model=pic", "-Clink-args=-pie"]"#
        );
        let value = arg.split_once('=').unwrap().1;
        let parsed: toml_edit::DocumentMut = format!("v = {value}").parse().unwrap();
        assert_eq!(parsed["v"].as_array().unwrap().len(), 2);
    }

    /// `append_encoded_rustflags` with an inline list: into the list, once; into
    /// `CARGO_ENCODED_RUSTFLAGS` when the environment has that variable already.
    #[test]
    fn test_flags_join_the_inline_list_unless_the_environment_has_encoded_ones() {
        let mut env = vec![];
        let mut list = vec!["-Ca".to_string()];
        append_rustflags(&mut env, Some(&mut list), &["--cfg", "axtest"]);
        append_rustflags(&mut env, Some(&mut list), &["--cfg", "axtest"]);
        assert_eq!(list, ["-Ca", "--cfg", "axtest"]);
        assert!(env.is_empty());
        let mut env = vec![("CARGO_ENCODED_RUSTFLAGS".to_string(), "-Cx".to_string())];
        append_rustflags(&mut env, Some(&mut list), &["--cfg", "y"]);
        assert_eq!(env[0].1, "-Cx\u{1f}--cfg\u{1f}y");
        assert_eq!(list.len(), 3);
    }
}
