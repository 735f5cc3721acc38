//! Booting one case: start QEMU, stream its console into the log file, the reporters and the
//! judge, enforce the deadline, react to signals, and always stop and reap QEMU.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::Cancel;
use super::control::{Control, ControlNote};
use crate::console::{Decision, Judge, TimelineEntry};
use crate::error::Error;
use crate::plan::Case;
use crate::prepare::workdir::MadeDir;
use crate::qemu::QemuCommand;
use crate::qemu::gdb::DebugElfs;
use crate::qemu::process::QemuProcess;
use crate::qemu::qmp::QmpLink;
use crate::report::{CaseResult, Event, Reporters};
use crate::verdict::{End, Facts, QemuExit, Verdict};

/// How long QEMU gets to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// How long to keep reading the console after QEMU is gone (data still in the pipe).
const DRAIN_LIMIT: Duration = Duration::from_millis(500);
/// After a fail decision, console quiet time that ends the wait for what follows the panic
/// line (a backtrace), and the longest that wait.
const SETTLE_QUIET: Duration = Duration::from_millis(10);
const SETTLE_LIMIT: Duration = Duration::from_millis(250);
/// Console read size: large enough that a flood costs few wakeups (`check --log` reads the
/// same).
pub(crate) const READ_CHUNK: usize = 64 * 1024;
/// Lines of QEMU's stderr kept for the report.
const STDERR_TAIL_LINES: usize = 20;

/// One case booted in QEMU: the case itself (its judge, console settings, work dir, images,
/// symbols, core-dump setting) and what the stages before the boot decided.
pub struct QemuRun<'a> {
    pub case: &'a Case,
    /// The case's QEMU command as the image stage left it.
    pub command: &'a QemuCommand,
    /// Resolved path of the QEMU binary.
    pub program: PathBuf,
    /// The guests' kernels the patched VM configs boot (AxVisor): when ELF files, they name
    /// guest addresses and `run --gdb` loads them.
    pub guest_kernels: &'a [PathBuf],
}

/// What a boot produced: the case's result as the console decides it (verdict, console and
/// stderr tails, counts, timeline, test cases; the case stage fills in the rest), and how long
/// the boot took.
pub struct BootReport {
    pub result: CaseResult,
    pub elapsed: Duration,
}

