//! The boot's QMP side: QEMU starts paused (`-S`) holding its end of a socket pair made for
//! it; a background task sends `qmp_capabilities` and `cont` at once on the other end (QEMU
//! runs them when its main loop starts, so the guest starts with no round trip through this
//! process), and no event of the guest's life is missed. The console
//! loop then only polls [`Control::next`] beside its other branches — it never waits on QMP —
//! and learns how the guest ended (`SHUTDOWN`'s reason, `GUEST_PANICKED`).

use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::postmortem::{Postmortem, registers};
use crate::qemu::qmp::{Qmp, QmpError, QmpEvent};
use crate::verdict::GuestEnding;

/// How long QEMU may take to greet on its QMP socket before the boot gives up on it.
const CONNECT_LIMIT: Duration = Duration::from_secs(10);
/// Most time spent after QEMU's exit collecting its last QMP events.
pub const QMP_GRACE: Duration = Duration::from_secs(2);
/// How long a connection attempt still running at QEMU's exit may take to finish.
const SETTLE_AFTER_EXIT: Duration = Duration::from_millis(100);
/// Most time reading the vCPUs may add to a failing verdict.
pub const POSTMORTEM_LIMIT: Duration = Duration::from_secs(2);
/// Longest a core dump may take (QEMU writes the guest's RAM to a file; about 0.5 s for
/// 128 MiB here).
pub const CORE_DUMP_LIMIT: Duration = Duration::from_secs(60);
/// Most vCPUs read.
const MAX_VCPUS: usize = 64;

/// What [`Control::next`] reports.
pub enum ControlNote {
    /// The guest was stopped (`--gdb`: the debugger stopped it), at this instant.
    Paused(Instant),
    /// The guest runs again (`--gdb`: the debugger continued it), at this instant.
    Resumed(Instant),
    /// The guest was started (`cont` answered).
    Started,
    /// QEMU reported that the guest panicked, this long after QEMU started.
    Panicked(Duration),
    /// QMP failed before the guest was started; the guest will not run.
    Failed(String),
}

enum State {
    Connecting(JoinHandle<Result<(Qmp, mpsc::Receiver<QmpEvent>), String>>),
    Ready {
        qmp: Qmp,
        events: mpsc::Receiver<QmpEvent>,
    },
    Closed,
}

/// One boot's QMP connection and what it learned.
pub struct Control {
    state: State,
    start: Instant,
    /// Whether `cont` succeeded: the guest ran.
    pub started: bool,
    /// The guest's ending, from the last `SHUTDOWN` event.
    pub guest: Option<GuestEnding>,
    /// `--gdb`: the guest is left paused for the debugger (no `cont`), and its stops and
    /// resumes are reported; since when it is paused (QEMU's start at first).
    held: Option<Option<Instant>>,
}

