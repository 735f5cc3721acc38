//! Streaming removal of ANSI/terminal escape sequences and carriage returns, so that patterns
//! match the text a person sees and not the colour codes around it.
//!
//! [`Cleaner`] is a byte-level state machine whose state survives chunk boundaries: an escape
//! sequence split across two reads is removed exactly as if it had arrived in one. It never
//! buffers input, so it costs no memory whatever the guest prints. The raw log is not affected:
//! the runner writes the raw bytes itself; only the matcher sees the cleaned text.
//!
//! What is removed:
//! - CSI sequences `ESC [ params intermediates final` (colours, cursor moves, `ESC[?2004h`);
//! - OSC `ESC ] … BEL` or `… ESC \`, and the DCS (`ESC P`), SOS (`ESC X`), PM (`ESC ^`) and APC
//!   (`ESC _`) strings with the same terminators;
//! - two-byte `ESC x` and the `ESC ( B`-style sequences with intermediate bytes;
//! - every `\r`: `\r\n` becomes `\n`, and a lone `\r` (a progress line redrawn in place) is simply
//!   dropped, so `50%\r100%` reads `50%100%`. Lines are therefore split on `\n` only.
//!
//! Robustness rules, because console bytes are untrusted and sometimes garbled:
//! - a byte that cannot continue an escape sequence (a control character such as `\n`, DEL
//!   excepted, or a byte ≥ 0x80) ends it and is then treated as ordinary text, so a stray `ESC [`
//!   never swallows the next line;
//! - an OSC/DCS/… string that is never terminated ends at the next `\n`, so it can hide at most the
//!   rest of one line from the fail patterns; CAN (0x18) and SUB (0x1a) cancel any sequence.
//!
//! The 8-bit C1 CSI byte 0x9b is honoured only where it cannot belong to a UTF-8 character. In
//! UTF-8 text 0x9b is a continuation byte (`Û` is `C3 9B`, `⚛` is `E2 9A 9B`), so it starts a CSI
//! only when the bytes just before it do not form the beginning of a UTF-8 character it would
//! continue. The UTF-8 encoding of U+009B (`C2 9B`) is kept as text, like modern terminals in
//! UTF-8 mode do; other C1 bytes (0x90, 0x9d, …) are kept as well. All other bytes, including
//! invalid UTF-8, pass through unchanged: matching works on bytes.

pub(crate) const ESC: u8 = 0x1b;
const CR: u8 = b'\r';
const C1_CSI: u8 = 0x9b;
pub(crate) const BEL: u8 = 0x07;
pub(crate) const CAN: u8 = 0x18;
pub(crate) const SUB: u8 = 0x1a;
const DEL: u8 = 0x7f;

/// Where the state machine is between two bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Ordinary text.
    Ground,
    /// After `ESC`.
    Escape,
    /// After `ESC` and one or more intermediate bytes (0x20–0x2f), e.g. `ESC (`.
    EscIntermediate,
    /// Inside `ESC [` (or C1 CSI) before the final byte.
    Csi,
    /// Inside an OSC/DCS/SOS/PM/APC string.
    Str,
    /// After `ESC` inside a string: `\` ends it (ST), anything else starts a new sequence.
    StrEsc,
}

/// Removes terminal escape sequences and `\r` from a byte stream fed in arbitrary chunks.
#[derive(Debug, Clone)]
pub struct Cleaner {
    state: State,
    /// The last raw bytes seen (newest last), to decide whether a 0x9b continues a UTF-8
    /// character that began in an earlier chunk.
    recent: [u8; 3],
    /// How many entries of `recent` are valid (at the start of the stream fewer than 3).
    recent_len: usize,
}

impl Default for Cleaner {
    fn default() -> Self {
        Self::new()
    }
}

impl Cleaner {
    /// A cleaner at the start of a stream (outside any escape sequence).
    pub fn new() -> Self {
        Cleaner {
            state: State::Ground,
            recent: [0; 3],
            recent_len: 0,
        }
    }

    /// Appends the cleaned form of `input` to `out`; `out` grows by at most `input.len()`.
    pub fn clean(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        while i < input.len() {
            if self.state == State::Ground {
                i = self.copy_text(input, i, out);
            } else {
                i = self.step_sequence(input, i);
            }
        }
        self.remember(input);
    }