/// Boots `qemu_run`; errors only when QEMU cannot be started or the log cannot be written.
pub async fn boot(
    qemu_run: &QemuRun<'_>,
    reporters: &Reporters,
    cancel: &mut Cancel,
) -> Result<BootReport, Error> {
    let cp = qemu_run.case;
    let mut log = super::log::ConsoleLog::create(&cp.log_path, cp.max_log_size)?;
    // A core file beside the log belongs to this boot or to none.
    let _ = std::fs::remove_file(core_path(&cp.log_path));
    let link = QmpLink::new()
        .map_err(|e| Error::infra(format!("cannot make QEMU's QMP socket pair: {e}")))?;
    let debug =
        super::debug::DebugBoot::new(&cp.debug, &cp.out_dir, &cp.work_dir, cp.arch, || {
            DebugElfs {
                main: crate::postmortem::symbols::debugger_elf(
                    std::slice::from_ref(&cp.kernel),
                    &cp.symbols,
                ),
                guests: guest_elfs(qemu_run),
            }
        })?;
    let mut command = qemu_run.command.with_qmp(&link);
    if let Some(d) = &debug {
        command = d.command(command);
    }
    reporters.emit(Event::QemuStarting {
        case: &cp.name,
        command: &command,
    });
    let start = Instant::now();
    let mut qemu = QemuProcess::spawn_keeping(
        &qemu_run.program,
        &command.args,
        &cp.workspace,
        link.qemu_fd(),
    )
    .map_err(|e| Error::infra(format!("cannot start {}: {e}", qemu_run.program.display())))?;
    let link = link
        .into_ours()
        .map_err(|e| Error::infra(format!("QEMU's QMP socket: {e}")))?;
    let held = debug.as_ref().is_some_and(|d| d.holds());
    let mut control = Control::start(link, start, held);
    let mut console = Console::new(cp, start);
    if held {
        console.paused = Some(start);
    }
    if let Some(d) = &debug {
        d.announce(&cp.name, reporters);
    }
    let end = {
        let mut machine = QemuMachine {
            stdout: qemu.stdout.take(),
            stderr: qemu.stderr.take(),
            qemu: &mut qemu,
            control: &mut control,
            ebuf: vec![0u8; 8 * 1024],
        };
        let end = console
            .watch(&mut machine, &mut log, reporters, cancel, cp)
            .await;
        machine.give_back();
        end?
    };
    let mut end = end;
    if end == End::Exited {
        control.drain().await;
    }
    // Before QEMU is stopped: where the guest was, when the boot failed.
    let mut postmortem = if wants_postmortem(&end) {
        if matches!(end, End::Decided(_) | End::GuestPanicked(_)) {
            // A panic message comes before the backtrace the guest prints after it.
            console.settle(&mut qemu, &mut log, reporters).await?;
            if let End::Decided(decision) = &mut end {
                console.judge.complete_line(decision);
            }
        }
        Some(control.postmortem().await)
    } else {
        None
    };
    // Still before QEMU is stopped: the guest's memory, when asked for.
    // The work dir, when made for the dump alone, goes again once the dump is compressed.
    let mut work_dir = None;
    let core = match (postmortem.as_mut(), cp.core_dump) {
        (Some(pm), Some(max)) => {
            let raw = cp.work_dir.join("core.elf");
            let dumped = match MadeDir::new(&cp.out_dir, &cp.work_dir) {
                Ok(made) => {
                    work_dir = Some(made);
                    control.core_dump(&raw, max).await
                }
                Err(e) => Err(e.to_string()),
            };
            match dumped {
                Ok(()) => Some(raw),
                Err(why) => {
                    let _ = std::fs::remove_file(&raw);
                    pm.notes.push(format!("no core dump: {why}"));
                    None
                }
            }
        }
        _ => None,
    };
    if let (Some(d), Some(pm)) = (&debug, &postmortem)
        && d.pauses()
    {
        // Where the vCPUs are, named, for the person about to attach.
        let mut named = pm.clone();
        named.symbolize(&symbolizer(qemu_run));
        let stood = d
            .pause(&control, &mut qemu, &cp.name, &named, reporters, cancel)
            .await;
        // The boot's time is the guest's: the pause does not count.
        console.start += stood;
    }
    let exit = finish_process(&mut qemu, &end).await?;
    if let (Some(raw), Some(pm)) = (core, postmortem.as_mut()) {
        let gz = core_path(&cp.log_path);
        match super::coredump::compress(raw, gz.clone()).await {
            Ok(()) => pm.core_dump = Some(gz),
            Err(why) => pm.notes.push(format!("no core dump: {why}")),
        }
    }
    drop(work_dir);
    // What QEMU printed before it died still belongs in the log; when QEMU ended by itself it
    // also belongs in the verdict (its last line may decide).
    let end = console.drain(&mut qemu, &mut log, reporters, end).await?;
    log.flush()
        .await
        .map_err(|e| Error::io(&cp.log_path, "write the console log", &e))?;
    if exit.killed_by_runner {
        console.stderr.forget_termination_notice();
    }
    // With QEMU gone and the log complete: the guest's own backtraces, and names for every
    // address.
    if let Some(pm) = postmortem.as_mut() {
        pm.backtraces = crate::postmortem::backtrace::from_log(&cp.log_path);
        let symbols = symbolizer(qemu_run);
        pm.notes.extend(symbols.problems.iter().cloned());
        pm.symbolize(&symbols);
    }
    let verdict = crate::verdict::decide(&Facts {
        elapsed: console.start.elapsed(),
        qemu_exit: Some(exit),
        guest: control.guest.clone(),
        guest_started: control.started,
        reset_passes: cp.reset_passes,
        stderr_line: console.stderr.headline(),
        postmortem,
        ..Facts::observed(end, &console.judge, &cp.judge.success)
    });
    Ok(console.report(verdict, &log, Vec::new()))
}

