//! Profiles: choosing KVM or TCG for a case (or skipping/failing it, with the reason) and
//! rewriting its QEMU arguments to match.
//!
//! The per-architecture profiles are TOML data (`configs/profiles/<arch>.toml`, embedded) that a
//! user can override with a file of the same shape. [`choose`] decides from a
//! [`crate::host::HostProbe`]; [`rewrite_args`] applies the decision to the arguments.

use std::fmt;

use serde::Serialize;

mod choose;
mod data;
pub mod hypervisor;
mod rewrite;

pub use choose::{AccelRequest, Policy, ProfileDecision, Requirement, choose, choose_with_cpu};
pub use data::{AccelProfile, MachineRule, Profile, Profiles, RuleAction};
pub use rewrite::rewrite_args;

/// The accelerator a case runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    /// QEMU's name (`-accel <name>`).
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

impl fmt::Display for Accel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests;
