//! Booting one case: start QEMU, stream its console into the log file, the reporters and the
//! judge, enforce the deadline, react to signals, and always stop and reap QEMU.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::signal::unix::{SignalKind, signal};

use crate::console::{Decision, Judge, JudgeOptions, Pattern, PatternKind};
use crate::error::Error;
use crate::qemu::QemuCommand;
use crate::qemu::process::QemuProcess;
use crate::report::{Event, Reporters};
use crate::verdict::{CancelSignal, Outcome, QemuExit, Verdict};

/// How long QEMU gets to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// How long to keep reading the console after QEMU is gone (data still in the pipe).
const DRAIN_LIMIT: Duration = Duration::from_millis(500);
/// Console read size: large enough that a flood costs few wakeups.
const READ_CHUNK: usize = 64 * 1024;
/// Lines of QEMU's stderr kept for the report.
const STDERR_TAIL_LINES: usize = 20;

/// Cancellation by SIGINT/SIGTERM, shared by every running case. Installed once before any
/// QEMU starts, so a cancelled job always gets its QEMUs reaped and its reports written.
#[derive(Clone)]
pub struct Cancel {
    rx: tokio::sync::watch::Receiver<Option<CancelSignal>>,
}

impl Cancel {
    /// Starts listening for SIGINT and SIGTERM (needs a running tokio runtime).
    pub fn install() -> Result<Cancel, Error> {
        let err = |e: std::io::Error| Error::infra(format!("cannot install signal handlers: {e}"));
        let mut int = signal(SignalKind::interrupt()).map_err(err)?;
        let mut term = signal(SignalKind::terminate()).map_err(err)?;
        let (tx, rx) = tokio::sync::watch::channel(None);
        tokio::spawn(async move {
            let sig = tokio::select! {
                _ = int.recv() => CancelSignal::Sigint,
                _ = term.recv() => CancelSignal::Sigterm,
            };
            let _ = tx.send(Some(sig));
        });
        Ok(Cancel { rx })
    }