impl Control {
    /// Starts negotiating with QEMU on `link` (our end of its QMP link) in the background;
    /// `start` is QEMU's start.
    /// `hold` (`--gdb`): the guest is not started; the debugger starts it, and its stops and
    /// resumes are reported ([`ControlNote::Paused`], [`ControlNote::Resumed`]), the times
    /// of the guest's events counting only its running time.
    pub fn start(link: tokio::net::UnixStream, start: Instant, hold: bool) -> Control {
        let first: &'static [&'static str] = if hold { &[] } else { &["cont"] };
        let task = tokio::spawn(async move {
            Qmp::open(link, Instant::now() + CONNECT_LIMIT, first)
                .await
                .map_err(|e| e.to_string())
        });
        Control {
            state: State::Connecting(task),
            start,
            started: false,
            guest: None,
            held: hold.then_some(Some(start)),
        }
    }

    /// The next thing worth the console loop's attention; pending forever when there is none.
    /// Cancel-safe: a `select!` may drop it at any await.
    pub async fn next(&mut self) -> ControlNote {
        loop {
            match &mut self.state {
                State::Connecting(task) => {
                    let r = task.await.unwrap_or_else(|e| Err(e.to_string()));
                    match r {
                        Ok((qmp, events)) => {
                            self.state = State::Ready { qmp, events };
                            // Held for a debugger, the guest starts at its first resume.
                            self.started = self.held.is_none();
                            return ControlNote::Started;
                        }
                        Err(e) => {
                            self.state = State::Closed;
                            return ControlNote::Failed(e);
                        }
                    }
                }
                State::Ready { events, .. } => match events.recv().await {
                    Some(ev) => {
                        if let Some(note) = self.on_event(&ev) {
                            return note;
                        }
                    }
                    None => self.state = State::Closed,
                },
                State::Closed => std::future::pending::<()>().await,
            }
        }
    }

    /// After QEMU exited: reads the events still buffered (QEMU sends `SHUTDOWN` before it
    /// exits), for at most [`QMP_GRACE`].
    pub async fn drain(&mut self) {
        let until = tokio::time::Instant::now() + QMP_GRACE;
        // The handshake may have finished while the console loop was busy with the exit; one
        // still waiting will not finish now that QEMU is gone.
        if let State::Connecting(task) = &mut self.state {
            self.state = match tokio::time::timeout(SETTLE_AFTER_EXIT, task).await {
                Ok(Ok(Ok((qmp, events)))) => {
                    self.started = self.held.is_none();
                    State::Ready { qmp, events }
                }
                _ => State::Closed,
            };
        }
        while let State::Ready { events, .. } = &mut self.state {
            match tokio::time::timeout_at(until, events.recv()).await {
                Ok(Some(ev)) => {
                    self.on_event(&ev);
                }
                Ok(None) | Err(_) => self.state = State::Closed,
            }
        }
    }

    /// Stops the guest and reads each vCPU's state, in at most [`POSTMORTEM_LIMIT`]; what
    /// could not be read is said in the notes (a QMP that does not answer, a target whose
    /// registers are not parsed). QEMU keeps running, stopped, for the caller to end.
    pub async fn postmortem(&mut self) -> Postmortem {
        let t = Instant::now();
        let deadline = tokio::time::Instant::now() + POSTMORTEM_LIMIT;
        let mut pm = Postmortem::default();
        // The connection may be complete while the console loop, busy with the guest's
        // output, has not looked yet.
        if let State::Connecting(task) = &mut self.state
            && let Ok(r) = tokio::time::timeout_at(deadline, &mut *task).await
        {
            self.state = match r {
                Ok(Ok((qmp, events))) => {
                    self.started = self.held.is_none();
                    State::Ready { qmp, events }
                }
                _ => State::Closed,
            };
        }
        match &self.state {
            State::Ready { qmp, .. } => {
                let read = tokio::time::timeout_at(deadline, read_vcpus(qmp, &mut pm));
                match read.await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => pm.notes.push(format!("{e}")),
                    Err(_) => {
                        pm.notes.push(format!(
                            "QMP did not answer within {}s",
                            POSTMORTEM_LIMIT.as_secs()
                        ));
                        // Nothing more is asked of it (a core dump would wait on it too).
                        self.state = State::Closed;
                    }
                }
            }
            State::Connecting(_) => pm.notes.push(format!(
                "QEMU did not answer on QMP within {}s",
                POSTMORTEM_LIMIT.as_secs()
            )),
            State::Closed => pm.notes.push("the QMP connection was closed".into()),
        }
        pm.took_ms = t.elapsed().as_millis() as u64;
        pm
    }

    /// Has QEMU write the guest's memory to `path` as an ELF core (`dump-guest-memory`,
    /// physical addresses, no paging), after [`Control::postmortem`] stopped the guest; a guest
    /// with more RAM than `max` bytes is not dumped. At most [`CORE_DUMP_LIMIT`].
    pub async fn core_dump(&self, path: &std::path::Path, max: u64) -> Result<(), String> {
        let State::Ready { qmp, .. } = &self.state else {
            return Err("QMP is not connected, or did not answer the vCPU read".into());
        };
        let dump = async {
            let memory = qmp.execute("query-memory-size-summary", None).await?;
            let ram = memory["base-memory"].as_u64().unwrap_or(0)
                + memory["plugged-memory"].as_u64().unwrap_or(0);
            if ram > max {
                return Ok(Err(format!(
                    "the guest has {} MiB of RAM, more than max_core_size ({} MiB)",
                    ram >> 20,
                    max >> 20
                )));
            }
            let args = serde_json::json!({
                "paging": false,
                "format": "elf",
                "protocol": format!("file:{}", path.display()),
            });
            qmp.execute("dump-guest-memory", Some(args)).await?;
            Ok::<_, QmpError>(Ok(()))
        };
        match tokio::time::timeout(CORE_DUMP_LIMIT, dump).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "QEMU did not finish it within {}s",
                CORE_DUMP_LIMIT.as_secs()
            )),
        }
    }

    /// Runs a monitor (HMP) command in QEMU, in at most [`POSTMORTEM_LIMIT`], and returns
    /// what it printed.
    pub async fn monitor(&self, command: &str) -> Result<String, String> {
        let State::Ready { qmp, .. } = &self.state else {
            return Err("QMP is not connected, or did not answer the vCPU read".into());
        };
        let args = serde_json::json!({ "command-line": command });
        let run = qmp.execute("human-monitor-command", Some(args));
        match tokio::time::timeout(POSTMORTEM_LIMIT, run).await {
            Ok(Ok(r)) => Ok(r.as_str().unwrap_or_default().to_string()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "QMP did not answer within {}s",
                POSTMORTEM_LIMIT.as_secs()
            )),
        }
    }

    /// Records a `SHUTDOWN`; reports a `GUEST_PANICKED` and, when held for a debugger, the
    /// guest's stops and resumes (while it was stopped, the clock of its events stood still).
    fn on_event(&mut self, ev: &QmpEvent) -> Option<ControlNote> {
        let at = ev.received.saturating_duration_since(self.start);
        match (ev.name.as_str(), &mut self.held) {
            ("SHUTDOWN", _) => {
                let reason = ev.data["reason"].as_str().unwrap_or("unknown").to_string();
                self.guest = Some(GuestEnding { reason, at });
                None
            }
            ("GUEST_PANICKED", _) => Some(ControlNote::Panicked(at)),
            ("STOP", Some(since)) => {
                since.get_or_insert(ev.received);
                Some(ControlNote::Paused(ev.received))
            }
            ("RESUME", Some(since)) => {
                self.started = true;
                if let Some(from) = since.take() {
                    self.start += ev.received.saturating_duration_since(from);
                }
                Some(ControlNote::Resumed(ev.received))
            }
            _ => None,
        }
    }
}

