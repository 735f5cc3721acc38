//! One case through its stages — image, prepare, build, boot — to a [`CaseResult`]. Every
//! stage is timed and reported; an error in any stage ends the case with an `error` verdict
//! that names the stage, and the reports are still written.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Cancel, QemuRun, boot};
use crate::build::axbuild::board_recipe;
use crate::build::cargo::{CargoRequest, build_env};
use crate::build::recipe::Recipe;
use crate::error::Error;
use crate::image::{Cache, FetchOptions, Fetcher, Registry};
use crate::plan::{Case, KernelSource};
use crate::prepare::{ImageFiles, PrepareRequest, Prepared};
use crate::profile::ProfileDecision;
use crate::report::{CaseResult, Event, ImageRef, Level, Reporters, Stage, StageTiming};
use crate::verdict::{Outcome, Verdict};

/// Runs one planned case to its result. Never fails: errors become an [`Outcome::Error`].
pub async fn execute_case(case: &Case, reporters: &Reporters, cancel: &mut Cancel) -> CaseResult {
    let start = Instant::now();
    if let Some(sig) = cancel.is_cancelled() {
        let mut v = Verdict::new(
            Outcome::Cancelled,
            format!("not started: cancelled by {}", sig.name()),
        );
        v.cancelled_by = Some(sig);
        return CaseResult::without_boot(&case.name, v, Duration::ZERO);
    }
    reporters.emit(Event::CaseStarted { case: &case.name });
    let mut run = CaseRun {
        case,
        reporters,
        stages: Vec::new(),
        image: None,
        command: case.command.clone(),
        files: None,
        extra_files: Vec::new(),
        guest_kernels: Vec::new(),
        current: None,
    };
    let mut result = match unsupported(case, reporters) {
        Some(result) => result,
        None => run.stages(cancel).await,
    };
    result.arch = Some(case.arch);
    result.accel = case.accel().map(|a| a.name().to_string());
    result.image = run.image;
    // A board has no QEMU command line.
    result.command = case.board.is_none().then_some(run.command);
    result.stages = run.stages;
    result.config_file = Some(case.config.path.clone()).filter(|p| p.is_file());
    result.duration = start.elapsed();
    result
}

/// The state of a case while its stages run.
struct CaseRun<'a> {
    case: &'a Case,
    reporters: &'a Reporters,
    stages: Vec<StageTiming>,
    image: Option<ImageRef>,
    /// The QEMU command, updated by the prepare stage (rootfs copy, removed disks).
    command: crate::qemu::QemuCommand,
    /// The extracted image, kept so a retry can boot from a fresh copy of its rootfs.
    files: Option<ImageFiles>,
    /// The case's further images, by name (kept for a retry's fresh copies, as `files`).
    extra_files: Vec<(String, ImageFiles)>,
    /// The guests' kernels the prepared VM configs boot (AxVisor).
    guest_kernels: Vec<PathBuf>,
    /// The stage running now and when it began, for a cancel before the boot.
    current: Option<(Stage, Instant)>,
}

