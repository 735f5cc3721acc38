//! `qemu-test run`: from the parsed command line (and the action's `INPUT_*` variables) to
//! planned cases, run through the reporters, to the exit code.

use std::path::{Path, PathBuf};

use crate::arch::Arch;
use crate::cli::{RunArgs, TestSuitArgs};
use crate::environment::Runner;
use crate::error::{Error, exit};
use crate::plan::{self, CaseInputs, RunOptions, Suite};
use crate::profile::Profiles;
use crate::report::gha::{GithubOptions, GithubReporter};
use crate::report::json::JsonReporter;
use crate::report::junit::JunitReporter;
use crate::report::terminal::TerminalReporter;
use crate::report::{Event, Level, Reporters};
use crate::run::Cancel;

/// Runs `qemu-test run`: plans every case, runs them (`--jobs` at once) through the reporters,
/// publishes check runs; returns the exit code.
pub async fn run(args: &RunArgs) -> i32 {
    // The runner's environment, read once.
    let runner = Runner::from_env();
    // Before anything else, so a cancel at any point still reaps QEMU and writes reports.
    let cancel = match Cancel::install() {
        Ok(s) => s,
        Err(e) => return e.report(),
    };
    if let Err(e) = debugging_allowed(args, &runner) {
        return e.report();
    }
    // Reading the configs is quick and local: on this thread. What may take long — walking a
    // test-suit tree, probing the host (it runs QEMU) — goes to a blocking thread, so a signal
    // meanwhile ends the run at once; nothing has been written yet. A second thread costs the
    // common case a start-up and a hand-over (BENCHMARKS.md), so it gets none.
    let gathered = if args.test_suit.test_suit.is_some() {
        let args = args.clone();
        off_thread(&cancel, move || gather(&args)).await
    } else {
        Ok(gather(args))
    };
    let (mut cases, unplanned, profiles) = match gathered {
        Ok(Ok(g)) => g,
        Ok(Err(e)) => return report_plan_error(&e, &GithubInputs::of(args, &runner)),
        Err(code) => return code,
    };
    let cases = if cases.iter().any(plan::Case::needs_probe) {
        match off_thread(&cancel, move || {
            choose_accel(&mut cases, &profiles);
            cases
        })
        .await
        {
            Ok(c) => c,
            Err(code) => return code,
        }
    } else {
        plan::apply_profiles(&mut cases, &plan::probe_not_needed(), &profiles);
        cases
    };
    let baseline = crate::report::baseline::BaselineOptions {
        file: args.baseline.clone(),
        threshold: args.regression_threshold,
        fail_on_regression: args.fail_on_regression,
    };
    let mut reporters = Reporters::new();
    // In Actions the guest console is echoed only by the GitHub reporter, inside a
    // stop-commands window: echoing it anywhere else would let the guest issue commands.
    let echo = !args.quiet && !runner.actions;
    if let Err(e) = debugging_fits(args, &cases) {
        return e.report();
    }
    let jobs = match jobs(args, &cases, &runner) {
        Ok(j) => j,
        Err(e) => return e.report(),
    };
    reporters.add(Box::new(TerminalReporter::new(echo, jobs > 1)));
    emit_warnings(&cases, &mut reporters);
    if args.dry_run {
        let mut reporters = Reporters::new();
        let stdout = Box::new(std::io::stdout());
        reporters.add(Box::new(crate::report::dry_run::DryRunReporter::new(
            stdout,
        )));
        let code = crate::run::dry_run::report(&cases, &unplanned, &reporters);
        return match reporters.finish() {
            Ok(()) => code,
            Err(e) => e.report(),
        };
    }
    let out_dir = &cases[0].out_dir;
    // Held until the process ends: a second run on this out dir stops here, writing nothing.
    let _lock = match crate::prepare::workdir::OutDirLock::acquire(out_dir) {
        Ok(l) => l,
        Err(e) => return e.report(),
    };
    let results_json = out_dir.join("results.json");
    let github = GithubInputs::of(args, &runner);
    let junit = match junit_path(args, out_dir) {
        Ok(j) => j,
        Err(e) => return report_plan_error(&e, &github),
    };
    let gh = github_reporter(
        &github,
        junit.clone(),
        Some(results_json.clone()),
        !args.quiet,
        jobs > 1,
    )
    .map(|g| g.with_summary_file(out_dir.join(crate::cmd::action::prepare::SUMMARY_FILE)));
    reporters.add(Box::new(JsonReporter::new(results_json.clone())));
    if let Some(j) = &junit {
        reporters.add(Box::new(JunitReporter::new(j.clone(), &runner)));
    }
    if let Some(gh) = gh {
        reporters.add(Box::new(gh));
    }
    let baseline = load_baseline(&baseline, &reporters);
    let summary = crate::run::run_all(&cases, &reporters, &cancel, jobs, baseline.as_ref()).await;
    let (results, mut code) = (summary.results, summary.exit_code);
    // The reports are written; a signal now only stops publishing the check runs.
    let mut watch = cancel.clone();
    tokio::select! {
        () = publish_checks(args, &runner, &results, &reporters) => {}
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

/// Publishes one check run per case when a token is given (input `github-token`). Runs after
/// the reporters closed the console window, so its warnings are our own lines; the Checks API
/// never changes the exit code.
async fn publish_checks(
    args: &RunArgs,
    runner: &Runner,
    results: &[crate::report::CaseResult],
    reporters: &Reporters,
) {
    use crate::report::gha::checks::{self, ChecksConfig};
    let Some(cfg) = ChecksConfig::of(
        runner,
        args.github_token.as_deref(),
        args.check_name.as_deref(),
    ) else {
        return;
    };
    let warnings = checks::publish(&cfg, results)
        .await
        .unwrap_or_else(|e| vec![format!("check runs not created: {e}")]);
    for message in &warnings {
        reporters.emit(Event::ChecksWarning { message });
    }
}

/// Runs `f` (planning work that may block for long) on a blocking thread; a signal meanwhile
/// ends the run at once, nothing having run: `Err` is then the exit code.
async fn off_thread<T: Send + 'static>(
    cancel: &Cancel,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, i32> {
    let mut watch = cancel.clone();
    tokio::select! {
        r = tokio::task::spawn_blocking(f) => {
            r.map_err(|e| Error::infra(format!("planning failed: {e}")).report())
        }
        sig = watch.cancelled() => {
            eprintln!("cancelled by {sig} while reading the configuration; nothing ran");
            Err(sig.exit_code())
        }
    }
}

/// Plans every case and reads the profiles. With `--dry-run` a case that cannot be planned is
/// returned with the others (to be shown); otherwise its error ends the run before anything
/// starts.
#[allow(clippy::type_complexity)]
fn gather(args: &RunArgs) -> Result<(Vec<plan::Case>, Vec<Error>, Profiles), Error> {
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
    let profiles = match &args.profiles {
        Some(p) => Profiles::with_overrides(p)?,
        None => Profiles::builtin(),
    };
    Ok((cases, unplanned, profiles))
}

/// Probes the host (when a case could use KVM or has requirements) and applies the KVM/TCG
/// profiles.
fn choose_accel(cases: &mut [plan::Case], profiles: &Profiles) {
    let cache_root = cases.first().and_then(|c| c.cache_dir.clone());
    let probe = crate::host::probe(&crate::host::ProbeOptions {
        // Once per host boot (see host::probe_cache).
        kvm_cache: crate::image::Cache::locate(cache_root.as_deref())
            .ok()
            .map(|root| crate::host::probe_cache::cache_file(&root)),
        ..crate::host::ProbeOptions::default()
    });
    plan::apply_profiles(cases, &probe, profiles);
}

fn plan_inputs(args: &RunArgs) -> Result<Vec<Result<plan::Case, Error>>, Error> {
    let cwd = current_dir()?;
    let (inputs, suite) = case_layers(args, &cwd)?;
    if let Some(s) = &suite {
        for (loc, msg) in &s.warnings {
            eprintln!("warning: {loc}: {msg}");
        }
    }
    plan::plan_run_each(&inputs, suite.as_ref(), &args.cases, &args.options(&cwd))
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

/// The current directory, which relative paths on the command line are relative to.
pub fn current_dir() -> Result<PathBuf, Error> {
    std::env::current_dir()
        .map_err(|e| Error::infra(format!("cannot read the current directory: {e}")))
}

/// The command line's case inputs and the suite its cases come from: the `--test-suit` tree's
/// (whose workspace it is, unless `--workspace` says otherwise), else `--suite`'s; relative
/// paths against `cwd`. What `run` plans, and what the action's build cache key reads.
pub fn case_layers(args: &RunArgs, cwd: &Path) -> Result<(CaseInputs, Option<Suite>), Error> {
    let mut inputs = args.inputs();
    let suite = match test_suit(&args.test_suit, args.arch, cwd)? {
        Some((suite, workspace)) => {
            inputs.workspace = inputs.workspace.or(Some(workspace));
            Some(suite)
        }
        None => args
            .suite
            .as_ref()
            .map(|p| Suite::load(&cwd.join(p)))
            .transpose()?,
    };
    Ok((inputs, suite))
}

/// The discovered cases of tgoskits' test-suit tree (relative to `cwd`) as a suite, with the
/// workspace they belong to; `None` without `--test-suit` (`run` and `matrix`).
pub fn test_suit(
    args: &TestSuitArgs,
    arch: Option<Arch>,
    cwd: &Path,
) -> Result<Option<(Suite, PathBuf)>, Error> {
    let Some(dir) = &args.test_suit else {
        return Ok(None);
    };
    let root = cwd.join(dir);
    let filter = plan::testsuit::Filter {
        archs: arch.into_iter().collect(),
        groups: args.test_group.clone(),
        cases: args.test_case.clone(),
    };
    let cases = plan::testsuit::discover(&root, &filter)?;
    let suite = plan::testsuit::to_suite(&root, &cases)?;
    Ok(Some((suite, plan::testsuit::workspace_of(&root))))
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
            uboot_config: self.uboot_config.clone(),
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
                symbols: self.symbols.clone(),
                core_dump: self.core_dump,
                max_core_size: self.max_core_size,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn options(&self, cwd: &std::path::Path) -> RunOptions {
        RunOptions {
            out_dir: crate::cmd::action::prepare::log_dir(self.out_dir.as_deref(), cwd),
            log: self.log.as_ref().map(|l| cwd.join(l)),
            cache_dir: self.cache_dir.as_ref().map(|c| cwd.join(c)),
            debug: self.debug(),
        }
    }

    /// `--gdb`, `--pause-on-fail`.
    fn debug(&self) -> crate::qemu::gdb::DebugOptions {
        crate::qemu::gdb::DebugOptions {
            gdb: self.gdb,
            pause_on_fail: self.pause_on_fail,
        }
    }
}

/// `--gdb` and `--pause-on-fail` wait for a person at a debugger: refused where nobody can
/// attach (GitHub Actions) and with `--jobs` > 1 (one debugger, one case at a time; a TCP
/// port could not be shared either).
fn debugging_allowed(args: &RunArgs, runner: &Runner) -> Result<(), Error> {
    let debug = args.debug();
    if !debug.any() || args.dry_run {
        return Ok(());
    }
    let flag = debug.flag();
    if runner.actions {
        return Err(Error::usage(format!(
            "{flag} waits for a person to attach a debugger; refused in GitHub Actions \
             (GITHUB_ACTIONS=true), where nobody can"
        ))
        .help(
            "run it on your machine with the same case; in CI, --core-dump on-fail keeps the \
             failed guest's memory for gdb",
        ));
    }
    if let Some(j) = args.jobs.filter(|&j| j > 1) {
        return Err(Error::usage(format!(
            "{flag} runs one case at a time (one debugger at a time); --jobs {j} asks for more"
        ))
        .help("drop --jobs, or pick the case with --case"));
    }
    Ok(())
}

/// `--gdb` and `--pause-on-fail` debug a guest through QEMU's gdbstub: a case booted on a
/// board (through U-Boot) has none, so the flags are refused there rather than dropped.
fn debugging_fits(args: &RunArgs, cases: &[plan::Case]) -> Result<(), Error> {
    let debug = args.debug();
    if !debug.any() || args.dry_run {
        return Ok(());
    }
    match cases.iter().find(|c| c.board.is_some()) {
        Some(case) => Err(Error::usage(format!(
            "{} debugs a guest in QEMU (its gdbstub); case `{}` boots on a board \
             (uboot-config), which has none",
            debug.flag(),
            case.name
        ))
        .help("drop the flag, or pick the QEMU cases with --case")),
        None => Ok(()),
    }
}

/// `--jobs`, else what the host can take (see [`crate::run::default_jobs`]).
fn jobs(args: &RunArgs, cases: &[plan::Case], runner: &Runner) -> Result<usize, Error> {
    match args.jobs {
        Some(0) => Err(Error::usage("--jobs must be at least 1")),
        Some(j) => Ok(j),
        // A debugger session is one case at a time.
        None if args.debug().any() => Ok(1),
        // In Actions the console of each case is echoed in its own log group: one case at a
        // time keeps the groups whole (parallelism there comes from the matrix).
        None if runner.actions => Ok(1),
        None => Ok(crate::run::default_jobs(cases)),
    }
}

/// `--junit`: a path, or `true` for `<out-dir>/junit.xml`.
fn junit_path(args: &RunArgs, out_dir: &std::path::Path) -> Result<Option<PathBuf>, Error> {
    // Relative to the current directory, like every other path flag.
    let cwd = std::env::current_dir().unwrap_or_default();
    crate::cmd::inputs::junit_path(args.junit.as_deref(), out_dir, &cwd)
}

/// What the GitHub reporter is asked for (`--summary`, `--annotations`, the token to mask),
/// and the runner it reports to.
#[derive(Debug, Clone)]
pub struct GithubInputs {
    pub summary: bool,
    pub annotations: bool,
    pub token: Option<String>,
    pub runner: Runner,
}

impl GithubInputs {
    pub fn of(args: &RunArgs, runner: &Runner) -> Self {
        GithubInputs {
            summary: args.summary,
            annotations: args.annotations,
            token: args.github_token.clone(),
            runner: runner.clone(),
        }
    }

    /// The inputs' defaults: used when the inputs themselves could not be read.
    pub fn defaults(runner: &Runner) -> Self {
        GithubInputs {
            summary: true,
            annotations: true,
            token: None,
            runner: runner.clone(),
        }
    }
}

/// The GitHub reporter when running in Actions; `echo_console` is false with `--quiet`,
/// `parallel` when cases run at once.
fn github_reporter(
    inputs: &GithubInputs,
    junit: Option<PathBuf>,
    results_json: Option<PathBuf>,
    echo_console: bool,
    parallel: bool,
) -> Option<GithubReporter> {
    let reporter = GithubReporter::for_runner(Box::new(std::io::stdout()), &inputs.runner)?;
    let mut reporter = reporter.with_options(GithubOptions {
        annotations: inputs.annotations,
        summary: inputs.summary,
        junit,
        results_json,
        echo_console,
        parallel,
        ..GithubOptions::default()
    });
    if let Some(token) = &inputs.token {
        reporter.mask(token);
    }
    Some(reporter)
}

/// A planning error: on the terminal, and in Actions also as an annotation at the config line,
/// in the step summary and as `verdict=error` in the outputs (nothing ran).
pub(crate) fn report_plan_error(e: &Error, inputs: &GithubInputs) -> i32 {
    let code = e.report();
    if let Some(gh) = github_reporter(inputs, None, None, true, false) {
        let mut reporters = Reporters::new();
        reporters.add(Box::new(gh));
        reporters.emit(Event::Failed {
            case: None,
            error: e,
        });
        reporters.emit(Event::RunFinished {
            results: &[],
            exit_code: code,
            // nothing ran
            outcome: crate::verdict::worst([]),
        });
        if let Err(err) = reporters.finish() {
            eprintln!("error: {err}");
        }
    }
    code
}
