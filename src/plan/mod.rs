//! Turning inputs (command-line flags and the files they name) into a typed [`Case`] before
//! anything runs: every config error surfaces here, with file:line:column.

pub mod inputs;
pub mod judge;
pub mod matrix;
pub mod suite;
pub mod testsuit;

pub use inputs::CaseInputs;
pub use judge::{JudgeSource, JudgeSpec, judge_spec};
pub use suite::Suite;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::arch::Arch;
use crate::build::board::{BoardConfig, is_generated};
use crate::build::cargo::PackageInfo;
use crate::build::elf;
use crate::build::format::KernelFormat;
use crate::config::{QemuConfig, Warning};
use crate::error::Error;
use crate::host::{HostProbe, KvmProbe};
use crate::profile::{self, Accel, AccelRequest, Policy, ProfileDecision, Profiles, Requirement};
use crate::qemu::{CommandRequest, QemuCommand};

/// How long the console must stay quiet before a success on an unfinished line (a prompt) is
/// final: long enough that a guest still writing that line (e.g. `… panicked at` after a
/// pause) is not cut short, short enough not to matter next to a boot. Lines that end are
/// decided at once.
pub const SUCCESS_SETTLE: Duration = Duration::from_millis(500);

/// Default boot deadline: generous for TCG boots, far below CI job limits.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// Where a case's kernel comes from.
#[derive(Debug, Clone)]
pub enum KernelSource {
    /// `--kernel FILE`: nothing to build.
    Prebuilt(PathBuf),
    /// `--build-config BOARD.toml`: cargo, as AxVisor's `cargo xtask qemu` builds.
    Cargo {
        board: Box<BoardConfig>,
        package: PackageInfo,
    },
    /// `--build-command CMD --artifact FILE`.
    Shell { command: String, artifact: PathBuf },
    /// No kernel: the QEMU config's own `-bios`/`-pflash`/`-drive`/`-cdrom` (or `uefi = true`)
    /// is the guest under test, e.g. U-Boot or an EFI shell. The path is the firmware or disk
    /// file named there (it names the case).
    Firmware(PathBuf),
}

impl KernelSource {
    /// The file whose stem names the case by default.
    fn name_hint(&self) -> &Path {
        match self {
            KernelSource::Prebuilt(k) => k,
            KernelSource::Cargo { board, .. } => &board.path,
            KernelSource::Shell { artifact, .. } => artifact,
            KernelSource::Firmware(f) => f,
        }
    }
}

/// A guest image to fetch before the case runs.
#[derive(Debug, Clone)]
pub struct ImageRequest {
    pub spec: crate::image::ImageSpec,
    /// URL or file of the axvisor-guest registry.
    pub registry: String,
}

impl ImageRequest {
    /// The registry image a layered case asks for (its registry, else the default one); what
    /// the run fetches and what the action's image cache key is made of.
    pub fn of(inputs: &CaseInputs) -> Result<Option<ImageRequest>, Error> {
        let Some(spec) = &inputs.image else {
            return Ok(None);
        };
        Ok(Some(ImageRequest {
            spec: spec.parse()?,
            registry: inputs
                .registry
                .clone()
                .unwrap_or_else(|| crate::image::DEFAULT_REGISTRY.to_string()),
        }))
    }

    /// The further images a layered case asks for (`extra_images`), from the main image's
    /// registry: each disk's own, fetched and copied per run like the main one.
    pub fn extras(inputs: &CaseInputs) -> Result<Vec<ImageRequest>, Error> {
        let Some(main) = ImageRequest::of(inputs)? else {
            return Ok(Vec::new());
        };
        inputs
            .extra_images
            .iter()
            .map(|spec| {
                Ok(ImageRequest {
                    spec: spec.parse()?,
                    registry: main.registry.clone(),
                })
            })
            .collect()
    }
}

/// Default deadline of the build stage (a cold AxVisor build takes minutes).
/// Bytes typed at once for a step's `send` (bursts stall some UARTs).
pub const DEFAULT_SEND_CHUNK: usize = 16;
/// Pause between typed chunks.
pub const DEFAULT_SEND_DELAY: Duration = Duration::from_millis(5);

pub const DEFAULT_BUILD_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Run-wide options (not per case).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Absolute out dir for logs and reports.
    pub out_dir: PathBuf,
    /// Absolute console log path; only with a single case.
    pub log: Option<PathBuf>,
    /// Image cache root (`--cache-dir`); `None` = the documented default.
    pub cache_dir: Option<PathBuf>,
    /// `--gdb`, `--pause-on-fail` (command line only).
    pub debug: crate::qemu::gdb::DebugOptions,
}

