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
//! A line never holds a `\n`, so the relaxed copies do not match one either (classes lose `\n`,
//! a literal with a `\n` can never match): every screen match lies inside one line. The screen
//! therefore only needs where the leftmost match *ends* to know its line: a forward scan, with
//! no reverse scan for the start (6% of the instructions of `benches/matcher.rs`' grammar case,
//! where the test-case screen hits one line in eight).
//!
//! Patterns are compiled in groups of [`GROUP_SIZE`]: beyond about ten literals the regex
//! crate's combined prefilter stops paying off (measured: 20 kernel-message patterns in one regex
//! scan at ~0.5 GB/s, the same patterns in two groups at ~2 GB/s each).

use regex_automata::meta::{self, Regex};
use regex_automata::{Input, MatchKind};
use regex_syntax::hir::{
    Capture, Class, ClassBytes, ClassBytesRange, ClassUnicode, ClassUnicodeRange, Hir, HirKind,
    Literal, Repetition, literal,
};

use super::Pattern;
use super::pattern::parser;

/// How many patterns share one screening regex.
pub const GROUP_SIZE: usize = 8;

/// Finds the lines of a batch that may match one of a set of patterns.
#[derive(Debug, Clone)]
pub struct Screen {
    mode: Mode,
    /// No pattern has a zero-width assertion: on a line, the relaxed copies accept what the
    /// patterns accept.
    exact: bool,
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
        let parsed: Option<Vec<Hir>> = patterns
            .into_iter()
            .map(|p| parser().parse(&p.spec.regex).ok())
            .collect();
        let exact = parsed
            .iter()
            .flatten()
            .all(|h| h.properties().look_set().is_empty());
        let relaxed = parsed.map(|hirs| hirs.iter().map(relax).collect::<Vec<_>>());
        let mode = match relaxed {
            Some(hirs) if hirs.is_empty() => Mode::Never,
            Some(hirs) => {
                let (alone, shared): (Vec<Hir>, Vec<Hir>) = hirs.into_iter().partition(weak_prefix);
                alone
                    .chunks(1)
                    .chain(shared.chunks(GROUP_SIZE))
                    .map(build)
                    .collect::<Option<Vec<Regex>>>()
                    .map_or(Mode::EveryLine, Mode::Groups)
            }
            None => Mode::EveryLine,
        };
        Screen { mode, exact }
    }

    /// An offset in `text`, at or after `from`, inside the first line where one of the patterns
    /// may match in the part of `text` from `from` on (no line before it can); `None` if none can.
    /// The offset is where the leftmost screen match ends, which is in the line it starts in
    /// (screen matches hold no `\n`); an offset at a line's `\n` belongs to that line.
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
                    .filter_map(|re| re.search_half(&input).map(|m| m.offset()))
                    .min()
            }
        }
    }

    /// Whether every line [`Screen::next_hit`] points at is matched by one of the patterns (as
    /// the judge matches a line: the line's text on its own, without its `\n`), so that no
    /// per-line check is needed to know that. True when no pattern has a zero-width assertion,
    /// which is all that relaxing takes away on text without `\n`.
    pub fn is_exact(&self) -> bool {
        self.exact && matches!(self.mode, Mode::Groups(_))
    }

    /// Whether the screen is a real prefilter (false: every line is checked).
    pub fn is_selective(&self) -> bool {
        !matches!(self.mode, Mode::EveryLine)
    }
}

/// The pattern without zero-width assertions and capture groups, and without `\n`: on text
/// split into lines it accepts a superset, and it never matches across a line end.
fn relax(hir: &Hir) -> Hir {
    match hir.kind() {
        HirKind::Look(_) => Hir::empty(),
        HirKind::Empty => hir.clone(),
        HirKind::Literal(Literal(bytes)) if bytes.contains(&b'\n') => Hir::fail(),
        HirKind::Literal(_) => hir.clone(),
        HirKind::Class(Class::Unicode(c)) => {
            let mut c = c.clone();
            c.difference(&ClassUnicode::new([ClassUnicodeRange::new('\n', '\n')]));
            Hir::class(Class::Unicode(c))
        }
        HirKind::Class(Class::Bytes(c)) => {
            let mut c = c.clone();
            c.difference(&ClassBytes::new([ClassBytesRange::new(b'\n', b'\n')]));
            Hir::class(Class::Bytes(c))
        }
        HirKind::Capture(Capture { sub, .. }) => relax(sub),
        HirKind::Repetition(rep) => Hir::repetition(Repetition {
            sub: Box::new(relax(&rep.sub)),
            ..rep.clone()
        }),
        HirKind::Concat(subs) => Hir::concat(subs.iter().map(relax).collect()),
        HirKind::Alternation(subs) => Hir::alternation(subs.iter().map(relax).collect()),
    }
}

