//! The command line as clap types, and nothing else: every flag once (with the action input that
//! sets it, `env = "INPUT_…"`). What each subcommand does is in `crate::cmd`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::arch::Arch;

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
    /// Validate a QEMU TOML, U-Boot config or suite without booting (patterns, grammar keys, lints); with
    /// --log, replay a saved console log through the grammar and show the verdict.
    Check(CheckArgs),
    /// Guest images: list the registry, pull, verify or remove cached images.
    #[command(subcommand)]
    Images(ImagesCmd),
    /// The composite action's own steps (used by action.yml; every input as INPUT_*).
    #[command(subcommand, hide = true)]
    Action(ActionCmd),
}

/// `qemu-test action …`: the steps of action.yml that are not about obtaining the binary or
/// setting up the host.
#[derive(Debug, Subcommand)]
pub enum ActionCmd {
    /// Resolve the log dir, JUnit path, upload paths, artifact name and guest arches.
    Prepare(ActionArgs),
    /// `key`: the guest image cache dir and actions/cache key; `filled`: whether it holds files.
    ImageCache {
        #[arg(value_parser = ["key", "filled"])]
        what: String,
        #[command(flatten)]
        inputs: ActionArgs,
    },
    /// `key`: the build's cargo target dir, actions/cache key and restore keys; `filled`:
    /// whether the run built and the dir holds files.
    BuildCache {
        #[arg(value_parser = ["key", "filled"])]
        what: String,
        #[command(flatten)]
        inputs: ActionArgs,
    },
    /// Run the `command` input: `run`, or `matrix` for the `suite` input.
    Run(ActionArgs),
}

/// Every input of `action.yml`, each defined once: the flags of `qemu-test run` (their
/// `env = "INPUT_…"` names the input) and the inputs only the action's steps use. A test keeps
/// this and `action.yml` in step.
#[derive(Debug, Clone, Args)]
pub struct ActionArgs {
    /// `run` (boot and judge) or `matrix` (the suite's cases as a matrix).
    #[arg(long, env = "INPUT_COMMAND", default_value = "run", value_parser = ["run", "matrix"])]
    pub command: String,
    /// Upload the console logs, results.json and JUnit as a workflow artifact.
    #[arg(long, env = "INPUT_UPLOAD_LOGS", boolean_input = "true")]
    pub upload_logs: bool,
    /// Save downloaded guest images with actions/cache.
    #[arg(long, env = "INPUT_CACHE_IMAGES", boolean_input = "true")]
    pub cache_images: bool,
    /// Cache the board-config build's target dir (and qemu-test's own source build, the
    /// install step) with actions/cache.
    #[arg(long, env = "INPUT_CACHE_BUILD", boolean_input = "true")]
    pub cache_build: bool,
    /// Install a missing qemu-system-<arch> with apt-get (the host step, scripts/action): auto,
    /// or a boolean.
    #[arg(
        long,
        env = "INPUT_INSTALL_QEMU",
        value_name = "auto|true|false",
        default_value = "auto",
        value_parser = install_qemu
    )]
    pub install_qemu: String,
    /// The qemu-test release the action uses (the install step, scripts/action).
    #[arg(
        long = "action-version",
        env = "INPUT_VERSION",
        value_name = "X.Y.Z|source",
        value_parser = release_version
    )]
    pub version: Option<String>,
    /// The directory the action's steps run in (their `working-directory`).
    #[arg(
        long,
        env = "INPUT_WORKING_DIRECTORY",
        value_name = "DIR",
        default_value = "."
    )]
    pub working_directory: PathBuf,
    #[command(flatten)]
    pub run: Box<RunArgs>,
}

