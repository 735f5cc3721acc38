//! End-to-end: the JUnit report of real boots, read by the consumers users plug in, tells our
//! verdict and counts. Each scenario boots a real fixture guest under real QEMU (pass, fail,
//! skip, flaky = fail then pass on a retry, a failure on every attempt, a failing console test
//! case with `affects_verdict = false`); then
//! - junitparser (PyPI; the reader of EnricoMi/publish-unit-test-result-action),
//! - junit2html (PyPI; it also renders its HTML report),
//! - test-results-parser (npm; the JUnit reader of TestBeats dashboards)
//!
//! read the file, and each one's totals, per-suite counts, per-case results and times must be
//! ours. mikepenz/action-junit-report's rule for where a failure is annotated (restated in
//! [`mikepenz_position`]) must land on the config line, not on a path the guest printed.
//! The tools are installed by `scripts/test.sh` (tests/tools/python into target/tools/python,
//! tests/tools/node with `npm ci`).

pub mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::fixtures::fixture;
use common::{BAREMETAL_MACHINE as MACHINE, Scratch, text};
use serde_json::Value;

/// The config of every scenario, relative to the workspace (the scratch dir).
const CONFIG: &str = "configs/qemu.toml";

/// Boots `variant` with `config` (in [`CONFIG`]) and `extra` flags as if in GitHub Actions;
/// returns the exit code.
fn boot(s: &Scratch, variant: &str, config: &str, extra: &[&str], path: Option<&str>) -> i32 {
    std::fs::create_dir_all(s.path().join("configs")).unwrap();
    let cfg = s.write(CONFIG, &format!("{MACHINE}{config}"));
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
    let mut cmd = s.cmd(&args);
    cmd.env("GITHUB_WORKSPACE", s.path());
    if let Some(p) = path {
        cmd.env("PATH", p);
    }
    let out = cmd.output().expect("spawn qemu-test");
    common::assert_no_qemu_left(s.path());
    let (stdout, stderr) = text(&out);
    out.status
        .code()
        .unwrap_or_else(|| panic!("killed: {stdout}{stderr}"))
}

fn tools() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools")
}

fn run_json(cmd: &mut Command, what: &str) -> Value {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{what} failed: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{what}: {e}: {stdout}"))
}

fn python() -> PathBuf {
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tools/python/bin/python");
    assert!(
        py.exists(),
        "missing test tools: run scripts/test.sh (it installs tests/tools/python/requirements.txt \
         into target/tools/python)"
    );
    py
}

fn junitparser(xml: &Path) -> Value {
    run_json(
        Command::new(python())
            .arg(tools().join("python/junitparser_read.py"))
            .arg(xml),
        "junitparser",
    )
}

fn junit2html(xml: &Path) -> Value {
    let html = xml.with_extension("html");
    let v = run_json(
        Command::new(python())
            .arg(tools().join("python/junit2html_read.py"))
            .arg(xml)
            .arg(&html),
        "junit2html",
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<html") && page.contains("boot"), "{page}");
    v
}

fn test_results_parser(xml: &Path) -> Value {
    let node = tools().join("node");
    assert!(
        node.join("node_modules/test-results-parser").is_dir(),
        "missing test tools: run `npm ci --prefix tests/tools/node` (scripts/test.sh does)"
    );
    run_json(
        Command::new("node")
            .arg(node.join("read-junit.mjs"))
            .arg(xml),
        "test-results-parser",
    )
}

/// What a case's report must say: counts and each test case's result, in junitparser's words
/// (`passed`, `failure`, `error`, `skipped`).
struct Expect<'a> {
    exit: i32,
    cases: &'a [(&'a str, &'a str)],
}

impl Expect<'_> {
    /// The expected `(name, result)` pairs in a consumer's words for each result.
    fn cases_as(&self, word: impl Fn(&str) -> &str) -> Vec<(String, String)> {
        self.cases
            .iter()
            .map(|(n, r)| (n.to_string(), word(r).to_string()))
            .collect()
    }
}

