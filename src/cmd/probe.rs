//! `qemu-test probe`: the host probe, with what each QEMU says about its default CPU, as text
//! or JSON.

use crate::error::exit;
use crate::host::{ProbeOptions, Severity};

/// `qemu-test probe [--json]`: prints the probe; exit 3 when nothing can run (no QEMU at all).
pub fn probe(json: bool) -> i32 {
    let mut probe = crate::host::probe(&ProbeOptions::default());
    crate::profile::hypervisor::ask_defaults(&mut probe);
    if json {
        match serde_json::to_string_pretty(&probe) {
            Ok(text) => println!("{text}"),
            Err(err) => {
                eprintln!("error: cannot serialise the probe: {err}");
                return exit::INFRA;
            }
        }
    } else {
        print!("{}", probe.render());
    }
    if probe.findings.iter().any(|f| f.severity == Severity::Error) {
        exit::INFRA
    } else {
        exit::PASS
    }
}
