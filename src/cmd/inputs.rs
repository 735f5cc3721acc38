//! The composite action's `INPUT_*` variables as arguments: each input is defined once, as a
//! clap argument with `env = "INPUT_…"` (`crate::cli`), and [`parse`] reads the variables into
//! those arguments with the toolkit's rules: a boolean input is `true`/`True`/`TRUE` or
//! `false`/`False`/`FALSE` (YAML 1.2 core schema, as `@actions/core`'s `getBooleanInput`),
//! anything else is an error naming the input; an empty or missing value means "not given".

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, Command, error::ErrorKind};

use crate::cli::parse_boolean;
pub use crate::environment::Lookup;
use crate::error::Error;

/// The inputs of `qemu-test action prepare` (all of them) parsed from `vars`, an input error as
/// `Err` (tests of the action's steps).
#[cfg(test)]
pub fn action_args(vars: &impl Lookup) -> Result<crate::cli::ActionArgs, Error> {
    use crate::cli::{ActionCmd, Cli, Command};
    let argv = ["qemu-test", "action", "prepare"].map(Into::into).to_vec();
    match parse::<Cli>(argv, vars) {
        Ok(Cli {
            command: Command::Action(ActionCmd::Prepare(args)),
        }) => Ok(args),
        Err(ParseError::Input(e)) => Err(e),
        other => panic!("{other:?}"),
    }
}

/// The action's inputs by name (`("log-dir", "out")`) as the variables the runner sets for
/// them (tests of the action's steps, which speak the workflow's names).
#[cfg(test)]
pub fn given(inputs: &[(&str, &str)]) -> impl Lookup + use<> {
    let vars: Vec<(String, &str)> = inputs.iter().map(|(k, v)| (var_name(k), *v)).collect();
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    crate::environment::map(&pairs)
}

/// The variable that carries an input: `log-dir` → `INPUT_LOG_DIR`.
pub fn var_name(input: &str) -> String {
    format!("INPUT_{}", input.replace(['-', ' '], "_").to_uppercase())
}

/// The input a variable carries: `INPUT_LOG_DIR` → `log-dir`.
pub fn input_name(var: &str) -> String {
    var.trim_start_matches("INPUT_")
        .replace('_', "-")
        .to_lowercase()
}

/// The trimmed value of the variable `name` (`INPUT_LOG_DIR`), `None` when missing or empty.
pub fn var(vars: &impl Lookup, name: &str) -> Option<String> {
    vars.get(name)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// `qemu-test run …` when no `INPUT_*` variable is set at all (every run outside Actions):
/// run's own arguments parsed by run's definition alone, without building the other
/// subcommands (the whole command is most of clap's share of a run's start-up,
/// BENCHMARKS.md). `None` when this does not apply or the line does not parse as it stands
/// (help, a usage error): then [`parse`] parses and reports exactly as always.
pub fn run_alone(argv: &[OsString], vars: &impl Lookup) -> Option<crate::cli::RunArgs> {
    use clap::{Args, FromArgMatches};
    if argv.get(1).is_none_or(|a| a != "run") || vars.any_named("INPUT_") {
        return None;
    }
    let cmd = crate::cli::RunArgs::augment_args(Command::new("run").bin_name("qemu-test run"));
    let matches = cmd.try_get_matches_from(&argv[1..]).ok()?;
    crate::cli::RunArgs::from_arg_matches(&matches).ok()
}

/// Why the command line and inputs could not be parsed.
#[derive(Debug)]
pub enum ParseError {
    /// From clap: usage errors, and `--help`/`--version` (printed, exit code from it).
    Clap(clap::Error),
    /// An input's value does not parse (the message names the input).
    Input(Error),
}

/// Parses `argv` with the inputs in `vars`: the one place `INPUT_*` variables become
/// arguments. Each argument of the chosen subcommand whose definition says `env = "INPUT_…"`
/// and that the command line does not give takes the input's value with the toolkit's rules:
/// trimmed, empty = not given; a repeatable argument takes one value per line (and per comma
/// where it is comma separated); a flag takes a boolean as getBooleanInput reads it. A value
/// that does not parse is an error naming the input. clap itself never reads the environment
/// (it would take an empty input as a value).
pub fn parse<T: clap::Parser>(argv: Vec<OsString>, vars: &impl Lookup) -> Result<T, ParseError> {
    let full = T::command();
    // The common case outside Actions: no input is set, in `vars` or in the environment clap
    // read while building the command. Then the definition itself parses exactly as the two
    // passes below would, and its help already shows the `[env: …]` names: one parse, no
    // copies of the command (which cost most of a run's start-up, see BENCHMARKS.md).
    if !any_input(&full, vars) {
        return full
            .try_get_matches_from(&argv)
            .and_then(|m| T::from_arg_matches(&m))
            .map_err(ParseError::Clap);
    }
    let strict = without_env(full.clone());
    // Which subcommand and which of its arguments the command line gives; leniently, since an
    // input may be what meets a requirement.
    let lenient = |c: Command| c.ignore_errors(true);
    let given = match each_command(strict.clone(), &lenient).try_get_matches_from(&argv) {
        Ok(m) => m,
        Err(e) => return Err(ParseError::Clap(with_env_help(full, &argv, e))),
    };
    let (mut cmd, mut matches) = (&full, &given);
    while let Some((name, sub)) = matches.subcommand() {
        let Some(c) = cmd.find_subcommand(name) else {
            break;
        };
        (cmd, matches) = (c, sub);
    }
    let mut extra: Vec<OsString> = Vec::new();
    for arg in cmd.get_arguments() {
        let (Some(env), Some(long)) = (arg.get_env(), arg.get_long()) else {
            continue;
        };
        let env = env.to_string_lossy();
        if matches.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine) {
            continue;
        }
        let Some(value) = var(vars, &env) else {
            continue;
        };
        extra.extend(input_flags(arg, long, &env, &value).map_err(ParseError::Input)?);
    }
    let mut all = argv;
    all.extend(extra);
    let m = strict
        .try_get_matches_from(&all)
        .map_err(ParseError::Clap)?;
    T::from_arg_matches(&m).map_err(ParseError::Clap)
}

