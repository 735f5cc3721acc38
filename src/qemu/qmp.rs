//! A small QMP (QEMU Machine Protocol) client over a unix socket: the greeting, capability
//! negotiation, commands with their replies, and the event stream.
//!
//! Hand-written rather than taken from a crate: `qapi` (with `qapi-qmp`) generates thousands
//! of types from QEMU's schema, a large compile for the three commands and two events used here,
//! and the `qmp` crate is a single 0.1 release. QMP itself is one JSON object per line, which
//! `serde_json` already reads.
//!
//! Use: [`QmpSocket`] picks the socket path (in the case's work dir; a private temporary
//! directory when that path is too long for a unix socket), listens on it before QEMU starts,
//! and gives QEMU's arguments (QEMU connects as the client); [`Qmp::accept`] takes QEMU's
//! connection, negotiates, and returns the client and its [`QmpEvent`] receiver. [`Qmp::execute`] runs any command (`cont`, `query-status`,
//! `query-cpus-fast`, `human-monitor-command`, …) and returns its `return` value.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Mutex, mpsc, oneshot};

/// Longest QMP message accepted (a reply to `query-cpus-fast` on many vCPUs is a few KiB).
const MAX_MESSAGE: usize = 1024 * 1024;
/// Events buffered for the reader; QEMU rate-limits the chatty ones.
const EVENT_BUFFER: usize = 256;
/// Longest path a unix socket address holds (`sun_path` is 108 bytes with its NUL).
const MAX_SOCKET_PATH: usize = 107;
/// The longest name of a socket beside the QMP socket ([`QmpSocket::sibling`]): the one a
/// person connects to after `--pause-on-fail`.
const LONGEST_SIBLING: &str = "qmp-debug.sock";

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
    /// Waits (until `give_up`) for QEMU to connect to `listener` — QEMU is the client
    /// (`server=off`), so nothing polls for its socket to appear — then enters command mode
    /// and runs `first` (e.g. `cont`). Events arrive on the returned receiver until QEMU
    /// closes the connection.
    ///
    /// `qmp_capabilities` and `first` are written in one go the moment QEMU connects, before
    /// its greeting is read: QEMU connects while it is still creating the machine and runs
    /// queued commands in order once its main loop starts, so a paused (`-S`) guest is
    /// started without a round trip through this process after QEMU is ready.
    pub async fn accept(
        listener: &UnixListener,
        give_up: Instant,
        first: &[&str],
    ) -> io::Result<(Qmp, mpsc::Receiver<QmpEvent>)> {
        let (stream, _) = tokio::time::timeout_at(give_up.into(), listener.accept())
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    "QEMU did not connect to its QMP socket",
                )
            })??;
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
        let greeting = read_message(&mut read).await?;
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

/// Where QEMU listens for QMP; the socket file (and a temporary directory) go with it.
pub struct QmpSocket {
    path: PathBuf,
    /// Bound before QEMU starts; taken by the boot's QMP task.
    listener: Option<std::os::unix::net::UnixListener>,
    _dir: Option<tempfile::TempDir>,
    /// The work dir, when it was created for the socket (removed again if still empty).
    created: Option<PathBuf>,
}

impl QmpSocket {
    /// Listens on `<dir>/qmp.sock`, or the same name in a private temporary directory when
    /// that path is too long for a unix socket address. A stale socket file from an earlier
    /// boot is removed.
    pub fn new(dir: &Path) -> io::Result<QmpSocket> {
        let mut s = QmpSocket::place(dir)?;
        let listener = std::os::unix::net::UnixListener::bind(&s.path)?;
        listener.set_nonblocking(true)?;
        s.listener = Some(listener);
        Ok(s)
    }