    /// Resolves when the run is cancelled (at once if it already was).
    pub async fn cancelled(&mut self) -> CancelSignal {
        loop {
            if let Some(sig) = *self.rx.borrow_and_update() {
                return sig;
            }
            if self.rx.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    /// Whether the run has been cancelled already.
    pub fn is_cancelled(&self) -> Option<CancelSignal> {
        *self.rx.borrow()
    }
}

/// Everything needed to boot one case; all inputs already validated.
pub struct BootPlan {
    pub case: String,
    pub command: QemuCommand,
    /// Resolved path of the QEMU binary.
    pub program: PathBuf,
    pub cwd: PathBuf,
    pub success: Vec<Pattern>,
    pub fail: Vec<Pattern>,
    pub timeout: Duration,
    pub log_path: PathBuf,
    pub judge: JudgeOptions,
}

/// What a boot produced, for the case result.
pub struct BootReport {
    pub verdict: Verdict,
    pub console_tail: Vec<String>,
    pub stderr_tail: Vec<String>,
    pub console_bytes: u64,
    pub console_lines: u64,
    pub elapsed: Duration,
}

/// Why the console loop stopped.
enum Stop {
    Decided(Decision),
    Deadline,
    Cancelled(CancelSignal),
    Exited(std::process::ExitStatus),
}

/// Boots `plan`; errors only when QEMU cannot be started or the log cannot be written.
pub async fn boot(
    plan: &BootPlan,
    reporters: &Reporters,
    cancel: &mut Cancel,
) -> Result<BootReport, Error> {
    let mut log = tokio::fs::File::create(&plan.log_path)
        .await
        .map_err(|e| Error::io(&plan.log_path, "create the console log", &e))?;
    reporters.emit(Event::QemuStarting {
        case: &plan.case,
        command: &plan.command,
    });
    let start = Instant::now();
    let mut qemu = QemuProcess::spawn(&plan.program, &plan.command.args, &plan.cwd)
        .map_err(|e| Error::infra(format!("cannot start {}: {e}", plan.program.display())))?;
    let mut console = Console {
        case: &plan.case,
        judge: Judge::new(plan.success.clone(), plan.fail.clone(), plan.judge.clone()),
        bytes: 0,
        stderr: StderrTail::default(),
        start,
    };
    let stop = console
        .watch(&mut qemu, &mut log, reporters, cancel, plan.timeout)
        .await?;
    let exit = finish_process(&mut qemu, &stop).await?;
    // What QEMU printed before it died still belongs in the log (not in the verdict).
    console.drain(&mut qemu, &mut log, reporters).await?;
    log.flush()
        .await
        .map_err(|e| Error::io(&plan.log_path, "write the console log", &e))?;
    if exit.killed_by_runner {
        console.stderr.forget_termination_notice();
    }
    let verdict = judge_stop(stop, exit, &console, plan);
    Ok(BootReport {
        verdict,
        console_tail: console.judge.tail(),
        stderr_tail: console.stderr.lines(),
        console_bytes: console.bytes,
        console_lines: console.judge.lines_seen(),
        elapsed: start.elapsed(),
    })
}

/// The live state of one boot's console.
struct Console<'a> {
    case: &'a str,
    judge: Judge,
    bytes: u64,
    stderr: StderrTail,
    start: Instant,
}

impl Console<'_> {
    /// Streams console and stderr until a decision, the deadline, a signal, or QEMU's exit.
    async fn watch(
        &mut self,
        qemu: &mut QemuProcess,
        log: &mut tokio::fs::File,
        reporters: &Reporters,
        cancel: &mut Cancel,
        timeout: Duration,
    ) -> Result<Stop, Error> {
        let mut stdout = qemu.stdout.take();
        let mut stderr = qemu.stderr.take();
        let mut buf = vec![0u8; READ_CHUNK];
        let mut ebuf = vec![0u8; 8 * 1024];
        let deadline = tokio::time::sleep_until((self.start + timeout).into());
        tokio::pin!(deadline);
        let stop = loop {
            let wake = self.judge.next_wakeup().map(|d| self.start + d);
            tokio::select! {
                biased;
                sig = cancel.cancelled() => break Stop::Cancelled(sig),
                n = read_some(&mut stdout, &mut buf) => match n {
                    Some(n) => {
                        if let Some(d) = self.on_console(&buf[..n], log, reporters).await? {
                            break Stop::Decided(d);
                        }
                    }
                    None => {
                        stdout = None;
                        if let Some(d) = self.judge.finish(self.start.elapsed()) {
                            break Stop::Decided(d);
                        }
                    }
                },
                n = read_some(&mut stderr, &mut ebuf) => match n {
                    Some(n) => self.on_stderr(&ebuf[..n], reporters),
                    None => stderr = None,
                },
                _ = sleep_until_opt(wake) => {
                    if let Some(d) = self.judge.poll(self.start.elapsed()) {
                        break Stop::Decided(d);
                    }
                }
                _ = &mut deadline => break Stop::Deadline,
                status = qemu.wait(), if stdout.is_none() => {
                    let status = status.map_err(|e| Error::infra(format!("cannot wait for QEMU: {e}")))?;
                    break Stop::Exited(status);
                }
            }
        };
        qemu.stdout = stdout;
        qemu.stderr = stderr;
        Ok(stop)
    }

    async fn on_console(
        &mut self,
        bytes: &[u8],
        log: &mut tokio::fs::File,
        reporters: &Reporters,
    ) -> Result<Option<Decision>, Error> {
        self.bytes += bytes.len() as u64;
        log.write_all(bytes)
            .await
            .map_err(|e| Error::infra(format!("cannot write the console log: {e}")))?;
        reporters.emit(Event::Console {
            case: self.case,
            bytes,
        });
        Ok(self.judge.feed(bytes, self.start.elapsed()))
    }

    fn on_stderr(&mut self, bytes: &[u8], reporters: &Reporters) {
        self.stderr.push(bytes);
        reporters.emit(Event::QemuStderr {
            case: self.case,
            bytes,
        });
    }

