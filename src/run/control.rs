//! The boot's QMP side: QEMU starts paused (`-S`); a background task connects to its QMP
//! socket, negotiates and sends `cont`, so no event of the guest's life is missed. The console
//! loop then only polls [`Control::next`] beside its other branches — it never waits on QMP —
//! and learns how the guest ended (`SHUTDOWN`'s reason, `GUEST_PANICKED`).

use std::path::Path;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::qemu::qmp::{Qmp, QmpEvent};
use crate::verdict::GuestEnding;

/// How long QEMU may take to create its QMP socket before the boot gives up on it.
const CONNECT_LIMIT: Duration = Duration::from_secs(10);
/// Most time spent after QEMU's exit collecting its last QMP events.
pub const QMP_GRACE: Duration = Duration::from_secs(2);
/// How long a connection attempt still running at QEMU's exit may take to finish.
const SETTLE_AFTER_EXIT: Duration = Duration::from_millis(100);

/// What [`Control::next`] reports.
pub enum ControlNote {
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
        /// Kept for the post-mortem (vCPU state) and later commands.
        #[allow(dead_code)]
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
}

impl Control {
    /// Starts connecting to `socket` in the background; `start` is QEMU's start.
    pub fn start(socket: &Path, start: Instant) -> Control {
        let socket = socket.to_path_buf();
        let task = tokio::spawn(async move {
            let (qmp, events) = Qmp::connect(&socket, Instant::now() + CONNECT_LIMIT)
                .await
                .map_err(|e| e.to_string())?;
            qmp.execute("cont", None).await.map_err(|e| e.to_string())?;
            Ok((qmp, events))
        });
        Control {
            state: State::Connecting(task),
            start,
            started: false,
            guest: None,
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
                            self.started = true;
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
                        if let Some(at) = self.on_event(&ev) {
                            return ControlNote::Panicked(at);
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
        // The connection may have finished while the console loop was busy with the exit; a
        // connect still retrying will not succeed now that QEMU is gone.
        if let State::Connecting(task) = &mut self.state {
            self.state = match tokio::time::timeout(SETTLE_AFTER_EXIT, task).await {
                Ok(Ok(Ok((qmp, events)))) => {
                    self.started = true;
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

    /// Records a `SHUTDOWN`; returns the time of a `GUEST_PANICKED`.
    fn on_event(&mut self, ev: &QmpEvent) -> Option<Duration> {
        let at = ev.received.saturating_duration_since(self.start);
        match ev.name.as_str() {
            "SHUTDOWN" => {
                let reason = ev.data["reason"].as_str().unwrap_or("unknown").to_string();
                self.guest = Some(GuestEnding { reason, at });
                None
            }
            "GUEST_PANICKED" => Some(at),
            _ => None,
        }
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        if let State::Connecting(task) = &self.state {
            task.abort();
        }
    }
}
