//! End-to-end: the guest's own ending decides, learnt from QEMU over QMP — a reset or a panic
//! is a failure (unless `on_reset = "pass"`), and QEMU refusing its command line is a
//! configuration error, not a guest failure. Real QEMU, real guests.

pub mod common;

use common::fixtures::fixture;
use common::{BAREMETAL_MACHINE as MACHINE, Scratch, text};

#[test]
fn a_guest_reset_fails_with_its_time_and_last_line() {
    let s = Scratch::new();
    // No success pattern: before QMP, QEMU's exit 0 after the reset (-no-reboot) passed.
    let out = s.run_baremetal("reset", MACHINE, &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let v = s.verdict();
    assert_eq!(v["outcome"], "fail", "{v}");
    let reason = v["reason"].as_str().unwrap();
    assert!(reason.starts_with("guest reset itself at "), "{reason}");
    assert!(
        reason.contains("last console line 1: 'Hello, world!'"),
        "{reason}"
    );
    assert!(stderr.contains("FAIL reset"), "{stderr}");
    assert!(
        !s.out().join("cases/reset").exists(),
        "a work dir left behind (QMP needs none: QEMU inherits its socket)"
    );
}

#[test]
fn on_reset_pass_makes_a_reset_the_expected_ending() {
    let s = Scratch::new();
    let out = s.run_baremetal("reset", &format!("{MACHINE}on_reset = \"pass\"\n"), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let v = s.verdict();
    assert_eq!(v["outcome"], "pass", "{v}");
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("the guest reset itself (on_reset = \"pass\")"),
        "{v}"
    );
}

#[test]
fn a_clean_power_off_still_passes() {
    let s = Scratch::new();
    let out = s.run_baremetal("silent_off", MACHINE, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    assert_eq!(s.verdict()["outcome"], "pass");
}

#[test]
fn a_linux_panic_that_reboots_fails() {
    let s = Scratch::new();
    // No initramfs and no root disk: the kernel panics ("VFS: Unable to mount root fs"),
    // and panic=-1 reboots at once. `fail_regex = []` leaves only the ending to judge.
    let cfg = s.write(
        "linux.toml",
        r#"
args = ["-nographic", "-machine", "virt,gic-version=3", "-cpu", "cortex-a72", "-m", "512M",
        "-append", "console=ttyAMA0 panic=-1"]
fail_regex = []
"#,
    );
    let out = s.run_arm64_linux(&cfg, &["--timeout", "180s"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let v = s.verdict();
    assert_eq!(v["outcome"], "fail", "{v}");
    let reason = v["reason"].as_str().unwrap();
    assert!(reason.starts_with("guest reset itself at "), "{reason}");
}

/// Runs the hello guest with `args` appended to the machine's arguments.
fn refused(s: &Scratch, extra: &str) -> (std::process::Output, String) {
    let config = MACHINE.replace("\"128M\"]", &format!("\"128M\", {extra}]"));
    let out = s.run_baremetal("hello", &config, &[]);
    let reason = s.verdict()["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (out, reason)
}

#[test]
fn qemu_refusing_a_bad_memory_size_is_a_config_error_naming_the_first_line() {
    let s = Scratch::new();
    let (out, reason) = refused(&s, r#""-m", "1Q""#);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(s.verdict()["outcome"], "error");
    assert!(
        reason.starts_with("QEMU refused its command line: qemu-system-aarch64: -m 1Q:"),
        "{reason}"
    );
    // QEMU's message goes on for two more lines; the headline is its first.
    assert!(!reason.contains("exabytes"), "{reason}");
}

#[test]
fn qemu_refusing_an_unknown_option_or_device_is_a_config_error() {
    for (extra, needle) in [
        (r#""-no-such-option""#, "-no-such-option: invalid option"),
        (
            r#""-device", "no-such-device""#,
            "'no-such-device' is not a valid device model name",
        ),
    ] {
        let s = Scratch::new();
        let (out, reason) = refused(&s, extra);
        assert_eq!(out.status.code(), Some(2), "{extra}: {}", text(&out).1);
        assert!(
            reason.starts_with("QEMU refused its command line: qemu-system-aarch64: "),
            "{reason}"
        );
        assert!(reason.contains(needle), "{extra}: {reason}");
    }
}

#[test]
fn with_no_fail_patterns_the_default_set_fails_a_panicking_guest() {
    let s = Scratch::new();
    let out = s.run_baremetal("panic", MACHINE, &["--timeout", "20s"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
    let v = s.verdict();
    assert_eq!(v["outcome"], "fail", "{v}");
    assert_eq!(v["decided_by"]["kind"], "fail", "{v}");
    // Decided on the unfinished line as soon as the default set's panic pattern matched.
    let line = v["decided_by"]["line"].as_str().unwrap();
    assert!(line.starts_with("panic"), "{line}");
}

#[test]
fn explicit_empty_fail_regex_keeps_none_and_the_plan_says_which() {
    let s = Scratch::new();
    let kernel = fixture("aarch64-baremetal/hello.elf");
    let plan = |config: &str| {
        let cfg = s.write("qemu.toml", config);
        let out = s.run_kernel(&kernel, &cfg, &["--dry-run"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
        text(&out).0
    };
    let default = plan(MACHINE);
    assert!(
        default.contains("the config names none, so the built-in `default` set applies"),
        "{default}"
    );
    assert!(
        default.contains("# fail pattern: Kernel panic - not syncing"),
        "{default}"
    );
    assert!(
        default.contains(
            "the guest's clean power-off (QEMU exiting 0, not a reset or panic) is the pass"
        ),
        "{default}"
    );
    let none = plan(&format!("{MACHINE}fail_regex = []\n"));
    assert!(
        none.contains("# fail patterns: none (fail_regex = [])"),
        "{none}"
    );
    assert!(!none.contains("# fail pattern: "), "{none}");
}

#[test]
fn check_warns_about_reset_as_pass_and_no_fail_patterns() {
    let s = Scratch::new();
    let cfg = s.write(
        "qemu.toml",
        &format!("{MACHINE}fail_regex = []\non_reset = \"pass\"\n"),
    );
    let out = s.run(&["check", "--qemu-config", cfg.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    let all = format!("{stdout}{stderr}");
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains("qemu.toml:3:12: warning: on_reset = \"pass\": a guest reset"),
        "{all}"
    );
    assert!(
        all.contains("qemu.toml:2:1: warning: no fail patterns"),
        "{all}"
    );
}