    /// After QEMU is gone: copy what is left in the pipes to the log and the reporters.
    async fn drain(
        &mut self,
        qemu: &mut QemuProcess,
        log: &mut tokio::fs::File,
        reporters: &Reporters,
    ) -> Result<(), Error> {
        let mut buf = vec![0u8; READ_CHUNK];
        let mut ebuf = vec![0u8; 8 * 1024];
        let until = Instant::now() + DRAIN_LIMIT;
        let mut stdout = qemu.stdout.take();
        let mut stderr = qemu.stderr.take();
        while stdout.is_some() || stderr.is_some() {
            tokio::select! {
                n = read_some(&mut stdout, &mut buf) => match n {
                    Some(n) => {
                        self.bytes += n as u64;
                        log.write_all(&buf[..n]).await.map_err(|e| Error::infra(format!("cannot write the console log: {e}")))?;
                        reporters.emit(Event::Console { case: self.case, bytes: &buf[..n] });
                    }
                    None => stdout = None,
                },
                // Kept for the report, not echoed: after a stop it is mostly QEMU saying
                // it was terminated, which `killed_by_runner` already records.
                n = read_some(&mut stderr, &mut ebuf) => match n {
                    Some(n) => self.stderr.push(&ebuf[..n]),
                    None => stderr = None,
                },
                _ = tokio::time::sleep_until(until.into()) => break,
            }
        }
        Ok(())
    }
}

/// Stops QEMU unless it already exited, and describes how it ended.
async fn finish_process(qemu: &mut QemuProcess, stop: &Stop) -> Result<QemuExit, Error> {
    let (status, killed) = match stop {
        Stop::Exited(s) => (*s, false),
        _ => {
            let s = qemu
                .stop(STOP_GRACE)
                .await
                .map_err(|e| Error::infra(format!("cannot stop QEMU: {e}")))?;
            (s, true)
        }
    };
    use std::os::unix::process::ExitStatusExt;
    Ok(QemuExit {
        code: status.code(),
        signal: status.signal(),
        killed_by_runner: killed,
    })
}

/// Turns how the console loop stopped into a verdict with its one-sentence reason.
fn judge_stop(stop: Stop, exit: QemuExit, console: &Console<'_>, plan: &BootPlan) -> Verdict {
    let mut v = match stop {
        Stop::Decided(Decision::Fail(m)) | Stop::Decided(Decision::Success(m)) => {
            let (outcome, what) = match m.kind {
                PatternKind::Fail => (Outcome::Fail, "fail"),
                PatternKind::Success => (Outcome::Pass, "success"),
            };
            let mut v = Verdict::new(
                outcome,
                format!(
                    "{what} pattern '{}' matched console line {} at {:.3}s: {}",
                    m.pattern,
                    m.line_no,
                    m.at.as_secs_f64(),
                    m.line.trim_end()
                ),
            );
            v.decided_by = Some(m);
            v
        }
        Stop::Deadline => Verdict::new(
            Outcome::Timeout,
            format!(
                "timed out after {}: {}; {}",
                crate::plan::duration::format(plan.timeout),
                awaited(plan),
                last_line(console)
            ),
        ),
        Stop::Cancelled(sig) => {
            let mut v = Verdict::new(
                Outcome::Cancelled,
                format!(
                    "cancelled by {sig:?} after {:.3}s",
                    console.start.elapsed().as_secs_f64()
                ),
            );
            v.cancelled_by = Some(sig);
            v
        }
        Stop::Exited(_) => exit_verdict(&exit, console, plan),
    };
    v.qemu_exit = Some(exit);
    v
}