/// Every symbol file `qemu_run` knows: the booted images, the case's symbol files, the guest
/// kernels its VM configs name.
fn symbolizer(qemu_run: &QemuRun) -> crate::postmortem::Symbolizer {
    let case = qemu_run.case;
    crate::postmortem::Symbolizer::load(std::slice::from_ref(&case.kernel), &case.symbols)
        .with_guest_kernels(&guest_elfs(qemu_run))
}

/// The guests' kernels that are ELF files (a flat guest image has no symbols; one that is
/// missing has none either).
fn guest_elfs(qemu_run: &QemuRun) -> Vec<PathBuf> {
    let mut guests = qemu_run.guest_kernels.to_vec();
    guests.retain(|k| crate::magic::file_is_elf(k));
    guests
}

/// What the console loop learns from the machine behind the console.
pub(crate) enum MachineEvent {
    /// This many console bytes were read into the buffer.
    Console(usize),
    /// The console closed (QEMU's stdout at EOF).
    ConsoleClosed,
    /// The machine's own diagnostics (QEMU's stderr).
    Stderr(Vec<u8>),
    /// The machine ended by itself (QEMU exited).
    Exited,
    /// QEMU's QMP side said something.
    Control(ControlNote),
    /// The machine cannot go on (a board's power-on failed), with the reason.
    Failed(String),
    /// A line for the reports (a board's power command output).
    Note(String),
}

/// The machine behind a console: QEMU ([`QemuMachine`]) or a board
/// (`crate::board::boot`). One console loop ([`Console::watch`]) serves both.
pub(crate) trait Machine {
    /// The next thing that happened; console and diagnostics bytes are read into `buf`.
    /// Cancel-safe: the loop's `select!` may drop it at any await.
    async fn next(&mut self, buf: &mut [u8]) -> MachineEvent;
    /// Types `bytes` on the console (the guest's input); false when the input is closed.
    async fn type_bytes(&mut self, bytes: &[u8]) -> bool;
    /// Follows console bytes the judge just read (at `now`, ending on console line
    /// `line_no`): what to type in answer, or why the boot cannot go on (a board's U-Boot
    /// conversation). QEMU answers nothing.
    async fn observe(
        &mut self,
        _bytes: &[u8],
        _now: Duration,
        _line_no: u64,
    ) -> Result<Option<Vec<u8>>, String> {
        Ok(None)
    }
    /// Console bytes on which the judge decided: the machine notes what they show (a board's
    /// "Starting kernel" in the same read as the success line still marks its stage) and
    /// answers nothing, for the boot is over.
    fn last_bytes(&mut self, _bytes: &[u8], _now: Duration, _line_no: u64) {}
    /// The machine's own running deadline (a board stage's), since the start, and the reason
    /// when it passes.
    fn deadline(&self) -> Option<(Duration, String)> {
        None
    }
}

/// QEMU as the machine behind the console: its stdout is the console, its stdin the guest's
/// input, its stderr its diagnostics; QMP tells how the guest ended.
struct QemuMachine<'a> {
    qemu: &'a mut QemuProcess,
    control: &'a mut Control,
    /// The console and stderr pipes, taken from `qemu` for the watch.
    stdout: Option<tokio::process::ChildStdout>,
    stderr: Option<tokio::process::ChildStderr>,
    ebuf: Vec<u8>,
}

impl QemuMachine<'_> {
    /// Gives the console streams back to the process (for the settle and drain after the
    /// watch).
    fn give_back(self) {
        self.qemu.stdout = self.stdout;
        self.qemu.stderr = self.stderr;
    }
}

