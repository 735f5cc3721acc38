//! Cleaned console text as numbered lines, with the unfinished last line, in bounded memory.
//!
//! Every console consumer (the fail/success judge today; expect/send steps, milestones and
//! test-case extraction later) needs the same view: complete lines with their 1-based number,
//! plus the line still being printed (a prompt such as `>> ` never gets its newline). The
//! [`LineAssembler`] gives that view one *batch* at a time: after each append, [`Batch`] holds
//! the kept part of the unfinished line from before followed by the new text, so a consumer can
//! screen the whole batch in one regex pass and walk line by line only where something matched.
//!
//! Bounds, whatever the guest prints:
//! - an unfinished line keeps only its last `line_cap` bytes between batches, so a pattern is
//!   searched in a window of at least `line_cap` bytes ending at the newest byte; a match longer
//!   than `line_cap` on a longer line can be missed, and `^` matches at the start of the kept
//!   window (there is no other line start left to anchor to);
//! - a batch should hold at most [`MAX_BATCH`] new bytes (split larger reads), so the buffer stays
//!   under `line_cap + MAX_BATCH` bytes;
//! - the tail for reports keeps the last `tail_lines` lines that fit in `tail_lines` ×
//!   [`SHOWN_LINE_CAP`] bytes of recent text, each shown with at most [`SHOWN_LINE_CAP`] bytes.

use std::collections::VecDeque;
use std::ops::Range;

/// The largest batch of new text a consumer should append at once; larger reads are split.
pub const MAX_BATCH: usize = 64 * 1024;

/// How many bytes of one line are kept for reports (tail, matched line).
pub const SHOWN_LINE_CAP: usize = 1024;

/// The most heap bytes a [`LineAssembler`] holds when fed batches of at most [`MAX_BATCH`]
/// bytes: the buffer plus the tail's recent text.
pub fn memory_bound(line_cap: usize, tail_lines: usize) -> usize {
    line_cap.max(1) + MAX_BATCH + tail_lines * (2 * SHOWN_LINE_CAP + std::mem::size_of::<u64>())
}

/// Assembles cleaned console text into numbered lines.
#[derive(Debug)]
pub struct LineAssembler {
    /// The kept window of the unfinished line from before, then the latest batch's new text.
    buf: Vec<u8>,
    /// Where the latest batch's new text starts in `buf`.
    new_from: usize,
    /// Where the unfinished line starts in `buf`.
    partial_from: usize,
    /// Line number of the line that starts at `buf[0]`.
    first_line_no: u64,
    /// Whether the line at `buf[0]` lost bytes at its front (it was longer than `line_cap`).
    first_cut: bool,
    /// Complete lines seen so far.
    complete: u64,
    /// Bytes of the unfinished line seen so far (also those no longer kept).
    partial_len: u64,
    line_cap: usize,
    tail: Tail,
}

impl LineAssembler {
    /// An assembler keeping at most `line_cap` bytes of an unfinished line and the last
    /// `tail_lines` lines for reports.
    pub fn new(line_cap: usize, tail_lines: usize) -> Self {
        let line_cap = line_cap.max(1);
        LineAssembler {
            buf: Vec::with_capacity(line_cap + MAX_BATCH),
            new_from: 0,
            partial_from: 0,
            first_line_no: 1,
            first_cut: false,
            complete: 0,
            partial_len: 0,
            line_cap,
            tail: Tail::new(tail_lines),
        }
    }

