//! The U-Boot conversation, as a state machine fed the console bytes: stop autoboot, wait for
//! the prompt, type each command and learn how it ended, load the images, boot, and see the
//! kernel start. Each stage is a timeline entry with its own deadline; a board that never
//! reaches U-Boot, a command that fails (a TFTP file missing) or a kernel that never starts
//! ends the boot with that reason at once, not at the global timeout.
//!
//! How a command's end is known: every typed line ends with `; echo "@@qt""-done-N $?"`. U-Boot's
//! hush shell runs it after the command and prints `@@qt-done-N <status>`; the echo of the typed
//! line shows the two quoted halves apart, so only the command's completion prints the marker.
//! The status says whether the command worked (`tftpboot` of a missing file: 1), and the line
//! before the marker says why not. No list of U-Boot error messages is needed.
//!
//! Pure: no I/O, no clock. [`crate::run::boot`]'s console loop feeds it and types what it asks.

use std::time::Duration;

use regex::Regex;

use crate::console::{Cleaner, TimelineEntry, TimelineKind};
use crate::duration::format as fmt_duration;

/// U-Boot's autoboot countdown (`Hit any key to stop autoboot`, and the `Press … to stop`
/// variants some boards configure).
const AUTOBOOT: &str = r"(?i)(hit any key to stop autoboot|press \S+ to (stop|abort) autoboot|autoboot in \d+ seconds)";
/// A U-Boot prompt on the unfinished last line: `=> ` (the default), `U-Boot> `, `board# `.
const PROMPT: &str = r"^\s*(=>|U-Boot>|[A-Za-z0-9_.-]+#)\s?$";
/// What U-Boot prints when it hands over to the kernel (`booti`, `bootm`) or an application (`go`).
const KERNEL_START: &str = r"(Starting kernel \.\.\.|## Starting application at)";
/// `loady` is ready for the YMODEM transfer.
const LOADY_READY: &str = r"## Ready for binary \(ymodem\) download";
/// Text kept per exchange (U-Boot's output between two prompts is small; a flood is cut).
const MAX_TEXT: usize = 256 * 1024;

/// The names of the board stages, in order (timeline entries).
pub const STAGE_PROMPT: &str = "U-Boot prompt";
pub const STAGE_NETWORK: &str = "network up";
pub const STAGE_LOADED: &str = "image loaded";
pub const STAGE_KERNEL: &str = "kernel started";

/// What an exchange does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExchangeKind {
    /// A command that returns to the prompt.
    Command,
    /// `loady`: when U-Boot is ready, the file `transfer` (index into the boot files) is sent
    /// over the serial line; then it returns to the prompt.
    Loady { transfer: usize },
    /// The boot command: it does not return when it works.
    Boot,
}

/// One line typed at the U-Boot prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub line: String,
    pub kind: ExchangeKind,
    /// The stage this exchange completes (a timeline entry), if any.
    pub stage: Option<&'static str>,
    /// How long it may take.
    pub deadline: Duration,
    /// Added to the reason when it fails (the likely fix).
    pub hint: Option<String>,
}

/// What the console loop should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Type these bytes (paced like a step's `send`).
    Type(Vec<u8>),
    /// Send boot file `n` by YMODEM now (U-Boot's `loady` waits for it); then call
    /// [`Session::transfer_done`].
    Transfer(usize),
}

enum Phase {
    /// Powered on: waiting for the autoboot countdown or the prompt.
    Prompt { key_sent: bool },
    /// Exchange `i` typed at `since`.
    Running {
        i: usize,
        since: Duration,
        transferring: bool,
    },
    /// The kernel started: the judge alone decides from here.
    Started,
}

/// One boot's U-Boot conversation.
pub struct Session {
    exchanges: Vec<Exchange>,
    prompt_deadline: Duration,
    phase: Phase,
    cleaner: Cleaner,
    /// Cleaned text since the current exchange was typed (or since power-on).
    text: String,
    autoboot: Regex,
    prompt: Regex,
    kernel_start: Regex,
    loady_ready: Regex,
    marker: Regex,
    timeline: Vec<TimelineEntry>,
}