/// One fully resolved test case.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub arch: Arch,
    /// The ELF or image QEMU boots (before `to_bin`): the prebuilt kernel, or where the build
    /// stage puts its result (`<work_dir>/kernel.elf`).
    pub kernel: PathBuf,
    pub source: KernelSource,
    /// The user's VM configs (board's then `--vmconfigs`), absolute; patched copies are made
    /// in `work_dir` by the prepare stage.
    pub vm_configs: Vec<PathBuf>,
    pub image: Option<ImageRequest>,
    /// Further images whose rootfs is another disk of the config ([`ImageRequest::extras`]).
    pub extra_images: Vec<ImageRequest>,
    /// Per-case work directory (`<out>/cases/<case>`).
    pub work_dir: PathBuf,
    /// Config-file findings to report (QEMU TOML, board config).
    pub warnings: Vec<crate::config::qemu::Warning>,
    /// When set, the ELF must be converted to this flat binary before boot (`to_bin`).
    pub bin_path: Option<PathBuf>,
    pub config: QemuConfig,
    pub workspace: PathBuf,
    pub command: QemuCommand,
    /// The console's judge: patterns with their places, grammar, the boot's deadline
    /// ([`judge_spec`], the same `check` replays logs through).
    pub judge: JudgeSpec,
    /// Deadline for the build stage.
    pub build_timeout: Duration,
    /// Image cache root (`--cache-dir`).
    pub cache_dir: Option<PathBuf>,
    pub out_dir: PathBuf,
    pub log_path: PathBuf,
    /// No console output for this long ends the boot as a timeout.
    pub inactivity_timeout: Option<Duration>,
    /// Console log bytes kept on disk (`max_log_size`).
    pub max_log_size: u64,
    /// `on_reset = "pass"`: a guest reset is the expected ending, not a failure.
    pub reset_passes: bool,
    /// Symbol files (ELF or `System.map`) naming where the vCPUs were when the boot fails.
    pub symbols: Vec<PathBuf>,
    /// `core_dump = "on-fail"`: the largest guest RAM dumped when the boot fails.
    pub core_dump: Option<u64>,
    /// `--gdb`, `--pause-on-fail`: from the command line, never a config.
    pub debug: crate::qemu::gdb::DebugOptions,
    /// Typing pace for step `send`s: bytes per chunk and the pause between chunks.
    pub send_chunk: usize,
    pub send_delay: Duration,
    /// Extra attempts allowed, and for which verdict classes (`infra`, `timeout`, `fail`).
    pub retries: u32,
    pub retry_on: Vec<String>,
    /// The `accel` input (`auto` by default).
    pub accel_request: AccelRequest,
    pub requires: Vec<Requirement>,
    pub on_unsupported: Policy,
    /// Set by [`apply_profiles`]: run under this accelerator, or skip/fail with the reason.
    pub decision: Option<ProfileDecision>,
    /// `--uboot-config`: the case boots on this board through U-Boot, not on QEMU.
    pub board: Option<Box<crate::board::UbootConfig>>,
}

impl Case {
    /// The accelerator chosen for the case, once profiles are applied and it is to run.
    pub fn accel(&self) -> Option<Accel> {
        match &self.decision {
            Some(ProfileDecision::Use { accel, .. }) => Some(*accel),
            _ => None,
        }
    }

    /// Whether choosing a profile for this case needs the real KVM probe (about 0.5 s): only
    /// when KVM could be used (same architecture as the host, accel not `tcg`) or a
    /// requirement must be checked.
    pub fn needs_probe(&self) -> bool {
        if self.board.is_some() {
            return false;
        }
        let same_arch = Arch::host().is_some_and(|h| self.arch.kvm_runs_on(h));
        !self.requires.is_empty() || (same_arch && self.accel_request != AccelRequest::Tcg)
    }
}

