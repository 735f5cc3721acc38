//! Per-case inputs as layers that overlay one another: command-line flags (or the action's
//! inputs, see `action::inputs::parse`) over a suite case over the suite's defaults. Every field is optional; an empty list means "not given".

use std::path::PathBuf;
use std::time::Duration;

use crate::arch::Arch;
use crate::error::Location;

/// One layer of per-case inputs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaseInputs {
    pub name: Option<String>,
    pub kernel: Option<PathBuf>,
    pub qemu_config: Option<PathBuf>,
    pub build_config: Option<PathBuf>,
    /// Directory of the `Cargo.toml` whose package `build_config` builds (default: the
    /// workspace root); set by test-suit discovery (`os/axvisor`).
    pub package_dir: Option<PathBuf>,
    pub vmconfigs: Vec<PathBuf>,
    pub image: Option<String>,
    pub registry: Option<String>,
    pub build_command: Option<String>,
    pub artifact: Option<PathBuf>,
    pub arch: Option<Arch>,
    pub accel: Option<String>,
    pub requires: Vec<String>,
    pub on_unsupported: Option<String>,
    pub timeout: Option<Duration>,
    pub success_regex: Vec<String>,
    pub fail_regex: Vec<String>,
    pub workspace: Option<PathBuf>,
    pub firmware: Option<PathBuf>,
    /// `runs-on` for the matrix (a label or a list of labels), kept as JSON.
    pub runner: Option<serde_json::Value>,
    /// Console grammar keys given in a suite case or `[defaults]`.
    pub grammar: crate::config::grammar::GrammarSpec,
    /// `--retries N`.
    pub retries: Option<u32>,
    /// Where this layer was defined (a suite case), for messages.
    pub location: Option<Location>,
}

macro_rules! overlay_fields {
    ($top:ident, $low:ident; opt: $($o:ident),*; list: $($l:ident),*; grammar: $g:ident) => {
        CaseInputs {
            $g: $top.$g.over(&$low.$g),
            $($o: $top.$o.clone().or_else(|| $low.$o.clone()),)*
            $($l: if $top.$l.is_empty() { $low.$l.clone() } else { $top.$l.clone() },)*
        }
    };
}

impl CaseInputs {
    /// `self` over `lower`: each field of `self` wins when given.
    pub fn over(&self, lower: &CaseInputs) -> CaseInputs {
        overlay_fields!(self, lower;
            opt: name, retries, kernel, qemu_config, build_config, package_dir, image, registry, build_command,
                 artifact, arch, accel, on_unsupported, timeout, workspace, firmware, runner,
                 location;
            list: vmconfigs, requires, success_regex, fail_regex;
            grammar: grammar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_layer_wins_and_empty_lists_fall_through() {
        let low = CaseInputs {
            timeout: Some(Duration::from_secs(9)),
            success_regex: vec!["low".into()],
            fail_regex: vec!["f".into()],
            ..Default::default()
        };
        let top = CaseInputs {
            timeout: Some(Duration::from_secs(1)),
            success_regex: vec!["top".into()],
            ..Default::default()
        };
        let m = top.over(&low);
        assert_eq!(m.timeout, Some(Duration::from_secs(1)));
        assert_eq!(m.success_regex, vec!["top"]);
        assert_eq!(m.fail_regex, vec!["f"]);
    }
}
