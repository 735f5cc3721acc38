//! The board's power commands (`board_reset_cmd`, `board_power_off_cmd`): shell commands run
//! with `sh -c` in their own process group, each with its own deadline, their output (stdout
//! and stderr, line by line) handed to the caller for the reports and the power log.
//!
//! Not [`crate::qemu::process::QemuProcess`]: that one sweeps every descendant when it stops,
//! and a power-on command may rightly leave something running (a relay daemon, or in the tests
//! the QEMU that plays the board). Here only the command's own process group is killed, and
//! only when its deadline passes.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::uboot::Setting;
use crate::error::Error;

/// Default deadline of each power command.
pub const POWER_TIMEOUT: Duration = Duration::from_secs(30);
/// After the shell exits, how long its output pipes are still read (a background child it
/// started may hold them open forever).
const DRAIN_LIMIT: Duration = Duration::from_millis(200);

/// Which power command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerAction {
    /// `board_reset_cmd`: powers the board on (or resets it); the boot starts.
    On,
    /// `board_power_off_cmd`: always run at the end.
    Off,
}

impl PowerAction {
    pub fn name(self) -> &'static str {
        match self {
            PowerAction::On => "power on",
            PowerAction::Off => "power off",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            PowerAction::On => "board_reset_cmd",
            PowerAction::Off => "board_power_off_cmd",
        }
    }
}

/// How a power command ended.
#[derive(Debug, Clone)]
pub struct PowerRun {
    pub action: PowerAction,
    pub command: String,
    pub elapsed: Duration,
    /// Its output lines (stdout and stderr interleaved as they came), at most [`MAX_LINES`].
    pub output: Vec<String>,
}

/// Most output lines kept per command.
pub const MAX_LINES: usize = 200;

/// Runs `cmd` for `action` in `cwd` within `deadline`; `on_line` sees each output line as it
/// comes. A command that cannot start, exits non-zero or outlives its deadline (its group is
/// then killed) is an infrastructure error naming the key, where it is written and the last
/// output line.
pub async fn run(
    action: PowerAction,
    cmd: &Setting<String>,
    cwd: &Path,
    deadline: Duration,
    on_line: &mut dyn FnMut(&str),
) -> Result<PowerRun, Error> {
    let start = Instant::now();
    let mut child = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(&cmd.value)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            Error::infra(format!("cannot start the {} command: {e}", action.name()))
                .at(cmd.location.clone())
        })?;
    let pgid = child.id().map_or(0, |p| p as i32);
    let mut out = child.stdout.take().map(OutputLines::new);
    let mut err = child.stderr.take().map(OutputLines::new);
    let mut output = Vec::new();
    let mut keep = |line: String, on_line: &mut dyn FnMut(&str)| {
        on_line(&line);
        if output.len() < MAX_LINES {
            output.push(line);
        }
    };
    let until = tokio::time::Instant::from_std(start + deadline);
    let mut status = None;
    let mut drain_until = None;
    loop {
        let stop_at = drain_until.unwrap_or(until);
        tokio::select! {
            line = next_line(&mut out) => match line {
                Some(l) => keep(l, on_line),
                None => out = None,
            },
            line = next_line(&mut err) => match line {
                Some(l) => keep(l, on_line),
                None => err = None,
            },
            s = child.wait(), if status.is_none() => {
                status = Some(s.map_err(|e| Error::infra(format!("cannot wait for the {} command: {e}", action.name())))?);
                drain_until = Some(tokio::time::Instant::now() + DRAIN_LIMIT);
            }
            _ = tokio::time::sleep_until(stop_at) => break,
        }
        if status.is_some() && out.is_none() && err.is_none() {
            break;
        }
    }
    let elapsed = start.elapsed();
    let last = output.last().cloned();
    let Some(status) = status else {
        if pgid > 0 {
            // SAFETY: kill(2) on the process group this function created.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
        let _ = child.wait().await;
        return Err(Error::infra(format!(
            "the {} command (`{}`) did not finish within {}{}",
            action.name(),
            action.key(),
            crate::duration::format(deadline),
            last_words(last.as_deref())
        ))
        .at(cmd.location.clone()));
    };
    if !status.success() {
        let how = match status.code() {
            Some(c) => format!("exited with status {c}"),
            None => "was killed by a signal".to_string(),
        };
        return Err(Error::infra(format!(
            "the {} command (`{}`) {how}{}",
            action.name(),
            action.key(),
            last_words(last.as_deref())
        ))
        .at(cmd.location.clone())
        .help(format!("run it by hand: {}", cmd.value)));
    }
    Ok(PowerRun {
        action,
        command: cmd.value.clone(),
        elapsed,
        output,
    })
}

fn last_words(line: Option<&str>) -> String {
    line.map(|l| format!("; its last output: '{l}'"))
        .unwrap_or_default()
}