impl Session {
    /// A conversation typing `exchanges` once the prompt shows, which must happen within
    /// `prompt_deadline` of power-on.
    pub fn new(exchanges: Vec<Exchange>, prompt_deadline: Duration) -> Session {
        let re = |s: &str| Regex::new(s).expect("built-in pattern");
        Session {
            exchanges,
            prompt_deadline,
            phase: Phase::Prompt { key_sent: false },
            cleaner: Cleaner::new(),
            text: String::new(),
            autoboot: re(AUTOBOOT),
            prompt: re(PROMPT),
            kernel_start: re(KERNEL_START),
            loady_ready: re(LOADY_READY),
            marker: re(r"@@qt-done-(\d+) (\d+)"),
            timeline: Vec::new(),
        }
    }

    /// The exchanges, in order.
    pub fn exchanges(&self) -> &[Exchange] {
        &self.exchanges
    }

    /// Whether the kernel has started (the conversation is over).
    pub fn started(&self) -> bool {
        matches!(self.phase, Phase::Started)
    }

    /// Follows console bytes read at `now` (since power-on); `line_no` is the console line
    /// they end on. `Err` is the reason the boot failed in U-Boot.
    pub fn observe(
        &mut self,
        bytes: &[u8],
        now: Duration,
        line_no: u64,
    ) -> Result<Option<Action>, String> {
        if self.started() {
            return Ok(None);
        }
        let mut clean = Vec::with_capacity(bytes.len());
        self.cleaner.clean(bytes, &mut clean);
        self.text.push_str(&String::from_utf8_lossy(&clean));
        if self.text.len() > MAX_TEXT {
            let mut cut = self.text.len() - MAX_TEXT / 2;
            while !self.text.is_char_boundary(cut) {
                cut += 1;
            }
            self.text.drain(..cut);
        }
        match self.phase {
            Phase::Prompt { key_sent } => {
                if self.at_prompt() {
                    let line = self.partial_line().trim().to_string();
                    self.record(STAGE_PROMPT, PROMPT, now, line_no, &line);
                    return Ok(self.begin(0, now));
                }
                if !key_sent && self.autoboot.is_match(&self.text) {
                    self.phase = Phase::Prompt { key_sent: true };
                    // Any key stops the countdown; U-Boot reads and drops it.
                    return Ok(Some(Action::Type(b" ".to_vec())));
                }
                Ok(None)
            }
            Phase::Running {
                i,
                since,
                transferring,
            } => {
                if transferring {
                    return Ok(None);
                }
                let ex = &self.exchanges[i];
                if ex.kind == ExchangeKind::Boot
                    && let Some(m) = self.kernel_start.find(&self.text)
                {
                    let line = line_around(&self.text, m.start());
                    self.record(STAGE_KERNEL, KERNEL_START, now, line_no, &line);
                    self.phase = Phase::Started;
                    return Ok(None);
                }
                if let ExchangeKind::Loady { transfer } = ex.kind
                    && self.loady_ready.is_match(&self.text)
                {
                    self.phase = Phase::Running {
                        i,
                        since,
                        transferring: true,
                    };
                    self.text.clear();
                    return Ok(Some(Action::Transfer(transfer)));
                }
                let Some((status, at)) = self.marker_for(i) else {
                    return Ok(None);
                };
                if status != 0 || ex.kind == ExchangeKind::Boot {
                    return Err(self.failure(i, status, at));
                }
                if let Some(stage) = ex.stage {
                    let pattern = ex.line.clone();
                    let line = line_around(&self.text, at);
                    self.record(stage, &pattern, now, line_no, &line);
                }
                Ok(self.begin(i + 1, now))
            }
            Phase::Started => Ok(None),
        }
    }

    /// After a [`Action::Transfer`]: `Err` is why the transfer failed (the boot fails).
    pub fn transfer_done(
        &mut self,
        result: Result<(), String>,
        now: Duration,
    ) -> Result<(), String> {
        if let Phase::Running { i, .. } = self.phase {
            if let Err(why) = result {
                return Err(format!(
                    "the YMODEM transfer for `{}` failed: {why}",
                    self.exchanges[i].line
                ));
            }
            // The command's own deadline starts again for the rest (U-Boot's summary, the marker).
            self.phase = Phase::Running {
                i,
                since: now,
                transferring: false,
            };
        }
        Ok(())
    }