    /// Appends the cleaned text that `fill` writes to the end of the given buffer (so a
    /// [`super::clean::Cleaner`] can write in place) and returns the new batch.
    pub fn push_with(&mut self, fill: impl FnOnce(&mut Vec<u8>)) -> Batch<'_> {
        self.compact();
        self.new_from = self.buf.len();
        fill(&mut self.buf);
        self.account();
        self.batch()
    }

    /// Appends already cleaned text and returns the new batch.
    pub fn push(&mut self, cleaned: &[u8]) -> Batch<'_> {
        self.push_with(|buf| buf.extend_from_slice(cleaned))
    }

    /// The latest batch: the kept unfinished line from before plus the new text.
    pub fn batch(&self) -> Batch<'_> {
        Batch {
            text: &self.buf,
            new_from: self.new_from,
            first_line_no: self.first_line_no,
            first_cut: self.first_cut,
        }
    }

    /// The line still being printed, if it has any text yet.
    pub fn unfinished(&self) -> Option<Line<'_>> {
        if self.partial_len == 0 {
            return None;
        }
        let span = self.partial_from..self.buf.len();
        Some(Line {
            no: self.complete + 1,
            text: &self.buf[span.clone()],
            complete: false,
            cut: self.partial_len > span.len() as u64,
            span,
        })
    }

    /// Number of console lines seen so far, the unfinished one included.
    pub fn lines_seen(&self) -> u64 {
        self.complete + u64::from(self.partial_len > 0)
    }

    /// The last lines (bounded, lossy UTF-8), oldest first, the unfinished line last.
    pub fn tail(&self) -> Vec<String> {
        let mut lines = self.tail.render();
        if let Some(line) = self.unfinished() {
            lines.push(line.shown(0));
        }
        lines
    }

    /// Bytes held on the heap, for tests and for the memory bound.
    pub fn memory_footprint(&self) -> usize {
        self.buf.capacity() + self.tail.footprint()
    }

    /// Drops the complete lines of the previous batch and cuts the unfinished line to its last
    /// `line_cap` bytes, moving it to the front of the buffer.
    fn compact(&mut self) {
        let keep = self.buf.len() - self.partial_from;
        let start = self.partial_from + keep.saturating_sub(self.line_cap);
        self.buf.copy_within(start.., 0);
        self.buf.truncate(self.buf.len() - start);
        self.partial_from = 0;
        self.first_line_no = self.complete + 1;
        self.first_cut = self.partial_len > self.buf.len() as u64;
    }

    /// Counts the lines the new text completed and records the last ones in the tail.
    fn account(&mut self) {
        let new = &self.buf[self.new_from..];
        let Some(last_nl) = memchr::memrchr(b'\n', new) else {
            self.partial_len += new.len() as u64;
            return;
        };
        self.complete += memchr::memchr_iter(b'\n', new).count() as u64;
        self.partial_from = self.new_from + last_nl + 1;
        self.partial_len = (self.buf.len() - self.partial_from) as u64;
        let region = &self.buf[..self.partial_from];
        self.tail
            .record(region, self.first_line_no, self.first_cut, self.complete);
    }
}

/// The kept part of the unfinished line from before, followed by newly appended text.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    text: &'a [u8],
    new_from: usize,
    first_line_no: u64,
    first_cut: bool,
}

impl<'a> Batch<'a> {
    /// The whole batch, to screen in one pass: lines separated by `\n`, the last one possibly
    /// unfinished.
    pub fn text(&self) -> &'a [u8] {
        self.text
    }

    /// Only the text appended by the latest push.
    pub fn new_text(&self) -> &'a [u8] {
        &self.text[self.new_from..]
    }

    /// Number of the line that starts the batch.
    pub fn first_line_no(&self) -> u64 {
        self.first_line_no
    }

    /// A cursor that finds the line around a byte offset, for offsets in increasing order.
    pub fn cursor(&self) -> LineCursor<'a> {
        LineCursor {
            batch: *self,
            pos: 0,
            no: self.first_line_no,
        }
    }

    /// Every line of the batch in order: the complete ones, then the unfinished one if it has
    /// text.
    pub fn lines(&self) -> impl Iterator<Item = Line<'a>> + use<'a> {
        let mut cursor = self.cursor();
        let mut next = 0;
        std::iter::from_fn(move || {
            let at_end = next >= cursor.batch.text.len();
            if at_end {
                return None;
            }
            let line = cursor.line_at(next);
            next = line.span.end + 1;
            Some(line)
        })
    }
}

/// Walks a [`Batch`] forwards, keeping count of line numbers.
#[derive(Debug, Clone)]
pub struct LineCursor<'a> {
    batch: Batch<'a>,
    /// Start of a line at or before every offset still to be asked for.
    pos: usize,
    /// Number of the line starting at `pos`.
    no: u64,
}