/// The verdict when QEMU ended by itself before any pattern decided.
fn exit_verdict(exit: &QemuExit, console: &Console<'_>, plan: &BootPlan) -> Verdict {
    match (exit.code, exit.signal) {
        (Some(0), _) if plan.success.is_empty() => Verdict::new(
            Outcome::Pass,
            "QEMU exited with status 0 and no success pattern is configured",
        ),
        (Some(0), _) => Verdict::new(
            Outcome::Fail,
            format!(
                "QEMU exited with status 0 before any success pattern matched ({}); {}",
                pattern_list(&plan.success),
                last_line(console)
            ),
        ),
        (Some(code), _) => Verdict::new(
            Outcome::Fail,
            format!("QEMU exited with status {code}{}", stderr_hint(console)),
        ),
        (None, sig) => Verdict::new(
            Outcome::Fail,
            format!(
                "QEMU was killed by signal {}{}",
                sig.unwrap_or(0),
                stderr_hint(console)
            ),
        ),
    }
}

fn awaited(plan: &BootPlan) -> String {
    if plan.success.is_empty() {
        "QEMU did not exit and no success pattern is configured".into()
    } else {
        format!(
            "no success pattern matched (waiting for {})",
            pattern_list(&plan.success)
        )
    }
}

fn pattern_list(patterns: &[Pattern]) -> String {
    patterns
        .iter()
        .map(|p| format!("'{}'", p.spec.regex))
        .collect::<Vec<_>>()
        .join(" or ")
}

fn last_line(console: &Console<'_>) -> String {
    match console.judge.tail().last() {
        Some(l) => format!(
            "last console line {}: '{}'",
            console.judge.lines_seen(),
            l.trim_end()
        ),
        None => "no console output at all".into(),
    }
}

fn stderr_hint(console: &Console<'_>) -> String {
    match console.stderr.lines().last() {
        Some(l) => format!(": {l}"),
        None => String::new(),
    }
}

/// Reads into `buf` from an optional stream; `None` on EOF or error (the stream is finished).
async fn read_some<R: AsyncRead + Unpin>(stream: &mut Option<R>, buf: &mut [u8]) -> Option<usize> {
    match stream {
        Some(s) => match s.read(buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => Some(n),
        },
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// The last lines of QEMU's stderr, bounded in count and length.
#[derive(Default)]
struct StderrTail {
    lines: std::collections::VecDeque<String>,
    partial: Vec<u8>,
}

impl StderrTail {
    const MAX_LINE: usize = 1024;

    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                let line = String::from_utf8_lossy(&self.partial)
                    .trim_end()
                    .to_string();
                self.partial.clear();
                if !line.is_empty() {
                    if self.lines.len() == STDERR_TAIL_LINES {
                        self.lines.pop_front();
                    }
                    self.lines.push_back(line);
                }
            } else if self.partial.len() < Self::MAX_LINE {
                self.partial.push(b);
            }
        }
    }

    /// Drops QEMU's "terminating on signal N from pid …" line, which only echoes our own stop.
    fn forget_termination_notice(&mut self) {
        self.lines.retain(|l| !l.contains("terminating on signal"));
        if String::from_utf8_lossy(&self.partial).contains("terminating on signal") {
            self.partial.clear();
        }
    }

    fn lines(&self) -> Vec<String> {
        let mut v: Vec<String> = self.lines.iter().cloned().collect();
        let tail = String::from_utf8_lossy(&self.partial)
            .trim_end()
            .to_string();
        if !tail.is_empty() {
            v.push(tail);
        }
        v
    }
}

