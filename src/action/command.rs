//! `qemu-test action …`: the composite action's steps that are not about obtaining the binary or
//! setting up the host (see `action.yml`).

use std::path::PathBuf;

use clap::Parser;

use crate::action;
use crate::cli::{ActionCmd, Cli, Command, MatrixArgs, TestSuitArgs};
use crate::error::{Error, exit};

/// Runs `qemu-test action …`; returns the exit code.
pub async fn run(cmd: ActionCmd) -> i32 {
    let vars = action::inputs::env();
    let cwd = match std::env::current_dir() {
        Ok(d) => d,
        Err(e) => return Error::infra(format!("no current directory: {e}")).report(),
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
        ActionCmd::BuildCache { what } => action::build_cache::step(&what, &vars, &cwd),
        ActionCmd::Run => {
            return match action::inputs::text(&vars, "command").as_deref() {
                None | Some("run") => match Cli::try_parse_from(["qemu-test", "run"]) {
                    Ok(Cli {
                        command: Command::Run(args),
                    }) => crate::run::command::run(&args).await,
                    _ => exit::USAGE,
                },
                Some("matrix") => crate::plan::matrix::command(&MatrixArgs {
                    suite: action::inputs::text(&vars, "suite").map(PathBuf::from),
                    test_suit: TestSuitArgs::default(),
                    arch: None,
                    filter: Vec::new(),
                    cases: Vec::new(),
                }),
                Some(other) => crate::run::command::report_plan_error(
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
        Err(e) => crate::run::command::report_plan_error(&e),
    }
}
