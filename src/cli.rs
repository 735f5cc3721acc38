//! Command-line definition (clap) and dispatch to the pipeline.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use futures_util::StreamExt;

use crate::arch::Arch;
use crate::error::{Error, exit};
use crate::plan::{self, CaseInputs, RunOptions, Suite};
use crate::profile::{ProfileDecision, Profiles};
use crate::report::gha::{GithubOptions, GithubReporter};
use crate::report::json::JsonReporter;
use crate::report::junit::JunitReporter;
use crate::report::terminal::TerminalReporter;
use crate::report::{Event, Level, Reporters};
use crate::run::{self, Cancel};

const EXIT_CODES: &str = "\
Exit codes:
  0    every case passed (skips allowed by policy)
  1    at least one case failed or timed out
  2    usage or configuration error (nothing ran)
  3    infrastructure error (QEMU missing, download or build failed)
  129  cancelled by SIGHUP
  130  cancelled by SIGINT
  143  cancelled by SIGTERM";

/// Boot-test kernels and hypervisors in QEMU and judge their serial console.
#[derive(Debug, Parser)]
#[command(name = "qemu-test", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Boot a kernel in QEMU and judge its console (one case, or the cases of a suite).
    #[command(after_help = RUN_HELP)]
    Run(Box<RunArgs>),
    /// Print the cases of a suite as a GitHub Actions matrix ({"include":[…]}).
    Matrix(MatrixArgs),
    /// Probe the runner: QEMU binaries, firmware, and whether KVM really runs guests.
    Probe(ProbeArgs),
    /// Validate a QEMU TOML or suite without booting (patterns, grammar keys, lints); with
    /// --log, replay a saved console log through the grammar and show the verdict.
    Check(CheckArgs),
    /// Guest images: list the registry, pull, verify or remove cached images.
    #[command(subcommand)]
    Images(ImagesCmd),
    /// The composite action's own steps (used by action.yml; reads INPUT_* variables).
    #[command(subcommand, hide = true)]
    Action(ActionCmd),
}

/// `qemu-test action …`: the steps of action.yml that are not about obtaining the binary or
/// setting up the host.
#[derive(Debug, Subcommand)]
pub enum ActionCmd {
    /// Resolve the log dir, JUnit path, upload paths, artifact name and guest arches.
    Prepare,
    /// `key`: the guest image cache dir and actions/cache key; `filled`: whether it holds files.
    ImageCache {
        #[arg(value_parser = ["key", "filled"])]
        what: String,
    },
    /// Run the `command` input: `run` (with every INPUT_*), or `matrix` for the `suite` input.
    Run,
}

/// `qemu-test images …`
#[derive(Debug, Subcommand)]
pub enum ImagesCmd {
    /// List the registry's images and whether each is cached.
    Ls(ImagesCommon),
    /// Download (if needed), verify and unpack an image; print its directory.
    Pull {
        /// NAME or NAME:VERSION (bare NAME = the latest by released_at).
        image: String,
        #[command(flatten)]
        common: ImagesCommon,
    },
    /// Re-hash cached images (all, or one).
    Verify {
        image: Option<String>,
        #[command(flatten)]
        common: ImagesCommon,
    },
    /// Print the SHA-256 of every image a suite (or --image) uses, one per line: the cache key
    /// for actions/cache.
    Key {
        /// Suite whose cases' images count.
        #[arg(long, value_name = "FILE")]
        suite: Option<PathBuf>,
        /// Only these suite cases (repeatable).
        #[arg(long = "case", value_name = "NAME")]
        cases: Vec<String>,
        /// An image NAME[:VERSION] (repeatable).
        #[arg(long = "image", value_name = "NAME[:VERSION]")]
        images: Vec<String>,
        #[command(flatten)]
        common: ImagesCommon,
    },
    /// Remove a cached image, or everything with --all.
    Rm {
        image: Option<String>,
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        common: ImagesCommon,
    },
}

/// Flags shared by the `images` subcommands.
#[derive(Debug, Args, Clone)]
pub struct ImagesCommon {
    /// Registry URL or local TOML file [default: axvisor-guest's].
    #[arg(long, value_name = "URL|FILE")]
    pub registry: Option<String>,
    /// Image cache directory.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

/// Flags of `qemu-test probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `qemu-test check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The QEMU TOML to check.
    #[arg(long, value_name = "FILE", conflicts_with = "suite")]
    pub qemu_config: Option<PathBuf>,
    /// The suite file to check (each case with its QEMU TOML).
    #[arg(long, value_name = "FILE")]
    pub suite: Option<PathBuf>,
    /// A saved console log to replay through the grammar.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// What the suite's relative paths are relative to [default: $WORKSPACE_FOLDER, else the
    /// current directory].
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
}

