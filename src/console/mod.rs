//! The console judge: cleans the raw serial stream (ANSI escapes, CR, invalid UTF-8), splits it
//! into lines including the unfinished one, and matches fail and success patterns.
//!
//! Data flows one way: raw bytes → [`Cleaner`] → [`LineAssembler`] (numbered lines in bounded
//! memory) → [`Screen`] (one regex pass per batch) → per-line rules ([`Judge`]). The raw bytes
//! themselves go to the log untouched; only matching sees the cleaned text.

pub mod clean;
pub mod lines;
pub mod matcher;
pub mod pattern;
pub mod screen;
pub mod script;
pub mod sets;

pub use clean::Cleaner;
pub use lines::{Batch, Line, LineAssembler, LineCursor};
pub use matcher::{Decision, Judge, JudgeOptions};
pub use pattern::{MatchInfo, Pattern, PatternKind};
pub use screen::Screen;
pub use script::{ExtractedCase, Script, TimelineEntry, TimelineKind};
