//! A small QMP (QEMU Machine Protocol) client over a unix socket: the greeting, capability
//! negotiation, commands with their replies, and the event stream.
//!
//! Hand-written rather than taken from a crate: `qapi` (with `qapi-qmp`) generates thousands
//! of types from QEMU's schema, a large compile for the three commands and two events used here,
//! and the `qmp` crate is a single 0.1 release. QMP itself is one JSON object per line, which
//! `serde_json` already reads.
//!
//! Use: [`QmpLink`] is a connected pair of unix sockets made before QEMU starts; QEMU inherits
//! one end (`-chardev socket,fd=N`), so there is no socket file, no directory to hold it, no
//! bind, listen or accept, and nothing another process could connect to. [`Qmp::open`]
//! negotiates on the other end and returns the client and its [`QmpEvent`] receiver.
//! [`Qmp::execute`] runs any command (`cont`, `query-status`, `query-cpus-fast`,
//! `human-monitor-command`, …) and returns its `return` value.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Mutex, mpsc, oneshot};

/// Longest QMP message accepted (a reply to `query-cpus-fast` on many vCPUs is a few KiB).
const MAX_MESSAGE: usize = 1024 * 1024;
/// Events buffered for the reader; QEMU rate-limits the chatty ones.
const EVENT_BUFFER: usize = 256;

/// One asynchronous QMP event.
#[derive(Debug, Clone, PartialEq)]
pub struct QmpEvent {
    /// `SHUTDOWN`, `GUEST_PANICKED`, `RESET`, `STOP`, …
    pub name: String,
    /// The event's `data` object (`Value::Null` when absent).
    pub data: Value,
    /// When it was read.
    pub received: Instant,
}

/// A failed QMP exchange.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QmpError {
    /// QEMU answered with an error object.
    #[error("QMP {class}: {desc}")]
    Command { class: String, desc: String },
    /// The connection broke or QEMU sent something that is not QMP.
    #[error("QMP connection: {0}")]
    Io(String),
}

/// Commands waiting for their reply, by id; `None` once the connection is gone.
type Waiters =
    Arc<std::sync::Mutex<Option<HashMap<u64, oneshot::Sender<Result<Value, QmpError>>>>>>;

/// A negotiated QMP connection; clones share it.
#[derive(Clone)]
pub struct Qmp {
    writer: Arc<Mutex<OwnedWriteHalf>>,
    waiters: Waiters,
    next_id: Arc<AtomicU64>,
}

impl Qmp {
    /// Enters command mode on `stream` (our end of a [`QmpLink`]) and runs `first` (e.g.
    /// `cont`); gives up when QEMU's greeting has not come by `give_up`. Events arrive on the
    /// returned receiver until QEMU closes the connection.
    ///
    /// `qmp_capabilities` and `first` are written at once, before the greeting is read (the
    /// socket holds them until QEMU reads): QEMU runs queued commands in order once its main
    /// loop starts, so a paused (`-S`) guest is started without a round trip through this
    /// process after QEMU is ready.
    pub async fn open(
        stream: UnixStream,
        give_up: Instant,
        first: &[&str],
    ) -> io::Result<(Qmp, mpsc::Receiver<QmpEvent>)> {
        let (read, write) = stream.into_split();
        let qmp = Qmp {
            writer: Arc::new(Mutex::new(write)),
            waiters: Arc::new(std::sync::Mutex::new(Some(HashMap::new()))),
            next_id: Arc::new(AtomicU64::new(1)),
        };
        let mut batch = String::new();
        let mut replies = Vec::new();
        for command in std::iter::once("qmp_capabilities").chain(first.iter().copied()) {
            let (line, reply) = qmp
                .queue(command, None)
                .map_err(|e| protocol(e.to_string()))?;
            batch.push_str(&line);
            replies.push((command, reply));
        }
        qmp.writer.lock().await.write_all(batch.as_bytes()).await?;
        let mut read = BufReader::new(read);
        let greeting = tokio::time::timeout_at(give_up.into(), read_message(&mut read))
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    "QEMU did not greet on its QMP socket",
                )
            })??;
        if greeting.get("QMP").is_none() {
            return Err(protocol(format!(
                "expected the QMP greeting, got {greeting}"
            )));
        }
        let (tx, rx) = mpsc::channel(EVENT_BUFFER);
        tokio::spawn(read_loop(read, qmp.waiters.clone(), tx));
        for (command, reply) in replies {
            reply
                .await
                .unwrap_or_else(|_| Err(QmpError::Io("QEMU closed the connection".into())))
                .map_err(|e| protocol(format!("{command} refused: {e}")))?;
        }
        Ok((qmp, rx))
    }

    /// Registers a waiter for `command` and returns its line (with its id) and the reply.
    fn queue(
        &self,
        command: &str,
        arguments: Option<Value>,
    ) -> Result<(String, oneshot::Receiver<Result<Value, QmpError>>), QmpError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut msg = serde_json::json!({ "execute": command, "id": id });
        if let Some(a) = arguments {
            msg["arguments"] = a;
        }
        let (tx, rx) = oneshot::channel();
        match lock(&self.waiters).as_mut() {
            Some(w) => w.insert(id, tx),
            None => return Err(QmpError::Io("QEMU closed the connection".into())),
        };
        let mut line = msg.to_string();
        line.push('\n');
        Ok((line, rx))
    }

    /// Runs `command` with `arguments` and returns its `return` value.
    pub async fn execute(
        &self,
        command: &str,
        arguments: Option<Value>,
    ) -> Result<Value, QmpError> {
        let (line, reply) = self.queue(command, arguments)?;
        let sent = self.writer.lock().await.write_all(line.as_bytes()).await;
        if let Err(e) = sent {
            // Its waiter stays until the reader ends; nothing will answer it.
            return Err(QmpError::Io(e.to_string()));
        }
        reply
            .await
            .unwrap_or_else(|_| Err(QmpError::Io("QEMU closed the connection".into())))
    }
}