impl<'a> LineCursor<'a> {
    /// The line containing byte `offset` of the batch (offsets must not decrease between calls;
    /// an offset at a `\n` belongs to the line that the `\n` ends).
    pub fn line_at(&mut self, offset: usize) -> Line<'a> {
        let text = self.batch.text;
        let offset = offset.clamp(self.pos, text.len());
        if let Some(k) = memchr::memrchr(b'\n', &text[self.pos..offset]) {
            let start = self.pos + k + 1;
            self.no += memchr::memchr_iter(b'\n', &text[self.pos..start]).count() as u64;
            self.pos = start;
        }
        let (end, complete) = match memchr::memchr(b'\n', &text[offset..]) {
            Some(k) => (offset + k, true),
            None => (text.len(), false),
        };
        Line {
            no: self.no,
            text: &text[self.pos..end],
            complete,
            cut: self.pos == 0 && self.batch.first_cut,
            span: self.pos..end,
        }
    }
}

/// One console line, cleaned, without its `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line<'a> {
    /// 1-based console line number.
    pub no: u64,
    /// The line's text (for a line longer than the cap, only its last part).
    pub text: &'a [u8],
    /// Whether the line ended with `\n`; `false` for the line still being printed.
    pub complete: bool,
    /// Whether bytes at the front of the line were dropped to bound memory.
    pub cut: bool,
    /// Where `text` lies in the batch or buffer it was taken from.
    pub span: Range<usize>,
}

impl Line<'_> {
    /// The line as text for a report: lossy UTF-8, at most [`SHOWN_LINE_CAP`] bytes around
    /// byte `focus` (e.g. where a match ends), with `…` where it was cut.
    pub fn shown(&self, focus: usize) -> String {
        shown(self.text, self.cut, focus)
    }
}

/// Bounded, lossy rendering of a line around `focus`.
fn shown(text: &[u8], cut_front: bool, focus: usize) -> String {
    let (start, end) = if text.len() <= SHOWN_LINE_CAP {
        (0, text.len())
    } else {
        let start = focus
            .saturating_sub(SHOWN_LINE_CAP * 3 / 4)
            .min(text.len() - SHOWN_LINE_CAP);
        (start, start + SHOWN_LINE_CAP)
    };
    let mut s = String::with_capacity(end - start + 8);
    if cut_front || start > 0 {
        s.push('…');
    }
    s.push_str(&String::from_utf8_lossy(&text[start..end]));
    if end < text.len() {
        s.push('…');
    }
    s
}

/// The last complete lines for reports, kept as recent text and split into lines only when
/// asked: recording a batch is one copy, however many lines it holds.
#[derive(Debug)]
struct Tail {
    /// Recent complete lines, each ending with `\n`; the first may have lost its front.
    text: Vec<u8>,
    /// Whether `text` starts at the start of a line.
    whole_front: bool,
    /// Bytes of recent text kept: room for `max` lines of the shown size.
    keep: usize,
    max: usize,
    /// Numbers of recent lines that lost their front to the line cap.
    cut: VecDeque<u64>,
    /// Number of the last line in `text`.
    last_no: u64,
}

impl Tail {
    fn new(max: usize) -> Self {
        let keep = max * SHOWN_LINE_CAP;
        Tail {
            text: Vec::with_capacity(2 * keep),
            whole_front: true,
            keep,
            max,
            cut: VecDeque::with_capacity(max),
            last_no: 0,
        }
    }

    /// Records `region` (complete lines, ending with `\n`) whose first line is `first_no` and
    /// lost its front when `first_cut`; `last_no` is the number of its last line.
    fn record(&mut self, region: &[u8], first_no: u64, first_cut: bool, last_no: u64) {
        if self.max == 0 {
            return;
        }
        if first_cut {
            if self.cut.len() == self.max {
                self.cut.pop_front();
            }
            self.cut.push_back(first_no);
        }
        self.last_no = last_no;
        if region.len() >= self.keep {
            let from = region.len() - self.keep;
            self.text.clear();
            self.text.extend_from_slice(&region[from..]);
            self.whole_front = from == 0 || region[from - 1] == b'\n';
            return;
        }
        let total = self.text.len() + region.len();
        if total > 2 * self.keep {
            let drop = total - self.keep;
            self.whole_front = self.text[drop - 1] == b'\n';
            self.text.copy_within(drop.., 0);
            self.text.truncate(self.text.len() - drop);
        }
        self.text.extend_from_slice(region);
    }