/// Chooses KVM or TCG for every case from the probe, rewrites its QEMU arguments for that
/// accelerator (each change becomes a note on the command), or records why it will not run.
/// A case that requires a hypervisor on riscv64 or loongarch64 first has its QEMU asked
/// whether its CPU offers the extension ([`hypervisor_cpu`]; once per QEMU and CPU).
pub fn apply_profiles(cases: &mut [Case], probe: &HostProbe, profiles: &Profiles) {
    let mut probe = probe.clone();
    // A board runs on its own hardware: no accelerator to choose.
    for case in cases.iter_mut().filter(|c| c.board.is_none()) {
        let cpu = hypervisor_cpu(case, &mut probe, profiles);
        let decision = profile::choose_with_cpu(
            case.accel_request,
            &case.requires,
            case.arch,
            &probe,
            case.on_unsupported,
            cpu.as_ref(),
        );
        let decision = with_host_gaps(decision, &case.command.host_gaps, case.on_unsupported);
        if let ProfileDecision::Use { accel, reason, .. } = &decision {
            let (args, notes) =
                profile::rewrite_args(&case.command.args, *accel, profiles.get(case.arch));
            case.command.args = args;
            case.command.notes.push(format!("{accel}: {reason}"));
            case.command.notes.extend(notes);
        }
        if let Some(f) = cpu.as_ref().filter(|f| f.status.is_yes()) {
            case.command.notes.push(format!(
                "{} asked: its CPU `{}` has {}=on, as the hypervisor needs",
                f.program, f.cpu, f.feature
            ));
        }
        if let Some(file) = probe
            .kvm_cached_from
            .as_ref()
            .filter(|_| case.needs_probe())
        {
            case.command.notes.push(format!(
                "the KVM answer was probed earlier in this host boot and read from {} \
                 (delete the file to probe again)",
                file.display()
            ));
        }
        case.decision = Some(decision);
    }
}

/// What the host lacks for the command itself (UEFI firmware), whatever the accelerator: the
/// case does not run, by the same policy as an unmet requirement, and its reason comes first.
fn with_host_gaps(decision: ProfileDecision, gaps: &[String], policy: Policy) -> ProfileDecision {
    if gaps.is_empty() {
        return decision;
    }
    let mut reason = gaps.join("; ");
    match decision {
        ProfileDecision::Use { .. } => match policy {
            Policy::Skip => ProfileDecision::Skip { reason },
            Policy::Fail => ProfileDecision::Fail { reason },
        },
        ProfileDecision::Skip { reason: more } => {
            reason = format!("{reason}; also, {more}");
            ProfileDecision::Skip { reason }
        }
        ProfileDecision::Fail { reason: more } => {
            reason = format!("{reason}; also, {more}");
            ProfileDecision::Fail { reason }
        }
    }
}

/// QEMU's answer about the CPU extension a hypervisor case needs (the requirement table,
/// [`profile::hypervisor`]), for the CPU it would run under TCG; asked once per QEMU binary
/// and `-cpu` value, and kept in `probe`.
fn hypervisor_cpu(
    case: &Case,
    probe: &mut HostProbe,
    profiles: &Profiles,
) -> Option<crate::host::CpuFeature> {
    if !case.requires.contains(&Requirement::Hypervisor) {
        return None;
    }
    let (tcg_args, _) =
        profile::rewrite_args(&case.command.args, Accel::Tcg, profiles.get(case.arch));
    let (property, cpu) = profile::hypervisor::cpu_question(case.arch, &tcg_args)?;
    let program = &case.command.program;
    if let Some(known) = probe.cpu_feature(program, &cpu, property) {
        return Some(known.clone());
    }
    let fact = crate::host::CpuFeature::ask(case.arch, program, &cpu, property);
    probe.cpu_features.push(fact.clone());
    Some(fact)
}

/// A probe for runs where no case needs the real one: KVM is not considered at all.
pub fn probe_not_needed() -> HostProbe {
    let arch = Arch::host().unwrap_or(Arch::X86_64);
    HostProbe::with_kvm(
        arch,
        KvmProbe::unusable("not probed: no case could use KVM"),
    )
}

/// Resolves the layered inputs of every selected case; all errors surface here, before anything
/// runs. `cli` is the command line with the action's inputs (paths relative to the cwd), and
/// suite paths are relative to the workspace.
pub fn plan_run(
    cli: &CaseInputs,
    suite: Option<&Suite>,
    selected: &[String],
    opts: &RunOptions,
) -> Result<Vec<Case>, Error> {
    plan_run_each(cli, suite, selected, opts)?
        .into_iter()
        .collect()
}

/// [`plan_run`] with each case's own planning error kept in its place (a `--dry-run` shows
/// every case of a test-suit tree, also those this host cannot plan); the outer error is one
/// that concerns the whole run.
pub fn plan_run_each(
    cli: &CaseInputs,
    suite: Option<&Suite>,
    selected: &[String],
    opts: &RunOptions,
) -> Result<Vec<Result<Case, Error>>, Error> {
    let cwd = std::env::current_dir()
        .map_err(|e| Error::infra(format!("cannot read the current directory: {e}")))?;
    let (workspace, layered) = layered_cases(cli, suite, selected, &cwd)?;
    if suite.is_some() && opts.log.is_some() && layered.len() > 1 {
        return Err(
            Error::usage("--log names one file but several cases are selected")
                .help("drop --log: each case's console goes to <out-dir>/<case>.log"),
        );
    }
    Ok(layered
        .iter()
        .map(|c| {
            let planned = plan_case(c, &workspace, opts);
            if suite.is_some() {
                planned.map_err(|e| in_case(e, c))
            } else {
                planned
            }
        })
        .collect())
}