/// tgoskits' test-suit tree as a suite (`run` and `matrix`).
#[derive(Debug, Clone, Args, Default)]
pub struct TestSuitArgs {
    /// tgoskits' test-suit directory: cases discovered and named as its axbuild does
    /// (test-suit/<os>/<group>/…/build-<target>.toml + qemu-<arch>.toml); the workspace is its
    /// parent [env: INPUT_TEST_SUIT].
    #[arg(long, value_name = "DIR", conflicts_with = "suite")]
    pub test_suit: Option<PathBuf>,
    /// Only this test group (`normal`, `uefi`, `axtest`; repeatable) [env: INPUT_TEST_GROUP].
    #[arg(long, value_name = "GROUP")]
    pub test_group: Vec<String>,
    /// Only this axbuild test case (`smoke-svm`, `qemu-nimbos`, `qemu-svm/smoke-svm`;
    /// repeatable) [env: INPUT_TEST_CASE].
    #[arg(long, value_name = "NAME")]
    pub test_case: Vec<String>,
}

impl TestSuitArgs {
    /// The discovered cases as a suite, with the workspace they belong to; `None` without
    /// `--test-suit`/`INPUT_TEST_SUIT`.
    fn load(&self, arch: Option<Arch>) -> Result<Option<(Suite, PathBuf)>, Error> {
        let Some(dir) = self
            .test_suit
            .clone()
            .or_else(|| env_input("INPUT_TEST_SUIT").map(PathBuf::from))
        else {
            return Ok(None);
        };
        let or_env = |v: &[String], k: &str| {
            if v.is_empty() {
                crate::action::inputs::names(env_input(k).as_deref())
            } else {
                v.to_vec()
            }
        };
        let cwd = std::env::current_dir()
            .map_err(|e| Error::infra(format!("cannot read the current directory: {e}")))?;
        let root = cwd.join(dir);
        let arch = match (arch, env_input("INPUT_ARCH")) {
            (Some(a), _) => Some(a),
            (None, Some(a)) => Some(
                a.parse::<Arch>()
                    .map_err(|e| Error::usage(format!("input INPUT_ARCH: {e}")))?,
            ),
            (None, None) => None,
        };
        let filter = plan::testsuit::Filter {
            archs: arch.into_iter().collect(),
            groups: or_env(&self.test_group, "INPUT_TEST_GROUP"),
            cases: or_env(&self.test_case, "INPUT_TEST_CASE"),
        };
        let cases = plan::testsuit::discover(&root, &filter)?;
        let suite = plan::testsuit::to_suite(&root, &cases)?;
        Ok(Some((suite, plan::testsuit::workspace_of(&root))))
    }
}

/// Flags of `qemu-test matrix`.
#[derive(Debug, Args)]
pub struct MatrixArgs {
    /// Suite file ([defaults] + [[case]] tables).
    #[arg(
        long,
        value_name = "FILE",
        env = "INPUT_SUITE",
        required_unless_present = "test_suit"
    )]
    pub suite: Option<PathBuf>,
    #[command(flatten)]
    pub test_suit: TestSuitArgs,
    /// Only this architecture (with --test-suit) [env: INPUT_ARCH].
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<Arch>,
    /// Keep only cases whose name contains this text (repeatable; any may match).
    #[arg(long, value_name = "TEXT")]
    pub filter: Vec<String>,
    /// Only these cases (repeatable; default: `INPUT_CASE`, else all).
    #[arg(long = "case", value_name = "NAME")]
    pub cases: Vec<String>,
}

const RUN_HELP: &str = "\
The verdict is the first decisive event: a fail pattern, then a success pattern (counted only
after all [[steps]] are done), then how the guest ended (a reset or panic reported by QEMU over
QMP is a FAIL unless on_reset = \"pass\"), then QEMU's exit (status 0 without any success match
is a FAIL when success patterns are set; exiting before the guest started = config error, exit
2), then the deadline. With no fail patterns configured a built-in default set applies
(fail_regex = [] keeps none). See README \"How a verdict is reached\". Patterns are Rust regex syntax (no look-around or backreferences), matched per console
line after ANSI escapes and carriage returns are removed; the unfinished last line (a prompt)
is matched too. The raw console is written to <out-dir>/<case>.log and the results to
<out-dir>/results.json.

