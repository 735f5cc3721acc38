//! `qemu-test run --dry-run`: the exact QEMU command, the build, and the resolved patterns of
//! each case, through the reporters (`report::dry_run` writes them); nothing runs.

use crate::error::{Error, exit};
use crate::plan;
use crate::report::{Event, Reporters};

/// Reports what running the cases would do, and why the `unplanned` ones cannot run here;
/// returns the exit code (the first unplanned case's, else 0).
pub fn report(cases: &[plan::Case], unplanned: &[Error], reporters: &Reporters) -> i32 {
    let builds: Vec<_> = cases.iter().map(super::dry_build_recipe).collect();
    reporters.emit(Event::DryRun {
        cases,
        builds: &builds,
        unplanned,
    });
    unplanned.first().map_or(exit::PASS, Error::exit_code)
}