/// Runs one planned case to its result: prepare (`to_bin`), boot, judge. Errors become an
/// [`Outcome::Error`] result so reports are always written.
pub async fn execute_case(
    case: &crate::plan::Case,
    reporters: &Reporters,
    cancel: &mut Cancel,
) -> crate::report::CaseResult {
    use crate::report::{CaseResult, Stage, StageTiming};
    let start = Instant::now();
    if let Some(sig) = cancel.is_cancelled() {
        let mut v = Verdict::new(
            Outcome::Cancelled,
            format!("not started: cancelled by {sig:?}"),
        );
        v.cancelled_by = Some(sig);
        return CaseResult::without_boot(&case.name, v, Duration::ZERO);
    }
    reporters.emit(Event::CaseStarted { case: &case.name });
    if let Some(result) = unsupported(case, reporters) {
        return result;
    }
    let mut stages = Vec::new();
    let prepared = timed_stage(case, Stage::Prepare, reporters, &mut stages, || {
        prepare(case)
    });
    let boot_result = match prepared {
        Ok(program) => {
            let plan = BootPlan {
                case: case.name.clone(),
                command: case.command.clone(),
                program,
                cwd: case.workspace.clone(),
                success: case.success.clone(),
                fail: case.fail.clone(),
                timeout: case.timeout,
                log_path: case.log_path.clone(),
                judge: case.judge.clone(),
            };
            reporters.emit(Event::StageStarted {
                case: &case.name,
                stage: Stage::Boot,
            });
            let r = boot(&plan, reporters, cancel).await;
            let ok = matches!(&r, Ok(b) if b.verdict.outcome == Outcome::Pass);
            let elapsed = match &r {
                Ok(b) => b.elapsed,
                Err(_) => Duration::ZERO,
            };
            reporters.emit(Event::StageFinished {
                case: &case.name,
                stage: Stage::Boot,
                elapsed,
                ok,
            });
            stages.push(StageTiming {
                stage: Stage::Boot,
                duration: elapsed,
                ok,
            });
            r
        }
        Err(e) => Err(e),
    };
    let mut result = match boot_result {
        Ok(b) => {
            if let Some(m) = &b.verdict.decided_by {
                reporters.emit(Event::Decided {
                    case: &case.name,
                    info: m,
                });
            }
            let mut r = CaseResult::without_boot(&case.name, b.verdict, start.elapsed());
            r.log = Some(case.log_path.clone());
            r.console_tail = b.console_tail;
            r.stderr_tail = b.stderr_tail;
            r.console_bytes = b.console_bytes;
            r.console_lines = b.console_lines;
            r
        }
        Err(e) => {
            reporters.emit(Event::Failed {
                case: Some(&case.name),
                error: &e,
            });
            let mut r = CaseResult::without_boot(
                &case.name,
                Verdict::new(Outcome::Error, e.to_string()),
                start.elapsed(),
            );
            r.log = case.log_path.exists().then(|| case.log_path.clone());
            r
        }
    };
    result.arch = Some(case.arch);
    result.accel = case.accel().map(|a| a.name().to_string());
    result.command = Some(case.command.clone());
    result.stages = stages;
    result.duration = start.elapsed();
    result
}

/// The result of a case the profile decided not to run (skip or fail by policy), after telling
/// the user why; `None` when it runs, after passing on the profile's warnings.
fn unsupported(
    case: &crate::plan::Case,
    reporters: &Reporters,
) -> Option<crate::report::CaseResult> {
    use crate::profile::ProfileDecision;
    use crate::report::{CaseResult, Level};
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
        Some(ProfileDecision::Skip { reason }) => (Outcome::Skipped, format!("skipped: {reason}")),
        Some(ProfileDecision::Fail { reason }) => (
            Outcome::Error,
            format!("cannot run on this runner: {reason}"),
        ),
    };
    let mut r = CaseResult::without_boot(&case.name, Verdict::new(outcome, reason), Duration::ZERO);
    r.arch = Some(case.arch);
    Some(r)
}

fn timed_stage<T>(
    case: &crate::plan::Case,
    stage: crate::report::Stage,
    reporters: &Reporters,
    stages: &mut Vec<crate::report::StageTiming>,
    f: impl FnOnce() -> Result<T, Error>,
) -> Result<T, Error> {
    reporters.emit(Event::StageStarted {
        case: &case.name,
        stage,
    });
    let t = Instant::now();
    let r = f();
    let (elapsed, ok) = (t.elapsed(), r.is_ok());
    reporters.emit(Event::StageFinished {
        case: &case.name,
        stage,
        elapsed,
        ok,
    });
    stages.push(crate::report::StageTiming {
        stage,
        duration: elapsed,
        ok,
    });
    r
}

