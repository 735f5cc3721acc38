//! The environment GitHub Actions gives a step.

use std::path::Path;
use std::process::Command;

/// Makes `cmd` a step of GitHub Actions whose files live in `dir`: the step summary is
/// `<dir>/summary.md`, the step outputs `<dir>/outputs.txt`, the workspace `dir`.
pub fn step_env(cmd: &mut Command, dir: &Path) {
    cmd.env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", dir.join("summary.md"))
        .env("GITHUB_OUTPUT", dir.join("outputs.txt"))
        .env("GITHUB_WORKSPACE", dir);
}