impl Machine for QemuMachine<'_> {
    async fn next(&mut self, buf: &mut [u8]) -> MachineEvent {
        tokio::select! {
            biased;
            n = read_some(&mut self.stdout, buf) => match n {
                Some(n) => MachineEvent::Console(n),
                None => {
                    self.stdout = None;
                    MachineEvent::ConsoleClosed
                }
            },
            n = read_some(&mut self.stderr, &mut self.ebuf) => match n {
                Some(n) => MachineEvent::Stderr(self.ebuf[..n].to_vec()),
                None => {
                    self.stderr = None;
                    MachineEvent::Note(String::new())
                }
            },
            // The process's own exit, not its stdout closing: a child it forked may hold
            // the pipe open (and keep printing) long after QEMU itself is gone.
            status = self.qemu.wait() => match status {
                Ok(_) => MachineEvent::Exited,
                Err(e) => MachineEvent::Failed(format!("cannot wait for QEMU: {e}")),
            },
            note = self.control.next() => match note {
                // QMP broke before the guest ran: most often QEMU itself is exiting (a
                // refused command line); give its exit a moment to be the reason.
                ControlNote::Failed(why) => {
                    match tokio::time::timeout(STOP_GRACE, self.qemu.wait()).await {
                        Ok(_) => MachineEvent::Exited,
                        Err(_) => MachineEvent::Control(ControlNote::Failed(why)),
                    }
                }
                note => MachineEvent::Control(note),
            },
        }
    }

    /// Writes to QEMU's stdin (the guest's serial input); a closed stdin drops the rest.
    async fn type_bytes(&mut self, bytes: &[u8]) -> bool {
        match self.qemu.stdin.as_mut() {
            Some(stdin) => stdin.write_all(bytes).await.is_ok() && stdin.flush().await.is_ok(),
            None => false,
        }
    }
}

/// The live state of one boot's console.
pub(crate) struct Console<'a> {
    case: &'a str,
    pub(crate) judge: Judge,
    bytes: u64,
    stderr: StderrTail,
    pub(crate) start: Instant,
    /// When console bytes last arrived (for the inactivity timeout).
    last_output: Instant,
    typing: Typing,
    /// `--gdb`: since when the guest is stopped by the debugger; no deadline runs meanwhile.
    pub(crate) paused: Option<Instant>,
}

/// Text a step wants typed, sent in paced chunks.
struct Typing {
    pending: Vec<u8>,
    /// When the next chunk is due.
    at: Option<Instant>,
    chunk: usize,
    delay: Duration,
}

impl<'a> Console<'a> {
    /// A console judged as `case` says, whose machine started at `start`.
    pub(crate) fn new(case: &'a Case, start: Instant) -> Console<'a> {
        let judge = case.judge.judge();
        Console::with_judge(&case.name, judge, start, case.send_chunk, case.send_delay)
    }

    /// A console that nothing has been read from yet; steps type `send_chunk` bytes at a time,
    /// `send_delay` apart.
    fn with_judge(
        case: &'a str,
        judge: Judge,
        start: Instant,
        send_chunk: usize,
        send_delay: Duration,
    ) -> Console<'a> {
        Console {
            case,
            judge,
            bytes: 0,
            stderr: StderrTail::default(),
            start,
            last_output: start,
            paused: None,
            typing: Typing {
                pending: Vec::new(),
                at: None,
                chunk: send_chunk.max(1),
                delay: send_delay,
            },
        }
    }

    /// The boot's report once the verdict is made; `stages` (a board's) come first in the
    /// timeline.
    pub(crate) fn report(
        &self,
        verdict: Verdict,
        log: &super::log::ConsoleLog,
        stages: Vec<TimelineEntry>,
    ) -> BootReport {
        let script = self.judge.script();
        let mut timeline = stages;
        timeline.extend(script.map(|s| s.timeline()).unwrap_or_default());
        BootReport {
            result: CaseResult {
                timeline,
                testcases: script.map(|s| s.cases()).unwrap_or_default(),
                console_tail: self.judge.tail(),
                stderr_tail: self.stderr.lines(),
                console_bytes: self.bytes,
                log_dropped_bytes: log.dropped(),
                console_lines: self.judge.lines_seen(),
                ..CaseResult::without_boot(self.case, verdict, Duration::ZERO)
            },
            elapsed: self.start.elapsed(),
        }
    }