Console grammar (extra keys in the QEMU TOML or a suite case; see README \"Console grammar\"):
  [[steps]] expect, send, timeout, fail   typed after expect matched, in send_chunk-byte chunks
                                          send_delay apart (default 16 B / 5ms); all steps done
                                          = pass when no success_regex; ostool 0.31
                                          shell_check_steps and timeout are accepted too
  [[milestones]] name, pattern, deadline, optional   ordered; missed = fail unless optional
  inactivity_timeout                      no console output for that long = timeout
  max_log_size = \"64MiB\"                  console log kept on disk (head + tail, marker between)
  [[testcases]] pattern, results, otherwise, expected, affects_verdict
                                          groups test_case_id, result (measurement, units)
  fail_sets = [\"linux\", \"arceos\", \"axvisor-x86\"]   built-in fail patterns
  retries, retry_on = [\"infra\", \"timeout\", \"fail\"]   (default retry_on: infra, timeout)
  on_reset = \"pass\"                       a guest reset is the expected ending (default fail)
Check a config without booting: qemu-test check --qemu-config F [--log saved.log]

Exit codes:
  0    the case passed
  1    it failed or timed out
  2    usage or configuration error (nothing ran)
  3    infrastructure error (QEMU missing, cannot start, image download or build failed,
       or the runner cannot run the case and --on-unsupported is fail)
  129  cancelled by SIGHUP
  130  cancelled by SIGINT
  143  cancelled by SIGTERM";

/// Flags of `qemu-test run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Suite file ([defaults] + [[case]] tables); runs its cases (or those named by --case).
    #[arg(long, value_name = "FILE")]
    pub suite: Option<PathBuf>,
    /// Suite case to run (repeatable); default: all.
    #[arg(long = "case", value_name = "NAME")]
    pub cases: Vec<String>,
    #[command(flatten)]
    pub test_suit: TestSuitArgs,
    /// Kernel to boot: an ELF (its header picks qemu-system-<arch>) or a raw image with --arch.
    #[arg(long, value_name = "FILE")]
    pub kernel: Option<PathBuf>,
    /// Build the kernel with cargo from an AxVisor board config (target, features, log, …).
    #[arg(long, value_name = "FILE")]
    pub build_config: Option<PathBuf>,
    /// VM config to patch and embed (repeatable), after the board's `vm_configs`.
    #[arg(long, value_name = "FILE")]
    pub vmconfigs: Vec<PathBuf>,
    /// Build the kernel with this shell command instead (run in the workspace).
    #[arg(long, value_name = "CMD")]
    pub build_command: Option<String>,
    /// The kernel file --build-command leaves behind.
    #[arg(long, value_name = "FILE")]
    pub artifact: Option<PathBuf>,
    /// Guest image NAME[:VERSION] from the registry (axvisor-guest format).
    #[arg(long, value_name = "NAME[:VERSION]")]
    pub image: Option<String>,
    /// Image registry: a URL or a local TOML file [default: axvisor-guest's].
    #[arg(long, value_name = "URL|FILE")]
    pub registry: Option<String>,
    /// Image cache [default: $QEMU_TEST_CACHE, $RUNNER_TOOL_CACHE/qemu-test-action,
    /// $XDG_CACHE_HOME/qemu-test-action, ~/.cache/qemu-test-action].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// ostool-compatible QEMU TOML (args, uefi, to_bin, success_regex, fail_regex). Default: the
    /// first of qemu-<arch>.toml, .qemu-<arch>.toml, qemu.toml, .qemu.toml in the workspace.
    #[arg(long, value_name = "FILE")]
    pub qemu_config: Option<PathBuf>,
    /// Guest architecture (aarch64, x86_64, riscv64, …); default: from the kernel's header (ELF,
    /// Linux arm64/RISC-V Image, x86 bzImage, uImage); needed for raw binaries.
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<Arch>,
    /// Value of ${workspaceFolder}; default: $WORKSPACE_FOLDER, else the current directory.
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// Deadline for the whole boot, e.g. 30s, 5m, 1h30m.
    /// Default: 5m.
    #[arg(long, value_name = "DURATION", value_parser = plan::duration::parse)]
    pub timeout: Option<Duration>,
    /// Console log kept on disk per case: the first part and the last 4 MiB, with a marker
    /// where bytes were dropped (the verdict still sees every byte), e.g. 64MiB, 512K.
    /// Default: 64MiB.
    #[arg(long, value_name = "SIZE", value_parser = crate::run::log::parse_size)]
    pub max_log_size: Option<u64>,
    /// Success pattern (repeatable); replaces the config's success_regex.
    #[arg(long = "success-regex", value_name = "RE")]
    pub success_regex: Vec<String>,
    /// Fail pattern (repeatable); replaces the config's fail_regex.
    #[arg(long = "fail-regex", value_name = "RE")]
    pub fail_regex: Vec<String>,
    /// Directory for the console logs and reports [default: qemu-test-out].
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// Console log path (default: <out-dir>/<case>.log).
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Case name (default: the kernel's file stem).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// UEFI firmware for `uefi = true` (default: Debian's qemu-efi-aarch64 / ovmf files).
    #[arg(long, value_name = "FILE")]
    pub firmware: Option<PathBuf>,
    /// Print the exact QEMU command and the resolved patterns; run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not echo the guest console (it is still logged).
    #[arg(long, short)]
    pub quiet: bool,
    /// Accelerator: auto (KVM only where it really runs guests), kvm or tcg [default: auto].
    #[arg(long, value_name = "auto|kvm|tcg")]
    pub accel: Option<String>,
    /// What the case needs from the runner: kvm, vmx, svm (repeatable).
    #[arg(long, value_name = "REQ")]
    pub requires: Vec<String>,
    /// A case this runner cannot run as asked is skipped or fails [default: skip].
    #[arg(long, value_name = "skip|fail")]
    pub on_unsupported: Option<String>,
    /// TOML file overriding the built-in KVM/TCG profiles (see configs/profiles/).
    #[arg(long, value_name = "FILE")]
    pub profiles: Option<PathBuf>,
    /// Cases to boot at once [default: from CPUs, memory and each case's -smp/-m; 1 in Actions].
    #[arg(long, short, value_name = "N")]
    pub jobs: Option<usize>,
    /// Write a JUnit XML report to FILE (`true`: <out-dir>/junit.xml).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<String>,
    /// Boot a case again up to N times when its verdict is in `retry_on` (default: infra,
    /// timeout); a pass after a failure is reported flaky.
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(0..=i64::from(crate::config::grammar::MAX_RETRIES)))]
    pub retries: Option<u32>,
    /// An earlier results.json (e.g. the base branch's) to compare each case's boot and
    /// milestone times with, by case name; missing or unreadable = a warning [env:
    /// INPUT_BASELINE].
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// How much slower than the baseline is a regression: PCT%,DURATION (both must be
    /// exceeded), or PCT% or DURATION alone [default: 20%,500ms] [env:
    /// INPUT_REGRESSION_THRESHOLD].
    #[arg(long, value_name = "PCT%,DURATION",
          value_parser = crate::report::baseline::Threshold::parse)]
    pub regression_threshold: Option<crate::report::baseline::Threshold>,
    /// A passing case whose time regressed against --baseline fails [env:
    /// INPUT_FAIL_ON_REGRESSION].
    #[arg(long)]
    pub fail_on_regression: bool,
}

