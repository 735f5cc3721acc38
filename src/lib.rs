//! qemu-test-action: boot-test hypervisors and kernels in QEMU and judge their serial console.
//!
//! The pipeline flows one way: inputs are planned into cases, each case is prepared, booted and
//! judged, and every stage emits [`report::Event`]s that reporters turn into terminal output,
//! files and GitHub workflow commands. Stages never call reporters directly.

pub mod arch;
pub mod board;
pub mod build;
pub mod check;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod console;
pub mod duration;
pub mod environment;
pub mod error;
pub mod host;
pub mod http;
pub mod image;
pub mod magic;
pub mod plan;
pub mod postmortem;
pub mod prepare;
pub mod profile;
pub mod qemu;
pub mod report;
pub mod run;
pub mod shell;
pub mod verdict;

pub use error::{Error, ErrorKind, Location};