/// Routes replies to their waiters and events to the channel until EOF or an error; then
/// every waiter learns the connection is gone (its sender is dropped).
async fn read_loop(
    mut read: BufReader<OwnedReadHalf>,
    waiters: Waiters,
    events: mpsc::Sender<QmpEvent>,
) {
    while let Ok(msg) = read_message(&mut read).await {
        if let Some(name) = msg.get("event").and_then(Value::as_str) {
            // A full buffer drops the event: nobody is reading them.
            let _ = events.try_send(QmpEvent {
                name: name.to_string(),
                data: msg.get("data").cloned().unwrap_or(Value::Null),
                received: Instant::now(),
            });
            continue;
        }
        let Some(id) = msg.get("id").and_then(Value::as_u64) else {
            continue;
        };
        let Some(tx) = lock(&waiters).as_mut().and_then(|w| w.remove(&id)) else {
            continue;
        };
        let result = match (msg.get("return"), msg.get("error")) {
            (Some(r), _) => Ok(r.clone()),
            (None, Some(e)) => Err(QmpError::Command {
                class: e["class"].as_str().unwrap_or("Error").to_string(),
                desc: e["desc"].as_str().unwrap_or_default().to_string(),
            }),
            (None, None) => Err(QmpError::Io(format!("unexpected QMP message {msg}"))),
        };
        let _ = tx.send(result);
    }
    lock(&waiters).take();
}

/// Reads one message (one line of JSON), at most [`MAX_MESSAGE`] bytes.
async fn read_message(read: &mut BufReader<OwnedReadHalf>) -> io::Result<Value> {
    let mut line = Vec::new();
    loop {
        let buf = read.fill_buf().await?;
        if buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "QEMU closed the QMP connection",
            ));
        }
        let (take, done) = match memchr::memchr(b'\n', buf) {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        line.extend_from_slice(&buf[..take]);
        read.consume(take);
        if line.len() > MAX_MESSAGE {
            return Err(protocol(format!("a QMP message over {MAX_MESSAGE} bytes")));
        }
        if done {
            if line.iter().all(u8::is_ascii_whitespace) {
                line.clear();
                continue;
            }
            return serde_json::from_slice(&line)
                .map_err(|e| protocol(format!("QMP message is not JSON: {e}")));
        }
    }
}

