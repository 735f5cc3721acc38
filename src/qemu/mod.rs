//! Running QEMU: assembling the command line and owning the process group.

pub mod command;
pub mod firmware;
pub mod gdb;
pub mod options;
pub mod process;
pub mod qmp;
pub mod version;

pub use command::{CommandRequest, QemuCommand};
