//! `qemu-test run --dry-run`: the exact QEMU command, the build, and the resolved patterns of
//! each case; nothing runs.

use crate::error::{Error, exit};
use crate::plan;
use crate::profile::ProfileDecision;

/// Prints what running the cases would do, and why the `unplanned` ones cannot run here;
/// returns the exit code (the first unplanned case's, else 0).
pub fn print(cases: &[plan::Case], unplanned: &[Error]) -> i32 {
    for case in cases {
        print_case(case, cases.len() + unplanned.len() > 1);
    }
    for e in unplanned {
        println!("# cannot plan here: {e}");
    }
    unplanned.first().map_or(exit::PASS, Error::exit_code)
}

fn print_case(case: &plan::Case, with_name: bool) {
    if with_name {
        println!("# case: {}", case.name);
    }
    match &case.decision {
        Some(ProfileDecision::Skip { reason }) => println!("# skipped: {reason}"),
        Some(ProfileDecision::Fail { reason }) => println!("# cannot run here: {reason}"),
        _ => {}
    }
    println!("{}", case.command.display());
    for n in &case.command.notes {
        println!("# note: {n}");
    }
    if let Some(img) = &case.image {
        println!("# image: {} from {}", img.spec, img.registry);
    }
    if let Some(h) = &case.config.host_http_server {
        println!(
            "# host http server: {}:{} for the boot (guest: 10.0.2.2:{})",
            h.bind, h.port, h.port
        );
    }
    for (i, v) in case.vm_configs.iter().enumerate() {
        let copy = crate::prepare::workdir::config_copy(&case.work_dir, &case.vm_configs, i);
        println!(
            "# vm config: {} (patched as {})",
            v.display(),
            copy.display()
        );
    }
    match super::dry_build_recipe(case) {
        Ok(recipe) if recipe.command.is_some() => {
            println!("# build: {}", recipe.display());
            for f in &recipe.generated {
                println!("# build writes: {} ({})", f.path.display(), f.purpose);
            }
        }
        Ok(_) => {}
        Err(e) => println!("# build: cannot plan: {e}"),
    }
    if let Some(bin) = &case.bin_path {
        println!("# to_bin: {} -> {}", case.kernel.display(), bin.display());
    }
    for step in case.script.timeline() {
        if step.kind == crate::console::script::TimelineKind::Step {
            println!("# {} (once '{}' matched)", step.name, step.pattern);
        }
    }
    if case.default_fail {
        println!(
            "# fail patterns: the config names none, so the built-in `{}` set applies \
             (fail_regex = [] turns it off):",
            crate::console::sets::DEFAULT_SET
        );
    } else if case.fail.is_empty() {
        println!("# fail patterns: none (fail_regex = [])");
    }
    for p in &case.fail {
        println!("# fail pattern: {}", p.spec.regex);
    }
    for p in &case.success {
        println!("# success pattern: {}", p.spec.regex);
    }
    if case.success.is_empty() && case.script.steps_done() {
        println!(
            "# success: no success pattern and no steps, so the guest's clean power-off \
             (QEMU exiting 0, not a reset or panic) is the pass"
        );
    } else if case.success.is_empty() {
        println!("# success: all steps done");
    }
    if case.reset_passes {
        println!("# on_reset = \"pass\": a guest reset is the expected ending");
    }
    println!("# timeout: {}", crate::duration::format(case.timeout));
    println!("# console log: {}", case.log_path.display());
}
