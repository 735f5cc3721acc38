//! `qemu-test check` on the terminal: findings as `file:line:col: warning: …`, then each replay.

use std::path::PathBuf;

use crate::cli::CheckArgs;

/// Runs `qemu-test check`; returns the exit code.
pub fn check(args: &CheckArgs) -> i32 {
    let req = crate::check::CheckRequest {
        qemu_config: args.qemu_config.clone(),
        uboot_config: args.uboot_config.clone(),
        suite: args.suite.clone(),
        test_suit: args.test_suit.clone(),
        log: args.log.clone(),
        workspace: args
            .workspace
            .clone()
            .or_else(crate::environment::workspace_folder)
            .unwrap_or_else(|| PathBuf::from(".")),
    };
    match crate::check::check(&req) {
        Ok(report) => {
            for w in &report.warnings {
                println!("{w}");
            }
            for n in &report.notes {
                println!("{}: note: {}", n.location, n.message);
            }
            for (name, r) in &report.replays {
                println!("{name}: {}", r.report.trim_end());
            }
            if report.warnings.is_empty() && report.replays.is_empty() {
                println!("ok: no findings");
            }
            report.exit_code()
        }
        Err(e) => e.report(),
    }
}