impl CaseRun<'_> {
    async fn stages(&mut self, cancel: &mut Cancel) -> CaseResult {
        // A signal during the image, prepare or build stage drops that stage's future: a
        // download stops (its partial file stays for a resume), a build's process group is
        // SIGKILLed by `QemuProcess`'s drop (a build leaves nothing worth a graceful stop).
        let mut watch = cancel.clone();
        let prepared = tokio::select! {
            r = self.prepare_all() => Ok(r),
            sig = watch.cancelled() => Err(sig),
        };
        match prepared {
            Ok(Ok(program)) => self.boot(program, cancel).await,
            Ok(Err((stage, e))) => self.error_result(stage, e),
            Err(sig) => self.cancelled_result(sig),
        }
    }

    /// The result of a case cancelled before its boot: the stage that was running is recorded
    /// as ended (not ok) and named in the reason.
    fn cancelled_result(&mut self, sig: crate::verdict::CancelSignal) -> CaseResult {
        let during = match self.current.take() {
            Some((stage, t)) => {
                self.record(stage, t, false);
                format!(" during the {} stage", stage.name())
            }
            None => String::new(),
        };
        let mut v = Verdict::new(
            Outcome::Cancelled,
            format!("cancelled by {}{during}", sig.name()),
        );
        v.cancelled_by = Some(sig);
        let mut r = CaseResult::without_boot(&self.case.name, v, Duration::ZERO);
        r.log = self
            .case
            .log_path
            .exists()
            .then(|| self.case.log_path.clone());
        r
    }

    /// Image, prepare and build; returns the QEMU binary to run.
    async fn prepare_all(&mut self) -> Result<PathBuf, (Stage, Error)> {
        let case = self.case;
        let (files, extras) = match &case.image {
            Some(req) => {
                let t = self.begin(Stage::Image);
                let r = self.fetch_images(req, &case.extra_images).await;
                let (files, extras) = self.end(Stage::Image, t, r)?;
                (Some(files), extras)
            }
            None => (None, Vec::new()),
        };
        let t = self.begin(Stage::Prepare);
        let r = self.prepare(files.as_ref(), &extras).await;
        let prepared = self.end(Stage::Prepare, t, r)?;
        self.files = files;
        self.extra_files = extras;
        if case.source_needs_build() {
            let t = self.begin(Stage::Build);
            let r = self.build(&prepared).await;
            self.end(Stage::Build, t, r)?;
        }
        let t = self.begin(Stage::Boot);
        let r = self.stage_kernel();
        self.end_untimed(Stage::Boot, t, r)
    }

    /// The case's image, then its further images (each its own disk), fetched alike.
    async fn fetch_images(
        &mut self,
        main: &crate::plan::ImageRequest,
        extras: &[crate::plan::ImageRequest],
    ) -> Result<(ImageFiles, Vec<(String, ImageFiles)>), Error> {
        let (image, files) = self.fetch_image(main).await?;
        self.image = Some(image);
        let mut more = Vec::new();
        for req in extras {
            let (_, files) = self.fetch_image(req).await?;
            more.push((req.spec.name.clone(), files));
        }
        Ok((files, more))
    }

    async fn fetch_image(
        &mut self,
        req: &crate::plan::ImageRequest,
    ) -> Result<(ImageRef, ImageFiles), Error> {
        let opts = FetchOptions::default();
        let fetcher = Fetcher::new(opts.clone())?;
        let tgos = crate::image::tgos::TgosEnv::from_env();
        let cache = Cache::new(Cache::locate(self.case.cache_dir.as_deref())?)
            .with_options(opts)
            .with_local_storage(tgos.local_storage);
        let copies = cache.registry_copies();
        let fallback = tgos.fallback_url.as_deref();
        let registry =
            Registry::load_from(&req.registry, fallback, &fetcher, Some(&copies)).await?;
        for w in &registry.warnings {
            self.note(Level::Warning, w);
        }
        let mut progress = crate::image::progress::for_stderr();
        let image =
            crate::image::ensure_image(&registry, &req.spec, &cache, progress.as_mut()).await?;
        let image_ref = ImageRef {
            name: image.name.clone(),
            version: Some(image.version.clone()),
            sha256: Some(image.sha256.clone()),
        };
        self.note(
            Level::Info,
            &format!(
                "image {}:{} ({}) in {}",
                image.name,
                image.version,
                &image.sha256[..12.min(image.sha256.len())],
                image.dir.display()
            ),
        );
        Ok((image_ref, ImageFiles::of(&image, self.case.arch)))
    }

    /// Creates the out dir and, with VM configs or an image, the patched work dir.
    async fn prepare(
        &mut self,
        image: Option<&ImageFiles>,
        extra_images: &[(String, ImageFiles)],
    ) -> Result<Prepared, Error> {
        let case = self.case;
        create_dir(&case.out_dir, &case.out_dir)?;
        if let Some(parent) = case.log_path.parent() {
            create_dir(&case.out_dir, parent)?;
        }
        if case.vm_configs.is_empty() && image.is_none() {
            return Ok(Prepared {
                vm_configs: Vec::new(),
                qemu_args: self.command.args.clone(),
                rootfs: None,
                notes: Vec::new(),
                guest_kernels: Vec::new(),
            });
        }
        create_dir(&case.out_dir, &case.work_dir.join("vmconfigs"))?;
        let prepared = crate::prepare::prepare(&PrepareRequest {
            work_dir: &case.work_dir,
            vm_configs: &case.vm_configs,
            image,
            extra_images,
            qemu_args: &self.command.args,
        })
        .await?;
        self.command.args = prepared.qemu_args.clone();
        self.guest_kernels = prepared.guest_kernels.clone();
        for note in &prepared.notes {
            if !self.command.notes.contains(note) {
                self.command.notes.push(note.clone());
            }
        }
        Ok(prepared)
    }

    /// Builds the kernel and puts it where the QEMU command expects it.
    async fn build(&mut self, prepared: &Prepared) -> Result<(), Error> {
        let case = self.case;
        let mut recipe = build_recipe(case, &prepared.vm_configs)?;
        if matches!(case.source, KernelSource::Cargo { .. }) {
            // cargo writes below it: no planted symlink may send that elsewhere.
            create_dir(
                &case.out_dir,
                &crate::build::cargo::target_root(&case.out_dir),
            )?;
            if let Some(dir) = recipe
                .command
                .as_mut()
                .and_then(|c| crate::build::cargo::target_dir_arg(&mut c.args))
                && let Some(from) = crate::build::cargo::seed_target_dir(Path::new(dir))
            {
                self.note(
                    Level::Info,
                    &format!(
                        "build: starting from the cached target dir {} (other VM configs): \
                         dependencies are reused",
                        from.display()
                    ),
                );
            }
        }
        self.note(Level::Info, &format!("build: {}", recipe.display()));
        for n in &recipe.notes {
            self.note(Level::Info, &format!("build: {n}"));
        }
        let reporters = self.reporters;
        let name = case.name.as_str();
        let mut on_output = |bytes: &[u8]| reporters.emit(Event::BuildOutput { case: name, bytes });
        let elf =
            crate::build::exec::run_build(&recipe, case.build_timeout, &mut on_output).await?;
        for step in &recipe.post {
            self.note(
                Level::Info,
                &format!("build then writes: {}", step.describe()),
            );
            match step {
                crate::build::PostStep::Kallsyms => crate::build::kallsyms::write(&elf)?,
            }
        }
        if let Some(dir) = case.kernel.parent() {
            create_dir(&case.out_dir, dir)?;
        }
        crate::prepare::workdir::copy_file(&elf, &case.kernel)
    }

    /// A `uefi = true` boot's ESP and a fresh copy of the firmware's variable store (before
    /// every attempt: the firmware writes to both).
    fn lay_out_esp(&self) -> Result<(), Error> {
        let case = self.case;
        match &self.command.esp {
            Some(esp) => {
                let kernel = case.bin_path.as_ref().unwrap_or(&case.kernel);
                crate::prepare::workdir::lay_out_esp(esp, &case.out_dir, kernel)
            }
            None => Ok(()),
        }
    }

    /// Writes the flat binary when `to_bin`, lays out a `uefi = true` boot's ESP and variable
    /// store, and finds the QEMU binary.
    fn stage_kernel(&self) -> Result<PathBuf, Error> {
        let case = self.case;
        if let Some(bin) = &case.bin_path {
            let elf = std::fs::read(&case.kernel)
                .map_err(|e| Error::input_io(&case.kernel, "kernel", &e))?;
            let flat = crate::build::elf::to_bin(&elf)?;
            crate::prepare::workdir::write_file(bin, &flat)?;
        }
        self.lay_out_esp()?;
        if case.board.is_some() {
            // The board runs the kernel; no QEMU is needed.
            return Ok(PathBuf::new());
        }
        self.command.resolve_program().ok_or_else(|| {
            Error::infra(format!("{} not found on PATH", self.command.program)).help(format!(
                "install it: sudo apt-get install {} (Debian/Ubuntu), or put it on PATH",
                case.arch.debian_package()
            ))
        })
    }

    /// Boots, and boots again while the verdict's class is allowed a retry (each attempt with
    /// its own deadlines); earlier attempts are kept, their logs as `<case>.attemptN.log` (and core dumps as
    /// `<case>.attemptN.core.gz`).
    async fn boot(&mut self, program: PathBuf, cancel: &mut Cancel) -> CaseResult {
        let case = self.case;
        let mut attempts = Vec::new();
        loop {
            let mut r = self.boot_once(program.clone(), cancel).await;
            let retry = attempts.len() < case.retries as usize
                && cancel.is_cancelled().is_none()
                && retryable(r.verdict.outcome, &case.retry_on);
            if !retry {
                r.flaky = !attempts.is_empty() && r.verdict.outcome == Outcome::Pass;
                r.attempts = attempts;
                return r;
            }
            let n = attempts.len() + 1;
            self.note(
                Level::Warning,
                &format!(
                    "attempt {n} ended {}: {}; retrying",
                    r.verdict.outcome.name(),
                    r.verdict.reason
                ),
            );
            let kept = case.log_path.with_extension(format!("attempt{n}.log"));
            let log = std::fs::rename(&case.log_path, &kept)
                .is_ok()
                .then_some(kept);
            let duration = match self.stages.last() {
                Some(t) if t.stage == Stage::Boot => {
                    self.stages.pop().map_or(Duration::ZERO, |t| t.duration)
                }
                _ => Duration::ZERO,
            };
            let mut verdict = r.verdict;
            if let Some(pm) = verdict.postmortem.as_mut()
                && let Some(core) = pm.core_dump.take()
            {
                let kept = case.log_path.with_extension(format!("attempt{n}.core.gz"));
                pm.core_dump = std::fs::rename(&core, &kept).is_ok().then_some(kept);
            }
            attempts.push(crate::report::model::Attempt {
                verdict,
                duration,
                console_tail: r.console_tail,
                log,
            });
            // The guest wrote to its rootfs copy: the next attempt starts from a fresh one.
            let extras = self.extra_files.clone();
            if let Some(files) = self.files.clone()
                && let Err(e) = self.prepare(Some(&files), &extras).await
            {
                return self.error_result(Stage::Prepare, e);
            }
            // So did the firmware to its variable store and the ESP.
            if let Err(e) = self.lay_out_esp() {
                return self.error_result(Stage::Prepare, e);
            }
        }
    }

    async fn boot_once(&mut self, program: PathBuf, cancel: &mut Cancel) -> CaseResult {
        let case = self.case;
        let qemu_run = QemuRun {
            case,
            command: &self.command,
            program,
            guest_kernels: &self.guest_kernels,
        };
        // `[host_http_server]`: up before QEMU starts, down once the boot has ended.
        let server = match &case.config.host_http_server {
            Some(spec) => {
                match super::host_http::HostHttpServer::start(spec, &case.workspace).await {
                    Ok(s) => Some(s),
                    Err(e) => return self.error_result(Stage::Boot, e),
                }
            }
            None => None,
        };
        let t = Instant::now();
        let (r, qemu_version) = match &case.board {
            Some(config) => {
                let board = super::board::BoardRun {
                    case,
                    config,
                    kernel: case.bin_path.as_deref().unwrap_or(&case.kernel),
                };
                let r = super::board::boot(&board, self.reporters, cancel).await;
                (r, None)
            }
            None => {
                let cache_root = crate::image::Cache::locate(case.cache_dir.as_deref()).ok();
                let versions = crate::qemu::version::VersionCache::new(cache_root.as_deref());
                // Looked up (and when not cached, asked) while the guest boots, so it costs no
                // wall time: `join!` polls the boot first, which starts QEMU before its first
                // wait.
                let version = async {
                    match versions.cached(&qemu_run.program) {
                        Some(v) => Some(v),
                        None => versions.query(&qemu_run.program).await,
                    }
                };
                tokio::join!(boot(&qemu_run, self.reporters, cancel), version)
            }
        };
        if let Some(s) = server {
            s.stop().await;
        }
        let ok = matches!(&r, Ok(b) if b.result.verdict.outcome == Outcome::Pass);
        let elapsed = r.as_ref().map_or(t.elapsed(), |b| b.elapsed);
        self.reporters.emit(Event::StageFinished {
            case: &case.name,
            stage: Stage::Boot,
            elapsed,
            ok,
        });
        self.stages.push(StageTiming {
            stage: Stage::Boot,
            duration: elapsed,
            ok,
        });
        match r {
            Ok(b) => {
                if let Some(m) = &b.result.verdict.decided_by {
                    self.reporters.emit(Event::Decided {
                        case: &case.name,
                        info: m,
                    });
                }
                CaseResult {
                    qemu_version,
                    log: Some(case.log_path.clone()),
                    ..b.result
                }
            }
            Err(e) => self.error_result(Stage::Boot, e),
        }
    }

    fn error_result(&self, stage: Stage, e: Error) -> CaseResult {
        let case = self.case;
        self.reporters.emit(Event::Failed {
            case: Some(&case.name),
            error: &e,
        });
        let reason = format!("{} stage failed: {}", stage.name(), e.message);
        let mut r = CaseResult::without_boot(
            &case.name,
            Verdict::new(Outcome::Error, reason),
            Duration::ZERO,
        );
        r.log = case.log_path.exists().then(|| case.log_path.clone());
        r
    }

    fn begin(&mut self, stage: Stage) -> Instant {
        self.reporters.emit(Event::StageStarted {
            case: &self.case.name,
            stage,
        });
        let t = Instant::now();
        self.current = Some((stage, t));
        t
    }

    fn end<T>(
        &mut self,
        stage: Stage,
        t: Instant,
        r: Result<T, Error>,
    ) -> Result<T, (Stage, Error)> {
        self.record(stage, t, r.is_ok());
        r.map_err(|e| (stage, e))
    }

    /// Reports and records the end of the stage that began at `t`.
    fn record(&mut self, stage: Stage, t: Instant, ok: bool) {
        self.current = None;
        let elapsed = t.elapsed();
        self.reporters.emit(Event::StageFinished {
            case: &self.case.name,
            stage,
            elapsed,
            ok,
        });
        self.stages.push(StageTiming {
            stage,
            duration: elapsed,
            ok,
        });
    }

    /// The boot stage's own start: its timing is recorded when QEMU ends, unless this fails.
    fn end_untimed<T>(
        &mut self,
        stage: Stage,
        t: Instant,
        r: Result<T, Error>,
    ) -> Result<T, (Stage, Error)> {
        match r {
            Ok(v) => {
                self.current = None;
                Ok(v)
            }
            Err(e) => self.end(stage, t, Err(e)),
        }
    }

    fn note(&self, level: Level, message: &str) {
        self.reporters.emit(Event::Note {
            case: Some(&self.case.name),
            level,
            message,
            location: None,
        });
    }
}

