//! `check --log` streams the log through the judge in bounded memory, like `run`, and says
//! that a replay has no QEMU exit to judge. Alone in its file: the peak RSS of the child is
//! read with `getrusage(RUSAGE_CHILDREN)`, which covers every child this test process waited for.

pub mod common;

use std::io::Write;

use common::{Scratch, text};

#[test]
fn a_big_log_is_replayed_in_bounded_memory_and_ends_without_a_qemu_exit() {
    let s = Scratch::new();
    let cfg = s.write("qemu.toml", "args = [\"-nographic\"]\n");
    let path = s.path().join("big.log");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let line = b"[    1.000000] a long and boring line of console noise, nothing decides here\n";
    let size = 64 * 1024 * 1024;
    let mut written = 0;
    while written < size {
        f.write_all(line).unwrap();
        written += line.len();
    }
    f.flush().unwrap();
    drop(f);
    let out = s.run(&[
        "check",
        "--qemu-config",
        cfg.to_str().unwrap(),
        "--log",
        path.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("replayed {written} bytes")),
        "{stdout}"
    );
    assert!(
        stdout.contains("verdict: timeout — the log ended with nothing left to wait for"),
        "{stdout}"
    );
    assert!(
        stdout.contains("a replay has no QEMU exit to judge"),
        "{stdout}"
    );
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we own.
    assert_eq!(
        unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) },
        0
    );
    let peak_kib = usage.ru_maxrss as usize;
    assert!(
        peak_kib < 40 * 1024,
        "check --log held {peak_kib} KiB for a {} MiB log",
        size >> 20
    );
}
