//! `qemu-test check`: lints with file:line:col and log replay through the whole grammar.

pub mod common;

use common::{Scratch, text};

#[test]
fn lints_point_at_the_place_and_clean_configs_pass() {
    let s = Scratch::new();
    let bad = s.write(
        "bad.toml",
        "success_regex = [\"test pass!\"]\nfail_regex = [\"pass\"]\n\
         [[steps]]\nexpect = \">> \"\nsend = \"usertests\"\n",
    );
    let out = s.run(&["check", "--qemu-config", bad.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("bad.toml:4:10: warning: this step sends 'usertests' without a newline"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "bad.toml:1:18: warning: success text 'test pass!' also matches fail pattern 'pass'"
        ),
        "{stdout}"
    );

    let broken = s.write(
        "broken.toml",
        "[[milestones]]\nname = \"up\"\npattern = \"VM[1\"\n",
    );
    let out = s.run(&["check", "--qemu-config", broken.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("broken.toml:3:11: invalid milestone pattern 'VM[1'"),
        "{stderr}"
    );

    let good = s.write(
        "good.toml",
        "success_regex = [\"Hello\"]\nfail_sets = [\"arceos\"]\n",
    );
    let out = s.run(&["check", "--qemu-config", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out).0.contains("ok: no findings"));
}

#[test]
fn replays_a_log_through_steps_milestones_extraction_and_the_judge() {
    let s = Scratch::new();
    let cfg = s.write(
        "q.toml",
        "fail_sets = [\"arceos\"]\n\
         [[milestones]]\nname = \"shell\"\npattern = \"Rust user shell\"\n\
         [[steps]]\nexpect = \">> \"\nsend = \"usertests\\n\"\n\
         [[steps]]\nexpect = \"usertests passed!\"\n\
         [[testcases]]\npattern = \"Test '(?P<test_case_id>\\\\w+)' .* code (?P<result>\\\\d+)\"\nresults = { \"0\" = \"pass\" }\n",
    );
    let log = s.write(
        "boot.log",
        "Rust user shell\r\n>> usertests\r\nUsertests: Test 'fork' in Process 2 exited with code 0.\r\n\
         usertests passed!\r\n",
    );
    let out = s.run(&[
        "check",
        "--qemu-config",
        cfg.to_str().unwrap(),
        "--log",
        log.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    for needle in [
        "line    1  milestone  shell ← 'Rust user shell'",
        "line    2  step       step 1: send 'usertests\\n' ← '>> '",
        "line    3  case       fork: pass (raw '0')",
        "line    4  success    'usertests passed!' decides: usertests passed!",
        "verdict: pass",
    ] {
        assert!(stdout.contains(needle), "{needle} not in:\n{stdout}");
    }
    let panicked = s.write(
        "panic.log",
        "Rust user shell\r\n>> usertests\r\npanicked at x.rs:1:1\r\n",
    );
    let out = s.run(&[
        "check",
        "--qemu-config",
        cfg.to_str().unwrap(),
        "--log",
        panicked.to_str().unwrap(),
    ]);
    let stdout = text(&out).0;
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("line    3  fail       'panicked at' decides"),
        "{stdout}"
    );
    assert!(stdout.contains("verdict: fail"), "{stdout}");
}

#[test]
fn suite_cases_carry_grammar_keys_over_their_qemu_toml() {
    let s = Scratch::new();
    s.write(
        "q.toml",
        "success_regex = [\"usertests passed!\"]\n[[steps]]\nexpect = \">> \"\nsend = \"x\\n\"\n",
    );
    let suite = s.write(
        "suite.toml",
        "[defaults]\nqemu-config = \"q.toml\"\n\
         [[case]]\nname = \"a\"\n\
         [[case]]\nname = \"b\"\nfail-sets = [\"linux\"]\n\
         [[case.steps]]\nexpect = \">> \"\nsend = \"usertests\"\n",
    );
    let out = s.run(&["check", "--suite", suite.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // Case a has no fail patterns (b names the linux set); case b's own step replaces the
    // TOML's steps: only it lacks a newline.
    let findings: Vec<&str> = stdout.lines().filter(|l| l.contains("warning:")).collect();
    assert_eq!(findings.len(), 2, "{stdout}");
    assert!(
        findings[0].contains(
            "suite.toml:3:1: warning: no fail patterns: the built-in default set applies"
        ),
        "{stdout}"
    );
    assert!(
        findings[1].contains("suite.toml:9:10: warning: this step sends 'usertests'"),
        "{stdout}"
    );
    let bad = s.write(
        "bad-suite.toml",
        "[[case]]\nname = \"c\"\nfail_sets = [\"linx\"]\n",
    );
    let out = s.run(&["check", "--suite", bad.to_str().unwrap()]);
    let stderr = text(&out).1;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("bad-suite.toml:3:14: unknown pattern set `linx`"),
        "{stderr}"
    );
}

/// A key close to a known one is an error in `check` as in `run` (exit 2, file:line:col, the key
/// meant); a key of another tool stays a warning, and `check --suite` prints the suite's own.
#[test]
fn misspelt_keys_are_errors_and_unknown_suite_keys_are_reported() {
    let s = Scratch::new();
    let typo = s.write(
        "typo.toml",
        "fail_regex = [\"panicked at\"]\nsucess_regex = [\"Hello\"]\n",
    );
    let out = s.run(&["check", "--qemu-config", typo.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "typo.toml:2:1: unknown key `sucess_regex` in the QEMU config (did you mean \
             `success_regex`?)"
        ),
        "{stderr}"
    );
    let out = s.run(&[
        "run",
        "--qemu-config",
        typo.to_str().unwrap(),
        "--kernel",
        common::fixtures::fixture("aarch64-baremetal/hello.elf")
            .to_str()
            .unwrap(),
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("typo.toml:2:1: unknown key `sucess_regex`"),
        "{stderr}"
    );

    let suite = s.write("suite.toml", "[[case]]\nname = \"a\"\nkernal = \"k.elf\"\n");
    let out = s.run(&["check", "--suite", suite.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr
            .contains("suite.toml:3:1: unknown key `kernal` in [[case]] (did you mean `kernel`?)"),
        "{stderr}"
    );

    let foreign = s.write(
        "foreign.toml",
        "[[case]]\nname = \"a\"\nfail-regex = [\"panic\"]\nowner = \"ci-team\"\n",
    );
    let out = s.run(&["check", "--suite", foreign.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout
            .contains("foreign.toml:4:1: warning: unknown key `owner` in [[case]]; it is ignored"),
        "{stdout}"
    );
    assert!(!stdout.contains("ok: no findings"), "{stdout}");
}
