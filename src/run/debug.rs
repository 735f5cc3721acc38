//! `run --gdb` and `run --pause-on-fail` for one boot (the endpoints and the gdb line are
//! `crate::qemu::gdb`'s): the sockets in the case's work dir, QEMU's extra options, the lines
//! that tell a person how to attach, and the pause after a failed boot. Nothing here runs
//! unless one of the flags is given.
//!
//! Choices:
//! - `--gdb`: QEMU starts paused (`-S`, as always) with `-gdb`, and the boot does not send
//!   `cont`: the debugger starts the guest. The boot's clock runs only while the guest runs —
//!   QMP's `STOP`/`RESUME` events stop and restart it — so the timeout, the inactivity
//!   deadline and the step and milestone deadlines count the guest's running time, not the
//!   time spent at a breakpoint or before the first `continue`.
//! - `--pause-on-fail`: the gdbstub is started only when a boot fails (the monitor's
//!   `gdbserver`), so a boot runs exactly as without the flag and the stub's socket appears
//!   only when there is something to debug. QMP cannot be added to a running QEMU, and the
//!   boot's own QMP connection (an inherited socket pair) cannot be shared, so the flag gives QEMU a
//!   second QMP monitor from the start, listening on `qmp-debug.sock`, for a person's QMP
//!   client.

use std::path::{Path, PathBuf};

use super::Cancel;
use super::control::Control;
use super::note;
use crate::arch::Arch;
use crate::error::Error;
use crate::postmortem::Postmortem;
use crate::prepare::workdir::MadeDir;
use crate::qemu::QemuCommand;
use crate::qemu::gdb::{DebugElfs, DebugOptions, GdbEndpoint, GdbListen};
use crate::qemu::process::QemuProcess;
use crate::report::Reporters;

/// Longest path a unix socket address holds (`sun_path` is 108 bytes with its NUL).
const MAX_SOCKET_PATH: usize = 107;
/// The longest name of a debugging socket ([`SocketDir::socket`]): the one a person connects
/// to after `--pause-on-fail`.
const LONGEST_SOCKET: &str = "qmp-debug.sock";

/// One boot's debugging: where its gdbstub and its person's QMP listen.
pub(crate) struct DebugBoot {
    options: DebugOptions,
    gdb: GdbEndpoint,
    /// `--pause-on-fail`: the QMP socket QEMU listens on for a person.
    qmp: Option<PathBuf>,
    /// Where the sockets are.
    _dir: SocketDir,
    /// The gdb line's debugger (`gdb` or `gdb-multiarch`) and ELFs.
    arch: Arch,
    elfs: DebugElfs,
}

impl DebugBoot {
    /// The debugging `options` ask of a boot whose work dir is `work_dir` under `out_dir`
    /// (its sockets go there); `None` when they ask nothing. `elfs` finds what the debugger
    /// loads.
    pub(crate) fn new(
        options: &DebugOptions,
        out_dir: &Path,
        work_dir: &Path,
        arch: Arch,
        elfs: impl FnOnce() -> DebugElfs,
    ) -> Result<Option<DebugBoot>, Error> {
        if !options.any() {
            return Ok(None);
        }
        let dir = SocketDir::new(out_dir, work_dir)?;
        let listen = options.gdb.unwrap_or(GdbListen::Socket);
        let gdb = GdbEndpoint::new(listen, dir.socket("gdb.sock"));
        Ok(Some(DebugBoot {
            options: *options,
            gdb,
            qmp: options.pause_on_fail.then(|| dir.socket("qmp-debug.sock")),
            _dir: dir,
            arch,
            elfs: elfs(),
        }))
    }

    /// Whether the guest waits for the debugger to start it (`--gdb`).
    pub(crate) fn holds(&self) -> bool {
        self.options.gdb.is_some()
    }

    /// `command` with the gdbstub (`--gdb`) and the person's QMP monitor (`--pause-on-fail`).
    pub(crate) fn command(&self, mut command: QemuCommand) -> QemuCommand {
        if self.holds() {
            command.add(
                &["-gdb", &self.gdb.qemu_device()],
                "--gdb: the guest waits for the debugger (`continue` starts it)",
            );
        }
        if let Some(qmp) = &self.qmp {
            let option = format!(
                "unix:{},server=on,wait=off",
                crate::qemu::options::escape(&qmp.to_string_lossy())
            );
            command.add(
                &["-qmp", &option],
                "--pause-on-fail: a QMP monitor to connect to while a failed boot is paused",
            );
        }
        command
    }

    /// `--gdb`: tells how to attach, once QEMU runs.
    pub(crate) fn announce(&self, case: &str, reporters: &Reporters) {
        if !self.holds() {
            return;
        }
        note(
            reporters,
            case,
            &format!(
                "{case}: QEMU waits for the debugger; the deadlines count only while the guest \
                 runs; Ctrl-C ends the run. Attach and `continue`:"
            ),
        );
        note(reporters, case, &self.gdb_line());
    }

