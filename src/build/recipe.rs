//! A build recipe: what the build stage will do, decided before anything runs — a command (cargo
//! or the user's) and where its kernel will be, or a prebuilt kernel. Printable for `--dry-run`.

use std::path::{Path, PathBuf};

/// A command to run in a directory with extra environment variables.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BuildCommand {
    /// Looked up on `PATH`.
    pub program: String,
    /// Arguments, unquoted.
    pub args: Vec<String>,
    /// Set on top of the inherited environment, in this order.
    pub env: Vec<(String, String)>,
    /// Removed from the inherited environment (a variable whose mere presence changes the
    /// build, such as an empty `AXVISOR_VM_CONFIGS`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unset: Vec<String>,
    /// The workspace: its `rust-toolchain.toml` and `.cargo/config.toml` apply.
    pub cwd: PathBuf,
}

/// Where the kernel is once the command succeeded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Artifact {
    /// The executable cargo reports (JSON `compiler-artifact`) for this bin target.
    CargoBin(String),
    /// A file the command writes (relative paths are from the command's directory).
    File(PathBuf),
}

/// The build stage of a case: how its kernel is produced.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Recipe {
    /// `None` when the kernel is prebuilt.
    pub command: Option<BuildCommand>,
    /// Where the kernel is afterwards.
    pub artifact: Artifact,
    /// Files the build stage writes (under the out dir) before it runs the command.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub generated: Vec<GeneratedFile>,
    /// What the build takes from the host or reproduces only in part (shown by `--dry-run` as
    /// `# build note:` and by a run before the build).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// What is done to the kernel after the command built it, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub post: Vec<PostStep>,
}

/// A step on the built kernel before it is booted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PostStep {
    /// StarryOS' symbol table written into the ELF's `.kallsyms` section (see
    /// [`crate::build::kallsyms`]).
    Kallsyms,
}

impl PostStep {
    /// What the step does, for `--dry-run` (`# build then:`).
    pub fn describe(self) -> &'static str {
        match self {
            PostStep::Kallsyms => {
                "the kernel's symbol table into its .kallsyms section, as axbuild does \
                 (rust-nm -n <elf> | gen_ksym, padded to the section, rust-objcopy \
                 --update-section .kallsyms=<table> <elf>)"
            }
        }
    }
}

/// A file a build needs that the build stage writes first (axbuild's `--config` file, linker
/// wrapper and empty libraries), always below the run's out dir.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GeneratedFile {
    /// Absolute, under the out dir.
    pub path: PathBuf,
    /// Its whole text.
    pub contents: String,
    /// Mode 0755 instead of 0644.
    pub executable: bool,
    /// What it is for (shown by `--dry-run`).
    pub purpose: String,
}

impl Recipe {
    /// A kernel the user built already (`--kernel FILE`): nothing to run.
    pub fn prebuilt(kernel: &Path) -> Recipe {
        Recipe {
            command: None,
            artifact: Artifact::File(kernel.to_path_buf()),
            generated: Vec::new(),
            notes: Vec::new(),
            post: Vec::new(),
        }
    }

    /// The user's own build (`--build-command CMD`), run by `sh -c` in `cwd` with `env`, that
    /// must leave the kernel at `artifact`.
    pub fn shell(command: &str, artifact: &Path, cwd: &Path, env: Vec<(String, String)>) -> Recipe {
        Recipe {
            command: Some(BuildCommand {
                program: "sh".into(),
                args: vec!["-c".into(), command.into()],
                env,
                unset: Vec::new(),
                cwd: cwd.to_path_buf(),
            }),
            artifact: Artifact::File(cwd.join(artifact)),
            generated: Vec::new(),
            notes: Vec::new(),
            post: Vec::new(),
        }
    }

    /// The recipe as shell text a user can paste (`cd DIR && [env -u NAME …] K=V … program
    /// args…`), or the
    /// prebuilt kernel's path.
    pub fn display(&self) -> String {
        let Some(cmd) = &self.command else {
            return match &self.artifact {
                Artifact::File(p) => format!("(prebuilt) {}", p.display()),
                Artifact::CargoBin(b) => format!("(prebuilt) {b}"),
            };
        };
        let mut words = vec![
            "cd".to_string(),
            crate::shell::quote(&cmd.cwd.to_string_lossy()),
            "&&".to_string(),
        ];
        if !cmd.unset.is_empty() {
            words.push("env".into());
            for name in &cmd.unset {
                words.extend(["-u".to_string(), crate::shell::quote(name)]);
            }
        }
        words.extend(
            cmd.env
                .iter()
                .map(|(k, v)| format!("{k}={}", crate::shell::quote(v))),
        );
        words.push(crate::shell::quote(&cmd.program));
        words.extend(cmd.args.iter().map(|a| crate::shell::quote(a)));
        words.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_only_what_needs_it() {
        let recipe = Recipe::shell(
            "make kernel && echo 'ok'",
            Path::new("out/kernel.elf"),
            Path::new("/src/my kernel"),
            vec![("AX_LOG".into(), "info".into())],
        );
        assert_eq!(
            recipe.display(),
            r"cd '/src/my kernel' && AX_LOG=info sh -c 'make kernel && echo '\''ok'\'''"
        );
        assert_eq!(
            recipe.artifact,
            Artifact::File(PathBuf::from("/src/my kernel/out/kernel.elf"))
        );
        assert_eq!(
            Recipe::prebuilt(Path::new("/k.elf")).display(),
            "(prebuilt) /k.elf"
        );
    }
}