impl RunArgs {
    /// The command-line layer of the case inputs.
    fn inputs(&self) -> CaseInputs {
        CaseInputs {
            name: self.name.clone(),
            kernel: self.kernel.clone(),
            build_config: self.build_config.clone(),
            vmconfigs: self.vmconfigs.clone(),
            build_command: self.build_command.clone(),
            artifact: self.artifact.clone(),
            image: self.image.clone(),
            registry: self.registry.clone(),
            qemu_config: self.qemu_config.clone(),
            arch: self.arch,
            workspace: self.workspace.clone(),
            timeout: self.timeout,
            success_regex: self.success_regex.clone(),
            fail_regex: self.fail_regex.clone(),
            firmware: self.firmware.clone(),
            accel: self.accel.clone(),
            requires: self.requires.clone(),
            on_unsupported: self.on_unsupported.clone(),
            retries: self.retries,
            grammar: crate::config::grammar::GrammarSpec {
                max_log_size: self.max_log_size,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// `--suite`, else `INPUT_SUITE`.
    fn suite_path(&self) -> Option<PathBuf> {
        self.suite
            .clone()
            .or_else(|| env_input("INPUT_SUITE").map(PathBuf::from))
    }

    /// `--case`, else `INPUT_CASE` (newline or comma separated).
    fn case_names(&self) -> Vec<String> {
        if !self.cases.is_empty() {
            return self.cases.clone();
        }
        crate::action::inputs::names(env_input("INPUT_CASE").as_deref())
    }

    fn options(&self, cwd: &std::path::Path) -> RunOptions {
        let out = self
            .out_dir
            .clone()
            .or_else(|| env_input("INPUT_LOG_DIR").map(PathBuf::from));
        RunOptions {
            out_dir: crate::action::prepare::log_dir(out.as_deref(), cwd),
            log: self.log.as_ref().map(|l| cwd.join(l)),
            cache_dir: self.cache_dir.as_ref().map(|c| cwd.join(c)),
        }
    }
}

/// `--jobs`, else `INPUT_JOBS`, else what the host can take (see [`run::default_jobs`]).
fn jobs(args: &RunArgs, cases: &[plan::Case]) -> Result<usize, Error> {
    let given = match args.jobs {
        Some(j) => Some(j),
        None => env_input("INPUT_JOBS")
            .map(|v| {
                v.parse::<usize>()
                    .map_err(|_| Error::usage(format!("INPUT_JOBS: '{v}' is not a number")))
            })
            .transpose()?,
    };
    match given {
        Some(0) => Err(Error::usage("--jobs must be at least 1")),
        Some(j) => Ok(j),
        // In Actions the console of each case is echoed in its own log group: one case at a
        // time keeps the groups whole (parallelism there comes from the matrix).
        None if in_github_actions() => Ok(1),
        None => Ok(run::default_jobs(cases)),
    }
}

fn in_github_actions() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

/// `--junit`, else `INPUT_JUNIT`: a path, or `true` for `<out-dir>/junit.xml`.
fn junit_path(args: &RunArgs, out_dir: &std::path::Path) -> Result<Option<PathBuf>, Error> {
    let v = args.junit.clone().or_else(|| env_input("INPUT_JUNIT"));
    // Relative to the current directory, like every other path flag.
    let cwd = std::env::current_dir().unwrap_or_default();
    crate::action::inputs::junit_path(v.as_deref(), out_dir, &cwd)
}

/// The GitHub reporter when running in Actions, with the `summary`/`annotations` inputs;
/// `echo_console` is false with `--quiet`, `parallel` when cases run at once. A
/// `summary`/`annotations` value that is not a boolean is an error, even outside Actions.
fn github_reporter(
    junit: Option<PathBuf>,
    results_json: Option<PathBuf>,
    echo_console: bool,
    parallel: bool,
) -> Result<Option<GithubReporter>, Error> {
    let vars = crate::action::inputs::env();
    let annotations = crate::action::inputs::boolean(&vars, "annotations", true)?;
    let summary = crate::action::inputs::boolean(&vars, "summary", true)?;
    let Some(reporter) = GithubReporter::from_env(Box::new(std::io::stdout())) else {
        return Ok(None);
    };
    let mut reporter = reporter.with_options(GithubOptions {
        annotations,
        summary,
        junit,
        results_json,
        echo_console,
        parallel,
        ..GithubOptions::default()
    });
    if let Some(token) = env_input("INPUT_GITHUB_TOKEN") {
        reporter.mask(&token);
    }
    Ok(Some(reporter))
}

/// A non-empty `INPUT_*` variable (the action inputs' one rule: trimmed, empty = not given).
fn env_input(name: &str) -> Option<String> {
    crate::action::inputs::var(&crate::action::inputs::env(), name)
}

/// `qemu-test check`: findings as `file:line:col: warning: …`, then each replay.
fn check_command(args: &CheckArgs) -> i32 {
    let req = crate::check::CheckRequest {
        qemu_config: args.qemu_config.clone(),
        suite: args.suite.clone(),
        log: args.log.clone(),
        workspace: args
            .workspace
            .clone()
            .or_else(|| std::env::var_os("WORKSPACE_FOLDER").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(".")),
    };
    match crate::check::check(&req) {
        Ok(report) => {
            for w in &report.warnings {
                println!("{w}");
            }
            for (name, r) in &report.replays {
                println!("{name}: {}", r.report.trim_end());
            }
            if report.warnings.is_empty() && report.replays.is_empty() {
                println!("ok: no findings");
            }
            report.exit_code()
        }
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

/// Parses the command line and runs it; returns the process exit code.
pub async fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit::USAGE
            } else {
                exit::PASS
            };
        }
    };
    match cli.command {
        Command::Run(args) => run_command(&args).await,
        Command::Matrix(args) => matrix_command(&args),
        Command::Probe(args) => crate::host::cli(args.json),
        Command::Check(args) => check_command(&args),
        Command::Images(cmd) => images_command(cmd).await,
        Command::Action(cmd) => action_command(cmd).await,
    }
}

async fn action_command(cmd: ActionCmd) -> i32 {
    use crate::action;
    let vars = action::inputs::env();
    let cwd = match std::env::current_dir() {
        Ok(d) => d,
        Err(e) => return report_error(&Error::infra(format!("no current directory: {e}"))),
    };
    let outputs = match cmd {
        ActionCmd::Prepare => action::prepare::prepare(&vars, &cwd).map(|p| {
            for n in &p.notes {
                eprintln!("qemu-test-action: {n}");
            }
            p.outputs()
        }),
        ActionCmd::ImageCache { what } if what == "key" => action::images::key_step(&vars, &cwd)
            .await
            .map(|(dir, key, notes)| {
                for n in &notes {
                    eprintln!("qemu-test-action: {n}");
                }
                vec![("dir", dir.display().to_string()), ("key", key)]
            }),
        ActionCmd::ImageCache { .. } => crate::image::Cache::locate(None)
            .map(|dir| vec![("filled", action::images::filled(&dir).to_string())]),
        ActionCmd::Run => {
            return match action::inputs::text(&vars, "command").as_deref() {
                None | Some("run") => match Cli::try_parse_from(["qemu-test", "run"]) {
                    Ok(Cli {
                        command: Command::Run(args),
                    }) => run_command(&args).await,
                    _ => exit::USAGE,
                },
                Some("matrix") => matrix_command(&MatrixArgs {
                    suite: action::inputs::text(&vars, "suite").map(PathBuf::from),
                    test_suit: TestSuitArgs::default(),
                    arch: None,
                    filter: Vec::new(),
                    cases: Vec::new(),
                }),
                Some(other) => report_plan_error(
                    &Error::usage(format!(
                        "input `command`: '{other}' is not a command of the action"
                    ))
                    .help("write `command: run` (the default) or `command: matrix`"),
                ),
            };
        }
    };
    match outputs.and_then(|o| action::emit(&vars, &o)) {
        Ok(()) => exit::PASS,
        Err(e) => report_plan_error(&e),
    }
}

async fn run_command(args: &RunArgs) -> i32 {
    // Before anything else, so a cancel at any point still reaps QEMU and writes reports.
    let cancel = match Cancel::install() {
        Ok(s) => s,
        Err(e) => return report_error(&e),
    };
    // Reading the configs (and probing the host) blocks: on a blocking thread, so a signal
    // meanwhile ends the run at once. Nothing has been written yet.
    let planning = {
        let args = args.clone();
        tokio::task::spawn_blocking(move || plan_cases(&args))
    };
    let mut watch = cancel.clone();
    let (cases, unplanned) = tokio::select! {
        r = planning => match r {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return report_plan_error(&e),
            Err(e) => return report_error(&Error::infra(format!("planning failed: {e}"))),
        },
        sig = watch.cancelled() => {
            eprintln!("cancelled by {sig} while reading the configuration; nothing ran");
            return sig.exit_code();
        }
    };
    let baseline = match crate::report::baseline::BaselineOptions::resolve(
        args.baseline.clone(),
        args.regression_threshold,
        args.fail_on_regression,
        &crate::action::inputs::env(),
    ) {
        Ok(b) => b,
        Err(e) => return report_plan_error(&e),
    };
    let mut reporters = Reporters::new();
    // In Actions the guest console is echoed only by the GitHub reporter, inside a
    // stop-commands window: echoing it anywhere else would let the guest issue commands.
    let echo = !args.quiet && !in_github_actions();
    let jobs = match jobs(args, &cases) {
        Ok(j) => j,
        Err(e) => return report_error(&e),
    };
    reporters.add(Box::new(TerminalReporter::new(echo, jobs > 1)));
    emit_warnings(&cases, &mut reporters);
    if args.dry_run {
        for case in &cases {
            print_dry_run(case, cases.len() + unplanned.len() > 1);
        }
        for e in &unplanned {
            println!("# cannot plan here: {e}");
        }
        return unplanned.first().map_or(exit::PASS, Error::exit_code);
    }
    let out_dir = &cases[0].out_dir;
    // Held until the process ends: a second run on this out dir stops here, writing nothing.
    let _lock = match crate::prepare::workdir::OutDirLock::acquire(out_dir) {
        Ok(l) => l,
        Err(e) => return report_error(&e),
    };
    let results_json = out_dir.join("results.json");
    let (junit, gh) = match junit_path(args, out_dir).and_then(|j| {
        let gh = github_reporter(j.clone(), Some(results_json.clone()), !args.quiet, jobs > 1)?;
        Ok((j, gh))
    }) {
        Ok(x) => x,
        Err(e) => return report_plan_error(&e),
    };
    reporters.add(Box::new(JsonReporter::new(results_json.clone())));
    if let Some(j) = &junit {
        reporters.add(Box::new(JunitReporter::new(j.clone())));
    }
    if let Some(gh) = gh {
        reporters.add(Box::new(gh));
    }
    let baseline = load_baseline(&baseline, &reporters);
    let names: Vec<String> = cases.iter().map(|c| c.name.clone()).collect();
    reporters.emit(Event::RunStarted { cases: &names });
    let results: Vec<_> = futures_util::stream::iter(&cases)
        .map(|case| {
            let (reporters, mut cancel) = (&reporters, cancel.clone());
            let baseline = baseline.as_ref();
            async move {
                let mut result = run::execute_case(case, reporters, &mut cancel).await;
                if let Some(b) = baseline {
                    compare_with_baseline(b, &mut result, reporters);
                }
                reporters.emit(Event::CaseFinished { result: &result });
                result
            }
        })
        .buffered(jobs)
        .collect()
        .await;
    let mut code = crate::verdict::exit_code(results.iter().map(|r| &r.verdict));
    // A signal after the last case ended still makes this a cancelled run.
    if let Some(sig) = cancel.is_cancelled() {
        code = sig.exit_code();
    }
    reporters.emit(Event::RunFinished {
        results: &results,
        exit_code: code,
    });
    // The reports are written; a signal now only stops publishing the check runs.
    let mut watch = cancel.clone();
    tokio::select! {
        () = publish_checks(&results) => {}
        sig = watch.cancelled() => {
            eprintln!("cancelled by {sig}: check runs not (all) published");
            code = sig.exit_code();
        }
    }
    match reporters.finish() {
        Ok(()) => code,
        Err(e) => {
            eprintln!("error: {e}");
            if code == exit::PASS {
                exit::INFRA
            } else {
                code
            }
        }
    }
}

/// Reads `--baseline`; an unusable one (or an option without it) is a warning, never a failure.
fn load_baseline(
    options: &crate::report::baseline::BaselineOptions,
    reporters: &Reporters,
) -> Option<crate::report::baseline::BaselineCheck> {
    let cwd = std::env::current_dir().unwrap_or_default();
    let (check, warnings) = options.load(&cwd);
    for w in &warnings {
        reporters.emit(Event::Note {
            case: None,
            level: Level::Warning,
            message: w,
            location: None,
        });
    }
    check
}

/// Records a finished case's times against the baseline. A regression that does not fail the
/// case (no `--fail-on-regression`) is a warning; one that does is in the verdict's reason.
fn compare_with_baseline(
    baseline: &crate::report::baseline::BaselineCheck,
    result: &mut crate::report::CaseResult,
    reporters: &Reporters,
) {
    if let Some(why) = baseline.apply(result)
        && !baseline.fails()
    {
        reporters.emit(Event::Note {
            case: Some(&result.name),
            level: Level::Warning,
            message: &format!("{}: {why}", result.name),
            location: None,
        });
    }
}

/// Publishes one check run per case when a token is given (input `github-token`). Runs after
/// the reporters closed the console window, so its warnings are our own lines; the Checks API
/// never changes the exit code.
async fn publish_checks(results: &[crate::report::CaseResult]) {
    use crate::report::checks::{self, ChecksConfig};
    let Some(cfg) = ChecksConfig::from_env() else {
        return;
    };
    let warnings = checks::publish(&cfg, results)
        .await
        .unwrap_or_else(|e| vec![format!("check runs not created: {e}")]);
    // Already checked by the run's reporters: a bad value never gets this far.
    let annotations =
        crate::action::inputs::boolean(&crate::action::inputs::env(), "annotations", true)
            .unwrap_or(true);
    checks::print_warnings(&warnings, annotations);
}

/// Plans every case, then probes the host (only when a case could use KVM or has requirements)
/// and applies the KVM/TCG profiles.
/// With `--dry-run` a case that cannot be planned is returned with the others (to be shown);
/// otherwise its error ends the run before anything starts.
fn plan_cases(args: &RunArgs) -> Result<(Vec<plan::Case>, Vec<Error>), Error> {
    let mut cases = Vec::new();
    let mut unplanned = Vec::new();
    let planned = plan_inputs(args)?;
    // A dry run of several cases shows every case it can plan and says why the others cannot;
    // a single case's error is the run's error, as for a real run.
    let many = planned.len() > 1;
    for planned in planned {
        match planned {
            Ok(c) => cases.push(c),
            Err(e) if args.dry_run && many => unplanned.push(e),
            Err(e) => return Err(e),
        }
    }
    let profiles = match args
        .profiles
        .clone()
        .or_else(|| env_input("INPUT_PROFILES").map(PathBuf::from))
    {
        Some(p) => Profiles::with_overrides(&p)?,
        None => Profiles::builtin(),
    };
    let probe = if cases.iter().any(plan::Case::needs_probe) {
        let cache_root = cases.first().and_then(|c| c.cache_dir.clone());
        crate::host::probe(&crate::host::ProbeOptions {
            // Once per host boot (see host::probe_cache).
            kvm_cache: crate::image::Cache::locate(cache_root.as_deref())
                .ok()
                .map(|root| crate::host::probe_cache::cache_file(&root)),
            ..crate::host::ProbeOptions::default()
        })
    } else {
        plan::probe_not_needed()
    };
    plan::apply_profiles(&mut cases, &probe, &profiles);
    Ok((cases, unplanned))
}

fn plan_inputs(args: &RunArgs) -> Result<Vec<Result<plan::Case, Error>>, Error> {
    let cwd = std::env::current_dir()
        .map_err(|e| Error::infra(format!("cannot read the current directory: {e}")))?;
    let mut inputs = args.inputs();
    let suite = match args.test_suit.load(args.arch)? {
        Some((suite, workspace)) => {
            inputs.workspace = inputs.workspace.or(Some(workspace));
            Some(suite)
        }
        None => args
            .suite_path()
            .map(|p| Suite::load(&cwd.join(p)))
            .transpose()?,
    };
    if let Some(s) = &suite {
        for (loc, msg) in &s.warnings {
            eprintln!("warning: {loc}: {msg}");
        }
    }
    plan::plan_run_each(
        &inputs,
        suite.as_ref(),
        &args.case_names(),
        &args.options(&cwd),
    )
}

fn emit_warnings(cases: &[plan::Case], reporters: &mut Reporters) {
    for case in cases {
        for w in &case.warnings {
            reporters.emit(Event::Note {
                case: Some(&case.name),
                level: Level::Warning,
                message: &w.message,
                location: Some(&w.location),
            });
        }
    }
}

async fn images_command(cmd: ImagesCmd) -> i32 {
    use crate::image::cli::{ImagesArgs, ImagesCommand, cli_images};
    let (common, command) = match cmd {
        ImagesCmd::Ls(c) => (c, ImagesCommand::Ls),
        ImagesCmd::Pull { image, common } => (common, ImagesCommand::Pull { image }),
        ImagesCmd::Verify { image, common } => (common, ImagesCommand::Verify { image }),
        ImagesCmd::Rm { image, all, common } => (common, ImagesCommand::Rm { image, all }),
        ImagesCmd::Key {
            suite,
            cases,
            images,
            common,
        } => {
            return match crate::action::images::image_keys(
                suite.as_deref(),
                &cases,
                &images,
                common.registry.as_deref(),
                common.cache_dir.as_deref(),
            )
            .await
            {
                Ok(keys) => {
                    for k in keys {
                        println!("{k}");
                    }
                    exit::PASS
                }
                Err(e) => report_error(&e),
            };
        }
    };
    cli_images(ImagesArgs {
        registry: common.registry,
        cache_dir: common.cache_dir,
        command,
        ..ImagesArgs::default()
    })
    .await
}

fn matrix_command(args: &MatrixArgs) -> i32 {
    let loaded = match (&args.suite, args.test_suit.load(args.arch)) {
        (_, Err(e)) => Err(e),
        (_, Ok(Some((suite, _)))) => Ok(suite),
        (Some(path), Ok(None)) => Suite::load(path),
        (None, Ok(None)) => Err(Error::usage("matrix needs --suite FILE or --test-suit DIR")),
    };
    let suite = match loaded {
        Ok(s) => s,
        Err(e) => return report_error(&e),
    };
    let names = if args.cases.is_empty() {
        crate::action::inputs::names(env_input("INPUT_CASE").as_deref())
    } else {
        args.cases.clone()
    };
    let selected = match suite.select(&names) {
        Ok(s) => s,
        Err(e) => return report_error(&e),
    };
    let include: Vec<serde_json::Value> = selected
        .into_iter()
        .filter(|c| {
            let name = c.name.as_deref().unwrap_or_default();
            args.filter.is_empty() || args.filter.iter().any(|f| name.contains(f.as_str()))
        })
        .map(|c| {
            let merged = c.over(&suite.defaults);
            serde_json::json!({
                "case": merged.name,
                "arch": merged.arch.map(|a| a.name()),
                "runner": merged.runner.unwrap_or_else(|| "ubuntu-latest".into()),
            })
        })
        .collect();
    let matrix = serde_json::json!({ "include": include }).to_string();
    println!("{matrix}");
    if let Some(path) = std::env::var_os("GITHUB_OUTPUT")
        && let Err(e) = append_output(std::path::Path::new(&path), "matrix", &matrix)
    {
        return report_error(&e);
    }
    exit::PASS
}

/// Appends a single-line output (JSON has no raw newlines) to `GITHUB_OUTPUT`.
fn append_output(path: &std::path::Path, name: &str, value: &str) -> Result<(), Error> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| Error::io(path, "open", &e))?;
    writeln!(f, "{name}={value}").map_err(|e| Error::io(path, "write", &e))
}