    /// Whether a failed boot pauses (`--pause-on-fail`).
    pub(crate) fn pauses(&self) -> bool {
        self.options.pause_on_fail
    }

    fn gdb_line(&self) -> String {
        self.gdb.gdb_line(self.arch, &self.elfs)
    }

    /// `--pause-on-fail`, after a failed boot's vCPUs were read (`pm`; the guest is stopped):
    /// starts the gdbstub unless `--gdb` did, tells how to attach, and waits for SIGINT or
    /// SIGTERM (claimed from `cancel`: it ends the pause, not the run), the run's cancel, or
    /// QEMU's exit (a `quit` from the person's QMP or gdb's `kill`). QEMU is then the caller's
    /// to stop and reap, and the boot's verdict stays the failure. Returns how long it paused.
    pub(crate) async fn pause(
        &self,
        control: &Control,
        qemu: &mut QemuProcess,
        case: &str,
        pm: &Postmortem,
        reporters: &Reporters,
        cancel: &mut Cancel,
    ) -> std::time::Duration {
        let start = std::time::Instant::now();
        let gdb = if self.holds() {
            Ok(())
        } else {
            // The monitor says "Waiting for gdb connection on device …" when the stub
            // listens, and why when it cannot: its socket tells which.
            match control.monitor(&self.gdb.monitor_command()).await {
                Ok(_) if self.gdb.socket().is_some_and(|p| p.exists()) => Ok(()),
                Ok(out) => Err(out.trim().to_string()),
                Err(e) => Err(e),
            }
        };
        note(
            reporters,
            case,
            &format!(
                "{case}: paused on failure ({}); QEMU is kept, stopped, until Ctrl-C \
                 (SIGINT or SIGTERM), then the run goes on",
                pm.one_line()
            ),
        );
        match gdb {
            Ok(()) => note(reporters, case, &format!("gdb: {}", self.gdb_line())),
            Err(why) => note(reporters, case, &format!("no gdbstub: {why}")),
        }
        if let Some(qmp) = &self.qmp {
            note(reporters, case, &format!("QMP: {}", qmp.display()));
        }
        tokio::select! {
            _ = cancel.interrupted() => {}
            _ = qemu.wait() => {}
        }
        start.elapsed()
    }
}

impl Drop for DebugBoot {
    /// The sockets QEMU listened on go with the boot.
    fn drop(&mut self) {
        for path in self.gdb.socket().into_iter().chain(self.qmp.as_deref()) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Where a boot's debugging sockets go (`--gdb`'s gdbstub, `--pause-on-fail`'s QMP monitor for
/// a person): the case's work dir, or a private temporary directory when that path is too long
/// for a unix socket address. Made only when a debugging flag is given.
struct SocketDir {
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    /// The work dir, when it is the directory.
    _made: Option<MadeDir>,
}

impl SocketDir {
    /// In `work_dir` (under `out_dir`), or a private temporary directory.
    fn new(out_dir: &Path, work_dir: &Path) -> Result<SocketDir, Error> {
        if work_dir.join(LONGEST_SOCKET).as_os_str().len() <= MAX_SOCKET_PATH {
            return Ok(SocketDir {
                dir: work_dir.to_path_buf(),
                _tmp: None,
                _made: Some(MadeDir::new(out_dir, work_dir)?),
            });
        }
        let tmp = tempfile::Builder::new()
            .prefix("qemu-test-sock-")
            .tempdir()
            .map_err(|e| Error::io(&std::env::temp_dir(), "create a socket directory in", &e))?;
        Ok(SocketDir {
            dir: tmp.path().to_path_buf(),
            _tmp: Some(tmp),
            _made: None,
        })
    }

    /// A socket path in this directory, short enough for a unix socket address; a stale file
    /// of that name is removed. The caller removes it when done.
    fn socket(&self, name: &str) -> PathBuf {
        debug_assert!(name.len() <= LONGEST_SOCKET.len(), "{name}");
        let path = self.dir.join(name);
        let _ = std::fs::remove_file(&path);
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_work_dir_gets_a_short_private_socket_dir() {
        let long = Path::new("/tmp").join("d".repeat(120));
        let s = SocketDir::new(Path::new("/tmp"), &long).unwrap();
        assert!(s.socket(LONGEST_SOCKET).as_os_str().len() <= MAX_SOCKET_PATH);
        assert!(!long.exists(), "the long dir is not created");
        let short = tempfile::tempdir().unwrap();
        let work = short.path().join("case");
        let s = SocketDir::new(short.path(), &work).unwrap();
        assert_eq!(s.socket("gdb.sock"), work.join("gdb.sock"));
        drop(s);
        assert!(
            !work.exists(),
            "the empty work dir made for the sockets is removed"
        );
    }
}
