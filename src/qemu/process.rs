//! QEMU as a child in its own process group, with piped stdin/stdout/stderr.
//!
//! Every exit path ends with the whole group gone: [`QemuProcess::stop`] sends SIGTERM to the
//! group, waits a grace period, then SIGKILLs it and reaps the leader; dropping an unreaped
//! process SIGKILLs the group; and the child asks the kernel (`PR_SET_PDEATHSIG`) to kill it if
//! this process dies without cleaning up (even by SIGKILL), so no QEMU outlives the tool.
//!
//! Descendants that leave the group (`setsid`, a daemonising helper) are found too: every
//! spawned command carries a unique `QEMU_TEST_SPAWN` token in its environment, which its
//! descendants inherit, and this process is a child sub-reaper (`PR_SET_CHILD_SUBREAPER`), so
//! orphans are re-parented to it rather than to init and can be reaped here after the kill.

use std::io;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

/// A running QEMU (or any command) that owns its process group.
pub struct QemuProcess {
    child: Child,
    pgid: i32,
    /// `QEMU_TEST_SPAWN=<token>` in the environment of the command and its descendants.
    token: String,
    reaped: Option<ExitStatus>,
    pub stdin: Option<ChildStdin>,
    pub stdout: Option<ChildStdout>,
    pub stderr: Option<ChildStderr>,
}

impl QemuProcess {
    /// Starts `program args…` in `cwd` as the leader of a new process group.
    ///
    /// Call this from the thread that drives the runtime for the whole run (the tool uses a
    /// current-thread runtime): `PR_SET_PDEATHSIG` fires when the spawning *thread* exits.
    pub fn spawn(program: &Path, args: &[String], cwd: &Path) -> io::Result<QemuProcess> {
        Self::start(program, args, cwd, &[], &[], None)
    }

    /// Like [`QemuProcess::spawn`], and the child keeps the descriptor `keep` open across its
    /// exec, under the same number (its close-on-exec flag is cleared in the child alone, so
    /// no other child started meanwhile gets it): QEMU's end of its QMP link.
    pub fn spawn_keeping(
        program: &Path,
        args: &[String],
        cwd: &Path,
        keep: std::os::fd::RawFd,
    ) -> io::Result<QemuProcess> {
        Self::start(program, args, cwd, &[], &[], Some(keep))
    }

    /// Like [`QemuProcess::spawn`], with `env` set on top of the inherited environment (a
    /// build's `AX_LOG`, say) and the `unset` variables removed from it.
    pub fn spawn_with_env(
        program: &Path,
        args: &[String],
        cwd: &Path,
        env: &[(String, String)],
        unset: &[String],
    ) -> io::Result<QemuProcess> {
        Self::start(program, args, cwd, env, unset, None)
    }

