//! A case's judge from what the user wrote: its patterns (each with the place it was written),
//! its grammar and its deadline. One rule, used by `run` ([`super::plan_case`]) and by `check`
//! (which lints and replays logs through the judge a boot would use).

use std::time::Duration;

use super::{DEFAULT_TIMEOUT, SUCCESS_SETTLE};
use crate::config::PatternSpec;
use crate::config::grammar::GrammarSpec;
use crate::console::{Judge, JudgeOptions, Pattern, Script};
use crate::error::{Error, Location};

/// What the judge of a case is built from.
#[derive(Debug, Clone, Copy)]
pub struct JudgeSource<'a> {
    /// The success patterns chosen by [`patterns`].
    pub success: &'a [PatternSpec],
    /// The fail patterns chosen by [`patterns`].
    pub fail: &'a [PatternSpec],
    /// Where a config file wrote `fail_regex` explicitly (`[]` then means none, not the
    /// built-in default set).
    pub fail_written_at: Option<&'a Location>,
    /// The grammar, layered (suite case over `[defaults]` over the config file).
    pub grammar: &'a GrammarSpec,
    /// A deadline given outside the grammar (`--timeout`, a suite case's `timeout`).
    pub timeout: Option<Duration>,
}

/// A case's judge, compiled: what a boot ([`crate::plan::Case::judge`]) and a replay in
/// `check` watch the console with.
#[derive(Debug, Clone)]
pub struct JudgeSpec {
    pub success: Vec<Pattern>,
    /// The chosen fail patterns, then the named fail sets' (`fail_sets`), then the built-in
    /// default set when nothing names any.
    pub fail: Vec<Pattern>,
    /// The built-in default fail set is in use.
    pub default_fail: bool,
    pub script: Script,
    /// The boot's deadline.
    pub timeout: Duration,
    pub options: JudgeOptions,
}

impl JudgeSpec {
    /// A fresh judge for one boot (or one replay) of the console.
    pub fn judge(&self) -> Judge {
        Judge::new(
            self.success.clone(),
            self.fail.clone(),
            self.options.clone(),
        )
        .with_script(self.script.clone())
    }
}

/// The patterns of one kind: those given as text (the command line, a suite case, written at
/// `at`) replace the config file's list of that kind.
pub fn patterns(given: &[String], at: Option<&Location>, file: &[PatternSpec]) -> Vec<PatternSpec> {
    if given.is_empty() {
        return file.to_vec();
    }
    given
        .iter()
        .map(|r| PatternSpec {
            regex: r.clone(),
            location: at.cloned(),
        })
        .collect()
}

/// Builds the judge of one case; an error names the pattern and where it was written.
pub fn judge_spec(src: &JudgeSource<'_>) -> Result<JudgeSpec, Error> {
    let success = compile(src.success, "success")?;
    let mut fail = compile(src.fail, "fail")?;
    fail.extend(compile(
        &crate::console::sets::expand(&src.grammar.fail_sets)?,
        "fail",
    )?);
    let explicit = src.fail_written_at.is_some() || !fail.is_empty();
    let (defaults, default_fail) = crate::console::sets::or_default(Vec::new(), explicit);
    fail.extend(compile(&defaults, "fail")?);
    let script = Script::compile(src.grammar, success.is_empty())?;
    Ok(JudgeSpec {
        success,
        fail,
        default_fail,
        script,
        timeout: src
            .timeout
            .or(src.grammar.timeout)
            .unwrap_or(DEFAULT_TIMEOUT),
        options: JudgeOptions {
            settle: SUCCESS_SETTLE,
            ..JudgeOptions::default()
        },
    })
}

fn compile(specs: &[PatternSpec], role: &str) -> Result<Vec<Pattern>, Error> {
    specs.iter().map(|s| Pattern::compile(s, role)).collect()
}