/// A boolean as @actions/core's getBooleanInput reads it: `true`/`True`/`TRUE` and `false`/`False`/`FALSE`, nothing else.
pub fn parse_boolean(v: &str) -> Option<bool> {
    match v {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// A boolean input of the action as a flag that takes its value (`--summary false`), read as
/// @actions/core's getBooleanInput reads it, with its default: `#[arg(long, env = "INPUT_…",
/// boolean_input = "true")]` (clap's derive calls any `Arg` method named in the attribute).
trait BooleanInput {
    fn boolean_input(self, default: &'static str) -> Self;
}

impl BooleanInput for clap::Arg {
    fn boolean_input(self, default: &'static str) -> Self {
        self.value_name("BOOL")
            .default_value(default)
            .value_parser(boolean)
            .action(clap::ArgAction::Set)
    }
}

/// A boolean flag value as @actions/core's getBooleanInput reads it.
fn boolean(v: &str) -> Result<bool, String> {
    parse_boolean(v)
        .ok_or_else(|| format!("'{v}' is not a boolean (true, True, TRUE, false, False or FALSE)"))
}

/// The `install-qemu` input: `auto`, or a boolean as getBooleanInput reads it; the host step
/// gets it as `auto`, `true` or `false`.
pub fn install_qemu(v: &str) -> Result<String, String> {
    if matches!(v, "auto" | "Auto" | "AUTO") {
        return Ok("auto".into());
    }
    parse_boolean(v).map(|b| b.to_string()).ok_or_else(|| {
        format!("'{v}' is neither auto nor a boolean (true, True, TRUE, false, False or FALSE)")
    })
}

/// What the `version` input may be: a release (`X.Y.Z`, an optional leading `v` and `-pre`
/// suffix) or `source`. `scripts/action/install.sh` applies the same pattern before the binary
/// exists (`tests/action_install.rs` keeps the two in step).
pub const RELEASE_VERSION: &str = r"^v?[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$";

/// The `version` input ([`RELEASE_VERSION`]).
pub fn release_version(v: &str) -> Result<String, String> {
    static PATTERN: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(RELEASE_VERSION).expect("valid pattern"));
    if v == "source" || PATTERN.is_match(v) {
        Ok(v.to_string())
    } else {
        Err(format!(
            "'{v}' is neither a release version (X.Y.Z, e.g. 1.2.0 or v1.2.0) nor `source`"
        ))
    }
}

/// The `image` input (`--image`): one `NAME[:VERSION]`, as the run reads it.
pub fn image(v: &str) -> Result<String, String> {
    v.parse::<crate::image::ImageSpec>()
        .map(|_| v.to_string())
        .map_err(|e| match e.help {
            Some(help) => format!("{}: {help}", e.message),
            None => e.message,
        })
}

/// The `accel` input (`--accel`): auto, kvm or tcg, as the run reads it.
pub fn accel(v: &str) -> Result<String, String> {
    v.parse::<crate::profile::AccelRequest>()
        .map(|_| v.to_string())
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
        /// Also copy the archive and its files into DIR in axbuild's image-storage layout
        /// (DIR/<archive>, DIR/<name>[-<version>]/ with .archive.sha256); print that directory.
        #[arg(long, short = 'o', value_name = "DIR")]
        output_dir: Option<PathBuf>,
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
    /// ostool's U-Boot config (`uboot.toml`) or a tgoskits board run config to check; its
    /// `${env:NAME}` must be set.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["qemu_config", "suite"])]
    pub uboot_config: Option<PathBuf>,
    /// The suite file to check (each case with its QEMU TOML).
    #[arg(long, value_name = "FILE")]
    pub suite: Option<PathBuf>,
    /// tgoskits' test-suit directory: every build, QEMU and board TOML in it, and its cases.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["qemu_config", "suite"])]
    pub test_suit: Option<PathBuf>,
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
    /// parent.
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with = "suite",
        env = "INPUT_TEST_SUIT"
    )]
    pub test_suit: Option<PathBuf>,
    /// Only this test group: a name (`normal`, `uefi`, `axtest`) or `<os>/<group>`
    /// (`axvisor/normal`); repeatable or comma separated.
    #[arg(
        long,
        value_name = "GROUP",
        env = "INPUT_TEST_GROUP",
        value_delimiter = ','
    )]
    pub test_group: Vec<String>,
    /// Only this axbuild test case (`smoke-svm`, `qemu-nimbos`, `qemu-svm/smoke-svm`;
    /// repeatable or comma separated).
    #[arg(
        long,
        value_name = "NAME",
        env = "INPUT_TEST_CASE",
        value_delimiter = ','
    )]
    pub test_case: Vec<String>,
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
    /// Only this architecture (with --test-suit).
    #[arg(long, value_name = "ARCH", env = "INPUT_ARCH")]
    pub arch: Option<Arch>,
    /// Keep only cases whose name contains this text (repeatable; any may match).
    #[arg(long, value_name = "TEXT")]
    pub filter: Vec<String>,
    /// Only these cases (repeatable or comma separated; default: all).
    #[arg(
        long = "case",
        value_name = "NAME",
        env = "INPUT_CASE",
        value_delimiter = ','
    )]
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
                                          = pass when no success_regex; ostool's
                                          shell_check_steps (0.29) and timeout are accepted too
  [[milestones]] name, pattern, deadline, optional   ordered; missed = fail unless optional
  inactivity_timeout                      no console output for that long = timeout
  max_log_size = \"64MiB\"                  console log kept on disk (head + tail, marker between)
  [[testcases]] pattern, results, otherwise, expected, affects_verdict
                                          groups test_case_id, result (measurement, units)
  fail_sets = [\"linux\", \"arceos\", \"axvisor-x86\"]   built-in fail patterns
  retries, retry_on = [\"infra\", \"timeout\", \"fail\"]   (default retry_on: infra, timeout)
  on_reset = \"pass\"                       a guest reset is the expected ending (default fail)
  symbols = [\"kernel.elf\", \"System.map\"]  name where the vCPUs were when a boot fails
  core_dump = \"on-fail\", max_core_size     a failed boot leaves <case>.core.gz (guest memory)
Check a config without booting: qemu-test check --qemu-config F [--log saved.log]

Debugging a boot (command line only, never in GitHub Actions; cases then run one at a time):
  --gdb [ADDR]       QEMU waits paused for gdb (unix socket, or a loopback port); prints the
                     gdb line; the deadlines count only while the guest runs
  --pause-on-fail    a failed boot stays stopped with a gdbstub and QMP until Ctrl-C

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
    #[arg(env = "INPUT_SUITE", long, value_name = "FILE")]
    pub suite: Option<PathBuf>,
    /// Suite case to run (repeatable or comma separated); default: all.
    #[arg(
        long = "case",
        value_name = "NAME",
        env = "INPUT_CASE",
        value_delimiter = ','
    )]
    pub cases: Vec<String>,
    #[command(flatten)]
    pub test_suit: TestSuitArgs,
    /// Kernel to boot: an ELF (its header picks qemu-system-<arch>) or a raw image with --arch.
    #[arg(env = "INPUT_KERNEL", long, value_name = "FILE")]
    pub kernel: Option<PathBuf>,
    /// Build the kernel with cargo from an AxVisor board config (target, features, log, …).
    #[arg(env = "INPUT_BUILD_CONFIG", long, value_name = "FILE")]
    pub build_config: Option<PathBuf>,
    /// VM config to patch and embed (repeatable), after the board's `vm_configs`.
    #[arg(env = "INPUT_VMCONFIGS", long, value_name = "FILE")]
    pub vmconfigs: Vec<PathBuf>,
    /// Build the kernel with this shell command instead (run in the workspace).
    #[arg(env = "INPUT_BUILD_COMMAND", long, value_name = "CMD")]
    pub build_command: Option<String>,
    /// The kernel file --build-command leaves behind.
    #[arg(env = "INPUT_ARTIFACT", long, value_name = "FILE")]
    pub artifact: Option<PathBuf>,
    /// Guest image NAME[:VERSION] from the registry (axvisor-guest format); one per case.
    #[arg(env = "INPUT_IMAGE", long, value_name = "NAME[:VERSION]",
          value_parser = image)]
    pub image: Option<String>,
    /// Image registry: a URL or a local TOML file [default: axvisor-guest's].
    #[arg(env = "INPUT_REGISTRY", long, value_name = "URL|FILE")]
    pub registry: Option<String>,
    /// Image cache [default: $QEMU_TEST_CACHE, $RUNNER_TOOL_CACHE/qemu-test-action,
    /// $XDG_CACHE_HOME/qemu-test-action, ~/.cache/qemu-test-action].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// ostool-compatible QEMU TOML (args, uefi, to_bin, success_regex, fail_regex). Default: the
    /// first of qemu-<arch>.toml, .qemu-<arch>.toml, qemu.toml, .qemu.toml in the workspace.
    #[arg(env = "INPUT_QEMU_CONFIG", long, value_name = "FILE")]
    pub qemu_config: Option<PathBuf>,
    /// Boot on a board through U-Boot instead of QEMU: ostool's U-Boot config (`uboot.toml`:
    /// serial, baud_rate, power commands, dtb_file, [net], success/fail patterns), read unmodified.
    #[arg(
        env = "INPUT_UBOOT_CONFIG",
        long,
        value_name = "FILE",
        conflicts_with = "qemu_config"
    )]
    pub uboot_config: Option<PathBuf>,
    /// Guest architecture (aarch64, x86_64, riscv64, …); default: from the kernel's header (ELF,
    /// Linux arm64/RISC-V Image, x86 bzImage, uImage); needed for raw binaries.
    #[arg(env = "INPUT_ARCH", long, value_name = "ARCH")]
    pub arch: Option<Arch>,
    /// Value of ${workspaceFolder}; default: $WORKSPACE_FOLDER, else the current directory.
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// Deadline for the whole boot, e.g. 30s, 5m, 1h30m.
    /// Default: 5m.
    #[arg(env = "INPUT_TIMEOUT", long, value_name = "DURATION", value_parser = crate::duration::parse)]
    pub timeout: Option<Duration>,
    /// Console log kept on disk per case: the first part and the last 4 MiB, with a marker
    /// where bytes were dropped (the verdict still sees every byte), e.g. 64MiB, 512K.
    /// Default: 64MiB.
    #[arg(long, value_name = "SIZE", value_parser = crate::config::grammar::parse_size)]
    pub max_log_size: Option<u64>,
    /// Success pattern (repeatable); replaces the config's success_regex.
    #[arg(env = "INPUT_SUCCESS_REGEX", long = "success-regex", value_name = "RE")]
    pub success_regex: Vec<String>,
    /// Fail pattern (repeatable); replaces the config's fail_regex.
    #[arg(env = "INPUT_FAIL_REGEX", long = "fail-regex", value_name = "RE")]
    pub fail_regex: Vec<String>,
    /// Symbol file, ELF or System.map (repeatable), naming where the vCPUs were when a boot
    /// fails; replaces the config's `symbols`. The booted kernel ELF is always used.
    #[arg(long = "symbols", value_name = "FILE")]
    pub symbols: Vec<PathBuf>,
    /// `on-fail`: a boot that fails while QEMU runs the guest (deadline, fail pattern, guest
    /// panic) leaves the guest's memory as a gzip'd ELF core, `<case>.core.gz` next to the
    /// console log, for gdb or crash; replaces the config's `core_dump`. Default: off.
    #[arg(env = "INPUT_CORE_DUMP", long, value_name = "off|on-fail", value_enum)]
    pub core_dump: Option<crate::config::grammar::CoreDump>,
    /// Largest guest RAM --core-dump writes (a bigger guest gets a note instead), e.g. 4GiB.
    /// Default: 1GiB.
    #[arg(long, value_name = "SIZE", value_parser = crate::config::grammar::parse_size)]
    pub max_core_size: Option<u64>,
    /// Directory for the console logs and reports [default: qemu-test-out].
    #[arg(env = "INPUT_LOG_DIR", long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// Console log path (default: <out-dir>/<case>.log).
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Case name (default: the kernel's file stem).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// UEFI firmware for `uefi = true` (default: Debian's qemu-efi-aarch64 / ovmf files).
    #[arg(env = "INPUT_FIRMWARE", long, value_name = "FILE")]
    pub firmware: Option<PathBuf>,
    /// Start QEMU paused with a gdbstub and wait for a debugger: on a unix socket in the
    /// case's work dir, or on ADDR, a loopback TCP port (1234, 127.0.0.1:1234, [::1]:1234).
    /// Prints the `gdb -ex 'target remote …' <elf>` line; the deadlines count only while the
    /// guest runs. Local only: refused in GitHub Actions and with --jobs > 1.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "",
          value_parser = crate::qemu::gdb::GdbListen::parse)]
    pub gdb: Option<crate::qemu::gdb::GdbListen>,
    /// A boot that fails while QEMU runs the guest (deadline, fail pattern, guest panic)
    /// keeps QEMU alive, stopped, with a gdbstub and a QMP socket, and prints how to attach;
    /// Ctrl-C then ends the pause (not the run) and the case reports its failure. Local only:
    /// refused in GitHub Actions and with --jobs > 1.
    #[arg(long)]
    pub pause_on_fail: bool,
    /// Print the exact QEMU command and the resolved patterns; run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not echo the guest console (it is still logged).
    #[arg(long, short)]
    pub quiet: bool,
    /// Accelerator: auto (KVM only where it really runs guests), kvm or tcg [default: auto].
    #[arg(env = "INPUT_ACCEL", long, value_name = "auto|kvm|tcg",
          value_parser = accel)]
    pub accel: Option<String>,
    /// What the case needs from the runner: kvm, vmx, svm (repeatable or comma separated).
    #[arg(
        long,
        value_name = "REQ",
        env = "INPUT_REQUIRES",
        value_delimiter = ','
    )]
    pub requires: Vec<String>,
    /// A case this runner cannot run as asked is skipped or fails [default: skip].
    #[arg(env = "INPUT_ON_UNSUPPORTED", long, value_name = "skip|fail")]
    pub on_unsupported: Option<String>,
    /// TOML file overriding the built-in KVM/TCG profiles (see configs/profiles/).
    #[arg(env = "INPUT_PROFILES", long, value_name = "FILE")]
    pub profiles: Option<PathBuf>,
    /// Cases to boot at once [default: from CPUs, memory and each case's -smp/-m; 1 in Actions].
    #[arg(env = "INPUT_JOBS", long, short, value_name = "N")]
    pub jobs: Option<usize>,
    /// Write a JUnit XML report to FILE (`true`: <out-dir>/junit.xml).
    #[arg(env = "INPUT_JUNIT", long, value_name = "FILE")]
    pub junit: Option<String>,
    /// Boot a case again up to N times when its verdict is in `retry_on` (default: infra,
    /// timeout); a pass after a failure is reported flaky.
    #[arg(env = "INPUT_RETRIES", long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(0..=i64::from(crate::config::grammar::MAX_RETRIES)))]
    pub retries: Option<u32>,
    /// An earlier results.json (e.g. the base branch's) to compare each case's boot and
    /// milestone times with, by case name; missing or unreadable = a warning.
    #[arg(env = "INPUT_BASELINE", long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// How much slower than the baseline is a regression: PCT%,DURATION (both must be
    /// exceeded), or PCT% or DURATION alone [default: 20%,500ms].
    #[arg(env = "INPUT_REGRESSION_THRESHOLD", long, value_name = "PCT%,DURATION",
          value_parser = crate::report::baseline::Threshold::parse)]
    pub regression_threshold: Option<crate::report::baseline::Threshold>,
    /// A passing case whose time regressed against --baseline fails.
    #[arg(long, env = "INPUT_FAIL_ON_REGRESSION")]
    pub fail_on_regression: bool,
    /// In GitHub Actions: write the step summary.
    #[arg(long, env = "INPUT_SUMMARY", boolean_input = "true")]
    pub summary: bool,
    /// In GitHub Actions: emit error and warning annotations.
    #[arg(long, env = "INPUT_ANNOTATIONS", boolean_input = "true")]
    pub annotations: bool,
    /// Token for one check run per case (needs `checks: write`); prefer the variable.
    #[arg(
        long,
        env = "INPUT_GITHUB_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub github_token: Option<String>,
    /// Prefix of the check run names: "<prefix> / <case>" [default: qemu-test].
    #[arg(long, env = "INPUT_CHECK_NAME", value_name = "PREFIX")]
    pub check_name: Option<String>,
}