/// The registry images of the selected cases, layered as [`layered_cases`] layers them (what the
/// run fetches; the action's image cache key and `images key` are made of them).
pub fn layered_images(
    cli: &CaseInputs,
    suite: Option<&Suite>,
    selected: &[String],
    cwd: &Path,
) -> Result<Vec<ImageRequest>, Error> {
    let (_, cases) = layered_cases(cli, suite, selected, cwd)?;
    let mut requests = Vec::new();
    for case in &cases {
        requests.extend(ImageRequest::of(case)?);
        requests.extend(ImageRequest::extras(case)?);
    }
    Ok(requests)
}

/// The workspace and each selected case's inputs, layered (command line and action inputs over
/// the suite case over its `[defaults]`) with every path absolute: what [`plan_case`] plans
/// from, also for the action's steps that need to know the cases before the run (the build
/// cache key). Without a suite, the one case of the command line.
pub fn layered_cases(
    cli: &CaseInputs,
    suite: Option<&Suite>,
    selected: &[String],
    cwd: &Path,
) -> Result<(PathBuf, Vec<CaseInputs>), Error> {
    let top = absolutize(cli, cwd);
    let workspace = absolute(cwd, &workspace_root(&top, cwd));
    let Some(suite) = suite else {
        if !selected.is_empty() {
            return Err(Error::usage("--case needs --suite"));
        }
        return Ok((workspace, vec![top]));
    };
    let defaults = absolutize(&suite.defaults, &workspace);
    let chosen = suite.select(selected)?;
    if chosen.is_empty() {
        return Err(Error::config(format!(
            "{} has no [[case]]",
            suite.path.display()
        )));
    }
    let cases = chosen
        .into_iter()
        .map(|c| {
            let mut layered = top.over(&absolutize(c, &workspace).over(&defaults));
            layered.name = c.name.clone();
            layered
        })
        .collect();
    Ok((workspace, cases))
}

fn in_case(mut e: Error, c: &CaseInputs) -> Error {
    if let Some(n) = &c.name {
        e.message = format!("case '{n}': {}", e.message);
    }
    if e.location.is_none() {
        e.location = c.location.clone();
    }
    e
}

/// Makes every path of a layer absolute against `base`.
fn absolutize(c: &CaseInputs, base: &Path) -> CaseInputs {
    let abs = |p: &Option<PathBuf>| p.as_ref().map(|p| absolute(base, p));
    CaseInputs {
        kernel: abs(&c.kernel),
        qemu_config: abs(&c.qemu_config),
        uboot_config: abs(&c.uboot_config),
        build_config: abs(&c.build_config),
        package_dir: abs(&c.package_dir),
        artifact: abs(&c.artifact),
        workspace: abs(&c.workspace),
        firmware: abs(&c.firmware),
        vmconfigs: c.vmconfigs.iter().map(|p| absolute(base, p)).collect(),
        grammar: crate::config::grammar::GrammarSpec {
            symbols: c
                .grammar
                .symbols
                .iter()
                .map(|p| absolute(base, p))
                .collect(),
            ..c.grammar.clone()
        },
        ..c.clone()
    }
}

