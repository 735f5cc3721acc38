//! Boards booted through U-Boot (issue #11): the parts a board run is made of. The run itself
//! (the board as another machine behind the console loop) is `run::board`.
//!
//! - [`uboot`]: ostool's U-Boot config and tgoskits' board run configs, read unmodified;
//! - [`serial`]: the serial console, opened exclusively (locked for the run);
//! - [`power`]: the power commands, each with its own deadline;
//! - [`stages`]: U-Boot's conversation as a state machine (stages, deadlines, reasons);
//! - [`load`]: how the files reach U-Boot (TFTP served or copied, `loady`) and how it boots them;
//! - [`tftp`]: the TFTP server a run starts.
//! - [`ymodem`]: the YMODEM sender for U-Boot's `loady` (no network).

pub mod load;
pub mod power;
pub mod serial;
pub mod stages;
pub mod tftp;
pub mod uboot;
pub mod ymodem;

pub use uboot::{NetConfig, Setting, UbootConfig};
