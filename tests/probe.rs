//! The real probe on this machine: KVM present with a working API but unable to run guests
//! (emulated), no VMX, and QEMU for aarch64 and x86_64 installed.

use qemu_test_action::host::{self, ProbeOptions, Status};

#[test]
fn real_probe_prints() {
    let probe = host::probe(&ProbeOptions::default());
    println!("{}", probe.render());
    println!("{}", serde_json::to_string_pretty(&probe).unwrap());
}