    /// Streams the machine's console (and diagnostics) until a decision, a deadline, a
    /// signal, or the machine's end.
    pub(crate) async fn watch<M: Machine>(
        &mut self,
        machine: &mut M,
        log: &mut super::log::ConsoleLog,
        reporters: &Reporters,
        cancel: &mut Cancel,
        case: &Case,
    ) -> Result<End, Error> {
        let mut buf = vec![0u8; READ_CHUNK];
        let deadline = tokio::time::sleep_until((self.start + case.judge.timeout).into());
        tokio::pin!(deadline);
        let stop = loop {
            let wake = self.judge.next_wakeup().map(|d| self.start + d);
            let awaited = self.judge.script().and_then(|s| s.next_deadline());
            let awaited_at = awaited.as_ref().map(|(d, _)| self.start + *d);
            let quiet_at = case.inactivity_timeout.map(|d| self.last_output + d);
            let own = machine.deadline();
            let own_at = own.as_ref().map(|(d, _)| self.start + *d);
            // Only a debugger (`--gdb`) stops the guest before the verdict.
            let running = self.paused.is_none();
            tokio::select! {
                biased;
                sig = cancel.cancelled() => break End::Cancelled(sig),
                event = machine.next(&mut buf) => match event {
                    MachineEvent::Console(n) => {
                        // Output shows the guest runs, even before QMP's `RESUME` is read.
                        if !running && self.resume(Instant::now()) {
                            deadline.as_mut().reset((self.start + case.judge.timeout).into());
                        }
                        let decided = self.on_console(&buf[..n], log, reporters).await?;
                        let now = self.start.elapsed();
                        let line_no = self.judge.lines_seen() + 1;
                        if let Some(d) = decided {
                            machine.last_bytes(&buf[..n], now, line_no);
                            break End::Decided(d);
                        }
                        self.queue_typing();
                        let answer = tokio::select! {
                            biased;
                            sig = cancel.cancelled() => break End::Cancelled(sig),
                            a = machine.observe(&buf[..n], now, line_no) => a,
                        };
                        match answer {
                            Ok(Some(text)) => self.queue(&text),
                            Ok(None) => {}
                            Err(why) => break End::Board(why),
                        }
                    }
                    MachineEvent::ConsoleClosed => {
                        if let Some(d) = self.judge.finish(self.start.elapsed()) {
                            break End::Decided(d);
                        }
                    }
                    MachineEvent::Stderr(bytes) => self.on_stderr(&bytes, reporters),
                    MachineEvent::Exited => break End::Exited,
                    MachineEvent::Control(ControlNote::Started) => {}
                    MachineEvent::Control(ControlNote::Paused(at)) => {
                        self.paused.get_or_insert(at);
                    }
                    MachineEvent::Control(ControlNote::Resumed(at)) => {
                        if self.resume(at) {
                            deadline.as_mut().reset((self.start + case.judge.timeout).into());
                        }
                    }
                    MachineEvent::Control(ControlNote::Panicked(at)) => break End::GuestPanicked(at),
                    MachineEvent::Control(ControlNote::Failed(why)) => break End::NoControl(why),
                    MachineEvent::Failed(why) => break End::Board(why),
                    MachineEvent::Note(line) if line.is_empty() => {}
                    MachineEvent::Note(line) => reporters.emit(Event::Note {
                        case: Some(self.case),
                        level: crate::report::Level::Info,
                        message: &line,
                        location: None,
                    }),
                },
                _ = sleep_until_opt(wake), if running => {
                    if let Some(d) = self.judge.poll(self.start.elapsed()) {
                        break End::Decided(d);
                    }
                }
                _ = sleep_until_opt(self.typing.at), if running => self.type_chunk(machine).await,
                _ = sleep_until_opt(own_at), if running => {
                    break End::Board(own.map(|(_, why)| why).unwrap_or_default());
                }
                _ = sleep_until_opt(awaited_at), if running => {
                    break End::Awaited(awaited.map(|(_, what)| what).unwrap_or_default());
                }
                _ = sleep_until_opt(quiet_at), if running => {
                    break End::Inactive(case.inactivity_timeout.unwrap_or_default());
                }
                _ = &mut deadline, if running => break End::Deadline(case.judge.timeout),
            }
        };
        Ok(stop)
    }

