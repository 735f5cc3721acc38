//! The guest console as echoed to a terminal: made inert, so a guest cannot drive the user's
//! terminal. SeaBIOS prints `ESC c` (full reset: it wipes the printed command line) and
//! `ESC[?7l` (autowrap off, left off after QEMU ends); other guests clear the screen, move the
//! cursor, set the window title or, through OSC 52, write the clipboard.
//!
//! [`EchoFilter`] is a streaming state machine (a sequence split across reads is handled as if it
//! came in one read) that passes text, `\n`, `\r`, `\t` and backspace, keeps SGR colour
//! sequences (`ESC [ digits ; … m`) when colours are wanted, and drops everything else:
//! CSI sequences of any other kind, `ESC x` and `ESC ( B`-style sequences, OSC/DCS/SOS/PM/APC
//! strings up to their terminator, and other C0 control bytes (BEL, …). As in
//! [`crate::console::Cleaner`], a byte that cannot continue a sequence ends it and is text again,
//! and an unterminated string ends at the next newline, so garbled input never hides more than
//! the rest of its line. Only the echo is filtered: the console log keeps every byte.
//!
//! Hand-written rather than a terminal-emulator crate (`vte`) because we need the opposite of
//! parsing into actions: pass bytes through unchanged except for a few, in bounded memory.

use crate::console::clean::{BEL, CAN, ESC, SUB};

/// Longest SGR sequence kept (longer ones are dropped; real ones are a few bytes).
const MAX_SGR: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Text,
    /// After `ESC`.
    Esc,
    /// After `ESC` and intermediate bytes (`ESC ( B`).
    EscIntermediate,
    /// Inside `ESC [`; the sequence so far is in `csi`.
    Csi,
    /// Inside an OSC/DCS/SOS/PM/APC string.
    Str,
    /// `ESC` inside a string (maybe the `ESC \` terminator).
    StrEsc,
}

/// Filters one console stream for a terminal (see the module docs).
#[derive(Debug, Clone)]
pub struct EchoFilter {
    state: State,
    keep_colour: bool,
    /// The CSI sequence being read, kept only while it may still be SGR.
    csi: Vec<u8>,
    /// Whether `csi` can still be an SGR sequence (only digits, `;` and `:` so far, not too long).
    maybe_sgr: bool,
}

impl EchoFilter {
    /// `keep_colour`: pass SGR colour sequences through (else they are dropped too).
    pub fn new(keep_colour: bool) -> EchoFilter {
        EchoFilter {
            state: State::Text,
            keep_colour,
            csi: Vec::new(),
            maybe_sgr: false,
        }
    }

    /// The inert form of `bytes`, given everything filtered before.
    pub fn filter(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len());
        for &b in bytes {
            self.byte(b, &mut out);
        }
        out
    }

    fn byte(&mut self, b: u8, out: &mut Vec<u8>) {
        match self.state {
            State::Text => self.text(b, out),
            State::Esc => match b {
                b'[' => {
                    self.state = State::Csi;
                    self.csi.clear();
                    self.maybe_sgr = self.keep_colour;
                }
                b']' | b'P' | b'X' | b'^' | b'_' => self.state = State::Str,
                0x20..=0x2f => self.state = State::EscIntermediate,
                // `ESC c`, `ESC 7`, `ESC M`, …: dropped.
                0x30..=0x7e => self.state = State::Text,
                _ => self.abort(b, out),
            },
            State::EscIntermediate => match b {
                0x20..=0x2f => {}
                0x30..=0x7e => self.state = State::Text,
                _ => self.abort(b, out),
            },
            State::Csi => match b {
                b'0'..=b'9' | b';' | b':' => self.csi_byte(b),
                // Private markers, other parameters and intermediates: not SGR.
                0x3c..=0x3f | 0x20..=0x2f => self.maybe_sgr = false,
                0x40..=0x7e => {
                    if b == b'm' && self.maybe_sgr {
                        out.extend_from_slice(b"\x1b[");
                        out.extend_from_slice(&self.csi);
                        out.push(b'm');
                    }
                    self.state = State::Text;
                }
                _ => self.abort(b, out),
            },
            State::Str => match b {
                BEL => self.state = State::Text,
                ESC => self.state = State::StrEsc,
                b'\n' | CAN | SUB => self.abort(b, out),
                _ => {}
            },
            State::StrEsc => match b {
                b'\\' => self.state = State::Text,
                ESC => {}
                b'\n' | CAN | SUB => self.abort(b, out),
                _ => self.state = State::Str,
            },
        }
    }

    fn csi_byte(&mut self, b: u8) {
        if self.maybe_sgr && self.csi.len() < MAX_SGR {
            self.csi.push(b);
        } else {
            self.maybe_sgr = false;
        }
    }

    /// A byte that cannot continue the sequence: the sequence is dropped, the byte is text.
    fn abort(&mut self, b: u8, out: &mut Vec<u8>) {
        self.state = State::Text;
        if b != CAN && b != SUB {
            self.text(b, out);
        }
    }

    fn text(&mut self, b: u8, out: &mut Vec<u8>) {
        match b {
            ESC => self.state = State::Esc,
            b'\n' | b'\r' | b'\t' | 0x08 => out.push(b),
            0x00..=0x1f | 0x7f => {}
            _ => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inert(input: &[u8], colour: bool) -> Vec<u8> {
        EchoFilter::new(colour).filter(input)
    }

    #[test]
    fn seabios_and_screen_control_sequences_are_dropped() {
        assert_eq!(
            inert(
                b"\x1bc\x1b[?7l\x1b[2J\x1b[1;1HSeaBIOS (version 1.16)\r\n",
                true
            ),
            b"SeaBIOS (version 1.16)\r\n"
        );
        assert_eq!(
            inert(
                b"a\x1b]0;title\x07b\x1b]52;c;ZXZpbA==\x1b\\c\x1bP1$r\x1b\\d",
                true
            ),
            b"abcd"
        );
        assert_eq!(inert(b"x\x1b(By\x1b7z\x07\x00!", true), b"xyz!");
        assert_eq!(inert(b"tab\there\x08!\x7f", true), b"tab\there\x08!");
    }

    #[test]
    fn colours_are_kept_or_dropped_as_asked() {
        let text = b"\x1b[31mred\x1b[0m \x1b[1;38;5;208mbold\x1b[m";
        assert_eq!(inert(text, true), text);
        assert_eq!(inert(text, false), b"red bold");
        // Not SGR although it ends in m: a private marker.
        assert_eq!(inert(b"\x1b[?1mx", true), b"x");
    }

    #[test]
    fn sequences_split_across_reads_are_handled_and_garbage_ends_them() {
        let mut f = EchoFilter::new(true);
        let mut out = f.filter(b"a\x1b");
        out.extend(f.filter(b"[3"));
        out.extend(f.filter(b"1mb\x1b["));
        out.extend(f.filter(b"2Jc"));
        assert_eq!(out, b"a\x1b[31mbc");
        // A stray ESC [ followed by a newline: the newline is text, nothing after is lost.
        assert_eq!(inert(b"x\x1b[12\nnext line\n", true), b"x\nnext line\n");
        // An unterminated title string ends at the newline.
        assert_eq!(inert(b"\x1b]0;never ends\nvisible\n", true), b"\nvisible\n");
        // UTF-8 passes unchanged.
        assert_eq!(inert("héllo ⚛\n".as_bytes(), true), "héllo ⚛\n".as_bytes());
    }
}
