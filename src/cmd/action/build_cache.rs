//! `qemu-test action build-cache key|filled`: the composite action's cache of the hypervisor
//! build. The directory is the run's own cargo target root ([`target_root`] of the log dir), so
//! the directory actions/cache restores is the one `qemu-test run` builds in; the key names what
//! decides whether its contents can be reused — the runner's OS and architecture, the
//! workspace's `rust-toolchain.toml` and `Cargo.lock`, the board configs and the VM-config sets
//! of the selected cases — and the restore keys drop those parts from the end, so a job whose
//! VM configs, boards or lock file changed still starts from the nearest earlier build.
//!
//! Which cases build, from which board and with which VM configs, comes from the same layered
//! inputs and the same board rule ([`BoardConfig::resolve_vm_configs`]) as the run.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::build::board::BoardConfig;
use crate::build::cargo::target_root;
use crate::cli::{ActionArgs, RunArgs};
use crate::environment::Runner;
use crate::error::Error;
use crate::image::stream::hex;

/// The first part of every key; bump the version when the cached layout changes.
const KEY_PREFIX: &str = "qemu-test-build-v1";

/// One case's cargo build: its board config and its VM configs, in order (absolute).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    pub board: PathBuf,
    pub vm_configs: Vec<PathBuf>,
}

/// What the `key` step outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStep {
    /// `<log-dir>/cargo-target`: what actions/cache restores and saves.
    pub dir: PathBuf,
    /// Empty when there is nothing to cache (no cargo build, `cache-build: false`, or the cases
    /// cannot be read now: the run step reports why).
    pub key: String,
    /// Most specific first.
    pub restore_keys: Vec<String>,
    pub notes: Vec<String>,
}

impl KeyStep {
    /// As `GITHUB_OUTPUT` pairs.
    pub fn outputs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("dir", self.dir.display().to_string()),
            ("key", self.key.clone()),
            ("restore-keys", self.restore_keys.join("\n")),
        ]
    }
}

/// The build cache directory of a run in `cwd` with the `log-dir` input.
pub fn cache_dir(run: &RunArgs, cwd: &Path) -> PathBuf {
    target_root(&super::prepare::log_dir(run.out_dir.as_deref(), cwd))
}

/// The `key` step: the directory, the key and the restore keys (see the module docs); `runner`
/// gives the runner's OS and architecture.
pub fn key_step(args: &ActionArgs, runner: &Runner, cwd: &Path) -> KeyStep {
    let mut step = KeyStep {
        dir: cache_dir(&args.run, cwd),
        key: String::new(),
        restore_keys: Vec::new(),
        notes: Vec::new(),
    };
    if !args.cache_build {
        step.notes
            .push("cache-build is false: the build's target dir is not cached".into());
        return step;
    }
    let keyed = builds(&args.run, cwd).and_then(|(workspace, builds)| {
        if builds.is_empty() {
            return Ok(None);
        }
        let runner = (
            runner_value(runner.os.as_deref(), std::env::consts::OS),
            runner_value(runner.arch.as_deref(), std::env::consts::ARCH),
        );
        build_key(&runner, &workspace, &builds).map(Some)
    });
    match keyed {
        Ok(Some((key, restore_keys))) => {
            step.key = key;
            step.restore_keys = restore_keys;
        }
        Ok(None) => step
            .notes
            .push("no selected case builds from a board config: no build to cache".into()),
        Err(e) => step.notes.push(format!(
            "cannot tell what the cases build now ({e}); continuing without the build cache"
        )),
    }
    step
}

/// The `build-cache` step `what`: `key` ([`key_step`]; its notes go to the log) or `filled`
/// ([`built`]).
pub fn step(
    what: &str,
    args: &ActionArgs,
    runner: &Runner,
    cwd: &Path,
) -> Result<Vec<(&'static str, String)>, Error> {
    if what == "filled" {
        let log_dir = super::prepare::log_dir(args.run.out_dir.as_deref(), cwd);
        return Ok(vec![("filled", built(&log_dir).to_string())]);
    }
    let step = key_step(args, runner, cwd);
    for n in &step.notes {
        eprintln!("qemu-test-action: {n}");
    }
    Ok(step.outputs())
}

/// Whether the run in `log_dir` has something worth saving: a case reached its build stage
/// (its `results.json` says so) and the target dir holds files. A run that stopped before any
/// build would only save what was restored under a new key, and that key would then never be
/// saved again with the build's results.
pub fn built(log_dir: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(log_dir.join("results.json")) else {
        return false;
    };
    let Ok(results) = serde_json::from_str::<serde_json::Value>(&text) else {
        return false;
    };
    let cases = results["cases"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let any_build = cases.iter().any(|c| {
        c["stages"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["stage"] == "build"))
    });
    any_build && super::images::filled(&target_root(log_dir))
}

