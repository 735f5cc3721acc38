//! Boards booted through U-Boot (issue #11). Today: ostool's U-Boot config and tgoskits' board
//! run configs, read unmodified and checked ([`uboot`]). Running a board (serial console, power
//! commands, TFTP/loady) is not implemented yet.

pub mod uboot;

pub use uboot::{NetConfig, Setting, UbootConfig};
