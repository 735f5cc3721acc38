//! End-to-end: the out dir is one run's, and nothing is written through a symlink planted in it.

pub mod common;

use common::{BAREMETAL_CONFIG, Scratch, text};

#[test]
fn a_second_run_on_a_locked_out_dir_is_refused_and_overwrites_nothing() {
    let s = Scratch::new();
    let out = s.out();
    std::fs::create_dir_all(&out).unwrap();
    // Another run holds the out dir: the same flock qemu-test takes.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(out.join(".qemu-test.lock"))
        .unwrap();
    // SAFETY: flock on a descriptor we own.
    let locked = unsafe {
        libc::flock(
            std::os::fd::AsRawFd::as_raw_fd(&lock),
            libc::LOCK_EX | libc::LOCK_NB,
        )
    };
    assert_eq!(locked, 0);
    std::fs::write(out.join("results.json"), "earlier run").unwrap();
    std::fs::write(out.join("hello.log"), "earlier log").unwrap();
    s.write("qemu.toml", BAREMETAL_CONFIG);
    let before = s.tree();

    let out_ = s.run_baremetal("hello", BAREMETAL_CONFIG, &[]);
    let (_, err) = text(&out_);
    assert_eq!(out_.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "the out dir {} is in use by another qemu-test run",
            out.display()
        )),
        "{err}"
    );
    assert!(err.contains("give this run its own --out-dir"), "{err}");
    assert_eq!(s.tree(), before, "the refused run created files");
    let read = |n: &str| std::fs::read_to_string(out.join(n)).unwrap();
    assert_eq!(read("results.json"), "earlier run");
    assert_eq!(read("hello.log"), "earlier log");

    // Once the other run ends, the out dir is free again.
    drop(lock);
    let again = s.run_baremetal("hello", BAREMETAL_CONFIG, &[]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again).1);
    assert_eq!(s.results()["cases"][0]["verdict"]["outcome"], "pass");
}

#[test]
fn reports_replace_planted_symlinks_instead_of_writing_through_them() {
    let s = Scratch::new();
    let out = s.out();
    std::fs::create_dir_all(&out).unwrap();
    let outside = tempfile::tempdir().unwrap();
    let planted = ["results.json", "hello.log", "junit.xml"];
    for name in planted {
        let target = outside.path().join(name);
        std::fs::write(&target, "precious").unwrap();
        std::os::unix::fs::symlink(&target, out.join(name)).unwrap();
    }

    let r = s.run_baremetal("hello", BAREMETAL_CONFIG, &["--junit", "true"]);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r).1);

    for name in planted {
        let target = outside.path().join(name);
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            "precious",
            "{name} was written through the symlink"
        );
        let meta = std::fs::symlink_metadata(out.join(name)).unwrap();
        assert!(meta.is_file(), "{name} is still not a regular file");
    }
    assert_eq!(s.results()["cases"][0]["verdict"]["outcome"], "pass");
    let log = std::fs::read_to_string(out.join("hello.log")).unwrap();
    assert!(log.contains("Hello, world!"), "{log}");
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(junit.contains("<testsuites"), "{junit}");
}
