//! Lints: concrete, defensible findings about a console grammar that compiles but cannot work
//! as written. Each finding names the place (file:line:col) and the fix.

use std::time::Duration;

use regex_syntax::hir::{Hir, HirKind, Look};

use crate::config::PatternSpec;
use crate::config::grammar::GrammarSpec;
use crate::config::qemu::Warning;
use crate::console::pattern::parser;
use crate::error::Location;

/// What the lints look at: the patterns and grammar of one case, before compiling.
pub struct LintInput<'a> {
    pub success: &'a [PatternSpec],
    /// Fail patterns, built-in sets included.
    pub fail: &'a [PatternSpec],
    /// Whether `fail` is the built-in default set (the config names no fail patterns).
    pub default_fail: bool,
    pub grammar: &'a GrammarSpec,
    pub timeout: Duration,
    /// Where the case is defined (the QEMU TOML, or the suite case), for findings about
    /// something missing.
    pub origin: Option<&'a Location>,
}

/// Every finding, in file order of the lints.
pub fn lint(input: &LintInput<'_>) -> Vec<Warning> {
    let mut out = Vec::new();
    send_without_newline(input, &mut out);
    anchored_after_prompt(input, &mut out);
    matches_own_echo(input, &mut out);
    unreachable_success(input, &mut out);
    deadlines(input, &mut out);
    no_fail_patterns(input, &mut out);
    out
}

fn warn(out: &mut Vec<Warning>, p: &PatternSpec, message: String) {
    if let Some(location) = &p.location {
        out.push(Warning {
            location: location.clone(),
            message,
        });
    }
}

fn regex(p: &PatternSpec) -> Option<regex::bytes::Regex> {
    regex::bytes::Regex::new(&p.regex).ok()
}

/// A `send` without a newline is typed but never entered: the shell waits for Enter.
fn send_without_newline(input: &LintInput<'_>, out: &mut Vec<Warning>) {
    for s in &input.grammar.steps {
        if let Some(text) = &s.send
            && !text.ends_with(['\n', '\r'])
        {
            warn(
                out,
                &s.expect,
                format!(
                    "this step sends '{text}' without a newline, so the guest shell never runs \
                     it; write send = \"{text}\\n\""
                ),
            );
        }
    }
}

/// After a step that matched a prompt (no newline) and typed nothing, the next text continues
/// the prompt's line, where a `^`-anchored expect cannot match.
fn anchored_after_prompt(input: &LintInput<'_>, out: &mut Vec<Warning>) {
    for pair in input.grammar.steps.windows(2) {
        let (prev, next) = (&pair[0], &pair[1]);
        if prev.send.is_none() && can_end_mid_line(&prev.expect) && starts_anchored(&next.expect) {
            warn(
                out,
                &next.expect,
                format!(
                    "'{}' is anchored with ^ but follows '{}', which matches on an unfinished line \
                     (a prompt): the text after it continues that line, where ^ cannot match; drop \
                     the ^ or end the previous expect with $",
                    next.expect.regex, prev.expect.regex
                ),
            );
        }
    }
}

/// Linux ttys echo typed input: an expect after a send that matches the sent text matches the
/// echo, not the guest's answer.
fn matches_own_echo(input: &LintInput<'_>, out: &mut Vec<Warning>) {
    let steps = &input.grammar.steps;
    for (i, s) in steps.iter().enumerate() {
        let Some(sent) = &s.send else { continue };
        let echo = sent.trim_end_matches(['\n', '\r']);
        let next: Vec<&PatternSpec> = match steps.get(i + 1) {
            Some(n) => vec![&n.expect],
            None => input.success.iter().collect(),
        };
        for p in next {
            if regex(p).is_some_and(|r| r.is_match(echo.as_bytes())) {
                warn(
                    out,
                    p,
                    format!(
                        "'{}' matches the echo of the typed '{echo}' (Linux ttys echo input), so it \
                         can match before the guest answers; match the answer's own text instead",
                        p.regex
                    ),
                );
            }
        }
    }
}