/// Resolves one case's merged inputs (absolute paths) into a [`Case`], reading (never
/// writing) the files they name.
pub fn plan_case(inputs: &CaseInputs, workspace: &Path, opts: &RunOptions) -> Result<Case, Error> {
    let workspace = workspace.to_path_buf();
    // A board case has a U-Boot config instead of a QEMU one (no QEMU arguments, no default
    // config file looked up); its patterns and grammar keys are the U-Boot config's.
    let board = match &inputs.uboot_config {
        Some(p) if inputs.qemu_config.is_some() => {
            return Err(Error::usage(format!(
                "--uboot-config {} and --qemu-config name two machines; a case boots on QEMU or on a board",
                p.display()
            ))
            .help("drop one of them (in the suite case or on the command line)"));
        }
        Some(p) => Some(crate::board::UbootConfig::load(p, &workspace)?),
        None => None,
    };
    // A named config is read first, so its errors come before the kernel's; ostool's default
    // `qemu-<arch>.toml` needs the architecture, which the kernel may tell.
    let mut named = match &board {
        Some(b) => Some(QemuConfig::parse(&b.path, "")?),
        None => inputs
            .qemu_config
            .as_deref()
            .map(QemuConfig::load)
            .transpose()?,
    };
    let mut config_for = |arch: Option<Arch>| match named.take() {
        Some(config) => Ok(config),
        None => load_config(inputs, arch, &workspace),
    };
    let (source, arch, is_elf, config) = match kernel_source(inputs, &workspace)? {
        Some(source) => {
            let (arch, is_elf) = source_arch(&source, inputs.arch)?;
            let config = config_for(Some(arch))?;
            (source, arch, is_elf, config)
        }
        None if board.is_some() => return Err(no_kernel()),
        None => {
            let config = config_for(inputs.arch)?;
            let firmware = firmware_under_test(&config).ok_or_else(no_kernel)?;
            let arch = inputs.arch.ok_or_else(|| {
                Error::usage(format!(
                    "the firmware-only guest {} needs --arch: a firmware file does not say \
                     which architecture it is for",
                    firmware.display()
                ))
                .help("pass --arch (e.g. --arch aarch64), or set `arch` in the suite case")
            })?;
            (KernelSource::Firmware(firmware), arch, false, config)
        }
    };
    // A VM config tgoskits' axbuild generates under tmp/ before it builds, not generated here:
    // the case cannot run on this checkout (a gap it is skipped with), but is not wrong.
    let mut ungenerated = Vec::new();
    let vm_configs = match &source {
        KernelSource::Cargo { board, .. } => {
            let mut present = (**board).clone();
            present.vm_configs.retain(|p| {
                let missing = is_generated(&p.path) && !workspace.join(&p.path).is_file();
                if missing {
                    ungenerated.push(p.clone());
                }
                !missing
            });
            present.resolve_vm_configs(&workspace, &inputs.vmconfigs)?
        }
        _ => existing_files(&inputs.vmconfigs, "VM config")?,
    };
    let name = match &inputs.name {
        Some(n) => check_name(n)?,
        None => default_name(source.name_hint())?,
    };
    let out_dir = opts.out_dir.clone();
    let work_dir = crate::prepare::workdir::case_dir(&out_dir, &name);
    let kernel = match &source {
        KernelSource::Prebuilt(k) | KernelSource::Firmware(k) => k.clone(),
        _ => work_dir.join("kernel.elf"),
    };
    // ostool 0.24 boots a `uefi = true` kernel from its flat binary whatever `to_bin` says
    // (`QemuConfig::requires_bin_artifact`: `uefi || to_bin`); a kernel that is no ELF (an EFI
    // image already) is copied as it is.
    let wants_bin = config.to_bin || (config.uefi && is_elf);
    let bin_path = match (wants_bin, is_elf) {
        (true, true) => Some(out_dir.join(format!("{name}.bin"))),
        (true, false) => {
            return Err(Error::config(format!(
                "`to_bin = true` needs an ELF kernel, but {} is not an ELF file",
                kernel.display()
            ))
            .help(format!(
                "pass the ELF, or set `to_bin = false` in {}",
                config.path.display()
            )));
        }
        (false, _) => None,
    };
    let mut command = QemuCommand::build(&CommandRequest {
        config: &config,
        arch,
        kernel: match &source {
            KernelSource::Firmware(_) => None,
            _ => Some(bin_path.as_deref().unwrap_or(&kernel)),
        },
        workspace: &workspace,
        firmware: inputs.firmware.as_deref(),
        work_dir: &work_dir,
    })?;
    command.host_gaps.extend(ungenerated.iter().map(|p| {
        format!(
            "the VM config {} ({}) is one tgoskits' axbuild generates under tmp/ before it \
             builds, and it is not there: generate it first (tgoskits: a script under \
             os/axvisor/scripts/, e.g. `setup_qemu.sh nimbos-uefi`), or give the case a \
             checked-in VM config",
            p.path.display(),
            p.location
        )
    }));
    let image = ImageRequest::of(inputs)?;
    let extra_images = ImageRequest::extras(inputs)?;
    let names: Vec<&str> = image
        .iter()
        .chain(&extra_images)
        .map(|i| i.spec.name.as_str())
        .collect();
    // The config's own arguments (the command's first): what qemu-test adds is its own to
    // provide (a `uefi = true` boot's ESP and variable store are laid out before QEMU starts).
    let own = command
        .args
        .get(..config.args.len())
        .unwrap_or(&command.args);
    let second_images = check_input_files(own, &config, &names)?;
    let grammar = inputs
        .grammar
        .over(board.as_ref().map_or(&config.grammar, |b| &b.grammar));
    if let Some(missing) = grammar.symbols.iter().find(|p| !p.is_file()) {
        return Err(
            Error::usage(format!("--symbols {}: no such file", missing.display()))
                .help("name an ELF (with debug info for file:line) or a System.map"),
        );
    }
    let at = inputs.location.as_ref();
    let (success_specs, fail_specs, fail_at) = match &board {
        Some(b) => (&b.success_regex, &b.fail_regex, &b.fail_regex_at),
        None => (
            &config.success_regex,
            &config.fail_regex,
            &config.fail_regex_at,
        ),
    };
    let judge = judge_spec(&JudgeSource {
        success: &judge::patterns(&inputs.success_regex, at, success_specs),
        fail: &judge::patterns(&inputs.fail_regex, at, fail_specs),
        fail_written_at: fail_at.as_ref(),
        grammar: &grammar,
        timeout: inputs.timeout,
    })?;
    let log_path = opts
        .log
        .clone()
        .unwrap_or_else(|| out_dir.join(format!("{name}.log")));
    let mut warnings = config.warnings.clone();
    warnings.extend(second_images);
    if let KernelSource::Cargo { board, .. } = &source {
        warnings.extend(board.warnings.iter().cloned());
    }
    if let Some(b) = &board {
        warnings.extend(b.warnings.iter().cloned());
    }
    Ok(Case {
        name,
        arch,
        kernel,
        source,
        vm_configs,
        image,
        extra_images,
        work_dir,
        bin_path,
        config,
        warnings,
        workspace,
        command,
        inactivity_timeout: grammar.inactivity_timeout,
        max_log_size: grammar
            .max_log_size
            .unwrap_or(crate::config::grammar::DEFAULT_MAX_LOG_SIZE),
        reset_passes: grammar.on_reset_pass.as_ref().is_some_and(|(p, _)| *p),
        symbols: grammar.symbols.clone(),
        core_dump: (grammar.core_dump == Some(crate::config::grammar::CoreDump::OnFail)).then(
            || {
                grammar
                    .max_core_size
                    .unwrap_or(crate::config::grammar::DEFAULT_MAX_CORE_SIZE)
            },
        ),
        send_chunk: grammar.send_chunk.unwrap_or(DEFAULT_SEND_CHUNK),
        send_delay: grammar.send_delay.unwrap_or(DEFAULT_SEND_DELAY),
        retries: inputs.retries.or(grammar.retries).unwrap_or(0),
        retry_on: if grammar.retry_on.is_empty() {
            vec!["infra".into(), "timeout".into()]
        } else {
            grammar.retry_on.clone()
        },
        build_timeout: DEFAULT_BUILD_TIMEOUT,
        cache_dir: opts.cache_dir.clone(),
        debug: opts.debug,
        out_dir,
        log_path,
        judge,
        accel_request: parse_opt(inputs.accel.as_deref(), "accel")?.unwrap_or_default(),
        requires: inputs
            .requires
            .iter()
            .map(|r| r.parse().map_err(|e: String| Error::usage(e)))
            .collect::<Result<_, _>>()?,
        on_unsupported: parse_opt(inputs.on_unsupported.as_deref(), "on-unsupported")?
            .unwrap_or_default(),
        decision: None,
        board: board.map(Box::new),
    })
}

