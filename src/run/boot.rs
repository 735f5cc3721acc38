//! Booting one case: start QEMU, stream its console into the log file, the reporters and the
//! judge, enforce the deadline, react to signals, and always stop and reap QEMU.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::Cancel;
use crate::console::{
    Decision, ExtractedCase, Judge, JudgeOptions, Pattern, PatternKind, Script, TimelineEntry,
};
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
    /// Steps, milestones and extraction.
    pub script: Script,
    /// No console output for this long ends the boot as a timeout.
    pub inactivity: Option<Duration>,
    /// Step `send`s are typed `send_chunk` bytes at a time, `send_delay` apart.
    pub send_chunk: usize,
    pub send_delay: Duration,
}

/// What a boot produced, for the case result.
pub struct BootReport {
    pub verdict: Verdict,
    pub console_tail: Vec<String>,
    pub stderr_tail: Vec<String>,
    pub console_bytes: u64,
    pub console_lines: u64,
    pub elapsed: Duration,
    pub timeline: Vec<TimelineEntry>,
    pub testcases: Vec<ExtractedCase>,
}

/// Why the console loop stopped.
enum Stop {
    Decided(Decision),
    Deadline,
    /// A step timeout or milestone deadline passed; says what was awaited.
    Awaited(String),
    /// No console output for the inactivity timeout.
    Inactive(Duration),
    Cancelled(CancelSignal),
    Exited(std::process::ExitStatus),
}

