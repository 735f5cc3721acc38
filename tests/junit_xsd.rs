//! The JUnit report validates against the unmodified Jenkins xUnit `junit-10.xsd` (checked with
//! the real xmllint) and parses back with the counts we wrote.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use qemu_test_action::arch::Arch;
use qemu_test_action::console::PatternKind;
use qemu_test_action::environment::Runner;
use qemu_test_action::report::junit::write_junit;
use qemu_test_action::report::model::Attempt;
use qemu_test_action::report::{CaseBuilder, CaseResult, Stage};
use qemu_test_action::verdict::{Outcome, QemuExit, Verdict};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A case that went through every stage to the boot, which ended in `outcome`.
fn booted(name: &str, outcome: Outcome, reason: &str) -> CaseBuilder {
    CaseResult::builder(name, outcome, reason)
        .duration(ms(4321))
        .ran_on(Arch::Aarch64, "tcg")
        .qemu_version("7.2.15")
        .stage(Stage::Probe, ms(120), true)
        .stage(Stage::Image, ms(1500), true)
        .stage(Stage::Build, ms(30_000), true)
        .stage(Stage::Prepare, ms(40), true)
        .stage(Stage::Boot, ms(2600), outcome == Outcome::Pass)
}

fn results(dir: &Path) -> Vec<CaseResult> {
    let log = dir.join("pass.log");
    std::fs::write(
        &log,
        b"\x1b[32mOK\x1b[0m booted\r\nhello <world> & \"friends\"\n\xff\xfe\n",
    )
    .unwrap();
    let pass = booted("pass-case", Outcome::Pass, "success pattern matched")
        .log(log)
        .build();

    let fail = booted(
        "fail-case",
        Outcome::Fail,
        "fail pattern 'panicked' matched on console line 7",
    )
    .decided_by(
        PatternKind::Fail,
        "panicked",
        7,
        "kernel panicked at <&> \"x\"",
        ms(2100),
    )
    .pattern_at("configs/qemu.toml", 12, 5)
    .tail([
        "\u{1b}[31mERROR\u{1b}[0m <&> ]]> --> ",
        "bad utf8: \u{FFFD}\u{FFFD} nonchar: \u{FFFE}",
        "bell \u{7} and nul \u{0} and form feed \u{c}",
    ])
    .stderr_tail(["qemu-system-aarch64: warning: <x>"])
    .build();

    let timeout = booted(
        "timeout-case",
        Outcome::Timeout,
        "boot timed out after 60 s waiting for 'login:'",
    )
    .qemu_exit(QemuExit {
        code: None,
        signal: Some(9),
        killed_by_runner: true,
    })
    .tail(["still booting…"])
    .build();

    let error = CaseResult::builder(
        "error-case",
        Outcome::Error,
        "download of linux@0.0.1 failed: HTTP 504",
    )
    .duration(Duration::from_secs(3))
    .stage(Stage::Probe, ms(100), true)
    .stage(Stage::Image, ms(2900), false)
    .build();

    let skipped = CaseResult::builder(
        "nimbos-x86_64",
        Outcome::Skipped,
        "requires vmx, which this runner lacks",
    )
    .build();
    let cancelled = booted("cancelled-case", Outcome::Cancelled, "SIGTERM").build();
    // Failed, then passed on a retry; its config in the workspace (the current directory).
    let config = std::env::current_dir().unwrap().join("Cargo.toml");
    let flaky = booted("flaky-case", Outcome::Pass, "success pattern matched")
        .config_file(config)
        .attempt(Attempt {
            verdict: Verdict::new(Outcome::Timeout, "no console output for 1s"),
            duration: ms(1000),
            console_tail: vec!["<stuck> & \"quiet\"".into()],
            log: Some(dir.join("flaky.attempt1.log")),
        })
        .build();
    vec![pass, fail, timeout, error, skipped, cancelled, flaky]
}

fn xmllint(schema: &Path, file: &Path) -> std::process::Output {
    match Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(schema)
        .arg(file)
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("xmllint is not installed: install the Debian package libxml2-utils")
        }
        Err(e) => panic!("cannot run xmllint: {e}"),
    }
}