/// A success text (a plain literal) that a fail pattern also matches can never pass: on the
/// same line, fail wins.
fn unreachable_success(input: &LintInput<'_>, out: &mut Vec<Warning>) {
    let last_step = input.grammar.steps.last().map(|s| &s.expect);
    let successes = input.success.iter().chain(if input.success.is_empty() {
        last_step
    } else {
        None
    });
    for s in successes {
        let Some(text) = literal(&s.regex) else {
            continue;
        };
        if let Some(f) = input
            .fail
            .iter()
            .find(|f| regex(f).is_some_and(|r| r.is_match(text.as_bytes())))
        {
            warn(
                out,
                s,
                format!(
                    "success text '{text}' also matches fail pattern '{}'{}; fail wins on the same \
                     line, so the case can never pass",
                    f.regex,
                    f.location
                        .as_ref()
                        .map(|l| format!(" ({l})"))
                        .unwrap_or_default()
                ),
            );
        }
    }
}

/// Milestone deadlines must grow with their order, and no wait may outlast the boot timeout.
fn deadlines(input: &LintInput<'_>, out: &mut Vec<Warning>) {
    let fmt = crate::duration::format;
    let mut latest: Option<(&str, Duration)> = None;
    for m in &input.grammar.milestones {
        let Some(d) = m.deadline else { continue };
        if let Some((name, prev)) = latest
            && d < prev
        {
            warn(
                out,
                &m.pattern,
                format!(
                    "milestone '{}' comes after '{name}' but has an earlier deadline ({} < {}); \
                     milestones are reached in order, so it fails whenever '{name}' is late",
                    m.name,
                    fmt(d),
                    fmt(prev)
                ),
            );
        }
        if d > input.timeout {
            warn(
                out,
                &m.pattern,
                format!(
                    "milestone '{}' deadline {} is longer than the boot timeout {}",
                    m.name,
                    fmt(d),
                    fmt(input.timeout)
                ),
            );
        }
        latest = Some((&m.name, d));
    }
    for s in &input.grammar.steps {
        if let Some(t) = s.timeout
            && t > input.timeout
        {
            warn(
                out,
                &s.expect,
                format!(
                    "step timeout {} is longer than the boot timeout {}, which ends the boot first",
                    fmt(t),
                    fmt(input.timeout)
                ),
            );
        }
    }
}

/// Without fail patterns a panic is only caught by the built-in default set: say so, so the
/// user names the failures their guest prints.
fn no_fail_patterns(input: &LintInput<'_>, out: &mut Vec<Warning>) {
    let step_fails = input.grammar.steps.iter().any(|s| !s.fail.is_empty());
    // An explicit `fail_regex = []` has its own finding (see `check::verdict_rules`).
    if input.default_fail
        && !step_fails
        && let Some(origin) = input.origin
    {
        out.push(Warning {
            location: origin.clone(),
            message: "no fail patterns: the built-in default set applies; name the failures \
                      your guest prints with fail_regex or fail_sets (`fail_regex = []` keeps \
                      none)"
                .into(),
        });
    }
}

/// The text of a pattern that is a plain literal (no classes, repetition or anchors).
fn literal(re: &str) -> Option<String> {
    let hir = parser().parse(re).ok()?;
    let mut bytes = Vec::new();
    collect_literal(&hir, &mut bytes)?;
    String::from_utf8(bytes).ok()
}

fn collect_literal(hir: &Hir, out: &mut Vec<u8>) -> Option<()> {
    match hir.kind() {
        HirKind::Literal(l) => out.extend_from_slice(&l.0),
        HirKind::Concat(subs) => {
            for s in subs {
                collect_literal(s, out)?;
            }
        }
        HirKind::Capture(c) => collect_literal(&c.sub, out)?,
        _ => return None,
    }
    Some(())
}

/// Whether the pattern's first element is a line-start anchor.
fn starts_anchored(p: &PatternSpec) -> bool {
    let Ok(hir) = parser().parse(&p.regex) else {
        return false;
    };
    let first = match hir.kind() {
        HirKind::Concat(subs) => subs.first().cloned(),
        _ => Some(hir.clone()),
    };
    first.is_some_and(|h| {
        matches!(h.kind(), HirKind::Look(l) if matches!(l, Look::Start | Look::StartLF | Look::StartCRLF))
    })
}