/// Whether a pattern's matches may start with fewer than 3 known bytes (`-+\[ cut here \]`
/// starts with `-`, `\w+ panic` with anything): in a group, such a pattern leaves the group's
/// prefilter looking for a byte or two of every pattern, stopping everywhere; on its own it
/// stops only where its own start can be (and the regex crate may search for a literal inside
/// or at the end of it instead).
fn weak_prefix(hir: &Hir) -> bool {
    let prefixes = literal::Extractor::new().extract(hir);
    match prefixes.min_literal_len() {
        Some(n) => n < 3,
        // No literal at all: it matches nothing when the set is finite, anything otherwise.
        None => !prefixes.is_finite(),
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

    /// The line of `text` that holds byte `offset` (an offset at a `\n` is in the line it ends).
    fn line_at(text: &[u8], offset: usize) -> &str {
        let start = text[..offset]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |k| k + 1);
        let end = text[offset..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(text.len(), |k| offset + k);
        std::str::from_utf8(&text[start..end]).expect("test text is UTF-8")
    }

    /// The line the screen points at when searching from `from`.
    fn hit_line<'t>(s: &Screen, text: &'t [u8], from: usize) -> Option<&'t str> {
        let hit = s.next_hit(text, from)?;
        assert!(hit >= from && hit <= text.len(), "{hit} outside {from}..");
        Some(line_at(text, hit))
    }

    #[test]
    fn finds_the_first_line_that_may_match() {
        let p = pats(&["^boot", "panic"]);
        let s = Screen::new(&p);
        assert!(s.is_selective());
        let text = b"x boot\nboot ok\nkernel panic\n";
        assert_eq!(
            hit_line(&s, text, 0),
            Some("x boot"),
            "relaxed ^boot points at 'x boot'"
        );
        assert_eq!(hit_line(&s, text, 3), Some("boot ok"));
        assert_eq!(hit_line(&s, text, 8), Some("kernel panic"));
        assert_eq!(s.next_hit(text, 27), None);
    }

    #[test]
    fn assertions_are_relaxed_to_a_superset() {
        let p = pats(&[r"\Aboot\z", r"\bok\b", r"(?m)^done$"]);
        let s = Screen::new(&p);
        assert!(s.is_selective());
        assert_eq!(hit_line(&s, b"a\nxbootx", 0), Some("xbootx"));
        assert_eq!(hit_line(&s, b"a\nbook", 0), Some("book"));
        assert_eq!(hit_line(&s, b"undone!", 0), Some("undone!"));
        assert_eq!(s.next_hit(b"nothing here", 0), None);
    }

    #[test]
    fn screen_matches_stay_inside_one_line() {
        // `[^#]*` would run over the line end to the last `z`, a line that comes after the one
        // that matches: the screen must still point at the first.
        let s = Screen::new(&pats(&["a[^#]*z"]));
        assert_eq!(hit_line(&s, b"a z\nzz\n", 0), Some("a z"));
        // Nothing that needs a `\n` can match a line: only `baz` can.
        let s = Screen::new(&pats(&[r"a\s+b", "x[^y]*z", "foo\nbar|baz"]));
        let text = b"a\n b\nx\nz\nfoo\nbar\n..baz\n";
        assert_eq!(hit_line(&s, text, 0), Some("..baz"));
        assert_eq!(s.next_hit(b"a\n b\nfoo\nbar\n", 0), None);
    }

    #[test]
    fn groups_report_the_first_line_of_all() {
        let names: Vec<String> = (0..3 * GROUP_SIZE)
            .map(|i| format!("pattern{i:02}x"))
            .collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let p = pats(&refs);
        let s = Screen::new(&p);
        let text = b"..pattern20x\n..pattern03x\n..pattern11x";
        assert_eq!(hit_line(&s, text, 0), Some("..pattern20x"));
        assert_eq!(hit_line(&s, text, 13), Some("..pattern03x"));
        assert_eq!(hit_line(&s, text, 26), Some("..pattern11x"));
    }

    #[test]
    fn a_screen_without_assertions_is_exact() {
        assert!(Screen::new(&pats(&[r"Test '\w+' ok", "done"])).is_exact());
        for anchored in [r"^ok \d+", r"\bok\b", "done$"] {
            assert!(
                !Screen::new(&pats(&["plain", anchored])).is_exact(),
                "{anchored}"
            );
        }
        assert!(!Screen::new(&[]).is_exact());
    }

    #[test]
    fn patterns_without_a_literal_start_are_screened_alone() {
        let weak = |re: &str| weak_prefix(&relax(&parser().parse(re).expect("valid")));
        for re in [r"-+\[ cut here \]-+", r"\w+ panic", r"(?i)ok", "x|panic"] {
            assert!(weak(re), "{re}");
        }
        for re in [
            "panicked at",
            r"VM\[\d+\] exited",
            r"^All tests passed!",
            "a\nb",
        ] {
            assert!(!weak(re), "{re}");
        }
        // 8 patterns with literal starts share one regex; the weak one gets its own.
        let mut res: Vec<String> = (0..GROUP_SIZE).map(|i| format!("pattern{i}x")).collect();
        res.push(r"-+\[ cut here \]".into());
        let refs: Vec<&str> = res.iter().map(String::as_str).collect();
        let s = Screen::new(&pats(&refs));
        assert!(matches!(&s.mode, Mode::Groups(g) if g.len() == 2));
        let text = b"a-b\n--[ cut here ]\npattern7x\n";
        assert_eq!(hit_line(&s, text, 0), Some("--[ cut here ]"));
        assert_eq!(hit_line(&s, text, 4), Some("--[ cut here ]"));
        assert_eq!(hit_line(&s, text, 19), Some("pattern7x"));
    }

    #[test]
    fn no_patterns_never_hit() {
        let s = Screen::new(&[]);
        assert_eq!(s.next_hit(b"anything", 0), None);
    }
}
