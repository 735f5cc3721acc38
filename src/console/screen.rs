//! One regex pass over a whole batch of console text that says where a line *might* match any of
//! a group of patterns, so that the common case (nothing matches) never walks lines one by one.
//!
//! The screen is all patterns compiled together as one multi-pattern regex in multi-line mode,
//! where `^`/`$` match at `\n`. A pattern that matches a line on its own then also matches that
//! line inside the batch, so the screen never misses a line; it may report a few extra places
//! (a pattern that can match across `\n`), which the per-line check then rejects. Patterns whose
//! meaning depends on the whole text (`\A`, `\z`, `(?-m)^`) cannot be screened this way: then
//! every line is checked, which is correct but slower.

use regex_automata::meta::{self, Regex};
use regex_automata::util::syntax;
use regex_automata::{Input, MatchKind};

use super::Pattern;

/// Finds the lines of a batch that may match one of a set of patterns.
#[derive(Debug, Clone)]
pub struct Screen {
    mode: Mode,
}

#[derive(Debug, Clone)]
enum Mode {
    /// No patterns: nothing can match.
    Never,
    /// Every line must be checked.
    EveryLine,
    /// Lines where this regex matches must be checked.
    Regex(Box<Regex>),
}

impl Screen {
    /// A screen for `patterns` (any number, any role).
    pub fn new<'a>(patterns: impl IntoIterator<Item = &'a Pattern>) -> Screen {
        let patterns: Vec<&Pattern> = patterns.into_iter().collect();
        let mode = if patterns.is_empty() {
            Mode::Never
        } else if patterns.iter().all(|p| p.is_line_local()) {
            build(&patterns).map_or(Mode::EveryLine, |re| Mode::Regex(Box::new(re)))
        } else {
            Mode::EveryLine
        };
        Screen { mode }
    }

    /// Offset in `text` of the leftmost place at or after `from` where a match may start.
    pub fn next_hit(&self, text: &[u8], from: usize) -> Option<usize> {
        if from >= text.len() {
            return None;
        }
        match &self.mode {
            Mode::Never => None,
            Mode::EveryLine => Some(from),
            Mode::Regex(re) => re.find(Input::new(text).range(from..)).map(|m| m.start()),
        }
    }

    /// Whether the screen is a real prefilter (false: every line is checked).
    pub fn is_selective(&self) -> bool {
        !matches!(self.mode, Mode::EveryLine)
    }
}

/// Compiles the patterns as one regex with the same syntax options as `regex::bytes`, plus
/// multi-line anchors; `None` if it is too big (the caller then checks every line).
fn build(patterns: &[&Pattern]) -> Option<Regex> {
    let texts: Vec<&str> = patterns.iter().map(|p| p.spec.regex.as_str()).collect();
    meta::Builder::new()
        .configure(
            meta::Config::new()
                .match_kind(MatchKind::LeftmostFirst)
                .utf8_empty(false),
        )
        .syntax(syntax::Config::new().utf8(false).multi_line(true))
        .build_many(&texts)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PatternSpec;

    fn pats(res: &[&str]) -> Vec<Pattern> {
        res.iter()
            .map(|r| {
                let spec = PatternSpec {
                    regex: r.to_string(),
                    location: None,
                };
                Pattern::compile(&spec, "test").expect("valid")
            })
            .collect()
    }

    #[test]
    fn finds_the_leftmost_possible_match() {
        let p = pats(&["^boot", "panic"]);
        let s = Screen::new(&p);
        assert!(s.is_selective());
        let text = b"x boot\nboot ok\nkernel panic\n";
        assert_eq!(s.next_hit(text, 0), Some(7));
        assert_eq!(s.next_hit(text, 8), Some(22));
        assert_eq!(s.next_hit(text, 27), None);
    }

    #[test]
    fn whole_text_anchors_fall_back_to_every_line() {
        let p = pats(&[r"\Aboot"]);
        let s = Screen::new(&p);
        assert!(!s.is_selective());
        assert_eq!(s.next_hit(b"a\nboot", 2), Some(2));
    }

    #[test]
    fn no_patterns_never_hit() {
        let s = Screen::new(&[]);
        assert_eq!(s.next_hit(b"anything", 0), None);
    }
}
