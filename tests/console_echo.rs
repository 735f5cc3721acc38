//! The guest console echoed to a terminal is inert: the `noisy` fixture's screen clear, cursor
//! hiding and window title never reach the user's terminal (a real pseudo-terminal here), its
//! colours do, and the console log keeps every byte as the guest sent it.

pub mod common;

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;

use common::fixtures::fixture;
use common::{BAREMETAL_CONFIG, Scratch};

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A pseudo-terminal pair: (master, slave).
fn openpty() -> (OwnedFd, OwnedFd) {
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty writes two new descriptors into the given ints; the rest may be null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors are fresh and owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

#[test]
fn control_sequences_never_reach_the_terminal_but_stay_in_the_log() {
    let s = Scratch::new();
    let cfg = s.write("qemu.toml", BAREMETAL_CONFIG);
    let kernel = fixture("aarch64-baremetal/noisy.elf");
    let (master, slave) = openpty();
    let mut child = s
        .cmd(&[
            "run",
            "--kernel",
            kernel.to_str().unwrap(),
            "--qemu-config",
            cfg.to_str().unwrap(),
            "--timeout",
            "30s",
        ])
        .env_remove("NO_COLOR")
        .stdout(Stdio::from(slave))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read the terminal until the child (the only holder of the slave side) has gone: then the
    // master reads EIO.
    let mut master = std::fs::File::from(master);
    let mut screen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => screen.extend_from_slice(&buf[..n]),
        }
    }
    let status = child.wait().unwrap();
    common::assert_no_qemu_left(s.path());
    assert_eq!(
        status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&screen)
    );

    assert!(contains(&screen, b"screen cleared"), "{screen:?}");
    for seq in [
        &b"\x1b[2J"[..],
        b"\x1b[?25l",
        b"\x1b]0;",
        b"guest title",
        b"\x07",
    ] {
        assert!(
            !contains(&screen, seq),
            "{seq:?} reached the terminal: {screen:?}"
        );
    }
    assert!(contains(&screen, b"\x1b[31mred text\x1b[0m"), "{screen:?}");

    let log = std::fs::read(s.out().join("noisy.log")).unwrap();
    assert!(
        contains(
            &log,
            b"\x1b[2J\x1b[?25l\x1b]0;guest title\x07screen cleared\r\n"
        ),
        "{log:?}"
    );
}