    /// The last `max` lines, oldest first, each bounded.
    fn render(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let mut end = self.text.len();
        let mut no = self.last_no;
        while lines.len() < self.max && end > 0 {
            let nl = end - 1;
            let start = memchr::memrchr(b'\n', &self.text[..nl]).map_or(0, |k| k + 1);
            let cut = self.cut.contains(&no) || (start == 0 && !self.whole_front);
            lines.push(shown(&self.text[start..nl], cut, 0));
            no = no.saturating_sub(1);
            end = start;
        }
        lines.reverse();
        lines
    }

    fn footprint(&self) -> usize {
        self.text.capacity() + self.cut.capacity() * std::mem::size_of::<u64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(batch: Batch<'_>) -> Vec<(u64, String, bool)> {
        batch
            .lines()
            .map(|l| {
                (
                    l.no,
                    String::from_utf8_lossy(l.text).into_owned(),
                    l.complete,
                )
            })
            .collect()
    }

    #[test]
    fn batches_carry_the_unfinished_line() {
        let mut a = LineAssembler::new(64, 10);
        let b = a.push(b"one\ntw");
        assert_eq!(
            numbered(b),
            [(1, "one".into(), true), (2, "tw".into(), false)]
        );
        assert_eq!(a.lines_seen(), 2);
        let b = a.push(b"o\nthree\n");
        assert_eq!(b.text(), b"two\nthree\n");
        assert_eq!(b.new_text(), b"o\nthree\n");
        assert_eq!(
            numbered(b),
            [(2, "two".into(), true), (3, "three".into(), true)]
        );
        assert_eq!(a.lines_seen(), 3);
        assert!(a.unfinished().is_none());
        let b = a.push(b">> ");
        assert_eq!(numbered(b), [(4, ">> ".into(), false)]);
        assert_eq!(a.tail(), ["one", "two", "three", ">> "]);
    }

    #[test]
    fn empty_lines_are_counted() {
        let mut a = LineAssembler::new(64, 10);
        a.push(b"\n\nx\n\n");
        assert_eq!(a.lines_seen(), 4);
        assert_eq!(a.tail(), ["", "", "x", ""]);
    }

    #[test]
    fn cursor_finds_lines_by_offset() {
        let mut a = LineAssembler::new(64, 10);
        a.push(b"ab");
        let b = a.push(b"c\ndef\nghi");
        let mut c = b.cursor();
        let l = c.line_at(5);
        assert_eq!((l.no, l.text, l.complete), (2, &b"def"[..], true));
        let l = c.line_at(8);
        assert_eq!((l.no, l.text, l.complete), (3, &b"ghi"[..], false));
    }

    #[test]
    fn long_unfinished_line_keeps_its_last_bytes() {
        let mut a = LineAssembler::new(8, 4);
        a.push(b"0123456789");
        let b = a.push(b"abc");
        assert_eq!(b.text(), b"23456789abc");
        let line = b.lines().next().expect("one line");
        assert!(line.cut && !line.complete);
        a.push(b"\nnext\n");
        assert_eq!(a.tail(), ["…56789abc", "next"]);
        assert_eq!(a.lines_seen(), 2);
    }

    #[test]
    fn tail_keeps_the_last_lines_only() {
        let mut a = LineAssembler::new(64, 3);
        for i in 0..100 {
            a.push(format!("line {i}\n").as_bytes());
        }
        a.push(b"a\nb\nc\nd\ne\npartial");
        assert_eq!(a.tail(), ["c", "d", "e", "partial"]);
        assert_eq!(a.lines_seen(), 106);
    }

    #[test]
    fn shown_text_is_bounded_around_the_focus() {
        let mut text = vec![b'x'; 5000];
        text[4000..4005].copy_from_slice(b"PANIC");
        let s = shown(&text, false, 4005);
        assert!(s.contains("PANIC"));
        assert!(s.starts_with('…') && s.ends_with('…'));
        assert!(s.len() <= SHOWN_LINE_CAP + 6);
    }

    #[test]
    fn memory_stays_bounded_on_an_endless_line() {
        let mut a = LineAssembler::new(16 * 1024, 50);
        let chunk = vec![b'y'; MAX_BATCH];
        for _ in 0..200 {
            a.push(&chunk);
        }
        assert!(a.memory_footprint() <= memory_bound(16 * 1024, 50));
        assert!(memory_bound(16 * 1024, 50) < 256 * 1024);
        assert_eq!(a.lines_seen(), 1);
    }
}
