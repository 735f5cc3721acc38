//! Command-line definition (clap) and dispatch to the pipeline.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::arch::Arch;
use crate::error::{Error, exit};
use crate::plan::{self, RunInputs};
use crate::report::json::JsonReporter;
use crate::report::terminal::TerminalReporter;
use crate::report::{Event, Level, Reporters};
use crate::run::{self, Signals};

const EXIT_CODES: &str = "\
Exit codes:
  0    every case passed (skips allowed by policy)
  1    at least one case failed or timed out
  2    usage or configuration error (nothing ran)
  3    infrastructure error (QEMU missing, download or build failed)
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
    /// Boot a kernel in QEMU and judge its console.
    #[command(after_help = RUN_HELP)]
    Run(RunArgs),
}

const RUN_HELP: &str = "\
The verdict is the first decisive event: a fail pattern, then a success pattern, then QEMU's
exit (status 0 without any success match is a FAIL when success patterns are set), then the
deadline. Patterns are Rust regex syntax (no look-around or backreferences), matched per console
line after ANSI escapes and carriage returns are removed; the unfinished last line (a prompt)
is matched too. The raw console is written to <out-dir>/<case>.log and the results to
<out-dir>/results.json.

Exit codes:
  0    the case passed
  1    it failed or timed out
  2    usage or configuration error (nothing ran)
  3    infrastructure error (QEMU missing, cannot start)
  130  cancelled by SIGINT
  143  cancelled by SIGTERM";

/// Flags of `qemu-test run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Kernel to boot: an ELF (its header picks qemu-system-<arch>) or a raw image with --arch.
    #[arg(long, value_name = "FILE")]
    pub kernel: PathBuf,
    /// ostool-compatible QEMU TOML (args, uefi, to_bin, success_regex, fail_regex). Default: the
    /// first of qemu-<arch>.toml, .qemu-<arch>.toml, qemu.toml, .qemu.toml in the workspace.
    #[arg(long, value_name = "FILE")]
    pub qemu_config: Option<PathBuf>,
    /// Guest architecture (aarch64, x86_64, riscv64, …); default: from the kernel's ELF header.
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<Arch>,
    /// Value of ${workspaceFolder}; default: $WORKSPACE_FOLDER, else the current directory.
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// Deadline for the whole boot, e.g. 30s, 5m, 1h30m.
    #[arg(long, value_name = "DURATION", value_parser = plan::duration::parse, default_value = "5m")]
    pub timeout: Duration,
    /// Success pattern (repeatable); replaces the config's success_regex.
    #[arg(long = "success-regex", value_name = "RE")]
    pub success_regex: Vec<String>,
    /// Fail pattern (repeatable); replaces the config's fail_regex.
    #[arg(long = "fail-regex", value_name = "RE")]
    pub fail_regex: Vec<String>,
    /// Directory for the console log and reports.
    #[arg(long, value_name = "DIR", default_value = "qemu-test-out")]
    pub out_dir: PathBuf,
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
}

impl RunArgs {
    fn inputs(&self) -> RunInputs {
        RunInputs {
            kernel: self.kernel.clone(),
            qemu_config: self.qemu_config.clone(),
            arch: self.arch,
            workspace: self.workspace.clone(),
            timeout: Some(self.timeout),
            success_regex: self.success_regex.clone(),
            fail_regex: self.fail_regex.clone(),
            out_dir: Some(self.out_dir.clone()),
            log: self.log.clone(),
            name: self.name.clone(),
            firmware: self.firmware.clone(),
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
    }
}

async fn run_command(args: &RunArgs) -> i32 {
    // Before anything else, so a cancel at any point still reaps QEMU and writes reports.
    let mut signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => return report_error(&e),
    };
    let case = match plan::plan_case(&args.inputs()) {
        Ok(c) => c,
        Err(e) => return report_error(&e),
    };
    let mut reporters = Reporters::new();
    reporters.add(Box::new(TerminalReporter::new(!args.quiet)));
    for w in &case.config.warnings {
        reporters.emit(Event::Note {
            case: Some(&case.name),
            level: Level::Warning,
            message: &w.message,
            location: Some(&w.location),
        });
    }
    if args.dry_run {
        print_dry_run(&case);
        return exit::PASS;
    }
    reporters.add(Box::new(JsonReporter::new(
        case.out_dir.join("results.json"),
    )));
    let names = [case.name.clone()];
    reporters.emit(Event::RunStarted { cases: &names });
    let result = run::execute_case(&case, &mut reporters, &mut signals).await;
    let results = [result];
    let code = crate::verdict::exit_code(results.iter().map(|r| &r.verdict));
    reporters.emit(Event::CaseFinished {
        result: &results[0],
    });
    reporters.emit(Event::RunFinished {
        results: &results,
        exit_code: code,
    });
    match reporters.finish() {
        Ok(()) => code,
        Err(e) => {
            eprintln!("error: {e}");
            code.max(exit::INFRA)
        }
    }
}

fn print_dry_run(case: &plan::Case) {
    println!("{}", case.command.display());
    for n in &case.command.notes {
        println!("# note: {n}");
    }
    if let Some(bin) = &case.bin_path {
        println!("# to_bin: {} -> {}", case.kernel.display(), bin.display());
    }
    for p in &case.fail {
        println!("# fail pattern: {}", p.spec.regex);
    }
    for p in &case.success {
        println!("# success pattern: {}", p.spec.regex);
    }
    println!("# timeout: {}", plan::duration::format(case.timeout));
    println!("# console log: {}", case.log_path.display());
}

fn report_error(e: &Error) -> i32 {
    eprintln!("error: {e}");
    e.exit_code()
}