impl Case {
    /// Whether the kernel comes from a build (cargo or the user's command).
    fn source_needs_build(&self) -> bool {
        !matches!(
            self.source,
            KernelSource::Prebuilt(_) | KernelSource::Firmware(_)
        )
    }
}

/// The build stage's recipe for a case with the (patched) VM configs to embed.
pub fn build_recipe(case: &Case, vm_configs: &[PathBuf]) -> Result<Recipe, Error> {
    match &case.source {
        KernelSource::Prebuilt(k) | KernelSource::Firmware(k) => Ok(Recipe::prebuilt(k)),
        KernelSource::Cargo { board, package } => board_recipe(&CargoRequest {
            board,
            package,
            vm_configs,
            workspace: &case.workspace,
            // Under the out dir, not the checkout's target/: a run writes nothing in the
            // user's tree. One target dir per VM-config set below it.
            target_root: &crate::build::cargo::target_root(&case.out_dir),
            release: true,
        }),
        KernelSource::Shell { command, artifact } => Ok(Recipe::shell(
            command,
            artifact,
            &case.workspace,
            build_env(None, vm_configs, &case.workspace),
        )),
    }
}

/// The build recipe as `--dry-run` shows it, before the prepare stage has written the patched VM
/// configs: `AXVISOR_VM_CONFIGS` names the patched copies, and the per-config-set target dir,
/// named from their (not yet known) contents, is shown as `vmcfg-<hash of the patched configs>`.
pub fn dry_build_recipe(case: &Case) -> Result<Recipe, Error> {
    let mut recipe = build_recipe(case, &case.vm_configs)?;
    let patched: Vec<String> = (0..case.vm_configs.len())
        .map(|i| {
            crate::prepare::workdir::config_copy(&case.work_dir, &case.vm_configs, i)
                .display()
                .to_string()
        })
        .collect();
    if let Some(cmd) = recipe.command.as_mut() {
        for (key, value) in &mut cmd.env {
            if key == "AXVISOR_VM_CONFIGS" {
                *value = patched.join(":");
            }
        }
        if let Some(dir) = crate::build::cargo::target_dir_arg(&mut cmd.args) {
            let root = crate::build::cargo::target_root(&case.out_dir);
            *dir = format!("{}/vmcfg-<hash of the patched configs>", root.display());
        }
    }
    Ok(recipe)
}

