//! End to end with a real guest standing in for AxVisor's Linux guest: Debian's arm64 kernel
//! with the busybox initramfs of the fixtures, its /init replaced (a second, uncompressed cpio
//! appended; the kernel unpacks both, later entries win) by an interactive busybox shell whose
//! prompt is `~ # `, as Alpine's. Driven by tgoskits' keys: `shell_prefix` + `shell_init_cmd`,
//! a multi-line `test_commands` script, and ostool 0.29's `shell_check_steps`.

pub mod common;

use common::fixtures::fixture;
use common::{Scratch, text};

/// The shell guest's /init: the fixtures' prologue, then an interactive shell at `~ # `.
const INIT: &str = "#!/bin/busybox sh
/bin/busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null
[ -t 1 ] || exec 0</dev/console 1>/dev/console 2>&1
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root PS1='~ # '
cd /root
echo 'Welcome to the stand-in guest'
exec /bin/sh -i
";

/// One `newc` cpio member (hand-written: the format is 110 header bytes and two paddings, and
/// the tests need nothing else of cpio).
fn cpio_entry(out: &mut Vec<u8>, ino: u32, name: &str, mode: u32, data: &[u8]) {
    let fields = [
        ino,
        mode,
        0,
        0,
        1,
        0,
        data.len() as u32,
        0,
        0,
        0,
        0,
        name.len() as u32 + 1,
        0,
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08X}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
    out.extend_from_slice(data);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// The fixtures' busybox initramfs (uncompressed) followed by an archive that replaces its /init.
fn shell_initrd(s: &Scratch) -> std::path::PathBuf {
    use std::io::Read;
    let gz = std::fs::File::open(fixture("arm64-linux/initramfs-shell.cpio.gz")).unwrap();
    let mut bytes = Vec::new();
    flate2::read::MultiGzDecoder::new(gz)
        .read_to_end(&mut bytes)
        .unwrap();
    let mut extra = Vec::new();
    cpio_entry(&mut extra, 900_001, "init", 0o100_755, INIT.as_bytes());
    cpio_entry(&mut extra, 0, "TRAILER!!!", 0, b"");
    while !extra.len().is_multiple_of(512) {
        extra.push(0);
    }
    bytes.extend_from_slice(&extra);
    let path = s.path().join("initrd-tilde-shell.cpio");
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Boots the stand-in guest with `judge` (tgoskits' keys) after the machine arguments.
fn boot(s: &Scratch, judge: &str) -> (Option<i32>, serde_json::Value) {
    let initrd = shell_initrd(s);
    let cfg = s.write(
        "qemu-aarch64.toml",
        &format!(
            "args = [\"-nographic\", \"-machine\", \"virt,gic-version=3\", \"-cpu\", \"cortex-a72\", \
             \"-m\", \"256M\", \"-initrd\", \"{}\", \"-append\", \"console=ttyAMA0 rdinit=/init\"]\n\
             fail_regex = [\"(?i)\\\\bpanic(?:ked)?\\\\b\", \"(?i)kernel panic\"]\n{judge}",
            initrd.display()
        ),
    );
    let out = s.run_arm64_linux(&cfg, &["--timeout", "120s"]);
    let (_, stderr) = text(&out);
    let case = s.results()["cases"][0].clone();
    assert!(case.is_object(), "{stderr}");
    (out.status.code(), case)
}

fn tail(case: &serde_json::Value) -> String {
    case["console_tail"].to_string()
}

/// AxVisor's aarch64 smoke case's judge, keys as written there: the typed command's echo
/// (`~ # pwd && echo 'guest test pass!'`) must not pass it, the output line does.
#[test]
fn shell_prefix_and_init_cmd_pass_on_the_output_line_not_the_echo() {
    let s = Scratch::new();
    let (code, c) = boot(
        &s,
        "success_regex = [\"(?m)^guest test pass!\\\\s*$\"]\ntimeout = 150\n\
         shell_prefix = \"~ #\"\nshell_init_cmd = \"pwd && echo 'guest test pass!'\"\n",
    );
    assert_eq!(code, Some(0), "{c}");
    assert_eq!(c["verdict"]["outcome"], "pass", "{c}");
    assert_eq!(
        c["verdict"]["decided_by"]["line"], "guest test pass!",
        "{c}"
    );
    let t = tail(&c);
    assert!(
        t.contains("pwd && echo 'guest test pass!'"),
        "the echo is on the console: {t}"
    );
    assert!(t.contains("/root"), "pwd ran: {t}");
}

/// `test_commands`: each typed when the prompt is back (the first at the first prompt), a
/// multi-line script as one entry.
#[test]
fn multi_line_test_commands_are_typed_in_order_at_the_prompt() {
    let s = Scratch::new();
    let (code, c) = boot(
        &s,
        "success_regex = [\"(?m)^total=6$\"]\nshell_prefix = \"~ #\"\n\
         test_commands = [\"cd /tmp\", \"\"\"\nt=0\nfor i in 1 2 3; do\n  t=$((t + i))\n  echo \"item $i\"\ndone\"\"\", \
         \"echo \\\"total=$t\\\" in $(pwd)\", \"echo \\\"total=$t\\\"\"]\n",
    );
    assert_eq!(code, Some(0), "{c}");
    assert_eq!(c["verdict"]["outcome"], "pass", "{c}");
    let t = tail(&c);
    for want in ["item 3", "total=6 in /tmp"] {
        assert!(t.contains(want), "{want}: {t}");
    }
    let steps: Vec<&str> = c["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["at"].is_number())
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(steps.len(), 4, "{steps:?}");
    assert_eq!(steps[0], "step 1: send 'cd /tmp\\n'");
}

#[test]
fn shell_check_steps_pass_with_the_prompt_inherited() {
    let s = Scratch::new();
    let (code, c) = boot(
        &s,
        "[[shell_check_steps]]\nshell_prefix = \"~ #\"\nshell_cmd = \"echo A$((1 + 1))\"\n\
         success_regex = \"(?m)^A2$\"\n\
         [[shell_check_steps]]\nshell_cmd = \"echo B$((2 + 2))\"\nsuccess_regex = \"(?m)^B4$\"\n",
    );
    assert_eq!(code, Some(0), "{c}");
    assert_eq!(c["verdict"]["outcome"], "pass", "{c}");
    assert_eq!(c["verdict"]["decided_by"]["pattern"], "(?m)^B4$", "{c}");
}

#[test]
fn a_shell_check_steps_fail_regex_fails_its_step() {
    let s = Scratch::new();
    let (code, c) = boot(
        &s,
        "[[shell_check_steps]]\nshell_prefix = \"~ #\"\nshell_cmd = \"echo OK\"\nsuccess_regex = \"(?m)^OK$\"\n\
         [[shell_check_steps]]\nshell_cmd = \"echo BO''OM\"\nsuccess_regex = \"(?m)^fine$\"\n\
         fail_regex = [\"(?m)^BOOM$\"]\n",
    );
    assert_eq!(code, Some(1), "{c}");
    assert_eq!(c["verdict"]["outcome"], "fail", "{c}");
    assert_eq!(c["verdict"]["decided_by"]["pattern"], "(?m)^BOOM$", "{c}");
}

/// The guest powers off before the last step: an unfinished sequence is a failure.
#[test]
fn an_unfinished_shell_check_sequence_fails() {
    let s = Scratch::new();
    let (code, c) = boot(
        &s,
        "[[shell_check_steps]]\nshell_prefix = \"~ #\"\nshell_cmd = \"poweroff -f\"\n\
         success_regex = \"(?m)^never printed$\"\n",
    );
    assert_eq!(code, Some(1), "{c}");
    assert_eq!(c["verdict"]["outcome"], "fail", "{c}");
    let reason = c["verdict"]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(
            "QEMU exited with status 0 while waiting for step 2 (expect '(?m)^never printed$')"
        ),
        "{reason}"
    );
}
