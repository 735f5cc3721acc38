//! End-to-end: the console grammar (steps typed through a plain pipe, milestones, test-case
//! extraction, fail sets) with the real binary, real QEMU and real guests.

pub mod common;

use common::fixtures::fixture;
use common::{Scratch, text};

const MACHINE: &str = r#"args = ["-nographic", "-cpu", "cortex-a72", "-machine", "virt,virtualization=on,gic-version=3", "-m", "128M"]
"#;

const NIMBOS_STEPS: &str = r#"
[[steps]]
expect = "Rust user shell"
[[steps]]
expect = ">> "
send = "usertests\n"
timeout = "30s"
[[steps]]
expect = "usertests passed!"
timeout = "60s"
"#;

fn run_baremetal(s: &Scratch, variant: &str, grammar: &str) -> std::process::Output {
    s.run_baremetal(
        variant,
        &format!("{MACHINE}{grammar}"),
        &["--timeout", "60s"],
    )
}

fn case(s: &Scratch) -> serde_json::Value {
    s.results()["cases"][0].clone()
}

#[test]
fn nimbos_flow_types_usertests_after_the_prompt_on_the_bare_metal_shell() {
    let s = Scratch::new();
    // Typed 3 bytes at a time, 10 ms apart: the pacing path, not one write.
    let paced = format!("send_chunk = 3\nsend_delay = \"10ms\"\n{NIMBOS_STEPS}");
    let out = run_baremetal(&s, "shell", &paced);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let c = case(&s);
    assert_eq!(c["verdict"]["outcome"], "pass", "{c}");
    assert_eq!(c["verdict"]["decided_by"]["pattern"], "usertests passed!");
    let tl = c["timeline"].as_array().unwrap();
    assert_eq!(tl.len(), 3, "{c}");
    assert_eq!(tl[1]["name"], "step 2: send 'usertests\\n'");
    assert!(tl.iter().all(|e| e["at"].is_number()), "{c}");
}

#[test]
fn prompt_only_guest_gets_typed_input_and_a_step_timeout_names_the_step() {
    let s = Scratch::new();
    let grammar = "[[steps]]\nexpect = \">> \"\nsend = \"wrong\\n\"\n\
                   [[steps]]\nexpect = \"never printed\"\ntimeout = \"2s\"\n";
    let out = run_baremetal(&s, "prompt", grammar);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
    let v = case(&s)["verdict"].clone();
    assert_eq!(v["outcome"], "timeout", "{v}");
    let reason = v["reason"].as_str().unwrap();
    assert!(
        reason.contains("step 2 (expect 'never printed') not matched within 2s"),
        "{reason}"
    );
    assert!(reason.contains("last console line"), "{reason}");
    let tail = case(&s)["console_tail"].to_string();
    assert!(
        tail.contains("unknown command: wrong"),
        "typed input reached the guest: {tail}"
    );
}

