//! Running planned cases: each goes through its stages (image, prepare, build, boot) and ends
//! in a result; QEMU is always stopped and reaped, also on SIGINT/SIGTERM.

mod board;
pub(crate) mod boot;
mod case;
mod control;
mod coredump;
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
#[derive(Clone)]
pub struct Cancel {
    rx: tokio::sync::watch::Receiver<Option<CancelSignal>>,
}

impl Cancel {
    /// Starts listening for SIGINT, SIGTERM and SIGHUP (needs a running tokio runtime).
    pub fn install() -> Result<Cancel, Error> {
        let err = |e: std::io::Error| Error::infra(format!("cannot install signal handlers: {e}"));
        let mut int = signal(SignalKind::interrupt()).map_err(err)?;
        let mut term = signal(SignalKind::terminate()).map_err(err)?;
        let mut hup = signal(SignalKind::hangup()).map_err(err)?;
        let (tx, rx) = tokio::sync::watch::channel(None);
        tokio::spawn(async move {
            let sig = tokio::select! {
                _ = int.recv() => CancelSignal::Sigint,
                _ = term.recv() => CancelSignal::Sigterm,
                _ = hup.recv() => CancelSignal::Sighup,
            };
            let _ = tx.send(Some(sig));
            // tokio leaves its handlers installed when these streams drop: a second signal is
            // recorded and ignored, so it cannot kill the run half-way through its clean-up.
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
    reporters.emit(Event::RunFinished {
        results: &results,
        exit_code,
    });
    let outcome = crate::verdict::worst(results.iter().map(|r| r.verdict.outcome));
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