/// `RUNNER_OS`/`RUNNER_ARCH` (`Linux`, `X64`), else this host's; only `[A-Za-z0-9_]`.
fn runner_value(value: Option<&str>, host: &str) -> String {
    value
        .unwrap_or(host)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// The workspace and the cargo builds of the selected cases: the suite's (or test-suit's)
/// cases, else the inputs' one case, layered as the run layers them.
pub fn builds(run: &RunArgs, cwd: &Path) -> Result<(PathBuf, Vec<Build>), Error> {
    let (cli, suite) = crate::cmd::run::case_layers(run, cwd)?;
    let (workspace, cases) = crate::plan::layered_cases(&cli, suite.as_ref(), &run.cases, cwd)?;
    let mut builds = Vec::new();
    for case in cases {
        if let Some(board) = case.build_config {
            let vm_configs =
                BoardConfig::load(&board)?.resolve_vm_configs(&workspace, &case.vmconfigs)?;
            builds.push(Build { board, vm_configs });
        }
    }
    Ok((workspace, builds))
}

/// The key and restore keys for `builds` in `workspace` on `runner` (OS, arch):
/// `qemu-test-build-v1-<os>-<arch>-<toolchain>-<Cargo.lock>-<boards>-<VM-config sets>`, each part
/// 16 hex digits of a SHA-256 of the files' contents; the restore keys end after the boards,
/// the lock file and the toolchain. A build with another toolchain shares nothing, so no key
/// reaches past it.
pub fn build_key(
    runner: &(String, String),
    workspace: &Path,
    builds: &[Build],
) -> Result<(String, Vec<String>), Error> {
    let toolchain = digest_files(&[nearest(
        workspace,
        &["rust-toolchain.toml", "rust-toolchain"],
    )])?;
    let lock = digest_files(&[nearest(workspace, &["Cargo.lock"])])?;
    let mut boards: Vec<Option<PathBuf>> = builds.iter().map(|b| Some(b.board.clone())).collect();
    boards.sort();
    boards.dedup();
    let boards = digest_files(&boards)?;
    let mut sets = Vec::new();
    for b in builds {
        let files: Vec<Option<PathBuf>> = b.vm_configs.iter().cloned().map(Some).collect();
        sets.push(digest_files(&files)?);
    }
    sets.sort();
    sets.dedup();
    let vm_sets = short(Sha256::digest(sets.join("\n").as_bytes()).as_slice());
    let (os, arch) = runner;
    let toolchain_key = format!("{KEY_PREFIX}-{os}-{arch}-{toolchain}-");
    let lock_key = format!("{toolchain_key}{lock}-");
    let board_key = format!("{lock_key}{boards}-");
    Ok((
        format!("{board_key}{vm_sets}"),
        vec![board_key, lock_key, toolchain_key],
    ))
}

/// The first of `names` in `dir` or its ancestors (where rustup and cargo look).
fn nearest(dir: &Path, names: &[&str]) -> Option<PathBuf> {
    dir.ancestors()
        .flat_map(|d| names.iter().map(move |n| d.join(n)))
        .find(|p| p.is_file())
}

/// 16 hex digits of a SHA-256 over the files' contents in order (a missing file counts as
/// absent, distinct from an empty one).
fn digest_files(files: &[Option<PathBuf>]) -> Result<String, Error> {
    let mut h = Sha256::new();
    for f in files {
        match f {
            Some(path) => {
                let bytes = std::fs::read(path).map_err(|e| Error::input_io(path, "file", &e))?;
                h.update((bytes.len() as u64).to_le_bytes());
                h.update(&bytes);
            }
            None => h.update(u64::MAX.to_le_bytes()),
        }
    }
    Ok(short(&h.finalize()))
}

fn short(digest: &[u8]) -> String {
    hex(&digest[..8])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::inputs;

    const BOARD: &str = "target = \"x86_64-unknown-linux-gnu\"\nfeatures = []\nlog = \"Info\"\n\
                         cargo_args = []\nto_bin = false\nvm_configs = [\"vms/a.toml\"]\n";

    /// An AxVisor-like workspace: toolchain file, lock file, a board naming one VM config.
    fn workspace() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let w = |p: &str, t: &str| {
            let p = d.path().join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, t).unwrap();
        };
        w(
            "rust-toolchain.toml",
            "[toolchain]\nchannel = \"nightly-2025-01-01\"\n",
        );
        w("Cargo.lock", "version = 4\n");
        w(
            "Cargo.toml",
            "[package]\nname = \"axvisor\"\nversion = \"0.1.0\"\n",
        );
        w("board.toml", BOARD);
        w("vms/a.toml", "[base]\nname = \"a\"\n");
        w("vms/b.toml", "[base]\nname = \"b\"\n");
        d
    }

    /// The key step on a runner of `arch` (`RUNNER_ARCH`) with the inputs `extra` (by name)
    /// over `build-config: board.toml`.
    fn key_on(arch: &str, dir: &Path, extra: &[(&str, &str)]) -> KeyStep {
        let mut given = vec![("build-config", "board.toml")];
        given.extend_from_slice(extra);
        let runner = Runner {
            os: Some("Linux".into()),
            arch: Some(arch.into()),
            ..Runner::default()
        };
        key_step(
            &inputs::action_args(&inputs::given(&given)).unwrap(),
            &runner,
            dir,
        )
    }

    fn key_of(dir: &Path, extra: &[(&str, &str)]) -> KeyStep {
        key_on("X64", dir, extra)
    }

    fn edit(dir: &Path, file: &str, text: &str) {
        std::fs::write(dir.join(file), text).unwrap();
    }

    #[test]
    fn the_key_names_the_runner_and_each_part_and_restore_keys_drop_parts_from_the_end() {
        let d = workspace();
        let k = key_of(d.path(), &[("log-dir", "out")]);
        assert_eq!(k.dir, d.path().join("out/cargo-target"));
        assert!(
            k.key.starts_with("qemu-test-build-v1-Linux-X64-"),
            "{}",
            k.key
        );
        let parts: Vec<&str> = k.key["qemu-test-build-v1-Linux-X64-".len()..]
            .split('-')
            .collect();
        assert_eq!(parts.len(), 4, "{}", k.key);
        assert!(parts.iter().all(|p| p.len() == 16), "{}", k.key);
        assert_eq!(k.restore_keys.len(), 3);
        for (n, r) in k.restore_keys.iter().enumerate() {
            assert!(
                k.key.starts_with(r.as_str()),
                "{r} is not a prefix of {}",
                k.key
            );
            assert_eq!(
                r.matches('-').count(),
                k.key.matches('-').count() - n,
                "{r}"
            );
            assert!(r.ends_with('-'), "{r}");
        }
        let o = k.outputs();
        assert_eq!(o[2], ("restore-keys", k.restore_keys.join("\n")));
        // The same inputs give the same key; the log dir moves only the directory.
        let again = key_of(d.path(), &[]);
        assert_eq!(again.key, k.key);
        assert_eq!(again.dir, d.path().join("qemu-test-out/cargo-target"));
        let arm = key_on("ARM64", d.path(), &[]);
        assert!(
            arm.key.starts_with("qemu-test-build-v1-Linux-ARM64-"),
            "{}",
            arm.key
        );
    }

    #[test]
    fn each_input_of_the_build_changes_its_own_part() {
        let d = workspace();
        let base = key_of(d.path(), &[]);
        // A part differs, and the restore keys before it still match the old key.
        let changed = |key: &KeyStep, kept_restore_keys: usize| {
            assert_ne!(key.key, base.key);
            for r in &base.restore_keys[base.restore_keys.len() - kept_restore_keys..] {
                assert!(key.key.starts_with(r.as_str()), "{r} vs {}", key.key);
            }
            for r in &base.restore_keys[..base.restore_keys.len() - kept_restore_keys] {
                assert!(!key.key.starts_with(r.as_str()), "{r} vs {}", key.key);
            }
        };
        changed(&key_of(d.path(), &[("vmconfigs", "vms/b.toml")]), 3);
        edit(d.path(), "vms/a.toml", "[base]\nname = \"a2\"\n");
        changed(&key_of(d.path(), &[]), 3);
        edit(d.path(), "vms/a.toml", "[base]\nname = \"a\"\n");
        assert_eq!(key_of(d.path(), &[]).key, base.key);
        edit(d.path(), "board.toml", &BOARD.replace("Info", "Debug"));
        changed(&key_of(d.path(), &[]), 2);
        edit(d.path(), "board.toml", BOARD);
        edit(
            d.path(),
            "Cargo.lock",
            "version = 4\n# a dependency moved\n",
        );
        changed(&key_of(d.path(), &[]), 1);
        edit(d.path(), "Cargo.lock", "version = 4\n");
        edit(
            d.path(),
            "rust-toolchain.toml",
            "[toolchain]\nchannel = \"stable\"\n",
        );
        changed(&key_of(d.path(), &[]), 0);
    }

    #[test]
    fn suite_cases_add_their_boards_and_vm_config_sets() {
        let d = workspace();
        std::fs::write(
            d.path().join("suite.toml"),
            "[[case]]\nname = \"a\"\nbuild-config = \"board.toml\"\n\n\
             [[case]]\nname = \"b\"\nbuild-config = \"board.toml\"\nvmconfigs = [\"vms/b.toml\"]\n\n\
             [[case]]\nname = \"k\"\nkernel = \"k.elf\"\n",
        )
        .unwrap();
        let suite = |cases: &str| {
            key_of(
                d.path(),
                &[
                    ("build-config", ""),
                    ("suite", "suite.toml"),
                    ("case", cases),
                ],
            )
        };
        let (a, b, ab) = (suite("a"), suite("b"), suite("a,b"));
        assert_eq!(
            a.key,
            key_of(d.path(), &[]).key,
            "case a is the single-case run"
        );
        assert_ne!(a.key, b.key);
        assert_ne!(ab.key, a.key);
        assert_eq!(
            ab.restore_keys, a.restore_keys,
            "same board, same lock and toolchain"
        );
        assert_eq!(suite("a,k").key, a.key, "a prebuilt kernel adds nothing");
        assert_eq!(suite("k").key, "");
    }

    /// The run boots a `kernel` input instead of building the suite's cases, and a
    /// `build-command` runs instead of cargo: the key follows (action.yml passes both inputs).
    #[test]
    fn a_kernel_or_build_command_input_over_a_building_suite_has_no_cargo_build() {
        let d = workspace();
        std::fs::write(
            d.path().join("suite.toml"),
            "[defaults]\nbuild-config = \"board.toml\"\n\n[[case]]\nname = \"a\"\n",
        )
        .unwrap();
        let suite = [("build-config", ""), ("suite", "suite.toml")];
        let builds = key_of(d.path(), &suite);
        assert_eq!(builds.key, key_of(d.path(), &[]).key);
        for (input, value) in [("kernel", "k.elf"), ("build-command", "make")] {
            let mut inputs = suite.to_vec();
            inputs.push((input, value));
            let k = key_of(d.path(), &inputs);
            assert_eq!(k.key, "", "{input}");
            assert!(
                k.notes[0].contains("no selected case builds"),
                "{:?}",
                k.notes
            );
        }
    }

    #[test]
    fn nothing_to_cache_is_an_empty_key_with_a_note_never_an_error() {
        let d = workspace();
        let off = key_of(d.path(), &[("cache-build", "false")]);
        assert_eq!((off.key.as_str(), off.restore_keys.len()), ("", 0));
        assert!(
            off.notes[0].contains("cache-build is false"),
            "{:?}",
            off.notes
        );
        let prebuilt = key_of(d.path(), &[("build-config", ""), ("kernel", "k.elf")]);
        assert_eq!(prebuilt.key, "");
        assert!(
            prebuilt.notes[0].contains("no selected case builds"),
            "{:?}",
            prebuilt.notes
        );
        let missing = key_of(d.path(), &[("build-config", "nope.toml")]);
        assert_eq!(missing.key, "");
        assert!(
            missing.notes[0].contains("continuing without the build cache"),
            "{:?}",
            missing.notes
        );
        let e = inputs::action_args(&inputs::given(&[("cache-build", "yes")])).unwrap_err();
        assert!(e.to_string().contains("input `cache-build`"), "{e}");
    }

    #[test]
    fn only_a_run_that_built_has_something_to_save() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path();
        let results = |stages: &str| {
            std::fs::write(
                out.join("results.json"),
                format!("{{\"cases\":[{{\"name\":\"a\",\"stages\":[{stages}]}}]}}"),
            )
            .unwrap()
        };
        assert!(!built(out), "no results.json");
        std::fs::create_dir_all(out.join("cargo-target/vmcfg-1")).unwrap();
        results(r#"{"stage":"image"},{"stage":"build"}"#);
        assert!(built(out));
        results(r#"{"stage":"image"}"#);
        assert!(
            !built(out),
            "the run stopped before the build: only restored files"
        );
        results(r#"{"stage":"build"}"#);
        std::fs::remove_dir_all(out.join("cargo-target")).unwrap();
        assert!(!built(out), "nothing in the target dir");
        std::fs::write(out.join("results.json"), "{").unwrap();
        assert!(!built(out));
    }
}
