//! One regex pass over a whole batch of console text that says where a line *might* match any of
//! a group of patterns, so that the common case (nothing matches) never walks lines one by one.
//!
//! The screen compiles *relaxed* copies of the patterns: the same regexes with every zero-width
//! assertion (`^`, `$`, `\A`, `\z`, `\b`, `\B`) removed. Removing an assertion only widens what a
//! regex accepts, so if a pattern matches some span of a line, its relaxed copy matches the same
//! span inside the batch: the screen never misses a line. It may point at a few extra lines
//! (`^boot` relaxed is `boot`), which the exact per-line check then rejects. Without assertions
//! the combined regex keeps its fast literal prefilters and never falls back to slow engines
//! (a Unicode `\b` makes the lazy DFA give up on non-ASCII text).
//!
//! Patterns are compiled in groups of [`GROUP_SIZE`]: beyond about ten literals the regex
//! crate's combined prefilter stops paying off (measured: 20 kernel-message patterns in one regex
//! scan at ~0.5 GB/s, the same patterns in two groups at ~2 GB/s each).

use regex_automata::meta::{self, Regex};
use regex_automata::{Input, MatchKind};
use regex_syntax::hir::{Capture, Hir, HirKind, Repetition};

use super::Pattern;
use super::pattern::parser;

/// How many patterns share one screening regex.
pub const GROUP_SIZE: usize = 8;

/// Finds the lines of a batch that may match one of a set of patterns.
#[derive(Debug, Clone)]
pub struct Screen {
    mode: Mode,
}

#[derive(Debug, Clone)]
enum Mode {
    /// No patterns: nothing can match.
    Never,
    /// The screen could not be built: every line must be checked.
    EveryLine,
    /// Lines where one of these regexes matches must be checked.
    Groups(Vec<Regex>),
}

impl Screen {
    /// A screen for `patterns` (any number, any role).
    pub fn new<'a>(patterns: impl IntoIterator<Item = &'a Pattern>) -> Screen {
        let relaxed: Option<Vec<Hir>> = patterns
            .into_iter()
            .map(|p| parser().parse(&p.spec.regex).ok().map(|h| relax(&h)))
            .collect();
        let mode = match relaxed {
            Some(hirs) if hirs.is_empty() => Mode::Never,
            Some(hirs) => hirs
                .chunks(GROUP_SIZE)
                .map(build)
                .collect::<Option<Vec<Regex>>>()
                .map_or(Mode::EveryLine, Mode::Groups),
            None => Mode::EveryLine,
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
            Mode::Groups(groups) => {
                let input = Input::new(text).range(from..);
                groups
                    .iter()
                    .filter_map(|re| re.find(input.clone()).map(|m| m.start()))
                    .min()
            }
        }
    }

    /// Whether the screen is a real prefilter (false: every line is checked).
    pub fn is_selective(&self) -> bool {
        !matches!(self.mode, Mode::EveryLine)
    }
}

/// The pattern without zero-width assertions and capture groups: it accepts a superset.
fn relax(hir: &Hir) -> Hir {
    match hir.kind() {
        HirKind::Look(_) => Hir::empty(),
        HirKind::Empty | HirKind::Literal(_) | HirKind::Class(_) => hir.clone(),
        HirKind::Capture(Capture { sub, .. }) => relax(sub),
        HirKind::Repetition(rep) => Hir::repetition(Repetition {
            sub: Box::new(relax(&rep.sub)),
            ..rep.clone()
        }),
        HirKind::Concat(subs) => Hir::concat(subs.iter().map(relax).collect()),
        HirKind::Alternation(subs) => Hir::alternation(subs.iter().map(relax).collect()),
    }
}

/// Compiles one group as a multi-pattern regex with `regex::bytes` semantics; `None` if it is
/// too big (the caller then checks every line).
fn build(hirs: &[Hir]) -> Option<Regex> {
    meta::Builder::new()
        .configure(
            meta::Config::new()
                .match_kind(MatchKind::LeftmostFirst)
                .utf8_empty(false),
        )
        .build_many_from_hir(hirs)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pats(res: &[&str]) -> Vec<Pattern> {
        Pattern::list(res)
    }

    #[test]
    fn finds_the_leftmost_possible_match() {
        let p = pats(&["^boot", "panic"]);
        let s = Screen::new(&p);
        assert!(s.is_selective());
        let text = b"x boot\nboot ok\nkernel panic\n";
        assert_eq!(
            s.next_hit(text, 0),
            Some(2),
            "relaxed ^boot points at 'x boot'"
        );
        assert_eq!(s.next_hit(text, 3), Some(7));
        assert_eq!(s.next_hit(text, 8), Some(22));
        assert_eq!(s.next_hit(text, 27), None);
    }

    #[test]
    fn assertions_are_relaxed_to_a_superset() {
        let p = pats(&[r"\Aboot\z", r"\bok\b", r"(?m)^done$"]);
        let s = Screen::new(&p);
        assert!(s.is_selective());
        assert_eq!(s.next_hit(b"a\nxbootx", 0), Some(3));
        assert_eq!(s.next_hit(b"a\nbook", 0), Some(4));
        assert_eq!(s.next_hit(b"undone!", 0), Some(2));
        assert_eq!(s.next_hit(b"nothing here", 0), None);
    }

    #[test]
    fn groups_report_the_leftmost_hit_of_all() {
        let names: Vec<String> = (0..3 * GROUP_SIZE)
            .map(|i| format!("pattern{i:02}x"))
            .collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let p = pats(&refs);
        let s = Screen::new(&p);
        let text = b"..pattern20x..pattern03x..pattern11x";
        assert_eq!(s.next_hit(text, 0), Some(2));
        assert_eq!(s.next_hit(text, 3), Some(14));
        assert_eq!(s.next_hit(text, 15), Some(26));
    }

    #[test]
    fn no_patterns_never_hit() {
        let s = Screen::new(&[]);
        assert_eq!(s.next_hit(b"anything", 0), None);
    }
}
