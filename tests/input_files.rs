//! Config-like inputs (QEMU TOML, suite, registry, board config) are read only from regular
//! files of bounded size: a device, a directory, a FIFO or a huge file is refused at once with
//! exit 2 and a message naming the file, and nothing is written.

pub mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::fixtures::fixture;
use common::{Scratch, text};

/// Runs `qemu-test args` in `s`, giving up (and failing) after 30 s so a reader that blocks on a
/// FIFO fails the test instead of hanging it; returns stderr after asserting exit 2 and that
/// nothing was written.
fn refused(s: &Scratch, args: &[&str]) -> String {
    let before = s.tree();
    let mut child: std::process::Child = s
        .cmd(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn qemu-test");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("qemu-test {args:?} hung on its input");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert_eq!(s.tree(), before, "refused input wrote files");
    stderr
}

fn mkfifo(s: &Scratch, name: &str) -> String {
    let path = s.path().join(name);
    let ok = Command::new("mkfifo")
        .arg(&path)
        .status()
        .expect("run mkfifo")
        .success();
    assert!(ok, "mkfifo failed");
    path.display().to_string()
}

/// A sparse file just over the 16 MiB cap (no disk used).
fn huge(s: &Scratch, name: &str) -> String {
    let path = s.path().join(name);
    let f = std::fs::File::create(&path).unwrap();
    f.set_len((16 << 20) + 1).unwrap();
    path.display().to_string()
}

fn hello() -> String {
    fixture("aarch64-baremetal/hello.elf").display().to_string()
}

#[test]
fn a_device_as_qemu_config_is_refused_without_reading_it() {
    let s = Scratch::new();
    let e = refused(
        &s,
        &["run", "--kernel", &hello(), "--qemu-config", "/dev/zero"],
    );
    assert!(
        e.contains("QEMU config /dev/zero is a character device, not a regular file"),
        "{e}"
    );
    assert!(e.contains("help: pass the path of the file itself"), "{e}");
}

#[test]
fn a_directory_as_qemu_config_is_refused() {
    let s = Scratch::new();
    std::fs::create_dir(s.path().join("conf.d")).unwrap();
    let e = refused(
        &s,
        &["run", "--kernel", &hello(), "--qemu-config", "conf.d"],
    );
    assert!(
        e.contains("conf.d is a directory, not a regular file"),
        "{e}"
    );
}

#[test]
fn a_fifo_as_qemu_config_is_refused_without_blocking() {
    let s = Scratch::new();
    let fifo = mkfifo(&s, "q.toml");
    let e = refused(&s, &["run", "--kernel", &hello(), "--qemu-config", &fifo]);
    assert!(
        e.contains("q.toml is a FIFO (named pipe), not a regular file"),
        "{e}"
    );
    // `check` reads through the same reader
    let e = refused(&s, &["check", "--qemu-config", &fifo]);
    assert!(e.contains("QEMU config"), "{e}");
    assert!(e.contains("is a FIFO"), "{e}");
}

/// `check --log` opens the log to replay as every input is opened: a FIFO is refused at once.
#[test]
fn a_fifo_as_the_log_to_replay_is_refused_without_blocking() {
    let s = Scratch::new();
    let cfg = s.write("q.toml", "success_regex = [\"ok\"]\n");
    let fifo = mkfifo(&s, "boot.log");
    let cfg = cfg.display().to_string();
    let e = refused(&s, &["check", "--qemu-config", &cfg, "--log", &fifo]);
    assert!(
        e.contains("console log")
            && e.contains("boot.log is a FIFO (named pipe), not a regular file"),
        "{e}"
    );
}

#[test]
fn a_huge_qemu_config_is_refused_by_its_size() {
    let s = Scratch::new();
    let big = huge(&s, "big.toml");
    let e = refused(&s, &["run", "--kernel", &hello(), "--qemu-config", &big]);
    assert!(
        e.contains("QEMU config") && e.contains("big.toml is larger than 16 MiB"),
        "{e}"
    );
}

#[test]
fn a_fifo_or_huge_suite_is_refused() {
    let s = Scratch::new();
    let fifo = mkfifo(&s, "suite.toml");
    let e = refused(&s, &["run", "--suite", &fifo]);
    assert!(
        e.contains("suite file") && e.contains("suite.toml is a FIFO"),
        "{e}"
    );
    let big = huge(&s, "big-suite.toml");
    let e = refused(&s, &["check", "--suite", &big]);
    assert!(e.contains("big-suite.toml is larger than 16 MiB"), "{e}");
}

#[test]
fn a_fifo_device_or_huge_registry_is_refused() {
    let s = Scratch::new();
    let fifo = mkfifo(&s, "registry.toml");
    let e = refused(&s, &["images", "ls", "--registry", &fifo]);
    assert!(
        e.contains("registry") && e.contains("registry.toml is a FIFO"),
        "{e}"
    );
    let e = refused(&s, &["images", "ls", "--registry", "/dev/zero"]);
    assert!(
        e.contains("registry /dev/zero is a character device"),
        "{e}"
    );
    let big = huge(&s, "big-registry.toml");
    let e = refused(&s, &["images", "ls", "--registry", &big]);
    assert!(e.contains("big-registry.toml is larger than 16 MiB"), "{e}");
}

#[test]
fn a_directory_or_device_as_board_config_is_refused() {
    let s = Scratch::new();
    std::fs::create_dir(s.path().join("board")).unwrap();
    let e = refused(&s, &["run", "--build-config", "board"]);
    assert!(
        e.contains("board config") && e.contains("board is a directory"),
        "{e}"
    );
    let e = refused(&s, &["run", "--build-config", "/dev/zero"]);
    assert!(
        e.contains("board config /dev/zero is a character device"),
        "{e}"
    );
}
