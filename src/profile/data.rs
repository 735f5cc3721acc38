//! Profiles as data: the built-in TOML files under `configs/profiles/` (embedded, so users can
//! read them in the repository and override them), plus an optional user file with the same
//! tables whose fields replace the built-in ones.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_spanned::Spanned;

use crate::arch::Arch;
use crate::error::{Error, Location};

use super::Accel;

/// The embedded built-in profiles, one file per architecture.
const BUILTIN: &[(&str, &str)] = &[
    (
        "configs/profiles/x86_64.toml",
        include_str!("../../configs/profiles/x86_64.toml"),
    ),
    (
        "configs/profiles/i386.toml",
        include_str!("../../configs/profiles/i386.toml"),
    ),
    (
        "configs/profiles/aarch64.toml",
        include_str!("../../configs/profiles/aarch64.toml"),
    ),
    (
        "configs/profiles/arm.toml",
        include_str!("../../configs/profiles/arm.toml"),
    ),
    (
        "configs/profiles/riscv64.toml",
        include_str!("../../configs/profiles/riscv64.toml"),
    ),
    (
        "configs/profiles/riscv32.toml",
        include_str!("../../configs/profiles/riscv32.toml"),
    ),
    (
        "configs/profiles/loongarch64.toml",
        include_str!("../../configs/profiles/loongarch64.toml"),
    ),
];

/// How QEMU arguments look under one accelerator for one guest architecture.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccelProfile {
    /// The one `-accel` value (e.g. `kvm`, `tcg`, or with options `tcg,thread=single`).
    pub accel: String,
    /// The CPU model for this accelerator; `None` keeps the user's.
    pub cpu: Option<String>,
    /// `-cpu` models this accelerator cannot run, replaced by `cpu`; `*` = all but `cpu`.
    pub replace_cpus: Vec<String>,
    /// Add `-cpu <cpu>` when the arguments name none.
    pub cpu_if_absent: bool,
    /// Why `cpu` is the right model (shown in notes).
    pub why: String,
    /// Rules for `-machine` properties.
    pub machine: Vec<MachineRule>,
}

/// A rule for one `-machine` property under an accelerator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineRule {
    pub prop: String,
    /// Applies only when the property has this value (`None` = any value).
    pub value: Option<String>,
    pub action: RuleAction,
    pub why: String,
}

/// What a [`MachineRule`] does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleAction {
    /// Add `prop=<value>` when the property is absent.
    Default(String),
    /// Replace the (matching) value.
    Replace(String),
    /// Remove the (matching) property.
    Remove,
    /// Keep it, but tell the user this message.
    Warn(String),
}

/// The KVM and TCG profiles of one guest architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub arch: Arch,
    pub kvm: AccelProfile,
    pub tcg: AccelProfile,
}

impl Profile {
    /// The profile for the chosen accelerator.
    pub fn for_accel(&self, accel: Accel) -> &AccelProfile {
        match accel {
            Accel::Kvm => &self.kvm,
            Accel::Tcg => &self.tcg,
        }
    }
}

/// Every architecture's profile: the built-ins, possibly overridden by a user file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profiles {
    profiles: Vec<Profile>,
}

impl Profiles {
    /// The built-in profiles embedded from `configs/profiles/`.
    pub fn builtin() -> Profiles {
        let mut profiles = Profiles {
            profiles: Arch::ALL
                .iter()
                .map(|&arch| Profile {
                    arch,
                    kvm: AccelProfile {
                        accel: "kvm".to_string(),
                        ..AccelProfile::default()
                    },
                    tcg: AccelProfile {
                        accel: "tcg".to_string(),
                        ..AccelProfile::default()
                    },
                })
                .collect(),
        };
        for (path, text) in BUILTIN {
            // The built-in files are ours and covered by a unit test; a failure is a build bug.
            profiles
                .overlay(Path::new(path), text)
                .unwrap_or_else(|e| panic!("built-in profile {path} is invalid: {e}"));
        }
        profiles
    }

    /// The built-ins with the fields that the TOML file at `path` sets replaced (`--profiles`).
    pub fn with_overrides(path: &Path) -> Result<Profiles, Error> {
        let text = crate::config::source::read_input(path, "profiles file")?;
        let mut profiles = Profiles::builtin();
        profiles.overlay(path, &text)?;
        Ok(profiles)
    }

    /// The profile of `arch` (every architecture has one).
    pub fn get(&self, arch: Arch) -> &Profile {
        self.profiles
            .iter()
            .find(|p| p.arch == arch)
            .unwrap_or_else(|| unreachable!("Profiles holds every Arch"))
    }

