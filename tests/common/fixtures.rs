//! Where the integration tests find the real guests built by `fixtures/build.sh`.
//!
//! A missing fixture is a test failure with the command that builds it, never a silent skip: a
//! skipped boot test would hide exactly the regressions these tests exist for.

// Each test binary includes this module and uses only part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Environment variable naming another fixtures directory (e.g. a CI cache), so tests and
/// `fixtures/build.sh OUTDIR` can agree on a location outside the checkout.
pub const FIXTURES_ENV: &str = "QEMU_TEST_FIXTURES";

/// Root of the built fixtures: `$QEMU_TEST_FIXTURES` when set and non-empty, else
/// `<crate>/target/fixtures`, which is where `fixtures/build.sh` writes by default.
pub fn fixtures_dir() -> PathBuf {
    match std::env::var_os(FIXTURES_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join("fixtures"),
    }
}

/// Path of one fixture, relative to [`fixtures_dir`] (e.g. `"aarch64-baremetal/hello.elf"`).
///
/// Panics when it does not exist, naming the file and the command that builds it.
pub fn fixture(rel: &str) -> PathBuf {
    let dir = fixtures_dir();
    let path = dir.join(rel);
    if !path.exists() {
        let build = match std::env::var_os(FIXTURES_ENV) {
            Some(d) if !d.is_empty() => format!("fixtures/build.sh {}", dir.display()),
            _ => "fixtures/build.sh".to_owned(),
        };
        panic!(
            "fixture {rel} missing ({}): run {build} (host packages: scripts/install-deps.sh)",
            path.display()
        );
    }
    path
}
