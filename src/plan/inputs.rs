//! Per-case inputs as layers that overlay one another: command-line flags over `INPUT_*`
//! environment variables (set by the composite action) over a suite case over the suite's
//! defaults. Every field is optional; an empty list means "not given".

use std::path::PathBuf;
use std::time::Duration;

use crate::arch::Arch;
use crate::error::{Error, Location};

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

    /// The layer given by `INPUT_*` variables (what action.yml passes through `env:`).
    /// Empty values count as not given; lists are split on newlines (and commas for names).
    pub fn from_env() -> Result<CaseInputs, Error> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// [`CaseInputs::from_env`] over any variable source (testable).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<CaseInputs, Error> {
        let one = |k: &str| {
            get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let lines = |k: &str| -> Vec<String> {
            get(k)
                .unwrap_or_default()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect()
        };
        let words = |k: &str| -> Vec<String> {
            lines(k)
                .iter()
                .flat_map(|l| l.split(',').map(|w| w.trim().to_string()))
                .filter(|w| !w.is_empty())
                .collect()
        };
        let bad = |k: &str, e: String| Error::usage(format!("input {k}: {e}"));
        Ok(CaseInputs {
            name: None,
            kernel: one("INPUT_KERNEL").map(PathBuf::from),
            qemu_config: one("INPUT_QEMU_CONFIG").map(PathBuf::from),
            build_config: one("INPUT_BUILD_CONFIG").map(PathBuf::from),
            package_dir: None,
            vmconfigs: lines("INPUT_VMCONFIGS")
                .into_iter()
                .map(PathBuf::from)
                .collect(),
            image: one("INPUT_IMAGE"),
            registry: one("INPUT_REGISTRY"),
            build_command: one("INPUT_BUILD_COMMAND"),
            artifact: one("INPUT_ARTIFACT").map(PathBuf::from),
            arch: one("INPUT_ARCH")
                .map(|a| a.parse().map_err(|e| bad("INPUT_ARCH", e)))
                .transpose()?,
            accel: one("INPUT_ACCEL"),
            requires: words("INPUT_REQUIRES"),
            on_unsupported: one("INPUT_ON_UNSUPPORTED"),
            timeout: one("INPUT_TIMEOUT")
                .map(|t| super::duration::parse(&t).map_err(|e| bad("INPUT_TIMEOUT", e)))
                .transpose()?,
            success_regex: lines("INPUT_SUCCESS_REGEX"),
            fail_regex: lines("INPUT_FAIL_REGEX"),
            workspace: one("INPUT_WORKING_DIRECTORY").map(PathBuf::from),
            firmware: one("INPUT_FIRMWARE").map(PathBuf::from),
            runner: None,
            grammar: Default::default(),
            retries: one("INPUT_RETRIES")
                .map(|t| {
                    let max = crate::config::grammar::MAX_RETRIES;
                    t.trim().parse().ok().filter(|n| *n <= max).ok_or_else(|| {
                        bad(
                            "INPUT_RETRIES",
                            format!("'{t}' is not a number in 0..={max}"),
                        )
                    })
                })
                .transpose()?,
            location: None,
        })
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

    #[test]
    fn env_layer_ignores_empty_inputs_and_splits_lists() {
        let env = |k: &str| match k {
            "INPUT_TIMEOUT" => Some("90s".to_string()),
            "INPUT_KERNEL" => Some("".to_string()),
            "INPUT_SUCCESS_REGEX" => Some("a b\n\n c \n".to_string()),
            "INPUT_REQUIRES" => Some("kvm, vmx".to_string()),
            _ => None,
        };
        let i = CaseInputs::from_lookup(env).unwrap();
        assert_eq!(i.timeout, Some(Duration::from_secs(90)));
        assert_eq!(i.kernel, None);
        assert_eq!(i.success_regex, vec!["a b", "c"]);
        assert_eq!(i.requires, vec!["kvm", "vmx"]);
        let e = CaseInputs::from_lookup(|k| (k == "INPUT_TIMEOUT").then(|| "soon".into()));
        assert!(e.unwrap_err().message.contains("INPUT_TIMEOUT"));
    }
}