    /// Copies ordinary text up to the next special byte, then handles that byte; returns the
    /// index of the next unprocessed byte.
    fn copy_text(&mut self, input: &[u8], from: usize, out: &mut Vec<u8>) -> usize {
        let rest = &input[from..];
        let Some(k) = memchr::memchr3(ESC, CR, C1_CSI, rest) else {
            out.extend_from_slice(rest);
            return input.len();
        };
        out.extend_from_slice(&rest[..k]);
        let at = from + k;
        match input[at] {
            ESC => self.state = State::Escape,
            CR => {}
            _ if self.continues_utf8(input, at) => out.push(C1_CSI),
            _ => self.state = State::Csi,
        }
        at + 1
    }

    /// Consumes bytes of an escape sequence until it ends or the input runs out; returns the
    /// index of the next unprocessed byte.
    fn step_sequence(&mut self, input: &[u8], from: usize) -> usize {
        let mut i = from;
        while i < input.len() && self.state != State::Ground {
            let b = input[i];
            if !self.absorb(b) {
                // The byte cannot continue the sequence: it is handled again as text.
                self.state = State::Ground;
                return i;
            }
            i += 1;
        }
        i
    }

    /// Advances the state on one byte of a sequence; `false` means the sequence is aborted and
    /// the byte must be treated as text.
    fn absorb(&mut self, b: u8) -> bool {
        if b == CAN || b == SUB {
            self.state = State::Ground;
            return true;
        }
        if b == ESC && self.state != State::Str {
            self.state = State::Escape;
            return true;
        }
        let next = match self.state {
            State::Escape => after_escape(b),
            State::EscIntermediate => after_intermediate(b),
            State::Csi => in_csi(b),
            State::Str => in_string(b),
            State::StrEsc => match b {
                b'\\' => Some(State::Ground),
                _ => after_escape(b),
            },
            State::Ground => Some(State::Ground),
        };
        match next {
            Some(s) => {
                self.state = s;
                true
            }
            None => false,
        }
    }

    /// Whether the 0x9b at `input[at]` is a continuation byte of a UTF-8 character that starts
    /// in the (up to 3) bytes before it.
    fn continues_utf8(&self, input: &[u8], at: usize) -> bool {
        let mut before = [0u8; 3];
        let mut n = 0;
        for back in 1..=3 {
            let byte = if back <= at {
                Some(input[at - back])
            } else {
                let r = back - at;
                (r <= self.recent_len).then(|| self.recent[3 - r])
            };
            match byte {
                Some(b) => {
                    before[2 - n] = b;
                    n += 1;
                }
                None => break,
            }
        }
        is_utf8_continuation(&before[3 - n..])
    }

    /// Keeps the last raw bytes of `input` for the 0x9b look-behind of the next chunk.
    fn remember(&mut self, input: &[u8]) {
        for &b in input.iter().rev().take(3).rev() {
            self.recent.rotate_left(1);
            self.recent[2] = b;
        }
        self.recent_len = (self.recent_len + input.len()).min(3);
    }
}

/// Whether a 0x9b right after `before` (the preceding raw bytes, oldest first) continues a
/// UTF-8 character: some suffix of `before` is a lead byte plus continuation bytes that, with
/// 0x9b appended, is still a valid beginning of a character.
fn is_utf8_continuation(before: &[u8]) -> bool {
    (1..=before.len()).any(|k| {
        let start = &before[before.len() - k..];
        let width = utf8_width(start[0]);
        if width <= k {
            return false;
        }
        let mut candidate = [0x80u8; 4];
        candidate[..k].copy_from_slice(start);
        candidate[k] = C1_CSI;
        std::str::from_utf8(&candidate[..width]).is_ok()
    })
}

/// The length of the UTF-8 character a lead byte announces (0 for a non-lead byte).
fn utf8_width(lead: u8) -> usize {
    match lead {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => 0,
    }
}

fn after_escape(b: u8) -> Option<State> {
    match b {
        b'[' => Some(State::Csi),
        b']' | b'P' | b'X' | b'^' | b'_' => Some(State::Str),
        0x20..=0x2f => Some(State::EscIntermediate),
        0x30..=0x7e => Some(State::Ground),
        _ => None,
    }
}

fn after_intermediate(b: u8) -> Option<State> {
    match b {
        0x20..=0x2f => Some(State::EscIntermediate),
        0x30..=0x7e => Some(State::Ground),
        _ => None,
    }
}

