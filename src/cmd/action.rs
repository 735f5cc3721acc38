//! `qemu-test action …`: the composite action's steps that are not about obtaining the binary or
//! setting up the host (see `action.yml`).

use crate::action;
use crate::cli::{ActionCmd, MatrixArgs};
use crate::error::{Error, exit};

/// Runs `qemu-test action …`; returns the exit code.
pub async fn run(cmd: ActionCmd) -> i32 {
    let vars = action::inputs::env();
    let cwd = match std::env::current_dir() {
        Ok(d) => d,
        Err(e) => return Error::infra(format!("no current directory: {e}")).report(),
    };
    let (ActionCmd::Prepare(args)
    | ActionCmd::ImageCache { inputs: args, .. }
    | ActionCmd::BuildCache { inputs: args, .. }
    | ActionCmd::Run(args)) = &cmd;
    let github = crate::cmd::run::GithubInputs::of(&args.run);
    let outputs = match cmd {
        ActionCmd::Prepare(args) => action::prepare::prepare(&args, &vars, &cwd).map(|p| {
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
            action::build_cache::step(&what, &inputs, &vars, &cwd)
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
    match outputs.and_then(|o| action::emit(&vars, &o)) {
        Ok(()) => exit::PASS,
        Err(e) => crate::cmd::run::report_plan_error(&e, &github),
    }
}
