//! Per-case inputs as layers that overlay one another: command-line flags (or the action's
//! inputs, see `cmd::inputs::parse`) over a suite case over the suite's defaults. Every field is optional; an empty list means "not given".

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
    /// ostool's U-Boot config: the case boots on a board (`board`).
    pub uboot_config: Option<PathBuf>,
    pub build_config: Option<PathBuf>,
    /// Directory of the `Cargo.toml` whose package `build_config` builds (default: the
    /// workspace root); set by test-suit discovery (`os/axvisor`).
    pub package_dir: Option<PathBuf>,
    pub vmconfigs: Vec<PathBuf>,
    pub image: Option<String>,
    /// More images from the same registry whose rootfs files the QEMU config names as further
    /// disks (StarryOS' `rootfs-<arch>-busybox.img` beside alpine); set by test-suit discovery.
    pub extra_images: Vec<String>,
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
    /// `self` over `lower`: each field of `self` wins when given. Where the kernel comes from is
    /// one choice, made by the highest layer that names a source (`build_config`,
    /// `build_command` or `kernel`): a `kernel` over a suite's board config boots that kernel
    /// without building, a `build_command` over it runs the command.
    pub fn over(&self, lower: &CaseInputs) -> CaseInputs {
        let mut merged = overlay_fields!(self, lower;
            opt: name, retries, kernel, qemu_config, uboot_config, build_config, package_dir, image, registry, build_command,
                 artifact, arch, accel, on_unsupported, timeout, workspace, firmware, runner,
                 location;
            list: vmconfigs, extra_images, requires, success_regex, fail_regex;
            grammar: grammar);
        if self.names_kernel_source() {
            merged.kernel = self.kernel.clone();
            merged.build_config = self.build_config.clone();
            merged.build_command = self.build_command.clone();
        }
        merged
    }

    fn names_kernel_source(&self) -> bool {
        self.kernel.is_some() || self.build_config.is_some() || self.build_command.is_some()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

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
    fn the_highest_layer_naming_a_kernel_source_chooses_it() {
        let suite = CaseInputs {
            build_config: Some("board.toml".into()),
            vmconfigs: vec!["vm.toml".into()],
            artifact: Some("out/kernel".into()),
            ..Default::default()
        };
        let prebuilt = CaseInputs {
            kernel: Some("prebuilt.elf".into()),
            ..Default::default()
        };
        let m = prebuilt.over(&suite);
        assert_eq!(
            (m.kernel.as_deref(), m.build_config.as_deref()),
            (Some(Path::new("prebuilt.elf")), None)
        );
        let command = CaseInputs {
            build_command: Some("make".into()),
            ..Default::default()
        };
        let m = command.over(&suite);
        assert_eq!(m.build_config, None);
        assert_eq!(m.build_command.as_deref(), Some("make"));
        assert_eq!(m.artifact.as_deref(), Some(Path::new("out/kernel")));
        // A layer naming none keeps the lower one's source.
        let m = CaseInputs::default().over(&suite);
        assert_eq!(m.build_config.as_deref(), Some(Path::new("board.toml")));
        let m = suite.over(&prebuilt);
        assert_eq!(
            (m.kernel.as_deref(), m.build_config.as_deref()),
            (None, Some(Path::new("board.toml")))
        );
    }
}