    /// The running stage's deadline (since power-on) and the reason when it passes; `None`
    /// once the kernel started (or while a transfer runs: the transfer has its own).
    pub fn deadline(&self) -> Option<(Duration, String)> {
        match &self.phase {
            Phase::Prompt { key_sent } => Some((
                self.prompt_deadline,
                format!(
                    "the board did not reach the U-Boot prompt within {} of power-on ({})",
                    fmt_duration(self.prompt_deadline),
                    if *key_sent {
                        "autoboot was stopped, but no prompt followed"
                    } else {
                        "no autoboot countdown and no prompt on the serial console"
                    }
                ),
            )),
            Phase::Running {
                transferring: true, ..
            } => None,
            Phase::Running { i, since, .. } => {
                let ex = &self.exchanges[*i];
                let what = match ex.kind {
                    ExchangeKind::Boot => format!(
                        "the kernel did not start within {} of `{}` (U-Boot printed no 'Starting kernel')",
                        fmt_duration(ex.deadline),
                        ex.line
                    ),
                    _ => format!(
                        "U-Boot command `{}` did not finish within {}",
                        ex.line,
                        fmt_duration(ex.deadline)
                    ),
                };
                Some((*since + ex.deadline, self.with_last_line(what)))
            }
            Phase::Started => None,
        }
    }

    /// The board stages as timeline entries: those reached, then those not reached.
    pub fn timeline(&self) -> Vec<TimelineEntry> {
        let mut t = self.timeline.clone();
        let mut names = vec![STAGE_PROMPT];
        names.extend(self.exchanges.iter().filter_map(|e| e.stage));
        names.push(STAGE_KERNEL);
        for name in names {
            if !t.iter().any(|e| e.name == name) {
                t.push(TimelineEntry {
                    kind: TimelineKind::Stage,
                    name: name.to_string(),
                    pattern: String::new(),
                    at: None,
                    delta: None,
                    line_no: None,
                    line: None,
                    optional: false,
                });
            }
        }
        t
    }

    /// Types exchange `i` (with its marker), or ends when there is none left.
    fn begin(&mut self, i: usize, now: Duration) -> Option<Action> {
        self.text.clear();
        let ex = self.exchanges.get(i)?;
        self.phase = Phase::Running {
            i,
            since: now,
            transferring: false,
        };
        Some(Action::Type(
            format!("{}; echo \"@@qt\"\"-done-{} $?\"\n", ex.line, i + 1).into_bytes(),
        ))
    }

    fn marker_for(&self, i: usize) -> Option<(u32, usize)> {
        self.marker.captures_iter(&self.text).find_map(|c| {
            let n: usize = c[1].parse().ok()?;
            (n == i + 1).then(|| {
                (
                    c[2].parse().unwrap_or(u32::MAX),
                    c.get(0).map_or(0, |m| m.start()),
                )
            })
        })
    }

    /// Why exchange `i` failed: its status and the last thing U-Boot said before the marker.
    fn failure(&self, i: usize, status: u32, marker_at: usize) -> String {
        let ex = &self.exchanges[i];
        let said = last_said(&self.text[..marker_at]);
        let what = match ex.kind {
            ExchangeKind::Boot => format!(
                "`{}` returned to U-Boot instead of starting the kernel",
                ex.line
            ),
            _ => format!("U-Boot command `{}` failed (status {status})", ex.line),
        };
        let mut reason = match said {
            Some(l) => format!("{what}: {l}"),
            None => format!("{what}, printing nothing"),
        };
        if let Some(h) = &ex.hint {
            reason.push_str(&format!(" ({h})"));
        }
        reason
    }

    fn with_last_line(&self, what: String) -> String {
        match said(&self.text).next_back() {
            Some(l) => format!("{what}; last console line: '{l}'"),
            None => what,
        }
    }

    fn at_prompt(&self) -> bool {
        self.prompt.is_match(self.partial_line())
    }

    /// The text after the last newline (a prompt has none).
    fn partial_line(&self) -> &str {
        self.text.rsplit('\n').next().unwrap_or("")
    }

    fn record(&mut self, name: &str, pattern: &str, now: Duration, line_no: u64, line: &str) {
        let prev = self.timeline.last().and_then(|e| e.at).unwrap_or_default();
        self.timeline.push(TimelineEntry {
            kind: TimelineKind::Stage,
            name: name.to_string(),
            pattern: pattern.to_string(),
            at: Some(now),
            delta: Some(now.saturating_sub(prev)),
            line_no: Some(line_no),
            line: Some(line.to_string()),
            optional: false,
        });
    }
}

