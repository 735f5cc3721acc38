//! `qemu-test action prepare`: the composite action's second step. Before anything is installed
//! or run it resolves what the later steps need (the subcommand, the log directory, the JUnit
//! path, what to upload and under which artifact name, and the guest architectures whose
//! `qemu-system-*` the host step must provide) from the same inputs ([`ActionArgs`], every input
//! checked) and with the same rules as `qemu-test run`, so the two can never disagree.

use std::path::{Path, PathBuf};

use crate::arch::Arch;
use crate::build::board::BoardConfig;
use crate::cli::{ActionArgs, RunArgs};
use crate::cmd::inputs;
use crate::environment::Runner;
use crate::error::Error;
use crate::plan::Suite;
use crate::profile::AccelRequest;

/// The default log directory (`--out-dir`, the `log-dir` input).
pub const DEFAULT_LOG_DIR: &str = "qemu-test-out";

/// The step summary's copy in the log directory, uploaded with the logs.
pub const SUMMARY_FILE: &str = "summary.md";

/// What the prepare step outputs (names as in `action.yml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// `run` or `matrix`.
    pub command: String,
    /// Absolute log directory; empty for `matrix`.
    pub log_dir: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    /// What actions/upload-artifact uploads: console logs, `results.json`, the summary and the
    /// JUnit file —
    /// never the cargo target dir, rootfs copies or images that also live in the log dir.
    pub upload_paths: Vec<String>,
    /// Unique artifact name; `None` when `upload-logs` is false.
    pub artifact_name: Option<String>,
    /// Guest architectures of the cases QEMU boots, sorted, unique (a board case needs no QEMU).
    pub arches: Vec<Arch>,
    /// Every case boots on a board through U-Boot (`uboot-config`): the runner needs no QEMU
    /// and no KVM, and the host step does not run.
    pub board_only: bool,
    /// The host step's inputs, checked: `install-qemu` (`auto`, `true` or `false`) and `accel`
    /// (`auto`, `kvm` or `tcg`; empty is `auto`).
    pub install_qemu: String,
    pub accel: String,
    /// Things worth a line in the log (e.g. why the arches could not be read yet).
    pub notes: Vec<String>,
}