fn protocol(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The two ends of QEMU's QMP connection, made before QEMU starts: QEMU inherits its end
/// (close-on-exec is cleared for it alone, in the child: `QemuProcess::spawn_keeping`) and is
/// the client of an already connected socket (`-chardev socket,fd=N`, QEMU ≥ 2.12). Nothing
/// is created on disk and no other process can reach it.
pub struct QmpLink {
    ours: std::os::unix::net::UnixStream,
    qemus: OwnedFd,
}

impl QmpLink {
    pub fn new() -> io::Result<QmpLink> {
        // Both ends close on exec: only the QEMU spawned for it gets its end.
        let (ours, qemus) = std::os::unix::net::UnixStream::pair()?;
        let mut qemus = OwnedFd::from(qemus);
        if qemus.as_raw_fd() <= 2 {
            // Started with a standard stream closed: the child's stdio would land on it.
            // (`try_clone` duplicates to the lowest free number from 3 up.)
            qemus = qemus.try_clone()?;
        }
        Ok(QmpLink { ours, qemus })
    }

    /// QEMU's end, as the descriptor number QEMU is given (the same in the child).
    pub fn qemu_fd(&self) -> RawFd {
        self.qemus.as_raw_fd()
    }

    /// QEMU's `-chardev` value for its end, under the chardev id `id`.
    pub fn chardev_option(&self, id: &str) -> String {
        format!("socket,id={id},fd={}", self.qemu_fd())
    }

    /// Our end, for a tokio runtime; QEMU's end is closed here (once QEMU holds its copy, so
    /// that QEMU's exit closes the connection).
    pub fn into_ours(self) -> io::Result<UnixStream> {
        drop(self.qemus);
        self.ours.set_nonblocking(true)?;
        UnixStream::from_std(self.ours)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::AsyncReadExt;

    /// A scripted QEMU end of the connection: greets, accepts capabilities, answers `query-status` and emits
    /// one event, then closes.
    async fn server(mut s: tokio::net::UnixStream) {
        s.write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf).await.unwrap();
        let req: Value = serde_json::from_slice(&buf[..n]).unwrap();
        assert_eq!(req["execute"], "qmp_capabilities");
        let reply = serde_json::json!({"return": {}, "id": req["id"]});
        s.write_all(format!("{reply}\n").as_bytes()).await.unwrap();
        let n = s.read(&mut buf).await.unwrap();
        let req: Value = serde_json::from_slice(&buf[..n]).unwrap();
        assert_eq!(req["execute"], "query-status");
        let id = req["id"].clone();
        let event = b"{\"event\": \"SHUTDOWN\", \"data\": {\"guest\": true, \"reason\": \"guest-reset\"}, \"timestamp\": {}}\n";
        s.write_all(event).await.unwrap();
        let reply = serde_json::json!({"return": {"status": "running"}, "id": id});
        s.write_all(format!("{reply}\n").as_bytes()).await.unwrap();
        let n = s.read(&mut buf).await.unwrap();
        let req: Value = serde_json::from_slice(&buf[..n]).unwrap();
        let reply =
            serde_json::json!({"error": {"class": "GenericError", "desc": "no"}, "id": req["id"]});
        s.write_all(format!("{reply}\n").as_bytes()).await.unwrap();
    }

    /// The two ends of a link: ours, and QEMU's as a tokio stream (played by the test).
    fn link() -> (UnixStream, UnixStream) {
        let link = QmpLink::new().unwrap();
        let theirs = std::os::unix::net::UnixStream::from(link.qemus.try_clone().unwrap());
        theirs.set_nonblocking(true).unwrap();
        (
            link.into_ours().unwrap(),
            UnixStream::from_std(theirs).unwrap(),
        )
    }

    #[tokio::test(flavor = "current_thread")]
    async fn negotiates_runs_commands_and_delivers_events() {
        let (ours, stream) = link();
        let qemu = tokio::spawn(server(stream));
        let (qmp, mut events) = Qmp::open(ours, Instant::now() + Duration::from_secs(5), &[])
            .await
            .unwrap();
        let status = qmp.execute("query-status", None).await.unwrap();
        assert_eq!(status["status"], "running");
        let ev = events.recv().await.unwrap();
        assert_eq!(ev.name, "SHUTDOWN");
        assert_eq!(ev.data["reason"], "guest-reset");
        let err = qmp.execute("cont", None).await.unwrap_err();
        assert_eq!(
            err,
            QmpError::Command {
                class: "GenericError".into(),
                desc: "no".into()
            }
        );
        qemu.await.unwrap();
        // QEMU is gone: the event stream ends and commands fail.
        assert!(events.recv().await.is_none());
        let err = qmp.execute("query-status", None).await.unwrap_err();
        assert!(matches!(err, QmpError::Io(_)), "{err:?}");
    }

    /// The commands that start the guest go out before QEMU's greeting is read: a QEMU that
    /// greets only after it has both gets its guest started (a client waiting for the greeting
    /// first would time out here).
    #[tokio::test(flavor = "current_thread")]
    async fn the_handshake_and_first_commands_go_out_before_the_greeting() {
        let (ours, stream) = link();
        let qemu = tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            let mut got = Vec::new();
            while got.len() < 2 {
                let line = lines.next_line().await.unwrap().unwrap();
                got.push(serde_json::from_str::<Value>(&line).unwrap());
            }
            write
                .write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n")
                .await
                .unwrap();
            for req in &got {
                let reply = serde_json::json!({"return": {}, "id": req["id"]});
                write
                    .write_all(format!("{reply}\r\n").as_bytes())
                    .await
                    .unwrap();
            }
            got.iter().map(|r| r["execute"].clone()).collect::<Vec<_>>()
        });
        let accepted = tokio::time::timeout(
            Duration::from_secs(5),
            Qmp::open(ours, Instant::now() + Duration::from_secs(5), &["cont"]),
        )
        .await
        .expect("the client waited for the greeting before sending");
        accepted.unwrap();
        assert_eq!(qemu.await.unwrap(), ["qmp_capabilities", "cont"]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_qemu_that_never_greets_is_given_up_on() {
        let (ours, _qemu) = link();
        let err = Qmp::open(ours, Instant::now() + Duration::from_millis(20), &[])
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    /// QEMU's end closes on exec except in the QEMU spawned for it, and ours is never
    /// inherited; dropping the link's QEMU end after the spawn leaves QEMU the only holder.
    #[test]
    fn both_ends_close_on_exec() {
        let link = QmpLink::new().unwrap();
        for fd in [link.qemu_fd(), link.ours.as_raw_fd()] {
            // SAFETY: fcntl on descriptors this test owns.
            let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
            assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC, "fd {fd}");
        }
        assert_eq!(
            link.chardev_option("q"),
            format!("socket,id=q,fd={}", link.qemu_fd())
        );
    }
}
