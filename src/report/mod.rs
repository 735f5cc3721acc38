//! Events and reporters. Stages emit [`Event`]s; reporters (terminal, JSON, and later GitHub
//! commands, summary, outputs, JUnit, check runs) turn them into output. Adding a reporter never
//! touches a stage.

pub mod baseline;
pub mod builder;
pub mod comparison;
pub mod dry_run;
pub mod echo;
pub mod gha;
pub mod json;
pub mod junit;
pub mod model;
pub mod terminal;

use std::path::Path;
use std::time::Duration;

use crate::console::MatchInfo;
use crate::error::{Error, Location};
use crate::qemu::QemuCommand;
pub use builder::CaseBuilder;
pub use model::{CaseResult, ImageRef, Stage, StageTiming};

/// Severity of a [`Event::Note`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warning,
}

/// Something that happened in the pipeline.
#[derive(Debug)]
pub enum Event<'a> {
    /// The plan is complete; these cases will run in this order.
    RunStarted {
        cases: &'a [String],
    },
    CaseStarted {
        case: &'a str,
    },
    StageStarted {
        case: &'a str,
        stage: Stage,
    },
    StageFinished {
        case: &'a str,
        stage: Stage,
        elapsed: Duration,
        ok: bool,
    },
    /// A message for the user, optionally about a place in a file.
    Note {
        case: Option<&'a str>,
        level: Level,
        message: &'a str,
        location: Option<&'a Location>,
    },
    /// QEMU is about to start with this command.
    QemuStarting {
        case: &'a str,
        command: &'a QemuCommand,
    },
    /// Raw bytes from the guest console, as received.
    Console {
        case: &'a str,
        bytes: &'a [u8],
    },
    /// Output of the build stage (cargo's rendered diagnostics, or the user's command).
    BuildOutput {
        case: &'a str,
        bytes: &'a [u8],
    },
    /// Raw bytes QEMU wrote to its stderr.
    QemuStderr {
        case: &'a str,
        bytes: &'a [u8],
    },
    /// A pattern matched and decided the verdict.
    Decided {
        case: &'a str,
        info: &'a MatchInfo,
    },
    /// An error stopped a case (or the whole run when `case` is `None`).
    Failed {
        case: Option<&'a str>,
        error: &'a Error,
    },
    CaseFinished {
        result: &'a CaseResult,
    },
    /// Every case ended: the results, and what `run::run_all` decided from them — the exit
    /// code and the worst outcome (the run's one `verdict`); reporters never re-rank.
    RunFinished {
        results: &'a [CaseResult],
        exit_code: i32,
        outcome: crate::verdict::Outcome,
    },
    /// `--dry-run`: what running the planned cases would do (each with its build recipe, or
    /// why none can be made), and the cases that cannot be planned here.
    DryRun {
        cases: &'a [crate::plan::Case],
        builds: &'a [Result<crate::build::Recipe, Error>],
        unplanned: &'a [Error],
    },
    /// Publishing the check runs (after `RunFinished`) went wrong; the verdict stands.
    ChecksWarning {
        message: &'a str,
    },
}

/// A consumer of events.
pub trait Reporter {
    fn event(&mut self, event: &Event<'_>);

    /// Called once at the end (also on cancel) so files can be flushed.
    fn finish(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

/// The set of active reporters; stages share one and emit into it. Cases running concurrently
/// on the one runtime thread emit through a shared reference; an emit never awaits, so the
/// interior borrow never overlaps another.
#[derive(Default)]
pub struct Reporters {
    list: std::cell::RefCell<Vec<Box<dyn Reporter>>>,
}

impl Reporters {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, reporter: Box<dyn Reporter>) {
        self.list.get_mut().push(reporter);
    }

    pub fn emit(&self, event: Event<'_>) {
        for r in self.list.borrow_mut().iter_mut() {
            r.event(&event);
        }
    }

    /// Flushes every reporter; returns the first error after trying all.
    pub fn finish(&self) -> Result<(), Error> {
        let mut first = None;
        for r in self.list.borrow_mut().iter_mut() {
            if let Err(e) = r.finish() {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

/// The one rule for repository-relative paths (annotations, links, JUnit): `path` relative to the workspace (relative paths are first resolved from `cwd`); `None`
/// when it lies outside, where GitHub would drop or misplace the annotation.
pub(crate) fn repo_path(path: &Path, workspace: Option<&Path>, cwd: &Path) -> Option<String> {
    let Some(ws) = workspace else {
        return path
            .is_relative()
            .then(|| path.to_string_lossy().trim_start_matches("./").to_string());
    };
    let abs = cwd.join(path);
    let rel = abs.strip_prefix(ws).ok()?;
    if rel.as_os_str().is_empty() || rel.components().any(|c| c.as_os_str() == "..") {
        return None;
    }
    Some(rel.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_paths() {
        let ws = Some(Path::new("/ws"));
        let cwd = Path::new("/ws/sub");
        assert_eq!(
            repo_path(Path::new("a.toml"), ws, cwd).as_deref(),
            Some("sub/a.toml")
        );
        assert_eq!(repo_path(Path::new("../../x"), ws, cwd), None);
        assert_eq!(repo_path(Path::new("/etc/x"), ws, cwd), None);
        assert_eq!(repo_path(Path::new("./b"), None, cwd).as_deref(), Some("b"));
        assert_eq!(repo_path(Path::new("/b"), None, cwd), None);
        assert_eq!(repo_path(Path::new("/ws"), ws, cwd), None);
        assert_eq!(
            repo_path(Path::new("/ws/configs/a.toml"), ws, Path::new("/")).as_deref(),
            Some("configs/a.toml")
        );
    }
}
