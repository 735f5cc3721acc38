//! Producing the kernel to boot: AxVisor's board config, the cargo build (or a user command, or
//! a prebuilt file), ELF inspection and ELF → flat binary.

pub mod axbuild;
pub mod axbuild_link;
pub mod board;
pub mod cargo;
pub mod elf;
pub mod exec;
pub mod format;
pub mod kallsyms;
pub mod recipe;

pub use exec::run_build;
pub use recipe::{Artifact, BuildCommand, GeneratedFile, PostStep, Recipe};