/// Boots `plan`; errors only when QEMU cannot be started or the log cannot be written.
pub async fn boot(
    plan: &BootPlan,
    reporters: &Reporters,
    cancel: &mut Cancel,
) -> Result<BootReport, Error> {
    let mut log = tokio::fs::File::from_std(crate::prepare::workdir::create_file(&plan.log_path)?);
    reporters.emit(Event::QemuStarting {
        case: &plan.case,
        command: &plan.command,
    });
    let start = Instant::now();
    let mut qemu = QemuProcess::spawn(&plan.program, &plan.command.args, &plan.cwd)
        .map_err(|e| Error::infra(format!("cannot start {}: {e}", plan.program.display())))?;
    let mut console = Console {
        case: &plan.case,
        judge: Judge::new(plan.success.clone(), plan.fail.clone(), plan.judge.clone())
            .with_script(plan.script.clone()),
        bytes: 0,
        stderr: StderrTail::default(),
        start,
        last_output: start,
        typing: Typing {
            pending: Vec::new(),
            at: None,
            chunk: plan.send_chunk.max(1),
            delay: plan.send_delay,
        },
    };
    let stop = console
        .watch(&mut qemu, &mut log, reporters, cancel, plan)
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
    let mut verdict = judge_stop(stop, exit, &console, plan);
    let script = console.judge.script();
    if let Some(why) = script.and_then(|s| s.case_failure())
        && verdict.outcome == Outcome::Pass
    {
        verdict.outcome = Outcome::Fail;
        verdict.reason = format!("{why} ({})", verdict.reason);
    }
    Ok(BootReport {
        timeline: script.map(|s| s.timeline()).unwrap_or_default(),
        testcases: script.map(|s| s.cases()).unwrap_or_default(),
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
    /// When console bytes last arrived (for the inactivity timeout).
    last_output: Instant,
    typing: Typing,
}

/// Text a step wants typed, sent in paced chunks.
struct Typing {
    pending: Vec<u8>,
    /// When the next chunk is due.
    at: Option<Instant>,
    chunk: usize,
    delay: Duration,
}

impl Console<'_> {
    /// Streams console and stderr until a decision, the deadline, a signal, or QEMU's exit.
    async fn watch(
        &mut self,
        qemu: &mut QemuProcess,
        log: &mut tokio::fs::File,
        reporters: &Reporters,
        cancel: &mut Cancel,
        plan: &BootPlan,
    ) -> Result<Stop, Error> {
        let mut stdout = qemu.stdout.take();
        let mut stderr = qemu.stderr.take();
        let mut buf = vec![0u8; READ_CHUNK];
        let mut ebuf = vec![0u8; 8 * 1024];
        let deadline = tokio::time::sleep_until((self.start + plan.timeout).into());
        tokio::pin!(deadline);
        let stop = loop {
            let wake = self.judge.next_wakeup().map(|d| self.start + d);
            let awaited = self.judge.script().and_then(|s| s.next_deadline());
            let awaited_at = awaited.as_ref().map(|(d, _)| self.start + *d);
            let quiet_at = plan.inactivity.map(|d| self.last_output + d);
            tokio::select! {
                biased;
                sig = cancel.cancelled() => break Stop::Cancelled(sig),
                n = read_some(&mut stdout, &mut buf) => match n {
                    Some(n) => {
                        if let Some(d) = self.on_console(&buf[..n], log, reporters).await? {
                            break Stop::Decided(d);
                        }
                        self.queue_typing();
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
                _ = sleep_until_opt(self.typing.at) => self.type_chunk(qemu).await,
                _ = sleep_until_opt(awaited_at) => {
                    break Stop::Awaited(awaited.map(|(_, what)| what).unwrap_or_default());
                }
                _ = sleep_until_opt(quiet_at) => {
                    break Stop::Inactive(plan.inactivity.unwrap_or_default());
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

    /// Takes what a step just asked to type; the first chunk goes out at once.
    fn queue_typing(&mut self) {
        if let Some(text) = self.judge.script_mut().and_then(|s| s.take_send()) {
            self.typing.pending.extend_from_slice(&text);
            self.typing.at.get_or_insert_with(Instant::now);
        }
    }

    /// Writes the next chunk to QEMU's stdin (the guest's serial input); a closed stdin drops
    /// the rest, and the step after it then times out naming what it waited for.
    async fn type_chunk(&mut self, qemu: &mut QemuProcess) {
        let n = self.typing.chunk.min(self.typing.pending.len());
        let chunk: Vec<u8> = self.typing.pending.drain(..n).collect();
        let ok = match qemu.stdin.as_mut() {
            Some(stdin) => stdin.write_all(&chunk).await.is_ok() && stdin.flush().await.is_ok(),
            None => false,
        };
        if !ok {
            self.typing.pending.clear();
        }
        self.typing.at =
            (!self.typing.pending.is_empty()).then(|| Instant::now() + self.typing.delay);
    }

    async fn on_console(
        &mut self,
        bytes: &[u8],
        log: &mut tokio::fs::File,
        reporters: &Reporters,
    ) -> Result<Option<Decision>, Error> {
        self.bytes += bytes.len() as u64;
        self.last_output = Instant::now();
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
                awaited(plan, console),
                last_line(console)
            ),
        ),
        Stop::Awaited(what) => Verdict::new(
            Outcome::Timeout,
            format!("timed out: {what}; {}", last_line(console)),
        ),
        Stop::Inactive(d) => Verdict::new(
            Outcome::Timeout,
            format!(
                "timed out: no console output for {} (inactivity_timeout){}; {}",
                crate::plan::duration::format(d),
                awaiting_suffix(console),
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
    let awaiting = console.judge.script().and_then(|s| s.awaiting());
    match (exit.code, exit.signal) {
        (Some(0), _) if plan.success.is_empty() && awaiting.is_some() => Verdict::new(
            Outcome::Fail,
            format!(
                "QEMU exited with status 0 while waiting for {}; {}",
                awaiting.unwrap_or_default(),
                last_line(console)
            ),
        ),
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

fn awaiting_suffix(console: &Console<'_>) -> String {
    match console.judge.script().and_then(|s| s.awaiting()) {
        Some(w) => format!(" while waiting for {w}"),
        None => String::new(),
    }
}

fn awaited(plan: &BootPlan, console: &Console<'_>) -> String {
    if let Some(w) = console.judge.script().and_then(|s| s.awaiting()) {
        return format!("waiting for {w}");
    }
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