/// A consumer's `(name, <field>)` pairs from its list of test cases.
fn name_and(cases: &Value, field: &str) -> Vec<(String, String)> {
    cases
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c[field].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Checks every consumer against `expect` and our `results.json`; returns the JUnit text.
fn assert_consumers_agree(s: &Scratch, name: &str, expect: &Expect) -> String {
    let path = s.out().join("junit.xml");
    let xml = std::fs::read_to_string(&path).unwrap();
    let ours = &s.results()["cases"][0];
    assert_eq!(ours["name"], name);
    let count = |r: &str| expect.cases.iter().filter(|(_, x)| *x == r).count();
    let (tests, failures, errors, skipped) = (
        expect.cases.len(),
        count("failure"),
        count("error"),
        count("skipped"),
    );
    // The verdict and the counts agree with each other first.
    let passing = expect.exit == 0;
    assert_eq!(passing, failures + errors == 0, "{name}: bad expectation");
    let duration = ours["duration"].as_f64().unwrap();
    let close = |secs: f64| (secs - duration).abs() < 0.0015;

    // junitparser: counts as written, results from the elements.
    let jp = junitparser(&path);
    let suite = &jp["suites"][0];
    let got = |v: &Value, k: &str| v[k].as_u64().unwrap_or(0) as usize;
    assert_eq!(
        (got(&jp, "tests"), got(&jp, "failures"), got(&jp, "errors")),
        (tests, failures, errors),
        "junitparser totals: {jp}"
    );
    assert_eq!(
        (
            got(suite, "tests"),
            got(suite, "failures"),
            got(suite, "errors"),
            got(suite, "skipped")
        ),
        (tests, failures, errors, skipped),
        "junitparser suite: {suite}"
    );
    let jp_cases = name_and(&suite["cases"], "result");
    let want = expect.cases_as(|r| r);
    assert_eq!(jp_cases, want, "junitparser cases");
    assert!(close(jp["time"].as_f64().unwrap()), "root time: {jp}");
    assert!(
        close(suite["time"].as_f64().unwrap()),
        "suite time: {suite}"
    );
    assert_eq!(suite["file"], CONFIG, "{suite}");
    assert_eq!(suite["properties"]["outcome"], ours["verdict"]["outcome"]);

    // junit2html: passed / failed (failure and error alike) / skipped.
    let jh = junit2html(&path);
    let hs = &jh["suites"][0];
    let jh_cases = name_and(&hs["cases"], "outcome");
    let want_jh = expect.cases_as(|r| match r {
        "failure" | "error" => "failed",
        other => other,
    });
    assert_eq!(jh_cases, want_jh, "junit2html cases");
    assert!(close(hs["duration"].as_f64().unwrap()), "junit2html: {hs}");

    // test-results-parser: `total` leaves skipped cases out; `failed` and `errors` apart.
    let tr = test_results_parser(&path);
    let ts = &tr["suites"][0];
    for v in [&tr, ts] {
        assert_eq!(
            (
                got(v, "total"),
                got(v, "passed"),
                got(v, "failed"),
                got(v, "errors"),
                got(v, "skipped")
            ),
            (
                tests - skipped,
                tests - skipped - failures - errors,
                failures,
                errors,
                skipped
            ),
            "test-results-parser: {v}"
        );
    }
    let status = match (passing, skipped == tests) {
        (false, _) => "FAIL",
        (true, true) => "SKIP",
        (true, false) => "PASS",
    };
    assert_eq!(tr["status"], status, "test-results-parser: {tr}");
    let tr_cases = name_and(&ts["cases"], "status");
    let want_tr = expect.cases_as(|r| match r {
        "failure" | "error" => "FAIL",
        "skipped" => "SKIP",
        _ => "PASS",
    });
    assert_eq!(tr_cases, want_tr, "test-results-parser cases");
    let ms = ts["duration"].as_f64().unwrap() / 1000.0;
    assert!(close(ms), "test-results-parser duration: {ts}");

    // Valid against the unmodified junit-10.xsd, as tests/junit_xsd.rs checks made-up results.
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/junit-10.xsd");
    let lint = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&schema)
        .arg(&path)
        .output()
        .expect("xmllint (apt-get install libxml2-utils)");
    assert!(lint.status.success(), "{}\n{xml}", text(&lint).1);

    // Nothing names the runner's absolute paths.
    let abs = s.path().to_str().unwrap();
    assert!(!xml.contains(abs), "absolute path {abs} in:\n{xml}");
    xml
}

/// mikepenz/action-junit-report's rule for where a failure is annotated (its
/// `resolveFileAndLine`, restated from its source, v5.3.0): the file is the suite's `file`, else
/// the classname's last `.`-separated part; the line is the last match in the failure body of
/// ` [^ ]*<file>.*?:<digits>`, and when the text before that line number ends in `.rs`, the
/// file becomes that text's last word. No match: line 1.
fn mikepenz_position(file: Option<&str>, classname: &str, body: &str) -> (String, u32) {
    let mut file_name = file.map_or_else(
        || classname.rsplit('.').next().unwrap().to_string(),
        str::to_string,
    );
    let escaped = regex::escape(&file_name).replacen("::", "/", 1);
    let re = regex::Regex::new(&format!(r" [^ ]*{escaped}.*?:\d+")).unwrap();
    let Some(last) = re.find_iter(body).last() else {
        return (file_name, 1);
    };
    let mut tokens: Vec<&str> = last.as_str().split(':').collect();
    let line: u32 = tokens.pop().unwrap().parse().unwrap();
    let before = tokens.pop().unwrap_or("");
    if before.ends_with(".rs") {
        file_name = before.rsplit(' ').next().unwrap().to_string();
    }
    (file_name, line)
}