/// The result of a case the profile decided not to run (skip or fail by policy), after telling
/// the user why; `None` when it runs, after passing on the profile's warnings.
fn unsupported(case: &Case, reporters: &Reporters) -> Option<CaseResult> {
    let (outcome, reason) = match &case.decision {
        Some(ProfileDecision::Use { warnings, .. }) => {
            for w in warnings {
                reporters.emit(Event::Note {
                    case: Some(&case.name),
                    level: Level::Warning,
                    message: w,
                    location: None,
                });
            }
            return None;
        }
        None => return None,
        // Every report names the outcome before the reason ("SKIP", "skipped:"), so the
        // reason is the profile's own words, said once.
        Some(ProfileDecision::Skip { reason }) => (Outcome::Skipped, reason.clone()),
        Some(ProfileDecision::Fail { reason }) => (
            Outcome::Error,
            format!("cannot run on this runner: {reason}"),
        ),
    };
    Some(CaseResult::without_boot(
        &case.name,
        Verdict::new(outcome, reason),
        Duration::ZERO,
    ))
}

/// Creates `dir`, refusing symlinks planted below the out dir.
fn create_dir(out_dir: &Path, dir: &Path) -> Result<(), Error> {
    crate::prepare::workdir::create_dir_in(out_dir, dir)
}

/// Whether a verdict belongs to a class the user allows retries for.
fn retryable(outcome: Outcome, retry_on: &[String]) -> bool {
    let class = match outcome {
        Outcome::Error => "infra",
        Outcome::Timeout => "timeout",
        Outcome::Fail => "fail",
        _ => return false,
    };
    retry_on.iter().any(|c| c == class)
}
