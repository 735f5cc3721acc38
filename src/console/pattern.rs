//! Compiling user patterns, with errors that say which pattern failed, where it was written and
//! how to fix it.
//!
//! Patterns use the `regex` crate's syntax on bytes with Unicode enabled, matched against one
//! cleaned console line at a time (so `^` is the start of a line and `$` its end, or the end of
//! what has arrived so far for the line still being printed). The crate guarantees linear-time
//! matching, which is why it has no look-around and no backreferences: such patterns are refused
//! here with a suggested rewrite rather than failing obscurely later.

use std::time::Duration;

use regex_syntax::ast::ErrorKind as AstErrorKind;
use regex_syntax::hir::Hir;

use crate::config::PatternSpec;
use crate::error::{Error, Location};

/// Whether a match decided success or failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PatternKind {
    Success,
    Fail,
}

/// Which pattern matched, on which console line, and when.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MatchInfo {
    pub kind: PatternKind,
    /// Index into the success or fail list.
    pub index: usize,
    /// The pattern as the user wrote it.
    pub pattern: String,
    /// Where the pattern was written (`None` = command line).
    #[serde(skip)]
    pub location: Option<Location>,
    /// 1-based console line number.
    pub line_no: u64,
    /// The cleaned console line (bounded in length).
    pub line: String,
    /// Time since the judge started (QEMU launch) when the match became final.
    pub at: Duration,
}

/// A compiled console pattern plus the text and place it came from.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub spec: PatternSpec,
    pub regex: regex::bytes::Regex,
}

impl Pattern {
    /// Patterns from regexes written nowhere in particular (unit tests).
    #[cfg(test)]
    pub(crate) fn list(regexes: &[&str]) -> Vec<Pattern> {
        regexes
            .iter()
            .map(|r| {
                let spec = PatternSpec {
                    regex: r.to_string(),
                    location: None,
                };
                Pattern::compile(&spec, "test").expect("valid pattern")
            })
            .collect()
    }

    /// Compiles `spec`; `role` ("success", "fail") is used in the error message.
    pub fn compile(spec: &PatternSpec, role: &str) -> Result<Pattern, Error> {
        let hir = parse(spec, role)?;
        if hir.properties().minimum_len() == Some(0) {
            return Err(matches_empty(spec, role));
        }
        let regex = regex::bytes::RegexBuilder::new(&spec.regex)
            .build()
            .map_err(|e| invalid(spec, role, &e.to_string(), "simplify the pattern"))?;
        Ok(Pattern {
            spec: spec.clone(),
            regex,
        })
    }
}

/// Parses the pattern as the `regex` crate will, turning a syntax error into a config error.
fn parse(spec: &PatternSpec, role: &str) -> Result<Hir, Error> {
    if spec.regex.is_empty() {
        return Err(located(
            Error::config(format!(
                "empty {role} pattern: it would match every console line"
            ))
            .help("write the text to look for, or remove the entry"),
            spec,
        ));
    }
    parser()
        .parse(&spec.regex)
        .map_err(|e| syntax_error(spec, role, &e))
}

/// A parser with the syntax options of `regex::bytes` (Unicode on, may match invalid UTF-8).
pub(crate) fn parser() -> regex_syntax::Parser {
    regex_syntax::ParserBuilder::new().utf8(false).build()
}

fn syntax_error(spec: &PatternSpec, role: &str, err: &regex_syntax::Error) -> Error {
    let kind = match err {
        regex_syntax::Error::Parse(ast) => Some(ast.kind()),
        _ => None,
    };
    // A `${…}` is no regex (`$` then a repetition): ostool 0.24 substitutes variables in its
    // patterns, we do not, so say that instead of the parser's words.
    if let Some(var) = spec
        .regex
        .find("${")
        .and_then(|at| Some(&spec.regex[at..at + spec.regex[at..].find('}')? + 1]))
    {
        return invalid(
            spec,
            role,
            &format!(
                "`{var}` is a variable, which is not substituted in patterns here (ostool \
                 substitutes its variables in success_regex and fail_regex, and `$` then `{{` is \
                 no regex)"
            ),
            "write the text itself, with `$`, `{`, `.` escaped (`\\$\\{` matches the \
             characters `${`)",
        );
    }
    match kind {
        Some(AstErrorKind::UnsupportedLookAround) => invalid(
            spec,
            role,
            "look-around ((?=…), (?!…), (?<=…), (?<!…)) is not supported by the regex crate, \
             which guarantees linear-time matching",
            "rewrite without look-around: match the text itself (e.g. `error: [^0]` instead of \
             `error: (?!0)`), or put what must not appear in a fail pattern",
        ),
        Some(AstErrorKind::UnsupportedBackreference) => invalid(
            spec,
            role,
            "backreferences (\\1, \\k<name>) are not supported by the regex crate, which \
             guarantees linear-time matching",
            "spell out the repeated text, or match it with a class such as `(\\w+)` in both places",
        ),
        _ => invalid(
            spec,
            role,
            &err.to_string(),
            "fix the pattern's syntax (see https://docs.rs/regex/latest/regex/#syntax); escape \
             literal characters such as . ( [ with a backslash",
        ),
    }
}

