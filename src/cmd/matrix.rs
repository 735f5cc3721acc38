//! `qemu-test matrix`: a suite's cases as a GitHub Actions matrix, printed and written to the
//! `matrix` output.

use crate::cli::MatrixArgs;
use crate::error::{Error, exit};
use crate::plan::Suite;

/// Runs `qemu-test matrix`; returns the exit code.
pub fn command(args: &MatrixArgs) -> i32 {
    match write(args) {
        Ok(()) => exit::PASS,
        Err(e) => e.report(),
    }
}

fn write(args: &MatrixArgs) -> Result<(), Error> {
    let suite = match (
        &args.suite,
        super::run::test_suit(&args.test_suit, args.arch, &super::run::current_dir()?)?,
    ) {
        (_, Some((suite, _))) => suite,
        (Some(path), None) => Suite::load(path)?,
        (None, None) => return Err(Error::usage("matrix needs --suite FILE or --test-suit DIR")),
    };
    let matrix = crate::plan::matrix::matrix(&suite, &args.cases, &args.filter)?.to_string();
    println!("{matrix}");
    if let Some(path) = crate::environment::Runner::from_env().output {
        crate::report::gha::outputs::write_outputs(&path, &[("matrix", matrix)])?;
    }
    Ok(())
}
