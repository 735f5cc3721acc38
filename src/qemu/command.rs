//! The QEMU command line, assembled as ostool does (axvisor.md §1.4) plus what the runner needs
//! to own the console.
//!
//! STUB: owned by the config helper; replaced by the real implementation.

use std::path::{Path, PathBuf};

use crate::arch::Arch;
use crate::config::QemuConfig;
use crate::error::Error;

/// Everything needed to assemble a QEMU command line.
#[derive(Debug, Clone)]
pub struct CommandRequest<'a> {
    pub config: &'a QemuConfig,
    pub arch: Arch,
    /// The file to pass to `-kernel` (the flat binary when `to_bin`).
    pub kernel: &'a Path,
    /// Value of `${workspaceFolder}`.
    pub workspace: &'a Path,
    /// UEFI firmware to use when the config says `uefi = true` (`None` = look in Debian's paths).
    pub firmware: Option<&'a Path>,
}

/// A complete QEMU invocation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct QemuCommand {
    /// Program name or path (`qemu-system-aarch64`).
    pub program: String,
    pub args: Vec<String>,
    /// What the runner added or changed and why, one sentence each.
    pub notes: Vec<String>,
}

impl QemuCommand {
    /// Assembles the command line.
    pub fn build(req: &CommandRequest<'_>) -> Result<QemuCommand, Error> {
        let mut args: Vec<String> = req.config.args.iter().map(|a| a.value.clone()).collect();
        args.push("-kernel".into());
        args.push(req.kernel.to_string_lossy().into_owned());
        Ok(QemuCommand {
            program: req.arch.qemu_binary(),
            args,
            notes: Vec::new(),
        })
    }

    /// The command as one shell-quoted line, copy-pasteable into a terminal.
    pub fn display(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Resolves the program on `PATH`.
    pub fn resolve_program(&self) -> Option<PathBuf> {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .map(|d| d.join(&self.program))
            .find(|p| p.is_file())
    }
}
