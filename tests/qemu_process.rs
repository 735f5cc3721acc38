//! End-to-end with a misbehaving emulator: a fake `qemu-system-aarch64` shell script first on
//! PATH. QEMU's end is its process's exit, not its stdout closing, and whatever it leaves
//! behind (in its group or `setsid`'d away) is killed and reaped.

pub mod common;

use std::time::{Duration, Instant};

use common::{BAREMETAL_CONFIG, Scratch, text};

#[test]
fn a_qemu_whose_forked_child_holds_the_console_ends_at_its_own_exit() {
    let mut s = Scratch::new();
    // The child's command line names the scratch dir, so Scratch::run's leak check sees it.
    let child = s.write(
        "child.sh",
        "while :; do echo child-noise; sleep 0.05; done\n",
    );
    s.fake_qemu(&format!(
        "setsid sh {} &\nsh {} &\necho booting\nexit 0",
        child.display(),
        child.display()
    ));
    // A real aarch64 kernel, so planning accepts it; the fake QEMU never reads it.
    let started = Instant::now();
    let out = s.run_baremetal("hello", BAREMETAL_CONFIG, &["--timeout", "60s"]);
    let took = started.elapsed();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        took < Duration::from_secs(30),
        "waited for the pipe, not the process: {took:?}"
    );
    let v = s.verdict();
    assert_eq!(v["outcome"], "fail", "{v}");
    let reason = v["reason"].as_str().unwrap();
    assert!(
        reason.contains("QEMU exited with status 0 before any success pattern matched"),
        "{reason}"
    );
    assert_eq!(v["qemu_exit"]["code"], 0);
    assert_eq!(v["qemu_exit"]["killed_by_runner"], false);
}
