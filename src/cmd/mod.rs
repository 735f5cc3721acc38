//! The commands: each file turns one parsed subcommand (`crate::cli`) into calls to the library,
//! prints what it returns and gives the exit code. [`main`] parses and dispatches.

pub mod action;
pub mod check;
pub mod images;
pub mod inputs;
pub mod matrix;
pub mod probe;
pub mod run;

use crate::cli::{Cli, Command};
use crate::error::exit;

/// Parses the command line (with the action's `INPUT_*` variables) and runs it; returns the
/// process exit code.
pub async fn main() -> i32 {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(args) = inputs::run_alone(&argv, &crate::environment::process()) {
        return run::run(&args).await;
    }
    let cli = match inputs::parse::<Cli>(argv, &crate::environment::process()) {
        Ok(c) => c,
        Err(inputs::ParseError::Clap(e)) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit::USAGE
            } else {
                exit::PASS
            };
        }
        Err(inputs::ParseError::Input(e)) => {
            let runner = crate::environment::Runner::from_env();
            return run::report_plan_error(&e, &run::GithubInputs::defaults(&runner));
        }
    };
    match cli.command {
        Command::Run(args) => run::run(&args).await,
        Command::Matrix(args) => matrix::command(&args),
        Command::Probe(args) => probe::probe(args.json),
        Command::Check(args) => check::check(&args),
        Command::Images(cmd) => images::command(cmd).await,
        Command::Action(cmd) => action::run(cmd).await,
    }
}