fn in_csi(b: u8) -> Option<State> {
    match b {
        0x20..=0x3f | DEL => Some(State::Csi),
        0x40..=0x7e => Some(State::Ground),
        _ => None,
    }
}

fn in_string(b: u8) -> Option<State> {
    match b {
        BEL => Some(State::Ground),
        ESC => Some(State::StrEsc),
        b'\n' => None,
        _ => Some(State::Str),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean_all(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        Cleaner::new().clean(input, &mut out);
        out
    }

    fn clean_bytewise(input: &[u8]) -> Vec<u8> {
        let mut c = Cleaner::new();
        let mut out = Vec::new();
        for b in input {
            c.clean(std::slice::from_ref(b), &mut out);
        }
        out
    }

    #[test]
    fn removes_colours_and_cursor_sequences() {
        let input = b"\x1b[1;32mOK\x1b[0m boot \x1b[?2004hdone\x1b[K";
        assert_eq!(clean_all(input), b"OK boot done");
    }

    #[test]
    fn removes_osc_with_bel_and_st() {
        assert_eq!(
            clean_all(b"a\x1b]0;title\x07b\x1b]8;;http://x\x1b\\c"),
            b"abc"
        );
    }

    #[test]
    fn removes_dcs_sos_pm_apc_strings() {
        assert_eq!(
            clean_all(b"1\x1bPq#0\x1b\\2\x1bXs\x1b\\3\x1b^p\x1b\\4\x1b_a\x07 5"),
            b"1234 5"
        );
    }

    #[test]
    fn removes_two_byte_and_intermediate_escapes() {
        assert_eq!(clean_all(b"\x1b(Bx\x1b7y\x1b8z\x1bc\x1b#8w"), b"xyzw");
    }

    #[test]
    fn drops_every_carriage_return() {
        assert_eq!(clean_all(b"a\r\nb\r\r\nc\rd\n"), b"a\nb\ncd\n");
    }

    #[test]
    fn keeps_invalid_utf8_and_other_controls() {
        let input = b"\xff\xfe bad \x00\x08\x07 ok\t\n";
        assert_eq!(clean_all(input), input.to_vec());
    }

    #[test]
    fn stray_escape_does_not_swallow_the_next_line() {
        assert_eq!(clean_all(b"abc\x1b[12\nLinux\n"), b"abc\nLinux\n");
        assert_eq!(clean_all(b"abc\x1b\nLinux\n"), b"abc\nLinux\n");
    }

    #[test]
    fn unterminated_string_ends_at_newline() {
        assert_eq!(
            clean_all(b"x\x1b]0;never ends\npanicked at\n"),
            b"x\npanicked at\n"
        );
    }

    #[test]
    fn escape_inside_string_starts_a_new_sequence() {
        assert_eq!(clean_all(b"\x1b]0;t\x1b[31mred"), b"red");
    }

    #[test]
    fn cancel_aborts_a_sequence() {
        assert_eq!(clean_all(b"\x1b[31\x18m\x1b]x\x1a!"), b"m!");
    }

    #[test]
    fn c1_csi_outside_utf8_is_an_escape() {
        assert_eq!(clean_all(b"a\x9b31mb"), b"ab");
        assert_eq!(clean_all(b"\x9b0mstart"), b"start");
    }

    #[test]
    fn c1_byte_inside_utf8_is_text() {
        for text in ["Û31m", "⚛x", "\u{9b}1m", "𝛛1m"] {
            assert_eq!(clean_all(text.as_bytes()), text.as_bytes(), "{text:?}");
            assert_eq!(clean_bytewise(text.as_bytes()), text.as_bytes(), "{text:?}");
        }
    }

    #[test]
    fn sequences_split_anywhere_give_the_same_text() {
        let input: &[u8] =
            b"\x1b[1;31mpan\x1b[0micked\r\n\x1b]0;t\x1b\\at \x9b2K\xc3\x9b\x1b(Bx\r\n";
        let whole = clean_all(input);
        assert_eq!(whole, "panicked\nat Ûx\n".as_bytes());
        assert_eq!(clean_bytewise(input), whole);
        for cut in 0..input.len() {
            let mut c = Cleaner::new();
            let mut out = Vec::new();
            c.clean(&input[..cut], &mut out);
            c.clean(&input[cut..], &mut out);
            assert_eq!(out, whole, "cut at {cut}");
        }
    }
}