    fn place(dir: &Path) -> io::Result<QmpSocket> {
        let path = dir.join("qmp.sock");
        if dir.join(LONGEST_SIBLING).as_os_str().len() <= MAX_SOCKET_PATH {
            let created = (!dir.exists()).then(|| dir.to_path_buf());
            std::fs::create_dir_all(dir)?;
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            return Ok(QmpSocket {
                path,
                listener: None,
                _dir: None,
                created,
            });
        }
        let tmp = tempfile::Builder::new()
            .prefix("qemu-test-qmp-")
            .tempdir()?;
        Ok(QmpSocket {
            path: tmp.path().join("qmp.sock"),
            listener: None,
            _dir: Some(tmp),
            created: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Another socket in the same directory (the gdbstub's, `--pause-on-fail`'s QMP), short
    /// enough for a unix socket address; a stale file of that name is removed. The caller
    /// removes it when done (before this socket goes, which may remove the directory).
    pub fn sibling(&self, name: &str) -> PathBuf {
        debug_assert!(name.len() <= LONGEST_SIBLING.len(), "{name}");
        let path = self.path.with_file_name(name);
        let _ = std::fs::remove_file(&path);
        path
    }

    /// The listening socket, for a tokio runtime (once; `None` after).
    pub fn take_listener(&mut self) -> io::Result<Option<UnixListener>> {
        self.listener.take().map(UnixListener::from_std).transpose()
    }

    /// QEMU's `-qmp` option value: connect to our socket as the client. Listening first and
    /// letting QEMU connect means no polling for QEMU's socket to appear, which kept a few
    /// milliseconds off every boot; QEMU is started paused with `-S`, so no event is missed.
    /// Commas are doubled, as QEMU's option parser wants.
    pub fn qemu_option(&self) -> String {
        format!(
            "unix:{},server=off",
            super::options::escape(&self.path.to_string_lossy())
        )
    }
}

impl Drop for QmpSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(dir) = &self.created {
            // Only an empty directory is removed.
            let _ = std::fs::remove_dir(dir);
        }
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

    #[tokio::test(flavor = "current_thread")]
    async fn negotiates_runs_commands_and_delivers_events() {
        let dir = tempfile::tempdir().unwrap();
        let mut sock = QmpSocket::new(dir.path()).unwrap();
        let listener = sock.take_listener().unwrap().unwrap();
        // Plays QEMU: the client of the socket.
        let stream = tokio::net::UnixStream::connect(sock.path()).await.unwrap();
        let qemu = tokio::spawn(server(stream));
        let (qmp, mut events) =
            Qmp::accept(&listener, Instant::now() + Duration::from_secs(5), &[])
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
        let dir = tempfile::tempdir().unwrap();
        let mut sock = QmpSocket::new(dir.path()).unwrap();
        let listener = sock.take_listener().unwrap().unwrap();
        let stream = tokio::net::UnixStream::connect(sock.path()).await.unwrap();
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
            Qmp::accept(
                &listener,
                Instant::now() + Duration::from_secs(5),
                &["cont"],
            ),
        )
        .await
        .expect("the client waited for the greeting before sending");
        accepted.unwrap();
        assert_eq!(qemu.await.unwrap(), ["qmp_capabilities", "cont"]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_qemu_that_never_connects_is_given_up_on() {
        let dir = tempfile::tempdir().unwrap();
        let mut sock = QmpSocket::new(dir.path()).unwrap();
        let listener = sock.take_listener().unwrap().unwrap();
        let err = Qmp::accept(&listener, Instant::now() + Duration::from_millis(20), &[])
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn a_long_work_dir_gets_a_short_private_socket_path() {
        let long = Path::new("/tmp").join("d".repeat(120));
        let s = QmpSocket::new(&long).unwrap();
        assert!(s.path().as_os_str().len() <= MAX_SOCKET_PATH);
        assert!(!long.exists(), "the long dir is not created");
        let short = tempfile::tempdir().unwrap();
        let s = QmpSocket::new(short.path()).unwrap();
        assert_eq!(s.path(), short.path().join("qmp.sock"));
        assert!(s.qemu_option().ends_with("qmp.sock,server=off"));
        assert!(s.path().exists(), "listening before QEMU starts");
    }
}