/// The `--long=value` arguments an input's value stands for, each value checked by the
/// argument's own parser.
fn input_flags(arg: &Arg, long: &str, env: &str, value: &str) -> Result<Vec<OsString>, Error> {
    let input = input_name(env);
    if matches!(arg.get_action(), ArgAction::SetTrue) {
        return match parse_boolean(value) {
            Some(true) => Ok(vec![format!("--{long}").into()]),
            Some(false) => Ok(Vec::new()),
            None => Err(not_boolean(&input, value)),
        };
    }
    let values: Vec<String> = if matches!(arg.get_action(), ArgAction::Append) {
        let delimiter = arg.get_value_delimiter();
        value
            .lines()
            .flat_map(|l| match delimiter {
                Some(d) => l.split(d).map(str::to_string).collect(),
                None => vec![l.to_string()],
            })
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect()
    } else {
        vec![value.to_string()]
    };
    let mut one = Arg::new("value")
        .long(long.to_string())
        .value_parser(arg.get_value_parser().clone())
        .action(ArgAction::Set);
    if let Some(name) = arg.get_value_names().and_then(|n| n.first()) {
        one = one.value_name(name.clone());
    }
    let check = Command::new("input").no_binary_name(true).arg(one);
    values
        .into_iter()
        .map(|v| {
            let flag: OsString = format!("--{long}={v}").into();
            match check.clone().try_get_matches_from([&flag]) {
                Ok(_) => Ok(flag),
                Err(e) => {
                    // clap's words ("invalid value 'soon' for '--timeout <DURATION>': …"), on
                    // one line.
                    let text = e.to_string();
                    let why: Vec<&str> = text
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
                        .collect();
                    let why = why.join(" ");
                    let why = why.strip_prefix("error: ").unwrap_or(&why);
                    Err(Error::usage(format!("input `{input}` ({env}): {why}"))
                        .help(format!("fix `{input}:` in the workflow")))
                }
            }
        })
        .collect()
}

/// Whether any argument of `cmd` or its subcommands names a variable (`env = "INPUT_…"`) that
/// is set: in `vars`, or in the process environment, which clap reads while building `cmd`.
fn any_input(cmd: &Command, vars: &impl Lookup) -> bool {
    cmd.get_arguments().filter_map(Arg::get_env).any(|env| {
        crate::environment::process()
            .get_os(&env.to_string_lossy())
            .is_some()
            || env.to_str().is_some_and(|name| vars.get(name).is_some())
    }) || cmd.get_subcommands().any(|c| any_input(c, vars))
}

