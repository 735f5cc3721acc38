//! What the Actions log shows of a case while several run at once (`--jobs N > 1`): nothing
//! until the case ends, then all of it in the case's own groups.
//!
//! Why hold rather than prefix each line with the case: a log group is the unit people open in
//! the Actions UI, and groups cannot nest or interleave — with prefixes, every case's lines
//! would sit in one group, mixed. Held output keeps "Build <case>" and "Boot <case>" whole and
//! collapsible, at the cost of no live console while cases run in parallel (each case is
//! bounded by its deadline; the raw log and the terminal outside Actions stay live).
//!
//! Bounded: the guest console is not held in memory at all — every byte is already in the
//! case's console log, which is read back (in chunks) when the case ends. QEMU's stderr and the
//! build output are held up to [`HELD_LIMIT`] bytes each; the rest is counted and named.

use std::io::{self, Read};
use std::path::Path;

/// Most bytes of one case's build output (or QEMU stderr) held for the log.
pub const HELD_LIMIT: usize = 1 << 20;

/// Bytes kept up to [`HELD_LIMIT`], with a count of those dropped after it.
#[derive(Debug, Default)]
pub struct Bounded {
    pub bytes: Vec<u8>,
    pub dropped: u64,
}

impl Bounded {
    pub fn push(&mut self, bytes: &[u8]) {
        let room = HELD_LIMIT.saturating_sub(self.bytes.len());
        let take = room.min(bytes.len());
        self.bytes.extend_from_slice(&bytes[..take]);
        self.dropped += (bytes.len() - take) as u64;
    }

    /// The note written after the held bytes when some were dropped.
    pub fn dropped_note(&self, what: &str) -> Option<String> {
        (self.dropped > 0).then(|| {
            format!(
                "[{} more bytes of {what} not shown here (over {} KiB)]",
                self.dropped,
                HELD_LIMIT >> 10
            )
        })
    }
}

/// One case's output, held until it ends.
#[derive(Debug, Default)]
pub struct Held {
    /// The build stage ran (its group is shown even when it printed nothing).
    pub built: bool,
    pub build: Bounded,
    /// The QEMU command line of the last attempt.
    pub command: Option<String>,
    pub stderr: Bounded,
}

/// Calls `sink` with the log's bytes, 64 KiB at a time (bounded memory whatever its size).
pub fn stream_log(path: &Path, sink: &mut dyn FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        sink(&buf[..n])?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_output_is_bounded_and_says_what_it_dropped() {
        let mut b = Bounded::default();
        b.push(&vec![b'x'; HELD_LIMIT - 1]);
        b.push(b"yz!");
        assert_eq!(b.bytes.len(), HELD_LIMIT);
        assert_eq!(b.bytes.last(), Some(&b'y'));
        assert_eq!(b.dropped, 2);
        assert_eq!(
            b.dropped_note("QEMU stderr").unwrap(),
            "[2 more bytes of QEMU stderr not shown here (over 1024 KiB)]"
        );
        assert!(Bounded::default().dropped_note("x").is_none());
    }
}
