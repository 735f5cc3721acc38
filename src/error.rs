//! One error type for the whole pipeline, carrying the exit code class, the place in a user's
//! file when there is one, and the fix to suggest.

use std::fmt;
use std::path::PathBuf;

/// Exit codes, as documented in the README and `--help`.
pub mod exit {
    /// Every case passed (skips allowed by policy).
    pub const PASS: i32 = 0;
    /// At least one case failed or timed out.
    pub const FAIL: i32 = 1;
    /// Usage or configuration error: nothing ran.
    pub const USAGE: i32 = 2;
    /// Infrastructure error: QEMU missing, download failed, build failed.
    pub const INFRA: i32 = 3;
    /// Cancelled by SIGHUP (128 + 1).
    pub const SIGHUP: i32 = 129;
    /// Cancelled by SIGINT.
    pub const SIGINT: i32 = 130;
    /// Cancelled by SIGTERM.
    pub const SIGTERM: i32 = 143;
}

/// Which class of failure an [`Error`] is; it decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorKind {
    /// Bad command line.
    Usage,
    /// Bad configuration file or value.
    Config,
    /// The environment failed us: missing tool, I/O error, download or build failure.
    Infra,
}

/// A position in a user's file; lines and columns start at 1.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Location {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.path.display(), self.line, self.column)
    }
}

/// An error that tells the user what went wrong, where, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    pub location: Option<Location>,
    pub help: Option<String>,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            location: None,
            help: None,
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Usage, message)
    }

    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    pub fn infra(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Infra, message)
    }

    /// Attaches the file position the error is about.
    pub fn at(mut self, location: Location) -> Self {
        self.location = Some(location);
        self
    }

    /// Attaches a whole file as the place (line 1), when no finer position is known.
    pub fn at_file(self, path: &std::path::Path) -> Self {
        self.at(Location {
            path: path.to_path_buf(),
            line: 1,
            column: 1,
        })
    }

    /// Attaches the suggested fix.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// An I/O error on a named file, classed as infrastructure unless the file is the user's
    /// input (use [`Error::input_io`] for those).
    pub fn io(path: &std::path::Path, action: &str, err: &std::io::Error) -> Self {
        Self::infra(format!("cannot {action} {}: {err}", path.display()))
    }

    /// An I/O error reading a file the user named: a missing input is a usage error.
    pub fn input_io(path: &std::path::Path, what: &str, err: &std::io::Error) -> Self {
        let e = Self::usage(format!("cannot read {what} {}: {err}", path.display()));
        if err.kind() == std::io::ErrorKind::NotFound {
            e.help(format!("check the path of the {what}; relative paths are resolved from the current directory"))
        } else {
            e
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self.kind {
            ErrorKind::Usage | ErrorKind::Config => exit::USAGE,
            ErrorKind::Infra => exit::INFRA,
        }
    }

    /// Prints the error to stderr (`error: …`, with its location and help) and returns its
    /// exit code: how every command ends on an error.
    pub fn report(&self) -> i32 {
        eprintln!("error: {self}");
        self.exit_code()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(loc) = &self.location {
            write!(f, "{loc}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// Shorthand used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