    /// The guest, stopped by a debugger, runs again since `at`: the clock stood still while it
    /// was stopped, so every deadline (they all count from `start`, the inactivity deadline
    /// from the last output) moves by that time. False when it was not stopped.
    fn resume(&mut self, at: Instant) -> bool {
        let Some(from) = self.paused.take() else {
            return false;
        };
        let stood = at.saturating_duration_since(from);
        self.start += stood;
        self.last_output += stood;
        true
    }

    /// Takes what a step just asked to type; the first chunk goes out at once.
    fn queue_typing(&mut self) {
        if let Some(text) = self.judge.script_mut().and_then(|s| s.take_send()) {
            self.queue(&text);
        }
    }

    fn queue(&mut self, text: &[u8]) {
        self.typing.pending.extend_from_slice(text);
        self.typing.at.get_or_insert_with(Instant::now);
    }

    /// Types the next chunk; a closed input drops the rest, and the step after it then times
    /// out naming what it waited for.
    async fn type_chunk<M: Machine>(&mut self, machine: &mut M) {
        let n = self.typing.chunk.min(self.typing.pending.len());
        let chunk: Vec<u8> = self.typing.pending.drain(..n).collect();
        if !machine.type_bytes(&chunk).await {
            self.typing.pending.clear();
        }
        self.typing.at =
            (!self.typing.pending.is_empty()).then(|| Instant::now() + self.typing.delay);
    }

    /// Console bytes that may decide: to the log, the reporters and the judge.
    async fn on_console(
        &mut self,
        bytes: &[u8],
        log: &mut super::log::ConsoleLog,
        reporters: &Reporters,
    ) -> Result<Option<Decision>, Error> {
        self.last_output = Instant::now();
        self.copy(bytes, log, reporters).await?;
        Ok(self.judge.feed(bytes, self.start.elapsed()))
    }

    /// Console bytes after the verdict or after QEMU was stopped: to the log, the reporters and
    /// the judge's tail only (the reports show the whole last lines; nothing is decided).
    async fn after_the_end(
        &mut self,
        bytes: &[u8],
        log: &mut super::log::ConsoleLog,
        reporters: &Reporters,
    ) -> Result<(), Error> {
        self.copy(bytes, log, reporters).await?;
        self.judge.feed_tail(bytes);
        Ok(())
    }

    async fn copy(
        &mut self,
        bytes: &[u8],
        log: &mut super::log::ConsoleLog,
        reporters: &Reporters,
    ) -> Result<(), Error> {
        self.bytes += bytes.len() as u64;
        log.write_all(bytes)
            .await
            .map_err(|e| Error::infra(format!("cannot write the console log: {e}")))?;
        reporters.emit(Event::Console {
            case: self.case,
            bytes,
        });
        Ok(())
    }

    fn on_stderr(&mut self, bytes: &[u8], reporters: &Reporters) {
        self.stderr.push(bytes);
        reporters.emit(Event::QemuStderr {
            case: self.case,
            bytes,
        });
    }

