//! `qemu-test matrix`: a suite's cases as a GitHub Actions matrix (`{"include":[…]}`), printed
//! and written to the `matrix` output.

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
        crate::run::command::test_suit(
            &args.test_suit,
            args.arch,
            &crate::run::command::current_dir()?,
        )?,
    ) {
        (_, Some((suite, _))) => suite,
        (Some(path), None) => Suite::load(path)?,
        (None, None) => return Err(Error::usage("matrix needs --suite FILE or --test-suit DIR")),
    };
    let matrix = matrix(&suite, &args.cases, &args.filter)?.to_string();
    println!("{matrix}");
    if let Some(path) = std::env::var_os("GITHUB_OUTPUT") {
        crate::report::gha::outputs::write_outputs(
            std::path::Path::new(&path),
            &[("matrix", matrix)],
        )?;
    }
    Ok(())
}

/// The matrix of the suite's cases named in `names` (all when empty) whose name contains one of
/// `filter` (all when empty): each entry's `case`, `arch` and `runner`.
pub fn matrix(
    suite: &Suite,
    names: &[String],
    filter: &[String],
) -> Result<serde_json::Value, Error> {
    let include: Vec<serde_json::Value> = suite
        .select(names)?
        .into_iter()
        .filter(|c| {
            let name = c.name.as_deref().unwrap_or_default();
            filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()))
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
    Ok(serde_json::json!({ "include": include }))
}
