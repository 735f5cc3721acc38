//! Backtraces the guest printed, found in the console's last lines and named like the vCPUs'
//! addresses. Three shapes are read:
//! - tgoskits (ArceOS, StarryOS, AxVisor's `axbacktrace`): a `BACKTRACE_BEGIN kind=… arch=…`
//!   line, `BT <n> ip=0x… fp=0x…` frames, `BT_ERROR <what>`, `BACKTRACE_END` (a new BEGIN
//!   also ends the block before it);
//! - Linux: `pc : …` / `lr : …` register lines and the `Call trace:` frames under them;
//! - Rust std panics: `stack backtrace:` then `  <n>: 0x… - name` frames.
//!
//! The console is untrusted: blocks, frames and kept text are bounded, and only addresses are
//! taken from it (the names shown come from the case's own symbol files when they cover them).

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

use super::{Location, Symbolizer};

/// Most backtraces kept (the last ones printed).
const MAX_BACKTRACES: usize = 4;
/// Most frames kept per backtrace.
const MAX_FRAMES: usize = 64;
/// Most errors kept per backtrace.
const MAX_ERRORS: usize = 8;
/// Longest console text kept per frame.
const MAX_TEXT: usize = 160;

/// One backtrace the guest printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GuestBacktrace {
    /// `tgoskits`, `linux` or `rust`.
    pub format: &'static str,
    /// tgoskits' `kind=` (`panic`, `trap`, `raw`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    pub frames: Vec<GuestFrame>,
    /// tgoskits' `BT_ERROR` words.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// One frame: the guest's words, the address in them, and where that address is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GuestFrame {
    /// `BT 3` → "3"; Linux `pc`/`lr`; the Rust frame number.
    pub label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The console text of the frame (trimmed, bounded).
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<Location>,
}

static TGOS_BEGIN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"BACKTRACE_BEGIN\b(?:.*?\bkind=(\S+))?(?:.*?\barch=(\S+))?").expect("regex")
});
static TGOS_FRAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\bBT\s+(\d{1,6})\s+ip=0x([0-9a-fA-F]{1,16})(?:\s+fp=0x([0-9a-fA-F]{1,16}))?")
        .expect("regex")
});
static TGOS_ERROR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\bBT_ERROR\s+(\S{1,80})").expect("regex"));
/// `pc : do_idle+0x1c/0x40` or `pc : ffff800080012345` (Linux arm64 and riscv `epc :`).
static LINUX_REG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(?:\[\s*\d+\.\d+\]\s*)?(pc|lr|epc|ra)\s?:\s*(\S+)").expect("regex")
});
static HEX: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:0x|\[<|\b)([0-9a-fA-F]{8,16})\b").expect("regex"));
/// Rust std: `  12: 0x55d1c0a1b2c3 - core::panicking::panic` (addresses with `RUST_BACKTRACE`
/// formats that print them).
static RUST_FRAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*(\d{1,4}):\s+0x([0-9a-fA-F]{1,16})\b").expect("regex"));

/// Console bytes read back from the end of the log for [`from_log`].
pub const LOG_TAIL: u64 = 256 * 1024;

/// The backtraces in the last [`LOG_TAIL`] bytes of the console log at `path` (escape
/// sequences removed, as the judge sees lines); none when it cannot be read.
pub fn from_log(path: &std::path::Path) -> Vec<GuestBacktrace> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut raw = Vec::new();
    if f.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL)))
        .is_err()
        || f.take(LOG_TAIL).read_to_end(&mut raw).is_err()
    {
        return Vec::new();
    }
    let mut clean = Vec::with_capacity(raw.len());
    crate::console::clean::Cleaner::new().clean(&raw, &mut clean);
    let text = String::from_utf8_lossy(&clean);
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    find(&lines)
}