/// Whether a match can end before the line does (no `$` at the end, no newline).
fn can_end_mid_line(p: &PatternSpec) -> bool {
    !(p.regex.ends_with('$') || p.regex.ends_with("\\n"))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::source::SourceText;

    fn grammar(text: &str) -> GrammarSpec {
        let src = SourceText::new(Path::new("g.toml"), text.to_string());
        let doc = toml_edit::Document::parse(text.to_string()).expect("toml");
        let mut g = GrammarSpec::default();
        for (k, item) in doc.iter() {
            g.read_key(k, item, &src).expect("valid");
        }
        g
    }

    fn spec(re: &str, line: usize) -> PatternSpec {
        PatternSpec {
            regex: re.into(),
            location: Some(crate::error::Location {
                path: "g.toml".into(),
                line,
                column: 1,
            }),
        }
    }

    fn findings(g: &GrammarSpec, success: &[PatternSpec], fail: &[PatternSpec]) -> Vec<String> {
        lint(&LintInput {
            success,
            fail,
            default_fail: fail.is_empty(),
            grammar: g,
            timeout: Duration::from_secs(60),
            origin: None,
        })
        .iter()
        .map(|w| w.to_string())
        .collect()
    }

    #[test]
    fn each_lint_fires_with_a_place_and_stays_quiet_on_good_input() {
        let good = grammar(
            "[[steps]]\nexpect = \">> \"\nsend = \"usertests\\n\"\n[[steps]]\nexpect = \"usertests passed!\"\n",
        );
        assert!(findings(&good, &[], &[spec("panicked at", 1)]).is_empty());

        let g = grammar(
            "[[steps]]\nexpect = \">> \"\nsend = \"usertests\"\n\
             [[steps]]\nexpect = \"usertests\"\n\
             [[steps]]\nexpect = \"^# \"\n",
        );
        let f = findings(&g, &[], &[]);
        assert!(
            f[0].starts_with("g.toml:2:10: warning: this step sends 'usertests' without a newline"),
            "{f:?}"
        );
        assert!(
            f.iter()
                .any(|m| m.starts_with("g.toml:7:10:") && m.contains("anchored with ^")),
            "{f:?}"
        );
        assert!(
            f.iter()
                .any(|m| m.starts_with("g.toml:5:10:") && m.contains("echo")),
            "{f:?}"
        );

        let f = findings(
            &GrammarSpec::default(),
            &[spec("test pass!", 3)],
            &[spec("pass", 4)],
        );
        assert!(f[0].starts_with("g.toml:3:1: warning: success text 'test pass!' also matches fail pattern 'pass' (g.toml:4:1)"), "{f:?}");

        let g = grammar(
            "[[milestones]]\nname = \"hv\"\npattern = \"a\"\ndeadline = \"20s\"\n\
             [[milestones]]\nname = \"guest\"\npattern = \"b\"\ndeadline = \"10s\"\n\
             [[milestones]]\nname = \"late\"\npattern = \"c\"\ndeadline = \"90s\"\n",
        );
        let f = findings(&g, &[], &[]);
        assert!(
            f[0].contains("'guest' comes after 'hv' but has an earlier deadline (10s < 20s)"),
            "{f:?}"
        );
        assert!(
            f[1].contains("'late' deadline 1m30s is longer than the boot timeout 1m"),
            "{f:?}"
        );
    }

    #[test]
    fn missing_fail_patterns_are_named() {
        let origin = crate::error::Location {
            path: "q.toml".into(),
            line: 1,
            column: 1,
        };
        let run = |g: &GrammarSpec, success: &[PatternSpec], fail: &[PatternSpec]| {
            lint(&LintInput {
                success,
                fail,
                default_fail: fail.is_empty(),
                grammar: g,
                timeout: Duration::from_secs(60),
                origin: Some(&origin),
            })
            .iter()
            .map(|w| w.to_string())
            .collect::<Vec<_>>()
        };
        let none = GrammarSpec::default();
        assert_eq!(
            run(&none, &[spec("Hello", 1)], &[]),
            [
                "q.toml:1:1: warning: no fail patterns: the built-in default set applies; name the \
              failures your guest prints with fail_regex or fail_sets (`fail_regex = []` keeps \
              none)"
            ]
        );
        assert!(run(&none, &[spec("Hello", 1)], &[spec("panic", 2)]).is_empty());
    }
}