impl Prepared {
    /// As `GITHUB_OUTPUT` pairs.
    pub fn outputs(&self) -> Vec<(&'static str, String)> {
        if self.command != "run" {
            return vec![("command", self.command.clone())];
        }
        let path = |p: &Option<PathBuf>| {
            p.as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        };
        vec![
            ("command", self.command.clone()),
            ("log-dir", path(&self.log_dir)),
            ("junit", path(&self.junit)),
            ("upload-paths", self.upload_paths.join("\n")),
            (
                "artifact-name",
                self.artifact_name.clone().unwrap_or_default(),
            ),
            (
                "arches",
                self.arches
                    .iter()
                    .map(|a| a.name())
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            ("install-qemu", self.install_qemu.clone()),
            ("accel", self.accel.clone()),
            ("board-only", self.board_only.to_string()),
        ]
    }
}

/// The log directory of a run: `--out-dir`/`log-dir`, else `qemu-test-out`, against `cwd`.
pub fn log_dir(given: Option<&Path>, cwd: &Path) -> PathBuf {
    cwd.join(given.unwrap_or(Path::new(DEFAULT_LOG_DIR)))
}

/// Resolves the prepare step's outputs from the inputs in the working directory `cwd`; `runner`
/// gives the job and the run attempt (for the artifact name).
pub fn prepare(args: &ActionArgs, runner: &Runner, cwd: &Path) -> Result<Prepared, Error> {
    let command = args.command.clone();
    let upload = args.upload_logs;
    if command == "matrix" {
        return Ok(Prepared {
            command,
            log_dir: None,
            junit: None,
            upload_paths: Vec::new(),
            artifact_name: None,
            arches: Vec::new(),
            board_only: false,
            notes: Vec::new(),
            install_qemu: args.install_qemu.clone(),
            accel: String::new(),
        });
    }
    let run = &args.run;
    let log_dir = log_dir(run.out_dir.as_deref(), cwd);
    let junit = inputs::junit_path(run.junit.as_deref(), &log_dir, cwd)?;
    let mut upload_paths = vec![
        log_dir.join("*.log").display().to_string(),
        log_dir.join("results.json").display().to_string(),
        log_dir.join(SUMMARY_FILE).display().to_string(),
    ];
    if let Some(j) = &junit {
        upload_paths.push(j.display().to_string());
    }
    // Core dumps are large: in the artifact only when asked for.
    if run.core_dump == Some(crate::config::grammar::CoreDump::OnFail) {
        upload_paths.push(log_dir.join("*.core.gz").display().to_string());
    }
    let mut notes = Vec::new();
    let Machines { arches, board_only } = machines(run, cwd, &mut notes);
    if board_only {
        notes.push(
            "every case boots on a board through U-Boot (uboot-config): this runner needs no \
             QEMU and no KVM, so the host step is skipped"
                .into(),
        );
    }
    let artifact_name = upload.then(|| {
        format!(
            "qemu-test-{}-{}-{}-{}",
            label(run),
            runner.job.as_deref().unwrap_or("job"),
            runner.run_attempt.as_deref().unwrap_or("1"),
            crate::report::gha::random_hex(3)
        )
    });
    let accel = match run.accel.as_deref().map(str::parse) {
        None | Some(Ok(AccelRequest::Auto)) => "auto",
        Some(Ok(AccelRequest::Kvm)) => "kvm",
        Some(Ok(AccelRequest::Tcg)) => "tcg",
        Some(Err(e)) => return Err(Error::usage(format!("input `accel`: {e}"))),
    };
    Ok(Prepared {
        command,
        log_dir: Some(log_dir),
        junit,
        upload_paths,
        artifact_name,
        arches,
        board_only,
        notes,
        install_qemu: args.install_qemu.clone(),
        accel: accel.into(),
    })
}

/// What the cases boot on.
struct Machines {
    /// The QEMU guests' architectures.
    arches: Vec<Arch>,
    /// No case boots on QEMU: each has a U-Boot config (its own or the run's).
    board_only: bool,
}

/// The machines the run needs: whether every case boots on a board (`uboot-config`, the
/// run's or a suite case's), and the architectures of the others (the QEMU guests): the
/// `arch` input; else every selected suite case's arch (its own, its kernel's ELF header or its
/// board's target triple); else the kernel's or the board's. A case whose arch cannot be read
/// yet (a kernel still to be built) adds nothing: the run step reports it.
fn machines(run: &RunArgs, cwd: &Path, notes: &mut Vec<String>) -> Machines {
    let on_board = run.uboot_config.is_some();
    if on_board && run.suite.is_none() && run.test_suit.test_suit.is_none() {
        return Machines {
            arches: Vec::new(),
            board_only: true,
        };
    }
    let mut board_only = false;
    let arches = guest_arches(run, cwd, notes, &mut board_only);
    Machines { arches, board_only }
}

/// The QEMU guests' architectures; sets `board_only` when a suite's selected cases all boot on a
/// board.
fn guest_arches(
    run: &RunArgs,
    cwd: &Path,
    notes: &mut Vec<String>,
    board_only: &mut bool,
) -> Vec<Arch> {
    let mut out = Vec::new();
    if let Some(a) = run.arch {
        out.push(a);
        return out;
    }
    let mut one = |kernel: Option<&Path>, board: Option<&Path>| -> Option<Arch> {
        if let Some(k) = kernel.map(|k| cwd.join(k)).filter(|k| k.is_file()) {
            return crate::build::elf::kernel_arch(&k).ok();
        }
        match BoardConfig::load(&cwd.join(board?)) {
            Ok(b) => Arch::from_triple(&b.target),
            Err(e) => {
                notes.push(format!("cannot read the guest arch yet: {e}"));
                None
            }
        }
    };
    if let Some(dir) = &run.test_suit.test_suit {
        let filter = crate::plan::testsuit::Filter {
            archs: Vec::new(),
            groups: run.test_suit.test_group.clone(),
            cases: run.test_suit.test_case.clone(),
        };
        match crate::plan::testsuit::discover(&cwd.join(dir), &filter) {
            Ok(cases) => out.extend(cases.iter().map(|c| c.arch)),
            Err(e) => notes.push(format!(
                "could not read the test-suit's cases now ({e}); the run step reports why"
            )),
        }
    } else if let Some(suite) = &run.suite {
        match Suite::load(&cwd.join(suite)).and_then(|s| {
            Ok(s.select(&run.cases)?
                .into_iter()
                .map(|c| c.over(&s.defaults))
                .collect::<Vec<_>>())
        }) {
            Ok(cases) => {
                let any = !cases.is_empty();
                let on_qemu: Vec<_> = cases
                    .into_iter()
                    .filter(|c| c.uboot_config.is_none() && run.uboot_config.is_none())
                    .collect();
                *board_only = any && on_qemu.is_empty();
                for c in on_qemu {
                    if let Some(a) = c
                        .arch
                        .or_else(|| one(c.kernel.as_deref(), c.build_config.as_deref()))
                    {
                        out.push(a);
                    }
                }
            }
            Err(e) => notes.push(format!(
                "could not read the suite's cases now ({e}); the run step reports why"
            )),
        }
    } else if let Some(a) = one(run.kernel.as_deref(), run.build_config.as_deref()) {
        out.push(a);
    }
    out.sort_by_key(|a| a.name());
    out.dedup();
    out
}

/// What the artifact is about: the cases asked for, else the suite or kernel file name; only
/// `[A-Za-z0-9._+-]`, at most 80 characters.
fn label(run: &RunArgs) -> String {
    let stem = |p: &Path| {
        p.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let raw = if !run.cases.is_empty() {
        run.cases.join("+")
    } else if let Some(s) = &run.suite {
        stem(s)
    } else if let Some(k) = &run.kernel {
        stem(k)
    } else {
        String::new()
    };
    let raw = if raw.is_empty() { "run".into() } else { raw };
    let safe: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    let trimmed = safe.trim_end_matches('_');
    if trimmed.is_empty() {
        "run".into()
    } else {
        trimmed.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The prepare step as the action runs it: its inputs (by name) parsed from the variables
    /// the runner sets for them.
    fn prep_on(runner: &Runner, given: &[(&str, &str)], cwd: &Path) -> Result<Prepared, Error> {
        prepare(&inputs::action_args(&inputs::given(given))?, runner, cwd)
    }

    fn prep(given: &[(&str, &str)], cwd: &Path) -> Result<Prepared, Error> {
        prep_on(&Runner::default(), given, cwd)
    }

    #[test]
    fn uploads_only_reports_and_logs() {
        let cwd = Path::new("/w");
        let p = prep(&[("log-dir", "out"), ("junit", "true")], cwd).unwrap();
        assert_eq!(p.log_dir.as_deref(), Some(Path::new("/w/out")));
        assert_eq!(
            p.upload_paths,
            [
                "/w/out/*.log",
                "/w/out/results.json",
                "/w/out/summary.md",
                "/w/out/junit.xml"
            ]
        );
        let p = prep(&[("junit", "reports/j.xml")], cwd).unwrap();
        assert_eq!(p.log_dir.as_deref(), Some(Path::new("/w/qemu-test-out")));
        assert_eq!(p.upload_paths[3], "/w/reports/j.xml");
        assert_eq!(p.upload_paths.len(), 4, "no core dumps unless asked for");
        // core-dump: on-fail adds the cores beside the logs, and nothing else.
        let p = prep(&[("core-dump", "on-fail")], cwd).unwrap();
        assert_eq!(
            p.upload_paths,
            [
                "/w/qemu-test-out/*.log",
                "/w/qemu-test-out/results.json",
                "/w/qemu-test-out/summary.md",
                "/w/qemu-test-out/*.core.gz"
            ]
        );
    }

    #[test]
    fn artifact_names_are_safe_and_unique() {
        let runner = Runner {
            job: Some("test".into()),
            run_attempt: Some("2".into()),
            ..Runner::default()
        };
        let name = || {
            let given = [("case", "linux smp1,../../etc")];
            let p = prep_on(&runner, &given, Path::new("/w")).unwrap();
            p.artifact_name.unwrap()
        };
        let (a, b) = (name(), name());
        assert!(
            a.starts_with("qemu-test-linux_smp1+.._.._etc-test-2-"),
            "{a}"
        );
        assert_ne!(a, b);
        assert!(
            prep(&[("upload-logs", "FALSE")], Path::new("/w"))
                .unwrap()
                .artifact_name
                .is_none()
        );
    }

    #[test]
    fn bad_inputs_are_usage_errors_naming_the_input() {
        let e = prep(&[("command", "rm -rf")], Path::new("/w")).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.to_string().contains("input `command` (INPUT_COMMAND)"),
            "{e}"
        );
        assert!(e.to_string().contains("'rm -rf'"), "{e}");
        let e = prep(&[("upload-logs", "yes")], Path::new("/w")).unwrap_err();
        assert!(e.to_string().contains("input `upload-logs`"), "{e}");
        let e = prep(&[("junit", "on")], Path::new("/w")).unwrap_err();
        assert!(
            e.to_string().contains("neither a boolean nor a file path"),
            "{e}"
        );
    }

    #[test]
    fn the_host_steps_inputs_are_checked_and_normalized() {
        let cwd = Path::new("/w");
        let p = prep(&[], cwd).unwrap();
        assert_eq!(
            (p.install_qemu.as_str(), p.accel.as_str()),
            ("auto", "auto")
        );
        let p = prep(&[("install-qemu", "FALSE"), ("accel", "TCG")], cwd).unwrap();
        assert_eq!(
            (p.install_qemu.as_str(), p.accel.as_str()),
            ("false", "tcg")
        );
        let outputs = p.outputs();
        assert!(
            outputs.contains(&("install-qemu", "false".into())),
            "{outputs:?}"
        );
        assert!(outputs.contains(&("accel", "tcg".into())), "{outputs:?}");
        let p = prep(&[("install-qemu", "True")], cwd).unwrap();
        assert_eq!(p.install_qemu, "true");
        for (input, bad) in [
            ("install-qemu", "yes"),
            ("install-qemu", "maybe"),
            ("accel", "hvf"),
            ("version", "latest"),
        ] {
            let e = prep(&[(input, bad)], cwd).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{e}");
            let var = inputs::var_name(input);
            assert!(
                e.to_string().contains(&format!("input `{input}` ({var})")),
                "{e}"
            );
        }
        for good in ["1.2.3", "v0.10.0", "1.0.0-rc.1", "source"] {
            assert!(prep(&[("version", good)], cwd).is_ok(), "{good}");
        }
    }

    #[test]
    fn arches_of_a_test_suit_follow_its_filters() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/tgoskits/test-suit");
        let all = prep(&[("test-suit", root)], Path::new("/")).unwrap();
        assert!(
            all.arches.contains(&Arch::X86_64) && all.arches.contains(&Arch::Aarch64),
            "{:?}",
            all.arches
        );
        let svm = prep(
            &[("test-suit", root), ("test-case", "smoke-svm")],
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(svm.arches, [Arch::X86_64]);
    }

    #[test]
    fn arches_come_from_the_input_or_the_board_target() {
        let dir = tempfile::tempdir().unwrap();
        let p = prep(&[("arch", "arm64")], dir.path()).unwrap();
        assert_eq!(p.arches, [Arch::Aarch64]);
        std::fs::write(
            dir.path().join("board.toml"),
            "target = \"riscv64gc-unknown-none-elf\"\nfeatures = []\nlog = \"Info\"\ncargo_args = []\nto_bin = true\nvm_configs = []\n",
        )
        .unwrap();
        let p = prep(&[("build-config", "board.toml")], dir.path()).unwrap();
        assert_eq!(p.arches, [Arch::Riscv64]);
    }

    /// A case on a board needs no QEMU: its arch is not asked of the host step, and a run with
    /// only board cases skips that step (`board-only`).
    #[test]
    fn board_cases_need_no_qemu() {
        let dir = tempfile::tempdir().unwrap();
        let p = prep(
            &[("uboot-config", "uboot.toml"), ("arch", "arm64")],
            dir.path(),
        )
        .unwrap();
        assert!(p.board_only);
        assert!(p.arches.is_empty());
        assert!(p.outputs().contains(&("board-only", "true".into())));
        std::fs::write(
            dir.path().join("suite.toml"),
            "[[case]]\nname = \"board\"\narch = \"aarch64\"\nuboot-config = \"uboot.toml\"\n\n\
             [[case]]\nname = \"emulated\"\narch = \"riscv64\"\n",
        )
        .unwrap();
        let suite = [("suite", "suite.toml")];
        let mixed = prep(&suite, dir.path()).unwrap();
        assert!(!mixed.board_only);
        assert_eq!(mixed.arches, [Arch::Riscv64]);
        let board = prep(&[suite[0], ("case", "board")], dir.path()).unwrap();
        assert!(board.board_only);
        assert!(board.arches.is_empty());
        let p = prep(&[("kernel", "k.elf")], dir.path()).unwrap();
        assert!(!p.board_only);
    }
}