/// Every backtrace in `lines` (console lines, oldest first), the last [`MAX_BACKTRACES`].
pub fn find(lines: &[String]) -> Vec<GuestBacktrace> {
    let mut out: Vec<GuestBacktrace> = Vec::new();
    let mut open: Option<GuestBacktrace> = None;
    let mut in_linux_trace = false;
    for raw in lines {
        let line = strip_timestamp(raw.trim_end());
        if let Some(c) = TGOS_BEGIN.captures(line) {
            push(&mut out, open.take());
            in_linux_trace = false;
            open = Some(GuestBacktrace {
                format: "tgoskits",
                kind: c.get(1).map(|m| bounded(m.as_str())),
                arch: c.get(2).map(|m| bounded(m.as_str())),
                frames: Vec::new(),
                errors: Vec::new(),
            });
            continue;
        }
        if let Some(bt) = open.as_mut().filter(|b| b.format == "tgoskits") {
            if line.contains("BACKTRACE_END") {
                push(&mut out, open.take());
            } else if let Some(c) = TGOS_FRAME.captures(line) {
                add_frame(bt, &c[1], Some(&c[2]), line);
            } else if let Some(c) = TGOS_ERROR.captures(line)
                && bt.errors.len() < MAX_ERRORS
            {
                bt.errors.push(c[1].to_string());
            }
            continue;
        }
        if let Some(c) = LINUX_REG.captures(line) {
            let bt = linux_block(&mut out, &mut open);
            let addr = HEX.captures(&c[2]).map(|h| h[1].to_string());
            add_frame(bt, &c[1], addr.as_deref(), line);
            in_linux_trace = false;
            continue;
        }
        if line.trim_start().starts_with("Call trace:") || line.contains("Call Trace:") {
            linux_block(&mut out, &mut open);
            in_linux_trace = true;
            continue;
        }
        if in_linux_trace {
            let t = line.trim();
            // Frames are ` func+0x1c/0x40` or `[<ffff…>] func+…`; anything else ends the trace.
            if !t.is_empty() && (t.contains("+0x") || t.starts_with("[<") || t.starts_with('?')) {
                let bt = linux_block(&mut out, &mut open);
                let addr = HEX.captures(t).map(|h| h[1].to_string());
                let n = bt.frames.len().to_string();
                add_frame(bt, &n, addr.as_deref(), t);
                continue;
            }
            in_linux_trace = false;
            push(&mut out, open.take());
        }
        if line.trim_start().starts_with("stack backtrace:") {
            push(&mut out, open.take());
            open = Some(GuestBacktrace {
                format: "rust",
                kind: None,
                arch: None,
                frames: Vec::new(),
                errors: Vec::new(),
            });
            continue;
        }
        if let Some(bt) = open.as_mut().filter(|b| b.format == "rust")
            && let Some(c) = RUST_FRAME.captures(line)
        {
            add_frame(bt, &c[1], Some(&c[2]), line);
        }
    }
    push(&mut out, open);
    out
}

/// Names each frame's address with `symbolizer`.
pub fn symbolize(backtraces: &mut [GuestBacktrace], symbolizer: &Symbolizer) {
    for f in backtraces.iter_mut().flat_map(|b| b.frames.iter_mut()) {
        f.at = f
            .address
            .as_deref()
            .and_then(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).ok())
            .and_then(|a| symbolizer.locate(a));
    }
}

/// The open Linux block, opened if another kind (or none) is open.
fn linux_block<'a>(
    out: &mut Vec<GuestBacktrace>,
    open: &'a mut Option<GuestBacktrace>,
) -> &'a mut GuestBacktrace {
    if open.as_ref().is_some_and(|b| b.format != "linux") {
        push(out, open.take());
    }
    open.get_or_insert_with(|| GuestBacktrace {
        format: "linux",
        kind: None,
        arch: None,
        frames: Vec::new(),
        errors: Vec::new(),
    })
}

fn add_frame(bt: &mut GuestBacktrace, label: &str, hex: Option<&str>, line: &str) {
    if bt.frames.len() < MAX_FRAMES {
        bt.frames.push(GuestFrame {
            label: bounded(label),
            address: hex.and_then(|h| u64::from_str_radix(h, 16).ok().map(|a| format!("{a:#x}"))),
            text: bounded(line.trim()),
            at: None,
        });
    }
}

fn push(out: &mut Vec<GuestBacktrace>, bt: Option<GuestBacktrace>) {
    if let Some(bt) = bt.filter(|b| !b.frames.is_empty() || !b.errors.is_empty()) {
        if out.len() == MAX_BACKTRACES {
            out.remove(0);
        }
        out.push(bt);
    }
}