/// `cmd` and its subcommands with `f` applied to each.
fn each_command(cmd: Command, f: &impl Fn(Command) -> Command) -> Command {
    f(cmd).mut_subcommands(|c| each_command(c, f))
}

/// The command without the environment values clap read while building it: inputs reach the
/// arguments only through [`parse`].
fn without_env(cmd: Command) -> Command {
    each_command(cmd, &|c| c.mut_args(|a| a.env(None)))
}

/// `--help` shown by the definition with its `[env: INPUT_…]` names.
fn with_env_help(full: Command, argv: &[OsString], e: clap::Error) -> clap::Error {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => full
            .try_get_matches_from(argv)
            .err()
            .filter(|h| h.kind() == e.kind())
            .unwrap_or(e),
        _ => e,
    }
}

fn not_boolean(input: &str, v: &str) -> Error {
    Error::usage(format!(
        "input `{input}`: '{v}' is not a boolean (the action accepts true, True, TRUE, false, \
         False or FALSE, as @actions/core's getBooleanInput)"
    ))
    .help(format!("write `{input}: true` or `{input}: false`"))
}

/// Words YAML 1.1 (and people) read as booleans but the toolkit does not: refused where an input
/// is a boolean *or* a path, so `junit: yes` is an error instead of a file named `yes`.
fn looks_boolean(v: &str) -> bool {
    matches!(
        v.to_ascii_lowercase().as_str(),
        "yes" | "no" | "on" | "off" | "y" | "n" | "1" | "0" | "true" | "false"
    )
}

