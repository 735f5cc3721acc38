//! Compiling user patterns with errors that say which pattern failed and why.
//!
//! STUB: owned by the console helper; replaced by the real implementation.

use crate::config::PatternSpec;
use crate::error::Error;

/// A compiled console pattern plus the text and place it came from.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub spec: PatternSpec,
    pub regex: regex::bytes::Regex,
}

impl Pattern {
    /// Compiles `spec`; `role` ("success", "fail") is used in the error message.
    pub fn compile(spec: &PatternSpec, role: &str) -> Result<Pattern, Error> {
        let regex = regex::bytes::Regex::new(&spec.regex)
            .map_err(|e| Error::config(format!("invalid {role} pattern '{}': {e}", spec.regex)))?;
        Ok(Pattern {
            spec: spec.clone(),
            regex,
        })
    }
}