    /// After a fail decision, while QEMU still runs: copies the console to the log, the
    /// reporters and the judge's tail until it has been quiet for [`SETTLE_QUIET`] (at most
    /// [`SETTLE_LIMIT`]), so what the guest prints right after its panic line (its backtrace)
    /// is in the log.
    async fn settle(
        &mut self,
        qemu: &mut QemuProcess,
        log: &mut super::log::ConsoleLog,
        reporters: &Reporters,
    ) -> Result<(), Error> {
        let mut buf = vec![0u8; READ_CHUNK];
        let until = Instant::now() + SETTLE_LIMIT;
        let mut stdout = qemu.stdout.take();
        loop {
            let quiet = (Instant::now() + SETTLE_QUIET).min(until);
            tokio::select! {
                n = read_some(&mut stdout, &mut buf) => match n {
                    // The verdict is made; the judge's tail keeps the rest of a deciding line
                    // cut mid-way for the reports.
                    Some(n) => self.after_the_end(&buf[..n], log, reporters).await?,
                    None => break,
                },
                _ = tokio::time::sleep_until(quiet.into()) => break,
            }
        }
        qemu.stdout = stdout;
        Ok(())
    }

    /// After QEMU is gone: copy what is left in the pipes to the log, the reporters and the
    /// judge's tail. When QEMU exited by itself (`end` is [`End::Exited`]) the judge reads it
    /// all and may decide; after a stop (a verdict, the deadline, a signal) nothing may change
    /// the decision.
    async fn drain(
        &mut self,
        qemu: &mut QemuProcess,
        log: &mut super::log::ConsoleLog,
        reporters: &Reporters,
        mut end: End,
    ) -> Result<End, Error> {
        let mut buf = vec![0u8; READ_CHUNK];
        let mut ebuf = vec![0u8; 8 * 1024];
        let until = Instant::now() + DRAIN_LIMIT;
        let mut stdout = qemu.stdout.take();
        let mut stderr = qemu.stderr.take();
        while stdout.is_some() || stderr.is_some() {
            tokio::select! {
                n = read_some(&mut stdout, &mut buf) => match n {
                    Some(n) if end == End::Exited => {
                        if let Some(d) = self.on_console(&buf[..n], log, reporters).await? {
                            end = End::Decided(d);
                        }
                    }
                    Some(n) => self.after_the_end(&buf[..n], log, reporters).await?,
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
        if end == End::Exited
            && let Some(d) = self.judge.finish(self.start.elapsed())
        {
            end = End::Decided(d);
        }
        Ok(end)
    }
}

/// Where the core dump of the boot logging to `log` goes: `<case>.core.gz` beside it.
pub fn core_path(log: &std::path::Path) -> PathBuf {
    log.with_extension("core.gz")
}

/// Whether a boot that ended `end` failed while QEMU still runs the guest: a deadline, a fail
/// pattern, a guest panic. Then its vCPUs are read before QEMU is stopped.
fn wants_postmortem(end: &End) -> bool {
    match end {
        End::Deadline(_) | End::Awaited(_) | End::Inactive(_) | End::GuestPanicked(_) => true,
        End::Decided(d) => matches!(d, crate::console::Decision::Fail(_)),
        End::Cancelled(_) | End::Exited | End::LogEnded | End::NoControl(_) | End::Board(_) => {
            false
        }
    }
}

/// Stops QEMU unless it already exited, kills and reaps whatever it left behind, and
/// describes how it ended.
async fn finish_process(qemu: &mut QemuProcess, end: &End) -> Result<QemuExit, Error> {
    let status = qemu
        .stop(STOP_GRACE)
        .await
        .map_err(|e| Error::infra(format!("cannot stop QEMU: {e}")))?;
    use std::os::unix::process::ExitStatusExt;
    Ok(QemuExit {
        code: status.code(),
        signal: status.signal(),
        killed_by_runner: *end != End::Exited,
    })
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
    /// The first line starting `qemu-system-…: ` (or `qemu: `), kept whatever follows.
    first_error: Option<String>,
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
                let is_error = line.starts_with("qemu-system-") || line.starts_with("qemu: ");
                if self.first_error.is_none() && is_error && !line.contains("terminating on signal")
                {
                    self.first_error = Some(line.clone());
                }
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

    /// The line that names QEMU's problem: the first line QEMU prefixed with its own name
    /// (`qemu-system-x86_64: -m foo: …`; later lines of the same message only explain it),
    /// else the last line.
    fn headline(&self) -> Option<String> {
        self.first_error
            .clone()
            .or_else(|| self.lines().last().cloned())
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::PatternSpec;
    use crate::console::{JudgeOptions, Pattern};

    /// A console judged by the fail pattern `PANIC` whose "QEMU" is `sh -c script`, already
    /// exited, its output still in the pipe; and the log it writes to.
    async fn stopped(
        script: &str,
        dir: &Path,
    ) -> (Console<'static>, QemuProcess, super::super::log::ConsoleLog) {
        let fail = Pattern::compile(
            &PatternSpec {
                regex: "PANIC".into(),
                location: None,
            },
            "fail_regex",
        )
        .unwrap();
        let args = ["-c".to_string(), script.to_string()];
        let mut qemu = QemuProcess::spawn(Path::new("/bin/sh"), &args, dir).unwrap();
        qemu.wait().await.unwrap();
        let log = super::super::log::ConsoleLog::create(&dir.join("case.log"), 1 << 20).unwrap();
        let judge = Judge::new(Vec::new(), vec![fail], JudgeOptions::default());
        let console = Console::with_judge("case", judge, Instant::now(), 1, Duration::ZERO);
        (console, qemu, log)
    }

    /// Whether the judge still decides on a fail line, i.e. nothing before decided it.
    fn undecided(console: &mut Console<'_>) -> bool {
        let fail = console
            .judge
            .feed(b"PANIC later\n", console.start.elapsed());
        matches!(fail, Some(Decision::Fail(_)))
    }

    #[tokio::test(flavor = "current_thread")]
    async fn after_a_stop_the_drain_feeds_the_tail_and_decides_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (mut console, mut qemu, mut log) = stopped(
            "printf 'booting\\nPANIC in the pipe\\nlast words'",
            dir.path(),
        )
        .await;
        let deadline = End::Deadline(Duration::from_secs(1));
        let end = console
            .drain(&mut qemu, &mut log, &Reporters::new(), deadline.clone())
            .await
            .unwrap();
        assert_eq!(end, deadline);
        assert_eq!(
            console.judge.tail(),
            ["booting", "PANIC in the pipe", "last words"]
        );
        assert_eq!(console.judge.lines_seen(), 3);
        log.flush().await.unwrap();
        drop(log);
        let text = std::fs::read_to_string(dir.path().join("case.log")).unwrap();
        assert_eq!(text, "booting\nPANIC in the pipe\nlast words");
        assert!(undecided(&mut console), "the drained fail line decided");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn when_qemu_exits_by_itself_the_drain_decides() {
        let dir = tempfile::tempdir().unwrap();
        let (mut console, mut qemu, mut log) =
            stopped("printf 'PANIC at the end\\n'", dir.path()).await;
        let end = console
            .drain(&mut qemu, &mut log, &Reporters::new(), End::Exited)
            .await
            .unwrap();
        assert!(matches!(end, End::Decided(Decision::Fail(_))), "{end:?}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_settle_after_a_verdict_feeds_the_tail_only() {
        let dir = tempfile::tempdir().unwrap();
        let (mut console, mut qemu, mut log) =
            stopped("printf 'backtrace:\\n  PANIC frame\\n'", dir.path()).await;
        console
            .settle(&mut qemu, &mut log, &Reporters::new())
            .await
            .unwrap();
        assert_eq!(console.judge.tail(), ["backtrace:", "  PANIC frame"]);
        assert!(undecided(&mut console), "the settled fail line decided");
    }
}
