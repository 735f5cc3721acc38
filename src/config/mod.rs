//! User configuration files: the ostool-compatible QEMU TOML (and, later, board and VM configs).

pub mod field;
pub mod grammar;
pub mod host_http;
pub mod qemu;
pub mod source;
pub mod vars;

pub use grammar::PatternSpec;
pub use qemu::{ArgSpec, QemuConfig, Warning};