    fn start(
        program: &Path,
        args: &[String],
        cwd: &Path,
        env: &[(String, String)],
        unset: &[String],
        keep: Option<std::os::fd::RawFd>,
    ) -> io::Result<QemuProcess> {
        become_subreaper();
        static SPAWNS: AtomicU64 = AtomicU64::new(0);
        let token = format!(
            "{}.{}",
            std::process::id(),
            SPAWNS.fetch_add(1, Ordering::Relaxed)
        );
        let mut cmd = Command::new(program);
        for name in unset {
            cmd.env_remove(name);
        }
        cmd.args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env(TOKEN_VAR, &token)
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: the closure only calls async-signal-safe functions (fcntl, prctl, getppid,
        // _exit) between fork and exec, as `pre_exec` requires.
        unsafe {
            cmd.pre_exec(move || {
                if let Some(fd) = keep
                    && libc::fcntl(fd, libc::F_SETFD, 0) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // The parent may have died between fork and prctl: then nobody would kill us.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        let pgid = child.id().map(|p| p as i32).unwrap_or(0);
        Ok(QemuProcess {
            stdin: child.stdin.take(),
            stdout: child.stdout.take(),
            stderr: child.stderr.take(),
            child,
            pgid,
            token,
            reaped: None,
        })
    }

    /// Process id of the leader (= the process group id).
    pub fn pid(&self) -> i32 {
        self.pgid
    }

    /// Waits for the leader to exit by itself.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        if let Some(s) = self.reaped {
            return Ok(s);
        }
        let status = self.child.wait().await?;
        self.reaped = Some(status);
        Ok(status)
    }

    /// Stops the whole group: SIGTERM, up to `grace` for a clean exit, then SIGKILL; reaps the
    /// leader and sweeps any member left behind. Returns the leader's exit status.
    pub async fn stop(&mut self, grace: Duration) -> io::Result<ExitStatus> {
        // Close stdin first: a guest waiting for input must not keep QEMU blocked on it.
        self.stdin.take();
        if self.reaped.is_none() {
            self.signal_group(libc::SIGTERM);
            if let Ok(r) = tokio::time::timeout(grace, self.child.wait()).await {
                self.reaped = Some(r?);
            }
        }
        if self.reaped.is_none() {
            self.signal_group(libc::SIGKILL);
            self.reaped = Some(self.child.wait().await?);
        }
        // Members that ignored SIGTERM or were started by QEMU itself, and descendants that
        // left the group.
        self.signal_group(libc::SIGKILL);
        self.sweep_descendants().await;
        Ok(self.reaped.expect("reaped above"))
    }

    /// Kills every process still carrying this spawn's token and reaps those re-parented to
    /// us; bounded by [`SWEEP_LIMIT`] (a process that is not ours to reap is left to its parent).
    async fn sweep_descendants(&self) {
        let needle = format!("{TOKEN_VAR}={}", self.token).into_bytes();
        let me = std::process::id() as i32;
        let until = Instant::now() + SWEEP_LIMIT;
        let mut known: Vec<i32> = Vec::new();
        loop {
            let found = marked_pids(&needle);
            for &pid in &found {
                if !known.contains(&pid) {
                    known.push(pid);
                }
                // SAFETY: kill(2) on a pid that carried our token a moment ago.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
            known.retain(|&pid| match proc_state(pid) {
                None => false,
                Some((state, ppid)) if ppid == me && (state == 'Z' || state == 'X') => {
                    // SAFETY: waitpid(2) on our own (re-parented) zombie child.
                    unsafe {
                        libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG);
                    }
                    false
                }
                Some(_) => true,
            });
            // Once more after the last reap: an orphan of a process just killed is re-parented
            // here only as that process dies.
            if (known.is_empty() && found.is_empty()) || Instant::now() >= until {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn signal_group(&self, signal: libc::c_int) {
        if self.pgid > 0 {
            // SAFETY: kill(2) with a negative pid signals the group we created; ESRCH (group
            // already gone) is expected and ignored.
            unsafe {
                libc::kill(-self.pgid, signal);
            }
        }
    }
}

impl Drop for QemuProcess {
    fn drop(&mut self) {
        // An early return or a panic: never leave the group running. Reaping is then left to
        // tokio's orphan reaper (kill_on_drop).
        if self.reaped.is_none() {
            self.signal_group(libc::SIGKILL);
        }
    }
}

/// The environment variable that marks a spawn and its descendants.
const TOKEN_VAR: &str = "QEMU_TEST_SPAWN";
/// Most processes one sweep looks at.
const MAX_WALK: usize = 4096;
/// Longest time spent killing and reaping descendants after a stop.
const SWEEP_LIMIT: Duration = Duration::from_secs(2);

/// Makes this process the reaper of its orphaned descendants (once; Linux ≥ 3.4).
fn become_subreaper() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: prctl(2) with an integer argument; failure only loses the setsid sweep's
        // reaping (the kill still happens), so the result is not fatal.
        unsafe {
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong);
        }
    });
}

/// Live processes whose environment contains `needle` (`VAR=value`).
///
/// Every process that inherited the token descends from this process: its parent is alive and
/// descends from it too, or it was re-parented here (the sub-reaper). So the walk starts at
/// this process's children (`/proc/<pid>/task/<tid>/children`) and reads the environment of
/// its descendants only — a few reads instead of one per process on the host, which every boot
/// paid after QEMU's exit. Without `CONFIG_PROC_CHILDREN` every process is read.
fn marked_pids(needle: &[u8]) -> Vec<i32> {
    let me = std::process::id() as i32;
    let Some(mut walk) = children(me) else {
        return marked_anywhere(needle);
    };
    let mut marked = Vec::new();
    let mut visited = 0;
    while let Some(pid) = walk.pop() {
        // Bounded: pids are reused, and a fork bomb must not keep this loop busy.
        visited += 1;
        if visited > MAX_WALK {
            break;
        }
        if carries(pid, needle) {
            marked.push(pid);
        }
        walk.extend(children(pid).unwrap_or_default());
    }
    marked
}

/// The children of every thread of `pid`; `None` when the kernel does not list them (or
/// `pid` is gone).
fn children(pid: i32) -> Option<Vec<i32>> {
    let mut listed = false;
    let mut pids = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            listed = true;
            pids.extend(
                text.split_ascii_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
    }
    listed.then_some(pids)
}

/// Whether `pid`'s environment contains `needle`. Processes of other users are unreadable.
fn carries(pid: i32, needle: &[u8]) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .is_ok_and(|env| env.split(|&b| b == 0).any(|kv| kv == needle))
}

