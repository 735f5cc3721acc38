//! The composite action's own steps, in the binary rather than in shell (`qemu-test action …`):
//! only obtaining the binary and setting up the host stay in `scripts/action/`. Each step reads
//! the same `INPUT_*` variables through [`inputs`], so the action and `qemu-test run` share one
//! rule per input.

pub mod build_cache;
pub mod images;
pub mod inputs;
pub mod prepare;

use std::path::Path;

use crate::error::Error;

/// Writes `outputs` to `$GITHUB_OUTPUT` when it is set, and prints them as `name=value` lines
/// (multi-line values indented) to stderr for the log.
pub fn emit(vars: &impl inputs::Lookup, outputs: &[(&'static str, String)]) -> Result<(), Error> {
    for (k, v) in outputs {
        eprintln!("qemu-test-action: {k}={}", v.replace('\n', "\n    "));
    }
    match vars.get("GITHUB_OUTPUT").filter(|p| !p.is_empty()) {
        Some(p) => crate::report::gha::outputs::write_outputs(Path::new(&p), outputs),
        None => Ok(()),
    }
}