fn print_dry_run(case: &plan::Case, with_name: bool) {
    if with_name {
        println!("# case: {}", case.name);
    }
    match &case.decision {
        Some(ProfileDecision::Skip { reason }) => println!("# skipped: {reason}"),
        Some(ProfileDecision::Fail { reason }) => println!("# cannot run here: {reason}"),
        _ => {}
    }
    println!("{}", case.command.display());
    for n in &case.command.notes {
        println!("# note: {n}");
    }
    if let Some(img) = &case.image {
        println!("# image: {} from {}", img.spec, img.registry);
    }
    if let Some(h) = &case.config.host_http_server {
        println!(
            "# host http server: {}:{} for the boot (guest: 10.0.2.2:{})",
            h.bind, h.port, h.port
        );
    }
    for (i, v) in case.vm_configs.iter().enumerate() {
        let copy = crate::prepare::workdir::config_copy(&case.work_dir, &case.vm_configs, i);
        println!(
            "# vm config: {} (patched as {})",
            v.display(),
            copy.display()
        );
    }
    match run::dry_build_plan(case) {
        Ok(plan) if plan.command.is_some() => println!("# build: {}", plan.display()),
        Ok(_) => {}
        Err(e) => println!("# build: cannot plan: {e}"),
    }
    if let Some(bin) = &case.bin_path {
        println!("# to_bin: {} -> {}", case.kernel.display(), bin.display());
    }
    for step in case.script.timeline() {
        if step.kind == crate::console::script::TimelineKind::Step {
            println!("# {} (once '{}' matched)", step.name, step.pattern);
        }
    }
    if case.default_fail {
        println!(
            "# fail patterns: the config names none, so the built-in `{}` set applies \
             (fail_regex = [] turns it off):",
            crate::console::sets::DEFAULT_SET
        );
    } else if case.fail.is_empty() {
        println!("# fail patterns: none (fail_regex = [])");
    }
    for p in &case.fail {
        println!("# fail pattern: {}", p.spec.regex);
    }
    for p in &case.success {
        println!("# success pattern: {}", p.spec.regex);
    }
    if case.success.is_empty() && case.script.steps_done() {
        println!(
            "# success: no success pattern and no steps, so the guest's clean power-off \
             (QEMU exiting 0, not a reset or panic) is the pass"
        );
    } else if case.success.is_empty() {
        println!("# success: all steps done");
    }
    if case.reset_passes {
        println!("# on_reset = \"pass\": a guest reset is the expected ending");
    }
    println!("# timeout: {}", plan::duration::format(case.timeout));
    println!("# console log: {}", case.log_path.display());
}

/// A planning error: on the terminal, and in Actions also as an annotation at the config line,
/// in the step summary and as `verdict=error` in the outputs (nothing ran).
fn report_plan_error(e: &Error) -> i32 {
    let code = report_error(e);
    if let Ok(Some(gh)) = github_reporter(None, None, true, false) {
        let mut reporters = Reporters::new();
        reporters.add(Box::new(gh));
        reporters.emit(Event::Failed {
            case: None,
            error: e,
        });
        reporters.emit(Event::RunFinished {
            results: &[],
            exit_code: code,
        });
        if let Err(err) = reporters.finish() {
            eprintln!("error: {err}");
        }
    }
    code
}

fn report_error(e: &Error) -> i32 {
    eprintln!("error: {e}");
    e.exit_code()
}