/// Where the JUnit report goes: `junit` is `true` (`<out-dir>/junit.xml`), `false` or empty (no
/// report), or a path (relative to `cwd`). One rule for the prepare step and the run.
pub fn junit_path(
    value: Option<&str>,
    out_dir: &Path,
    cwd: &Path,
) -> Result<Option<PathBuf>, Error> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    match parse_boolean(v) {
        Some(true) => Ok(Some(out_dir.join("junit.xml"))),
        Some(false) => Ok(None),
        None if looks_boolean(v) => Err(Error::usage(format!(
            "junit: '{v}' is neither a boolean nor a file path"
        ))
        .help(
            "write `true` (for <log-dir>/junit.xml), `false`, or a path such as `out/junit.xml`",
        )),
        None => Ok(Some(cwd.join(v))),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::cli::{ActionArgs, Cli, Command as Sub, MatrixArgs, RunArgs};

    use crate::environment::map as vars;

    fn cli(argv: &[&str], pairs: &[(&str, &str)]) -> Result<Cli, ParseError> {
        let argv = std::iter::once("qemu-test")
            .chain(argv.iter().copied())
            .map(OsString::from)
            .collect();
        parse::<Cli>(argv, &vars(pairs))
    }

    fn run(argv: &[&str], pairs: &[(&str, &str)]) -> RunArgs {
        let argv: Vec<&str> = std::iter::once("run").chain(argv.iter().copied()).collect();
        match cli(&argv, pairs) {
            Ok(Cli {
                command: Sub::Run(args),
            }) => *args,
            other => panic!("{other:?}"),
        }
    }

    /// An environment with no variable at all (no input set).
    struct NoVars;
    impl Lookup for NoVars {
        fn get(&self, _: &str) -> Option<String> {
            None
        }
        fn any_named(&self, _: &str) -> bool {
            false
        }
    }

    fn argv(line: &[&str]) -> Vec<OsString> {
        std::iter::once("qemu-test")
            .chain(line.iter().copied())
            .map(OsString::from)
            .collect()
    }

    /// run's definition alone reads a command line exactly as the whole command does, and
    /// leaves help, usage errors, other subcommands and any set input to [`parse`].
    #[test]
    fn run_alone_parses_as_the_whole_command_and_leaves_the_rest_to_it() {
        for line in [
            &["run", "--qemu-config", "q.toml", "--kernel", "k.elf"][..],
            &[
                "run",
                "--suite",
                "s.toml",
                "--jobs",
                "2",
                "--timeout",
                "30s",
                "--dry-run",
            ],
            &[
                "run",
                "--test-suit",
                "ts",
                "--arch",
                "riscv64",
                "--test-case",
                "smoke",
            ],
            &[
                "run",
                "--gdb",
                "--qemu-config",
                "q.toml",
                "--success-regex",
                "a",
                "--success-regex",
                "b",
            ],
        ] {
            let fast = run_alone(&argv(line), &NoVars).expect("run's own line");
            let whole = match parse::<Cli>(argv(line), &NoVars) {
                Ok(Cli {
                    command: Sub::Run(args),
                }) => *args,
                other => panic!("{other:?}"),
            };
            assert_eq!(format!("{fast:?}"), format!("{whole:?}"), "{line:?}");
        }
        for line in [
            &["run", "--help"][..],
            &["run", "--no-such-flag"],
            &["run", "--version"],
            &["check", "--config", "q.toml"],
            &["--version"],
            &[],
        ] {
            assert!(run_alone(&argv(line), &NoVars).is_none(), "{line:?}");
        }
        // Any INPUT_* variable: the whole command reads the inputs.
        let with_input = argv(&["run", "--qemu-config", "q.toml"]);
        assert!(run_alone(&with_input, &given(&[("timeout", "5s")])).is_none());
    }

    fn action(pairs: &[(&str, &str)]) -> ActionArgs {
        action_args(&vars(pairs)).unwrap()
    }

    /// The input error's message (exit code 2), or a panic.
    fn input_error(argv: &[&str], pairs: &[(&str, &str)]) -> String {
        match cli(argv, pairs) {
            Err(ParseError::Input(e)) => {
                assert_eq!(e.exit_code(), 2);
                e.to_string()
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn booleans_follow_get_boolean_input() {
        for (v, want) in [
            ("true", true),
            ("True", true),
            ("TRUE", true),
            ("false", false),
            ("False", false),
            ("FALSE", false),
            (" true ", true),
        ] {
            let r = run(
                &[],
                &[("INPUT_SUMMARY", v), ("INPUT_FAIL_ON_REGRESSION", v)],
            );
            assert_eq!((r.summary, r.fail_on_regression), (want, want), "{v}");
            assert_eq!(action(&[("INPUT_UPLOAD_LOGS", v)]).upload_logs, want, "{v}");
        }
        for v in ["yes", "no", "1", "0", "tRUE", "on", "enabled"] {
            for input in ["upload-logs", "summary", "fail-on-regression"] {
                let msg = input_error(&["action", "prepare"], &[(&var_name(input), v)]);
                assert!(
                    msg.contains(&format!("input `{input}`")) && msg.contains(&format!("'{v}'")),
                    "{msg}"
                );
            }
        }
        let r = run(&[], &[]);
        assert!(r.summary && r.annotations && !r.fail_on_regression);
        assert!(run(&[], &[("INPUT_SUMMARY", "  ")]).summary);
        let a = action(&[]);
        assert!(a.upload_logs && a.cache_images);
        assert_eq!(a.command, "run");
    }

    #[test]
    fn empty_inputs_are_not_given_and_lists_split() {
        let r = run(
            &[],
            &[
                ("INPUT_KERNEL", ""),
                ("INPUT_TIMEOUT", " 90s "),
                ("INPUT_ACCEL", "   "),
                ("INPUT_SUCCESS_REGEX", "a, b\n\n c \n"),
                ("INPUT_REQUIRES", "kvm, vmx"),
                ("INPUT_CASE", "a, b\nc,,"),
                ("INPUT_VMCONFIGS", "x.toml\ny.toml"),
            ],
        );
        assert_eq!(r.kernel, None);
        assert_eq!(r.accel, None);
        assert_eq!(r.timeout, Some(Duration::from_secs(90)));
        assert_eq!(r.success_regex, ["a, b", "c"]);
        assert_eq!(r.requires, ["kvm", "vmx"]);
        assert_eq!(r.cases, ["a", "b", "c"]);
        assert_eq!(
            r.vmconfigs,
            [PathBuf::from("x.toml"), PathBuf::from("y.toml")]
        );
    }

    #[test]
    fn flags_win_over_inputs() {
        let pairs = [
            ("INPUT_TIMEOUT", "90s"),
            ("INPUT_CASE", "y"),
            ("INPUT_KERNEL", "k"),
        ];
        let r = run(&["--timeout", "1s", "--case", "x"], &pairs);
        assert_eq!(r.timeout, Some(Duration::from_secs(1)));
        assert_eq!(r.cases, ["x"]);
        assert_eq!(r.kernel, Some(PathBuf::from("k")));
    }

    #[test]
    fn a_bad_value_names_its_input() {
        for (var, value, reason) in [
            ("INPUT_TIMEOUT", "soon", "soon"),
            (
                "INPUT_REGRESSION_THRESHOLD",
                "lots",
                "invalid regression threshold 'lots'",
            ),
            ("INPUT_RETRIES", "11", "11"),
            ("INPUT_JOBS", "many", "many"),
            ("INPUT_ARCH", "vax", "vax"),
        ] {
            let msg = input_error(&["run"], &[(var, value)]);
            let input = input_name(var);
            assert!(
                msg.contains(&format!("input `{input}` ({var})")) && msg.contains(reason),
                "{msg}"
            );
        }
        let msg = input_error(&["action", "run"], &[("INPUT_COMMAND", "rm -rf")]);
        assert!(
            msg.contains("input `command`") && msg.contains("'rm -rf'") && msg.contains("matrix"),
            "{msg}"
        );
    }

    #[test]
    fn baseline_inputs_reach_the_run() {
        let r = run(
            &[],
            &[
                ("INPUT_BASELINE", "base/results.json"),
                ("INPUT_REGRESSION_THRESHOLD", "50%"),
                ("INPUT_FAIL_ON_REGRESSION", "true"),
            ],
        );
        assert_eq!(r.baseline, Some(PathBuf::from("base/results.json")));
        assert_eq!(
            r.regression_threshold,
            Some(crate::report::baseline::Threshold::parse("50%").unwrap())
        );
        assert!(r.fail_on_regression);
        let r = run(&["--baseline", "x.json"], &[("INPUT_BASELINE", "y.json")]);
        assert_eq!(r.baseline, Some(PathBuf::from("x.json")));
    }

    #[test]
    fn an_input_meets_a_required_argument_and_help_names_the_variables() {
        match cli(&["matrix"], &[("INPUT_SUITE", "s.toml")]) {
            Ok(Cli {
                command: Sub::Matrix(MatrixArgs { suite, .. }),
            }) => assert_eq!(suite, Some(PathBuf::from("s.toml"))),
            other => panic!("{other:?}"),
        }
        match cli(&["matrix"], &[]) {
            Err(ParseError::Clap(e)) => assert!(e.use_stderr(), "{e}"),
            other => panic!("{other:?}"),
        }
        match cli(&["run", "--help"], &[]) {
            Err(ParseError::Clap(e)) => {
                let help = e.to_string();
                assert!(help.contains("[env: INPUT_TIMEOUT"), "{help}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn junit_is_true_false_or_a_path_never_a_file_named_yes() {
        let (out, cwd) = (Path::new("/w/out"), Path::new("/w"));
        assert_eq!(
            junit_path(Some("TRUE"), out, cwd).unwrap(),
            Some(PathBuf::from("/w/out/junit.xml"))
        );
        assert_eq!(junit_path(Some("False"), out, cwd).unwrap(), None);
        assert_eq!(junit_path(None, out, cwd).unwrap(), None);
        assert_eq!(
            junit_path(Some("reports/j.xml"), out, cwd).unwrap(),
            Some(PathBuf::from("/w/reports/j.xml"))
        );
        for v in ["yes", "no", "on", "1"] {
            let e = junit_path(Some(v), out, cwd).unwrap_err();
            assert!(
                e.to_string().contains("neither a boolean nor a file path"),
                "{e}"
            );
        }
    }

    #[test]
    fn input_names_map_to_their_variables() {
        assert_eq!(var_name("log-dir"), "INPUT_LOG_DIR");
        assert_eq!(var_name("github-token"), "INPUT_GITHUB_TOKEN");
        assert_eq!(input_name("INPUT_FAIL_ON_REGRESSION"), "fail-on-regression");
    }
}