/// Drops a Linux `[    1.234567] ` timestamp.
fn strip_timestamp(line: &str) -> &str {
    let t = line.trim_start();
    if t.starts_with('[')
        && let Some(end) = t.find("] ")
        && t[1..end].trim().parse::<f64>().is_ok()
    {
        return &t[end + 2..];
    }
    line
}

fn bounded(s: &str) -> String {
    match s.char_indices().nth(MAX_TEXT) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn tgoskits_blocks_with_frames_errors_and_a_restart() {
        let bts = find(&lines(
            "panicked at src/main.rs:3:5\n\
             BACKTRACE_BEGIN kind=panic arch=aarch64\n\
             BT 0 ip=0xffff000040081234 fp=0xffff000040200000\n\
             BT 1 ip=0xffff000040085678 fp=0xffff000040200040\n\
             BT_ERROR fp_misaligned\n\
             BACKTRACE_BEGIN kind=trap\n\
             BT 0 ip=0x1000\n\
             BACKTRACE_END\n\
             BT 9 ip=0xdead outside any block\n",
        ));
        assert_eq!(bts.len(), 2);
        assert_eq!(bts[0].format, "tgoskits");
        assert_eq!(bts[0].kind.as_deref(), Some("panic"));
        assert_eq!(bts[0].arch.as_deref(), Some("aarch64"));
        assert_eq!(bts[0].frames.len(), 2);
        assert_eq!(bts[0].frames[1].label, "1");
        assert_eq!(
            bts[0].frames[1].address.as_deref(),
            Some("0xffff000040085678")
        );
        assert_eq!(bts[0].errors, ["fp_misaligned"]);
        assert_eq!(bts[1].kind.as_deref(), Some("trap"));
        assert_eq!(bts[1].arch, None);
        assert_eq!(bts[1].frames.len(), 1);
    }

    #[test]
    fn linux_registers_and_call_trace() {
        let bts = find(&lines(
            "[    2.000000] Internal error: Oops: 0000000096000004 [#1] SMP\n\
             [    2.000001] pc : do_idle+0x1c/0x40\n\
             [    2.000002] lr : ffff800080012344\n\
             [    2.000003] sp : ffff80008000bd80\n\
             [    2.000004] Call trace:\n\
             [    2.000005]  do_idle+0x1c/0x40\n\
             [    2.000006]  [<ffff800080012000>] cpu_startup_entry+0x20/0x28\n\
             [    2.000007] ---[ end trace 0000000000000000 ]---\n",
        ));
        assert_eq!(bts.len(), 1, "{bts:?}");
        let f = &bts[0].frames;
        assert_eq!(f.len(), 4);
        assert_eq!(f[0].label, "pc");
        assert_eq!(f[0].address, None, "already symbolized by the kernel");
        assert_eq!(f[0].text, "pc : do_idle+0x1c/0x40");
        assert_eq!(f[1].address.as_deref(), Some("0xffff800080012344"));
        assert_eq!(f[3].address.as_deref(), Some("0xffff800080012000"));
    }

    #[test]
    fn rust_std_backtrace_frames() {
        let bts = find(&lines(
            "thread 'main' panicked at src/main.rs:2:5:\nboom\nstack backtrace:\n   0: 0x55d1c0a1b2c3 - std::panicking::begin_panic\n   1: 0x55d1c0a1b400 - demo::main\n",
        ));
        assert_eq!(bts.len(), 1);
        assert_eq!(bts[0].format, "rust");
        assert_eq!(bts[0].frames[1].address.as_deref(), Some("0x55d1c0a1b400"));
    }

    #[test]
    fn untrusted_floods_are_bounded() {
        let mut text = String::new();
        for b in 0..10 {
            text.push_str(&format!("BACKTRACE_BEGIN kind=k{b}\n"));
            for i in 0..200 {
                text.push_str(&format!("BT {i} ip=0x{i:x} {}\n", "x".repeat(500)));
            }
        }
        let bts = find(&lines(&text));
        assert_eq!(bts.len(), MAX_BACKTRACES);
        assert_eq!(bts[3].kind.as_deref(), Some("k9"));
        assert!(bts.iter().all(|b| b.frames.len() == MAX_FRAMES));
        assert!(bts[0].frames[0].text.chars().count() <= MAX_TEXT + 1);
    }
}