/// The `boot` test case's failure body and the suite's `file`.
fn boot_failure(xml: &str) -> (Option<String>, String, String) {
    let report = quick_junit::Report::deserialize_from_str(xml).unwrap();
    let suite = &report.test_suites[0];
    let boot = suite
        .test_cases
        .iter()
        .find(|c| c.name.as_str() == "boot")
        .unwrap();
    let quick_junit::TestCaseStatus::NonSuccess { description, .. } = &boot.status else {
        panic!("boot is no failure: {xml}")
    };
    (
        suite.extra.get("file").map(|f| f.to_string()),
        boot.classname.as_ref().unwrap().to_string(),
        description.as_ref().unwrap().to_string(),
    )
}

#[test]
fn a_pass_is_a_pass_for_every_consumer() {
    let s = Scratch::new();
    let code = boot(
        &s,
        "hello",
        "success_regex = [\"Hello, world!\"]\n",
        &[],
        None,
    );
    assert_eq!(code, 0);
    let xml = assert_consumers_agree(
        &s,
        "hello",
        &Expect {
            exit: 0,
            cases: &[("boot", "passed")],
        },
    );
    // The prepare stage is no test case of its own.
    assert!(!xml.contains(r#"name="prepare""#), "{xml}");
}

#[test]
fn a_guest_panic_is_one_failure_annotated_on_the_config_line() {
    let s = Scratch::new();
    // The whole guest line, so that it is all in the report (a match on an unfinished line
    // stops QEMU).
    let config =
        "success_regex = [\"Hello, world!\"]\nfail_regex = [\"panicked at src/main.rs:1:1\"]\n";
    let code = boot(&s, "panic", config, &[], None);
    assert_eq!(code, 1);
    let xml = assert_consumers_agree(
        &s,
        "panic",
        &Expect {
            exit: 1,
            cases: &[("boot", "failure")],
        },
    );
    let (file, classname, body) = boot_failure(&xml);
    assert!(
        body.contains("panicked at src/main.rs:1:1"),
        "the guest's text stays readable: {body}"
    );
    // fail_regex is on the config's line 2 (after the one-line machine args).
    let line = MACHINE.lines().count() as u32 + 2;
    assert!(
        body.contains(&format!("defined at {CONFIG}:{line}:")),
        "{body}"
    );
    assert_eq!(
        mikepenz_position(file.as_deref(), &classname, &body),
        (CONFIG.to_string(), line),
        "{body}"
    );
    // The rule is restated right: without our `file` and closing line it lands on the path the
    // guest printed, which is the misplaced annotation this guards against.
    let (without_closing_line, _) = body.rsplit_once('\n').unwrap();
    assert_eq!(
        mikepenz_position(None, &classname, without_closing_line),
        ("src/main.rs".to_string(), 1)
    );
}

#[test]
fn a_skipped_case_is_skipped_for_every_consumer() {
    let s = Scratch::new();
    // No host has both VT-x and AMD-V, with or without KVM: always skipped.
    let code = boot(
        &s,
        "hello",
        "success_regex = [\"Hello, world!\"]\n",
        &["--requires", "vmx", "--requires", "svm"],
        None,
    );
    assert_eq!(code, 0);
    assert_consumers_agree(
        &s,
        "hello",
        &Expect {
            exit: 0,
            cases: &[("boot", "skipped")],
        },
    );
}

/// A `qemu-system-aarch64` first on PATH that boots the `panic` guest instead of the asked one
/// the first time, and runs the real QEMU as asked after that; returns the PATH to use.
fn flaky_qemu(s: &Scratch) -> String {
    let path = std::env::var("PATH").unwrap();
    let real = std::env::split_paths(&path)
        .map(|d| d.join("qemu-system-aarch64"))
        .find(|p| p.is_file())
        .expect("qemu-system-aarch64 on PATH");
    let dir = s.path().join("flaky-bin");
    std::fs::create_dir_all(&dir).unwrap();
    let script = format!(
        "#!/bin/sh\n\
         case \" $* \" in *\" -kernel \"*)\n\
         \x20 if [ ! -e '{m}' ]; then\n\
         \x20   : > '{m}'; prev=\n\
         \x20   for a; do shift; [ \"$prev\" = -kernel ] && a='{panic}'; set -- \"$@\" \"$a\"; prev=$a; done\n\
         \x20 fi;;\n\
         esac\n\
         exec '{r}' \"$@\"\n",
        m = dir.join("booted-once").display(),
        panic = fixture("aarch64-baremetal/panic.elf").display(),
        r = real.display()
    );
    let wrapper = dir.join("qemu-system-aarch64");
    std::fs::write(&wrapper, script).unwrap();
    let mut perms = std::fs::metadata(&wrapper).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&wrapper, perms).unwrap();
    format!("{}:{path}", dir.display())
}

#[test]
fn a_flaky_pass_is_a_pass_and_shows_its_attempts() {
    let s = Scratch::new();
    let path = flaky_qemu(&s);
    let config = "success_regex = [\"Hello, world!\"]\nfail_regex = [\"panicked at\"]\n\
                  retries = 1\nretry_on = [\"fail\"]\n";
    let code = boot(&s, "hello", config, &[], Some(&path));
    assert_eq!(code, 0);
    let ours = s.results()["cases"][0].clone();
    assert_eq!(ours["flaky"], true, "{ours}");
    let xml = assert_consumers_agree(
        &s,
        "hello",
        &Expect {
            exit: 0,
            cases: &[("boot", "passed")],
        },
    );
    assert!(xml.contains("<flakyFailure "), "{xml}");
    // For plain readers: the property and the boot case's system-out.
    let jp = junitparser(&s.out().join("junit.xml"));
    let attempts = jp["suites"][0]["properties"]["attempts"].as_str().unwrap();
    assert_eq!(
        attempts,
        "attempt 1/2: fail (log: qemu-test-out/hello.attempt1.log); \
         attempt 2/2: pass (log: qemu-test-out/hello.log)"
    );
    let jh = junit2html(&s.out().join("junit.xml"));
    let out = jh["suites"][0]["cases"][0]["stdout"].as_str().unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with("attempt 1/2: fail - fail pattern 'panicked at' matched")
            && lines[0].ends_with("(log: qemu-test-out/hello.attempt1.log)"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("attempt 2/2: pass - ")
            && lines[1].ends_with("(log: qemu-test-out/hello.log)"),
        "{out}"
    );
    // The boot case's time covers both attempts.
    let tr = test_results_parser(&s.out().join("junit.xml"));
    let boot_ms = tr["suites"][0]["cases"][0]["duration"].as_f64().unwrap();
    let attempt_ms = ours["attempts"][0]["duration"].as_f64().unwrap() * 1000.0;
    let last_ms = ours["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["stage"] == "boot")
        .unwrap()["duration"]
        .as_f64()
        .unwrap()
        * 1000.0;
    assert!(
        (boot_ms - (attempt_ms + last_ms)).abs() < 2.0,
        "boot {boot_ms} ms, attempts {attempt_ms} + {last_ms} ms"
    );
}

#[test]
fn a_failure_on_every_attempt_is_one_failure_with_its_reruns() {
    let s = Scratch::new();
    let config = "success_regex = [\"Hello, world!\"]\nfail_regex = [\"panicked at\"]\n\
                  retries = 1\nretry_on = [\"fail\"]\n";
    let code = boot(&s, "panic", config, &[], None);
    assert_eq!(code, 1);
    let xml = assert_consumers_agree(
        &s,
        "panic",
        &Expect {
            exit: 1,
            cases: &[("boot", "failure")],
        },
    );
    assert!(xml.contains("<rerunFailure "), "{xml}");
    let jp = junitparser(&s.out().join("junit.xml"));
    assert_eq!(
        jp["suites"][0]["properties"]["attempts"],
        "attempt 1/2: fail (log: qemu-test-out/panic.attempt1.log); \
         attempt 2/2: fail (log: qemu-test-out/panic.log)"
    );
    let (file, classname, body) = boot_failure(&xml);
    let line = MACHINE.lines().count() as u32 + 2;
    assert_eq!(
        mikepenz_position(file.as_deref(), &classname, &body),
        (CONFIG.to_string(), line)
    );
}

#[test]
fn a_failing_test_case_that_does_not_affect_the_verdict_is_no_failure() {
    let s = Scratch::new();
    let config = r#"success_regex = ["usertests passed!"]
[[testcases]]
pattern = '^(?P<result>ok|not ok) \d+ (?P<test_case_id>\S+)'
affects_verdict = false
"#;
    let code = boot(&s, "cases", config, &[], None);
    assert_eq!(code, 0);
    assert_consumers_agree(
        &s,
        "cases",
        &Expect {
            exit: 0,
            cases: &[
                ("boot", "passed"),
                ("case: test_a", "passed"),
                ("case: test_b", "skipped"),
                ("case: test_c", "passed"),
            ],
        },
    );
}