/// [`marked_pids`] by reading every process's environment.
fn marked_anywhere(needle: &[u8]) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| carries(pid, needle))
        .collect()
}

/// A process's state letter and parent pid, from `/proc/<pid>/stat`.
fn proc_state(pid: i32) -> Option<(char, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut rest = stat.rsplit_once(") ")?.1.split(' ');
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Whether any process of group `pgid` is still running (zombies waiting to be reaped by their
/// new parent do not count: they hold no resources and can run nothing).
pub fn group_alive(pgid: i32) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.flatten().any(|e| {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            return false;
        };
        // Fields after the parenthesised command: state, ppid, pgrp, ...
        let mut rest = stat.rsplit_once(") ").map_or("", |(_, r)| r).split(' ');
        let state = rest.next().unwrap_or("Z");
        let pgrp = rest.nth(1).and_then(|p| p.parse::<i32>().ok());
        pgrp == Some(pgid) && state != "Z" && state != "X"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn stop_kills_a_group_that_ignores_sigterm() {
        // A shell that ignores TERM and starts a grandchild in the same group.
        let args = vec![
            "-c".to_string(),
            "trap '' TERM; sleep 30 & sleep 30; wait".to_string(),
        ];
        let mut p = QemuProcess::spawn(Path::new("/bin/sh"), &args, Path::new("/")).unwrap();
        let pgid = p.pid();
        assert!(group_alive(pgid));
        let status = p.stop(Duration::from_millis(200)).await.unwrap();
        assert!(!status.success());
        // SIGKILL is delivered asynchronously: wait (bounded) for the kernel to finish it.
        let mut gone = false;
        for _ in 0..200 {
            if !group_alive(pgid) {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(gone, "process group {pgid} survived stop()");
    }

    /// The walk over this process's descendants finds what reading every process finds: a
    /// `setsid`'d grandchild and its child, which left QEMU's group. After `stop`, nothing on
    /// the host carries the spawn's token.
    #[tokio::test(flavor = "current_thread")]
    async fn stop_kills_descendants_that_left_the_group() {
        let args = vec![
            "-c".to_string(),
            "setsid sh -c 'sleep 30 & wait' & echo started; wait".to_string(),
        ];
        let mut p = QemuProcess::spawn(Path::new("/bin/sh"), &args, Path::new("/")).unwrap();
        let mut line = String::new();
        let mut out = tokio::io::BufReader::new(p.stdout.take().unwrap());
        tokio::io::AsyncBufReadExt::read_line(&mut out, &mut line)
            .await
            .unwrap();
        let needle = format!("{TOKEN_VAR}={}", p.token).into_bytes();
        // The setsid'd shell and its sleep exist once `setsid` has exec'd and the shell forked:
        // wait for the full scan to see the three processes, then compare.
        let until = Instant::now() + Duration::from_secs(10);
        while marked_anywhere(&needle).len() < 3 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut everywhere = marked_anywhere(&needle);
        let mut walked = marked_pids(&needle);
        everywhere.sort();
        walked.sort();
        assert_eq!(everywhere.len(), 3, "{everywhere:?}");
        assert_eq!(walked, everywhere);
        p.stop(Duration::from_millis(200)).await.unwrap();
        assert_eq!(marked_anywhere(&needle), Vec::<i32>::new());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn wait_reports_exit_status() {
        let args = vec!["-c".to_string(), "exit 7".to_string()];
        let mut p = QemuProcess::spawn(Path::new("/bin/sh"), &args, Path::new("/")).unwrap();
        assert_eq!(p.wait().await.unwrap().code(), Some(7));
        // stop() after a natural exit is a no-op that returns the same status.
        assert_eq!(
            p.stop(Duration::from_millis(10)).await.unwrap().code(),
            Some(7)
        );
    }
}
