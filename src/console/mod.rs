//! The console judge: cleans the raw serial stream (ANSI escapes, CR, invalid UTF-8), splits it
//! into lines including the unfinished one, and matches fail and success patterns.

pub mod clean;
pub mod matcher;
pub mod pattern;

pub use matcher::{Decision, Judge, JudgeOptions, MatchInfo, PatternKind};
pub use pattern::Pattern;