/// `stop`, then each vCPU's registers (`info registers` through `human-monitor-command`) and,
/// where the target waits for interrupts with a fixed instruction, the word before its PC.
/// Appends to `pm` as it goes, so a timeout keeps what was read.
async fn read_vcpus(qmp: &Qmp, pm: &mut Postmortem) -> Result<(), QmpError> {
    qmp.execute("stop", None).await?;
    let cpus = qmp.execute("query-cpus-fast", None).await?;
    let cpus = cpus.as_array().map(Vec::as_slice).unwrap_or_default();
    if cpus.len() > MAX_VCPUS {
        pm.notes
            .push(format!("{} vCPUs; the first {MAX_VCPUS} read", cpus.len()));
    }
    for cpu in cpus.iter().take(MAX_VCPUS) {
        let (Some(index), Some(target)) = (cpu["cpu-index"].as_u64(), cpu["target"].as_str())
        else {
            continue;
        };
        let index = index as u32;
        if !registers::supported(target) {
            pm.notes
                .push(format!("the registers of {target} vCPUs are not read"));
            return Ok(());
        }
        let dump = hmp(qmp, "info registers", index).await?;
        let Some(mut vcpu) = registers::parse(target, index, &dump) else {
            pm.notes
                .push(format!("vCPU{index}: QEMU's register dump has no PC"));
            continue;
        };
        if vcpu.halted.is_none()
            && let Some(wait) = registers::wait_instruction(target)
        {
            let at = vcpu.pc.wrapping_sub(4);
            let word = hmp(qmp, &format!("x /1wx {at:#x}"), index).await?;
            vcpu.halted = registers::memory_word(&word).map(|w| w == wait);
        }
        pm.vcpus.push(vcpu);
    }
    Ok(())
}

/// Runs an HMP command on vCPU `cpu` and returns its text.
async fn hmp(qmp: &Qmp, command: &str, cpu: u32) -> Result<String, QmpError> {
    let args = serde_json::json!({ "command-line": command, "cpu-index": cpu });
    let r = qmp.execute("human-monitor-command", Some(args)).await?;
    Ok(r.as_str().unwrap_or_default().to_string())
}

impl Drop for Control {
    fn drop(&mut self) {
        if let State::Connecting(task) = &self.state {
            task.abort();
        }
    }
}