    fn profile_mut(&mut self, arch: Arch) -> &mut Profile {
        self.profiles
            .iter_mut()
            .find(|p| p.arch == arch)
            .unwrap_or_else(|| unreachable!("Profiles holds every Arch"))
    }

    /// Applies the tables of `text` (read from `path`, used in messages) on top of these.
    pub fn overlay(&mut self, path: &Path, text: &str) -> Result<(), Error> {
        let file: BTreeMap<Spanned<String>, RawArch> =
            toml_edit::de::from_str(text).map_err(|e| toml_error(path, text, &e))?;
        for (key, raw) in file {
            let arch: Arch = key.get_ref().parse().map_err(|msg: String| {
                Error::config(format!(
                    "unknown architecture table [{}]: {msg}",
                    key.get_ref()
                ))
                .at(location(path, text, key.span().start))
                .help("name tables after QEMU architectures, e.g. [x86_64.tcg] or [aarch64.kvm]")
            })?;
            let profile = self.profile_mut(arch);
            if let Some(kvm) = raw.kvm {
                apply(&mut profile.kvm, Accel::Kvm, kvm, path, text)?;
            }
            if let Some(tcg) = raw.tcg {
                apply(&mut profile.tcg, Accel::Tcg, tcg, path, text)?;
            }
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArch {
    kvm: Option<Spanned<RawAccel>>,
    tcg: Option<Spanned<RawAccel>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccel {
    accel: Option<Spanned<String>>,
    cpu: Option<String>,
    replace_cpus: Option<Vec<String>>,
    cpu_if_absent: Option<bool>,
    why: Option<String>,
    machine: Option<Vec<Spanned<RawRule>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    prop: String,
    value: Option<String>,
    default: Option<String>,
    replace: Option<String>,
    remove: Option<bool>,
    warn: Option<String>,
    why: Option<String>,
}

fn apply(
    target: &mut AccelProfile,
    accel: Accel,
    raw: Spanned<RawAccel>,
    path: &Path,
    text: &str,
) -> Result<(), Error> {
    let span = raw.span();
    let raw = raw.into_inner();
    if let Some(value) = raw.accel {
        let name = value.get_ref().split(',').next().unwrap_or_default();
        if name != accel.name() {
            return Err(Error::config(format!(
                "accel = \"{}\" in a [{}] profile: it must start with \"{}\"",
                value.get_ref(),
                accel.name(),
                accel.name()
            ))
            .at(location(path, text, value.span().start))
            .help(format!(
                "write accel = \"{}\" (options may follow after a comma)",
                accel.name()
            )));
        }
        target.accel = value.into_inner();
    }
    if raw.cpu.is_some() {
        target.cpu = raw.cpu;
    }
    if let Some(list) = raw.replace_cpus {
        target.replace_cpus = list;
    }
    if let Some(flag) = raw.cpu_if_absent {
        target.cpu_if_absent = flag;
    }
    if let Some(why) = raw.why {
        target.why = why;
    }
    if let Some(rules) = raw.machine {
        target.machine = rules
            .into_iter()
            .map(|r| rule(r, path, text))
            .collect::<Result<_, _>>()?;
    }
    if target.cpu.is_none() && (target.cpu_if_absent || !target.replace_cpus.is_empty()) {
        return Err(Error::config(format!(
            "the [{}] profile replaces or adds a CPU model but names none",
            accel.name()
        ))
        .at(location(path, text, span.start))
        .help("set cpu = \"<model>\", or cpu_if_absent = false and replace_cpus = []"));
    }
    Ok(())
}

fn rule(raw: Spanned<RawRule>, path: &Path, text: &str) -> Result<MachineRule, Error> {
    let span = raw.span();
    let r = raw.into_inner();
    let mut actions = Vec::new();
    actions.extend(r.default.map(RuleAction::Default));
    actions.extend(r.replace.map(RuleAction::Replace));
    actions.extend(
        r.remove
            .filter(|&remove| remove)
            .map(|_| RuleAction::Remove),
    );
    actions.extend(r.warn.map(RuleAction::Warn));
    if actions.len() != 1 {
        return Err(Error::config(format!(
            "machine rule for `{}` has {} actions; it needs exactly one",
            r.prop,
            actions.len()
        ))
        .at(location(path, text, span.start))
        .help("give one of: default = \"…\", replace = \"…\", remove = true, warn = \"…\""));
    }
    Ok(MachineRule {
        prop: r.prop,
        value: r.value,
        action: actions.remove(0),
        why: r.why.unwrap_or_default(),
    })
}

fn toml_error(path: &Path, text: &str, err: &toml_edit::de::Error) -> Error {
    let e = Error::config(format!("invalid profiles file: {}", err.message().trim()))
        .help("see configs/profiles/x86_64.toml in the qemu-test repository for the format");
    match err.span() {
        Some(span) => e.at(location(path, text, span.start)),
        None => e,
    }
}

/// Line and column (from 1, in characters) of byte `offset` in `text`.
fn location(path: &Path, text: &str, offset: usize) -> Location {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    Location {
        path: path.to_path_buf(),
        line,
        column,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_architecture_has_valid_builtin_profiles() {
        let all = Profiles::builtin();
        for arch in Arch::ALL {
            let p = all.get(arch);
            assert_eq!(p.kvm.accel, "kvm", "{arch}");
            assert_eq!(p.tcg.accel, "tcg", "{arch}");
            assert!(
                p.tcg.cpu.is_some(),
                "{arch}: TCG needs a model to replace `host` with"
            );
            assert!(!p.tcg.why.is_empty(), "{arch}");
            assert!(p.tcg.replace_cpus.contains(&"host".to_string()), "{arch}");
        }
        let x86 = all.get(Arch::X86_64);
        assert_eq!(x86.kvm.cpu.as_deref(), Some("host"));
        assert_eq!(x86.tcg.cpu.as_deref(), Some("max"));
        let arm64 = all.get(Arch::Aarch64);
        assert_eq!(arm64.kvm.replace_cpus, vec!["*".to_string()]);
        assert_eq!(
            arm64.kvm.machine[0].action,
            RuleAction::Default("host".to_string())
        );
        assert!(matches!(arm64.kvm.machine[1].action, RuleAction::Warn(_)));
        assert_eq!(arm64.tcg.machine[0].value.as_deref(), Some("host"));
    }

    #[test]
    fn a_user_file_overrides_single_fields() {
        let mut all = Profiles::builtin();
        let text = "[x86_64.tcg]\ncpu = \"Skylake-Client\"\n\n[aarch64.kvm]\nmachine = []\n";
        all.overlay(Path::new("mine.toml"), text).unwrap();
        let x86 = all.get(Arch::X86_64);
        assert_eq!(x86.tcg.cpu.as_deref(), Some("Skylake-Client"));
        assert_eq!(
            x86.tcg.replace_cpus,
            vec!["host".to_string()],
            "untouched fields keep the built-in"
        );
        assert!(all.get(Arch::Aarch64).kvm.machine.is_empty());
    }

    fn overlay_error(text: &str) -> Error {
        Profiles::builtin()
            .overlay(Path::new("p.toml"), text)
            .unwrap_err()
    }

    #[test]
    fn bad_files_name_the_place_and_the_fix() {
        let e = overlay_error("[x86_64.tcg]\ncpu = \"max\"\n\n[sparc.tcg]\ncpu = \"x\"\n");
        assert_eq!(
            e.location.as_ref().map(|l| (l.line, l.column)),
            Some((4, 2)),
            "{e}"
        );
        assert!(
            e.message.contains("unknown architecture") && e.help.is_some(),
            "{e}"
        );

        let e = overlay_error("[x86_64.tcg]\naccel = \"kvm\"\n");
        assert_eq!(
            e.location.as_ref().map(|l| (l.line, l.column)),
            Some((2, 9)),
            "{e}"
        );
        assert!(e.message.contains("must start with \"tcg\""), "{e}");

        let e = overlay_error("[x86_64.tcg]\ncpus = \"max\"\n");
        assert_eq!(e.location.as_ref().map(|l| l.line), Some(2), "{e}");
        assert!(e.message.contains("cpus"), "{e}");

        let e = overlay_error(
            "[[aarch64.tcg.machine]]\nprop = \"gic-version\"\nreplace = \"3\"\nremove = true\n",
        );
        assert!(e.message.contains("2 actions"), "{e}");
        assert_eq!(e.location.as_ref().map(|l| l.line), Some(1), "{e}");

        let e = overlay_error("[loongarch64.kvm]\ncpu_if_absent = true\n");
        assert!(e.message.contains("names none"), "{e}");
        assert_eq!(e.kind, crate::error::ErrorKind::Config);
    }

    #[test]
    fn a_missing_override_file_is_a_usage_error() {
        let e = Profiles::with_overrides(Path::new("/nonexistent/profiles.toml")).unwrap_err();
        assert_eq!(e.kind, crate::error::ErrorKind::Usage);
    }
}
