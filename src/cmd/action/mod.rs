//! `qemu-test action …`: the composite action's own steps, in the binary rather than in shell;
//! only obtaining the binary and setting up the host stay in `scripts/action/` (see
//! `action.yml`). Each step reads the same `INPUT_*` variables through [`super::inputs`], so
//! the action and `qemu-test run` share one rule per input.

pub mod build_cache;
pub mod images;
pub mod prepare;

use crate::cli::{ActionCmd, MatrixArgs};
use crate::cmd::action;
use crate::environment::Runner;
use crate::error::{Error, exit};

/// Runs `qemu-test action …`; returns the exit code.
pub async fn run(cmd: ActionCmd) -> i32 {
    // The runner's environment, read once.
    let runner = Runner::from_env();
    let cwd = match std::env::current_dir() {
        Ok(d) => d,
        Err(e) => return Error::infra(format!("no current directory: {e}")).report(),
    };
    let (ActionCmd::Prepare(args)
    | ActionCmd::ImageCache { inputs: args, .. }
    | ActionCmd::BuildCache { inputs: args, .. }
    | ActionCmd::Run(args)) = &cmd;
    let github = crate::cmd::run::GithubInputs::of(&args.run, &runner);
    let outputs = match cmd {
        ActionCmd::Prepare(args) => action::prepare::prepare(&args, &runner, &cwd).map(|p| {
            for n in &p.notes {
                eprintln!("qemu-test-action: {n}");
            }
            p.outputs()
        }),
        ActionCmd::ImageCache { what, inputs } if what == "key" => {
            action::images::key_step(&inputs, &cwd)
                .await
                .map(|(dir, key, notes)| {
                    for n in &notes {
                        eprintln!("qemu-test-action: {n}");
                    }
                    vec![("dir", dir.display().to_string()), ("key", key)]
                })
        }
        ActionCmd::ImageCache { .. } => crate::image::Cache::locate(None)
            .map(|dir| vec![("filled", action::images::filled(&dir).to_string())]),
        ActionCmd::BuildCache { what, inputs } => {
            action::build_cache::step(&what, &inputs, &runner, &cwd)
        }
        ActionCmd::Run(args) if args.command == "matrix" => {
            return crate::cmd::matrix::command(&MatrixArgs {
                suite: args.run.suite,
                test_suit: args.run.test_suit,
                arch: args.run.arch,
                filter: Vec::new(),
                cases: args.run.cases,
            });
        }
        ActionCmd::Run(args) => return crate::cmd::run::run(&args.run).await,
    };
    match outputs.and_then(|o| emit(&runner, &o)) {
        Ok(()) => exit::PASS,
        Err(e) => crate::cmd::run::report_plan_error(&e, &github),
    }
}

/// Writes `outputs` to `$GITHUB_OUTPUT` when it is set, and prints them as `name=value` lines
/// (multi-line values indented) to stderr for the log.
pub fn emit(runner: &Runner, outputs: &[(&'static str, String)]) -> Result<(), Error> {
    for (k, v) in outputs {
        eprintln!("qemu-test-action: {k}={}", v.replace('\n', "\n    "));
    }
    match &runner.output {
        Some(p) => crate::report::gha::outputs::write_outputs(p, outputs),
        None => Ok(()),
    }
}