/// Creates the out dir, writes the flat binary when `to_bin`, and finds the QEMU binary.
fn prepare(case: &crate::plan::Case) -> Result<PathBuf, Error> {
    let program = case.command.resolve_program().ok_or_else(|| {
        Error::infra(format!("{} not found on PATH", case.command.program)).help(format!(
            "install it: sudo apt-get install {} (Debian/Ubuntu), or put it on PATH",
            case.arch.debian_package()
        ))
    })?;
    std::fs::create_dir_all(&case.out_dir).map_err(|e| Error::io(&case.out_dir, "create", &e))?;
    if let Some(parent) = case.log_path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, "create", &e))?;
    }
    if let Some(bin) = &case.bin_path {
        let elf =
            std::fs::read(&case.kernel).map_err(|e| Error::input_io(&case.kernel, "kernel", &e))?;
        let flat = crate::build::elf::to_bin(&elf)?;
        let tmp = bin.with_extension("bin.tmp");
        std::fs::write(&tmp, flat).map_err(|e| Error::io(&tmp, "write", &e))?;
        std::fs::rename(&tmp, bin).map_err(|e| Error::io(bin, "write", &e))?;
    }
    Ok(program)
}

/// How many cases to boot at once: no more than the host's CPUs divided by the largest guest
/// `-smp`, and no more than the available memory divided by the largest guest `-m`; at least 1.
pub fn default_jobs(cases: &[crate::plan::Case]) -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let smp = cases
        .iter()
        .map(|c| guest_cpus(&c.command.args))
        .max()
        .unwrap_or(1);
    let mem = cases
        .iter()
        .map(|c| guest_memory_mib(&c.command.args))
        .max()
        .unwrap_or(128);
    let by_cpu = cpus / smp.max(1);
    let by_mem = available_memory_mib().map_or(usize::MAX, |m| (m / mem.max(1)) as usize);
    by_cpu.min(by_mem).min(cases.len()).max(1)
}

/// The guest's vCPU count from `-smp N` or `-smp cpus=N,…` (1 when absent).
fn guest_cpus(args: &[String]) -> usize {
    option_value(args, "-smp")
        .and_then(|v| {
            v.split(',')
                .find_map(|p| p.strip_prefix("cpus=").or((!p.contains('=')).then_some(p)))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(1)
}

/// The guest's memory in MiB from `-m 512`, `-m 8g`, `-m size=1G` (QEMU's default 128 when absent).
fn guest_memory_mib(args: &[String]) -> u64 {
    let Some(v) = option_value(args, "-m") else {
        return 128;
    };
    let v = v
        .split(',')
        .find_map(|p| p.strip_prefix("size=").or((!p.contains('=')).then_some(p)));
    let Some(v) = v else { return 128 };
    let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len()));
    let n: f64 = num.parse().unwrap_or(128.0);
    let mib = match unit.to_ascii_lowercase().as_str() {
        "" | "m" | "mb" | "mib" => n,
        "g" | "gb" | "gib" => n * 1024.0,
        "t" | "tb" => n * 1024.0 * 1024.0,
        "k" | "kb" => n / 1024.0,
        _ => 128.0,
    };
    mib.max(1.0) as u64
}

fn option_value<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.windows(2)
        .rev()
        .find(|w| w[0] == name)
        .map(|w| w[1].as_str())
}

fn available_memory_mib() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reads_guest_cpus_and_memory_like_qemu() {
        assert_eq!(guest_cpus(&args(&["-smp", "4"])), 4);
        assert_eq!(guest_cpus(&args(&["-smp", "cpus=2,sockets=1"])), 2);
        assert_eq!(guest_cpus(&args(&["-m", "1G"])), 1);
        assert_eq!(guest_memory_mib(&args(&["-m", "8g"])), 8192);
        assert_eq!(guest_memory_mib(&args(&["-m", "128M"])), 128);
        assert_eq!(guest_memory_mib(&args(&["-m", "size=2G,slots=2"])), 2048);
        assert_eq!(guest_memory_mib(&args(&["-m", "512"])), 512);
        assert_eq!(guest_memory_mib(&args(&[])), 128);
    }
}
