//! The one helper module of the integration tests, by topic:
//!
//! - [`scratch`]: the real `qemu-test` binary run in a scratch directory, its results and files;
//! - [`processes`]: proof that no QEMU outlived a run;
//! - [`fixtures`]: where the fixture guests are, and the QEMU configs they boot with;
//! - [`fake_qemu`]: a misbehaving emulator first on PATH;
//! - [`gha`]: the environment GitHub Actions gives a step;
//! - [`capture`]: what a reporter wrote, read back;
//! - [`http_server`]: a real HTTP server on loopback with injectable faults;
//! - [`archives`]: test archives, hashes and registry text;
//! - [`images`]: the image tests' deadlines, registry, cache listing and progress recorder.
//!
//! Each test file declares it as `pub mod common;`. Cargo compiles it into every test binary,
//! and each uses only part of it; declared `pub`, its items count as the crate's interface
//! rather than as dead code (rust-lang/rust#46379), without an `allow(dead_code)` that would
//! also hide a helper no test uses.

pub mod archives;
pub mod capture;
pub mod fake_qemu;
pub mod fixtures;
pub mod gha;
pub mod http_server;
pub mod images;
pub mod processes;
pub mod scratch;

pub use fixtures::{BAREMETAL_CONFIG, BAREMETAL_MACHINE, TYPED_SLOWLY, TYPED_USERTESTS};
pub use processes::assert_no_qemu_left;
pub use scratch::{Scratch, text};
