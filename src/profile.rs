//! Profiles: choosing KVM or TCG for a case (or skipping/failing it, with the reason) and
//! rewriting its QEMU arguments to match.
//!
//! The per-architecture profiles are TOML data (`configs/profiles/<arch>.toml`, embedded) that a
//! user can override with a file of the same shape. [`choose`] decides from a
//! [`crate::host::HostProbe`]; [`rewrite_args`] applies the decision to the arguments.

mod choose;
mod data;
pub mod hypervisor;
mod rewrite;

pub use choose::{
    Accel, AccelRequest, Policy, ProfileDecision, Requirement, choose, choose_with_cpu,
};
pub use data::{AccelProfile, MachineRule, Profile, Profiles, RuleAction};
pub use rewrite::rewrite_args;

#[cfg(test)]
mod tests;