#[test]
fn nimbos_flow_on_the_arm64_linux_shell_initramfs_with_milestones() {
    let s = Scratch::new();
    let initrd = fixture("arm64-linux/initramfs-shell.cpio.gz");
    let cfg = s.write(
        "qemu.toml",
        &format!(
            r#"args = ["-nographic", "-machine", "virt,gic-version=3", "-cpu", "cortex-a72", "-m", "1G",
  "-initrd", "{}", "-append", "console=ttyAMA0 rdinit=/init"]
fail_sets = ["linux"]
{NIMBOS_STEPS}
[[milestones]]
name = "kernel up"
pattern = 'Linux version'
deadline = "60s"
[[milestones]]
name = "shell"
pattern = 'Rust user shell'
"#,
            initrd.display()
        ),
    );
    let kernel = fixture("arm64-linux/kernel");
    let out = s.run(&[
        "run",
        "--kernel",
        kernel.to_str().unwrap(),
        "--arch",
        "aarch64",
        "--qemu-config",
        cfg.to_str().unwrap(),
        "--timeout",
        "120s",
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let c = case(&s);
    assert_eq!(c["verdict"]["outcome"], "pass", "{c}");
    let names: Vec<&str> = c["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["at"].is_number())
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    for n in [
        "kernel up",
        "shell",
        "step 2: send 'usertests\\n'",
        "step 3: expect",
    ] {
        assert!(names.contains(&n), "{names:?}");
    }
}

#[test]
fn cases_guest_yields_nimbos_and_ktap_testcases() {
    let s = Scratch::new();
    let grammar = r#"success_regex = ["usertests passed!"]
[[testcases]]
pattern = "Usertests: Test '(?P<test_case_id>\\w+)' in Process \\d+ exited with code (?P<result>-?\\d+)"
results = { "0" = "pass" }
expected = ["hello_world", "fork", "sleep", "exit_code", "yield"]
[[testcases]]
pattern = '^ok \d+ (?P<test_case_id>\S+) # (?P<result>SKIP)'
[[testcases]]
pattern = '^(?P<result>ok|not ok) \d+ (?P<test_case_id>\S+)'
"#;
    let out = run_baremetal(&s, "cases", grammar);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
    let c = case(&s);
    let got: Vec<(String, String)> = c["testcases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap().into(),
                t["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("hello_world", "pass"),
        ("fork", "pass"),
        ("sleep", "pass"),
        ("exit_code", "fail"),
        ("yield", "pass"),
        ("test_a", "pass"),
        ("test_b", "fail"),
        ("test_c", "skip"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(got, want, "{c}");
    let reason = c["verdict"]["reason"].as_str().unwrap();
    assert_eq!(c["verdict"]["outcome"], "fail");
    assert!(
        reason.starts_with("2 of 8 test cases failed: 'exit_code' (result '42'"),
        "{reason}"
    );
}

#[test]
fn arceos_fail_set_fails_the_panicking_guest() {
    let s = Scratch::new();
    let out = run_baremetal(
        &s,
        "panic",
        "success_regex = [\"Hello\"]\nfail_sets = [\"arceos\"]\n",
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
    let v = case(&s)["verdict"].clone();
    assert_eq!(v["outcome"], "fail");
    assert_eq!(v["decided_by"]["pattern"], "panicked at");
}

#[test]
fn retries_only_allowed_classes_and_keep_earlier_attempts() {
    let s = Scratch::new();
    let grammar = "success_regex = [\"Hello\"]\nretries = 1\nretry_on = [\"timeout\"]\ninactivity_timeout = \"1s\"\n";
    let out = run_baremetal(&s, "hang", grammar);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
    let c = case(&s);
    assert_eq!(c["verdict"]["outcome"], "timeout");
    assert!(
        c["verdict"]["reason"]
            .as_str()
            .unwrap()
            .contains("no console output for 1s (inactivity_timeout)"),
        "{c}"
    );
    assert_eq!(c["attempts"].as_array().unwrap().len(), 1, "{c}");
    assert_eq!(c["flaky"], false);
    assert!(s.out().join("hang.attempt1.log").exists());
    // A fail is not retried unless allowed.
    let s = Scratch::new();
    let out = run_baremetal(
        &s,
        "panic",
        "success_regex = [\"Hello\"]\nfail_regex = [\"panicked\"]\nretries = 2\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(case(&s)["attempts"].as_array().unwrap().len(), 0);
}

#[test]
fn junit_has_a_testcase_per_milestone_step_and_extracted_case_and_validates() {
    let s = Scratch::new();
    let grammar = r#"
[[milestones]]
name = "first test"
pattern = "Usertests: Running"
[[steps]]
expect = "KTAP version 1"
[[steps]]
expect = "usertests passed!"
[[testcases]]
pattern = '^(?P<result>ok|not ok) \d+ (?P<test_case_id>\S+)'
affects_verdict = false
"#;
    let cfg = s.write("qemu.toml", &format!("{MACHINE}{grammar}"));
    let kernel = fixture("aarch64-baremetal/cases.elf");
    let junit = s.path().join("junit.xml");
    let out = s.run(&[
        "run",
        "--kernel",
        kernel.to_str().unwrap(),
        "--qemu-config",
        cfg.to_str().unwrap(),
        "--timeout",
        "60s",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "affects_verdict = false: {}",
        text(&out).1
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    for needle in [
        r#"name="milestone: first test""#,
        r#"name="step 1: expect""#,
        r#"name="step 2: expect""#,
        r#"name="case: test_a""#,
        r#"name="case: test_b""#,
        "failed (result &apos;not ok&apos; on console line",
        // The verdict is pass, so JUnit counts no failure: the case is reported as skipped.
        // milestone, 2 steps, 3 cases and boot (a passed prepare stage is no test case).
        r#"<testsuite name="cases" tests="7" skipped="1" errors="0" failures="0""#,
    ] {
        assert!(xml.contains(needle), "{needle} missing:\n{xml}");
    }
    let schema = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/junit-10.xsd");
    let lint = std::process::Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&schema)
        .arg(&junit)
        .output()
        .expect("xmllint (libxml2-utils) installed");
    assert!(
        lint.status.success(),
        "{}\n{xml}",
        String::from_utf8_lossy(&lint.stderr)
    );
}

#[test]
fn a_missed_milestone_deadline_names_it_and_the_last_line() {
    let s = Scratch::new();
    let grammar = "[[milestones]]\nname = \"hello\"\npattern = \"Hello\"\n\
                   [[milestones]]\nname = \"guest up\"\npattern = \"never printed\"\ndeadline = \"3s\"\n";
    let out = run_baremetal(&s, "hello_noexit", grammar);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
    let c = case(&s);
    let reason = c["verdict"]["reason"].as_str().unwrap();
    assert_eq!(c["verdict"]["outcome"], "timeout");
    assert!(
        reason.starts_with(
            "timed out: milestone 'guest up' (pattern 'never printed') not reached within 3s"
        ),
        "{reason}"
    );
    assert!(
        reason.contains("last console line 1: 'Hello, world!'"),
        "{reason}"
    );
    let tl = c["timeline"].as_array().unwrap();
    assert!(tl[0]["at"].is_number() && tl[1]["at"].is_null(), "{c}");
}

#[test]
fn nimbos_flow_on_the_amd64_linux_shell_initramfs() {
    let s = Scratch::new();
    let initrd = fixture("amd64-linux/initramfs-shell.cpio.gz");
    let cfg = s.write(
        "qemu.toml",
        &format!(
            r#"args = ["-nographic", "-m", "1G", "-initrd", "{}", "-append", "console=ttyS0 rdinit=/init"]
fail_sets = ["linux"]
{NIMBOS_STEPS}"#,
            initrd.display()
        ),
    );
    let kernel = fixture("amd64-linux/vmlinux");
    let out = s.run(&[
        "run",
        "--kernel",
        kernel.to_str().unwrap(),
        "--qemu-config",
        cfg.to_str().unwrap(),
        "--accel",
        "tcg",
        "--timeout",
        "120s",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let c = case(&s);
    assert_eq!(
        c["verdict"]["decided_by"]["pattern"], "usertests passed!",
        "{c}"
    );
}