fn matches_empty(spec: &PatternSpec, role: &str) -> Error {
    located(
        Error::config(format!(
            "{role} pattern '{}' can match an empty string, so it would match every console line",
            spec.regex
        ))
        .help("make the pattern require some text (e.g. `foo+` instead of `foo*`)"),
        spec,
    )
}

fn invalid(spec: &PatternSpec, role: &str, why: &str, help: &str) -> Error {
    let sep = if why.contains('\n') { ":\n" } else { ": " };
    located(
        Error::config(format!("invalid {role} pattern '{}'{sep}{why}", spec.regex)).help(help),
        spec,
    )
}

fn located(err: Error, spec: &PatternSpec) -> Error {
    match &spec.location {
        Some(loc) => err.at(loc.clone()),
        None => err,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ErrorKind, Location};

    fn spec(re: &str) -> PatternSpec {
        PatternSpec {
            regex: re.to_string(),
            location: Some(Location {
                path: "qemu-aarch64.toml".into(),
                line: 7,
                column: 18,
            }),
        }
    }

    fn error(re: &str) -> Error {
        match Pattern::compile(&spec(re), "fail") {
            Ok(_) => panic!("pattern {re:?} compiled"),
            Err(e) => e,
        }
    }

    #[test]
    fn compiles_and_keeps_the_spec() {
        let p = Pattern::compile(&spec(r"panicked at \S+"), "fail").expect("valid");
        assert_eq!(p.spec, spec(r"panicked at \S+"));
        assert!(p.regex.is_match(b"panicked at src/main.rs"));
    }

    #[test]
    fn matches_invalid_utf8_and_unicode() {
        let p = Pattern::compile(&spec(r"(?-u:\xff)ok|é+"), "success").expect("valid");
        assert!(p.regex.is_match(b"\xffok"));
        assert!(p.regex.is_match("café".as_bytes()));
    }

    #[test]
    fn look_around_is_explained() {
        for re in [r"foo(?=bar)", r"(?<!x)panic", r"a(?!b)"] {
            let e = error(re);
            assert_eq!(e.kind, ErrorKind::Config);
            assert!(e.message.contains("look-around"), "{e}");
            assert!(e.message.contains("regex crate"), "{e}");
            assert!(e.message.contains(re), "{e}");
            assert!(e.message.contains("invalid fail pattern"), "{e}");
            assert_eq!(e.location, spec(re).location);
            assert!(e.help.as_deref().is_some_and(|h| h.contains("rewrite")));
        }
    }

    #[test]
    fn backreference_is_explained() {
        let e = error(r"(\w+) \1");
        assert!(e.message.contains("backreferences"), "{e}");
        assert!(e.message.contains("regex crate"), "{e}");
    }

    #[test]
    fn syntax_error_carries_regex_message() {
        let e = error(r"VM\[1\] boot (success");
        assert!(e.message.contains("unclosed group"), "{e}");
        assert!(
            e.to_string()
                .starts_with("qemu-aarch64.toml:7:18: invalid fail pattern")
        );
    }

    /// ostool's variables in a pattern (`${workspace}/ok`) are named as such, not as the
    /// parser's "repetition quantifier" error; an escaped `\$\{` is an ordinary pattern.
    #[test]
    fn a_variable_in_a_pattern_is_named() {
        let e = error("${workspace}/ok");
        assert_eq!(
            e.message,
            "invalid fail pattern '${workspace}/ok': `${workspace}` is a variable, which is not \
             substituted in patterns here (ostool substitutes its variables in success_regex and \
             fail_regex, and `$` then `{` is no regex)"
        );
        assert!(Pattern::compile(&spec(r"cost \$\{x\}"), "fail").is_ok());
    }

    #[test]
    fn empty_and_empty_matching_patterns_are_refused() {
        assert!(error("").message.contains("empty fail pattern"));
        for re in ["x*", "^", "(?:abc)?", "^$"] {
            assert!(error(re).message.contains("empty string"), "{re}");
        }
    }
}