/// Where the kernel comes from: `--build-config` (cargo, as AxVisor's xtask), else
/// `--build-command` + `--artifact`, else `--kernel`; `None` when none is given (a
/// firmware-only guest, or a mistake: see [`firmware_under_test`]).
fn kernel_source(inputs: &CaseInputs, workspace: &Path) -> Result<Option<KernelSource>, Error> {
    if let Some(board_path) = &inputs.build_config {
        let board = BoardConfig::load(board_path)?;
        // The case's own package (a suite's wrapper), else the one the build file names.
        let named = match &inputs.package_dir {
            Some(_) => None,
            None => crate::build::axbuild::named_package_dir(&board, workspace)?,
        };
        let dir = inputs.package_dir.as_deref().or(named.as_deref());
        let package = PackageInfo::read(dir.unwrap_or(workspace))?;
        return Ok(Some(KernelSource::Cargo {
            board: Box::new(board),
            package,
        }));
    }
    if let Some(command) = &inputs.build_command {
        let artifact = inputs.artifact.clone().ok_or_else(|| {
            Error::usage("--build-command needs --artifact: the kernel file the command writes")
        })?;
        return Ok(Some(KernelSource::Shell {
            command: command.clone(),
            artifact,
        }));
    }
    Ok(inputs.kernel.clone().map(KernelSource::Prebuilt))
}

/// The error for a case with neither a kernel nor a firmware-only QEMU config.
fn no_kernel() -> Error {
    Error::usage("no kernel to boot").help(
        "pass --kernel FILE, --build-config BOARD.toml, or --build-command CMD --artifact FILE \
         (or set them in the suite case); a firmware-only guest (U-Boot, an EFI shell) needs \
         --arch and a QEMU config with -bios, -pflash, -drive or -cdrom (or uefi = true)",
    )
}

