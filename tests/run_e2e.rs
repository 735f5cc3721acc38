//! End-to-end: the real `qemu-test` binary boots real guests in real QEMU.

pub mod common;

use std::io::Read;
use std::process::Stdio;

use common::fixtures::fixture;
use common::{BAREMETAL_CONFIG, Scratch, text};

fn baremetal(s: &Scratch, variant: &str, extra: &[&str]) -> std::process::Output {
    s.run_baremetal(variant, BAREMETAL_CONFIG, extra)
}

#[test]
fn passes_when_the_guest_prints_success_and_powers_off() {
    let s = Scratch::new();
    let out = baremetal(&s, "hello", &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("Hello, world!"),
        "console not echoed: {stdout}"
    );
    assert!(stderr.contains("PASS hello"), "{stderr}");
    assert!(
        stderr.contains("'Hello, world!' matched console line 1"),
        "{stderr}"
    );
    let v = s.verdict();
    assert_eq!(v["outcome"], "pass");
    assert_eq!(v["decided_by"]["line_no"], 1);
    let log = std::fs::read(s.out().join("hello.log")).unwrap();
    assert!(log.windows(13).any(|w| w == b"Hello, world!"));
}

#[test]
fn passes_and_kills_qemu_when_the_guest_never_exits() {
    let s = Scratch::new();
    let out = baremetal(&s, "hello_noexit", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let v = s.verdict();
    assert_eq!(v["outcome"], "pass");
    assert_eq!(v["qemu_exit"]["killed_by_runner"], true);
}

#[test]
fn fails_on_a_fail_pattern_and_reports_the_line() {
    let s = Scratch::new();
    let out = baremetal(&s, "panic", &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("FAIL panic"), "{stderr}");
    let v = s.verdict();
    assert_eq!(v["outcome"], "fail");
    assert_eq!(v["decided_by"]["kind"], "fail");
    assert_eq!(v["decided_by"]["pattern"], "panicked at");
    assert_eq!(v["decided_by"]["line_no"], 1);
    // A fail pattern decides on the unfinished line at once and QEMU is stopped, so the reported
    // line (and the log) hold what the guest had printed by then: at least the match.
    let line = v["decided_by"]["line"].as_str().unwrap();
    assert!(
        line.starts_with("panicked at")
            && "panicked at src/main.rs:1:1".starts_with(line.trim_end()),
        "{line}"
    );
    let log = std::fs::read_to_string(s.out().join("panic.log")).unwrap();
    assert!(log.contains(line.trim_end()), "{log}");
}

#[test]
fn times_out_on_a_silent_guest_and_reaps_qemu() {
    let s = Scratch::new();
    let out = baremetal(&s, "hang", &["--timeout", "2s"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("TIMEOUT hang"), "{stderr}");
    let v = s.verdict();
    assert_eq!(v["outcome"], "timeout");
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("no console output at all")
    );
    assert!(v["reason"].as_str().unwrap().contains("'Hello, world!'"));
    assert_eq!(v["qemu_exit"]["killed_by_runner"], true);
    // Scratch::run already asserted that no process mentioning the scratch dir survived.
}

#[test]
fn qemu_exit_zero_without_success_is_a_failure() {
    let s = Scratch::new();
    let out = baremetal(&s, "silent_off", &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let v = s.verdict();
    assert_eq!(v["outcome"], "fail");
    let reason = v["reason"].as_str().unwrap();
    assert!(
        reason.contains("exited with status 0 before any success pattern matched"),
        "{reason}"
    );
    assert!(reason.contains("booting..."), "last line missing: {reason}");
}

#[test]
fn a_guest_reset_ends_qemu_instead_of_looping() {
    let s = Scratch::new();
    // The reset guest prints Hello then resets; with a pattern it never prints, the run must
    // end by QEMU's exit (-no-reboot), long before the deadline.
    let out = baremetal(
        &s,
        "reset",
        &["--success-regex", "never printed", "--timeout", "60s"],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let v = s.verdict();
    assert_eq!(v["outcome"], "fail", "{v}");
    assert_eq!(v["qemu_exit"]["killed_by_runner"], false);
    let log = std::fs::read_to_string(s.out().join("reset.log")).unwrap();
    assert_eq!(
        log.matches("Hello, world!").count(),
        1,
        "guest rebooted: {log}"
    );
}

#[test]
fn to_bin_boots_a_flat_binary_identical_to_objcopy() {
    let s = Scratch::new();
    let cfg = s.write(
        "qemu.toml",
        &BAREMETAL_CONFIG.replace("to_bin = false", "to_bin = true"),
    );
    let elf = fixture("aarch64-baremetal/hello.elf");
    let out = s.run_kernel(&elf, &cfg, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let ours = std::fs::read(s.out().join("hello.bin")).unwrap();
    let reference = s.path().join("objcopy.bin");
    let st = std::process::Command::new("aarch64-linux-gnu-objcopy")
        .args(["-O", "binary"])
        .arg(&elf)
        .arg(&reference)
        .status()
        .expect("aarch64-linux-gnu-objcopy missing: apt-get install binutils-aarch64-linux-gnu");
    assert!(st.success());
    assert_eq!(ours, std::fs::read(&reference).unwrap());
    let cmd = s.results()["cases"][0]["command"]["args"].to_string();
    assert!(cmd.contains("hello.bin"), "{cmd}");
}

#[test]
fn ansi_escapes_and_invalid_utf8_are_tolerated_and_logged_raw() {
    let s = Scratch::new();
    let out = baremetal(&s, "noisy", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let v = s.verdict();
    assert_eq!(v["outcome"], "pass");
    assert_eq!(
        v["decided_by"]["line"].as_str().unwrap().trim_end(),
        "Hello, world!"
    );
    let log = std::fs::read(s.out().join("noisy.log")).unwrap();
    assert!(log.contains(&0x1b), "escapes removed from the raw log");
    assert!(
        log.contains(&0xff),
        "invalid UTF-8 removed from the raw log"
    );
}

#[test]
fn a_fail_pattern_later_on_the_same_line_beats_a_pending_success() {
    let s = Scratch::new();
    let out = baremetal(&s, "late_fail", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
    let v = s.verdict();
    assert_eq!(v["outcome"], "fail", "{v}");
    assert_eq!(v["decided_by"]["pattern"], "panicked at");
}

#[test]
fn boots_debian_arm64_linux_to_test_pass() {
    let s = Scratch::new();
    let cfg = s.write(
        "linux.toml",
        r#"
args = ["-nographic", "-machine", "virt,gic-version=3", "-cpu", "cortex-a72", "-m", "1G",
        "-initrd", "${env:QT_INITRD}", "-append", "console=ttyAMA0 rdinit=/init"]
success_regex = ["test pass!"]
fail_regex = ["Kernel panic", "panicked at"]
"#,
    );
    let kernel = fixture("arm64-linux/kernel");
    let initrd = fixture("arm64-linux/initramfs.cpio.gz");
    let out = s
        .cmd(&[
            "run",
            // No --arch: the arm64 Image header tells it.
            "--kernel",
            kernel.to_str().unwrap(),
            "--qemu-config",
            cfg.to_str().unwrap(),
            "--name",
            "arm64-linux",
            "--timeout",
            "120s",
        ])
        .env("QT_INITRD", &initrd)
        .output()
        .unwrap();
    common::assert_no_qemu_left(s.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    assert_eq!(s.verdict()["decided_by"]["pattern"], "test pass!");
}

#[test]
fn boots_debian_amd64_linux_under_tcg() {
    let s = Scratch::new();
    let initrd = fixture("amd64-linux/initramfs.cpio.gz");
    let cfg = s.write(
        "x86.toml",
        &format!(
            r#"
args = ["-nographic", "-accel", "tcg", "-m", "1G", "-initrd", "{}",
        "-append", "console=ttyS0 rdinit=/init"]
success_regex = ["test pass!"]
fail_regex = ["Kernel panic"]
"#,
            initrd.display()
        ),
    );
    let out = s.run_kernel(
        &fixture("amd64-linux/vmlinux"),
        &cfg,
        &["--timeout", "180s"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let r = s.results();
    assert_eq!(r["cases"][0]["arch"], "x86_64");
    assert_eq!(r["cases"][0]["command"]["program"], "qemu-system-x86_64");
}

#[test]
fn sigterm_mid_boot_reaps_qemu_and_still_reports() {
    let s = Scratch::new();
    let cfg = s.write("qemu.toml", BAREMETAL_CONFIG);
    let kernel = fixture("aarch64-baremetal/hello_noexit.elf");
    // A success pattern the guest never prints keeps the boot going after its first line.
    let mut child = s
        .cmd(&[
            "run",
            "--kernel",
            kernel.to_str().unwrap(),
            "--qemu-config",
            cfg.to_str().unwrap(),
            "--success-regex",
            "never printed",
            "--timeout",
            "60s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the guest's first console bytes: QEMU is up and booting.
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    // The whole line: the log is checked for it below, and a loaded host may echo it in parts.
    while !seen.windows(13).any(|w| w == b"Hello, world!") {
        let n = stdout.read(&mut buf).unwrap();
        assert!(n > 0, "qemu-test ended before the guest printed anything");
        seen.extend_from_slice(&buf[..n]);
    }
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143));
    common::assert_no_qemu_left(s.path());
    let v = s.verdict();
    assert_eq!(v["outcome"], "cancelled");
    assert_eq!(v["cancelled_by"], "SIGTERM");
    let reason = v["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("cancelled by SIGTERM after "),
        "{reason}"
    );
    let log = std::fs::read_to_string(s.out().join("hello_noexit.log")).unwrap();
    assert!(log.contains("Hello, world!"));
}

#[test]
fn a_flooding_guest_keeps_memory_bounded() {
    // Baseline: the same binary judging a guest that prints one line.
    let base = Scratch::new();
    baremetal(&base, "hello", &["--quiet"]);
    let base_kib = base.results()["max_rss_kib"].as_u64().unwrap();

    // The guest prints 1 MiB without a newline, then 64 numbered lines, forever: waiting for
    // line 1280 means at least 20 MiB went through, however fast this machine is today.
    let s = Scratch::new();
    let out = baremetal(
        &s,
        "flood",
        &[
            "--success-regex",
            "^flood line 1280$",
            "--timeout",
            "300s",
            "--quiet",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let r = s.results();
    assert_eq!(r["cases"][0]["verdict"]["outcome"], "pass");
    let bytes = r["cases"][0]["console_bytes"].as_u64().unwrap();
    let rss_kib = r["max_rss_kib"].as_u64().unwrap();
    let log_len = std::fs::metadata(s.out().join("flood.log")).unwrap().len();
    assert_eq!(bytes, log_len, "log must hold every console byte");
    let growth = rss_kib.saturating_sub(base_kib) * 1024;
    eprintln!("flood: {bytes} console bytes; peak RSS {rss_kib} KiB (baseline {base_kib} KiB)");
    // The guest printed several times what memory grew by: the console is not kept.
    assert!(bytes > 20 << 20, "the flood printed only {bytes} bytes");
    assert!(
        growth < 8 << 20,
        "peak RSS grew by {growth} bytes while judging the flood"
    );
    assert!(rss_kib < 32 * 1024, "peak RSS {rss_kib} KiB");
}

#[test]
fn a_flooding_guest_cannot_grow_the_log_past_max_log_size() {
    // ≥ 5 MiB of console through a 4 MiB log (2 MiB head, 2 MiB tail): head, marker and tail
    // stay, and the verdict is still decided on a line far past the head.
    let s = Scratch::new();
    let out = baremetal(
        &s,
        "flood",
        &[
            "--success-regex",
            "^flood line 320$",
            "--max-log-size",
            "4MiB",
            "--timeout",
            "300s",
            "--quiet",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let r = s.results();
    let case = &r["cases"][0];
    assert_eq!(case["verdict"]["outcome"], "pass");
    let bytes = case["console_bytes"].as_u64().unwrap();
    let dropped = case["log_dropped_bytes"].as_u64().unwrap();
    assert!(bytes > 5 << 20, "the flood printed only {bytes} bytes");
    let log = std::fs::read(s.out().join("flood.log")).unwrap();
    assert!(log.len() <= (4 << 20) + 512, "log is {} bytes", log.len());
    let marker = format!("\n[qemu-test: {dropped} bytes of console output dropped here");
    let at = log
        .windows(marker.len())
        .position(|w| w == marker.as_bytes())
        .expect("the marker is in the log");
    assert_eq!(at, 2 << 20, "the head is the first half");
    let after = &log[at + 1..];
    let tail = &after[after.iter().position(|&b| b == b'\n').unwrap() + 1..];
    assert_eq!(tail.len(), 2 << 20, "the tail is the second half");
    assert_eq!(
        bytes,
        dropped + (4 << 20),
        "every byte is in the log or counted as dropped"
    );
    // The tail is the end of the stream: the judge's last numbered line is in it, and what
    // follows it there is what QEMU printed after the verdict (drained into the log only).
    let last_line = |lines: Vec<String>| {
        lines
            .into_iter()
            .rev()
            .find_map(|l| l.strip_prefix("flood line ")?.trim().parse::<u64>().ok())
    };
    let judged: Vec<String> = case["console_tail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    let logged = String::from_utf8_lossy(tail)
        .lines()
        .map(str::to_string)
        .collect();
    let (logged, judged) = (last_line(logged), last_line(judged));
    assert!(
        judged.is_some() && logged >= judged,
        "log tail ends at {logged:?}, the judge saw up to {judged:?}"
    );
}

#[test]
fn cases_run_in_parallel_get_the_same_verdicts_as_one_by_one() {
    let outcomes = |jobs: &str| {
        let s = Scratch::new();
        let cfg = s.write("qemu.toml", BAREMETAL_CONFIG);
        let suite = format!(
            "[defaults]\nqemu-config = \"{}\"\ntimeout = \"3s\"\n\
             [[case]]\nname = \"pass\"\nkernel = \"{}\"\n\
             [[case]]\nname = \"fail\"\nkernel = \"{}\"\n\
             [[case]]\nname = \"timeout\"\nkernel = \"{}\"\n",
            cfg.display(),
            fixture("aarch64-baremetal/hello_noexit.elf").display(),
            fixture("aarch64-baremetal/panic.elf").display(),
            fixture("aarch64-baremetal/hang.elf").display(),
        );
        let suite = s.write("suite.toml", &suite);
        let out = s.run(&[
            "run",
            "--suite",
            suite.to_str().unwrap(),
            "--jobs",
            jobs,
            "--quiet",
        ]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
        let r = s.results();
        r["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let v = &c["verdict"];
                (
                    c["name"].as_str().unwrap().to_string(),
                    v["outcome"].as_str().unwrap().to_string(),
                    v["decided_by"]["line_no"].clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    let serial = outcomes("1");
    assert_eq!(
        serial
            .iter()
            .map(|(n, o, _)| (n.as_str(), o.as_str()))
            .collect::<Vec<_>>(),
        [("pass", "pass"), ("fail", "fail"), ("timeout", "timeout")]
    );
    assert_eq!(outcomes("3"), serial);
}
