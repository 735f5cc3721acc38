//! End-to-end: every report tells the same verdict. One real boot per ending (pass, fail
//! pattern, a success pattern seen while steps are incomplete, a required milestone missed,
//! an optional milestone missed); the exit code, the terminal line, `results.json`, the JUnit
//! counts, the step summary and the `verdict` output must agree.

pub mod common;

use std::process::Output;

use common::fixtures::fixture;
use common::{BAREMETAL_MACHINE as MACHINE, Scratch, TYPED_SLOWLY, TYPED_USERTESTS, text};

/// Boots `variant` with `config` as if in GitHub Actions (summary, outputs and JUnit on).
fn boot(s: &Scratch, variant: &str, config: &str) -> Output {
    boot_with(s, variant, config, &[])
}

/// [`boot`] with `extra` flags.
fn boot_with(s: &Scratch, variant: &str, config: &str, extra: &[&str]) -> Output {
    let cfg = s.write("qemu.toml", &format!("{MACHINE}{config}"));
    let kernel = fixture(&format!("aarch64-baremetal/{variant}.elf"));
    let mut args = vec![
        "run",
        "--kernel",
        kernel.to_str().unwrap(),
        "--qemu-config",
        cfg.to_str().unwrap(),
        "--timeout",
        "60s",
        "--junit",
        "true",
    ];
    args.extend_from_slice(extra);
    let out = s
        .actions_cmd(&args)
        .env("INPUT_SUMMARY", "true")
        .env("INPUT_ANNOTATIONS", "false")
        .output()
        .expect("spawn qemu-test");
    common::assert_no_qemu_left(s.path());
    out
}

/// Asserts every report says `outcome` for the one case `name`; returns the reason.
fn assert_agree(s: &Scratch, out: &Output, name: &str, outcome: &str) -> String {
    let (stdout, stderr) = text(out);
    let all = format!("{stdout}{stderr}");
    let code = if outcome == "pass" { 0 } else { 1 };
    assert_eq!(out.status.code(), Some(code), "{name}: {all}");
    let label = match outcome {
        "pass" => "PASS",
        "fail" => "FAIL",
        _ => "TIMEOUT",
    };
    assert!(all.contains(&format!("{label} {name}")), "terminal: {all}");
    let r = s.results();
    let v = &r["cases"][0]["verdict"];
    assert_eq!(v["outcome"], outcome, "results.json: {v}");
    let xml = std::fs::read_to_string(s.out().join("junit.xml")).unwrap();
    // The counts are on the suite (`<testsuites>` carries none: see src/report/junit.rs).
    let suite = xml
        .lines()
        .find(|l| l.contains("<testsuite "))
        .expect("suite");
    let failing = !suite.contains(r#"failures="0""#) || !suite.contains(r#"errors="0""#);
    assert_eq!(
        failing,
        outcome != "pass",
        "JUnit disagrees: {suite}\n{xml}"
    );
    let summary = std::fs::read_to_string(s.path().join("summary.md")).unwrap();
    assert!(
        summary.contains(label) || summary.to_lowercase().contains(outcome),
        "summary: {summary}"
    );
    let outputs = std::fs::read_to_string(s.path().join("outputs.txt")).unwrap();
    assert!(
        outputs.contains(&format!("verdict={outcome}")),
        "outputs: {outputs}"
    );
    v["reason"].as_str().unwrap().to_string()
}

#[test]
fn pass_agrees_everywhere() {
    let s = Scratch::new();
    let out = boot(&s, "hello", "success_regex = [\"Hello, world!\"]\n");
    assert_agree(&s, &out, "hello", "pass");
}

#[test]
fn fail_pattern_agrees_everywhere() {
    let s = Scratch::new();
    let out = boot(&s, "panic", "fail_regex = [\"panicked at\"]\n");
    let reason = assert_agree(&s, &out, "panic", "fail");
    assert!(reason.contains("fail pattern 'panicked at'"), "{reason}");
}

#[test]
fn a_success_pattern_before_the_steps_are_done_does_not_pass() {
    let s = Scratch::new();
    // "Rust user shell" is printed before the prompt: it used to pass at once, with the
    // step never typed and JUnit counting it as not reached.
    let out = boot(
        &s,
        "shell",
        "success_regex = [\"Rust user shell\"]\n\
         [[steps]]\nexpect = \">> \"\nsend = \"nothing\\n\"\n\
         [[steps]]\nexpect = \"never printed\"\ntimeout = \"2s\"\n",
    );
    let reason = assert_agree(&s, &out, "shell", "timeout");
    assert!(
        reason.contains("step 2 (expect 'never printed') not matched within 2s"),
        "{reason}"
    );
}

#[test]
fn a_missed_required_milestone_fails_everywhere() {
    let s = Scratch::new();
    let out = boot(
        &s,
        "hello",
        "success_regex = [\"Hello, world!\"]\n\
         [[milestones]]\nname = \"hv up\"\npattern = \"never printed\"\n",
    );
    let reason = assert_agree(&s, &out, "hello", "fail");
    assert!(
        reason.contains("required milestone 'hv up' (pattern 'never printed') not reached"),
        "{reason}"
    );
}

#[test]
fn a_missed_optional_milestone_still_passes_everywhere() {
    let s = Scratch::new();
    let out = boot(
        &s,
        "hello",
        "success_regex = [\"Hello, world!\"]\n\
         [[milestones]]\nname = \"bonus\"\npattern = \"never printed\"\noptional = true\n",
    );
    assert_agree(&s, &out, "hello", "pass");
    let xml = std::fs::read_to_string(s.out().join("junit.xml")).unwrap();
    assert!(xml.contains("milestone: bonus"), "{xml}");
    assert!(
        xml.contains("optional: &apos;never printed&apos; never matched"),
        "{xml}"
    );
}

#[test]
fn a_regression_with_fail_on_regression_fails_everywhere() {
    let s = Scratch::new();
    let base = s.run_baremetal(
        "prompt",
        &format!("{MACHINE}{TYPED_USERTESTS}"),
        &["--out-dir", "base"],
    );
    assert_eq!(base.status.code(), Some(0), "{}", text(&base).1);
    let out = boot_with(
        &s,
        "prompt",
        &format!("{TYPED_SLOWLY}{TYPED_USERTESTS}"),
        &["--baseline", "base/results.json", "--fail-on-regression"],
    );
    let reason = assert_agree(&s, &out, "prompt", "fail");
    assert!(
        reason.starts_with(
            "boot time regressed past the threshold (+20% and +500ms) against the baseline \
             base/results.json: "
        ),
        "{reason}"
    );
    assert!(reason.contains("milestone 'usertests done'"), "{reason}");
    assert!(
        reason.contains("(success pattern 'usertests passed!' matched console line"),
        "{reason}"
    );
}