/// What a firmware-only guest boots: the file after the config's first `-bios`, `-pflash` or
/// `-cdrom`, or the `file=` of its first `-drive`; with none of them, the config itself when
/// it says `uefi = true` (the UEFI firmware's own shell). `None`: nothing to boot.
fn firmware_under_test(config: &QemuConfig) -> Option<PathBuf> {
    let args = &config.args;
    let found = args.windows(2).find_map(|w| {
        let value = w[1].value.as_str();
        match w[0].value.as_str() {
            "-bios" | "-pflash" | "-cdrom" => Some(value.to_string()),
            "-drive" => drive_file(value),
            _ => None,
        }
    });
    found
        .map(PathBuf::from)
        .or_else(|| config.uefi.then(|| config.path.clone()))
}

/// The guest architecture and whether the kernel is an ELF: `--arch` first; else the ELF header
/// (prebuilt, or a build artifact that already exists) or the board's target triple.
fn source_arch(source: &KernelSource, arch: Option<Arch>) -> Result<(Arch, bool), Error> {
    match source {
        KernelSource::Prebuilt(k) => kernel_arch(k, arch),
        KernelSource::Cargo { board, .. } => match arch {
            Some(a) => Ok((a, true)),
            None => Arch::from_triple(&board.target)
                .map(|a| (a, true))
                .ok_or_else(|| {
                    Error::config(format!(
                        "unsupported target architecture in `{}`",
                        board.target
                    ))
                    .at_file(&board.path)
                    .help("pass --arch")
                }),
        },
        KernelSource::Firmware(_) => Err(no_kernel()),
        KernelSource::Shell { artifact, .. } => match arch {
            Some(a) => Ok((a, true)),
            None if artifact.is_file() => kernel_arch(artifact, None),
            None => Err(Error::usage(
                "cannot tell the guest architecture before the build has run",
            )
            .help("pass --arch (e.g. --arch aarch64) with --build-command")),
        },
    }
}

/// Files the QEMU arguments name (`-initrd`, `-bios`, `-dtb`, `-hda`, `-drive file=`) must exist
/// before anything runs — except the disk, which an image's rootfs replaces in the prepare stage.
/// `args` is the freshly built command: the config's own arguments come first, in order, so an
/// index there is the index of the config argument that wrote it.
fn check_input_files(
    args: &[String],
    config: &QemuConfig,
    images: &[&str],
) -> Result<Vec<Warning>, Error> {
    let image = images.first().copied();
    let mut warnings = Vec::new();
    for (i, pair) in args.windows(2).enumerate() {
        let (flag, value) = (pair[0].as_str(), pair[1].as_str());
        let at = config.args.get(i + 1).and_then(|a| a.location.clone());
        let file = match (flag, image) {
            // `-bios default` is QEMU's own firmware (OpenSBI on riscv64 virt), not a file.
            ("-bios", _) if value == "default" => None,
            ("-initrd" | "-bios" | "-dtb", _) => Some(value.to_string()),
            ("-hda", Some(_)) => None,
            ("-hda", None) => Some(value.to_string()),
            // The image's rootfs copy replaces its own disk.
            ("-drive", Some(_))
                if images
                    .iter()
                    .any(|n| crate::prepare::drives::replaced_by(value, n)) =>
            {
                None
            }
            // Another image under axbuild's rootfs directory (StarryOS' second disk, busybox
            // beside alpine): a case gets one image, so QEMU opens this file as named.
            ("-drive", Some(n)) => {
                let file = drive_file(value).filter(|f| {
                    Path::new(f)
                        .parent()
                        .is_some_and(|d| d.ends_with(crate::prepare::drives::ROOTFS_DIR))
                        && !Path::new(f).exists()
                });
                if let (Some(f), Some(at)) = (file, at.clone()) {
                    warnings.push(Warning {
                        location: at,
                        message: format!(
                            "-drive names {f}, another image than the case's ({n}): qemu-test \
                             fetches one image per case, so QEMU finds this disk only if the \
                             file is there when the case runs"
                        ),
                    });
                }
                None
            }
            ("-drive", None) => drive_file(value),
            _ => None,
        };
        let Some(file) = file else { continue };
        if Path::new(&file).exists() {
            continue;
        }
        let mut e = Error::config(format!("{flag} names {file}, which does not exist"));
        if let Some(at) = at {
            e = e.at(at);
        }
        let help = if flag == "-drive" || flag == "-hda" {
            "give --image NAME to use a guest image's rootfs.img (copied per run), or create the file"
        } else {
            "fix the path in the QEMU config, or create the file"
        };
        return Err(e.help(help));
    }
    Ok(warnings)
}

