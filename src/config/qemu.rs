//! The QEMU TOML, read exactly as ostool 0.8 reads it (`args`, `uefi`, `to_bin`, `success_regex`,
//! `fail_regex`), with defaults for missing keys and a warning for unknown ones.
//!
//! STUB: owned by the config helper; replaced by the real implementation.

use std::path::{Path, PathBuf};

use crate::error::{Error, Location};

/// One QEMU argument and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgSpec {
    pub value: String,
    pub location: Option<Location>,
}

/// One console pattern as written by the user (not yet compiled) and where it came from
/// (`None` = command line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternSpec {
    pub regex: String,
    pub location: Option<Location>,
}

/// A non-fatal finding about a config file (an unknown key, say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub location: Location,
    pub message: String,
}

/// A parsed QEMU TOML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuConfig {
    pub path: PathBuf,
    pub args: Vec<ArgSpec>,
    pub uefi: bool,
    pub to_bin: bool,
    pub success_regex: Vec<PatternSpec>,
    pub fail_regex: Vec<PatternSpec>,
    /// Our extension: add `-no-reboot` (default true) so a reset ends QEMU instead of looping.
    pub no_reboot: bool,
    pub warnings: Vec<Warning>,
}

impl QemuConfig {
    /// Reads and parses a QEMU TOML file.
    pub fn load(path: &Path) -> Result<QemuConfig, Error> {
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::input_io(path, "QEMU config", &e))?;
        Self::parse(path, &text)
    }

    /// Parses QEMU TOML text; `path` is used in messages only.
    pub fn parse(path: &Path, text: &str) -> Result<QemuConfig, Error> {
        let _ = text;
        Err(Error::config(format!(
            "{}: QEMU config parser not implemented yet",
            path.display()
        )))
    }
}
