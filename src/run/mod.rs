//! Running planned cases: each goes through its stages (image, prepare, build, boot) and ends
//! in a result; QEMU is always stopped and reaped, also on SIGINT/SIGTERM.

pub(crate) mod boot;
mod case;
pub mod command;
mod control;
mod dry_run;
pub mod host_http;
mod jobs;
pub mod log;

pub use boot::{BootPlan, BootReport, boot};
pub use case::{build_plan, dry_build_plan, execute_case};
pub use jobs::default_jobs;

use tokio::signal::unix::{SignalKind, signal};

use crate::error::Error;
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
