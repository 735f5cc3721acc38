//! Where the integration tests find the real guests built by `fixtures/build.sh`, and the QEMU
//! configs they boot with.
//!
//! A missing fixture is a test failure with the command that builds it, never a silent skip: a
//! skipped boot test would hide exactly the regressions these tests exist for.

use std::path::{Path, PathBuf};

/// Environment variable naming another fixtures directory (e.g. a CI cache), so tests and
/// `fixtures/build.sh OUTDIR` can agree on a location outside the checkout.
const FIXTURES_ENV: &str = "QEMU_TEST_FIXTURES";

/// Root of the built fixtures: `$QEMU_TEST_FIXTURES` when set and non-empty, else
/// `<crate>/target/fixtures`, which is where `fixtures/build.sh` writes by default.
fn fixtures_dir() -> PathBuf {
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

/// The QEMU config used for the aarch64 bare-metal guests (AxVisor's machine, small memory).
pub const BAREMETAL_CONFIG: &str = r#"
args = ["-nographic", "-cpu", "cortex-a72", "-machine", "virt,virtualization=on,gic-version=3", "-m", "128M"]
success_regex = ["Hello, world!", "usertests passed!"]
fail_regex = ["panicked at"]
to_bin = false
uefi = false
"#;

/// Only the machine of [`BAREMETAL_CONFIG`] (no patterns), for tests that add their own keys.
pub const BAREMETAL_MACHINE: &str = r#"args = ["-nographic", "-cpu", "cortex-a72", "-machine", "virt,virtualization=on,gic-version=3", "-m", "128M"]
"#;

/// Boot-time baselines: the `prompt` guest (`aarch64-baremetal/prompt`) waits at `>> ` until
/// `usertests` is typed, then prints `usertests passed!` and powers off. Typed at the default
/// pace the milestone `usertests done` comes a few ms after the prompt; with [`TYPED_SLOWLY`]
/// it cannot come before the last of the 10 bytes arrives, 9 × 400 ms = 3.6 s after the first.
/// So the slowdown is the guest waiting for our input — deterministic, and no test sleeps.
pub const TYPED_USERTESTS: &str = r#"success_regex = ["usertests passed!"]
[[steps]]
expect = ">> "
send = "usertests\n"
[[milestones]]
name = "prompt"
pattern = ">> "
[[milestones]]
name = "usertests done"
pattern = "usertests passed!"
"#;

/// Put before [`TYPED_USERTESTS`]: one byte at a time, 400 ms apart.
pub const TYPED_SLOWLY: &str = "send_chunk = 1\nsend_delay = \"400ms\"\n";