/// The `file=` of a `-drive` value.
fn drive_file(value: &str) -> Option<String> {
    let options = crate::qemu::options::split(value);
    crate::qemu::options::value(&options, "file").map(str::to_string)
}

fn existing_files(paths: &[PathBuf], what: &str) -> Result<Vec<PathBuf>, Error> {
    for p in paths {
        if !p.is_file() {
            return Err(Error::usage(format!(
                "{what} file '{}' does not exist",
                p.display()
            )));
        }
    }
    Ok(paths.to_vec())
}

fn parse_opt<T: std::str::FromStr<Err = String>>(
    v: Option<&str>,
    what: &str,
) -> Result<Option<T>, Error> {
    v.map(|v| {
        v.parse()
            .map_err(|e: String| Error::usage(format!("{what}: {e}")))
    })
    .transpose()
}

/// `--workspace`, else `WORKSPACE_FOLDER` (what ostool sets for its children), else the cwd.
fn workspace_root(inputs: &CaseInputs, cwd: &Path) -> PathBuf {
    inputs
        .workspace
        .clone()
        .or_else(crate::environment::workspace_folder)
        .unwrap_or_else(|| cwd.to_path_buf())
}

/// The named config, else the first of ostool's default names in the workspace, else an empty
/// config (no extra QEMU arguments, no patterns).
/// `arch` is the guest architecture, given or read from the kernel (`None`: not known yet).
fn load_config(
    inputs: &CaseInputs,
    arch: Option<Arch>,
    workspace: &Path,
) -> Result<QemuConfig, Error> {
    if let Some(p) = &inputs.qemu_config {
        return QemuConfig::load(p);
    }
    let arch = arch.map(|a| a.name()).unwrap_or("");
    let names = [
        format!("qemu-{arch}.toml"),
        format!(".qemu-{arch}.toml"),
        "qemu.toml".into(),
        ".qemu.toml".into(),
    ];
    for n in names.iter().filter(|n| !n.contains("-.")) {
        let p = workspace.join(n);
        if p.is_file() {
            return QemuConfig::load(&p);
        }
    }
    QemuConfig::parse(Path::new("<built-in defaults>"), "")
}

/// The guest architecture: `--arch` when the kernel's format allows it, else the one its
/// format tells (ELF, Linux Image/bzImage, uImage); a kernel that cannot boot is refused here
/// ([`KernelFormat::arch`]). Returns whether the kernel is an ELF.
fn kernel_arch(kernel: &Path, arch: Option<Arch>) -> Result<(Arch, bool), Error> {
    let format = KernelFormat::read(kernel)?;
    if let (KernelFormat::ForeignElf, None) = (&format, arch) {
        // The ELF reader names the machine.
        elf::kernel_arch(kernel)?;
    }
    Ok((format.arch(kernel, arch)?, format.is_elf()))
}

fn default_name(kernel: &Path) -> Result<String, Error> {
    let stem = kernel
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    check_name(&stem)
}

/// Longest case name. Names become file names in the out dir (`<name>.log`, `<name>.bin`,
/// `cases/<name>/`), log group and check-run titles: 100 leaves room below every file-name
/// limit (255 bytes) for the suffixes.
pub const MAX_NAME_LEN: usize = 100;

/// What is wrong with a case name, if anything: (message, help). Names become file names in
/// the out dir, so they keep to a safe alphabet and length.
pub(crate) fn name_problem(name: &str) -> Option<(String, String)> {
    let len = name.chars().count();
    if len > MAX_NAME_LEN {
        let head: String = name.chars().take(20).collect();
        return Some((
            format!(
                "case name '{head}…' is {len} characters long; at most {MAX_NAME_LEN} are allowed"
            ),
            "use a shorter name".to_string(),
        ));
    }
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '@'));
    (!ok).then(|| {
        (
            format!("invalid case name '{name}'"),
            "use letters, digits and - _ . + @".to_string(),
        )
    })
}

fn check_name(name: &str) -> Result<String, Error> {
    match name_problem(name) {
        None => Ok(name.to_string()),
        Some((message, help)) => {
            Err(Error::usage(message).help(format!("{help} (set it with --name)")))
        }
    }
}

fn absolute(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_names_are_safe_file_names() {
        assert!(check_name("hello_noexit").is_ok());
        assert!(check_name("a/b").is_err());
        assert!(check_name("..").is_err());
        assert!(check_name(&"a".repeat(MAX_NAME_LEN)).is_ok());
        let e = check_name(&"a".repeat(MAX_NAME_LEN + 1)).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::exit::USAGE);
        assert!(
            e.message.contains("is 101 characters long; at most 100"),
            "{e}"
        );
        assert_eq!(default_name(Path::new("/x/hello.elf")).unwrap(), "hello");
    }
}
