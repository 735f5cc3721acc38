//! `qemu-test run --dry-run`: what running the cases would do — the exact QEMU command, the
//! build, the resolved patterns of each case — and why the others cannot run here, on stdout
//! (or any writer). Nothing runs.

use std::io::{self, Write};

use super::{Event, Reporter};
use crate::build::Recipe;
use crate::error::Error;
use crate::plan::Case;
use crate::profile::ProfileDecision;

/// Writes [`Event::DryRun`] as `#`-comment lines around each case's command.
pub struct DryRunReporter {
    out: Box<dyn Write + Send>,
    error: Option<Error>,
}

impl DryRunReporter {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        DryRunReporter { out, error: None }
    }
}

impl Reporter for DryRunReporter {
    fn event(&mut self, event: &Event<'_>) {
        if let Event::DryRun {
            cases,
            builds,
            unplanned,
        } = event
        {
            let r = write(&mut self.out, cases, builds, unplanned).and_then(|()| self.out.flush());
            if let Err(e) = r {
                self.error = Some(Error::infra(format!("cannot write to stdout: {e}")));
            }
        }
    }

    fn finish(&mut self) -> Result<(), Error> {
        self.error.take().map_or(Ok(()), Err)
    }
}

fn write(
    out: &mut dyn Write,
    cases: &[Case],
    builds: &[Result<Recipe, Error>],
    unplanned: &[Error],
) -> io::Result<()> {
    let with_name = cases.len() + unplanned.len() > 1;
    for (case, build) in cases.iter().zip(builds) {
        write_case(out, case, build, with_name)?;
    }
    for e in unplanned {
        writeln!(out, "# cannot plan here: {e}")?;
    }
    Ok(())
}

fn write_case(
    out: &mut dyn Write,
    case: &Case,
    build: &Result<Recipe, Error>,
    with_name: bool,
) -> io::Result<()> {
    if with_name {
        writeln!(out, "# case: {}", case.name)?;
    }
    match &case.decision {
        Some(ProfileDecision::Skip { reason }) => writeln!(out, "# skipped: {reason}")?,
        Some(ProfileDecision::Fail { reason }) => writeln!(out, "# cannot run here: {reason}")?,
        _ => {}
    }
    // The disk an image's rootfs replaces is shown as the run gives it: the per-run copy.
    let mut command = case.command.clone();
    let mut rootfs_notes = Vec::new();
    if let Some(image) = &case.image {
        let copy = crate::prepare::workdir::rootfs_copy(&case.work_dir);
        let disks =
            crate::prepare::drives::rootfs_args(&command.args, Some(&copy), &image.spec.name);
        if disks.attached {
            command.args = disks.args;
            rootfs_notes = disks.notes;
        }
        for extra in &case.extra_images {
            let copy = case.work_dir.join(&extra.spec.name);
            let disks =
                crate::prepare::drives::extra_disk_args(&command.args, &copy, &extra.spec.name);
            command.args = disks.args;
            rootfs_notes.extend(disks.notes);
        }
    }
    writeln!(out, "{}", command.display())?;
    for n in &case.command.notes {
        writeln!(out, "# note: {n}")?;
    }
    for n in rootfs_notes {
        writeln!(
            out,
            "# note: {n} The image's rootfs is copied there when the case runs (the file the \
             config names is neither read nor written); an image without one drops the drive."
        )?;
    }
    for img in case.image.iter().chain(&case.extra_images) {
        writeln!(out, "# image: {} from {}", img.spec, img.registry)?;
    }
    if let Some(h) = &case.config.host_http_server {
        writeln!(
            out,
            "# host http server: {}:{} for the boot (guest: 10.0.2.2:{})",
            h.bind, h.port, h.port
        )?;
    }
    for (i, v) in case.vm_configs.iter().enumerate() {
        let copy = crate::prepare::workdir::config_copy(&case.work_dir, &case.vm_configs, i);
        writeln!(
            out,
            "# vm config: {} (patched as {})",
            v.display(),
            copy.display()
        )?;
    }
    match build {
        Ok(recipe) if recipe.command.is_some() => {
            writeln!(out, "# build: {}", recipe.display())?;
            for f in &recipe.generated {
                writeln!(out, "# build writes: {} ({})", f.path.display(), f.purpose)?;
            }
            for step in &recipe.post {
                writeln!(out, "# build then writes: {}", step.describe())?;
            }
            for n in &recipe.notes {
                writeln!(out, "# build note: {n}")?;
            }
        }
        Ok(_) => {}
        Err(e) => writeln!(out, "# build: cannot plan: {e}")?,
    }
    if let Some(bin) = &case.bin_path {
        writeln!(
            out,
            "# to_bin: {} -> {}",
            case.kernel.display(),
            bin.display()
        )?;
    }
    if let Some(esp) = &case.command.esp {
        writeln!(
            out,
            "# uefi: {} -> {}; {} -> {}",
            case.bin_path.as_ref().unwrap_or(&case.kernel).display(),
            esp.boot_file.display(),
            esp.firmware.vars.display(),
            esp.vars.display()
        )?;
    }
    for step in case.judge.script.timeline() {
        if step.kind == crate::console::script::TimelineKind::Step {
            writeln!(out, "# {} (once '{}' matched)", step.name, step.pattern)?;
        }
    }
    if case.judge.default_fail {
        writeln!(
            out,
            "# fail patterns: the config names none, so the built-in `{}` set applies \
             (fail_regex = [] turns it off):",
            crate::console::sets::DEFAULT_SET
        )?;
    } else if case.judge.fail.is_empty() {
        writeln!(out, "# fail patterns: none (fail_regex = [])")?;
    }
    for p in &case.judge.fail {
        writeln!(out, "# fail pattern: {}", p.spec.regex)?;
    }
    for p in &case.judge.success {
        writeln!(out, "# success pattern: {}", p.spec.regex)?;
    }
    if case.judge.success.is_empty() && case.judge.script.steps_done() {
        writeln!(
            out,
            "# success: no success pattern and no steps, so the guest's clean power-off \
             (QEMU exiting 0, not a reset or panic) is the pass"
        )?;
    } else if case.judge.success.is_empty() {
        writeln!(out, "# success: all steps done")?;
    }
    if case.reset_passes {
        writeln!(
            out,
            "# on_reset = \"pass\": a guest reset is the expected ending"
        )?;
    }
    writeln!(
        out,
        "# timeout: {}",
        crate::duration::format(case.judge.timeout)
    )?;
    writeln!(out, "# console log: {}", case.log_path.display())?;
    Ok(())
}