/// What U-Boot said last in `text`: its last line that reads like an error (`TFTP error:
/// 'File not found' (1)` rather than the `Not retrying...` after it), else its last non-empty
/// line; never a typed line with its marker.
fn last_said(text: &str) -> Option<&str> {
    const COMPLAINT: &[&str] = &[
        "error",
        "fail",
        "not found",
        "bad ",
        "invalid",
        "unknown",
        "abort",
        "exceeded",
        "not set",
        "timeout",
        "wrong",
        "cannot",
        "can't",
        "unable",
    ];
    said(text)
        .rfind(|l| {
            let lower = l.to_ascii_lowercase();
            COMPLAINT.iter().any(|c| lower.contains(c))
        })
        .or_else(|| said(text).next_back())
}

/// U-Boot's non-empty lines in `text`, without the typed lines with their marker.
fn said(text: &str) -> impl DoubleEndedIterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.contains("@@qt"))
}

/// The line of `text` that contains byte `at`.
fn line_around(text: &str, at: usize) -> String {
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    text[start..end].trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(line: &str, kind: ExchangeKind, stage: Option<&'static str>) -> Exchange {
        Exchange {
            line: line.into(),
            kind,
            stage,
            deadline: Duration::from_secs(10),
            hint: None,
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn typed(a: Option<Action>) -> String {
        match a {
            Some(Action::Type(b)) => String::from_utf8(b).unwrap(),
            other => panic!("expected typing, got {other:?}"),
        }
    }

    /// Debian's qemu_arm64 U-Boot, as it prints (2023.01).
    const BANNER: &str = "U-Boot 2023.01+dfsg-2+deb12u3\r\n\r\nDRAM:  1 GiB\r\nNet:   eth0: virtio-net#31\r\nHit any key to stop autoboot:  2 ";

    #[test]
    fn stops_autoboot_types_each_command_and_sees_the_kernel_start() {
        let mut s = Session::new(
            vec![
                ex("dhcp", ExchangeKind::Command, Some(STAGE_NETWORK)),
                ex(
                    "tftpboot ${qt_kernel} k",
                    ExchangeKind::Command,
                    Some(STAGE_LOADED),
                ),
                ex(
                    "booti ${qt_kernel} - ${fdtcontroladdr}",
                    ExchangeKind::Boot,
                    None,
                ),
            ],
            secs(20),
        );
        assert_eq!(
            s.observe(BANNER.as_bytes(), secs(1), 5).unwrap(),
            Some(Action::Type(b" ".to_vec()))
        );
        let first = typed(s.observe(b"\x08\x08\x08 0 \r\n=> ", secs(2), 6).unwrap());
        assert_eq!(first, "dhcp; echo \"@@qt\"\"-done-1 $?\"\n");
        // The echo of the typed line does not complete it.
        assert_eq!(
            s.observe(first.replace('\n', "\r\n").as_bytes(), secs(2), 7)
                .unwrap(),
            None
        );
        let second = typed(
            s.observe(
                b"DHCP client bound to address 10.0.2.15 (2 ms)\r\n@@qt-done-1 0\r\n=> ",
                secs(3),
                9,
            )
            .unwrap(),
        );
        assert!(
            second.starts_with("tftpboot ${qt_kernel} k; echo"),
            "{second}"
        );
        let boot = typed(
            s.observe(
                b"Bytes transferred = 1900\r\n@@qt-done-2 0\r\n=> ",
                secs(4),
                11,
            )
            .unwrap(),
        );
        assert!(boot.starts_with("booti"));
        assert!(!s.started());
        s.observe(
            b"## Flattened Device Tree blob at 7edb6db0\r\nStarting kernel ...\r\n\r\n",
            secs(5),
            13,
        )
        .unwrap();
        assert!(s.started());
        assert_eq!(s.deadline(), None);
        let t = s.timeline();
        let names: Vec<_> = t.iter().map(|e| (e.name.as_str(), e.at)).collect();
        assert_eq!(
            names,
            [
                (STAGE_PROMPT, Some(secs(2))),
                (STAGE_NETWORK, Some(secs(3))),
                (STAGE_LOADED, Some(secs(4))),
                (STAGE_KERNEL, Some(secs(5)))
            ]
        );
        assert_eq!(t[3].line.as_deref(), Some("Starting kernel ..."));
    }

    #[test]
    fn a_failing_command_ends_with_what_u_boot_said() {
        let mut s = Session::new(
            vec![Exchange {
                hint: Some("is the file in the TFTP root?".into()),
                ..ex(
                    "tftpboot ${qt_kernel} nofile",
                    ExchangeKind::Command,
                    Some(STAGE_LOADED),
                )
            }],
            secs(20),
        );
        typed(s.observe(b"=> ", secs(1), 1).unwrap());
        let err = s
            .observe(
                b"tftpboot ${qt_kernel} nofile; echo \"@@qt\"\"-done-1 $?\"\r\nTFTP error: 'File not found' (1)\r\nNot retrying...\r\n@@qt-done-1 1\r\n=> ",
                secs(2),
                5,
            )
            .unwrap_err();
        assert_eq!(
            err,
            "U-Boot command `tftpboot ${qt_kernel} nofile` failed (status 1): TFTP error: 'File not found' (1) (is the file in the TFTP root?)"
        );
    }

    #[test]
    fn a_boot_command_that_returns_fails_with_its_complaint() {
        let mut s = Session::new(
            vec![ex("booti ${qt_kernel} - ${fdt}", ExchangeKind::Boot, None)],
            secs(20),
        );
        typed(s.observe(b"=> ", secs(1), 1).unwrap());
        let err = s
            .observe(
                b"Bad Linux ARM64 Image magic!\r\n@@qt-done-1 1\r\n=> ",
                secs(2),
                3,
            )
            .unwrap_err();
        assert_eq!(
            err,
            "`booti ${qt_kernel} - ${fdt}` returned to U-Boot instead of starting the kernel: Bad Linux ARM64 Image magic!"
        );
    }

    #[test]
    fn deadlines_name_the_stage_and_the_last_line() {
        let mut s = Session::new(vec![ex("dhcp", ExchangeKind::Command, None)], secs(20));
        let (at, why) = s.deadline().unwrap();
        assert_eq!(at, secs(20));
        assert!(
            why.contains("did not reach the U-Boot prompt within 20s"),
            "{why}"
        );
        assert!(why.contains("no autoboot countdown"), "{why}");
        s.observe(b"=> ", secs(3), 1).unwrap();
        s.observe(
            b"dhcp; echo x\r\nBOOTP broadcast 1\r\nBOOTP broadcast 2\r\n",
            secs(4),
            3,
        )
        .unwrap();
        let (at, why) = s.deadline().unwrap();
        assert_eq!(at, secs(13));
        assert_eq!(
            why,
            "U-Boot command `dhcp` did not finish within 10s; last console line: 'BOOTP broadcast 2'"
        );
    }

    #[test]
    fn loady_hands_the_line_over_and_resumes() {
        let mut s = Session::new(
            vec![ex(
                "loady ${qt_kernel}",
                ExchangeKind::Loady { transfer: 0 },
                Some(STAGE_LOADED),
            )],
            secs(20),
        );
        typed(s.observe(b"=> ", secs(1), 1).unwrap());
        let a = s
            .observe(
                b"## Ready for binary (ymodem) download to 0x40400000 at 115200 bps...\r\n",
                secs(2),
                2,
            )
            .unwrap();
        assert_eq!(a, Some(Action::Transfer(0)));
        assert_eq!(s.deadline(), None);
        s.transfer_done(Ok(()), secs(9)).unwrap();
        assert_eq!(s.deadline().unwrap().0, secs(19));
        assert_eq!(
            s.observe(
                b"## Total Size = 0x00000400 = 1024 Bytes\r\n@@qt-done-1 0\r\n=> ",
                secs(10),
                4
            )
            .unwrap(),
            None
        );
        let err = {
            let mut s2 = Session::new(
                vec![ex("loady 0x1", ExchangeKind::Loady { transfer: 0 }, None)],
                secs(20),
            );
            typed(s2.observe(b"=> ", secs(1), 1).unwrap());
            s2.observe(b"## Ready for binary (ymodem) download\r\n", secs(1), 2)
                .unwrap();
            s2.transfer_done(Err("no answer".into()), secs(2))
                .unwrap_err()
        };
        assert_eq!(err, "the YMODEM transfer for `loady 0x1` failed: no answer");
    }
}
