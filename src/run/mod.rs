//! Running planned cases: each goes through its stages (image, prepare, build, boot) and ends
//! in a result; QEMU is always stopped and reaped, also on SIGINT/SIGTERM.

mod board;
pub(crate) mod boot;
mod case;
mod control;
mod coredump;
mod debug;
pub(crate) mod dry_run;
pub mod host_http;
mod jobs;
pub mod log;

pub use boot::{BootReport, QemuRun, boot};
pub use case::{build_recipe, dry_build_recipe, execute_case};
pub use jobs::default_jobs;

use futures_util::StreamExt;
use tokio::signal::unix::{SignalKind, signal};

use crate::error::Error;
use crate::plan::Case;
use crate::report::baseline::BaselineCheck;
use crate::report::{CaseResult, Event, Level, Reporters};
use crate::verdict::CancelSignal;

/// Cancellation by SIGINT, SIGTERM or SIGHUP, shared by every running case. Installed first
/// thing in `run`, so a signal at any stage (config read, download, build, boot, report) gets
/// the QEMUs and builds stopped, the reports written and the exit code 128 + n.
///
/// The one place signals are handled. A pause that waits for a person (`--pause-on-fail`)
/// claims the next SIGINT or SIGTERM with [`Cancel::interrupted`]: that signal ends the pause
/// only, and the run goes on (its later cases are not cancelled); each pause claims its own.
#[derive(Clone)]
pub struct Cancel {
    rx: tokio::sync::watch::Receiver<Option<CancelSignal>>,
    /// The waits that claimed the next SIGINT or SIGTERM.
    claims: Claims,
}

type Claims = std::sync::Arc<std::sync::Mutex<Vec<tokio::sync::oneshot::Sender<CancelSignal>>>>;

/// How [`Cancel::interrupted`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupt {
    /// The claimed SIGINT or SIGTERM: the wait is over, the run goes on.
    Claimed(CancelSignal),
    /// The run was cancelled (SIGHUP, or a signal that came before the claim).
    Cancelled(CancelSignal),
}

impl Cancel {
    /// Starts listening for SIGINT, SIGTERM and SIGHUP (needs a running tokio runtime).
    pub fn install() -> Result<Cancel, Error> {
        let err = |e: std::io::Error| Error::infra(format!("cannot install signal handlers: {e}"));
        let mut int = signal(SignalKind::interrupt()).map_err(err)?;
        let mut term = signal(SignalKind::terminate()).map_err(err)?;
        let mut hup = signal(SignalKind::hangup()).map_err(err)?;
        let (tx, rx) = tokio::sync::watch::channel(None);
        let claims = Claims::default();
        let claimed = claims.clone();
        tokio::spawn(async move {
            loop {
                let sig = tokio::select! {
                    _ = int.recv() => CancelSignal::Sigint,
                    _ = term.recv() => CancelSignal::Sigterm,
                    _ = hup.recv() => CancelSignal::Sighup,
                };
                // A hang-up means nobody is left to debug: it always cancels.
                if sig != CancelSignal::Sighup && deliver(&claimed, sig) {
                    continue;
                }
                // The first cancel is the run's; a later signal is recorded and ignored, so
                // it cannot kill the run half-way through its clean-up (tokio keeps its
                // handlers installed).
                tx.send_if_modified(|s| s.is_none() && s.replace(sig).is_none());
            }
        });
        Ok(Cancel { rx, claims })
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

    /// Waits for the next SIGINT or SIGTERM without cancelling the run (the end of a
    /// `--pause-on-fail` pause), or for the run's cancel, whichever comes first; a run
    /// cancelled before the call returns at once.
    pub async fn interrupted(&mut self) -> Interrupt {
        let (tx, rx) = tokio::sync::oneshot::channel();
        {
            let mut claims = self.claims.lock().unwrap_or_else(|p| p.into_inner());
            claims.retain(|c| !c.is_closed());
            claims.push(tx);
        }
        tokio::select! {
            biased;
            sig = self.cancelled() => Interrupt::Cancelled(sig),
            Ok(sig) = rx => Interrupt::Claimed(sig),
        }
    }
}

/// Hands `sig` to every wait that claimed it; false when none is waiting.
fn deliver(claims: &Claims, sig: CancelSignal) -> bool {
    let waiting = std::mem::take(&mut *claims.lock().unwrap_or_else(|p| p.into_inner()));
    // Every waiter gets it (no short cut after the first).
    let mut delivered = false;
    for c in waiting {
        delivered |= c.send(sig).is_ok();
    }
    delivered
}

/// Tells the reporters `message` about `case` (a note, for information).
pub(crate) fn note(reporters: &Reporters, case: &str, message: &str) {
    reporters.emit(Event::Note {
        case: Some(case),
        level: Level::Info,
        message,
        location: None,
    });
}

/// What a run decided: every case's result (in the planned order), the process exit code and
/// the worst outcome.
#[derive(Debug)]
pub struct RunSummary {
    pub results: Vec<CaseResult>,
    pub exit_code: i32,
    pub outcome: crate::verdict::Outcome,
}

/// The one place that sequences a run: `RunStarted`, the cases (`jobs` at a time, each through
/// its stages and retries, compared with the baseline when there is one), `CaseFinished` for
/// each, then the counts' verdict — the exit code ([`crate::verdict::exit_code`], 128 + n when
/// cancelled) and the worst outcome ([`crate::verdict::worst`]) — in `RunFinished`.
pub async fn run_all(
    cases: &[Case],
    reporters: &Reporters,
    cancel: &Cancel,
    jobs: usize,
    baseline: Option<&BaselineCheck>,
) -> RunSummary {
    let names: Vec<String> = cases.iter().map(|c| c.name.clone()).collect();
    reporters.emit(Event::RunStarted { cases: &names });
    let results: Vec<CaseResult> = futures_util::stream::iter(cases)
        .map(|case| {
            let mut cancel = cancel.clone();
            async move {
                let mut result = execute_case(case, reporters, &mut cancel).await;
                if let Some(b) = baseline {
                    compare_with_baseline(b, &mut result, reporters);
                }
                reporters.emit(Event::CaseFinished { result: &result });
                result
            }
        })
        .buffered(jobs)
        .collect()
        .await;
    let mut exit_code = crate::verdict::exit_code(results.iter().map(|r| &r.verdict));
    // A signal after the last case ended still makes this a cancelled run.
    if let Some(sig) = cancel.is_cancelled() {
        exit_code = sig.exit_code();
    }
    let outcome = crate::verdict::worst(results.iter().map(|r| r.verdict.outcome));
    reporters.emit(Event::RunFinished {
        results: &results,
        exit_code,
        outcome,
    });
    RunSummary {
        results,
        exit_code,
        outcome,
    }
}

/// Records a finished case's times against the baseline. A regression that does not fail the
/// case (no `--fail-on-regression`) is a warning; one that does is in the verdict's reason.
fn compare_with_baseline(baseline: &BaselineCheck, result: &mut CaseResult, reporters: &Reporters) {
    if let Some(why) = baseline.apply(result)
        && !baseline.fails()
    {
        reporters.emit(Event::Note {
            case: Some(&result.name),
            level: Level::Warning,
            message: &format!("{}: {why}", result.name),
            location: None,
        });
    }
}
