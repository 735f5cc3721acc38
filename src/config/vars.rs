//! `${workspaceFolder}` and `${env:NAME}` substitution in QEMU arguments and paths.
//!
//! STUB: owned by the config helper; replaced by the real implementation.

use std::path::Path;

use crate::error::{Error, Location};

/// Replaces `${workspaceFolder}` with `workspace` and `${env:NAME}` with the variable's value.
/// An unset `NAME` is a config error naming the variable and `location`.
pub fn substitute(
    text: &str,
    workspace: &Path,
    location: Option<&Location>,
) -> Result<String, Error> {
    let _ = location;
    Ok(text.replace("${workspaceFolder}", &workspace.to_string_lossy()))
}