async fn next_line<R: AsyncRead + Unpin>(lines: &mut Option<OutputLines<R>>) -> Option<String> {
    match lines {
        Some(l) => l.next().await,
        None => std::future::pending().await,
    }
}

/// Longest output line kept, in bytes; the rest of a longer line is read and dropped.
const MAX_LINE: usize = 4096;

/// A command's output, line by line: read to its end whatever it is (a pipe closed early
/// would kill the command with SIGPIPE, one left unread would block it), each line cut at
/// [`MAX_LINE`] bytes and read lossily (a relay tool may print in any encoding). Hand-written
/// because tokio's `Lines` ends at the first byte that is not UTF-8 and has no length limit.
struct OutputLines<R> {
    reader: BufReader<R>,
    line: Vec<u8>,
}

impl<R: AsyncRead + Unpin> OutputLines<R> {
    fn new(read: R) -> OutputLines<R> {
        OutputLines {
            reader: BufReader::new(read),
            line: Vec::new(),
        }
    }

    /// The next line (without its `\n` or `\r\n`); `None` at the end of the output.
    /// Cancel-safe: what was read stays in `self`.
    async fn next(&mut self) -> Option<String> {
        loop {
            let chunk = self.reader.fill_buf().await.ok()?;
            if chunk.is_empty() {
                return (!self.line.is_empty()).then(|| self.take());
            }
            let newline = chunk.iter().position(|&b| b == b'\n');
            let body = &chunk[..newline.unwrap_or(chunk.len())];
            let room = MAX_LINE.saturating_sub(self.line.len());
            self.line.extend_from_slice(&body[..body.len().min(room)]);
            let used = newline.map_or(chunk.len(), |i| i + 1);
            self.reader.consume(used);
            if newline.is_some() {
                return Some(self.take());
            }
        }
    }

    fn take(&mut self) -> String {
        let line = String::from_utf8_lossy(&self.line);
        let line = line.strip_suffix('\r').unwrap_or(&line).to_string();
        self.line.clear();
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ErrorKind, Location};

    fn setting(cmd: &str) -> Setting<String> {
        Setting {
            value: cmd.to_string(),
            location: Location {
                path: "u.toml".into(),
                line: 3,
                column: 19,
            },
        }
    }

    async fn go(cmd: &str, deadline: Duration) -> (Result<PowerRun, Error>, Vec<String>) {
        let mut seen = Vec::new();
        let r = run(
            PowerAction::On,
            &setting(cmd),
            Path::new("/"),
            deadline,
            &mut |l| seen.push(l.to_string()),
        )
        .await;
        (r, seen)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn output_lines_are_passed_on_and_kept() {
        let (r, seen) = go("echo one; echo two >&2", POWER_TIMEOUT).await;
        let r = r.unwrap();
        assert_eq!(seen.len(), 2);
        assert!(seen.contains(&"one".to_string()) && seen.contains(&"two".to_string()));
        assert_eq!(r.output.len(), 2);
    }

    /// A relay tool printing Latin-1, then one line longer than a pipe holds: the command runs
    /// to its end (its output pipes stay open and read), the odd byte is replaced, the long
    /// line cut.
    #[tokio::test(flavor = "current_thread")]
    async fn output_that_is_not_utf8_or_too_long_is_read_to_the_end() {
        let (r, seen) = go(
            "printf 'Rel\\351 on\\r\\n'; head -c 300000 /dev/zero | tr '\\0' x; echo; echo done",
            POWER_TIMEOUT,
        )
        .await;
        let r = r.unwrap();
        assert_eq!(seen.len(), 3, "{:?}", r.output);
        assert_eq!(seen[0], "Rel\u{fffd} on");
        assert_eq!(seen[1], "x".repeat(MAX_LINE));
        assert_eq!(seen[2], "done");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_failing_command_is_an_infra_error_at_its_key() {
        let (r, _) = go("echo relay not found; exit 3", POWER_TIMEOUT).await;
        let e = r.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Infra);
        assert_eq!(
            e.message,
            "the power on command (`board_reset_cmd`) exited with status 3; its last output: 'relay not found'"
        );
        assert_eq!(e.location.unwrap().line, 3);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_command_past_its_deadline_is_killed_and_named() {
        let t = Instant::now();
        let (r, _) = go("echo waiting; exec sleep 30", Duration::from_millis(300)).await;
        assert!(t.elapsed() < Duration::from_secs(5));
        let e = r.unwrap_err();
        assert!(e.message.contains("did not finish within"), "{e}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_background_child_holding_the_pipe_does_not_hold_the_command() {
        // The power-on of a board that is itself a process (the tests' QEMU board).
        let t = Instant::now();
        let (r, _) = go("sleep 5 & echo started", POWER_TIMEOUT).await;
        r.unwrap();
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }
}