#[test]
fn report_validates_against_unmodified_junit_10_xsd() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out/junit.xml");
    write_junit(&results(dir.path()), &path, &Runner::default()).unwrap();

    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/junit-10.xsd");
    let out = xmllint(&schema, &path);
    let xml = std::fs::read_to_string(&path).unwrap();
    let mode = std::os::unix::fs::PermissionsExt::mode(&path.metadata().unwrap().permissions());
    assert_eq!(
        mode & 0o777,
        0o644,
        "an ordinary file, not a 0600 temp file"
    );
    assert!(
        out.status.success(),
        "xmllint rejected the report:\n{}\n{xml}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn report_parses_back_with_matching_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junit.xml");
    write_junit(&results(dir.path()), &path, &Runner::default()).unwrap();
    let xml = std::fs::read_to_string(&path).unwrap();

    let root = xml.lines().find(|l| l.starts_with("<testsuites")).unwrap();
    // No counts (the suites have them); the time adds up the suites: 5 × 4.321 s + 3 s.
    assert_eq!(root, r#"<testsuites name="qemu-test" time="24.605">"#);
    assert!(!xml.contains('\u{1b}') && !xml.contains('\u{FFFE}') && !xml.contains('\u{7}'));

    let report = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    assert_eq!(report.test_suites.len(), 7);
    // (name, tests, failures, errors, skipped): a passed prepare stage is no test case.
    let expect = [
        ("pass-case", 4, 0, 0, 0),
        ("fail-case", 4, 1, 0, 0),
        ("timeout-case", 4, 1, 0, 0),
        ("error-case", 2, 0, 1, 0),
        ("nimbos-x86_64", 1, 0, 0, 1),
        ("cancelled-case", 4, 0, 1, 0),
        ("flaky-case", 4, 0, 0, 0),
    ];
    for (suite, (name, tests, failures, errors, skipped)) in report.test_suites.iter().zip(expect) {
        assert_eq!(
            (
                suite.name.as_str(),
                suite.tests,
                suite.failures,
                suite.errors,
                suite.skipped
            ),
            (name, tests, failures, errors, skipped)
        );
        assert_eq!(suite.test_cases.len(), tests);
    }
    let suites = &report.test_suites;
    let sum = |f: fn(&quick_junit::TestSuite) -> usize| suites.iter().map(f).sum::<usize>();
    assert_eq!(
        (sum(|s| s.tests), sum(|s| s.failures), sum(|s| s.errors)),
        (23, 2, 2)
    );
    assert!(
        suites
            .iter()
            .all(|s| !s.extra.contains_key("file") || s.name.as_str() == "flaky-case")
    );

    let flaky = &suites[6];
    assert_eq!(
        flaky.extra.get("file").map(|f| f.as_str()),
        Some("Cargo.toml")
    );
    assert_eq!(flaky.time, Some(Duration::from_millis(4321)));
    let boot = flaky
        .test_cases
        .iter()
        .find(|c| c.name.as_str() == "boot")
        .unwrap();
    assert_eq!(
        boot.time,
        Some(Duration::from_millis(3600)),
        "both attempts"
    );
    let out = boot.system_out.as_deref().unwrap();
    assert!(
        out.starts_with("attempt 1/2: timeout - no console output for 1s (log: "),
        "{out}"
    );
    assert!(
        out.ends_with("\nattempt 2/2: pass - success pattern matched"),
        "{out}"
    );

    let fail = &report.test_suites[1];
    let boot = fail
        .test_cases
        .iter()
        .find(|c| c.name.as_str() == "boot")
        .unwrap();
    let quick_junit::TestCaseStatus::NonSuccess {
        message,
        ty,
        description,
        ..
    } = &boot.status
    else {
        panic!("boot of fail-case is not a failure: {:?}", boot.status)
    };
    assert_eq!(ty.as_deref(), Some("fail-pattern"));
    assert_eq!(
        message.as_deref(),
        Some("fail pattern 'panicked' matched on console line 7")
    );
    let body = description.as_deref().unwrap();
    assert!(body.contains("ERROR <&> ]]> -->"), "{body}");
    assert!(
        body.contains("console line 7: kernel panicked at <&> \"x\""),
        "{body}"
    );
    assert!(body.contains("\u{FFFD}\u{FFFD}"));
    let prop = |s: &quick_junit::TestSuite, k: &str| {
        s.properties
            .iter()
            .find(|p| p.name.as_str() == k)
            .map(|p| p.value.to_string())
    };
    assert_eq!(prop(fail, "accel").as_deref(), Some("tcg"));
    assert_eq!(prop(fail, "qemu-version").as_deref(), Some("7.2.15"));
    assert_eq!(prop(fail, "arch").as_deref(), Some("aarch64"));

    let timeout_boot = report.test_suites[2]
        .test_cases
        .iter()
        .find(|c| c.name.as_str() == "boot");
    assert!(matches!(
        &timeout_boot.unwrap().status,
        quick_junit::TestCaseStatus::NonSuccess { ty: Some(t), .. } if t.as_str() == "timeout"
    ));

    let pass_out = report.test_suites[0].system_out.as_deref().unwrap();
    assert!(pass_out.contains("OK booted"), "{pass_out}");
    assert!(pass_out.contains("hello <world> & \"friends\""));
}
